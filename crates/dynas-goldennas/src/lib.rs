//! GoldenNAS on a weight-sharing supernet (tch / libtorch), one concern per module:
//!
//! | module | what |
//! |---|---|
//! | [`space`] | the width-elastic Fashion-MNIST space and [`ChoiceSet`], the choices still in play |
//! | [`importance`] | channel importance sorting before widths are made elastic |
//! | [`perf_model`] | the hardware performance model fitted on a few measurements of a [`Target`], checked on held-out networks |
//! | [`shrink`] | progressive space shrinking toward a target during supernet training |
//! | [`evolve`](mod@evolve) | NSGA-II over the shrunk space: the GoldenNets |
//! | [`depth`] | depth-adaptive GoldenNets: stored batch norm per depth, self-distillation |
//! | [`pipeline`] | all of it end to end, with a report and a `Deployment` (method `goldennas`) |
//!
//! ```no_run
//! use dynas_goldennas::{GoldenNas, GoldenNasConfig, ShrinkConfig, Target};
//!
//! # fn main() -> dynas_goldennas::Result<()> {
//! let config = GoldenNasConfig {
//!     data_dir: "/usr/share/datasets/fashion-mnist".into(),
//!     out: "runs/goldennas".into(),
//!     targets: vec![
//!         Target::Host { warmup: 5, repeats: 30 },
//!         Target::JetsonXavierLut { data_dir: "crates/dynas-data/data".into() },
//!     ],
//!     shrink: ShrinkConfig { stages: 3, images_per_stage: 20_000, ..ShrinkConfig::default() },
//!     ..GoldenNasConfig::default()
//! };
//! let report = GoldenNas::new(config)?.run(|line| eprintln!("{line}"))?;
//! for t in &report.targets {
//!     println!("{}: {} GoldenNets", t.target.name(), t.goldennets.front.len());
//! }
//! # Ok(()) }
//! ```

pub mod depth;
pub mod error;
pub mod evolve;
pub mod importance;
pub mod perf_model;
pub mod pipeline;
pub mod shrink;
pub mod space;

pub use depth::{DepthAdaptiveNet, DepthConfig};
pub use error::{GoldenNasError, Result};
pub use evolve::{EvolveConfig, EvolveOutcome, GoldenNet, evolve};
pub use importance::{SortedGroup, sort_channels};
pub use perf_model::{FitReport, Measurer, PerfModel, PerfModelConfig, Target};
pub use pipeline::{
    DepthAblation, GoldenNas, GoldenNasConfig, GoldenNasReport, SupernetSummary, TargetReport,
};
pub use shrink::{
    ChoiceScore, ScoredSubnet, ShrinkConfig, ShrinkOutcome, ShrinkStep, StageRecord, shrink_step,
    train_and_shrink,
};
pub use space::{ChoiceSet, fashion_mnist_space};
