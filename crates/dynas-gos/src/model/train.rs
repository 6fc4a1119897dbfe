//! Accuracy, training and fine-tuning with distillation, and the per-unit accuracy proxy.

use std::collections::HashMap;

use crate::search::{GosSpace, UnitErrors};
use dynas_space::DynasRng;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

use super::{GosModel, TermModule, copy_bn, init_weights};
use dynas_supernet::data::{Augmentation, Dataset, Normalization};
use dynas_supernet::{Result, SupernetError};

/// Top-1 accuracy (in `[0, 1]`) of `model` on `data`.
pub fn accuracy(model: &GosModel, data: &Dataset, norm: &Normalization, batch: usize) -> f64 {
    let mut rng = dynas_space::seeded_rng(0);
    let device = model.vs.device();
    let mut correct = 0i64;
    tch::no_grad(|| {
        for b in data.batches(batch, false, norm, Augmentation::NONE, &mut rng, device) {
            let logits = model.forward_unchecked(&b.images, false);
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&b.labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
    });
    correct as f64 / data.len().max(1) as f64
}

/// Training hyper-parameters (validate with [`TrainSettings::check`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    /// Passes over the data.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate (cosine decay to zero over all steps).
    pub learning_rate: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Weight of the distillation loss when a teacher is given (the rest on the labels).
    pub distill_weight: f64,
    /// Softmax temperature of the distillation loss.
    pub temperature: f64,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 2,
            batch: 128,
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            distill_weight: 0.7,
            temperature: 4.0,
            seed: 0,
        }
    }
}

/// Validated [`TrainSettings`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedTrainSettings(TrainSettings);

impl TrainSettings {
    /// Checks every field's range.
    pub fn check(self) -> Result<CheckedTrainSettings> {
        let positive = |name: &'static str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(SupernetError::invalid(name, format!("{v} is not positive")))
            }
        };
        if self.epochs == 0 || self.batch == 0 {
            return Err(SupernetError::invalid("epochs/batch", "must be at least 1"));
        }
        positive("learning_rate", self.learning_rate)?;
        positive("temperature", self.temperature)?;
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..=1.0).contains(&self.distill_weight) {
            return Err(SupernetError::invalid(
                "momentum/distill_weight",
                "momentum must lie in [0, 1) and distill_weight in [0, 1]",
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(SupernetError::invalid(
                "weight_decay",
                "must be non-negative",
            ));
        }
        Ok(CheckedTrainSettings(self))
    }
}

impl CheckedTrainSettings {
    /// The settings.
    pub fn settings(&self) -> &TrainSettings {
        &self.0
    }
}

/// Trains `model` on `data` with SGD and a cosine schedule; with a `teacher`, the loss mixes
/// distillation from its logits (`distill_weight`, at `temperature`) with the labels'
/// cross-entropy. Returns the mean loss of each epoch.
pub fn train(
    model: &mut GosModel,
    teacher: Option<&GosModel>,
    data: &Dataset,
    norm: &Normalization,
    settings: &CheckedTrainSettings,
) -> Result<Vec<f64>> {
    let s = settings.settings();
    let mut opt = nn::Sgd {
        momentum: s.momentum,
        dampening: 0.0,
        wd: s.weight_decay,
        nesterov: true,
    }
    .build(&model.vs, s.learning_rate)?;
    let steps_per_epoch = data.len().div_ceil(s.batch);
    let total = (steps_per_epoch * s.epochs).max(1) as f64;
    let mut rng: DynasRng = dynas_space::seeded_rng(s.seed);
    let device = model.vs.device();
    let mut losses = Vec::with_capacity(s.epochs);
    let mut step = 0usize;
    for _ in 0..s.epochs {
        let mut sum = 0.0;
        let mut count = 0usize;
        let order: Vec<_> = data
            .batches(s.batch, true, norm, Augmentation::NONE, &mut rng, device)
            .collect();
        for b in order {
            let lr =
                0.5 * s.learning_rate * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            opt.set_lr(lr);
            let logits = model.forward_unchecked(&b.images, true);
            let hard = logits.cross_entropy_for_logits(&b.labels);
            let loss = match teacher {
                Some(t) => {
                    let target = tch::no_grad(|| t.forward_unchecked(&b.images, false));
                    let temp = s.temperature;
                    let soft = (logits / temp).log_softmax(-1, Kind::Float).kl_div(
                        &(target / temp).log_softmax(-1, Kind::Float),
                        tch::Reduction::Sum,
                        true,
                    ) * (temp * temp / b.len().max(1) as f64);
                    hard * (1.0 - s.distill_weight) + soft * s.distill_weight
                }
                None => hard,
            };
            opt.backward_step(&loss);
            sum += loss.double_value(&[]);
            count += 1;
            step += 1;
        }
        losses.push(sum / count.max(1) as f64);
    }
    Ok(losses)
}

/// Per-unit accuracy proxy: for each candidate of each unit of `space`, the relative squared
/// error `|y' - y|^2 / |y|^2` of the initialised replacement's output against the original
/// term's, on the unit's inputs recorded while `original` runs `images`.
pub fn unit_errors(original: &GosModel, space: &GosSpace, images: &Tensor) -> Result<UnitErrors> {
    let inputs = tch::no_grad(|| original.unit_inputs(images));
    let terms: HashMap<String, &TermModule> = original.terms().into_iter().collect();
    let mut all = Vec::with_capacity(space.units().len());
    for unit in space.units() {
        let name = unit.name(space.network());
        let (Some(term), Some(x)) = (terms.get(&name), inputs.get(&name)) else {
            return Err(SupernetError::Incompatible(format!(
                "unit `{name}` is not in the model"
            )));
        };
        let reference = tch::no_grad(|| term.forward_t(x, false));
        let norm = reference
            .square()
            .sum(Kind::Float)
            .double_value(&[])
            .max(1e-12);
        let mut errors = Vec::with_capacity(unit.choices.len());
        for &choice in &unit.choices {
            let vs = nn::VarStore::new(x.device());
            let candidate =
                TermModule::new(&vs.root(), &unit.expr, choice, term.subsample as usize)?;
            let err = tch::no_grad(|| -> Result<f64> {
                let weights = init_weights(&term.stages[0].weight, &unit.expr, choice)?;
                for (stage, w) in candidate.stages.iter().zip(weights) {
                    stage.weight.shallow_clone().copy_(&w);
                }
                if let (Some(src), Some(dst)) = (&term.bias, &candidate.bias) {
                    dst.shallow_clone().copy_(src);
                }
                if let (Some(src), Some(dst)) = (&term.bn, &candidate.bn) {
                    copy_bn(src, dst);
                }
                let y = candidate.forward_t(x, false);
                Ok((y - &reference).square().sum(Kind::Float).double_value(&[]) / norm)
            })?;
            errors.push(err);
        }
        all.push(errors);
    }
    Ok(UnitErrors(all))
}
