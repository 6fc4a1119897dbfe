//! Time of one 500-distinct-architecture search on NAS-Bench-201 (`nb201_hw.csv`, raspi4
//! latency vs CIFAR-100 accuracy), in process, table already loaded.
//!
//! `cargo bench -p dynas-search --bench search_nb201`

use criterion::{Criterion, criterion_group, criterion_main};
use dynas_search::{
    AgingConfig, AgingEvolution, Budget, Executor, Nsga2, Nsga2Config, Objective, RandomSearch,
    TableProblem,
};

fn bench(c: &mut Criterion) {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/nb201/nb201_hw.csv"
    );
    let problem = TableProblem::from_csv(
        csv,
        vec![
            Objective::minimize("raspi4_latency"),
            Objective::maximize("acc_cifar100"),
        ],
    )
    .expect("nb201_hw.csv");
    let budget = Budget::evaluations(500).expect("budget");
    let mut group = c.benchmark_group("nb201_500_evaluations");
    let mut seed = 0u64;
    group.bench_function("nsga2", |b| {
        b.iter(|| {
            seed += 1;
            let strategy = Nsga2::new(Nsga2Config::default()).expect("config");
            Executor::new(&problem, strategy, budget)
                .seed(seed)
                .run()
                .expect("search")
        })
    });
    group.bench_function("aging", |b| {
        b.iter(|| {
            seed += 1;
            let strategy = AgingEvolution::new(AgingConfig::default()).expect("config");
            Executor::new(&problem, strategy, budget)
                .seed(seed)
                .run()
                .expect("search")
        })
    });
    group.bench_function("random", |b| {
        b.iter(|| {
            seed += 1;
            Executor::new(&problem, RandomSearch::new(50).expect("batch"), budget)
                .seed(seed)
                .run()
                .expect("search")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
