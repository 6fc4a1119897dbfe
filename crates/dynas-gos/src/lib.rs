//! **GOS** (operator replacement), all of it in one place: adapt a *trained* network by
//! replacing each operator with a cheaper one derived from its mathematical (tensor-index)
//! form, searched per layer against a host-measured lookup table or any cost model, and
//! fine-tuned with distillation from the original to keep its accuracy.
//!
//! | module | what | libtorch |
//! |---|---|---|
//! | [`search`] | candidates derived from each operator's index expression, the replacement space and problem ([`GosSpace`], [`GosProblem`]), the lookup table ([`GosLut`]) | no |
//! | `model` | runnable models built from a network and a plan, weight initialisation of replacements from the original, host timing and the lookup table, fine-tuning, `adapt` end to end (what `dynas gos` runs) | feature `tch` |

#[cfg(feature = "tch")]
pub mod model;
pub mod search;

pub use search::{
    CandidateConfig, CandidateParams, ChannelSplit, Factorisation, GosLatency, GosLut, GosPlan,
    GosProblem, GosSpace, Replacement, Unit, UnitErrors,
};
