//! Per-layer latency and energy from a lookup table measured at the board's default (highest)
//! clocks, scaled to any CPU / GPU / memory operating point by DVFS laws fitted on measured
//! clock sweeps.
//!
//! What is measured and what is modelled, for a layer with table latency `L` and energy `E`
//! (both measured at the highest clocks):
//!
//! * **Layers without a key** (exit heads' convs and classifiers, say) get `L` and `E` from a
//!   [`LayerRegression`]: `L = t₀ + a · MMACs + b · MB moved`, and the same for `E`, fitted
//!   by non-negative least squares to the table's rows (*modelled*).
//! * **CPU term** (*modelled*): the regression's intercept `t₀` is the time a layer takes
//!   whatever its size — dispatch and kernel launch, run by the CPU. Its share
//!   `φ = t₀ / L̂` of the layer's regression latency `L̂` scales with `1 / f_cpu`.
//! * **Device term**: the rest, `(1 - φ) · L`, follows the soft-roofline [`DvfsScalingLaw`]
//!   `c₀ + ((c_g / x_g)ᵖ + (c_m / x_m)ᵖ)^(1/p)` in clocks relative to the highest ones,
//!   *fitted* to the measured Jetson TX2 GPU sweeps of three networks (each normalised by
//!   its latency at the highest clock); the sweep's memory-bound floor, measured at the
//!   default memory clock, is *modelled* as scaling with `1 / f_memory`.
//! * **Power** while the device computes: `P_busy = P_IN(x_g) + P_CPU(x_g) · (G(x_c) - 1)
//!   + P_DDR(x_g) · (G(x_m) - 1)`, where `P_IN`, `P_CPU`, `P_DDR` and the GPU rail `P_GPU`
//!   are [`DvfsPowerLaw`]s *fitted* to the measured TX2 rail powers against the GPU clock
//!   (vgg19, GPU busy), and `G(x) = P_GPU(x) / P_GPU(1)` is the GPU rail's normalised curve,
//!   *modelled* as the CPU and memory rails' response to their own clocks (no CPU or memory
//!   clock sweep was measured). While the CPU dispatches, the GPU rail is *modelled* as
//!   idle at its fitted static power: `P_dispatch = P_busy - (P_GPU(x_g) - static)`.
//! * **Energy** = `k · (t_cpu · P_dispatch + t_device · P_busy)`, with `k` chosen per layer
//!   so that the highest clocks give the table's *measured* energy: the fitted powers only
//!   set how energy changes with the clocks, never its level.
//!
//! Identity, zero and global-pooling layers cost nothing (the table has no key for pooling;
//! its cost is inside the neighbouring layers' measurements).
//!
//! The laws cover the CPU, GPU and memory clocks only: an operating point that also sets a
//! named clock domain (a DLA, an NPU) is refused with [`CostError::UnknownClockDomain`], since
//! nothing measured says how that clock changes the cost.

use std::path::Path;

use dynas_space::{Layer, Network, OpKind};
use serde::{Deserialize, Serialize};

use crate::analytical::layer_bytes;
use crate::device::{ClockDomain, DeviceProfile, OperatingPoint};
use crate::dvfs::{
    CheckedDvfsLawParams, ClockSweep, DvfsLawParams, DvfsPowerLaw, DvfsScalingLaw, PowerSweep,
    read_gpu_sweep, read_power_sweep,
};
use crate::error::{CostError, Result};
use crate::linalg;
use crate::lut::{LayerLut, harmonic_key, parse_harmonic_key};
use crate::model::{Cost, CostBreakdown, CostModel};

/// DVFS laws of a board, in clocks relative to the highest ones (`x = f / f_max`), fitted
/// on measured sweeps. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoardDvfsLaws {
    /// Device-side latency against `[x_gpu, x_memory]`, normalised to 1 at `[1, 1]`.
    pub device_latency: DvfsScalingLaw,
    /// Board input power (`VDD_IN`) against the GPU clock, W.
    pub board_power: DvfsPowerLaw,
    /// GPU rail power against the GPU clock, W (its shape also scales the CPU and memory
    /// rails with their own clocks).
    pub gpu_rail: DvfsPowerLaw,
    /// CPU rail power against the GPU clock (CPU at its default clock), W.
    pub cpu_rail: DvfsPowerLaw,
    /// Memory rail power against the GPU clock (memory at its default clock), W.
    pub memory_rail: DvfsPowerLaw,
    /// What the laws were fitted on.
    pub source: String,
}

