//! The weight-sharing supernet of an [`MbConvSpace`] and standalone subnets extracted from it.
//!
//! The supernet owns one elastic module per *layer name* of the space's largest network
//! (`first_conv`, `first_block`, `<stage>.block<j>`, `final_expand`, `global_pool`,
//! `feature_mix`, `classifier`; see `dynas_space::mbconv`). A subnet is run by walking the
//! layers of its [`Network`] and running each named module at that layer's geometry
//! (channels, expanded channels, kernel, stride, squeeze channels): blocks beyond a stage's
//! depth are simply absent (depth skipping), channel choices of every kind (widths, expand
//! ratios: GoldenNAS's dynamic channel scaling) slice the first channels of the shared tensors,
//! kernels are centre crops (optionally transformed), and the input is resized to the
//! subnet's resolution.
//!
//! Parameter paths mirror layer names: `stage1.block2.dw.conv.weight`,
//! `stage1.block2.dw.conv.7to5_matrix`, `first_conv.bn.running_mean`, `classifier.weight`, ...

use std::collections::HashMap;
use std::path::Path;

use dynas_space::{Genotype, Layer, MbConvSpace, Network, OpKind, SearchSpace};
use tch::{Device, Kind, Tensor, nn};

use crate::elastic::{BnMode, ElasticBatchNorm, ElasticConv2d, ElasticLinear, ElasticSe, activate};
use crate::error::{Result, SupernetError};

/// Checked construction options of a [`Supernet`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SupernetConfig {
    kernel_transform: bool,
    bn_momentum: f64,
    bn_eps: f64,
}

impl Default for SupernetConfig {
    fn default() -> Self {
        Self {
            kernel_transform: true,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
        }
    }
}

impl SupernetConfig {
    /// Validated options: `bn_momentum` in `(0, 1]`, `bn_eps > 0`.
    pub fn new(kernel_transform: bool, bn_momentum: f64, bn_eps: f64) -> Result<Self> {
        if !(bn_momentum > 0.0 && bn_momentum <= 1.0) {
            return Err(SupernetError::invalid(
                "bn_momentum",
                format!("{bn_momentum} is not in (0, 1]"),
            ));
        }
        if !(bn_eps > 0.0 && bn_eps.is_finite()) {
            return Err(SupernetError::invalid(
                "bn_eps",
                format!("{bn_eps} is not a positive number"),
            ));
        }
        Ok(Self {
            kernel_transform,
            bn_momentum,
            bn_eps,
        })
    }

    /// Whether depthwise kernels use once-for-all's kernel transformation matrices.
    pub fn kernel_transform(&self) -> bool {
        self.kernel_transform
    }

    /// Batch-norm momentum during training.
    pub fn bn_momentum(&self) -> f64 {
        self.bn_momentum
    }

    /// Batch-norm epsilon.
    pub fn bn_eps(&self) -> f64 {
        self.bn_eps
    }
}

