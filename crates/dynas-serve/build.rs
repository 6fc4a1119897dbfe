//! Embeds libtorch's library directory as an rpath in this crate's tests, examples and
//! benches (shared with the other libtorch crates through `dynas-build`).

fn main() {
    dynas_build::embed_libtorch_rpath();
}
