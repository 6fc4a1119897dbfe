//! A DVFS-aware analytical cost model: per-layer roofline latency and a static + dynamic power
//! model, with parameters fitted by least squares from a few measurements.
//!
//! For layer `l` at compute clock `f_c` and memory clock `f_m`:
//!
//! ```text
//! t_c = MACs_l / (macs_per_cycle · f_c)            compute time
//! t_m = bytes_l / (bytes_per_cycle · f_m)           memory time (weights + input + written)
//! t_l = max(t_c, t_m) + layer_overhead              roofline
//! T   = Σ t_l + network_overhead
//! E   = P_static · T + P_c · v(f_c)² · (f_c / f_c,max) · Σ t_c + P_m · (f_m / f_m,max) · Σ t_m
//! ```
//!
//! `v(f)` is the relative supply voltage, rising linearly from `min_voltage_ratio` at the lowest
//! clock of the device to 1 at the highest (DVFS tables scale voltage with clock). Compute energy
//! then grows like `v²` with the clock while static energy shrinks like `1/f`: energy per
//! inference has the U-shape over clocks that real boards show.
//!
//! `f_c` is the clock of the device's compute unit (CPU, GPU or a named accelerator domain);
//! the CPU or GPU clock the network does not run on does not affect the cost. A point that
//! sets any other named domain is refused with [`CostError::UnknownClockDomain`].

use dynas_space::{Layer, Network, OpKind};
use serde::{Deserialize, Serialize};

use crate::device::{ClockDomain, DeviceProfile, OperatingPoint};
use crate::error::{CostError, Result};
use crate::linalg;
use crate::model::{Cost, CostBreakdown, CostModel};

/// The clock-only latency law, kept reachable here where it used to live.
pub use crate::dvfs::DvfsScalingLaw;

/// Memory clock assumed when a device exposes none (1 GHz, so `bytes_per_cycle` reads as GB/s).
pub const NOMINAL_MEMORY_HZ: f64 = 1e9;

/// Parameters of [`AnalyticalModel`]. Build checked values with [`AnalyticalParams::new`]
/// or [`AnalyticalParams::builder`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticalParams {
    /// Effective multiply-accumulates per compute-clock cycle (> 0).
    pub macs_per_cycle: f64,
    /// Effective bytes moved per memory-clock cycle (> 0).
    pub bytes_per_cycle: f64,
    /// Fixed time per layer (kernel launch, framework), ms (≥ 0).
    pub layer_overhead_ms: f64,
    /// Fixed time per inference, ms (≥ 0).
    pub network_overhead_ms: f64,
    /// Static (leakage + idle board) power, W (≥ 0).
    pub static_power_w: f64,
    /// Dynamic compute power at the highest clock while computing, W (≥ 0).
    pub compute_power_w: f64,
    /// Dynamic memory power at the highest memory clock while moving data, W (≥ 0).
    pub memory_power_w: f64,
    /// Supply voltage at the lowest compute clock relative to the highest, in (0, 1].
    pub min_voltage_ratio: f64,
}

impl Default for AnalyticalParams {
    /// Order-of-magnitude values for an embedded GPU of the Jetson AGX Xavier class
    /// (not fitted: fit them to your board with [`AnalyticalModel::fit`]).
    fn default() -> Self {
        Self {
            macs_per_cycle: 256.0,
            bytes_per_cycle: 32.0,
            layer_overhead_ms: 0.02,
            network_overhead_ms: 0.2,
            static_power_w: 2.5,
            compute_power_w: 9.0,
            memory_power_w: 2.0,
            min_voltage_ratio: 0.6,
        }
    }
}

