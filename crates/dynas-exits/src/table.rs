//! The per-backbone exit table and everything the search asks of it.
//!
//! An [`ExitTable`] holds, for every candidate exit position of one backbone and for the final
//! classifier, the validation outcome of every sample: its max-softmax confidence, whether the
//! exit's prediction is correct and, when known, the entropy and the predicted class. From it any
//! [`ExitSelection`] (a subset of positions and a rule with thresholds) gives exact
//! [`ExitStatistics`] on the validation set: exit rates, per-exit and dynamic accuracy; combined
//! with [`ExitCosts`] they give the exit-rate-weighted expected latency, energy and MACs.
//!
//! Tables come from measured outputs ([`ExitTable::from_outputs`], [`ExitTable::from_scores`])
//! or, when only per-exit accuracies are published (the HADAS data), from the documented
//! [`crate::SyntheticConfidence`] model (in `synthetic`); thresholds are calibrated in
//! `thresholds`.

use serde::{Deserialize, Serialize};

use crate::calibration::summarize;
use crate::cost::{ExitCosts, ExitPosition, ExpectedCost, check_selection};
use crate::error::{ExitError, Result};
use crate::policy::ExitRule;
use crate::synthetic::SyntheticConfidence;

/// Per-sample outputs of every exit and of the final classifier on a validation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitOutputs {
    logits: Vec<Vec<f32>>,
    labels: Vec<usize>,
    num_classes: usize,
}

impl ExitOutputs {
    /// `logits[c]` is the row-major `labels.len() x num_classes` logit matrix of column `c`:
    /// one column per candidate exit in order, the final classifier last.
    pub fn new(logits: Vec<Vec<f32>>, labels: Vec<usize>, num_classes: usize) -> Result<Self> {
        if logits.is_empty() {
            return Err(ExitError::invalid(
                "logits",
                "need at least the final classifier",
            ));
        }
        if labels.is_empty() {
            return Err(ExitError::invalid("labels", "no samples"));
        }
        if num_classes < 2 {
            return Err(ExitError::invalid(
                "num_classes",
                format!("{num_classes} < 2"),
            ));
        }
        for (c, col) in logits.iter().enumerate() {
            if col.len() != labels.len() * num_classes {
                return Err(ExitError::shape(
                    format!("logits of column {c}"),
                    labels.len() * num_classes,
                    col.len(),
                ));
            }
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= num_classes) {
            return Err(ExitError::invalid(
                "labels",
                format!("label {l} of sample {i} is not below {num_classes}"),
            ));
        }
        Ok(Self {
            logits,
            labels,
            num_classes,
        })
    }

    /// Logit matrix of column `c` (exits in order, final classifier last).
    pub fn logits(&self, column: usize) -> Option<&[f32]> {
        self.logits.get(column).map(Vec::as_slice)
    }

    /// Labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of columns (exits plus the final classifier).
    pub fn columns(&self) -> usize {
        self.logits.len()
    }
}

/// Which confidence score a threshold compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ConfidenceMeasure {
    /// Largest softmax probability (exit when `>= threshold`).
    #[default]
    MaxSoftmax,
    /// Softmax entropy in nats, BranchyNet (exit when `<= threshold`).
    Entropy,
}

/// How a table was built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TableSource {
    /// From per-sample validation outcomes.
    Measured,
    /// From per-exit accuracies through [`SyntheticConfidence`].
    Synthetic(SyntheticConfidence),
}

/// Per-sample validation outcomes of every candidate exit of one backbone and its final classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitTable {
    pub(crate) positions: Vec<ExitPosition>,
    pub(crate) samples: usize,
    /// `[column][sample]`, columns = positions then the final classifier.
    pub(crate) max_prob: Vec<Vec<f64>>,
    pub(crate) correct: Vec<Vec<bool>>,
    pub(crate) entropy: Option<Vec<Vec<f64>>>,
    pub(crate) predictions: Option<Vec<Vec<u32>>>,
    pub(crate) source: TableSource,
}

