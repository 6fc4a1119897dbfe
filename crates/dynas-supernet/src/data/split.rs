//! The record of how a model's training and validation images were split.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Result, SupernetError};

/// How a model's training images were drawn from a training split: `validation_images`
/// randomly chosen images (seeded by `seed`) held out, then the first `train_images` of the
/// rest. Saved beside a model so that a later run that fine-tunes or ranks on "validation"
/// images provably uses images the model never saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitRecord {
    /// Images held out for validation.
    pub validation_images: usize,
    /// Seed of the hold-out draw.
    pub seed: u64,
    /// Training images taken (a prefix of the rest; fewer if the split has fewer).
    pub train_images: usize,
}

impl SplitRecord {
    /// Splits `full` as recorded; returns `(train, validation)`.
    pub fn split(&self, full: &Dataset) -> Result<(Dataset, Dataset)> {
        let mut rng = dynas_space::seeded_rng(self.seed);
        let (rest, validation) = full.split_validation(self.validation_images, &mut rng)?;
        let indices: Vec<usize> = (0..rest.len().min(self.train_images)).collect();
        Ok((rest.subset(&indices), validation))
    }

    /// `<model>.split.json`: where [`SplitRecord::save_beside`] writes.
    pub fn path_beside(model: &Path) -> PathBuf {
        let mut name = model.as_os_str().to_owned();
        name.push(".split.json");
        name.into()
    }

    /// Writes the record beside `model` (atomically).
    pub fn save_beside(&self, model: &Path) -> Result<()> {
        let path = Self::path_beside(model);
        let text = serde_json::to_string_pretty(self).map_err(|e| SupernetError::Json {
            path: path.clone(),
            source: e,
        })?;
        crate::checkpoint::write_atomic(&path, |tmp| std::fs::write(tmp, text))
    }

    /// The record beside `model`, `None` when there is none.
    pub fn load_beside(model: &Path) -> Result<Option<Self>> {
        let path = Self::path_beside(model);
        let text = match dynas_space::files::read_input_text(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SupernetError::io(path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SupernetError::Json { path, source: e })
    }

    /// Checks that this split's validation images were held out of the training of a model
    /// trained under `trained` (recorded in `path`): same hold-out size and seed. The number
    /// of training images may differ: both take a prefix of the same rest.
    pub fn check_held_out_from(&self, trained: &SplitRecord, path: &Path) -> Result<()> {
        let field = if self.validation_images != trained.validation_images {
            "validation_images"
        } else if self.seed != trained.seed {
            "seed"
        } else {
            return Ok(());
        };
        Err(SupernetError::Checkpoint {
            path: path.to_path_buf(),
            field: field.into(),
            reason: format!(
                "the model was trained with {} validation images held out (seed {}); this run \
                 holds out {} (seed {}), so its validation images may include training images",
                trained.validation_images, trained.seed, self.validation_images, self.seed
            ),
        })
    }
}
