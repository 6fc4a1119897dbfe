//! The NAS-Bench-201 figure: NSGA-II, aging evolution and random search on `nb201_hw.csv`,
//! minimising raspi4 latency / max latency and error = (100 - CIFAR-100 accuracy) / 100,
//! hypervolume reference point (1, 1), 500 distinct architectures, several seeds.
//!
//! ```text
//! cargo run --release -p dynas-search --example search_nb201 -- [CSV] [SEEDS] [BUDGET]
//! ```

use clap::Parser;
use std::time::Instant;

use dynas_search::pareto::hypervolume;
use dynas_search::{
    AgingConfig, AgingEvolution, Budget, Executor, Nsga2, Nsga2Config, Objective, ParetoFront,
    RandomSearch, Strategy, TableProblem,
};

fn normalised(front: &ParetoFront, max_latency: f64) -> Vec<Vec<f64>> {
    front
        .points
        .iter()
        .map(|p| vec![p.values[0] / max_latency, (100.0 - p.values[1]) / 100.0])
        .collect()
}

fn run<S: Strategy>(
    name: &str,
    problem: &TableProblem,
    make: impl Fn() -> dynas_search::Result<S>,
    seeds: u64,
    budget: usize,
    max_latency: f64,
    true_hv: f64,
) -> dynas_search::Result<()> {
    let mut ratios = Vec::new();
    let mut times = Vec::new();
    for seed in 0..seeds {
        let start = Instant::now();
        let result = Executor::new(problem, make()?, Budget::evaluations(budget)?)
            .seed(seed)
            .run()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(result.archive.len() <= budget);
        let hv = hypervolume(&normalised(&result.front, max_latency), &[1.0, 1.0])?;
        ratios.push(hv / true_hv * 100.0);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / ratios.len() as f64).sqrt();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let t = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{name:<8} HV ratio mean {mean:.2} % (sd {sd:.2}, min {min:.2}) over {seeds} seeds; {t:.2} ms per search"
    );
    Ok(())
}

// Only the table path is used here (the seed is a count of seeds).
#[allow(dead_code)]
#[path = "common/nb201_table.rs"]
mod nb201_table;

/// NSGA-II, evolution and random search on NAS-Bench-201: hypervolume ratio over seeds.
#[derive(Parser)]
struct Args {
    /// NAS-Bench-201 table (absent or empty: `crates/dynas-data/data/nb201/nb201_hw.csv`).
    csv: Option<String>,
    /// Number of seeds (0, 1, ...) each search runs with.
    #[arg(default_value_t = 5)]
    seeds: u64,
    /// Evaluations per search.
    #[arg(default_value_t = 500)]
    budget: usize,
}

fn main() -> dynas_search::Result<()> {
    let args = Args::parse();
    let csv = nb201_table::table_or_default(args.csv.as_deref());
    let (seeds, budget) = (args.seeds, args.budget);
    let problem = TableProblem::from_csv(
        csv,
        vec![
            Objective::minimize("raspi4_latency"),
            Objective::maximize("acc_cifar100"),
        ],
    )?;
    let max_latency = problem
        .evaluations()
        .filter(|(_, e)| e.is_feasible())
        .map(|(_, e)| e.values[0])
        .fold(f64::NEG_INFINITY, f64::max);
    let true_front = problem.true_front();
    let true_hv = hypervolume(&normalised(&true_front, max_latency), &[1.0, 1.0])?;
    println!(
        "{} rows, true front {} points, true HV {true_hv:.6}, budget {budget}",
        problem.len(),
        true_front.len()
    );
    let pops: Vec<usize> = std::env::var("NSGA_POPS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let probs: Vec<f64> = std::env::var("NSGA_PM")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    if !pops.is_empty() || !probs.is_empty() {
        for &pop in if pops.is_empty() {
            &[24][..]
        } else {
            &pops[..]
        } {
            for &pm in if probs.is_empty() {
                &[0.2][..]
            } else {
                &probs[..]
            } {
                let config = Nsga2Config {
                    population: pop,
                    offspring: pop,
                    mutation: dynas_space::Mutation::new(
                        dynas_space::MutationKind::ChangeValue,
                        pm,
                    )?,
                    ..Nsga2Config::default()
                };
                run(
                    &format!("p{pop} m{pm}"),
                    &problem,
                    || Nsga2::new(config.clone()),
                    seeds,
                    budget,
                    max_latency,
                    true_hv,
                )?;
            }
        }
        return Ok(());
    }
    run(
        "nsga2",
        &problem,
        || Nsga2::new(Nsga2Config::default()),
        seeds,
        budget,
        max_latency,
        true_hv,
    )?;
    // pymoo's `res.F` is the final population's non-dominated set, not every architecture
    // evaluated: the same measure for NSGA-II here (at most `population` points).
    let mut ratios = Vec::new();
    for seed in 0..seeds {
        let result = Executor::new(
            &problem,
            Nsga2::new(Nsga2Config::default())?,
            Budget::evaluations(budget)?,
        )
        .seed(seed)
        .run()?;
        let pop: Vec<Vec<f64>> = result
            .state
            .population
            .iter()
            .filter(|m| m.cv <= 0.0 && m.rank == 0)
            .map(|m| vec![m.f[0] / max_latency, (100.0 + m.f[1]) / 100.0])
            .collect();
        ratios.push(hypervolume(&pop, &[1.0, 1.0])? / true_hv * 100.0);
    }
    println!(
        "nsga2 final population's first front only: HV ratio mean {:.2} % over {seeds} seeds",
        ratios.iter().sum::<f64>() / ratios.len() as f64
    );
    run(
        "aging",
        &problem,
        || AgingEvolution::new(AgingConfig::default()),
        seeds,
        budget,
        max_latency,
        true_hv,
    )?;
    run(
        "random",
        &problem,
        || RandomSearch::new(50),
        seeds,
        budget,
        max_latency,
        true_hv,
    )?;
    Ok(())
}
