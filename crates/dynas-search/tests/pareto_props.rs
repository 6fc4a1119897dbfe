//! Property tests of the Pareto utilities against brute force.

use dynas_search::pareto::{fast_non_dominated_sort, hypervolume, non_dominated};
use proptest::prelude::*;

fn points(dim: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    prop::collection::vec(prop::collection::vec(0u8..6, dim), 1..25).prop_map(|ps| {
        ps.into_iter()
            .map(|p| p.into_iter().map(f64::from).collect())
            .collect()
    })
}

/// Volume dominated inside [0, 6)^d counted cell by cell (exact for integer points).
fn brute_hv(pts: &[Vec<f64>], d: usize) -> f64 {
    let cells = 6usize.pow(d as u32);
    (0..cells)
        .filter(|&c| {
            let cell: Vec<f64> = (0..d)
                .map(|k| ((c / 6usize.pow(k as u32)) % 6) as f64)
                .collect();
            pts.iter().any(|p| p.iter().zip(&cell).all(|(x, y)| x <= y))
        })
        .count() as f64
}

proptest! {
    #[test]
    fn sweep_front_equals_the_first_sorted_front(pts in points(2)) {
        let mut first = fast_non_dominated_sort(&pts)[0].clone();
        first.sort_unstable();
        prop_assert_eq!(non_dominated(&pts), first);
    }

    #[test]
    fn fronts_partition_and_respect_dominance(pts in points(3)) {
        let fronts = fast_non_dominated_sort(&pts);
        let mut all: Vec<usize> = fronts.iter().flatten().copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..pts.len()).collect::<Vec<_>>());
        for (k, front) in fronts.iter().enumerate().skip(1) {
            for &i in front {
                // Every member of front k is dominated by some member of front k-1.
                prop_assert!(fronts[k - 1].iter().any(|&j| dynas_search::pareto::dominates(&pts[j], &pts[i])));
            }
        }
    }

    #[test]
    fn hypervolume_2d_and_3d_equal_cell_counts(p2 in points(2), p3 in points(3)) {
        prop_assert_eq!(hypervolume(&p2, &[6.0, 6.0]).unwrap(), brute_hv(&p2, 2));
        prop_assert_eq!(hypervolume(&p3, &[6.0, 6.0, 6.0]).unwrap(), brute_hv(&p3, 3));
    }
}
