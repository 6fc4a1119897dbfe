//! Per-sample exit-decision overhead and the cost of the search's exit-table queries.
//!
//! Run: `cargo bench -p dynas-exits --bench exits_decision`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dynas_exits::{
    ConfidenceMeasure, ExitPolicy, ExitPosition, ExitRule, ExitSelection, ExitTable, PolicyState,
    SyntheticConfidence, ThresholdCalibration,
};

fn logits(classes: usize) -> Vec<f32> {
    (0..classes)
        .map(|k| ((k * 7919) % 97) as f32 / 13.0)
        .collect()
}

fn decisions(c: &mut Criterion) {
    for classes in [10usize, 100] {
        let z = logits(classes);
        for (name, rule) in [
            ("max_softmax", ExitRule::MaxSoftmax(vec![0.9])),
            ("entropy", ExitRule::Entropy(vec![0.5])),
            ("patience", ExitRule::Patience(2)),
        ] {
            let policy = ExitPolicy::new(rule, 1).expect("valid policy");
            c.bench_function(&format!("decide/{name}/{classes}_classes"), |b| {
                b.iter(|| {
                    let mut state = PolicyState::default();
                    black_box(
                        policy
                            .decide(0, black_box(&z), &mut state)
                            .expect("decides"),
                    )
                })
            });
        }
    }
}

fn table_queries(c: &mut Criterion) {
    // A0-like: 13 exits, 10,000 virtual validation samples.
    let accs = [
        0.255, 0.267, 0.382, 0.411, 0.424, 0.501, 0.544, 0.590, 0.747, 0.767, 0.795, 0.846, 0.860,
    ];
    let positions: Vec<ExitPosition> = (0..13)
        .map(|i| ExitPosition::new(format!("Exit_{}", i + 1), i))
        .collect();
    let table = ExitTable::synthesize(positions, &accs, 0.86, &SyntheticConfidence::default())
        .expect("table");
    let exits = vec![2usize, 5, 8, 11];
    let sel = ExitSelection::new(
        exits.clone(),
        ExitRule::MaxSoftmax(vec![0.99, 0.97, 0.95, 0.9]),
    )
    .expect("selection");
    c.bench_function("table/evaluate/4_exits_10k_samples", |b| {
        b.iter(|| black_box(table.evaluate(black_box(&sel)).expect("evaluates")))
    });
    let cal = ThresholdCalibration::new(0.01, ConfidenceMeasure::MaxSoftmax, 32).expect("cal");
    c.bench_function("table/calibrate/4_exits_10k_samples", |b| {
        b.iter(|| {
            black_box(
                table
                    .calibrate(black_box(&exits), &cal, None)
                    .expect("calibrates"),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = decisions, table_queries
}
criterion_main!(benches);
