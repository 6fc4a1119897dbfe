//! GOS on libtorch: runnable models built from a network description and a replacement plan
//! ([`dynas_search::gos`]), weight initialisation of replacements from the original operator,
//! the host-measured lookup table of every candidate operator, per-unit accuracy proxies,
//! training, fine-tuning with distillation from the original, interleaved latency measurement,
//! and safetensors files that carry their network description.
//!
//! Supported layers: plain convolutions (any kernel, stride, dilation, groups), residual
//! blocks, linear layers, pooling, global average pooling, identities and zeros. MBConv blocks
//! are already efficient and are left to the supernet.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use dynas_search::gos::{
    ChannelSplit, Factorisation, GosLut, GosPlan, GosSpace, Replacement, UnitErrors, lut_key,
};
use dynas_space::{Activation, DynasRng, Layer, LayerExpr, Network, OpExpr, OpKind, PoolKind};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{TensorFile, write_tensors};
use crate::data::{Augmentation, Dataset, Normalization};
use crate::error::{Result, SupernetError};

/// One convolution or dense product of a term (no epilogue).
#[derive(Debug)]
struct Stage {
    weight: Tensor,
    stride: i64,
    padding: [i64; 2],
    dilation: i64,
    groups: i64,
    dense: bool,
}

impl Stage {
    fn new(p: &nn::Path<'_>, index: usize, term: &OpExpr) -> Self {
        let cin = term.input.channels as i64;
        let cout = term.out_channels() as i64;
        let (kh, kw) = term.kernel_hw();
        let dense = term.spatial.is_empty();
        let groups = term.groups.max(1) as i64;
        let shape: Vec<i64> = if dense {
            vec![cout, cin]
        } else {
            vec![cout, cin / groups, kh as i64, kw as i64]
        };
        let fan_in: i64 = shape[1..].iter().product();
        let bound = (6.0 / fan_in.max(1) as f64).sqrt();
        let weight = (p / format!("s{index}")).var(
            "weight",
            &shape,
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let axis = |i: usize| term.spatial.get(i);
        let pad = |i: usize| axis(i).map_or(0, |s| s.padding as i64);
        Self {
            weight,
            stride: axis(0).map_or(1, |s| s.stride as i64),
            padding: [pad(0), pad(1)],
            dilation: axis(0).map_or(1, |s| s.dilation as i64),
            groups,
            dense,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        if self.dense {
            x.flatten(1, -1).matmul(&self.weight.tr())
        } else {
            x.conv2d(
                &self.weight,
                None::<Tensor>,
                [self.stride, self.stride],
                self.padding,
                [self.dilation, self.dilation],
                self.groups,
            )
        }
    }
}

/// A term of a layer as modules: its stages, an optional channel shuffle, then the epilogue.
#[derive(Debug)]
struct TermModule {
    stages: Vec<Stage>,
    shuffle: Option<i64>,
    bias: Option<Tensor>,
    bn: Option<nn::BatchNorm>,
    activation: Activation,
    subsample: i64,
}

impl TermModule {
    fn new(p: &nn::Path<'_>, term: &OpExpr, choice: Replacement, subsample: usize) -> Result<Self> {
        let parts = choice.apply(term).map_err(SupernetError::Incompatible)?;
        let stages = parts
            .iter()
            .enumerate()
            .map(|(i, t)| Stage::new(p, i, t))
            .collect();
        let cout = term.out_channels() as i64;
        let e = term.epilogue;
        let bias = e.bias.then(|| p.zeros("bias", &[cout]));
        let bn = e
            .batch_norm
            .then(|| nn::batch_norm2d(p / "bn", cout, Default::default()));
        let shuffle = match choice {
            Replacement::GroupedShuffle { groups } => Some(groups as i64),
            _ => None,
        };
        Ok(Self {
            stages,
            shuffle,
            bias,
            bn,
            activation: e.activation,
            subsample: subsample as i64,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = if self.subsample > 1 {
            x.slice(2, 0, None, self.subsample)
                .slice(3, 0, None, self.subsample)
        } else {
            x.shallow_clone()
        };
        for stage in &self.stages {
            y = stage.forward(&y);
        }
        if let Some(g) = self.shuffle {
            y = y.channel_shuffle(g);
        }
        if let Some(b) = &self.bias {
            y = if y.dim() == 4 {
                y + b.view([1, -1, 1, 1])
            } else {
                y + b
            };
        }
        if let Some(bn) = &self.bn {
            y = bn.forward_t(&y, train);
        }
        activate(&y, self.activation)
    }
}

fn activate(x: &Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::None => x.shallow_clone(),
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSwish => x.hardswish(),
        Activation::Swish => x.silu(),
    }
}

// A model holds a few dozen of these, built once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum LayerModule {
    /// A conv or linear layer: one term.
    Single(TermModule),
    /// A residual block: `act(b(a(x)) + shortcut(x))`.
    Residual {
        a: TermModule,
        b: TermModule,
        shortcut: TermModule,
        activation: Activation,
    },
    Pool {
        kind: PoolKind,
        kernel: i64,
        stride: i64,
    },
    GlobalPool,
    Identity,
    Zero {
        channels: i64,
        stride: i64,
    },
}

/// A runnable model of a network description with a GOS plan applied.
#[derive(Debug)]
pub struct GosModel {
    network: Network,
    plan: GosPlan,
    vs: nn::VarStore,
    layers: Vec<LayerModule>,
}

fn unit_name(layer: &Layer, term: &OpExpr) -> String {
    format!("{}.{}", layer.name, term.name)
}

impl GosModel {
    /// Builds `network` with `plan` applied, weights drawn from libtorch's generator.
    pub fn new(network: Network, plan: GosPlan, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut layers = Vec::with_capacity(network.layers.len());
        let mut names: Vec<String> = Vec::new();
        for layer in &network.layers {
            let expr = LayerExpr::from_layer(layer);
            let p = &root / layer.name.replace('.', "_");
            let mut term = |i: usize, subsample: usize| -> Result<TermModule> {
                let t = &expr.terms[i];
                let name = unit_name(layer, t);
                names.push(name.clone());
                TermModule::new(&(&p / t.name.as_str()), t, plan.get(&name), subsample)
            };
            let module = match layer.kind {
                OpKind::Conv | OpKind::Linear => LayerModule::Single(term(0, 1)?),
                OpKind::ResidualBlock => {
                    let (a, b) = (term(0, 1)?, term(1, 1)?);
                    LayerModule::Residual {
                        a,
                        b,
                        shortcut: term(2, layer.stride)?,
                        activation: layer.activation,
                    }
                }
                OpKind::Pool(kind) => LayerModule::Pool {
                    kind,
                    kernel: layer.kernel as i64,
                    stride: layer.stride as i64,
                },
                OpKind::GlobalAvgPool => LayerModule::GlobalPool,
                OpKind::Identity => LayerModule::Identity,
                OpKind::Zero => LayerModule::Zero {
                    channels: layer.out_channels as i64,
                    stride: layer.stride as i64,
                },
                other => {
                    return Err(SupernetError::Incompatible(format!(
                        "layer `{}`: GOS models do not build {other:?} layers",
                        layer.name
                    )));
                }
            };
            layers.push(module);
        }
        for name in plan.replacements.keys() {
            if !names.contains(name) {
                return Err(SupernetError::Incompatible(format!(
                    "the plan replaces `{name}`, which is no operator of the network"
                )));
            }
        }
        Ok(Self {
            network,
            plan,
            vs,
            layers,
        })
    }

    /// The network description.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The replacement plan.
    pub fn plan(&self) -> &GosPlan {
        &self.plan
    }

    /// The variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable variables (for optimisers that need them).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Logits of a batch `[B, C, H, W]` (checked against the description's input).
    pub fn forward(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let size = images.size();
        let i = self.network.input;
        let expected = [i.channels as i64, i.height as i64, i.width as i64];
        if size.len() != 4 || size[1..] != expected {
            return Err(SupernetError::Incompatible(format!(
                "input of shape {size:?}, the model takes [B, {}, {}, {}]",
                i.channels, i.height, i.width
            )));
        }
        Ok(self.forward_unchecked(images, train))
    }

    fn forward_unchecked(&self, images: &Tensor, train: bool) -> Tensor {
        let mut x = images.shallow_clone();
        for layer in &self.layers {
            x = forward_layer(layer, &x, train);
        }
        x.flatten(1, -1)
    }

    /// Term modules by unit name, in network order.
    fn terms(&self) -> Vec<(String, &TermModule)> {
        let mut out = Vec::new();
        for (layer, module) in self.network.layers.iter().zip(&self.layers) {
            let expr = LayerExpr::from_layer(layer);
            let name = |i: usize| unit_name(layer, &expr.terms[i]);
            match module {
                LayerModule::Single(t) => out.push((name(0), t)),
                LayerModule::Residual { a, b, shortcut, .. } => {
                    out.push((name(0), a));
                    out.push((name(1), b));
                    out.push((name(2), shortcut));
                }
                _ => {}
            }
        }
        out
    }

    /// The model with `plan` applied to this (unreplaced) model, every replacement's weights
    /// initialised from the original operator (see
    /// [`dynas_search::gos::Replacement::initialisation`]); biases and batch norms are copied.
    pub fn adapted(&self, plan: GosPlan) -> Result<Self> {
        if !self.plan.replacements.is_empty() {
            return Err(SupernetError::Incompatible(
                "adapt the original model, not an already adapted one".into(),
            ));
        }
        let adapted = Self::new(self.network.clone(), plan, self.vs.device())?;
        let originals: HashMap<String, &TermModule> = self.terms().into_iter().collect();
        let exprs: HashMap<String, OpExpr> = self
            .network
            .layers
            .iter()
            .flat_map(|l| {
                LayerExpr::from_layer(l)
                    .terms
                    .into_iter()
                    .map(move |t| (unit_name(l, &t), t))
            })
            .collect();
        tch::no_grad(|| -> Result<()> {
            for (name, target) in adapted.terms() {
                let (Some(source), Some(expr)) = (originals.get(&name), exprs.get(&name)) else {
                    continue;
                };
                let weights =
                    init_weights(&source.stages[0].weight, expr, adapted.plan.get(&name))?;
                for (stage, w) in target.stages.iter().zip(weights) {
                    stage.weight.shallow_clone().copy_(&w);
                }
                if let (Some(src), Some(dst)) = (&source.bias, &target.bias) {
                    dst.shallow_clone().copy_(src);
                }
                if let (Some(src), Some(dst)) = (&source.bn, &target.bn) {
                    copy_bn(src, dst);
                }
            }
            Ok(())
        })?;
        Ok(adapted)
    }

    /// Saves the weights as safetensors with the network description and plan in its
    /// metadata, and the description (JSON) alongside as `<path>.json`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let description = ModelDescription {
            network: self.network.clone(),
            plan: self.plan.clone(),
        };
        let json = serde_json::to_string_pretty(&description).map_err(|e| SupernetError::Json {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut tensors: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut meta = HashMap::new();
        meta.insert(DESCRIPTION_KEY.to_string(), json.clone());
        write_tensors(path, &tensors, meta)?;
        let side = description_path(path);
        std::fs::write(&side, json).map_err(|e| SupernetError::io(side, e))
    }

    /// Loads a model written by [`GosModel::save`] (the description comes from the file's
    /// metadata; every tensor is checked for presence and shape).
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let file = TensorFile::open(path)?;
        let description: ModelDescription = file.meta_json(DESCRIPTION_KEY)?;
        let model = Self::new(description.network, description.plan, device)?;
        crate::checkpoint::copy_vars(&file, &model.vs, "")?;
        Ok(model)
    }
}

const DESCRIPTION_KEY: &str = "dynas.gos.description";

/// What a GOS model file carries besides its weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelDescription {
    /// The original network.
    pub network: Network,
    /// The replacements applied to it.
    pub plan: GosPlan,
}

