//! Devices, their compute units and DVFS operating points.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CostError, Result};

/// Which unit runs the network's layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ComputeUnit {
    /// The CPU cluster.
    Cpu,
    /// The GPU (default for Jetson boards).
    #[default]
    Gpu,
}

/// One DVFS setting: a clock for each controllable unit, in Hz (`None` where the device does
/// not expose that clock).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct OperatingPoint {
    /// CPU clock.
    pub cpu_hz: Option<u64>,
    /// GPU clock.
    pub gpu_hz: Option<u64>,
    /// Memory (EMC) clock.
    pub memory_hz: Option<u64>,
}

impl OperatingPoint {
    /// An operating point with the given clocks.
    pub const fn new(cpu_hz: Option<u64>, gpu_hz: Option<u64>, memory_hz: Option<u64>) -> Self {
        Self {
            cpu_hz,
            gpu_hz,
            memory_hz,
        }
    }

    /// The clock of `unit`.
    pub fn compute_hz(&self, unit: ComputeUnit) -> Option<u64> {
        match unit {
            ComputeUnit::Cpu => self.cpu_hz,
            ComputeUnit::Gpu => self.gpu_hz,
        }
    }
}

impl fmt::Display for OperatingPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mhz =
            |v: Option<u64>| v.map_or("-".to_string(), |hz| format!("{:.1}", hz as f64 / 1e6));
        write!(
            f,
            "cpu {} MHz / gpu {} MHz / mem {} MHz",
            mhz(self.cpu_hz),
            mhz(self.gpu_hz),
            mhz(self.memory_hz)
        )
    }
}

/// A device: its name, the unit that runs inference and the available clocks of each unit.
///
/// An empty clock list means the clock is not controllable; operating points then carry `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// Device name.
    pub name: String,
    /// The unit that runs the network.
    #[serde(default)]
    pub compute_unit: ComputeUnit,
    /// Available CPU clocks (Hz), ascending.
    #[serde(default)]
    pub cpu_hz: Vec<u64>,
    /// Available GPU clocks (Hz), ascending.
    #[serde(default)]
    pub gpu_hz: Vec<u64>,
    /// Available memory clocks (Hz), ascending.
    #[serde(default, alias = "emc_hz")]
    pub memory_hz: Vec<u64>,
}

/// The Jetson operating-point table shipped with dynas (HADAS / jetson_dvfs sources).
const JETSON_TABLE: &str = include_str!("../data/jetson_operating_points.json");

impl DeviceProfile {
    /// A validated profile: clock lists sorted ascending, without zeros or duplicates.
    pub fn new(
        name: impl Into<String>,
        compute_unit: ComputeUnit,
        cpu_hz: Vec<u64>,
        gpu_hz: Vec<u64>,
        memory_hz: Vec<u64>,
    ) -> Result<Self> {
        let profile = Self {
            name: name.into(),
            compute_unit,
            cpu_hz,
            gpu_hz,
            memory_hz,
        };
        profile.validate(Path::new("<in memory>"))?;
        Ok(profile)
    }

    fn validate(&self, origin: &Path) -> Result<()> {
        for (field, clocks) in [
            ("cpu_hz", &self.cpu_hz),
            ("gpu_hz", &self.gpu_hz),
            ("memory_hz", &self.memory_hz),
        ] {
            if clocks.contains(&0) {
                return Err(CostError::parse(
                    origin,
                    format!("device `{}`: field `{field}` contains 0 Hz", self.name),
                ));
            }
            if clocks.windows(2).any(|w| w[0] >= w[1]) {
                return Err(CostError::parse(
                    origin,
                    format!(
                        "device `{}`: field `{field}` must be strictly ascending",
                        self.name
                    ),
                ));
            }
        }
        if self.compute_hz_list().is_empty() {
            return Err(CostError::parse(
                origin,
                format!(
                    "device `{}`: the compute unit {:?} has no clocks",
                    self.name, self.compute_unit
                ),
            ));
        }
        Ok(())
    }

    /// Clocks of the unit that runs the network.
    pub fn compute_hz_list(&self) -> &[u64] {
        match self.compute_unit {
            ComputeUnit::Cpu => &self.cpu_hz,
            ComputeUnit::Gpu => &self.gpu_hz,
        }
    }

    /// NVIDIA Jetson AGX Xavier (29 CPU, 14 GPU, 9 EMC clocks, as searched by HADAS).
    pub fn jetson_agx_xavier() -> Self {
        Self::shipped("jetson_agx_xavier")
    }

    /// NVIDIA Jetson TX2 (13 GPU, 4 EMC clocks; CPU clock not controlled).
    pub fn jetson_tx2() -> Self {
        Self::shipped("jetson_tx2")
    }

    fn shipped(name: &str) -> Self {
        // The shipped table is tested below, so this cannot fail at run time.
        #[allow(clippy::expect_used)]
        Self::from_jetson_table_str(JETSON_TABLE, Path::new("jetson_operating_points.json"))
            .expect("shipped Jetson table is valid")
            .into_iter()
            .find(|d| d.name == name)
            .expect("shipped Jetson table has the preset")
    }