impl BoardDvfsLaws {
    /// Fits the laws on GPU latency sweeps of one or more networks and a rail-power sweep
    /// (clocks relative to each file's highest clock), with latency-law shape `params`.
    pub fn fit(
        latency: &[ClockSweep],
        power: &PowerSweep,
        params: &CheckedDvfsLawParams,
        source: impl Into<String>,
    ) -> Result<Self> {
        let reference = latency
            .iter()
            .flat_map(|s| s.clock_hz.iter().copied())
            .fold(0.0f64, f64::max);
        if latency.is_empty() || reference <= 0.0 {
            return Err(CostError::Fit {
                model: "board-dvfs-laws".to_string(),
                reason: "no latency sweep".to_string(),
            });
        }
        let (mut clocks, mut normalised) = (Vec::new(), Vec::new());
        for sweep in latency {
            let x: Vec<Vec<f64>> = sweep.clock_hz.iter().map(|f| vec![f / reference]).collect();
            let own = DvfsScalingLaw::fit_with(&x, &sweep.latency_ms, params)?;
            let at_max = own.predict(&[1.0]);
            clocks.extend(x);
            normalised.extend(sweep.latency_ms.iter().map(|t| t / at_max));
        }
        let pooled = DvfsScalingLaw::fit_with(&clocks, &normalised, params)?;
        // The floor was measured at the default (highest) memory clock: x_memory = 1.
        let mut device_latency = pooled.with_floor_as_clock(1.0);
        if device_latency.per_clock.len() == 1 {
            device_latency.per_clock.push(0.0);
        }
        let norm = device_latency.predict(&[1.0, 1.0]);
        device_latency.constant /= norm;
        for c in &mut device_latency.per_clock {
            *c /= norm;
        }
        let top = power.gpu_hz.iter().copied().fold(0.0f64, f64::max);
        let rail = |name: &str| DvfsPowerLaw::fit(&power.gpu_hz, power.rail(name)?, top);
        Ok(Self {
            device_latency,
            board_power: rail("VDD_IN")?,
            gpu_rail: rail("VDD_SYS_GPU")?,
            cpu_rail: rail("VDD_SYS_CPU")?,
            memory_rail: rail("VDD_SYS_DDR")?,
            source: source.into(),
        })
    }

    /// Fits the laws on the two Jetson TX2 sweep files of `dynas-data/data/dvfs/` (the `dynas-data` crate)
    /// (`jetson_tx2_gpu_sweep.csv`, `jetson_tx2_vgg19_gpu_dvfs_power.csv`) with the default
    /// soft roofline ([`DvfsLawParams::default`]).
    pub fn fit_jetson_tx2_sweeps(
        latency_csv: impl AsRef<Path>,
        power_csv: impl AsRef<Path>,
    ) -> Result<Self> {
        let (latency_csv, power_csv) = (latency_csv.as_ref(), power_csv.as_ref());
        Self::fit(
            &read_gpu_sweep(latency_csv)?,
            &read_power_sweep(power_csv)?,
            &DvfsLawParams::default().check()?,
            format!(
                "fitted on {} and {}",
                latency_csv.display(),
                power_csv.display()
            ),
        )
    }

    /// Device-side latency relative to the highest clocks.
    pub fn device_latency_ratio(&self, x_gpu: f64, x_memory: f64) -> f64 {
        self.device_latency.predict(&[x_gpu, x_memory])
    }

    /// Modelled board power (W) at relative clocks while the device computes.
    pub fn busy_power_w(&self, x_cpu: f64, x_gpu: f64, x_memory: f64) -> f64 {
        let g = |x: f64| {
            self.gpu_rail.power_at_relative(x) / self.gpu_rail.power_at_relative(1.0).max(1e-12)
        };
        self.board_power.power_at_relative(x_gpu)
            + self.cpu_rail.power_at_relative(x_gpu) * (g(x_cpu) - 1.0)
            + self.memory_rail.power_at_relative(x_gpu) * (g(x_memory) - 1.0)
    }

