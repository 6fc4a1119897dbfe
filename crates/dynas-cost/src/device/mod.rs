//! Devices, their clock domains and DVFS operating points.
//!
//! A clock is keyed by its [`ClockDomain`]: the well-known CPU, GPU and memory (EMC) clocks,
//! or any further named domain of a board (a Jetson Xavier DLA, an NPU). A
//! [`DeviceProfile`] lists the available clocks of each domain; an [`OperatingPoint`] holds
//! one clock per domain, validated at construction (no 0 Hz, no domain twice).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CostError, Result};

mod domain;
pub use domain::{ClockDomain, ComputeUnit, DomainName};

/// One DVFS setting: a clock in Hz for each domain it sets (a domain without a clock is
/// left alone, or is not controllable on the device).
///
/// Built with [`OperatingPoint::new`] (the common CPU / GPU / memory clocks) or
/// [`OperatingPoint::from_clocks`] (any domains); both refuse a 0 Hz clock and a domain given
/// twice. In files a point is an object of `<domain>_hz` fields:
/// `{"cpu_hz": null, "gpu_hz": 1377000000, "memory_hz": 2133000000, "dla0_hz": 1395200000}`
/// (`null` or a missing field: no clock; `emc_hz` is read as `memory_hz`). The three
/// well-known fields are always written, so files of CPU / GPU / memory boards are unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OperatingPoint {
    clocks: BTreeMap<ClockDomain, u64>,
}

impl OperatingPoint {
    /// A point with the given CPU, GPU and memory clocks (`None`: no clock for that domain).
    /// Errors on a 0 Hz clock.
    pub fn new(cpu_hz: Option<u64>, gpu_hz: Option<u64>, memory_hz: Option<u64>) -> Result<Self> {
        Self::from_clocks(
            [
                (ClockDomain::Cpu, cpu_hz),
                (ClockDomain::Gpu, gpu_hz),
                (ClockDomain::Memory, memory_hz),
            ]
            .into_iter()
            .filter_map(|(d, hz)| hz.map(|hz| (d, hz))),
        )
    }

    /// A point with one clock per listed domain. Errors on a 0 Hz clock or a domain listed
    /// twice, naming the domain.
    pub fn from_clocks(clocks: impl IntoIterator<Item = (ClockDomain, u64)>) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (domain, hz) in clocks {
            if hz == 0 {
                return Err(CostError::InvalidParameter {
                    name: domain.field(),
                    reason: "an operating point's clock must be positive, got 0 Hz".to_string(),
                });
            }
            if map.insert(domain.clone(), hz).is_some() {
                return Err(CostError::InvalidParameter {
                    name: domain.field(),
                    reason: "domain given twice in one operating point".to_string(),
                });
            }
        }
        Ok(Self { clocks: map })
    }

    /// This point with `domain` set to `hz` (replacing its clock). Errors on 0 Hz.
    pub fn with_clock(mut self, domain: ClockDomain, hz: u64) -> Result<Self> {
        if hz == 0 {
            return Err(CostError::InvalidParameter {
                name: domain.field(),
                reason: "an operating point's clock must be positive, got 0 Hz".to_string(),
            });
        }
        self.clocks.insert(domain, hz);
        Ok(self)
    }

    /// The clock of `domain`, if the point sets one.
    pub fn hz(&self, domain: &ClockDomain) -> Option<u64> {
        self.clocks.get(domain).copied()
    }

    /// CPU clock.
    pub fn cpu_hz(&self) -> Option<u64> {
        self.hz(&ClockDomain::Cpu)
    }

    /// GPU clock.
    pub fn gpu_hz(&self) -> Option<u64> {
        self.hz(&ClockDomain::Gpu)
    }

    /// Memory (EMC) clock.
    pub fn memory_hz(&self) -> Option<u64> {
        self.hz(&ClockDomain::Memory)
    }

    /// The clock of `unit`.
    pub fn compute_hz(&self, unit: &ComputeUnit) -> Option<u64> {
        self.hz(&unit.domain())
    }

    /// Every `(domain, Hz)` the point sets, in domain order.
    pub fn clocks(&self) -> impl Iterator<Item = (&ClockDomain, u64)> + '_ {
        self.clocks.iter().map(|(d, &hz)| (d, hz))
    }

    /// Whether the point sets no clock (the board's default governor).
    pub fn is_empty(&self) -> bool {
        self.clocks.is_empty()
    }

    /// The point's clocks from `self`, and `fallback`'s for the domains `self` does not set.
    pub fn or(&self, fallback: &Self) -> Self {
        let mut clocks = fallback.clocks.clone();
        clocks.extend(self.clocks.iter().map(|(d, &hz)| (d.clone(), hz)));
        Self { clocks }
    }

    /// `Ok(())` when every domain the point sets is in `known`; else
    /// [`CostError::UnknownClockDomain`] naming `model` and the first other domain. Cost
    /// models call this so that a clock they cannot price is an error, not silently ignored.
    pub fn check_domains(&self, model: &str, known: &[ClockDomain]) -> Result<()> {
        match self.clocks.keys().find(|d| !known.contains(d)) {
            None => Ok(()),
            Some(d) => Err(CostError::UnknownClockDomain {
                model: model.to_string(),
                domain: d.name().to_string(),
                point: self.to_string(),
            }),
        }
    }

    /// `(cpu, gpu, memory)` then the named domains: the order points compare in (the order of
    /// the former CPU / GPU / memory fields, so sorted outputs are unchanged).
    fn order_key(&self) -> OrderKey<'_> {
        (
            self.cpu_hz(),
            self.gpu_hz(),
            self.memory_hz(),
            self.clocks().filter(|(d, _)| !d.is_well_known()).collect(),
        )
    }
}

