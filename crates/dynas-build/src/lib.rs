//! Build-script helper shared by the dynas crates that link libtorch: `dynas-supernet`, and
//! every crate that links it through a feature (`dynas-exits`, `dynas-search`, `dynas`,
//! `dynas-cli`, `dynas-store`).
//!
//! A crate's `build.rs` calls [`embed_libtorch_rpath`]; its binaries, tests, examples and
//! benches then find libtorch at run time without `LD_LIBRARY_PATH` when `LIBTORCH` points at
//! the install. A link argument reaches only the targets of the package whose build script
//! prints it, so a crate that links libtorch only through a dependency's feature (turned on
//! by feature unification, which its build script cannot see) calls it unconditionally: the
//! rpath is inert in an artifact that does not link libtorch. `scripts/check-rpath.sh` lists
//! the executables a build links to libtorch without one.
//!
//! It is a crate rather than a shared file so that each user still packages (`cargo package`)
//! on its own.

use std::path::{Path, PathBuf};

/// The environment variable naming the libtorch install (as tch's `torch-sys` reads it).
pub const LIBTORCH: &str = "LIBTORCH";

/// The rpath linker argument for a libtorch install, or `None` when it has no `lib` folder.
pub fn libtorch_rpath_arg(libtorch: impl AsRef<Path>) -> Option<String> {
    let lib: PathBuf = libtorch.as_ref().join("lib");
    lib.is_dir()
        .then(|| format!("-Wl,-rpath,{}", lib.display()))
}

/// Prints the cargo directives that embed `$LIBTORCH/lib` as an rpath (nothing when `LIBTORCH`
/// is unset or has no `lib` folder: linking then fails or succeeds on tch's own terms).
/// Call it from a build script only: cargo reads these lines from the script's standard output.
pub fn embed_libtorch_rpath() {
    println!("cargo:rerun-if-env-changed={LIBTORCH}");
    if let Some(arg) = std::env::var_os(LIBTORCH).and_then(libtorch_rpath_arg) {
        println!("cargo:rustc-link-arg={arg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpath_only_for_an_install_with_a_lib_folder() {
        let dir = std::env::temp_dir().join(format!("dynas-build-test-{}", std::process::id()));
        assert_eq!(libtorch_rpath_arg(&dir), None);
        std::fs::create_dir_all(dir.join("lib")).expect("create lib");
        let arg = libtorch_rpath_arg(&dir).expect("rpath");
        assert_eq!(arg, format!("-Wl,-rpath,{}", dir.join("lib").display()));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
