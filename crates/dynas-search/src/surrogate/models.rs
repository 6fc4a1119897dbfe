//! The surrogate models: one Gaussian process per objective (and one for the constraint
//! violation), fitted on the archive, and the predictions they give a candidate.

use dynas_cost::parallel::*;
use dynas_space::Genotype;

use super::batch::{REFINE_CHUNK, acquisition, sorted_2d};
use super::gp::{Gp, LANES, hamming};
use crate::executor::Record;
use crate::pareto::non_dominated;

/// The normal distribution's CDF (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
pub(super) fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The fitted models and the scaling of the objective space in which hypervolume is measured.
pub(super) struct Models {
    pub(super) objectives: Vec<Gp>,
    pub(super) violation: Option<Gp>,
    /// Every training genotype; distances to them are computed once per candidate and shared
    /// by the models.
    pub(super) train: Vec<Vec<usize>>,
    /// Per model (objectives, then the violation): the positions in `train` of its training
    /// points, `None` when it trains on all of them.
    pub(super) rows: Vec<Option<Vec<usize>>>,
    /// Per objective: (lowest value seen, range) in minimisation form.
    pub(super) scale: Vec<(f64, f64)>,
    /// Evaluated feasible front, scaled.
    pub(super) front: Vec<Vec<f64>>,
    pub(super) exploration: f64,
}

/// One candidate's prediction, scaled: the optimistic point and the chance to be feasible.
#[derive(Clone, Default)]
pub(super) struct Prediction {
    pub(super) optimistic: Vec<f64>,
    /// Per objective, scaled: predictive mean and sd (the prior's sd unless `exact`).
    pub(super) mean: Vec<f64>,
    pub(super) sd: Vec<f64>,
    /// Per objective: `L^-1 k(x)` against the training points and the first `absorbed`
    /// fantasised points of the batch (empty unless `exact`).
    pub(super) solved: Vec<Vec<f64>>,
    /// Fantasised points reflected in `solved` and `sd`.
    pub(super) absorbed: usize,
    pub(super) feasible: f64,
    /// Whether the sd was computed (otherwise the optimistic point is only a bound: the
    /// prior's sd is the largest, so no exact prediction scores better).
    pub(super) exact: bool,
}

impl Models {
    pub(super) fn fit(
        records: &[&Record],
        objectives: &[crate::problem::Objective],
    ) -> Option<Self> {
        let m = objectives.len();
        let genes = records.first()?.genotype.len();
        let mut models = Vec::with_capacity(m);
        let mut scale = Vec::with_capacity(m);
        let mut rows = Vec::with_capacity(m + 1);
        let rows_of = |used: &[bool]| {
            (!used.iter().all(|&u| u))
                .then(|| (0..used.len()).filter(|&i| used[i]).collect::<Vec<usize>>())
        };
        for (k, o) in objectives.iter().enumerate() {
            let used: Vec<bool> = records
                .iter()
                .map(|r| r.evaluation.values.get(k).is_some_and(|v| v.is_finite()))
                .collect();
            let data: Vec<(&[usize], f64)> = records
                .iter()
                .filter_map(|r| {
                    let v = r.evaluation.values.get(k).copied()?;
                    v.is_finite().then(|| (r.genotype.genes(), o.to_min(v)))
                })
                .collect();
            rows.push(rows_of(&used));
            let lo = data.iter().map(|d| d.1).fold(f64::INFINITY, f64::min);
            let hi = data.iter().map(|d| d.1).fold(f64::NEG_INFINITY, f64::max);
            let range = if hi > lo { hi - lo } else { 1.0 };
            models.push(Gp::fit(genes, &data)?);
            scale.push((lo, range));
        }
        let violated: Vec<(&[usize], f64)> = records
            .iter()
            .filter(|r| r.evaluation.violation.is_finite())
            .map(|r| (r.genotype.genes(), r.evaluation.violation))
            .collect();
        let violation = if violated.iter().any(|v| v.1 > 0.0) {
            Gp::fit(genes, &violated)
        } else {
            None
        };
        let used: Vec<bool> = records
            .iter()
            .map(|r| r.evaluation.violation.is_finite())
            .collect();
        rows.push(rows_of(&used));
        let feasible: Vec<Vec<f64>> = records
            .iter()
            .filter(|r| {
                r.evaluation.is_feasible() && r.evaluation.values.iter().all(|v| v.is_finite())
            })
            .map(|r| {
                r.evaluation
                    .minimised(objectives)
                    .iter()
                    .zip(&scale)
                    .map(|(v, (lo, range))| (v - lo) / range)
                    .collect()
            })
            .collect();
        let front = non_dominated(&feasible)
            .into_iter()
            .map(|i| feasible[i].clone())
            .collect();
        Some(Self {
            objectives: models,
            violation,
            train: records
                .iter()
                .map(|r| r.genotype.genes().to_vec())
                .collect(),
            rows,
            scale,
            front,
            exploration: 0.0,
        })
    }

