//! GOS end to end: lookup table, proxy, search, then fine-tuned bisection of the front.

use crate::search::{GosLut, GosPlan, GosSpace};

use super::GosModel;
use super::timing::{TimingSettings, measure_lut};
use super::train::{CheckedTrainSettings, TrainSettings, accuracy, train, unit_errors};
use dynas_supernet::data::{Augmentation, Dataset, Normalization};
use dynas_supernet::{Result, SupernetError};

/// Where [`adapt`] takes latencies from.
#[derive(Debug)]
pub enum LatencySource {
    /// Measure a [`GosLut`] on this host first (batch and threads of the adapt timing).
    Host,
    /// A table measured before, or any cost model.
    Given(crate::search::GosLatency),
}

/// Settings of [`adapt`] (validate with [`AdaptSettings::check`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptSettings {
    /// Bounds of the candidate enumeration.
    pub candidates: crate::search::CandidateParams,
    /// Distinct plans NSGA-II evaluates.
    pub search_evaluations: usize,
    /// Seed of the search.
    pub seed: u64,
    /// Largest accepted drop of validation top-1 after fine-tuning, in points (percent);
    /// the test split is only reported, never used to choose.
    pub accuracy_budget: f64,
    /// Plans fine-tuned at most: the bisection over the front's plans (by predicted latency)
    /// for the fastest one within the budget stops after this many probes. The default, 6,
    /// finishes a bisection over the 40-80 faster plans a front usually has.
    pub max_attempts: usize,
    /// Training images whose unit inputs calibrate the accuracy proxy.
    pub calibration_images: usize,
    /// Timing of the lookup table.
    pub timing: TimingSettings,
    /// Fine-tuning (distillation from the original).
    pub fine_tune: TrainSettings,
}

impl Default for AdaptSettings {
    fn default() -> Self {
        Self {
            candidates: crate::search::CandidateParams::default(),
            search_evaluations: 3000,
            seed: 0,
            accuracy_budget: 1.0,
            max_attempts: 6,
            calibration_images: 256,
            timing: TimingSettings::default(),
            fine_tune: TrainSettings {
                epochs: 1,
                learning_rate: 0.01,
                ..TrainSettings::default()
            },
        }
    }
}

/// Validated [`AdaptSettings`].
#[derive(Clone, Debug)]
pub struct CheckedAdaptSettings {
    settings: AdaptSettings,
    candidates: crate::search::CandidateConfig,
    fine_tune: CheckedTrainSettings,
}

impl AdaptSettings {
    /// Checks every field.
    pub fn check(self) -> Result<CheckedAdaptSettings> {
        let candidates = self.candidates.clone().check()?;
        let fine_tune = self.fine_tune.clone().check()?;
        if self.search_evaluations < 2 || self.max_attempts == 0 || self.calibration_images == 0 {
            return Err(SupernetError::invalid(
                "search_evaluations/max_attempts/calibration_images",
                "need at least 2 evaluations, 1 attempt and 1 calibration image",
            ));
        }
        if !(self.accuracy_budget.is_finite() && self.accuracy_budget >= 0.0) {
            return Err(SupernetError::invalid(
                "accuracy_budget",
                "must be finite and non-negative",
            ));
        }
        if self.timing.batch == 0 || self.timing.threads == 0 || self.timing.repeats == 0 {
            return Err(SupernetError::invalid(
                "timing",
                "batch, threads and repeats must be at least 1",
            ));
        }
        Ok(CheckedAdaptSettings {
            settings: self,
            candidates,
            fine_tune,
        })
    }
}

impl CheckedAdaptSettings {
    /// The settings.
    pub fn settings(&self) -> &AdaptSettings {
        &self.settings
    }
}

/// One plan [`adapt`] fine-tuned.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// The replacements.
    pub plan: GosPlan,
    /// Predicted latency, ms.
    pub predicted_ms: f64,
    /// Summed accuracy proxy.
    pub error_proxy: f64,
    /// Validation top-1 (percent) right after initialisation.
    pub validation_top1_init: f64,
    /// Validation top-1 (percent) after fine-tuning: what the budget is judged on.
    pub validation_top1_fine_tuned: f64,
    /// Test top-1 (percent) after initialisation, before fine-tuning.
    pub test_top1_init: f64,
    /// Test top-1 (percent) after fine-tuning.
    pub test_top1_fine_tuned: f64,
}

