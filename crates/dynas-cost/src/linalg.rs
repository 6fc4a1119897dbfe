//! Small dense least-squares helpers (a handful of unknowns, many rows).
//!
//! Cost-model fits here have 2-8 unknowns, so normal equations solved by Gaussian
//! elimination with partial pivoting are exact enough (columns are scaled to unit norm first,
//! which keeps the condition number of `AᵀA` small) and need no LAPACK.

/// Solves the square system `a x = b` by Gaussian elimination with partial pivoting.
/// Returns `None` when the matrix is (numerically) singular.
#[allow(clippy::needless_range_loop)] // index arithmetic of elimination
pub(crate) fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    let scale = a
        .iter()
        .flat_map(|r| r.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let factor = a[row][col] / a[col][col];
            if factor != 0.0 {
                for k in col..n {
                    a[row][k] -= factor * a[col][k];
                }
                b[row] -= factor * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Least squares `min ‖X w - y‖² + ridge ‖w‖²` over the columns in `active`
/// (`rows[i][j]` is `X[i][j]`); inactive coefficients are zero.
/// Returns `None` when the active columns are linearly dependent (and `ridge == 0`).
#[allow(clippy::needless_range_loop)] // symmetric fill of the normal matrix
pub(crate) fn lstsq(
    rows: &[Vec<f64>],
    y: &[f64],
    active: &[usize],
    ridge: f64,
) -> Option<Vec<f64>> {
    let p = rows.first().map_or(0, Vec::len);
    let k = active.len();
    // Column scaling for conditioning.
    let norms: Vec<f64> = active
        .iter()
        .map(|&j| rows.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt())
        .collect();
    if norms.iter().any(|&n| n == 0.0 || !n.is_finite()) {
        return None;
    }
    let mut ata = vec![vec![0.0; k]; k];
    let mut aty = vec![0.0; k];
    for (r, &t) in rows.iter().zip(y) {
        for (a, &ja) in active.iter().enumerate() {
            let va = r[ja] / norms[a];
            aty[a] += va * t;
            for (b, &jb) in active.iter().enumerate().skip(a) {
                ata[a][b] += va * r[jb] / norms[b];
            }
        }
    }
    for a in 0..k {
        for b in 0..a {
            ata[a][b] = ata[b][a];
        }
        ata[a][a] += ridge / (norms[a] * norms[a]);
    }
    let z = solve(ata, aty)?;
    let mut w = vec![0.0; p];
    for (a, &j) in active.iter().enumerate() {
        w[j] = z[a] / norms[a];
    }
    Some(w)
}

/// Sum of squared residuals of `w` on `(rows, y)`.
pub(crate) fn sse(rows: &[Vec<f64>], y: &[f64], w: &[f64]) -> f64 {
    rows.iter()
        .zip(y)
        .map(|(r, &t)| {
            let p: f64 = r.iter().zip(w).map(|(a, b)| a * b).sum();
            (p - t) * (p - t)
        })
        .sum()
}

/// Non-negative least squares `min ‖X w - y‖², w ≥ 0`, exact for up to 10 unknowns by
/// enumerating active sets (the optimum is the unconstrained optimum of some subset that
/// is non-negative). Returns `None` when no subset has a solution.
pub fn nnls_small(rows: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let p = rows.first().map_or(0, Vec::len);
    debug_assert!(p <= 10);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1u32 << p) {
        let active: Vec<usize> = (0..p).filter(|j| mask & (1 << j) != 0).collect();
        if active.len() > rows.len() {
            continue;
        }
        let Some(w) = lstsq(rows, y, &active, 0.0) else {
            continue;
        };
        if w.iter().any(|&v| v < 0.0) {
            continue;
        }
        let e = sse(rows, y, &w);
        if best.as_ref().is_none_or(|(b, _)| e < *b) {
            best = Some((e, w));
        }
    }
    best.map(|(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn lstsq_recovers_exact_coefficients() {
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|i| vec![1.0, i as f64, (i * i) as f64])
            .collect();
        let y: Vec<f64> = rows.iter().map(|r| 2.0 + 3.0 * r[1] - 0.5 * r[2]).collect();
        let w = lstsq(&rows, &y, &[0, 1, 2], 0.0).expect("full rank");
        assert_relative_eq!(w[0], 2.0, epsilon = 1e-9);
        assert_relative_eq!(w[1], 3.0, epsilon = 1e-9);
        assert_relative_eq!(w[2], -0.5, epsilon = 1e-9);
    }

    #[test]
    fn nnls_clamps_negative_coefficients_to_zero() {
        let rows: Vec<Vec<f64>> = (0..10).map(|i| vec![1.0, i as f64]).collect();
        // y decreases: the unconstrained slope is negative, so NNLS keeps only the intercept.
        let y: Vec<f64> = (0..10).map(|i| 5.0 - 0.1 * i as f64).collect();
        let w = nnls_small(&rows, &y).expect("solution");
        assert_relative_eq!(w[1], 0.0);
        assert_relative_eq!(w[0], 4.55, epsilon = 1e-9);
        assert!(solve(vec![vec![1.0, 2.0], vec![2.0, 4.0]], vec![1.0, 2.0]).is_none());
    }
}
