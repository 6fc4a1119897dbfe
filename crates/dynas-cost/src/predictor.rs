//! Learned cost predictors in the spirit of nn-Meter (layer/kernel level) and HELP
//! (architecture level), with the metrics used to judge them.
//!
//! * [`ArchPredictor`]: regression on an architecture encoding. The generic encoding is a
//!   one-hot of the genotype; the NAS-Bench-201 encoding adds what the latency of a cell really
//!   depends on: which ops lie on a path from the input to the output (an op behind a `none`
//!   edge that disconnects its node computes nothing that is used), op counts and path counts.
//!   The learner is ridge regression on log-latency (latency is near-additive in the live ops)
//!   with gradient-boosted trees fitted to its residuals for the interactions.
//! * [`LayerPredictor`]: gradient-boosted trees on layer features (kind, shapes, MACs,
//!   bytes, kernel, stride) and clock features (`1/f_compute`, `1/f_memory`), summed over
//!   the network's layers.
//!
//! Both save and load as JSON.

use std::path::Path;

use dynas_space::{Genotype, Network};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::learn::metrics;
use crate::learn::{Gbdt, GbdtParams};
use crate::linalg;
use crate::model::{Cost, CostModel};
use crate::table::{NB201_EDGES, Nb201Cell};

mod layer;
pub use layer::{LAYER_FEATURES, LayerPredictor, layer_features};

/// Held-out accuracy of a predictor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Number of predictions.
    pub n: usize,
    /// Share of predictions within ±1 % of the actual value.
    pub within_1: f64,
    /// Share within ±10 %.
    pub within_10: f64,
    /// Share within ±20 %.
    pub within_20: f64,
    /// Root mean squared error (target unit).
    pub rmse: f64,
    /// Mean absolute percentage error (%).
    pub mape: f64,
    /// Spearman rank correlation (ties get average ranks); `None` when it is undefined: every
    /// actual value or every prediction is the same, so one side has no ranking (reporting 0
    /// would read as "no correlation" and pull averages down).
    pub spearman: Option<f64>,
}

impl RegressionMetrics {
    /// Metrics of `predicted` against `actual` (same length, actual values non-zero).
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Result<Self> {
        if actual.len() != predicted.len() || actual.is_empty() {
            return Err(CostError::InvalidParameter {
                name: "predicted".to_string(),
                reason: format!(
                    "{} actual values but {} predictions",
                    actual.len(),
                    predicted.len()
                ),
            });
        }
        let n = actual.len();
        let rel: Vec<f64> = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| ((p - a) / a).abs())
            .collect();
        let share = |t: f64| rel.iter().filter(|&&r| r <= t).count() as f64 / n as f64;
        // Scaled by the largest error so that squaring large (finite) values cannot overflow
        // to an infinite RMSE.
        let errors: Vec<f64> = actual.iter().zip(predicted).map(|(a, p)| a - p).collect();
        let scale = errors.iter().fold(0.0_f64, |m, e| m.max(e.abs()));
        let rmse = if scale > 0.0 && scale.is_finite() {
            scale * (errors.iter().map(|e| (e / scale).powi(2)).sum::<f64>() / n as f64).sqrt()
        } else {
            scale
        };
        Ok(Self {
            n,
            within_1: share(0.01),
            within_10: share(0.10),
            within_20: share(0.20),
            rmse,
            mape: 100.0 * rel.iter().sum::<f64>() / n as f64,
            spearman: metrics::spearman(actual, predicted),
        })
    }
}

/// How an architecture becomes a feature vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchEncoding {
    /// One-hot of every gene; `radices[i]` is the number of choices of gene `i`.
    OneHot {
        /// Choices per gene.
        radices: Vec<usize>,
    },
    /// NAS-Bench-201 cell (6 genes, op indices 0..=4): per-edge op one-hot, the same restricted
    /// to live edges (on an input-to-output path), op counts, live-op counts, live nodes and
    /// the number of input-to-output paths.
    Nb201,
}

