//! GOS on libtorch: runnable models built from a network description and a replacement plan
//! ([`crate::search`]), weight initialisation of replacements from the original operator,
//! the host-measured lookup table of every candidate operator, per-unit accuracy proxies,
//! training, fine-tuning with distillation from the original, interleaved latency measurement,
//! and safetensors files that carry their network description.
//!
//! Supported layers: plain convolutions (any kernel, stride, dilation, groups), residual
//! blocks, linear layers, pooling, global average pooling, identities and zeros. MBConv blocks
//! are already efficient and are left to the supernet.

use std::collections::HashMap;
use std::path::Path;

use crate::search::{ChannelSplit, Factorisation, GosPlan, Replacement};
use dynas_space::{Activation, Layer, LayerExpr, Network, OpExpr, OpKind, PoolKind, TensorShape};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use dynas_supernet::checkpoint::{TensorFile, write_tensors};
use dynas_supernet::elastic::activate;
use dynas_supernet::{Result, SupernetError};

mod adapt;
mod fold;
mod timing;
mod train;

pub use adapt::{
    AdaptData, AdaptReport, AdaptSettings, Attempt, CheckedAdaptSettings, LatencySource, adapt,
};
pub use fold::FoldedModel;
pub use timing::{
    LutCheck, ModelForm, TimingSettings, measure_interleaved, measure_lut, measure_lut_with_checks,
};
pub use train::{CheckedTrainSettings, TrainSettings, accuracy, train, unit_errors};

/// One convolution or dense product of a term (no epilogue).
#[derive(Debug)]
struct Stage {
    weight: Tensor,
    stride: i64,
    padding: [i64; 2],
    dilation: i64,
    groups: i64,
    dense: bool,
    /// Only in a folded model: the term's bias and batch norm folded in (see [`fold`]).
    bias: Option<Tensor>,
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
            bias: None,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        if self.dense {
            x.flatten(1, -1).linear(&self.weight, self.bias.as_ref())
        } else {
            x.conv2d(
                &self.weight,
                self.bias.as_ref(),
                [self.stride, self.stride],
                self.padding,
                [self.dilation, self.dilation],
                self.groups,
            )
        }
    }
}

/// Batch-norm epsilon of every GOS model (kept in one place: folding needs it).
const BN_EPS: f64 = 1e-5;

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
        if parts.is_empty() {
            return Err(SupernetError::Incompatible(format!(
                "term `{}` has no convolution or dense product",
                term.name
            )));
        }
        let stages = parts
            .iter()
            .enumerate()
            .map(|(i, t)| Stage::new(p, i, t))
            .collect();
        let cout = term.out_channels() as i64;
        let e = term.epilogue;
        let bias = e.bias.then(|| p.zeros("bias", &[cout]));
        let bn = e.batch_norm.then(|| {
            let config = nn::BatchNormConfig {
                eps: BN_EPS,
                ..Default::default()
            };
            nn::batch_norm2d(p / "bn", cout, config)
        });
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
        check_input(self.network.input, images)?;
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
    /// [`crate::search::Replacement::initialisation`]); biases and batch norms are copied.
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
        dynas_space::files::write_output(&side, json).map_err(|e| SupernetError::io(side, e))
    }

    /// Loads a model written by [`GosModel::save`] (the description comes from the file's
    /// metadata; every tensor is checked for presence and shape).
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let file = TensorFile::open(path)?;
        let description: ModelDescription = file.meta_json(DESCRIPTION_KEY)?;
        let model = Self::new(description.network, description.plan, device)?;
        dynas_supernet::checkpoint::copy_vars(&file, &model.vs, "")?;
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

/// Checks that `images` is a batch `[B, C, H, W]` of the network's `input`.
fn check_input(input: TensorShape, images: &Tensor) -> Result<()> {
    let size = images.size();
    let expected = [
        input.channels as i64,
        input.height as i64,
        input.width as i64,
    ];
    if size.len() != 4 || size[1..] != expected {
        return Err(SupernetError::Incompatible(format!(
            "input of shape {size:?}, the model takes [B, {}, {}, {}]",
            input.channels, input.height, input.width
        )));
    }
    Ok(())
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
