//! GoldenNAS end to end: warm up the width-elastic supernet, sort its channels by importance,
//! then per target fit the performance model, train with progressive shrinking toward the
//! target, evolve the GoldenNets of the shrunk space, and (for the first target) make the
//! most accurate GoldenNet depth-adaptive (stored batch norm per depth, self-distillation);
//! writes `report.json` and a `Deployment` (method `goldennas`) of its depth configurations.
//! Optionally the same training without shrinking, evolved with the same budget, as the
//! control of the hypervolume comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dynas_core::{DeployedMetrics, Deployment, DeploymentPoint, Provenance};
use dynas_space::{MbConvGene, MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    AccuracyEstimator, Augmentation, Dataset, Normalization, Split, Supernet, SupernetConfig,
    TrainParams, Trainer,
};
use serde::{Deserialize, Serialize};

use crate::depth::{DepthAdaptiveNet, DepthConfig};
use crate::error::{GoldenNasError, Result};
use crate::evolve::{EvolveConfig, EvolveOutcome, evolve};
use crate::importance::{SortedGroup, sort_channels};
use crate::perf_model::{FitReport, PerfModel, PerfModelConfig, Target};
use crate::shrink::{ShrinkConfig, ShrinkOutcome, train_and_shrink};
use crate::space::{ChoiceSet, fashion_mnist_space};

/// Everything a GoldenNAS run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoldenNasConfig {
    /// Fashion-MNIST IDX files (plain or .gz).
    pub data_dir: PathBuf,
    /// Use the first N training images (all when `None`).
    pub train_limit: Option<usize>,
    /// Validation images split off the training images.
    pub val_images: usize,
    /// Use the first N test images (all when `None`).
    pub test_limit: Option<usize>,
    /// Output folder.
    pub out: PathBuf,
    /// The targets, searched one after the other (at least 1; the first gets the
    /// depth-adaptive GoldenNet and the deployment).
    pub targets: Vec<Target>,
    /// Images the largest subnet is trained on before the channels are sorted and the space
    /// made elastic.
    pub warmup_images: usize,
    /// Training and shrinking per target.
    pub shrink: ShrinkConfig,
    /// Also train without shrinking (same images) and evolve on it with the same budget.
    pub control: bool,
    /// The performance models.
    pub perf_model: PerfModelConfig,
    /// Evolution.
    pub evolve: EvolveConfig,
    /// The depth-adaptive GoldenNet.
    pub depth: DepthConfig,
    /// Seed of weights and data split.
    pub seed: u64,
}

impl Default for GoldenNasConfig {
    fn default() -> Self {
        Self {
            data_dir: "/usr/share/datasets/fashion-mnist".into(),
            train_limit: None,
            val_images: 5000,
            test_limit: None,
            out: "runs/goldennas".into(),
            targets: vec![
                Target::Host {
                    warmup: 5,
                    repeats: 30,
                },
                Target::JetsonXavierLut {
                    data_dir: "crates/dynas-data/data".into(),
                },
            ],
            warmup_images: 50_000,
            shrink: ShrinkConfig::default(),
            control: true,
            perf_model: PerfModelConfig::default(),
            evolve: EvolveConfig::default(),
            depth: DepthConfig::default(),
            seed: 0,
        }
    }
}

/// A checked GoldenNAS run.
#[derive(Clone, Debug)]
pub struct GoldenNas {
    config: GoldenNasConfig,
}

/// Test top-1 of a trained supernet's extremes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupernetSummary {
    /// `shrunk-<target>` or `full-space`.
    pub name: String,
    /// Test top-1 of the space's largest subnet, percent (batch norm recalibrated).
    pub largest_test_top1: f64,
    /// Test top-1 of the space's smallest subnet, percent.
    pub smallest_test_top1: f64,
    /// MACs of the largest subnet.
    pub largest_macs: u64,
    /// MACs of the smallest subnet.
    pub smallest_macs: u64,
}