impl AnalyticalParams {
    /// Checked parameters: throughputs positive, times and powers non-negative, voltage ratio
    /// in (0, 1], all finite.
    pub fn new(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// Starts from [`AnalyticalParams::default`]; finish with [`AnalyticalParams::new`].
    pub fn builder() -> Self {
        Self::default()
    }

    /// Sets `macs_per_cycle`.
    pub fn macs_per_cycle(mut self, v: f64) -> Self {
        self.macs_per_cycle = v;
        self
    }
    /// Sets `bytes_per_cycle`.
    pub fn bytes_per_cycle(mut self, v: f64) -> Self {
        self.bytes_per_cycle = v;
        self
    }
    /// Sets `layer_overhead_ms`.
    pub fn layer_overhead_ms(mut self, v: f64) -> Self {
        self.layer_overhead_ms = v;
        self
    }
    /// Sets `network_overhead_ms`.
    pub fn network_overhead_ms(mut self, v: f64) -> Self {
        self.network_overhead_ms = v;
        self
    }
    /// Sets the three power terms (static, compute, memory), W.
    pub fn power_w(mut self, static_w: f64, compute_w: f64, memory_w: f64) -> Self {
        self.static_power_w = static_w;
        self.compute_power_w = compute_w;
        self.memory_power_w = memory_w;
        self
    }
    /// Sets `min_voltage_ratio`.
    pub fn min_voltage_ratio(mut self, v: f64) -> Self {
        self.min_voltage_ratio = v;
        self
    }

    fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, positive: bool| -> Result<()> {
            if !v.is_finite() || v < 0.0 || (positive && v == 0.0) {
                return Err(CostError::InvalidParameter {
                    name: name.to_string(),
                    reason: format!(
                        "must be finite and {} 0, got {v}",
                        if positive { ">" } else { ">=" }
                    ),
                });
            }
            Ok(())
        };
        check("macs_per_cycle", self.macs_per_cycle, true)?;
        check("bytes_per_cycle", self.bytes_per_cycle, true)?;
        check("layer_overhead_ms", self.layer_overhead_ms, false)?;
        check("network_overhead_ms", self.network_overhead_ms, false)?;
        check("static_power_w", self.static_power_w, false)?;
        check("compute_power_w", self.compute_power_w, false)?;
        check("memory_power_w", self.memory_power_w, false)?;
        check("min_voltage_ratio", self.min_voltage_ratio, true)?;
        if self.min_voltage_ratio > 1.0 {
            return Err(CostError::InvalidParameter {
                name: "min_voltage_ratio".to_string(),
                reason: format!("must be in (0, 1], got {}", self.min_voltage_ratio),
            });
        }
        Ok(())
    }
}

/// One measured run of a network at an operating point, for fitting.
#[derive(Clone, Debug)]
pub struct Measurement<'a> {
    /// The network that ran.
    pub network: &'a Network,
    /// Where it ran.
    pub point: OperatingPoint,
    /// Measured latency, ms.
    pub latency_ms: f64,
    /// Measured energy, mJ, if known.
    pub energy_mj: Option<f64>,
}

/// Bytes a layer moves: weights read, input read, everything it writes.
pub fn layer_bytes(layer: &Layer) -> u64 {
    let input = match layer.kind {
        OpKind::Zero | OpKind::Identity => 0,
        _ => layer.input.elements() * dynas_space::network::BYTES_PER_ELEMENT,
    };
    layer.weight_bytes() + input + layer.activation_bytes()
}

/// The DVFS-aware roofline + power model. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticalModel {
    device: DeviceProfile,
    params: AnalyticalParams,
}

/// Per-layer time split of the analytical model (seconds).
#[derive(Clone, Copy, Debug, Default)]
struct LayerTimes {
    compute_s: f64,
    memory_s: f64,
    total_s: f64,
}

impl AnalyticalModel {
    /// A model of `device` with checked `params`.
    pub fn new(device: DeviceProfile, params: AnalyticalParams) -> Result<Self> {
        params.validate()?;
        Ok(Self { device, params })
    }

    /// The device.
    pub fn device(&self) -> &DeviceProfile {
        &self.device
    }

    /// The parameters.
    pub fn params(&self) -> &AnalyticalParams {
        &self.params
    }

