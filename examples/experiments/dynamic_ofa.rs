//! Dynamic-OFA for real, on this host: pre-sample a Pareto family from a trained Fashion-MNIST
//! supernet, then serve the test images under a co-runner that loads the cores following the
//! shipped load traces, comparing static-largest, static-smallest (the feasibility floor), the
//! reactive and the predictive runtime manager, and the simulator's predictions for the same
//! family and traces.
//!
//! ```text
//! # after examples/experiments/supernet_fashion_mnist.rs wrote runs/fmnist/supernet.safetensors
//! cargo run --release -p dynas-serve --example dynamic_ofa -- presample \
//!     --supernet runs/fmnist --out runs/dofa --samples 40 --family 6
//! cargo run --release -p dynas-serve --example dynamic_ofa -- serve \
//!     --supernet runs/fmnist --family runs/dofa --traces step,periodic,bursty,steady \
//!     --time-scale 0.5
//! ```
//!
//! Common flags: `--data DIR` (Fashion-MNIST IDX files), `--train-limit N` and `--val N` (the
//! training run's split: validation images are never trained on), `--seed N`.
//! `presample`: `--samples N`, `--family N`, `--repeats N`, `--calib-batches N`.
//! `serve`: `--target-ms X` (default 1.2 x the slowest member's idle latency), `--traces
//! a,b` (shipped names or CSV files), `--time-scale F` (trace time multiplier), `--policies
//! a,b|all`, `--threads N` (libtorch, default 1), `--co-threads N` (default: all cores),
//! `--window N`, `--miss-budget F` / `--miss-samples N` / `--no-miss-guard` (the managers'
//! deadline-miss guard: default budget 0 over the last 2,048 inferences), `--out FILE` (JSON
//! report, default `<family>/serve.json`, or `serve-2.json`, ... when taken). `presample`
//! refuses an `--out` folder that already holds a family.

use clap::{Parser, Subcommand};

#[path = "../../crates/dynas-cli/src/serve_flags.rs"]
mod serve_flags;
use std::path::{Path, PathBuf};

use dynas_cost::{CostModel, KeyScheme, LayerLut, LutModel, OperatingPoint};
use dynas_dvfs::{CoRunnerParams, LoadTrace, MissGuard};
use dynas_search::deployment::Deployment;
use dynas_serve::{
    Family, PolicyComparison, PresampleParams, ServeParams, ServePolicy, lift_genotype, presample,
    price_deployment, serve_and_simulate,
};
use dynas_space::{MbConvSpace, SearchSpace};
use dynas_supernet::{
    BnStore, Dataset, Split, SplitRecord, Supernet, SupernetConfig, SupernetError,
};

/// Dynamic-OFA on this host: pre-sample a family from a trained supernet, then serve it.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score sampled subnets on the validation split and keep a Pareto family.
    Presample {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: PresampleArgs,
    },
    /// Serve the test images with the family under the load traces.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: ServeArgs,
    },
}