impl ArchEncoding {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        match self {
            Self::OneHot { radices } => radices.iter().sum(),
            Self::Nb201 => 30 + 30 + 5 + 5 + 2 + 2,
        }
    }

    /// Features of an architecture given by its genes.
    pub fn features(&self, genes: &[usize]) -> Result<Vec<f64>> {
        match self {
            Self::OneHot { radices } => {
                if genes.len() != radices.len() {
                    return Err(CostError::InvalidParameter {
                        name: "genes".to_string(),
                        reason: format!("expected {} genes, got {}", radices.len(), genes.len()),
                    });
                }
                let mut f = vec![0.0; self.n_features()];
                let mut offset = 0;
                for (i, (&g, &r)) in genes.iter().zip(radices).enumerate() {
                    if g >= r {
                        return Err(CostError::InvalidParameter {
                            name: format!("genes[{i}]"),
                            reason: format!("choice {g} out of 0..{r}"),
                        });
                    }
                    f[offset + g] = 1.0;
                    offset += r;
                }
                Ok(f)
            }
            Self::Nb201 => Ok(nb201_features(&Nb201Cell::from_ops(genes)?)),
        }
    }

    /// The genes of a network's `arch_id`: a NAS-Bench-201 arch string for [`ArchEncoding::Nb201`];
    /// for one-hot, a genotype's compact form (`1-0-2`) or, when every gene has at most ten
    /// choices, a plain digit string (`102`, HW-NAS-Bench FBNet `ops`).
    pub fn genes_from_arch_id(&self, arch_id: &str) -> Result<Vec<usize>> {
        match self {
            Self::Nb201 => Ok(arch_id.parse::<Nb201Cell>()?.ops().to_vec()),
            Self::OneHot { radices } => {
                if arch_id.contains('-') {
                    return Ok(arch_id.parse::<Genotype>()?.into_genes());
                }
                let digits: Option<Vec<usize>> = arch_id
                    .trim()
                    .chars()
                    .map(|c| c.to_digit(10).map(|d| d as usize))
                    .collect();
                match digits {
                    Some(mut d) if radices.iter().all(|&r| r <= 10) && d.len() <= radices.len() => {
                        while d.len() < radices.len() {
                            d.insert(0, 0);
                        }
                        Ok(d)
                    }
                    _ => Err(CostError::InvalidParameter {
                        name: "arch_id".to_string(),
                        reason: format!("`{arch_id}` is not a genotype of {} genes", radices.len()),
                    }),
                }
            }
        }
    }
}

fn nb201_features(cell: &Nb201Cell) -> Vec<f64> {
    let ops = cell.ops();
    let live = cell.live_edges();
    let mut f = vec![0.0; 74];
    for e in 0..6 {
        f[e * 5 + ops[e]] = 1.0;
        if live[e] {
            f[30 + e * 5 + ops[e]] = 1.0;
        }
        f[60 + ops[e]] += 1.0;
        if live[e] {
            f[65 + ops[e]] += 1.0;
        }
    }
    // Live intermediate nodes: some live edge touches them.
    for (node, slot) in [(1usize, 70usize), (2, 71)] {
        f[slot] = f64::from(u8::from(
            NB201_EDGES
                .iter()
                .enumerate()
                .any(|(e, &(to, from))| live[e] && (to == node || from == node)),
        ));
    }
    // Input-to-output paths through non-none edges (0->3, 0->1->3, 0->2->3, 0->1->2->3).
    let on = |e: usize| ops[e] != 0;
    let paths = [
        on(3),
        on(0) && on(4),
        on(1) && on(5),
        on(0) && on(2) && on(5),
    ];
    f[72] = paths.iter().filter(|&&p| p).count() as f64;
    f[73] = f64::from(u8::from(cell.is_connected()));
    f
}

/// The learner of an [`ArchPredictor`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Learner {
    /// Ridge regression with penalty `lambda` (≥ 0).
    Ridge {
        /// L2 penalty.
        lambda: f64,
    },
    /// Gradient-boosted trees.
    Gbdt(GbdtParams),
    /// Ridge, then boosted trees on its residuals (the default).
    RidgeThenGbdt {
        /// L2 penalty of the ridge stage.
        lambda: f64,
        /// The boosting stage.
        gbdt: GbdtParams,
    },
}

impl Default for Learner {
    fn default() -> Self {
        Self::RidgeThenGbdt {
            lambda: 1e-3,
            gbdt: GbdtParams {
                n_trees: 300,
                learning_rate: 0.05,
                max_depth: 4,
                min_samples_leaf: 5,
                lambda: 1.0,
                subsample: 0.8,
                colsample: 0.8,
                seed: 0,
            },
        }
    }
}

impl Learner {
    /// Parses a learner name: `ridge`, `gbdt` or `ridge+gbdt` (default hyper-parameters).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "ridge" => Ok(Self::Ridge { lambda: 1e-3 }),
            "gbdt" => Ok(Self::Gbdt(GbdtParams::default())),
            "ridge+gbdt" | "default" => Ok(Self::default()),
            other => Err(CostError::InvalidParameter {
                name: "model".to_string(),
                reason: format!("unknown model `{other}`; use ridge, gbdt or ridge+gbdt"),
            }),
        }
    }

    /// The same learner with its boosting seed set to `seed`.
    pub fn with_seed(self, seed: u64) -> Self {
        match self {
            Self::Gbdt(p) => Self::Gbdt(GbdtParams { seed, ..p }),
            Self::RidgeThenGbdt { lambda, gbdt } => Self::RidgeThenGbdt {
                lambda,
                gbdt: GbdtParams { seed, ..gbdt },
            },
            r => r,
        }
    }
}

