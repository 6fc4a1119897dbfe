//! Supernet training: the sandwich rule with in-place distillation, once-for-all's progressive
//! shrinking schedule, SGD with Nesterov momentum and a cosine learning rate, label smoothing,
//! progress bars and checkpoints with exact resume.
//!
//! Every random choice of training (batch order, augmentation, subnet sampling) comes from the
//! trainer's [`DynasRng`], which checkpoints store with the weights, the optimizer momentum and
//! the step counter, so that training from a checkpoint reproduces an uninterrupted run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dynas_space::{DynasRng, Genotype, MbConvGene, MbConvSpace, Network, SearchSpace, seeded_rng};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::checkpoint::{TensorFile, write_tensors};
use crate::data::{Augmentation, Batch, Dataset, Normalization};
use crate::elastic::BnMode;
use crate::error::{Result, SupernetError};
use crate::supernet::Supernet;

mod sgd;
pub use sgd::{Sgd, cosine_lr};

/// Which kind of choice a search-space dimension makes (read from its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElasticDim {
    /// Input resolution (`resolution`).
    Resolution,
    /// Depthwise kernel (`*.kernel`).
    Kernel,
    /// Stage depth (`*.depth`).
    Depth,
    /// Expand ratio (`*.expand`).
    Expand,
    /// Channel widths (`*.width`): GoldenNAS's dynamic channel scaling.
    Width,
}

impl ElasticDim {
    /// The kind of choice a gene of an `MbConvSpace` makes.
    pub fn of(role: MbConvGene) -> Self {
        match role {
            MbConvGene::Resolution => Self::Resolution,
            MbConvGene::Kernel { .. } => Self::Kernel,
            MbConvGene::StageDepth { .. } => Self::Depth,
            MbConvGene::Expand { .. } => Self::Expand,
            _ => Self::Width,
        }
    }
}

/// One phase of a training schedule: how many epochs, and which kinds of choices are elastic
/// (the others stay at their largest value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Epochs of the phase.
    pub epochs: usize,
    /// Elastic kinds of choices.
    pub elastic: Vec<ElasticDim>,
}

/// The phases of training.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Phases in order.
    pub phases: Vec<Phase>,
}

impl Schedule {
    /// Everything elastic from the first epoch (BigNAS / AttentiveNAS sandwich training).
    pub fn all_elastic(epochs: usize) -> Self {
        use ElasticDim::*;
        Self {
            phases: vec![Phase {
                epochs,
                elastic: vec![Resolution, Kernel, Depth, Expand, Width],
            }],
        }
    }

    /// Once-for-all's progressive shrinking: the full network (elastic resolution only), then
    /// elastic kernel, then also depth, then also expand ratio and widths.
    pub fn progressive_shrinking(full: usize, kernel: usize, depth: usize, expand: usize) -> Self {
        use ElasticDim::*;
        let phases = vec![
            Phase {
                epochs: full,
                elastic: vec![Resolution],
            },
            Phase {
                epochs: kernel,
                elastic: vec![Resolution, Kernel],
            },
            Phase {
                epochs: depth,
                elastic: vec![Resolution, Kernel, Depth],
            },
            Phase {
                epochs: expand,
                elastic: vec![Resolution, Kernel, Depth, Expand, Width],
            },
        ];
        Self {
            phases: phases.into_iter().filter(|p| p.epochs > 0).collect(),
        }
    }

    /// Total epochs.
    pub fn epochs(&self) -> usize {
        self.phases.iter().map(|p| p.epochs).sum()
    }

    /// The phase epoch `epoch` (0-based) belongs to (the last one past the end).
    pub fn phase(&self, epoch: usize) -> &Phase {
        let mut end = 0;
        for p in &self.phases {
            end += p.epochs;
            if epoch < end {
                return p;
            }
        }
        self.phases.last().expect("a checked schedule has phases")
    }
}

/// Draws subnets of a space with some kinds of choices held at their largest value.
#[derive(Clone, Debug)]
pub struct SubnetSampler {
    kinds: Vec<ElasticDim>,
    sizes: Vec<usize>,
}

impl SubnetSampler {
    /// A sampler over `space` (dimension kinds from the space's gene roles).
    pub fn new(space: &MbConvSpace) -> Self {
        Self {
            kinds: space.gene_roles().into_iter().map(ElasticDim::of).collect(),
            sizes: space.dimensions().iter().map(|d| d.len()).collect(),
        }
    }

