use super::*;
use crate::testutil::{ClockModel, cnn, device, set};
use approx::assert_relative_eq;
use dynas_cost::ClockDomain;

#[test]
fn cost_model_set_has_every_point_and_dvfs_shape() {
    let s = set();
    let dev = device();
    assert_eq!(s.len(), 4 * dev.num_operating_points());
    // For one subnet: latency falls with the GPU clock at fixed memory clock.
    let at = |gpu: u64| {
        s.configurations()
            .iter()
            .find(|c| {
                c.label == "w48d6"
                    && c.point.gpu_hz() == Some(gpu)
                    && c.point.memory_hz() == Some(2_000_000_000)
            })
            .expect("present")
            .clone()
    };
    let (slow, fast) = (at(300_000_000), at(1_100_000_000));
    assert!(slow.latency_ms > fast.latency_ms);
    // The energy curve over GPU clocks has an interior minimum (U-shape) or is monotone;
    // it must at least differ between the extremes.
    assert!((slow.energy_mj - fast.energy_mj).abs() > 1e-6);
}

#[test]
fn exit_profile_weights_prefix_costs() {
    let dev = device();
    let model = ClockModel {
        device: dev.clone(),
    };
    let net = cnn(16, 4);
    let p = dev.max_operating_point();
    let b = model.breakdown(&net, &p).expect("breakdown");
    let v = Variant {
        genotype: Genotype::new(vec![16, 4]),
        label: "x".into(),
        exits: vec![DeployedExit {
            after_layer: dynas_space::LayerIndex::new(1),
            threshold: 0.9,
            exit_rate: 0.25,
        }],
        network: net,
        accuracy: 70.0,
        exit_profile: Some(ExitProfile::new(vec![(2, 0.25), (4, 0.75)]).expect("profile")),
    };
    let s = ConfigurationSet::from_cost_model(&model, &[v], &[p]).expect("set");
    let expect = 0.25 * b.prefix(2).latency_ms + 0.75 * b.total.latency_ms;
    assert_relative_eq!(
        s.configurations()[0].latency_ms,
        expect,
        max_relative = 1e-12
    );
    assert!(ExitProfile::new(vec![(2, 0.5)]).is_err());
    assert!(ExitProfile::new(vec![(0, 1.0)]).is_err());
}

#[test]
fn reference_measurements_are_reproduced_at_the_reference_point() {
    let dev = device();
    let model = ClockModel {
        device: dev.clone(),
    };
    let m = MeasuredVariant {
        variant: Variant {
            genotype: Genotype::new(vec![24, 5]),
            label: "ofa-level-1".into(),
            exits: vec![],
            network: cnn(24, 5),
            accuracy: 74.2,
            exit_profile: None,
        },
        latency_ms: 41.2,
        energy_mj: Some(500.0),
    };
    let reference = dev.max_operating_point();
    let pts = dev.operating_points();
    let s =
        ConfigurationSet::from_reference_measurements(&model, &[m], &reference, &pts).expect("set");
    let at_ref = s
        .configurations()
        .iter()
        .find(|c| c.point == reference)
        .expect("reference point");
    assert_relative_eq!(at_ref.latency_ms, 41.2, max_relative = 1e-12);
    assert_relative_eq!(at_ref.energy_mj, 500.0, max_relative = 1e-12);
    assert!(
        s.configurations()
            .iter()
            .all(|c| c.latency_ms >= 41.2 - 1e-9)
    );
}

#[test]
fn json_round_trip_and_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = set();
    let path = dir.path().join("configs.json");
    s.to_json_file(&path).expect("write");
    let back = ConfigurationSet::from_json_file(&path).expect("read");
    assert_eq!(back.len(), s.len());
    for (a, b) in back.configurations().iter().zip(s.configurations()) {
        assert_eq!(
            (&a.genotype, &a.label, &a.point),
            (&b.genotype, &b.label, &b.point)
        );
        assert_relative_eq!(a.latency_ms, b.latency_ms, max_relative = 1e-12);
        assert_relative_eq!(a.energy_mj, b.energy_mj, max_relative = 1e-12);
    }

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\n \"configurations\": [\n  {\"genotype\": [1],}\n ]\n}",
    )
    .expect("w");
    let e = ConfigurationSet::from_json_file(&bad)
        .expect_err("syntax")
        .to_string();
    assert!(e.contains("bad.json") && e.contains("line 3"), "{e}");

    let neg = dir.path().join("neg.json");
    std::fs::write(
        &neg,
        r#"{"configurations": [{"genotype": [1], "point": {"cpu_hz": null, "gpu_hz": 1, "memory_hz": null}, "accuracy": 70, "latency_ms": -1, "energy_mj": 1}]}"#,
    )
    .expect("w");
    let e = ConfigurationSet::from_json_file(&neg)
        .expect_err("negative")
        .to_string();
    assert!(e.contains("neg.json") && e.contains("latency_ms"), "{e}");

    let missing = dir.path().join("nope.json");
    let e = ConfigurationSet::from_json_file(&missing)
        .expect_err("missing")
        .to_string();
    assert!(e.contains("nope.json"), "{e}");
}

