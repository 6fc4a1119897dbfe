//! `dynas serve`: classify the Fashion-MNIST test stream with a pre-sampled family (Dynamic-OFA)
//! under co-runner load traces, one run per policy, each beside the simulator's prediction.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use dynas::dvfs::{CoRunnerParams, LoadTrace};
use dynas::search::deployment::Deployment;
use dynas::space::{MbConvSpace, seeded_rng};
use dynas::supernet::{
    BnStore, Dataset, Family, PolicyComparison, ServeParams, ServePolicy, Split, Supernet,
    SupernetConfig, serve_and_simulate,
};

use crate::paths::{Flagged, check_outputs};

/// Arguments of `dynas serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The trained supernet (safetensors written by the `supernet_fashion_mnist` example).
    #[arg(long)]
    supernet: PathBuf,
    /// Folder the Dynamic-OFA pre-sampling wrote (`deployment.json`, `bn_store.safetensors`).
    #[arg(long)]
    family: PathBuf,
    /// Fashion-MNIST in IDX format (Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Validation images held out of the training split (seed 0): the input normalisation
    /// comes from the rest, as in training.
    #[arg(long, default_value_t = 5000)]
    validation: usize,
    /// Latency target in ms (default 1.2 x the slowest member's idle latency); a target no
    /// member meets on an idle machine is refused.
    #[arg(long)]
    target_ms: Option<f64>,
    /// Load traces, comma-separated: shipped names or CSV files.
    #[arg(long, value_delimiter = ',', default_values = ["step", "periodic", "bursty", "steady"])]
    traces: Vec<String>,
    /// Trace time multiplier (0.5 plays a trace twice as fast).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Policies, comma-separated (static-largest, static-smallest, reactive, predictive), or
    /// `all`.
    #[arg(long, default_value = "all")]
    policies: String,
    /// libtorch threads.
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Co-runner threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    co_threads: usize,
    /// Inferences per runtime-manager window.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Seed of the simulator's latency noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON report: every measured run with its floor and the simulator's prediction.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `dynas serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let deployment_path = args.family.join("deployment.json");
    let bn_path = args.family.join("bn_store.safetensors");
    check_outputs(
        &[
            Flagged::new("--supernet", &args.supernet),
            Flagged::new("--family", &deployment_path),
            Flagged::new("--family", &bn_path),
        ],
        &[Flagged::new("--out", &args.out)],
    )?;
    let policies: Vec<ServePolicy> = if args.policies == "all" {
        ServePolicy::ALL.to_vec()
    } else {
        args.policies
            .split(',')
            .map(ServePolicy::from_name)
            .collect::<Result<_, _>>()
            .context("--policies")?
    };
    let traces = args
        .traces
        .iter()
        .map(|name| {
            if Path::new(name).exists() {
                LoadTrace::from_file(name)
            } else {
                LoadTrace::shipped(name)
            }
            .with_context(|| format!("--traces `{name}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let deployment = Deployment::from_json_file(&deployment_path)?;
    let mut supernet = Supernet::new(
        MbConvSpace::ofa_mnist(),
        SupernetConfig::default(),
        dynas::supernet::tch::Device::Cpu,
    )?;
    supernet
        .load(&args.supernet)
        .with_context(|| format!("--supernet `{}`", args.supernet.display()))?;
    let bn = BnStore::load(&bn_path, &supernet)?;
    let family = Family::from_deployment(&supernet, &bn, &deployment)?;

    let full = Dataset::mnist_dir(&args.data, Split::Train)?;
    if args.validation == 0 || args.validation >= full.len() {
        bail!(
            "--validation must be in 1..{}, got {}",
            full.len(),
            args.validation
        );
    }
    let (train, _) = full.split_validation(args.validation, &mut seeded_rng(0))?;
    let norm = train.channel_stats();
    let test = Dataset::mnist_dir(&args.data, Split::Test)?;

    let slowest = deployment
        .points
        .iter()
        .map(|p| p.metrics.latency_ms)
        .fold(0.0, f64::max);
    let params = ServeParams {
        target_ms: args.target_ms.unwrap_or(1.2 * slowest),
        threads: args.threads,
        window: args.window,
        duration_s: 600.0,
        ..ServeParams::default()
    };
    // Refuses an infeasible target before any run.
    params.check(&family)?;
    let co = CoRunnerParams {
        threads: args.co_threads,
        time_scale: args.time_scale,
        ..CoRunnerParams::default()
    };
    println!(
        "family of {} (idle latency {:.3}..{slowest:.3} ms), target {:.3} ms, {} libtorch thread(s)",
        family.members().len(),
        family.fastest_idle_ms(),
        params.target_ms,
        args.threads
    );
    println!("\n{}", PolicyComparison::MARKDOWN_HEADER);
    let mut reports = Vec::new();
    for trace in &traces {
        let rows = serve_and_simulate(
            &family, &test, &norm, trace, &policies, &params, &co, 0.03, args.seed,
        )?;
        for row in &rows {
            println!("{}", row.markdown_row());
        }
        reports.extend(rows);
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&reports)?)
        .with_context(|| format!("--out `{}`", args.out.display()))?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
