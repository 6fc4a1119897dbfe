//! Elastic MobileNet-style spaces (once-for-all, AttentiveNAS) built from a stage table.
//!
//! A [`MbConvSpace`] is a fixed head ([`HeadSpec`]: input, first conv, optional first MBConv
//! block, final-expand conv, optional feature-mix conv, classifier) around a table of elastic
//! stages ([`StageSpec`]: width, depth, kernel and expand-ratio choices, stride, SE, activation).
//! Presets: [`MbConvSpace::attentive_nas`] (the space HADAS searches),
//! [`MbConvSpace::ofa_mobilenet_v3`] and [`MbConvSpace::ofa_mnist`].
//!
//! # Gene layout
//!
//! Genes appear in this order; a dimension with a single choice gets **no** gene (it is fixed):
//!
//! 1. `resolution`
//! 2. `first_conv.width`
//! 3. per stage `S`, in table order: `S.width`, `S.depth`, then
//!    - [`ChoiceScope::PerStage`]: `S.kernel`, `S.expand` (shared by all blocks of the stage);
//!    - [`ChoiceScope::PerBlock`]: `S.block0.kernel`, `S.block0.expand`, `S.block1.kernel`, ...
//!      for all `max(depths)` blocks (genes of blocks beyond the chosen depth are inactive,
//!      as in once-for-all's encoding);
//! 4. `final_expand.width` (only with [`FinalExpand::Widths`])
//! 5. `feature_mix.width`
//!
//! Every choice list is strictly increasing, so gene value 0 everywhere is the smallest subnet
//! and the last value everywhere the largest.
//!
//! # Layer names
//!
//! `first_conv`, `first_block`, `<stage>.block<j>` (e.g. `mb3.block0`, `stage2.block1`),
//! `final_expand`, `global_pool`, `feature_mix`, `classifier`.
//!
//! # Channel rounding
//!
//! Expanded (mid) channels are `make_divisible(in_channels * expand_ratio, divisor)` (no
//! expansion conv when the ratio is 1) and squeeze-and-excitation channels are
//! `make_divisible(mid / 4, divisor)`, as once-for-all and AttentiveNAS do with divisor 8.
//! AttentiveNAS blocks that change width add a 1x1 projection shortcut
//! ([`HeadSpec::projection_shortcuts`]); once-for-all blocks have no residual there.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SpaceError};
use crate::genotype::Genotype;
use crate::network::{Activation, Layer, Network, TensorShape};
use crate::space::{Dimension, SearchSpace};

/// Whether a stage's kernel size and expand ratio are chosen once for the stage or per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChoiceScope {
    /// One kernel and one expand ratio for every block of the stage (AttentiveNAS).
    PerStage,
    /// A kernel and an expand ratio for every block (once-for-all).
    PerBlock,
}

/// One elastic stage of inverted-residual blocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageSpec {
    /// Name used in gene and layer names (e.g. `mb3`).
    pub name: String,
    /// Output-channel choices, strictly increasing.
    pub widths: Vec<usize>,
    /// Number-of-blocks choices, strictly increasing, at least 1.
    pub depths: Vec<usize>,
    /// Depthwise kernel choices, strictly increasing and odd.
    pub kernels: Vec<usize>,
    /// Expand-ratio choices, strictly increasing, at least 1.
    pub expand_ratios: Vec<usize>,
    /// Stride of the first block (1 or 2); later blocks have stride 1.
    pub stride: usize,
    /// Whether blocks carry squeeze-and-excitation.
    pub se: bool,
    /// Activation inside the blocks.
    pub activation: Activation,
    /// Whether kernel and expand ratio are chosen per stage or per block.
    pub scope: ChoiceScope,
}

/// A fixed (non-elastic) MBConv block between the first conv and the first stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FirstBlockSpec {
    /// Output channels.
    pub width: usize,
    /// Depthwise kernel.
    pub kernel: usize,
    /// Expand ratio (1: no expansion conv).
    pub expand_ratio: usize,
    /// Stride.
    pub stride: usize,
    /// Squeeze-and-excitation.
    pub se: bool,
    /// Activation.
    pub activation: Activation,
}

/// The 1x1 conv (with batch norm) between the last stage and global pooling.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FinalExpand {
    /// No final-expand conv.
    None,
    /// Output channels are this multiple of the last stage's chosen width (6 in OFA / AttentiveNAS).
    Ratio(usize),
    /// Output channels chosen from these widths, strictly increasing.
    Widths(Vec<usize>),
}

/// Everything around the elastic stages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HeadSpec {
    /// Input image channels.
    pub in_channels: usize,
    /// Input resolution choices (square images), strictly increasing.
    pub resolutions: Vec<usize>,
    /// Width choices of the 3x3 first conv, strictly increasing.
    pub first_conv_widths: Vec<usize>,
    /// Stride of the first conv.
    pub first_conv_stride: usize,
    /// Activation of the first conv.
    pub first_conv_activation: Activation,
    /// Optional fixed MBConv block after the first conv.
    pub first_block: Option<FirstBlockSpec>,
    /// The final-expand conv.
    pub final_expand: FinalExpand,
    /// Width choices of the feature-mix 1x1 conv after pooling (no batch norm, no bias);
    /// `None` for no feature-mix conv.
    pub feature_mix_widths: Option<Vec<usize>>,
    /// Activation of final-expand and feature-mix convs.
    pub tail_activation: Activation,
    /// Classifier outputs.
    pub num_classes: usize,
    /// Divisor expanded and SE channels are rounded to (8 in OFA / AttentiveNAS; 1: no rounding).
    pub channel_divisor: usize,
    /// Whether blocks that change width add a 1x1 projection of their input to the output
    /// (AttentiveNAS); without it such blocks have no residual (once-for-all).
    pub projection_shortcuts: bool,
}

