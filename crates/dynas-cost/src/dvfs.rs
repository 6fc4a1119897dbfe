//! DVFS laws fitted to measured clock sweeps: how latency and rail power change with the
//! clocks, and readers for the sweep files of `dynas-data/data/dvfs/` (the `dynas-data` crate).
//!
//! * [`DvfsScalingLaw`]: latency against any number of clocks as a *soft roofline*
//!   `t = c₀ + (floorᵖ + Σⱼ (cⱼ / fⱼ)ᵖ)^(1/p)`. With `p = 1` and no floor it is the additive
//!   law `c₀ + Σⱼ cⱼ / fⱼ`; a larger `p` lets the slowest term dominate, so a network that
//!   becomes memory-bound at high GPU clocks saturates instead of speeding up like `1/f`
//!   (the `floor` is that bound when the memory clock was not swept). Fitted by non-negative
//!   least squares on relative residuals, searching the ratios between terms on a grid
//!   (the law is linear in `c₀` and the overall scale once the ratios are fixed).
//! * [`DvfsPowerLaw`]: rail power against a clock as `static + dynamic · x · v(x)²`, `x` the
//!   clock relative to a reference, `v(x) = 1 + slope · max(0, x - knee)` the relative supply
//!   voltage (flat at low clocks, linear above the knee, as on DVFS voltage tables).
//! * [`read_gpu_sweep`], [`read_power_sweep`]: the Jetson TX2 sweeps
//!   (`jetson_tx2_gpu_sweep.csv`, `jetson_tx2_vgg19_gpu_dvfs_power.csv`).
//!
//! On the measured Jetson TX2 GPU sweep the soft roofline predicts held-out clocks from 5
//! fitted ones with a mean absolute percentage error of 1.8 % (`p` picked per fit, the
//! default; 1.4 % with `p = 4` fixed), against 5.6 % for `c₀ + c₁/f` (see
//! `docs/benchmarks.md`, `examples/experiments/cost_ofa_mnist_dvfs.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CostError, Result};
use crate::linalg;

/// The exponents tried when [`DvfsLawParams::pick_sharpness`] is set (with `p = 1` the floor,
/// which would add to the constant, is left out).
pub const SHARPNESS_CHOICES: [f64; 4] = [1.0, 2.0, 4.0, 8.0];

/// Shape of a [`DvfsScalingLaw`] to fit; [`DvfsLawParams::check`] validates it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DvfsLawParams {
    /// Exponent `p ≥ 1` of the soft maximum between terms (1: they add; large: the largest
    /// wins, a hard roofline). Default 4; ignored when `pick_sharpness` is set.
    pub sharpness: f64,
    /// Fit with each `p` of [`SHARPNESS_CHOICES`] and keep the one with the lowest training
    /// error (all have the same number of unknowns, so this does not reward overfitting).
    /// Default true.
    pub pick_sharpness: bool,
    /// Whether to fit a clock-independent saturating term (needs `sharpness > 1`; at 1 it
    /// would be the constant). Default true.
    pub floor: bool,
    /// Minimise relative instead of absolute squared residuals (what a percentage error
    /// rewards; otherwise the slowest, largest latencies dominate). Default true.
    pub relative_error: bool,
}

impl Default for DvfsLawParams {
    fn default() -> Self {
        Self {
            sharpness: 4.0,
            pick_sharpness: true,
            floor: true,
            relative_error: true,
        }
    }
}

impl DvfsLawParams {
    /// The additive law `c₀ + Σⱼ cⱼ / fⱼ` by plain non-negative least squares (what
    /// `dynas cost dvfs-fit --law additive` fits).
    pub fn additive() -> Self {
        Self {
            sharpness: 1.0,
            pick_sharpness: false,
            floor: false,
            relative_error: false,
        }
    }