    fn pick(&self, elastic: &[ElasticDim], f: impl Fn(usize, usize) -> usize) -> Genotype {
        Genotype::new(
            self.kinds
                .iter()
                .zip(&self.sizes)
                .enumerate()
                .map(|(i, (k, &n))| if elastic.contains(k) { f(i, n) } else { n - 1 })
                .collect(),
        )
    }

    /// The largest subnet.
    pub fn largest(&self) -> Genotype {
        self.pick(&[], |_, n| n - 1)
    }

    /// The smallest subnet with these elastic kinds.
    pub fn smallest(&self, elastic: &[ElasticDim]) -> Genotype {
        self.pick(elastic, |_, _| 0)
    }

    /// A uniformly random subnet with these elastic kinds.
    pub fn sample(&self, elastic: &[ElasticDim], rng: &mut DynasRng) -> Genotype {
        let draws: Vec<usize> = self.sizes.iter().map(|&n| rng.random_range(0..n)).collect();
        self.pick(elastic, |i, _| draws[i])
    }
}

/// Training hyper-parameters as the user writes them; [`TrainParams::check`] validates them
/// into a [`TrainConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// Phases and epochs.
    pub schedule: Schedule,
    /// Images per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up epochs before the cosine decay.
    pub warmup_epochs: usize,
    /// Nesterov momentum.
    pub momentum: f64,
    /// L2 weight decay of conv / linear weights (not batch norm, not biases).
    pub weight_decay: f64,
    /// Label smoothing of the hard-label loss.
    pub label_smoothing: f64,
    /// Random subnets per step besides the largest and the smallest.
    pub random_subnets: usize,
    /// Weight of the in-place distillation loss (soft targets from the largest subnet) for the
    /// other subnets; the rest is the hard-label loss. 0 disables distillation.
    pub distill_weight: f64,
    /// Training augmentation.
    pub augmentation: Augmentation,
    /// Seed of the trainer's random number generator.
    pub seed: u64,
    /// Show progress bars on stderr (off by default: library code draws nothing unless
    /// asked).
    pub progress: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            schedule: Schedule::all_elastic(10),
            batch_size: 128,
            lr: 0.1,
            warmup_epochs: 0,
            momentum: 0.9,
            weight_decay: 5e-5,
            label_smoothing: 0.1,
            random_subnets: 2,
            distill_weight: 1.0,
            augmentation: Augmentation::NONE,
            seed: 0,
            progress: false,
        }
    }
}

/// Validated training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig(TrainParams);

impl TrainParams {
    /// Validates the parameters.
    pub fn check(self) -> Result<TrainConfig> {
        let unit = |name: &'static str, v: f64, hi_open: bool| -> Result<()> {
            let ok = v >= 0.0 && if hi_open { v < 1.0 } else { v <= 1.0 };
            if ok {
                Ok(())
            } else {
                Err(SupernetError::invalid(name, format!("{v} is out of range")))
            }
        };
        if self.schedule.phases.is_empty() || self.schedule.epochs() == 0 {
            return Err(SupernetError::invalid("schedule", "no training epochs"));
        }
        if self.batch_size == 0 {
            return Err(SupernetError::invalid("batch_size", "must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(SupernetError::invalid(
                "lr",
                format!("{} is not positive", self.lr),
            ));
        }
        if self.warmup_epochs >= self.schedule.epochs() && self.warmup_epochs > 0 {
            return Err(SupernetError::invalid(
                "warmup_epochs",
                "must be fewer than the training epochs",
            ));
        }
        unit("momentum", self.momentum, true)?;
        unit("label_smoothing", self.label_smoothing, true)?;
        unit("distill_weight", self.distill_weight, false)?;
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(SupernetError::invalid(
                "weight_decay",
                format!("{} is negative", self.weight_decay),
            ));
        }
        Ok(TrainConfig(self))
    }
}

impl TrainConfig {
    /// The parameters.
    pub fn params(&self) -> &TrainParams {
        &self.0
    }
}

/// What one sandwich step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Hard-label loss of the largest subnet.
    pub loss_largest: f64,
    /// Mean total loss over the step's subnets.
    pub loss_mean: f64,
    /// Correct predictions of the largest subnet on the batch.
    pub correct_largest: i64,
}

/// Summary of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean hard-label loss of the largest subnet.
    pub loss_largest: f64,
    /// Mean loss over all trained subnets.
    pub loss_mean: f64,
    /// Training accuracy of the largest subnet (on augmented batches).
    pub train_acc_largest: f64,
    /// Input images of the epoch.
    pub images: usize,
    /// Subnet forward/backward passes over images (`images x subnets per step`).
    pub subnet_images: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
}