/// The serialisable definition of an [`MbConvSpace`]: what [`MbConvSpace::new`] validates.
///
/// In JSON (see [`MbConvSpace::from_json_str`]) activations are written `"Relu"`,
/// `"HardSwish"`, ..., the choice scope `"PerStage"` or `"PerBlock"`, and the final expand
/// `"None"`, `{"Ratio": 6}` or `{"Widths": [40]}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MbConvSpec {
    /// Name of the space.
    pub name: String,
    /// Everything around the stages.
    pub head: HeadSpec,
    /// The elastic stages, input to output.
    pub stages: Vec<StageSpec>,
}

/// Kernel and expand ratio of one block of a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockChoice {
    /// Depthwise kernel.
    pub kernel: usize,
    /// Expand ratio.
    pub expand_ratio: usize,
}

/// The choices of one stage of a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageChoice {
    /// Output channels.
    pub width: usize,
    /// Number of active blocks.
    pub depth: usize,
    /// One entry per active block (`blocks.len() == depth`).
    pub blocks: Vec<BlockChoice>,
}

/// A subnet of an [`MbConvSpace`] in structured form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MbConvSubnet {
    /// Input resolution.
    pub resolution: usize,
    /// Width of the first conv.
    pub first_conv_width: usize,
    /// One entry per stage of the space.
    pub stages: Vec<StageChoice>,
    /// Output channels of the final-expand conv, if the space has one.
    pub final_expand_width: Option<usize>,
    /// Output channels of the feature-mix conv, if the space has one.
    pub feature_mix_width: Option<usize>,
}

/// Rounds `value` to a multiple of `divisor`, never below `divisor` nor more than 10% down
/// (the `make_divisible` of the TF / once-for-all code bases).
pub fn make_divisible(value: usize, divisor: usize) -> usize {
    if divisor <= 1 {
        return value.max(1);
    }
    let rounded = ((value + divisor / 2) / divisor * divisor).max(divisor);
    // rounded < 0.9 * value
    if rounded * 10 < value * 9 {
        rounded + divisor
    } else {
        rounded
    }
}

/// [`make_divisible`] of a real-valued (width-scaled) channel count, as the reference code
/// bases compute it in floating point.
pub fn make_divisible_scaled(value: f64, divisor: usize) -> usize {
    let d = divisor.max(1) as f64;
    let rounded = (((value + d / 2.0) / d).floor() * d).max(d);
    let rounded = if rounded < 0.9 * value {
        rounded + d
    } else {
        rounded
    };
    rounded as usize
}

/// Where a stage's values come from: a gene position, or `None` for a fixed single choice.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StageGenes {
    width: Option<usize>,
    depth: Option<usize>,
    /// One entry (per stage) or `max(depths)` entries (per block).
    kernel: Vec<Option<usize>>,
    expand: Vec<Option<usize>>,
}

/// An elastic MobileNet-style space: a validated head and stage table (see the module docs for
/// the gene layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MbConvSpace {
    name: String,
    head: HeadSpec,
    stages: Vec<StageSpec>,
    dimensions: Vec<Dimension>,
    resolution_gene: Option<usize>,
    first_conv_gene: Option<usize>,
    stage_genes: Vec<StageGenes>,
    final_expand_gene: Option<usize>,
    feature_mix_gene: Option<usize>,
    /// `<stage>.block<j>` for every stage and block, built once so decoding only clones.
    block_names: Vec<Vec<String>>,
}

fn check_choices(context: &str, field: &str, values: &[usize]) -> Result<()> {
    if values.is_empty() {
        return Err(SpaceError::InvalidSpace(format!(
            "{context}: `{field}` has no choices"
        )));
    }
    if values.contains(&0) {
        return Err(SpaceError::InvalidSpace(format!(
            "{context}: `{field}` contains 0"
        )));
    }
    if values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(SpaceError::InvalidSpace(format!(
            "{context}: `{field}` {values:?} must be strictly increasing (cheapest first)"
        )));
    }
    Ok(())
}

fn check_stride(context: &str, stride: usize) -> Result<()> {
    if stride == 1 || stride == 2 {
        Ok(())
    } else {
        Err(SpaceError::InvalidSpace(format!(
            "{context}: stride {stride} is not 1 or 2"
        )))
    }
}

fn check_kernel(context: &str, kernel: usize) -> Result<()> {
    if kernel % 2 == 1 {
        Ok(())
    } else {
        Err(SpaceError::InvalidSpace(format!(
            "{context}: kernel {kernel} is not odd"
        )))
    }
}

/// Adds a dimension if it has more than one choice and returns its gene position.
fn push_dimension(
    dimensions: &mut Vec<Dimension>,
    name: String,
    values: &[usize],
) -> Result<Option<usize>> {
    if values.len() <= 1 {
        return Ok(None);
    }
    dimensions.push(Dimension::from_values(name, values)?);
    Ok(Some(dimensions.len() - 1))
}

fn gene_value(genes: &[usize], slot: Option<usize>, values: &[usize]) -> usize {
    let index = slot.and_then(|g| genes.get(g).copied()).unwrap_or(0);
    values.get(index).or(values.first()).copied().unwrap_or(0)
}

fn index_of_value(space: &str, field: &str, values: &[usize], value: usize) -> Result<usize> {
    values
        .iter()
        .position(|&v| v == value)
        .ok_or_else(|| SpaceError::UnknownName {
            space: space.to_string(),
            name: format!("{field}={value}"),
        })
}

