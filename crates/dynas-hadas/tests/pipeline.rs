//! The HADAS pipeline on a tiny supernet: the worker serves accuracies and exit tables from
//! one thread, the bi-level search runs, and the deployment and test report come out whole.

// The supernet tests' fixtures (tiny data set, randomised variables), shared rather than copied.
#[path = "../../dynas-supernet/tests/common/mod.rs"]
mod common;

use common::tiny_dataset;
use dynas_cost::{ComputeUnit, DeviceProfile};
use dynas_hadas::ExitSource;
use dynas_hadas::{
    HadasParams, OuterStrategy, RunOptions, SupernetData, SupernetEvalParams, SupernetExits,
    SupernetWorker, run_hadas,
};
use dynas_search::{Deployment, Provenance};
use dynas_space::{
    Activation, ChoiceScope, FinalExpand, Genotype, HeadSpec, MbConvSpace, SearchSpace, StageSpec,
};
use dynas_supernet::{Supernet, SupernetConfig};
use dynas_testkit::ToyDvfsModel;
use tch::Device;

/// Two stages, elastic depth and width: enough blocks for two exit positions.
fn tiny_space() -> MbConvSpace {
    let stage = |name: &str, widths: Vec<usize>, stride| StageSpec {
        name: name.to_string(),
        widths,
        depths: vec![1, 2],
        kernels: vec![3, 5],
        expand_ratios: vec![2, 3],
        stride,
        se: false,
        activation: Activation::Relu,
        scope: ChoiceScope::PerBlock,
    };
    let head = HeadSpec {
        in_channels: 1,
        resolutions: vec![16],
        first_conv_widths: vec![4, 8],
        first_conv_stride: 2,
        first_conv_activation: Activation::Relu,
        first_block: None,
        final_expand: FinalExpand::Widths(vec![16]),
        feature_mix_widths: None,
        tail_activation: Activation::Relu,
        num_classes: 5,
        channel_divisor: 4,
        projection_shortcuts: true,
    };
    MbConvSpace::new(
        "tiny",
        head,
        vec![stage("s1", vec![8, 12], 2), stage("s2", vec![12, 16], 1)],
    )
    .unwrap()
}

fn device() -> DeviceProfile {
    DeviceProfile::new(
        "toy",
        ComputeUnit::Gpu,
        vec![],
        vec![400_000_000, 1_000_000_000],
        vec![],
    )
    .unwrap()
}

/// libtorch's random generator is process-wide: workers of tests running on parallel threads
/// would draw from it in turn, so tests that start workers take turns.
static LIBTORCH_GLOBALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn libtorch_turn() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH_GLOBALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn worker(space: &MbConvSpace) -> SupernetWorker {
    worker_with(space, "tiny-random")
}

/// A worker whose checkpoints carry `fingerprint`.
fn worker_with(space: &MbConvSpace, fingerprint: &str) -> SupernetWorker {
    let for_factory = space.clone();
    let data = SupernetData {
        train: tiny_dataset(64, 1),
        validation: tiny_dataset(40, 2),
        test: Some(tiny_dataset(40, 3)),
        norm: tiny_dataset(64, 1).channel_stats(),
    };
    let params = SupernetEvalParams {
        calibration_batches: 1,
        batch_size: 16,
        head_width: 4,
        head_epochs: 1,
        head_train_images: 32,
        ..SupernetEvalParams::default()
    }
    .check(5)
    .unwrap();
    SupernetWorker::spawn(
        Box::new(move || {
            tch::manual_seed(0);
            Supernet::new(for_factory, SupernetConfig::default(), Device::Cpu)
        }),
        data,
        params,
        fingerprint,
    )
    .unwrap()
}

#[test]
fn the_worker_serves_cached_results_to_many_threads() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let worker = worker(&space);
    let g = space.largest();
    let first = worker.accuracy(&g).unwrap();
    assert!((0.0..=100.0).contains(&first));
    let exits = SupernetExits::new(&worker);
    let network = space.decode(&g).unwrap();
    let tables: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| exits.exit_table(&g, &network).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Heads are trained once: every thread gets the same table, with a head per admissible
    // block and one sample per validation image.
    assert!(tables.windows(2).all(|w| w[0] == w[1]));
    assert!(!tables[0].positions().is_empty());
    assert_eq!(tables[0].samples(), 40);
    assert_eq!(worker.accuracy(&g).unwrap(), first);
    // A bad parameter is refused before any work.
    assert!(
        SupernetEvalParams {
            batch_size: 0,
            ..SupernetEvalParams::default()
        }
        .check(5)
        .is_err()
    );
}

#[test]
fn a_backbones_exit_heads_do_not_depend_on_the_request_order() {
    let _turn = libtorch_turn();
    // Two workers over the same supernet: one is asked for the largest backbone's exits
    // first, the other only after training the smallest's heads (which moves libtorch's
    // process-wide generator). The heads, hence the tables, must be the same.
    let space = tiny_space();
    let (largest, smallest) = (space.largest(), space.smallest());
    let first = worker(&space);
    let second = worker(&space);
    let table = |w: &SupernetWorker, g: &Genotype| {
        SupernetExits::new(w)
            .exit_table(g, &space.decode(g).unwrap())
            .unwrap()
    };
    let direct = table(&first, &largest);
    let _ = table(&second, &smallest);
    let after_another = table(&second, &largest);
    assert!(
        direct == after_another,
        "exit tables differ with the request order"
    );
}

