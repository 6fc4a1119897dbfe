//! Surrogate-assisted (predictor-guided) multi-objective search, for problems whose
//! evaluations are expensive (a subnet trained or scored on a supernet, a board measurement).
//!
//! Every step fits one Gaussian-process regressor per objective (and one for the constraint
//! violation when some evaluated architecture violates a constraint) on the archive, scores
//! candidate architectures by the hypervolume improvement of their *optimistic* prediction
//! (`mean - exploration x sd`, an upper-confidence-bound analogue of expected hypervolume
//! improvement) over the evaluated front, and evaluates the best batch. Candidates are every
//! unevaluated genotype when the space has at most [`SurrogateParams::enumerate_limit`] of them
//! (NAS-Bench-201's 15,625), otherwise the front's single-gene neighbours plus a population
//! evolved on the acquisition. Most of each batch is picked among *local* candidates (a few
//! genes away from the evaluated front, where the models are most reliable; on NAS-Bench-201
//! this took the hypervolume share from about 98 % to 99.3 %), the rest among all. The batch is
//! picked greedily with *fantasised* observations (kriging believer): each pick joins the models
//! at its predicted mean, which shrinks the sd of similar candidates, and its optimistic point
//! joins the front, so one batch does not spend several evaluations on one uncertain region.
//! Over the last quarter of an evaluation budget the exploration weight falls to 0
//! ([`SurrogateParams::exploit_share`]).
//! The first step evaluates a space-filling design: each gene's choices balanced (like a Latin
//! hypercube), and of several such draws the one whose closest pair is farthest apart.
//!
//! The kernel works on choice indices, so any [`crate::Problem`] fits: it mixes an additive
//! kernel (one term per gene: suits near-additive costs such as latency) with an exponential
//! kernel on the Hamming distance (interactions between genes: suits accuracy); the mix, the
//! length scale and the noise are chosen by maximum marginal likelihood on a small grid.
//! Models are refitted from the archive at each step, so the strategy's state is only a
//! counter and checkpoint/resume is exact.

use dynas_cost::parallel::*;
use dynas_space::{Genotype, SearchSpace};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Context, Record, Step, Strategy, Unseen};
use crate::pareto::{fast_non_dominated_sort, non_dominated};
use gp::{Gp, LANES, hamming};

/// Hyper-parameters of [`Surrogate`]; [`SurrogateParams::check`] turns them into a
/// [`SurrogateConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurrogateParams {
    /// Architectures of the space-filling initial design (at least 2).
    pub initial: usize,
    /// Architectures evaluated per step, between two refits (at least 1).
    pub batch: usize,
    /// Weight of the predicted standard deviation in the optimistic point (>= 0; 0 = greedy).
    pub exploration: f64,
    /// Share of an evaluation budget, at its end, over which the exploration weight falls
    /// linearly to 0 (in `[0, 1]`; 0 = constant): the last evaluations refine the front
    /// instead of probing regions they can no longer follow up. No effect without an
    /// evaluation budget.
    #[serde(default = "default_exploit_share")]
    pub exploit_share: f64,
    /// Candidates within this many changed genes of an evaluated front member are *local*.
    pub local_radius: usize,
    /// Architectures per batch picked among all candidates; the rest of the batch is picked
    /// among local ones (the model is most reliable next to evaluated architectures).
    pub global_per_batch: usize,
    /// Spaces with at most this many genotypes are enumerated; larger ones are searched by
    /// evolving candidates on the acquisition.
    pub enumerate_limit: u64,
    /// Candidates per evolution round (large spaces only; at least `batch`).
    pub pool: usize,
    /// Evolution rounds per step (large spaces only; at least 1).
    pub evolve_rounds: usize,
    /// At most this many archive records train the models (those of the best non-dominated
    /// ranks; at least 4): the Gaussian process costs the cube of this number.
    pub max_train: usize,
}