/// What [`adapt`] did and found.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptReport {
    /// Name of the latency source.
    pub latency_source: String,
    /// Replaceable units and the candidates each had.
    pub units: Vec<(String, Vec<String>)>,
    /// The lookup table, when measured or given.
    pub lut: Option<GosLut>,
    /// Predicted latency of the original, ms.
    pub original_predicted_ms: f64,
    /// Test top-1 of the original, percent.
    pub original_test_top1: f64,
    /// Validation top-1 of the original, percent.
    pub original_validation_top1: f64,
    /// Size of the search's Pareto front.
    pub front_size: usize,
    /// Every plan fine-tuned, in order.
    pub attempts: Vec<Attempt>,
    /// Index into `attempts` of the returned model.
    pub chosen: usize,
    /// Whether the chosen model is within the accuracy budget on the validation set.
    pub within_budget: bool,
}

/// Data [`adapt`] works on.
#[derive(Debug, Clone, Copy)]
pub struct AdaptData<'a> {
    /// Fine-tuning and calibration images.
    pub train: &'a Dataset,
    /// Held-out images that rank plans before fine-tuning.
    pub validation: &'a Dataset,
    /// Test images for the reported accuracies.
    pub test: &'a Dataset,
    /// Normalisation of all three.
    pub norm: &'a Normalization,
}

/// Whether `top1` is at most `budget` points below `reference` (all in percent), exact-edge
/// rounding forgiven ([`dynas_search::within_tolerance`]).
fn within_budget(top1: f64, reference: f64, budget: f64) -> bool {
    dynas_search::within_tolerance(reference - top1, budget)
}

