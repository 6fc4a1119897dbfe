//! Hardware cost models for **dynas**: latency, energy and memory of a network on a device at
//! a DVFS operating point, behind one object-safe trait, [`CostModel`].
//!
//! | module | model |
//! |---|---|
//! | [`analytical`] | DVFS-aware roofline + power model, least-squares fit |
//! | [`dvfs`] | DVFS latency (soft roofline) and rail-power laws fitted on measured clock sweeps |
//! | [`dvfs_lut`] | a measured per-layer LUT scaled to every CPU / GPU / memory operating point by those laws |
//! | [`lut`] | per-layer lookup tables (Harmonic-NAS, once-for-all / Dynamic-OFA, HW-NAS-Bench FBNet) |
//! | [`table`] | per-architecture tables (NAS-Bench-201 style) as exact models |
//! | [`predictor`] | learned layer-level and architecture-level predictors |
//! | [`measure`] | timing networks on this host, building a LUT for it |
//! | [`wrappers`] | caching, linear calibration, DVFS scaling of single-point models, early-exit expected cost |
//!
//! ```
//! use dynas_cost::{AnalyticalModel, AnalyticalParams, CostModel, DeviceProfile};
//! use dynas_space::{Activation, Layer, Network, TensorShape};
//!
//! let xavier = DeviceProfile::jetson_agx_xavier();
//! let model = AnalyticalModel::new(xavier.clone(), AnalyticalParams::default())?;
//! let input = TensorShape::new(3, 32, 32);
//! let stem = Layer::conv("stem", input, 16, 3, 1, Activation::Relu);
//! let net = Network::new(input, vec![stem]);
//! for point in [xavier.min_operating_point(), xavier.max_operating_point()] {
//!     let cost = model.estimate(&net, &point)?;
//!     assert!(cost.latency_ms > 0.0 && cost.energy_mj.is_some());
//! }
//! # Ok::<(), dynas_cost::CostError>(())
//! ```

pub mod analytical;
pub mod device;
pub mod dvfs;
pub mod dvfs_lut;
pub mod error;
pub mod exit_paths;
pub mod learn;
mod linalg;
/// Non-negative least squares `min ‖X w - y‖², w ≥ 0` for a few unknowns (at most 10),
/// exact by enumerating active sets; `None` when no subset of the columns has a solution.
pub use linalg::nnls_small as nonnegative_least_squares;
pub mod lut;
pub mod measure;
pub mod model;
#[doc(hidden)]
pub mod parallel;
pub mod predictor;
pub mod table;
pub mod wrappers;

pub use analytical::{AnalyticalModel, AnalyticalParams, DvfsScalingLaw, Measurement};
pub use device::{
    ClockDomain, ComputeUnit, DeviceProfile, DeviceProfileBuilder, DomainName, OperatingPoint,
};
pub use dvfs::{CheckedDvfsLawParams, DvfsLawParams, DvfsPowerLaw};
pub use dvfs_lut::{
    BoardDvfsLaws, CostSource, DvfsLutModel, LayerRegression, jetson_agx_xavier_operating_points,
};
pub use error::{CostError, Result};
pub use exit_paths::{ExitPath, exit_path_costs, expected_exit_cost};
/// The gradient-boosting learner, at its historical path.
pub use learn::gbdt;
pub use lut::{FbNetInput, FbNetLut, FbNetLutModel, KeyScheme, LayerLut, LutEntry, LutModel};
pub use measure::{HostModel, MeasureConfig};
pub use model::{Cost, CostBreakdown, CostModel, MacsModel};
pub use predictor::{
    ArchEncoding, ArchPredictor, LayerPredictor, Learner, RegressionMetrics, TargetScale,
};
pub use table::{Nb201Cell, TableModel};
pub use wrappers::{CachedModel, Calibrated, DvfsScaled, ExitAware, ExitPoint};
