//! Exit heads in libtorch (the `tch` feature): attach, train with a frozen backbone, recalibrate
//! batch norm, save and load, and run dynamic inference that really stops early.

use std::path::Path;

use dynas_space::{Activation, Network};
use tch::nn::{self, Module, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::cost::ExitHead;
use crate::error::{ExitError, Result};
use crate::policy::{ExitPolicy, PolicyState};
use crate::table::ExitOutputs;

/// A backbone that exposes its blocks one by one, so heads can read per-block features and
/// dynamic inference can stop between blocks.
///
/// Contract: blocks run in order, block `0` on the input images; [`Backbone::classify`] turns
/// the last block's output into logits; [`Backbone::network`] describes the same computation
/// with block `i` as layer `i` (the classifier's layers after the blocks), which is what
/// [`crate::ExitCosts`] needs.
pub trait Backbone {
    /// Number of blocks.
    fn num_blocks(&self) -> usize;
    /// Output channels of block `block`.
    fn block_channels(&self, block: usize) -> i64;
    /// Runs block `block` in inference mode.
    fn forward_block(&self, block: usize, x: &Tensor) -> Result<Tensor>;
    /// The final classifier on the last block's output.
    fn classify(&self, features: &Tensor) -> Result<Tensor>;
    /// The tch-free description: block `i` is layer `i`.
    fn network(&self) -> Network;
}

fn activate(x: Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::None => x,
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSwish => x.hardswish(),
        Activation::Swish => x.silu(),
    }
}

/// One HADAS exit head in libtorch: 3x3 conv (no bias), batch norm, activation, global average
/// pooling, linear. Parameters live under `p / "conv"`, `p / "bn"`, `p / "linear"`.
#[derive(Debug)]
pub struct TchExitHead {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    linear: nn::Linear,
    activation: Activation,
}

impl TchExitHead {
    /// A head reading `in_channels` feature maps, shaped by `spec`.
    pub fn new(p: nn::Path<'_>, in_channels: i64, spec: &ExitHead) -> Self {
        let width = spec.width() as i64;
        let conv = nn::conv2d(
            &p / "conv",
            in_channels,
            width,
            3,
            nn::ConvConfig {
                padding: 1,
                bias: false,
                ..Default::default()
            },
        );
        let bn = nn::batch_norm2d(&p / "bn", width, Default::default());
        let linear = nn::linear(
            &p / "linear",
            width,
            spec.num_classes() as i64,
            Default::default(),
        );
        Self {
            conv,
            bn,
            linear,
            activation: spec.activation(),
        }
    }

    /// Logits of the head.
    pub fn forward_t(&self, features: &Tensor, train: bool) -> Tensor {
        let x = self.bn.forward_t(&self.conv.forward(features), train);
        let x = activate(x, self.activation)
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1);
        self.linear.forward(&x)
    }
}

/// An exit head in its inference form: the batch norm folded into the 3x3 convolution (one
/// operator fewer per head and call), the linear classifier as plain tensors. The same function
/// as [`TchExitHead::forward_t`] in evaluation mode.
#[derive(Debug)]
pub struct FoldedExitHead {
    weight: Tensor,
    bias: Tensor,
    linear_weight: Tensor,
    linear_bias: Option<Tensor>,
    activation: Activation,
}

impl FoldedExitHead {
    /// Logits of the head for `features` (any memory layout).
    pub fn forward(&self, features: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = features.conv2d(&self.weight, Some(&self.bias), [1, 1], [1, 1], [1, 1], 1);
            let x = activate(x, self.activation)
                .adaptive_avg_pool2d([1, 1])
                .flatten(1, -1);
            x.linear(&self.linear_weight, self.linear_bias.as_ref())
        })
    }
}

impl TchExitHead {
    /// This head with its batch norm's running statistics folded into the convolution.
    pub fn folded(&self) -> FoldedExitHead {
        tch::no_grad(|| {
            let bn = &self.bn;
            // The heads are built with the default batch-norm configuration (see `new`).
            let eps = nn::BatchNormConfig::default().eps;
            let var = bn.running_var.shallow_clone().to_kind(Kind::Float);
            let scale = match &bn.ws {
                Some(w) => w / (var + eps).sqrt(),
                None => (var + eps).sqrt().reciprocal(),
            };
            let shift = match &bn.bs {
                Some(b) => b - &bn.running_mean * &scale,
                None => -(&bn.running_mean * &scale),
            };
            FoldedExitHead {
                weight: (&self.conv.ws * scale.view([-1, 1, 1, 1])).detach(),
                bias: shift.detach(),
                linear_weight: self.linear.ws.detach().copy(),
                linear_bias: self.linear.bs.as_ref().map(|b| b.detach().copy()),
                activation: self.activation,
            }
        })
    }
}