/// `<path>.json`: where [`GosModel::save`] writes the description.
pub fn description_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    name.into()
}

fn copy_bn(src: &nn::BatchNorm, dst: &nn::BatchNorm) {
    dst.running_mean.shallow_clone().copy_(&src.running_mean);
    dst.running_var.shallow_clone().copy_(&src.running_var);
    if let (Some(a), Some(b)) = (&src.ws, &dst.ws) {
        b.shallow_clone().copy_(a);
    }
    if let (Some(a), Some(b)) = (&src.bs, &dst.bs) {
        b.shallow_clone().copy_(a);
    }
}

/// Rank-`rank` factors `(left, right)` of matrices `m` (`[..., rows, cols]`) with
/// `left @ right ~ m`, each carrying the square root of the singular values.
fn split_svd(m: &Tensor, rank: i64) -> (Tensor, Tensor) {
    let (u, s, v) = m.svd(true, true);
    let root = s.narrow(-1, 0, rank).sqrt();
    let left = u.narrow(-1, 0, rank) * root.unsqueeze(-2);
    let right = (v.narrow(-1, 0, rank) * root.unsqueeze(-2)).transpose(-1, -2);
    (left, right)
}

/// Weights of the stages replacing `expr` (original weight `w`) by `choice`.
pub fn init_weights(w: &Tensor, expr: &OpExpr, choice: Replacement) -> Result<Vec<Tensor>> {
    let parts = choice.apply(expr).map_err(SupernetError::Incompatible)?;
    let w = w.detach().to_kind(Kind::Float);
    let out = match choice {
        Replacement::Keep => vec![w.copy()],
        Replacement::LowRankDense { rank } => {
            let (left, right) = split_svd(&w, rank as i64);
            vec![right, left]
        }
        Replacement::Dilated { kernel, dilation } => {
            let taps = Tensor::arange_start_step(
                0,
                (kernel * dilation) as i64,
                dilation as i64,
                (Kind::Int64, w.device()),
            );
            vec![w.index_select(2, &taps).index_select(3, &taps)]
        }
        Replacement::GroupedShuffle { groups } => {
            let (cout, cin) = (w.size()[0], w.size()[1]);
            let g = groups as i64;
            let (per_out, per_in) = (cout / g, cin / g);
            // Pre-shuffle channel p = b * per_out + a lands at a * g + b.
            let rows: Vec<Tensor> = (0..cout)
                .map(|p| {
                    let (b, a) = (p / per_out, p % per_out);
                    w.get(a * g + b).narrow(0, b * per_in, per_in)
                })
                .collect();
            vec![Tensor::stack(&rows, 0)]
        }
        Replacement::Factorised(f) => factorised_weights(&w, f, &parts)?,
    };
    for (t, part) in out.iter().zip(&parts) {
        let expected = if part.spatial.is_empty() {
            vec![part.out_channels() as i64, part.input.channels as i64]
        } else {
            let (kh, kw) = part.kernel_hw();
            vec![
                part.out_channels() as i64,
                (part.input.channels / part.groups) as i64,
                kh as i64,
                kw as i64,
            ]
        };
        if t.size() != expected {
            return Err(SupernetError::Incompatible(format!(
                "initialising `{}` by {choice}: weight {:?}, expected {expected:?}",
                expr.name,
                t.size()
            )));
        }
    }
    Ok(out.into_iter().map(|t| t.contiguous()).collect())
}

