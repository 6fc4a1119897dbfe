//! Serving runs under a load trace for several policies, each beside the simulator's
//! predictions for the same family, trace and policy: the comparison `dynas serve` and the
//! Dynamic-OFA example report.

use dynas_dvfs::{
    CoRunnerParams, Contention, LoadTrace, SimParams, SimReport, Simulator, SwitchingCost,
};
use serde::{Deserialize, Serialize};

use crate::runtime::{Family, ServeParams, ServePolicy, ServeReport, serve};
use dynas_supernet::data::{Dataset, Normalization};
use dynas_supernet::{Result, SupernetError};

/// What the simulator predicted for one policy on one trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulatedRun {
    /// Policy name.
    pub policy: String,
    /// Predicted share of windows' inferences past the target.
    pub miss_rate: f64,
    /// Predicted deadline misses.
    pub deadline_misses: usize,
    /// Simulated inferences.
    pub inferences: usize,
    /// Predicted mean accuracy (the members' validation top-1), %.
    pub mean_accuracy: f64,
    /// Predicted member changes.
    pub switches: usize,
}

impl From<SimReport> for SimulatedRun {
    fn from(r: SimReport) -> Self {
        Self {
            policy: r.policy,
            miss_rate: r.miss_rate,
            deadline_misses: r.deadline_misses,
            inferences: r.inferences,
            mean_accuracy: r.mean_accuracy,
            switches: r.switches,
        }
    }
}

/// One policy served for real on one trace, with the feasibility floor and the predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyComparison {
    /// The measured run.
    pub measured: ServeReport,
    /// Deadline misses of static-smallest (the fastest member) on the same trace, when it ran.
    pub floor_misses: Option<usize>,
    /// The simulator's prediction with processor sharing.
    pub simulated: SimulatedRun,
    /// The simulator's prediction replaying the delays measured in the static-smallest run of
    /// the same trace ([`Contention::MeasuredDelays`]), when it ran.
    #[serde(default)]
    pub simulated_measured_delays: Option<SimulatedRun>,
}

impl PolicyComparison {
    /// Header of [`PolicyComparison::markdown_row`]'s table.
    pub const MARKDOWN_HEADER: &'static str = "| trace | policy | inferences | misses | miss % | floor misses | top-1 % | expected top-1 % | switches | decision µs | switch excess ms | sim miss % | sim top-1 % | sim (measured delays) miss % | sim (measured delays) top-1 % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// One row of a Markdown table.
    pub fn markdown_row(&self) -> String {
        let (r, s) = (&self.measured, &self.simulated);
        let replay = |f: fn(&SimulatedRun) -> f64| {
            self.simulated_measured_delays
                .as_ref()
                .map_or("-".into(), |d| format!("{:.2}", f(d)))
        };
        format!(
            "| {} | {} | {} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
            r.trace,
            r.policy,
            r.inferences,
            r.deadline_misses,
            100.0 * r.miss_rate,
            self.floor_misses.map_or("-".into(), |f| f.to_string()),
            r.top1,
            r.expected_top1,
            r.switches,
            r.decision_us_mean,
            r.switch_excess_ms.map_or("-".into(), |v| format!("{v:.3}")),
            100.0 * s.miss_rate,
            s.mean_accuracy,
            replay(|d| 100.0 * d.miss_rate),
            replay(|d| d.mean_accuracy),
        )
    }
}

/// Serves `stream` with `family` under a co-runner following `trace`, once per policy, and
/// simulates each policy on the same family and trace (switching cost as measured by the
/// run, `seed`): once with processor sharing (latency noise `latency_noise`), and, when
/// static-smallest is among the policies, once replaying the delays measured in its run
/// (scaled by each member's exposure relative to the fastest's).
#[allow(clippy::too_many_arguments)]
pub fn serve_and_simulate(
    family: &Family,
    stream: &Dataset,
    norm: &Normalization,
    trace: &LoadTrace,
    policies: &[ServePolicy],
    params: &ServeParams,
    co_runner: &CoRunnerParams,
    latency_noise: f64,
    seed: u64,
) -> Result<Vec<PolicyComparison>> {
    let dvfs = |e: dynas_dvfs::DvfsError| SupernetError::invalid("simulator", e.to_string());
    let constraints = params.check(family)?;
    let measured = policies
        .iter()
        .map(|&policy| {
            serve(
                family,
                stream,
                norm,
                policy,
                params,
                Some((trace, co_runner)),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let floor = measured
        .iter()
        .find(|r| r.policy == ServePolicy::StaticSmallest.name());
    let floor_misses = floor.map(|r| r.deadline_misses);
    // Static-smallest runs the fastest member: its delays were measured at that latency.
    let replayed = floor
        .map(|r| r.delays.clone().measured_at(family.fastest_idle_ms()))
        .transpose()
        .map_err(dvfs)?
        .map(Contention::MeasuredDelays);
    let set = family.configuration_set();
    let mut runs = Vec::with_capacity(policies.len());
    for (&policy, measured) in policies.iter().zip(measured) {
        let switching = SwitchingCost::new(
            measured.switch_excess_ms.unwrap_or(0.0).max(0.0),
            0.0,
            0.0,
            0.0,
        )
        .map_err(dvfs)?;
        let sim = SimParams::new(
            params.window,
            params.target_ms,
            latency_noise,
            seed,
            switching,
        )
        .map_err(dvfs)?;
        let simulate = |contention: Contention| -> Result<SimulatedRun> {
            let mut governor = policy.governor(set, &constraints, params.manager)?;
            Simulator::new(set.clone(), sim)
                .with_contention(contention)
                .run_labelled(policy.name(), &mut governor, trace, &constraints)
                .map(SimulatedRun::from)
                .map_err(dvfs)
        };
        runs.push(PolicyComparison {
            floor_misses,
            simulated: simulate(Contention::ProcessorSharing)?,
            simulated_measured_delays: replayed.clone().map(simulate).transpose()?,
            measured,
        });
    }
    Ok(runs)
}
