//! HADAS's inner evaluator on `dynas` types: exit subsets of a backbone at DVFS operating
//! points, thresholds calibrated on one half of the exit table and scored on the other.

use dynas_cost::{CostModel, DeviceProfile, OperatingPoint};
use dynas_exits::{
    ConfidenceMeasure, ExitCosts, ExitHead, ExitRule, ExitSelection, ExitTable,
    ThresholdCalibration,
};
use dynas_space::{Genotype, LayerIndex, Network, SearchSpace};

use dynas_core::DeployedExit;
use dynas_search::{Result, SearchError};

use super::{DynamicEvaluator, DynamicMetrics};

/// Where the candidate exits of a backbone and their accuracies come from (a supernet with
/// trained exit heads, or published per-exit accuracies such as HADAS's a0..a5 data).
pub trait ExitSource: Send + Sync {
    /// The exit table of `backbone` (decoded as `network`).
    fn exit_table(&self, backbone: &Genotype, network: &Network) -> Result<ExitTable>;
}

impl<F> ExitSource for F
where
    F: Fn(&Genotype, &Network) -> Result<ExitTable> + Send + Sync,
{
    fn exit_table(&self, backbone: &Genotype, network: &Network) -> Result<ExitTable> {
        self(backbone, network)
    }
}

/// The [`DynamicEvaluator`] of HADAS on `dynas` types: backbones decoded by a [`SearchSpace`],
/// per-sample exit outcomes from an [`ExitSource`], costs of prefixes and heads from a
/// DVFS-aware [`CostModel`] (which must report energy and a per-layer breakdown).
///
/// Each backbone's exit table is split into a calibration half (even samples) and a held-out
/// half (odd samples). For an exit subset at an operating point, max-softmax thresholds are
/// calibrated on the first half to stay within the [`ThresholdCalibration`]'s accuracy drop at
/// the lowest expected cost; the reported accuracy is the *exit-rate-weighted* accuracy on the
/// held-out half, and the reported latency and energy the expectation over where held-out
/// inputs leave (sum of exit probability x cost of the path to that exit, heads included).
/// Error is `100 * (1 - accuracy)`.
///
/// Decoded networks and split tables of the most recent backbones are cached (an inner search
/// evaluates one backbone many times).
pub struct ExitsEvaluator<S, E, C> {
    space: S,
    exits: E,
    head: ExitHead,
    cost: C,
    device: DeviceProfile,
    calibration: ThresholdCalibration,
    cache: std::sync::Mutex<Vec<(Genotype, BackboneEntry)>>,
}

/// A decoded backbone and its exit table, split for calibration and held-out evaluation.
struct BackboneTables {
    network: Network,
    calibration: ExitTable,
    held_out: ExitTable,
}

type BackboneEntry = std::sync::Arc<BackboneTables>;

/// Backbones whose network and exit tables [`ExitsEvaluator`] keeps.
const EXIT_CACHE: usize = 16;

/// What an exit subset achieves at one operating point.
struct Outcome {
    metrics: DynamicMetrics,
    exits: Vec<DeployedExit>,
}

