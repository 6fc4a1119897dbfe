//! `dynas serve`: execute any deployment (a HADAS deployment with early exits, a Dynamic-OFA
//! family, a single static network) on the Fashion-MNIST test split: first every point alone,
//! predicted against measured (top-1, exit rates, host latency), then the stream under
//! co-runner load traces, one run per policy, each beside the simulator's prediction.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use dynas::dvfs::{CoRunnerParams, LoadTrace};
use dynas::serve::{
    Family, PointCheck, PolicyComparison, ServeParams, ServePolicy, check_points,
    serve_and_simulate,
};
use dynas::space::MbConvSpace;
use dynas::supernet::{Supernet, SupernetConfig, bundle};

use crate::paths::{CommandFiles, write_output};
use crate::serve_flags::ServeFlags;

/// Arguments of `dynas serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The trained supernet (safetensors written by the `supernet_fashion_mnist` example).
    #[arg(long)]
    supernet: PathBuf,
    /// The deployment to serve (`deployment.json` of a bundle: `bn_store.safetensors` and, for
    /// points with exits, `exit_heads/` beside it), as `dynas hadas` or Dynamic-OFA
    /// pre-sampling write it.
    #[arg(long, required_unless_present = "family", conflicts_with = "family")]
    deployment: Option<PathBuf>,
    /// Deprecated: the bundle folder (same as `--deployment DIR/deployment.json`).
    #[arg(long)]
    family: Option<PathBuf>,
    /// Test images each point classifies alone before the policy runs (predicted against
    /// measured); 0 skips the check. At most the test split.
    #[arg(long, default_value_t = 10_000)]
    check_images: usize,
    /// Fashion-MNIST in IDX format (Debian's `dataset-fashion-mnist`).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Validation images held out of the training split (seed 0): the input normalisation
    /// comes from the rest, as in training.
    #[arg(long, default_value_t = 5000)]
    validation: usize,
    /// How to serve.
    #[command(flatten)]
    flags: ServeFlags,
    /// Seed of the simulator's latency noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON report: every measured run with its floor and the simulator's prediction.
    #[arg(long)]
    out: PathBuf,
}

/// Every file `dynas serve` reads (the supernet, the deployment bundle's deployment and
/// batch-norm store, the data set, trace files) and writes (the report).
fn files(args: &ServeArgs) -> anyhow::Result<CommandFiles> {
    let (flag, dir) = bundle_of(args)?;
    let mut files = CommandFiles::new();
    files
        .input("--supernet", &args.supernet)
        .input(
            format!("{flag} (its deployment)"),
            bundle::deployment_path(&dir),
        )
        .input(
            format!("{flag} (its batch-norm store)"),
            bundle::bn_store_path(&dir),
        );
    crate::fmnist::declare_inputs(&mut files, &args.data);
    for trace in &args.flags.traces {
        if Path::new(trace).exists() {
            files.input("--traces", trace);
        }
    }
    files.output("--out", &args.out);
    Ok(files)
}

/// The flag that named the bundle and its folder.
fn bundle_of(args: &ServeArgs) -> anyhow::Result<(&'static str, PathBuf)> {
    match (&args.deployment, &args.family) {
        (Some(file), _) => Ok(("--deployment", bundle::bundle_dir(file))),
        (None, Some(dir)) => Ok(("--family", dir.clone())),
        (None, None) => anyhow::bail!("--deployment is required"),
    }
}

/// Columns of the per-point check.
const POINT_HEADER: &str = "| point | top-1 predicted | top-1 measured | exit rates predicted | \
                            exit rates measured | latency predicted (ms) | host median (ms) |\n\
                            |---|---|---|---|---|---|---|";

fn rates(r: &[f64]) -> String {
    r.iter()
        .map(|v| format!("{:.1}", 100.0 * v))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn point_row(c: &PointCheck) -> String {
    format!(
        "| {} | {:.2} | {:.2} | {} | {} | {:.3} | {:.3} |",
        c.point,
        c.predicted_top1,
        c.measured_top1,
        rates(&c.predicted_exit_rates),
        rates(&c.measured_exit_rates),
        c.predicted_latency_ms,
        c.host_median_ms
    )
}

/// Runs `dynas serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let flags = &args.flags;
    files(&args)?.check()?;
    let (flag, bundle) = bundle_of(&args)?;
    let deployment_path = bundle::deployment_path(&bundle);
    let policies: Vec<ServePolicy> = if flags.policies == "all" {
        ServePolicy::ALL.to_vec()
    } else {
        flags
            .policies
            .split(',')
            .map(ServePolicy::from_name)
            .collect::<Result<_, _>>()
            .context("--policies")?
    };
    let traces = flags
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

    let mut supernet = Supernet::new(
        MbConvSpace::ofa_mnist(),
        SupernetConfig::default(),
        dynas::supernet::tch::Device::Cpu,
    )?;
    supernet
        .load(&args.supernet)
        .with_context(|| format!("--supernet `{}`", args.supernet.display()))?;
    let (family, deployment) = Family::from_bundle(&supernet, &bundle)
        .with_context(|| format!("{flag} `{}`", deployment_path.display()))?;

    let input = crate::fmnist::supernet_input(supernet.space())?;
    let (train, _, test) = crate::fmnist::splits(&args.data, args.validation, &input)?;
    crate::fmnist::check_split(&args.supernet, args.validation)?;
    let norm = train.channel_stats();

    // Every point alone on the test split, as it serves: predicted against measured. The
    // runtime manager then plans with the host latencies measured here (a HADAS deployment
    // carries a board's modelled latencies; energies stay as deployed, modelled).
    let mut checks = Vec::new();
    let family = if args.check_images > 0 {
        checks = check_points(&family, &test, &norm, Some(args.check_images))?;
        println!("{}", POINT_HEADER);
        for c in &checks {
            println!("{}", point_row(c));
        }
        let medians: Vec<f64> = checks.iter().map(|c| c.host_median_ms).collect();
        family.with_idle_latencies(&deployment, &medians)?
    } else {
        family
    };
    let slowest = family
        .members()
        .iter()
        .map(|m| m.idle_latency_ms)
        .fold(0.0, f64::max);
    let params = ServeParams {
        target_ms: flags.target_ms.unwrap_or(1.2 * slowest),
        threads: flags.threads,
        window: flags.window,
        duration_s: 600.0,
        ..ServeParams::default()
    }
    .with_miss_guard(flags.miss_guard())?;
    // Refuses an infeasible target before any run.
    params.check(&family)?;
    let co = CoRunnerParams {
        threads: flags.co_threads,
        time_scale: flags.time_scale,
        ..CoRunnerParams::default()
    };
    println!(
        "family of {} (idle latency {:.3}..{slowest:.3} ms), target {:.3} ms, {} libtorch thread(s)",
        family.members().len(),
        family.fastest_idle_ms(),
        params.target_ms,
        flags.threads
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
    let report = serde_json::json!({ "points": checks, "runs": reports });
    write_output("--out", &args.out, serde_json::to_string_pretty(&report)?)?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
