//! A tiny GoldenNAS run on synthetic images: one target (the Jetson table, so that no time
//! goes into timing networks), the full-space control, the depth-adaptive GoldenNet, a valid
//! deployment. The host target's measurements are exercised by `host_target_measures`.

mod common;

use dynas_core::Deployment;
use dynas_goldennas::{
    DepthConfig, EvolveConfig, GoldenNas, GoldenNasConfig, PerfModelConfig, ShrinkConfig, Target,
};

#[test]
fn a_tiny_run_writes_a_valid_deployment() {
    let _turn = dynas_testkit::libtorch_turn();
    let dir = tempfile::tempdir().unwrap();
    let config = GoldenNasConfig {
        out: dir.path().to_path_buf(),
        targets: vec![Target::JetsonXavierLut {
            data_dir: dynas_data::DIR.into(),
        }],
        warmup_images: 64,
        shrink: ShrinkConfig {
            stages: 2,
            images_per_stage: 64,
            samples: 6,
            min_samples_per_choice: 1,
            calib_batches: 1,
            batch_size: 32,
            ..ShrinkConfig::default()
        },
        control: true,
        perf_model: PerfModelConfig {
            fit_networks: 8,
            held_out_networks: 3,
            seed: 0,
        },
        evolve: EvolveConfig {
            population: 4,
            evaluations: 8,
            calib_batches: 1,
            seed: 0,
        },
        depth: DepthConfig {
            finetune_images: 64,
            batch_size: 32,
            calib_batches: 1,
            ..DepthConfig::default()
        },
        ..GoldenNasConfig::default()
    };
    let (train, val, test) = (
        common::images(256, 1),
        common::images(64, 2),
        common::images(64, 3),
    );
    let mut lines = Vec::new();
    let report = GoldenNas::new(config)
        .unwrap()
        .run_on(&train, &val, &test, |l| lines.push(l.to_string()))
        .unwrap();
    assert_eq!(report.targets.len(), 1);
    for t in &report.targets {
        assert!(!t.goldennets.front.is_empty());
        assert!(t.control_front.is_some() && t.hypervolume.is_some());
        assert_eq!(t.training.stages.len(), 2);
        assert!(t.training.stages[0].shrink.is_some() && t.training.stages[1].shrink.is_none());
        assert!(t.perf_model_fit.held_out_mape_pct.is_finite());
    }
    assert!(report.control_training.is_some());
    let d = &report.depth;
    assert!(!d.configurations.is_empty());
    assert_eq!(d.shared_bn.len(), d.configurations.len());
    assert_eq!(d.stored_bn_self_distilled.len(), d.configurations.len());
    let deployment = Deployment::from_json_file(&report.deployment).unwrap();
    assert_eq!(deployment.method, "goldennas");
    assert_eq!(deployment.space, "fmnist-elastic-width");
    assert_eq!(deployment.points.len(), d.configurations.len());
    assert!(dir.path().join("report.json").exists());
    assert!(dir.path().join("depth_bn_store.safetensors").exists());
    assert!(lines.iter().any(|l| l.contains("hypervolume")));
}

#[test]
fn host_target_measures_and_fits() {
    let _turn = dynas_testkit::libtorch_turn();
    let space = dynas_goldennas::fashion_mnist_space();
    let target = Target::Host {
        warmup: 1,
        repeats: 3,
    };
    let config = PerfModelConfig {
        fit_networks: 8,
        held_out_networks: 2,
        seed: 1,
    };
    let model = dynas_goldennas::PerfModel::fit(&target, &space, &config).unwrap();
    let fit = model.report();
    assert_eq!((fit.fit_networks, fit.held_out_networks), (8, 2));
    assert!(fit.held_out.iter().all(|(m, p)| *m > 0.0 && p.is_finite()));
    assert!(fit.measured_on.contains("host CPU"));
}
