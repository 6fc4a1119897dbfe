//! Rank and linear correlations shared by every learner's evaluation (cost predictors,
//! accuracy predictors of the search). An undefined correlation (a constant input, fewer
//! than two values) is `None`, never a number that looks like a result.

/// Ranks of `v` from 1, ties sharing their average rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation of the first `min(len)` values; `None` when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 2 {
        return None;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let (ma, mb) = (
        a.iter().sum::<f64>() / n as f64,
        b.iter().sum::<f64>() / n as f64,
    );
    let (mut c, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        c += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    (va > 0.0 && vb > 0.0).then(|| c / (va * vb).sqrt())
}

/// Spearman rank correlation (Pearson on average ranks); `None` when undefined.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    pearson(&ranks(&a[..n]), &ranks(&b[..n]))
}

/// Kendall's tau-b rank correlation; `None` when undefined (either side constant).
pub fn kendall_tau(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        for j in (i + 1)..n {
            let da = a[i] - a[j];
            let db = b[i] - b[j];
            if da == 0.0 && db == 0.0 {
                continue;
            } else if da == 0.0 {
                ties_a += 1.0;
            } else if db == 0.0 {
                ties_b += 1.0;
            } else if (da > 0.0) == (db > 0.0) {
                concordant += 1.0;
            } else {
                discordant += 1.0;
            }
        }
    }
    let denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)).sqrt();
    (denom > 0.0).then(|| (concordant - discordant) / denom)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    #[test]
    fn correlations_on_hand_examples() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_relative_eq!(spearman(&a, &[10.0, 20.0, 30.0, 40.0]).unwrap(), 1.0);
        assert_relative_eq!(spearman(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap(), -1.0);
        assert_relative_eq!(kendall_tau(&a, &[1.0, 3.0, 2.0, 4.0]).unwrap(), 4.0 / 6.0);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
        assert_relative_eq!(pearson(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap(), 1.0);
    }

    #[test]
    fn constant_inputs_are_undefined() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(spearman(&a, &[7.0; 3]), None);
        assert_eq!(kendall_tau(&[7.0; 3], &a), None);
        assert_eq!(pearson(&[1.0], &[2.0]), None);
    }
}
