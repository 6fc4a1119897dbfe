//! `dynas cost` subcommands: fit and check cost models on your own measurements.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use dynas::cost::dvfs::{DvfsLawParams, DvfsScalingLaw};
use dynas::cost::predictor::{
    ArchEncoding, ArchPredictor, Learner, RegressionMetrics, TargetScale,
};
use dynas::cost::table::{Nb201Cell, read_arch_targets};
use rand::seq::SliceRandom;

use crate::paths::{Flagged, check_outputs};

/// `dynas cost` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit an architecture-level predictor on N random rows of a NAS-Bench-201-style CSV
    /// (architecture in `arch_str` or `op0..op5`), predict the other rows and report
    /// held-out accuracy.
    Fit(FitArgs),
    /// Fit a DVFS latency law per group on K random operating points and predict the
    /// group's other points: by default the soft roofline
    /// `latency = c0 + (floor^p + sum_j (c_j / f_j)^p)^(1/p)` (p picked per group from
    /// 1, 2, 4, 8 unless `--sharpness` fixes it), or `--law additive`
    /// (`c0 + sum_j c_j / f_j`).
    DvfsFit(DvfsFitArgs),
}

/// Arguments of `dynas cost fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The CSV file.
    #[arg(long)]
    pub csv: PathBuf,
    /// The numeric column to predict (e.g. `raspi4_latency`).
    #[arg(long)]
    pub target: String,
    /// Number of random rows to train on.
    #[arg(long)]
    pub train: usize,
    /// Seed of the row split and the learner.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Learner: `ridge+gbdt` (default; NAS-Bench-201 path features), `ridge`, `gbdt`, or
    /// `onehot-gbdt` (boosted trees on the plain one-hot, on log target).
    #[arg(long, default_value = "ridge+gbdt")]
    pub model: String,
    /// Where to write `arch_str,actual,predicted` for every held-out row.
    #[arg(long)]
    pub predictions: PathBuf,
}

/// Arguments of `dynas cost dvfs-fit`.
#[derive(Debug, Args)]
pub struct DvfsFitArgs {
    /// The CSV file: one row per (group, operating point).
    #[arg(long)]
    pub csv: PathBuf,
    /// The column naming the group (e.g. a model name).
    #[arg(long)]
    pub group: String,
    /// The clock column(s), comma-separated (any positive unit).
    #[arg(long, value_delimiter = ',', required = true)]
    pub freq: Vec<String>,
    /// The latency column.
    #[arg(long)]
    pub target: String,
    /// Operating points per group to fit on.
    #[arg(long)]
    pub train_points: usize,
    /// Seed of the point selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The law: `soft-roofline` (saturating; fits relative error) or `additive`
    /// (`c0 + sum_j c_j / f_j`, plain non-negative least squares).
    #[arg(long, default_value = "soft-roofline")]
    pub law: String,
    /// Exponent p of the soft roofline (1 to 64); by default each group's fit picks p from
    /// 1, 2, 4, 8 by its training error.
    #[arg(long)]
    pub sharpness: Option<f64>,
    /// Where to write `group,<freq columns>,actual,predicted` for every held-out row.
    #[arg(long)]
    pub predictions: PathBuf,
}

/// Runs a `dynas cost` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Fit(args) => fit(&args),
        Command::DvfsFit(args) => dvfs_fit(&args),
    }
}