/// Ridge weights (last element the intercept) of `y ≈ X w`.
fn fit_ridge(x: &Array2<f64>, y: &[f64], lambda: f64) -> Result<Vec<f64>> {
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(CostError::InvalidParameter {
            name: "lambda".to_string(),
            reason: format!("must be finite and >= 0, got {lambda}"),
        });
    }
    let (n, p) = x.dim();
    let mean = y.iter().sum::<f64>() / n as f64;
    let yc: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    let active: Vec<usize> = (0..p)
        .filter(|&j| x.column(j).iter().any(|&v| v != 0.0))
        .collect();
    // A tiny ridge keeps collinear encodings (one-hot + counts) solvable.
    let lambda = lambda.max(1e-9 * n as f64);
    let w = linalg::lstsq(&rows, &yc, &active, lambda).ok_or_else(|| CostError::Fit {
        model: "ridge".to_string(),
        reason: "singular system".to_string(),
    })?;
    let mut out = w;
    out.push(mean);
    Ok(out)
}

/// Weighted ridge: minimises `Σ wᵢ (yᵢ - b - xᵢ·β)² + λ‖β‖²` (intercept `b` unpenalised, by
/// weighted centring). Returns β followed by `b`.
fn fit_ridge_weighted(x: &Array2<f64>, y: &[f64], wt: &[f64], lambda: f64) -> Result<Vec<f64>> {
    let (n, p) = x.dim();
    let sw: f64 = wt.iter().sum();
    let xbar: Vec<f64> = (0..p)
        .map(|j| (0..n).map(|i| wt[i] * x[[i, j]]).sum::<f64>() / sw)
        .collect();
    let ybar = y.iter().zip(wt).map(|(t, w)| t * w).sum::<f64>() / sw;
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..p)
                .map(|j| wt[i].sqrt() * (x[[i, j]] - xbar[j]))
                .collect()
        })
        .collect();
    let yc: Vec<f64> = (0..n).map(|i| wt[i].sqrt() * (y[i] - ybar)).collect();
    let active: Vec<usize> = (0..p)
        .filter(|&j| rows.iter().any(|r| r[j] != 0.0))
        .collect();
    let lambda = lambda.max(1e-9 * sw);
    let beta = linalg::lstsq(&rows, &yc, &active, lambda).ok_or_else(|| CostError::Fit {
        model: "ridge".to_string(),
        reason: "singular system".to_string(),
    })?;
    let b = ybar - beta.iter().zip(&xbar).map(|(a, m)| a * m).sum::<f64>();
    let mut out = beta;
    out.push(b);
    Ok(out)
}

fn ridge_predict(w: &[f64], x: &[f64]) -> f64 {
    let (coef, intercept) = w.split_at(w.len() - 1);
    intercept[0] + coef.iter().zip(x).map(|(a, b)| a * b).sum::<f64>()
}

/// The scale a predictor fits its target on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetScale {
    /// The logarithm of the target: errors are relative, as measured latencies are judged
    /// (targets must be positive).
    #[default]
    Log,
    /// The target itself: exact for costs that add up over the parts of an architecture
    /// (simulated accelerators).
    Linear,
    /// The target itself, fitted to minimise squared *relative* errors (row weights
    /// `1/target²`), since measured latencies are judged by relative error (targets must be
    /// positive).
    Relative,
    /// Ridge on the target itself (the additive part), boosted trees on the log of the ratio
    /// of the target to the ridge prediction (relative, multiplicative corrections). Learners
    /// without a ridge stage treat this as [`TargetScale::Log`].
    Additive,
}

/// An architecture-level predictor: a learner on an [`ArchEncoding`] of the genes, fitted on a
/// [`TargetScale`] of the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchPredictor {
    encoding: ArchEncoding,
    learner: Learner,
    scale: TargetScale,
    ridge: Option<Vec<f64>>,
    gbdt: Option<Gbdt>,
}

