//! The deployed form of an extracted subnet: every batch norm folded into the convolution
//! before it, weights materialised at the subnet's exact size and stored channels-last, and the
//! layers in a flat list (no per-call slicing of shared tensors, no name lookups). The same
//! function as [`Subnet::predict`] with fewer, faster operator calls: the form a runtime
//! keeps resident and the form host latencies are measured in.

use dynas_space::{Activation, Network};
use tch::{Device, Kind, Tensor};

use super::Subnet;
use super::modules::{ConvBn, MbBlock, Op};
use crate::elastic::{
    ElasticBatchNorm, ElasticConv2d, activate, channels_last, keep_channels_last,
};
use crate::error::{Result, SupernetError};

/// A convolution with its batch norm folded in.
#[derive(Debug)]
struct FoldedConv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
}

impl FoldedConv {
    /// `conv` run with `out` outputs from `inp` inputs, kernel `k` and `stride`, with its batch
    /// norm's running statistics folded into weight and bias.
    fn new(conv: &ConvBn, out: usize, inp: usize, k: usize, stride: usize) -> Result<Self> {
        Self::from_parts(&conv.conv, conv.bn.as_ref(), out, inp, k, stride)
    }

    /// A 1x1, stride-1 conv without batch norm (squeeze-and-excitation, shortcuts).
    fn pointwise(conv: &ElasticConv2d, out: usize, inp: usize) -> Result<Self> {
        Self::from_parts(conv, None, out, inp, 1, 1)
    }

    fn from_parts(
        conv: &ElasticConv2d,
        bn: Option<&ElasticBatchNorm>,
        out: usize,
        inp: usize,
        k: usize,
        stride: usize,
    ) -> Result<Self> {
        let (out, inp, k) = (out as i64, inp as i64, k as i64);
        let weight = conv.active_weight(out, inp, k)?;
        let bias = conv.active_bias(out);
        let (weight, bias) = match bn {
            Some(bn) => {
                let (scale, shift) = bn.folded_affine(out);
                let weight = weight * scale.view([-1, 1, 1, 1]);
                let bias = match bias {
                    Some(b) => b * &scale + shift,
                    None => shift,
                };
                (weight, Some(bias))
            }
            None => (weight, bias),
        };
        Ok(Self {
            weight: channels_last(&weight.detach().copy()),
            bias: bias.map(|b| b.detach().copy()),
            stride: stride as i64,
            padding: k / 2,
            groups: if conv.is_depthwise() { inp } else { 1 },
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        )
    }
}

/// How a block's input reaches its output.
#[derive(Debug)]
enum Shortcut {
    None,
    Identity,
    /// Average-pooled by `pool` (when above 1), then a 1x1 conv.
    Projection {
        pool: i64,
        conv: FoldedConv,
    },
}

/// One layer in deployed form.
// A subnet holds a few dozen of these, built once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum DeployedOp {
    Conv {
        conv: FoldedConv,
        activation: Activation,
    },
    MbConv {
        expand: Option<FoldedConv>,
        dw: FoldedConv,
        /// Squeeze-and-excitation: reduction and expansion 1x1 convs.
        se: Option<(FoldedConv, FoldedConv)>,
        project: FoldedConv,
        shortcut: Shortcut,
        activation: Activation,
    },
    GlobalPool,
    Linear {
        weight: Tensor,
        bias: Tensor,
    },
}

impl DeployedOp {
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Self::Conv { conv, activation } => activate(&conv.forward(x), *activation),
            Self::MbConv {
                expand,
                dw,
                se,
                project,
                shortcut,
                activation,
            } => {
                let mut h = x.shallow_clone();
                if let Some(e) = expand {
                    h = activate(&e.forward(&h), *activation);
                }
                h = activate(&dw.forward(&h), *activation);
                if let Some((reduce, expand)) = se {
                    let gate = h.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
                    let gate = expand.forward(&reduce.forward(&gate).relu()).hardsigmoid();
                    h *= gate;
                }
                h = project.forward(&h);
                match shortcut {
                    Shortcut::None => h,
                    Shortcut::Identity => h + x,
                    Shortcut::Projection { pool, conv } => {
                        let pooled = if *pool > 1 {
                            x.avg_pool2d([*pool, *pool], [*pool, *pool], [0, 0], true, false, None)
                        } else {
                            x.shallow_clone()
                        };
                        h + conv.forward(&pooled)
                    }
                }
            }
            Self::GlobalPool => x.adaptive_avg_pool2d([1, 1]),
            Self::Linear { weight, bias } => {
                let flat = if x.dim() > 2 {
                    x.flatten(1, -1)
                } else {
                    x.shallow_clone()
                };
                flat.linear(weight, Some(bias))
            }
        }
    }
}

/// A subnet in deployed form ([`Subnet::deployed`]): inference only, batch norm in evaluation
/// mode with the statistics the subnet had when it was built.
#[derive(Debug)]
pub struct DeployedSubnet {
    network: Network,
    ops: Vec<DeployedOp>,
    device: Device,
}

