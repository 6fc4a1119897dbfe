//! Accuracy predictors trained from `(genotype, accuracy)` samples: a once-for-all-style MLP
//! on one-hot encodings and a random forest on the choice indices, both learners of
//! `dynas_cost::learn` (the family the cost predictors use) behind a genotype encoding. Both are [`AccuracySource`]s, so they plug into
//! [`crate::HardwareProblem`] in place of training every candidate.

use dynas_cost::learn::{Fit, ForestParams, Mlp, MlpParams, RandomForest};
use dynas_space::{Genotype, Network, SearchSpace};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::problem::AccuracySource;

/// One-hot encoding of genotypes: one block per dimension, one column per choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneHot {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    width: usize,
}

impl OneHot {
    /// The encoding of `space`.
    pub fn new(space: &dyn SearchSpace) -> Self {
        let sizes: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut width = 0;
        for s in &sizes {
            offsets.push(width);
            width += s;
        }
        Self {
            sizes,
            offsets,
            width,
        }
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }

    fn check(&self, g: &Genotype) -> Result<()> {
        if g.len() != self.sizes.len() {
            return Err(SearchError::invalid(
                "genotype",
                format!(
                    "{} genes, the encoder expects {}",
                    g.len(),
                    self.sizes.len()
                ),
            ));
        }
        if let Some((i, (&v, &s))) = g
            .genes()
            .iter()
            .zip(&self.sizes)
            .enumerate()
            .find(|(_, (v, s))| v >= s)
        {
            return Err(SearchError::invalid(
                "genotype",
                format!("gene {i} = {v} but the dimension has {s} choices"),
            ));
        }
        Ok(())
    }

    /// The rows of `genotypes`.
    pub fn encode(&self, genotypes: &[Genotype]) -> Result<Array2<f64>> {
        let mut x = Array2::zeros((genotypes.len(), self.width));
        for (r, g) in genotypes.iter().enumerate() {
            self.check(g)?;
            for (k, &v) in g.genes().iter().enumerate() {
                x[[r, self.offsets[k] + v]] = 1.0;
            }
        }
        Ok(x)
    }

    /// Columns of the ordered encoding: one per gene, then one per choice of every gene with
    /// more than two choices.
    fn ordered_width(&self) -> usize {
        self.sizes.len() + self.sizes.iter().filter(|&&s| s > 2).sum::<usize>()
    }

    /// The rows of `genotypes` as gene values followed by one-hot blocks of genes with more
    /// than two choices (for tree learners: ordered and one-vs-rest splits).
    pub fn encode_ordered(&self, genotypes: &[Genotype]) -> Result<Array2<f64>> {
        let mut x = Array2::zeros((genotypes.len(), self.ordered_width()));
        for (r, g) in genotypes.iter().enumerate() {
            self.check(g)?;
            let mut col = self.sizes.len();
            for (k, (&v, &size)) in g.genes().iter().zip(&self.sizes).enumerate() {
                x[[r, k]] = v as f64;
                if size > 2 {
                    x[[r, col + v]] = 1.0;
                    col += size;
                }
            }
        }
        Ok(x)
    }
}

impl OneHot {
    /// The encoding learner `L` expects.
    fn encode_for<L: GenotypeLearner>(&self, genotypes: &[Genotype]) -> Result<Array2<f64>> {
        if L::ORDERED {
            self.encode_ordered(genotypes)
        } else {
            self.encode(genotypes)
        }
    }
}

fn check_samples(samples: &[(Genotype, f64)]) -> Result<()> {
    if samples.len() < 2 {
        return Err(SearchError::invalid("samples", "at least two are needed"));
    }
    if let Some((g, y)) = samples.iter().find(|(_, y)| !y.is_finite()) {
        return Err(SearchError::invalid(
            "samples",
            format!("accuracy of `{g}` is {y}"),
        ));
    }
    Ok(())
}

/// A learner of the family as the search uses it: how it sees genotypes and what it is
/// called as an [`AccuracySource`].
pub trait GenotypeLearner: Fit {
    /// Name reported as an accuracy source.
    const NAME: &'static str;
    /// Whether the learner sees genes as ordered values plus one-hot blocks
    /// ([`OneHot::encode_ordered`], for trees) instead of one-hot blocks only.
    const ORDERED: bool;
}

impl GenotypeLearner for Mlp {
    const NAME: &'static str = "mlp-predictor";
    const ORDERED: bool = false;
}

impl GenotypeLearner for RandomForest {
    const NAME: &'static str = "forest-predictor";
    const ORDERED: bool = true;
}

/// An accuracy predictor: a learner of `dynas_cost::learn` behind a genotype encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenotypePredictor<L> {
    encoder: OneHot,
    learner: L,
}

impl<L: GenotypeLearner> GenotypePredictor<L> {
    /// Trains a predictor for genotypes of `space`.
    pub fn fit(
        space: &dyn SearchSpace,
        samples: &[(Genotype, f64)],
        params: &L::Params,
    ) -> Result<Self> {
        check_samples(samples)?;
        let encoder = OneHot::new(space);
        let genotypes: Vec<Genotype> = samples.iter().map(|(g, _)| g.clone()).collect();
        let x = encoder.encode_for::<L>(&genotypes)?;
        let ys: Vec<f64> = samples.iter().map(|(_, y)| *y).collect();
        let learner = L::fit(&x, &ys, params)?;
        Ok(Self { encoder, learner })
    }

    /// Predicted accuracies of `genotypes`.
    pub fn predict(&self, genotypes: &[Genotype]) -> Result<Vec<f64>> {
        Ok(self
            .learner
            .predict(&self.encoder.encode_for::<L>(genotypes)?))
    }
}

impl<L: GenotypeLearner + Send + Sync> AccuracySource for GenotypePredictor<L> {
    fn name(&self) -> &str {
        L::NAME
    }
    fn accuracy(&self, genotype: &Genotype, _network: &Network) -> Result<f64> {
        Ok(self.predict(std::slice::from_ref(genotype))?[0])
    }
}

/// Hyper-parameters of [`MlpPredictor`]: the learner family's [`MlpParams`].
pub type MlpConfig = MlpParams;

/// An MLP ([`Mlp`]) on one-hot encodings of genotypes (once-for-all's accuracy predictor).
pub type MlpPredictor = GenotypePredictor<Mlp>;

/// Hyper-parameters of [`ForestPredictor`]: the learner family's [`ForestParams`].
pub type ForestConfig = ForestParams;

/// A random forest ([`RandomForest`]) on genes: each gene as an ordered value (`gene <= t`
/// splits; choices run from small to large networks in most dynas spaces) and, for genes
/// with more than two choices, one-hot columns (`gene == t` splits for unordered choices).
pub type ForestPredictor = GenotypePredictor<RandomForest>;

/// Kendall's tau-b rank correlation between predictions and truths (the family's metric;
/// `None` when either side is constant).
pub use dynas_cost::learn::metrics::kendall_tau;