fn factorised_weights(w: &Tensor, f: Factorisation, parts: &[OpExpr]) -> Result<Vec<Tensor>> {
    let s = w.size();
    if s.len() != 4 || parts.len() != 2 {
        return Err(SupernetError::Incompatible(
            "factorisation of a non-convolution".into(),
        ));
    }
    let (co, ci) = (s[0], s[1]);
    // Spatial axes 2 (kh) and 3 (kw), split between the stages.
    let first: Vec<i64> = [(2, f.first_height), (3, f.first_width)]
        .iter()
        .filter(|(_, first)| *first)
        .map(|(a, _)| *a)
        .collect();
    let second: Vec<i64> = [(2, f.first_height), (3, f.first_width)]
        .iter()
        .filter(|(_, first)| !*first)
        .map(|(a, _)| *a)
        .collect();
    let size = |axes: &[i64]| axes.iter().map(|&a| s[a as usize]).product::<i64>();
    let (na, nb) = (size(&first), size(&second));
    let shape = |p: &OpExpr| {
        let (kh, kw) = p.kernel_hw();
        [
            p.out_channels() as i64,
            (p.input.channels / p.groups) as i64,
            kh as i64,
            kw as i64,
        ]
    };
    let (s1, s2) = (shape(&parts[0]), shape(&parts[1]));
    let cat = |head: &[i64], a: &[i64], b: &[i64]| -> Vec<i64> {
        head.iter().chain(a).chain(b).copied().collect()
    };
    Ok(match f.channels {
        ChannelSplit::Bottleneck(r) => {
            let r = r as i64;
            let m = w
                .permute(cat(&[0], &second, &cat(&[1], &first, &[])))
                .reshape([co * nb, ci * na]);
            let (left, right) = split_svd(&m, r);
            let w1 = right.reshape(s1);
            let w2 = left.reshape([co, nb, r]).permute([0, 2, 1]).reshape(s2);
            vec![w1, w2]
        }
        ChannelSplit::FirstDepthwise => {
            let m = w
                .permute(cat(&[1, 0], &second, &first))
                .reshape([ci, co * nb, na]);
            let (left, right) = split_svd(&m, 1);
            let w1 = right.reshape(s1);
            let w2 = left.reshape([ci, co, nb]).permute([1, 0, 2]).reshape(s2);
            vec![w1, w2]
        }
        ChannelSplit::SecondDepthwise => {
            let m = w
                .permute(cat(&[0], &second, &cat(&[1], &first, &[])))
                .reshape([co, nb, ci * na]);
            let (left, right) = split_svd(&m, 1);
            vec![right.reshape(s1), left.reshape(s2)]
        }
    })
}

