//! Search spaces, genotypes and the tch-free network description of **dynas**.
//!
//! A [`SearchSpace`] lists named [`Dimension`]s; a [`Genotype`] picks one choice in each; decoding
//! a genotype gives a [`Network`], an ordered list of [`Layer`]s with shapes, MACs, parameters and
//! activation bytes that cost models, exits, search and the supernet all consume.
//!
//! Spaces:
//! - [`MbConvSpace`] ([`mbconv`]): elastic MobileNet-style spaces from a stage table, with the
//!   presets [`MbConvSpace::attentive_nas`] (HADAS), [`MbConvSpace::ofa_mobilenet_v3`] and
//!   [`MbConvSpace::ofa_mnist`], and a structured [`MbConvSubnet`] form;
//! - [`Nb201Space`] ([`nb201`]): the NAS-Bench-201 cell with its arch strings;
//! - [`FbNetSpace`] ([`fbnet`]): HW-NAS-Bench's FBNet space, layers named by its LUT keys.
//!
//! [`mod@reference`] builds MobileNetV2 / V3 to check the counters against published figures.
//!
//! ```
//! use dynas_space::{MbConvSpace, Mutation, MutationKind, SearchSpace, seeded_rng};
//! # fn main() -> dynas_space::Result<()> {
//! let space = MbConvSpace::attentive_nas();
//! let mut rng = seeded_rng(7);
//! let parent = space.sample(&mut rng);
//! let child = Mutation::new(MutationKind::ChangeValue, 0.1)?.apply(&space, &parent, &mut rng);
//! let subnet = space.subnet(&child)?;
//! let network = space.network(&subnet);
//! assert_eq!(space.genotype(&subnet)?, space.canonical(&child)?);
//! println!("{} at {}px: {} MACs", space.describe(&child)?, subnet.resolution, network.macs());
//! # Ok(()) }
//! ```

mod builtin;
pub mod error;
pub mod fbnet;
pub mod files;
pub mod genotype;
mod layer_index;
pub mod mbconv;
pub mod nb201;
pub mod network;
pub mod opexpr;
pub mod reference;
pub mod space;

pub use builtin::builtin_space;
pub use error::{Result, SpaceError};
pub use fbnet::FbNetSpace;
pub use genotype::Genotype;
pub use layer_index::LayerIndex;
pub use mbconv::{
    BlockChoice, BlockSlot, ChoiceScope, FinalExpand, FirstBlockSpec, HeadSpec, MbConvGene,
    MbConvSpace, MbConvSpec, MbConvSubnet, StageChoice, StageSpec,
};
pub use nb201::Nb201Space;
pub use network::{Activation, CustomCounts, Layer, Network, OpKind, PoolKind, TensorShape};
pub use opexpr::{Combine, Epilogue, Index, LayerExpr, OpExpr, ReceptiveField};
pub use space::{Crossover, Dimension, GenotypeIter, Mutation, MutationKind, SearchSpace};

/// The random number generator dynas uses by default: small, fast and serialisable, so that
/// searches can checkpoint it and resume exactly.
pub type DynasRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A [`DynasRng`] seeded from a `u64`.
pub fn seeded_rng(seed: u64) -> DynasRng {
    use rand::SeedableRng;
    DynasRng::seed_from_u64(seed)
}
