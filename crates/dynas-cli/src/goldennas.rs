//! `dynas goldennas`: GoldenNAS end to end on Fashion-MNIST (the `dynas-goldennas` crate):
//! the width-elastic supernet warmed up and its channels sorted by importance, per target a
//! performance model fitted on a few measurements (held-out error reported), training with
//! progressive shrinking toward the target, NSGA-II GoldenNets, optionally the same training
//! without shrinking as the control, and the depth-adaptive GoldenNet of the first target
//! (stored batch norm per depth, self-distillation). Writes `report.json`, `deployment.json`
//! (method `goldennas`), the supernets and the per-depth batch-norm store.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use dynas::supernet::tch;
use dynas_goldennas::{
    DepthConfig, EvolveConfig, GoldenNas, GoldenNasConfig, PerfModelConfig, ShrinkConfig, Target,
};

/// The targets, as `--targets` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetName {
    /// This host's CPU through libtorch (each network timed).
    Host,
    /// The Jetson AGX Xavier per-layer lookup table at the highest clocks.
    Jetson,
}

/// Arguments of `dynas goldennas`.
#[derive(Debug, Args)]
pub struct GoldenNasArgs {
    /// Fashion-MNIST in IDX format (Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// The measurements folder (Jetson lookup table); by default the copy in `dynas-data`.
    #[arg(long, default_value = dynas_data::DIR)]
    shared_data: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Targets, searched in this order; the first gets the depth-adaptive GoldenNet.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [TargetName::Host, TargetName::Jetson])]
    targets: Vec<TargetName>,
    /// Use the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Validation images held out of the training images (seed `--seed`).
    #[arg(long, default_value_t = 5000)]
    validation: usize,
    /// Use the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Images the largest subnet trains on before the channels are sorted.
    #[arg(long, default_value_t = GoldenNasConfig::default().warmup_images)]
    warmup_images: usize,
    /// Training stages (the space shrinks after each but the last).
    #[arg(long, default_value_t = ShrinkConfig::default().stages)]
    stages: usize,
    /// Training images per stage.
    #[arg(long, default_value_t = ShrinkConfig::default().images_per_stage)]
    images_per_stage: usize,
    /// Subnets scored after each stage.
    #[arg(long, default_value_t = ShrinkConfig::default().samples)]
    shrink_samples: usize,
    /// Random subnets per training step besides the largest and the smallest.
    #[arg(long, default_value_t = ShrinkConfig::default().random_subnets)]
    random_subnets: usize,
    /// Batch-norm recalibration batches (of 256) per scored subnet.
    #[arg(long, default_value_t = ShrinkConfig::default().calib_batches)]
    calib_batches: usize,
    /// Networks measured to fit each performance model.
    #[arg(long, default_value_t = PerfModelConfig::default().fit_networks)]
    fit_networks: usize,
    /// Further networks measured to check it.
    #[arg(long, default_value_t = PerfModelConfig::default().held_out_networks)]
    held_out_networks: usize,
    /// Host timing: runs per network.
    #[arg(long, default_value_t = 30)]
    host_repeats: usize,
    /// NSGA-II population.
    #[arg(long, default_value_t = EvolveConfig::default().population)]
    population: usize,
    /// Distinct architectures each evolution evaluates.
    #[arg(long, default_value_t = EvolveConfig::default().evaluations)]
    evaluations: usize,
    /// Self-distillation fine-tuning images of the depth-adaptive GoldenNet.
    #[arg(long, default_value_t = DepthConfig::default().finetune_images)]
    finetune_images: usize,
    /// Skip the full-space control (no hypervolume comparison).
    #[arg(long)]
    no_control: bool,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `dynas goldennas`.
pub fn run(args: GoldenNasArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        if t < 1 {
            bail!("--threads must be at least 1, got {t}");
        }
        tch::set_num_threads(t);
    }
    if args.targets.is_empty() {
        bail!("--targets needs at least one of host, jetson");
    }
    let targets = args
        .targets
        .iter()
        .map(|t| match t {
            TargetName::Host => Target::Host {
                warmup: 5,
                repeats: args.host_repeats,
            },
            TargetName::Jetson => Target::JetsonXavierLut {
                data_dir: args.shared_data.clone(),
            },
        })
        .collect();
    let config = GoldenNasConfig {
        data_dir: args.data.clone(),
        train_limit: args.train_limit,
        val_images: args.validation,
        test_limit: args.test_limit,
        out: args.out.clone(),
        targets,
        warmup_images: args.warmup_images,
        shrink: ShrinkConfig {
            stages: args.stages,
            images_per_stage: args.images_per_stage,
            samples: args.shrink_samples,
            random_subnets: args.random_subnets,
            calib_batches: args.calib_batches,
            seed: args.seed,
            ..ShrinkConfig::default()
        },
        control: !args.no_control,
        perf_model: PerfModelConfig {
            fit_networks: args.fit_networks,
            held_out_networks: args.held_out_networks,
            seed: args.seed,
        },
        evolve: EvolveConfig {
            population: args.population,
            evaluations: args.evaluations,
            calib_batches: args.calib_batches,
            seed: args.seed,
        },
        depth: DepthConfig {
            finetune_images: args.finetune_images,
            seed: args.seed,
            ..DepthConfig::default()
        },
        seed: args.seed,
    };
    let run = GoldenNas::new(config).context("goldennas configuration")?;
    let report = run
        .run(|line| println!("{line}"))
        .with_context(|| format!("goldennas run into {}", args.out.display()))?;
    let d = &report.depth;
    println!(
        "depth-adaptive GoldenNet ({} configurations), test top-1 %:",
        d.configurations.len()
    );
    println!("  config | MACs | shared BN | stored BN | stored BN + self-distillation");
    for i in 0..d.configurations.len() {
        println!(
            "  {i} | {} | {:.2} | {:.2} | {:.2}",
            d.macs[i], d.shared_bn[i], d.stored_bn[i], d.stored_bn_self_distilled[i]
        );
    }
    Ok(())
}
