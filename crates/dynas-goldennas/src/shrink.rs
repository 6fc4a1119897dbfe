//! Progressive space shrinking toward a target *during* supernet training: the supernet is
//! trained in stages with the sandwich rule (largest and smallest subnet of the current
//! space, plus random ones, in-place distillation from the largest) on the choices still in
//! play; after each stage but the last, sampled subnets are scored on the supernet
//! (validation top-1 after batch-norm recalibration) and on the target's performance model.
//! Every choice gets the mean top-1 of the sampled subnets that use it and the mean predicted
//! latency of *all* sampled subnets with that choice swapped in (the model costs nothing, and
//! the swap keeps the other dimensions' draws out of the latency comparison), and the choices
//! that another choice of the same dimension dominates are dropped. The next stage trains on
//! what is left.
//!
//! Dominance is tolerant: choice `a` dominates `b` when `a`'s mean top-1 is at least `b`'s,
//! its mean latency at most `b`'s times `1 + latency_tolerance`, and it is clearly better in
//! one of the two (top-1 above `b`'s by more than `accuracy_margin` points, or latency below
//! `b`'s times `1 - latency_tolerance`). So, on a target whose latency hardly depends on a
//! dimension (channel width on a dispatch-bound GPU), the less accurate choices of that
//! dimension go, while on a target where they are faster they stay. The most accurate choice
//! of a dimension is never dropped, nor one seen in fewer than `min_samples_per_choice`
//! sampled subnets.

use std::time::Instant;

use dynas_space::{Genotype, MbConvGene, MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    AccuracyEstimator, Augmentation, Dataset, Normalization, Supernet, TrainParams, Trainer,
    cosine_lr,
};
use serde::{Deserialize, Serialize};

use crate::error::{GoldenNasError, Result};
use crate::perf_model::PerfModel;
use crate::space::ChoiceSet;

/// Training and shrinking schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShrinkConfig {
    /// Training stages; the space shrinks after each but the last (at least 1).
    pub stages: usize,
    /// Training images per stage (at least 1; images are drawn in passes over the set).
    pub images_per_stage: usize,
    /// Whether to shrink at all (`false`: the full-space control with the same training).
    pub shrink: bool,
    /// Whether stage depths may be dropped too. Off by default: depth is the run-time knob
    /// of the depth-adaptive GoldenNet, so every depth stays trained.
    pub shrink_depth: bool,
    /// Subnets sampled and scored after a stage.
    pub samples: usize,
    /// A choice seen in fewer scored subnets is never dropped (at least 1).
    pub min_samples_per_choice: usize,
    /// Relative latency slack of the dominance test (see the [module docs](self)).
    pub latency_tolerance: f64,
    /// Top-1 points by which a choice must beat another (when it is not clearly faster) to
    /// dominate it: the mean top-1 of a few weight-shared subnets is noisy.
    pub accuracy_margin: f64,
    /// Batch-norm recalibration batches per scored subnet.
    pub calib_batches: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Peak learning rate (cosine decay over all stages).
    pub lr: f64,
    /// Random subnets per step besides the largest and the smallest.
    pub random_subnets: usize,
    /// Weight of in-place distillation from the largest subnet.
    pub distill_weight: f64,
    /// Random-crop padding of the training images.
    pub pad: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for ShrinkConfig {
    fn default() -> Self {
        Self {
            stages: 3,
            images_per_stage: 110_000,
            shrink: true,
            shrink_depth: false,
            samples: 24,
            min_samples_per_choice: 3,
            latency_tolerance: 0.02,
            accuracy_margin: 0.5,
            calib_batches: 5,
            batch_size: 128,
            lr: 0.1,
            random_subnets: 1,
            distill_weight: 1.0,
            pad: 0,
            seed: 0,
        }
    }
}

