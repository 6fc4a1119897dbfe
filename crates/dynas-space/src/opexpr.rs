//! Operators as tensor-index expressions.
//!
//! Every [`Layer`] of a [`Network`] is also written as a short list of [`OpExpr`] terms, one per
//! tensor it computes. A term names its output indices, its reduction indices with their
//! ranges, the indices of its weight, how the spatial output indices map to input positions
//! (`ih = stride * oh + dilation * kh - padding`) and the element-wise function applied to the
//! reduced value. MACs, parameters, bytes moved and the receptive field follow from that form
//! alone; the tests check them against the counters of [`Layer`].
//!
//! The same form is what GOS operator replacement factorises: a k x k convolution reduces over
//! `(ci, kh, kw)`, and splitting that reduction into two stages gives depthwise-separable,
//! spatially separable and low-rank replacements.
//!
//! ```
//! use dynas_space::{Activation, Layer, LayerExpr, TensorShape};
//! let conv = Layer::conv("c", TensorShape::new(16, 8, 8), 32, 3, 1, Activation::Relu);
//! let expr = LayerExpr::from_layer(&conv);
//! assert_eq!(expr.macs(), conv.macs());
//! assert_eq!(expr.params(), conv.params());
//! println!("{}", expr.terms[0]);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::network::{
    Activation, BYTES_PER_ELEMENT, CustomCounts, Layer, Network, OpKind, PoolKind, TensorShape,
};

/// A named index and the range `0..extent` it runs over.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Index {
    /// Name (`co`, `oh`, `kh`, ...).
    pub name: String,
    /// Number of values.
    pub extent: usize,
}

impl Index {
    /// Index `name` over `0..extent`.
    pub fn new(name: impl Into<String>, extent: usize) -> Self {
        Self {
            name: name.into(),
            extent,
        }
    }
}

/// How a spatial output index and a kernel index address the input:
/// `input = stride * output + dilation * kernel - padding` (out-of-range positions read zero).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpatialMap {
    /// Output index (`oh` or `ow`).
    pub output: String,
    /// Kernel index (`kh` or `kw`); `None` for a 1-wide kernel along this axis.
    pub kernel: Option<String>,
    /// Kernel extent along this axis.
    pub kernel_extent: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Zero padding before the first position.
    pub padding: usize,
}

impl SpatialMap {
    /// Span of input positions one output position reads: `dilation * (k - 1) + 1`.
    pub fn span(&self) -> usize {
        self.dilation * (self.kernel_extent.max(1) - 1) + 1
    }
}

/// How the products over the reduction indices are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Combine {
    /// Sum of weight x input products (convolutions, dense layers).
    Sum,
    /// Maximum of the inputs (max pooling).
    Max,
    /// Mean of the inputs (average pooling).
    Mean,
    /// No reduction: the output is a constant zero.
    Zero,
}

/// The element-wise function applied to the combined value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Epilogue {
    /// Adds a per-output-channel bias.
    pub bias: bool,
    /// Applies a per-output-channel batch norm (scale and shift at inference).
    pub batch_norm: bool,
    /// Then the activation.
    pub activation: Activation,
}

impl Epilogue {
    /// No bias, no batch norm, no activation.
    pub const LINEAR: Self = Self {
        bias: false,
        batch_norm: false,
        activation: Activation::None,
    };

    /// The epilogue of `layer`'s main convolution or dense product.
    pub fn of(layer: &Layer) -> Self {
        Self {
            bias: layer.bias,
            batch_norm: layer.batch_norm,
            activation: layer.activation,
        }
    }

    /// The same epilogue with another activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    fn params(&self, channels: u64) -> u64 {
        u64::from(self.bias) * channels + if self.batch_norm { 2 * channels } else { 0 }
    }
}

/// Which path of a block a term lies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Branch {
    /// The main path, run in order.
    Main,
    /// A shortcut added to the main path's output.
    Shortcut,
    /// A gate computed from a pooled copy of the main path (squeeze-and-excitation); fused,
    /// its small outputs are not counted as written feature maps.
    Gate,
}

/// One tensor-index expression: `y[output] = f(combine_{reduction} W[weight] * x[...])`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpExpr {
    /// Role within its layer (`conv`, `expand`, `depthwise`, `a`, `shortcut`, ...).
    pub name: String,
    /// Feature map the term reads.
    pub input: TensorShape,
    /// Output indices: `[co, oh, ow]` (or `[co]` for a dense product).
    pub output: Vec<Index>,
    /// Reduction indices: `[ci, kh, kw]` for a convolution (`ci` within one group).
    pub reduction: Vec<Index>,
    /// Indices of the weight, each the name of an output or reduction index; `None` when the
    /// term has no weight (pooling, zero).
    pub weight: Option<Vec<String>>,
    /// Groups: output channel `co` reads input channels `g(co) * ci_per_group + ci`.
    pub groups: usize,
    /// Spatial maps for the height and width axes (empty for a dense product).
    pub spatial: Vec<SpatialMap>,
    /// How products are combined.
    pub combine: Combine,
    /// Element-wise function after the combination.
    pub epilogue: Epilogue,
    /// Which path of its layer it lies on.
    pub branch: Branch,
}

