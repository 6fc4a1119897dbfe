//! Surrogate-assisted search against NSGA-II and random search on NAS-Bench-201
//! (`nb201_hw.csv`): for each latency column, minimise `latency / max(latency)` and
//! `error = (100 - acc_cifar100) / 100` with a fixed budget of *distinct* architectures, and
//! print the hypervolume (reference point (1, 1)) of everything evaluated as a share of the
//! table's true front, over several seeds, plus the surrogate's time per proposed batch.
//!
//! ```text
//! cargo run --release -p dynas-search --example search_surrogate_nb201 -- \
//!     [--csv CSV] [--seeds N] [--budget N] [--columns a,b] [--strategies surrogate,nsga2,random]
//! ```
//!
//! The surrogate's hyper-parameters can be overridden for sweeps with the environment variables
//! `SURROGATE_INITIAL`, `SURROGATE_BATCH`, `SURROGATE_EXPLORATION`, `SURROGATE_EXPLOIT`,
//! `SURROGATE_LOCAL_RADIUS` and `SURROGATE_GLOBAL`; `SURROGATE_DIAG` prints each seed's share
//! and the true-front points it missed.

use clap::Parser;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dynas_search::pareto::hypervolume;
use dynas_search::{
    Budget, Control, Event, Executor, Nsga2, Nsga2Config, Objective, ParetoFront, RandomSearch,
    SearchError, Strategy, Surrogate, SurrogateParams, TableProblem,
};

const COLUMNS: [&str; 5] = [
    "raspi4_latency",
    "pixel3_latency",
    "gold_6226_latency",
    "titanx_1_latency",
    "pixel2_latency",
];

// Only the default table path is used here (the flags are named, not positional).
#[allow(dead_code)]
#[path = "common/nb201_table.rs"]
mod nb201_table;

/// Surrogate-assisted search against NSGA-II and random search on NAS-Bench-201.
#[derive(Parser)]
struct Options {
    /// NAS-Bench-201 table.
    #[arg(long, default_value = nb201_table::NB201_CSV)]
    csv: String,
    /// Seeds (0, 1, ...) per strategy and column.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Distinct architectures each search may evaluate.
    #[arg(long, default_value_t = 200)]
    budget: usize,
    /// Latency columns, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = COLUMNS)]
    columns: Vec<String>,
    /// Strategies, comma-separated.
    #[arg(long, value_delimiter = ',', value_enum, default_values_t = StrategyName::ALL)]
    strategies: Vec<StrategyName>,
}

/// The strategies compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StrategyName {
    /// `Surrogate` with its (or the environment's) parameters.
    Surrogate,
    /// NSGA-II.
    Nsga2,
    /// Uniform random search.
    Random,
}

impl StrategyName {
    const ALL: [Self; 3] = [Self::Surrogate, Self::Nsga2, Self::Random];

    fn name(self) -> &'static str {
        match self {
            Self::Surrogate => "surrogate",
            Self::Nsga2 => "nsga2",
            Self::Random => "random",
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> dynas_search::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| SearchError::invalid(name, format!("`{v}` does not parse"))),
        Err(_) => Ok(default),
    }
}

fn surrogate_params() -> dynas_search::Result<SurrogateParams> {
    let d = SurrogateParams::default();
    Ok(SurrogateParams {
        initial: env_or("SURROGATE_INITIAL", d.initial)?,
        batch: env_or("SURROGATE_BATCH", d.batch)?,
        exploration: env_or("SURROGATE_EXPLORATION", d.exploration)?,
        exploit_share: env_or("SURROGATE_EXPLOIT", d.exploit_share)?,
        local_radius: env_or("SURROGATE_LOCAL_RADIUS", d.local_radius)?,
        global_per_batch: env_or("SURROGATE_GLOBAL", d.global_per_batch)?,
        ..d
    })
}

struct Scale {
    max_latency: f64,
    true_hv: f64,
}

impl Scale {
    fn points(&self, front: &ParetoFront) -> Vec<Vec<f64>> {
        front
            .points
            .iter()
            .map(|p| {
                vec![
                    p.values[0] / self.max_latency,
                    (100.0 - p.values[1]) / 100.0,
                ]
            })
            .collect()
    }

    fn share(&self, front: &ParetoFront) -> dynas_search::Result<f64> {
        Ok(hypervolume(&self.points(front), &[1.0, 1.0])? / self.true_hv * 100.0)
    }
}