fn deployment(energy: [Option<f64>; 2]) -> Deployment {
    use dynas_core::{DeployedMetrics, DeploymentPoint, Provenance};
    use dynas_space::SearchSpace as _;
    let space = dynas_space::MbConvSpace::ofa_mnist();
    let genes = |depth: usize| {
        let mut g = space.largest().into_genes();
        g[1] = depth;
        g
    };
    let point =
        |genes: Vec<usize>, top1: f64, latency_ms: f64, energy_mj: Option<f64>| DeploymentPoint {
            genotype: Genotype::new(genes),
            exits: vec![DeployedExit {
                after_layer: dynas_space::LayerIndex::new(2),
                threshold: 0.9,
                exit_rate: 0.3,
            }],
            point: OperatingPoint::default(),
            metrics: DeployedMetrics {
                top1,
                latency_ms,
                energy_mj,
                accuracy_source: Provenance::measured("validation split"),
                cost_source: Provenance::measured("host"),
            },
        };
    Deployment::new(
        "dynamic-ofa",
        &space,
        None,
        vec![
            point(genes(0), 88.0, 1.5, energy[0]),
            point(genes(2), 91.0, 4.0, energy[1]),
        ],
    )
    .expect("deployment")
}

#[test]
fn deployments_become_configuration_sets_by_genotype() {
    let d = deployment([Some(3.0), Some(7.0)]);
    let s = ConfigurationSet::from_deployment(&d).expect("set");
    assert_eq!(s.len(), 2);
    assert_eq!(s.space(), Some("ofa-mnist"));
    let c = &s.configurations()[1];
    assert_eq!(c.genotype, d.points[1].genotype);
    assert_eq!(c.name(), d.points[1].genotype.to_string());
    // Nothing of the exits is dropped: position, threshold and rate.
    assert_eq!(c.exits, d.points[1].exits);
    assert_eq!(c.exits[0].after_layer.index(), 2);
    assert_relative_eq!(c.accuracy, 91.0);
    assert_relative_eq!(c.latency_ms, 4.0);
    assert_relative_eq!(c.energy_mj, 7.0);
    // Without energy: 0 mJ everywhere; mixed: refused.
    let none = ConfigurationSet::from_deployment(&deployment([None, None])).expect("set");
    assert!(none.configurations().iter().all(|c| c.energy_mj == 0.0));
    let e = ConfigurationSet::from_deployment(&deployment([Some(1.0), None]))
        .expect_err("mixed")
        .to_string();
    assert!(e.contains("energy"), "{e}");
    // `from_file` reads both formats.
    let dir = tempfile::tempdir().expect("tempdir");
    let dpath = dir.path().join("deployment.json");
    d.write_json(&dpath).expect("write deployment");
    assert_eq!(
        ConfigurationSet::from_file(&dpath).expect("deployment file"),
        s
    );
    let tpath = dir.path().join("table.json");
    s.to_json_file(&tpath).expect("write table");
    assert_eq!(ConfigurationSet::from_file(&tpath).expect("table file"), s);
    let mut bad = serde_json::to_value(&d).expect("json");
    bad["points"][0]["metrics"]["top1"] = serde_json::json!(140.0);
    std::fs::write(&dpath, bad.to_string()).expect("w");
    let e = ConfigurationSet::from_file(&dpath)
        .expect_err("top1 > 100")
        .to_string();
    assert!(e.contains("deployment.json") && e.contains("top1"), "{e}");
}

#[test]
fn device_table_is_enforced() {
    let c = set().configurations()[0].clone();
    let mut off = c.clone();
    off.point = off
        .point
        .with_clock(ClockDomain::Gpu, 123)
        .expect("positive");
    assert!(ConfigurationSet::with_device(device(), vec![c]).is_ok());
    let e = ConfigurationSet::with_device(device(), vec![off]).expect_err("off table");
    assert!(e.to_string().contains("point"), "{e}");
    assert!(ConfigurationSet::new(vec![]).is_err());
    // Plain serde goes through the same checks.
    let e = serde_json::from_str::<ConfigurationSet>(r#"{"configurations": []}"#)
        .expect_err("empty")
        .to_string();
    assert!(e.contains("configurations"), "{e}");
}