fn product(indices: &[Index]) -> u64 {
    indices.iter().map(|i| i.extent as u64).product()
}

impl OpExpr {
    /// A convolution of `input` to `out_channels` with a `kh x kw` kernel, "same" padding,
    /// `stride`, `dilation` and `groups`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        name: impl Into<String>,
        input: TensorShape,
        out_channels: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        dilation: usize,
        groups: usize,
        epilogue: Epilogue,
    ) -> Self {
        let groups = groups.max(1);
        let out = input.strided(out_channels, stride);
        let axis = |o: &str, k: &str, extent: usize| SpatialMap {
            output: o.to_string(),
            kernel: (extent > 1).then(|| k.to_string()),
            kernel_extent: extent,
            stride,
            dilation,
            padding: dilation * (extent.max(1) - 1) / 2,
        };
        let mut reduction = vec![Index::new("ci", input.channels / groups)];
        let mut weight = vec!["co".to_string(), "ci".to_string()];
        for (k, extent) in [("kh", kh), ("kw", kw)] {
            if extent > 1 {
                reduction.push(Index::new(k, extent));
                weight.push(k.to_string());
            }
        }
        Self {
            name: name.into(),
            input,
            output: vec![
                Index::new("co", out_channels),
                Index::new("oh", out.height),
                Index::new("ow", out.width),
            ],
            reduction,
            weight: Some(weight),
            groups,
            spatial: vec![axis("oh", "kh", kh), axis("ow", "kw", kw)],
            combine: Combine::Sum,
            epilogue,
            branch: Branch::Main,
        }
    }

    /// A dense product of all `in_features` elements of `input` to `out_features`.
    pub fn dense(
        name: impl Into<String>,
        input: TensorShape,
        out_features: usize,
        epilogue: Epilogue,
    ) -> Self {
        Self {
            name: name.into(),
            input,
            output: vec![Index::new("co", out_features)],
            reduction: vec![Index::new("ci", input.channels)],
            weight: Some(vec!["co".to_string(), "ci".to_string()]),
            groups: 1,
            spatial: Vec::new(),
            combine: Combine::Sum,
            epilogue,
            branch: Branch::Main,
        }
    }

    /// A `kernel x kernel` pooling with `stride` ("same" padding), or a global one when
    /// `kernel` is `None`.
    pub fn pool(
        name: impl Into<String>,
        input: TensorShape,
        combine: Combine,
        kernel: Option<usize>,
        stride: usize,
    ) -> Self {
        let (k_h, k_w, out) = match kernel {
            Some(k) => (k, k, input.strided(input.channels, stride)),
            None => (
                input.height,
                input.width,
                TensorShape::new(input.channels, 1, 1),
            ),
        };
        let stride = if kernel.is_some() { stride } else { 1 };
        let axis = |o: &str, k: &str, extent: usize| SpatialMap {
            output: o.to_string(),
            kernel: (extent > 1).then(|| k.to_string()),
            kernel_extent: extent,
            stride,
            dilation: 1,
            padding: if kernel.is_some() {
                (extent - 1) / 2
            } else {
                0
            },
        };
        let mut reduction = Vec::new();
        for (k, extent) in [("kh", k_h), ("kw", k_w)] {
            if extent > 1 {
                reduction.push(Index::new(k, extent));
            }
        }
        Self {
            name: name.into(),
            input,
            output: vec![
                Index::new("c", input.channels),
                Index::new("oh", out.height),
                Index::new("ow", out.width),
            ],
            reduction,
            weight: None,
            groups: input.channels,
            spatial: vec![axis("oh", "kh", k_h), axis("ow", "kw", k_w)],
            combine,
            epilogue: Epilogue::LINEAR,
            branch: Branch::Main,
        }
    }

    /// A term that writes zeros of shape `output`.
    pub fn zero(name: impl Into<String>, input: TensorShape, output: TensorShape) -> Self {
        Self {
            name: name.into(),
            input,
            output: vec![
                Index::new("c", output.channels),
                Index::new("oh", output.height),
                Index::new("ow", output.width),
            ],
            reduction: Vec::new(),
            weight: None,
            groups: 1,
            spatial: Vec::new(),
            combine: Combine::Zero,
            epilogue: Epilogue::LINEAR,
            branch: Branch::Main,
        }
    }

    /// The same term on another branch.
    pub fn on(mut self, branch: Branch) -> Self {
        self.branch = branch;
        self
    }

    /// Output channels (the extent of the first output index).
    pub fn out_channels(&self) -> usize {
        self.output.first().map_or(0, |i| i.extent)
    }

    /// Output feature map.
    pub fn output_shape(&self) -> TensorShape {
        let extent = |i: usize| self.output.get(i).map_or(1, |x| x.extent);
        TensorShape::new(extent(0), extent(1), extent(2))
    }

    /// Extent of the named index, among output and reduction indices.
    pub fn extent(&self, name: &str) -> Option<usize> {
        self.output
            .iter()
            .chain(&self.reduction)
            .find(|i| i.name == name)
            .map(|i| i.extent)
    }

    /// Kernel height and width (1 x 1 for dense products).
    pub fn kernel_hw(&self) -> (usize, usize) {
        let k = |i: usize| self.spatial.get(i).map_or(1, |s| s.kernel_extent);
        (k(0), k(1))
    }

    /// Multiply-accumulates: one per output element and reduction point when the term has a
    /// weight; weightless reductions (pooling) are not multiply-accumulates.
    pub fn macs(&self) -> u64 {
        match self.weight {
            Some(_) => product(&self.output) * product(&self.reduction),
            None => 0,
        }
    }

    /// Weight elements (the product of the weight indices' extents) plus bias and batch norm.
    pub fn params(&self) -> u64 {
        let weight = self.weight.as_ref().map_or(0, |names| {
            names
                .iter()
                .map(|n| self.extent(n).unwrap_or(1) as u64)
                .product()
        });
        let channels = self.out_channels() as u64;
        weight + self.epilogue.params(channels)
    }

    /// Elements the term writes (zero for fused gate terms).
    pub fn written_elements(&self) -> u64 {
        match self.branch {
            Branch::Gate => 0,
            _ => product(&self.output),
        }
    }

    /// Bytes the term moves for one image: input read, weights read, output written.
    pub fn bytes_moved(&self) -> u64 {
        let input = if self.combine == Combine::Zero {
            0
        } else {
            self.input.elements()
        };
        (input + self.params() + self.written_elements()) * BYTES_PER_ELEMENT
    }

    /// Receptive field of one output position of this term alone.
    pub fn receptive_field(&self) -> ReceptiveField {
        let mut rf = ReceptiveField::POINT;
        for (i, axis) in self.spatial.iter().enumerate().take(2) {
            let field = if i == 0 {
                &mut rf.height
            } else {
                &mut rf.width
            };
            *field = axis.span();
            if i == 0 {
                rf.jump_height = axis.stride;
            } else {
                rf.jump_width = axis.stride;
            }
        }
        rf
    }
}

