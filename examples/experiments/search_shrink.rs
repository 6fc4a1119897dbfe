//! GoldenNAS progressive shrinking on NAS-Bench-201 (raspi4 latency vs CIFAR-100 accuracy):
//! prints the space left after each stage and the hypervolume of the final NSGA-II search.
//!
//! ```text
//! cargo run --release -p dynas-search --example search_shrink -- [CSV] [SEED]
//! ```

use clap::Parser;
use dynas_search::pareto::hypervolume;
use dynas_search::{
    Budget, Nsga2, Nsga2Config, Objective, ProgressiveShrinking, ShrinkConfig, TableProblem,
};

#[path = "common/nb201_table.rs"]
mod nb201_table;

/// GoldenNAS progressive shrinking on NAS-Bench-201.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    table: nb201_table::TableAndSeed,
}

fn main() -> dynas_search::Result<()> {
    let args = Args::parse();
    let (csv, seed) = (args.table.csv(), args.table.seed);
    let problem = TableProblem::from_csv(
        csv,
        vec![
            Objective::minimize("raspi4_latency"),
            Objective::maximize("acc_cifar100"),
        ],
    )?;
    let max_lat = problem
        .evaluations()
        .map(|(_, e)| e.values[0])
        .fold(f64::NEG_INFINITY, f64::max);
    let norm = |v: &[f64]| vec![v[0] / max_lat, (100.0 - v[1]) / 100.0];
    let true_hv = hypervolume(
        &problem
            .true_front()
            .points
            .iter()
            .map(|p| norm(&p.values))
            .collect::<Vec<_>>(),
        &[1.0, 1.0],
    )?;
    let shrinking = ProgressiveShrinking::new(ShrinkConfig::default())?;
    let result = shrinking.run(
        &problem,
        Nsga2::new(Nsga2Config::default())?,
        Budget::evaluations(200)?,
        seed,
    )?;
    println!("start: 15625 architectures");
    for s in &result.stages {
        println!(
            "stage {}: {} architectures left after {} sampled; dropped {}",
            s.stage,
            s.cardinality,
            s.evaluations,
            if s.dropped.is_empty() {
                "nothing".to_string()
            } else {
                s.dropped.join(", ")
            }
        );
    }
    let hv = hypervolume(
        &result
            .front
            .points
            .iter()
            .map(|p| norm(&p.values))
            .collect::<Vec<_>>(),
        &[1.0, 1.0],
    )?;
    println!(
        "NSGA-II, 200 evaluations in the shrunk space: {:.2} % of the true front's hypervolume",
        hv / true_hv * 100.0
    );
    Ok(())
}
