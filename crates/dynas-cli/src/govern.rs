//! `dynas govern` subcommands.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dynas::dvfs::{
    ClockExtremeGovernor, ConfigurationSet, Constraints, Fallback, Governor, LoadTrace,
    ManagerObjective, ManagerParams, ManagerSettings, MissGuard, OndemandGovernor, OndemandParams,
    Policy, SimParams, SimReport, Simulator, build_policy, static_max_choice,
};

use crate::paths::CommandFiles;

/// `dynas govern` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a co-runner load trace with a policy over a configuration table and report
    /// deadline misses, accuracy, energy and switches.
    Simulate(SimulateArgs),
}

/// Arguments of `dynas govern simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Configuration table (JSON: `{"configurations": [{"genotype", "label",
    /// "exits", "point", "accuracy", "latency_ms", "energy_mj"}, ...]}`), a
    /// deployment written by a search or by Dynamic-OFA pre-sampling (JSON with `points`), or
    /// `builtin:dynamic-ofa-xavier` (Dynamic-OFA's published levels over the Jetson AGX Xavier
    /// clocks, scaled by the analytical cost model).
    #[arg(long, value_name = "FILE")]
    configs: PathBuf,
    /// Load trace (CSV `time_s,co_runner_load`), or `builtin:NAME` for a shipped trace
    /// (steady, step, periodic, bursty).
    #[arg(long, value_name = "FILE")]
    trace: String,
    /// Policy: static-max, subnet-only, dvfs-only, joint, performance, powersave, ondemand,
    /// or `all` (the four comparison policies).
    #[arg(long, value_name = "NAME")]
    policy: String,
    /// Latency target per inference, ms [default: the latency of the most accurate
    /// configuration at the highest clocks].
    #[arg(long, value_name = "X")]
    target_ms: Option<f64>,
    /// Accuracy floor (same unit as the table's accuracies).
    #[arg(long, value_name = "A")]
    accuracy_floor: Option<f64>,
    /// Energy budget per inference, mJ (decisions over it are flagged).
    #[arg(long, value_name = "MJ")]
    energy_budget_mj: Option<f64>,
    /// Runtime-manager objective: min-energy or max-accuracy.
    #[arg(long, default_value = "min-energy")]
    objective: String,
    /// Runtime-manager fallback when nothing is feasible: prefer-deadline or prefer-accuracy.
    #[arg(long, default_value = "prefer-deadline")]
    fallback: String,
    /// Deadline-miss guard of the runtime manager: the largest share of the remembered
    /// inferences whose delay may make the chosen configuration miss the target (off when
    /// not given; see `MissGuard`).
    #[arg(long, value_name = "SHARE")]
    miss_budget: Option<f64>,
    /// Latency samples the deadline-miss guard remembers.
    #[arg(long, default_value_t = 2048, requires = "miss_budget")]
    miss_samples: usize,
    /// Seed of the simulated latency noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the report(s) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs a `dynas govern` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Simulate(args) => simulate(&args),
    }
}

fn load_configs(path: &std::path::Path) -> anyhow::Result<ConfigurationSet> {
    if path.as_os_str() == "builtin:dynamic-ofa-xavier" {
        let device = dynas::cost::DeviceProfile::jetson_agx_xavier();
        let model = dynas::cost::AnalyticalModel::new(
            device.clone(),
            dynas::cost::AnalyticalParams::default(),
        )?;
        return Ok(dynas::dvfs::reference::dynamic_ofa_xavier(&model, &device)?);
    }
    // A device file (/dev/zero) would be read forever by the table's reader.
    dynas::space::files::check_input_kind(path)
        .with_context(|| format!("`{}` cannot be read", path.display()))?;
    Ok(ConfigurationSet::from_file(path)?)
}

fn load_trace(spec: &str) -> anyhow::Result<LoadTrace> {
    Ok(match spec.strip_prefix("builtin:") {
        Some(name) => LoadTrace::shipped(name)?,
        None => LoadTrace::from_file(spec)?,
    })
}

