#![doc = include_str!("../../../README.md")]
//!
//! ## Crate layout
//!
//! This facade re-exports the workspace crates:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`space`] | `dynas-space` | search spaces, genotypes, network descriptions |
//! | [`core`] | `dynas-core` | the hand-off: objectives, evaluations, Pareto math, the versioned `Deployment` file |
//! | [`cost`] | `dynas-cost` | latency / energy / memory cost models |
//! | [`dvfs`] | `dynas-dvfs` | frequency control, power sensing, governors, runtime manager |
//! | [`exits`] | `dynas-exits` | early-exit policies, calibration and accounting |
//! | [`search`] | `dynas-search` | executor, NSGA-II, evolution, HADAS, progressive shrinking |
//! | `supernet` (feature `tch`) | `dynas-supernet` | weight-sharing supernet on libtorch |
//!
//! # Features
//! - `parallel` (default): batch cost estimates, batch evaluation and surrogate scoring on all
//!   cores with rayon; without it the same calls run on the calling thread.
//! - `progress` (default): `search::ProgressObserver`, a terminal progress bar (indicatif).
//!   Library code never draws one unless asked; the CLI does.
//! - `tch`: the supernet and early-exit training on libtorch (needs a libtorch install; see
//!   the README).

// Inlined, so that `cargo doc -p dynas` documents each crate as a module of this one (a plain
// re-export would link to the crates' own pages, which `--no-deps` never generates).
#[doc(inline)]
pub use dynas_core as core;
#[doc(inline)]
pub use dynas_cost as cost;
#[doc(inline)]
pub use dynas_dvfs as dvfs;
#[doc(inline)]
pub use dynas_exits as exits;
#[doc(inline)]
pub use dynas_search as search;
#[doc(inline)]
pub use dynas_space as space;
#[cfg(feature = "tch")]
#[doc(inline)]
pub use dynas_supernet as supernet;

/// The most used types, for `use dynas::prelude::*`.
pub mod prelude {
    pub use dynas_cost::{
        AnalyticalModel, AnalyticalParams, CachedModel, Cost, CostBreakdown, CostError, CostModel,
        DeviceProfile, LutModel, OperatingPoint, TableModel,
    };
    pub use dynas_dvfs::{
        ConfigurationSet, FrequencyControl, Governor, PowerSensor, RuntimeManager, Simulator,
    };
    pub use dynas_exits::{ExitCosts, ExitPolicy, ExitTable};
    #[cfg(feature = "progress")]
    pub use dynas_search::ProgressObserver;
    pub use dynas_search::{
        AccuracyFn, AccuracySource, AgingConfig, AgingEvolution, Budget, CachedProblem, Constraint,
        Evaluation, Executor, Hadas, HadasConfig, HardwareProblem, JointHardwareProblem,
        JsonLinesObserver, Metric, Nsga2, Nsga2Config, Objective, Observer, ParetoFront, Problem,
        RandomSearch, SearchError, StopReason, Strategy, Surrogate, SurrogateParams, TableAccuracy,
        TableProblem,
    };
    pub use dynas_space::{
        Crossover, Dimension, FbNetSpace, Genotype, Layer, MbConvSpace, Mutation, MutationKind,
        Nb201Space, Network, SearchSpace, seeded_rng,
    };
}
