//! GOS on libtorch: exact rewrites reproduce the original, files round-trip with their
//! description, proxies, lookup tables and distillation run on tiny inputs.

// The supernet tests' fixtures (tiny data set, randomised variables), shared rather than copied.
#[path = "../../dynas-supernet/tests/common/mod.rs"]
mod common;

use approx::assert_relative_eq;
use common::randomise;
use dynas_gos::model::{
    AdaptData, AdaptSettings, GosModel, LatencySource, ModelForm, TimingSettings, TrainSettings,
    adapt, description_path, measure_lut, measure_lut_with_checks, train, unit_errors,
};
use dynas_gos::search::{CandidateParams, Factorisation, GosPlan, GosSpace, Replacement, lut_key};
use dynas_space::{Activation, Layer, Network, PoolKind, TensorShape};
use dynas_supernet::{Dataset, SupernetError};
use tch::{Device, Kind, Tensor};

/// libtorch's random generator is process-wide and the harness runs tests on parallel threads:
/// tests that seed and draw from it take turns.
static LIBTORCH_GLOBALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn libtorch_turn() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH_GLOBALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn small_net() -> Network {
    let input = TensorShape::new(1, 8, 8);
    let c1 = Layer::conv("c1", input, 4, 3, 1, Activation::Relu);
    let c2 = Layer::conv("c2", c1.output(), 6, 3, 1, Activation::Relu);
    let p = Layer::pool("p", PoolKind::Max, c2.output(), 2, 2);
    let r = Layer::residual_block("r", p.output(), 8, 2);
    let g = Layer::global_avg_pool("gap", r.output());
    let fc = Layer::linear("fc", 8, 10);
    Network::new(input, vec![c1, c2, p, r, g, fc])
}

fn plan(entries: &[(&str, Replacement)]) -> GosPlan {
    GosPlan {
        replacements: entries.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

/// `c2` replaced by `c2_choice`; the residual block's b split k x 1 then 1 x k (rank 2), its a
/// a dilated 2 x 2 kernel, and the classifier low-rank (rank 3).
fn with_residual_and_dense_rewrites(c2_choice: Replacement) -> GosPlan {
    plan(&[
        ("c2.conv", c2_choice),
        (
            "r.b",
            Replacement::Factorised(Factorisation::spatially_separable(2)),
        ),
        (
            "r.a",
            Replacement::Dilated {
                kernel: 2,
                dilation: 2,
            },
        ),
        ("fc.linear", Replacement::LowRankDense { rank: 3 }),
    ])
}

/// Sets variable `name` of `model` to `value`.
fn set(model: &GosModel, name: &str, value: &Tensor) {
    let vars = model.var_store().variables();
    let var = vars
        .get(name)
        .unwrap_or_else(|| panic!("no variable {name}: {:?}", vars.keys()));
    tch::no_grad(|| var.shallow_clone().copy_(value));
}

fn logits(model: &GosModel, x: &Tensor) -> Vec<f32> {
    let y = tch::no_grad(|| model.forward(x, false)).expect("forward");
    Vec::<f32>::try_from(y.flatten(0, -1)).expect("floats")
}

fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tolerance * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn depthwise_separable_rewrite_of_a_separable_kernel_is_exact() {
    let _turn = libtorch_turn();
    tch::manual_seed(1);
    let original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    // W[co, ci, kh, kw] = P[co, ci] * D[ci, kh, kw]: separable per input channel.
    let p = Tensor::randn([6, 4, 1, 1], (Kind::Float, Device::Cpu));
    let d = Tensor::randn([1, 4, 3, 3], (Kind::Float, Device::Cpu));
    set(&original, "c2.conv.s0.weight", &(p * d));
    let dwsep = Replacement::Factorised(Factorisation::depthwise_separable());
    let adapted = original
        .adapted(plan(&[("c2.conv", dwsep)]))
        .expect("adapt");
    let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_close(&logits(&adapted, &x), &logits(&original, &x), 1e-5);
    // A kernel that is not separable is only approximated.
    set(
        &original,
        "c2.conv.s0.weight",
        &Tensor::randn([6, 4, 3, 3], (Kind::Float, Device::Cpu)),
    );
    let approximate = original
        .adapted(plan(&[("c2.conv", dwsep)]))
        .expect("adapt");
    let (a, b) = (logits(&approximate, &x), logits(&original, &x));
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));
}