    /// Validated parameters: `sharpness` finite in `[1, 64]`, `floor` only with
    /// `sharpness > 1`.
    pub fn check(self) -> Result<CheckedDvfsLawParams> {
        if !(self.sharpness.is_finite() && (1.0..=64.0).contains(&self.sharpness)) {
            return Err(CostError::InvalidParameter {
                name: "sharpness".to_string(),
                reason: format!("must be in [1, 64], got {}", self.sharpness),
            });
        }
        if self.floor && self.sharpness <= 1.0 && !self.pick_sharpness {
            return Err(CostError::InvalidParameter {
                name: "floor".to_string(),
                reason: "a floor needs sharpness > 1 (at 1 it adds to the constant)".to_string(),
            });
        }
        Ok(CheckedDvfsLawParams(self))
    }
}

/// [`DvfsLawParams`] that passed [`DvfsLawParams::check`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckedDvfsLawParams(DvfsLawParams);

impl CheckedDvfsLawParams {
    /// The parameters.
    pub fn params(&self) -> &DvfsLawParams {
        &self.0
    }
}

fn one() -> f64 {
    1.0
}

/// The DVFS latency law of one network: `t = c₀ + (floorᵖ + Σⱼ (cⱼ / fⱼ)ᵖ)^(1/p)` over any
/// number of clocks `fⱼ`. See the [module docs](self).
///
/// This is what `dynas cost dvfs-fit` fits per group: it needs no layer description, only
/// (clocks, latency) pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DvfsScalingLaw {
    /// `c₀`: time that no clock changes (same unit as the latency).
    pub constant: f64,
    /// `cⱼ`, one per clock (latency unit × clock unit).
    pub per_clock: Vec<f64>,
    /// Clock-independent saturating time (e.g. memory-bound time at a memory clock that was
    /// not swept); 0 for the additive law.
    #[serde(default)]
    pub floor: f64,
    /// The soft-maximum exponent `p` (1: additive).
    #[serde(default = "one")]
    pub sharpness: f64,
}

/// Ratio grid between terms, log10 from -3 to 3.
const RATIO_GRID_STEPS: usize = 240;

impl DvfsScalingLaw {
    /// Fits the law with [`DvfsLawParams::default`] (soft roofline, `p` picked from
    /// [`SHARPNESS_CHOICES`], with a floor);
    /// `clocks[i]` are the clocks (any positive unit, the same for every row) of measurement
    /// `i`, `latency[i]` its latency.
    pub fn fit(clocks: &[Vec<f64>], latency: &[f64]) -> Result<Self> {
        Self::fit_with(clocks, latency, &DvfsLawParams::default().check()?)
    }

    /// Fits the law of the given shape. Needs at least `clocks + 1 (+ 1 with a floor)`
    /// points.
    pub fn fit_with(
        clocks: &[Vec<f64>],
        latency: &[f64],
        params: &CheckedDvfsLawParams,
    ) -> Result<Self> {
        let params = params.params();
        // Same point requirements whichever `p` wins.
        Self::validate(clocks, latency, params)?;
        if !params.pick_sharpness {
            return Self::fit_fixed(clocks, latency, params);
        }
        let mut best: Option<(f64, Self)> = None;
        for p in SHARPNESS_CHOICES {
            let fixed = DvfsLawParams {
                sharpness: p,
                pick_sharpness: false,
                floor: params.floor && p > 1.0,
                ..*params
            };
            let law = Self::fit_fixed(clocks, latency, &fixed)?;
            let error: f64 = clocks
                .iter()
                .zip(latency)
                .map(|(c, &t)| {
                    let r = law.predict(c) - t;
                    if params.relative_error { r / t } else { r }.powi(2)
                })
                .sum();
            if best.as_ref().is_none_or(|(b, _)| error < *b) {
                best = Some((error, law));
            }
        }
        best.map(|(_, law)| law).ok_or_else(|| CostError::Fit {
            model: "dvfs-scaling-law".to_string(),
            reason: "no sharpness fits the points".to_string(),
        })
    }