/// What GoldenNAS found for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// The target.
    pub target: Target,
    /// The performance model's coefficients for `[1, MMACs, activation MB, weight MB,
    /// kernels]`.
    pub perf_model_coefficients: Vec<f64>,
    /// Its accuracy on held-out networks.
    pub perf_model_fit: FitReport,
    /// Training with shrinking toward the target.
    pub training: ShrinkOutcome,
    /// The shrunk supernet's extremes.
    pub supernet: SupernetSummary,
    /// The GoldenNets (validation top-1 against predicted latency).
    pub goldennets: EvolveOutcome,
    /// The same evolution on the full-space (no shrinking) supernet, with the control on.
    pub control_front: Option<EvolveOutcome>,
    /// `(shrunk, control)` hypervolume of the two fronts against one reference point:
    /// `(top1, latency)` = (lowest top-1 of both fronts - 1, highest latency of both x 1.05).
    pub hypervolume: Option<(f64, f64)>,
    /// The reference point of `hypervolume`.
    pub hypervolume_reference: Option<(f64, f64)>,
}

/// Adaptive batch norm and self-distillation, per depth configuration (test top-1, %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthAblation {
    /// The GoldenNet made depth-adaptive (`name=value` form): the most accurate of the first
    /// target's front, at the deepest stage depths of its space.
    pub goldennet: String,
    /// `name=value` form of each configuration, deepest first.
    pub configurations: Vec<String>,
    /// MACs of each.
    pub macs: Vec<u64>,
    /// Predicted latency on the first target, ms.
    pub latency_ms: Vec<f64>,
    /// One set of statistics (the full depth's) for every configuration.
    pub shared_bn: Vec<f64>,
    /// Statistics stored per configuration and switched.
    pub stored_bn: Vec<f64>,
    /// Stored statistics after self-distillation fine-tuning.
    pub stored_bn_self_distilled: Vec<f64>,
    /// Seconds of fine-tuning.
    pub finetune_seconds: f64,
    /// Milliseconds of one switch (writing stored statistics back), median of the switches
    /// made while measuring.
    pub switch_ms: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenNasReport {
    /// The configuration.
    pub config: GoldenNasConfig,
    /// Training / validation / test images.
    pub images: (usize, usize, usize),
    /// libtorch threads.
    pub threads: i32,
    /// Seconds of the warm-up of the largest subnet.
    pub warmup_seconds: f64,
    /// The channel groups sorted by importance after the warm-up.
    pub sorted_groups: Vec<SortedGroup>,
    /// The full-space control's extremes, with the control on.
    pub control_supernet: Option<SupernetSummary>,
    /// The control's training, with the control on.
    pub control_training: Option<ShrinkOutcome>,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// The depth-adaptive GoldenNet of the first target.
    pub depth: DepthAblation,
    /// Where the deployment was written.
    pub deployment: PathBuf,
    /// Seconds of the whole run.
    pub wall_seconds: f64,
}

