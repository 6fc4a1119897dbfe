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
//! | [`search`] | `dynas-search` | problems, executor, NSGA-II, surrogate, evolution, progressive shrinking |
//! | [`gos`] | `dynas-gos` | GOS: operator replacement derived from each operator's index form; models, timing and fine-tuning with `tch` |
//! | [`hadas`] | `dynas-hadas` | HADAS: bi-level backbone x exits x DVFS search; the pipeline on a supernet with `tch` |
//! | `supernet` (feature `tch`) | `dynas-supernet` | the libtorch engine: weight-sharing supernet, training, data readers, deployment bundles |
//! | `serve` (feature `tch`) | `dynas-serve` | the runtime executing any deployment on a host; Dynamic-OFA pre-sampling |
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
pub use dynas_gos as gos;
#[doc(inline)]
pub use dynas_hadas as hadas;
#[doc(inline)]
pub use dynas_search as search;
#[cfg(feature = "tch")]
#[doc(inline)]
pub use dynas_serve as serve;
#[doc(inline)]
pub use dynas_space as space;
#[cfg(feature = "tch")]
#[doc(inline)]
pub use dynas_supernet as supernet;

/// The core loop, for `use dynas::prelude::*`: a space and its genotypes, a cost model at an
/// operating point, a problem searched by a strategy under a budget, the front it finds, the
/// deployment it hands off and the runtime that serves it. Everything else has one path, in
/// its module.
pub mod prelude {
    pub use dynas_core::{Deployment, Evaluation, Objective};
    pub use dynas_cost::{Cost, CostModel, DeviceProfile, OperatingPoint};
    pub use dynas_dvfs::{ConfigurationSet, RuntimeManager};
    pub use dynas_search::{
        Budget, Executor, Nsga2, ParetoFront, Problem, SearchError, Strategy, Surrogate,
    };
    pub use dynas_space::{Genotype, Network, SearchSpace, seeded_rng};
}
