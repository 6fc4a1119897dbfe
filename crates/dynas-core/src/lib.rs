//! The hand-off vocabulary of **dynas**: what a search produces and the runtime consumes.
//!
//! It sits below both the search strategies (`dynas-search`) and the runtime (`dynas-dvfs`),
//! so the runtime never depends on the search:
//!
//! | item | what |
//! |---|---|
//! | [`Objective`], [`Direction`], [`Evaluation`] | named objectives with directions, and what evaluating one architecture gave |
//! | [`pareto`] | dominance, non-dominated sorting, crowding distance, hypervolume, IGD |
//! | [`Deployment`] | the one versioned file a producer (HADAS, Dynamic-OFA, GoldenNAS, GOS) writes and the runtime reads, exits included |
//! | [`write_atomically`], [`read_text`] | crash-safe writes and bounded reads that name the file |
//!
//! ```
//! use dynas_core::{DeployedExit, DeployedMetrics, Deployment, DeploymentPoint, Provenance};
//! use dynas_space::{LayerIndex, MbConvSpace, SearchSpace};
//!
//! # fn main() -> dynas_core::Result<()> {
//! let space = MbConvSpace::ofa_mnist();
//! let point = DeploymentPoint {
//!     genotype: space.largest(),
//!     // The head reads the output of layer 3 (0-based) and takes inputs at >= 0.9 confidence.
//!     exits: vec![DeployedExit { after_layer: LayerIndex::new(3), threshold: 0.9, exit_rate: 0.4 }],
//!     point: Default::default(),
//!     metrics: DeployedMetrics {
//!         top1: 91.5,
//!         latency_ms: 2.1,
//!         energy_mj: Some(4.0),
//!         accuracy_source: Provenance::measured("validation split, 5,000 images"),
//!         cost_source: Provenance::modelled("Jetson AGX Xavier LUT x fitted DVFS laws"),
//!     },
//! };
//! // The space is checked: a genotype it does not accept, or an exit after a layer the subnet
//! // does not have, is refused here.
//! let deployment = Deployment::new("hadas", &space, None, vec![point])?;
//! assert_eq!(deployment.points[0].exits[0].after_layer.index(), 3);
//! # Ok(()) }
//! ```

mod atomic;
pub mod deployment;
mod error;
pub mod floats;
mod objective;
pub mod pareto;

pub use atomic::{read_text, write_atomically, write_atomically_with};
pub use deployment::{
    DEPLOYMENT_VERSION, DeployedExit, DeployedMetrics, Deployment, DeploymentPoint, Provenance,
};
pub use error::{CoreError, Result};
pub use floats::within_tolerance;
pub use objective::{Direction, Evaluation, Objective};
