//! The space GoldenNAS trains (the width-elastic Fashion-MNIST preset) and [`ChoiceSet`], the
//! choices of each dimension that are still in play while the space shrinks.

use dynas_search::Subspace;
use dynas_space::{DynasRng, Genotype, MbConvSpace, SearchSpace};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{GoldenNasError, Result};

/// The width-elastic Fashion-MNIST space (`fmnist-elastic-width`): several output widths per
/// stage, expand ratio, kernel and depth per block as in `ofa-mnist`.
pub fn fashion_mnist_space() -> MbConvSpace {
    MbConvSpace::fmnist_elastic_width()
}

/// The choices left in each dimension of a space (indices into the dimension, ascending,
/// never empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceSet {
    allowed: Vec<Vec<usize>>,
}

impl ChoiceSet {
    /// Every choice of every dimension of `space`.
    pub fn full(space: &dyn SearchSpace) -> Self {
        Self {
            allowed: space
                .dimensions()
                .iter()
                .map(|d| (0..d.len()).collect())
                .collect(),
        }
    }

    /// The choices `allowed[d]` of each dimension `d` of `space` (sorted and deduplicated
    /// here); each list must be non-empty and within its dimension.
    pub fn new(space: &dyn SearchSpace, mut allowed: Vec<Vec<usize>>) -> Result<Self> {
        let dims = space.dimensions();
        if allowed.len() != dims.len() {
            return Err(GoldenNasError::invalid(
                "allowed",
                format!("{} lists for {} dimensions", allowed.len(), dims.len()),
            ));
        }
        for (keep, d) in allowed.iter_mut().zip(dims) {
            keep.sort_unstable();
            keep.dedup();
            if keep.is_empty() || keep.iter().any(|&c| c >= d.len()) {
                return Err(GoldenNasError::invalid(
                    "allowed",
                    format!(
                        "dimension `{}` needs 1..{} valid choices",
                        d.name(),
                        d.len()
                    ),
                ));
            }
        }
        Ok(Self { allowed })
    }

    /// The choices of each dimension.
    pub fn allowed(&self) -> &[Vec<usize>] {
        &self.allowed
    }

    /// Number of architectures in the set.
    pub fn cardinality(&self) -> u128 {
        self.allowed
            .iter()
            .fold(1u128, |n, k| n.saturating_mul(k.len() as u128))
    }

    /// Whether `genotype` uses only allowed choices.
    pub fn contains(&self, genotype: &Genotype) -> bool {
        genotype.len() == self.allowed.len()
            && genotype
                .genes()
                .iter()
                .zip(&self.allowed)
                .all(|(g, keep)| keep.contains(g))
    }

    /// The largest architecture left (last allowed choice everywhere: choices are cheapest
    /// first).
    pub fn largest(&self) -> Genotype {
        Genotype::new(self.allowed.iter().map(|k| k[k.len() - 1]).collect())
    }

    /// The smallest architecture left.
    pub fn smallest(&self) -> Genotype {
        Genotype::new(self.allowed.iter().map(|k| k[0]).collect())
    }

    /// A uniformly random architecture of the set.
    pub fn sample(&self, rng: &mut DynasRng) -> Genotype {
        Genotype::new(
            self.allowed
                .iter()
                .map(|k| k[rng.random_range(0..k.len())])
                .collect(),
        )
    }

    /// Labels of the allowed choices, per dimension of `space`.
    pub fn labels(&self, space: &dyn SearchSpace) -> Vec<Vec<String>> {
        space
            .dimensions()
            .iter()
            .zip(&self.allowed)
            .map(|(d, keep)| keep.iter().map(|&c| d.labels()[c].clone()).collect())
            .collect()
    }

    /// The set as a search space of its own (genotypes index the allowed choices).
    pub fn subspace<'a>(&self, space: &'a dyn SearchSpace) -> Result<Subspace<'a>> {
        Ok(Subspace::new(space, self.allowed.clone())?)
    }
}