/// Validated hyper-parameters of head training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadTraining {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    distill_temperature: f64,
    distill_weight: f64,
    seed: u64,
}

impl Default for HeadTraining {
    /// 3 epochs, batch 128, Adam at 3e-3, distillation temperature 4 with weight 0.5, seed 0.
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 128,
            learning_rate: 3e-3,
            distill_temperature: 4.0,
            distill_weight: 0.5,
            seed: 0,
        }
    }
}

impl HeadTraining {
    /// Seed of the batch order.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Checked: `epochs, batch_size >= 1`, learning rate and temperature finite and positive,
    /// `distill_weight` in `[0, 1]` (loss = `(1 - w) CE + w T² KL(teacher_T || head_T)`).
    pub fn new(
        epochs: usize,
        batch_size: usize,
        learning_rate: f64,
        distill_temperature: f64,
        distill_weight: f64,
        seed: u64,
    ) -> Result<Self> {
        if epochs == 0 || batch_size == 0 {
            return Err(ExitError::invalid(
                "epochs / batch_size",
                "must be at least 1",
            ));
        }
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if !pos(learning_rate) {
            return Err(ExitError::invalid(
                "learning_rate",
                format!("{learning_rate}"),
            ));
        }
        if !pos(distill_temperature) {
            return Err(ExitError::invalid(
                "distill_temperature",
                format!("{distill_temperature}"),
            ));
        }
        if !(0.0..=1.0).contains(&distill_weight) {
            return Err(ExitError::invalid(
                "distill_weight",
                format!("{distill_weight} not in [0, 1]"),
            ));
        }
        Ok(Self {
            epochs,
            batch_size,
            learning_rate,
            distill_temperature,
            distill_weight,
            seed,
        })
    }
}

/// Mean training loss of every epoch (summed over heads).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingReport {
    /// One entry per epoch.
    pub epoch_losses: Vec<f64>,
}

/// The exit heads of one backbone, in their own [`nn::VarStore`].
pub struct ExitHeads {
    vs: nn::VarStore,
    heads: Vec<TchExitHead>,
    blocks: Vec<usize>,
    spec: ExitHead,
}

impl std::fmt::Debug for ExitHeads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitHeads")
            .field("blocks", &self.blocks)
            .field("spec", &self.spec)
            .finish()
    }
}

fn check_labels(images: &Tensor, labels: &Tensor) -> Result<i64> {
    let n = images.size().first().copied().unwrap_or(0);
    let m = labels.size().first().copied().unwrap_or(0);
    if n == 0 {
        return Err(ExitError::invalid("images", "no samples"));
    }
    if n != m {
        return Err(ExitError::shape("labels", n as usize, m as usize));
    }
    Ok(n)
}

