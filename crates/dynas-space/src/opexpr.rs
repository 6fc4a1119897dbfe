//! Operators as tensor-index expressions.
//!
//! Every [`Layer`] of a [`Network`](crate::Network) is also written as a short list of
//! [`OpExpr`] terms, one per tensor it computes. A term names its output indices, its reduction
//! indices with their ranges, the indices of its weight, how the spatial output indices map to
//! input positions
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

use crate::network::{Activation, BYTES_PER_ELEMENT, Layer, TensorShape};

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

mod layer;
pub use layer::{LayerExpr, network_exprs, network_receptive_field};

#[cfg(test)]
mod tests;