    /// Distances from `genes` to the training points of model `model` (objectives, then the
    /// violation), from the distances to every training genotype.
    fn distances_of<'a>(&self, all: &'a [usize], model: usize) -> std::borrow::Cow<'a, [usize]> {
        match &self.rows[model] {
            None => std::borrow::Cow::Borrowed(all),
            Some(rows) => std::borrow::Cow::Owned(rows.iter().map(|&i| all[i]).collect()),
        }
    }

    fn all_distances(&self, genes: &[usize]) -> Vec<usize> {
        self.train.iter().map(|t| hamming(genes, t)).collect()
    }

    /// Predictions for `candidates` with the prior's sd: optimistic bounds, none exact.
    pub(super) fn bounds(&self, candidates: &[Genotype]) -> Vec<Prediction> {
        let prior: Vec<f64> = self
            .objectives
            .iter()
            .zip(&self.scale)
            .map(|(gp, (_, range))| gp.prior_sd() / range)
            .collect();
        candidates
            .par_iter()
            .map(|g| {
                let all = self.all_distances(g.genes());
                let mean: Vec<f64> = self
                    .objectives
                    .iter()
                    .zip(&self.scale)
                    .enumerate()
                    .map(|(k, (gp, (lo, range)))| {
                        (gp.mean_at(&self.distances_of(&all, k)) - lo) / range
                    })
                    .collect();
                let optimistic = mean
                    .iter()
                    .zip(&prior)
                    .map(|(m, s)| m - self.exploration * s)
                    .collect();
                Prediction {
                    optimistic,
                    mean,
                    sd: prior.clone(),
                    solved: Vec::new(),
                    absorbed: 0,
                    feasible: 1.0,
                    exact: false,
                }
            })
            .collect()
    }

    /// Computes the sds (a solve against each Cholesky factor) and the chance to be feasible
    /// of up to [`LANES`] predictions, `(position in candidates, prediction)`, solved together.
    fn refine_lanes(&self, candidates: &[Genotype], items: &mut [(usize, Prediction)]) {
        let all: Vec<Vec<usize>> = items
            .iter()
            .map(|(i, _)| self.all_distances(candidates[*i].genes()))
            .collect();
        let models = self.objectives.iter().chain(&self.violation);
        for (model, gp) in models.enumerate() {
            let own: Vec<std::borrow::Cow<'_, [usize]>> =
                all.iter().map(|a| self.distances_of(a, model)).collect();
            let refs: Vec<&[usize]> = own.iter().map(|d| d.as_ref()).collect();
            let solved = gp.mean_sd_solved_lanes(&refs);
            for ((_, p), (m, s, solved)) in items.iter_mut().zip(solved) {
                if model == 0 {
                    p.solved.clear();
                    p.absorbed = 0;
                }
                match self.scale.get(model) {
                    Some((lo, range)) => {
                        p.mean[model] = (m - lo) / range;
                        p.sd[model] = s / range;
                        p.optimistic[model] = p.mean[model] - self.exploration * p.sd[model];
                        p.solved.push(solved);
                    }
                    None => {
                        p.feasible = if s > 0.0 {
                            normal_cdf(-m / s)
                        } else if m <= 0.0 {
                            1.0
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        for (_, p) in items.iter_mut() {
            p.exact = true;
        }
    }

    /// [`Models::refine_lanes`] for any number of predictions, in parallel.
    pub(super) fn refine(&self, candidates: &[Genotype], items: &mut [(usize, Prediction)]) {
        items
            .par_chunks_mut(LANES)
            .for_each(|lanes| self.refine_lanes(candidates, lanes));
    }

    /// Exact predictions for every candidate.
    #[cfg(test)]
    pub(super) fn predict(&self, candidates: &[Genotype]) -> Vec<Prediction> {
        let mut items: Vec<(usize, Prediction)> =
            self.bounds(candidates).into_iter().enumerate().collect();
        self.refine(candidates, &mut items);
        items.into_iter().map(|(_, p)| p).collect()
    }

    /// The positions of the `k` candidates with the best exact acquisition against the front
    /// (best first, ties by position), computing exact predictions only where a candidate's
    /// bound could still beat the `k`-th best exact score.
    pub(super) fn best_exact(&self, candidates: &[Genotype], k: usize) -> Vec<usize> {
        let front_2d = sorted_2d(&self.front);
        let mut predictions = self.bounds(candidates);
        let bounds: Vec<f64> = predictions
            .par_iter()
            .map(|p| acquisition(&self.front, &front_2d, p))
            .collect();
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| bounds[b].total_cmp(&bounds[a]).then(a.cmp(&b)));
        let mut scored: Vec<(f64, usize)> = Vec::new();
        let mut done = 0;
        while done < order.len() {
            if scored.len() >= k {
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.truncate(k);
                if scored[k - 1].0 > bounds[order[done]] {
                    break;
                }
            }
            let chunk = &order[done..(done + REFINE_CHUNK).min(order.len())];
            let mut refined: Vec<(usize, Prediction)> =
                chunk.iter().map(|&i| (i, predictions[i].clone())).collect();
            self.refine(candidates, &mut refined);
            for (i, p) in refined {
                scored.push((acquisition(&self.front, &front_2d, &p), i));
                predictions[i] = p;
            }
            done += chunk.len();
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
        scored.into_iter().map(|(_, i)| i).collect()
    }
}