    /// Every device of a table in the format of `jetson_operating_points.json`
    /// (`{device: {cpu_hz: [...], gpu_hz: [...], emc_hz: [...]}}`).
    pub fn from_jetson_table_file(path: impl AsRef<Path>) -> Result<Vec<Self>> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CostError::io(path, e))?;
        Self::from_jetson_table_str(&text, path)
    }

    fn from_jetson_table_str(text: &str, origin: &Path) -> Result<Vec<Self>> {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            cpu_hz: Vec<u64>,
            #[serde(default)]
            gpu_hz: Vec<u64>,
            #[serde(default)]
            emc_hz: Vec<u64>,
        }
        let table: std::collections::BTreeMap<String, Entry> =
            serde_json::from_str(text).map_err(|e| CostError::parse(origin, e.to_string()))?;
        table
            .into_iter()
            .map(|(name, e)| {
                let unit = if e.gpu_hz.is_empty() {
                    ComputeUnit::Cpu
                } else {
                    ComputeUnit::Gpu
                };
                let profile = Self {
                    name,
                    compute_unit: unit,
                    cpu_hz: e.cpu_hz,
                    gpu_hz: e.gpu_hz,
                    memory_hz: e.emc_hz,
                };
                profile.validate(origin)?;
                Ok(profile)
            })
            .collect()
    }

    /// A single device from a JSON or TOML file (chosen by extension), with the fields of
    /// [`DeviceProfile`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CostError::io(path, e))?;
        let profile: Self = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {
                toml::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))?
            }
            _ => serde_json::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))?,
        };
        profile.validate(path)?;
        Ok(profile)
    }

    /// Number of operating points (product of the non-empty clock lists).
    pub fn num_operating_points(&self) -> usize {
        [&self.cpu_hz, &self.gpu_hz, &self.memory_hz]
            .iter()
            .map(|l| l.len().max(1))
            .product()
    }

    /// Every operating point, CPU slowest-varying, memory fastest.
    pub fn operating_points(&self) -> Vec<OperatingPoint> {
        let opt = |l: &[u64]| -> Vec<Option<u64>> {
            if l.is_empty() {
                vec![None]
            } else {
                l.iter().copied().map(Some).collect()
            }
        };
        let (cpus, gpus, mems) = (opt(&self.cpu_hz), opt(&self.gpu_hz), opt(&self.memory_hz));
        let mut points = Vec::with_capacity(cpus.len() * gpus.len() * mems.len());
        for &c in &cpus {
            for &g in &gpus {
                for &m in &mems {
                    points.push(OperatingPoint::new(c, g, m));
                }
            }
        }
        points
    }

    /// All clocks at their maximum.
    pub fn max_operating_point(&self) -> OperatingPoint {
        OperatingPoint::new(
            self.cpu_hz.last().copied(),
            self.gpu_hz.last().copied(),
            self.memory_hz.last().copied(),
        )
    }

    /// All clocks at their minimum.
    pub fn min_operating_point(&self) -> OperatingPoint {
        OperatingPoint::new(
            self.cpu_hz.first().copied(),
            self.gpu_hz.first().copied(),
            self.memory_hz.first().copied(),
        )
    }

    /// Whether every clock of `point` is one of the device's (and absent clocks are absent).
    pub fn supports(&self, point: &OperatingPoint) -> bool {
        let ok = |list: &[u64], v: Option<u64>| match v {
            None => list.is_empty(),
            Some(hz) => list.binary_search(&hz).is_ok(),
        };
        ok(&self.cpu_hz, point.cpu_hz)
            && ok(&self.gpu_hz, point.gpu_hz)
            && ok(&self.memory_hz, point.memory_hz)
    }

    /// `Ok(())` if the device supports `point`, else a typed error.
    pub fn check(&self, point: &OperatingPoint) -> Result<()> {
        if self.supports(point) {
            Ok(())
        } else {
            Err(CostError::UnsupportedOperatingPoint {
                device: self.name.clone(),
                point: point.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_presets_match_the_published_counts() {
        let xavier = DeviceProfile::jetson_agx_xavier();
        assert_eq!(
            (
                xavier.cpu_hz.len(),
                xavier.gpu_hz.len(),
                xavier.memory_hz.len()
            ),
            (29, 14, 9)
        );
        assert_eq!(xavier.num_operating_points(), 29 * 14 * 9);
        assert_eq!(xavier.max_operating_point().gpu_hz, Some(1_377_000_000));
        let tx2 = DeviceProfile::jetson_tx2();
        assert_eq!(
            (tx2.cpu_hz.len(), tx2.gpu_hz.len(), tx2.memory_hz.len()),
            (0, 13, 4)
        );
        assert_eq!(tx2.operating_points().len(), 52);
        assert!(tx2.supports(&tx2.min_operating_point()));
        assert!(!tx2.supports(&OperatingPoint::new(
            Some(1),
            Some(114_750_000),
            Some(1_062_400_000)
        )));
    }

    #[test]
    fn user_device_from_toml_and_bad_field_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("board.toml");
        std::fs::write(
            &good,
            "name = \"board\"\ncompute_unit = \"cpu\"\ncpu_hz = [600000000, 1200000000]\n",
        )
        .expect("write");
        let profile = DeviceProfile::from_file(&good).expect("valid profile");
        assert_eq!(profile.operating_points().len(), 2);

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"name": "b", "gpu_hz": [5, 3]}"#).expect("write");
        let err = DeviceProfile::from_file(&bad)
            .expect_err("descending clocks")
            .to_string();
        assert!(err.contains("gpu_hz") && err.contains("bad.json"), "{err}");
    }
}