/// Top-1 accuracy (in `[0, 1]`) of `model` on `data`.
pub fn accuracy(model: &GosModel, data: &Dataset, norm: &Normalization, batch: usize) -> f64 {
    let mut rng = dynas_space::seeded_rng(0);
    let device = model.vs.device();
    let mut correct = 0i64;
    tch::no_grad(|| {
        for b in data.batches(batch, false, norm, Augmentation::NONE, &mut rng, device) {
            let logits = model.forward_unchecked(&b.images, false);
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&b.labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
    });
    correct as f64 / data.len().max(1) as f64
}

/// Training hyper-parameters (validate with [`TrainSettings::check`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    /// Passes over the data.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate (cosine decay to zero over all steps).
    pub learning_rate: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Weight of the distillation loss when a teacher is given (the rest on the labels).
    pub distill_weight: f64,
    /// Softmax temperature of the distillation loss.
    pub temperature: f64,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 2,
            batch: 128,
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            distill_weight: 0.7,
            temperature: 4.0,
            seed: 0,
        }
    }
}

/// Validated [`TrainSettings`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedTrainSettings(TrainSettings);

impl TrainSettings {
    /// Checks every field's range.
    pub fn check(self) -> Result<CheckedTrainSettings> {
        let positive = |name: &'static str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(SupernetError::invalid(name, format!("{v} is not positive")))
            }
        };
        if self.epochs == 0 || self.batch == 0 {
            return Err(SupernetError::invalid("epochs/batch", "must be at least 1"));
        }
        positive("learning_rate", self.learning_rate)?;
        positive("temperature", self.temperature)?;
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..=1.0).contains(&self.distill_weight) {
            return Err(SupernetError::invalid(
                "momentum/distill_weight",
                "momentum must lie in [0, 1) and distill_weight in [0, 1]",
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(SupernetError::invalid(
                "weight_decay",
                "must be non-negative",
            ));
        }
        Ok(CheckedTrainSettings(self))
    }
}

impl CheckedTrainSettings {
    /// The settings.
    pub fn settings(&self) -> &TrainSettings {
        &self.0
    }
}

