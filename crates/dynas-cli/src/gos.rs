//! `dynas gos`: adapt a trained model by GOS operator replacement. Reads a model written by
//! `GosModel::save` (safetensors with its network description), searches per-operator
//! replacements for latency x accuracy proxy, fine-tunes the chosen plan with distillation
//! from the original on Fashion-MNIST, and writes the adapted model and a JSON report
//! (accuracy before / after fine-tuning, measured latency before / after).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use dynas::cost::{MacsModel, OperatingPoint};
use dynas::gos::model::{
    AdaptData, AdaptSettings, GosModel, LatencySource, TimingSettings, TrainSettings, adapt,
    description_path, measure_interleaved,
};
use dynas::gos::search::{GosLatency, GosLut};
use dynas::supernet::tch::{self, Device};
use dynas::supernet::{Dataset, Split, SplitRecord};

use crate::paths::{CommandFiles, write_output};

/// Arguments of `dynas gos`.
#[derive(Debug, Args)]
pub struct GosArgs {
    /// The trained model (safetensors with its network description, e.g. written by the
    /// `gos_vgg_fashion_mnist` example).
    #[arg(long)]
    model: PathBuf,
    /// Fashion-MNIST in IDX format (Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Latency source: `host` (measure every candidate operator here through libtorch),
    /// `lut:FILE` (a table saved by an earlier run) or `macs:MACS_PER_MS` (a MACs proxy).
    #[arg(long, default_value = "host")]
    latency: String,
    /// Writes the lookup table measured with `--latency host` to this file.
    #[arg(long)]
    save_lut: Option<PathBuf>,
    /// Largest accepted drop of validation top-1 after fine-tuning, in points (the test split
    /// is only reported).
    #[arg(long, default_value_t = 1.0)]
    accuracy_budget: f64,
    /// Training images used for fine-tuning and calibration (after the validation split).
    #[arg(long, default_value_t = 20_000)]
    train_images: usize,
    /// Validation images held out of the training split (seed 0) to judge the accuracy
    /// budget. Must match the model's training when `<model>.split.json` records it.
    #[arg(long, default_value_t = 10_000)]
    validation: usize,
    /// Fine-tuning epochs per plan tried.
    #[arg(long, default_value_t = 2)]
    fine_tune_epochs: usize,
    /// Plans fine-tuned at most: probes of the bisection over the front's faster plans.
    #[arg(long, default_value_t = 6)]
    max_attempts: usize,
    /// Distinct plans the search evaluates.
    #[arg(long, default_value_t = 3000)]
    evaluations: usize,
    /// Seed of the search and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// libtorch threads for fine-tuning and measuring.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Where the adapted model goes (its description beside it as `<file>.json`).
    #[arg(long)]
    out_model: PathBuf,
    /// Where the JSON report goes.
    #[arg(long)]
    report: PathBuf,
}

fn latency_source(text: &str) -> anyhow::Result<LatencySource> {
    if text == "host" {
        return Ok(LatencySource::Host);
    }
    if let Some(file) = text.strip_prefix("lut:") {
        let lut = GosLut::load(file).with_context(|| format!("--latency {text}"))?;
        return Ok(LatencySource::Given(GosLatency::Table(lut)));
    }
    if let Some(rate) = text.strip_prefix("macs:") {
        let rate: f64 = rate
            .parse()
            .with_context(|| format!("--latency {text}: `{rate}` is not a number"))?;
        let model = MacsModel::new(rate).with_context(|| format!("--latency {text}"))?;
        return Ok(LatencySource::Given(GosLatency::Model(
            Box::new(model),
            OperatingPoint::default(),
        )));
    }
    bail!("--latency `{text}`: expected `host`, `lut:FILE` or `macs:MACS_PER_MS`")
}

/// Every file `dynas gos` reads and writes, side files included: the model's description and
/// split record beside it (read), the data set, a given lookup table; the adapted model with
/// its description and split record, the report and the saved lookup table (written).
fn files(args: &GosArgs) -> CommandFiles {
    let mut files = CommandFiles::new();
    files
        .input("--model", &args.model)
        .input("--model (its description)", description_path(&args.model))
        .input(
            "--model (its split record)",
            SplitRecord::path_beside(&args.model),
        );
    crate::fmnist::declare_inputs(&mut files, &args.data);
    if let Some(lut) = args.latency.strip_prefix("lut:") {
        files.input("--latency", lut);
    }
    files
        .output("--out-model", &args.out_model)
        .output(
            "--out-model (its description)",
            description_path(&args.out_model),
        )
        .output(
            "--out-model (its split record)",
            SplitRecord::path_beside(&args.out_model),
        )
        .output("--report", &args.report);
    if let Some(p) = &args.save_lut {
        files.output("--save-lut", p);
    }
    files
}

