//! Shared driver of the GOS Fashion-MNIST examples: train (or reload) the original, adapt it,
//! measure both on this host and write a JSON report.

use clap::Parser;
use std::path::PathBuf;

use dynas_gos::model::{
    AdaptData, AdaptSettings, GosModel, LatencySource, ModelForm, TimingSettings, TrainSettings,
    accuracy, adapt, measure_interleaved, measure_lut_with_checks, train,
};
use dynas_space::Network;
use dynas_supernet::{Dataset, Split, SplitRecord};
use tch::Device;

/// GOS on a Fashion-MNIST CNN: train (or reload), adapt, measure, report.
#[derive(Parser)]
pub struct Options {
    /// Fashion-MNIST IDX files.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// Output folder (models and report).
    #[arg(long, default_value = "target/gos")]
    pub out: PathBuf,
    /// Training images used.
    #[arg(long, default_value_t = 20_000)]
    pub train_images: usize,
    /// Training images held out (seed 0) to judge the accuracy budget: 10,000 keep the
    /// judgement's noise well under the 1-point budget (2,000 did not).
    #[arg(long, default_value_t = 10_000)]
    pub validation_images: usize,
    /// Training epochs of the original.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Fine-tuning epochs of the adapted model.
    #[arg(long, default_value_t = 2)]
    pub fine_tune_epochs: usize,
    /// Plans fine-tuned at most (probes of the bisection over the front's faster plans).
    #[arg(long, default_value_t = 6)]
    pub max_attempts: usize,
    /// Train the original again even if a saved one exists.
    #[arg(long)]
    pub retrain: bool,
}

