//! Latency (lookup table or cost model) x accuracy proxy: the GOS search problem.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use dynas_cost::{CostModel, OperatingPoint};
use dynas_space::{Genotype, OpExpr, SearchSpace};
use serde::{Deserialize, Serialize};

use super::{GosPlan, GosSpace};
use dynas_search::{Evaluation, Objective, Problem};
use dynas_search::{Result, SearchError};

/// A host-measured lookup table of operator latencies: one entry per unit and candidate (by
/// [`lut_key`](super::lut_key)), the measured rest of the network (everything that is not a
/// unit), and how the entries, measured alone, compose in the running network (a scale on
/// their sum and a cost per operator call, fitted on whole-network timings).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GosLut {
    /// Batch size of the measurements.
    pub batch: usize,
    /// Threads libtorch ran with.
    pub threads: usize,
    /// Milliseconds of the network minus its units (pooling, additions, the framework's
    /// per-call overhead), measured as the whole original network minus its units' entries.
    pub rest_ms: f64,
    /// Milliseconds by [`lut_key`](super::lut_key).
    pub entries: BTreeMap<String, f64>,
    /// Milliseconds each operator call of a unit ([`Unit::calls`](super::Unit::calls)) costs in
    /// the running network beyond its entry (allocation of its output, cold caches): fitted by
    /// [`GosLut::fit_chain`] on whole-network timings; 0 in a table without that fit.
    #[serde(default)]
    pub per_call_ms: f64,
    /// What the entries' sum is multiplied by in the running network: an operator measured
    /// alone keeps its weights and input in cache, in the chain it shares the caches with
    /// the other layers. Fitted by [`GosLut::fit_chain`]; 1 in a table without that fit.
    #[serde(default = "unit_scale")]
    pub chain_scale: f64,
}

fn unit_scale() -> f64 {
    1.0
}

/// What a plan costs by the table's entries: (sum of its units' entries, its operator calls).
fn entries_and_calls(lut: &GosLut, space: &GosSpace, plan: &GosPlan) -> Result<(f64, usize)> {
    let (mut sum, mut calls) = (0.0, 0);
    for unit in space.units() {
        let choice = plan.get(&unit.name(space.network()));
        let key = unit.lut_key(&choice);
        sum += lut
            .entries
            .get(&key)
            .copied()
            .ok_or_else(|| SearchError::invalid("lut", format!("no entry for `{key}`")))?;
        calls += unit.calls(&choice);
    }
    Ok((sum, calls))
}

impl GosLut {
    /// Predicted latency of `plan` on `space`'s network: the rest, every unit's entry (times
    /// the chain scale), and the in-chain cost of each of their operator calls.
    pub fn predict(&self, space: &GosSpace, plan: &GosPlan) -> Result<f64> {
        let (sum, calls) = entries_and_calls(self, space, plan)?;
        Ok(self.rest_ms + self.chain_scale * sum + self.per_call_ms * calls as f64)
    }

    /// Fits how the entries compose, on whole-network timings of plans (`(plan, ms)`, the
    /// original among them).
    ///
    /// With three plans or more: non-negative least squares of the relative error of
    /// `ms = rest + chain_scale x entries + per_call x calls`. With fewer (too few to tell a
    /// scale from a rest) the scale is 1 and `ms - entries = rest + per_call x calls` is fitted
    /// by least squares; with fewer than two distinct call counts, or a negative fitted
    /// per-call cost (timing noise), the per-call cost is 0 and the rest is the mean remainder.
    /// No fitted value is negative.
    pub fn fit_chain(&mut self, space: &GosSpace, timed: &[(GosPlan, f64)]) -> Result<()> {
        if timed.is_empty() {
            return Err(SearchError::invalid(
                "lut",
                "no whole-network timing to fit",
            ));
        }
        // (calls, entries, ms) of each plan.
        let mut points = Vec::with_capacity(timed.len());
        for (plan, ms) in timed {
            if !ms.is_finite() || *ms < 0.0 {
                return Err(SearchError::invalid(
                    "lut",
                    format!("whole-network timing {ms} ms is not a duration"),
                ));
            }
            let (sum, calls) = entries_and_calls(self, space, plan)?;
            points.push((calls as f64, sum, *ms));
        }
        if points.len() >= 3 && points.iter().all(|p| p.2 > 0.0) {
            // Relative errors: each plan's row divided by its time, so that the small plans
            // a search ends at weigh as much as the original.
            let rows: Vec<Vec<f64>> = points
                .iter()
                .map(|&(c, e, ms)| vec![1.0 / ms, e / ms, c / ms])
                .collect();
            let y = vec![1.0; points.len()];
            if let Some(w) = dynas_cost::nonnegative_least_squares(&rows, &y)
                && w[1] > 0.0
            {
                (self.rest_ms, self.chain_scale, self.per_call_ms) = (w[0], w[1], w[2]);
                return Ok(());
            }
        }
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.2 - p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points
            .iter()
            .map(|p| (p.0 - mean_x) * (p.2 - p.1 - mean_y))
            .sum();
        let slope = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
        self.chain_scale = 1.0;
        self.per_call_ms = slope;
        self.rest_ms = (mean_y - slope * mean_x).max(0.0);
        Ok(())
    }

