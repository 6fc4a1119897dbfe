//! Objectives with directions and the evaluations a search records: the vocabulary shared by
//! search strategies, fronts, the study store and the runtime.

use serde::{Deserialize, Serialize};

/// Whether an objective is minimised or maximised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// A named objective with its direction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Objective {
    /// Name (a CSV column, `error`, `latency_ms`, ...).
    pub name: String,
    /// Direction.
    pub direction: Direction,
}

impl Objective {
    /// An objective to minimise.
    pub fn minimize(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            direction: Direction::Minimize,
        }
    }

    /// An objective to maximise.
    pub fn maximize(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            direction: Direction::Maximize,
        }
    }

    /// `value` turned into minimisation form (negated when maximised).
    pub fn to_min(&self, value: f64) -> f64 {
        match self.direction {
            Direction::Minimize => value,
            Direction::Maximize => -value,
        }
    }
}

/// The outcome of evaluating one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Objective values in the problem's units and directions (not negated).
    #[serde(with = "crate::floats::vec")]
    pub values: Vec<f64>,
    /// Total constraint violation: 0 when feasible, larger is worse (pymoo's `CV`).
    #[serde(with = "crate::floats::scalar")]
    pub violation: f64,
}

impl Evaluation {
    /// A feasible evaluation.
    pub fn feasible(values: Vec<f64>) -> Self {
        Self {
            values,
            violation: 0.0,
        }
    }

    /// An evaluation with the given violation (`-0.0` is stored as `0.0`).
    pub fn with_violation(values: Vec<f64>, violation: f64) -> Self {
        Self {
            values,
            violation: violation + 0.0,
        }
    }

    /// An infeasible evaluation with unknown objectives (e.g. a table row with missing values):
    /// objective values are NaN and the violation is `f64::INFINITY`.
    pub fn unknown(n_objectives: usize) -> Self {
        Self {
            values: vec![f64::NAN; n_objectives],
            violation: f64::INFINITY,
        }
    }

    /// Whether all constraints hold.
    pub fn is_feasible(&self) -> bool {
        self.violation <= 0.0
    }

    /// Values in minimisation form (maximised objectives negated).
    pub fn minimised(&self, objectives: &[Objective]) -> Vec<f64> {
        self.values
            .iter()
            .zip(objectives)
            .map(|(&v, o)| o.to_min(v))
            .collect()
    }
}