/// CPU, GPU and memory clocks, then the named domains' clocks in domain order.
type OrderKey<'a> = (
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Vec<(&'a ClockDomain, u64)>,
);

impl PartialOrd for OperatingPoint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OperatingPoint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

/// The clocks the point sets, in domain order, in MHz: `cpu 1190.4 MHz / mem 1600 MHz`
/// (`mem` is the memory domain); `default clocks` for a point that sets none.
impl fmt::Display for OperatingPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("default clocks");
        }
        for (i, (d, hz)) in self.clocks().enumerate() {
            let label = match d {
                ClockDomain::Memory => "mem",
                d => d.name(),
            };
            let sep = if i == 0 { "" } else { " / " };
            // f64's shortest exact form: 1600, 1395.2, 114.75 (never "1600.0").
            write!(f, "{sep}{label} {} MHz", hz as f64 / 1e6)?;
        }
        Ok(())
    }
}

impl Serialize for OperatingPoint {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let named: Vec<_> = self.clocks().filter(|(d, _)| !d.is_well_known()).collect();
        let mut map = s.serialize_map(Some(3 + named.len()))?;
        map.serialize_entry("cpu_hz", &self.cpu_hz())?;
        map.serialize_entry("gpu_hz", &self.gpu_hz())?;
        map.serialize_entry("memory_hz", &self.memory_hz())?;
        for (d, hz) in named {
            map.serialize_entry(&d.field(), &hz)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OperatingPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let fields = BTreeMap::<String, Option<u64>>::deserialize(d)?;
        let mut clocks = Vec::with_capacity(fields.len());
        for (field, hz) in fields {
            let Some(name) = field.strip_suffix("_hz") else {
                return Err(D::Error::custom(format!(
                    "unknown operating-point field `{field}` (clocks are `<domain>_hz`)"
                )));
            };
            let domain = ClockDomain::parse(name)
                .map_err(|e| D::Error::custom(format!("field `{field}`: {e}")))?;
            if let Some(hz) = hz {
                clocks.push((domain, hz));
            }
        }
        Self::from_clocks(clocks).map_err(D::Error::custom)
    }
}

