//! The tch-free network description every other crate consumes.
//!
//! A [`Network`] is an ordered list of [`Layer`]s, each at the granularity of a lookup-table
//! entry (a conv with its batch norm and activation, a whole MBConv block, a linear layer, a
//! pooling). Layers know their input and output shapes and count their own multiply-accumulates,
//! parameters and activation bytes.

use serde::{Deserialize, Serialize};

use crate::genotype::Genotype;

/// Bytes per activation element (fp32 inference).
pub const BYTES_PER_ELEMENT: u64 = 4;

/// Channels x height x width of one image's feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorShape {
    /// Channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl TensorShape {
    /// A feature map of `channels` x `height` x `width`.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// A flat vector of `features` (shape `features x 1 x 1`).
    pub const fn flat(features: usize) -> Self {
        Self::new(features, 1, 1)
    }

    /// Number of elements.
    pub const fn elements(&self) -> u64 {
        (self.channels * self.height * self.width) as u64
    }

    /// Spatial size after a "same"-padded op with this stride: `ceil(size / stride)`.
    pub const fn strided(&self, channels: usize, stride: usize) -> Self {
        Self::new(
            channels,
            self.height.div_ceil(stride),
            self.width.div_ceil(stride),
        )
    }
}

/// Non-linearity applied after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// No activation.
    None,
    /// ReLU.
    Relu,
    /// ReLU6.
    Relu6,
    /// Hard swish (MobileNetV3).
    HardSwish,
    /// Swish / SiLU.
    Swish,
}

/// Pooling flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PoolKind {
    /// Average pooling.
    Average,
    /// Max pooling.
    Max,
}

/// Counts a user-defined operator ([`OpKind::Custom`]) carries for one image, since the
/// description cannot derive them from its shape fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomCounts {
    /// Multiply-accumulates.
    pub macs: u64,
    /// Learnable parameters.
    pub params: u64,
    /// Elements of every tensor the operator writes.
    pub written_elements: u64,
}

/// What a layer computes.
///
/// Non-exhaustive: new operators are added over time, and [`OpKind::Custom`] lets a user's
/// operator take part in costing with counts of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OpKind {
    /// Convolution (grouped when `groups > 1`, depthwise when `groups == channels`),
    /// optionally followed by batch norm and the activation.
    Conv,
    /// Inverted-residual block: 1x1 expansion to `mid_channels` (absent when expand ratio is 1),
    /// k x k depthwise conv, optional squeeze-and-excitation, 1x1 linear projection, identity
    /// shortcut when stride is 1 and input and output channels match.
    MbConv,
    /// ResNet basic block (two 3x3 convs) with a projection shortcut, as in NAS-Bench-201's
    /// reduction cells.
    ResidualBlock,
    /// Fully connected layer on a flat input.
    Linear,
    /// Spatial pooling with `kernel` and `stride`.
    Pool(PoolKind),
    /// Global average pooling to 1 x 1.
    GlobalAvgPool,
    /// Identity (a skip connection).
    Identity,
    /// Outputs zeros (NAS-Bench-201's `none`): no compute, no parameters.
    Zero,
    /// A user-defined operator that keeps the input's spatial size (divided by `stride`) and
    /// carries its own counts.
    Custom(CustomCounts),
}

fn one() -> usize {
    1
}

/// One layer of a [`Network`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layer {
    /// Path-like name (e.g. `stage3.block1`), unique within a network except where a space
    /// names layers by lookup-table key ([`crate::FbNetSpace`]).
    pub name: String,
    /// The operation.
    pub kind: OpKind,
    /// Input feature map.
    pub input: TensorShape,
    /// Output channels (features for `Linear`).
    pub out_channels: usize,
    /// Kernel size (1 where not applicable).
    pub kernel: usize,
    /// Stride (1 where not applicable).
    pub stride: usize,
    /// Groups of a convolution, or of the two 1x1 convs of an MBConv block (1 otherwise).
    pub groups: usize,
    /// Expanded channels of an MBConv block; equals input channels when the expand ratio is 1.
    pub mid_channels: usize,
    /// Squeeze channels of a squeeze-and-excitation module, if the layer has one.
    pub se_channels: Option<usize>,
    /// Whether a batch norm follows the conv(s).
    pub batch_norm: bool,
    /// Whether convs / linear layers carry a bias.
    pub bias: bool,
    /// Activation after the layer (inside an MBConv block: after expansion and depthwise).
    pub activation: Activation,
    /// Whether an MBConv block whose input and output channels differ adds a 1x1 conv
    /// projection of its (average-pooled when strided) input, as AttentiveNAS does.
    #[serde(default)]
    pub projection_shortcut: bool,
    /// Whether an MBConv block keeps its 1x1 expansion conv even when the expand ratio is 1
    /// (FBNet's `e1` blocks); see [`Layer::with_expansion_conv`].
    #[serde(default)]
    pub force_expansion: bool,
    /// Kernel width of a convolution when it differs from its height `kernel` (a k x 1 or
    /// 1 x k conv); `None` for square kernels.
    #[serde(default)]
    pub kernel_width: Option<usize>,
    /// Dilation of a convolution (1 for a dense kernel).
    #[serde(default = "one")]
    pub dilation: usize,
}