#[test]
fn hadas_runs_end_to_end_on_a_tiny_supernet() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let worker = worker(&space);
    for outer in [OuterStrategy::Nsga2, OuterStrategy::Surrogate] {
        run_tiny(&space, &worker, outer);
    }
}

fn run_tiny(space: &MbConvSpace, worker: &SupernetWorker, outer: OuterStrategy) {
    let params = HadasParams {
        outer,
        outer_budget: 4,
        outer_population: 4,
        outer_generations: 1,
        top_fraction: 0.5,
        inner_population: 4,
        inner_generations: 1,
        ..HadasParams::default()
    }
    .check()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_hadas(
        worker,
        space,
        ToyDvfsModel::default(),
        device(),
        Provenance::modelled("toy DVFS law"),
        &params,
        RunOptions {
            checkpoint: Some(dir.path().join("hadas.ckpt.json")),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let d = &outcome.deployment;
    assert_eq!(d.method, "hadas");
    assert!(!d.points.is_empty());
    for p in &d.points {
        assert!(device().supports(&p.point));
        space.validate(&p.genotype).unwrap();
    }
    let path = dir.path().join("deployment.json");
    d.write_json(&path).unwrap();
    assert_eq!(&Deployment::from_json_file(&path).unwrap(), d);
    assert!(dir.path().join("hadas.ckpt.json").exists());

    let r = &outcome.report;
    assert_eq!(r.points.len(), d.points.len());
    assert_eq!(r.baseline.genotype, space.largest());
    assert_eq!(r.baseline.point, device().max_operating_point());
    assert!(r.inner_evaluations > 0);
    assert!(r.outer_evaluations >= 4, "{outer:?}");
    for p in r.points.iter().chain([&r.baseline]) {
        assert!((0.0..=100.0).contains(&p.test_top1), "{p:?}");
        assert!(p.energy_mj > 0.0 && p.latency_ms > 0.0, "{p:?}");
    }
    // Chosen on validation within the latency bound (no slower than the baseline by default),
    // reported on test: the test figures may be lower, and the report says by how much.
    for (i, p) in d.points.iter().enumerate() {
        let eligible = p.metrics.top1 >= r.baseline_validation.top1 - 1e-9
            && p.metrics.latency_ms <= r.baseline_validation.latency_ms * (1.0 + 1e-12);
        if Some(i) == r.best {
            assert!(
                eligible,
                "the chosen point must meet the bounds on validation"
            );
        } else if eligible {
            let best = r.best.expect("an eligible point exists");
            assert!(d.points[best].metrics.energy_mj <= p.metrics.energy_mj);
        }
    }
    assert_eq!(r.static_largest.genotype, space.largest());
    assert!(r.static_largest.exits.is_empty());
    assert!(r.provenance.iter().any(|n| n.contains("rail")));
    if let (Some(best), Some(saving)) = (r.best, r.best_energy_saving_pct) {
        approx::assert_relative_eq!(
            r.best_test_top1_delta.unwrap(),
            r.points[best].test_top1 - r.baseline.test_top1
        );
        approx::assert_relative_eq!(
            saving,
            100.0 * (1.0 - r.points[best].energy_mj / r.baseline.energy_mj),
            max_relative = 1e-12
        );
        let a = r.ablation.as_ref().unwrap();
        assert_eq!(a.backbone_exits_dvfs, r.points[best]);
        assert!(a.backbone.exits.is_empty());
    }
}

#[test]
fn a_hadas_checkpoint_is_refused_on_other_data_and_extends_to_a_larger_budget() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("hadas.ckpt.json");
    let params = |budget: usize| {
        HadasParams {
            outer: OuterStrategy::Surrogate,
            outer_budget: budget,
            outer_population: 4,
            outer_generations: 1,
            top_fraction: 0.5,
            inner_population: 4,
            inner_generations: 1,
            ..HadasParams::default()
        }
        .check()
        .unwrap()
    };
    let options = |overwrite: bool| RunOptions {
        checkpoint: Some(ckpt.clone()),
        overwrite_checkpoint: overwrite,
        mismatch_hint: Some("pass --overwrite-checkpoint".into()),
        ..RunOptions::default()
    };
    let run = |worker: &SupernetWorker, budget: usize, overwrite: bool| {
        run_hadas(
            worker,
            &space,
            ToyDvfsModel::default(),
            device(),
            Provenance::modelled("toy DVFS law"),
            &params(budget),
            options(overwrite),
        )
    };
    let first = worker_with(&space, "supernet=aa; data=bb");
    assert_eq!(run(&first, 4, false).unwrap().report.outer_evaluations, 4);
    // Other data under the same names: refused, naming the part that differs and the flag.
    let other = worker_with(&space, "supernet=aa; data=cc");
    let err = run(&other, 4, false).err().expect("refused").to_string();
    assert!(
        err.contains("`data`") && err.contains("--overwrite-checkpoint"),
        "{err}"
    );
    // A larger budget (whose initial design would be larger) extends the saved search.
    let extended = run(&first, 9, false).unwrap();
    assert!(extended.report.outer_evaluations > 4);
    // Starting over on the other data, on request.
    assert!(run(&other, 4, true).is_ok());
}
