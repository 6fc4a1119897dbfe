//! **HADAS** (hardware-aware dynamic NAS), all of it in one place: a bi-level search whose outer
//! level explores the backbones of a weight-sharing supernet and whose inner level, per
//! promising backbone, chooses which early exits to attach and which CPU / GPU / memory clocks
//! to run at; objectives error, latency and energy.
//!
//! | module | what | libtorch |
//! |---|---|---|
//! | [`search`] | the bi-level search: [`Hadas`] (NSGA-II over backbones with the inner search written back), [`DynamicBackbones`] (any outer strategy over backbones scored by their best dynamic configuration), [`ExitsEvaluator`] (exit subsets x clocks, thresholds calibrated), the resulting `Deployment` | no |
//! | `worker` | a trained supernet as the accuracy and exit source: batch norm recalibrated and stored per backbone, exit heads trained per backbone, the deployment bundle the runtime executes | feature `tch` |
//! | `pipeline` | [`run_hadas`]: outer search, deployment and a test-split report against the conventional dynamic network (chosen on validation, reported on test) | feature `tch` |
//!
//! The pure part runs on any [`dynas_search::AccuracySource`] / [`ExitSource`] and any
//! [`dynas_cost::CostModel`] (see `examples/hadas.rs`); the `tch` part is what `dynas hadas`
//! runs on a Fashion-MNIST supernet.

#[cfg(feature = "tch")]
pub mod pipeline;
pub mod search;
#[cfg(feature = "tch")]
pub mod worker;

#[cfg(feature = "tch")]
pub use pipeline::{
    Ablation, CheckedHadasParams, HadasOutcome, HadasParams, HadasReport, OuterStrategy,
    RunOptions, TestedConfiguration, ValidationFigures, run_hadas,
};
pub use search::{
    DynamicBackbones, DynamicEvaluator, DynamicMetrics, DynamicPoint, ExitSource, ExitsEvaluator,
    Hadas, HadasConfig, HadasState, InnerProblem, backbone_seed, best_within_tolerance,
    inner_search,
};
#[cfg(feature = "tch")]
pub use worker::{
    CheckedEvalParams, SupernetAccuracy, SupernetData, SupernetEvalParams, SupernetExits,
    SupernetFactory, SupernetWorker, TestOutcome,
};