/// GOS end to end: enumerate the replacements of `original`'s operators, measure (or take)
/// their latencies, calibrate the accuracy proxy, search plans with NSGA-II for latency x
/// proxy, then bisect the front's plans that are predicted faster than the original (ordered
/// by predicted latency) for the fastest one that, fine-tuned with distillation from
/// `original`, stays within `accuracy_budget` of its validation top-1 (at most
/// `max_attempts` probes). Returns the fastest probe within the budget, else the most accurate
/// probe ([`AdaptReport::within_budget`] says which). Test accuracies are only reported.
pub fn adapt(
    original: &GosModel,
    data: AdaptData<'_>,
    latency: LatencySource,
    settings: &CheckedAdaptSettings,
) -> Result<(GosModel, AdaptReport)> {
    use crate::search::GosLatency;
    use dynas_search::{Budget, Executor, Nsga2, Nsga2Config};
    let s = &settings.settings;
    let space = GosSpace::new(original.network.clone(), &settings.candidates)?;
    let device = original.vs.device();
    let mut rng = dynas_space::seeded_rng(s.seed);
    let calibration: Vec<usize> = (0..data.train.len().min(s.calibration_images)).collect();
    let calib = data.train.batch(
        &calibration,
        data.norm,
        &Augmentation::NONE,
        &mut rng,
        device,
    );
    let errors = unit_errors(original, &space, &calib.images)?;
    let (latency, lut, source) = match latency {
        LatencySource::Host => {
            let lut = measure_lut(original, &space, &s.timing)?;
            (
                GosLatency::Table(lut.clone()),
                Some(lut),
                "host lookup table".to_string(),
            )
        }
        LatencySource::Given(GosLatency::Table(lut)) => (
            GosLatency::Table(lut.clone()),
            Some(lut),
            "given lookup table".to_string(),
        ),
        LatencySource::Given(other) => {
            let name = format!("{other:?}");
            (other, None, name)
        }
    };
    let units = space
        .units()
        .iter()
        .map(|u| {
            (
                u.name(space.network()),
                u.choices.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let problem = crate::search::GosProblem::new(space.clone(), latency, errors)?;
    let original_predicted_ms = problem.latency_ms(&space.original())?;
    let result = Executor::new(
        &problem,
        Nsga2::new(Nsga2Config::default())?,
        Budget::evaluations(s.search_evaluations)?,
    )
    .seed(s.seed)
    .run()?;
    let mut front: Vec<_> = result.front.points.clone();
    front.sort_by(|a, b| a.values[0].total_cmp(&b.values[0]));
    let original_test_top1 = 100.0 * accuracy(original, data.test, data.norm, 256);
    let original_validation_top1 = 100.0 * accuracy(original, data.validation, data.norm, 256);
    // Plans predicted faster than the original, fastest first. Along a front, a faster plan
    // approximates more, so the fastest plan within the budget is found by bisection, each
    // probe fine-tuned and judged on the validation split (initialisation alone says little:
    // aggressive factorisations start near chance and recover under distillation).
    let candidates: Vec<(f64, f64, GosPlan)> = front
        .iter()
        .filter(|p| p.values[0] < original_predicted_ms)
        .map(|p| Ok((p.values[0], p.values[1], space.plan(&p.genotype)?)))
        .collect::<Result<_>>()?;
    let meets = |top1: f64| within_budget(top1, original_validation_top1, s.accuracy_budget);
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut models: Vec<GosModel> = Vec::new();
    let (mut lo, mut hi) = (0usize, candidates.len());
    while attempts.len() < s.max_attempts && lo < hi {
        let probe = lo + (hi - lo) / 2;
        let (predicted_ms, error_proxy, plan) = candidates[probe].clone();
        let mut model = original.adapted(plan.clone())?;
        let validation_top1_init = 100.0 * accuracy(&model, data.validation, data.norm, 256);
        let test_top1_init = 100.0 * accuracy(&model, data.test, data.norm, 256);
        train(
            &mut model,
            Some(original),
            data.train,
            data.norm,
            &settings.fine_tune,
        )?;
        let validation_top1_fine_tuned = 100.0 * accuracy(&model, data.validation, data.norm, 256);
        let test_top1_fine_tuned = 100.0 * accuracy(&model, data.test, data.norm, 256);
        if meets(validation_top1_fine_tuned) {
            hi = probe;
        } else {
            lo = probe + 1;
        }
        attempts.push(Attempt {
            plan,
            predicted_ms,
            error_proxy,
            validation_top1_init,
            validation_top1_fine_tuned,
            test_top1_init,
            test_top1_fine_tuned,
        });
        models.push(model);
    }
    // The fastest plan within the budget, else the most accurate one tried.
    let Some(chosen) = (0..attempts.len())
        .filter(|&i| meets(attempts[i].validation_top1_fine_tuned))
        .min_by(|&a, &b| {
            attempts[a]
                .predicted_ms
                .total_cmp(&attempts[b].predicted_ms)
        })
        .or_else(|| {
            (0..attempts.len()).max_by(|&a, &b| {
                attempts[a]
                    .validation_top1_fine_tuned
                    .total_cmp(&attempts[b].validation_top1_fine_tuned)
            })
        })
    else {
        return Err(SupernetError::Incompatible(format!(
            "no plan on the front ({} points) is predicted faster than the original ({:.4} ms)",
            front.len(),
            original_predicted_ms
        )));
    };
    let within_budget = meets(attempts[chosen].validation_top1_fine_tuned);
    let model = models.swap_remove(chosen);
    Ok((
        model,
        AdaptReport {
            latency_source: source,
            units,
            lut,
            original_predicted_ms,
            original_test_top1,
            original_validation_top1,
            front_size: front.len(),
            attempts,
            chosen,
            within_budget,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::within_budget;

    #[test]
    fn a_drop_of_exactly_the_budget_is_within_it_despite_rounding() {
        // 1,792 and 1,772 of 2,000 validation images: exactly one point apart, though
        // 89.60000000000001 - 1.0 > 88.6 in floating point.
        let reference = 1792.0 / 2000.0 * 100.0;
        let probe = 1772.0 / 2000.0 * 100.0;
        assert!(probe < reference - 1.0, "the rounding this test is about");
        assert!(within_budget(probe, reference, 1.0));
        assert!(!within_budget(1771.0 / 2000.0 * 100.0, reference, 1.0));
    }
}