    /// (compute Hz, memory Hz, compute Hz max, memory Hz max) of `point`; missing clocks take
    /// the device maximum.
    fn clocks(&self, point: &OperatingPoint) -> Result<(f64, f64, f64, f64)> {
        // Priced: the compute unit's clock and memory; the CPU / GPU clock the network does
        // not run on is documented as not affecting cost.
        let [cpu, gpu, memory] = ClockDomain::WELL_KNOWN;
        point.check_domains(
            "analytical",
            &[cpu, gpu, memory, self.device.compute_unit.domain()],
        )?;
        let unit = &self.device.compute_unit;
        let list = self.device.compute_hz_list();
        let max_c = list
            .last()
            .copied()
            .ok_or_else(|| CostError::InvalidParameter {
                name: "device".to_string(),
                reason: format!("device `{}` has no compute clocks", self.device.name),
            })? as f64;
        let fc = point.compute_hz(unit).map_or(max_c, |v| v as f64);
        let max_m = self
            .device
            .memory_hz
            .last()
            .map_or(NOMINAL_MEMORY_HZ, |&v| v as f64);
        let fm = point.memory_hz().map_or(max_m, |v| v as f64);
        if fc <= 0.0 || fm <= 0.0 {
            return Err(CostError::InvalidParameter {
                name: "operating point".to_string(),
                reason: format!("clocks must be positive: {point}"),
            });
        }
        Ok((fc, fm, max_c, max_m))
    }

    /// Relative supply voltage at compute clock `fc`.
    fn voltage_ratio(&self, fc: f64) -> f64 {
        let list = self.device.compute_hz_list();
        let (lo, hi) = match (list.first(), list.last()) {
            (Some(&lo), Some(&hi)) if hi > lo => (lo as f64, hi as f64),
            _ => return 1.0,
        };
        let r = self.params.min_voltage_ratio;
        let x = ((fc - lo) / (hi - lo)).clamp(0.0, 1.0);
        r + (1.0 - r) * x
    }

    fn layer_times(&self, layer: &Layer, fc: f64, fm: f64) -> LayerTimes {
        let p = &self.params;
        let compute_s = layer.macs() as f64 / (p.macs_per_cycle * fc);
        let memory_s = layer_bytes(layer) as f64 / (p.bytes_per_cycle * fm);
        let overhead = match layer.kind {
            OpKind::Identity | OpKind::Zero => 0.0,
            _ => p.layer_overhead_ms * 1e-3,
        };
        LayerTimes {
            compute_s,
            memory_s,
            total_s: compute_s.max(memory_s) + overhead,
        }
    }

    fn layer_cost(&self, t: &LayerTimes, layer: &Layer, power: (f64, f64, f64)) -> Cost {
        let (ps, pc, pm) = power;
        let energy_j = ps * t.total_s + pc * t.compute_s + pm * t.memory_s;
        Cost {
            latency_ms: t.total_s * 1e3,
            energy_mj: Some(energy_j * 1e3),
            peak_memory_bytes: Some(
                layer.weight_bytes()
                    + layer.input.elements() * dynas_space::network::BYTES_PER_ELEMENT
                    + layer.activation_bytes(),
            ),
        }
    }

    /// Effective (static, compute, memory) power in W at the given clocks.
    fn powers(&self, fc: f64, fm: f64, max_c: f64, max_m: f64) -> (f64, f64, f64) {
        let p = &self.params;
        let v = self.voltage_ratio(fc);
        (
            p.static_power_w,
            p.compute_power_w * v * v * fc / max_c,
            p.memory_power_w * fm / max_m,
        )
    }

    /// Average power (W) while running `network` at `point` (energy / latency).
    pub fn average_power_w(&self, network: &Network, point: &OperatingPoint) -> Result<f64> {
        let c = self.estimate(network, point)?;
        Ok(c.energy_mj.unwrap_or(0.0) / c.latency_ms.max(f64::MIN_POSITIVE))
    }

