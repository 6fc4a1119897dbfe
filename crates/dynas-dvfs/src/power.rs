//! Power and energy sensing: the [`PowerSensor`] trait, Jetson INA3221 rails (hwmon or the
//! older iio driver), Linux powercap RAPL (`energy_uj` with wrap-around) and a simulated
//! sensor.

use std::fs;
use std::path::{Path, PathBuf};

use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{DvfsError, Result};

/// One rail (or RAPL zone) read once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RailReading {
    /// Rail or zone name (e.g. `VDD_GPU_SOC`, `package-0`).
    pub rail: String,
    /// Instantaneous power, mW, where the sensor measures power.
    pub power_mw: Option<f64>,
    /// Energy since the sensor was opened, mJ, where the sensor counts energy.
    pub energy_mj: Option<f64>,
}

/// Reads power and/or energy, rail by rail.
pub trait PowerSensor {
    /// Short name for reports.
    fn name(&self) -> &str;

    /// The rail names, in reading order.
    fn rails(&self) -> Vec<String>;

    /// Reads every rail once.
    fn read(&mut self) -> Result<Vec<RailReading>>;
}

fn read_trimmed(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| DvfsError::io(path, "read", e))
}

fn read_number(path: &Path) -> Result<f64> {
    let text = read_trimmed(path)?;
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            DvfsError::parse(path, Some(1), format!("expected a number, found `{text}`"))
        })
}

fn read_u64(path: &Path) -> Result<u64> {
    let text = read_trimmed(path)?;
    text.parse::<u64>().map_err(|e| {
        DvfsError::parse(
            path,
            Some(1),
            format!("expected an unsigned integer, found `{text}` ({e})"),
        )
    })
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[derive(Clone, Debug)]
enum Channel {
    /// hwmon: `in{N}_input` (mV) x `curr{N}_input` (mA).
    Hwmon { voltage: PathBuf, current: PathBuf },
    /// iio (older L4T): `in_power{N}_input` (mW).
    Iio { power: PathBuf },
}

/// The INA3221 power monitors of Jetson boards.
///
/// Two driver layouts are read: the mainline `hwmon` one (`in{N}_label`, `in{N}_input` in mV,
/// `curr{N}_input` in mA; power = V x I) and the older L4T `ina3221x` iio one
/// (`rail_name_{N}`, `in_power{N}_input` in mW). The sensor gives power only; integrate it
/// with [`EnergyIntegrator`].
#[derive(Clone, Debug)]
pub struct Ina3221 {
    rails: Vec<(String, Channel)>,
}

impl Ina3221 {
    /// The channels of one hwmon directory (those with a label and both inputs).
    pub fn from_hwmon_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut rails = Vec::new();
        for n in 1..=8 {
            let label = dir.join(format!("in{n}_label"));
            let voltage = dir.join(format!("in{n}_input"));
            let current = dir.join(format!("curr{n}_input"));
            if label.exists() && voltage.exists() && current.exists() {
                rails.push((read_trimmed(&label)?, Channel::Hwmon { voltage, current }));
            }
        }
        Self::non_empty(rails, dir)
    }

    /// The channels of one iio directory of the L4T `ina3221x` driver.
    pub fn from_iio_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut rails = Vec::new();
        for n in 0..8 {
            let label = dir.join(format!("rail_name_{n}"));
            let power = dir.join(format!("in_power{n}_input"));
            if label.exists() && power.exists() {
                rails.push((read_trimmed(&label)?, Channel::Iio { power }));
            }
        }
        Self::non_empty(rails, dir)
    }

    fn non_empty(rails: Vec<(String, Channel)>, dir: &Path) -> Result<Self> {
        if rails.is_empty() {
            Err(DvfsError::NotFound {
                what: "INA3221 channels".into(),
                path: dir.to_path_buf(),
            })
        } else {
            Ok(Self { rails })
        }
    }

    /// Every INA3221 channel under `root`: `sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*` and
    /// `sys/bus/i2c/drivers/ina3221x/*/iio:device*`.
    pub fn discover(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let mut rails = Vec::new();
        for dev in sorted_dir(&root.join("sys/bus/i2c/drivers/ina3221")) {
            for hw in sorted_dir(&dev.join("hwmon")) {
                if let Ok(s) = Self::from_hwmon_dir(&hw) {
                    rails.extend(s.rails);
                }
            }
        }
        for dev in sorted_dir(&root.join("sys/bus/i2c/drivers/ina3221x")) {
            for iio in sorted_dir(&dev) {
                let is_iio = iio
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("iio:device"));
                if is_iio && let Ok(s) = Self::from_iio_dir(&iio) {
                    rails.extend(s.rails);
                }
            }
        }
        Self::non_empty(rails, &root.join("sys/bus/i2c/drivers"))
    }
}