impl ShrinkConfig {
    /// Checks the configuration.
    pub fn check(&self) -> Result<()> {
        let positive = |name, v: usize| {
            if v == 0 {
                Err(GoldenNasError::invalid(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("stages", self.stages)?;
        positive("images_per_stage", self.images_per_stage)?;
        positive("samples", self.samples)?;
        positive("min_samples_per_choice", self.min_samples_per_choice)?;
        positive("calib_batches", self.calib_batches)?;
        positive("batch_size", self.batch_size)?;
        if !(self.latency_tolerance >= 0.0 && self.latency_tolerance < 1.0) {
            return Err(GoldenNasError::invalid(
                "latency_tolerance",
                format!("{} is not in [0, 1)", self.latency_tolerance),
            ));
        }
        if !(self.accuracy_margin >= 0.0 && self.accuracy_margin.is_finite()) {
            return Err(GoldenNasError::invalid(
                "accuracy_margin",
                format!("{} is not a non-negative number", self.accuracy_margin),
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

/// One scored subnet: its genotype, validation top-1 (%) and predicted latency (ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredSubnet {
    /// The subnet.
    pub genotype: Genotype,
    /// Validation top-1, percent.
    pub top1: f64,
    /// Latency on the target by its performance model, ms.
    pub latency_ms: f64,
}

/// The score of one choice: the mean top-1 of the scored subnets that use it, and the mean
/// predicted latency of every scored subnet with the choice swapped in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChoiceScore {
    /// `dimension=label`.
    pub choice: String,
    /// Scored subnets using it.
    pub samples: usize,
    /// Their mean validation top-1, percent.
    pub top1: f64,
    /// Mean predicted latency of all scored subnets with this choice swapped in, ms.
    pub latency_ms: f64,
    /// Whether it was dropped.
    pub dropped: bool,
}

/// What one shrinking step decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrinkStep {
    /// Every scored choice of a dimension that still had several.
    pub scores: Vec<ChoiceScore>,
    /// `dimension=label` of the choices dropped.
    pub dropped: Vec<String>,
    /// Architectures left.
    pub cardinality: u128,
}

fn a_dominates_b(a: (f64, f64), b: (f64, f64), tolerance: f64, margin: f64) -> bool {
    let (acc_a, lat_a) = a;
    let (acc_b, lat_b) = b;
    acc_a >= acc_b
        && lat_a <= lat_b * (1.0 + tolerance)
        && (acc_a > acc_b + margin || lat_a < lat_b * (1.0 - tolerance))
}

/// Scores every choice on `scored` subnets of `set` and drops the dominated ones (see the
/// [module docs](self); `config` gives the minimum samples, latency tolerance and accuracy
/// margin); dimensions listed in `frozen` keep all their choices. Returns the shrunk set and
/// what was decided.
pub fn shrink_step(
    space: &dyn SearchSpace,
    set: &ChoiceSet,
    scored: &[ScoredSubnet],
    model: &PerfModel,
    config: &ShrinkConfig,
    frozen: &[usize],
) -> Result<(ChoiceSet, ShrinkStep)> {
    let (min_samples_per_choice, latency_tolerance, accuracy_margin) = (
        config.min_samples_per_choice,
        config.latency_tolerance,
        config.accuracy_margin,
    );
    let dims = space.dimensions();
    let mut allowed = set.allowed().to_vec();
    let mut scores = Vec::new();
    let mut dropped = Vec::new();
    let in_set: Vec<&ScoredSubnet> = scored
        .iter()
        .filter(|s| set.contains(&s.genotype) && s.top1.is_finite() && s.latency_ms.is_finite())
        .collect();
    for (d, keep) in allowed.iter_mut().enumerate() {
        if keep.len() < 2 || frozen.contains(&d) {
            continue;
        }
        let mut means: Vec<Option<(f64, f64, usize)>> = Vec::with_capacity(keep.len());
        for &c in keep.iter() {
            let rows: Vec<&&ScoredSubnet> = in_set
                .iter()
                .filter(|s| s.genotype.genes()[d] == c)
                .collect();
            let n = rows.len();
            if n == 0 || in_set.is_empty() {
                means.push(None);
                continue;
            }
            // Latency: every scored subnet with this one choice swapped in (the model costs
            // nothing), so that the other dimensions' draws do not blur the comparison.
            let mut latency = 0.0;
            for s in &in_set {
                let mut genes = s.genotype.genes().to_vec();
                genes[d] = c;
                latency += model.predict(&space.decode(&Genotype::new(genes))?);
            }
            means.push(Some((
                rows.iter().map(|s| s.top1).sum::<f64>() / n as f64,
                latency / in_set.len() as f64,
                n,
            )));
        }
        let beaten: Vec<bool> = means
            .iter()
            .map(|m| match m {
                Some((acc, lat, n)) if *n >= min_samples_per_choice => means
                    .iter()
                    .flatten()
                    .filter(|o| o.2 >= min_samples_per_choice)
                    .any(|o| {
                        a_dominates_b((o.0, o.1), (*acc, *lat), latency_tolerance, accuracy_margin)
                    }),
                _ => false,
            })
            .collect();
        let dim = &dims[d];
        for ((&c, m), &b) in keep.iter().zip(&means).zip(&beaten) {
            let name = format!("{}={}", dim.name(), dim.labels()[c]);
            if let Some((acc, lat, n)) = m {
                scores.push(ChoiceScore {
                    choice: name.clone(),
                    samples: *n,
                    top1: *acc,
                    latency_ms: *lat,
                    dropped: b,
                });
            }
            if b {
                dropped.push(name);
            }
        }
        let mut i = 0;
        keep.retain(|_| {
            let k = !beaten[i];
            i += 1;
            k
        });
    }
    let next = ChoiceSet::new(space, allowed)?;
    let cardinality = next.cardinality();
    Ok((
        next,
        ShrinkStep {
            scores,
            dropped,
            cardinality,
        },
    ))
}

/// One training stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Stage number (1-based).
    pub stage: usize,
    /// Labels of the choices trained on in this stage, per dimension.
    pub choices: Vec<Vec<String>>,
    /// Architectures trained on.
    pub cardinality: u128,
    /// Training images (each through every sandwich subnet).
    pub images: usize,
    /// Mean training loss of the largest subnet.
    pub loss_largest: f64,
    /// Seconds spent training.
    pub train_seconds: f64,
    /// Seconds spent scoring and shrinking after the stage (0 when it did not shrink).
    pub shrink_seconds: f64,
    /// The shrinking step after the stage, if any.
    pub shrink: Option<ShrinkStep>,
}

/// A supernet trained with (or, as a control, without) shrinking toward one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrinkOutcome {
    /// The target's name (`none` for the full-space control).
    pub target: String,
    /// Every stage.
    pub stages: Vec<StageRecord>,
    /// The space left after the last stage.
    pub final_set: ChoiceSet,
    /// Training plus shrinking seconds.
    pub wall_seconds: f64,
}

/// Trains `supernet` on `train` in stages, shrinking its space toward `model`'s target after
/// each stage but the last (validation top-1 on `val`). Starts from `set` (the full space,
/// or what an earlier run left). Without a model (or with `config.shrink` off) it trains the
/// same stages on `set` unchanged: the full-space control.
#[allow(clippy::too_many_arguments)]
pub fn train_and_shrink(
    supernet: &mut Supernet,
    set: ChoiceSet,
    model: Option<&PerfModel>,
    train: &Dataset,
    val: &Dataset,
    norm: &Normalization,
    config: &ShrinkConfig,
    mut log: impl FnMut(&str),
) -> Result<ShrinkOutcome> {
    config.check()?;
    let space: MbConvSpace = supernet.space().clone();
    if train.is_empty() || val.is_empty() {
        return Err(GoldenNasError::invalid(
            "data",
            "empty training or validation set",
        ));
    }
    let params = TrainParams {
        batch_size: config.batch_size,
        lr: config.lr,
        random_subnets: config.random_subnets,
        distill_weight: config.distill_weight,
        seed: config.seed,
        ..TrainParams::default()
    }
    .check()?;
    let augmentation = Augmentation {
        pad: config.pad,
        horizontal_flip: config.pad > 0,
    };
    let steps_per_stage = config.images_per_stage.div_ceil(config.batch_size) as u64;
    let total_steps = steps_per_stage * config.stages as u64;
    let mut rng = seeded_rng(config.seed);
    let frozen: Vec<usize> = if config.shrink_depth {
        Vec::new()
    } else {
        space
            .gene_roles()
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, MbConvGene::StageDepth { .. }))
            .map(|(i, _)| i)
            .collect()
    };
    let mut set = set;
    let mut stages = Vec::with_capacity(config.stages);
    let start = Instant::now();
    let mut step = 0u64;
    let mut order: Vec<usize> = Vec::new();
    let mut cursor = 0usize;
    for stage in 1..=config.stages {
        let t = Instant::now();
        let (mut loss_sum, mut steps, mut images) = (0.0, 0usize, 0usize);
        {
            let mut trainer = Trainer::new(supernet, params.clone(), norm.clone());
            while images < config.images_per_stage {
                if cursor >= order.len() {
                    order = (0..train.len()).collect();
                    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
                    cursor = 0;
                }
                let n = config
                    .batch_size
                    .min(order.len() - cursor)
                    .min(config.images_per_stage - images);
                let batch = train.batch(
                    &order[cursor..cursor + n],
                    norm,
                    &augmentation,
                    &mut rng,
                    trainer.supernet().device(),
                );
                cursor += n;
                let mut genotypes = vec![set.largest(), set.smallest()];
                for _ in 0..config.random_subnets {
                    genotypes.push(set.sample(&mut rng));
                }
                let nets = genotypes
                    .iter()
                    .map(|g| space.decode(g))
                    .collect::<dynas_space::Result<Vec<_>>>()?;
                let lr = cosine_lr(config.lr, step, 0, total_steps);
                let s = trainer.train_step(&batch, &nets, lr)?;
                step += 1;
                steps += 1;
                images += n;
                loss_sum += s.loss_largest;
            }
        }
        let train_seconds = t.elapsed().as_secs_f64();
        let choices = set.labels(&space);
        let cardinality = set.cardinality();
        let mut shrink = None;
        let t = Instant::now();
        if let Some(model) = model.filter(|_| config.shrink && stage < config.stages) {
            let scored = score_subnets(supernet, &set, model, train, val, norm, config, &mut rng)?;
            let (next, decided) = shrink_step(&space, &set, &scored, model, config, &frozen)?;
            set = next;
            shrink = Some(decided);
        }
        let shrink_seconds = if shrink.is_some() {
            t.elapsed().as_secs_f64()
        } else {
            0.0
        };
        let record = StageRecord {
            stage,
            choices,
            cardinality,
            images,
            loss_largest: loss_sum / steps.max(1) as f64,
            train_seconds,
            shrink_seconds,
            shrink,
        };
        log(&format!(
            "  stage {stage}/{}: {} images on {} architectures, loss(largest) {:.3}, {:.0} s{}",
            config.stages,
            record.images,
            record.cardinality,
            record.loss_largest,
            train_seconds,
            record.shrink.as_ref().map_or(String::new(), |s| format!(
                "; dropped [{}] in {shrink_seconds:.0} s",
                s.dropped.join(", ")
            ))
        ));
        stages.push(record);
    }
    Ok(ShrinkOutcome {
        target: model.map_or("none", PerfModel::target).to_string(),
        stages,
        final_set: set,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Samples `config.samples` distinct subnets of `set` (the largest and smallest among them)
/// and scores each: validation top-1 after recalibration, and predicted latency.
#[allow(clippy::too_many_arguments)]
fn score_subnets(
    supernet: &Supernet,
    set: &ChoiceSet,
    model: &PerfModel,
    train: &Dataset,
    val: &Dataset,
    norm: &Normalization,
    config: &ShrinkConfig,
    rng: &mut dynas_space::DynasRng,
) -> Result<Vec<ScoredSubnet>> {
    let space = supernet.space();
    let est = AccuracyEstimator::new(
        supernet,
        train,
        val,
        norm.clone(),
        config.calib_batches,
        256,
    )?;
    let mut genotypes = vec![set.largest(), set.smallest()];
    let mut draws = 0;
    while (genotypes.len() as u128) < set.cardinality().min(config.samples as u128)
        && draws < config.samples * 50
    {
        draws += 1;
        let g = set.sample(rng);
        if !genotypes.contains(&g) {
            genotypes.push(g);
        }
    }
    genotypes.truncate(config.samples.max(1));
    genotypes
        .into_iter()
        .map(|g| {
            let top1 = est.estimate(&g)? * 100.0;
            let latency_ms = model.predict(&space.decode(&g)?);
            Ok(ScoredSubnet {
                genotype: g,
                top1,
                latency_ms,
            })
        })
        .collect()
}
