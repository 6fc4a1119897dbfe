//! Threshold calibration: the cheapest thresholds of an exit subset that keep dynamic accuracy
//! within a budget of the final classifier.

use serde::{Deserialize, Serialize};

use crate::cost::{ExitCosts, check_selection};
use crate::error::{ExitError, Result};
use crate::policy::ExitRule;
use crate::table::{ConfidenceMeasure, ExitSelection, ExitStatistics, ExitTable};

/// Hyper-parameters of threshold calibration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdCalibration {
    max_accuracy_drop: f64,
    measure: ConfidenceMeasure,
    grid: usize,
    prune: bool,
}

impl ThresholdCalibration {
    /// At most `max_accuracy_drop` (a fraction in `[0, 1]`: 0.01 is one point) below the final
    /// classifier.
    ///
    /// The calibration tries `grid >= 2` prices `λ` of one lost correct answer (log-spaced from
    /// 0.01x to 10^4x the largest per-sample saving). For each, exits are visited in order and
    /// each gets the threshold maximising, over the samples still in the network,
    /// `Σ_above (rest-of-backbone cost − λ · (correct at final − correct here)) − head cost ·
    /// samples reaching the exit`; an exit whose best gain is not positive never fires. The cheapest setting meeting the target is kept,
    /// then (see [`ThresholdCalibration::with_pruning`]) exits are switched off greedily.
    pub fn new(max_accuracy_drop: f64, measure: ConfidenceMeasure, grid: usize) -> Result<Self> {
        if !(0.0..=1.0).contains(&max_accuracy_drop) {
            return Err(ExitError::invalid(
                "max_accuracy_drop",
                format!("{max_accuracy_drop} is not a fraction in [0, 1]"),
            ));
        }
        if grid < 2 {
            return Err(ExitError::invalid("grid", format!("{grid} < 2")));
        }
        Ok(Self {
            max_accuracy_drop,
            measure,
            grid,
            prune: true,
        })
    }

    /// Whether to switch off, greedily, exits whose heads cost more than they save (default
    /// true). Switched-off exits get a never-firing threshold and are not paid for.
    pub fn with_pruning(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// The allowed drop.
    pub fn max_accuracy_drop(&self) -> f64 {
        self.max_accuracy_drop
    }
}

/// Result of [`ExitTable::calibrate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibratedExits {
    /// The selection with the chosen thresholds.
    pub selection: ExitSelection,
    /// Its statistics on the table.
    pub statistics: ExitStatistics,
    /// Final accuracy minus the allowed drop.
    pub target_accuracy: f64,
    /// The accuracy price `λ` that won (`inf` when no exit fires).
    pub accuracy_price: f64,
}