impl Layer {
    fn base(
        name: impl Into<String>,
        kind: OpKind,
        input: TensorShape,
        out_channels: usize,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            input,
            out_channels,
            kernel: 1,
            stride: 1,
            groups: 1,
            mid_channels: input.channels,
            se_channels: None,
            batch_norm: false,
            bias: false,
            activation: Activation::None,
            projection_shortcut: false,
            force_expansion: false,
            kernel_width: None,
            dilation: 1,
        }
    }

    /// The same conv with a `height` x `width` kernel ("same" padding keeps the spatial size).
    pub fn with_kernel_hw(mut self, height: usize, width: usize) -> Self {
        self.kernel = height;
        self.kernel_width = (height != width).then_some(width);
        self
    }

    /// The same conv with its kernel taps `dilation` pixels apart.
    pub fn with_dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }

    /// Kernel height and width.
    pub fn kernel_hw(&self) -> (usize, usize) {
        (self.kernel, self.kernel_width.unwrap_or(self.kernel))
    }

    /// A user-defined operator with its own counts; its output has `out_channels` channels and
    /// the input's spatial size divided by `stride`.
    pub fn custom(
        name: impl Into<String>,
        input: TensorShape,
        out_channels: usize,
        stride: usize,
        counts: CustomCounts,
    ) -> Self {
        Self {
            stride,
            ..Self::base(name, OpKind::Custom(counts), input, out_channels)
        }
    }

    /// Conv + batch norm + activation, no bias.
    pub fn conv(
        name: impl Into<String>,
        input: TensorShape,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        activation: Activation,
    ) -> Self {
        Self {
            kernel,
            stride,
            batch_norm: true,
            activation,
            ..Self::base(name, OpKind::Conv, input, out_channels)
        }
    }

    /// The same conv with `groups` groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The same layer without batch norm but with a bias (e.g. OFA's feature-mix conv).
    pub fn without_batch_norm(mut self) -> Self {
        self.batch_norm = false;
        self.bias = true;
        self
    }

    /// An inverted-residual (MBConv) block.
    #[allow(clippy::too_many_arguments)]
    pub fn mbconv(
        name: impl Into<String>,
        input: TensorShape,
        out_channels: usize,
        mid_channels: usize,
        kernel: usize,
        stride: usize,
        se_channels: Option<usize>,
        activation: Activation,
    ) -> Self {
        Self {
            kernel,
            stride,
            mid_channels,
            se_channels,
            batch_norm: true,
            activation,
            ..Self::base(name, OpKind::MbConv, input, out_channels)
        }
    }

    /// The same MBConv block with a 1x1 projection shortcut when its channels change
    /// (see [`Layer::projection_shortcut`]).
    pub fn with_projection_shortcut(mut self) -> Self {
        self.projection_shortcut = true;
        self
    }

    /// The same MBConv block with its 1x1 expansion conv kept at expand ratio 1 (FBNet). With
    /// `groups > 1` ([`Layer::with_groups`]) an MBConv block's two 1x1 convs are grouped.
    pub fn with_expansion_conv(mut self) -> Self {
        self.force_expansion = true;
        self
    }

    /// Whether the layer computes a 1x1 projection shortcut (an MBConv block flagged with
    /// [`Layer::with_projection_shortcut`] whose input and output channels differ).
    pub fn has_projection_shortcut(&self) -> bool {
        self.kind == OpKind::MbConv
            && self.projection_shortcut
            && self.input.channels != self.out_channels
    }

    /// A ResNet basic block with a 1x1 projection shortcut.
    pub fn residual_block(
        name: impl Into<String>,
        input: TensorShape,
        out_channels: usize,
        stride: usize,
    ) -> Self {
        Self {
            kernel: 3,
            stride,
            batch_norm: true,
            activation: Activation::Relu,
            ..Self::base(name, OpKind::ResidualBlock, input, out_channels)
        }
    }

    /// A fully connected layer with bias.
    pub fn linear(name: impl Into<String>, in_features: usize, out_features: usize) -> Self {
        Self {
            bias: true,
            ..Self::base(
                name,
                OpKind::Linear,
                TensorShape::flat(in_features),
                out_features,
            )
        }
    }

    /// A k x k pooling with the given stride.
    pub fn pool(
        name: impl Into<String>,
        kind: PoolKind,
        input: TensorShape,
        kernel: usize,
        stride: usize,
    ) -> Self {
        Self {
            kernel,
            stride,
            ..Self::base(name, OpKind::Pool(kind), input, input.channels)
        }
    }

    /// Global average pooling.
    pub fn global_avg_pool(name: impl Into<String>, input: TensorShape) -> Self {
        Self::base(name, OpKind::GlobalAvgPool, input, input.channels)
    }

    /// An identity (skip connection).
    pub fn identity(name: impl Into<String>, input: TensorShape) -> Self {
        Self::base(name, OpKind::Identity, input, input.channels)
    }

    /// A zero op.
    pub fn zero(name: impl Into<String>, input: TensorShape) -> Self {
        Self::base(name, OpKind::Zero, input, input.channels)
    }

    /// Output feature map.
    pub fn output(&self) -> TensorShape {
        match self.kind {
            OpKind::Linear => TensorShape::flat(self.out_channels),
            OpKind::GlobalAvgPool => TensorShape::new(self.input.channels, 1, 1),
            _ => self.input.strided(self.out_channels, self.stride),
        }
    }

    /// Whether an MBConv block or residual block adds its input back (identity shortcut).
    pub fn has_identity_shortcut(&self) -> bool {
        matches!(self.kind, OpKind::MbConv)
            && self.stride == 1
            && self.input.channels == self.out_channels
    }

    /// Whether an MBConv block has an expansion conv (expand ratio above 1).
    pub fn has_expansion(&self) -> bool {
        self.kind == OpKind::MbConv
            && (self.force_expansion || self.mid_channels != self.input.channels)
    }

    /// Multiply-accumulate operations for one image.
    pub fn macs(&self) -> u64 {
        let out = self.output();
        let out_hw = (out.height * out.width) as u64;
        let in_hw = (self.input.height * self.input.width) as u64;
        let cin = self.input.channels as u64;
        let cout = self.out_channels as u64;
        let k2 = (self.kernel * self.kernel) as u64;
        let (kh, kw) = self.kernel_hw();
        match self.kind {
            OpKind::Conv => out_hw * cout * (cin / self.groups.max(1) as u64) * (kh * kw) as u64,
            OpKind::MbConv => {
                let mid = self.mid_channels as u64;
                // The 1x1 convs are grouped when `groups > 1` (FBNet's g2 blocks).
                let groups = self.groups.max(1) as u64;
                let expand = if self.has_expansion() {
                    in_hw * cin * mid / groups
                } else {
                    0
                };
                let depthwise = out_hw * mid * k2;
                let se = self.se_channels.map_or(0, |s| 2 * mid * s as u64);
                let project = out_hw * mid * cout / groups;
                let shortcut = if self.has_projection_shortcut() {
                    out_hw * cin * cout
                } else {
                    0
                };
                expand + depthwise + se + project + shortcut
            }
            OpKind::ResidualBlock => {
                let conv_a = out_hw * cout * cin * 9;
                let conv_b = out_hw * cout * cout * 9;
                let shortcut = out_hw * cout * cin;
                conv_a + conv_b + shortcut
            }
            OpKind::Linear => cin * cout,
            OpKind::Pool(_) | OpKind::GlobalAvgPool | OpKind::Identity | OpKind::Zero => 0,
            OpKind::Custom(counts) => counts.macs,
        }
    }

    /// Learnable parameters (batch norm counted as scale and shift).
    pub fn params(&self) -> u64 {
        let cin = self.input.channels as u64;
        let cout = self.out_channels as u64;
        let k2 = (self.kernel * self.kernel) as u64;
        let (kh, kw) = self.kernel_hw();
        let bn = |c: u64| if self.batch_norm { 2 * c } else { 0 };
        let bias = |c: u64| if self.bias { c } else { 0 };
        match self.kind {
            OpKind::Conv => {
                cout * (cin / self.groups.max(1) as u64) * (kh * kw) as u64 + bn(cout) + bias(cout)
            }
            OpKind::MbConv => {
                let mid = self.mid_channels as u64;
                let groups = self.groups.max(1) as u64;
                let expand = if self.has_expansion() {
                    cin * mid / groups + bn(mid)
                } else {
                    0
                };
                let depthwise = mid * k2 + bn(mid);
                // SE: reduce and expand 1x1 convs, both with bias.
                let se = self.se_channels.map_or(0, |s| {
                    let s = s as u64;
                    mid * s + s + s * mid + mid
                });
                let project = mid * cout / groups + bn(cout);
                let shortcut = if self.has_projection_shortcut() {
                    cin * cout
                } else {
                    0
                };
                expand + depthwise + se + project + shortcut
            }
            OpKind::ResidualBlock => {
                cin * cout * 9 + bn(cout) + cout * cout * 9 + bn(cout) + cin * cout + bn(cout)
            }
            OpKind::Linear => cin * cout + bias(cout),
            OpKind::Pool(_) | OpKind::GlobalAvgPool | OpKind::Identity | OpKind::Zero => 0,
            OpKind::Custom(counts) => counts.params,
        }
    }

    /// Bytes of every tensor the layer writes for one image (intermediate ones included).
    pub fn activation_bytes(&self) -> u64 {
        let out = self.output();
        let elements = match self.kind {
            OpKind::MbConv => {
                let out_hw = (out.height * out.width) as u64;
                let in_hw = (self.input.height * self.input.width) as u64;
                let mid = self.mid_channels as u64;
                let expanded = if self.has_expansion() { in_hw * mid } else { 0 };
                let shortcut = if self.has_projection_shortcut() {
                    out.elements()
                } else {
                    0
                };
                expanded + out_hw * mid + out.elements() + shortcut
            }
            OpKind::ResidualBlock => 3 * out.elements(),
            OpKind::Identity => 0,
            OpKind::Custom(counts) => counts.written_elements,
            _ => out.elements(),
        };
        elements * BYTES_PER_ELEMENT
    }

    /// Bytes of weights (fp32).
    pub fn weight_bytes(&self) -> u64 {
        self.params() * BYTES_PER_ELEMENT
    }
}