impl<S: SearchSpace, E: ExitSource, C: CostModel> ExitsEvaluator<S, E, C> {
    /// An evaluator of `space`'s backbones with exit heads `head`, on `device`, calibrating
    /// thresholds for at most half a point of accuracy drop (see
    /// [`ExitsEvaluator::with_calibration`]).
    pub fn new(space: S, exits: E, head: ExitHead, cost: C, device: DeviceProfile) -> Self {
        Self {
            space,
            exits,
            head,
            cost,
            device,
            calibration: ThresholdCalibration::new(0.005, ConfidenceMeasure::MaxSoftmax, 32)
                .expect("constant calibration parameters are valid"),
            cache: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The threshold calibration (the accuracy budget of every exit subset).
    pub fn with_calibration(mut self, calibration: ThresholdCalibration) -> Self {
        self.calibration = calibration;
        self
    }

    /// The threshold calibration in use.
    pub fn calibration(&self) -> &ThresholdCalibration {
        &self.calibration
    }

    fn backbone(&self, backbone: &Genotype) -> Result<BackboneEntry> {
        if let Ok(cache) = self.cache.lock()
            && let Some((_, hit)) = cache.iter().find(|(g, _)| g == backbone)
        {
            return Ok(hit.clone());
        }
        let network = self.space.decode(backbone)?;
        let table = self.exits.exit_table(backbone, &network)?;
        let (calibration, held_out) = table.split_alternate()?;
        let entry = std::sync::Arc::new(BackboneTables {
            network,
            calibration,
            held_out,
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= EXIT_CACHE {
                cache.remove(0);
            }
            cache.push((backbone.clone(), entry.clone()));
        }
        Ok(entry)
    }

    fn outcome(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<Outcome> {
        let entry = self.backbone(backbone)?;
        let positions = entry.calibration.positions();
        let costs = ExitCosts::compute(&entry.network, positions, &self.head, &self.cost, point)?;
        let selection = if exits.is_empty() {
            ExitSelection::new(Vec::new(), ExitRule::MaxSoftmax(Vec::new()))?
        } else {
            entry
                .calibration
                .calibrate(exits, &self.calibration, Some(&costs))?
                .selection
        };
        let stats = entry.held_out.evaluate(&selection)?;
        let cost = stats.expected_cost(&costs)?;
        let energy_mj = cost.energy_mj.ok_or_else(|| SearchError::Evaluation {
            genotype: backbone.to_string(),
            reason: format!("cost model `{}` does not report energy", self.cost.name()),
        })?;
        let thresholds = selection.rule().thresholds().unwrap_or_default();
        let deployed = exits
            .iter()
            .enumerate()
            .filter(|&(j, _)| stats.active.get(j).copied().unwrap_or(false))
            .map(|(j, &e)| DeployedExit {
                after_layer: LayerIndex::new(positions[e].after_layer),
                threshold: thresholds[j].clamp(0.0, 1.0),
                exit_rate: stats.rates[j],
            })
            .collect();
        Ok(Outcome {
            metrics: DynamicMetrics {
                error: 100.0 * (1.0 - stats.accuracy),
                latency_ms: cost.latency_ms,
                energy_mj,
            },
            exits: deployed,
        })
    }
}

impl<S: SearchSpace, E: ExitSource, C: CostModel> DynamicEvaluator for ExitsEvaluator<S, E, C> {
    fn exit_positions(&self, backbone: &Genotype) -> Result<usize> {
        Ok(self.backbone(backbone)?.calibration.positions().len())
    }

    fn device(&self) -> &DeviceProfile {
        &self.device
    }

    fn evaluate(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<DynamicMetrics> {
        Ok(self.outcome(backbone, exits, point)?.metrics)
    }

    fn deployed_exits(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<Vec<DeployedExit>> {
        Ok(self.outcome(backbone, exits, point)?.exits)
    }

    /// The static backbone's lowest-energy operating point by coordinate descent over the
    /// clocks with the cost model alone (no exit table is touched): from the highest clocks,
    /// each clock in turn is set to its best value with the others held, until a sweep
    /// changes nothing (a few hundred estimates where the full grid holds thousands).
    fn seed_points(&self, backbone: &Genotype) -> Result<Vec<OperatingPoint>> {
        let network = self.backbone(backbone)?.network.clone();
        let energy = |point: &OperatingPoint| -> Result<Option<f64>> {
            Ok(self.cost.estimate(&network, point)?.energy_mj)
        };
        let mut best = self.device.max_operating_point();
        let Some(mut best_energy) = energy(&best)? else {
            return Ok(Vec::new());
        };
        let domains = self.device.controllable_domains();
        for _sweep in 0..4 {
            let start = best.clone();
            for (domain, clocks) in &domains {
                for &clock in *clocks {
                    let point = best.clone().with_clock(domain.clone(), clock)?;
                    if let Some(e) = energy(&point)?
                        && e < best_energy
                    {
                        (best, best_energy) = (point, e);
                    }
                }
            }
            if best == start {
                break;
            }
        }
        Ok(vec![best])
    }
}