impl Default for SurrogateParams {
    /// Tuned on NAS-Bench-201 with 200 evaluations (see `docs/benchmarks.md`).
    fn default() -> Self {
        Self {
            initial: 20,
            batch: 8,
            exploration: 1.0,
            exploit_share: default_exploit_share(),
            local_radius: 1,
            global_per_batch: 2,
            enumerate_limit: 100_000,
            pool: 2_000,
            evolve_rounds: 5,
            max_train: 500,
        }
    }
}

fn default_exploit_share() -> f64 {
    0.25
}

impl SurrogateParams {
    /// Checks ranges.
    pub fn check(&self) -> Result<SurrogateConfig> {
        if self.initial < 2 {
            return Err(SearchError::invalid("initial", "must be at least 2"));
        }
        if self.batch == 0 {
            return Err(SearchError::invalid("batch", "must be at least 1"));
        }
        if !(self.exploration.is_finite() && self.exploration >= 0.0) {
            return Err(SearchError::invalid(
                "exploration",
                format!("must be finite and >= 0, got {}", self.exploration),
            ));
        }
        if !(0.0..=1.0).contains(&self.exploit_share) {
            return Err(SearchError::invalid(
                "exploit share",
                format!("must be in [0, 1], got {}", self.exploit_share),
            ));
        }
        if self.pool < self.batch {
            return Err(SearchError::invalid(
                "pool",
                format!("must be at least the batch ({})", self.batch),
            ));
        }
        if self.evolve_rounds == 0 {
            return Err(SearchError::invalid("evolve rounds", "must be at least 1"));
        }
        if self.max_train < 4 {
            return Err(SearchError::invalid("max train", "must be at least 4"));
        }
        Ok(SurrogateConfig(self.clone()))
    }
}

/// Checked hyper-parameters of [`Surrogate`] (from [`SurrogateParams::check`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SurrogateConfig(SurrogateParams);

impl SurrogateConfig {
    /// The checked values.
    pub fn params(&self) -> &SurrogateParams {
        &self.0
    }
}

/// What the surrogate search remembers between steps (the models are refitted from the
/// archive).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SurrogateState {
    /// Steps run, the initial design included.
    pub batches: usize,
    /// Batches chosen at random because too few evaluations could train a model.
    pub random_batches: usize,
}

/// Surrogate-assisted multi-objective search (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Surrogate {
    config: SurrogateConfig,
}