fn fit(args: &FitArgs) -> anyhow::Result<()> {
    check_outputs(
        &[Flagged::new("--csv", &args.csv)],
        &[Flagged::new("--predictions", &args.predictions)],
    )?;
    let data = read_arch_targets(&args.csv, &args.target)?;
    // A repeated architecture could land in both the training and the test rows.
    let mut first_row: HashMap<Nb201Cell, usize> = HashMap::with_capacity(data.cells.len());
    for (i, cell) in data.cells.iter().enumerate() {
        if let Some(j) = first_row.insert(*cell, i) {
            bail!(
                "`{}`: architecture `{cell}` appears in two rows with a `{}` (kept rows {} and \
                 {}); remove or average the duplicates so that training and test rows cannot \
                 share an architecture",
                args.csv.display(),
                args.target,
                j + 1,
                i + 1
            );
        }
    }
    let n = data.cells.len();
    if args.train < 2 || args.train >= n {
        bail!(
            "--train must be between 2 and {} (the rows with a numeric `{}`), got {}",
            n.saturating_sub(1),
            args.target,
            args.train
        );
    }
    let (encoding, learner, scale) = match args.model.as_str() {
        "ridge+gbdt" | "default" => (ArchEncoding::Nb201, Learner::default(), TargetScale::Linear),
        "ridge" => (
            ArchEncoding::Nb201,
            Learner::from_name("ridge")?,
            TargetScale::Linear,
        ),
        "gbdt" => (
            ArchEncoding::Nb201,
            Learner::from_name("gbdt")?,
            TargetScale::Log,
        ),
        "onehot-gbdt" => (
            ArchEncoding::OneHot {
                radices: vec![5; 6],
            },
            Learner::from_name("gbdt")?,
            TargetScale::Log,
        ),
        other => bail!("unknown --model `{other}`; use ridge+gbdt, ridge, gbdt or onehot-gbdt"),
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut dynas::space::seeded_rng(args.seed));
    let (train, test) = order.split_at(args.train);
    let genes: Vec<Vec<usize>> = train
        .iter()
        .map(|&i| data.cells[i].ops().to_vec())
        .collect();
    let y: Vec<f64> = train.iter().map(|&i| data.targets[i]).collect();
    let model = ArchPredictor::fit(encoding, &genes, &y, learner.with_seed(args.seed), scale)?;
    let actual: Vec<f64> = test.iter().map(|&i| data.targets[i]).collect();
    let predicted = test
        .iter()
        .map(|&i| model.predict(&data.cells[i].ops()))
        .collect::<Result<Vec<f64>, _>>()?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["arch_str", "actual", "predicted"])?;
    for (k, &i) in test.iter().enumerate() {
        out.write_record([
            data.cells[i].to_string(),
            actual[k].to_string(),
            predicted[k].to_string(),
        ])?;
    }
    let m = RegressionMetrics::compute(&actual, &predicted)?;
    if !m.rmse.is_finite() {
        bail!(
            "the fit failed: a prediction of `{}` is not a finite number (RMSE {}); nothing \
             written to --predictions",
            args.target,
            m.rmse
        );
    }
    crate::paths::write_output("--predictions", &args.predictions, out.into_inner()?)?;
    println!(
        "rows: {} used, {} skipped (missing or non-numeric `{}`); trained on {}, tested on {}",
        n,
        data.skipped,
        args.target,
        train.len(),
        test.len()
    );
    if actual.contains(&0.0) {
        println!("note: some actual values are 0; relative shares count them as misses");
    }
    println!("model: {}", args.model);
    println!("within +-10 %: {:.2} %", 100.0 * m.within_10);
    println!("within +-20 %: {:.2} %", 100.0 * m.within_20);
    println!("RMSE: {:.6}", m.rmse);
    println!("Spearman: {}", spearman_text(&actual, m.spearman));
    Ok(())
}

/// The Spearman correlation, or why it is undefined (a constant series has no ranking).
fn spearman_text(actual: &[f64], spearman: Option<f64>) -> String {
    match spearman {
        Some(s) => format!("{s:.4}"),
        None if actual.windows(2).all(|w| w[0] == w[1]) => {
            "undefined (every held-out actual value is the same)".to_string()
        }
        None => "undefined (every prediction is the same)".to_string(),
    }
}

struct DvfsRow {
    clocks: Vec<f64>,
    raw_clocks: Vec<String>,
    target: f64,
}

