//! Accuracy oracle for the search: evaluate subnets of a trained supernet on a validation split
//! after adaptive batch-norm recalibration, keep per-subnet batch-norm statistics (so that a
//! runtime switch needs no recalibration, as Dynamic-OFA does), and export
//! `(genotype, accuracy)` samples to train accuracy predictors.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use dynas_space::{Genotype, SearchSpace, seeded_rng};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::checkpoint::{TensorFile, write_tensors};
use crate::data::{Augmentation, Dataset, Normalization};
use crate::error::{Result, SupernetError};
use crate::supernet::{BnStats, Supernet};
use crate::train::evaluate;

/// Per-subnet batch-norm statistics, keyed by the genotype's compact form.
#[derive(Debug, Default)]
pub struct BnStore {
    stats: BTreeMap<String, BnStats>,
}

impl BnStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subnets stored.
    pub fn len(&self) -> usize {
        self.stats.len()
    }

    /// Whether no subnet is stored.
    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    /// Stores the supernet's current statistics for `genotype`.
    pub fn capture(&mut self, supernet: &Supernet, genotype: &Genotype) -> Result<()> {
        let net = supernet.network(genotype)?;
        self.stats
            .insert(genotype.to_string(), supernet.bn_stats(&net)?);
        Ok(())
    }

    /// The stored statistics of `genotype`, if any.
    pub fn get(&self, genotype: &Genotype) -> Option<&BnStats> {
        self.stats.get(&genotype.to_string())
    }

    /// Switches the supernet to `genotype` by writing its stored statistics back; returns
    /// `false` (and changes nothing) when none are stored.
    pub fn activate(&self, supernet: &Supernet, genotype: &Genotype) -> Result<bool> {
        match self.get(genotype) {
            Some(stats) => {
                let net = supernet.network(genotype)?;
                supernet.load_bn_stats(&net, stats)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Saves the store as safetensors (`<genotype>/<bn path>/running_mean|running_var`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors = Vec::new();
        for (g, stats) in &self.stats {
            for (name, m, v) in &stats.entries {
                tensors.push((format!("{g}/{name}/running_mean"), m.shallow_clone()));
                tensors.push((format!("{g}/{name}/running_var"), v.shallow_clone()));
            }
        }
        let meta = [(
            "genotypes".to_string(),
            serde_json::to_string(&self.stats.keys().collect::<Vec<_>>()).unwrap_or_default(),
        )]
        .into_iter()
        .collect();
        write_tensors(path, &tensors, meta)
    }

    /// Loads a store saved by [`BnStore::save`] for subnets of `supernet`.
    pub fn load(path: impl AsRef<Path>, supernet: &Supernet) -> Result<Self> {
        let file = TensorFile::open(path.as_ref())?;
        let keys: Vec<String> = file.meta_json("genotypes")?;
        let mut stats = BTreeMap::new();
        for key in keys {
            let g: Genotype =
                key.parse()
                    .map_err(|e: dynas_space::SpaceError| SupernetError::Checkpoint {
                        path: path.as_ref().to_path_buf(),
                        field: key.clone(),
                        reason: e.to_string(),
                    })?;
            let net = supernet.network(&g)?;
            let current = supernet.bn_stats(&net)?;
            let mut entries = Vec::with_capacity(current.entries.len());
            for (name, m, v) in current.entries {
                let read = |which: &str, t: &Tensor| {
                    file.tensor(
                        &format!("{key}/{name}/{which}"),
                        Some(&t.size()),
                        t.device(),
                    )
                };
                entries.push((
                    name.clone(),
                    read("running_mean", &m)?,
                    read("running_var", &v)?,
                ));
            }
            stats.insert(key, BnStats { entries });
        }
        Ok(Self { stats })
    }
}

/// One `(genotype, accuracy)` sample with the subnet's size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracySample {
    /// Compact genotype (`1-0-2-...`).
    pub genotype: String,
    /// Human-readable choices.
    pub description: String,
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
}

/// Writes samples as a JSON array.
pub fn write_samples_json(path: impl AsRef<Path>, samples: &[AccuracySample]) -> Result<()> {
    let path = path.as_ref();
    let text = serde_json::to_string_pretty(samples).map_err(|e| SupernetError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    dynas_space::files::write_output(path, text).map_err(|e| SupernetError::io(path, e))
}

/// Writes samples as CSV with a header `genotype,accuracy,macs,params,description`.
pub fn write_samples_csv(path: impl AsRef<Path>, samples: &[AccuracySample]) -> Result<()> {
    let path = path.as_ref();
    let mut out = Vec::new();
    let io = |e| SupernetError::io(path, e);
    writeln!(out, "genotype,accuracy,macs,params,description").map_err(io)?;
    for s in samples {
        writeln!(
            out,
            "{},{:.6},{},{},\"{}\"",
            s.genotype,
            s.accuracy,
            s.macs,
            s.params,
            s.description.replace('"', "\"\"")
        )
        .map_err(io)?;
    }
    dynas_space::files::write_output(path, out).map_err(|e| SupernetError::io(path, e))
}

/// Evaluates subnets of a trained supernet on a validation split after recalibrating batch
/// norm on `calibration_batches` fixed batches of the calibration set.
pub struct AccuracyEstimator<'a> {
    supernet: &'a Supernet,
    calibration: &'a Dataset,
    validation: &'a Dataset,
    norm: Normalization,
    calibration_batches: usize,
    batch_size: usize,
    seed: u64,
}

impl<'a> AccuracyEstimator<'a> {
    /// An estimator; `calibration_batches` and `batch_size` must be at least 1.
    pub fn new(
        supernet: &'a Supernet,
        calibration: &'a Dataset,
        validation: &'a Dataset,
        norm: Normalization,
        calibration_batches: usize,
        batch_size: usize,
    ) -> Result<Self> {
        if calibration_batches == 0 {
            return Err(SupernetError::invalid(
                "calibration_batches",
                "must be at least 1",
            ));
        }
        if batch_size == 0 {
            return Err(SupernetError::invalid("batch_size", "must be at least 1"));
        }
        Ok(Self {
            supernet,
            calibration,
            validation,
            norm,
            calibration_batches,
            batch_size,
            seed: 0,
        })
    }

    /// The same estimator drawing calibration batches with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Recalibrates batch norm for `genotype` (the same batches for every subnet).
    pub fn recalibrate(&self, genotype: &Genotype) -> Result<()> {
        let net = self.supernet.network(genotype)?;
        let mut rng = seeded_rng(self.seed);
        let batches = self
            .calibration
            .batches(
                self.batch_size,
                true,
                &self.norm,
                Augmentation::NONE,
                &mut rng,
                self.supernet.device(),
            )
            .take(self.calibration_batches);
        self.supernet.recalibrate_bn(&net, batches)?;
        Ok(())
    }

    /// Validation accuracy of `genotype` after recalibration.
    pub fn estimate(&self, genotype: &Genotype) -> Result<f64> {
        self.recalibrate(genotype)?;
        let net = self.supernet.network(genotype)?;
        evaluate(
            self.supernet,
            &net,
            self.validation,
            &self.norm,
            self.batch_size,
        )
    }

    /// [`AccuracyEstimator::estimate`], also capturing the recalibrated statistics in `store`.
    pub fn estimate_and_store(&self, genotype: &Genotype, store: &mut BnStore) -> Result<f64> {
        let acc = self.estimate(genotype)?;
        store.capture(self.supernet, genotype)?;
        Ok(acc)
    }

    /// A full sample (accuracy, MACs, parameters) for `genotype`.
    pub fn sample(&self, genotype: &Genotype) -> Result<AccuracySample> {
        let space = self.supernet.space();
        let net = space.decode(genotype)?;
        Ok(AccuracySample {
            genotype: genotype.to_string(),
            description: space.describe(genotype)?,
            accuracy: self.estimate(genotype)?,
            macs: net.macs(),
            params: net.params(),
        })
    }
}
