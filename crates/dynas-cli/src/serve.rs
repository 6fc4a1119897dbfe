//! `dynas serve`: classify the Fashion-MNIST test stream with a pre-sampled family (Dynamic-OFA)
//! under co-runner load traces, one run per policy, each beside the simulator's prediction.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use dynas::dvfs::{CoRunnerParams, LoadTrace};
use dynas::search::deployment::Deployment;
use dynas::space::MbConvSpace;
use dynas::supernet::{
    BnStore, Family, PolicyComparison, ServeParams, ServePolicy, Supernet, SupernetConfig,
    serve_and_simulate,
};

use crate::paths::{CommandFiles, write_output};
use crate::serve_flags::ServeFlags;

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

/// Every file `dynas serve` reads (the supernet, the family's deployment and batch-norm store,
/// the data set, trace files) and writes (the report).
fn files(args: &ServeArgs) -> CommandFiles {
    let mut files = CommandFiles::new();
    files
        .input("--supernet", &args.supernet)
        .input("--family (its deployment)", deployment_path(args))
        .input("--family (its batch-norm store)", bn_path(args));
    crate::fmnist::declare_inputs(&mut files, &args.data);
    for trace in &args.flags.traces {
        if Path::new(trace).exists() {
            files.input("--traces", trace);
        }
    }
    files.output("--out", &args.out);
    files
}

fn deployment_path(args: &ServeArgs) -> PathBuf {
    args.family.join("deployment.json")
}

fn bn_path(args: &ServeArgs) -> PathBuf {
    args.family.join("bn_store.safetensors")
}

/// Runs `dynas serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let flags = &args.flags;
    let deployment_path = deployment_path(&args);
    let bn_path = bn_path(&args);
    files(&args).check()?;
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

    let input = crate::fmnist::supernet_input(supernet.space())?;
    let (train, _, test) = crate::fmnist::splits(&args.data, args.validation, &input)?;
    let norm = train.channel_stats();

    let slowest = deployment
        .points
        .iter()
        .map(|p| p.metrics.latency_ms)
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
    write_output("--out", &args.out, serde_json::to_string_pretty(&reports)?)?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
