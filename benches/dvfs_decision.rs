//! Decision latency of the runtime manager over 100 subnets x 14 GPU clocks x 9 EMC clocks x
//! 3 exit-threshold settings (37,800 configurations) on the Jetson AGX Xavier table.
//!
//! Subnets: 100 seeded OFA MobileNetV3 samples costed by the analytical DVFS-aware model;
//! accuracy: a monotone proxy (by latency rank, spanning Dynamic-OFA's published 74.2..79.0 %
//! range); exits: an exit after half the layers taken by 0 / 30 / 50 % of inputs at -0 / -0.3 /
//! -1.0 points (synthetic: only the size and shape of the table matter here). A naive scan over
//! all configurations is measured for comparison.
//!
//! ```text
//! cargo bench -p dynas-dvfs --bench dvfs_decision
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dynas_core::DeployedExit;
use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
use dynas_dvfs::reference::{gpu_memory_points, sample_ofa_subnets};
use dynas_dvfs::{
    ConfigId, ConfigurationSet, Constraints, ExitProfile, Governor, ManagerMode, ManagerParams,
    MissGuard, Observation, RuntimeManager, Variant,
};
use dynas_space::LayerIndex;

fn build_set() -> ConfigurationSet {
    let device = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default()).expect("model");
    let points = gpu_memory_points(&device);
    let top = points[points.len() - 1].clone();
    let subnets = sample_ofa_subnets(&model, &top, 100, 7).expect("subnets");
    let mut variants = Vec::with_capacity(300);
    for (rank, (genotype, net, _)) in subnets.into_iter().enumerate() {
        let acc = 74.2 + 4.8 * rank as f64 / 99.0;
        let half = net.layers.len() / 2;
        let full = net.layers.len();
        for (thr, frac, drop) in [
            (None, 0.0, 0.0),
            (Some(0.9), 0.3, 0.3),
            (Some(0.8), 0.5, 1.0),
        ] {
            variants.push(Variant {
                genotype: genotype.clone(),
                label: String::new(),
                exits: thr
                    .map(|threshold| DeployedExit {
                        after_layer: LayerIndex::from_count(half).expect("half >= 1"),
                        threshold,
                        exit_rate: frac,
                    })
                    .into_iter()
                    .collect(),
                network: net.clone(),
                accuracy: acc - drop,
                exit_profile: thr.map(|_| {
                    ExitProfile::new(vec![(half, frac), (full, 1.0 - frac)]).expect("profile")
                }),
            });
        }
    }
    ConfigurationSet::from_cost_model(&model, &variants, &points).expect("set")
}

fn bench(c: &mut Criterion) {
    let set = build_set();
    assert_eq!(set.len(), 100 * 14 * 9 * 3);
    let constraints = Constraints::new(60.0, Some(76.0), None).expect("constraints");
    let mut group = c.benchmark_group("dvfs_decision");
    group.sample_size(10);
    group.bench_function("precompute_frontiers_37800", |b| {
        b.iter(|| {
            RuntimeManager::new(
                black_box(set.clone()),
                ManagerParams::default(),
                &constraints,
            )
        })
    });
    group.finish();

    let manager = RuntimeManager::new(set.clone(), ManagerParams::default(), &constraints);
    eprintln!(
        "pareto set {} of {} configurations; frontier {}",
        manager.pareto_set().len(),
        set.len(),
        manager.frontier_len()
    );
    // A periodic co-runner load: the manager sees the slowdown it causes.
    let loads: Vec<f64> = (0..1024)
        .map(|i| 0.35 + 0.3 * (i as f64 * std::f64::consts::TAU / 50.0).sin())
        .collect();
    let configs = set.configurations();
    let predictive = RuntimeManager::new(
        set.clone(),
        ManagerParams::default().with_mode(ManagerMode::Predictive),
        &constraints,
    );
    // The same with the deadline-miss guard (zero budget, 2,048 remembered samples).
    let guarded = RuntimeManager::new(
        set.clone(),
        ManagerParams::default()
            .with_mode(ManagerMode::Predictive)
            .with_miss_guard(Some(MissGuard::default()))
            .expect("guard"),
        &constraints,
    );
    for (mode, samples) in [
        ("", 1usize),
        ("", 10),
        ("predictive_", 10),
        ("predictive_guarded_", 10),
    ] {
        let mut m = match mode {
            "" => manager.clone(),
            "predictive_" => predictive.clone(),
            _ => guarded.clone(),
        };
        let mut current = m.initial();
        let mut i = 0usize;
        let mut lat = vec![0.0; samples];
        c.bench_function(
            &format!("dvfs_decision/decide_{mode}{samples}_samples"),
            |b| {
                b.iter(|| {
                    let load = loads[i & 1023];
                    i = i.wrapping_add(1);
                    lat.fill(configs[current.0].latency_ms / (1.0 - load));
                    let d = m.decide(
                        black_box(&Observation {
                            current,
                            latencies_ms: &lat,
                            utilisation: load,
                            co_runner_load: Some(load),
                            energy_mj: None,
                        }),
                        &constraints,
                    );
                    current = d.config;
                    d
                })
            },
        );
    }
    // What the precomputation avoids: scanning all configurations per decision.
    let mut i = 0usize;
    c.bench_function("dvfs_decision/naive_scan_37800", |b| {
        b.iter(|| {
            let load = loads[i & 1023];
            i = i.wrapping_add(1);
            let budget = 60.0 * 0.9 * (1.0 - load);
            let mut best: Option<ConfigId> = None;
            for (id, c) in set.iter() {
                if c.latency_ms <= budget
                    && c.accuracy >= 76.0
                    && best.is_none_or(|b| c.energy_mj < configs[b.0].energy_mj)
                {
                    best = Some(id);
                }
            }
            black_box(best)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