/// Conv + optional batch norm.
#[derive(Debug)]
struct ConvBn {
    conv: ElasticConv2d,
    bn: Option<ElasticBatchNorm>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path<'_>,
        max_in: usize,
        max_out: usize,
        kernels: &[usize],
        depthwise: bool,
        bias: bool,
        batch_norm: bool,
        transform: bool,
        cfg: &SupernetConfig,
    ) -> Result<Self> {
        Ok(Self {
            conv: ElasticConv2d::new(
                &(p / "conv"),
                max_in,
                max_out,
                kernels,
                depthwise,
                bias,
                transform,
            )?,
            bn: batch_norm
                .then(|| ElasticBatchNorm::new(&(p / "bn"), max_out, cfg.bn_momentum, cfg.bn_eps)),
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        out: usize,
        k: usize,
        stride: usize,
        mode: BnMode,
    ) -> Result<Tensor> {
        let y = self.conv.forward(x, out as i64, k as i64, stride as i64)?;
        match &self.bn {
            Some(bn) => bn.forward(&y, mode),
            None => Ok(y),
        }
    }

    /// Copies the active weights of `self` (for `out`, `inp`, `k`) into the full tensors of
    /// `dst` (built at exactly that size).
    fn copy_active_into(&self, dst: &ConvBn, out: usize, inp: usize, k: usize) -> Result<()> {
        let (out, inp, k) = (out as i64, inp as i64, k as i64);
        copy(&dst.conv_weight(), &self.conv.active_weight(out, inp, k)?)?;
        if let (Some(d), Some(s)) = (dst.conv.active_bias(out), self.conv.active_bias(out)) {
            copy(&d, &s)?;
        }
        if let (Some(d), Some(s)) = (&dst.bn, &self.bn) {
            copy_bn(d, s, out)?;
        }
        Ok(())
    }

    fn conv_weight(&self) -> Tensor {
        let k = *self.conv.kernel_choices().last().unwrap_or(&1) as i64;
        self.conv
            .active_weight(self.conv.max_out() as i64, self.conv.max_in() as i64, k)
            .expect("full-size weight of an exact-size conv")
    }
}

fn copy(dst: &Tensor, src: &Tensor) -> Result<()> {
    if dst.size() != src.size() {
        return Err(SupernetError::Incompatible(format!(
            "cannot copy a {:?} tensor into a {:?} one",
            src.size(),
            dst.size()
        )));
    }
    tch::no_grad(|| {
        let mut d = dst.shallow_clone();
        d.copy_(src);
    });
    Ok(())
}

fn copy_bn(dst: &ElasticBatchNorm, src: &ElasticBatchNorm, c: i64) -> Result<()> {
    for (d, s) in dst.tensors(c).iter().zip(src.tensors(c).iter()) {
        copy(d, s)?;
    }
    Ok(())
}

impl ElasticBatchNorm {
    /// Views of weight, bias, running mean and running variance of the first `c` channels.
    fn tensors(&self, c: i64) -> [Tensor; 4] {
        let (rm, rv) = self.running_stats(c);
        let (w, b) = self.affine(c);
        [w, b, rm, rv]
    }
}

/// An elastic inverted-residual block.
#[derive(Debug)]
struct MbBlock {
    expand: Option<ConvBn>,
    dw: ConvBn,
    se: Option<ElasticSe>,
    project: ConvBn,
    /// 1x1 projection of the (average-pooled when strided) input for blocks that change
    /// width, as AttentiveNAS builds them.
    shortcut: Option<ElasticConv2d>,
}

impl MbBlock {
    fn new(
        p: &nn::Path<'_>,
        max: &Layer,
        kernels: &[usize],
        transform: bool,
        shortcut: bool,
        cfg: &SupernetConfig,
    ) -> Result<Self> {
        let (cin, mid, cout) = (max.input.channels, max.mid_channels, max.out_channels);
        if max.groups > 1 {
            return Err(SupernetError::Incompatible(format!(
                "block `{}` has grouped 1x1 convs, which the supernet does not support",
                max.name
            )));
        }
        Ok(Self {
            shortcut: if shortcut {
                Some(ElasticConv2d::new(
                    &(p / "shortcut"),
                    cin,
                    cout,
                    &[1],
                    false,
                    false,
                    false,
                )?)
            } else {
                None
            },
            expand: if max.has_expansion() {
                Some(ConvBn::new(
                    &(p / "expand"),
                    cin,
                    mid,
                    &[1],
                    false,
                    false,
                    true,
                    false,
                    cfg,
                )?)
            } else {
                None
            },
            dw: ConvBn::new(
                &(p / "dw"),
                mid,
                mid,
                kernels,
                true,
                false,
                true,
                transform,
                cfg,
            )?,
            se: match max.se_channels {
                Some(s) => Some(ElasticSe::new(&(p / "se"), mid, s)?),
                None => None,
            },
            project: ConvBn::new(
                &(p / "project"),
                mid,
                cout,
                &[1],
                false,
                false,
                true,
                false,
                cfg,
            )?,
        })
    }

    fn forward(&self, x: &Tensor, l: &Layer, mode: BnMode) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        if l.has_expansion() {
            let expand = self.expand.as_ref().ok_or_else(|| {
                SupernetError::Incompatible(format!("block `{}` has no expansion conv", l.name))
            })?;
            h = activate(
                &expand.forward(&h, l.mid_channels, 1, 1, mode)?,
                l.activation,
            );
        }
        h = activate(
            &self
                .dw
                .forward(&h, l.mid_channels, l.kernel, l.stride, mode)?,
            l.activation,
        );
        if let Some(s) = l.se_channels {
            let se = self.se.as_ref().ok_or_else(|| {
                SupernetError::Incompatible(format!("block `{}` has no SE module", l.name))
            })?;
            h = se.forward(&h, s as i64)?;
        }
        h = self.project.forward(&h, l.out_channels, 1, 1, mode)?;
        if l.has_identity_shortcut() {
            h += x;
        } else if l.has_projection_shortcut() {
            let conv = self.shortcut.as_ref().ok_or_else(|| {
                SupernetError::Incompatible(format!("block `{}` has no shortcut conv", l.name))
            })?;
            let s = l.stride as i64;
            let pooled = if s > 1 {
                x.avg_pool2d([s, s], [s, s], [0, 0], true, false, None::<i64>)
            } else {
                x.shallow_clone()
            };
            h += conv.forward(&pooled, l.out_channels as i64, 1, 1)?;
        }
        Ok(h)
    }

    fn copy_active_into(&self, dst: &MbBlock, l: &Layer) -> Result<()> {
        if l.has_expansion()
            && let (Some(s), Some(d)) = (&self.expand, &dst.expand)
        {
            s.copy_active_into(d, l.mid_channels, l.input.channels, 1)?;
        }
        self.dw
            .copy_active_into(&dst.dw, l.mid_channels, l.mid_channels, l.kernel)?;
        if let (Some(sq), Some(s), Some(d)) = (l.se_channels, &self.se, &dst.se) {
            let (sq, mid) = (sq as i64, l.mid_channels as i64);
            copy(
                &d.reduce.active_weight(sq, mid, 1)?,
                &s.reduce.active_weight(sq, mid, 1)?,
            )?;
            copy(
                &d.expand.active_weight(mid, sq, 1)?,
                &s.expand.active_weight(mid, sq, 1)?,
            )?;
            for (dc, sc, o) in [(&d.reduce, &s.reduce, sq), (&d.expand, &s.expand, mid)] {
                if let (Some(db), Some(sb)) = (dc.active_bias(o), sc.active_bias(o)) {
                    copy(&db, &sb)?;
                }
            }
        }
        if l.has_projection_shortcut()
            && let (Some(s), Some(d)) = (&self.shortcut, &dst.shortcut)
        {
            let (o, i) = (l.out_channels as i64, l.input.channels as i64);
            copy(&d.active_weight(o, i, 1)?, &s.active_weight(o, i, 1)?)?;
        }
        self.project
            .copy_active_into(&dst.project, l.out_channels, l.mid_channels, 1)
    }
}