impl MbBlock {
    fn deployed(&self, l: &dynas_space::Layer) -> Result<DeployedOp> {
        let missing =
            |what: &str| SupernetError::Incompatible(format!("block `{}` has no {what}", l.name));
        let (cin, mid, cout) = (l.input.channels, l.mid_channels, l.out_channels);
        let expand = if l.has_expansion() {
            let e = self
                .expand
                .as_ref()
                .ok_or_else(|| missing("expansion conv"))?;
            Some(FoldedConv::new(e, mid, cin, 1, 1)?)
        } else {
            None
        };
        let dw = FoldedConv::new(&self.dw, mid, mid, l.kernel, l.stride)?;
        let se = match l.se_channels {
            Some(squeeze) => {
                let se = self.se.as_ref().ok_or_else(|| missing("SE module"))?;
                Some((
                    FoldedConv::pointwise(&se.reduce, squeeze, mid)?,
                    FoldedConv::pointwise(&se.expand, mid, squeeze)?,
                ))
            }
            None => None,
        };
        let project = FoldedConv::new(&self.project, cout, mid, 1, 1)?;
        let shortcut = if l.has_identity_shortcut() {
            Shortcut::Identity
        } else if l.has_projection_shortcut() {
            let conv = self
                .shortcut
                .as_ref()
                .ok_or_else(|| missing("shortcut conv"))?;
            Shortcut::Projection {
                pool: l.stride as i64,
                conv: FoldedConv::pointwise(conv, cout, cin)?,
            }
        } else {
            Shortcut::None
        };
        Ok(DeployedOp::MbConv {
            expand,
            dw,
            se,
            project,
            shortcut,
            activation: l.activation,
        })
    }
}

impl Subnet {
    /// This subnet in deployed form (see [`DeployedSubnet`]); build it again after changing the
    /// subnet's weights or batch-norm statistics.
    pub fn deployed(&self) -> Result<DeployedSubnet> {
        let ops = tch::no_grad(|| {
            self.network
                .layers
                .iter()
                .map(|layer| {
                    Ok(match self.body.op(layer)? {
                        Op::Conv(c) => {
                            let inp = if layer.groups > 1 {
                                layer.out_channels
                            } else {
                                layer.input.channels
                            };
                            DeployedOp::Conv {
                                conv: FoldedConv::new(
                                    c,
                                    layer.out_channels,
                                    inp,
                                    layer.kernel,
                                    layer.stride,
                                )?,
                                activation: layer.activation,
                            }
                        }
                        Op::MbConv(b) => b.deployed(layer)?,
                        Op::GlobalPool => DeployedOp::GlobalPool,
                        Op::Linear(l) => {
                            let (o, i) = (layer.out_channels as i64, layer.input.channels as i64);
                            let (w, b) = l.active(o, i)?;
                            DeployedOp::Linear {
                                weight: w.detach().copy(),
                                bias: b.detach().copy(),
                            }
                        }
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(DeployedSubnet {
            network: self.network.clone(),
            ops,
            device: self.vs.device(),
        })
    }
}

impl DeployedSubnet {
    /// The architecture.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Where its weights live.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Logits for `x` (`[B, C, H, W]`, resized to the subnet's resolution when it differs).
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let x = super::modules::Body::prepare_input(&self.network, x)?;
        Ok(tch::no_grad(|| {
            let mut x = channels_last(&x);
            for op in &self.ops {
                x = keep_channels_last(op.forward(&x));
            }
            x
        }))
    }
}

/// A deployed subnet as an early-exit backbone, block `i` being layer `i` as for
/// [`Subnet`]'s backbone (so exit heads trained on the extracted subnet read the same features):
/// the runtime serves dynamic networks in the deployed form.
impl dynas_exits::Backbone for DeployedSubnet {
    fn num_blocks(&self) -> usize {
        self.feature_layers()
    }

    fn block_channels(&self, block: usize) -> i64 {
        super::block_channels(&self.network, block)
    }

    fn forward_block(&self, block: usize, x: &Tensor) -> dynas_exits::Result<Tensor> {
        let blocks = self.feature_layers();
        let op = self
            .ops
            .get(block)
            .filter(|_| block < blocks)
            .ok_or_else(|| {
                dynas_exits::ExitError::invalid(
                    "block",
                    format!("{block} is not one of the subnet's {blocks} feature layers"),
                )
            })?;
        let input = if block == 0 {
            let x = super::modules::Body::prepare_input(&self.network, x)
                .map_err(|e| dynas_exits::ExitError::Backbone(Box::new(e)))?;
            channels_last(&x)
        } else {
            x.shallow_clone()
        };
        Ok(tch::no_grad(|| keep_channels_last(op.forward(&input))))
    }

    fn classify(&self, features: &Tensor) -> dynas_exits::Result<Tensor> {
        Ok(tch::no_grad(|| {
            let mut x = features.shallow_clone();
            for op in &self.ops[self.feature_layers()..] {
                x = keep_channels_last(op.forward(&x));
            }
            x
        }))
    }

    fn network(&self) -> Network {
        self.network.clone()
    }
}

impl DeployedSubnet {
    /// Layers before the global pooling (the blocks an exit can follow).
    fn feature_layers(&self) -> usize {
        super::feature_layers(&self.network)
    }
}
