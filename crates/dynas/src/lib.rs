//! **dynas**: hardware-aware *dynamic* neural architecture search.
//!
//! This facade re-exports the workspace crates:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`space`] | `dynas-space` | search spaces, genotypes, network descriptions |
//! | [`cost`] | `dynas-cost` | latency / energy / memory cost models |
//! | [`dvfs`] | `dynas-dvfs` | frequency control, power sensing, governors, runtime manager |
//! | [`exits`] | `dynas-exits` | early-exit policies, calibration and accounting |
//! | [`search`] | `dynas-search` | executor, NSGA-II, evolution, HADAS, progressive shrinking |
//! | `supernet` (feature `tch`) | `dynas-supernet` | weight-sharing supernet on libtorch |
//!
//! # Features
//! - `tch`: the supernet and early-exit training on libtorch (needs a libtorch install; see
//!   the README).

pub use dynas_cost as cost;
pub use dynas_dvfs as dvfs;
pub use dynas_exits as exits;
pub use dynas_search as search;
pub use dynas_space as space;
#[cfg(feature = "tch")]
pub use dynas_supernet as supernet;

/// The most used types, for `use dynas::prelude::*`.
pub mod prelude {
    pub use dynas_cost::{Cost, CostBreakdown, CostModel, DeviceProfile, OperatingPoint};
    pub use dynas_space::{
        Crossover, Dimension, Genotype, Layer, Mutation, MutationKind, Network, SearchSpace,
        seeded_rng,
    };
}
