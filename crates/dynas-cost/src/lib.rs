//! Hardware cost models for **dynas**: latency, energy and memory of a network on a device at
//! a DVFS operating point, behind one object-safe trait, [`CostModel`].
//!
//! | module | model |
//! |---|---|
//! | [`analytical`] | DVFS-aware roofline + power model, least-squares fit |
//! | [`lut`] | per-layer lookup tables (Harmonic-NAS, once-for-all / Dynamic-OFA, HW-NAS-Bench FBNet) |
//! | [`table`] | per-architecture tables (NAS-Bench-201 style) as exact models |
//! | [`predictor`] | learned layer-level and architecture-level predictors |
//! | [`measure`] | timing networks on this host, building a LUT for it |
//! | [`wrappers`] | caching, linear calibration, early-exit expected cost |

pub mod analytical;
pub mod device;
pub mod error;
pub mod gbdt;
mod linalg;
pub mod lut;
pub mod measure;
pub mod model;
pub mod predictor;
pub mod table;
pub mod wrappers;

pub use analytical::{AnalyticalModel, AnalyticalParams, DvfsScalingLaw, Measurement};
pub use device::{ComputeUnit, DeviceProfile, OperatingPoint};
pub use error::{CostError, Result};
pub use lut::{FbNetInput, FbNetLut, FbNetLutModel, KeyScheme, LayerLut, LutEntry, LutModel};
pub use model::{Cost, CostBreakdown, CostModel};
pub use predictor::{
    ArchEncoding, ArchPredictor, LayerPredictor, Learner, RegressionMetrics, TargetScale,
};
pub use table::{Nb201Cell, TableModel};
pub use wrappers::{Cached, Calibrated, ExitAware, ExitPoint};
