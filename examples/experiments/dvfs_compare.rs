//! Compares static max clocks, subnet switching only (Dynamic-OFA), DVFS only and the joint
//! runtime manager on the four shipped load traces.
//!
//! Subnet family: Dynamic-OFA's published GPU levels (Jetson Xavier NX); clocks: the Jetson
//! AGX Xavier preset (14 GPU x 9 EMC); clock scaling of latency and energy: the analytical
//! DVFS-aware cost model of `dynas-cost` with its default parameters.
//!
//! ```text
//! cargo run --release -p dynas-dvfs --example dvfs_compare -- \
//!     [TARGET_MS] [FLOOR|none] [min-energy|max-accuracy] [CONFIGS_OUT]
//! ```
//!
//! A fifth row per trace, `joint @ iso-miss`, re-runs the joint manager with the smallest
//! headroom in 0.10, 0.15, ..., 0.40 whose deadline misses do not exceed subnet-only's.
//!
//! It also prints the energy of the smallest and largest level over the GPU clocks (at the
//! highest EMC clock) and over the EMC clocks (at the highest GPU clock).

use clap::Parser;
use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
use dynas_dvfs::reference::dynamic_ofa_xavier;
use dynas_dvfs::{
    Constraints, Fallback, LoadTrace, ManagerObjective, ManagerSettings, Policy, SimParams,
    Simulator, build_policy, compare_policies,
};

/// Static clocks vs subnet switching vs DVFS vs the joint manager on the shipped traces.
#[derive(Parser)]
struct Args {
    /// Latency target per inference, in ms.
    #[arg(default_value_t = 90.0)]
    target_ms: f64,
    /// Accuracy floor in percent, or `none`.
    #[arg(default_value = "none", value_parser = parse_floor)]
    floor: Floor,
    /// What the manager optimises under the constraints.
    #[arg(value_enum, default_value_t = Objective::MaxAccuracy)]
    objective: Objective,
    /// Also write the configuration table (JSON) here.
    configs_out: Option<String>,
}

/// An optional accuracy floor (its own type, so clap does not read `Option` as "may be absent").
#[derive(Clone, Copy, Debug)]
struct Floor(Option<f64>);

fn parse_floor(s: &str) -> Result<Floor, String> {
    match s {
        "none" => Ok(Floor(None)),
        _ => s
            .parse()
            .map(|f| Floor(Some(f)))
            .map_err(|e| format!("`{s}` is neither a percentage nor `none`: {e}")),
    }
}

/// The manager objectives, as the command line spells them.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Objective {
    /// Least energy that meets the target and the floor.
    MinEnergy,
    /// Highest accuracy that meets the target.
    MaxAccuracy,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let target = args.target_ms;
    let floor = args.floor.0;
    let objective = match args.objective {
        Objective::MaxAccuracy => ManagerObjective::MaxAccuracy,
        Objective::MinEnergy => ManagerObjective::MinEnergy,
    };
    let params = ManagerSettings {
        history: 5,
        headroom: 0.1,
        up_margin: 0.1,
        up_patience: 3,
        objective,
        fallback: Fallback::PreferDeadline,
        ..ManagerSettings::default()
    }
    .check()?;
    let device = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default())?;
    let set = dynamic_ofa_xavier(&model, &device)?;
    if let Some(out) = &args.configs_out {
        set.to_json_file(out)?;
        eprintln!("configuration table written to {out}");
    }
    let constraints = Constraints::new(target, floor, None)?;
    let c = set.configurations();
    let top_gpu = device.gpu_hz.last().copied();
    let top_mem = device.memory_hz.last().copied();
    for level in [0usize, 5] {
        let of_level = |pred: &dyn Fn(&dynas_dvfs::Configuration) -> bool| -> String {
            c.iter()
                .skip(level * 126)
                .take(126)
                .filter(|x| pred(x))
                .map(|x| format!("{:.0}", x.energy_mj))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "level {level} energy (mJ) over GPU clocks at top EMC: {}",
            of_level(&|x| x.point.memory_hz() == top_mem)
        );
        println!(
            "level {level} energy (mJ) over EMC clocks at top GPU: {}",
            of_level(&|x| x.point.gpu_hz() == top_gpu)
        );
    }
    println!(
        "{} configurations; target {target} ms; accuracy floor {}; objective {objective:?}",
        set.len(),
        floor.map_or("none".to_string(), |f| format!("{f} %"))
    );
    println!(
        "\n| trace | policy | deadline misses | miss % | mean top-1 % | energy / inference (mJ) | vs subnet-only | switches |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for name in ["steady", "step", "periodic", "bursty"] {
        let trace = LoadTrace::shipped(name)?;
        let reports = compare_policies(
            &set,
            &trace,
            &constraints,
            params,
            SimParams::for_target(&constraints),
        )?;
        let subnet = reports[1].energy_mj;
        let mut rows = reports.clone();
        for step in 2..=8 {
            let headroom = 0.05 * f64::from(step);
            let p = ManagerSettings {
                history: 5,
                headroom,
                up_margin: 0.1,
                up_patience: 3,
                objective,
                fallback: Fallback::PreferDeadline,
                ..ManagerSettings::default()
            }
            .check()?;
            let (sub, mut g) = build_policy(Policy::Joint, &set, &constraints, p)?;
            let label = format!("joint @ iso-miss (headroom {headroom:.2})");
            let r = Simulator::new(sub, SimParams::for_target(&constraints)).run_labelled(
                &label,
                &mut g,
                &trace,
                &constraints,
            )?;
            if r.deadline_misses <= reports[1].deadline_misses || step == 8 {
                rows.push(r);
                break;
            }
        }
        for r in &rows {
            println!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:+.1} % | {} |",
                r.trace,
                r.policy,
                r.deadline_misses,
                100.0 * r.miss_rate,
                r.mean_accuracy,
                r.energy_per_inference_mj,
                100.0 * (r.energy_mj / subnet - 1.0),
                r.switches
            );
        }
    }
    Ok(())
}