    /// Fits the model to measurements of one or more networks on `device`.
    ///
    /// Latency parameters (`macs_per_cycle`, `bytes_per_cycle`, `layer_overhead_ms`,
    /// `network_overhead_ms`) are fitted by non-negative least squares on the roofline: for a
    /// fixed assignment of each (layer, point) to its compute- or memory-bound side the model
    /// is linear in `1/macs_per_cycle`, `1/bytes_per_cycle` and the overheads; the fit starts
    /// from the additive model and re-assigns sides until they no longer change (keeping the
    /// best fit seen). With a single network the two overheads cannot be told apart and all
    /// fixed time goes to `network_overhead_ms`. When at least three measurements carry
    /// energy, the three power terms are fitted the same way (energy is linear in them);
    /// otherwise they stay as in `prior`, as does `min_voltage_ratio`.
    pub fn fit(
        device: DeviceProfile,
        measurements: &[Measurement<'_>],
        prior: AnalyticalParams,
    ) -> Result<Self> {
        prior.validate()?;
        let fit_err = |reason: String| CostError::Fit {
            model: "analytical".to_string(),
            reason,
        };
        if measurements.len() < 2 {
            return Err(fit_err(format!(
                "need at least 2 measurements, got {}",
                measurements.len()
            )));
        }
        for (i, m) in measurements.iter().enumerate() {
            if !(m.latency_ms.is_finite() && m.latency_ms > 0.0) {
                return Err(fit_err(format!(
                    "measurement {i}: latency must be positive and finite, got {}",
                    m.latency_ms
                )));
            }
        }
        let mut model = Self::new(device, prior)?;
        // Per measurement: per layer (MACs / f_c, bytes / f_m) in cycles-seconds, layer count.
        let mut per_layer: Vec<Vec<(f64, f64)>> = Vec::with_capacity(measurements.len());
        let mut layer_counts = Vec::with_capacity(measurements.len());
        for m in measurements {
            let (fc, fm, _, _) = model.clocks(&m.point)?;
            per_layer.push(
                m.network
                    .layers
                    .iter()
                    .map(|l| (l.macs() as f64 / fc, layer_bytes(l) as f64 / fm))
                    .collect(),
            );
            layer_counts.push(
                m.network
                    .layers
                    .iter()
                    .filter(|l| !matches!(l.kind, OpKind::Identity | OpKind::Zero))
                    .count() as f64,
            );
        }
        let y: Vec<f64> = measurements.iter().map(|m| m.latency_ms * 1e-3).collect();
        let distinct_counts = layer_counts
            .iter()
            .any(|&c| (c - layer_counts[0]).abs() > 0.5);
        let build_rows = |assign: Option<&[Vec<bool>]>| -> Vec<Vec<f64>> {
            per_layer
                .iter()
                .enumerate()
                .map(|(i, layers)| {
                    let (mut xc, mut xm) = (0.0, 0.0);
                    for (j, &(c, b)) in layers.iter().enumerate() {
                        match assign {
                            None => {
                                xc += c;
                                xm += b;
                            }
                            Some(a) if a[i][j] => xc += c,
                            Some(_) => xm += b,
                        }
                    }
                    let mut row = vec![xc, xm, 1.0];
                    if distinct_counts {
                        row.push(layer_counts[i]);
                    }
                    row
                })
                .collect()
        };
        let rows = build_rows(None);
        let mut w = linalg::nnls_small(&rows, &y)
            .ok_or_else(|| fit_err("the measurements do not determine the model".to_string()))?;
        let eval = |w: &[f64]| -> f64 {
            per_layer
                .iter()
                .enumerate()
                .map(|(i, layers)| {
                    let mut t: f64 = layers.iter().map(|&(c, b)| (w[0] * c).max(w[1] * b)).sum();
                    t += w[2];
                    if distinct_counts {
                        t += w[3] * layer_counts[i];
                    }
                    (t - y[i]).powi(2)
                })
                .sum()
        };
        let mut best = (eval(&w), w.clone());
        for _ in 0..25 {
            let assign: Vec<Vec<bool>> = per_layer
                .iter()
                .map(|layers| layers.iter().map(|&(c, b)| w[0] * c >= w[1] * b).collect())
                .collect();
            let rows = build_rows(Some(&assign));
            let Some(next) = linalg::nnls_small(&rows, &y) else {
                break;
            };
            let e = eval(&next);
            let converged = next
                .iter()
                .zip(&w)
                .all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-30));
            w = next;
            if e < best.0 {
                best = (e, w.clone());
            }
            if converged {
                break;
            }
        }
        let w = best.1;
        let inv = |v: f64, name: &str| -> Result<f64> {
            if v > 0.0 {
                Ok(1.0 / v)
            } else {
                Err(fit_err(format!(
                    "the measurements do not determine `{name}` (its coefficient fitted to 0); \
                     measure at more diverse clocks"
                )))
            }
        };
        let mut params = prior;
        params.macs_per_cycle = inv(w[0], "macs_per_cycle").or_else(|e| {
            // A purely memory-bound workload: keep the prior compute throughput.
            if w[1] > 0.0 {
                Ok(prior.macs_per_cycle)
            } else {
                Err(e)
            }
        })?;
        params.bytes_per_cycle = inv(w[1], "bytes_per_cycle").or_else(|e| {
            if w[0] > 0.0 {
                Ok(prior.bytes_per_cycle)
            } else {
                Err(e)
            }
        })?;
        params.network_overhead_ms = w[2] * 1e3;
        params.layer_overhead_ms = if distinct_counts { w[3] * 1e3 } else { 0.0 };
        model.params = params;

