//! Search strategies for **dynas**: what to optimise ([`Problem`]), how ([`Strategy`]) and the
//! loop that owns budgets, observers and checkpoint/resume ([`Executor`]).
//!
//! | module | what |
//! |---|---|
//! | [`problem`] | [`Problem`], objectives with directions, constraints, [`CachedProblem`], [`HardwareProblem`] (any [`AccuracySource`] x any `CostModel`), [`JointHardwareProblem`] (backbone and operating point together) |
//! | [`table`] | [`TableProblem`] / [`TableAccuracy`] from CSVs in the `nb201_hw.csv` schema |
//! | [`executor`] | [`Executor`], [`Budget`] (distinct evaluations / generations / time), exact checkpoint/resume |
//! | [`observer`] | progress bar, JSON-lines log, stop-on-condition closures |
//! | [`pareto`] | non-dominated sorting, pymoo crowding distance, exact hypervolume, IGD, JSON/CSV/SVG fronts |
//! | [`nsga2`] | NSGA-II with pymoo's ranking, tournament and duplicate elimination |
//! | [`aging`], [`random`], [`ofa`] | regularized evolution, random search, once-for-all constrained evolution |
//! | [`predictor`] | one-hot MLP and random-forest accuracy predictors (ndarray) |
//! | [`shrink`] | GoldenNAS progressive space shrinking around any strategy |
//! | [`surrogate`] | surrogate-assisted search (Gaussian processes, hypervolume-improvement batches): the default for expensive problems |
//!
//! ```no_run
//! use dynas_search::{Budget, Executor, Nsga2, Nsga2Config, Objective, TableProblem};
//!
//! # fn main() -> dynas_search::Result<()> {
//! let problem = TableProblem::from_csv(
//!     "nb201_hw.csv",
//!     vec![Objective::minimize("raspi4_latency"), Objective::maximize("acc_cifar100")],
//! )?;
//! let result = Executor::new(&problem, Nsga2::new(Nsga2Config::default())?, Budget::evaluations(500)?)
//!     .seed(1)
//!     .checkpoint("search.ckpt.json", 1)?
//!     .run()?;
//! result.front.write_json("front.json")?;
//! # Ok(()) }
//! ```

pub mod aging;
/// [`dynas_core::write_atomically_with`] with this crate's error type.
pub fn write_atomically_with(
    path: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> Result<()> {
    Ok(dynas_core::write_atomically_with(path, write)?)
}

/// [`dynas_core::read_text`] (regular files only, bounded, BOM dropped) with this crate's
/// error type.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    Ok(dynas_core::read_text(path)?)
}

/// [`dynas_core::write_atomically`] with this crate's error type: crash-safe writes of
/// checkpoints, fronts and reports.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    Ok(dynas_core::write_atomically(path, bytes)?)
}
/// The deployment file format, from [`dynas_core`] (re-exported where it was).
pub mod deployment {
    pub use dynas_core::deployment::*;
}
pub mod error;
pub mod executor;
mod front_deployment;
pub use dynas_core::within_tolerance;
// Serde helpers for non-finite floats, used by the strategies' states.
pub(crate) use dynas_core::floats;
pub mod nsga2;
pub mod observer;
mod observer_fn;
pub mod ofa;
pub mod pareto;
pub mod predictor;
pub mod problem;
pub mod random;
pub mod shrink;
pub mod surrogate;
pub mod table;

pub use aging::{AgingConfig, AgingEvolution, AgingState};
pub use deployment::{
    DEPLOYMENT_VERSION, DeployedExit, DeployedMetrics, Deployment, DeploymentPoint, Provenance,
};
pub use error::{Result, SearchError};
pub use executor::{
    Archive, Budget, Context, Executor, Record, SearchResult, Step, StopReason, Strategy, Unseen,
};
pub use nsga2::{Duplicates, Member, Nsga2, Nsga2Config, Nsga2State};
#[cfg(feature = "progress")]
pub use observer::ProgressObserver;
pub use observer::{Control, Event, JsonLinesObserver, Observer};
pub use observer_fn::observer_fn;
pub use ofa::{OfaEvolution, OfaEvolutionConfig, OfaState};
pub use pareto::{FrontPoint, GeneChoice, ParetoFront};
pub use predictor::{
    ForestConfig, ForestPredictor, GenotypeLearner, GenotypePredictor, MlpConfig, MlpPredictor,
    OneHot,
};
pub use problem::{
    AccuracyFn, AccuracySource, CachedProblem, Constraint, Direction, Evaluation, HardwareProblem,
    JointHardwareProblem, JointSpace, Metric, Objective, Problem, content_fingerprint,
};
pub use random::{RandomSearch, RandomState};
pub use shrink::{
    ProgressiveShrinking, ShrinkConfig, ShrinkResult, StageReport, SubProblem, Subspace,
};
pub use surrogate::{Surrogate, SurrogateConfig, SurrogateParams, SurrogateState};
pub use table::{GeneColumns, TableAccuracy, TableProblem, TableSpace};