/// Runs `dynas gos`.
pub fn run(args: GosArgs) -> anyhow::Result<()> {
    files(&args).check()?;
    let threads = match i32::try_from(args.threads) {
        Ok(t) if t >= 1 => t,
        _ => bail!(
            "--threads must be in 1..={}, got {}",
            i32::MAX,
            args.threads
        ),
    };
    if args.train_images == 0 {
        bail!("--train-images must be at least 1: fine-tuning and calibration need images");
    }
    let latency = latency_source(&args.latency)?;
    tch::set_num_threads(threads);
    tch::manual_seed(args.seed as i64);
    let original = GosModel::load(&args.model, Device::Cpu)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let full = Dataset::mnist_dir(&args.data, Split::Train)
        .with_context(|| format!("--data {}", args.data.display()))?;
    let test = Dataset::mnist_dir(&args.data, Split::Test)
        .with_context(|| format!("--data {}", args.data.display()))?;
    let input = &original.network().input;
    crate::fmnist::check_images(&args.data, "training", &full, input)?;
    crate::fmnist::check_images(&args.data, "test", &test, input)?;
    let split = SplitRecord {
        validation_images: args.validation,
        seed: 0,
        train_images: args.train_images,
    };
    // The model's own record of its training split, when it has one: the validation images
    // that judge the budget must be ones it never trained on.
    if let Some(trained) = SplitRecord::load_beside(&args.model)? {
        split
            .check_held_out_from(&trained, &SplitRecord::path_beside(&args.model))
            .context("--validation")?;
    }
    let (train, validation) = split.split(&full).context("--validation")?;
    // Input normalisation from a fixed definition: every training image outside the
    // validation split, whatever --train-images takes for fine-tuning (so the original's
    // accuracy does not change with that flag).
    let norm = SplitRecord {
        train_images: usize::MAX,
        ..split
    }
    .split(&full)
    .context("--validation")?
    .0
    .channel_stats();
    let timing = TimingSettings {
        threads: args.threads,
        ..TimingSettings::default()
    };
    let settings = AdaptSettings {
        search_evaluations: args.evaluations,
        seed: args.seed,
        accuracy_budget: args.accuracy_budget,
        max_attempts: args.max_attempts,
        timing,
        fine_tune: TrainSettings {
            epochs: args.fine_tune_epochs,
            learning_rate: 0.01,
            seed: args.seed,
            ..TrainSettings::default()
        },
        ..AdaptSettings::default()
    }
    .check()?;
    let data = AdaptData {
        train: &train,
        validation: &validation,
        test: &test,
        norm: &norm,
    };
    let (adapted, report) = adapt(&original, data, latency, &settings)?;
    if let (Some(path), Some(lut)) = (&args.save_lut, &report.lut) {
        lut.save(path)
            .with_context(|| format!("--save-lut {}", path.display()))?;
    }
    if report.within_budget {
        adapted
            .save(&args.out_model)
            .with_context(|| format!("--out-model {}", args.out_model.display()))?;
        // Fine-tuned on this split's training images: record it for a later run on the output.
        split
            .save_beside(&args.out_model)
            .with_context(|| format!("--out-model {}", args.out_model.display()))?;
    }
    let batch1 = TimingSettings {
        batch: 1,
        threads: args.threads,
        warmup: 10,
        repeats: 20,
        ..TimingSettings::default()
    };
    let ms = measure_interleaved(&[&original, &adapted], &batch1);
    let chosen = &report.attempts[report.chosen];
    let summary = serde_json::json!({
        "model": args.model,
        "adapted_model": report.within_budget.then_some(&args.out_model),
        "normalization": {"mean": norm.mean, "std": norm.std,
            "from": "every training image outside the validation split"},
        "accuracy_budget_points": args.accuracy_budget,
        "test_top1": {
            "original": report.original_test_top1,
            "adapted_before_fine_tuning": chosen.test_top1_init,
            "adapted_after_fine_tuning": chosen.test_top1_fine_tuned,
        },
        "measured_batch1_ms": {
            "threads": args.threads,
            "form": batch1.form,
            "original": ms[0],
            "adapted": ms[1],
            "speedup": ms[0] / ms[1],
        },
        "predicted_ms": {"original": report.original_predicted_ms, "adapted": chosen.predicted_ms},
        "within_budget": report.within_budget,
        "plan": adapted.plan(),
        "search": report,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    write_output("--report", &args.report, text)?;
    if !report.within_budget {
        bail!(
            "no plan kept validation top-1 within --accuracy-budget {} points of the original's \
             {:.2} % (the closest: {:.2} % after fine-tuning); no model written to --out-model \
             `{}`; the attempts are in --report `{}` (try a larger budget, more \
             --fine-tune-epochs or --max-attempts)",
            args.accuracy_budget,
            report.original_validation_top1,
            chosen.validation_top1_fine_tuned,
            args.out_model.display(),
            args.report.display()
        );
    }
    println!(
        "test top-1 {:.2} -> {:.2} % ({:.2} before fine-tuning); batch 1: {:.3} -> {:.3} ms \
         ({:.2}x); report {}",
        report.original_test_top1,
        chosen.test_top1_fine_tuned,
        chosen.test_top1_init,
        ms[0],
        ms[1],
        ms[0] / ms[1],
        args.report.display()
    );
    Ok(())
}