/// Trains `model` on `data` with SGD and a cosine schedule; with a `teacher`, the loss mixes
/// distillation from its logits (`distill_weight`, at `temperature`) with the labels'
/// cross-entropy. Returns the mean loss of each epoch.
pub fn train(
    model: &mut GosModel,
    teacher: Option<&GosModel>,
    data: &Dataset,
    norm: &Normalization,
    settings: &CheckedTrainSettings,
) -> Result<Vec<f64>> {
    let s = settings.settings();
    let mut opt = nn::Sgd {
        momentum: s.momentum,
        dampening: 0.0,
        wd: s.weight_decay,
        nesterov: true,
    }
    .build(&model.vs, s.learning_rate)?;
    let steps_per_epoch = data.len().div_ceil(s.batch);
    let total = (steps_per_epoch * s.epochs).max(1) as f64;
    let mut rng: DynasRng = dynas_space::seeded_rng(s.seed);
    let device = model.vs.device();
    let mut losses = Vec::with_capacity(s.epochs);
    let mut step = 0usize;
    for _ in 0..s.epochs {
        let mut sum = 0.0;
        let mut count = 0usize;
        let order: Vec<_> = data
            .batches(s.batch, true, norm, Augmentation::NONE, &mut rng, device)
            .collect();
        for b in order {
            let lr =
                0.5 * s.learning_rate * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            opt.set_lr(lr);
            let logits = model.forward_unchecked(&b.images, true);
            let hard = logits.cross_entropy_for_logits(&b.labels);
            let loss = match teacher {
                Some(t) => {
                    let target = tch::no_grad(|| t.forward_unchecked(&b.images, false));
                    let temp = s.temperature;
                    let soft = (logits / temp).log_softmax(-1, Kind::Float).kl_div(
                        &(target / temp).log_softmax(-1, Kind::Float),
                        tch::Reduction::Sum,
                        true,
                    ) * (temp * temp / b.len().max(1) as f64);
                    hard * (1.0 - s.distill_weight) + soft * s.distill_weight
                }
                None => hard,
            };
            opt.backward_step(&loss);
            sum += loss.double_value(&[]);
            count += 1;
            step += 1;
        }
        losses.push(sum / count.max(1) as f64);
    }
    Ok(losses)
}

/// Per-unit accuracy proxy: for each candidate of each unit of `space`, the relative squared
/// error `|y' - y|^2 / |y|^2` of the initialised replacement's output against the original
/// term's, on the unit's inputs recorded while `original` runs `images`.
pub fn unit_errors(original: &GosModel, space: &GosSpace, images: &Tensor) -> Result<UnitErrors> {
    let inputs = tch::no_grad(|| original.unit_inputs(images));
    let terms: HashMap<String, &TermModule> = original.terms().into_iter().collect();
    let mut all = Vec::with_capacity(space.units().len());
    for unit in space.units() {
        let name = unit.name(space.network());
        let (Some(term), Some(x)) = (terms.get(&name), inputs.get(&name)) else {
            return Err(SupernetError::Incompatible(format!(
                "unit `{name}` is not in the model"
            )));
        };
        let reference = tch::no_grad(|| term.forward_t(x, false));
        let norm = reference
            .square()
            .sum(Kind::Float)
            .double_value(&[])
            .max(1e-12);
        let mut errors = Vec::with_capacity(unit.choices.len());
        for &choice in &unit.choices {
            let vs = nn::VarStore::new(x.device());
            let candidate =
                TermModule::new(&vs.root(), &unit.expr, choice, term.subsample as usize)?;
            let err = tch::no_grad(|| -> Result<f64> {
                let weights = init_weights(&term.stages[0].weight, &unit.expr, choice)?;
                for (stage, w) in candidate.stages.iter().zip(weights) {
                    stage.weight.shallow_clone().copy_(&w);
                }
                if let (Some(src), Some(dst)) = (&term.bias, &candidate.bias) {
                    dst.shallow_clone().copy_(src);
                }
                if let (Some(src), Some(dst)) = (&term.bn, &candidate.bn) {
                    copy_bn(src, dst);
                }
                let y = candidate.forward_t(x, false);
                Ok((y - &reference).square().sum(Kind::Float).double_value(&[]) / norm)
            })?;
            errors.push(err);
        }
        all.push(errors);
    }
    Ok(UnitErrors(all))
}

impl GosModel {
    /// The input of every term while running `images` (the block input for residual terms).
    fn unit_inputs(&self, images: &Tensor) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        let mut x = images.shallow_clone();
        for (layer, module) in self.network.layers.iter().zip(&self.layers) {
            let expr = LayerExpr::from_layer(layer);
            let name = |i: usize| unit_name(layer, &expr.terms[i]);
            match module {
                LayerModule::Single(_) => {
                    out.insert(name(0), x.shallow_clone());
                }
                LayerModule::Residual { a, .. } => {
                    out.insert(name(0), x.shallow_clone());
                    out.insert(name(1), a.forward_t(&x, false));
                    out.insert(name(2), x.shallow_clone());
                }
                _ => {}
            }
            x = forward_layer(module, &x, false);
        }
        out
    }
}

