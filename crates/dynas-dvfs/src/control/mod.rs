//! Frequency control: the [`FrequencyControl`] trait, the Linux sysfs backend (cpufreq,
//! devfreq GPU, Jetson EMC) and a simulated backend.

use dynas_cost::{ClockDomain, DeviceProfile, OperatingPoint};

use crate::error::{DvfsError, Result};

/// Sets and reads the clocks of a device.
///
/// Backends refuse frequencies that are not in the device table and put the original
/// settings back on [`FrequencyControl::restore`] (the sysfs backend also on drop).
pub trait FrequencyControl {
    /// The device whose table bounds the allowed clocks.
    fn device(&self) -> &DeviceProfile;

    /// The clocks now in effect (`None` for a domain the backend does not control).
    fn current(&self) -> Result<OperatingPoint>;

    /// Pins the clocks of `point`; `None` leaves a domain untouched. Errors when a clock is
    /// not in the device table, or a domain with a clock is not controllable.
    fn apply(&mut self, point: &OperatingPoint) -> Result<()>;

    /// Puts back the settings found when the backend was created.
    fn restore(&mut self) -> Result<()>;
}

fn check_in_table(domain: &ClockDomain, hz: u64, table: &[u64], device: &str) -> Result<()> {
    if table.binary_search(&hz).is_ok() {
        Ok(())
    } else {
        Err(DvfsError::UnsupportedFrequency {
            domain: domain.to_string(),
            hz,
            source_table: format!("operating-point table of `{device}`"),
            available: format_list(table),
        })
    }
}

pub(super) fn format_list(list: &[u64]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every clock of `point` must be in the device's table of its domain (a domain the device
/// does not have has an empty table, so its clocks are refused).
pub(super) fn check_point(device: &DeviceProfile, point: &OperatingPoint) -> Result<()> {
    for (domain, hz) in point.clocks() {
        check_in_table(domain, hz, device.clocks_of(domain), &device.name)?;
    }
    Ok(())
}

/// A simulated backend: keeps the point in memory, enforces the device table and records
/// every transition.
#[derive(Clone, Debug)]
pub struct SimulatedFrequencyControl {
    device: DeviceProfile,
    original: OperatingPoint,
    current: OperatingPoint,
    transitions: Vec<OperatingPoint>,
}

impl SimulatedFrequencyControl {
    /// Starts at the device's highest clocks.
    pub fn new(device: DeviceProfile) -> Self {
        let p = device.max_operating_point();
        Self {
            device,
            original: p.clone(),
            current: p,
            transitions: Vec::new(),
        }
    }

    /// Every point applied so far (restores included), in order.
    pub fn transitions(&self) -> &[OperatingPoint] {
        &self.transitions
    }
}

impl FrequencyControl for SimulatedFrequencyControl {
    fn device(&self) -> &DeviceProfile {
        &self.device
    }

    fn current(&self) -> Result<OperatingPoint> {
        Ok(self.current.clone())
    }

    fn apply(&mut self, point: &OperatingPoint) -> Result<()> {
        check_point(&self.device, point)?;
        let next = point.or(&self.current);
        if next != self.current {
            self.current = next.clone();
            self.transitions.push(next);
        }
        Ok(())
    }

    fn restore(&mut self) -> Result<()> {
        let original = self.original.clone();
        self.apply(&original)
    }
}

mod sysfs;

pub use sysfs::{DomainInterface, SysfsFrequencyControl, SysfsLayout, discover_policies};

#[cfg(test)]
mod tests;
