//! The hardware performance model GoldenNAS uses instead of measuring every candidate on the
//! device: a non-negative linear model of latency in a network's MACs, activation and weight
//! traffic and number of kernels, fitted on a few measurements of the target and checked on
//! held-out networks it was not fitted on.
//!
//! Targets ([`Target`]): this host (libtorch on the CPU, batch 1, each network timed:
//! *measured*), or the Jetson AGX Xavier per-layer lookup table at its highest clocks (the
//! table's *measured* per-layer latencies where it has the layer, its fitted regression where
//! it has not: the OFA-MNIST table does not hold every width of the width-elastic space).

use std::path::PathBuf;

use dynas_cost::learn::metrics::spearman;
use dynas_cost::{Cost, CostModel, DvfsLutModel, OperatingPoint};
use dynas_space::{Network, OpKind, SearchSpace, seeded_rng};
use dynas_supernet::HostLatencyModel;
use serde::{Deserialize, Serialize};

use crate::error::{GoldenNasError, Result};

/// Measures one network's latency (ms) on a target.
pub type Measurer = Box<dyn Fn(&Network) -> Result<f64>>;

/// A device GoldenNAS searches for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// This host: libtorch on the CPU, batch 1, deployed form; the first quartile of
    /// `repeats` runs after `warmup`.
    Host {
        /// Warm-up runs per network.
        warmup: usize,
        /// Timed runs per network (at least 1).
        repeats: usize,
    },
    /// The Jetson AGX Xavier per-layer table (`lut/ofa-mnist/jetson_agx_xavier.json` in
    /// `data_dir`, the `dynas-data` folder) at the highest clocks.
    JetsonXavierLut {
        /// The shared data folder (`dynas_data::DIR`).
        data_dir: PathBuf,
    },
}

impl Target {
    /// A short name (`host`, `jetson-xavier-lut`), used in file names and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Host { .. } => "host",
            Self::JetsonXavierLut { .. } => "jetson-xavier-lut",
        }
    }

    /// What a measurement of this target is, for provenance labels.
    pub fn source(&self) -> String {
        match self {
            Self::Host { repeats, .. } => format!(
                "host CPU, libtorch, batch 1, {} threads, first quartile of {repeats} runs",
                tch::get_num_threads()
            ),
            Self::JetsonXavierLut { .. } => "Jetson AGX Xavier per-layer LUT at the highest \
                 clocks (measured layers; regression for layers without a key)"
                .into(),
        }
    }

    /// The function measuring one network's latency (ms) on this target.
    pub fn measurer(&self) -> Result<Measurer> {
        Ok(match self {
            Self::Host { warmup, repeats } => {
                let model = HostLatencyModel::new(*warmup, *repeats, 1, tch::Device::Cpu)?;
                // The first quartile of the sorted runs: on a shared host the median and
                // the tail carry other processes' load, which a model of the network cannot
                // predict.
                Box::new(move |n: &Network| {
                    let t = model.measure(n)?;
                    Ok(t[t.len() / 4])
                })
            }
            Self::JetsonXavierLut { data_dir } => {
                let model = DvfsLutModel::jetson_agx_xavier(data_dir)?;
                let point = model.reference_point();
                Box::new(move |n: &Network| Ok(model.estimate(n, &point)?.latency_ms))
            }
        })
    }
}

/// How many networks the performance model is fitted on and checked on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerfModelConfig {
    /// Networks measured to fit the model (the space's largest and smallest among them; at
    /// least 6).
    pub fit_networks: usize,
    /// Further networks measured only to check the model (at least 1).
    pub held_out_networks: usize,
    /// Seed of the random networks.
    pub seed: u64,
}

impl Default for PerfModelConfig {
    fn default() -> Self {
        Self {
            fit_networks: 24,
            held_out_networks: 16,
            seed: 0,
        }
    }
}