fn forward_layer(module: &LayerModule, x: &Tensor, train: bool) -> Tensor {
    match module {
        LayerModule::Single(t) => t.forward_t(x, train),
        LayerModule::Residual {
            a,
            b,
            shortcut,
            activation,
        } => activate(
            &(b.forward_t(&a.forward_t(x, train), train) + shortcut.forward_t(x, train)),
            *activation,
        ),
        LayerModule::Pool {
            kind,
            kernel,
            stride,
        } => {
            let pad = (kernel - 1) / 2;
            let (k, st) = ([*kernel, *kernel], [*stride, *stride]);
            match kind {
                PoolKind::Max => x.max_pool2d(k, st, [pad, pad], [1, 1], true),
                PoolKind::Average => x.avg_pool2d(k, st, [pad, pad], true, false, None),
            }
        }
        LayerModule::GlobalPool => x.adaptive_avg_pool2d([1, 1]),
        LayerModule::Identity => x.shallow_clone(),
        LayerModule::Zero { channels, stride } => {
            let s = x.size();
            let (h, w) = ((s[2] + stride - 1) / stride, (s[3] + stride - 1) / stride);
            Tensor::zeros([s[0], *channels, h, w], (x.kind(), x.device()))
        }
    }
}

/// Timing settings of host measurements.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimingSettings {
    /// Images per call.
    pub batch: usize,
    /// libtorch intra-op threads.
    pub threads: usize,
    /// Untimed calls first.
    pub warmup: usize,
    /// Timed calls; the median is reported.
    pub repeats: usize,
}

