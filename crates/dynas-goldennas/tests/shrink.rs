//! A shrinking step depends on the target: a channel width that is less accurate and no
//! faster on a dispatch-bound target goes, while on a target where it is faster it stays.

use dynas_goldennas::{
    ChoiceSet, PerfModel, ScoredSubnet, ShrinkConfig, fashion_mnist_space, shrink_step,
};
use dynas_space::{Genotype, Network, SearchSpace, seeded_rng};

fn measurements(space: &dyn SearchSpace, latency: impl Fn(&Network) -> f64) -> Vec<(Network, f64)> {
    let mut rng = seeded_rng(1);
    (0..16)
        .map(|_| {
            let n = space.decode(&space.sample(&mut rng)).unwrap();
            let y = latency(&n);
            (n, y)
        })
        .collect()
}

fn kernels(n: &Network) -> f64 {
    dynas_goldennas::perf_model::features(n)[4]
}

#[test]
fn a_shrinking_stage_drops_a_dominated_width_for_one_target_and_keeps_it_for_another() {
    let space = fashion_mnist_space();
    let dims = space.dimensions();
    let width = dims
        .iter()
        .position(|d| d.name() == "stage1.width")
        .unwrap();
    // Host-like: latency grows with MACs. Dispatch-bound: with the number of kernels only.
    let host = PerfModel::from_measurements(
        "host-like",
        "synthetic",
        &measurements(&space, |n| 0.02 + 0.1 * n.macs() as f64 / 1e6),
        &measurements(&space, |n| 0.02 + 0.1 * n.macs() as f64 / 1e6)[..4],
    )
    .unwrap();
    let gpu = PerfModel::from_measurements(
        "dispatch-bound",
        "synthetic",
        &measurements(&space, |n| 0.01 + 0.05 * kernels(n)),
        &measurements(&space, |n| 0.01 + 0.05 * kernels(n))[..4],
    )
    .unwrap();
    assert!(host.report().held_out_mape_pct < 1.0 && gpu.report().held_out_mape_pct < 1.0);
    // Balanced samples: every base architecture at each stage-1 width; accuracy grows with
    // the width only.
    let mut rng = seeded_rng(2);
    let mut genotypes = Vec::new();
    for _ in 0..12 {
        let base = space.sample(&mut rng);
        for w in 0..3 {
            let mut genes = base.genes().to_vec();
            genes[width] = w;
            genotypes.push(Genotype::new(genes));
        }
    }
    let scored = |model: &PerfModel| -> Vec<ScoredSubnet> {
        genotypes
            .iter()
            .map(|g| ScoredSubnet {
                genotype: g.clone(),
                top1: 85.0 + 2.0 * g.genes()[width] as f64,
                latency_ms: model.predict(&space.decode(g).unwrap()),
            })
            .collect()
    };
    let full = ChoiceSet::full(&space);
    let rule = |min_samples_per_choice, accuracy_margin| ShrinkConfig {
        min_samples_per_choice,
        accuracy_margin,
        latency_tolerance: 0.02,
        ..ShrinkConfig::default()
    };
    let (on_gpu, step) =
        shrink_step(&space, &full, &scored(&gpu), &gpu, &rule(3, 0.5), &[]).unwrap();
    assert!(
        step.dropped.contains(&"stage1.width=16".to_string()),
        "{:?}",
        step.dropped
    );
    assert!(step.dropped.contains(&"stage1.width=24".to_string()));
    assert_eq!(on_gpu.allowed()[width], vec![2]);
    let (on_host, step) =
        shrink_step(&space, &full, &scored(&host), &host, &rule(3, 0.5), &[]).unwrap();
    assert!(
        !step.dropped.iter().any(|d| d.starts_with("stage1.width")),
        "{:?}",
        step.dropped
    );
    assert_eq!(on_host.allowed()[width], vec![0, 1, 2]);
    // Nothing is dropped below the minimum number of samples.
    let (same, step) =
        shrink_step(&space, &full, &scored(&gpu), &gpu, &rule(1000, 0.5), &[]).unwrap();
    assert!(step.dropped.is_empty());
    assert_eq!(same, full);
    // Nor when the accuracy gain is within the margin and the latency no clearer.
    let (same, step) = shrink_step(&space, &full, &scored(&gpu), &gpu, &rule(3, 5.0), &[]).unwrap();
    assert!(!step.dropped.iter().any(|d| d.starts_with("stage1.width")));
    assert_eq!(same.allowed()[width], vec![0, 1, 2]);
    // Nor in a frozen dimension.
    let (same, step) =
        shrink_step(&space, &full, &scored(&gpu), &gpu, &rule(3, 0.5), &[width]).unwrap();
    assert!(!step.dropped.iter().any(|d| d.starts_with("stage1.width")));
    assert_eq!(same.allowed()[width], vec![0, 1, 2]);
}
