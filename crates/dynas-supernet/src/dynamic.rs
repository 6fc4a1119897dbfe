//! Dynamic inference in deployed form at batch 1, the way a runtime serves: the backbone runs
//! block by block ([`DeployedSubnet`] as an early-exit backbone), and after a block with an
//! active exit its head, batch norm folded ([`FoldedExitHead`]), decides whether the input
//! leaves. Only active heads run; the decision is the max-softmax rule of
//! [`dynas_exits::ExitRule::MaxSoftmax`].

use dynas_exits::{Backbone as _, ExitHeads, FoldedExitHead};
use tch::{Kind, Tensor};

use crate::error::{Result, SupernetError};
use crate::supernet::DeployedSubnet;

/// Which heads run after which blocks, with their thresholds.
#[derive(Debug)]
pub struct ExitPlan {
    /// For each backbone block, the head after it: folded head, threshold, head index.
    after_block: Vec<Option<(FoldedExitHead, f64, usize)>>,
}

impl ExitPlan {
    /// `heads` (reading blocks `heads.blocks()`) with one max-softmax threshold per head
    /// (`+inf`: the head never fires and is not run), on a backbone of `num_blocks` blocks.
    pub fn new(heads: &ExitHeads, thresholds: &[f64], num_blocks: usize) -> Result<Self> {
        let blocks = heads.blocks();
        if thresholds.len() != blocks.len() {
            return Err(SupernetError::invalid(
                "thresholds",
                format!("{} thresholds for {} heads", thresholds.len(), blocks.len()),
            ));
        }
        let mut after_block: Vec<Option<(FoldedExitHead, f64, usize)>> =
            (0..num_blocks).map(|_| None).collect();
        for (head, (folded, (&block, &threshold))) in heads
            .folded()
            .into_iter()
            .zip(blocks.iter().zip(thresholds))
            .enumerate()
        {
            if threshold.is_nan() || threshold < 0.0 {
                return Err(SupernetError::invalid(
                    "thresholds",
                    format!("head {head}: {threshold} is not in [0, 1] or +inf"),
                ));
            }
            if threshold == f64::INFINITY {
                continue;
            }
            let slot = after_block.get_mut(block).ok_or_else(|| {
                SupernetError::invalid(
                    "heads",
                    format!("head {head} reads block {block} of a {num_blocks}-block backbone"),
                )
            })?;
            *slot = Some((folded, threshold, head));
        }
        Ok(Self { after_block })
    }

    /// Classifies one image (`x` of batch 1) with `backbone`: the predicted class and the
    /// head it left at (`None`: the final classifier).
    pub fn classify(&self, backbone: &DeployedSubnet, x: &Tensor) -> Result<(i64, Option<usize>)> {
        let exits = |r: dynas_exits::Result<Tensor>| {
            r.map_err(|e| SupernetError::invalid("exits", e.to_string()))
        };
        if self.after_block.len() != backbone.num_blocks() {
            return Err(SupernetError::invalid(
                "backbone",
                format!(
                    "the plan is for {} blocks, the backbone has {}",
                    self.after_block.len(),
                    backbone.num_blocks()
                ),
            ));
        }
        let mut h = x.shallow_clone();
        for (block, exit) in self.after_block.iter().enumerate() {
            h = exits(backbone.forward_block(block, &h))?;
            if let Some((head, threshold, index)) = exit {
                let probabilities = head.forward(&h).softmax(-1, Kind::Float);
                let (confidence, class) = probabilities.max_dim(-1, false);
                if confidence.double_value(&[0]) >= *threshold {
                    return Ok((class.int64_value(&[0]), Some(*index)));
                }
            }
        }
        let logits = exits(backbone.classify(&h))?;
        Ok((logits.argmax(-1, false).int64_value(&[0]), None))
    }
}