/// The module behind one layer name.
#[derive(Debug)]
enum Op {
    Conv(ConvBn),
    MbConv(Box<MbBlock>),
    GlobalPool,
    Linear(ElasticLinear),
}

/// Layer-name -> module table with the forward pass shared by supernets and subnets.
#[derive(Debug)]
struct Body {
    ops: Vec<(String, Op)>,
    index: HashMap<String, usize>,
}

fn layer_path<'a>(root: &nn::Path<'a>, name: &str) -> nn::Path<'a> {
    let mut parts = name.split('.');
    let first = parts.next().unwrap_or(name);
    parts.fold(root / first, |p, part| &p / part)
}

impl Body {
    /// Builds modules sized for each layer of `max`; `kernels(name)` gives the kernel choices of
    /// depthwise convs (transformation matrices are built when there are several and
    /// `transform`).
    fn build(
        root: &nn::Path<'_>,
        max: &Network,
        kernels: &dyn Fn(&Layer) -> Vec<usize>,
        transform: bool,
        shortcut: &dyn Fn(&Layer) -> bool,
        cfg: &SupernetConfig,
    ) -> Result<Self> {
        let mut ops = Vec::with_capacity(max.layers.len());
        let mut index = HashMap::new();
        for layer in &max.layers {
            let p = layer_path(root, &layer.name);
            let op = match layer.kind {
                OpKind::Conv => Op::Conv(ConvBn::new(
                    &p,
                    layer.input.channels,
                    layer.out_channels,
                    &[layer.kernel],
                    layer.groups > 1,
                    layer.bias,
                    layer.batch_norm,
                    false,
                    cfg,
                )?),
                OpKind::MbConv => Op::MbConv(Box::new(MbBlock::new(
                    &p,
                    layer,
                    &kernels(layer),
                    transform,
                    shortcut(layer),
                    cfg,
                )?)),
                OpKind::GlobalAvgPool => Op::GlobalPool,
                OpKind::Linear => Op::Linear(ElasticLinear::new(
                    &p,
                    layer.input.channels,
                    layer.out_channels,
                )),
                other => {
                    return Err(SupernetError::Incompatible(format!(
                        "layer `{}`: {other:?} layers are not supported by the supernet",
                        layer.name
                    )));
                }
            };
            if index.insert(layer.name.clone(), ops.len()).is_some() {
                return Err(SupernetError::Incompatible(format!(
                    "layer name `{}` appears twice",
                    layer.name
                )));
            }
            ops.push((layer.name.clone(), op));
        }
        Ok(Self { ops, index })
    }