    /// Checks the points for a fit with `params`; returns the number of clocks.
    fn validate(clocks: &[Vec<f64>], latency: &[f64], params: &DvfsLawParams) -> Result<usize> {
        let err = |reason: String| CostError::Fit {
            model: "dvfs-scaling-law".to_string(),
            reason,
        };
        let k = clocks.first().map_or(0, Vec::len);
        if k == 0 || k > 8 {
            return Err(err(format!("need 1 to 8 clock columns, got {k}")));
        }
        if clocks.len() != latency.len() {
            return Err(err(format!(
                "{} clock rows but {} latencies",
                clocks.len(),
                latency.len()
            )));
        }
        let unknowns = k + 1 + usize::from(params.floor);
        if clocks.len() < unknowns {
            return Err(err(format!(
                "need at least {unknowns} points for {k} clock(s){}, got {}",
                if params.floor { " and a floor" } else { "" },
                clocks.len()
            )));
        }
        for (i, (c, &t)) in clocks.iter().zip(latency).enumerate() {
            if c.len() != k || c.iter().any(|&f| !(f.is_finite() && f > 0.0)) {
                return Err(err(format!("row {i}: clocks must be {k} positive numbers")));
            }
            if !(t.is_finite() && (t > 0.0 || !params.relative_error)) {
                return Err(err(format!(
                    "row {i}: latency must be finite{}, got {t}",
                    if params.relative_error {
                        " and positive"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(k)
    }

    fn fit_fixed(clocks: &[Vec<f64>], latency: &[f64], params: &DvfsLawParams) -> Result<Self> {
        let k = Self::validate(clocks, latency, params)?;
        let err = |reason: String| CostError::Fit {
            model: "dvfs-scaling-law".to_string(),
            reason,
        };
        let weight = |t: f64| if params.relative_error { 1.0 / t } else { 1.0 };
        if params.sharpness <= 1.0 {
            let (rows, y): (Vec<Vec<f64>>, Vec<f64>) = clocks
                .iter()
                .zip(latency)
                .map(|(c, &t)| {
                    let w = weight(t);
                    let mut row = vec![w];
                    row.extend(c.iter().map(|f| w / f));
                    (row, t * w)
                })
                .unzip();
            let w = linalg::nnls_small(&rows, &y)
                .ok_or_else(|| err("the points do not determine the law".to_string()))?;
            return Ok(Self {
                constant: w[0],
                per_clock: w[1..].to_vec(),
                floor: 0.0,
                sharpness: 1.0,
            });
        }
        // Terms made dimensionless by each clock column's geometric mean.
        let scales: Vec<f64> = (0..k)
            .map(|j| {
                let mean_log = clocks.iter().map(|c| c[j].ln()).sum::<f64>() / clocks.len() as f64;
                mean_log.exp()
            })
            .collect();
        let terms: Vec<Vec<f64>> = clocks
            .iter()
            .map(|c| {
                let mut u: Vec<f64> = c.iter().zip(&scales).map(|(f, s)| s / f).collect();
                if params.floor {
                    u.push(1.0);
                }
                u
            })
            .collect();
        let p = params.sharpness;
        // Given the ratios of the terms to the first, (c₀, scale) is a 2-column NNLS.
        let solve = |ratios: &[f64]| -> Option<(f64, [f64; 2])> {
            let (rows, y): (Vec<Vec<f64>>, Vec<f64>) = terms
                .iter()
                .zip(latency)
                .map(|(u, &t)| {
                    let g = u
                        .iter()
                        .zip(ratios)
                        .map(|(x, r)| (x * r).powf(p))
                        .sum::<f64>()
                        .powf(1.0 / p);
                    let w = weight(t);
                    (vec![w, g * w], t * w)
                })
                .unzip();
            let w = linalg::nnls_small(&rows, &y)?;
            Some((linalg::sse(&rows, &y, &w), [w[0], w[1]]))
        };
        let grid: Vec<f64> = std::iter::once(0.0)
            .chain(
                (0..=RATIO_GRID_STEPS)
                    .map(|i| 10f64.powf(-3.0 + 6.0 * i as f64 / RATIO_GRID_STEPS as f64)),
            )
            .collect();
        let mut ratios = vec![1.0; terms[0].len()];
        let mut best =
            solve(&ratios).ok_or_else(|| err("the points do not determine the law".to_string()))?;
        // Coordinate descent over the ratios of the other terms.
        for _ in 0..4 {
            let before = best.0;
            for t in 1..ratios.len() {
                for &r in &grid {
                    let mut trial = ratios.clone();
                    trial[t] = r;
                    if let Some(fit) = solve(&trial)
                        && fit.0 < best.0
                    {
                        best = fit;
                        ratios = trial;
                    }
                }
            }
            if ratios.len() < 3 || best.0 >= before * (1.0 - 1e-9) {
                break;
            }
        }
        let (_, [constant, scale]) = best;
        Ok(Self {
            constant,
            per_clock: (0..k).map(|j| scale * ratios[j] * scales[j]).collect(),
            floor: if params.floor { scale * ratios[k] } else { 0.0 },
            sharpness: p,
        })
    }

    /// Predicted latency at `clocks` (same units and order as in the fit).
    pub fn predict(&self, clocks: &[f64]) -> f64 {
        let p = self.sharpness;
        if p <= 1.0 {
            return self.constant
                + self.floor
                + self
                    .per_clock
                    .iter()
                    .zip(clocks)
                    .map(|(c, f)| c / f)
                    .sum::<f64>();
        }
        let soft = self
            .per_clock
            .iter()
            .zip(clocks)
            .map(|(c, f)| (c / f).powf(p))
            .sum::<f64>()
            + self.floor.powf(p);
        self.constant + soft.powf(1.0 / p)
    }

    /// The same law with its floor turned into a term of one more clock whose value at the
    /// fit was `reference` (e.g. a GPU sweep's memory-bound floor, measured at the default
    /// memory clock, scaled by the memory clock elsewhere).
    pub fn with_floor_as_clock(mut self, reference: f64) -> Self {
        self.per_clock.push(self.floor * reference);
        self.floor = 0.0;
        self
    }
}

/// Rail power against a clock: `P(x) = static + dynamic · x · v(x)²`,
/// `v(x) = 1 + voltage_slope · max(0, x - knee)`, `x = f / reference_hz`. See the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DvfsPowerLaw {
    /// The clock where `x = 1` (Hz).
    pub reference_hz: f64,
    /// Power that does not scale with the clock, W.
    pub static_w: f64,
    /// Dynamic power at `x = 1` with `v = 1`, W.
    pub dynamic_w: f64,
    /// Relative clock below which the voltage stays at its floor.
    pub knee: f64,
    /// Relative voltage rise per unit of relative clock above the knee (may be negative for
    /// rails whose activity saturates).
    pub voltage_slope: f64,
}

impl DvfsPowerLaw {
    /// Fits the law to `(clock Hz, power W)` pairs (at least 3, positive), minimising relative
    /// squared error; the knee and slope are searched on a grid (knee 0 to 0.975 by 0.025,
    /// slope -0.5 to 6 by 0.05), static and dynamic power by non-negative least squares.
    pub fn fit(clock_hz: &[f64], power_w: &[f64], reference_hz: f64) -> Result<Self> {
        let err = |reason: String| CostError::Fit {
            model: "dvfs-power-law".to_string(),
            reason,
        };
        if clock_hz.len() != power_w.len() || clock_hz.len() < 3 {
            return Err(err(format!(
                "need at least 3 (clock, power) pairs of equal length, got {} clocks and {} powers",
                clock_hz.len(),
                power_w.len()
            )));
        }
        if !(reference_hz.is_finite() && reference_hz > 0.0) {
            return Err(err(format!(
                "reference clock must be positive, got {reference_hz}"
            )));
        }
        if clock_hz
            .iter()
            .chain(power_w)
            .any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(err(
                "clocks and powers must be positive and finite".to_string()
            ));
        }
        let mut best: Option<(f64, Self)> = None;
        for knee_step in 0..40 {
            let knee = knee_step as f64 * 0.025;
            for slope_step in 0..=130 {
                let slope = -0.5 + slope_step as f64 * 0.05;
                let mut law = Self {
                    reference_hz,
                    static_w: 0.0,
                    dynamic_w: 1.0,
                    knee,
                    voltage_slope: slope,
                };
                let (rows, y): (Vec<Vec<f64>>, Vec<f64>) = clock_hz
                    .iter()
                    .zip(power_w)
                    .map(|(&f, &p)| (vec![1.0 / p, law.shape(f / reference_hz) / p], 1.0))
                    .unzip();
                let Some(w) = linalg::nnls_small(&rows, &y) else {
                    continue;
                };
                let e = linalg::sse(&rows, &y, &w);
                law.static_w = w[0];
                law.dynamic_w = w[1];
                if best.as_ref().is_none_or(|(b, _)| e < *b) {
                    best = Some((e, law));
                }
            }
        }
        best.map(|(_, law)| law)
            .ok_or_else(|| err("no knee and slope fit the points".to_string()))
    }

    /// `x · v(x)²`, with `v` kept positive.
    fn shape(&self, x: f64) -> f64 {
        let v = (1.0 + self.voltage_slope * (x - self.knee).max(0.0)).max(0.05);
        x * v * v
    }

    /// Power (W) at relative clock `x = f / reference_hz`.
    pub fn power_at_relative(&self, x: f64) -> f64 {
        self.static_w + self.dynamic_w * self.shape(x)
    }

    /// Power (W) at clock `hz`.
    pub fn power_w(&self, hz: f64) -> f64 {
        self.power_at_relative(hz / self.reference_hz)
    }
}

/// One network's measured latency at several clocks of one unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockSweep {
    /// The network.
    pub network: String,
    /// Clocks, Hz, in file order.
    pub clock_hz: Vec<f64>,
    /// Latency at each clock, ms.
    pub latency_ms: Vec<f64>,
}

fn csv_columns(
    path: &Path,
    reader: &mut csv::Reader<std::io::Cursor<String>>,
    names: &[&str],
) -> Result<Vec<usize>> {
    let headers = reader
        .headers()
        .map_err(|e| CostError::parse(path, format!("header: {e}")))?
        .clone();
    if let Some((name, first, second)) = crate::table::duplicate_column(headers.iter()) {
        return Err(CostError::parse(
            path,
            format!("column `{name}` appears twice in the header (columns {first} and {second})"),
        ));
    }
    names
        .iter()
        .map(|n| {
            headers
                .iter()
                .position(|h| h.trim() == *n)
                .ok_or_else(|| CostError::parse(path, format!("no column `{n}`")))
        })
        .collect()
}

fn open_csv(path: &Path) -> Result<csv::Reader<std::io::Cursor<String>>> {
    let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
    Ok(csv::Reader::from_reader(std::io::Cursor::new(text)))
}

fn number(path: &Path, line: usize, column: &str, value: &str) -> Result<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| {
            CostError::parse(
                path,
                format!("line {line}, column `{column}`: `{value}` is not a positive number"),
            )
        })
}

/// Reads a GPU clock sweep in the format of `jetson_tx2_gpu_sweep.csv` (columns `model`,
/// `gpu_freq_hz`, `latency_ms`); rows with an empty latency are skipped (one upstream row
/// has none). Networks in name order.
pub fn read_gpu_sweep(path: impl AsRef<Path>) -> Result<Vec<ClockSweep>> {
    let path = path.as_ref();
    let mut reader = open_csv(path)?;
    let cols = csv_columns(path, &mut reader, &["model", "gpu_freq_hz", "latency_ms"])?;
    let mut sweeps: BTreeMap<String, ClockSweep> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| CostError::parse(path, format!("line {line}: {e}")))?;
        let field = |c: usize| record.get(c).unwrap_or("").trim();
        if field(cols[2]).is_empty() {
            continue;
        }
        let hz = number(path, line, "gpu_freq_hz", field(cols[1]))?;
        let ms = number(path, line, "latency_ms", field(cols[2]))?;
        let name = field(cols[0]).to_string();
        let sweep = sweeps.entry(name.clone()).or_insert_with(|| ClockSweep {
            network: name,
            clock_hz: Vec::new(),
            latency_ms: Vec::new(),
        });
        sweep.clock_hz.push(hz);
        sweep.latency_ms.push(ms);
    }
    if sweeps.is_empty() {
        return Err(CostError::parse(path, "no rows with a latency"));
    }
    Ok(sweeps.into_values().collect())
}