/// A decoded architecture: input shape, ordered layers and number of classes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Network {
    /// Input image.
    pub input: TensorShape,
    /// Layers in execution order.
    pub layers: Vec<Layer>,
    /// Canonical name of the architecture within its space (e.g. a NAS-Bench-201 arch string
    /// or FBNet op digits): the row key of user tables and a label for people. Models that
    /// index by architecture read [`Network::genes`] instead of parsing it.
    pub arch_id: Option<String>,
    /// The genes this network was decoded from, set by spaces whose architecture-level tables
    /// and predictors index by genes (NAS-Bench-201, FBNet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genes: Option<Genotype>,
}

impl Network {
    /// A network from its input shape and layers.
    pub fn new(input: TensorShape, layers: Vec<Layer>) -> Self {
        Self {
            input,
            layers,
            arch_id: None,
            genes: None,
        }
    }

    /// The same network tagged with its architecture identifier.
    pub fn with_arch_id(mut self, arch_id: impl Into<String>) -> Self {
        self.arch_id = Some(arch_id.into());
        self
    }

    /// The same network tagged with the genes it was decoded from.
    pub fn with_genes(mut self, genes: Genotype) -> Self {
        self.genes = Some(genes);
        self
    }

    /// Total multiply-accumulates for one image.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(Layer::macs).sum()
    }

    /// Total parameters.
    pub fn params(&self) -> u64 {
        self.layers.iter().map(Layer::params).sum()
    }

    /// Total bytes written by all layers for one image.
    pub fn activation_bytes(&self) -> u64 {
        self.layers.iter().map(Layer::activation_bytes).sum()
    }

    /// Largest input-plus-written bytes of any single layer: a lower bound on the activation
    /// memory a sequential executor needs.
    pub fn peak_activation_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.input.elements() * BYTES_PER_ELEMENT + l.activation_bytes())
            .max()
            .unwrap_or(0)
    }

    /// Multiply-accumulates of the first `layers` layers (the prefix an early exit runs).
    pub fn prefix_macs(&self, layers: usize) -> u64 {
        self.layers.iter().take(layers).map(Layer::macs).sum()
    }

    /// Output of the last layer (the input if there are none).
    pub fn output(&self) -> TensorShape {
        self.layers.last().map_or(self.input, Layer::output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_counts_match_hand_computation() {
        // 3x3 stride-2 conv, 3 -> 32 channels on 224x224: 112*112*32*3*9 MACs.
        let layer = Layer::conv(
            "stem",
            TensorShape::new(3, 224, 224),
            32,
            3,
            2,
            Activation::Relu6,
        );
        assert_eq!(layer.output(), TensorShape::new(32, 112, 112));
        assert_eq!(layer.macs(), 112 * 112 * 32 * 3 * 9);
        assert_eq!(layer.params(), 32 * 3 * 9 + 64);
    }

    #[test]
    fn depthwise_conv_divides_by_groups() {
        let layer = Layer::conv(
            "dw",
            TensorShape::new(32, 10, 10),
            32,
            3,
            1,
            Activation::Relu,
        )
        .with_groups(32);
        assert_eq!(layer.macs(), 10 * 10 * 32 * 9);
    }

    #[test]
    fn mbconv_without_expansion_skips_the_expand_conv() {
        let input = TensorShape::new(16, 14, 14);
        let block = Layer::mbconv("b", input, 16, 16, 3, 1, None, Activation::Relu);
        assert!(!block.has_expansion());
        assert!(block.has_identity_shortcut());
        assert_eq!(block.macs(), 14 * 14 * 16 * 9 + 14 * 14 * 16 * 16);
    }

    #[test]
    fn projection_shortcut_adds_a_strided_1x1_conv_only_when_channels_change() {
        let input = TensorShape::new(16, 8, 8);
        let plain = Layer::mbconv("b", input, 24, 64, 3, 2, None, Activation::Swish);
        let projected = plain.clone().with_projection_shortcut();
        assert!(projected.has_projection_shortcut());
        assert_eq!(projected.macs() - plain.macs(), 4 * 4 * 16 * 24);
        assert_eq!(projected.params() - plain.params(), 16 * 24);
        let same = Layer::mbconv("c", input, 16, 64, 3, 1, None, Activation::Swish)
            .with_projection_shortcut();
        assert!(!same.has_projection_shortcut());
        assert!(same.has_identity_shortcut());
    }

    #[test]
    fn forced_expansion_and_groups_shape_fbnet_style_blocks() {
        let input = TensorShape::new(16, 4, 4);
        let block = Layer::mbconv("f", input, 16, 16, 3, 1, None, Activation::Relu)
            .with_expansion_conv()
            .with_groups(2);
        assert!(block.has_expansion());
        assert_eq!(
            block.macs(),
            16 * 16 * 16 / 2 + 16 * 16 * 9 + 16 * 16 * 16 / 2
        );
        assert_eq!(
            block.params(),
            (16 * 16 / 2 + 32) + (16 * 9 + 32) + (16 * 16 / 2 + 32)
        );
    }

    #[test]
    fn layers_serialised_before_the_new_flags_still_deserialise() {
        let layer = Layer::conv("x", TensorShape::new(3, 8, 8), 4, 3, 1, Activation::Relu);
        let mut value = serde_json::to_value(&layer).expect("serialise");
        let object = value.as_object_mut().expect("object");
        object.remove("projection_shortcut");
        object.remove("force_expansion");
        let back: Layer = serde_json::from_value(value).expect("deserialise");
        assert_eq!(back, layer);
    }

    #[test]
    fn odd_sizes_round_up_under_stride() {
        let s = TensorShape::new(8, 7, 7).strided(16, 2);
        assert_eq!((s.height, s.width), (4, 4));
    }
}