impl ExitHeads {
    /// Heads after the given blocks (strictly increasing, below the block count), on `device`,
    /// named `exits.b{block}`.
    pub fn new(
        backbone: &dyn Backbone,
        blocks: Vec<usize>,
        spec: ExitHead,
        device: Device,
    ) -> Result<Self> {
        for (i, &b) in blocks.iter().enumerate() {
            if b >= backbone.num_blocks() || (i > 0 && b <= blocks[i - 1]) {
                return Err(ExitError::invalid(
                    "head blocks",
                    format!(
                        "{blocks:?} must be strictly increasing and below {}",
                        backbone.num_blocks()
                    ),
                ));
            }
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root() / "exits";
        let heads = blocks
            .iter()
            .map(|&b| TchExitHead::new(&root / format!("b{b}"), backbone.block_channels(b), &spec))
            .collect();
        Ok(Self {
            vs,
            heads,
            blocks,
            spec,
        })
    }

    /// Blocks the heads read.
    pub fn blocks(&self) -> &[usize] {
        &self.blocks
    }

    /// The head shape.
    pub fn spec(&self) -> &ExitHead {
        &self.spec
    }

    /// The heads' variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Every head in inference form ([`TchExitHead::folded`]), in head order.
    pub fn folded(&self) -> Vec<FoldedExitHead> {
        self.heads.iter().map(TchExitHead::folded).collect()
    }

    /// Head logits of one head on its block's features.
    pub fn head_logits(&self, head: usize, features: &Tensor) -> Option<Tensor> {
        self.heads.get(head).map(|h| h.forward_t(features, false))
    }

    /// Features after every head's block and the final logits (no gradient).
    fn features(&self, backbone: &dyn Backbone, x: &Tensor) -> Result<(Vec<Tensor>, Tensor)> {
        tch::no_grad(|| {
            let mut feats = Vec::with_capacity(self.heads.len());
            let mut h = x.shallow_clone();
            let mut next = 0;
            for b in 0..backbone.num_blocks() {
                h = backbone.forward_block(b, &h)?;
                if self.blocks.get(next) == Some(&b) {
                    feats.push(h.shallow_clone());
                    next += 1;
                }
            }
            let logits = backbone.classify(&h)?;
            Ok((feats, logits))
        })
    }

    /// Trains every head in one pass over the backbone per batch, the backbone frozen:
    /// cross entropy plus distillation from the final classifier, then exact batch-norm
    /// recalibration on the same images.
    pub fn train(
        &mut self,
        backbone: &dyn Backbone,
        images: &Tensor,
        labels: &Tensor,
        config: &HeadTraining,
    ) -> Result<TrainingReport> {
        let n = check_labels(images, labels)?;
        tch::manual_seed(config.seed as i64);
        let mut opt = nn::Adam::default().build(&self.vs, config.learning_rate)?;
        let t = config.distill_temperature;
        let w = config.distill_weight;
        let device = self.vs.device();
        let mut epoch_losses = Vec::with_capacity(config.epochs);
        for _ in 0..config.epochs {
            let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
            let mut total = 0.0;
            let mut batches = 0usize;
            let bs = config.batch_size as i64;
            for start in (0..n).step_by(config.batch_size) {
                let idx = perm.narrow(0, start, bs.min(n - start));
                let x = images.f_index_select(0, &idx)?.to_device(device);
                let y = labels.f_index_select(0, &idx)?.to_device(device);
                let (feats, teacher) = self.features(backbone, &x)?;
                let soft_teacher = (&teacher / t).log_softmax(-1, Kind::Float);
                let mut loss = Tensor::zeros([], (Kind::Float, device));
                for (head, f) in self.heads.iter().zip(&feats) {
                    let logits = head.forward_t(f, true);
                    let ce = logits.cross_entropy_for_logits(&y);
                    let student = (&logits / t).log_softmax(-1, Kind::Float);
                    let kl = (soft_teacher.exp() * (&soft_teacher - &student))
                        .sum_dim_intlist(-1, false, Kind::Float)
                        .mean(Kind::Float);
                    loss = loss + ce * (1.0 - w) + kl * (w * t * t);
                }
                opt.backward_step(&loss);
                total += loss.double_value(&[]);
                batches += 1;
            }
            epoch_losses.push(total / batches.max(1) as f64);
        }
        self.recalibrate_bn(backbone, images, config.batch_size)?;
        Ok(TrainingReport { epoch_losses })
    }

    /// Sets every head's batch-norm running statistics to the exact mean and (unbiased)
    /// variance of its conv outputs over `images`.
    pub fn recalibrate_bn(
        &mut self,
        backbone: &dyn Backbone,
        images: &Tensor,
        batch_size: usize,
    ) -> Result<()> {
        let n = images.size().first().copied().unwrap_or(0);
        if n == 0 || batch_size == 0 {
            return Err(ExitError::invalid(
                "recalibration data",
                "no samples or zero batch size",
            ));
        }
        let device = self.vs.device();
        let k = self.heads.len();
        let mut sum: Vec<Option<Tensor>> = (0..k).map(|_| None).collect();
        let mut sq: Vec<Option<Tensor>> = (0..k).map(|_| None).collect();
        let mut count = 0i64;
        tch::no_grad(|| -> Result<()> {
            for start in (0..n).step_by(batch_size) {
                let x = images
                    .narrow(0, start, (batch_size as i64).min(n - start))
                    .to_device(device);
                let (feats, _) = self.features(backbone, &x)?;
                for (i, (head, f)) in self.heads.iter().zip(&feats).enumerate() {
                    let c = head.conv.forward(f).to_kind(Kind::Double);
                    let s = c.sum_dim_intlist([0i64, 2, 3].as_slice(), false, Kind::Double);
                    let q = (&c * &c).sum_dim_intlist([0i64, 2, 3].as_slice(), false, Kind::Double);
                    if i == 0 {
                        let sz = c.size();
                        count += sz[0] * sz[2] * sz[3];
                    }
                    sum[i] = Some(match sum[i].take() {
                        Some(a) => a + s,
                        None => s,
                    });
                    sq[i] = Some(match sq[i].take() {
                        Some(a) => a + q,
                        None => q,
                    });
                }
            }
            Ok(())
        })?;
        if count < 2 {
            return Err(ExitError::invalid(
                "recalibration data",
                "fewer than 2 values per channel",
            ));
        }
        let nf = count as f64;
        for (i, head) in self.heads.iter_mut().enumerate() {
            let (Some(s), Some(q)) = (sum[i].take(), sq[i].take()) else {
                continue;
            };
            let mean = &s / nf;
            let var = (q - &mean * &s) / (nf - 1.0);
            tch::no_grad(|| {
                head.bn.running_mean.copy_(&mean.to_kind(Kind::Float));
                head.bn.running_var.copy_(&var.to_kind(Kind::Float));
            });
        }
        Ok(())
    }

    /// Validation outputs of every head and of the final classifier, for
    /// [`crate::ExitTable::from_outputs`].
    pub fn outputs(
        &self,
        backbone: &dyn Backbone,
        images: &Tensor,
        labels: &Tensor,
        batch_size: usize,
    ) -> Result<ExitOutputs> {
        let n = check_labels(images, labels)?;
        if batch_size == 0 {
            return Err(ExitError::invalid("batch_size", "must be at least 1"));
        }
        let device = self.vs.device();
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); self.heads.len() + 1];
        for start in (0..n).step_by(batch_size) {
            let x = images
                .narrow(0, start, (batch_size as i64).min(n - start))
                .to_device(device);
            let (feats, logits) = self.features(backbone, &x)?;
            tch::no_grad(|| -> Result<()> {
                for (i, (head, f)) in self.heads.iter().zip(&feats).enumerate() {
                    cols[i].extend(Vec::<f32>::try_from(
                        head.forward_t(f, false).flatten(0, -1),
                    )?);
                }
                cols[self.heads.len()].extend(Vec::<f32>::try_from(
                    logits.flatten(0, -1).to_kind(Kind::Float),
                )?);
                Ok(())
            })?;
        }
        let labels: Vec<i64> = Vec::<i64>::try_from(labels.to_kind(Kind::Int64).flatten(0, -1))?;
        let labels = labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                usize::try_from(l)
                    .map_err(|_| ExitError::invalid("labels", format!("sample {i} has label {l}")))
            })
            .collect::<Result<Vec<usize>>>()?;
        ExitOutputs::new(cols, labels, self.spec.num_classes())
    }

    /// Saves the heads (weights and batch-norm running statistics), and the backbone's variables
    /// when given, into one safetensors file (keys `exits.…` and `backbone.…`).
    pub fn save(&self, path: impl AsRef<Path>, backbone: Option<&nn::VarStore>) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        if let Some(b) = backbone {
            named.extend(
                b.variables()
                    .into_iter()
                    .map(|(k, v)| (format!("backbone.{k}"), v)),
            );
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Tensor::write_safetensors(&named, path.as_ref()).map_err(|e| match e {
            tch::TchError::Io(io) => ExitError::io(path.as_ref(), io),
            other => ExitError::Tch(other),
        })
    }

    /// Loads heads (and the backbone's variables when given) saved by [`ExitHeads::save`].
    /// A missing tensor or a shape mismatch is a [`ExitError::Parse`] naming the file and tensor.
    pub fn load(
        &mut self,
        path: impl AsRef<Path>,
        backbone: Option<&mut nn::VarStore>,
    ) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(ExitError::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let stored: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| ExitError::parse(path, 0, "safetensors", e.to_string()))?
            .into_iter()
            .collect();
        let mut targets: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        if let Some(b) = backbone.as_ref() {
            targets.extend(
                b.variables()
                    .into_iter()
                    .map(|(k, v)| (format!("backbone.{k}"), v)),
            );
        }
        for (name, mut var) in targets {
            let src = stored.get(&name).ok_or_else(|| {
                ExitError::parse(path, 0, name.clone(), "tensor missing from the file")
            })?;
            if src.size() != var.size() {
                return Err(ExitError::parse(
                    path,
                    0,
                    name,
                    format!(
                        "shape {:?} in the file, {:?} expected",
                        src.size(),
                        var.size()
                    ),
                ));
            }
            tch::no_grad(|| var.f_copy_(src))?;
        }
        Ok(())
    }
}