/// Trains a [`Supernet`].
pub struct Trainer<'a> {
    supernet: &'a mut Supernet,
    config: TrainConfig,
    sampler: SubnetSampler,
    sgd: Sgd,
    rng: DynasRng,
    norm: Normalization,
    epoch: usize,
    step: u64,
    largest: Option<Network>,
}

impl<'a> Trainer<'a> {
    /// A trainer starting at epoch 0; `norm` normalises the batches.
    pub fn new(supernet: &'a mut Supernet, config: TrainConfig, norm: Normalization) -> Self {
        let p = config.params();
        let sgd = Sgd::new(supernet, p.momentum, p.weight_decay);
        let sampler = SubnetSampler::new(supernet.space());
        let rng = seeded_rng(p.seed);
        let largest = supernet.network(&sampler.largest()).ok();
        Self {
            supernet,
            config,
            sampler,
            sgd,
            rng,
            norm,
            epoch: 0,
            step: 0,
            largest,
        }
    }

    /// The supernet.
    pub fn supernet(&self) -> &Supernet {
        self.supernet
    }

    /// Epochs done.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Optimizer steps done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Whether every epoch of the schedule is done.
    pub fn finished(&self) -> bool {
        self.epoch >= self.config.params().schedule.epochs()
    }

    /// The subnets of one sandwich step in the current phase: largest, smallest, then random.
    pub fn sandwich(&mut self) -> Result<Vec<Network>> {
        let p = self.config.params();
        let elastic = p.schedule.phase(self.epoch).elastic.clone();
        let mut genotypes = vec![self.sampler.largest(), self.sampler.smallest(&elastic)];
        for _ in 0..p.random_subnets {
            genotypes.push(self.sampler.sample(&elastic, &mut self.rng));
        }
        genotypes.iter().map(|g| self.supernet.network(g)).collect()
    }

    /// One optimisation step on `batch` over `subnets` (the first is the teacher when
    /// distillation is on); gradients of all subnets accumulate before one update.
    pub fn train_step(&mut self, batch: &Batch, subnets: &[Network], lr: f64) -> Result<StepStats> {
        let p = self.config.params().clone();
        self.sgd.zero_grad();
        let mut soft: Option<Tensor> = None;
        let mut loss_sum = 0.0;
        let mut loss_largest = 0.0;
        let mut correct = 0;
        for (i, net) in subnets.iter().enumerate() {
            let logits = self.supernet.forward(net, &batch.images, BnMode::Train)?;
            let hard = || {
                logits.cross_entropy_loss::<Tensor>(
                    &batch.labels,
                    None,
                    Reduction::Mean,
                    -100,
                    p.label_smoothing,
                )
            };
            let loss = match (&soft, i) {
                (Some(target), i) if i > 0 && p.distill_weight > 0.0 => {
                    let kd = -(target * logits.log_softmax(-1, Kind::Float))
                        .sum_dim_intlist(-1, false, Kind::Float)
                        .mean(Kind::Float);
                    // At full distillation the hard loss would be weighted by 0: not computed.
                    if p.distill_weight < 1.0 {
                        kd * p.distill_weight + hard() * (1.0 - p.distill_weight)
                    } else {
                        kd
                    }
                }
                _ => hard(),
            };
            if i == 0 {
                loss_largest = loss.double_value(&[]);
                correct = logits
                    .argmax(-1, false)
                    .eq_tensor(&batch.labels)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
                if p.distill_weight > 0.0 {
                    soft = Some(logits.detach().softmax(-1, Kind::Float));
                }
            }
            loss_sum += loss.double_value(&[]);
            loss.backward();
        }
        if self.largest.as_ref().is_some_and(|l| subnets.contains(l)) {
            self.sgd.step_dense(lr);
        } else {
            self.sgd.step(lr);
        }
        self.step += 1;
        Ok(StepStats {
            loss_largest,
            loss_mean: loss_sum / subnets.len().max(1) as f64,
            correct_largest: correct,
        })
    }

