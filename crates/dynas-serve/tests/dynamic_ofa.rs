//! Dynamic-OFA on a tiny supernet: pre-sampling writes a validated Pareto family with stored
//! batch norm, the runtime serves it without recalibration, and infeasible targets are refused.

// The supernet tests' fixtures (tiny data set, randomised variables), shared rather than copied.
#[path = "../../dynas-supernet/tests/common/mod.rs"]
mod common;
mod family;

use common::tiny_dataset;
use dynas_dvfs::{CoRunnerParams, LoadTrace};
use dynas_search::deployment::Deployment;
use dynas_serve::{Family, ServeParams, ServePolicy, presample, serve, serve_and_simulate};
use dynas_space::{SearchSpace, seeded_rng};
use dynas_supernet::{BnMode, BnStore, Supernet, SupernetConfig};
use dynas_testkit::libtorch_turn;
use family::{params, tiny_space};
use tch::Device;

#[test]
fn presampling_writes_a_pareto_family_with_stored_batch_norm() {
    let _turn = libtorch_turn();
    tch::manual_seed(1);
    let supernet = Supernet::new(tiny_space(), SupernetConfig::default(), Device::Cpu).unwrap();
    let (calibration, validation) = (tiny_dataset(64, 1), tiny_dataset(40, 2));
    let norm = calibration.channel_stats();
    let out = presample(
        &supernet,
        &calibration,
        &validation,
        &norm,
        &params().check().unwrap(),
    )
    .unwrap();
    assert_eq!(out.samples.len(), 8);
    assert!(!out.family.is_empty() && out.family.len() <= 3);
    let d = &out.deployment;
    assert_eq!(d.method, "dynamic-ofa");
    assert_eq!(d.space, "tiny-dofa");
    assert_eq!(d.points.len(), out.family.len());
    // Every member is non-dominated among the samples, fastest first, and carries its measured
    // (validation, host) figures.
    for (point, member) in d.points.iter().zip(out.members()) {
        assert_eq!(point.genotype, member.genotype);
        assert!(member.latency_ms.contains_key(&1) && member.latency_ms.contains_key(&2));
        approx::assert_relative_eq!(point.metrics.top1, 100.0 * member.accuracy);
        approx::assert_relative_eq!(point.metrics.latency_ms, member.latency_ms[&1]);
        let dominated = out.samples.iter().any(|s| {
            let (a, l) = (s.accuracy, s.latency_ms[&1]);
            a >= member.accuracy
                && l <= member.latency_ms[&1]
                && (a > member.accuracy || l < member.latency_ms[&1])
        });
        assert!(!dominated, "{} is dominated", member.genotype);
    }
    assert!(
        d.points
            .windows(2)
            .all(|w| w[0].metrics.latency_ms <= w[1].metrics.latency_ms)
    );
    // The deployment round-trips through its file, and the family's batch norm is stored:
    // a member extracted with the stored statistics gives the logits the estimator scored.
    let dir = tempfile::tempdir().unwrap();
    d.write_json(dir.path().join("deployment.json")).unwrap();
    let back = Deployment::from_json_file(dir.path().join("deployment.json")).unwrap();
    assert_eq!(&back, d);
    assert_eq!(out.bn.len(), out.family.len());
    out.bn.save(dir.path().join("bn.safetensors")).unwrap();
    let bn = BnStore::load(dir.path().join("bn.safetensors"), &supernet).unwrap();
    let family = Family::from_deployment(&supernet, &bn, &back).unwrap();
    let x = validation
        .batch(
            &[0, 1, 2],
            &norm,
            &dynas_supernet::Augmentation::NONE,
            &mut seeded_rng(0),
            Device::Cpu,
        )
        .images;
    for m in family.members() {
        bn.activate(&supernet, &m.genotype).unwrap();
        let net = supernet.space().decode(&m.genotype).unwrap();
        let want = tch::no_grad(|| supernet.forward(&net, &x, BnMode::Eval).unwrap());
        // Batch norm folded into the convolutions: equal up to rounding.
        let got = m.deployed.predict(&x).unwrap();
        assert!(got.allclose(&want, 1e-4, 1e-4, false));
    }
    // A store without the family's statistics is refused.
    assert!(Family::from_deployment(&supernet, &BnStore::new(), &back).is_err());
}

