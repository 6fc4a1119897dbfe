//! Embeds libtorch's library directory as an rpath in this crate's final artifacts (shared
//! with the other libtorch crates through `dynas-build`), so that they start without
//! `LD_LIBRARY_PATH` when they link libtorch.
//!
//! Unconditional: this crate links libtorch whenever `dynas-exits/tch` is on, which another
//! crate of the build can turn on (feature unification) without a feature of this one, and a
//! build script cannot see a dependency's features. The rpath is inert in an artifact that
//! does not link libtorch.

fn main() {
    dynas_build::embed_libtorch_rpath();
}
