//! Channel importance sorting, as once-for-all does before a channel dimension is made
//! elastic: within every group of channels that a width or expand-ratio choice slices, the
//! channels are reordered by importance (the L1 norm of the weights that produce them,
//! largest first), and every tensor that reads them is permuted alike. The largest subnet
//! computes exactly the same function afterwards; a narrower choice, which keeps the *first*
//! channels, now keeps the most important ones.
//!
//! Groups sorted, by parameter path of the supernet (`dynas_supernet::supernet`):
//! * the expanded channels of every block (`<block>.expand`, `<block>.dw`, the inputs of
//!   `<block>.project`), by the L1 norm of the projection's input columns;
//! * the output channels of every stage with several widths (the residual stream shared by
//!   the stage's blocks: `project` outputs and their batch norms, the inputs of later blocks'
//!   expansion and of whatever reads the stage), by the L1 norm of the projections' rows;
//! * the final-expand channels when there are several widths (inputs of the feature mix, or
//!   of the classifier), by the L1 norm of the final-expand conv's rows.
//!
//! Sort before training the elastic dimensions (the optimiser's momentum is not permuted).

use std::collections::HashMap;

use dynas_space::{FinalExpand, MbConvSpace};
use dynas_supernet::Supernet;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{GoldenNasError, Result};

/// One group of channels sorted by [`sort_channels`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SortedGroup {
    /// What was sorted (`stage1.block2 expanded`, `stage1 output`, `final_expand output`).
    pub group: String,
    /// Channels in the group.
    pub channels: usize,
    /// The new order: position `i` holds the channel that was at `order[i]`.
    pub order: Vec<usize>,
    /// Importance of the channels in their new order (non-increasing).
    pub importance: Vec<f64>,
}

const BN: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

struct Vars {
    vars: HashMap<String, Tensor>,
}

impl Vars {
    fn get(&self, name: &str) -> Result<&Tensor> {
        self.vars
            .get(name)
            .ok_or_else(|| GoldenNasError::Layout(format!("no variable `{name}`")))
    }

    fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Reorders `name` along `dim` by `index` (in place, no gradient); a missing optional
    /// variable is skipped.
    fn permute(&self, name: &str, dim: i64, index: &Tensor, required: bool) -> Result<()> {
        let Some(t) = self.vars.get(name) else {
            return if required {
                Err(GoldenNasError::Layout(format!("no variable `{name}`")))
            } else {
                Ok(())
            };
        };
        tch::no_grad(|| {
            let permuted = t.index_select(dim, &index.to_device(t.device()));
            let mut dst = t.shallow_clone();
            dst.copy_(&permuted);
        });
        Ok(())
    }

    fn permute_bn(&self, prefix: &str, index: &Tensor) -> Result<()> {
        for part in BN {
            self.permute(&format!("{prefix}.{part}"), 0, index, false)?;
        }
        Ok(())
    }
}

/// Descending order of `importance` (`[C]`) and the importance in that order.
fn order_of(importance: &Tensor) -> Result<(Tensor, Vec<usize>, Vec<f64>)> {
    let (values, index) = importance.sort(0, true);
    let order: Vec<i64> = Vec::<i64>::try_from(&index)?;
    let values: Vec<f64> = Vec::<f64>::try_from(&values.to_kind(Kind::Double))?;
    Ok((
        index,
        order.into_iter().map(|i| i as usize).collect(),
        values,
    ))
}

/// L1 norm of `w` over every dimension but `keep`.
fn l1(w: &Tensor, keep: i64) -> Tensor {
    let dims: Vec<i64> = (0..w.dim() as i64).filter(|&d| d != keep).collect();
    w.detach()
        .abs()
        .sum_dim_intlist(dims.as_slice(), false, Kind::Float)
}