impl fmt::Display for OpExpr {
    /// Writes the term as an index expression, e.g.
    /// `y[co<32,oh<8,ow<8] = relu(bn(sum_{ci<16,kh<3,kw<3} W[co,ci,kh,kw] * x[g(co)*16+ci, 1*oh+1*kh-1, 1*ow+1*kw-1]))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |indices: &[Index]| {
            indices
                .iter()
                .map(|i| format!("{}<{}", i.name, i.extent))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut value = match self.combine {
            Combine::Zero => "0".to_string(),
            combine => {
                let channel = match (&self.weight, self.groups) {
                    (None, _) => "c".to_string(),
                    (Some(_), 1) => "ci".to_string(),
                    (Some(_), _) => format!(
                        "g(co)*{}+ci",
                        self.reduction.first().map_or(0, |i| i.extent)
                    ),
                };
                let mut positions = vec![channel];
                for axis in &self.spatial {
                    let kernel = axis
                        .kernel
                        .as_ref()
                        .map_or(String::new(), |k| format!("+{}*{k}", axis.dilation));
                    let pad = if axis.padding > 0 {
                        format!("-{}", axis.padding)
                    } else {
                        String::new()
                    };
                    positions.push(format!("{}*{}{kernel}{pad}", axis.stride, axis.output));
                }
                let x = format!("x[{}]", positions.join(", "));
                let term = match &self.weight {
                    Some(w) => format!("W[{}] * {x}", w.join(",")),
                    None => x,
                };
                let op = match combine {
                    Combine::Sum => "sum",
                    Combine::Max => "max",
                    _ => "mean",
                };
                if self.reduction.is_empty() {
                    term
                } else {
                    format!("{op}_{{{}}} {term}", list(&self.reduction))
                }
            }
        };
        if self.epilogue.bias {
            value = format!("{value} + b[co]");
        }
        if self.epilogue.batch_norm {
            value = format!("bn({value})");
        }
        let act = match self.epilogue.activation {
            Activation::None => None,
            Activation::Relu => Some("relu"),
            Activation::Relu6 => Some("relu6"),
            Activation::HardSwish => Some("hswish"),
            Activation::Swish => Some("swish"),
        };
        if let Some(act) = act {
            value = format!("{act}({value})");
        }
        write!(f, "{}: y[{}] = {value}", self.name, list(&self.output))
    }
}