#[test]
fn low_rank_rewrites_of_low_rank_kernels_are_exact() {
    let _turn = libtorch_turn();
    tch::manual_seed(2);
    let original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    let f = || (Kind::Float, Device::Cpu);
    // Rank 2 as [co, (ci, kh, kw)] for the low-rank bottleneck of c2.
    let bottleneck = Tensor::randn([6, 2], f()).matmul(&Tensor::randn([2, 36], f()));
    set(
        &original,
        "c2.conv.s0.weight",
        &bottleneck.reshape([6, 4, 3, 3]),
    );
    // Rank 2 as [(ci, kh), (co, kw)] for the k x 1 then 1 x k split of r.b (8 -> 8).
    let split = Tensor::randn([24, 2], f()).matmul(&Tensor::randn([2, 24], f()));
    let kernel_b = split.reshape([8, 3, 8, 3]).permute([2, 0, 1, 3]);
    set(&original, "r.b.s0.weight", &kernel_b);
    // A dense layer of rank 3, and a 3x3 kernel with taps only on the dilated grid... of a
    // 3x3 kernel: kernel 2, dilation 2 keeps the corners.
    let dense = Tensor::randn([10, 3], f()).matmul(&Tensor::randn([3, 8], f()));
    set(&original, "fc.linear.s0.weight", &dense);
    let corners = Tensor::from_slice(&[1f32, 0., 1., 0., 0., 0., 1., 0., 1.]).reshape([1, 1, 3, 3]);
    let kernel_a = Tensor::randn([8, 6, 3, 3], f()) * corners;
    set(&original, "r.a.s0.weight", &kernel_a);
    let adapted = original
        .adapted(with_residual_and_dense_rewrites(Replacement::Factorised(
            Factorisation::low_rank(2),
        )))
        .expect("adapt");
    let x = Tensor::randn([2, 1, 8, 8], f());
    assert_close(&logits(&adapted, &x), &logits(&original, &x), 1e-4);
}