        // Energy: E = P_s·T + P_c·Σ v²(f/fmax)·t_c + P_m·Σ (f_m/f_m,max)·t_m.
        let with_energy: Vec<&Measurement<'_>> = measurements
            .iter()
            .filter(|m| m.energy_mj.is_some_and(|e| e.is_finite() && e > 0.0))
            .collect();
        if with_energy.len() >= 3 {
            let mut rows = Vec::with_capacity(with_energy.len());
            let mut y = Vec::with_capacity(with_energy.len());
            for m in &with_energy {
                let (fc, fm, max_c, max_m) = model.clocks(&m.point)?;
                let v = model.voltage_ratio(fc);
                let (mut tc, mut tm) = (0.0, 0.0);
                for l in &m.network.layers {
                    let t = model.layer_times(l, fc, fm);
                    tc += t.compute_s;
                    tm += t.memory_s;
                }
                rows.push(vec![
                    m.latency_ms * 1e-3,
                    v * v * fc / max_c * tc,
                    fm / max_m * tm,
                ]);
                y.push(m.energy_mj.unwrap_or(0.0) * 1e-3);
            }
            let p = linalg::nnls_small(&rows, &y).ok_or_else(|| {
                fit_err("the energy measurements do not determine the power model".to_string())
            })?;
            model.params.static_power_w = p[0];
            model.params.compute_power_w = p[1];
            model.params.memory_power_w = p[2];
        }
        model.params.validate()?;
        Ok(model)
    }
}

impl CostModel for AnalyticalModel {
    fn name(&self) -> &str {
        "analytical"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        let (fc, fm, max_c, max_m) = self.clocks(point)?;
        let power = self.powers(fc, fm, max_c, max_m);
        let mut total = Cost {
            latency_ms: self.params.network_overhead_ms,
            energy_mj: Some(self.params.network_overhead_ms * power.0),
            peak_memory_bytes: Some(0),
        };
        for layer in &network.layers {
            let t = self.layer_times(layer, fc, fm);
            total = total.then(self.layer_cost(&t, layer, power));
        }
        Ok(total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let (fc, fm, max_c, max_m) = self.clocks(point)?;
        let power = self.powers(fc, fm, max_c, max_m);
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| self.layer_cost(&self.layer_times(l, fc, fm), l, power))
            .collect();
        let overhead = Cost {
            latency_ms: self.params.network_overhead_ms,
            energy_mj: Some(self.params.network_overhead_ms * power.0),
            peak_memory_bytes: Some(0),
        };
        let total = layers.iter().fold(overhead, |acc, c| acc.then(*c));
        Ok(CostBreakdown { layers, total })
    }
}

#[cfg(test)]
mod tests;
