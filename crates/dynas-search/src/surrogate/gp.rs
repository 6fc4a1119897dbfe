//! The Gaussian process on genotypes behind the surrogate search: a Hamming-distance kernel
//! (table look-ups), shapes chosen by maximum likelihood, Cholesky solves.

use dynas_cost::parallel::*;

/// Kernel shapes tried by maximum likelihood: (additive weight, length scale, noise ratio).
pub(super) fn kernel_grid() -> Vec<(f64, f64, f64)> {
    let mut grid = Vec::new();
    for &noise in &[1e-3, 1e-2, 1e-1] {
        grid.push((1.0, 1.0, noise));
        for &additive in &[0.0, 0.5] {
            for &length in &[1.0, 2.0] {
                grid.push((additive, length, noise));
            }
        }
    }
    grid
}

pub(super) fn hamming(a: &[usize], b: &[usize]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// Correlation of two genotypes `h` genes apart, for every `h` in `0..=genes`.
pub(super) fn correlation_table(genes: usize, additive: f64, length: f64) -> Vec<f64> {
    let d = genes.max(1) as f64;
    (0..=genes)
        .map(|h| {
            let h = h as f64;
            additive * (1.0 - h / d) + (1.0 - additive) * (-h / length).exp()
        })
        .collect()
}

/// In-place Cholesky factor (lower triangle, row-major) of an `n x n` matrix; `None` if it
/// is not positive definite.
pub(super) fn cholesky(a: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        if !(diag > 0.0 && diag.is_finite()) {
            return None;
        }
        let diag = diag.sqrt();
        a[j * n + j] = diag;
        for i in (j + 1)..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / diag;
        }
    }
    Some(())
}

/// Solves `L x = b` in place (forward substitution).
pub(super) fn forward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Right-hand sides solved together by [`forward_lanes`].
pub(super) const LANES: usize = 8;

/// [`forward`] for [`LANES`] right-hand sides at once, interleaved (`b[k * LANES + j]` is
/// element `k` of right-hand side `j`): each one gets exactly [`forward`]'s operations in its
/// order (so the same bits), but the lanes vectorise.
pub(super) fn forward_lanes(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = [0.0; LANES];
        s.copy_from_slice(&b[i * LANES..(i + 1) * LANES]);
        for (k, &lik) in l[i * n..i * n + i].iter().enumerate() {
            let bk = &b[k * LANES..(k + 1) * LANES];
            for j in 0..LANES {
                s[j] -= lik * bk[j];
            }
        }
        let d = l[i * n + i];
        for j in 0..LANES {
            b[i * LANES + j] = s[j] / d;
        }
    }
}

/// Solves `L^T x = b` in place (back substitution).
pub(super) fn backward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in (i + 1)..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// One kernel shape's fit: log likelihood, correlation table, Cholesky factor, weights, signal,
/// noise ratio.
pub(super) type Fit = (f64, Vec<f64>, Vec<f64>, Vec<f64>, f64, f64);

/// A Gaussian-process regressor on choice indices with a kernel that depends on the Hamming
/// distance only (so kernel values are table look-ups).
pub(super) struct Gp {
    pub(super) train: Vec<Vec<usize>>,
    pub(super) table: Vec<f64>,
    pub(super) chol: Vec<f64>,
    pub(super) alpha: Vec<f64>,
    /// Signal variance (profile maximum-likelihood estimate) in standardised units.
    pub(super) signal: f64,
    /// Noise variance as a share of the signal's.
    pub(super) noise: f64,
    pub(super) y_mean: f64,
    pub(super) y_std: f64,
}