fn dvfs_fit(args: &DvfsFitArgs) -> anyhow::Result<()> {
    check_outputs(
        &[Flagged::new("--csv", &args.csv)],
        &[Flagged::new("--predictions", &args.predictions)],
    )?;
    let path = &args.csv;
    let text = dynas::space::files::read_input_text(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("`{}`: cannot read the header", path.display()))?
        .clone();
    if let Some((name, first, second)) = dynas::cost::table::duplicate_column(headers.iter()) {
        bail!(
            "`{}`: column `{name}` appears twice in the header (columns {first} and {second}): \
             which one holds the data is ambiguous",
            path.display()
        );
    }
    let col = |name: &str| -> anyhow::Result<usize> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| {
                format!(
                    "`{}` has no column `{name}` (columns: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(",")
                )
            })
    };
    let group_col = col(&args.group)?;
    let target_col = col(&args.target)?;
    let freq_cols = args
        .freq
        .iter()
        .map(|f| col(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let params = match args.law.as_str() {
        "soft-roofline" => match args.sharpness {
            Some(p) => DvfsLawParams {
                sharpness: p,
                pick_sharpness: false,
                ..DvfsLawParams::default()
            },
            None => DvfsLawParams::default(),
        },
        "additive" if args.sharpness.is_some() => {
            bail!("--sharpness applies to --law soft-roofline only")
        }
        "additive" => DvfsLawParams::additive(),
        other => bail!("unknown --law `{other}`; use soft-roofline or additive"),
    }
    .check()
    .context("--sharpness")?;
    let unknowns = args.freq.len() + 1 + usize::from(params.params().floor);
    if args.train_points < unknowns {
        bail!(
            "--train-points must be at least {unknowns} for {} clock column(s) with --law {}",
            args.freq.len(),
            args.law
        );
    }
    let mut groups: BTreeMap<String, Vec<DvfsRow>> = BTreeMap::new();
    // A repeated (group, clocks) row could land in both the fitted and the predicted points.
    let mut seen: HashMap<(String, Vec<String>), usize> = HashMap::new();
    let (mut skipped_target, mut skipped_clock) = (0usize, 0usize);
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("`{}` line {}", path.display(), i + 2))?;
        let Some(target) = rec
            .get(target_col)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            skipped_target += 1;
            continue;
        };
        let raw: Vec<String> = freq_cols
            .iter()
            .map(|&c| rec.get(c).unwrap_or("").trim().to_string())
            .collect();
        let clocks: Option<Vec<f64>> = raw
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|f| f.is_finite() && *f > 0.0))
            .collect();
        let Some(clocks) = clocks else {
            skipped_clock += 1;
            continue;
        };
        let group = rec.get(group_col).unwrap_or("").to_string();
        if let Some(first) = seen.insert((group.clone(), raw.clone()), i + 2) {
            bail!(
                "`{}` line {}: group `{group}` at clocks {} already appears on line {first}; \
                 average repeated measurements so that fitted and predicted points differ",
                path.display(),
                i + 2,
                raw.join(",")
            );
        }
        groups.entry(group).or_default().push(DvfsRow {
            clocks,
            raw_clocks: raw,
            target,
        });
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header = vec![args.group.clone()];
    header.extend(args.freq.iter().cloned());
    header.extend(["actual".to_string(), "predicted".to_string()]);
    out.write_record(&header)?;
    let mut rng = dynas::space::seeded_rng(args.seed);
    let (mut ape_sum, mut ape_n) = (0.0, 0usize);
    let mut too_small = Vec::new();
    println!("group,points,mape_percent");
    for (name, rows) in &groups {
        if rows.len() <= args.train_points {
            too_small.push(name.clone());
            continue;
        }
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.shuffle(&mut rng);
        let (train, test) = idx.split_at(args.train_points);
        let clocks: Vec<Vec<f64>> = train.iter().map(|&i| rows[i].clocks.clone()).collect();
        let y: Vec<f64> = train.iter().map(|&i| rows[i].target).collect();
        let law = DvfsScalingLaw::fit_with(&clocks, &y, &params)
            .with_context(|| format!("group `{name}`"))?;
        let (mut g_sum, mut g_n) = (0.0, 0usize);
        for &i in test {
            let r = &rows[i];
            let p = law.predict(&r.clocks);
            if r.target != 0.0 {
                g_sum += ((p - r.target) / r.target).abs();
                g_n += 1;
            }
            let mut rec = vec![name.clone()];
            rec.extend(r.raw_clocks.iter().cloned());
            rec.extend([r.target.to_string(), p.to_string()]);
            out.write_record(&rec)?;
        }
        if g_n == 0 {
            println!(
                "{name},{},undefined (every held-out latency is 0)",
                rows.len()
            );
        } else {
            println!("{name},{},{:.3}", rows.len(), 100.0 * g_sum / g_n as f64);
        }
        ape_sum += g_sum;
        ape_n += g_n;
    }
    println!(
        "skipped rows: {skipped_target} (missing or non-numeric `{}`), {skipped_clock} (missing or non-positive clock)",
        args.target
    );
    if !too_small.is_empty() {
        println!(
            "skipped groups with at most {} points: {}",
            args.train_points,
            too_small.join(",")
        );
    }
    if ape_n == 0 {
        bail!(
            "no group has more than --train-points {} points",
            args.train_points
        );
    }
    crate::paths::write_output("--predictions", &args.predictions, out.into_inner()?)?;
    println!("MAPE: {:.3} %", 100.0 * ape_sum / ape_n as f64);
    Ok(())
}
