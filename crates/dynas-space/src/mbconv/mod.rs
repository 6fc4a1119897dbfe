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

fn check_choices(context: &str, field: &str, values: &[usize], max: usize) -> Result<()> {
    check_at_most(
        context,
        field,
        values.iter().copied().max().unwrap_or(0),
        max,
    )?;
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

/// Refuses a value above `max`: the bounds keep decoding finite and every counter in `u64`.
fn check_at_most(context: &str, field: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(SpaceError::InvalidSpace(format!(
            "{context}: `{field}` {value} is above the limit {max}"
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
    /// Largest input resolution a space may offer.
    pub const MAX_RESOLUTION: usize = 1024;
    /// Largest channel width (first conv, stages, final expand, feature mix, first block) and
    /// channel divisor.
    pub const MAX_WIDTH: usize = 8192;
    /// Largest input-image channel count.
    pub const MAX_IN_CHANNELS: usize = 1024;
    /// Largest expand ratio (of blocks and of the final expand).
    pub const MAX_EXPAND_RATIO: usize = 16;
    /// Largest kernel size.
    pub const MAX_KERNEL: usize = 15;
    /// Largest number of blocks in a stage.
    pub const MAX_DEPTH: usize = 32;
    /// Largest number of stages.
    pub const MAX_STAGES: usize = 32;
    /// Largest number of classes.
    pub const MAX_CLASSES: usize = 1 << 20;

    /// Validates a head and stage table into a space named `name`.
    ///
    /// Every choice list must be non-empty, free of zeros and strictly increasing; strides are
    /// 1 or 2; kernels odd; stage names unique and free of whitespace, `=` and `.`. Sizes are
    /// bounded by the `MAX_*` constants, far above any published space, so that a mistyped or
    /// corrupted definition fails here instead of allocating without end, and so that the MAC,
    /// parameter and byte counters of every decoded network fit in `u64`.
    pub fn new(name: impl Into<String>, head: HeadSpec, stages: Vec<StageSpec>) -> Result<Self> {
        let name = name.into();
        let ctx = format!("space `{name}` head");
        check_at_most(&ctx, "in_channels", head.in_channels, Self::MAX_IN_CHANNELS)?;
        check_at_most(&ctx, "num_classes", head.num_classes, Self::MAX_CLASSES)?;
        check_at_most(
            &ctx,
            "channel_divisor",
            head.channel_divisor,
            Self::MAX_WIDTH,
        )?;
        if stages.len() > Self::MAX_STAGES {
            return Err(SpaceError::InvalidSpace(format!(
                "space `{name}` has {} stages, above the limit {}",
                stages.len(),
                Self::MAX_STAGES
            )));
        }
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
        check_choices(&ctx, "resolutions", &head.resolutions, Self::MAX_RESOLUTION)?;
        check_choices(
            &ctx,
            "first_conv_widths",
            &head.first_conv_widths,
            Self::MAX_WIDTH,
        )?;
        check_stride(&ctx, head.first_conv_stride)?;
        if let Some(block) = &head.first_block {
            let bctx = format!("{ctx} first_block");
            if block.width == 0 || block.expand_ratio == 0 {
                return Err(SpaceError::InvalidSpace(format!(
                    "{bctx}: width and expand_ratio must be positive"
                )));
            }
            check_at_most(&bctx, "width", block.width, Self::MAX_WIDTH)?;
            check_at_most(
                &bctx,
                "expand_ratio",
                block.expand_ratio,
                Self::MAX_EXPAND_RATIO,
            )?;
            check_at_most(&bctx, "kernel", block.kernel, Self::MAX_KERNEL)?;
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
            FinalExpand::Ratio(ratio) => {
                check_at_most(&ctx, "final_expand ratio", *ratio, Self::MAX_EXPAND_RATIO)?;
            }
            FinalExpand::Widths(widths) => {
                check_choices(&ctx, "final_expand widths", widths, Self::MAX_WIDTH)?;
            }
        }
        if let Some(widths) = &head.feature_mix_widths {
            check_choices(&ctx, "feature_mix_widths", widths, Self::MAX_WIDTH)?;
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
            check_choices(&sctx, "widths", &stage.widths, Self::MAX_WIDTH)?;
            check_choices(&sctx, "depths", &stage.depths, Self::MAX_DEPTH)?;
            check_choices(&sctx, "kernels", &stage.kernels, Self::MAX_KERNEL)?;
            check_choices(
                &sctx,
                "expand_ratios",
                &stage.expand_ratios,
                Self::MAX_EXPAND_RATIO,
            )?;
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
        let json = crate::files::read_input_text(path).map_err(|e| SpaceError::Parse {
            input: source.clone(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::from_json_str(&source, &json)
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

mod codec;
mod lower;
mod presets;
mod structure;

pub use structure::{BlockSlot, MbConvGene};

#[cfg(test)]
mod tests;
