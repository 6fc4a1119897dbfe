//! The published measurements dynas reads, shipped inside this crate so that a clone (or a
//! crates.io download) needs nothing beside it.
//!
//! `data/README.md` gives every file's source, licence notes and units; none of the numbers
//! was produced by dynas. The files are read at run time from [`DIR`], the crate's own folder.
//!
//! ```
//! let table = dynas_data::path("nb201/nb201_hw.csv");
//! assert!(table.is_file());
//! ```

use std::path::{Path, PathBuf};

/// The folder holding the data files (`data/` inside this crate's source).
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

/// NAS-Bench-201 cells with accuracies and device latencies (`nb201/nb201_hw.csv`).
pub const NB201_HW_CSV: &str = "nb201/nb201_hw.csv";
/// Jetson AGX Xavier and TX2 DVFS operating points (`dvfs/jetson_operating_points.json`).
pub const JETSON_OPERATING_POINTS: &str = "dvfs/jetson_operating_points.json";
/// HADAS per-exit CIFAR-100 accuracies of AttentiveNAS a0..a5 (a folder).
pub const HADAS_EXITS_DIR: &str = "exits/hadas-attentivenas-cifar100";

/// `relative` joined to [`DIR`], e.g. `path("nb201/nb201_hw.csv")`.
pub fn path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(DIR).join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_are_present() {
        for file in [NB201_HW_CSV, JETSON_OPERATING_POINTS] {
            assert!(path(file).is_file(), "{file} is missing from {DIR}");
        }
        assert!(path(HADAS_EXITS_DIR).join("a0_exit_accuracy.csv").is_file());
        assert!(path("README.md").is_file());
    }
}
