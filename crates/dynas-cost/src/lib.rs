//! Hardware cost models for **dynas**: latency, energy and memory of a network on a device at
//! a DVFS operating point, behind one object-safe trait, [`CostModel`].

pub mod device;
pub mod error;
pub mod model;

pub use device::{ComputeUnit, DeviceProfile, OperatingPoint};
pub use error::{CostError, Result};
pub use model::{Cost, CostBreakdown, CostModel};
