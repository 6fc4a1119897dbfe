//! A layer as its expression terms: [`LayerExpr`] and the network-wide folds over it.

use serde::{Deserialize, Serialize};

use super::{Branch, Combine, Epilogue, OpExpr, ReceptiveField};
use crate::network::{
    Activation, BYTES_PER_ELEMENT, CustomCounts, Layer, Network, OpKind, PoolKind, TensorShape,
};

/// A layer as its expression terms, or as the counts it carries when it is user-defined.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerExpr {
    /// Name of the layer.
    pub name: String,
    /// The terms, main path in execution order.
    pub terms: Vec<OpExpr>,
    /// Counts of a user-defined operator, which has no expression.
    pub opaque: Option<CustomCounts>,
}

impl LayerExpr {
    /// The expression of `layer`.
    pub fn from_layer(layer: &Layer) -> Self {
        let input = layer.input;
        let out = layer.output();
        let mut terms = Vec::new();
        let mut opaque = None;
        let epilogue = Epilogue::of(layer);
        match layer.kind {
            OpKind::Conv => terms.push(
                OpExpr::conv(
                    "conv",
                    input,
                    layer.out_channels,
                    layer.kernel_hw(),
                    layer.stride,
                    layer.dilation,
                    layer.groups,
                    epilogue,
                )
                .with_output_size(out),
            ),
            OpKind::MbConv => {
                let mid = layer.mid_channels;
                let groups = layer.groups.max(1);
                let bn = Epilogue {
                    bias: false,
                    ..epilogue
                };
                let mut x = input;
                if layer.has_expansion() {
                    let expand = OpExpr::conv("expand", x, mid, (1, 1), 1, 1, groups, bn);
                    x = expand.output_shape();
                    terms.push(expand);
                }
                let k = (layer.kernel, layer.kernel);
                let depthwise = OpExpr::conv("depthwise", x, mid, k, layer.stride, 1, mid, bn)
                    .with_output_size(TensorShape::new(mid, out.height, out.width));
                x = depthwise.output_shape();
                terms.push(depthwise);
                if let Some(s) = layer.se_channels {
                    let pooled = TensorShape::flat(mid);
                    let with_bias = Epilogue {
                        bias: true,
                        ..Epilogue::LINEAR
                    };
                    terms.push(OpExpr::pool("se.pool", x, Combine::Mean, None, 1).on(Branch::Gate));
                    terms.push(
                        OpExpr::dense(
                            "se.reduce",
                            pooled,
                            s,
                            with_bias.with_activation(Activation::Relu),
                        )
                        .on(Branch::Gate),
                    );
                    terms.push(
                        OpExpr::dense("se.expand", TensorShape::flat(s), mid, with_bias)
                            .on(Branch::Gate),
                    );
                }
                let project_bn = bn.with_activation(Activation::None);
                terms.push(OpExpr::conv(
                    "project",
                    x,
                    layer.out_channels,
                    (1, 1),
                    1,
                    1,
                    groups,
                    project_bn,
                ));
                if layer.has_projection_shortcut() {
                    terms.push(
                        OpExpr::conv(
                            "shortcut",
                            out_of(input, out),
                            layer.out_channels,
                            (1, 1),
                            1,
                            1,
                            1,
                            Epilogue::LINEAR,
                        )
                        .on(Branch::Shortcut),
                    );
                }
            }
            OpKind::ResidualBlock => {
                let cout = layer.out_channels;
                let bn = Epilogue {
                    bias: false,
                    batch_norm: layer.batch_norm,
                    activation: Activation::Relu,
                };
                let a = OpExpr::conv("a", input, cout, (3, 3), layer.stride, 1, 1, bn)
                    .with_output_size(out);
                let b = OpExpr::conv(
                    "b",
                    out,
                    cout,
                    (3, 3),
                    1,
                    1,
                    1,
                    bn.with_activation(Activation::None),
                );
                let shortcut = OpExpr::conv(
                    "shortcut",
                    out_of(input, out),
                    cout,
                    (1, 1),
                    1,
                    1,
                    1,
                    bn.with_activation(Activation::None),
                )
                .on(Branch::Shortcut);
                terms.extend([a, b, shortcut]);
            }
            OpKind::Linear => {
                terms.push(OpExpr::dense("linear", input, layer.out_channels, epilogue))
            }
            OpKind::Pool(kind) => {
                let combine = match kind {
                    PoolKind::Average => Combine::Mean,
                    PoolKind::Max => Combine::Max,
                };
                terms.push(
                    OpExpr::pool("pool", input, combine, Some(layer.kernel), layer.stride)
                        .with_output_size(out),
                );
            }
            OpKind::GlobalAvgPool => {
                terms.push(OpExpr::pool("pool", input, Combine::Mean, None, 1));
            }
            OpKind::Identity => {}
            OpKind::Zero => terms.push(OpExpr::zero("zero", input, out)),
            OpKind::Custom(counts) => opaque = Some(counts),
        }
        Self {
            name: layer.name.clone(),
            terms,
            opaque,
        }
    }

    /// Multiply-accumulates of all terms.
    pub fn macs(&self) -> u64 {
        self.opaque.map_or(0, |c| c.macs) + self.terms.iter().map(OpExpr::macs).sum::<u64>()
    }

    /// Parameters of all terms.
    pub fn params(&self) -> u64 {
        self.opaque.map_or(0, |c| c.params) + self.terms.iter().map(OpExpr::params).sum::<u64>()
    }

    /// Bytes of every feature map the layer writes (what [`Layer::activation_bytes`] counts).
    pub fn written_bytes(&self) -> u64 {
        let elements = self.opaque.map_or(0, |c| c.written_elements)
            + self.terms.iter().map(OpExpr::written_elements).sum::<u64>();
        elements * BYTES_PER_ELEMENT
    }

    /// Bytes moved for one image: every term's input and weights read and output written.
    pub fn bytes_moved(&self) -> u64 {
        self.terms.iter().map(OpExpr::bytes_moved).sum()
    }

    /// Receptive field of the layer's main path.
    pub fn receptive_field(&self) -> ReceptiveField {
        self.terms
            .iter()
            .filter(|t| t.branch == Branch::Main)
            .fold(ReceptiveField::POINT, |rf, t| rf.then(t.receptive_field()))
    }
}

/// The expression of every layer of a network.
pub fn network_exprs(network: &Network) -> Vec<LayerExpr> {
    network.layers.iter().map(LayerExpr::from_layer).collect()
}

/// Receptive field of a network's output in input pixels, through every layer's main path.
pub fn network_receptive_field(network: &Network) -> ReceptiveField {
    network_exprs(network)
        .iter()
        .fold(ReceptiveField::POINT, |rf, l| rf.then(l.receptive_field()))
}

/// Input of a shortcut: the block input, subsampled to the output's spatial size.
fn out_of(input: TensorShape, out: TensorShape) -> TensorShape {
    TensorShape::new(input.channels, out.height, out.width)
}

impl OpExpr {
    /// The same term with its spatial output extents set to `out`'s (the description's
    /// rounding rule is the authority on output sizes).
    fn with_output_size(mut self, out: TensorShape) -> Self {
        for (i, size) in [(1, out.height), (2, out.width)] {
            if let Some(index) = self.output.get_mut(i) {
                index.extent = size;
            }
        }
        self
    }
}
