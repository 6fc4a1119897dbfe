//! Softmax statistics, calibration metrics and temperature scaling.
//!
//! Temperature scaling (Guo et al., 2017) divides the logits of an exit by one scalar `T > 0`
//! before the softmax; it changes confidences but not predictions. [`TemperatureFit`] chooses `T`
//! on validation outputs to minimise either the expected calibration error or the negative
//! log-likelihood.

use serde::{Deserialize, Serialize};

use crate::error::{ExitError, Result};

/// Softmax of `logits / temperature`, written into `out` (numerically stable).
pub fn softmax_into(logits: &[f32], temperature: f64, out: &mut Vec<f64>) {
    out.clear();
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &z| m.max(f64::from(z)));
    let mut sum = 0.0;
    for &z in logits {
        let e = ((f64::from(z) - max) / temperature).exp();
        sum += e;
        out.push(e);
    }
    if sum > 0.0 {
        out.iter_mut().for_each(|p| *p /= sum);
    }
}

/// Summary of one softmax output: predicted class, its probability, the entropy (nats) and the
/// log-probability of a given label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxSummary {
    /// Arg-max class.
    pub prediction: usize,
    /// Largest probability (max-softmax confidence).
    pub max_prob: f64,
    /// Shannon entropy of the distribution, in nats.
    pub entropy: f64,
}

/// Summarises `softmax(logits / temperature)` without allocating.
///
/// Returns `None` for an empty logit vector or when any logit is not finite.
pub fn summarize(logits: &[f32], temperature: f64) -> Option<SoftmaxSummary> {
    if logits.is_empty() || logits.iter().any(|z| !z.is_finite()) {
        return None;
    }
    let (prediction, max) =
        logits
            .iter()
            .enumerate()
            .fold((0usize, f64::NEG_INFINITY), |(bi, bz), (i, &z)| {
                if f64::from(z) > bz {
                    (i, f64::from(z))
                } else {
                    (bi, bz)
                }
            });
    // log Z = max/T + log sum exp((z - max)/T); entropy = log Z' - sum p s with s = (z-max)/T.
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for &z in logits {
        let s = (f64::from(z) - max) / temperature;
        let e = s.exp();
        sum += e;
        weighted += e * s;
    }
    let log_sum = sum.ln();
    Some(SoftmaxSummary {
        prediction,
        max_prob: 1.0 / sum,
        entropy: (log_sum - weighted / sum).max(0.0),
    })
}

/// Negative log-likelihood of `label` under `softmax(logits / temperature)`.
pub fn nll(logits: &[f32], label: usize, temperature: f64) -> f64 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &z| m.max(f64::from(z)));
    let sum: f64 = logits
        .iter()
        .map(|&z| ((f64::from(z) - max) / temperature).exp())
        .sum();
    let zl = logits
        .get(label)
        .map_or(f64::NEG_INFINITY, |&z| f64::from(z));
    sum.ln() - (zl - max) / temperature
}

/// Expected calibration error with `bins` equal-width confidence bins:
/// `sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`.
///
/// `confidences` must lie in `[0, 1]`; both slices must have the same, non-zero length.
pub fn expected_calibration_error(
    confidences: &[f64],
    correct: &[bool],
    bins: usize,
) -> Result<f64> {
    if bins == 0 {
        return Err(ExitError::invalid("bins", "must be at least 1"));
    }
    if confidences.len() != correct.len() {
        return Err(ExitError::shape(
            "ECE correctness flags",
            confidences.len(),
            correct.len(),
        ));
    }
    if confidences.is_empty() {
        return Err(ExitError::invalid("confidences", "no samples"));
    }
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0.0f64; bins];
    let mut hits = vec![0usize; bins];
    for (i, (&c, &ok)) in confidences.iter().zip(correct).enumerate() {
        if !(0.0..=1.0).contains(&c) {
            return Err(ExitError::invalid(
                "confidences",
                format!("sample {i} has confidence {c}, outside [0, 1]"),
            ));
        }
        // Bin b covers (b/B, (b+1)/B]; confidence 0 falls in the first bin.
        let b = ((c * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        count[b] += 1;
        conf_sum[b] += c;
        hits[b] += usize::from(ok);
    }
    let n = confidences.len() as f64;
    Ok((0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let m = count[b] as f64;
            (m / n) * (hits[b] as f64 / m - conf_sum[b] / m).abs()
        })
        .sum())
}

/// What temperature scaling minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CalibrationObjective {
    /// Expected calibration error of the max-softmax confidence (the HADAS / issue target).
    #[default]
    Ece,
    /// Negative log-likelihood of the labels (convex in `1/T`).
    Nll,
}

/// Validated hyper-parameters of temperature fitting.
///
/// ```
/// use dynas_exits::{CalibrationObjective, TemperatureFit};
/// let fit = TemperatureFit::new(CalibrationObjective::Ece, 15, 0.05, 20.0)?;
/// # Ok::<(), dynas_exits::ExitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemperatureFit {
    objective: CalibrationObjective,
    bins: usize,
    min_temperature: f64,
    max_temperature: f64,
}

