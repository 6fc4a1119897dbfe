//! Host latency: the lookup table of every candidate operator and interleaved model timing.

use std::time::Instant;

use crate::search::{GosLut, GosPlan, GosSpace, Replacement, lut_key};
use dynas_space::SearchSpace;
use tch::nn;
use tch::{Kind, Tensor};

use super::{FoldedModel, GosModel, TermModule};
use dynas_supernet::Result;
use dynas_supernet::elastic::channels_last;

/// A model in the form the timing settings ask for.
enum Timed<'a> {
    AsTrained(&'a GosModel),
    Folded(FoldedModel),
}

impl<'a> Timed<'a> {
    fn new(model: &'a GosModel, settings: &TimingSettings) -> Self {
        match settings.form {
            ModelForm::AsTrained => Self::AsTrained(model),
            ModelForm::Folded => Self::Folded(model.folded()),
            ModelForm::FoldedChannelsLast => Self::Folded(model.folded().with_channels_last()),
        }
    }

    fn run(&self, images: &Tensor) {
        match self {
            Self::AsTrained(m) => drop(tch::no_grad(|| m.forward_unchecked(images, false))),
            Self::Folded(m) => drop(m.forward_unchecked(images)),
        }
    }
}

/// Timing settings of host measurements.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimingSettings {
    /// Images per call.
    pub batch: usize,
    /// libtorch intra-op threads.
    pub threads: usize,
    /// Untimed calls first.
    pub warmup: usize,
    /// Timed calls per round; the median over all rounds is reported.
    pub repeats: usize,
    /// Rounds: every measured item (operator, model) takes its turn once per round, so that
    /// a change of the host's speed during the measurement hits all of them alike.
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// The form of the models that is timed.
    #[serde(default)]
    pub form: ModelForm,
}

/// The form in which a model is run for timing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelForm {
    /// As trained: each batch norm and bias its own operator call, NCHW.
    AsTrained,
    /// Biases and batch norms folded into the products before them ([`GosModel::folded`]).
    Folded,
    /// Folded and channels-last ([`FoldedModel::with_channels_last`]): the deployed form, and
    /// the fastest of the three on CPU.
    #[default]
    FoldedChannelsLast,
}

impl ModelForm {
    /// A term module in this form; `input` is put in the layout it expects.
    fn term(self, module: TermModule, input: Tensor) -> (TermModule, Tensor) {
        match self {
            Self::AsTrained => (module, input),
            Self::Folded => (module.folded(), input),
            Self::FoldedChannelsLast => {
                let mut module = module.folded();
                module.make_channels_last();
                let input = if input.dim() == 4 {
                    channels_last(&input)
                } else {
                    input
                };
                (module, input)
            }
        }
    }
}

fn default_rounds() -> usize {
    10
}

