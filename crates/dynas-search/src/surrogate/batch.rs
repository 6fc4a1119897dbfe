//! Acquisition and batch selection: the hypervolume improvement of a prediction over the
//! front, and the greedy, lazily scored batch with fantasised observations.

use dynas_cost::parallel::*;
use dynas_space::Genotype;

use super::gp::{LANES, hamming};
use super::hvi;
use super::models::{Models, Prediction};
use crate::pareto::non_dominated;

/// Hypervolume improvement of `p` over a 2-D `front` sorted by the first objective (points
/// mutually non-dominated), bounded by `reference`.
pub(super) fn hvi_2d(front: &[[f64; 2]], p: [f64; 2], reference: [f64; 2]) -> f64 {
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
pub(super) fn domination_gap(front: &[Vec<f64>], p: &[f64]) -> f64 {
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

/// Candidates outside the local set that may be picked at each step (those with the best
/// bounds).
const EXACT_GLOBAL: usize = 512;

const REFERENCE: f64 = 1.1;

/// Candidates whose exact prediction is computed together (in parallel) by the lazy searches
/// for the best candidates.
pub(super) const REFINE_CHUNK: usize = 4 * LANES;

/// Acquisition of one prediction against `front` (scaled, non-dominated): its optimistic
/// point's hypervolume improvement times the chance to be feasible when positive, else minus
/// the distance by which the front dominates it.
pub(super) fn acquisition(front: &[Vec<f64>], front_2d: &[[f64; 2]], p: &Prediction) -> f64 {
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

pub(super) fn sorted_2d(front: &[Vec<f64>]) -> Vec<[f64; 2]> {
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
pub(super) struct Fantasy<'a> {
    pub(super) models: &'a Models,
    /// The fantasised points, in order.
    pub(super) points: Vec<FantasyPoint>,
}

/// A fantasised genotype and, per objective, its `L^-1 k(x)` (against the training points and
/// the earlier fantasised ones) and the extended Cholesky factor's new diagonal element.
pub(super) type FantasyPoint = (Vec<usize>, Vec<(Vec<f64>, f64)>);

impl<'a> Fantasy<'a> {
    /// Adds `genes` (whose prediction is `p`) to the fantasised points.
    pub(super) fn add(&mut self, genes: &[usize], p: &Prediction) {
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
    pub(super) fn update(&self, genes: &[usize], p: &mut Prediction, exploration: f64) {
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
pub(super) fn select_batch(
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