/// Every file `govern simulate` reads and writes.
fn files(args: &SimulateArgs) -> CommandFiles {
    let mut files = CommandFiles::new();
    if args.configs.as_os_str() != "builtin:dynamic-ofa-xavier" {
        files.input("--configs", &args.configs);
    }
    if !args.trace.starts_with("builtin:") {
        files.input("--trace", &args.trace);
    }
    if let Some(out) = &args.out {
        files.output("--out", out);
    }
    files
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    files(args).check()?;
    let set = load_configs(&args.configs)
        .with_context(|| format!("loading --configs {}", args.configs.display()))?;
    let trace =
        load_trace(&args.trace).with_context(|| format!("loading --trace {}", args.trace))?;
    let target = match args.target_ms {
        Some(t) => t,
        None => default_target(&set)?,
    };
    let constraints = Constraints::new(target, args.accuracy_floor, args.energy_budget_mj)
        .context("invalid constraints (--target-ms, --accuracy-floor, --energy-budget-mj)")?;
    let objective = match args.objective.as_str() {
        "min-energy" => ManagerObjective::MinEnergy,
        "max-accuracy" => ManagerObjective::MaxAccuracy,
        other => bail!("unknown --objective `{other}` (min-energy, max-accuracy)"),
    };
    let fallback = match args.fallback.as_str() {
        "prefer-deadline" => Fallback::PreferDeadline,
        "prefer-accuracy" => Fallback::PreferAccuracy,
        other => bail!("unknown --fallback `{other}` (prefer-deadline, prefer-accuracy)"),
    };
    let manager = ManagerSettings {
        history: 5,
        headroom: 0.1,
        up_margin: 0.1,
        up_patience: 3,
        objective,
        fallback,
        ..ManagerSettings::default()
    }
    .check()
    .context("runtime-manager parameters")?
    .with_miss_guard(args.miss_budget.map(|miss_budget| MissGuard {
        miss_budget,
        samples: args.miss_samples,
    }))
    .context("runtime-manager parameters (--miss-budget, --miss-samples)")?;
    let sim = SimParams::for_target(&constraints).with_seed(args.seed);

    let policies: Vec<String> = if args.policy == "all" {
        Policy::ALL.iter().map(|p| p.name().to_string()).collect()
    } else {
        vec![args.policy.clone()]
    };
    let mut reports = Vec::with_capacity(policies.len());
    for name in &policies {
        let (subset, mut governor) = governor_for(name, &set, &constraints, manager)?;
        let report = Simulator::new(subset, sim)
            .run_labelled(name, &mut governor, &trace, &constraints)
            .with_context(|| format!("simulating policy `{name}`"))?;
        reports.push(report);
    }
    print_summary(&reports);
    if let Some(out) = &args.out {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        crate::paths::write_output("--out", out, json)?;
        println!("report written to {}", out.display());
    }
    Ok(())
}

/// The longest latency per inference, ms, taken as a default target (a minute): a longer one
/// in the table is a unit mistake (seconds or microseconds as ms) or a corrupt row.
const MAX_DEFAULT_TARGET_MS: f64 = 60_000.0;

/// The latency of the most accurate configuration at the highest clocks; refused when it is
/// not a plausible latency (then the target must be given).
fn default_target(set: &ConfigurationSet) -> anyhow::Result<f64> {
    let c = set.configurations();
    let sum =
        |p: &dynas::cost::OperatingPoint| p.clocks().map(|(_, hz)| u128::from(hz)).sum::<u128>();
    let top = c.iter().map(|x| sum(&x.point)).max().unwrap_or(0);
    let chosen = c
        .iter()
        .filter(|x| sum(&x.point) == top)
        .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
        .unwrap_or(&c[0]);
    let target = chosen.latency_ms;
    if !(target.is_finite() && target > 0.0 && target <= MAX_DEFAULT_TARGET_MS) {
        bail!(
            "the default latency target would be {target} ms (the latency of `{}`, the most \
             accurate configuration at the highest clocks), not a plausible latency per \
             inference (at most {MAX_DEFAULT_TARGET_MS} ms); check the table's `latency_ms` \
             unit or give --target-ms",
            chosen.name()
        );
    }
    Ok(target)
}

fn governor_for(
    name: &str,
    set: &ConfigurationSet,
    constraints: &Constraints,
    manager: ManagerParams,
) -> anyhow::Result<(ConfigurationSet, Box<dyn Governor>)> {
    let variant = static_max_choice(set, constraints)?;
    Ok(match name {
        "performance" => (
            set.clone(),
            Box::new(ClockExtremeGovernor::performance(set.clone(), variant)?),
        ),
        "powersave" => (
            set.clone(),
            Box::new(ClockExtremeGovernor::powersave(set.clone(), variant)?),
        ),
        "ondemand" => (
            set.clone(),
            Box::new(OndemandGovernor::new(
                set.clone(),
                variant,
                OndemandParams::default(),
            )?),
        ),
        other => {
            let policy = Policy::from_name(other).map_err(|_| {
                anyhow::anyhow!(
                    "unknown --policy `{other}` (static-max, subnet-only, dvfs-only, joint, \
                     performance, powersave, ondemand, all)"
                )
            })?;
            build_policy(policy, set, constraints, manager)?
        }
    })
}

fn print_summary(reports: &[SimReport]) {
    if let Some(r) = reports.first() {
        // `infeasible`: windows where nothing in the policy's set meets every constraint;
        // `fallback`: windows where the policy applied its infeasibility fallback.
        println!(
            "trace `{}`: {} windows, target {:.2} ms{}",
            r.trace,
            r.windows,
            r.latency_target_ms,
            r.accuracy_floor
                .map(|a| format!(", accuracy floor {a}"))
                .unwrap_or_default()
        );
    }
    println!(
        "{:<12} {:>10} {:>8} {:>9} {:>12} {:>10} {:>9} {:>11} {:>9}",
        "policy",
        "inferences",
        "misses",
        "miss %",
        "mean acc",
        "mJ/inf",
        "switches",
        "infeasible",
        "fallback"
    );
    for r in reports {
        println!(
            "{:<12} {:>10} {:>8} {:>8.2}% {:>12.3} {:>10.2} {:>9} {:>11} {:>9}",
            r.policy,
            r.inferences,
            r.deadline_misses,
            100.0 * r.miss_rate,
            r.mean_accuracy,
            r.energy_per_inference_mj,
            r.switches,
            r.infeasible_windows,
            r.fallback_windows
        );
    }
}
