//! Predicted against measured, per deployed point: every member of a family classifies the
//! same held-out images one at a time, exactly as it serves, and each point's measured top-1,
//! exit rates and host latency are put beside what its deployment predicted.

use std::time::Instant;

use dynas_space::seeded_rng;
use serde::{Deserialize, Serialize};

use crate::runtime::Family;
use dynas_supernet::data::{Augmentation, Dataset, Normalization};
use dynas_supernet::{Result, SupernetError};

/// One deployed point, predicted and measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointCheck {
    /// The point's index in the deployment.
    pub point: usize,
    /// Its subnet, compact form.
    pub genotype: String,
    /// Images classified.
    pub images: usize,
    /// Top-1 the deployment predicted, % (on its validation split).
    pub predicted_top1: f64,
    /// Top-1 measured here, %.
    pub measured_top1: f64,
    /// Share of inputs each deployed exit takes, predicted (calibration), in exit order, then
    /// the final classifier's share.
    pub predicted_exit_rates: Vec<f64>,
    /// The same, measured here.
    pub measured_exit_rates: Vec<f64>,
    /// Latency the deployment predicted, ms (its cost source says on what: a board's fitted
    /// model for HADAS, this host for Dynamic-OFA).
    pub predicted_latency_ms: f64,
    /// Median batch-1 latency measured on this host, ms.
    pub host_median_ms: f64,
    /// Mean batch-1 latency measured on this host, ms.
    pub host_mean_ms: f64,
}

impl PointCheck {
    /// Measured minus predicted top-1, points.
    pub fn top1_gap(&self) -> f64 {
        self.measured_top1 - self.predicted_top1
    }

    /// The largest gap between a measured and a predicted exit rate, points (percentage
    /// points of inputs).
    pub fn worst_exit_rate_gap(&self) -> f64 {
        self.measured_exit_rates
            .iter()
            .zip(&self.predicted_exit_rates)
            .map(|(m, p)| 100.0 * (m - p).abs())
            .fold(0.0, f64::max)
    }
}

/// Classifies the first `images` images of `data` (all when `None`) with every member of
/// `family`, batch 1, and reports each point predicted against measured.
pub fn check_points(
    family: &Family,
    data: &Dataset,
    norm: &Normalization,
    images: Option<usize>,
) -> Result<Vec<PointCheck>> {
    let n = images.map_or(data.len(), |k| k.min(data.len()));
    if n == 0 {
        return Err(SupernetError::invalid(
            "images",
            "the image set to check on has no images",
        ));
    }
    let device = family
        .members()
        .first()
        .map(|m| m.deployed.device())
        .unwrap_or(tch::Device::Cpu);
    let mut rng = seeded_rng(0);
    let inputs: Vec<(tch::Tensor, i64)> = (0..n)
        .map(|i| {
            let b = data.batch(&[i], norm, &Augmentation::NONE, &mut rng, device);
            (b.images, i64::from(data.labels()[i]))
        })
        .collect();
    let mut checks = Vec::with_capacity(family.members().len());
    for (point, member) in family.members().iter().enumerate() {
        let slots = member.deployed_exits.len() + 1;
        let mut counts = vec![0usize; slots];
        let mut correct = 0usize;
        let mut times = Vec::with_capacity(n);
        // One warm-up so the first timing does not pay first-call costs.
        member.classify(&inputs[0].0)?;
        for (x, label) in &inputs {
            let t = Instant::now();
            let (prediction, slot) = member.classify(x)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            counts[slot.min(slots - 1)] += 1;
            correct += usize::from(prediction == *label);
        }
        let mut predicted_exit_rates: Vec<f64> =
            member.deployed_exits.iter().map(|e| e.exit_rate).collect();
        let taken: f64 = predicted_exit_rates.iter().sum();
        predicted_exit_rates.push((1.0 - taken).max(0.0));
        times.sort_by(f64::total_cmp);
        checks.push(PointCheck {
            point,
            genotype: member.genotype.to_string(),
            images: n,
            predicted_top1: member.top1,
            measured_top1: 100.0 * correct as f64 / n as f64,
            predicted_exit_rates,
            measured_exit_rates: counts.iter().map(|&c| c as f64 / n as f64).collect(),
            predicted_latency_ms: member.idle_latency_ms,
            host_median_ms: times[n / 2],
            host_mean_ms: times.iter().sum::<f64>() / n as f64,
        });
    }
    Ok(checks)
}