impl ExitTable {
    /// A table from measured outputs; `temperatures` (one per column, final last) scale the
    /// logits before the softmax (see [`crate::TemperatureFit`]); `None` means all 1.
    pub fn from_outputs(
        positions: Vec<ExitPosition>,
        outputs: &ExitOutputs,
        temperatures: Option<&[f64]>,
    ) -> Result<Self> {
        let columns = positions.len() + 1;
        if outputs.columns() != columns {
            return Err(ExitError::shape(
                "output columns (positions + final)",
                columns,
                outputs.columns(),
            ));
        }
        if let Some(t) = temperatures {
            if t.len() != columns {
                return Err(ExitError::shape("temperatures", columns, t.len()));
            }
            if let Some((i, v)) = t
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v > 0.0))
            {
                return Err(ExitError::invalid(
                    format!("temperature {i}"),
                    format!("{v} is not finite and > 0"),
                ));
            }
        }
        let n = outputs.labels.len();
        let k = outputs.num_classes;
        let mut max_prob = Vec::with_capacity(columns);
        let mut entropy = Vec::with_capacity(columns);
        let mut predictions = Vec::with_capacity(columns);
        let mut correct = Vec::with_capacity(columns);
        for c in 0..columns {
            let t = temperatures.map_or(1.0, |t| t[c]);
            let (mut mp, mut en, mut pr, mut ok) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for (s, &label) in outputs.labels.iter().enumerate() {
                let row = &outputs.logits[c][s * k..(s + 1) * k];
                let sum = summarize(row, t).ok_or_else(|| {
                    ExitError::invalid(
                        "logits",
                        format!("column {c}, sample {s}: non-finite logit"),
                    )
                })?;
                mp.push(sum.max_prob);
                en.push(sum.entropy);
                pr.push(sum.prediction as u32);
                ok.push(sum.prediction == label);
            }
            max_prob.push(mp);
            entropy.push(en);
            predictions.push(pr);
            correct.push(ok);
        }
        Ok(Self {
            positions,
            samples: n,
            max_prob,
            correct,
            entropy: Some(entropy),
            predictions: Some(predictions),
            source: TableSource::Measured,
        })
    }

    /// A table from per-sample max-softmax confidences and correctness flags, `[column][sample]`
    /// with the final classifier last (for outputs produced outside this crate).
    pub fn from_scores(
        positions: Vec<ExitPosition>,
        max_prob: Vec<Vec<f64>>,
        correct: Vec<Vec<bool>>,
    ) -> Result<Self> {
        let columns = positions.len() + 1;
        if max_prob.len() != columns {
            return Err(ExitError::shape(
                "confidence columns",
                columns,
                max_prob.len(),
            ));
        }
        if correct.len() != columns {
            return Err(ExitError::shape(
                "correctness columns",
                columns,
                correct.len(),
            ));
        }
        let n = max_prob[0].len();
        if n == 0 {
            return Err(ExitError::invalid("confidences", "no samples"));
        }
        for c in 0..columns {
            if max_prob[c].len() != n {
                return Err(ExitError::shape(
                    format!("confidences of column {c}"),
                    n,
                    max_prob[c].len(),
                ));
            }
            if correct[c].len() != n {
                return Err(ExitError::shape(
                    format!("correctness of column {c}"),
                    n,
                    correct[c].len(),
                ));
            }
            if let Some((s, v)) = max_prob[c]
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
            {
                return Err(ExitError::invalid(
                    "confidences",
                    format!("column {c}, sample {s}: {v} is outside [0, 1]"),
                ));
            }
        }
        Ok(Self {
            positions,
            samples: n,
            max_prob,
            correct,
            entropy: None,
            predictions: None,
            source: TableSource::Measured,
        })
    }

    /// The table restricted to the samples `indices` (in that order; repeats allowed).
    pub fn select_samples(&self, indices: &[usize]) -> Result<Self> {
        if indices.is_empty() {
            return Err(ExitError::invalid("sample selection", "no samples"));
        }
        if let Some(&bad) = indices.iter().find(|&&s| s >= self.samples) {
            return Err(ExitError::invalid(
                "sample selection",
                format!("sample {bad} >= {} samples", self.samples),
            ));
        }
        let pick = |col: &Vec<f64>| indices.iter().map(|&s| col[s]).collect::<Vec<_>>();
        Ok(Self {
            positions: self.positions.clone(),
            samples: indices.len(),
            max_prob: self.max_prob.iter().map(pick).collect(),
            correct: self
                .correct
                .iter()
                .map(|c| indices.iter().map(|&s| c[s]).collect())
                .collect(),
            entropy: self.entropy.as_ref().map(|e| e.iter().map(pick).collect()),
            predictions: self.predictions.as_ref().map(|p| {
                p.iter()
                    .map(|c| indices.iter().map(|&s| c[s]).collect())
                    .collect()
            }),
            source: self.source.clone(),
        })
    }

    /// Splits the samples into a calibration table (even sample indices) and a held-out table
    /// (odd ones), so thresholds fitted on the first are judged on data they never saw.
    /// Interleaving keeps both halves alike when the samples are ordered (by class, by source).
    pub fn split_alternate(&self) -> Result<(Self, Self)> {
        if self.samples < 2 {
            return Err(ExitError::invalid(
                "sample split",
                format!("{} samples cannot be split in two", self.samples),
            ));
        }
        let even: Vec<usize> = (0..self.samples).step_by(2).collect();
        let odd: Vec<usize> = (1..self.samples).step_by(2).collect();
        Ok((self.select_samples(&even)?, self.select_samples(&odd)?))
    }

    /// Candidate exit positions.
    pub fn positions(&self) -> &[ExitPosition] {
        &self.positions
    }

    /// Number of validation samples.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// How the table was built.
    pub fn source(&self) -> &TableSource {
        &self.source
    }

    /// Accuracy (fraction) of candidate position `i`, or of the final classifier when
    /// `i == positions().len()`.
    pub fn accuracy(&self, column: usize) -> Option<f64> {
        self.correct
            .get(column)
            .map(|c| c.iter().filter(|&&b| b).count() as f64 / self.samples as f64)
    }

    /// Accuracy of the final classifier.
    pub fn final_accuracy(&self) -> f64 {
        self.accuracy(self.positions.len()).unwrap_or(0.0)
    }

    /// Max-softmax confidences of a column (positions, then the final classifier).
    pub fn confidences(&self, column: usize) -> Option<&[f64]> {
        self.max_prob.get(column).map(Vec::as_slice)
    }

    /// Correctness flags of a column.
    pub fn correctness(&self, column: usize) -> Option<&[bool]> {
        self.correct.get(column).map(Vec::as_slice)
    }

    /// The distribution of max-softmax confidences of a column: sample counts in `bins`
    /// equal-width bins over `[0, 1]`.
    pub fn confidence_histogram(&self, column: usize, bins: usize) -> Result<Vec<usize>> {
        if bins == 0 {
            return Err(ExitError::invalid("bins", "must be at least 1"));
        }
        let conf = self.confidences(column).ok_or_else(|| {
            ExitError::invalid(
                "column",
                format!("{column} > {} positions", self.positions.len()),
            )
        })?;
        let mut h = vec![0usize; bins];
        for &c in conf {
            h[((c * bins as f64) as usize).min(bins - 1)] += 1;
        }
        Ok(h)
    }

    pub(crate) fn score(
        &self,
        measure: ConfidenceMeasure,
        column: usize,
        sample: usize,
    ) -> Result<f64> {
        match measure {
            ConfidenceMeasure::MaxSoftmax => Ok(self.max_prob[column][sample]),
            ConfidenceMeasure::Entropy => self
                .entropy
                .as_ref()
                .map(|e| -e[column][sample])
                .ok_or_else(|| {
                    ExitError::Unsupported("entropy scores in a table without entropies".into())
                }),
        }
    }

    /// Exit rates and accuracies of `selection` on the validation samples.
    pub fn evaluate(&self, selection: &ExitSelection) -> Result<ExitStatistics> {
        let exits = &selection.exits;
        check_selection(exits, self.positions.len())?;
        selection.rule.validate(exits.len())?;
        let final_col = self.positions.len();
        let mut leave = vec![0usize; exits.len() + 1];
        let mut hits = vec![0usize; exits.len() + 1];
        match &selection.rule {
            ExitRule::Patience(k) => {
                let preds = self.predictions.as_ref().ok_or_else(|| {
                    ExitError::Unsupported("patience needs predictions; the table has none".into())
                })?;
                // Column-major table: `s` indexes several columns.
                #[allow(clippy::needless_range_loop)]
                for s in 0..self.samples {
                    let mut slot = exits.len();
                    let mut streak = 0usize;
                    let mut last = None;
                    for (j, &e) in exits.iter().enumerate() {
                        let p = preds[e][s];
                        streak = if last == Some(p) { streak + 1 } else { 1 };
                        last = Some(p);
                        if streak >= *k {
                            slot = j;
                            break;
                        }
                    }
                    let col = exits.get(slot).copied().unwrap_or(final_col);
                    leave[slot] += 1;
                    hits[slot] += usize::from(self.correct[col][s]);
                }
            }
            ExitRule::MaxSoftmax(t) | ExitRule::Entropy(t) => {
                let entropy_rule = matches!(selection.rule, ExitRule::Entropy(_));
                let entropy = if entropy_rule {
                    Some(self.entropy.as_ref().ok_or_else(|| {
                        ExitError::Unsupported("entropy rule on a table without entropies".into())
                    })?)
                } else {
                    None
                };
                for s in 0..self.samples {
                    let slot = exits
                        .iter()
                        .zip(t)
                        .position(|(&e, &th)| match entropy {
                            Some(en) => en[e][s] <= th,
                            None => self.max_prob[e][s] >= th,
                        })
                        .unwrap_or(exits.len());
                    let col = exits.get(slot).copied().unwrap_or(final_col);
                    leave[slot] += 1;
                    hits[slot] += usize::from(self.correct[col][s]);
                }
            }
        }
        let active = (0..exits.len())
            .map(|j| selection.rule.can_fire(j))
            .collect();
        Ok(ExitStatistics::from_counts(
            exits.clone(),
            active,
            &leave,
            &hits,
            self.samples,
        ))
    }

    /// The oracle bound of HADAS: every sample leaves at the earliest selected exit that
    /// classifies it correctly, or at the final classifier when none does.
    pub fn oracle(&self, exits: &[usize]) -> Result<ExitStatistics> {
        check_selection(exits, self.positions.len())?;
        let final_col = self.positions.len();
        let mut leave = vec![0usize; exits.len() + 1];
        let mut hits = vec![0usize; exits.len() + 1];
        for s in 0..self.samples {
            let slot = exits
                .iter()
                .position(|&e| self.correct[e][s])
                .unwrap_or(exits.len());
            let col = exits.get(slot).copied().unwrap_or(final_col);
            leave[slot] += 1;
            hits[slot] += usize::from(self.correct[col][s]);
        }
        Ok(ExitStatistics::from_counts(
            exits.to_vec(),
            vec![true; exits.len()],
            &leave,
            &hits,
            self.samples,
        ))
    }

    /// HADAS's unweighted mean over the selected exits and the final classifier of accuracy and
    /// cost (each exit counts once, whatever its exit rate).
    pub fn hadas_mean(&self, exits: &[usize], costs: &ExitCosts) -> Result<(f64, ExpectedCost)> {
        self.check_costs(costs)?;
        let cost = costs.hadas_mean(exits)?;
        let cols: Vec<usize> = exits
            .iter()
            .copied()
            .chain([self.positions.len()])
            .collect();
        let acc = cols.iter().filter_map(|&c| self.accuracy(c)).sum::<f64>() / cols.len() as f64;
        Ok((acc, cost))
    }

    pub(crate) fn check_costs(&self, costs: &ExitCosts) -> Result<()> {
        if costs.positions().len() != self.positions.len() {
            return Err(ExitError::shape(
                "cost positions vs table positions",
                self.positions.len(),
                costs.positions().len(),
            ));
        }
        Ok(())
    }
}

