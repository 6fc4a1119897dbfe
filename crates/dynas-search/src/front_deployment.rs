//! A search front as the hand-off: each front point becomes a deployment point, its figures
//! read from the objectives by name, so no one fills points from positional values.

use dynas_core::{DeployedMetrics, Deployment, DeploymentPoint, Direction, Objective, Provenance};
use dynas_cost::{DeviceProfile, OperatingPoint};
use dynas_space::SearchSpace;

use crate::error::{Result, SearchError};
use crate::pareto::ParetoFront;

/// Where a deployment's figures sit among a front's objectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accuracy {
    /// Top-1 in percent, maximised (`top1`, `accuracy`, `acc_*`).
    Top1(usize),
    /// Error in percent, minimised (`error`): top-1 is `100 - error`.
    Error(usize),
}

fn find(objectives: &[Objective], matches: impl Fn(&str) -> bool) -> Option<usize> {
    objectives
        .iter()
        .position(|o| matches(&o.name.to_ascii_lowercase()))
}

fn accuracy_of(objectives: &[Objective]) -> Option<Accuracy> {
    if let Some(i) = find(objectives, |n| n == "error" || n.starts_with("error_")) {
        return Some(Accuracy::Error(i));
    }
    find(objectives, |n| {
        n == "top1" || n == "accuracy" || n.starts_with("acc_") || n.starts_with("top1_")
    })
    .filter(|&i| objectives[i].direction == Direction::Maximize)
    .map(Accuracy::Top1)
}

impl ParetoFront {
    /// The front as a [`Deployment`] of `space` by `method`, every point at `point` (the
    /// default operating point when the search did not choose clocks). Top-1 comes from an
    /// objective named `error` (as `100 - error`) or `top1` / `accuracy` / `acc_*`
    /// (maximised, in percent); latency from `latency_ms` (or the one objective whose name
    /// contains `latency`); energy from `energy_mj` (or one containing `energy`), where the
    /// front has it. A front without an accuracy or a latency objective is refused, naming
    /// the objectives it has.
    pub fn deployment(
        &self,
        method: &str,
        space: &dyn SearchSpace,
        device: Option<DeviceProfile>,
        point: OperatingPoint,
        accuracy_source: Provenance,
        cost_source: Provenance,
    ) -> Result<Deployment> {
        let names = || {
            self.objectives
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let accuracy = accuracy_of(&self.objectives).ok_or_else(|| {
            SearchError::invalid(
                "front objectives",
                format!(
                    "no accuracy objective (error, top1, accuracy, acc_*) among {}",
                    names()
                ),
            )
        })?;
        let latency = find(&self.objectives, |n| n == "latency_ms")
            .or_else(|| find(&self.objectives, |n| n.contains("latency")))
            .ok_or_else(|| {
                SearchError::invalid(
                    "front objectives",
                    format!("no latency objective among {}", names()),
                )
            })?;
        let energy = find(&self.objectives, |n| n == "energy_mj")
            .or_else(|| find(&self.objectives, |n| n.contains("energy")));
        let points = self
            .points
            .iter()
            .map(|p| DeploymentPoint {
                genotype: p.genotype.clone(),
                exits: Vec::new(),
                point: point.clone(),
                metrics: DeployedMetrics {
                    top1: match accuracy {
                        Accuracy::Top1(i) => p.values[i],
                        Accuracy::Error(i) => 100.0 - p.values[i],
                    },
                    latency_ms: p.values[latency],
                    energy_mj: energy.map(|i| p.values[i]),
                    accuracy_source: accuracy_source.clone(),
                    cost_source: cost_source.clone(),
                },
            })
            .collect();
        Ok(Deployment::new(method, space, device, points)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pareto::FrontPoint;
    use dynas_space::MbConvSpace;

    fn front(objectives: Vec<Objective>, values: Vec<Vec<f64>>) -> ParetoFront {
        let space = MbConvSpace::ofa_mnist();
        let points = values
            .into_iter()
            .enumerate()
            .map(|(k, values)| {
                let mut g = space.largest().into_genes();
                g[1] = k % 3;
                FrontPoint {
                    genotype: dynas_space::Genotype::new(g),
                    label: None,
                    genes: Vec::new(),
                    values,
                }
            })
            .collect();
        ParetoFront { objectives, points }
    }

    #[test]
    fn a_front_becomes_a_deployment_by_objective_name() {
        let space = MbConvSpace::ofa_mnist();
        let f = front(
            vec![
                Objective::minimize("error"),
                Objective::minimize("latency_ms"),
                Objective::minimize("energy_mj"),
            ],
            vec![vec![8.0, 2.0, 5.0], vec![10.0, 1.5, 4.0]],
        );
        let d = f
            .deployment(
                "mine",
                &space,
                None,
                OperatingPoint::default(),
                Provenance::measured("validation"),
                Provenance::modelled("LUT"),
            )
            .unwrap();
        assert_eq!(d.points.len(), 2);
        assert_eq!(d.points[0].metrics.top1, 92.0);
        assert_eq!(d.points[1].metrics.latency_ms, 1.5);
        assert_eq!(d.points[1].metrics.energy_mj, Some(4.0));
        assert_eq!(d.space, "ofa-mnist");
    }

    #[test]
    fn a_front_without_latency_is_refused_with_its_objectives_named() {
        let space = MbConvSpace::ofa_mnist();
        let f = front(
            vec![
                Objective::maximize("acc_cifar100"),
                Objective::minimize("params"),
            ],
            vec![vec![70.0, 1.0]],
        );
        let err = f
            .deployment(
                "mine",
                &space,
                None,
                OperatingPoint::default(),
                Provenance::measured("v"),
                Provenance::measured("v"),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("latency") && err.contains("acc_cifar100, params"),
            "{err}"
        );
    }
}