/// A device: its name, the unit that runs inference and the available clocks of each
/// domain.
///
/// An empty clock list means the clock is not controllable; operating points then carry no
/// clock for it. Domains beyond CPU, GPU and memory go in `other_clocks`, e.g. in TOML:
///
/// ```toml
/// name = "xavier-dla"
/// gpu_hz = [318750000, 1377000000]
/// memory_hz = [204000000, 2133000000]
/// [other_clocks]
/// dla0 = [115200000, 1395200000]
/// ```
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
    /// Available clocks (Hz, ascending) of further named domains (a DLA, an NPU).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_clocks: BTreeMap<DomainName, Vec<u64>>,
}

/// The Jetson operating-point table shipped with dynas (HADAS / jetson_dvfs sources).
const JETSON_TABLE: &str = include_str!("../../data/jetson_operating_points.json");

impl DeviceProfile {
    /// A validated profile: clock lists sorted ascending, without zeros or duplicates, and
    /// clocks for the compute unit. For a unit clocked by a named domain (an NPU, a DLA),
    /// whose clocks `new` cannot take, use [`DeviceProfile::builder`].
    ///
    /// Errors are [`CostError::InvalidParameter`] naming the field (`gpu_hz`,
    /// `other_clocks.npu`, `compute_unit`).
    pub fn new(
        name: impl Into<String>,
        compute_unit: ComputeUnit,
        cpu_hz: Vec<u64>,
        gpu_hz: Vec<u64>,
        memory_hz: Vec<u64>,
    ) -> Result<Self> {
        Self::builder(name, compute_unit)
            .cpu_hz(cpu_hz)
            .gpu_hz(gpu_hz)
            .memory_hz(memory_hz)
            .build()
    }

    /// A builder of a profile, for devices whose compute unit is clocked by a named domain:
    ///
    /// ```
    /// use dynas_cost::device::{ComputeUnit, DeviceProfile, DomainName};
    ///
    /// let npu = DomainName::new("npu")?;
    /// let board = DeviceProfile::builder("npu-board", ComputeUnit::Accelerator(npu.clone()))
    ///     .cpu_hz(vec![600_000_000, 1_200_000_000])
    ///     .memory_hz(vec![1_600_000_000])
    ///     .domain(npu, vec![300_000_000, 800_000_000])
    ///     .build()?;
    /// assert_eq!(board.compute_hz_list(), [300_000_000, 800_000_000]);
    /// # Ok::<(), dynas_cost::CostError>(())
    /// ```
    ///
    /// Nothing is checked until [`DeviceProfileBuilder::build`], which checks it all.
    pub fn builder(name: impl Into<String>, compute_unit: ComputeUnit) -> DeviceProfileBuilder {
        DeviceProfileBuilder {
            profile: Self {
                name: name.into(),
                compute_unit,
                cpu_hz: Vec::new(),
                gpu_hz: Vec::new(),
                memory_hz: Vec::new(),
                other_clocks: BTreeMap::new(),
            },
            duplicate: None,
        }
    }

    /// This profile with a further clock domain `domain` (a DLA, an NPU) and its available
    /// clocks, validated like the others.
    pub fn with_domain(mut self, domain: DomainName, clocks_hz: Vec<u64>) -> Result<Self> {
        if self
            .other_clocks
            .insert(domain.clone(), clocks_hz)
            .is_some()
        {
            return Err(CostError::InvalidParameter {
                name: format!("other_clocks.{domain}"),
                reason: format!("device `{}` already has this domain", self.name),
            });
        }
        self.validate()?;
        Ok(self)
    }

    /// This profile with `compute_unit` running the network (validated: the unit needs
    /// clocks on this device).
    pub fn with_compute_unit(mut self, compute_unit: ComputeUnit) -> Result<Self> {
        self.compute_unit = compute_unit;
        self.validate()?;
        Ok(self)
    }