impl GoldenNas {
    /// A checked run.
    pub fn new(config: GoldenNasConfig) -> Result<Self> {
        if config.targets.is_empty() {
            return Err(GoldenNasError::invalid("targets", "at least one target"));
        }
        if config.val_images == 0 {
            return Err(GoldenNasError::invalid("val_images", "must be at least 1"));
        }
        config.shrink.check()?;
        config.perf_model.check()?;
        config.evolve.check()?;
        config.depth.check()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &GoldenNasConfig {
        &self.config
    }

    /// Loads Fashion-MNIST from `data_dir` and runs.
    pub fn run(&self, log: impl FnMut(&str)) -> Result<GoldenNasReport> {
        let c = &self.config;
        let mut full = Dataset::mnist_dir(&c.data_dir, Split::Train)?;
        if let Some(n) = c.train_limit {
            full = full.subset(&(0..n.min(full.len())).collect::<Vec<_>>());
        }
        let mut test = Dataset::mnist_dir(&c.data_dir, Split::Test)?;
        if let Some(n) = c.test_limit {
            test = test.subset(&(0..n.min(test.len())).collect::<Vec<_>>());
        }
        let (train, val) = full.split_validation(c.val_images, &mut seeded_rng(c.seed))?;
        self.run_on(&train, &val, &test, log)
    }

    /// Runs on the given splits (28x28 one-channel images, 10 classes).
    pub fn run_on(
        &self,
        train: &Dataset,
        val: &Dataset,
        test: &Dataset,
        mut log: impl FnMut(&str),
    ) -> Result<GoldenNasReport> {
        let c = &self.config;
        let start = Instant::now();
        std::fs::create_dir_all(&c.out).map_err(|e| io(&c.out, e))?;
        let norm = train.channel_stats();
        let space = fashion_mnist_space();
        let device = tch::Device::cuda_if_available();
        tch::manual_seed(c.seed as i64);
        let mut supernet = Supernet::new(space.clone(), SupernetConfig::default(), device)?;
        log(&format!(
            "goldennas: {} train / {} val / {} test images, space `{}` ({} genes), {} torch threads",
            train.len(),
            val.len(),
            test.len(),
            space.name(),
            space.dimensions().len(),
            tch::get_num_threads()
        ));

        // 1. Warm-up of the largest subnet, then importance sorting.
        let t = Instant::now();
        warm_up(&mut supernet, train, &norm, c)?;
        let warmup_seconds = t.elapsed().as_secs_f64();
        let sorted_groups = sort_channels(&supernet)?;
        log(&format!(
            "warm-up: {} images on the largest subnet in {warmup_seconds:.0} s; {} channel groups sorted by importance",
            c.warmup_images,
            sorted_groups.len()
        ));
        let warm = c.out.join("warmup.safetensors");
        supernet.save(&warm)?;

        // 2. The full-space control.
        let mut control = None;
        if c.control {
            log("control: training on the full space (no shrinking)");
            let outcome = train_and_shrink(
                &mut supernet,
                ChoiceSet::full(&space),
                None,
                train,
                val,
                &norm,
                &c.shrink,
                &mut log,
            )?;
            let summary = summarise(&supernet, "full-space", train, test, &norm, c)?;
            log(&format!(
                "control: largest {:.2} % / smallest {:.2} % test top-1",
                summary.largest_test_top1, summary.smallest_test_top1
            ));
            let path = c.out.join("supernet-full-space.safetensors");
            supernet.save(&path)?;
            control = Some((outcome, summary, path));
        }

        // 3. Per target: performance model, shrinking training, evolution.
        let mut targets = Vec::new();
        let mut first: Option<(PathBuf, PerfModel, EvolveOutcome)> = None;
        for target in &c.targets {
            let name = target.name();
            let model = PerfModel::fit(target, &space, &c.perf_model)?;
            let fit = model.report().clone();
            log(&format!(
                "target {name}: performance model fitted on {} networks, held-out MAPE {:.1} % (max {:.1} %), Spearman {}",
                fit.fit_networks,
                fit.held_out_mape_pct,
                fit.held_out_max_ape_pct,
                fit.held_out_spearman
                    .map_or("n/a".into(), |s| format!("{s:.3}"))
            ));
            supernet.load(&warm)?;
            let training = train_and_shrink(
                &mut supernet,
                ChoiceSet::full(&space),
                Some(&model),
                train,
                val,
                &norm,
                &c.shrink,
                &mut log,
            )?;
            let summary = summarise(&supernet, &format!("shrunk-{name}"), train, test, &norm, c)?;
            let path = c.out.join(format!("supernet-{name}.safetensors"));
            supernet.save(&path)?;
            let (back, goldennets) = evolve(
                supernet,
                &training.final_set,
                &model,
                train,
                val,
                &norm,
                &c.evolve,
            )?;
            supernet = back;
            log(&format!(
                "target {name}: {} GoldenNets from {} evaluations in {:.0} s",
                goldennets.front.len(),
                goldennets.evaluations,
                goldennets.seconds
            ));
            let (mut control_front, mut hv, mut reference) = (None, None, None);
            if let Some((_, _, control_path)) = &control {
                supernet.load(control_path)?;
                let (back, front) = evolve(
                    supernet,
                    &ChoiceSet::full(&space),
                    &model,
                    train,
                    val,
                    &norm,
                    &c.evolve,
                )?;
                supernet = back;
                let all = goldennets.front.iter().chain(&front.front);
                let lo = all.clone().map(|g| g.top1).fold(f64::INFINITY, f64::min) - 1.0;
                let hi = all.map(|g| g.latency_ms).fold(0.0, f64::max) * 1.05;
                let pair = (
                    goldennets.hypervolume((lo, hi))?,
                    front.hypervolume((lo, hi))?,
                );
                log(&format!(
                    "target {name}: hypervolume shrunk {:.3} vs full space {:.3} (reference top-1 {lo:.2} %, {hi:.4} ms)",
                    pair.0, pair.1
                ));
                hv = Some(pair);
                reference = Some((lo, hi));
                control_front = Some(front);
            }
            if first.is_none() {
                first = Some((path, model.clone(), goldennets.clone()));
            }
            targets.push(TargetReport {
                target: target.clone(),
                perf_model_coefficients: model.coefficients().to_vec(),
                perf_model_fit: fit,
                training,
                supernet: summary,
                goldennets,
                control_front,
                hypervolume: hv,
                hypervolume_reference: reference,
            });
        }

        // 4. The depth-adaptive GoldenNet of the first target.
        let (path, model, goldennets) = first.expect("at least one target");
        supernet.load(&path)?;
        let golden = goldennets
            .front
            .iter()
            .max_by(|a, b| a.top1.total_cmp(&b.top1))
            .ok_or_else(|| GoldenNasError::invalid("front", "the evolution found no GoldenNet"))?;
        // The depth-adaptive net is the most accurate GoldenNet at the deepest depths its
        // target's space kept: its shallower configurations are the run-time knob.
        let final_set = &targets[0].training.final_set;
        let mut genes = golden.genotype.genes().to_vec();
        for (d, role) in space.gene_roles().iter().enumerate() {
            if matches!(role, MbConvGene::StageDepth { .. }) {
                genes[d] = *final_set.allowed()[d].last().expect("non-empty choices");
            }
        }
        let deepest = dynas_space::Genotype::new(genes);
        let (depth, deployment) = self.depth_stage(
            &mut supernet,
            &space,
            &deepest,
            &model,
            train,
            test,
            &norm,
            &mut log,
        )?;
        let deployment_path = c.out.join("deployment.json");
        deployment.write_json(&deployment_path)?;
        let (control_training, control_supernet) = match control {
            Some((t, s, _)) => (Some(t), Some(s)),
            None => (None, None),
        };
        let report = GoldenNasReport {
            config: c.clone(),
            images: (train.len(), val.len(), test.len()),
            threads: tch::get_num_threads(),
            warmup_seconds,
            sorted_groups,
            control_supernet,
            control_training,
            targets,
            depth,
            deployment: deployment_path,
            wall_seconds: start.elapsed().as_secs_f64(),
        };
        let path = c.out.join("report.json");
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| GoldenNasError::invalid("report", e.to_string()))?;
        dynas_core::write_atomically(&path, text.as_bytes())?;
        log(&format!(
            "wrote {} and {} in {:.0} s",
            path.display(),
            report.deployment.display(),
            report.wall_seconds
        ));
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn depth_stage(
        &self,
        supernet: &mut Supernet,
        space: &MbConvSpace,
        golden: &dynas_space::Genotype,
        model: &PerfModel,
        train: &Dataset,
        test: &Dataset,
        norm: &Normalization,
        log: &mut impl FnMut(&str),
    ) -> Result<(DepthAblation, Deployment)> {
        let c = &self.config;
        let mut net = DepthAdaptiveNet::new(space, golden)?;
        let configs = net.configurations().to_vec();
        let shared = net.top1_shared_bn(supernet, train, test, norm, c.depth.calib_batches)?;
        net.calibrate(supernet, train, norm, c.depth.calib_batches)?;
        let stored = net.top1_switched(supernet, test, norm)?;
        let finetune_seconds = net.self_distill(supernet, train, norm, &c.depth)?;
        net.calibrate(supernet, train, norm, c.depth.calib_batches)?;
        let distilled = net.top1_switched(supernet, test, norm)?;
        let mut switches = Vec::new();
        for i in (0..configs.len()).rev() {
            let t = Instant::now();
            net.switch(supernet, i)?;
            switches.push(t.elapsed().as_secs_f64() * 1e3);
        }
        switches.sort_by(f64::total_cmp);
        net.store().save(c.out.join("depth_bn_store.safetensors"))?;
        supernet.save(c.out.join("supernet-golden.safetensors"))?;
        let mut macs = Vec::new();
        let mut latency = Vec::new();
        let mut descriptions = Vec::new();
        let mut points = Vec::new();
        for (i, g) in configs.iter().enumerate() {
            let n = space.decode(g)?;
            macs.push(n.macs());
            latency.push(model.predict(&n));
            descriptions.push(space.describe(g)?);
            log(&format!(
                "  depth configuration {i}: {:>8} MACs, {:.4} ms | test top-1 shared BN {:.2} %, stored BN {:.2} %, + self-distillation {:.2} %",
                n.macs(),
                latency[i],
                shared[i],
                stored[i],
                distilled[i]
            ));
            points.push(DeploymentPoint {
                genotype: g.clone(),
                exits: Vec::new(),
                point: Default::default(),
                metrics: DeployedMetrics {
                    top1: distilled[i],
                    latency_ms: latency[i],
                    energy_mj: None,
                    accuracy_source: Provenance::measured(format!(
                        "Fashion-MNIST test split, {} images, stored batch norm of this depth",
                        test.len()
                    )),
                    cost_source: Provenance::modelled(format!(
                        "GoldenNAS performance model of `{}` fitted on {} measured networks ({})",
                        model.target(),
                        model.report().fit_networks,
                        model.report().measured_on
                    )),
                },
            });
        }
        let deployment = Deployment::new("goldennas", space, None, points)?;
        Ok((
            DepthAblation {
                goldennet: space.describe(golden)?,
                configurations: descriptions,
                macs,
                latency_ms: latency,
                shared_bn: shared,
                stored_bn: stored,
                stored_bn_self_distilled: distilled,
                finetune_seconds,
                switch_ms: switches[switches.len() / 2],
            },
            deployment,
        ))
    }
}

fn io(path: &Path, e: std::io::Error) -> GoldenNasError {
    GoldenNasError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Trains the largest subnet alone on `config.warmup_images` images.
fn warm_up(
    supernet: &mut Supernet,
    train: &Dataset,
    norm: &Normalization,
    c: &GoldenNasConfig,
) -> Result<()> {
    if c.warmup_images == 0 {
        return Ok(());
    }
    let space = supernet.space().clone();
    let largest = space.decode(&space.largest())?;
    let params = TrainParams {
        batch_size: c.shrink.batch_size,
        lr: c.shrink.lr,
        seed: c.seed,
        ..TrainParams::default()
    }
    .check()?;
    let mut trainer = Trainer::new(supernet, params, norm.clone());
    let mut rng = seeded_rng(c.seed);
    let aug = Augmentation {
        pad: c.shrink.pad,
        horizontal_flip: c.shrink.pad > 0,
    };
    let (mut images, mut cursor) = (0usize, 0usize);
    let mut order: Vec<usize> = Vec::new();
    while images < c.warmup_images {
        if cursor >= order.len() {
            order = (0..train.len()).collect();
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
            cursor = 0;
        }
        let n = c
            .shrink
            .batch_size
            .min(order.len() - cursor)
            .min(c.warmup_images - images);
        let batch = train.batch(
            &order[cursor..cursor + n],
            norm,
            &aug,
            &mut rng,
            trainer.supernet().device(),
        );
        cursor += n;
        // A constant rate: the elastic training's own cosine schedule follows.
        trainer.train_step(&batch, std::slice::from_ref(&largest), c.shrink.lr)?;
        images += n;
    }
    Ok(())
}

/// Test top-1 of the space's largest and smallest subnets (batch norm recalibrated).
fn summarise(
    supernet: &Supernet,
    name: &str,
    train: &Dataset,
    test: &Dataset,
    norm: &Normalization,
    c: &GoldenNasConfig,
) -> Result<SupernetSummary> {
    let space = supernet.space();
    let est = AccuracyEstimator::new(
        supernet,
        train,
        test,
        norm.clone(),
        c.shrink.calib_batches,
        256,
    )?;
    let (l, s) = (space.largest(), space.smallest());
    Ok(SupernetSummary {
        name: name.to_string(),
        largest_test_top1: est.estimate(&l)? * 100.0,
        smallest_test_top1: est.estimate(&s)? * 100.0,
        largest_macs: space.decode(&l)?.macs(),
        smallest_macs: space.decode(&s)?.macs(),
    })
}
