//! A run-time loop: the runtime manager decides, a [`FrequencyControl`] backend applies the
//! clocks, a [`PowerSensor`] measures. Runs on simulated backends by default; on a Jetson AGX
//! Xavier (as root) pass `--sysfs /` to drive the real cpufreq / devfreq / EMC files and read
//! the INA3221 rails (the original clocks are restored on exit).
//!
//! ```text
//! cargo run --release -p dynas-dvfs --example dvfs_runtime [-- --sysfs /]
//! ```

use clap::Parser;
use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
use dynas_dvfs::reference::dynamic_ofa_xavier;
use dynas_dvfs::{
    Constraints, FrequencyControl, Governor, Ina3221, LoadTrace, ManagerParams, Observation,
    PowerSensor as _, RuntimeManager, SimulatedFrequencyControl, SimulatedPowerSensor,
    SysfsFrequencyControl, SysfsLayout,
};

/// The runtime manager driving a frequency-control backend and reading a power sensor.
#[derive(Parser)]
struct Args {
    /// Drive the real cpufreq / devfreq / EMC files and INA3221 rails under this root
    /// (a Jetson AGX Xavier, as root); default: simulated backends.
    #[arg(long, value_name = "ROOT")]
    sysfs: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sysfs = Args::parse().sysfs;
    let device = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default())?;
    let set = dynamic_ofa_xavier(&model, &device)?;
    let constraints = Constraints::new(120.0, Some(76.0), None)?;
    let mut manager = RuntimeManager::new(set.clone(), ManagerParams::default(), &constraints);

    let mut control: Box<dyn FrequencyControl> = match &sysfs {
        Some(root) => {
            let root = std::path::Path::new(root);
            Box::new(SysfsFrequencyControl::new(
                device.clone(),
                root,
                &SysfsLayout::jetson_agx_xavier(root),
            )?)
        }
        None => Box::new(SimulatedFrequencyControl::new(device.clone())),
    };
    // On a board the INA3221 rails; in simulation a sensor fed with the model's power.
    let mut board = match &sysfs {
        Some(root) => Some(Ina3221::discover(root)?),
        None => None,
    };
    let mut simulated = SimulatedPowerSensor::new(vec![("VDD_GPU_SOC".into(), 0.0)], 0.02, 1)?;

    // The co-runner load comes from a shipped trace here; on a board the latencies would be
    // measured around the real inference call.
    let trace = LoadTrace::shipped("step")?;
    let mut current = manager.initial();
    control.apply(&set.configurations()[current.0].point)?;
    for (i, &load) in trace.loads().iter().enumerate().step_by(10) {
        let c = &set.configurations()[current.0];
        let latency = c.latency_ms / (1.0 - load);
        let lat = [latency; 5];
        let decision = manager.decide(
            &Observation {
                current,
                latencies_ms: &lat,
                utilisation: load,
                co_runner_load: Some(load),
                energy_mj: None,
            },
            &constraints,
        );
        if decision.config != current {
            control.apply(&set.configurations()[decision.config.0].point)?;
        }
        current = decision.config;
        let now = &set.configurations()[current.0];
        // mJ / ms = W.
        simulated.set_power("VDD_GPU_SOC", 1e3 * now.energy_mj / now.latency_ms)?;
        let rails = match board.as_mut() {
            Some(s) => s.read()?,
            None => simulated.read()?,
        };
        println!(
            "window {i:3}: load {load:.2} -> {:?} {} | {} | {}",
            decision.reason,
            now.name(),
            control.current()?,
            rails
                .iter()
                .map(|r| format!("{} {:.0} mW", r.rail, r.power_mw.unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    control.restore()?;
    let (decisions, switches) = manager.stats();
    println!("{decisions} decisions, {switches} switches; clocks restored");
    Ok(())
}
