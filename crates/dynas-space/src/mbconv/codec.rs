//! The genotype codec of [`MbConvSpace`]: genes to a structured subnet and back.

use super::*;

impl MbConvSpace {
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
                    "{} given, space `{space}` implies {}",
                    width_text(subnet.final_expand_width),
                    width_text(expected_final)
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
                        "{} given, but space `{space}` {} a feature-mix conv",
                        width_text(given),
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
}

/// A head width for messages: the number, or `no width` (not Rust's `Some(..)` / `None`).
fn width_text(width: Option<usize>) -> String {
    width.map_or("no width".to_string(), |w| format!("width {w}"))
}
