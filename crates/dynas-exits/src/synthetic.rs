//! Exit tables synthesised from published per-exit accuracies (the HADAS data), under the
//! documented [`SyntheticConfidence`] model.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::cost::ExitPosition;
use crate::error::{ExitError, Result};
use crate::table::{ExitTable, TableSource};

/// The model that turns published per-exit accuracies into an [`ExitTable`].
///
/// # Assumptions
///
/// Each of `samples` virtual validation samples `j` has a **confidence rank** `z_j` (the
/// standard-normal quantile `Φ⁻¹((j + ½)/n)`) and a **difficulty** `v_j` in `(0, 1)` (a seeded
/// Latin-hypercube draw, independent of `z`). At a column with accuracy `a`:
///
/// * the max-softmax confidence is `c_j = σ(μ + s · z_j)`, logit-normal with spread `s`
///   ([`SyntheticConfidence::spread`]) and `μ` solved so that the column's accuracy is `a`;
/// * the sample is correct iff `v_j < c_j`, so confidences are **perfectly calibrated**
///   (`P(correct | c) = c`, i.e. temperature scaling has already been applied) and correctness is
///   **nested**: a sample correct at an exit is correct at every exit where its confidence is at
///   least as high, in particular at every more accurate exit (`μ` grows with `a`).
///
/// Confidence ranks are shared by all exits (a sample that is easy for one exit is easy for all;
/// the comonotone limit), which makes the early-exit gains an optimistic estimate compared with
/// real, imperfectly correlated exits. Entropies and predicted classes are not modelled: entropy
/// and patience rules are [`ExitError::Unsupported`] on synthetic tables.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyntheticConfidence {
    spread: f64,
    samples: usize,
    seed: u64,
}

impl Default for SyntheticConfidence {
    /// Spread 2.0, 10,000 samples, seed 0.
    fn default() -> Self {
        Self {
            spread: 2.0,
            samples: 10_000,
            seed: 0,
        }
    }
}

impl SyntheticConfidence {
    /// Checked parameters: `spread` finite and positive, `samples >= 2`.
    pub fn new(spread: f64, samples: usize, seed: u64) -> Result<Self> {
        if !(spread.is_finite() && spread > 0.0) {
            return Err(ExitError::invalid(
                "spread",
                format!("{spread} is not finite and > 0"),
            ));
        }
        if samples < 2 {
            return Err(ExitError::invalid("samples", format!("{samples} < 2")));
        }
        Ok(Self {
            spread,
            samples,
            seed,
        })
    }

    /// Standard deviation of the confidence logit (larger: more polarised confidences, more
    /// informative exits).
    pub fn spread(&self) -> f64 {
        self.spread
    }

    /// Number of virtual samples.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Seed of the difficulty draw.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl ExitTable {
    /// A table synthesised from per-exit accuracies (fractions in `[0, 1]`, one per position) and
    /// the final classifier's accuracy, under the [`SyntheticConfidence`] model.
    pub fn synthesize(
        positions: Vec<ExitPosition>,
        accuracies: &[f64],
        final_accuracy: f64,
        model: &SyntheticConfidence,
    ) -> Result<Self> {
        if accuracies.len() != positions.len() {
            return Err(ExitError::shape(
                "accuracies",
                positions.len(),
                accuracies.len(),
            ));
        }
        let all: Vec<f64> = accuracies.iter().copied().chain([final_accuracy]).collect();
        if let Some((i, a)) = all
            .iter()
            .enumerate()
            .find(|(_, a)| !(0.0..=1.0).contains(*a))
        {
            return Err(ExitError::invalid(
                format!("accuracy of column {i}"),
                format!("{a} is not a fraction in [0, 1]"),
            ));
        }
        let n = model.samples;
        let z: Vec<f64> = (0..n)
            .map(|j| normal_quantile((j as f64 + 0.5) / n as f64))
            .collect();
        let mut rng = dynas_space::seeded_rng(model.seed);
        let mut strata: Vec<usize> = (0..n).collect();
        strata.shuffle(&mut rng);
        let v: Vec<f64> = strata
            .iter()
            .map(|&s| (s as f64 + rng.random::<f64>()) / n as f64)
            .collect();
        let mut max_prob = Vec::with_capacity(all.len());
        let mut correct = Vec::with_capacity(all.len());
        for &a in &all {
            let target = (a * n as f64).round() as usize;
            let count = |mu: f64| {
                z.iter()
                    .zip(&v)
                    .filter(|&(&zj, &vj)| vj < sigmoid(mu + model.spread * zj))
                    .count()
            };
            // The count is non-decreasing in mu: bisect for the smallest mu reaching the target.
            let (mut lo, mut hi) = (-40.0f64, 40.0f64);
            for _ in 0..80 {
                let mid = 0.5 * (lo + hi);
                if count(mid) >= target {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let mu = hi;
            let conf: Vec<f64> = z
                .iter()
                .map(|&zj| sigmoid(mu + model.spread * zj))
                .collect();
            correct.push(conf.iter().zip(&v).map(|(&c, &vj)| vj < c).collect());
            max_prob.push(conf);
        }
        Ok(Self {
            positions,
            samples: n,
            max_prob,
            correct,
            entropy: None,
            predictions: None,
            source: TableSource::Synthetic(*model),
        })
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Standard-normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}