/// HV shares (%), milliseconds per search, and milliseconds per step after the first.
struct Outcome {
    shares: Vec<f64>,
    search_ms: Vec<f64>,
    step_ms: Vec<f64>,
}

fn run<S: Strategy>(
    problem: &TableProblem,
    scale: &Scale,
    make: impl Fn() -> dynas_search::Result<S>,
    options: &Options,
) -> dynas_search::Result<Outcome> {
    let mut outcome = Outcome {
        shares: Vec::new(),
        search_ms: Vec::new(),
        step_ms: Vec::new(),
    };
    for seed in 0..options.seeds {
        let steps: Arc<Mutex<Vec<f64>>> = Arc::default();
        let log = Arc::clone(&steps);
        let mut last: Option<Instant> = None;
        let start = Instant::now();
        let result = Executor::new(problem, make()?, Budget::evaluations(options.budget)?)
            .seed(seed)
            .observe(move |e: &Event<'_>| {
                if let Event::Generation { .. } = e {
                    let now = Instant::now();
                    if let (Some(t), Ok(mut v)) = (last, log.lock()) {
                        v.push((now - t).as_secs_f64() * 1e3);
                    }
                    last = Some(now);
                }
                Control::Continue
            })
            .run()?;
        outcome.search_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if result.archive.len() > options.budget {
            return Err(SearchError::invalid("budget", "exceeded"));
        }
        let share = scale.share(&result.front)?;
        if std::env::var_os("SURROGATE_DIAG").is_some() {
            // Which true-front points were missed, and what each alone costs (% of the HV).
            let truth = scale.points(&problem.true_front());
            let found = scale.points(&result.front);
            let missed: Vec<String> = truth
                .iter()
                .filter(|t| !found.iter().any(|f| f == *t))
                .map(|t| {
                    let rest: Vec<Vec<f64>> = truth.iter().filter(|u| u != &t).cloned().collect();
                    let loss = (scale.true_hv - hypervolume(&rest, &[1.0, 1.0]).unwrap_or(0.0))
                        / scale.true_hv
                        * 100.0;
                    format!("({:.3},{:.3}:{:.2})", t[0], t[1], loss)
                })
                .collect();
            eprintln!("seed {seed} {share:.2} missed {}", missed.join(" "));
        }
        outcome.shares.push(share);
        if let Ok(v) = steps.lock() {
            outcome.step_ms.extend(v.iter().copied());
        }
    }
    Ok(outcome)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn main() -> dynas_search::Result<()> {
    let options = Options::parse();
    let params = surrogate_params()?;
    params.check()?;
    println!(
        "NB201 acc_cifar100 vs latency, budget {} distinct architectures, seeds 0..{}, surrogate {:?}",
        options.budget, options.seeds, params
    );
    println!(
        "{:<18} {:<9} {:>8} {:>8} {:>10} {:>14}",
        "column", "strategy", "mean HV%", "min HV%", "ms/search", "ms/step (max)"
    );
    for column in &options.columns {
        let problem = TableProblem::from_csv(
            &options.csv,
            vec![
                Objective::minimize(column.as_str()),
                Objective::maximize("acc_cifar100"),
            ],
        )?;
        let max_latency = problem
            .evaluations()
            .filter(|(_, e)| e.is_feasible())
            .map(|(_, e)| e.values[0])
            .fold(f64::NEG_INFINITY, f64::max);
        let mut scale = Scale {
            max_latency,
            true_hv: 1.0,
        };
        scale.true_hv = hypervolume(&scale.points(&problem.true_front()), &[1.0, 1.0])?;
        for strategy in &options.strategies {
            let outcome = match strategy {
                StrategyName::Surrogate => run(
                    &problem,
                    &scale,
                    || Ok(Surrogate::new(params.check()?)),
                    &options,
                )?,
                StrategyName::Nsga2 => run(
                    &problem,
                    &scale,
                    || Nsga2::new(Nsga2Config::default()),
                    &options,
                )?,
                StrategyName::Random => run(&problem, &scale, || RandomSearch::new(50), &options)?,
            };
            println!(
                "{:<18} {:<9} {:>8.2} {:>8.2} {:>10.1} {:>7.1} ({:.0})",
                column,
                strategy.name(),
                mean(&outcome.shares),
                min(&outcome.shares),
                mean(&outcome.search_ms),
                mean(&outcome.step_ms),
                max(&outcome.step_ms),
            );
        }
    }
    Ok(())
}