/// Flags of both commands: the data, the supernet and the training run's split.
#[derive(clap::Args)]
struct Common {
    /// Fashion-MNIST IDX files.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Folder of the trained supernet (`supernet.safetensors`).
    #[arg(long, default_value = "runs/fmnist")]
    supernet: PathBuf,
    /// Use the first N training images (as the training run did).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Validation images split off the training set (never trained on).
    #[arg(long, default_value_t = 5000)]
    val: usize,
    /// Seed of the split and of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
struct PresampleArgs {
    /// Output folder of the family.
    #[arg(long, default_value = "runs/dofa")]
    out: PathBuf,
    /// Subnets sampled.
    #[arg(long, default_value_t = 40)]
    samples: usize,
    /// Members kept in the family.
    #[arg(long, default_value_t = 6)]
    family: usize,
    /// Timing repeats per subnet.
    #[arg(long, default_value_t = 30)]
    repeats: usize,
    /// Batches of BN recalibration per subnet.
    #[arg(long, default_value_t = 10)]
    calib_batches: usize,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Folder `presample` wrote.
    #[arg(long, default_value = "runs/dofa")]
    family: PathBuf,
    /// How to serve (the same flags as `dynas serve`).
    #[command(flatten)]
    flags: serve_flags::ServeFlags,
    /// JSON report (default `<family>/serve.json`, or `serve-N.json` when taken).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The training run's train / validation split, as recorded beside the supernet (or, for a
/// supernet without a record, as `examples/experiments/supernet_fashion_mnist.rs` draws it from the same
/// flags), and the test split. Flags that would hold out other images are refused.
fn data(a: &Common) -> Result<(Dataset, Dataset, Dataset), SupernetError> {
    let full = Dataset::mnist_dir(&a.data, Split::Train)?;
    let flags = SplitRecord {
        validation_images: a.val.min(full.len() / 5).max(1),
        seed: a.seed,
        train_images: a.train_limit.unwrap_or(full.len()),
    };
    let model = a.supernet.join("supernet.safetensors");
    let split = match SplitRecord::load_beside(&model)? {
        Some(trained) => {
            flags.check_held_out_from(&trained, &SplitRecord::path_beside(&model))?;
            trained
        }
        None => flags,
    };
    let (train, val) = split.split(&full)?;
    let test = Dataset::mnist_dir(&a.data, Split::Test)?;
    Ok((train, val, test))
}

fn load_supernet(dir: &Path) -> Result<Supernet, SupernetError> {
    let mut s = Supernet::new(
        MbConvSpace::ofa_mnist(),
        SupernetConfig::default(),
        tch::Device::Cpu,
    )?;
    s.load(dir.join("supernet.safetensors"))?;
    Ok(s)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Presample { common, args } => run_presample(&common, &args),
        Command::Serve { common, args } => run_serve(&common, &args),
    }
}

fn run_presample(c: &Common, a: &PresampleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let out = &a.out;
    if out.join("deployment.json").exists() {
        return Err(format!(
            "--out `{}` already holds a family (deployment.json): choose another folder or \
             remove it",
            out.display()
        )
        .into());
    }
    std::fs::create_dir_all(out)?;
    let (train, val, _) = data(c)?;
    let norm = train.channel_stats();
    let supernet = load_supernet(&c.supernet)?;
    let params = PresampleParams {
        samples: a.samples,
        family_size: a.family,
        repeats: a.repeats,
        calibration_batches: a.calib_batches,
        seed: c.seed,
        ..PresampleParams::default()
    }
    .check()?;
    let t = std::time::Instant::now();
    let p = presample(&supernet, &train, &val, &norm, &params)?;
    println!(
        "scored {} subnets on {} validation images in {:.0} s; Pareto front {}, family {}",
        p.samples.len(),
        val.len(),
        t.elapsed().as_secs_f64(),
        p.front_size,
        p.family.len()
    );
    // The same family priced by the measured Jetson AGX Xavier per-layer table of this space.
    let lut_path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/lut/ofa-mnist/jetson_agx_xavier.json"
    ));
    let priced = match LayerLut::from_harmonic_file(lut_path) {
        Ok(lut) => Some(price_deployment(
            &p.deployment,
            supernet.space(),
            &LutModel::new(lut, KeyScheme::Harmonic),
        )?),
        Err(e) => {
            eprintln!("no Jetson pricing: {e}");
            None
        }
    };
    // The published Xavier NX tables are for the ImageNet OFA MobileNetV3 (width 1.2): they
    // price each member's lifted analogue (same stage choices in every stage, 224 x 224).
    let ofa = MbConvSpace::ofa_mobilenet_v3_width(1.2)?;
    let mut nx: Vec<(String, Vec<f64>)> = Vec::new();
    for unit in ["cpu", "gpu"] {
        let dir = format!(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../dynas-data/data/lut/dynamic-ofa-xavier-nx/{}"
            ),
            unit
        );
        match LutModel::from_ofa_dir(&dir) {
            Ok(model) => {
                let mut v = Vec::new();
                for m in p.members() {
                    let lifted = lift_genotype(supernet.space(), &m.genotype, &ofa, 224)?;
                    let net = ofa.decode(&lifted)?;
                    v.push(model.estimate(&net, &OperatingPoint::default())?.latency_ms);
                }
                nx.push((unit.to_string(), v));
            }
            Err(e) => eprintln!("no Xavier NX {unit} pricing: {e}"),
        }
    }
    let nx_cell = |unit: &str, k: usize| {
        nx.iter()
            .find(|(u, _)| u == unit)
            .map_or("-".into(), |(_, v)| format!("{:.1}", v[k]))
    };
    println!(
        "| member | val top-1 % | host 1 thread ms | host 2 threads ms | MACs | AGX Xavier LUT ms | NX CPU ms (lifted) | NX GPU ms (lifted) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (k, m) in p.members().enumerate() {
        let cell = |t: i32| {
            m.latency_ms
                .get(&t)
                .map_or("-".into(), |v| format!("{v:.3}"))
        };
        println!(
            "| {} | {:.2} | {} | {} | {} | {} | {} | {} |",
            m.genotype,
            100.0 * m.accuracy,
            cell(1),
            cell(2),
            m.macs,
            priced
                .as_ref()
                .map_or("-".into(), |v| format!("{:.3}", v[k])),
            nx_cell("cpu", k),
            nx_cell("gpu", k)
        );
    }
    if let Some(span) = p.latency_span(1) {
        println!("family latency span (1 thread): {span:.2}x");
    }
    p.deployment.write_json(out.join("deployment.json"))?;
    p.bn.save(out.join("bn_store.safetensors"))?;
    std::fs::write(
        out.join("samples.json"),
        serde_json::to_string_pretty(&p.samples)?,
    )?;
    let boards = serde_json::json!({
        "jetson_agx_xavier_ofa_mnist_lut_ms": priced,
        "xavier_nx_lifted_224_ms": nx.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    });
    std::fs::write(
        out.join("board_prices.json"),
        serde_json::to_string_pretty(&boards)?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}