impl Surrogate {
    /// The search with checked hyper-parameters.
    pub fn new(config: SurrogateConfig) -> Self {
        Self { config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SurrogateConfig {
        &self.config
    }
}

// ---------------------------------------------------------------------------------------------
// Acquisition

/// Hypervolume improvement of `p` over a 2-D `front` sorted by the first objective (points
/// mutually non-dominated), bounded by `reference`.
fn hvi_2d(front: &[[f64; 2]], p: [f64; 2], reference: [f64; 2]) -> f64 {
    if p[0] >= reference[0] || p[1] >= reference[1] {
        return 0.0;
    }
    // Staircase height at p's first coordinate: the best second objective of points left of p.
    let start = front.partition_point(|f| f[0] <= p[0]);
    let mut height = front[..start]
        .iter()
        .map(|f| f[1])
        .fold(reference[1], f64::min);
    if height <= p[1] {
        return 0.0;
    }
    let mut area = 0.0;
    let mut x = p[0];
    for f in &front[start..] {
        if f[0] >= reference[0] {
            break;
        }
        area += (f[0] - x) * (height.min(reference[1]) - p[1]);
        x = f[0];
        height = height.min(f[1]);
        if height <= p[1] {
            return area;
        }
    }
    area + (reference[0] - x) * (height - p[1])
}

/// How far `p` must move (the same amount in every objective) before no point of `front`
/// weakly dominates it; 0 when none does.
fn domination_gap(front: &[Vec<f64>], p: &[f64]) -> f64 {
    front
        .iter()
        .map(|f| {
            f.iter()
                .zip(p)
                .map(|(a, b)| b - a)
                .fold(f64::INFINITY, f64::min)
        })
        .fold(0.0, f64::max)
}

/// The normal distribution's CDF (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
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
struct Models {
    objectives: Vec<Gp>,
    violation: Option<Gp>,
    /// Every training genotype; distances to them are computed once per candidate and shared
    /// by the models.
    train: Vec<Vec<usize>>,
    /// Per model (objectives, then the violation): the positions in `train` of its training
    /// points, `None` when it trains on all of them.
    rows: Vec<Option<Vec<usize>>>,
    /// Per objective: (lowest value seen, range) in minimisation form.
    scale: Vec<(f64, f64)>,
    /// Evaluated feasible front, scaled.
    front: Vec<Vec<f64>>,
    exploration: f64,
}

/// One candidate's prediction, scaled: the optimistic point and the chance to be feasible.
#[derive(Clone, Default)]
struct Prediction {
    optimistic: Vec<f64>,
    /// Per objective, scaled: predictive mean and sd (the prior's sd unless `exact`).
    mean: Vec<f64>,
    sd: Vec<f64>,
    /// Per objective: `L^-1 k(x)` against the training points and the first `absorbed`
    /// fantasised points of the batch (empty unless `exact`).
    solved: Vec<Vec<f64>>,
    /// Fantasised points reflected in `solved` and `sd`.
    absorbed: usize,
    feasible: f64,
    /// Whether the sd was computed (otherwise the optimistic point is only a bound: the
    /// prior's sd is the largest, so no exact prediction scores better).
    exact: bool,
}

/// How spread a design is: its closest pair's distance, then `usize::MAX` minus the number of
/// pairs at that distance (larger is better on both).
type DesignScore = (usize, usize);

/// Balanced initial designs drawn; the most spread one is evaluated.
const DESIGN_DRAWS: usize = 64;

/// Candidates outside the local set that may be picked at each step (those with the best
/// bounds).
const EXACT_GLOBAL: usize = 512;

const REFERENCE: f64 = 1.1;

impl Models {
    fn fit(records: &[&Record], objectives: &[crate::problem::Objective]) -> Option<Self> {
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
    fn bounds(&self, candidates: &[Genotype]) -> Vec<Prediction> {
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
    fn refine(&self, candidates: &[Genotype], items: &mut [(usize, Prediction)]) {
        items
            .par_chunks_mut(LANES)
            .for_each(|lanes| self.refine_lanes(candidates, lanes));
    }

    /// Exact predictions for every candidate.
    #[cfg(test)]
    fn predict(&self, candidates: &[Genotype]) -> Vec<Prediction> {
        let mut items: Vec<(usize, Prediction)> =
            self.bounds(candidates).into_iter().enumerate().collect();
        self.refine(candidates, &mut items);
        items.into_iter().map(|(_, p)| p).collect()
    }

    /// The positions of the `k` candidates with the best exact acquisition against the front
    /// (best first, ties by position), computing exact predictions only where a candidate's
    /// bound could still beat the `k`-th best exact score.
    fn best_exact(&self, candidates: &[Genotype], k: usize) -> Vec<usize> {
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

/// Candidates whose exact prediction is computed together (in parallel) by the lazy searches
/// for the best candidates.
const REFINE_CHUNK: usize = 4 * LANES;

/// Acquisition of one prediction against `front` (scaled, non-dominated): its optimistic
/// point's hypervolume improvement times the chance to be feasible when positive, else minus
/// the distance by which the front dominates it.
fn acquisition(front: &[Vec<f64>], front_2d: &[[f64; 2]], p: &Prediction) -> f64 {
    let d = p.optimistic.len();
    let gain = if d == 2 {
        hvi_2d(
            front_2d,
            [p.optimistic[0], p.optimistic[1]],
            [REFERENCE, REFERENCE],
        )
    } else {
        let gap = domination_gap(front, &p.optimistic);
        if gap > 0.0 {
            return -gap;
        }
        hvi::improvement(front, &p.optimistic, REFERENCE)
    };
    if gain > 0.0 {
        gain * p.feasible
    } else {
        -domination_gap(front, &p.optimistic) - (1.0 - p.feasible)
    }
}

fn sorted_2d(front: &[Vec<f64>]) -> Vec<[f64; 2]> {
    let mut f: Vec<[f64; 2]> = front
        .iter()
        .filter(|p| p.len() == 2)
        .map(|p| [p[0], p[1]])
        .collect();
    f.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    f
}

/// The batch's fantasised points (kriging believer): each pick is added to every objective's
/// model as if observed at its predicted mean, which leaves means unchanged but shrinks the sd
/// of similar candidates, so the rest of the batch explores elsewhere.
struct Fantasy<'a> {
    models: &'a Models,
    /// The fantasised points, in order.
    points: Vec<FantasyPoint>,
}

/// A fantasised genotype and, per objective, its `L^-1 k(x)` (against the training points and
/// the earlier fantasised ones) and the extended Cholesky factor's new diagonal element.
type FantasyPoint = (Vec<usize>, Vec<(Vec<f64>, f64)>);

impl<'a> Fantasy<'a> {
    /// Adds `genes` (whose prediction is `p`) to the fantasised points.
    fn add(&mut self, genes: &[usize], p: &Prediction) {
        let per_objective = self
            .models
            .objectives
            .iter()
            .zip(&p.solved)
            .map(|(gp, solved)| {
                let explained: f64 = solved.iter().map(|v| v * v).sum();
                let diag = (gp.table[0] + gp.noise - explained).max(gp.noise).sqrt();
                (solved.clone(), diag)
            })
            .collect();
        self.points.push((genes.to_vec(), per_objective));
    }

    /// Brings `p` (an exact prediction for `genes`) up to date with every fantasised point:
    /// for each one it has not absorbed, in order, one more element of each `L^-1 k(x)`, and
    /// the sd and optimistic point that follow.
    fn update(&self, genes: &[usize], p: &mut Prediction, exploration: f64) {
        while p.absorbed < self.points.len() {
            let (fantasy, per_objective) = &self.points[p.absorbed];
            let h = hamming(genes, fantasy);
            for (k, ((gp, (solved_f, diag)), (_, range))) in self
                .models
                .objectives
                .iter()
                .zip(per_objective)
                .zip(&self.models.scale)
                .enumerate()
            {
                let solved = &mut p.solved[k];
                let dot: f64 = solved.iter().zip(solved_f).map(|(a, b)| a * b).sum();
                let u = (gp.table[h] - dot) / diag;
                solved.push(u);
                let explained: f64 = solved.iter().map(|v| v * v).sum();
                let var = (gp.signal * (gp.table[0] - explained)).max(0.0);
                p.sd[k] = gp.y_std * var.sqrt() / range;
                p.optimistic[k] = p.mean[k] - exploration * p.sd[k];
            }
            p.absorbed += 1;
        }
    }
}

/// Greedy batch: the best candidate, then the best against the front extended by the chosen
/// ones' predicted means (so the batch spreads along the front) with the models conditioned on
/// them ([`Fantasy`]), and so on. The first `n_local` picks come from `local` candidates while
/// there are any; the others are picked among the local candidates and the [`EXACT_GLOBAL`]
/// others whose bound (`predictions`, made with the prior's sd) is best.
///
/// Lazy: a pick can only lower every other candidate's score (the front grows, fantasies
/// shrink sds, and a bound with the prior's sd is at least the exact score), so each candidate
/// keeps the last score it was given as an upper bound, and only candidates whose bound could
/// still win are brought up to date (exact prediction, fantasies absorbed, scored against the
/// current front). The picks are those of scoring every candidate at every pick: the best
/// score, ties to the first position.
fn select_batch(
    models: &Models,
    candidates: &[Genotype],
    mut predictions: Vec<Prediction>,
    local: &[bool],
    n_local: usize,
    batch: usize,
) -> Vec<usize> {
    let mut front = models.front.clone();
    let mut chosen: Vec<usize> = Vec::with_capacity(batch);
    let mut taken = vec![false; predictions.len()];
    let mut fantasy = Fantasy {
        models,
        points: Vec::new(),
    };
    let front_2d = sorted_2d(&front);
    let mut bound: Vec<f64> = predictions
        .par_iter()
        .map(|p| acquisition(&front, &front_2d, p))
        .collect();
    // Local candidates and the [`EXACT_GLOBAL`] others with the best bounds.
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&i| !local[i]).collect();
    order.sort_by(|&a, &b| bound[b].total_cmp(&bound[a]).then(a.cmp(&b)));
    let mut eligible = local.to_vec();
    for &i in order.iter().take(EXACT_GLOBAL) {
        eligible[i] = true;
    }
    // The pick at which `bound` was computed exactly (`usize::MAX`: never).
    let mut scored_at = vec![usize::MAX; predictions.len()];
    for pick in 0..batch.min(predictions.len()) {
        let front_2d = sorted_2d(&front);
        let mut best: Option<usize> = None;
        for any in [pick >= n_local, true] {
            // Best bound first, ties to the first position.
            let mut heap: std::collections::BinaryHeap<Ranked> = (0..predictions.len())
                .filter(|&i| eligible[i] && !taken[i] && (any || local[i]))
                .map(|i| Ranked(bound[i], i))
                .collect();
            while let Some(top) = heap.pop() {
                if scored_at[top.1] == pick {
                    best = Some(top.1);
                    break;
                }
                let mut stale = vec![top.1];
                while stale.len() < REFINE_CHUNK
                    && let Some(next) = heap.peek()
                    && scored_at[next.1] != pick
                {
                    stale.push(next.1);
                    heap.pop();
                }
                let refreshed: Vec<(usize, Prediction)> = stale
                    .iter()
                    .map(|&i| (i, std::mem::take(&mut predictions[i])))
                    .collect();
                let (mut fresh, mut known): (Vec<_>, Vec<_>) =
                    refreshed.into_iter().partition(|(_, p)| !p.exact);
                models.refine(candidates, &mut fresh);
                known.append(&mut fresh);
                let mut refreshed = known;
                refreshed.par_iter_mut().for_each(|(i, p)| {
                    fantasy.update(candidates[*i].genes(), p, models.exploration);
                });
                for (i, p) in refreshed {
                    bound[i] = acquisition(&front, &front_2d, &p);
                    scored_at[i] = pick;
                    predictions[i] = p;
                    heap.push(Ranked(bound[i], i));
                }
            }
            if best.is_some() {
                break;
            }
        }
        let Some(i) = best else { break };
        taken[i] = true;
        chosen.push(i);
        front.push(predictions[i].optimistic.clone());
        let keep = non_dominated(&front);
        front = keep.into_iter().map(|k| front[k].clone()).collect();
        if pick + 1 < batch {
            fantasy.add(candidates[i].genes(), &predictions[i]);
        }
    }
    chosen
}

/// A candidate ranked by its score bound, ties to the first position (a max-heap entry).
struct Ranked(f64, usize);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

// ---------------------------------------------------------------------------------------------
// Candidates

impl Surrogate {
    /// A space-filling design: every gene's choices appear equally often (shuffled per gene),
    /// duplicates redrawn at random.
    fn initial_design(&self, ctx: &mut Context<'_>) -> Vec<Genotype> {
        let space = ctx.problem().space();
        let n = (self.config.0.initial as u128).min(
            space
                .cardinality()
                .saturating_sub(ctx.archive().len() as u128),
        ) as usize;
        let dims: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        // Of several balanced designs, the one whose closest pair is farthest apart (then the
        // fewest pairs at that distance): no two early points waste evaluations on one region.
        let mut best: Option<(DesignScore, Vec<Vec<usize>>)> = None;
        for _ in 0..DESIGN_DRAWS {
            let columns: Vec<Vec<usize>> = dims
                .iter()
                .map(|&c| {
                    let mut column: Vec<usize> = (0..n).map(|i| i % c.max(1)).collect();
                    column.shuffle(ctx.rng());
                    column
                })
                .collect();
            let mut closest = (usize::MAX, 0);
            for i in 0..n {
                for j in 0..i {
                    let h = columns.iter().filter(|c| c[i] != c[j]).count();
                    if h < closest.0 {
                        closest = (h, 1);
                    } else if h == closest.0 {
                        closest.1 += 1;
                    }
                }
            }
            let score = (closest.0, usize::MAX - closest.1);
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, columns));
            }
        }
        let columns = best.map(|b| b.1).unwrap_or_default();
        let mut unseen = Unseen::new();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let g = Genotype::new(columns.iter().map(|c| c[i]).collect());
            if unseen.admit(&g, ctx.archive()) {
                out.push(g);
            } else {
                // A duplicate: one new genotype at random instead.
                out.extend(ctx.draw_unseen(1, 1000, &mut unseen));
            }
        }
        out
    }