    fn op(&self, layer: &Layer) -> Result<&Op> {
        self.index
            .get(&layer.name)
            .map(|&i| &self.ops[i].1)
            .ok_or_else(|| {
                SupernetError::Incompatible(format!("no module for layer `{}`", layer.name))
            })
    }

    /// Checks `x` against the network input and resizes it to the network's resolution.
    fn prepare_input(net: &Network, x: &Tensor) -> Result<Tensor> {
        let size = x.size();
        if size.len() != 4 || size[1] != net.input.channels as i64 {
            return Err(SupernetError::Incompatible(format!(
                "input of shape {size:?} does not match the network input {:?}",
                net.input
            )));
        }
        let (h, w) = (net.input.height as i64, net.input.width as i64);
        Ok(if size[2] != h || size[3] != w {
            x.upsample_bilinear2d([h, w], false, None, None)
        } else {
            x.shallow_clone()
        })
    }

    /// Runs one layer of a network.
    fn forward_layer(&self, layer: &Layer, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        if x.dim() < 2 || x.size()[1] != layer.input.channels as i64 {
            return Err(SupernetError::Incompatible(format!(
                "layer `{}` expects {} input channels, got shape {:?}",
                layer.name,
                layer.input.channels,
                x.size()
            )));
        }
        Ok(match self.op(layer)? {
            Op::Conv(c) => activate(
                &c.forward(x, layer.out_channels, layer.kernel, layer.stride, mode)?,
                layer.activation,
            ),
            Op::MbConv(b) => b.forward(x, layer, mode)?,
            Op::GlobalPool => x.adaptive_avg_pool2d([1, 1]),
            Op::Linear(l) => {
                let flat = if x.dim() > 2 {
                    x.flatten(1, -1)
                } else {
                    x.shallow_clone()
                };
                l.forward(&flat, layer.out_channels as i64)?
            }
        })
    }

    fn forward(&self, net: &Network, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let mut x = Self::prepare_input(net, x)?;
        for layer in &net.layers {
            x = self.forward_layer(layer, &x, mode)?;
        }
        Ok(x)
    }