#[test]
fn serving_switches_members_and_refuses_infeasible_targets() {
    let _turn = libtorch_turn();
    tch::manual_seed(2);
    let supernet = Supernet::new(tiny_space(), SupernetConfig::default(), Device::Cpu).unwrap();
    let (calibration, validation) = (tiny_dataset(64, 3), tiny_dataset(40, 4));
    let norm = calibration.channel_stats();
    let out = presample(
        &supernet,
        &calibration,
        &validation,
        &norm,
        &params().check().unwrap(),
    )
    .unwrap();
    let family = Family::from_deployment(&supernet, &out.bn, &out.deployment).unwrap();
    let fastest = family.fastest_idle_ms();
    let test = tiny_dataset(30, 5);
    let base = ServeParams {
        target_ms: fastest * 0.5,
        window: 4,
        duration_s: 0.3,
        images: 30,
        ..ServeParams::default()
    };
    let err = serve(&family, &test, &norm, ServePolicy::Reactive, &base, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target_ms") && err.contains("no member"),
        "{err}"
    );

    // Each policy serves real images; the static ones never switch; a co-runner follows a
    // short trace and stops with the run.
    let trace = LoadTrace::new("blip", vec![0.0, 0.1], vec![0.0, 0.6]).unwrap();
    let co = CoRunnerParams {
        threads: 1,
        period_ms: 5.0,
        time_scale: 1.0,
        max_duration_s: 1.0,
    };
    for policy in ServePolicy::ALL {
        let p = ServeParams {
            target_ms: fastest * 3.0,
            ..base.clone()
        };
        let r = serve(&family, &test, &norm, policy, &p, Some((&trace, &co))).unwrap();
        assert!(r.inferences > 0, "{policy:?}");
        assert_eq!(r.member_inferences.iter().sum::<usize>(), r.inferences);
        assert_eq!(
            r.timeline.iter().map(|w| w.inferences).sum::<usize>(),
            r.inferences
        );
        assert!((0.0..=100.0).contains(&r.top1));
        assert!(r.co_runner.as_ref().is_some_and(|c| c.threads.len() == 1));
        if matches!(
            policy,
            ServePolicy::StaticLargest | ServePolicy::StaticSmallest
        ) {
            assert_eq!(r.switches, 0);
            let used: Vec<usize> = (0..family.members().len())
                .filter(|&i| r.member_inferences[i] > 0)
                .collect();
            assert_eq!(used.len(), 1);
        }
    }
    assert!(ServePolicy::from_name("predictive").is_ok());
    assert!(ServePolicy::from_name("psychic").is_err());

    // The comparison: the floor is static-smallest's misses, and the simulator replays the
    // delays measured in that run (one per inference) besides processor sharing.
    let p = ServeParams {
        target_ms: fastest * 3.0,
        ..base.clone()
    };
    let rows = serve_and_simulate(
        &family,
        &test,
        &norm,
        &trace,
        &[ServePolicy::StaticSmallest, ServePolicy::Predictive],
        &p,
        &co,
        0.03,
        0,
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    let smallest = &rows[0].measured;
    assert_eq!(smallest.delays.len(), smallest.inferences);
    for row in &rows {
        assert_eq!(row.floor_misses, Some(smallest.deadline_misses));
        let replay = row.simulated_measured_delays.as_ref().expect("replayed");
        assert!((0.0..=1.0).contains(&replay.miss_rate));
        assert!(
            row.markdown_row().matches('|').count() == 16,
            "{}",
            row.markdown_row()
        );
    }
    // Without static-smallest there is nothing to replay.
    let rows = serve_and_simulate(
        &family,
        &test,
        &norm,
        &trace,
        &[ServePolicy::Reactive],
        &p,
        &co,
        0.03,
        0,
    )
    .unwrap();
    assert!(rows[0].floor_misses.is_none() && rows[0].simulated_measured_delays.is_none());
}