impl PerfModelConfig {
    /// Checks the configuration.
    pub fn check(&self) -> Result<()> {
        if self.fit_networks < FEATURES + 1 {
            return Err(GoldenNasError::invalid(
                "fit_networks",
                format!("{} is fewer than {}", self.fit_networks, FEATURES + 1),
            ));
        }
        if self.held_out_networks == 0 {
            return Err(GoldenNasError::invalid(
                "held_out_networks",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// How well the model predicts networks it was not fitted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Networks it was fitted on.
    pub fit_networks: usize,
    /// Held-out networks it was checked on.
    pub held_out_networks: usize,
    /// Mean absolute percentage error on the held-out networks.
    pub held_out_mape_pct: f64,
    /// Largest absolute percentage error on the held-out networks.
    pub held_out_max_ape_pct: f64,
    /// Spearman rank correlation of prediction and measurement on the held-out networks
    /// (`None` when undefined).
    pub held_out_spearman: Option<f64>,
    /// `(measured, predicted)` latency of each held-out network, ms.
    pub held_out: Vec<(f64, f64)>,
    /// What the measurements are.
    pub measured_on: String,
}

/// Number of features (intercept included).
const FEATURES: usize = 5;

/// `[1, MMACs, activation MB, weight MB, kernels]` of a network.
pub fn features(net: &Network) -> [f64; FEATURES] {
    let kernels: usize = net
        .layers
        .iter()
        .map(|l| match l.kind {
            OpKind::MbConv => 2 + usize::from(l.has_expansion()),
            OpKind::Conv | OpKind::Linear => 1,
            _ => 0,
        })
        .sum();
    let weight_bytes: u64 = net.layers.iter().map(|l| l.weight_bytes()).sum();
    [
        1.0,
        net.macs() as f64 / 1e6,
        net.activation_bytes() as f64 / 1e6,
        weight_bytes as f64 / 1e6,
        kernels as f64,
    ]
}

/// A fitted performance model of one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerfModel {
    target: String,
    coefficients: Vec<f64>,
    report: FitReport,
}

impl PerfModel {
    /// Fits a model on `(network, measured ms)` pairs and checks it on `held_out` pairs.
    pub fn from_measurements(
        target: impl Into<String>,
        measured_on: impl Into<String>,
        fit: &[(Network, f64)],
        held_out: &[(Network, f64)],
    ) -> Result<Self> {
        if fit.len() < FEATURES + 1 || held_out.is_empty() {
            return Err(GoldenNasError::invalid(
                "measurements",
                format!(
                    "{} to fit (at least {}) and {} held out (at least 1)",
                    fit.len(),
                    FEATURES + 1,
                    held_out.len()
                ),
            ));
        }
        if fit.iter().chain(held_out).any(|(_, y)| {
            y.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !y.is_finite()
        }) {
            return Err(GoldenNasError::invalid(
                "measurements",
                "latencies must be positive and finite",
            ));
        }
        // Relative errors matter: each row is weighted by 1 / measured latency.
        let rows: Vec<Vec<f64>> = fit
            .iter()
            .map(|(n, y)| features(n).iter().map(|f| f / y).collect())
            .collect();
        let ys = vec![1.0; fit.len()];
        let coefficients = dynas_cost::nonnegative_least_squares(&rows, &ys)
            .ok_or_else(|| GoldenNasError::invalid("measurements", "no non-negative fit exists"))?;
        let mut model = Self {
            target: target.into(),
            coefficients,
            report: FitReport {
                fit_networks: fit.len(),
                held_out_networks: held_out.len(),
                held_out_mape_pct: 0.0,
                held_out_max_ape_pct: 0.0,
                held_out_spearman: None,
                held_out: Vec::new(),
                measured_on: measured_on.into(),
            },
        };
        let pairs: Vec<(f64, f64)> = held_out
            .iter()
            .map(|(n, y)| (*y, model.predict(n)))
            .collect();
        let ape: Vec<f64> = pairs
            .iter()
            .map(|(y, p)| (p - y).abs() / y * 100.0)
            .collect();
        let (ys, ps): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        model.report.held_out_mape_pct = ape.iter().sum::<f64>() / ape.len() as f64;
        model.report.held_out_max_ape_pct = ape.iter().copied().fold(0.0, f64::max);
        model.report.held_out_spearman = spearman(&ys, &ps);
        model.report.held_out = pairs;
        Ok(model)
    }

    /// Measures `config.fit_networks + config.held_out_networks` networks of `space` on
    /// `target` (the largest and smallest first, then uniformly random distinct ones) and fits
    /// the model on the first `fit_networks`.
    pub fn fit(target: &Target, space: &dyn SearchSpace, config: &PerfModelConfig) -> Result<Self> {
        config.check()?;
        let measure = target.measurer()?;
        let mut rng = seeded_rng(config.seed);
        let total = config.fit_networks + config.held_out_networks;
        let mut genotypes = vec![space.largest(), space.smallest()];
        let mut draws = 0;
        while genotypes.len() < total && draws < total * 100 {
            draws += 1;
            let g = space.sample(&mut rng);
            let net = space.decode(&g)?;
            // Distinct networks (genes of absent blocks do not make another network).
            let is_new = genotypes.iter().all(|h| {
                space
                    .decode(h)
                    .map(|m| m.layers != net.layers)
                    .unwrap_or(true)
            });
            if is_new {
                genotypes.push(g);
            }
        }
        let mut measured = Vec::with_capacity(genotypes.len());
        for g in &genotypes {
            let net = space.decode(g)?;
            let ms = measure(&net)?;
            measured.push((net, ms));
        }
        let held_out = measured.split_off(config.fit_networks.min(measured.len()));
        Self::from_measurements(target.name(), target.source(), &measured, &held_out)
    }

    /// Predicted latency of `net`, ms.
    pub fn predict(&self, net: &Network) -> f64 {
        features(net)
            .iter()
            .zip(&self.coefficients)
            .map(|(f, c)| f * c)
            .sum()
    }

    /// The target's name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Fitted coefficients for `[1, MMACs, activation MB, weight MB, kernels]` (ms per unit).
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// Accuracy on the held-out networks.
    pub fn report(&self) -> &FitReport {
        &self.report
    }
}

impl CostModel for PerfModel {
    fn name(&self) -> &str {
        &self.target
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> dynas_cost::Result<Cost> {
        Ok(Cost::latency(self.predict(network)))
    }
}
