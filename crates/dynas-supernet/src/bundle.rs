//! The folder a producer leaves beside its deployment so that the runtime can execute it: one
//! place that knows the layout.
//!
//! ```text
//! <dir>/deployment.json                     the dynas_core::Deployment (every point, exits included)
//! <dir>/bn_store.safetensors                batch-norm statistics of every deployed subnet
//! <dir>/exit_heads/<genotype>.safetensors   the trained exit heads of a subnet deployed with exits
//! ```
//!
//! HADAS and Dynamic-OFA pre-sampling write it; `dynas_serve::Family::from_bundle` reads it, for
//! any method: a point without exits runs its subnet to the end, a point with exits stops at
//! the first deployed exit whose calibrated threshold accepts the input.

use std::path::{Path, PathBuf};

use dynas_space::Genotype;

/// The deployment file of the bundle in `dir`.
pub fn deployment_path(dir: &Path) -> PathBuf {
    dir.join("deployment.json")
}

/// The batch-norm store of the bundle in `dir`.
pub fn bn_store_path(dir: &Path) -> PathBuf {
    dir.join("bn_store.safetensors")
}

/// The folder of exit-head files of the bundle in `dir`.
pub fn exit_heads_dir(dir: &Path) -> PathBuf {
    dir.join("exit_heads")
}

/// The exit-head file of `genotype` in the bundle in `dir`.
pub fn exit_heads_path(dir: &Path, genotype: &Genotype) -> PathBuf {
    exit_heads_dir(dir).join(format!("{genotype}.safetensors"))
}

/// The bundle folder of a deployment file (its parent folder).
pub fn bundle_dir(deployment: &Path) -> PathBuf {
    match deployment.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// How a subnet's exit heads were built: the head shape and the blocks they read (written as
/// `exit_heads/<genotype>.json` beside the weights).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadLayout {
    /// The head of every exit.
    pub head: dynas_exits::ExitHead,
    /// The backbone blocks (layer indices) the heads read, increasing.
    pub blocks: Vec<usize>,
}

impl HeadLayout {
    /// The layout file of `genotype` in the bundle in `dir`.
    pub fn path(dir: &Path, genotype: &Genotype) -> PathBuf {
        exit_heads_dir(dir).join(format!("{genotype}.json"))
    }

    /// Writes the layout of `genotype`'s heads, crash-safely.
    pub fn write(&self, dir: &Path, genotype: &Genotype) -> crate::Result<()> {
        let path = Self::path(dir, genotype);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| crate::SupernetError::invalid("head layout", e.to_string()))?;
        dynas_search::write_atomically(&path, text.as_bytes())?;
        Ok(())
    }

    /// Reads the layout of `genotype`'s heads; a missing or malformed file is an error naming
    /// it.
    pub fn read(dir: &Path, genotype: &Genotype) -> crate::Result<Self> {
        let path = Self::path(dir, genotype);
        let text = dynas_search::read_text(&path)?;
        serde_json::from_str(&text).map_err(|e| crate::SupernetError::Checkpoint {
            path: path.clone(),
            field: "exit head layout".into(),
            reason: e.to_string(),
        })
    }
}