impl Default for TimingSettings {
    fn default() -> Self {
        Self {
            batch: 1,
            threads: 2,
            warmup: 5,
            repeats: 10,
            rounds: default_rounds(),
            form: ModelForm::default(),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One thing timed: a lookup-table operator on its input (run it under `tch::no_grad`), or a
/// whole model on images.
enum Workload<'a> {
    Operator(&'a TermModule, &'a Tensor),
    Model(&'a Timed<'a>, &'a Tensor),
}

impl Workload<'_> {
    fn run(&self) {
        match self {
            Self::Operator(module, x) => drop(module.forward_t(x, false)),
            Self::Model(model, images) => model.run(images),
        }
    }
}

/// Median milliseconds per call of each workload, timed in alternation: `warmup` untimed
/// calls each, then `rounds` rounds in which every workload runs `repeats` timed calls in turn.
fn interleaved_ms(items: &[Workload<'_>], settings: &TimingSettings) -> Vec<f64> {
    for w in items {
        for _ in 0..settings.warmup {
            w.run();
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); items.len()];
    for _ in 0..settings.rounds.max(1) {
        for (w, t) in items.iter().zip(times.iter_mut()) {
            for _ in 0..settings.repeats.max(1) {
                let start = Instant::now();
                w.run();
                t.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    times.into_iter().map(median).collect()
}

/// Random images of `model`'s input shape, `batch` of them.
fn random_images(model: &GosModel, batch: usize) -> Tensor {
    let i = model.network.input;
    Tensor::randn(
        [
            batch as i64,
            i.channels as i64,
            i.height as i64,
            i.width as i64,
        ],
        (Kind::Float, model.vs.device()),
    )
}

/// A plan's whole-network latency as the lookup table predicts it and as measured in the
/// table's own rounds ([`measure_lut_with_checks`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LutCheck {
    /// The table's prediction, ms.
    pub predicted_ms: f64,
    /// The median measured in the table's rounds, ms.
    pub measured_ms: f64,
}

impl LutCheck {
    /// `100 x (predicted - measured) / measured`.
    pub fn error_percent(&self) -> f64 {
        100.0 * (self.predicted_ms - self.measured_ms) / self.measured_ms
    }
}

/// Plans drawn at random, besides the original and two ranked ones, whose whole-network
/// timings the table's composition is fitted on.
const RANDOM_REFERENCE_PLANS: usize = 4;

/// Builds the "bring your own lookup table" of `space`: every unit's every candidate measured
/// alone through libtorch on this host (random weights and inputs of its shape), then the rest
/// of the network (pooling, additions) and how the entries compose in the chain fitted on
/// whole-network timings of the original and six replaced plans ([`GosLut::fit_chain`]).
///
/// Operators and whole networks are timed in alternation ([`TimingSettings::rounds`]), so
/// that the table's entries and the networks they are fitted against see the same host: a
/// quick first pass only ranks the entries to pick the two replaced plans.
pub fn measure_lut(
    original: &GosModel,
    space: &GosSpace,
    settings: &TimingSettings,
) -> Result<GosLut> {
    measure_lut_with_checks(original, space, settings, &[]).map(|(lut, _)| lut)
}

/// [`measure_lut`], also timing the whole networks of `checks` (plans of `space`) in the same
/// rounds as the table's entries, and returning for each the table's prediction beside that
/// measurement, taken under the same host conditions. They take no part in the fit.
pub fn measure_lut_with_checks(
    original: &GosModel,
    space: &GosSpace,
    settings: &TimingSettings,
    checks: &[GosPlan],
) -> Result<(GosLut, Vec<LutCheck>)> {
    tch::set_num_threads(settings.threads as i32);
    let device = original.vs.device();
    let batch = settings.batch as i64;
    let mut operators: Vec<(String, TermModule, Tensor)> = Vec::new();
    let vs = nn::VarStore::new(device);
    for unit in space.units() {
        let e = &unit.expr;
        let input = Tensor::randn(
            [
                batch,
                e.input.channels as i64,
                e.input.height as i64,
                e.input.width as i64,
            ],
            (Kind::Float, device),
        );
        let input = if e.spatial.is_empty() {
            input.flatten(1, -1)
        } else {
            input
        };
        for &choice in &unit.choices {
            let key = lut_key(e, &choice);
            if operators.iter().any(|(k, _, _)| *k == key) {
                continue;
            }
            let path = vs.root() / operators.len();
            let module = TermModule::new(&path, e, choice, 1)?;
            let (module, x) = settings.form.term(module, input.shallow_clone());
            operators.push((key, module, x));
        }
    }
    let operator_runs: Vec<Workload<'_>> = operators
        .iter()
        .map(|(_, module, x)| Workload::Operator(module, x))
        .collect();
    let quick = TimingSettings {
        warmup: 1,
        rounds: 1,
        ..*settings
    };
    let first = tch::no_grad(|| interleaved_ms(&operator_runs, &quick));
    let mut lut = GosLut {
        batch: settings.batch,
        threads: settings.threads,
        rest_ms: 0.0,
        entries: operators
            .iter()
            .map(|(k, _, _)| k.clone())
            .zip(first)
            .collect(),
        per_call_ms: 0.0,
        chain_scale: 1.0,
    };
    // Whole networks: the original, two plans with more operator calls (every unit at its
    // fastest entry, and at its median one) and a few drawn at random (seeded), so that the
    // rest, the chain's scale on the entries and its cost per call can be told apart.
    let mut fitted_plans = vec![
        original.plan.clone(),
        reference_plan(space, &lut, 0),
        reference_plan(space, &lut, 1),
    ];
    let mut rng = dynas_space::seeded_rng(0);
    for _ in 0..RANDOM_REFERENCE_PLANS {
        fitted_plans.push(space.plan(&space.sample(&mut rng))?);
    }
    let plans: Vec<&GosPlan> = fitted_plans.iter().chain(checks).collect();
    let models = plans
        .iter()
        .map(|&plan| GosModel::new(original.network.clone(), plan.clone(), device))
        .collect::<Result<Vec<_>>>()?;
    let timed: Vec<Timed<'_>> = models.iter().map(|m| Timed::new(m, settings)).collect();
    let images = random_images(original, settings.batch);
    let all: Vec<Workload<'_>> = operator_runs
        .into_iter()
        .chain(timed.iter().map(|m| Workload::Model(m, &images)))
        .collect();
    let ms = tch::no_grad(|| interleaved_ms(&all, settings));
    let (operator_ms, whole_ms) = ms.split_at(operators.len());
    for ((key, _, _), &t) in operators.iter().zip(operator_ms) {
        lut.entries.insert(key.clone(), t);
    }
    let (fitted_ms, checked_ms) = whole_ms.split_at(fitted_plans.len());
    let fitted: Vec<(GosPlan, f64)> = fitted_plans
        .into_iter()
        .zip(fitted_ms.iter().copied())
        .collect();
    let incompatible =
        |e: dynas_search::SearchError| dynas_supernet::SupernetError::Incompatible(e.to_string());
    lut.fit_chain(space, &fitted).map_err(incompatible)?;
    let checked = checks
        .iter()
        .zip(checked_ms)
        .map(|(plan, &measured_ms)| {
            Ok(LutCheck {
                predicted_ms: lut.predict(space, plan).map_err(incompatible)?,
                measured_ms,
            })
        })
        .collect::<Result<_>>()?;
    Ok((lut, checked))
}

/// The plan giving every unit its fastest entry (`rank` 0) or its median one (`rank` 1).
fn reference_plan(space: &GosSpace, lut: &GosLut, rank: usize) -> GosPlan {
    let mut plan = GosPlan::default();
    for unit in space.units() {
        let mut ranked: Vec<(f64, Replacement)> = unit
            .choices
            .iter()
            .filter_map(|c| lut.entries.get(&unit.lut_key(c)).map(|&ms| (ms, *c)))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let pick = if rank == 0 { 0 } else { ranked.len() / 2 };
        if let Some(&(_, choice)) = ranked.get(pick)
            && choice != Replacement::Keep
        {
            plan.replacements.insert(unit.name(space.network()), choice);
        }
    }
    plan
}

/// Median milliseconds per call of each model (in the form `settings` asks for), measured in
/// alternation ([`TimingSettings::rounds`] rounds of [`TimingSettings::repeats`] calls each,
/// model by model) so that load on the host hits all of them alike.
pub fn measure_interleaved(models: &[&GosModel], settings: &TimingSettings) -> Vec<f64> {
    tch::set_num_threads(settings.threads as i32);
    let Some(first) = models.first() else {
        return Vec::new();
    };
    let images = random_images(first, settings.batch);
    let timed: Vec<Timed<'_>> = models.iter().map(|m| Timed::new(m, settings)).collect();
    let runs: Vec<Workload<'_>> = timed.iter().map(|m| Workload::Model(m, &images)).collect();
    interleaved_ms(&runs, settings)
}