impl MbConvSpace {
    /// Validates a head and stage table into a space named `name`.
    ///
    /// Every choice list must be non-empty, free of zeros and strictly increasing; strides are
    /// 1 or 2; kernels odd; stage names unique and free of whitespace, `=` and `.`.
    pub fn new(name: impl Into<String>, head: HeadSpec, stages: Vec<StageSpec>) -> Result<Self> {
        let name = name.into();
        let ctx = format!("space `{name}` head");
        if head.in_channels == 0 {
            return Err(SpaceError::InvalidSpace(format!(
                "{ctx}: `in_channels` is 0"
            )));
        }
        if head.num_classes == 0 {
            return Err(SpaceError::InvalidSpace(format!(
                "{ctx}: `num_classes` is 0"
            )));
        }
        if head.channel_divisor == 0 {
            return Err(SpaceError::InvalidSpace(format!(
                "{ctx}: `channel_divisor` is 0"
            )));
        }
        check_choices(&ctx, "resolutions", &head.resolutions)?;
        check_choices(&ctx, "first_conv_widths", &head.first_conv_widths)?;
        check_stride(&ctx, head.first_conv_stride)?;
        if let Some(block) = &head.first_block {
            let bctx = format!("{ctx} first_block");
            if block.width == 0 || block.expand_ratio == 0 {
                return Err(SpaceError::InvalidSpace(format!(
                    "{bctx}: width and expand_ratio must be positive"
                )));
            }
            check_stride(&bctx, block.stride)?;
            check_kernel(&bctx, block.kernel)?;
        }
        match &head.final_expand {
            FinalExpand::None => {}
            FinalExpand::Ratio(0) => {
                return Err(SpaceError::InvalidSpace(format!(
                    "{ctx}: final_expand ratio is 0"
                )));
            }
            FinalExpand::Ratio(_) => {}
            FinalExpand::Widths(widths) => check_choices(&ctx, "final_expand widths", widths)?,
        }
        if let Some(widths) = &head.feature_mix_widths {
            check_choices(&ctx, "feature_mix_widths", widths)?;
        }
        if stages.is_empty() {
            return Err(SpaceError::InvalidSpace(format!(
                "space `{name}` has no stages"
            )));
        }
        for (i, stage) in stages.iter().enumerate() {
            let sctx = format!("space `{name}` stage {i} (`{}`)", stage.name);
            if stage.name.is_empty()
                || stage
                    .name
                    .chars()
                    .any(|c| c.is_whitespace() || c == '=' || c == '.')
            {
                return Err(SpaceError::InvalidSpace(format!(
                    "{sctx}: name must be non-empty without whitespace, `=` or `.`"
                )));
            }
            if stages[..i].iter().any(|s| s.name == stage.name) {
                return Err(SpaceError::InvalidSpace(format!(
                    "{sctx}: stage name used twice"
                )));
            }
            check_choices(&sctx, "widths", &stage.widths)?;
            check_choices(&sctx, "depths", &stage.depths)?;
            check_choices(&sctx, "kernels", &stage.kernels)?;
            check_choices(&sctx, "expand_ratios", &stage.expand_ratios)?;
            check_stride(&sctx, stage.stride)?;
            for &k in &stage.kernels {
                check_kernel(&sctx, k)?;
            }
        }

        let mut dimensions = Vec::new();
        let resolution_gene =
            push_dimension(&mut dimensions, "resolution".into(), &head.resolutions)?;
        let first_conv_gene = push_dimension(
            &mut dimensions,
            "first_conv.width".into(),
            &head.first_conv_widths,
        )?;
        let mut stage_genes = Vec::with_capacity(stages.len());
        for stage in &stages {
            let s = &stage.name;
            let width = push_dimension(&mut dimensions, format!("{s}.width"), &stage.widths)?;
            let depth = push_dimension(&mut dimensions, format!("{s}.depth"), &stage.depths)?;
            let (mut kernel, mut expand) = (Vec::new(), Vec::new());
            match stage.scope {
                ChoiceScope::PerStage => {
                    kernel.push(push_dimension(
                        &mut dimensions,
                        format!("{s}.kernel"),
                        &stage.kernels,
                    )?);
                    expand.push(push_dimension(
                        &mut dimensions,
                        format!("{s}.expand"),
                        &stage.expand_ratios,
                    )?);
                }
                ChoiceScope::PerBlock => {
                    let max_depth = stage.depths.last().copied().unwrap_or(0);
                    for b in 0..max_depth {
                        kernel.push(push_dimension(
                            &mut dimensions,
                            format!("{s}.block{b}.kernel"),
                            &stage.kernels,
                        )?);
                        expand.push(push_dimension(
                            &mut dimensions,
                            format!("{s}.block{b}.expand"),
                            &stage.expand_ratios,
                        )?);
                    }
                }
            }
            stage_genes.push(StageGenes {
                width,
                depth,
                kernel,
                expand,
            });
        }
        let final_expand_gene = match &head.final_expand {
            FinalExpand::Widths(widths) => {
                push_dimension(&mut dimensions, "final_expand.width".into(), widths)?
            }
            _ => None,
        };
        let feature_mix_gene = match &head.feature_mix_widths {
            Some(widths) => push_dimension(&mut dimensions, "feature_mix.width".into(), widths)?,
            None => None,
        };
        let block_names = stages
            .iter()
            .map(|stage| {
                let max_depth = stage.depths.last().copied().unwrap_or(0);
                (0..max_depth)
                    .map(|b| format!("{}.block{b}", stage.name))
                    .collect()
            })
            .collect();
        Ok(Self {
            block_names,
            name,
            head,
            stages,
            dimensions,
            resolution_gene,
            first_conv_gene,
            stage_genes,
            final_expand_gene,
            feature_mix_gene,
        })
    }

    /// Validates a serialisable definition (see [`MbConvSpace::new`]).
    pub fn from_spec(spec: MbConvSpec) -> Result<Self> {
        Self::new(spec.name, spec.head, spec.stages)
    }

    /// The definition this space was built from.
    pub fn spec(&self) -> MbConvSpec {
        MbConvSpec {
            name: self.name.clone(),
            head: self.head.clone(),
            stages: self.stages.clone(),
        }
    }

    /// Parses and validates an [`MbConvSpec`] written as JSON. Syntax and missing-field
    /// errors become [`SpaceError::Parse`] with the line and column; `source` (a file name,
    /// say) names the input in the error.
    pub fn from_json_str(source: &str, json: &str) -> Result<Self> {
        let spec: MbConvSpec = serde_json::from_str(json).map_err(|e| SpaceError::Parse {
            input: source.to_string(),
            reason: e.to_string(),
        })?;
        Self::from_spec(spec)
    }

