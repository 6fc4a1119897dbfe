//! DVFS for **dynas**: clock control and power sensing through the real Linux interfaces,
//! pure run-time policies ([`Governor`]) over subnet x early-exit thresholds x operating
//! point, and a platform simulator to compare them.
//!
//! * [`FrequencyControl`]: [`SysfsFrequencyControl`] (cpufreq, devfreq GPU, Jetson EMC; any
//!   sysfs root) and [`SimulatedFrequencyControl`].
//! * [`PowerSensor`]: [`Ina3221`] (Jetson rails), [`Rapl`] (powercap `energy_uj`) and
//!   [`SimulatedPowerSensor`].
//! * [`ConfigurationSet`]: the configurations with accuracy, latency and energy, built from
//!   any [`dynas_cost::CostModel`] or loaded from JSON.
//! * [`Governor`]: [`StaticGovernor`], [`ClockExtremeGovernor`] (`performance` / `powersave`),
//!   [`OndemandGovernor`] and the [`RuntimeManager`].
//! * [`Simulator`] with [`LoadTrace`]s (four shipped: steady, step, periodic, bursty) and
//!   [`compare_policies`] (static max clocks, subnet switching only, DVFS only, joint).
//! * [`reference`](mod@reference): configuration sets from published data (Dynamic-OFA's levels on Jetson).
//!
//! The runtime manager is built from a search's deployment
//! ([`ConfigurationSet::from_deployment`]; subnets are [`dynas_space::Genotype`]s). In its
//! default, reactive mode it infers the co-runner's slowdown from the measured latencies, so it
//! needs no load signal; in [`ManagerMode::Predictive`] it also reads
//! [`Observation::co_runner_load`] (e.g. from `/proc/stat`, see [`corunner::HostLoadProbe`])
//! and the latency trend, to switch before the misses.
//!
//! **Defaults to know:** [`ManagerParams::default`] minimises energy
//! ([`ManagerObjective::MinEnergy`]) and [`Constraints`] without an accuracy floor let it pick
//! any configuration. So the default manager sits on the cheapest configuration that meets the
//! latency target, at every load where one does, however accurate the others are. To trade
//! energy for accuracy, give an accuracy floor (the manager then minimises energy among the
//! configurations that reach it), or choose [`ManagerObjective::MaxAccuracy`] (the most
//! accurate configuration that meets the target, as Dynamic-OFA):
//!
//! ```
//! use dynas_dvfs::{
//!     Configuration, ConfigurationSet, Constraints, Governor, LoadTrace, ManagerObjective,
//!     ManagerParams, ManagerSettings, RuntimeManager, SimParams, Simulator,
//! };
//! use dynas_cost::OperatingPoint;
//!
//! # fn main() -> dynas_dvfs::Result<()> {
//! let cfg = |subnet: &str, gpu: u64, acc: f64, lat: f64, e: f64| Configuration {
//!     genotype: dynas_space::Genotype::new(vec![usize::from(subnet == "large")]),
//!     label: subnet.into(),
//!     exits: vec![],
//!     point: OperatingPoint::new(None, Some(gpu), None).expect("positive clock"),
//!     accuracy: acc,
//!     latency_ms: lat,
//!     energy_mj: e,
//! };
//! let set = ConfigurationSet::new(vec![
//!     cfg("small", 600, 74.0, 30.0, 200.0),
//!     cfg("small", 1200, 74.0, 16.0, 260.0),
//!     cfg("large", 600, 79.0, 55.0, 420.0),
//!     cfg("large", 1200, 79.0, 29.0, 520.0),
//! ])?;
//!
//! // The default: least energy, no accuracy floor. The small subnet at 600 MHz meets 40 ms,
//! // so the manager runs it (and the small one at 1200 MHz under load): 74 %, never 79 %.
//! let latency_only = Constraints::new(40.0, None, None)?;
//! let default = RuntimeManager::new(set.clone(), ManagerParams::default(), &latency_only);
//! assert_eq!(set.get(default.initial())?.accuracy, 74.0);
//!
//! // An accuracy floor: the least energy among the configurations with at least 79 %.
//! let constraints = Constraints::new(40.0, Some(79.0), None)?;
//! let mut manager = RuntimeManager::new(set.clone(), ManagerParams::default(), &constraints);
//! assert_eq!(set.get(manager.initial())?.accuracy, 79.0);
//!
//! // Or the most accurate configuration that meets the target, without a floor.
//! let max_accuracy = ManagerSettings {
//!     objective: ManagerObjective::MaxAccuracy,
//!     ..ManagerSettings::default()
//! }
//! .check()?;
//! let accurate = RuntimeManager::new(set.clone(), max_accuracy, &latency_only);
//! assert_eq!(set.get(accurate.initial())?.accuracy, 79.0);
//!
//! // Under load the floored manager keeps 79 % while the large subnet meets the target, and
//! // drops the floor to meet the deadline when it cannot (`ManagerSettings::fallback`).
//! let report = Simulator::new(set, SimParams::for_target(&constraints))
//!     .run(&mut manager, &LoadTrace::shipped("step")?, &constraints)?;
//! println!(
//!     "{} misses, {:.1} % mean accuracy, {:.0} mJ",
//!     report.deadline_misses, report.mean_accuracy, report.energy_mj
//! );
//! # Ok(()) }
//! ```

pub mod config;
pub mod control;
pub mod corunner;
pub mod error;
pub mod governor;
pub mod manager;
pub mod power;
pub mod reference;
pub mod sim;
pub mod trace;

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
pub(crate) mod testutil;

pub use config::{
    ConfigId, Configuration, ConfigurationSet, ExitProfile, MeasuredVariant, Variant,
};
pub use control::{
    DomainInterface, FrequencyControl, SimulatedFrequencyControl, SysfsFrequencyControl,
    SysfsLayout,
};
pub use corunner::{CoRunner, CoRunnerParams, CoRunnerReport, HostLoadProbe, LoadPlan};
pub use dynas_cost::{DeviceProfile, OperatingPoint};
pub use error::{DvfsError, Result};
pub use governor::{
    ClockExtremeGovernor, Constraints, Decision, DecisionReason, Governor, Observation,
    OndemandGovernor, OndemandParams, StaticGovernor,
};
pub use manager::{
    Fallback, ManagerMode, ManagerObjective, ManagerParams, ManagerSettings, MissGuard,
    RuntimeManager, pareto_front,
};
pub use power::{EnergyIntegrator, Ina3221, PowerSensor, RailReading, Rapl, SimulatedPowerSensor};
pub use sim::{
    Contention, DelayProfile, Policy, SimParams, SimReport, Simulator, SwitchingCost, WindowRecord,
    build_policy, compare_policies, static_max_choice,
};
pub use trace::LoadTrace;