    /// `Ok(())` when the profile is valid: every clock list strictly ascending without 0 Hz,
    /// and clocks for the compute unit. For profiles built as a struct literal; the
    /// constructors and file readers check this themselves. Errors are
    /// [`CostError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<()> {
        match self.problem() {
            None => Ok(()),
            Some((field, reason)) => Err(CostError::InvalidParameter {
                name: field,
                reason: format!("device `{}`: {reason}", self.name),
            }),
        }
    }

    /// [`DeviceProfile::validate`] for a profile read from `origin`: a [`CostError::Parse`]
    /// naming the file and the field.
    fn validate_file(&self, origin: &Path) -> Result<()> {
        match self.problem() {
            None => Ok(()),
            Some((field, reason)) => Err(CostError::parse(
                origin,
                format!("device `{}`: field `{field}` {reason}", self.name),
            )),
        }
    }

    /// The first thing wrong with the profile: the field and what is wrong with it.
    fn problem(&self) -> Option<(String, String)> {
        for (domain, clocks) in self.domains() {
            let field = match &domain {
                ClockDomain::Named(n) => format!("other_clocks.{n}"),
                d => d.field(),
            };
            if clocks.contains(&0) {
                return Some((field, "contains 0 Hz".to_string()));
            }
            if clocks.windows(2).any(|w| w[0] >= w[1]) {
                return Some((field, "must be strictly ascending".to_string()));
            }
        }
        if self.compute_hz_list().is_empty() {
            let domain = self.compute_unit.domain();
            let hint = match &domain {
                ClockDomain::Named(n) => format!(
                    " (give them with `DeviceProfile::builder(..).domain({n}, clocks)` or \
                     `other_clocks.{n}`)"
                ),
                d => format!(" (`{}` is empty)", d.field()),
            };
            return Some((
                "compute_unit".to_string(),
                format!("the compute unit {domain} has no clocks{hint}"),
            ));
        }
        None
    }

    /// Every clock domain of the device with its available clocks: CPU, GPU and memory
    /// (empty when not controllable), then the named domains.
    pub fn domains(&self) -> Vec<(ClockDomain, &[u64])> {
        let mut out: Vec<(ClockDomain, &[u64])> = vec![
            (ClockDomain::Cpu, &self.cpu_hz),
            (ClockDomain::Gpu, &self.gpu_hz),
            (ClockDomain::Memory, &self.memory_hz),
        ];
        out.extend(
            self.other_clocks
                .iter()
                .map(|(n, l)| (ClockDomain::Named(n.clone()), l.as_slice())),
        );
        out
    }

    /// The domains with at least one clock, i.e. the ones an operating point sets.
    pub fn controllable_domains(&self) -> Vec<(ClockDomain, &[u64])> {
        self.domains()
            .into_iter()
            .filter(|(_, l)| !l.is_empty())
            .collect()
    }

    /// Available clocks of `domain` (empty when the device does not control it).
    pub fn clocks_of(&self, domain: &ClockDomain) -> &[u64] {
        match domain {
            ClockDomain::Cpu => &self.cpu_hz,
            ClockDomain::Gpu => &self.gpu_hz,
            ClockDomain::Memory => &self.memory_hz,
            ClockDomain::Named(n) => self.other_clocks.get(n).map_or(&[], Vec::as_slice),
        }
    }

    /// Clocks of the unit that runs the network.
    pub fn compute_hz_list(&self) -> &[u64] {
        self.clocks_of(&self.compute_unit.domain())
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
        let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
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
        let table: BTreeMap<String, Entry> =
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
                    other_clocks: BTreeMap::new(),
                };
                profile.validate_file(origin)?;
                Ok(profile)
            })
            .collect()
    }

    /// A single device from a JSON or TOML file (chosen by extension), with the fields of
    /// [`DeviceProfile`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
        let profile: Self = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {
                toml::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))?
            }
            _ => serde_json::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))?,
        };
        profile.validate_file(path)?;
        Ok(profile)
    }

    /// Number of operating points (product of the non-empty clock lists; saturates at
    /// `usize::MAX` for a board with many long lists rather than overflowing).
    pub fn num_operating_points(&self) -> usize {
        self.domains()
            .iter()
            .fold(1usize, |n, (_, l)| n.saturating_mul(l.len().max(1)))
    }

    /// Every operating point, domains in [`DeviceProfile::domains`] order: CPU
    /// slowest-varying, then GPU, memory and the named domains, the last fastest.
    pub fn operating_points(&self) -> Vec<OperatingPoint> {
        let domains = self.controllable_domains();
        let mut points = vec![BTreeMap::new()];
        for (domain, list) in &domains {
            let mut next = Vec::with_capacity(points.len() * list.len());
            for clocks in &points {
                for &hz in *list {
                    let mut c: BTreeMap<ClockDomain, u64> = clocks.clone();
                    c.insert(domain.clone(), hz);
                    next.push(c);
                }
            }
            points = next;
        }
        // Validated lists: every clock is positive and each domain appears once.
        points
            .into_iter()
            .map(|clocks| OperatingPoint { clocks })
            .collect()
    }

    fn extreme_point(&self, pick: fn(&[u64]) -> Option<&u64>) -> OperatingPoint {
        OperatingPoint {
            clocks: self
                .controllable_domains()
                .into_iter()
                .filter_map(|(d, l)| pick(l).map(|&hz| (d, hz)))
                .collect(),
        }
    }

    /// All clocks at their maximum.
    pub fn max_operating_point(&self) -> OperatingPoint {
        self.extreme_point(<[u64]>::last)
    }

    /// All clocks at their minimum.
    pub fn min_operating_point(&self) -> OperatingPoint {
        self.extreme_point(<[u64]>::first)
    }

    /// Whether every clock of `point` is one of the device's, every controllable domain has
    /// a clock and the point sets no domain the device does not have.
    pub fn supports(&self, point: &OperatingPoint) -> bool {
        let domains = self.domains();
        let ok = |list: &[u64], v: Option<u64>| match v {
            None => list.is_empty(),
            Some(hz) => list.binary_search(&hz).is_ok(),
        };
        domains.iter().all(|(d, l)| ok(l, point.hz(d)))
            && point
                .clocks()
                .all(|(d, _)| domains.iter().any(|(known, _)| known == d))
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

/// A [`DeviceProfile`] under construction, from [`DeviceProfile::builder`]: set the clocks of
/// each domain, then [`DeviceProfileBuilder::build`] checks the whole profile at once (so the
/// compute unit's clocks may come from any setter, [`DeviceProfileBuilder::domain`] included).
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct DeviceProfileBuilder {
    profile: DeviceProfile,
    /// A named domain given twice, reported by `build`.
    duplicate: Option<DomainName>,
}

impl DeviceProfileBuilder {
    /// Available CPU clocks (Hz), ascending.
    pub fn cpu_hz(mut self, clocks_hz: Vec<u64>) -> Self {
        self.profile.cpu_hz = clocks_hz;
        self
    }

    /// Available GPU clocks (Hz), ascending.
    pub fn gpu_hz(mut self, clocks_hz: Vec<u64>) -> Self {
        self.profile.gpu_hz = clocks_hz;
        self
    }

    /// Available memory (EMC) clocks (Hz), ascending.
    pub fn memory_hz(mut self, clocks_hz: Vec<u64>) -> Self {
        self.profile.memory_hz = clocks_hz;
        self
    }

    /// A further clock domain (a DLA, an NPU) and its available clocks (Hz), ascending.
    /// Giving one domain twice is an error at [`DeviceProfileBuilder::build`].
    pub fn domain(mut self, domain: DomainName, clocks_hz: Vec<u64>) -> Self {
        if self
            .profile
            .other_clocks
            .insert(domain.clone(), clocks_hz)
            .is_some()
        {
            self.duplicate.get_or_insert(domain);
        }
        self
    }

    /// The profile, validated as [`DeviceProfile::validate`] does; errors are
    /// [`CostError::InvalidParameter`] naming the field.
    pub fn build(self) -> Result<DeviceProfile> {
        if let Some(domain) = self.duplicate {
            return Err(CostError::InvalidParameter {
                name: format!("other_clocks.{domain}"),
                reason: format!("device `{}`: the domain is given twice", self.profile.name),
            });
        }
        self.profile.validate()?;
        Ok(self.profile)
    }
}

#[cfg(test)]
mod tests;