fn run_serve(c: &Common, a: &ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let dir = &a.family;
    let deployment = Deployment::from_json_file(dir.join("deployment.json"))?;
    let supernet = load_supernet(&c.supernet)?;
    let bn = BnStore::load(dir.join("bn_store.safetensors"), &supernet)?;
    let family = Family::from_deployment(&supernet, &bn, &deployment)?;
    let (train, _, test) = data(c)?;
    let norm = train.channel_stats();
    let slowest = deployment
        .points
        .iter()
        .map(|p| p.metrics.latency_ms)
        .fold(0.0, f64::max);
    let target = a.flags.target_ms.unwrap_or(1.2 * slowest);
    let policies: Vec<ServePolicy> = if a.flags.policies == "all" {
        ServePolicy::ALL.to_vec()
    } else {
        a.flags
            .policies
            .split(',')
            .map(ServePolicy::from_name)
            .collect::<Result<_, _>>()?
    };
    println!(
        "family of {} (idle latency {:.3}..{:.3} ms), target {target:.3} ms, {} libtorch thread(s)",
        family.members().len(),
        family.fastest_idle_ms(),
        slowest,
        a.flags.threads
    );
    let params = ServeParams {
        target_ms: target,
        threads: a.flags.threads,
        window: a.flags.window,
        duration_s: 600.0,
        ..ServeParams::default()
    }
    .with_miss_guard(a.flags.miss_guard())?;
    let co = CoRunnerParams {
        threads: a.flags.co_threads,
        time_scale: a.flags.time_scale,
        ..CoRunnerParams::default()
    };
    let mut reports = Vec::new();
    println!("\n{}", PolicyComparison::MARKDOWN_HEADER);
    for name in &a.flags.traces {
        let trace = if Path::new(name).exists() {
            LoadTrace::from_file(name)?
        } else {
            LoadTrace::shipped(name)?
        };
        let rows = serve_and_simulate(
            &family, &test, &norm, &trace, &policies, &params, &co, 0.03, c.seed,
        )?;
        for row in &rows {
            println!("{}", row.markdown_row());
        }
        reports.extend(rows);
    }
    // The default report never replaces an earlier run's: serve.json, serve-2.json, ...
    let out = a.out.clone().unwrap_or_else(|| {
        (1..)
            .map(|i| match i {
                1 => dir.join("serve.json"),
                i => dir.join(format!("serve-{i}.json")),
            })
            .find(|p| !p.exists())
            .expect("an unused report name")
    });
    std::fs::write(&out, serde_json::to_string_pretty(&reports)?)?;
    println!("\nwrote {}", out.display());
    Ok(())
}
