//! Hypervolume improvement of one point over a front, without computing the front's
//! hypervolume: the improvement of `p` is the volume of the box between `p` and the reference
//! point minus the hypervolume of the front *clipped* to that box (every front point moved up to
//! `p` where it is better). One hypervolume of at most the front's size, against two of the
//! front plus one before; in 3-D a sweep keeps a 2-D staircase (`O(n^2)` worst case, usually far
//! less, as clipped points dominate one another).

use crate::pareto::hypervolume;

/// Hypervolume improvement of `p` over the mutually non-dominated `front` (minimisation),
/// bounded by the reference point whose every coordinate is `reference`. 0 when `p` does not
/// strictly dominate the reference or a front point weakly dominates `p`.
pub(super) fn improvement(front: &[Vec<f64>], p: &[f64], reference: f64) -> f64 {
    if !p.iter().all(|&x| x < reference) {
        return 0.0;
    }
    let box_volume: f64 = p.iter().map(|x| reference - x).product();
    match p.len() {
        3 => {
            let mut clipped: Vec<[f64; 3]> = Vec::with_capacity(front.len());
            for f in front {
                let q = [f[0].max(p[0]), f[1].max(p[1]), f[2].max(p[2])];
                if q.iter().all(|&x| x < reference) {
                    clipped.push(q);
                }
            }
            (box_volume - hypervolume_3d(&mut clipped, [reference; 3])).max(0.0)
        }
        _ => {
            let clipped: Vec<Vec<f64>> = front
                .iter()
                .map(|f| f.iter().zip(p).map(|(a, b)| a.max(*b)).collect())
                .collect();
            let reference = vec![reference; p.len()];
            (box_volume - hypervolume(&clipped, &reference).unwrap_or(0.0)).max(0.0)
        }
    }
}

/// Exact hypervolume of 3-D `points` (each below `reference` in every coordinate): a sweep
/// along the last objective that keeps the first two objectives' non-dominated staircase.
pub(super) fn hypervolume_3d(points: &mut [[f64; 3]], reference: [f64; 3]) -> f64 {
    points.sort_by(|a, b| {
        a[2].total_cmp(&b[2])
            .then(a[0].total_cmp(&b[0]))
            .then(a[1].total_cmp(&b[1]))
    });
    // Sorted by the first objective ascending, so the second is strictly descending.
    let mut stair: Vec<[f64; 2]> = Vec::with_capacity(points.len());
    let mut area = 0.0;
    let mut volume = 0.0;
    for k in 0..points.len() {
        let [x, y, z] = points[k];
        // The staircase point with the largest x <= this x has the smallest y among them.
        let at = stair.partition_point(|s| s[0] <= x);
        let dominated = at > 0 && stair[at - 1][1] <= y;
        if !dominated {
            // Remove the points this one dominates: one with the same x (and a larger y), and
            // those from `at` on with y >= this y.
            let start = if at > 0 && stair[at - 1][0] == x {
                at - 1
            } else {
                at
            };
            let end = at + stair[at..].partition_point(|s| s[1] >= y);
            stair.splice(start..end, [[x, y]]);
            area = staircase_area(&stair, reference);
        }
        let upper = points.get(k + 1).map_or(reference[2], |next| next[2]);
        volume += area * (upper - z);
    }
    volume
}

fn staircase_area(stair: &[[f64; 2]], reference: [f64; 3]) -> f64 {
    let mut area = 0.0;
    for (i, s) in stair.iter().enumerate() {
        let right = stair.get(i + 1).map_or(reference[0], |n| n[0]);
        area += (right - s[0]) * (reference[1] - s[1]);
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use rand::Rng;

    #[test]
    fn matches_the_difference_of_exact_hypervolumes() {
        let mut rng = dynas_space::seeded_rng(3);
        for d in [2usize, 3, 4] {
            let reference = vec![1.1; d];
            for trial in 0..60 {
                let n = 1 + trial % 25;
                let points: Vec<Vec<f64>> = (0..n)
                    .map(|_| (0..d).map(|_| rng.random_range(0.0..1.0)).collect())
                    .collect();
                let front: Vec<Vec<f64>> = crate::pareto::non_dominated(&points)
                    .into_iter()
                    .map(|i| points[i].clone())
                    .collect();
                let p: Vec<f64> = (0..d).map(|_| rng.random_range(-0.1..1.2)).collect();
                let mut with = front.clone();
                with.push(p.clone());
                let expected = hypervolume(&with, &reference).unwrap()
                    - hypervolume(&front, &reference).unwrap();
                assert_relative_eq!(
                    improvement(&front, &p, 1.1),
                    expected.max(0.0),
                    epsilon = 1e-12
                );
            }
        }
    }

    #[test]
    fn the_3d_sweep_matches_the_generic_hypervolume() {
        let mut rng = dynas_space::seeded_rng(5);
        for n in 0..80 {
            // Every other set on a coarse grid: ties in every coordinate.
            let grid = n % 2 == 1;
            let points: Vec<Vec<f64>> = (0..n / 2)
                .map(|_| {
                    (0..3)
                        .map(|_| {
                            let v: f64 = rng.random_range(0.0..1.0);
                            if grid { (v * 4.0).floor() / 4.0 } else { v }
                        })
                        .collect()
                })
                .collect();
            let mut arrays: Vec<[f64; 3]> = points.iter().map(|p| [p[0], p[1], p[2]]).collect();
            assert_relative_eq!(
                hypervolume_3d(&mut arrays, [1.1; 3]),
                hypervolume(&points, &[1.1; 3]).unwrap(),
                epsilon = 1e-12
            );
        }
    }
}
