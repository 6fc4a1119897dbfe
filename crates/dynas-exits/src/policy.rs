//! Exit policies: when does an input leave at an exit?
//!
//! * [`ExitRule::MaxSoftmax`]: leave when the largest softmax probability reaches the exit's
//!   threshold.
//! * [`ExitRule::Entropy`] (BranchyNet): leave when the softmax entropy (nats) is at most the
//!   exit's threshold.
//! * [`ExitRule::Patience`] (PABEE): leave when the last `k` evaluated exits predicted the same
//!   class.
//!
//! The final classifier always answers when no exit fired.

use serde::{Deserialize, Serialize};

use crate::calibration::summarize;
use crate::error::{ExitError, Result};

/// The decision rule of a set of exits, with one threshold per exit where it has thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExitRule {
    /// Minimum max-softmax probability per exit, each in `[0, 1]` or `+inf` (never exit).
    MaxSoftmax(Vec<f64>),
    /// Maximum entropy in nats per exit, each `>= 0`, or `-inf` (never exit).
    Entropy(Vec<f64>),
    /// Number of consecutive agreeing exits needed, at least 1.
    Patience(usize),
}

impl ExitRule {
    /// Checks the thresholds of `exits` exits: lengths, ranges and no NaN.
    pub fn validate(&self, exits: usize) -> Result<()> {
        match self {
            Self::MaxSoftmax(t) => {
                if t.len() != exits {
                    return Err(ExitError::shape("max-softmax thresholds", exits, t.len()));
                }
                for (i, &v) in t.iter().enumerate() {
                    if !((0.0..=1.0).contains(&v) || v == f64::INFINITY) {
                        return Err(ExitError::invalid(
                            format!("max-softmax threshold {i}"),
                            format!("{v} is neither in [0, 1] nor +inf"),
                        ));
                    }
                }
            }
            Self::Entropy(t) => {
                if t.len() != exits {
                    return Err(ExitError::shape("entropy thresholds", exits, t.len()));
                }
                for (i, &v) in t.iter().enumerate() {
                    if !(v >= 0.0 && v.is_finite() || v == f64::NEG_INFINITY) {
                        return Err(ExitError::invalid(
                            format!("entropy threshold {i}"),
                            format!("{v} is neither finite and >= 0 nor -inf"),
                        ));
                    }
                }
            }
            Self::Patience(k) => {
                if *k == 0 {
                    return Err(ExitError::invalid("patience", "must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// The per-exit thresholds of a threshold rule (`None` for patience).
    pub fn thresholds(&self) -> Option<Vec<f64>> {
        match self {
            Self::MaxSoftmax(t) | Self::Entropy(t) => Some(t.clone()),
            Self::Patience(_) => None,
        }
    }

    /// Whether exit `exit` can fire at all (false for a `+inf` max-softmax or `-inf` entropy
    /// threshold; such a head need not run).
    pub fn can_fire(&self, exit: usize) -> bool {
        match self {
            Self::MaxSoftmax(t) => t.get(exit).is_some_and(|&v| v != f64::INFINITY),
            Self::Entropy(t) => t.get(exit).is_some_and(|&v| v != f64::NEG_INFINITY),
            Self::Patience(_) => true,
        }
    }

    /// Whether an exit with this max-softmax probability / entropy fires under a threshold rule
    /// (`None` for patience, which needs the prediction history).
    pub fn fires(&self, exit: usize, max_prob: f64, entropy: f64) -> Option<bool> {
        match self {
            Self::MaxSoftmax(t) => t.get(exit).map(|&th| max_prob >= th),
            Self::Entropy(t) => t.get(exit).map(|&th| entropy <= th),
            Self::Patience(_) => None,
        }
    }
}

/// Runtime state of one input while it walks through the exits (patience needs it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyState {
    last_prediction: Option<usize>,
    streak: usize,
}

/// What the policy decided at an exit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExitDecision {
    /// Whether the input leaves here.
    pub exit: bool,
    /// The exit's predicted class.
    pub prediction: usize,
    /// Max-softmax probability at the exit's temperature.
    pub confidence: f64,
}

/// A validated exit rule for a fixed number of exits, with optional per-exit temperatures.
///
/// ```
/// use dynas_exits::{ExitPolicy, ExitRule, PolicyState};
/// let policy = ExitPolicy::new(ExitRule::MaxSoftmax(vec![0.9, 0.8]), 2)?;
/// let mut state = PolicyState::default();
/// let d = policy.decide(0, &[4.0, 0.0, 0.0], &mut state)?;
/// assert!(d.exit && d.prediction == 0);
/// # Ok::<(), dynas_exits::ExitError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitPolicy {
    rule: ExitRule,
    exits: usize,
    temperatures: Vec<f64>,
}

impl ExitPolicy {
    /// A policy over `exits` exits (the final classifier not counted), temperatures 1.
    pub fn new(rule: ExitRule, exits: usize) -> Result<Self> {
        rule.validate(exits)?;
        Ok(Self {
            rule,
            exits,
            temperatures: vec![1.0; exits],
        })
    }

    /// The same policy with per-exit temperatures (finite, positive), e.g. from
    /// [`crate::TemperatureFit`].
    pub fn with_temperatures(mut self, temperatures: Vec<f64>) -> Result<Self> {
        if temperatures.len() != self.exits {
            return Err(ExitError::shape(
                "temperatures",
                self.exits,
                temperatures.len(),
            ));
        }
        if let Some((i, t)) = temperatures
            .iter()
            .enumerate()
            .find(|(_, t)| !(t.is_finite() && **t > 0.0))
        {
            return Err(ExitError::invalid(
                format!("temperature {i}"),
                format!("{t} is not finite and positive"),
            ));
        }
        self.temperatures = temperatures;
        Ok(self)
    }

    /// The rule.
    pub fn rule(&self) -> &ExitRule {
        &self.rule
    }

    /// Number of exits.
    pub fn exits(&self) -> usize {
        self.exits
    }

    /// Per-exit temperatures.
    pub fn temperatures(&self) -> &[f64] {
        &self.temperatures
    }

    /// Decides at exit `exit` from its logits for one input, updating `state`.
    pub fn decide(
        &self,
        exit: usize,
        logits: &[f32],
        state: &mut PolicyState,
    ) -> Result<ExitDecision> {
        let temperature = *self
            .temperatures
            .get(exit)
            .ok_or_else(|| ExitError::invalid("exit", format!("{exit} >= {} exits", self.exits)))?;
        let s = summarize(logits, temperature).ok_or_else(|| {
            ExitError::invalid("logits", format!("exit {exit}: empty or non-finite logits"))
        })?;
        if state.last_prediction == Some(s.prediction) {
            state.streak += 1;
        } else {
            state.streak = 1;
            state.last_prediction = Some(s.prediction);
        }
        let exit_now = match &self.rule {
            ExitRule::Patience(k) => state.streak >= *k,
            rule => rule.fires(exit, s.max_prob, s.entropy).unwrap_or(false),
        };
        Ok(ExitDecision {
            exit: exit_now,
            prediction: s.prediction,
            confidence: s.max_prob,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_rules_fire_as_documented() {
        let p = ExitPolicy::new(ExitRule::MaxSoftmax(vec![0.9, f64::INFINITY]), 2).expect("ok");
        let mut st = PolicyState::default();
        assert!(!p.decide(0, &[1.0, 0.9], &mut st).expect("ok").exit);
        assert!(p.decide(0, &[9.0, 0.0], &mut st).expect("ok").exit);
        assert!(!p.decide(1, &[90.0, 0.0], &mut st).expect("ok").exit);

        let e = ExitPolicy::new(ExitRule::Entropy(vec![0.1]), 1).expect("ok");
        assert!(
            e.decide(0, &[10.0, 0.0, 0.0], &mut PolicyState::default())
                .expect("ok")
                .exit
        );
        // Uniform over 3 classes: entropy ln 3 > 0.1.
        assert!(
            !e.decide(0, &[1.0, 1.0, 1.0], &mut PolicyState::default())
                .expect("ok")
                .exit
        );
    }

    #[test]
    fn patience_needs_k_agreeing_exits() {
        let p = ExitPolicy::new(ExitRule::Patience(2), 3).expect("ok");
        let mut st = PolicyState::default();
        assert!(!p.decide(0, &[1.0, 0.0], &mut st).expect("ok").exit);
        assert!(!p.decide(1, &[0.0, 1.0], &mut st).expect("ok").exit);
        assert!(p.decide(2, &[0.0, 1.0], &mut st).expect("ok").exit);
    }

    #[test]
    fn temperature_changes_confidence_not_prediction() {
        let p = ExitPolicy::new(ExitRule::MaxSoftmax(vec![0.8]), 1)
            .expect("ok")
            .with_temperatures(vec![4.0])
            .expect("ok");
        let d = p
            .decide(0, &[3.0, 0.0], &mut PolicyState::default())
            .expect("ok");
        assert_eq!(d.prediction, 0);
        assert!(!d.exit, "softmax([0.75, 0]) = 0.68 < 0.8");
    }

    #[test]
    fn invalid_rules_are_rejected() {
        assert!(ExitPolicy::new(ExitRule::MaxSoftmax(vec![1.5]), 1).is_err());
        assert!(ExitPolicy::new(ExitRule::MaxSoftmax(vec![f64::NAN]), 1).is_err());
        assert!(ExitPolicy::new(ExitRule::MaxSoftmax(vec![0.5]), 2).is_err());
        assert!(ExitPolicy::new(ExitRule::Entropy(vec![-0.5]), 1).is_err());
        assert!(ExitPolicy::new(ExitRule::Patience(0), 1).is_err());
        let p = ExitPolicy::new(ExitRule::Patience(1), 1).expect("ok");
        assert!(p.clone().with_temperatures(vec![0.0]).is_err());
        assert!(p.decide(3, &[1.0], &mut PolicyState::default()).is_err());
        assert!(p.decide(0, &[], &mut PolicyState::default()).is_err());
    }
}