impl ArchPredictor {
    /// Fits on architectures `genes` with `targets` (e.g. latency in ms; positive for the
    /// log scale).
    pub fn fit(
        encoding: ArchEncoding,
        genes: &[Vec<usize>],
        targets: &[f64],
        learner: Learner,
        scale: TargetScale,
    ) -> Result<Self> {
        if genes.len() != targets.len() || genes.len() < 2 {
            return Err(CostError::Fit {
                model: "arch-predictor".to_string(),
                reason: format!(
                    "need >= 2 architectures with one target each, got {} and {}",
                    genes.len(),
                    targets.len()
                ),
            });
        }
        let log = scale == TargetScale::Log
            || (scale == TargetScale::Additive && matches!(learner, Learner::Gbdt(_)));
        if scale == TargetScale::Relative
            && let Some(t) = targets.iter().find(|t| **t <= 0.0)
        {
            return Err(CostError::Fit {
                model: "arch-predictor".to_string(),
                reason: format!("targets must be positive for relative errors, got {t}"),
            });
        }
        let wt: Vec<f64> = targets
            .iter()
            .map(|&t| {
                if scale == TargetScale::Relative {
                    1.0 / (t * t)
                } else {
                    1.0
                }
            })
            .collect();
        let mean_w = wt.iter().sum::<f64>() / wt.len() as f64;
        let wt: Vec<f64> = wt.iter().map(|w| w / mean_w).collect();
        let weighted = scale == TargetScale::Relative;
        let scale = if log { TargetScale::Log } else { scale };
        if let Some(t) = targets
            .iter()
            .find(|t| !(t.is_finite() && (**t > 0.0 || !log)))
        {
            return Err(CostError::Fit {
                model: "arch-predictor".to_string(),
                reason: format!("targets must be finite (and positive on the log scale), got {t}"),
            });
        }
        let p = encoding.n_features();
        let mut x = Array2::zeros((genes.len(), p));
        for (i, g) in genes.iter().enumerate() {
            let f = encoding.features(g)?;
            x.row_mut(i).assign(&ndarray::ArrayView1::from(&f));
        }
        let y: Vec<f64> = targets
            .iter()
            .map(|&t| if log { t.ln() } else { t })
            .collect();
        let (ridge, gbdt) = match learner {
            Learner::Ridge { lambda } if weighted => {
                (Some(fit_ridge_weighted(&x, &y, &wt, lambda)?), None)
            }
            Learner::Ridge { lambda } => (Some(fit_ridge(&x, &y, lambda)?), None),
            Learner::Gbdt(params) => (None, Some(Gbdt::fit_weighted(&x, &y, &wt, &params)?)),
            Learner::RidgeThenGbdt { lambda, gbdt } => {
                let w = if weighted {
                    fit_ridge_weighted(&x, &y, &wt, lambda)?
                } else {
                    fit_ridge(&x, &y, lambda)?
                };
                let resid: Vec<f64> = x
                    .rows()
                    .into_iter()
                    .zip(&y)
                    .map(|(r, t)| {
                        let p = ridge_predict(&w, &r.to_vec());
                        if scale == TargetScale::Additive {
                            (t / p.max(1e-3 * t.abs()).max(f64::MIN_POSITIVE)).ln()
                        } else {
                            t - p
                        }
                    })
                    .collect();
                (Some(w), Some(Gbdt::fit_weighted(&x, &resid, &wt, &gbdt)?))
            }
        };
        Ok(Self {
            encoding,
            learner,
            scale,
            ridge,
            gbdt,
        })
    }

    /// The encoding.
    pub fn encoding(&self) -> &ArchEncoding {
        &self.encoding
    }

    /// The learner it was fitted with.
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// Predicted target of an architecture.
    pub fn predict(&self, genes: &[usize]) -> Result<f64> {
        let f = self.encoding.features(genes)?;
        let ridge = self.ridge.as_ref().map(|w| ridge_predict(w, &f));
        let trees = self
            .gbdt
            .as_ref()
            .map(|g| g.predict_row(ndarray::ArrayView1::from(&f)));
        let (r, t) = (ridge.unwrap_or(0.0), trees.unwrap_or(0.0));
        Ok(match self.scale {
            TargetScale::Log => (r + t).exp(),
            TargetScale::Linear | TargetScale::Relative => r + t,
            TargetScale::Additive => r.max(0.0) * t.exp(),
        })
    }

    /// Saves as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(self, path.as_ref())
    }

    /// Loads from JSON written by [`ArchPredictor::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref())
    }
}

fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| CostError::parse(path, e.to_string()))?;
    dynas_space::files::write_output(path, text).map_err(|e| CostError::io(path, e))
}

fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))
}

impl CostModel for ArchPredictor {
    fn name(&self) -> &str {
        "arch-predictor"
    }

    /// Predicts the latency of the architecture the network was decoded from (its genes; a
    /// network without genes is looked up by its `arch_id`).
    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        let genes = match (&network.genes, &network.arch_id) {
            (Some(genes), _) => genes.genes().to_vec(),
            (None, Some(id)) => self.encoding.genes_from_arch_id(id)?,
            (None, None) => {
                return Err(CostError::Unsupported {
                    model: self.name().to_string(),
                    what: "networks without genes or an arch_id".to_string(),
                });
            }
        };
        Ok(Cost::latency(self.predict(&genes)?))
    }
}

#[cfg(test)]
mod tests;