    /// Modelled board power (W) at relative clocks while the CPU dispatches and the GPU
    /// idles (its rail at the fitted static power).
    pub fn dispatch_power_w(&self, x_cpu: f64, x_gpu: f64, x_memory: f64) -> f64 {
        let gpu_dynamic = self.gpu_rail.power_at_relative(x_gpu) - self.gpu_rail.static_w;
        (self.busy_power_w(x_cpu, x_gpu, x_memory) - gpu_dynamic).max(0.0)
    }
}

/// Latency and energy of a layer against its size, fitted to a lookup table's rows:
/// `value = intercept + per_mmac · MMACs + per_mb · MB moved` (non-negative coefficients).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRegression {
    /// Latency coefficients `[intercept ms, ms per MMAC, ms per MB]`.
    pub latency: [f64; 3],
    /// Energy coefficients `[intercept mJ, mJ per MMAC, mJ per MB]`.
    pub energy: [f64; 3],
    /// Table rows fitted on.
    pub rows: usize,
}

fn size_features(layer: &Layer) -> [f64; 3] {
    [
        1.0,
        layer.macs() as f64 * 1e-6,
        layer_bytes(layer) as f64 * 1e-6,
    ]
}

impl LayerRegression {
    /// Fits on every key of `lut` that [`parse_harmonic_key`] understands (at least 4, all
    /// with energy).
    pub fn fit(lut: &LayerLut) -> Result<Self> {
        let err = |reason: String| CostError::Fit {
            model: "layer-regression".to_string(),
            reason,
        };
        let (mut rows, mut lat, mut en) = (Vec::new(), Vec::new(), Vec::new());
        for key in lut.keys() {
            let (Some(layer), Some(entry)) = (parse_harmonic_key(key), lut.get(key)) else {
                continue;
            };
            let energy = entry
                .energy_mj
                .ok_or_else(|| err(format!("key `{key}` of `{}` has no energy", lut.name)))?;
            rows.push(size_features(&layer).to_vec());
            lat.push(entry.latency_ms);
            en.push(energy);
        }
        if rows.len() < 4 {
            return Err(err(format!(
                "`{}` has {} parseable rows, need at least 4",
                lut.name,
                rows.len()
            )));
        }
        let coef = |y: &[f64]| -> Result<[f64; 3]> {
            let w = linalg::nnls_small(&rows, y)
                .ok_or_else(|| err("the rows do not determine the regression".to_string()))?;
            Ok([w[0], w[1], w[2]])
        };
        Ok(Self {
            latency: coef(&lat)?,
            energy: coef(&en)?,
            rows: rows.len(),
        })
    }

    /// Predicted (latency ms, energy mJ) of `layer` at the table's clocks.
    pub fn predict(&self, layer: &Layer) -> (f64, f64) {
        let x = size_features(layer);
        let dot = |c: &[f64; 3]| c.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
        (dot(&self.latency), dot(&self.energy))
    }