/// Sorts every elastic channel group of `supernet` by importance (see the [module
/// docs](self)); returns the groups sorted, in the order they were.
pub fn sort_channels(supernet: &Supernet) -> Result<Vec<SortedGroup>> {
    let space: &MbConvSpace = supernet.space();
    let vars = Vars {
        vars: supernet.var_store().variables(),
    };
    let mut groups = Vec::new();
    let stages = space.stages();
    let mut blocks_of: Vec<Vec<String>> = vec![Vec::new(); stages.len()];
    for slot in space.block_slots() {
        blocks_of[slot.stage].push(slot.name);
    }
    // Expanded channels of every block with several expand ratios.
    for (stage, blocks) in stages.iter().zip(&blocks_of) {
        if stage.expand_ratios.len() < 2 {
            continue;
        }
        for b in blocks {
            let project = format!("{b}.project.conv.weight");
            let w = vars.get(&project)?;
            let (index, order, importance) = order_of(&l1(w, 1))?;
            vars.permute(&format!("{b}.expand.conv.weight"), 0, &index, false)?;
            vars.permute_bn(&format!("{b}.expand.bn"), &index)?;
            vars.permute(&format!("{b}.dw.conv.weight"), 0, &index, true)?;
            vars.permute_bn(&format!("{b}.dw.bn"), &index)?;
            vars.permute(&format!("{b}.se.reduce.weight"), 1, &index, false)?;
            vars.permute(&format!("{b}.se.expand.weight"), 0, &index, false)?;
            vars.permute(&format!("{b}.se.expand.bias"), 0, &index, false)?;
            vars.permute(&project, 1, &index, true)?;
            groups.push(SortedGroup {
                group: format!("{b} expanded"),
                channels: order.len(),
                order,
                importance,
            });
        }
    }
    // Output channels of every stage with several widths.
    let has_final_expand = !matches!(space.head().final_expand, FinalExpand::None);
    for (s, (stage, blocks)) in stages.iter().zip(&blocks_of).enumerate() {
        if stage.widths.len() < 2 || blocks.is_empty() {
            continue;
        }
        let mut importance: Option<Tensor> = None;
        for b in blocks {
            let rows = l1(vars.get(&format!("{b}.project.conv.weight"))?, 0);
            importance = Some(match importance {
                Some(sum) => sum + rows,
                None => rows,
            });
        }
        let importance = importance.expect("a stage with blocks");
        let (index, order, values) = order_of(&importance)?;
        for (j, b) in blocks.iter().enumerate() {
            vars.permute(&format!("{b}.project.conv.weight"), 0, &index, true)?;
            vars.permute_bn(&format!("{b}.project.bn"), &index)?;
            vars.permute(&format!("{b}.shortcut.weight"), 0, &index, false)?;
            if j > 0 {
                if !vars.has(&format!("{b}.expand.conv.weight")) {
                    return Err(GoldenNasError::Layout(format!(
                        "block `{b}` reads the stage width without an expansion conv"
                    )));
                }
                vars.permute(&format!("{b}.expand.conv.weight"), 1, &index, true)?;
                vars.permute(&format!("{b}.shortcut.weight"), 1, &index, false)?;
            }
        }
        // Whatever reads the stage's output.
        if let Some(next) = blocks_of.get(s + 1).and_then(|b| b.first()) {
            if !vars.has(&format!("{next}.expand.conv.weight")) {
                return Err(GoldenNasError::Layout(format!(
                    "block `{next}` reads a width-elastic stage without an expansion conv"
                )));
            }
            vars.permute(&format!("{next}.expand.conv.weight"), 1, &index, true)?;
            vars.permute(&format!("{next}.shortcut.weight"), 1, &index, false)?;
        } else if has_final_expand {
            vars.permute("final_expand.conv.weight", 1, &index, true)?;
        } else {
            return Err(GoldenNasError::Layout(
                "the last stage is width-elastic but no final-expand conv reads it".into(),
            ));
        }
        groups.push(SortedGroup {
            group: format!("{} output", stage.name),
            channels: order.len(),
            order,
            importance: values,
        });
    }
    // Final-expand channels.
    if let FinalExpand::Widths(w) = &space.head().final_expand
        && w.len() > 1
    {
        let fe = "final_expand.conv.weight";
        let (index, order, values) = order_of(&l1(vars.get(fe)?, 0))?;
        vars.permute(fe, 0, &index, true)?;
        vars.permute("final_expand.conv.bias", 0, &index, false)?;
        vars.permute_bn("final_expand.bn", &index)?;
        if vars.has("feature_mix.conv.weight") {
            vars.permute("feature_mix.conv.weight", 1, &index, true)?;
        } else {
            vars.permute("classifier.weight", 1, &index, true)?;
        }
        groups.push(SortedGroup {
            group: "final_expand output".into(),
            channels: order.len(),
            order,
            importance: values,
        });
    }
    Ok(groups)
}
