//! Depth-adaptive GoldenNets: one network whose trailing blocks can be skipped at run time.
//!
//! A GoldenNet's *depth configurations* are the networks it becomes when each stage keeps
//! only its first blocks (every stage depth at most the GoldenNet's, down to the space's
//! smallest): the same weights, fewer blocks. The layers after a skipped block see other
//! activations, so each configuration gets its own batch-norm statistics (adaptive batch
//! norm), *stored* once and *switched* at run time by writing them back
//! ([`DepthAdaptiveNet::switch`]; no data, no recalibration). Self-knowledge distillation
//! fine-tunes the network: in each step the full depth learns from the labels and every
//! shallower configuration from the full depth's soft predictions
//! ([`DepthAdaptiveNet::self_distill`]).

use std::time::Instant;

use dynas_space::{Genotype, MbConvGene, MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    AccuracyEstimator, Augmentation, BnStore, Dataset, Normalization, Supernet, TrainParams,
    Trainer, cosine_lr, evaluate,
};
use serde::{Deserialize, Serialize};

use crate::error::{GoldenNasError, Result};

/// Self-distillation fine-tuning and calibration of a depth-adaptive net.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepthConfig {
    /// Fine-tuning images (0: no fine-tuning).
    pub finetune_images: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Peak learning rate of the fine-tuning (cosine decay).
    pub lr: f64,
    /// Weight of the distillation loss of the shallower configurations (the rest is the
    /// hard-label loss; 0 fine-tunes every configuration on labels only).
    pub distill_weight: f64,
    /// Batch-norm calibration batches per configuration.
    pub calib_batches: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for DepthConfig {
    fn default() -> Self {
        Self {
            finetune_images: 20_000,
            batch_size: 128,
            lr: 0.01,
            distill_weight: 1.0,
            calib_batches: 10,
            seed: 0,
        }
    }
}