    /// Mutants of `parent`: one or two genes changed.
    fn mutate(space: &dyn SearchSpace, parent: &Genotype, ctx: &mut Context<'_>) -> Genotype {
        let dims = space.dimensions();
        let mutable: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].len() > 1).collect();
        let mut child = parent.clone();
        if mutable.is_empty() {
            return child;
        }
        let changes = if ctx.rng().random_bool(0.5) { 1 } else { 2 };
        for _ in 0..changes {
            let pos = mutable[ctx.rng().random_range(0..mutable.len())];
            let n = dims[pos].len();
            let current = child.genes()[pos];
            let d = ctx.rng().random_range(0..n - 1);
            child.genes_mut()[pos] = if d >= current { d + 1 } else { d };
        }
        child
    }

    /// Candidates of a large space: random genotypes and mutants of the evaluated front,
    /// evolved for a few rounds on the acquisition (each round keeps the best tenth and adds
    /// its mutants).
    fn evolve(
        &self,
        models: &Models,
        front_genotypes: &[Genotype],
        ctx: &mut Context<'_>,
    ) -> Vec<Genotype> {
        let p = &self.config.0;
        let space = ctx.problem().space();
        let mut unseen = Unseen::new();
        let mut all: Vec<Genotype> = Vec::new();
        let mut push = |g: Genotype, ctx: &Context<'_>, all: &mut Vec<Genotype>| {
            if unseen.admit(&g, ctx.archive()) {
                all.push(g);
            }
        };
        // Every single-gene neighbour of the front, then random genotypes and mutants.
        let dims: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        for parent in front_genotypes {
            for (k, &c) in dims.iter().enumerate() {
                for v in (0..c).filter(|&v| v != parent.genes()[k]) {
                    let mut g = parent.clone();
                    g.genes_mut()[k] = v;
                    push(g, ctx, &mut all);
                }
            }
        }
        let mut round: Vec<Genotype> = Vec::new();
        for i in 0..p.pool {
            let g = if !front_genotypes.is_empty() && i % 2 == 0 {
                let parent = &front_genotypes[ctx.rng().random_range(0..front_genotypes.len())];
                Self::mutate(space, parent, ctx)
            } else {
                space.sample(ctx.rng())
            };
            round.push(g);
        }
        for r in 0..p.evolve_rounds {
            let before = all.len();
            for g in round.drain(..) {
                push(g, ctx, &mut all);
            }
            if r + 1 == p.evolve_rounds {
                break;
            }
            let fresh = &all[before..];
            let elite: Vec<Genotype> = models
                .best_exact(fresh, (p.pool / 10).max(1))
                .into_iter()
                .map(|i| fresh[i].clone())
                .collect();
            if elite.is_empty() {
                break;
            }
            for i in 0..p.pool {
                let parent = &elite[i % elite.len()];
                round.push(Self::mutate(space, parent, ctx));
            }
        }
        all
    }

    fn candidates(
        &self,
        models: &Models,
        front_genotypes: &[Genotype],
        ctx: &mut Context<'_>,
    ) -> Vec<Genotype> {
        let space = ctx.problem().space();
        match space.enumerate(u128::from(self.config.0.enumerate_limit)) {
            Ok(all) => all.filter(|g| !ctx.archive().contains(g)).collect(),
            Err(_) => self.evolve(models, front_genotypes, ctx),
        }
    }

    /// The archive records that train the models: all, or the best non-dominated ranks.
    fn training_records<'a>(&self, ctx: &'a Context<'_>) -> Vec<&'a Record> {
        let records = ctx.archive().records();
        let max = self.config.0.max_train;
        if records.len() <= max {
            return records.iter().collect();
        }
        let objectives = ctx.problem().objectives();
        let points: Vec<Vec<f64>> = records
            .iter()
            .map(|r| {
                if r.evaluation.is_feasible() && r.evaluation.values.iter().all(|v| v.is_finite()) {
                    r.evaluation.minimised(objectives)
                } else {
                    vec![f64::INFINITY; objectives.len()]
                }
            })
            .collect();
        fast_non_dominated_sort(&points)
            .into_iter()
            .flatten()
            .take(max)
            .map(|i| &records[i])
            .collect()
    }

    /// The exploration weight for the next batch (see [`SurrogateParams::exploit_share`]).
    fn exploration(&self, ctx: &Context<'_>) -> f64 {
        let p = &self.config.0;
        let remaining = ctx.remaining_evaluations();
        if remaining == usize::MAX || p.exploit_share <= 0.0 {
            return p.exploration;
        }
        let total = ctx.archive().len().saturating_add(remaining).max(1) as f64;
        p.exploration * (remaining as f64 / (p.exploit_share * total)).min(1.0)
    }

    fn random_batch(&self, ctx: &mut Context<'_>, n: usize) -> Vec<Genotype> {
        ctx.draw_unseen(n, n.saturating_mul(1000), &mut Unseen::new())
    }
}

