//! Embeds libtorch's library directory as an rpath in this crate's tests, examples and
//! benches, so they run without `LD_LIBRARY_PATH` when `LIBTORCH` points at the install.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        if lib.is_dir() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
    }
}