#[test]
fn folded_and_channels_last_forms_compute_the_same_logits() {
    let _turn = libtorch_turn();
    tch::manual_seed(3);
    let original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    randomise(original.var_store(), |_| true);
    // A grouped conv with a channel shuffle (the fold must follow the permutation), factorised
    // and dilated terms, a strided residual shortcut and a low-rank dense layer with a bias.
    let adapted = original
        .adapted(with_residual_and_dense_rewrites(
            Replacement::GroupedShuffle { groups: 2 },
        ))
        .expect("adapt");
    randomise(adapted.var_store(), |_| true);
    let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    let floats = |y: Tensor| Vec::<f32>::try_from(y.flatten(0, -1)).expect("floats");
    for model in [&original, &adapted] {
        let reference = logits(model, &x);
        assert!(reference.iter().any(|v| v.abs() > 1e-2), "{reference:?}");
        let folded = model.folded();
        assert_close(
            &floats(folded.forward(&x).expect("folded")),
            &reference,
            1e-5,
        );
        let last = model.folded().with_channels_last();
        assert_close(
            &floats(last.forward(&x).expect("channels-last")),
            &reference,
            1e-5,
        );
        // Shapes are still checked.
        let wrong = Tensor::zeros([1, 2, 8, 8], (Kind::Float, Device::Cpu));
        assert!(matches!(
            folded.forward(&wrong),
            Err(SupernetError::Incompatible(_))
        ));
    }
    // Folding one term's batch norm must not be the same as dropping it: a model whose batch
    // norms are changed afterwards gives other logits than its earlier folded form.
    let before = original.folded();
    let vars = original.var_store().variables();
    let var = vars.get("c2.conv.bn.running_mean").expect("c2 batch norm");
    tch::no_grad(|| var.shallow_clone().copy_(&(var.shallow_clone() + 1.0)));
    let changed = logits(&original, &x);
    let stale = floats(before.forward(&x).expect("folded"));
    assert!(
        changed
            .iter()
            .zip(&stale)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
}

#[test]
fn models_round_trip_with_their_description() {
    let _turn = libtorch_turn();
    tch::manual_seed(3);
    let original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    let adapted = original
        .adapted(plan(&[("r.a", Replacement::GroupedShuffle { groups: 2 })]))
        .expect("adapt");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    adapted.save(&path).expect("save");
    assert!(description_path(&path).exists());
    let loaded = GosModel::load(&path, Device::Cpu).expect("load");
    assert_eq!(loaded.plan(), adapted.plan());
    assert_eq!(loaded.network(), adapted.network());
    let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_close(&logits(&loaded, &x), &logits(&adapted, &x), 0.0);
    std::fs::write(&path, b"not a safetensors file").expect("write");
    assert!(matches!(
        GosModel::load(&path, Device::Cpu),
        Err(SupernetError::Checkpoint { .. })
    ));
    let wrong = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert!(adapted.forward(&wrong, false).is_err());
    let unknown = GosModel::new(
        small_net(),
        plan(&[("nope", Replacement::LowRankDense { rank: 1 })]),
        Device::Cpu,
    );
    assert!(matches!(unknown, Err(SupernetError::Incompatible(_))));
}

#[test]
fn proxies_lookup_table_and_distillation_run_on_tiny_inputs() {
    let _turn = libtorch_turn();
    tch::manual_seed(4);
    let config = CandidateParams::default().check().expect("bounds");
    let space = GosSpace::new(small_net(), &config).expect("space");
    let original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    let images = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
    let errors = unit_errors(&original, &space, &images).expect("errors");
    for (unit, e) in space.units().iter().zip(&errors.0) {
        let keep = unit
            .choices
            .iter()
            .position(|c| *c == Replacement::Keep)
            .expect("keep");
        assert_relative_eq!(e[keep], 0.0, epsilon = 1e-10);
        assert!(e.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(
            e.iter().any(|v| *v > 1e-6),
            "{}",
            unit.name(space.network())
        );
    }
    let timing = TimingSettings {
        batch: 1,
        threads: 1,
        warmup: 0,
        repeats: 1,
        rounds: 1,
        form: ModelForm::FoldedChannelsLast,
    };
    let lut = measure_lut(&original, &space, &timing).expect("lut");
    for unit in space.units() {
        for choice in &unit.choices {
            let ms = lut.entries[&lut_key(&unit.expr, choice)];
            assert!(ms.is_finite() && ms > 0.0);
        }
    }
    let all_cheapest = space
        .plan(&dynas_space::SearchSpace::smallest(&space))
        .expect("plan");
    assert!(lut.predict(&space, &all_cheapest).expect("predict") > 0.0);
    assert!(lut.chain_scale > 0.0 && lut.rest_ms >= 0.0 && lut.per_call_ms >= 0.0);
    // Plans to check are timed in the table's rounds and returned, one time each.
    let (checked_lut, checked) = measure_lut_with_checks(
        &original,
        &space,
        &timing,
        &[all_cheapest.clone(), GosPlan::default()],
    )
    .expect("lut with checks");
    assert_eq!(checked.len(), 2);
    assert!(
        checked
            .iter()
            .all(|c| c.measured_ms.is_finite() && c.measured_ms > 0.0)
    );
    // Each check carries the returned table's own prediction of its plan.
    assert_relative_eq!(
        checked[0].predicted_ms,
        checked_lut.predict(&space, &all_cheapest).expect("predict")
    );

    // A few distillation steps on a few images.
    let pixels: Vec<u8> = (0..16 * 64).map(|i| (i * 37 % 251) as u8).collect();
    let labels: Vec<u8> = (0..16).map(|i| (i % 10) as u8).collect();
    let data = Dataset::from_parts(pixels, labels, (1, 8, 8), 10).expect("data");
    let norm = data.channel_stats();
    let mut student = original.adapted(all_cheapest).expect("adapt");
    let settings = TrainSettings {
        epochs: 2,
        batch: 8,
        ..TrainSettings::default()
    }
    .check()
    .expect("settings");
    let losses = train(&mut student, Some(&original), &data, &norm, &settings).expect("train");
    assert_eq!(losses.len(), 2);
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(
        TrainSettings {
            epochs: 0,
            ..TrainSettings::default()
        }
        .check()
        .is_err()
    );
}

#[test]
fn adapt_bisects_the_front_and_reports_every_probe() {
    use dynas_cost::{MacsModel, OperatingPoint};
    use dynas_gos::search::GosLatency;
    let _turn = libtorch_turn();
    tch::manual_seed(5);
    let pixels: Vec<u8> = (0..96 * 64).map(|i| (i * 37 % 251) as u8).collect();
    let labels: Vec<u8> = (0..96).map(|i| (i % 10) as u8).collect();
    let data = Dataset::from_parts(pixels, labels, (1, 8, 8), 10).expect("data");
    let norm = data.channel_stats();
    let mut original = GosModel::new(small_net(), GosPlan::default(), Device::Cpu).expect("model");
    let short = TrainSettings {
        epochs: 1,
        batch: 16,
        ..TrainSettings::default()
    };
    train(
        &mut original,
        None,
        &data,
        &norm,
        &short.clone().check().unwrap(),
    )
    .expect("train");
    let settings = AdaptSettings {
        search_evaluations: 60,
        max_attempts: 3,
        calibration_images: 16,
        // Any accuracy is within budget: the bisection must end at the fastest plan.
        accuracy_budget: 100.0,
        fine_tune: short,
        ..AdaptSettings::default()
    }
    .check()
    .expect("settings");
    let latency = LatencySource::Given(GosLatency::Model(
        Box::new(MacsModel::new(1e6).expect("macs model")),
        OperatingPoint::default(),
    ));
    let split = AdaptData {
        train: &data,
        validation: &data,
        test: &data,
        norm: &norm,
    };
    let (adapted, report) = adapt(&original, split, latency, &settings).expect("adapt");
    assert!(report.within_budget);
    assert!(!report.attempts.is_empty() && report.attempts.len() <= 3);
    let chosen = &report.attempts[report.chosen];
    assert_eq!(adapted.plan(), &chosen.plan);
    assert!(chosen.predicted_ms < report.original_predicted_ms);
    // Every probe met the (unbounded) budget, so each went faster than the one before.
    for pair in report.attempts.windows(2) {
        assert!(pair[1].predicted_ms <= pair[0].predicted_ms, "{pair:?}");
    }
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.predicted_ms >= chosen.predicted_ms)
    );
    for a in &report.attempts {
        for top1 in [
            a.validation_top1_init,
            a.validation_top1_fine_tuned,
            a.test_top1_init,
            a.test_top1_fine_tuned,
        ] {
            assert!((0.0..=100.0).contains(&top1), "{a:?}");
        }
    }
    let refused = AdaptSettings {
        accuracy_budget: f64::NAN,
        ..AdaptSettings::default()
    }
    .check();
    assert!(refused.is_err());
}
