//! `dynas hadas`: the HADAS bi-level search on a trained Fashion-MNIST supernet of the
//! OFA-MNIST space, priced on the Jetson AGX Xavier (measured per-layer lookup table scaled
//! by DVFS laws fitted on measured clock sweeps). Writes the deployment, the dynamic front as
//! JSON and CSV, a plot of it, and the test-split report against the conventional dynamic
//! network.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use dynas::cost::DvfsLutModel;
use dynas::hadas::{
    HadasParams, OuterStrategy, RunOptions, SupernetData, SupernetEvalParams, SupernetWorker,
    run_hadas,
};
use dynas::search::{FrontPoint, Objective, ParetoFront, ProgressObserver, Provenance};
use dynas::space::MbConvSpace;
use dynas::supernet::{Supernet, SupernetConfig};

use crate::paths::{CommandFiles, write_output};

/// Arguments of `dynas hadas`.
#[derive(Debug, Args)]
pub struct HadasArgs {
    /// The trained supernet (safetensors written by the `supernet_fashion_mnist` example).
    #[arg(long)]
    supernet: PathBuf,
    /// Fashion-MNIST in IDX format (Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// The measurements folder (lookup table, operating points, clock sweeps); by default the
    /// copy shipped in the `dynas-data` crate.
    #[arg(long, default_value = dynas_data::DIR)]
    shared_data: PathBuf,
    /// Output folder: deployment.json, front.json, front.csv, front.svg, report.json.
    #[arg(long)]
    out: PathBuf,
    /// Validation images held out of the training split (seed 0, as the supernet example
    /// does): accuracies and exit thresholds come from them, never from the test split.
    #[arg(long, default_value_t = 5000)]
    validation: usize,
    /// The outer search over backbones: `surrogate` (few backbones, each with its inner
    /// search) or `nsga2` (HADAS's original: inner search for the top fraction per generation).
    #[arg(long, value_enum, default_value_t = Outer::Surrogate)]
    outer: Outer,
    /// Distinct backbones the surrogate outer search evaluates.
    #[arg(long, default_value_t = HadasParams::default().outer_budget)]
    outer_budget: usize,
    /// Outer NSGA-II population.
    #[arg(long, default_value_t = HadasParams::default().outer_population)]
    outer_population: usize,
    /// Outer generations after the initial population.
    #[arg(long, default_value_t = HadasParams::default().outer_generations)]
    outer_generations: usize,
    /// Fraction of each outer population whose exits and clocks are optimised.
    #[arg(long, default_value_t = HadasParams::default().top_fraction)]
    top_fraction: f64,
    /// Inner NSGA-II population.
    #[arg(long, default_value_t = HadasParams::default().inner_population)]
    inner_population: usize,
    /// Inner generations.
    #[arg(long, default_value_t = HadasParams::default().inner_generations)]
    inner_generations: usize,
    /// Accuracy budget of the exit thresholds: at most this drop (fraction) below the final
    /// classifier, for HADAS points and the baseline alike.
    #[arg(long, default_value_t = HadasParams::default().max_accuracy_drop)]
    max_drop: f64,
    /// Error tolerance (points) when dynamic results are written back to the outer search.
    #[arg(long, default_value_t = HadasParams::default().error_tolerance)]
    tolerance: f64,
    /// Training images the exit heads learn from.
    #[arg(long, default_value_t = SupernetEvalParams::default().head_train_images)]
    head_train_images: usize,
    /// Epochs of exit-head training per backbone.
    #[arg(long, default_value_t = SupernetEvalParams::default().head_epochs)]
    head_epochs: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Do not evaluate the largest backbone first (by default the outer search starts from
    /// it, so that a point at the baseline's accuracy is always on offer).
    #[arg(long)]
    no_largest_first: bool,
    /// The comparison's latency bound: the reported point may be at most this many times
    /// slower than the baseline (1: no slower; `inf`: unbounded).
    #[arg(long, default_value_t = 1.0)]
    max_latency_ratio: f64,
    /// Checkpoint the outer search here after every generation (resumed when it exists and
    /// matches: the same supernet, data, measurements and settings, by content; a larger
    /// budget extends the saved search).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Start a new search over an existing `--checkpoint` instead of resuming it.
    #[arg(long, requires = "checkpoint")]
    overwrite_checkpoint: bool,
    /// libtorch threads.
    #[arg(long)]
    threads: Option<i32>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// `--outer` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Outer {
    /// Surrogate-assisted search over backbones scored by their best dynamic configuration.
    Surrogate,
    /// NSGA-II over static backbones with the inner search written back (HADAS's scheme).
    Nsga2,
}

/// What `dynas hadas` writes in `--out`, in the order written: the deployment last, so that a
/// deployment on disk means every other output was written too.
const OUTPUT_NAMES: [&str; 7] = [
    "report.json",
    "comparison.csv",
    "comparison.svg",
    "front.json",
    "front.csv",
    "front.svg",
    "deployment.json",
];

/// The measurement files `--shared-data` provides ([`DvfsLutModel::jetson_agx_xavier`]).
const SHARED_DATA_FILES: [&str; 4] = [
    "dvfs/jetson_tx2_gpu_sweep.csv",
    "dvfs/jetson_tx2_vgg19_gpu_dvfs_power.csv",
    "dvfs/jetson_operating_points.json",
    "lut/ofa-mnist/jetson_agx_xavier.json",
];

/// What a checkpoint of `dynas hadas` belongs to, by content: a digest of the supernet file,
/// of the data files and of the measurement files, and every setting that changes what the
/// search sees (the validation split, exit-head training, the seed); `key=value` parts, so a
/// mismatched resume names the part that differs.
fn checkpoint_fingerprint(args: &HadasArgs) -> anyhow::Result<String> {
    let inputs = files(args);
    let digest = |flag: &str| -> anyhow::Result<String> {
        let mut digests = Vec::new();
        for (what, path) in inputs.inputs().iter().filter(|(w, _)| w == flag) {
            if path.is_file() {
                let bytes =
                    std::fs::read(path).with_context(|| format!("{what} `{}`", path.display()))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                digests.push(format!(
                    "{}:{}",
                    name.unwrap_or_default(),
                    dynas::search::content_fingerprint(&bytes)
                ));
            }
        }
        Ok(dynas::search::content_fingerprint(
            digests.join(",").as_bytes(),
        ))
    };
    Ok(format!(
        "supernet={}; data={}; shared-data={}; validation={}; head-train-images={}; \
         head-epochs={}; seed={}",
        digest("--supernet")?,
        digest("--data")?,
        digest("--shared-data")?,
        args.validation,
        args.head_train_images,
        args.head_epochs,
        args.seed
    ))
}

/// Every file `dynas hadas` reads (the supernet, the data set, the measurements) and writes
/// (the outputs in `--out`, the checkpoint).
fn files(args: &HadasArgs) -> CommandFiles {
    let mut files = CommandFiles::new();
    files.input("--supernet", &args.supernet);
    crate::fmnist::declare_inputs(&mut files, &args.data);
    for name in SHARED_DATA_FILES {
        files.input("--shared-data", args.shared_data.join(name));
    }
    for name in OUTPUT_NAMES {
        files.output(format!("--out ({name})"), args.out.join(name));
    }
    files.output(
        "--out (bn_store.safetensors)",
        dynas::supernet::bundle::bn_store_path(&args.out),
    );
    if let Some(c) = &args.checkpoint {
        files.output("--checkpoint", c);
    }
    files
}

/// A parameter error with the flag that sets it.
fn with_flag(e: dynas::supernet::SupernetError) -> anyhow::Error {
    let flag = match &e {
        dynas::supernet::SupernetError::InvalidParameter { name, .. } => match *name {
            "max_accuracy_drop" => "--max-drop".to_string(),
            "error_tolerance" => "--tolerance".to_string(),
            "start_from_largest" => "--no-largest-first".to_string(),
            // Derived from other flags.
            "nsga2" => "--outer-population / --inner-population".to_string(),
            "surrogate" => "--outer-budget".to_string(),
            other => format!("--{}", other.replace('_', "-")),
        },
        _ => return e.into(),
    };
    anyhow::Error::new(e).context(format!("{flag} is out of range"))
}

/// The deployed points on the test split as a front (test top-1 up, energy down), and the
/// baseline and the static largest network as the reference drawn beside them.
fn comparison_fronts(r: &dynas::hadas::HadasReport) -> (ParetoFront, ParetoFront) {
    let objectives = vec![
        Objective::minimize("energy_mj"),
        Objective::maximize("test_top1"),
    ];
    let point = |t: &dynas::hadas::TestedConfiguration| FrontPoint {
        genotype: t.genotype.clone(),
        label: Some(format!(
            "{} ({} exits, {})",
            t.label,
            t.exits.len(),
            t.point
        )),
        genes: Vec::new(),
        values: vec![t.energy_mj, t.test_top1],
    };
    let reference = vec![point(&r.baseline), point(&r.static_largest)];
    (
        ParetoFront {
            objectives: objectives.clone(),
            points: r.points.iter().map(point).collect(),
        },
        ParetoFront {
            objectives,
            points: reference,
        },
    )
}

/// Runs `dynas hadas`.
pub fn run(args: HadasArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out `{}` cannot be created", args.out.display()))?;
    let outputs: Vec<PathBuf> = OUTPUT_NAMES.iter().map(|n| args.out.join(n)).collect();
    files(&args).check()?;
    if !args.supernet.is_file() {
        bail!("--supernet `{}` is not a file", args.supernet.display());
    }
    if let Some(t) = args.threads {
        if t < 1 {
            bail!("--threads must be at least 1, got {t}");
        }
        dynas::supernet::tch::set_num_threads(t);
    }
    let params = HadasParams {
        outer: match args.outer {
            Outer::Surrogate => OuterStrategy::Surrogate,
            Outer::Nsga2 => OuterStrategy::Nsga2,
        },
        outer_budget: args.outer_budget,
        outer_population: args.outer_population,
        outer_generations: args.outer_generations,
        top_fraction: args.top_fraction,
        inner_population: args.inner_population,
        inner_generations: args.inner_generations,
        max_accuracy_drop: args.max_drop,
        error_tolerance: args.tolerance,
        seed: args.seed,
        start_from_largest: !args.no_largest_first,
        max_latency_ratio: args.max_latency_ratio,
    }
    .check()
    .map_err(with_flag)?;
    let eval = SupernetEvalParams {
        head_train_images: args.head_train_images,
        head_epochs: args.head_epochs,
        seed: args.seed,
        ..SupernetEvalParams::default()
    }
    .check(10)?;

    let cost = DvfsLutModel::jetson_agx_xavier(&args.shared_data).with_context(|| {
        format!(
            "cost model from --shared-data `{}`",
            args.shared_data.display()
        )
    })?;
    let device = cost.device().clone();

    let space = MbConvSpace::ofa_mnist();
    let input = crate::fmnist::supernet_input(&space)?;
    let (train, validation, test) = crate::fmnist::splits(&args.data, args.validation, &input)?;
    crate::fmnist::check_split(&args.supernet, args.validation)?;
    let norm = train.channel_stats();
    let weights = args.supernet.clone();
    let for_worker = space.clone();
    let worker = SupernetWorker::spawn(
        Box::new(move || {
            let mut s = Supernet::new(
                for_worker,
                SupernetConfig::default(),
                dynas::supernet::tch::Device::Cpu,
            )?;
            s.load(&weights)?;
            Ok(s)
        }),
        SupernetData {
            train,
            validation,
            test: Some(test),
            norm,
        },
        eval,
        checkpoint_fingerprint(&args)?,
    )?;

    let mut options = RunOptions {
        checkpoint: args.checkpoint.clone(),
        overwrite_checkpoint: args.overwrite_checkpoint,
        mismatch_hint: Some("pass --overwrite-checkpoint".into()),
        ..RunOptions::default()
    };
    if !args.no_progress {
        let total = match args.outer {
            Outer::Surrogate => args.outer_budget,
            Outer::Nsga2 => args.outer_population * (args.outer_generations + 1),
        };
        options
            .observers
            .push(Box::new(ProgressObserver::new(total)));
    }
    let started = std::time::Instant::now();
    let outcome = run_hadas(
        &worker,
        &space,
        cost,
        device,
        Provenance::modelled(
            "Jetson AGX Xavier per-layer LUT (measured at the highest clocks) scaled by DVFS \
             laws fitted on measured Jetson TX2 clock sweeps (dynas_cost::DvfsLutModel)",
        ),
        &params,
        options,
    )?;
    let elapsed = started.elapsed().as_secs_f64();

    // Each output crash-safe; the deployment last (OUTPUT_NAMES).
    let report = serde_json::json!({
        "report": outcome.report,
        "elapsed_s": elapsed,
        "params": params.params(),
    });
    write_output("--out", &outputs[0], serde_json::to_string_pretty(&report)?)?;
    let (comparison, reference) = comparison_fronts(&outcome.report);
    comparison.write_csv(&outputs[1])?;
    comparison.write_svg(&outputs[2], Some(&reference))?;
    outcome.outer_front.write_json(&outputs[3])?;
    outcome.outer_front.write_csv(&outputs[4])?;
    outcome.outer_front.write_svg(&outputs[5], None)?;
    // What the runtime needs to execute the deployment (batch-norm statistics, exit heads),
    // before the deployment itself: `dynas serve --deployment` reads the whole bundle.
    worker
        .export_bundle(&outcome.deployment, &args.out)
        .context("writing the runtime bundle (bn_store.safetensors, exit_heads/)")?;
    outcome.deployment.write_json(&outputs[6])?;

    let r = &outcome.report;
    println!(
        "HADAS: {} backbones scored, {} inner evaluations, {} deployed points ({elapsed:.0} s)",
        r.outer_evaluations,
        r.inner_evaluations,
        outcome.deployment.points.len()
    );
    println!(
        "baseline (largest + exits, highest clocks): test top-1 {:.2} %, {:.4} mJ, {:.4} ms",
        r.baseline.test_top1, r.baseline.energy_mj, r.baseline.latency_ms
    );
    for p in &r.points {
        println!(
            "  {}: {} exits, test top-1 {:.2} %, {:.4} mJ, {:.4} ms",
            p.label,
            p.exits.len(),
            p.test_top1,
            p.energy_mj,
            p.latency_ms
        );
    }
    println!("chosen by {}", r.selection);
    match (r.best, r.best_energy_saving_pct, &r.ablation) {
        (Some(best), Some(saving), Some(a)) => {
            println!(
                "chosen on validation: {} saves {saving:.1} % energy against the baseline on \
                 test (test top-1 {:+.2} points, latency x{:.2}; energy modelled)",
                r.points[best].label,
                r.best_test_top1_delta.unwrap_or(f64::NAN),
                r.best_latency_ratio.unwrap_or(f64::NAN)
            );
            println!(
                "ablation (mJ): static largest {:.4} -> backbone {:.4} -> + exits {:.4} -> + DVFS {:.4}",
                a.static_largest.energy_mj,
                a.backbone.energy_mj,
                a.backbone_exits.energy_mj,
                a.backbone_exits_dvfs.energy_mj
            );
        }
        _ => println!(
            "no deployed point reaches the baseline's validation top-1 within the latency bound"
        ),
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: HadasArgs,
    }

    fn args(extra: &[&str]) -> HadasArgs {
        Cli::parse_from(["hadas"].iter().chain(extra)).args
    }

    /// The `key=value` parts of a fingerprint.
    fn parts(f: &str) -> Vec<(String, String)> {
        f.split("; ")
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn differing(a: &str, b: &str) -> Vec<String> {
        parts(a)
            .into_iter()
            .zip(parts(b))
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, _)| x.0)
            .collect()
    }

    #[test]
    fn the_checkpoint_fingerprint_follows_content_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let supernet = dir.path().join("s.safetensors");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let images = data.join("train-images-idx3-ubyte");
        std::fs::write(&supernet, b"weights").unwrap();
        std::fs::write(&images, b"images").unwrap();
        let base = [
            "--supernet",
            supernet.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            "out",
        ];
        let first = checkpoint_fingerprint(&args(&base)).unwrap();
        assert_eq!(first, checkpoint_fingerprint(&args(&base)).unwrap());
        // The same sizes and names, other bytes.
        std::fs::write(&images, b"imagez").unwrap();
        let other_data = checkpoint_fingerprint(&args(&base)).unwrap();
        assert_eq!(differing(&first, &other_data), ["data"]);
        std::fs::write(&supernet, b"weightz").unwrap();
        let other_supernet = checkpoint_fingerprint(&args(&base)).unwrap();
        assert_eq!(differing(&other_data, &other_supernet), ["supernet"]);
        let mut other_split = base.to_vec();
        other_split.extend(["--validation", "100"]);
        let other_split = checkpoint_fingerprint(&args(&other_split)).unwrap();
        assert_eq!(differing(&other_supernet, &other_split), ["validation"]);
    }
}
