//! Pareto math on objective vectors in **minimisation form**: dominance, fast non-dominated
//! sorting, crowding distance exactly as pymoo computes it, exact hypervolume and IGD. The one
//! Pareto filter of the workspace: the search ranks with it, the runtime prunes with it.

use crate::error::{CoreError, Result};

/// Relation of `a` to `b` (pymoo's `Dominator.get_relation`): `1` if `a` dominates `b`, `-1`
/// if `b` dominates `a`, `0` otherwise.
pub fn dominance(a: &[f64], b: &[f64]) -> i8 {
    let mut a_better = false;
    let mut b_better = false;
    for (x, y) in a.iter().zip(b) {
        if x < y {
            a_better = true;
        } else if y < x {
            b_better = true;
        }
        if a_better && b_better {
            return 0;
        }
    }
    match (a_better, b_better) {
        (true, false) => 1,
        (false, true) => -1,
        _ => 0,
    }
}

/// Whether `a` dominates `b` (no worse everywhere, better somewhere).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    dominance(a, b) == 1
}

/// Deb's fast non-dominated sort: the fronts (indices into `points`), best first.
///
/// Duplicated points land in the same front, as in pymoo.
pub fn fast_non_dominated_sort(points: &[Vec<f64>]) -> Vec<Vec<usize>> {
    let n = points.len();
    let mut dominated_by_me: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut n_dominating_me = vec![0usize; n];
    for i in 0..n {
        for j in (i + 1)..n {
            match dominance(&points[i], &points[j]) {
                1 => {
                    dominated_by_me[i].push(j);
                    n_dominating_me[j] += 1;
                }
                -1 => {
                    dominated_by_me[j].push(i);
                    n_dominating_me[i] += 1;
                }
                _ => {}
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| n_dominating_me[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominated_by_me[i] {
                n_dominating_me[j] -= 1;
                if n_dominating_me[j] == 0 {
                    next.push(j);
                }
            }
        }
        fronts.push(current);
        current = next;
    }
    fronts
}

/// The rank (front number, 0 best) of every point.
pub fn ranks(points: &[Vec<f64>]) -> Vec<usize> {
    let mut rank = vec![0; points.len()];
    for (k, front) in fast_non_dominated_sort(points).iter().enumerate() {
        for &i in front {
            rank[i] = k;
        }
    }
    rank
}

/// Indices of the non-dominated points, ascending (duplicates of a non-dominated point are
/// all kept). Uses an `O(n log n)` sweep in 2-D and an `O(n log n + n f)` lexicographic sweep
/// (front size `f`) in more dimensions, so it handles whole benchmark and configuration tables.
pub fn non_dominated(points: &[Vec<f64>]) -> Vec<usize> {
    if points.first().is_some_and(|p| p.len() == 2) {
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| {
            points[a][0]
                .total_cmp(&points[b][0])
                .then(points[a][1].total_cmp(&points[b][1]))
        });
        let mut keep = Vec::new();
        let mut best_y = f64::INFINITY;
        let mut last: Option<&[f64]> = None;
        for i in order {
            let p = &points[i];
            // Equal points are mutually non-dominated: keep duplicates of a kept point.
            if last.is_some_and(|l| l == p.as_slice()) || p[1] < best_y {
                keep.push(i);
                best_y = best_y.min(p[1]);
                last = Some(p);
            }
        }
        keep.sort_unstable();
        keep
    } else {
        // Lexicographic sweep: a point can only be dominated by a point before it in
        // lexicographic order, and (dominance being transitive) by a kept one, so each point is
        // checked against the front so far: O(n log n + n f) time, O(n) memory.
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| {
            points[a]
                .iter()
                .zip(&points[b])
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut keep: Vec<usize> = Vec::new();
        for i in order {
            if !keep.iter().any(|&k| dominates(&points[k], &points[i])) {
                keep.push(i);
            }
        }
        keep.sort_unstable();
        keep
    }
}

/// Crowding distance of the points of one front, exactly as pymoo's
/// `calc_crowding_distance(F, filter_out_duplicates=True)`: fronts of at most two points get
/// infinity; duplicates (of an earlier point) get 0; extreme points of each objective get
/// infinity; gaps are normalised by the objective's range (objectives with zero range add 0)
/// and the sum is divided by the number of objectives.
pub fn crowding_distance(front: &[Vec<f64>]) -> Vec<f64> {
    crowding_distance_with(front, true)
}

/// [`crowding_distance`] with pymoo's `filter_out_duplicates` switch (pymoo 0.6's `"cd"`
/// survival passes `false`: duplicates then get ordinary, usually small, distances).
pub fn crowding_distance_with(front: &[Vec<f64>], filter_duplicates: bool) -> Vec<f64> {
    let n = front.len();
    if n <= 2 {
        return vec![f64::INFINITY; n];
    }
    let m = front[0].len();
    // pymoo's find_duplicates with epsilon 1e-32: a point equal to an earlier one is a duplicate.
    let unique: Vec<usize> = (0..n)
        .filter(|&i| {
            !filter_duplicates
                || !(0..i).any(|j| {
                    front[i]
                        .iter()
                        .zip(&front[j])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt()
                        <= 1e-32
                })
        })
        .collect();
    let u = unique.len();
    let mut cd_unique = vec![0.0; u];
    #[allow(clippy::needless_range_loop)]
    for obj in 0..m {
        let mut order: Vec<usize> = (0..u).collect();
        // Stable sort = numpy's mergesort argsort.
        order.sort_by(|&a, &b| front[unique[a]][obj].total_cmp(&front[unique[b]][obj]));
        let sorted: Vec<f64> = order.iter().map(|&k| front[unique[k]][obj]).collect();
        let norm = sorted[u - 1] - sorted[0];
        for (pos, &k) in order.iter().enumerate() {
            let to_last = if pos == 0 {
                f64::INFINITY
            } else {
                sorted[pos] - sorted[pos - 1]
            };
            let to_next = if pos + 1 == u {
                f64::INFINITY
            } else {
                sorted[pos + 1] - sorted[pos]
            };
            // Zero range: numpy divides by NaN and replaces the NaN with 0.
            let scaled = |d: f64| if norm == 0.0 { 0.0 } else { d / norm };
            cd_unique[k] += scaled(to_last) + scaled(to_next);
        }
    }
    let mut cd = vec![0.0; n];
    for (k, &i) in unique.iter().enumerate() {
        cd[i] = cd_unique[k] / m as f64;
    }
    cd
}

/// Exact hypervolume dominated by `points` (minimisation) and bounded by `reference`.
/// Points that do not strictly dominate the reference point contribute nothing.
/// `O(n log n)` in 2-D; exact dimension sweep (slicing) in higher dimensions.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> Result<f64> {
    let d = reference.len();
    if d == 0 {
        return Err(CoreError::invalid(
            "reference point",
            "needs at least one objective",
        ));
    }
    if let Some(p) = points.iter().find(|p| p.len() != d) {
        return Err(CoreError::invalid(
            "points",
            format!(
                "a point has {} objectives, the reference point {d}",
                p.len()
            ),
        ));
    }
    if reference.iter().any(|r| !r.is_finite()) {
        return Err(CoreError::invalid("reference point", "must be finite"));
    }
    let inside: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x.is_finite() && x < r))
        .cloned()
        .collect();
    Ok(hv_rec(inside, reference))
}

