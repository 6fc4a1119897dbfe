//! The table itself and its two file formats (Harmonic-NAS / OFA-MNIST and once-for-all).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CostError, Result};
use crate::model::Cost;

/// One LUT entry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LutEntry {
    /// Latency, ms.
    pub latency_ms: f64,
    /// Energy, mJ, if measured.
    pub energy_mj: Option<f64>,
    /// Standard deviation of the latency over the measured runs, ms, if known.
    pub std_ms: Option<f64>,
    /// Number of measured runs, if known.
    pub count: Option<u64>,
}

impl LutEntry {
    /// An entry with latency (and optionally energy) only.
    pub const fn new(latency_ms: f64, energy_mj: Option<f64>) -> Self {
        Self {
            latency_ms,
            energy_mj,
            std_ms: None,
            count: None,
        }
    }

    pub(crate) fn cost(&self) -> Cost {
        Cost {
            latency_ms: self.latency_ms,
            energy_mj: self.energy_mj,
            peak_memory_bytes: None,
        }
    }
}

/// A table from layer key to [`LutEntry`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerLut {
    /// Name of the table (its file, usually), used in errors.
    pub name: String,
    entries: HashMap<String, LutEntry>,
}

/// A number that the source may write as a JSON number or as a string.
pub(crate) fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

impl LayerLut {
    /// An empty table called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            entries: HashMap::new(),
        }
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, key: impl Into<String>, entry: LutEntry) {
        self.entries.insert(key.into(), entry);
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&LutEntry> {
        self.entries.get(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys in sorted order.
    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Loads a Harmonic-NAS style table (`{key: {"lat": .., "enrg": ..}}`).
    pub fn from_harmonic_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
        Self::from_harmonic_str(&text, path)
    }

    /// Parses a Harmonic-NAS style table; `origin` names the source in errors.
    pub fn from_harmonic_str(text: &str, origin: &Path) -> Result<Self> {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| CostError::parse(origin, e.to_string()))?;
        let mut lut = Self::new(origin.display().to_string());
        for (key, v) in map {
            let lat = v.get("lat").and_then(json_number).ok_or_else(|| {
                CostError::parse(
                    origin,
                    format!("key `{key}`: field `lat` missing or not a number"),
                )
            })?;
            let enrg = match v.get("enrg") {
                None => None,
                Some(e) => Some(json_number(e).ok_or_else(|| {
                    CostError::parse(origin, format!("key `{key}`: field `enrg` is not a number"))
                })?),
            };
            lut.insert(key, LutEntry::new(lat, enrg));
        }
        Ok(lut)
    }

    /// Loads a once-for-all / Dynamic-OFA table (`{key: {"count", "mean", "std"}}`).
    pub fn from_ofa_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
        Self::from_ofa_str(&text, path)
    }

    /// Parses a once-for-all table; `origin` names the source in errors.
    pub fn from_ofa_str(text: &str, origin: &Path) -> Result<Self> {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| CostError::parse(origin, e.to_string()))?;
        let mut lut = Self::new(origin.display().to_string());
        for (key, v) in map {
            let field = |name: &str| -> Result<Option<f64>> {
                match v.get(name) {
                    None => Ok(None),
                    Some(x) => json_number(x).map(Some).ok_or_else(|| {
                        CostError::parse(
                            origin,
                            format!("key `{key}`: field `{name}` is not a number"),
                        )
                    }),
                }
            };
            let mean = field("mean")?.ok_or_else(|| {
                CostError::parse(origin, format!("key `{key}`: field `mean` missing"))
            })?;
            let entry = LutEntry {
                latency_ms: mean,
                energy_mj: None,
                std_ms: field("std")?,
                count: field("count")?.map(|c| c.max(0.0) as u64),
            };
            lut.insert(key, entry);
        }
        Ok(lut)
    }

    /// The table in the Harmonic-NAS JSON format (keys sorted; numbers as numbers).
    pub fn to_harmonic_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for key in self.keys() {
            if let Some(e) = self.entries.get(key) {
                let mut v = serde_json::Map::new();
                v.insert("lat".into(), serde_json::json!(e.latency_ms));
                if let Some(en) = e.energy_mj {
                    v.insert("enrg".into(), serde_json::json!(en));
                }
                map.insert(key.to_string(), serde_json::Value::Object(v));
            }
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default()
    }

    /// Writes [`LayerLut::to_harmonic_json`] to `path`.
    pub fn save_harmonic(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        dynas_space::files::write_output(path, self.to_harmonic_json())
            .map_err(|e| CostError::io(path, e))
    }
}
