//! The learner family: regressors behind one fit/predict vocabulary, and the metrics that
//! judge them. Cost predictors ([`crate::predictor`]) and the search's accuracy predictors
//! (`dynas_search::predictor`) are built from these.
//!
//! * `tree` (private) — one regression-tree grower shared by both ensembles;
//! * [`Gbdt`] — gradient boosting (the cost predictors' learner);
//! * [`RandomForest`] — bagging with feature sampling (the search's forest predictor);
//! * [`Mlp`] — a small multi-layer perceptron (the search's MLP predictor);
//! * [`metrics`] — Spearman, Kendall and Pearson correlations, `None` when undefined.

use ndarray::{Array2, ArrayView1};

use crate::error::Result;

mod forest;
pub mod gbdt;
pub mod metrics;
mod mlp;
mod tree;

pub use forest::{ForestParams, RandomForest};
pub use gbdt::{Gbdt, GbdtParams};
pub use mlp::{Mlp, MlpParams};

/// A fitted regressor over feature rows.
pub trait Regressor {
    /// Number of features a row must have.
    fn n_features(&self) -> usize;

    /// Prediction for one feature row.
    fn predict_row(&self, x: ArrayView1<'_, f64>) -> f64;

    /// Predictions for every row of `x`.
    fn predict(&self, x: &Array2<f64>) -> Vec<f64> {
        x.rows().into_iter().map(|r| self.predict_row(r)).collect()
    }
}

/// A regressor that can be fitted from feature rows and targets with its hyper-parameters.
pub trait Fit: Regressor + Sized {
    /// Hyper-parameters (checked inside `fit`).
    type Params;

    /// Fits `y ≈ f(x)` on the rows of `x`.
    fn fit(x: &Array2<f64>, y: &[f64], params: &Self::Params) -> Result<Self>;
}

impl Fit for Gbdt {
    type Params = GbdtParams;
    fn fit(x: &Array2<f64>, y: &[f64], params: &GbdtParams) -> Result<Self> {
        Gbdt::fit(x, y, params)
    }
}

impl Fit for RandomForest {
    type Params = ForestParams;
    fn fit(x: &Array2<f64>, y: &[f64], params: &ForestParams) -> Result<Self> {
        RandomForest::fit(x, y, params)
    }
}

impl Fit for Mlp {
    type Params = MlpParams;
    fn fit(x: &Array2<f64>, y: &[f64], params: &MlpParams) -> Result<Self> {
        Mlp::fit(x, y, params)
    }
}

impl Regressor for Gbdt {
    fn n_features(&self) -> usize {
        Gbdt::n_features(self)
    }

    fn predict_row(&self, x: ArrayView1<'_, f64>) -> f64 {
        Gbdt::predict_row(self, x)
    }
}