fn hv_rec(mut pts: Vec<Vec<f64>>, reference: &[f64]) -> f64 {
    let d = reference.len();
    if pts.is_empty() {
        return 0.0;
    }
    match d {
        1 => pts.iter().map(|p| reference[0] - p[0]).fold(0.0, f64::max),
        2 => {
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            let mut volume = 0.0;
            let mut best_y = reference[1];
            for p in &pts {
                if p[1] < best_y {
                    volume += (reference[0] - p[0]) * (best_y - p[1]);
                    best_y = p[1];
                }
            }
            volume
        }
        _ => {
            // Slice along the last objective: between consecutive values the dominated
            // region's cross-section is the (d-1)-volume of the points below.
            let last = d - 1;
            pts.sort_by(|a, b| a[last].total_cmp(&b[last]));
            let mut volume = 0.0;
            for k in 0..pts.len() {
                let upper = if k + 1 < pts.len() {
                    pts[k + 1][last]
                } else {
                    reference[last]
                };
                let height = upper - pts[k][last];
                if height <= 0.0 {
                    continue;
                }
                let slice: Vec<Vec<f64>> = pts[..=k].iter().map(|p| p[..last].to_vec()).collect();
                let slice = if slice.len() > 1 && slice[0].len() == 2 {
                    let keep = non_dominated(&slice);
                    keep.into_iter().map(|i| slice[i].clone()).collect()
                } else {
                    slice
                };
                volume += height * hv_rec(slice, &reference[..last]);
            }
            volume
        }
    }
}

/// Inverted generational distance: mean over `reference_front` of the Euclidean distance to
/// the nearest point of `approximation`.
pub fn igd(approximation: &[Vec<f64>], reference_front: &[Vec<f64>]) -> Result<f64> {
    if approximation.is_empty() || reference_front.is_empty() {
        return Err(CoreError::invalid(
            "igd",
            "both the approximation and the reference front must be non-empty",
        ));
    }
    let total: f64 = reference_front
        .iter()
        .map(|r| {
            approximation
                .iter()
                .map(|a| {
                    a.iter()
                        .zip(r)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    Ok(total / reference_front.len() as f64)
}
