//! `dynas cost` subcommands: fit and check cost models on your own measurements.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use dynas::cost::analytical::DvfsScalingLaw;
use dynas::cost::predictor::{
    ArchEncoding, ArchPredictor, Learner, RegressionMetrics, TargetScale,
};
use dynas::cost::table::read_arch_targets;
use rand::seq::SliceRandom;

/// `dynas cost` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit an architecture-level predictor on N random rows of a NAS-Bench-201-style CSV
    /// (architecture in `arch_str` or `op0..op5`), predict the other rows and report
    /// held-out accuracy.
    Fit(FitArgs),
    /// Fit the DVFS scaling law `latency = c0 + sum_j c_j / f_j` per group on K random
    /// operating points and predict the group's other points.
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
    let data = read_arch_targets(&args.csv, &args.target)?;
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
    let mut out = csv::Writer::from_path(&args.predictions)
        .with_context(|| format!("cannot write `{}`", args.predictions.display()))?;
    out.write_record(["arch_str", "actual", "predicted"])?;
    for (k, &i) in test.iter().enumerate() {
        out.write_record([
            data.cells[i].to_string(),
            actual[k].to_string(),
            predicted[k].to_string(),
        ])?;
    }
    out.flush()
        .with_context(|| format!("cannot write `{}`", args.predictions.display()))?;
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
    let m = RegressionMetrics::compute(&actual, &predicted)?;
    println!("model: {}", args.model);
    println!("within +-10 %: {:.2} %", 100.0 * m.within_10);
    println!("within +-20 %: {:.2} %", 100.0 * m.within_20);
    println!("RMSE: {:.6}", m.rmse);
    println!("Spearman: {:.4}", m.spearman);
    Ok(())
}

struct DvfsRow {
    clocks: Vec<f64>,
    raw_clocks: Vec<String>,
    target: f64,
}

fn dvfs_fit(args: &DvfsFitArgs) -> anyhow::Result<()> {
    let path = &args.csv;
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("`{}`: cannot read the header", path.display()))?
        .clone();
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
    if args.train_points < args.freq.len() + 1 {
        bail!(
            "--train-points must be at least {} for {} clock column(s)",
            args.freq.len() + 1,
            args.freq.len()
        );
    }
    let mut groups: BTreeMap<String, Vec<DvfsRow>> = BTreeMap::new();
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
        groups
            .entry(rec.get(group_col).unwrap_or("").to_string())
            .or_default()
            .push(DvfsRow {
                clocks,
                raw_clocks: raw,
                target,
            });
    }
    let mut out = csv::Writer::from_path(&args.predictions)
        .with_context(|| format!("cannot write `{}`", args.predictions.display()))?;
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
        let law = DvfsScalingLaw::fit(&clocks, &y).with_context(|| format!("group `{name}`"))?;
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
        println!(
            "{name},{},{:.3}",
            rows.len(),
            100.0 * g_sum / g_n.max(1) as f64
        );
        ape_sum += g_sum;
        ape_n += g_n;
    }
    out.flush()
        .with_context(|| format!("cannot write `{}`", args.predictions.display()))?;
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
    println!("MAPE: {:.3} %", 100.0 * ape_sum / ape_n as f64);
    Ok(())
}
