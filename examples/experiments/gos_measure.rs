//! Times saved GOS models against each other on this host, interleaved: batch 1 and batch 64,
//! in the deployed form (batch norms folded) and as trained, and checks that folding keeps
//! the logits.
//!
//! `cargo run --release -p dynas-gos --features tch --example gos_measure -- MODEL.safetensors
//! [MODEL.safetensors ...] [--rounds R] [--threads T] [--lut] [--single-units]
//! [--attempts REPORT.json]` (the first model is the reference of the speed-ups).

use std::path::PathBuf;

use clap::Parser;
use dynas_gos::GosSpace;
use dynas_gos::model::{
    AdaptReport, AdaptSettings, GosModel, LutCheck, ModelForm, TimingSettings, measure_interleaved,
    measure_lut_with_checks,
};
use dynas_gos::search::{GosPlan, Replacement};
use tch::{Device, Kind, Tensor};

/// Interleaved host timing of saved GOS models.
#[derive(Parser)]
struct Options {
    /// Models written by `GosModel::save`; the first is the reference.
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// Interleaved rounds (each of 20 calls per model at batch 1, 3 at batch 64).
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also build the host lookup table of the first model (default candidates) and print
    /// its batch-1 prediction of every model next to the model's measurement in the table's
    /// own rounds and in the later interleaved timing.
    #[arg(long)]
    lut: bool,
    /// With `--lut`: also time the first model with each single unit replaced by each of its
    /// candidates, in the table's rounds, and print how far the table's predicted change
    /// from the first model is from the measured one (how additive the table is).
    #[arg(long, requires = "lut")]
    single_units: bool,
    /// With `--lut`: also time, in the table's rounds, every plan an adaptation fine-tuned
    /// (the attempts of a report written by the GOS examples or `dynas gos`, of the first
    /// model), and print the table's error on each.
    #[arg(long, requires = "lut")]
    attempts: Option<PathBuf>,
}

