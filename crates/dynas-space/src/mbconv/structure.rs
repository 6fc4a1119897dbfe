//! The structure of an [`MbConvSpace`] as types: what each gene controls and where each block
//! sits, so that users (the supernet, samplers, genotype lifting) never parse names back.

use super::*;

/// What one gene of an [`MbConvSpace`] controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MbConvGene {
    /// Input resolution.
    Resolution,
    /// Width of the first convolution.
    FirstConvWidth,
    /// Output width of stage `stage` (index into [`MbConvSpace::stages`]).
    StageWidth {
        /// Stage index.
        stage: usize,
    },
    /// Number of blocks of stage `stage`.
    StageDepth {
        /// Stage index.
        stage: usize,
    },
    /// Depthwise kernel of a stage's blocks (`block: None`, per-stage scope) or of one block.
    Kernel {
        /// Stage index.
        stage: usize,
        /// Block index within the stage for per-block choices.
        block: Option<usize>,
    },
    /// Expand ratio of a stage's blocks (`block: None`, per-stage scope) or of one block.
    Expand {
        /// Stage index.
        stage: usize,
        /// Block index within the stage for per-block choices.
        block: Option<usize>,
    },
    /// Width of the final 1x1 expansion conv.
    FinalExpandWidth,
    /// Width of the feature-mix conv after pooling.
    FeatureMixWidth,
}

impl MbConvGene {
    /// The same role in stage `stage` (head genes are returned unchanged).
    pub fn in_stage(self, stage: usize) -> Self {
        match self {
            Self::StageWidth { .. } => Self::StageWidth { stage },
            Self::StageDepth { .. } => Self::StageDepth { stage },
            Self::Kernel { block, .. } => Self::Kernel { stage, block },
            Self::Expand { block, .. } => Self::Expand { stage, block },
            head => head,
        }
    }

    /// The stage a gene belongs to, if any.
    pub fn stage(self) -> Option<usize> {
        match self {
            Self::StageWidth { stage }
            | Self::StageDepth { stage }
            | Self::Kernel { stage, .. }
            | Self::Expand { stage, .. } => Some(stage),
            _ => None,
        }
    }
}

/// Where a block of the largest network sits: stage and position in the stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSlot {
    /// Layer name of the block in every [`Network`] this space lowers to.
    pub name: String,
    /// Stage index (into [`MbConvSpace::stages`]).
    pub stage: usize,
    /// Position within the stage (0 = the stage's first, possibly strided, block).
    pub block: usize,
}

impl MbConvSpace {
    /// What each gene controls, in gene order (one entry per dimension).
    pub fn gene_roles(&self) -> Vec<MbConvGene> {
        let mut roles: Vec<Option<MbConvGene>> = vec![None; self.dimensions.len()];
        let mut set = |slot: Option<usize>, role: MbConvGene| {
            if let Some(i) = slot {
                roles[i] = Some(role);
            }
        };
        set(self.resolution_gene, MbConvGene::Resolution);
        set(self.first_conv_gene, MbConvGene::FirstConvWidth);
        for (stage, (genes, spec)) in self.stage_genes.iter().zip(&self.stages).enumerate() {
            set(genes.width, MbConvGene::StageWidth { stage });
            set(genes.depth, MbConvGene::StageDepth { stage });
            let per_block = spec.scope == ChoiceScope::PerBlock;
            for (b, &slot) in genes.kernel.iter().enumerate() {
                let block = per_block.then_some(b);
                set(slot, MbConvGene::Kernel { stage, block });
            }
            for (b, &slot) in genes.expand.iter().enumerate() {
                let block = per_block.then_some(b);
                set(slot, MbConvGene::Expand { stage, block });
            }
        }
        set(self.final_expand_gene, MbConvGene::FinalExpandWidth);
        set(self.feature_mix_gene, MbConvGene::FeatureMixWidth);
        roles
            .into_iter()
            .map(|r| r.expect("every dimension of a checked space has a role"))
            .collect()
    }

    /// The gene position of `role`, if the space has a gene for it (a choice with one value
    /// has none).
    pub fn gene_of(&self, role: MbConvGene) -> Option<usize> {
        self.gene_roles().iter().position(|&r| r == role)
    }

    /// Every stage block of the largest network, in network order.
    pub fn block_slots(&self) -> Vec<BlockSlot> {
        self.block_names
            .iter()
            .enumerate()
            .flat_map(|(stage, names)| {
                names
                    .iter()
                    .enumerate()
                    .map(move |(block, name)| BlockSlot {
                        name: name.clone(),
                        stage,
                        block,
                    })
            })
            .collect()
    }
}