impl Strategy for Surrogate {
    type State = SurrogateState;

    fn name(&self) -> &str {
        "surrogate"
    }

    type Config = SurrogateParams;

    fn params(&self) -> &Self::Config {
        self.config.params()
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<SurrogateState> {
        let design = self.initial_design(ctx);
        ctx.evaluate(&design)?;
        Ok(SurrogateState {
            batches: 1,
            random_batches: 0,
        })
    }

    fn step(&self, state: &mut SurrogateState, ctx: &mut Context<'_>) -> Result<Step> {
        let n = self.config.0.batch.min(ctx.remaining_evaluations());
        let objectives = ctx.problem().objectives().to_vec();
        let records = self.training_records(ctx);
        let fitted = Models::fit(&records, &objectives);
        let batch = match fitted {
            Some(mut models) => {
                models.exploration = self.exploration(ctx);
                let front_genotypes: Vec<Genotype> = {
                    let front = ctx.archive().front(&objectives);
                    front.points.into_iter().map(|p| p.genotype).collect()
                };
                let candidates = self.candidates(&models, &front_genotypes, ctx);
                let radius = self.config.0.local_radius;
                let local: Vec<bool> = candidates
                    .par_iter()
                    .map(|g| {
                        front_genotypes
                            .iter()
                            .any(|f| hamming(f.genes(), g.genes()) <= radius)
                    })
                    .collect();
                let predictions = models.bounds(&candidates);
                let n_local = n.saturating_sub(self.config.0.global_per_batch);
                select_batch(&models, &candidates, predictions, &local, n_local, n)
                    .into_iter()
                    .map(|i| candidates[i].clone())
                    .collect()
            }
            None => {
                state.random_batches += 1;
                self.random_batch(ctx, n)
            }
        };
        state.batches += 1;
        if batch.is_empty() {
            return Ok(Step::Done);
        }
        ctx.evaluate(&batch)?;
        Ok(Step::Continue)
    }
}

mod gp;
mod hvi;

#[cfg(test)]
mod tests;
