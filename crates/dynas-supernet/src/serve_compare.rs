//! Serving runs under a load trace for several policies, each beside the simulator's
//! prediction for the same family, trace and policy: the comparison `dynas serve` and the
//! Dynamic-OFA example report.

use dynas_dvfs::{CoRunnerParams, LoadTrace, SimParams, Simulator, SwitchingCost};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Normalization};
use crate::error::{Result, SupernetError};
use crate::serve::{Family, ServeParams, ServePolicy, ServeReport, serve};

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

/// One policy served for real on one trace, with the feasibility floor and the prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyComparison {
    /// The measured run.
    pub measured: ServeReport,
    /// Deadline misses of static-smallest (the fastest member) on the same trace, when it ran.
    pub floor_misses: Option<usize>,
    /// The simulator's prediction.
    pub simulated: SimulatedRun,
}

impl PolicyComparison {
    /// Header of [`PolicyComparison::markdown_row`]'s table.
    pub const MARKDOWN_HEADER: &'static str = "| trace | policy | inferences | misses | miss % | floor misses | top-1 % | expected top-1 % | switches | decision µs | switch excess ms | sim miss % | sim top-1 % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// One row of a Markdown table.
    pub fn markdown_row(&self) -> String {
        let (r, s) = (&self.measured, &self.simulated);
        format!(
            "| {} | {} | {} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {:.2} | {} | {:.2} | {:.2} |",
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
            s.mean_accuracy
        )
    }
}

/// Serves `stream` with `family` under a co-runner following `trace`, once per policy, and
/// simulates each policy on the same family and trace (latency noise `latency_noise`,
/// switching cost as measured by the run, `seed`).
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
    let mut runs = Vec::with_capacity(policies.len());
    for &policy in policies {
        let measured = serve(
            family,
            stream,
            norm,
            policy,
            params,
            Some((trace, co_runner)),
        )?;
        let set = family.configuration_set();
        let mut governor = policy.governor(set, &constraints, params.manager)?;
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
        let predicted = Simulator::new(set.clone(), sim)
            .run_labelled(policy.name(), &mut governor, trace, &constraints)
            .map_err(dvfs)?;
        runs.push(PolicyComparison {
            measured,
            floor_misses: None,
            simulated: SimulatedRun {
                policy: predicted.policy,
                miss_rate: predicted.miss_rate,
                deadline_misses: predicted.deadline_misses,
                inferences: predicted.inferences,
                mean_accuracy: predicted.mean_accuracy,
                switches: predicted.switches,
            },
        });
    }
    let floor = runs
        .iter()
        .find(|r| r.measured.policy == ServePolicy::StaticSmallest.name())
        .map(|r| r.measured.deadline_misses);
    for r in &mut runs {
        r.floor_misses = floor;
    }
    Ok(runs)
}