/// Rail powers measured at each GPU clock, in the format of
/// `jetson_tx2_vgg19_gpu_dvfs_power.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerSweep {
    /// GPU clocks, Hz, ascending.
    pub gpu_hz: Vec<f64>,
    /// Mean power of each rail (e.g. `VDD_IN`, `VDD_SYS_GPU`) at each clock, W.
    pub rails_w: BTreeMap<String, Vec<f64>>,
}

/// Rails of [`PowerSweep`]: board input, GPU, CPU, memory, SoC.
pub const POWER_RAILS: [&str; 5] = [
    "VDD_IN",
    "VDD_SYS_GPU",
    "VDD_SYS_CPU",
    "VDD_SYS_DDR",
    "VDD_SYS_SOC",
];

/// Reads a rail-power sweep (columns `gpu_freq_hz` and `<rail>_mW_mean_busy` for each of
/// [`POWER_RAILS`]), converting mW to W; rows sorted by clock.
pub fn read_power_sweep(path: impl AsRef<Path>) -> Result<PowerSweep> {
    let path = path.as_ref();
    let mut reader = open_csv(path)?;
    let rail_columns: Vec<String> = POWER_RAILS
        .iter()
        .map(|r| format!("{r}_mW_mean_busy"))
        .collect();
    let mut names = vec!["gpu_freq_hz"];
    names.extend(rail_columns.iter().map(String::as_str));
    let cols = csv_columns(path, &mut reader, &names)?;
    let mut rows: Vec<(f64, Vec<f64>)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| CostError::parse(path, format!("line {line}: {e}")))?;
        let values = names
            .iter()
            .zip(&cols)
            .map(|(name, &c)| number(path, line, name, record.get(c).unwrap_or("")))
            .collect::<Result<Vec<f64>>>()?;
        rows.push((values[0], values[1..].iter().map(|mw| mw * 1e-3).collect()));
    }
    if rows.len() < 3 {
        return Err(CostError::parse(
            path,
            format!("need at least 3 clock rows, got {}", rows.len()),
        ));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rails_w = POWER_RAILS
        .iter()
        .enumerate()
        .map(|(j, r)| (r.to_string(), rows.iter().map(|(_, v)| v[j]).collect()))
        .collect();
    Ok(PowerSweep {
        gpu_hz: rows.iter().map(|(f, _)| *f).collect(),
        rails_w,
    })
}

impl PowerSweep {
    /// The power of `rail` at each clock, W.
    pub fn rail(&self, rail: &str) -> Result<&[f64]> {
        self.rails_w
            .get(rail)
            .map(Vec::as_slice)
            .ok_or_else(|| CostError::InvalidParameter {
                name: "rail".to_string(),
                reason: format!("`{rail}` is not one of {POWER_RAILS:?}"),
            })
    }
}

#[cfg(test)]
mod tests;