/// Where each input of a dynamic batch left and what it predicted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicOutput {
    /// Predicted class of every input.
    pub predictions: Vec<i64>,
    /// Head index each input left at (`heads` = the final classifier).
    pub exits: Vec<usize>,
    /// Number of backbone blocks run, summed over inputs.
    pub blocks_run: usize,
}

/// A backbone with exit heads and a policy: inference stops at the first exit that fires.
pub struct DynamicNet<'a> {
    backbone: &'a dyn Backbone,
    heads: &'a ExitHeads,
    policy: ExitPolicy,
}

impl std::fmt::Debug for DynamicNet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicNet")
            .field("heads", self.heads)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<'a> DynamicNet<'a> {
    /// Checks that the policy has one threshold per head.
    pub fn new(
        backbone: &'a dyn Backbone,
        heads: &'a ExitHeads,
        policy: ExitPolicy,
    ) -> Result<Self> {
        if policy.exits() != heads.heads.len() {
            return Err(ExitError::shape(
                "policy exits vs heads",
                heads.heads.len(),
                policy.exits(),
            ));
        }
        Ok(Self {
            backbone,
            heads,
            policy,
        })
    }

    /// Runs a batch; inputs that leave at an exit are removed from the batch before the next
    /// block, so later blocks run only on the inputs still undecided. Heads whose threshold can
    /// never fire are skipped.
    pub fn infer(&self, images: &Tensor) -> Result<DynamicOutput> {
        let n = images.size().first().copied().unwrap_or(0);
        let device = self.heads.vs.device();
        let mut predictions = vec![-1i64; n as usize];
        let mut exits = vec![self.heads.heads.len(); n as usize];
        let mut states = vec![PolicyState::default(); n as usize];
        let mut alive: Vec<usize> = (0..n as usize).collect();
        let mut blocks_run = 0usize;
        tch::no_grad(|| -> Result<()> {
            let mut h = images.to_device(device);
            let mut next = 0;
            for b in 0..self.backbone.num_blocks() {
                if alive.is_empty() {
                    break;
                }
                h = self.backbone.forward_block(b, &h)?;
                blocks_run += alive.len();
                if self.heads.blocks.get(next) != Some(&b) {
                    continue;
                }
                if !self.policy.rule().can_fire(next) {
                    // A never-firing exit: its head is not run (and not paid for).
                    next += 1;
                    continue;
                }
                let logits = self.heads.heads[next]
                    .forward_t(&h, false)
                    .to_kind(Kind::Float);
                let classes = logits.size()[1] as usize;
                let flat = Vec::<f32>::try_from(logits.flatten(0, -1).to_device(Device::Cpu))?;
                let mut keep = Vec::with_capacity(alive.len());
                let mut keep_rows = Vec::with_capacity(alive.len());
                for (row, &s) in alive.iter().enumerate() {
                    let d = self.policy.decide(
                        next,
                        &flat[row * classes..(row + 1) * classes],
                        &mut states[s],
                    )?;
                    if d.exit {
                        predictions[s] = d.prediction as i64;
                        exits[s] = next;
                    } else {
                        keep.push(s);
                        keep_rows.push(row as i64);
                    }
                }
                if keep.len() < alive.len() && !keep.is_empty() {
                    let idx = Tensor::from_slice(&keep_rows).to_device(h.device());
                    h = h.index_select(0, &idx);
                }
                alive = keep;
                next += 1;
            }
            if !alive.is_empty() {
                let logits = self.backbone.classify(&h)?;
                let pred = Vec::<i64>::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?;
                for (row, &s) in alive.iter().enumerate() {
                    predictions[s] = pred[row];
                }
            }
            Ok(())
        })?;
        Ok(DynamicOutput {
            predictions,
            exits,
            blocks_run,
        })
    }
}