impl Default for TimingSettings {
    fn default() -> Self {
        Self {
            batch: 1,
            threads: 2,
            warmup: 5,
            repeats: 30,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time_ms(f: &dyn Fn(), settings: &TimingSettings) -> f64 {
    for _ in 0..settings.warmup {
        f();
    }
    let times = (0..settings.repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// Builds the "bring your own lookup table" of `space`: every unit's every candidate measured
/// alone through libtorch on this host (random weights and inputs of its shape), and the rest
/// of the network (pooling, additions, per-call overhead) as the whole original model's
/// median minus its units' `keep` entries.
pub fn measure_lut(
    original: &GosModel,
    space: &GosSpace,
    settings: &TimingSettings,
) -> Result<GosLut> {
    tch::set_num_threads(settings.threads as i32);
    let device = original.vs.device();
    let batch = settings.batch as i64;
    let mut entries = std::collections::BTreeMap::new();
    let mut keep_sum = 0.0;
    for unit in space.units() {
        let e = &unit.expr;
        let input = Tensor::randn(
            [
                batch,
                e.input.channels as i64,
                e.input.height as i64,
                e.input.width as i64,
            ],
            (Kind::Float, device),
        );
        let input = if e.spatial.is_empty() {
            input.flatten(1, -1)
        } else {
            input
        };
        for &choice in &unit.choices {
            let key = lut_key(e, &choice);
            if let Some(&ms) = entries.get(&key) {
                if choice == Replacement::Keep {
                    keep_sum += ms;
                }
                continue;
            }
            let vs = nn::VarStore::new(device);
            let module = TermModule::new(&vs.root(), e, choice, 1)?;
            let ms = tch::no_grad(|| time_ms(&|| drop(module.forward_t(&input, false)), settings));
            if choice == Replacement::Keep {
                keep_sum += ms;
            }
            entries.insert(key, ms);
        }
    }
    let i = original.network.input;
    let images = Tensor::randn(
        [batch, i.channels as i64, i.height as i64, i.width as i64],
        (Kind::Float, device),
    );
    let whole = tch::no_grad(|| {
        time_ms(
            &|| drop(original.forward_unchecked(&images, false)),
            settings,
        )
    });
    Ok(GosLut {
        batch: settings.batch,
        threads: settings.threads,
        rest_ms: (whole - keep_sum).max(0.0),
        entries,
    })
}

/// Median milliseconds per call of each model, measured in alternation (`rounds` rounds of
/// `repeats` calls each, model by model) so that load on the host hits all of them alike.
pub fn measure_interleaved(
    models: &[&GosModel],
    settings: &TimingSettings,
    rounds: usize,
) -> Vec<f64> {
    tch::set_num_threads(settings.threads as i32);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let Some(first) = models.first() else {
        return Vec::new();
    };
    let i = first.network.input;
    let images = Tensor::randn(
        [
            settings.batch as i64,
            i.channels as i64,
            i.height as i64,
            i.width as i64,
        ],
        (Kind::Float, first.vs.device()),
    );
    tch::no_grad(|| {
        for m in models {
            for _ in 0..settings.warmup {
                drop(m.forward_unchecked(&images, false));
            }
        }
        for _ in 0..rounds.max(1) {
            for (m, t) in models.iter().zip(times.iter_mut()) {
                for _ in 0..settings.repeats.max(1) {
                    let start = Instant::now();
                    drop(m.forward_unchecked(&images, false));
                    t.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    });
    times.into_iter().map(median).collect()
}

/// Where [`adapt`] takes latencies from.
#[derive(Debug)]
pub enum LatencySource {
    /// Measure a [`GosLut`] on this host first (batch and threads of the adapt timing).
    Host,
    /// A table measured before, or any cost model.
    Given(dynas_search::gos::GosLatency),
}

/// Settings of [`adapt`] (validate with [`AdaptSettings::check`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptSettings {
    /// Bounds of the candidate enumeration.
    pub candidates: dynas_search::gos::CandidateParams,
    /// Distinct plans NSGA-II evaluates.
    pub search_evaluations: usize,
    /// Seed of the search.
    pub seed: u64,
    /// Largest accepted drop of validation top-1 after fine-tuning, in points (percent);
    /// the test split is only reported, never used to choose.
    pub accuracy_budget: f64,
    /// Plans fine-tuned at most: the bisection over the front's plans (by predicted latency)
    /// for the fastest one within the budget stops after this many probes.
    pub max_attempts: usize,
    /// Training images whose unit inputs calibrate the accuracy proxy.
    pub calibration_images: usize,
    /// Timing of the lookup table.
    pub timing: TimingSettings,
    /// Fine-tuning (distillation from the original).
    pub fine_tune: TrainSettings,
}

impl Default for AdaptSettings {
    fn default() -> Self {
        Self {
            candidates: dynas_search::gos::CandidateParams::default(),
            search_evaluations: 3000,
            seed: 0,
            accuracy_budget: 1.0,
            max_attempts: 4,
            calibration_images: 256,
            timing: TimingSettings::default(),
            fine_tune: TrainSettings {
                epochs: 1,
                learning_rate: 0.01,
                ..TrainSettings::default()
            },
        }
    }
}

/// Validated [`AdaptSettings`].
#[derive(Clone, Debug)]
pub struct CheckedAdaptSettings {
    settings: AdaptSettings,
    candidates: dynas_search::gos::CandidateConfig,
    fine_tune: CheckedTrainSettings,
}

impl AdaptSettings {
    /// Checks every field.
    pub fn check(self) -> Result<CheckedAdaptSettings> {
        let candidates = self.candidates.clone().check()?;
        let fine_tune = self.fine_tune.clone().check()?;
        if self.search_evaluations < 2 || self.max_attempts == 0 || self.calibration_images == 0 {
            return Err(SupernetError::invalid(
                "search_evaluations/max_attempts/calibration_images",
                "need at least 2 evaluations, 1 attempt and 1 calibration image",
            ));
        }
        if !(self.accuracy_budget.is_finite() && self.accuracy_budget >= 0.0) {
            return Err(SupernetError::invalid(
                "accuracy_budget",
                "must be finite and non-negative",
            ));
        }
        if self.timing.batch == 0 || self.timing.threads == 0 || self.timing.repeats == 0 {
            return Err(SupernetError::invalid(
                "timing",
                "batch, threads and repeats must be at least 1",
            ));
        }
        Ok(CheckedAdaptSettings {
            settings: self,
            candidates,
            fine_tune,
        })
    }
}

impl CheckedAdaptSettings {
    /// The settings.
    pub fn settings(&self) -> &AdaptSettings {
        &self.settings
    }
}

/// One plan [`adapt`] fine-tuned.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// The replacements.
    pub plan: GosPlan,
    /// Predicted latency, ms.
    pub predicted_ms: f64,
    /// Summed accuracy proxy.
    pub error_proxy: f64,
    /// Validation top-1 (percent) right after initialisation.
    pub validation_top1_init: f64,
    /// Validation top-1 (percent) after fine-tuning: what the budget is judged on.
    pub validation_top1_fine_tuned: f64,
    /// Test top-1 (percent) after initialisation, before fine-tuning.
    pub test_top1_init: f64,
    /// Test top-1 (percent) after fine-tuning.
    pub test_top1_fine_tuned: f64,
}

/// What [`adapt`] did and found.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptReport {
    /// Name of the latency source.
    pub latency_source: String,
    /// Replaceable units and the candidates each had.
    pub units: Vec<(String, Vec<String>)>,
    /// The lookup table, when measured or given.
    pub lut: Option<GosLut>,
    /// Predicted latency of the original, ms.
    pub original_predicted_ms: f64,
    /// Test top-1 of the original, percent.
    pub original_test_top1: f64,
    /// Validation top-1 of the original, percent.
    pub original_validation_top1: f64,
    /// Size of the search's Pareto front.
    pub front_size: usize,
    /// Every plan fine-tuned, in order.
    pub attempts: Vec<Attempt>,
    /// Index into `attempts` of the returned model.
    pub chosen: usize,
    /// Whether the chosen model is within the accuracy budget on the validation set.
    pub within_budget: bool,
}

/// Data [`adapt`] works on.
#[derive(Debug, Clone, Copy)]
pub struct AdaptData<'a> {
    /// Fine-tuning and calibration images.
    pub train: &'a Dataset,
    /// Held-out images that rank plans before fine-tuning.
    pub validation: &'a Dataset,
    /// Test images for the reported accuracies.
    pub test: &'a Dataset,
    /// Normalisation of all three.
    pub norm: &'a Normalization,
}

/// GOS end to end: enumerate the replacements of `original`'s operators, measure (or take)
/// their latencies, calibrate the accuracy proxy, search plans with NSGA-II for latency x
/// proxy, then bisect the front's plans that are predicted faster than the original (ordered
/// by predicted latency) for the fastest one that, fine-tuned with distillation from
/// `original`, stays within `accuracy_budget` of its validation top-1 (at most
/// `max_attempts` probes). Returns the fastest probe within the budget, else the most accurate
/// probe ([`AdaptReport::within_budget`] says which). Test accuracies are only reported.
pub fn adapt(
    original: &GosModel,
    data: AdaptData<'_>,
    latency: LatencySource,
    settings: &CheckedAdaptSettings,
) -> Result<(GosModel, AdaptReport)> {
    use dynas_search::gos::GosLatency;
    use dynas_search::{Budget, Executor, Nsga2, Nsga2Config};
    let s = &settings.settings;
    let space = GosSpace::new(original.network.clone(), &settings.candidates)?;
    let device = original.vs.device();
    let mut rng = dynas_space::seeded_rng(s.seed);
    let calibration: Vec<usize> = (0..data.train.len().min(s.calibration_images)).collect();
    let calib = data.train.batch(
        &calibration,
        data.norm,
        &Augmentation::NONE,
        &mut rng,
        device,
    );
    let errors = unit_errors(original, &space, &calib.images)?;
    let (latency, lut, source) = match latency {
        LatencySource::Host => {
            let lut = measure_lut(original, &space, &s.timing)?;
            (
                GosLatency::Table(lut.clone()),
                Some(lut),
                "host lookup table".to_string(),
            )
        }
        LatencySource::Given(GosLatency::Table(lut)) => (
            GosLatency::Table(lut.clone()),
            Some(lut),
            "given lookup table".to_string(),
        ),
        LatencySource::Given(other) => {
            let name = format!("{other:?}");
            (other, None, name)
        }
    };
    let units = space
        .units()
        .iter()
        .map(|u| {
            (
                u.name(space.network()),
                u.choices.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let problem = dynas_search::GosProblem::new(space.clone(), latency, errors)?;
    let original_predicted_ms = problem.latency_ms(&space.original())?;
    let result = Executor::new(
        &problem,
        Nsga2::new(Nsga2Config::default())?,
        Budget::evaluations(s.search_evaluations)?,
    )
    .seed(s.seed)
    .run()?;
    let mut front: Vec<_> = result.front.points.clone();
    front.sort_by(|a, b| a.values[0].total_cmp(&b.values[0]));
    let original_test_top1 = 100.0 * accuracy(original, data.test, data.norm, 256);
    let original_validation_top1 = 100.0 * accuracy(original, data.validation, data.norm, 256);
    // Plans predicted faster than the original, fastest first. Along a front, a faster plan
    // approximates more, so the fastest plan within the budget is found by bisection, each
    // probe fine-tuned and judged on the validation split (initialisation alone says little:
    // aggressive factorisations start near chance and recover under distillation).
    let candidates: Vec<(f64, f64, GosPlan)> = front
        .iter()
        .filter(|p| p.values[0] < original_predicted_ms)
        .map(|p| Ok((p.values[0], p.values[1], space.plan(&p.genotype)?)))
        .collect::<Result<_>>()?;
    let meets = |top1: f64| top1 >= original_validation_top1 - s.accuracy_budget;
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut models: Vec<GosModel> = Vec::new();
    let (mut lo, mut hi) = (0usize, candidates.len());
    while attempts.len() < s.max_attempts && lo < hi {
        let probe = lo + (hi - lo) / 2;
        let (predicted_ms, error_proxy, plan) = candidates[probe].clone();
        let mut model = original.adapted(plan.clone())?;
        let validation_top1_init = 100.0 * accuracy(&model, data.validation, data.norm, 256);
        let test_top1_init = 100.0 * accuracy(&model, data.test, data.norm, 256);
        train(
            &mut model,
            Some(original),
            data.train,
            data.norm,
            &settings.fine_tune,
        )?;
        let validation_top1_fine_tuned = 100.0 * accuracy(&model, data.validation, data.norm, 256);
        let test_top1_fine_tuned = 100.0 * accuracy(&model, data.test, data.norm, 256);
        if meets(validation_top1_fine_tuned) {
            hi = probe;
        } else {
            lo = probe + 1;
        }
        attempts.push(Attempt {
            plan,
            predicted_ms,
            error_proxy,
            validation_top1_init,
            validation_top1_fine_tuned,
            test_top1_init,
            test_top1_fine_tuned,
        });
        models.push(model);
    }
    // The fastest plan within the budget, else the most accurate one tried.
    let Some(chosen) = (0..attempts.len())
        .filter(|&i| meets(attempts[i].validation_top1_fine_tuned))
        .min_by(|&a, &b| {
            attempts[a]
                .predicted_ms
                .total_cmp(&attempts[b].predicted_ms)
        })
        .or_else(|| {
            (0..attempts.len()).max_by(|&a, &b| {
                attempts[a]
                    .validation_top1_fine_tuned
                    .total_cmp(&attempts[b].validation_top1_fine_tuned)
            })
        })
    else {
        return Err(SupernetError::Incompatible(format!(
            "no plan on the front ({} points) is predicted faster than the original ({:.4} ms)",
            front.len(),
            original_predicted_ms
        )));
    };
    let within_budget = meets(attempts[chosen].validation_top1_fine_tuned);
    let model = models.swap_remove(chosen);
    Ok((
        model,
        AdaptReport {
            latency_source: source,
            units,
            lut,
            original_predicted_ms,
            original_test_top1,
            original_validation_top1,
            front_size: front.len(),
            attempts,
            chosen,
            within_budget,
        },
    ))
}
