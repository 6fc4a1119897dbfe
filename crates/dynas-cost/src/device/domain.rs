//! Compute units and clock domains: which unit runs the layers, and the names of the clocks.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CostError, Result};

/// Which unit runs the network's layers. In files: `"cpu"`, `"gpu"` or the name of one of
/// the device's named clock domains (`"npu"`, `"dla0"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ComputeUnit {
    /// The CPU cluster.
    Cpu,
    /// The GPU (default for Jetson boards).
    #[default]
    Gpu,
    /// An accelerator clocked by a named domain of the device (a DLA, an NPU).
    Accelerator(DomainName),
}

impl ComputeUnit {
    /// The clock domain of this unit.
    pub fn domain(&self) -> ClockDomain {
        match self {
            Self::Cpu => ClockDomain::Cpu,
            Self::Gpu => ClockDomain::Gpu,
            Self::Accelerator(name) => ClockDomain::Named(name.clone()),
        }
    }
}

impl Serialize for ComputeUnit {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.domain().name())
    }
}

impl<'de> Deserialize<'de> for ComputeUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match ClockDomain::parse(&name).map_err(serde::de::Error::custom)? {
            ClockDomain::Cpu => Ok(Self::Cpu),
            ClockDomain::Gpu => Ok(Self::Gpu),
            ClockDomain::Named(n) => Ok(Self::Accelerator(n)),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` clocks memory, not a compute unit"
            ))),
        }
    }
}

/// The name of a clock domain beyond the well-known ones (`dla0`, `npu`, ...): lowercase
/// ASCII letters, digits and `_`, starting with a letter, and not `cpu`, `gpu`, `memory` or
/// `emc` (those are [`ClockDomain`] variants, so a domain has one spelling only).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// A validated name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let bad = |reason: &str| CostError::InvalidParameter {
            name: "clock domain".to_string(),
            reason: format!("`{name}` {reason}"),
        };
        if matches!(name.as_str(), "cpu" | "gpu" | "memory" | "emc") {
            return Err(bad(
                "is a well-known domain: use ClockDomain::Cpu, Gpu or Memory",
            ));
        }
        let mut chars = name.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase())
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(bad(
                "is not a domain name (lowercase letters, digits and `_`, starting with a letter)",
            ));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DomainName {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DomainName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::new(name).map_err(serde::de::Error::custom)
    }
}

/// A clock domain: a set of units sharing one DVFS clock.
///
/// Domains order as CPU, GPU, memory, then named domains by name; that is the order of
/// [`OperatingPoint::clocks`](super::OperatingPoint::clocks) and of the operating-point grid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ClockDomain {
    /// The CPU cluster (cpufreq).
    Cpu,
    /// The GPU (devfreq).
    Gpu,
    /// The memory controller (Jetson EMC).
    Memory,
    /// Any other domain of a board, e.g. `dla0` on a Jetson AGX Xavier or `npu`.
    Named(DomainName),
}

impl ClockDomain {
    /// CPU, GPU and memory: the domains every built-in DVFS-aware cost model prices.
    pub const WELL_KNOWN: [ClockDomain; 3] = [Self::Cpu, Self::Gpu, Self::Memory];

    /// The domain called `name`: `cpu`, `gpu`, `memory` (or `emc`), else a [`DomainName`].
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "cpu" => Self::Cpu,
            "gpu" => Self::Gpu,
            "memory" | "emc" => Self::Memory,
            other => Self::Named(DomainName::new(other)?),
        })
    }

    /// A named domain (see [`DomainName::new`]).
    pub fn named(name: &str) -> Result<Self> {
        Ok(Self::Named(DomainName::new(name)?))
    }

    /// The domain's name (`cpu`, `gpu`, `memory` or the custom name).
    pub fn name(&self) -> &str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Memory => "memory",
            Self::Named(n) => n.as_str(),
        }
    }

    /// The field that holds this domain's clock in files: `<name>_hz`.
    pub fn field(&self) -> String {
        format!("{}_hz", self.name())
    }

    /// Whether this is CPU, GPU or memory.
    pub fn is_well_known(&self) -> bool {
        !matches!(self, Self::Named(_))
    }
}

impl fmt::Display for ClockDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ClockDomain {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ClockDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}