impl DepthConfig {
    /// Checks the configuration.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == 0 || self.calib_batches == 0 {
            return Err(GoldenNasError::invalid(
                "batch_size / calib_batches",
                "must be at least 1",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(GoldenNasError::invalid("lr", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.distill_weight) {
            return Err(GoldenNasError::invalid(
                "distill_weight",
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }
}

/// One GoldenNet with its depth configurations and their stored batch-norm statistics.
#[derive(Debug)]
pub struct DepthAdaptiveNet {
    configurations: Vec<Genotype>,
    store: BnStore,
}

impl DepthAdaptiveNet {
    /// The depth configurations of `golden` in `space`: every combination of stage depths
    /// at most `golden`'s (other genes as in `golden`), canonical, deepest first (by MACs).
    pub fn new(space: &MbConvSpace, golden: &Genotype) -> Result<Self> {
        space.validate(golden)?;
        let depth_genes: Vec<usize> = space
            .gene_roles()
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, MbConvGene::StageDepth { .. }))
            .map(|(i, _)| i)
            .collect();
        let mut configurations = vec![space.canonical(golden)?];
        for &d in &depth_genes {
            let mut next = Vec::new();
            for g in &configurations {
                for v in 0..golden.genes()[d] {
                    let mut genes = g.genes().to_vec();
                    genes[d] = v;
                    next.push(space.canonical(&Genotype::new(genes))?);
                }
            }
            configurations.extend(next);
        }
        let mut keyed = configurations
            .into_iter()
            .map(|g| Ok((space.decode(&g)?.macs(), g)))
            .collect::<Result<Vec<_>>>()?;
        keyed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.genes().cmp(b.1.genes())));
        keyed.dedup_by(|a, b| a.1 == b.1);
        Ok(Self {
            configurations: keyed.into_iter().map(|(_, g)| g).collect(),
            store: BnStore::new(),
        })
    }

    /// The depth configurations, deepest first (index 0 is the full GoldenNet).
    pub fn configurations(&self) -> &[Genotype] {
        &self.configurations
    }

    /// The stored statistics.
    pub fn store(&self) -> &BnStore {
        &self.store
    }

    /// Recalibrates batch norm for every configuration on `calib_batches` batches of `data`
    /// and stores each configuration's statistics.
    pub fn calibrate(
        &mut self,
        supernet: &Supernet,
        data: &Dataset,
        norm: &Normalization,
        calib_batches: usize,
    ) -> Result<()> {
        let est = AccuracyEstimator::new(supernet, data, data, norm.clone(), calib_batches, 256)?;
        for g in &self.configurations {
            est.recalibrate(g)?;
            self.store.capture(supernet, g)?;
        }
        Ok(())
    }

    /// Switches `supernet` to configuration `index` by writing its stored statistics back.
    pub fn switch(&self, supernet: &Supernet, index: usize) -> Result<()> {
        let g = self.configurations.get(index).ok_or_else(|| {
            GoldenNasError::invalid(
                "index",
                format!("{index} of {} configurations", self.configurations.len()),
            )
        })?;
        if !self.store.activate(supernet, g)? {
            return Err(GoldenNasError::invalid(
                "index",
                format!("no statistics stored for configuration {index}: calibrate first"),
            ));
        }
        Ok(())
    }

    /// Top-1 (%) of every configuration on `data` with the statistics switched in from the
    /// store.
    pub fn top1_switched(
        &self,
        supernet: &Supernet,
        data: &Dataset,
        norm: &Normalization,
    ) -> Result<Vec<f64>> {
        (0..self.configurations.len())
            .map(|i| {
                self.switch(supernet, i)?;
                let net = supernet.network(&self.configurations[i])?;
                Ok(evaluate(supernet, &net, data, norm, 256)? * 100.0)
            })
            .collect()
    }

    /// Top-1 (%) of every configuration on `data` with one set of statistics for all: the
    /// full depth's (recalibrated on `calib` once), as a network without adaptive batch norm
    /// would run.
    pub fn top1_shared_bn(
        &self,
        supernet: &Supernet,
        calib: &Dataset,
        data: &Dataset,
        norm: &Normalization,
        calib_batches: usize,
    ) -> Result<Vec<f64>> {
        let est = AccuracyEstimator::new(supernet, calib, data, norm.clone(), calib_batches, 256)?;
        est.recalibrate(&self.configurations[0])?;
        self.configurations
            .iter()
            .map(|g| {
                let net = supernet.network(g)?;
                Ok(evaluate(supernet, &net, data, norm, 256)? * 100.0)
            })
            .collect()
    }

    /// Fine-tunes the GoldenNet's weights in `supernet` by self-knowledge distillation: each
    /// step runs the full depth on the labels and every shallower configuration against the
    /// full depth's soft predictions (with `distill_weight`). Returns the seconds spent.
    /// Stored statistics are stale afterwards: [`DepthAdaptiveNet::calibrate`] again.
    pub fn self_distill(
        &self,
        supernet: &mut Supernet,
        data: &Dataset,
        norm: &Normalization,
        config: &DepthConfig,
    ) -> Result<f64> {
        config.check()?;
        if config.finetune_images == 0 {
            return Ok(0.0);
        }
        let t = Instant::now();
        let space = supernet.space().clone();
        let nets = self
            .configurations
            .iter()
            .map(|g| space.decode(g))
            .collect::<dynas_space::Result<Vec<_>>>()?;
        let params = TrainParams {
            batch_size: config.batch_size,
            lr: config.lr,
            distill_weight: config.distill_weight,
            label_smoothing: 0.0,
            seed: config.seed,
            ..TrainParams::default()
        }
        .check()?;
        let mut trainer = Trainer::new(supernet, params, norm.clone());
        let mut rng = seeded_rng(config.seed);
        let total = config.finetune_images.div_ceil(config.batch_size) as u64;
        let (mut images, mut step) = (0usize, 0u64);
        let mut order: Vec<usize> = Vec::new();
        let mut cursor = 0;
        while images < config.finetune_images {
            if cursor >= order.len() {
                order = (0..data.len()).collect();
                rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
                cursor = 0;
            }
            let n = config
                .batch_size
                .min(order.len() - cursor)
                .min(config.finetune_images - images);
            let batch = data.batch(
                &order[cursor..cursor + n],
                norm,
                &Augmentation::NONE,
                &mut rng,
                trainer.supernet().device(),
            );
            cursor += n;
            trainer.train_step(&batch, &nets, cosine_lr(config.lr, step, 0, total))?;
            step += 1;
            images += n;
        }
        Ok(t.elapsed().as_secs_f64())
    }
}