    /// Trains one epoch on `data`.
    pub fn train_epoch(&mut self, data: &Dataset) -> Result<EpochStats> {
        let p = self.config.params().clone();
        let steps_per_epoch = data.len().div_ceil(p.batch_size) as u64;
        let total = steps_per_epoch * p.schedule.epochs() as u64;
        let warmup = steps_per_epoch * p.warmup_epochs as u64;
        let bar = if p.progress {
            let bar = ProgressBar::new(steps_per_epoch);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .map_err(|e| SupernetError::invalid("progress", e.to_string()))?
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{}/{}", self.epoch + 1, p.schedule.epochs()));
            bar
        } else {
            ProgressBar::hidden()
        };
        let start = Instant::now();
        let (mut images, mut subnet_images, mut steps) = (0usize, 0usize, 0usize);
        let (mut loss_l, mut loss_m, mut correct) = (0.0, 0.0, 0i64);
        let mut order: Vec<usize> = (0..data.len()).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut self.rng);
        let mut lr = p.lr;
        for chunk in order.chunks(p.batch_size) {
            let batch = data.batch(
                chunk,
                &self.norm,
                &p.augmentation,
                &mut self.rng,
                self.supernet.device(),
            );
            let subnets = self.sandwich()?;
            lr = cosine_lr(p.lr, self.step, warmup, total);
            let s = self.train_step(&batch, &subnets, lr)?;
            images += chunk.len();
            subnet_images += chunk.len() * subnets.len();
            steps += 1;
            loss_l += s.loss_largest;
            loss_m += s.loss_mean;
            correct += s.correct_largest;
            bar.inc(1);
            if steps % 20 == 0 {
                bar.set_message(format!("loss {:.3} lr {lr:.4}", loss_l / steps as f64));
            }
        }
        bar.finish_and_clear();
        let stats = EpochStats {
            epoch: self.epoch,
            loss_largest: loss_l / steps.max(1) as f64,
            loss_mean: loss_m / steps.max(1) as f64,
            train_acc_largest: correct as f64 / images.max(1) as f64,
            images,
            subnet_images,
            seconds: start.elapsed().as_secs_f64(),
            lr,
        };
        self.epoch += 1;
        Ok(stats)
    }

    /// Writes a checkpoint: every supernet variable (`param/<name>`), the momentum buffers
    /// (`momentum/<name>`), and metadata `epoch`, `step`, `rng`, `config`, `space`.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .supernet
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("param/{n}"), t))
            .collect();
        tensors.extend(
            self.sgd
                .buffers()
                .map(|(n, b)| (format!("momentum/{n}"), b.shallow_clone())),
        );
        let json = |v: &dyn erased::Json| v.to_json();
        let meta = HashMap::from([
            ("epoch".to_string(), self.epoch.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("rng".to_string(), json(&self.rng)),
            ("config".to_string(), json(&self.config)),
            ("norm".to_string(), json(&self.norm)),
            (
                "space".to_string(),
                self.supernet.space().name().to_string(),
            ),
        ]);
        write_tensors(path, &tensors, meta)
    }

    /// Restores weights, momentum, RNG, epoch and step from a checkpoint written by
    /// [`Trainer::save_checkpoint`] for the same space. The trainer keeps its own configuration.
    pub fn resume(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let file = TensorFile::open(&path)?;
        let space = file.meta("space")?;
        if space != self.supernet.space().name() {
            return Err(SupernetError::Checkpoint {
                path,
                field: "space".to_string(),
                reason: format!(
                    "checkpoint of space `{space}`, supernet of `{}`",
                    self.supernet.space().name()
                ),
            });
        }
        let parse = |key: &str| -> Result<u64> {
            file.meta(key)?
                .parse::<u64>()
                .map_err(|e| SupernetError::Checkpoint {
                    path: path.clone(),
                    field: key.to_string(),
                    reason: e.to_string(),
                })
        };
        let epoch = parse("epoch")? as usize;
        let step = parse("step")?;
        let rng: DynasRng = file.meta_json("rng")?;
        // Everything is read and checked before anything is overwritten.
        let mut staged = crate::checkpoint::read_vars(&file, self.supernet.var_store(), "param/")?;
        for (name, buf) in self.sgd.buffers() {
            let t = file.tensor(&format!("momentum/{name}"), Some(&buf.size()), buf.device())?;
            staged.push((buf.shallow_clone(), t));
        }
        crate::checkpoint::assign(staged);
        self.epoch = epoch;
        self.step = step;
        self.rng = rng;
        Ok(())
    }
}

mod erased {
    /// Serialises to JSON (values here always serialise).
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// Top-1 accuracy of subnet `net` on `data` (batch norm in evaluation mode, no gradients).
pub fn evaluate(
    supernet: &Supernet,
    net: &Network,
    data: &Dataset,
    norm: &Normalization,
    batch_size: usize,
) -> Result<f64> {
    let mut rng = seeded_rng(0);
    let mut correct = 0i64;
    tch::no_grad(|| -> Result<()> {
        for batch in data.batches(
            batch_size,
            false,
            norm,
            Augmentation::NONE,
            &mut rng,
            supernet.device(),
        ) {
            let logits = supernet.forward(net, &batch.images, BnMode::Eval)?;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&batch.labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
        Ok(())
    })?;
    Ok(correct as f64 / data.len().max(1) as f64)
}