    /// Batch norms a network uses: `(path, module, active channels)`.
    fn batch_norms<'a>(
        &'a self,
        net: &Network,
    ) -> Result<Vec<(String, &'a ElasticBatchNorm, i64)>> {
        let mut out = Vec::new();
        for layer in &net.layers {
            let n = &layer.name;
            match self.op(layer)? {
                Op::Conv(c) => {
                    if let Some(bn) = &c.bn {
                        out.push((format!("{n}.bn"), bn, layer.out_channels as i64));
                    }
                }
                Op::MbConv(b) => {
                    let mid = layer.mid_channels as i64;
                    if layer.has_expansion()
                        && let Some(e) = &b.expand
                        && let Some(bn) = &e.bn
                    {
                        out.push((format!("{n}.expand.bn"), bn, mid));
                    }
                    if let Some(bn) = &b.dw.bn {
                        out.push((format!("{n}.dw.bn"), bn, mid));
                    }
                    if let Some(bn) = &b.project.bn {
                        out.push((format!("{n}.project.bn"), bn, layer.out_channels as i64));
                    }
                }
                Op::GlobalPool | Op::Linear(_) => {}
            }
        }
        Ok(out)
    }

    /// Copies the weights `net` uses from `self` into `dst` (built for exactly `net`).
    fn copy_into(&self, dst: &Body, net: &Network) -> Result<()> {
        for layer in &net.layers {
            match (self.op(layer)?, dst.op(layer)?) {
                (Op::Conv(s), Op::Conv(d)) => {
                    let inp = if layer.groups > 1 {
                        layer.out_channels
                    } else {
                        layer.input.channels
                    };
                    s.copy_active_into(d, layer.out_channels, inp, layer.kernel)?
                }
                (Op::MbConv(s), Op::MbConv(d)) => s.copy_active_into(d, layer)?,
                (Op::GlobalPool, Op::GlobalPool) => {}
                (Op::Linear(s), Op::Linear(d)) => {
                    let (o, i) = (layer.out_channels as i64, layer.input.channels as i64);
                    let (sw, sb) = s.active(o, i)?;
                    let (dw, db) = d.active(o, i)?;
                    copy(&dw, &sw)?;
                    copy(&db, &sb)?;
                }
                _ => {
                    return Err(SupernetError::Incompatible(format!(
                        "layer `{}` has different kinds in source and destination",
                        layer.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Running statistics of the batch norms one subnet uses, by parameter path.
#[derive(Debug)]
pub struct BnStats {
    /// `(batch-norm path, running mean, running variance)`, copies detached from the supernet.
    pub entries: Vec<(String, Tensor, Tensor)>,
}

impl Clone for BnStats {
    fn clone(&self) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(n, m, v)| (n.clone(), m.copy(), v.copy()))
                .collect(),
        }
    }
}

/// A weight-sharing supernet over every subnet of an [`MbConvSpace`].
#[derive(Debug)]
pub struct Supernet {
    vs: nn::VarStore,
    space: MbConvSpace,
    body: Body,
    config: SupernetConfig,
}

impl Supernet {
    /// Builds the supernet of `space` on `device`, initialised from libtorch's generator (seed
    /// it with `tch::manual_seed` for reproducible weights).
    pub fn new(space: MbConvSpace, config: SupernetConfig, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let largest = space.decode(&space.largest())?;
        let stage_kernels: HashMap<String, Vec<usize>> = space
            .stages()
            .iter()
            .map(|s| (s.name.clone(), s.kernels.clone()))
            .collect();
        let kernels = |layer: &Layer| -> Vec<usize> {
            layer
                .name
                .split_once('.')
                .and_then(|(stage, _)| stage_kernels.get(stage).cloned())
                .unwrap_or_else(|| vec![layer.kernel])
        };
        // A block may change width (and so need its projection shortcut) when it is the first
        // of its stage or when the largest network already changes width there.
        let shortcut = |l: &Layer| {
            l.projection_shortcut && (l.has_projection_shortcut() || l.name.ends_with("block0"))
        };
        let body = Body::build(
            &vs.root(),
            &largest,
            &kernels,
            config.kernel_transform,
            &shortcut,
            &config,
        )?;
        Ok(Self {
            vs,
            space,
            body,
            config,
        })
    }

    /// The search space.
    pub fn space(&self) -> &MbConvSpace {
        &self.space
    }

    /// Construction options.
    pub fn config(&self) -> &SupernetConfig {
        &self.config
    }

    /// The variables (parameters and batch-norm buffers).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable access to the variables (e.g. to load weights).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The network of a genotype.
    pub fn network(&self, genotype: &Genotype) -> Result<Network> {
        Ok(self.space.decode(genotype)?)
    }

    /// Runs the subnet described by `net` (a network of this space) on `x` (`[B, C, H, W]`,
    /// resized to the subnet's resolution when needed); returns logits.
    pub fn forward(&self, net: &Network, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.body.forward(net, x, mode)
    }

    /// Runs the subnet of `genotype`.
    pub fn forward_genotype(
        &self,
        genotype: &Genotype,
        x: &Tensor,
        mode: BnMode,
    ) -> Result<Tensor> {
        let net = self.network(genotype)?;
        self.forward(&net, x, mode)
    }

    /// Builds a standalone network for `net` with its weights and batch-norm statistics copied
    /// out of the supernet (kernel transformations applied), on the supernet's device.
    pub fn extract(&self, net: &Network) -> Result<Subnet> {
        let vs = nn::VarStore::new(self.device());
        let body = Body::build(
            &vs.root(),
            net,
            &|l: &Layer| vec![l.kernel],
            false,
            &Layer::has_projection_shortcut,
            &self.config,
        )?;
        self.body.copy_into(&body, net)?;
        Ok(Subnet {
            vs,
            body,
            network: net.clone(),
        })
    }

    /// [`Supernet::extract`] for a genotype.
    pub fn extract_genotype(&self, genotype: &Genotype) -> Result<Subnet> {
        self.extract(&self.network(genotype)?)
    }

    /// Copies of the running statistics of the batch norms `net` uses.
    pub fn bn_stats(&self, net: &Network) -> Result<BnStats> {
        Ok(BnStats {
            entries: self
                .body
                .batch_norms(net)?
                .into_iter()
                .map(|(name, bn, c)| {
                    let (m, v) = bn.running_stats(c);
                    (name, m.detach().copy(), v.detach().copy())
                })
                .collect(),
        })
    }

    /// Writes stored running statistics back into the supernet (the Dynamic-OFA switch:
    /// no recalibration needed).
    pub fn load_bn_stats(&self, net: &Network, stats: &BnStats) -> Result<()> {
        let bns = self.body.batch_norms(net)?;
        if bns.len() != stats.entries.len() {
            return Err(SupernetError::Incompatible(format!(
                "statistics for {} batch norms, the subnet has {}",
                stats.entries.len(),
                bns.len()
            )));
        }
        for ((name, bn, c), (sname, m, v)) in bns.iter().zip(&stats.entries) {
            if name != sname {
                return Err(SupernetError::Incompatible(format!(
                    "statistics for `{sname}` where the subnet has `{name}`"
                )));
            }
            let (rm, rv) = bn.running_stats(*c);
            copy(&rm, m)?;
            copy(&rv, v)?;
        }
        Ok(())
    }

    /// Adaptive batch norm: re-estimates the running statistics of the batch norms `net` uses
    /// as the average of the batch statistics over the given batches (no gradients).
    /// Returns the number of batches used.
    pub fn recalibrate_bn(
        &self,
        net: &Network,
        batches: impl IntoIterator<Item = crate::data::Batch>,
    ) -> Result<usize> {
        let mut n = 0usize;
        tch::no_grad(|| -> Result<()> {
            for batch in batches {
                let momentum = 1.0 / (n as f64 + 1.0);
                let _ = self.forward(net, &batch.images, BnMode::Calibrate(momentum))?;
                n += 1;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// Saves all variables to a safetensors file, atomically (a temporary file next to it is
    /// written, synced and renamed over it).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save_var_store(&self.vs, path.as_ref())
    }

    /// Loads variables saved by [`Supernet::save`] (every variable must be present with its
    /// shape, and every value finite). The whole file is read and checked before any variable
    /// is overwritten, so a failed load leaves the supernet as it was.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::load_into(&self.vs, path.as_ref(), "")
    }
}

/// A standalone network extracted from a supernet: its own variables at exactly the subnet's
/// size.
#[derive(Debug)]
pub struct Subnet {
    vs: nn::VarStore,
    body: Body,
    network: Network,
}

impl Subnet {
    /// A randomly initialised standalone network for `net` (used to time architectures).
    pub fn random(net: &Network, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let body = Body::build(
            &vs.root(),
            net,
            &|l: &Layer| vec![l.kernel],
            false,
            &Layer::has_projection_shortcut,
            &SupernetConfig::default(),
        )?;
        Ok(Self {
            vs,
            body,
            network: net.clone(),
        })
    }

    /// The architecture.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Its variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable access to its variables.
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Number of parameters (batch-norm buffers excluded).
    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64
    }

    /// Logits for `x`.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.body.forward(&self.network, x, mode)
    }

    /// Inference without gradients (batch norm in evaluation mode).
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.forward(x, BnMode::Eval))
    }

    /// Saves the weights (safetensors when the extension is `.safetensors`), atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save_var_store(&self.vs, path.as_ref())
    }

    /// Element kind of the weights.
    pub fn kind(&self) -> Kind {
        self.vs.kind()
    }

    /// Number of feature layers: those before the first global pooling. They are the blocks an
    /// early exit can follow ([`dynas_exits::Backbone`]); the rest is the classifier.
    pub fn num_feature_layers(&self) -> usize {
        self.network
            .layers
            .iter()
            .position(|l| l.kind == OpKind::GlobalAvgPool)
            .unwrap_or(self.network.layers.len())
    }
}

fn exit_error(e: SupernetError) -> dynas_exits::ExitError {
    dynas_exits::ExitError::Backbone(Box::new(e))
}

/// An extracted subnet as an early-exit backbone: block `i` is layer `i` of its network (first
/// conv, MBConv blocks, final 1x1 convs), up to the global pooling; the classifier is the rest.
/// Blocks run with batch norm in evaluation mode; block `0` resizes the input to the subnet's
/// resolution.
impl dynas_exits::Backbone for Subnet {
    fn num_blocks(&self) -> usize {
        self.num_feature_layers()
    }

    fn block_channels(&self, block: usize) -> i64 {
        self.network
            .layers
            .get(block)
            .map_or(0, |l| l.out_channels as i64)
    }

    fn forward_block(&self, block: usize, x: &Tensor) -> dynas_exits::Result<Tensor> {
        let blocks = self.num_feature_layers();
        if block >= blocks {
            return Err(dynas_exits::ExitError::invalid(
                "block",
                format!("{block} is not one of the subnet's {blocks} feature layers"),
            ));
        }
        let layer = &self.network.layers[block];
        let input = if block == 0 {
            Body::prepare_input(&self.network, x).map_err(exit_error)?
        } else {
            x.shallow_clone()
        };
        self.body
            .forward_layer(layer, &input, BnMode::Eval)
            .map_err(exit_error)
    }

    fn classify(&self, features: &Tensor) -> dynas_exits::Result<Tensor> {
        let mut x = features.shallow_clone();
        for layer in &self.network.layers[self.num_feature_layers()..] {
            x = self
                .body
                .forward_layer(layer, &x, BnMode::Eval)
                .map_err(exit_error)?;
        }
        Ok(x)
    }

    fn network(&self) -> Network {
        self.network.clone()
    }
}