    /// Reads, parses and validates an [`MbConvSpec`] JSON file; errors name the file.
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let json = std::fs::read_to_string(path).map_err(|e| SpaceError::Parse {
            input: source.clone(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::from_json_str(&source, &json)
    }

    /// The AttentiveNAS space searched by HADAS (28 genes, kernel and expand ratio per stage,
    /// swish everywhere, v3 head with final expand 6x, 1000 classes; see
    /// [`MbConvSpace::with_num_classes`] for CIFAR-100).
    pub fn attentive_nas() -> Self {
        let stage = |name: &str,
                     widths: &[usize],
                     depths: &[usize],
                     expand_ratios: &[usize],
                     stride: usize,
                     se: bool| StageSpec {
            name: name.to_string(),
            widths: widths.to_vec(),
            depths: depths.to_vec(),
            kernels: vec![3, 5],
            expand_ratios: expand_ratios.to_vec(),
            stride,
            se,
            activation: Activation::Swish,
            scope: ChoiceScope::PerStage,
        };
        let stages = vec![
            stage("mb1", &[16, 24], &[1, 2], &[1], 1, false),
            stage("mb2", &[24, 32], &[3, 4, 5], &[4, 5, 6], 2, false),
            stage("mb3", &[32, 40], &[3, 4, 5, 6], &[4, 5, 6], 2, true),
            stage("mb4", &[64, 72], &[3, 4, 5, 6], &[4, 5, 6], 2, false),
            stage(
                "mb5",
                &[112, 120, 128],
                &[3, 4, 5, 6, 7, 8],
                &[4, 5, 6],
                1,
                true,
            ),
            stage(
                "mb6",
                &[192, 200, 208, 216],
                &[3, 4, 5, 6, 7, 8],
                &[6],
                2,
                true,
            ),
            stage("mb7", &[216, 224], &[1, 2], &[6], 1, true),
        ];
        let head = HeadSpec {
            in_channels: 3,
            resolutions: vec![192, 224, 256, 288],
            first_conv_widths: vec![16, 24],
            first_conv_stride: 2,
            first_conv_activation: Activation::Swish,
            first_block: None,
            final_expand: FinalExpand::Ratio(6),
            feature_mix_widths: Some(vec![1792, 1984]),
            tail_activation: Activation::Swish,
            num_classes: 1000,
            channel_divisor: 8,
            projection_shortcuts: true,
        };
        Self::new("attentive-nas", head, stages).expect("the AttentiveNAS preset is valid")
    }

    /// once-for-all's OFAMobileNetV3 (width multiplier 1.0): 5 stages of up to 4 blocks, depth
    /// 2/3/4 per stage, kernel 3/5/7 and expand ratio 3/4/6 per block, resolution 160..=224
    /// in steps of 4 (46 genes). First conv and first block 16, stages 24 / 40 (SE) / 80 /
    /// 112 (SE) / 160 (SE) with strides 2, 2, 2, 1, 2, ReLU in the first two stages and hard
    /// swish after, final expand 960, feature mix 1280, 1000 classes.
    pub fn ofa_mobilenet_v3() -> Self {
        Self::ofa_mobilenet_v3_width(1.0).expect("width 1.0 is valid")
    }

    /// [`MbConvSpace::ofa_mobilenet_v3`] with every width scaled by `width_mult` and rounded
    /// to a multiple of 8 as once-for-all does (1.2 is the network of Dynamic-OFA's Jetson
    /// lookup tables: 24 / 32 / 48 / 96 / 136 / 192, final expand 1152, feature mix 1536).
    pub fn ofa_mobilenet_v3_width(width_mult: f64) -> Result<Self> {
        if !(width_mult.is_finite() && width_mult > 0.0 && width_mult <= 10.0) {
            return Err(SpaceError::InvalidParameter {
                name: "width_mult",
                reason: format!("{width_mult} is not in (0, 10]"),
            });
        }
        let scaled = |channels: usize| make_divisible_scaled(channels as f64 * width_mult, 8);
        let stage = |name: &str, width: usize, stride: usize, se: bool, activation| StageSpec {
            name: name.to_string(),
            widths: vec![scaled(width)],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            stride,
            se,
            activation,
            scope: ChoiceScope::PerBlock,
        };
        let stages = vec![
            stage("stage1", 24, 2, false, Activation::Relu),
            stage("stage2", 40, 2, true, Activation::Relu),
            stage("stage3", 80, 2, false, Activation::HardSwish),
            stage("stage4", 112, 1, true, Activation::HardSwish),
            stage("stage5", 160, 2, true, Activation::HardSwish),
        ];
        let head = HeadSpec {
            in_channels: 3,
            resolutions: (160..=224).step_by(4).collect(),
            first_conv_widths: vec![scaled(16)],
            first_conv_stride: 2,
            first_conv_activation: Activation::HardSwish,
            first_block: Some(FirstBlockSpec {
                width: scaled(16),
                kernel: 3,
                expand_ratio: 1,
                stride: 1,
                se: false,
                activation: Activation::Relu,
            }),
            final_expand: FinalExpand::Widths(vec![scaled(960)]),
            feature_mix_widths: Some(vec![scaled(1280)]),
            tail_activation: Activation::HardSwish,
            num_classes: 1000,
            channel_divisor: 8,
            projection_shortcuts: false,
        };
        let name = if width_mult == 1.0 {
            "ofa-mobilenet-v3".to_string()
        } else {
            format!("ofa-mobilenet-v3-w{width_mult}")
        };
        Self::new(name, head, stages)
    }

    /// A small once-for-all space for 1-channel 28x28 (or 20x20) images that trains on a CPU
    /// in minutes, with the layers of the `lut/ofa-mnist` Jetson lookup tables: first conv
    /// 1->16 k3 s2, first block 16->16 e1 k3, one stage of width 24 (first block stride 2,
    /// kernel 3/5/7 and expand 3/4/6 per block, depth 2/3/4 as in OFA's elastic depth), final
    /// expand 1x1 conv 24->40 with batch norm, global pool, feature-mix 1x1 conv 40->80
    /// without batch norm, linear 80->10. Genes: resolution (20/28), depth, 4 x (kernel, expand).
    pub fn ofa_mnist() -> Self {
        let stages = vec![StageSpec {
            name: "stage1".to_string(),
            widths: vec![24],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            stride: 2,
            se: false,
            activation: Activation::Relu,
            scope: ChoiceScope::PerBlock,
        }];
        let head = HeadSpec {
            in_channels: 1,
            resolutions: vec![20, 28],
            first_conv_widths: vec![16],
            first_conv_stride: 2,
            first_conv_activation: Activation::HardSwish,
            first_block: Some(FirstBlockSpec {
                width: 16,
                kernel: 3,
                expand_ratio: 1,
                stride: 1,
                se: false,
                activation: Activation::Relu,
            }),
            final_expand: FinalExpand::Widths(vec![40]),
            feature_mix_widths: Some(vec![80]),
            tail_activation: Activation::HardSwish,
            num_classes: 10,
            channel_divisor: 8,
            projection_shortcuts: false,
        };
        Self::new("ofa-mnist", head, stages).expect("the OFA MNIST preset is valid")
    }

    /// The same space with another number of classes (e.g. 100 for CIFAR-100).
    pub fn with_num_classes(mut self, num_classes: usize) -> Result<Self> {
        if num_classes == 0 {
            return Err(SpaceError::InvalidParameter {
                name: "num_classes",
                reason: "must be at least 1".to_string(),
            });
        }
        self.head.num_classes = num_classes;
        Ok(self)
    }

    /// The head description.
    pub fn head(&self) -> &HeadSpec {
        &self.head
    }

    /// The stage table.
    pub fn stages(&self) -> &[StageSpec] {
        &self.stages
    }

    /// Expanded channels of a block with `in_channels` inputs (equal to the input when the
    /// ratio is 1: no expansion conv).
    pub fn mid_channels(&self, in_channels: usize, expand_ratio: usize) -> usize {
        if expand_ratio <= 1 {
            in_channels
        } else {
            make_divisible(in_channels * expand_ratio, self.head.channel_divisor)
        }
    }

    /// Squeeze channels of the SE module of a block with `mid_channels` expanded channels.
    pub fn se_channels(&self, mid_channels: usize) -> usize {
        make_divisible(mid_channels / 4, self.head.channel_divisor)
    }

    /// Decodes a genotype into its structured subnet (inactive per-block genes are ignored).
    pub fn subnet(&self, genotype: &Genotype) -> Result<MbConvSubnet> {
        self.validate(genotype)?;
        let genes = genotype.genes();
        let stages = self
            .stages
            .iter()
            .zip(&self.stage_genes)
            .map(|(spec, slots)| {
                let width = gene_value(genes, slots.width, &spec.widths);
                let depth = gene_value(genes, slots.depth, &spec.depths);
                let blocks = (0..depth)
                    .map(|b| {
                        let slot = |list: &[Option<usize>]| match spec.scope {
                            ChoiceScope::PerStage => list.first().copied().flatten(),
                            ChoiceScope::PerBlock => list.get(b).copied().flatten(),
                        };
                        BlockChoice {
                            kernel: gene_value(genes, slot(&slots.kernel), &spec.kernels),
                            expand_ratio: gene_value(
                                genes,
                                slot(&slots.expand),
                                &spec.expand_ratios,
                            ),
                        }
                    })
                    .collect();
                StageChoice {
                    width,
                    depth,
                    blocks,
                }
            })
            .collect::<Vec<StageChoice>>();
        let final_expand_width = match &self.head.final_expand {
            FinalExpand::None => None,
            FinalExpand::Ratio(ratio) => stages.last().map(|s| s.width * ratio),
            FinalExpand::Widths(widths) => Some(gene_value(genes, self.final_expand_gene, widths)),
        };
        Ok(MbConvSubnet {
            resolution: gene_value(genes, self.resolution_gene, &self.head.resolutions),
            first_conv_width: gene_value(genes, self.first_conv_gene, &self.head.first_conv_widths),
            stages,
            final_expand_width,
            feature_mix_width: self
                .head
                .feature_mix_widths
                .as_ref()
                .map(|widths| gene_value(genes, self.feature_mix_gene, widths)),
        })
    }

    /// Encodes a structured subnet; the inverse of [`MbConvSpace::subnet`]. Genes of inactive
    /// per-block choices are set to 0, so `genotype(subnet(g))` is the canonical form of `g`.
    pub fn genotype(&self, subnet: &MbConvSubnet) -> Result<Genotype> {
        let space = self.name.as_str();
        let mut genes = vec![0; self.dimensions.len()];
        let mut set = |slot: Option<usize>, field: &str, values: &[usize], value: usize| {
            let index = index_of_value(space, field, values, value)?;
            if let Some(g) = slot {
                genes[g] = index;
            }
            Ok::<(), SpaceError>(())
        };
        set(
            self.resolution_gene,
            "resolution",
            &self.head.resolutions,
            subnet.resolution,
        )?;
        set(
            self.first_conv_gene,
            "first_conv.width",
            &self.head.first_conv_widths,
            subnet.first_conv_width,
        )?;
        if subnet.stages.len() != self.stages.len() {
            return Err(SpaceError::InvalidParameter {
                name: "subnet stages",
                reason: format!(
                    "{} stages given, space `{space}` has {}",
                    subnet.stages.len(),
                    self.stages.len()
                ),
            });
        }
        for ((spec, slots), choice) in self
            .stages
            .iter()
            .zip(&self.stage_genes)
            .zip(&subnet.stages)
        {
            let s = &spec.name;
            set(
                slots.width,
                &format!("{s}.width"),
                &spec.widths,
                choice.width,
            )?;
            set(
                slots.depth,
                &format!("{s}.depth"),
                &spec.depths,
                choice.depth,
            )?;
            if choice.blocks.len() != choice.depth {
                return Err(SpaceError::InvalidParameter {
                    name: "subnet blocks",
                    reason: format!(
                        "stage `{s}` has depth {} but {} block choices",
                        choice.depth,
                        choice.blocks.len()
                    ),
                });
            }
            for (b, block) in choice.blocks.iter().enumerate() {
                let (kernel_slot, expand_slot, kernel_field, expand_field) = match spec.scope {
                    ChoiceScope::PerStage => {
                        if let Some(first) = choice.blocks.first()
                            && first != block
                        {
                            return Err(SpaceError::InvalidParameter {
                                name: "subnet blocks",
                                reason: format!(
                                    "stage `{s}` chooses kernel and expand ratio per stage, \
                                     but block {b} differs from block 0"
                                ),
                            });
                        }
                        (
                            slots.kernel.first().copied().flatten(),
                            slots.expand.first().copied().flatten(),
                            format!("{s}.kernel"),
                            format!("{s}.expand"),
                        )
                    }
                    ChoiceScope::PerBlock => (
                        slots.kernel.get(b).copied().flatten(),
                        slots.expand.get(b).copied().flatten(),
                        format!("{s}.block{b}.kernel"),
                        format!("{s}.block{b}.expand"),
                    ),
                };
                set(kernel_slot, &kernel_field, &spec.kernels, block.kernel)?;
                set(
                    expand_slot,
                    &expand_field,
                    &spec.expand_ratios,
                    block.expand_ratio,
                )?;
            }
        }
        let expected_final = match &self.head.final_expand {
            FinalExpand::None => None,
            FinalExpand::Ratio(ratio) => subnet.stages.last().map(|s| s.width * ratio),
            FinalExpand::Widths(widths) => {
                let width =
                    subnet
                        .final_expand_width
                        .ok_or_else(|| SpaceError::InvalidParameter {
                            name: "final_expand_width",
                            reason: format!("space `{space}` has a final-expand conv"),
                        })?;
                set(self.final_expand_gene, "final_expand.width", widths, width)?;
                Some(width)
            }
        };
        if subnet.final_expand_width != expected_final {
            return Err(SpaceError::InvalidParameter {
                name: "final_expand_width",
                reason: format!(
                    "{:?} given, space `{space}` implies {expected_final:?}",
                    subnet.final_expand_width
                ),
            });
        }
        match (&self.head.feature_mix_widths, subnet.feature_mix_width) {
            (Some(widths), Some(width)) => {
                set(self.feature_mix_gene, "feature_mix.width", widths, width)?;
            }
            (None, None) => {}
            (widths, given) => {
                return Err(SpaceError::InvalidParameter {
                    name: "feature_mix_width",
                    reason: format!(
                        "{given:?} given, but space `{space}` {} a feature-mix conv",
                        if widths.is_some() { "has" } else { "has no" }
                    ),
                });
            }
        }
        Ok(Genotype::new(genes))
    }

    /// The canonical genotype of `genotype`: inactive per-block genes set to 0.
    pub fn canonical(&self, genotype: &Genotype) -> Result<Genotype> {
        self.genotype(&self.subnet(genotype)?)
    }

    /// The layers of a subnet. Meant for subnets of this space ([`MbConvSpace::subnet`], or
    /// checked with [`MbConvSpace::genotype`]); other values give a network of those sizes.
    pub fn network(&self, subnet: &MbConvSubnet) -> Network {
        let head = &self.head;
        let input = TensorShape::new(head.in_channels, subnet.resolution, subnet.resolution);
        let mut layers =
            Vec::with_capacity(6 + subnet.stages.iter().map(|s| s.blocks.len()).sum::<usize>());
        let first_conv = Layer::conv(
            "first_conv",
            input,
            subnet.first_conv_width,
            3,
            head.first_conv_stride,
            head.first_conv_activation,
        );
        let mut shape = first_conv.output();
        layers.push(first_conv);
        if let Some(block) = &head.first_block {
            let mid = self.mid_channels(shape.channels, block.expand_ratio);
            let layer = Layer::mbconv(
                "first_block",
                shape,
                block.width,
                mid,
                block.kernel,
                block.stride,
                block.se.then(|| self.se_channels(mid)),
                block.activation,
            );
            shape = layer.output();
            layers.push(layer);
        }
        for ((spec, choice), names) in self
            .stages
            .iter()
            .zip(&subnet.stages)
            .zip(&self.block_names)
        {
            for (b, block) in choice.blocks.iter().enumerate() {
                let mid = self.mid_channels(shape.channels, block.expand_ratio);
                let name = match names.get(b) {
                    Some(name) => name.clone(),
                    None => format!("{}.block{b}", spec.name),
                };
                let mut layer = Layer::mbconv(
                    name,
                    shape,
                    choice.width,
                    mid,
                    block.kernel,
                    if b == 0 { spec.stride } else { 1 },
                    spec.se.then(|| self.se_channels(mid)),
                    spec.activation,
                );
                layer.projection_shortcut = head.projection_shortcuts;
                shape = layer.output();
                layers.push(layer);
            }
        }
        if let Some(width) = subnet.final_expand_width {
            let layer = Layer::conv("final_expand", shape, width, 1, 1, head.tail_activation);
            shape = layer.output();
            layers.push(layer);
        }
        let pool = Layer::global_avg_pool("global_pool", shape);
        shape = pool.output();
        layers.push(pool);
        if let Some(width) = subnet.feature_mix_width {
            let mut layer = Layer::conv("feature_mix", shape, width, 1, 1, head.tail_activation)
                .without_batch_norm();
            // OFA and AttentiveNAS build this conv without bias.
            layer.bias = false;
            shape = layer.output();
            layers.push(layer);
        }
        layers.push(Layer::linear(
            "classifier",
            shape.channels,
            head.num_classes,
        ));
        Network::new(input, layers)
    }
}

impl SearchSpace for MbConvSpace {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> Result<Network> {
        Ok(self.network(&self.subnet(genotype)?))
    }
}

#[cfg(test)]
mod tests {

    use approx::assert_relative_eq;

    use super::*;
    use crate::seeded_rng;

    #[test]
    fn make_divisible_matches_the_reference_rounding() {
        assert_eq!(make_divisible(48, 8), 48);
        assert_eq!(make_divisible(16 * 5, 8), 80);
        assert_eq!(make_divisible(24 * 5, 8), 120);
        assert_eq!(make_divisible(36, 8), 40);
        assert_eq!(make_divisible(3, 8), 8);
        assert_eq!(make_divisible(100, 8), 104);
        assert_eq!(make_divisible(7, 1), 7);
    }

    #[test]
    fn presets_have_the_documented_gene_counts() {
        let attentive = MbConvSpace::attentive_nas();
        assert_eq!(attentive.dimensions().len(), 28);
        // 4 resolutions x 2 first-conv widths x stage choices x 2 last-conv widths.
        let stages: u128 = [
            2 * 2 * 2,
            2 * 3 * 2 * 3,
            2 * 4 * 2 * 3,
            2 * 4 * 2 * 3,
            3 * 6 * 2 * 3,
            4 * 6 * 2,
            2 * 2 * 2,
        ]
        .iter()
        .product();
        assert_eq!(attentive.cardinality(), 4 * 2 * stages * 2);
        let names: Vec<&str> = attentive.dimensions().iter().map(|d| d.name()).collect();
        assert_eq!(
            &names[..6],
            &[
                "resolution",
                "first_conv.width",
                "mb1.width",
                "mb1.depth",
                "mb1.kernel",
                "mb2.width"
            ]
        );
        assert_eq!(names[27], "feature_mix.width");
        // The same 28-gene layout as the AlphaNet/AttentiveNAS encodings used with HADAS-style
        // searches (resolution, first conv, per stage width/depth/kernel[/expand], last conv).
        assert_eq!(
            attentive.largest().genes(),
            &[
                3, 1, 1, 1, 1, 1, 2, 1, 2, 1, 3, 1, 2, 1, 3, 1, 2, 2, 5, 1, 2, 3, 5, 1, 1, 1, 1, 1
            ]
        );

        let ofa = MbConvSpace::ofa_mobilenet_v3();
        assert_eq!(ofa.dimensions().len(), 46);
        assert_eq!(ofa.dimensions()[0].len(), 17);
        assert_eq!(ofa.dimensions()[1].name(), "stage1.depth");
        assert_eq!(ofa.dimensions()[2].name(), "stage1.block0.kernel");

        let mnist = MbConvSpace::ofa_mnist();
        assert_eq!(mnist.dimensions().len(), 10);
        assert_eq!(mnist.cardinality(), 2 * 3 * 9u128.pow(4));
    }

    #[test]
    fn attentive_nas_a0_matches_the_published_flops() {
        // AttentiveNAS-A0 is the smallest subnet: 203 M MACs at 192x192 (paper, table 1).
        let space = MbConvSpace::attentive_nas();
        let a0 = space.subnet(&space.smallest()).expect("smallest decodes");
        assert_eq!(a0.resolution, 192);
        assert_eq!(
            a0.stages.iter().map(|s| s.depth).collect::<Vec<_>>(),
            [1, 3, 3, 3, 3, 3, 1]
        );
        let network = space.network(&a0);
        assert_relative_eq!(network.macs() as f64, 203e6, max_relative = 0.01);
        let largest = space.decode(&space.largest()).expect("largest decodes");
        assert!(largest.macs() > 5 * network.macs());
        assert_eq!(largest.output().channels, 1000);
    }

    #[test]
    fn ofa_mobilenet_v3_supernet_has_the_published_size() {
        // OFA's ofa_mbv3_d234_e346_k357_w1.0 supernet: 7.7 M parameters.
        let space = MbConvSpace::ofa_mobilenet_v3();
        let largest = space.decode(&space.largest()).expect("largest decodes");
        assert_relative_eq!(largest.params() as f64, 7.7e6, max_relative = 0.02);
        let smallest = space.decode(&space.smallest()).expect("smallest decodes");
        assert!(smallest.macs() < largest.macs());
        let names: Vec<&str> = largest.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(&names[..3], &["first_conv", "first_block", "stage1.block0"]);
        assert_eq!(
            &names[names.len() - 4..],
            &["final_expand", "global_pool", "feature_mix", "classifier"]
        );
        let final_expand = &largest.layers[names.len() - 4];
        assert!(
            !space
                .dimensions()
                .iter()
                .any(|d| d.name().contains("width"))
        );
        assert_eq!(
            (final_expand.input.channels, final_expand.out_channels),
            (160, 960)
        );
        // stage2 has SE with squeeze = make_divisible(mid / 4, 8).
        let block = &largest.layers[1 + 1 + 4];
        assert_eq!(block.name, "stage2.block0");
        assert_eq!(block.mid_channels, 144);
        assert_eq!(block.se_channels, Some(40));
    }

    #[test]
    fn subnet_and_genotype_are_inverse() {
        for space in [
            MbConvSpace::attentive_nas(),
            MbConvSpace::ofa_mobilenet_v3(),
            MbConvSpace::ofa_mnist(),
        ] {
            let mut rng = seeded_rng(11);
            for _ in 0..50 {
                let genotype = space.sample(&mut rng);
                let subnet = space.subnet(&genotype).expect("decodes");
                for stage in &subnet.stages {
                    assert_eq!(stage.blocks.len(), stage.depth);
                }
                let canonical = space.genotype(&subnet).expect("encodes");
                assert_eq!(space.subnet(&canonical).expect("decodes"), subnet);
                assert_eq!(space.canonical(&canonical).expect("canonical"), canonical);
            }
        }
    }

    #[test]
    fn per_block_genes_beyond_depth_are_inactive() {
        let space = MbConvSpace::ofa_mnist();
        let mut genotype = space.smallest(); // depth 2: blocks 2 and 3 inactive
        let base = space.decode(&genotype).expect("decodes");
        let last = genotype.len() - 1; // stage1.block3.expand
        genotype.genes_mut()[last] = 2;
        assert_eq!(space.decode(&genotype).expect("decodes"), base);
        assert_eq!(
            space.canonical(&genotype).expect("canonical"),
            space.smallest()
        );
    }

    #[test]
    fn bad_subnets_and_genotypes_are_typed_errors() {
        let space = MbConvSpace::attentive_nas();
        let mut subnet = space.subnet(&space.smallest()).expect("decodes");
        subnet.resolution = 100;
        assert_eq!(
            space.genotype(&subnet),
            Err(SpaceError::UnknownName {
                space: "attentive-nas".into(),
                name: "resolution=100".into()
            })
        );
        let mut subnet = space.subnet(&space.smallest()).expect("decodes");
        subnet.stages[1].blocks[2].kernel = 5;
        assert!(matches!(
            space.genotype(&subnet),
            Err(SpaceError::InvalidParameter {
                name: "subnet blocks",
                ..
            })
        ));
        let mut subnet = space.subnet(&space.smallest()).expect("decodes");
        subnet.stages[1].depth = 4;
        assert!(matches!(
            space.genotype(&subnet),
            Err(SpaceError::InvalidParameter {
                name: "subnet blocks",
                ..
            })
        ));
        let mut subnet = space.subnet(&space.smallest()).expect("decodes");
        subnet.final_expand_width = Some(100);
        assert!(matches!(
            space.genotype(&subnet),
            Err(SpaceError::InvalidParameter {
                name: "final_expand_width",
                ..
            })
        ));
        assert!(matches!(
            space.decode(&Genotype::new(vec![0; 27])),
            Err(SpaceError::WrongLength {
                expected: 28,
                got: 27,
                ..
            })
        ));
        let mut genotype = space.smallest();
        genotype.genes_mut()[0] = 4;
        assert!(matches!(
            space.subnet(&genotype),
            Err(SpaceError::IndexOutOfRange {
                index: 4,
                choices: 4,
                ..
            })
        ));
    }

    #[test]
    fn invalid_stage_tables_are_rejected_with_the_field_named() {
        let space = MbConvSpace::ofa_mnist();
        let head = space.head().clone();
        let stage = space.stages()[0].clone();
        let expect_invalid =
            |head: HeadSpec, stages: Vec<StageSpec>, needle: &str| match MbConvSpace::new(
                "custom", head, stages,
            ) {
                Err(SpaceError::InvalidSpace(message)) => {
                    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
                }
                other => panic!("expected InvalidSpace, got {other:?}"),
            };
        expect_invalid(head.clone(), vec![], "no stages");
        let mut s = stage.clone();
        s.kernels = vec![5, 3];
        expect_invalid(head.clone(), vec![s], "kernels");
        let mut s = stage.clone();
        s.kernels = vec![3, 4];
        expect_invalid(head.clone(), vec![s], "not odd");
        let mut s = stage.clone();
        s.stride = 3;
        expect_invalid(head.clone(), vec![s], "stride 3");
        let mut s = stage.clone();
        s.depths = vec![];
        expect_invalid(head.clone(), vec![s], "depths");
        let mut s = stage.clone();
        s.name = "a.b".into();
        expect_invalid(head.clone(), vec![s], "name");
        expect_invalid(head.clone(), vec![stage.clone(), stage.clone()], "twice");
        let mut h = head.clone();
        h.resolutions = vec![28, 28];
        expect_invalid(h, vec![stage.clone()], "resolutions");
        let mut h = head.clone();
        h.num_classes = 0;
        expect_invalid(h, vec![stage.clone()], "num_classes");
        assert!(MbConvSpace::new("custom", head, vec![stage]).is_ok());
    }

    #[test]
    fn specs_round_trip_through_json_files_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        for space in [
            MbConvSpace::attentive_nas(),
            MbConvSpace::ofa_mobilenet_v3(),
            MbConvSpace::ofa_mnist(),
        ] {
            let path = dir.path().join(format!("{}.json", space.name()));
            let json = serde_json::to_string_pretty(&space.spec()).expect("serialises");
            std::fs::write(&path, json).expect("write");
            assert_eq!(MbConvSpace::from_json_file(&path).expect("loads"), space);
        }
        let missing = dir.path().join("missing.json");
        match MbConvSpace::from_json_file(&missing) {
            Err(SpaceError::Parse { input, .. }) => assert!(input.ends_with("missing.json")),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let mut spec = serde_json::to_value(MbConvSpace::ofa_mnist().spec()).expect("value");
        spec["head"]
            .as_object_mut()
            .expect("object")
            .remove("num_classes");
        match MbConvSpace::from_json_str("mnist.json", &spec.to_string()) {
            Err(SpaceError::Parse { input, reason }) => {
                assert_eq!(input, "mnist.json");
                assert!(reason.contains("num_classes"), "{reason}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        spec["head"]["num_classes"] = 10.into();
        spec["stages"][0]["kernels"] = serde_json::json!([7, 3]);
        assert!(matches!(
            MbConvSpace::from_json_str("mnist.json", &spec.to_string()),
            Err(SpaceError::InvalidSpace(message)) if message.contains("kernels")
        ));
    }

    #[test]
    fn num_classes_can_be_changed() {
        let space = MbConvSpace::attentive_nas()
            .with_num_classes(100)
            .expect("valid");
        let network = space.decode(&space.smallest()).expect("decodes");
        assert_eq!(network.output().channels, 100);
        assert!(MbConvSpace::attentive_nas().with_num_classes(0).is_err());
    }
}