impl PowerSensor for Ina3221 {
    fn name(&self) -> &str {
        "ina3221"
    }

    fn rails(&self) -> Vec<String> {
        self.rails.iter().map(|r| r.0.clone()).collect()
    }

    fn read(&mut self) -> Result<Vec<RailReading>> {
        self.rails
            .iter()
            .map(|(rail, ch)| {
                let mw = match ch {
                    Channel::Hwmon { voltage, current } => {
                        let mw = read_number(voltage)? * read_number(current)? / 1000.0;
                        if !mw.is_finite() {
                            return Err(DvfsError::parse(
                                current,
                                Some(1),
                                "voltage x current overflows: not a real power reading",
                            ));
                        }
                        mw
                    }
                    Channel::Iio { power } => read_number(power)?,
                };
                Ok(RailReading {
                    rail: rail.clone(),
                    power_mw: Some(mw),
                    energy_mj: None,
                })
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
struct RaplZone {
    name: String,
    energy: PathBuf,
    max_range_uj: u64,
    last_uj: u64,
    total_uj: u128,
}

/// Linux powercap RAPL zones (`sys/class/powercap/intel-rapl:*`): the cumulative
/// `energy_uj` counter, unwrapped with `max_energy_range_uj` (the counter restarts from 0
/// after reaching it). Read at least once per wrap period (minutes on most packages).
#[derive(Clone, Debug)]
pub struct Rapl {
    zones: Vec<RaplZone>,
}

impl Rapl {
    /// Every zone under `root/sys/class/powercap` whose name starts with `intel-rapl:`.
    pub fn discover(root: impl AsRef<Path>) -> Result<Self> {
        let base = root.as_ref().join("sys/class/powercap");
        let dirs: Vec<PathBuf> = sorted_dir(&base)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("intel-rapl:"))
            })
            .collect();
        if dirs.is_empty() {
            return Err(DvfsError::NotFound {
                what: "RAPL powercap zones".into(),
                path: base,
            });
        }
        Self::from_zone_dirs(&dirs)
    }

    /// The given zone directories (each with `name`, `energy_uj`, `max_energy_range_uj`).
    pub fn from_zone_dirs(dirs: &[PathBuf]) -> Result<Self> {
        let zones = dirs
            .iter()
            .map(|d| {
                let energy = d.join("energy_uj");
                let max_path = d.join("max_energy_range_uj");
                let max_range_uj = read_u64(&max_path)?;
                if max_range_uj == 0 {
                    return Err(DvfsError::parse(
                        &max_path,
                        Some(1),
                        "max_energy_range_uj is 0",
                    ));
                }
                let last_uj = read_u64(&energy)?;
                let name = read_trimmed(&d.join("name"))?;
                Ok(RaplZone {
                    name,
                    energy,
                    max_range_uj,
                    last_uj,
                    total_uj: 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if zones.is_empty() {
            return Err(DvfsError::invalid("dirs", "no RAPL zone given"));
        }
        Ok(Self { zones })
    }
}

/// Energy between two readings of a counter that wraps after `max_range`.
pub fn unwrap_counter(last: u64, now: u64, max_range: u64) -> u64 {
    if now >= last {
        now - last
    } else {
        max_range.saturating_sub(last) + now
    }
}

impl PowerSensor for Rapl {
    fn name(&self) -> &str {
        "rapl"
    }

    fn rails(&self) -> Vec<String> {
        self.zones.iter().map(|z| z.name.clone()).collect()
    }

    fn read(&mut self) -> Result<Vec<RailReading>> {
        let mut out = Vec::with_capacity(self.zones.len());
        for z in &mut self.zones {
            let now = read_u64(&z.energy)?;
            if now > z.max_range_uj {
                return Err(DvfsError::parse(
                    &z.energy,
                    Some(1),
                    format!(
                        "energy_uj {now} exceeds max_energy_range_uj {}",
                        z.max_range_uj
                    ),
                ));
            }
            z.total_uj += u128::from(unwrap_counter(z.last_uj, now, z.max_range_uj));
            z.last_uj = now;
            out.push(RailReading {
                rail: z.name.clone(),
                power_mw: None,
                energy_mj: Some(z.total_uj as f64 / 1000.0),
            });
        }
        Ok(out)
    }
}

/// Integrates power samples over time (trapezoid rule), for sensors that give power only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergyIntegrator {
    last: Option<(f64, f64)>,
    energy_mj: f64,
}

impl EnergyIntegrator {
    /// An integrator with no samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a power sample (mW) taken at `time_s`; times must increase.
    pub fn push(&mut self, time_s: f64, power_mw: f64) -> Result<()> {
        if !time_s.is_finite() || !power_mw.is_finite() {
            return Err(DvfsError::invalid(
                "sample",
                "time and power must be finite",
            ));
        }
        if let Some((t0, p0)) = self.last {
            if time_s <= t0 {
                return Err(DvfsError::invalid(
                    "time_s",
                    format!("{time_s} s does not follow {t0} s"),
                ));
            }
            // mW x s = mJ.
            self.energy_mj += 0.5 * (p0 + power_mw) * (time_s - t0);
        }
        self.last = Some((time_s, power_mw));
        Ok(())
    }

    /// Energy so far, mJ.
    pub fn energy_mj(&self) -> f64 {
        self.energy_mj
    }
}

/// A simulated sensor: rails with a set power, optional seeded Gaussian noise, and energy
/// accumulated by [`SimulatedPowerSensor::advance`].
#[derive(Clone, Debug)]
pub struct SimulatedPowerSensor {
    rails: Vec<(String, f64, f64)>,
    noise: Option<Normal<f64>>,
    rng: dynas_space::DynasRng,
}

impl SimulatedPowerSensor {
    /// Rails at the given powers (mW, finite, >= 0); `noise_cv` (in `[0, 1)`) is the relative
    /// standard deviation of each reading.
    pub fn new(rails: Vec<(String, f64)>, noise_cv: f64, seed: u64) -> Result<Self> {
        if rails.iter().any(|r| !r.1.is_finite() || r.1 < 0.0) {
            return Err(DvfsError::invalid(
                "power_mw",
                "must be finite and non-negative",
            ));
        }
        if !(0.0..1.0).contains(&noise_cv) {
            return Err(DvfsError::invalid("noise_cv", "must lie in [0, 1)"));
        }
        let noise = if noise_cv > 0.0 {
            Some(
                Normal::new(0.0, noise_cv)
                    .map_err(|e| DvfsError::invalid("noise_cv", e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Self {
            rails: rails.into_iter().map(|(n, p)| (n, p, 0.0)).collect(),
            noise,
            rng: dynas_space::seeded_rng(seed),
        })
    }

    /// Sets a rail's power, mW.
    pub fn set_power(&mut self, rail: &str, power_mw: f64) -> Result<()> {
        if !power_mw.is_finite() || power_mw < 0.0 {
            return Err(DvfsError::invalid(
                "power_mw",
                "must be finite and non-negative",
            ));
        }
        let r = self
            .rails
            .iter_mut()
            .find(|r| r.0 == rail)
            .ok_or_else(|| DvfsError::invalid("rail", format!("no rail `{rail}`")))?;
        r.1 = power_mw;
        Ok(())
    }

    /// Lets `dt_s` seconds pass at the current powers.
    pub fn advance(&mut self, dt_s: f64) -> Result<()> {
        if !dt_s.is_finite() || dt_s < 0.0 {
            return Err(DvfsError::invalid(
                "dt_s",
                "must be finite and non-negative",
            ));
        }
        for r in &mut self.rails {
            r.2 += r.1 * dt_s;
        }
        Ok(())
    }
}

impl PowerSensor for SimulatedPowerSensor {
    fn name(&self) -> &str {
        "simulated"
    }

    fn rails(&self) -> Vec<String> {
        self.rails.iter().map(|r| r.0.clone()).collect()
    }

    fn read(&mut self) -> Result<Vec<RailReading>> {
        let mut out = Vec::with_capacity(self.rails.len());
        for (name, mw, mj) in &self.rails {
            let factor = match &self.noise {
                Some(n) => (1.0 + n.sample(&mut self.rng)).max(0.0),
                None => 1.0,
            };
            out.push(RailReading {
                rail: name.clone(),
                power_mw: Some(mw * factor),
                energy_mj: Some(*mj),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    #[test]
    fn ina3221_hwmon_and_iio_layouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        let hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3";
        write(r, &format!("{hw}/in1_label"), "VDD_IN\n");
        write(r, &format!("{hw}/in1_input"), "5080\n");
        write(r, &format!("{hw}/curr1_input"), "1200\n");
        write(r, &format!("{hw}/in2_label"), "VDD_GPU_SOC\n");
        write(r, &format!("{hw}/in2_input"), "5000\n");
        write(r, &format!("{hw}/curr2_input"), "400\n");
        let iio = "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1";
        write(r, &format!("{iio}/rail_name_0"), "VDD_SYS_CPU\n");
        write(r, &format!("{iio}/in_power0_input"), "1534\n");
        let mut s = Ina3221::discover(r).expect("discover");
        assert_eq!(s.rails(), ["VDD_IN", "VDD_GPU_SOC", "VDD_SYS_CPU"]);
        let read = s.read().expect("read");
        assert_relative_eq!(read[0].power_mw.expect("p"), 6096.0);
        assert_relative_eq!(read[1].power_mw.expect("p"), 2000.0);
        assert_relative_eq!(read[2].power_mw.expect("p"), 1534.0);
        write(r, &format!("{hw}/curr2_input"), "n/a\n");
        let e = s.read().expect_err("malformed").to_string();
        assert!(e.contains("curr2_input"), "{e}");
        // Finite readings whose product overflows are refused, not reported as infinite power.
        write(r, &format!("{hw}/curr2_input"), "1e300\n");
        write(r, &format!("{hw}/in2_input"), "1e300\n");
        let e = s.read().expect_err("overflow").to_string();
        assert!(e.contains("curr2_input") && e.contains("overflows"), "{e}");
        assert!(Ina3221::discover(tempfile::tempdir().expect("t").path()).is_err());
    }

    #[test]
    fn rapl_counts_through_wrap_around() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        let z = "sys/class/powercap/intel-rapl:0";
        write(r, &format!("{z}/name"), "package-0\n");
        write(r, &format!("{z}/max_energy_range_uj"), "262143328850\n");
        write(r, &format!("{z}/energy_uj"), "262143000000\n");
        let mut rapl = Rapl::discover(r).expect("discover");
        assert_eq!(rapl.rails(), ["package-0"]);
        write(r, &format!("{z}/energy_uj"), "262143300000\n");
        assert_relative_eq!(rapl.read().expect("read")[0].energy_mj.expect("e"), 300.0);
        // Wraps: 28 850 uJ to the top, then 1 000 000 uJ from 0.
        write(r, &format!("{z}/energy_uj"), "1000000\n");
        assert_relative_eq!(rapl.read().expect("read")[0].energy_mj.expect("e"), 1328.85);
        write(r, &format!("{z}/energy_uj"), "-3\n");
        let e = rapl.read().expect_err("negative").to_string();
        assert!(e.contains("energy_uj"), "{e}");
        assert_eq!(unwrap_counter(10, 30, 100), 20);
        assert_eq!(unwrap_counter(90, 5, 100), 15);
    }

    #[test]
    fn integrator_and_simulated_sensor() {
        let mut i = EnergyIntegrator::new();
        i.push(0.0, 1000.0).expect("push");
        i.push(0.5, 3000.0).expect("push");
        assert_relative_eq!(i.energy_mj(), 1000.0);
        assert!(i.push(0.5, 1.0).is_err());

        let mk = || {
            SimulatedPowerSensor::new(vec![("VDD_GPU".into(), 4000.0)], 0.05, 7).expect("sensor")
        };
        let (mut a, mut b) = (mk(), mk());
        a.advance(2.0).expect("advance");
        let ra = a.read().expect("read");
        assert_relative_eq!(ra[0].energy_mj.expect("e"), 8000.0);
        assert_eq!(ra[0].power_mw, b.read().expect("read")[0].power_mw);
        assert!((ra[0].power_mw.expect("p") - 4000.0).abs() < 4000.0 * 0.3);
        assert!(a.set_power("nope", 1.0).is_err());
        assert!(SimulatedPowerSensor::new(vec![("x".into(), -1.0)], 0.0, 0).is_err());
    }
}
