//! Host latency: the lookup table of every candidate operator and interleaved model timing.

use std::time::Instant;

use dynas_search::gos::{GosLut, GosPlan, GosSpace, Replacement, lut_key};
use tch::nn;
use tch::{Kind, Tensor};

use super::{FoldedModel, GosModel, TermModule};
use crate::elastic::channels_last;
use crate::error::Result;

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
    /// Timed calls; the median is reported.
    pub repeats: usize,
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

impl Default for TimingSettings {
    fn default() -> Self {
        Self {
            batch: 1,
            threads: 2,
            warmup: 5,
            repeats: 30,
            form: ModelForm::default(),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time_ms(f: &dyn Fn(), settings: &TimingSettings) -> f64 {
    for _ in 0..settings.warmup {
        f();
    }
    let times = (0..settings.repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// Builds the "bring your own lookup table" of `space`: every unit's every candidate measured
/// alone through libtorch on this host (random weights and inputs of its shape), then the rest
/// of the network (pooling, additions) and the in-chain cost of each operator call fitted on
/// whole-network timings of the original and two replaced plans ([`GosLut::fit_chain`]).
pub fn measure_lut(
    original: &GosModel,
    space: &GosSpace,
    settings: &TimingSettings,
) -> Result<GosLut> {
    tch::set_num_threads(settings.threads as i32);
    let device = original.vs.device();
    let batch = settings.batch as i64;
    let mut entries = std::collections::BTreeMap::new();
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
            if entries.contains_key(&key) {
                continue;
            }
            let vs = nn::VarStore::new(device);
            let module = TermModule::new(&vs.root(), e, choice, 1)?;
            let (module, x) = settings.form.term(module, input.shallow_clone());
            let ms = tch::no_grad(|| time_ms(&|| drop(module.forward_t(&x, false)), settings));
            entries.insert(key, ms);
        }
    }
    let i = original.network.input;
    let images = Tensor::randn(
        [batch, i.channels as i64, i.height as i64, i.width as i64],
        (Kind::Float, device),
    );
    let mut lut = GosLut {
        batch: settings.batch,
        threads: settings.threads,
        rest_ms: 0.0,
        entries,
        per_call_ms: 0.0,
    };
    // Whole networks: the original, and two plans with more operator calls (every unit at its
    // fastest entry, and at its median one), so that the rest and the in-chain cost of each
    // call can be told apart.
    let mut timed = vec![(original.plan.clone(), whole_ms(original, &images, settings))];
    for plan in [
        reference_plan(space, &lut, 0),
        reference_plan(space, &lut, 1),
    ] {
        let model = GosModel::new(original.network.clone(), plan.clone(), device)?;
        timed.push((plan, whole_ms(&model, &images, settings)));
    }
    lut.fit_chain(space, &timed)
        .map_err(|e| crate::error::SupernetError::Incompatible(e.to_string()))?;
    Ok(lut)
}

/// Median milliseconds of `model` on `images` in the form `settings` asks for.
fn whole_ms(model: &GosModel, images: &Tensor, settings: &TimingSettings) -> f64 {
    let timed = Timed::new(model, settings);
    time_ms(&|| timed.run(images), settings)
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
/// alternation (`rounds` rounds of `repeats` calls each, model by model) so that load on the
/// host hits all of them alike.
pub fn measure_interleaved(
    models: &[&GosModel],
    settings: &TimingSettings,
    rounds: usize,
) -> Vec<f64> {
    tch::set_num_threads(settings.threads as i32);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let Some(first) = models.first() else {
        return Vec::new();
    };
    let i = first.network.input;
    let images = Tensor::randn(
        [
            settings.batch as i64,
            i.channels as i64,
            i.height as i64,
            i.width as i64,
        ],
        (Kind::Float, first.vs.device()),
    );
    let timed: Vec<Timed<'_>> = models.iter().map(|m| Timed::new(m, settings)).collect();
    for m in &timed {
        for _ in 0..settings.warmup {
            m.run(&images);
        }
    }
    for _ in 0..rounds.max(1) {
        for (m, t) in timed.iter().zip(times.iter_mut()) {
            for _ in 0..settings.repeats.max(1) {
                let start = Instant::now();
                m.run(&images);
                t.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    times.into_iter().map(median).collect()
}
