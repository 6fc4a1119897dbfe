//! The modules behind the supernet's layers (conv + batch norm, MBConv blocks, the classifier)
//! and the layer table with the forward pass shared by supernets and subnets.

use std::collections::HashMap;

use dynas_space::{Layer, Network, OpKind};
use tch::{Tensor, nn};

use super::SupernetConfig;
use crate::elastic::{BnMode, ElasticBatchNorm, ElasticConv2d, ElasticLinear, ElasticSe, activate};
use crate::error::{Result, SupernetError};

/// Conv + optional batch norm.
#[derive(Debug)]
pub(super) struct ConvBn {
    pub(super) conv: ElasticConv2d,
    pub(super) bn: Option<ElasticBatchNorm>,
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

    pub(super) fn forward(
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

pub(super) fn copy(dst: &Tensor, src: &Tensor) -> Result<()> {
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
pub(super) struct MbBlock {
    pub(super) expand: Option<ConvBn>,
    pub(super) dw: ConvBn,
    pub(super) se: Option<ElasticSe>,
    pub(super) project: ConvBn,
    /// 1x1 projection of the (average-pooled when strided) input for blocks that change
    /// width, as AttentiveNAS builds them.
    pub(super) shortcut: Option<ElasticConv2d>,
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

    pub(super) fn forward(&self, x: &Tensor, l: &Layer, mode: BnMode) -> Result<Tensor> {
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
pub(super) enum Op {
    Conv(ConvBn),
    MbConv(Box<MbBlock>),
    GlobalPool,
    Linear(ElasticLinear),
}

/// Layer-name -> module table with the forward pass shared by supernets and subnets.
#[derive(Debug)]
pub(super) struct Body {
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
    pub(super) fn build(
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

    pub(super) fn op(&self, layer: &Layer) -> Result<&Op> {
        self.index
            .get(&layer.name)
            .map(|&i| &self.ops[i].1)
            .ok_or_else(|| {
                SupernetError::Incompatible(format!("no module for layer `{}`", layer.name))
            })
    }

    /// Checks `x` against the network input and resizes it to the network's resolution.
    pub(super) fn prepare_input(net: &Network, x: &Tensor) -> Result<Tensor> {
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
    pub(super) fn forward_layer(&self, layer: &Layer, x: &Tensor, mode: BnMode) -> Result<Tensor> {
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

    pub(super) fn forward(&self, net: &Network, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let mut x = Self::prepare_input(net, x)?;
        for layer in &net.layers {
            x = self.forward_layer(layer, &x, mode)?;
        }
        Ok(x)
    }

    /// Batch norms a network uses: `(path, module, active channels)`.
    pub(super) fn batch_norms<'a>(
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
    pub(super) fn copy_into(&self, dst: &Body, net: &Network) -> Result<()> {
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