impl ExitTable {
    /// Thresholds for the exits `exits` such that dynamic accuracy stays within the calibration's
    /// drop of the final classifier, chosen to minimise expected cost (expected latency with
    /// `costs`, else the expected exit column as a depth proxy). Thresholds are the scores of
    /// this table (calibrated max-softmax probabilities when temperatures were applied).
    pub fn calibrate(
        &self,
        exits: &[usize],
        calibration: &ThresholdCalibration,
        costs: Option<&ExitCosts>,
    ) -> Result<CalibratedExits> {
        check_selection(exits, self.positions.len())?;
        if let Some(c) = costs {
            self.check_costs(c)?;
        }
        let measure = calibration.measure;
        let target = self.final_accuracy() - calibration.max_accuracy_drop;
        let objective = |st: &ExitStatistics| -> Result<f64> {
            Ok(match costs {
                Some(c) => st.expected_cost(c)?.latency_ms,
                None => st.rates.iter().enumerate().map(|(j, r)| r * j as f64).sum(),
            })
        };
        // Per exit: samples sorted by decreasing score.
        let mut order: Vec<Vec<(f64, usize)>> = Vec::with_capacity(exits.len());
        for &e in exits {
            let mut v = (0..self.samples)
                .map(|s| self.score(measure, e, s).map(|x| (x, s)))
                .collect::<Result<Vec<_>>>()?;
            v.sort_by(|a, b| b.0.total_cmp(&a.0));
            order.push(v);
        }
        let never = |m: ConfidenceMeasure, k: usize| match m {
            ConfidenceMeasure::MaxSoftmax => ExitRule::MaxSoftmax(vec![f64::INFINITY; k]),
            ConfidenceMeasure::Entropy => ExitRule::Entropy(vec![f64::NEG_INFINITY; k]),
        };
        let baseline = ExitSelection::new(exits.to_vec(), never(measure, exits.len()))?;
        let mut best = (
            objective(&self.evaluate(&baseline)?)?,
            baseline,
            f64::INFINITY,
        );
        // What leaving at exit j instead of running the rest of the backbone saves per sample,
        // and what its head costs every sample that reaches it.
        let (savings, head_costs): (Vec<f64>, Vec<f64>) = match costs {
            Some(c) => exits
                .iter()
                .map(|&e| {
                    let p = &c.positions()[e];
                    (c.full().latency_ms - p.prefix.latency_ms, p.head.latency_ms)
                })
                .unzip(),
            None => (0..exits.len())
                .map(|j| ((exits.len() - j) as f64, 0.0))
                .unzip(),
        };
        let final_col = self.positions.len();
        let scale = savings
            .iter()
            .fold(0.0f64, |m, &s| m.max(s.abs()))
            .max(f64::MIN_POSITIVE);
        let g = calibration.grid;
        for step in 0..g {
            // Price of one lost correct answer, log-spaced from 0.01x to 1e4x the largest saving.
            let lambda = scale * 10f64.powf(-2.0 + 6.0 * step as f64 / (g - 1) as f64);
            let mut remaining = vec![true; self.samples];
            let mut scores = Vec::with_capacity(exits.len());
            for (j, &e) in exits.iter().enumerate() {
                let list: Vec<(f64, usize)> = order[j]
                    .iter()
                    .copied()
                    .filter(|&(_, s)| remaining[s])
                    .collect();
                // Every sample still here pays the head once the exit is switched on.
                let mut gain = -head_costs[j] * list.len() as f64;
                let mut best_cut: (f64, Option<f64>) = (0.0, None);
                for (i, &(score, s)) in list.iter().enumerate() {
                    let loss = f64::from(u8::from(self.correct[final_col][s]))
                        - f64::from(u8::from(self.correct[e][s]));
                    gain += savings[j] - lambda * loss;
                    let boundary = list.get(i + 1).is_none_or(|n| n.0 < score);
                    if boundary && gain > best_cut.0 {
                        best_cut = (gain, Some(score));
                    }
                }
                match best_cut.1 {
                    Some(c) => {
                        for &(score, s) in &list {
                            if score >= c {
                                remaining[s] = false;
                            }
                        }
                        scores.push(c);
                    }
                    None => scores.push(f64::INFINITY),
                }
            }
            let rule = match measure {
                ConfidenceMeasure::MaxSoftmax => ExitRule::MaxSoftmax(scores),
                ConfidenceMeasure::Entropy => {
                    ExitRule::Entropy(scores.iter().map(|&c| -c).collect())
                }
            };
            let selection = ExitSelection::new(exits.to_vec(), rule)?;
            let st = self.evaluate(&selection)?;
            if st.accuracy + 1e-12 >= target {
                let obj = objective(&st)?;
                if obj < best.0 {
                    best = (obj, selection, lambda);
                }
            }
        }
        if calibration.prune {
            // Greedily switch off the exit whose removal lowers the objective most, while the
            // target still holds.
            loop {
                let current = best.1.rule().thresholds().unwrap_or_default();
                let mut improved: Option<(f64, ExitSelection)> = None;
                for j in 0..exits.len() {
                    if !current[j].is_finite() {
                        continue;
                    }
                    let mut t = current.clone();
                    t[j] = match measure {
                        ConfidenceMeasure::MaxSoftmax => f64::INFINITY,
                        ConfidenceMeasure::Entropy => f64::NEG_INFINITY,
                    };
                    let rule = match measure {
                        ConfidenceMeasure::MaxSoftmax => ExitRule::MaxSoftmax(t),
                        ConfidenceMeasure::Entropy => ExitRule::Entropy(t),
                    };
                    let sel = ExitSelection::new(exits.to_vec(), rule)?;
                    let st = self.evaluate(&sel)?;
                    if st.accuracy + 1e-12 >= target {
                        let obj = objective(&st)?;
                        if obj < improved.as_ref().map_or(best.0, |b| b.0) {
                            improved = Some((obj, sel));
                        }
                    }
                }
                match improved {
                    Some((obj, sel)) => best = (obj, sel, best.2),
                    None => break,
                }
            }
        }
        let statistics = self.evaluate(&best.1)?;
        Ok(CalibratedExits {
            selection: best.1,
            statistics,
            target_accuracy: target,
            accuracy_price: best.2,
        })
    }
}