impl Default for TemperatureFit {
    /// ECE with 15 bins, `T` searched in `[0.05, 20]`.
    fn default() -> Self {
        Self {
            objective: CalibrationObjective::Ece,
            bins: 15,
            min_temperature: 0.05,
            max_temperature: 20.0,
        }
    }
}

/// Result of fitting a temperature on one exit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedTemperature {
    /// The chosen temperature.
    pub temperature: f64,
    /// ECE at `T = 1`.
    pub ece_before: f64,
    /// ECE at the chosen temperature.
    pub ece_after: f64,
    /// Mean NLL at `T = 1`.
    pub nll_before: f64,
    /// Mean NLL at the chosen temperature.
    pub nll_after: f64,
}

impl TemperatureFit {
    /// Checked hyper-parameters: `bins >= 1`, `0 < min_temperature < max_temperature`, finite.
    pub fn new(
        objective: CalibrationObjective,
        bins: usize,
        min_temperature: f64,
        max_temperature: f64,
    ) -> Result<Self> {
        if bins == 0 {
            return Err(ExitError::invalid("bins", "must be at least 1"));
        }
        if !(min_temperature.is_finite() && max_temperature.is_finite())
            || min_temperature <= 0.0
            || min_temperature >= max_temperature
        {
            return Err(ExitError::invalid(
                "temperature range",
                format!("need 0 < min < max, finite; got [{min_temperature}, {max_temperature}]"),
            ));
        }
        Ok(Self {
            objective,
            bins,
            min_temperature,
            max_temperature,
        })
    }

    /// The objective.
    pub fn objective(&self) -> CalibrationObjective {
        self.objective
    }

    /// Number of ECE bins.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Mean NLL and ECE of `logits` (row-major, `labels.len()` rows) at `temperature`.
    pub fn metrics(
        &self,
        logits: &[f32],
        labels: &[usize],
        temperature: f64,
    ) -> Result<(f64, f64)> {
        let rows = check_rows(logits, labels)?;
        let classes = logits.len() / rows;
        let mut conf = Vec::with_capacity(rows);
        let mut ok = Vec::with_capacity(rows);
        let mut total_nll = 0.0;
        for (r, &label) in labels.iter().enumerate() {
            let row = &logits[r * classes..(r + 1) * classes];
            let s = summarize(row, temperature).ok_or_else(|| {
                ExitError::invalid("logits", format!("row {r} has a non-finite logit"))
            })?;
            conf.push(s.max_prob);
            ok.push(s.prediction == label);
            total_nll += nll(row, label, temperature);
        }
        let ece = expected_calibration_error(&conf, &ok, self.bins)?;
        Ok((total_nll / rows as f64, ece))
    }

    /// Fits the temperature of one exit: a log-spaced grid over the range, then a golden-section
    /// refinement around the best grid point.
    ///
    /// `logits` is row-major with one row per label; labels must be below the class count.
    pub fn fit(&self, logits: &[f32], labels: &[usize]) -> Result<FittedTemperature> {
        let rows = check_rows(logits, labels)?;
        let classes = logits.len() / rows;
        if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
            return Err(ExitError::invalid(
                "labels",
                format!("label {l} of sample {i} is not below the class count {classes}"),
            ));
        }
        let objective = |t: f64| -> Result<f64> {
            let (n, e) = self.metrics(logits, labels, t)?;
            Ok(match self.objective {
                CalibrationObjective::Ece => e,
                CalibrationObjective::Nll => n,
            })
        };
        let (lo, hi) = (self.min_temperature.ln(), self.max_temperature.ln());
        const GRID: usize = 48;
        let step = (hi - lo) / (GRID - 1) as f64;
        let mut best = (f64::INFINITY, 0usize);
        for g in 0..GRID {
            let v = objective((lo + step * g as f64).exp())?;
            if v < best.0 {
                best = (v, g);
            }
        }
        // Golden-section search on log T in the bracket around the best grid point.
        let mut a = lo + step * best.1.saturating_sub(1) as f64;
        let mut b = (lo + step * (best.1 + 1) as f64).min(hi);
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        let mut c = b - ratio * (b - a);
        let mut d = a + ratio * (b - a);
        let (mut fc, mut fd) = (objective(c.exp())?, objective(d.exp())?);
        for _ in 0..24 {
            if fc <= fd {
                b = d;
                d = c;
                fd = fc;
                c = b - ratio * (b - a);
                fc = objective(c.exp())?;
            } else {
                a = c;
                c = d;
                fc = fd;
                d = a + ratio * (b - a);
                fd = objective(d.exp())?;
            }
        }
        let refined = if fc <= fd { (fc, c) } else { (fd, d) };
        let log_t = if refined.0 <= best.0 {
            refined.1
        } else {
            lo + step * best.1 as f64
        };
        let temperature = log_t.exp();
        let (nll_before, ece_before) = self.metrics(logits, labels, 1.0)?;
        let (nll_after, ece_after) = self.metrics(logits, labels, temperature)?;
        Ok(FittedTemperature {
            temperature,
            ece_before,
            ece_after,
            nll_before,
            nll_after,
        })
    }
}