impl Gp {
    /// Fits on `(genes, value)` pairs; `None` with fewer than two of them.
    pub(super) fn fit(genes: usize, data: &[(&[usize], f64)]) -> Option<Self> {
        let n = data.len();
        if n < 2 {
            return None;
        }
        let mean = data.iter().map(|(_, y)| y).sum::<f64>() / n as f64;
        let var = data.iter().map(|(_, y)| (y - mean).powi(2)).sum::<f64>() / n as f64;
        let y_std = var.sqrt().max(1e-12);
        let y: Vec<f64> = data.iter().map(|(_, v)| (v - mean) / y_std).collect();
        let mut distance = vec![0usize; n * n];
        for i in 0..n {
            for j in 0..i {
                let h = hamming(data[i].0, data[j].0);
                distance[i * n + j] = h;
                distance[j * n + i] = h;
            }
        }
        let fits: Vec<Option<Fit>> = kernel_grid()
            .par_iter()
            .map(|&(additive, length, noise)| {
                let table = correlation_table(genes, additive, length);
                let mut k: Vec<f64> = distance.iter().map(|&h| table[h]).collect();
                for i in 0..n {
                    k[i * n + i] += noise;
                }
                cholesky(&mut k, n)?;
                let mut alpha = y.clone();
                forward(&k, n, &mut alpha);
                let fit_term: f64 = alpha.iter().map(|a| a * a).sum();
                backward(&k, n, &mut alpha);
                let signal = (fit_term / n as f64).max(1e-12);
                let log_det: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
                let log_likelihood = -0.5 * n as f64 * signal.ln() - log_det;
                Some((log_likelihood, table, k, alpha, signal, noise))
            })
            .collect();
        // First best in grid order: deterministic whatever the thread count.
        let mut best: Option<Fit> = None;
        for fit in fits.into_iter().flatten() {
            if best.as_ref().is_none_or(|b| fit.0 > b.0) {
                best = Some(fit);
            }
        }
        let (_, table, chol, alpha, signal, noise) = best?;
        Some(Self {
            train: data.iter().map(|(g, _)| g.to_vec()).collect(),
            table,
            chol,
            alpha,
            signal,
            noise,
            y_mean: mean,
            y_std,
        })
    }

    /// Hamming distances from `genes` to every training point.
    #[cfg(test)]
    pub(super) fn distances(&self, genes: &[usize]) -> Vec<usize> {
        self.train.iter().map(|t| hamming(genes, t)).collect()
    }

    /// Predictive mean in the data's units.
    #[cfg(test)]
    pub(super) fn mean(&self, genes: &[usize]) -> f64 {
        self.mean_at(&self.distances(genes))
    }

    /// [`Gp::mean`] from the distances to the training points ([`Gp::distances`]).
    pub(super) fn mean_at(&self, distances: &[usize]) -> f64 {
        let m: f64 = distances
            .iter()
            .zip(&self.alpha)
            .map(|(&h, b)| self.table[h] * b)
            .sum();
        self.y_mean + self.y_std * m
    }

    /// Predictive mean and standard deviation (of the latent function) in the data's units.
    #[cfg(test)]
    pub(super) fn mean_sd(&self, genes: &[usize]) -> (f64, f64) {
        let (m, s, _) = self.mean_sd_solved_at(&self.distances(genes));
        (m, s)
    }

    /// [`Gp::mean_sd`] from the distances to the training points, and `L^-1 k(x)`, which
    /// [`Fantasy`](super::Fantasy) extends as fantasised points are added.
    #[cfg(test)]
    pub(super) fn mean_sd_solved_at(&self, distances: &[usize]) -> (f64, f64, Vec<f64>) {
        let mut k: Vec<f64> = distances.iter().map(|&h| self.table[h]).collect();
        let m: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        forward(&self.chol, k.len(), &mut k);
        let explained: f64 = k.iter().map(|v| v * v).sum();
        let var = (self.signal * (self.table[0] - explained)).max(0.0);
        (self.y_mean + self.y_std * m, self.y_std * var.sqrt(), k)
    }

    /// [`Gp::mean_sd_solved_at`] for up to [`LANES`] candidates at once (the same bits).
    pub(super) fn mean_sd_solved_lanes(&self, distances: &[&[usize]]) -> Vec<(f64, f64, Vec<f64>)> {
        let n = self.train.len();
        let mut k = vec![0.0; n * LANES];
        let mut means = [0.0; LANES];
        for (j, d) in distances.iter().enumerate() {
            let mut m = 0.0;
            for (i, (&h, a)) in d.iter().zip(&self.alpha).enumerate() {
                let v = self.table[h];
                k[i * LANES + j] = v;
                m += v * a;
            }
            means[j] = m;
        }
        forward_lanes(&self.chol, n, &mut k);
        (0..distances.len())
            .map(|j| {
                let solved: Vec<f64> = (0..n).map(|i| k[i * LANES + j]).collect();
                let explained: f64 = solved.iter().map(|v| v * v).sum();
                let var = (self.signal * (self.table[0] - explained)).max(0.0);
                (
                    self.y_mean + self.y_std * means[j],
                    self.y_std * var.sqrt(),
                    solved,
                )
            })
            .collect()
    }

    /// The largest predictive standard deviation (the prior's), in the data's units.
    pub(super) fn prior_sd(&self) -> f64 {
        self.y_std * (self.signal * self.table[0]).sqrt()
    }
}