    /// Reads a table written by [`GosLut::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            dynas_space::files::read_input_text(path).map_err(|e| SearchError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| SearchError::parse(path, e.to_string()))
    }

    /// Writes the table as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SearchError::parse(path, e.to_string()))?;
        dynas_space::files::write_output(path, text).map_err(|e| SearchError::io(path, e))
    }
}

/// Where [`GosProblem`] takes latencies from.
pub enum GosLatency {
    /// A host-measured [`GosLut`].
    Table(GosLut),
    /// Any cost model, at an operating point, on [`GosSpace::adapted_network`].
    Model(Box<dyn CostModel>, OperatingPoint),
}

impl fmt::Debug for GosLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(t) => write!(f, "Table({} entries)", t.entries.len()),
            Self::Model(m, p) => write!(f, "Model({}, {p:?})", m.name()),
        }
    }
}

/// Accuracy proxy of every unit's choices: the error a choice adds (e.g. the relative output
/// error of the initialised replacement on calibration images), aligned with
/// [`Unit::choices`](super::Unit::choices). A plan's proxy is the sum over units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitErrors(pub Vec<Vec<f64>>);

impl UnitErrors {
    /// A data-free prior: a choice's error is the fraction of the unit's parameters it drops
    /// (zero for keep). Only a stand-in where no calibration data is at hand.
    pub fn compression_prior(space: &GosSpace) -> Self {
        Self(
            space
                .units()
                .iter()
                .map(|u| {
                    let original = u.expr.params().max(1) as f64;
                    u.choices
                        .iter()
                        .map(|c| {
                            let params: u64 = c
                                .apply(&u.expr)
                                .map(|t| t.iter().map(OpExpr::params).sum())
                                .unwrap_or(0);
                            (1.0 - params as f64 / original).max(0.0)
                        })
                        .collect()
                })
                .collect(),
        )
    }
}

/// Per-unit replacement search: minimise latency and the summed accuracy proxy.
#[derive(Debug)]
pub struct GosProblem {
    space: GosSpace,
    latency: GosLatency,
    errors: UnitErrors,
    objectives: Vec<Objective>,
}

impl GosProblem {
    /// A problem over `space` with latencies from `latency` and the proxy from `errors`
    /// (which must match the space's units and choices).
    pub fn new(space: GosSpace, latency: GosLatency, errors: UnitErrors) -> Result<Self> {
        if errors.0.len() != space.units().len()
            || errors
                .0
                .iter()
                .zip(space.units())
                .any(|(e, u)| e.len() != u.choices.len() || e.iter().any(|v| !v.is_finite()))
        {
            return Err(SearchError::invalid(
                "errors",
                "one finite error per unit and choice is needed",
            ));
        }
        Ok(Self {
            space,
            latency,
            errors,
            objectives: vec![
                Objective::minimize("latency_ms"),
                Objective::minimize("error_proxy"),
            ],
        })
    }

    /// The space searched.
    pub fn gos_space(&self) -> &GosSpace {
        &self.space
    }

    /// Predicted latency of a genotype, ms.
    pub fn latency_ms(&self, genotype: &Genotype) -> Result<f64> {
        let plan = self.space.plan(genotype)?;
        match &self.latency {
            GosLatency::Table(t) => t.predict(&self.space, &plan),
            GosLatency::Model(model, point) => {
                let network = self.space.adapted_network(&plan)?;
                Ok(model.estimate(&network, point)?.latency_ms)
            }
        }
    }

    /// Accuracy proxy of a genotype (summed unit errors).
    pub fn error_proxy(&self, genotype: &Genotype) -> Result<f64> {
        self.space.validate(genotype)?;
        Ok(self
            .errors
            .0
            .iter()
            .zip(genotype.genes())
            .map(|(e, &g)| e[g])
            .sum())
    }
}

impl Problem for GosProblem {
    fn name(&self) -> &str {
        "gos"
    }

    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }

    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        Ok(Evaluation::feasible(vec![
            self.latency_ms(genotype)?,
            self.error_proxy(genotype)?,
        ]))
    }

    fn label(&self, genotype: &Genotype) -> Option<String> {
        let plan = self.space.plan(genotype).ok()?;
        Some(
            plan.replacements
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}