    /// Share of `layer`'s latency that does not depend on its size (the CPU-side term).
    pub fn fixed_share(&self, layer: &Layer) -> f64 {
        let (total, _) = self.predict(layer);
        if total > 0.0 {
            (self.latency[0] / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// Where a layer's cost at the highest clocks comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CostSource {
    /// The measured lookup table.
    Measured,
    /// The [`LayerRegression`] fitted to the table (the layer has no key).
    Regression,
    /// Costs nothing (identity, zero, global pooling).
    Free,
}

/// A lookup table measured at the highest clocks, scaled to every operating point of a
/// device by fitted [`BoardDvfsLaws`]. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct DvfsLutModel {
    lut: LayerLut,
    device: DeviceProfile,
    laws: BoardDvfsLaws,
    regression: LayerRegression,
}

/// A layer's cost at the highest clocks and the share of it that is CPU-side.
#[derive(Clone, Copy, Debug)]
struct ReferenceCost {
    latency_ms: f64,
    energy_mj: f64,
    cpu_share: f64,
    source: CostSource,
}

/// Latency factors and powers (W) of an operating point and of the reference point.
#[derive(Clone, Copy, Debug)]
struct Factors {
    cpu_latency: f64,
    device_latency: f64,
    dispatch_power: f64,
    busy_power: f64,
    reference_dispatch_power: f64,
    reference_busy_power: f64,
}

impl DvfsLutModel {
    /// A model of `device` over a Harmonic-NAS-format table `lut` (keys by
    /// [`harmonic_key`]), with the fallback regression fitted on `lut`.
    pub fn new(lut: LayerLut, device: DeviceProfile, laws: BoardDvfsLaws) -> Result<Self> {
        let regression = LayerRegression::fit(&lut)?;
        Ok(Self {
            lut,
            device,
            laws,
            regression,
        })
    }

    /// Loads the table from `lut_path` (Harmonic-NAS JSON) and builds [`DvfsLutModel::new`].
    pub fn from_lut_file(
        lut_path: impl AsRef<Path>,
        device: DeviceProfile,
        laws: BoardDvfsLaws,
    ) -> Result<Self> {
        Self::new(LayerLut::from_harmonic_file(lut_path)?, device, laws)
    }

    /// The OFA-MNIST space on the Jetson AGX Xavier from the shared data folder `data_dir`
    /// (`dynas_data::DIR`, the `dynas-data` crate): table
    /// `lut/ofa-mnist/jetson_agx_xavier.json`, clocks `dvfs/jetson_operating_points.json`,
    /// laws fitted on the two TX2 sweeps in `dvfs/`.
    pub fn jetson_agx_xavier(data_dir: impl AsRef<Path>) -> Result<Self> {
        let data = data_dir.as_ref();
        let laws = BoardDvfsLaws::fit_jetson_tx2_sweeps(
            data.join("dvfs/jetson_tx2_gpu_sweep.csv"),
            data.join("dvfs/jetson_tx2_vgg19_gpu_dvfs_power.csv"),
        )?;
        let device = jetson_agx_xavier_profile(data)?;
        Self::from_lut_file(
            data.join("lut/ofa-mnist/jetson_agx_xavier.json"),
            device,
            laws,
        )
    }

    /// The device.
    pub fn device(&self) -> &DeviceProfile {
        &self.device
    }

    /// The fitted DVFS laws.
    pub fn laws(&self) -> &BoardDvfsLaws {
        &self.laws
    }

    /// The regression pricing layers without a key.
    pub fn regression(&self) -> &LayerRegression {
        &self.regression
    }

    /// The operating point the table was measured at (every clock at its highest).
    pub fn reference_point(&self) -> OperatingPoint {
        self.device.max_operating_point()
    }

    /// Every operating point of the device (CPU x GPU x memory clock grid).
    pub fn operating_points(&self) -> Vec<OperatingPoint> {
        self.device.operating_points()
    }

    /// Where each layer's cost comes from.
    pub fn sources(&self, network: &Network) -> Vec<CostSource> {
        network
            .layers
            .iter()
            .map(|l| self.reference(l).source)
            .collect()
    }

    fn reference(&self, layer: &Layer) -> ReferenceCost {
        if matches!(
            layer.kind,
            OpKind::Identity | OpKind::Zero | OpKind::GlobalAvgPool
        ) {
            return ReferenceCost {
                latency_ms: 0.0,
                energy_mj: 0.0,
                cpu_share: 0.0,
                source: CostSource::Free,
            };
        }
        let (lat, en) = self.regression.predict(layer);
        let cpu_share = self.regression.fixed_share(layer);
        match harmonic_key(layer).and_then(|k| self.lut.get(&k)) {
            Some(e) => ReferenceCost {
                latency_ms: e.latency_ms,
                energy_mj: e.energy_mj.unwrap_or(en),
                cpu_share,
                source: CostSource::Measured,
            },
            None => ReferenceCost {
                latency_ms: lat,
                energy_mj: en,
                cpu_share,
                source: CostSource::Regression,
            },
        }
    }

    /// Clocks of `point` relative to the device's highest (a missing clock is at its highest).
    fn relative_clocks(&self, point: &OperatingPoint) -> Result<[f64; 3]> {
        point.check_domains("dvfs-lut", &ClockDomain::WELL_KNOWN)?;
        let rel = |name: &str, clock: Option<u64>, list: &[u64]| -> Result<f64> {
            match (clock, list.last()) {
                (Some(0), _) => Err(CostError::InvalidParameter {
                    name: name.to_string(),
                    reason: format!("clock must be positive: {point}"),
                }),
                (Some(hz), Some(&top)) => Ok(hz as f64 / top as f64),
                _ => Ok(1.0),
            }
        };
        Ok([
            rel("cpu_hz", point.cpu_hz(), &self.device.cpu_hz)?,
            rel("gpu_hz", point.gpu_hz(), &self.device.gpu_hz)?,
            rel("memory_hz", point.memory_hz(), &self.device.memory_hz)?,
        ])
    }

    fn factors(&self, point: &OperatingPoint) -> Result<Factors> {
        let [xc, xg, xm] = self.relative_clocks(point)?;
        Ok(Factors {
            cpu_latency: 1.0 / xc,
            device_latency: self.laws.device_latency_ratio(xg, xm),
            dispatch_power: self.laws.dispatch_power_w(xc, xg, xm),
            busy_power: self.laws.busy_power_w(xc, xg, xm),
            reference_dispatch_power: self.laws.dispatch_power_w(1.0, 1.0, 1.0),
            reference_busy_power: self.laws.busy_power_w(1.0, 1.0, 1.0),
        })
    }

    fn scaled(reference: &ReferenceCost, f: &Factors) -> Cost {
        let share = reference.cpu_share;
        let cpu_ms = reference.latency_ms * share * f.cpu_latency;
        let device_ms = reference.latency_ms * (1.0 - share) * f.device_latency;
        let reference_mj = reference.latency_ms
            * (share * f.reference_dispatch_power + (1.0 - share) * f.reference_busy_power);
        let k = if reference_mj > 0.0 {
            reference.energy_mj / reference_mj
        } else {
            0.0
        };
        Cost {
            latency_ms: cpu_ms + device_ms,
            energy_mj: Some(k * (cpu_ms * f.dispatch_power + device_ms * f.busy_power)),
            peak_memory_bytes: None,
        }
    }

    /// Cost of one layer at `point`.
    pub fn layer_cost(&self, layer: &Layer, point: &OperatingPoint) -> Result<Cost> {
        Ok(Self::scaled(&self.reference(layer), &self.factors(point)?))
    }
}

impl CostModel for DvfsLutModel {
    fn name(&self) -> &str {
        "dvfs-lut"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(self.breakdown(network, point)?.total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let factors = self.factors(point)?;
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| Self::scaled(&self.reference(l), &factors))
            .collect();
        let total = layers.iter().fold(
            Cost {
                latency_ms: 0.0,
                energy_mj: Some(0.0),
                peak_memory_bytes: None,
            },
            |a, c| a.then(*c),
        );
        Ok(CostBreakdown { layers, total })
    }
}

/// The Jetson AGX Xavier from `dvfs/jetson_operating_points.json` under `data_dir`.
pub fn jetson_agx_xavier_profile(data_dir: impl AsRef<Path>) -> Result<DeviceProfile> {
    let path = data_dir.as_ref().join("dvfs/jetson_operating_points.json");
    DeviceProfile::from_jetson_table_file(&path)?
        .into_iter()
        .find(|d| d.name == "jetson_agx_xavier")
        .ok_or_else(|| CostError::parse(&path, "no device `jetson_agx_xavier`"))
}

/// Every Jetson AGX Xavier operating point (29 CPU x 14 GPU x 9 memory clocks, CPU
/// slowest-varying) from `dvfs/jetson_operating_points.json` under `data_dir`.
pub fn jetson_agx_xavier_operating_points(
    data_dir: impl AsRef<Path>,
) -> Result<Vec<OperatingPoint>> {
    Ok(jetson_agx_xavier_profile(data_dir)?.operating_points())
}
