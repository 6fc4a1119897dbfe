//! Early exits for **dynas**: exit policies, temperature scaling, threshold calibration, and the
//! accounting the search needs (exit rates, dynamic accuracy, expected latency and energy under
//! any [`dynas_cost::CostModel`]).
//!
//! * [`ExitPolicy`] / [`ExitRule`]: max-softmax threshold, entropy threshold (BranchyNet),
//!   patience (PABEE), decided per input at run time.
//! * [`TemperatureFit`]: per-exit temperature minimising ECE or NLL.
//! * [`ExitTable`]: per-sample validation outcomes of every candidate exit of a backbone,
//!   measured ([`ExitTable::from_outputs`]) or synthesised from published per-exit accuracies
//!   ([`SyntheticConfidence`], [`HadasExitData`]). [`ExitTable::evaluate`] gives
//!   [`ExitStatistics`] for any [`ExitSelection`]; [`ExitTable::calibrate`] picks thresholds
//!   for a target accuracy drop; [`ExitTable::oracle`] is the earliest-correct-exit bound.
//! * [`ExitHead`] / [`ExitCosts`]: the HADAS head as layers and the cost of leaving at each
//!   exit (backbone prefix + every evaluated head) at an operating point.
//!
//! ```
//! use dynas_exits::{ConfidenceMeasure, ExitPosition, ExitTable, SyntheticConfidence,
//!                   ThresholdCalibration};
//! let positions = vec![ExitPosition::new("e1", 3), ExitPosition::new("e2", 7)];
//! let table = ExitTable::synthesize(positions, &[0.6, 0.8], 0.86, &SyntheticConfidence::default())?;
//! let cal = ThresholdCalibration::new(0.01, ConfidenceMeasure::MaxSoftmax, 32)?;
//! let chosen = table.calibrate(&[0, 1], &cal, None)?;
//! assert!(chosen.statistics.accuracy >= table.final_accuracy() - 0.01 - 1e-12);
//! # Ok::<(), dynas_exits::ExitError>(())
//! ```

pub mod calibration;
pub mod cost;
pub mod error;
pub mod hadas;
#[cfg(feature = "tch")]
pub mod heads;
pub mod policy;
pub mod synthetic;
pub mod table;
#[cfg(test)]
pub(crate) mod testing;
pub mod thresholds;

pub use calibration::{
    CalibrationObjective, FittedTemperature, SoftmaxSummary, TemperatureFit,
    expected_calibration_error,
};
pub use cost::{ExitCosts, ExitHead, ExitPosition, ExpectedCost, PositionCost};
pub use error::{ExitError, Result};
pub use hadas::{HadasExitData, HadasExitRow};
#[cfg(feature = "tch")]
pub use heads::{
    Backbone, DynamicNet, DynamicOutput, ExitHeads, FoldedExitHead, HeadTraining, TchExitHead,
    TrainingReport,
};
pub use policy::{ExitDecision, ExitPolicy, ExitRule, PolicyState};
pub use synthetic::{SyntheticConfidence, normal_quantile};
pub use table::{
    ConfidenceMeasure, ExitOutputs, ExitSelection, ExitStatistics, ExitTable, TableSource,
};
pub use thresholds::{CalibratedExits, ThresholdCalibration};