pub fn run(name: &str, network: Network) -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let full = Dataset::mnist_dir(&options.data, Split::Train)?;
    let test = Dataset::mnist_dir(&options.data, Split::Test)?;
    let split = SplitRecord {
        validation_images: options.validation_images,
        seed: 0,
        train_images: options.train_images,
    };
    let (train_set, validation) = split.split(&full)?;
    let norm = train_set.channel_stats();
    std::fs::create_dir_all(&options.out)?;
    let original_path = options.out.join(format!("{name}.safetensors"));
    let original = if original_path.exists() && !options.retrain {
        println!("reloading {}", original_path.display());
        // A reloaded original must not have trained on this run's validation images.
        let record_path = SplitRecord::path_beside(&original_path);
        let trained = SplitRecord::load_beside(&original_path)?.ok_or_else(|| {
            format!(
                "{}: no record of the images {name} was trained on; pass --retrain",
                record_path.display()
            )
        })?;
        split.check_held_out_from(&trained, &record_path)?;
        GosModel::load(&original_path, Device::Cpu)?
    } else {
        let mut model = GosModel::new(network, Default::default(), Device::Cpu)?;
        let settings = TrainSettings {
            epochs: options.epochs,
            ..TrainSettings::default()
        }
        .check()?;
        let start = std::time::Instant::now();
        let losses = train(&mut model, None, &train_set, &norm, &settings)?;
        println!(
            "trained {name} for {} epochs on {} images in {:.0} s: losses {losses:.3?}",
            options.epochs,
            train_set.len(),
            start.elapsed().as_secs_f64()
        );
        model.save(&original_path)?;
        split.save_beside(&original_path)?;
        model
    };
    println!(
        "{name}: {} MACs, {} params, test top-1 {:.2} %",
        original.network().macs(),
        original.network().params(),
        100.0 * accuracy(&original, &test, &norm, 256)
    );
    let settings = AdaptSettings {
        max_attempts: options.max_attempts,
        fine_tune: TrainSettings {
            epochs: options.fine_tune_epochs,
            learning_rate: 0.01,
            ..TrainSettings::default()
        },
        ..AdaptSettings::default()
    }
    .check()?;
    let start = std::time::Instant::now();
    let data = AdaptData {
        train: &train_set,
        validation: &validation,
        test: &test,
        norm: &norm,
    };
    let (adapted, report) = adapt(&original, data, LatencySource::Host, &settings)?;
    let adapt_s = start.elapsed().as_secs_f64();
    let adapted_path = options.out.join(format!("{name}_adapted.safetensors"));
    adapted.save(&adapted_path)?;
    // Fine-tuned on the same training images: the same split guards a later run on it.
    split.save_beside(&adapted_path)?;
    let chosen = &report.attempts[report.chosen];
    // Deployed form (batch norms folded, channels-last), as the lookup table was measured.
    let batch1 = TimingSettings {
        batch: 1,
        threads: 2,
        warmup: 10,
        repeats: 20,
        rounds: 15,
        ..TimingSettings::default()
    };
    let batch64 = TimingSettings {
        batch: 64,
        threads: 2,
        warmup: 2,
        repeats: 3,
        rounds: 6,
        ..TimingSettings::default()
    };
    let as_trained = TimingSettings {
        form: ModelForm::AsTrained,
        ..batch1
    };
    // Timing at the end, with training done: the machine should be otherwise idle.
    let ms1 = measure_interleaved(&[&original, &adapted], &batch1);
    let ms64 = measure_interleaved(&[&original, &adapted], &batch64);
    let ms1_unfolded = measure_interleaved(&[&original, &adapted], &as_trained);
    let lut_error = 100.0 * (chosen.predicted_ms - ms1[1]) / ms1[1];
    let original_lut_error = 100.0 * (report.original_predicted_ms - ms1[0]) / ms1[0];
    // The table measured again with both models timed in its rounds: its prediction against a
    // measurement under the same host conditions (the search's table is minutes older).
    let space = dynas_gos::GosSpace::new(
        original.network().clone(),
        &settings.settings().candidates.clone().check()?,
    )?;
    let plans = [original.plan().clone(), adapted.plan().clone()];
    let (_, same_rounds) = measure_lut_with_checks(&original, &space, &batch1, &plans)?;
    let summary = serde_json::json!({
        "model": name,
        "original_macs": original.network().macs(),
        "adapted_macs": space.adapted_network(adapted.plan())?.macs(),
        "train_images": train_set.len(),
        "validation_images": validation.len(),
        "epochs": options.epochs,
        "fine_tune_epochs": options.fine_tune_epochs,
        "max_attempts": options.max_attempts,
        "adapt_seconds": adapt_s,
        "original_test_top1": report.original_test_top1,
        "adapted_test_top1_init": chosen.test_top1_init,
        "adapted_test_top1_fine_tuned": chosen.test_top1_fine_tuned,
        "batch1_ms": {"original": ms1[0], "adapted": ms1[1], "speedup": ms1[0] / ms1[1]},
        "batch1_ms_as_trained": {
            "original": ms1_unfolded[0],
            "adapted": ms1_unfolded[1],
            "speedup": ms1_unfolded[0] / ms1_unfolded[1],
        },
        "batch64_ms": {"original": ms64[0], "adapted": ms64[1], "speedup": ms64[0] / ms64[1]},
        "lut_predicted_ms": {"original": report.original_predicted_ms, "adapted": chosen.predicted_ms},
        "lut_error_percent": {"original": original_lut_error, "adapted": lut_error},
        "lut_same_rounds": {
            "predicted_ms": {
                "original": same_rounds[0].predicted_ms,
                "adapted": same_rounds[1].predicted_ms,
            },
            "measured_ms": {
                "original": same_rounds[0].measured_ms,
                "adapted": same_rounds[1].measured_ms,
            },
            "error_percent": {
                "original": same_rounds[0].error_percent(),
                "adapted": same_rounds[1].error_percent(),
            },
        },
        "report": report,
    });
    let path = options.out.join(format!("{name}_report.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    println!(
        "{name}: top-1 {:.2} -> {:.2} % (init {:.2}), batch 1 {:.3} -> {:.3} ms ({:.2}x), \
         batch 64 {:.2} -> {:.2} ms ({:.2}x), LUT {:.3} ms ({:+.1} %; a new table against \
         the model timed in its rounds {:+.1} %) (deployed form; as trained, batch 1: {:.2}x); \
         plan {:?}; report {}",
        report.original_test_top1,
        chosen.test_top1_fine_tuned,
        chosen.test_top1_init,
        ms1[0],
        ms1[1],
        ms1[0] / ms1[1],
        ms64[0],
        ms64[1],
        ms64[0] / ms64[1],
        chosen.predicted_ms,
        lut_error,
        same_rounds[1].error_percent(),
        ms1_unfolded[0] / ms1_unfolded[1],
        adapted.plan().replacements,
        path.display()
    );
    Ok(())
}