/// The plans of the attempts in a GOS example (`report`) or `dynas gos` (`search`) report.
fn attempt_plans(path: &std::path::Path) -> Result<Vec<GosPlan>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let report = value
        .get("report")
        .or_else(|| value.get("search"))
        .ok_or_else(|| format!("{}: no `report` or `search` field", path.display()))?;
    let report: AdaptReport = serde_json::from_value(report.clone())
        .map_err(|e| format!("{}: field `report`/`search`: {e}", path.display()))?;
    Ok(report.attempts.into_iter().map(|a| a.plan).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let models = options
        .models
        .iter()
        .map(|p| GosModel::load(p, Device::Cpu).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    for (path, model) in options.models.iter().zip(&models) {
        let i = model.network().input;
        let x = Tensor::randn(
            [8, i.channels as i64, i.height as i64, i.width as i64],
            (Kind::Float, Device::Cpu),
        );
        let plain = tch::no_grad(|| model.forward(&x, false))?;
        let folded = model.folded().forward(&x)?;
        let last = model.folded().with_channels_last().forward(&x)?;
        let gap = (&plain - folded).abs().max().double_value(&[]);
        let gap_last = (plain - last).abs().max().double_value(&[]);
        println!(
            "{}: folding changes logits by at most {gap:.2e} ({gap_last:.2e} channels-last)",
            path.display()
        );
    }
    let refs: Vec<&GosModel> = models.iter().collect();
    let batch1 = TimingSettings {
        batch: 1,
        threads: options.threads,
        warmup: 10,
        repeats: 20,
        rounds: options.rounds,
        ..TimingSettings::default()
    };
    let batch64 = TimingSettings {
        batch: 64,
        warmup: 2,
        repeats: 3,
        ..batch1
    };
    let mut runs = Vec::new();
    for (size, settings) in [("batch 1", batch1), ("batch 64", batch64)] {
        for (form_name, form) in [
            ("folded, channels-last", ModelForm::FoldedChannelsLast),
            ("folded", ModelForm::Folded),
            ("as trained", ModelForm::AsTrained),
        ] {
            runs.push((
                format!("{size}, {form_name}"),
                TimingSettings { form, ..settings },
            ));
        }
    }
    let lut = if options.lut {
        let candidates = AdaptSettings::default().candidates.check()?;
        let space = GosSpace::new(models[0].network().clone(), &candidates)?;
        let start = std::time::Instant::now();
        let mut plans: Vec<GosPlan> = models.iter().map(|m| m.plan().clone()).collect();
        let attempts = match &options.attempts {
            Some(path) => attempt_plans(path)?,
            None => Vec::new(),
        };
        plans.extend(attempts.iter().cloned());
        if options.single_units {
            for unit in space.units() {
                for &choice in unit.choices.iter().filter(|&&c| c != Replacement::Keep) {
                    let mut plan = models[0].plan().clone();
                    plan.replacements.insert(unit.name(space.network()), choice);
                    plans.push(plan);
                }
            }
        }
        let (lut, mut checked) = measure_lut_with_checks(&models[0], &space, &batch1, &plans)?;
        let mut rest = checked.split_off(models.len());
        let singles = rest.split_off(attempts.len());
        if !rest.is_empty() {
            let errors: Vec<String> = rest
                .iter()
                .map(|c| {
                    format!(
                        "{:.3} vs {:.3} ms ({:+.1} %)",
                        c.predicted_ms,
                        c.measured_ms,
                        c.error_percent()
                    )
                })
                .collect();
            let within = rest
                .iter()
                .filter(|c| c.error_percent().abs() <= 10.0)
                .count();
            println!(
                "attempted plans, predicted vs measured in the table's rounds ({within} of {} \
                 within 10 %): {}",
                rest.len(),
                errors.join(" | ")
            );
        }
        if options.single_units {
            let first = checked[0];
            let gaps: Vec<f64> = singles
                .iter()
                .map(|c| {
                    (c.measured_ms - first.measured_ms) - (c.predicted_ms - first.predicted_ms)
                })
                .collect();
            let mut sorted: Vec<f64> = gaps.iter().map(|g| g.abs()).collect();
            sorted.sort_by(f64::total_cmp);
            let within = |ms: f64| sorted.iter().filter(|&&g| g <= ms).count();
            println!(
                "single-unit replacements: {}; measured minus predicted change from the first \
                 model: median |gap| {:.3} ms, {} within 0.02 ms, {} within 0.05 ms, largest \
                 {:+.3} / {:+.3} ms",
                singles.len(),
                sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
                within(0.02),
                within(0.05),
                gaps.iter().copied().fold(f64::INFINITY, f64::min),
                gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
        }
        println!(
            "lookup table: {} entries, rest {:.3} ms, entries x {:.3} and {:.4} ms per operator \
             call in the chain ({:.0} s)",
            lut.entries.len(),
            lut.rest_ms,
            lut.chain_scale,
            lut.per_call_ms,
            start.elapsed().as_secs_f64()
        );
        let cells: Vec<String> = checked
            .iter()
            .map(|c| {
                format!(
                    "{:.3} ms vs {:.3} ms ({:+.1} %)",
                    c.predicted_ms,
                    c.measured_ms,
                    c.error_percent()
                )
            })
            .collect();
        println!(
            "  predicted vs measured in the table's rounds: {}",
            cells.join(" | ")
        );
        Some((space, lut))
    } else {
        None
    };
    for (label, settings) in runs {
        let ms = measure_interleaved(&refs, &settings);
        let cells: Vec<String> = ms
            .iter()
            .map(|t| format!("{t:.3} ms ({:.2}x)", ms[0] / t))
            .collect();
        println!("{label}: {}", cells.join(" | "));
        if let Some((space, lut)) = &lut
            && settings.batch == 1
            && settings.form == ModelForm::FoldedChannelsLast
        {
            let predicted = models
                .iter()
                .zip(&ms)
                .map(|(m, &measured_ms)| {
                    let check = LutCheck {
                        predicted_ms: lut.predict(space, m.plan())?,
                        measured_ms,
                    };
                    Ok(format!(
                        "{:.3} ms ({:+.1} %)",
                        check.predicted_ms,
                        check.error_percent()
                    ))
                })
                .collect::<Result<Vec<_>, dynas_search::SearchError>>()?;
            println!(
                "  lookup table (against these later timings): {}",
                predicted.join(" | ")
            );
        }
    }
    Ok(())
}
