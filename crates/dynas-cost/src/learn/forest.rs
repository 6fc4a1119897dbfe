//! Random forests (bagged regression trees with feature sampling), the family's second
//! ensemble over the shared tree grower (`learn::tree`): the search's accuracy predictor fits one on encoded
//! genotypes.

use ndarray::{Array2, ArrayView1};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::Regressor;
use super::tree::{Tree, TreeParams, grow, presort};
use crate::error::{CostError, Result};

/// Hyper-parameters of [`RandomForest`]; checked by [`ForestParams::check`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Number of trees (≥ 1).
    pub trees: usize,
    /// Maximum depth of a tree (1..=32).
    pub max_depth: usize,
    /// Minimum rows in a leaf (≥ 1).
    pub min_leaf: usize,
    /// Share of features tried at each level of a tree, in (0, 1].
    pub feature_fraction: f64,
    /// Seed of the bootstrap and feature draws.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            trees: 100,
            max_depth: 12,
            min_leaf: 2,
            feature_fraction: 0.7,
            seed: 0,
        }
    }
}

impl ForestParams {
    /// The parameters if every field is in range, or an error naming the field.
    pub fn check(self) -> Result<Self> {
        let bad = |name: &str, reason: String| {
            Err(CostError::InvalidParameter {
                name: name.to_string(),
                reason,
            })
        };
        if self.trees == 0 {
            return bad("trees", "must be at least 1".into());
        }
        if !(1..=32).contains(&self.max_depth) {
            return bad(
                "max_depth",
                format!("must be in 1..=32, got {}", self.max_depth),
            );
        }
        if self.min_leaf == 0 {
            return bad("min_leaf", "must be at least 1".into());
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return bad(
                "feature_fraction",
                format!("must be in (0, 1], got {}", self.feature_fraction),
            );
        }
        Ok(self)
    }
}

/// A fitted random forest: the mean of trees grown on bootstrap samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomForest {
    n_features: usize,
    trees: Vec<Tree>,
}

impl RandomForest {
    /// Fits `y ≈ f(x)` on the rows of `x`.
    pub fn fit(x: &Array2<f64>, y: &[f64], params: &ForestParams) -> Result<Self> {
        let params = params.check()?;
        let (n, p) = x.dim();
        if n != y.len() || n == 0 || p == 0 {
            return Err(CostError::Fit {
                model: "random forest".to_string(),
                reason: format!("{n} rows of {p} features but {} targets", y.len()),
            });
        }
        if x.iter().chain(y).any(|v| !v.is_finite()) {
            return Err(CostError::Fit {
                model: "random forest".to_string(),
                reason: "non-finite feature or target".to_string(),
            });
        }
        let sorted = presort(x);
        let tree_params = TreeParams {
            max_depth: params.max_depth,
            min_samples_leaf: params.min_leaf,
            lambda: 0.0,
            size_by_weight: true,
        };
        let per_level = ((params.feature_fraction * p as f64).ceil() as usize).clamp(1, p);
        let mut rng = dynas_space::seeded_rng(params.seed);
        let mut trees = Vec::with_capacity(params.trees);
        for _ in 0..params.trees {
            // A bootstrap sample as row weights: a row drawn k times weighs k.
            let mut weight = vec![0.0f64; n];
            for _ in 0..n {
                weight[rng.random_range(0..n)] += 1.0;
            }
            let in_tree: Vec<bool> = weight.iter().map(|&w| w > 0.0).collect();
            let mut tree_rng = dynas_space::seeded_rng(rng.random());
            let mut cols: Vec<usize> = (0..p).collect();
            let mut levels = || {
                cols.shuffle(&mut tree_rng);
                let mut chosen = cols[..per_level].to_vec();
                chosen.sort_unstable();
                chosen
            };
            trees.push(grow(
                x,
                y,
                &weight,
                &in_tree,
                &sorted,
                &mut levels,
                &tree_params,
            ));
        }
        Ok(Self {
            n_features: p,
            trees,
        })
    }
}

impl Regressor for RandomForest {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict_row(&self, x: ArrayView1<'_, f64>) -> f64 {
        self.trees.iter().map(|t| t.predict(x)).sum::<f64>() / self.trees.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_step_function_and_round_trips() {
        let n = 200;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * (j + 2)) % 11) as f64);
        let y: Vec<f64> = (0..n)
            .map(|i| if x[[i, 0]] > 5.0 { 10.0 } else { 0.0 } + x[[i, 1]])
            .collect();
        let mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let forest = RandomForest::fit(&x, &y, &ForestParams::default()).unwrap();
        let pred = forest.predict(&x);
        let mse = pred
            .iter()
            .zip(&y)
            .map(|(p, t)| (p - t).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(mse < 0.05 * var, "mse {mse} vs variance {var}");
        let back: RandomForest =
            serde_json::from_str(&serde_json::to_string(&forest).unwrap()).unwrap();
        assert_eq!(back.predict(&x), pred);
        let again = RandomForest::fit(&x, &y, &ForestParams::default()).unwrap();
        assert_eq!(again, forest, "seeded fits are reproducible");
    }

    #[test]
    fn bad_parameters_and_data_are_refused() {
        let x = Array2::zeros((4, 2));
        let y = [1.0; 4];
        for params in [
            ForestParams {
                trees: 0,
                ..ForestParams::default()
            },
            ForestParams {
                min_leaf: 0,
                ..ForestParams::default()
            },
            ForestParams {
                feature_fraction: 0.0,
                ..ForestParams::default()
            },
            ForestParams {
                max_depth: 0,
                ..ForestParams::default()
            },
        ] {
            assert!(RandomForest::fit(&x, &y, &params).is_err(), "{params:?}");
        }
        assert!(RandomForest::fit(&x, &[1.0; 3], &ForestParams::default()).is_err());
        assert!(RandomForest::fit(&x, &[f64::NAN; 4], &ForestParams::default()).is_err());
    }
}
