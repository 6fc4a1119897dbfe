//! Search spaces, genotypes and the tch-free network description of **dynas**.
//!
//! A [`SearchSpace`] lists named [`Dimension`]s; a [`Genotype`] picks one choice in each; decoding
//! a genotype gives a [`Network`], an ordered list of [`Layer`]s with shapes, MACs, parameters and
//! activation bytes that cost models, exits, search and the supernet all consume.
//!
//! ```
//! use dynas_space::{Genotype, SearchSpace, seeded_rng};
//! # fn demo(space: &dyn SearchSpace) -> dynas_space::Result<()> {
//! let mut rng = seeded_rng(7);
//! let genotype = space.sample(&mut rng);
//! let network = space.decode(&genotype)?;
//! println!("{} MACs", network.macs());
//! # Ok(()) }
//! ```

pub mod error;
pub mod genotype;
pub mod network;
pub mod space;

pub use error::{Result, SpaceError};
pub use genotype::Genotype;
pub use network::{Activation, Layer, Network, OpKind, PoolKind, TensorShape};
pub use space::{Crossover, Dimension, GenotypeIter, Mutation, MutationKind, SearchSpace};

/// The random number generator dynas uses by default: small, fast and serialisable, so that
/// searches can checkpoint it and resume exactly.
pub type DynasRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A [`DynasRng`] seeded from a `u64`.
pub fn seeded_rng(seed: u64) -> DynasRng {
    use rand::SeedableRng;
    DynasRng::seed_from_u64(seed)
}