fn check_rows(logits: &[f32], labels: &[usize]) -> Result<usize> {
    let rows = labels.len();
    if rows == 0 {
        return Err(ExitError::invalid("labels", "no samples"));
    }
    if logits.is_empty() || !logits.len().is_multiple_of(rows) {
        return Err(ExitError::shape(
            "logits (a multiple of the number of labels)",
            rows * (logits.len() / rows).max(1),
            logits.len(),
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use rand::Rng;

    #[test]
    fn summary_matches_explicit_softmax() {
        let logits = [1.0f32, 3.0, -2.0, 0.5];
        let mut p = Vec::new();
        softmax_into(&logits, 2.0, &mut p);
        let s = summarize(&logits, 2.0).expect("finite");
        assert_eq!(s.prediction, 1);
        assert_relative_eq!(s.max_prob, p[1], epsilon = 1e-12);
        let h: f64 = -p.iter().map(|&q| q * q.ln()).sum::<f64>();
        assert_relative_eq!(s.entropy, h, epsilon = 1e-12);
        assert_relative_eq!(nll(&logits, 2, 2.0), -p[2].ln(), epsilon = 1e-12);
        assert!(summarize(&[f32::NAN, 1.0], 1.0).is_none());
    }

    #[test]
    fn ece_of_hand_example() {
        // Bin (0.8, 0.8667]: confidences 0.85 x2, one correct -> |0.5 - 0.85| * 2/4.
        // Bin (0.9333, 1]: confidences 0.95 x2, both correct -> |1 - 0.95| * 2/4.
        let ece =
            expected_calibration_error(&[0.85, 0.85, 0.95, 0.95], &[true, false, true, true], 15)
                .expect("valid");
        assert_relative_eq!(ece, 0.5 * 0.35 + 0.5 * 0.05, epsilon = 1e-12);
        assert!(expected_calibration_error(&[1.2], &[true], 10).is_err());
        assert!(expected_calibration_error(&[0.5], &[true, false], 10).is_err());
    }

    /// Logits of a perfectly calibrated source, sharpened by dividing by `t0`: the fit must find
    /// `T` near `1 / t0`.
    fn overconfident(n: usize, classes: usize, t0: f32, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = dynas_space::seeded_rng(seed);
        let mut logits = Vec::with_capacity(n * classes);
        let mut labels = Vec::with_capacity(n);
        let mut p = Vec::new();
        for _ in 0..n {
            let row: Vec<f32> = (0..classes)
                .map(|_| rng.random_range(-2.0f32..2.0) * 1.5)
                .collect();
            softmax_into(&row, 1.0, &mut p);
            // Draw the label from the calibrated distribution.
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut label = classes - 1;
            for (k, &q) in p.iter().enumerate() {
                acc += q;
                if u < acc {
                    label = k;
                    break;
                }
            }
            labels.push(label);
            logits.extend(row.iter().map(|z| z / t0));
        }
        (logits, labels)
    }

    #[test]
    fn nll_fit_recovers_the_sharpening_temperature() {
        let (logits, labels) = overconfident(4000, 5, 0.4, 3);
        let fit = TemperatureFit::new(CalibrationObjective::Nll, 15, 0.05, 20.0).expect("valid");
        let r = fit.fit(&logits, &labels).expect("fit");
        assert_relative_eq!(r.temperature, 1.0 / 0.4, max_relative = 0.12);
        assert!(r.nll_after < r.nll_before);
    }

    #[test]
    fn ece_fit_reduces_ece_of_overconfident_outputs() {
        let (logits, labels) = overconfident(4000, 5, 0.4, 5);
        let r = TemperatureFit::default()
            .fit(&logits, &labels)
            .expect("fit");
        assert!(r.ece_after < 0.5 * r.ece_before, "{r:?}");
        assert!(r.temperature > 1.0);
    }

    #[test]
    fn bad_fit_inputs_are_typed_errors() {
        assert!(TemperatureFit::new(CalibrationObjective::Ece, 0, 0.1, 2.0).is_err());
        assert!(TemperatureFit::new(CalibrationObjective::Ece, 10, 2.0, 1.0).is_err());
        let fit = TemperatureFit::default();
        assert!(matches!(
            fit.fit(&[0.0, 1.0, 2.0], &[0, 1]),
            Err(ExitError::ShapeMismatch { .. })
        ));
        assert!(fit.fit(&[0.0, 1.0], &[2]).is_err());
        assert!(fit.fit(&[0.0, f32::INFINITY], &[0]).is_err());
    }
}