/// Receptive field along height and width, with the product of strides so far (the distance
/// in input pixels between neighbouring output positions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceptiveField {
    /// Input rows one output position depends on.
    pub height: usize,
    /// Input columns one output position depends on.
    pub width: usize,
    /// Input rows between vertically neighbouring outputs.
    pub jump_height: usize,
    /// Input columns between horizontally neighbouring outputs.
    pub jump_width: usize,
}

impl ReceptiveField {
    /// A single pixel, stride 1.
    pub const POINT: Self = Self {
        height: 1,
        width: 1,
        jump_height: 1,
        jump_width: 1,
    };

    /// The field of `next` applied after `self`.
    pub fn then(self, next: Self) -> Self {
        Self {
            height: self.height + (next.height - 1) * self.jump_height,
            width: self.width + (next.width - 1) * self.jump_width,
            jump_height: self.jump_height * next.jump_height,
            jump_width: self.jump_width * next.jump_width,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FbNetSpace, MbConvSpace, Nb201Space, SearchSpace, seeded_rng};

    fn assert_counts_agree(network: &Network) {
        for layer in &network.layers {
            let expr = LayerExpr::from_layer(layer);
            assert_eq!(expr.macs(), layer.macs(), "MACs of {}", layer.name);
            assert_eq!(expr.params(), layer.params(), "params of {}", layer.name);
            assert_eq!(
                expr.written_bytes(),
                layer.activation_bytes(),
                "bytes of {}",
                layer.name
            );
        }
    }

    #[test]
    fn expressions_agree_with_the_counters_on_every_space() {
        let mut rng = seeded_rng(3);
        let spaces: Vec<Box<dyn SearchSpace>> = vec![
            Box::new(MbConvSpace::attentive_nas()),
            Box::new(MbConvSpace::ofa_mobilenet_v3()),
            Box::new(Nb201Space::new()),
            Box::new(FbNetSpace::cifar100()),
        ];
        for space in &spaces {
            for _ in 0..20 {
                let genotype = space.sample(&mut rng);
                let network = space.decode(&genotype).expect("decode");
                assert_counts_agree(&network);
            }
        }
    }

    #[test]
    fn rectangular_dilated_and_custom_layers_agree_too() {
        let input = TensorShape::new(8, 9, 9);
        let layers = vec![
            Layer::conv("kx1", input, 16, 3, 1, Activation::Relu).with_kernel_hw(3, 1),
            Layer::conv("dil", input, 16, 2, 2, Activation::Relu).with_dilation(2),
            Layer::pool("p", PoolKind::Max, input, 3, 2),
            Layer::custom(
                "user",
                input,
                8,
                1,
                CustomCounts {
                    macs: 5,
                    params: 7,
                    written_elements: 11,
                },
            ),
            Layer::zero("z", input),
            Layer::identity("i", input),
        ];
        assert_counts_agree(&Network::new(input, layers));
    }

    #[test]
    fn receptive_fields_compose_through_strides_and_dilations() {
        let input = TensorShape::new(1, 32, 32);
        let a = Layer::conv("a", input, 4, 3, 2, Activation::Relu);
        let b = Layer::conv("b", a.output(), 4, 3, 1, Activation::Relu);
        let c = Layer::conv("c", b.output(), 4, 3, 1, Activation::Relu).with_dilation(2);
        let rf = network_receptive_field(&Network::new(input, vec![a, b, c]));
        // 3, then +2*2 = 7, then +(5-1)*2 = 15.
        assert_eq!((rf.height, rf.width), (15, 15));
        assert_eq!(rf.jump_height, 2);
        let kx1 = Layer::conv("k", input, 4, 5, 1, Activation::Relu).with_kernel_hw(5, 1);
        let field = LayerExpr::from_layer(&kx1).receptive_field();
        assert_eq!((field.height, field.width), (5, 1));
    }

    #[test]
    fn bytes_moved_count_input_weights_and_output() {
        let layer = Layer::conv("c", TensorShape::new(2, 4, 4), 3, 3, 1, Activation::None)
            .without_batch_norm();
        let expr = LayerExpr::from_layer(&layer);
        let expected = (2 * 16 + (3 * 2 * 9 + 3) + 3 * 16) * BYTES_PER_ELEMENT;
        assert_eq!(expr.bytes_moved(), expected);
        let text = expr.terms[0].to_string();
        assert!(
            text.contains("sum_{ci<2,kh<3,kw<3} W[co,ci,kh,kw]"),
            "{text}"
        );
    }
}