/// A subset of candidate positions (strictly increasing indices) and the rule deciding at them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitSelection {
    exits: Vec<usize>,
    rule: ExitRule,
}

impl ExitSelection {
    /// A selection; the rule's thresholds must match the number of exits.
    pub fn new(exits: Vec<usize>, rule: ExitRule) -> Result<Self> {
        for w in exits.windows(2) {
            if w[1] <= w[0] {
                return Err(ExitError::invalid(
                    "exit selection",
                    format!("exits must be strictly increasing, got {exits:?}"),
                ));
            }
        }
        rule.validate(exits.len())?;
        Ok(Self { exits, rule })
    }

    /// Indices of the selected candidate positions.
    pub fn exits(&self) -> &[usize] {
        &self.exits
    }

    /// The rule.
    pub fn rule(&self) -> &ExitRule {
        &self.rule
    }
}

/// Exit rates and accuracies of a selection on the validation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitStatistics {
    /// Selected candidate positions.
    pub exits: Vec<usize>,
    /// Fraction of samples leaving at each selected exit, then at the final classifier.
    pub rates: Vec<f64>,
    /// Accuracy among the samples leaving at each slot (`None` where none leave).
    pub exit_accuracy: Vec<Option<f64>>,
    /// Whether each selected exit can fire at all (a `+inf` max-softmax or `-inf` entropy
    /// threshold never fires; such a head is not run and costs nothing).
    pub active: Vec<bool>,
    /// Dynamic (overall) accuracy.
    pub accuracy: f64,
}

impl ExitStatistics {
    fn from_counts(
        exits: Vec<usize>,
        active: Vec<bool>,
        leave: &[usize],
        hits: &[usize],
        n: usize,
    ) -> Self {
        let nf = n as f64;
        Self {
            exits,
            active,
            rates: leave.iter().map(|&l| l as f64 / nf).collect(),
            exit_accuracy: leave
                .iter()
                .zip(hits)
                .map(|(&l, &h)| (l > 0).then(|| h as f64 / l as f64))
                .collect(),
            accuracy: hits.iter().sum::<usize>() as f64 / nf,
        }
    }

    /// Exit-rate-weighted expected cost per input (see [`ExitCosts::expected`]).
    pub fn expected_cost(&self, costs: &ExitCosts) -> Result<ExpectedCost> {
        costs.expected(&self.exits, &self.active, &self.rates)
    }
}

#[cfg(test)]
mod tests;
