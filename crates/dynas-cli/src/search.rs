//! `dynas search` subcommands.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use dynas::search::table::nb201_arch_str;
use dynas::search::{
    AgingConfig, AgingEvolution, Budget, Executor, JsonLinesObserver, Nsga2, Nsga2Config,
    Objective, ParetoFront, ProgressObserver, RandomSearch, Strategy, Surrogate, TableProblem,
};
use dynas::space::Genotype;
use serde_json::{Map, Value, json};

use crate::paths::{Flagged, check_outputs};

/// `dynas search` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Search a benchmark table (a CSV in the schema of `nb201_hw.csv`: `op0..op5` or
    /// `arch_str` columns plus metric columns). Rows with missing values are infeasible.
    Table(TableArgs),
}

/// Search strategies available from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyName {
    /// NSGA-II with pymoo's ranking and history-wide duplicate elimination.
    Nsga2,
    /// Regularized (aging) evolution.
    Aging,
    /// Uniform random search over distinct architectures.
    Random,
    /// Surrogate-assisted search (Gaussian processes, hypervolume-improvement batches): the
    /// choice when each evaluation is expensive (training, measuring on a board).
    Surrogate,
}

/// Arguments of `dynas search table`.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// The table.
    #[arg(long)]
    csv: PathBuf,
    /// A column to minimise (repeatable; minimised columns come first in the output).
    #[arg(long = "minimize", value_name = "COLUMN")]
    minimize: Vec<String>,
    /// A column to maximise (repeatable).
    #[arg(long = "maximize", value_name = "COLUMN")]
    maximize: Vec<String>,
    /// Distinct architectures to evaluate.
    #[arg(long)]
    budget: usize,
    /// Seed of the search [default: 0; with `--resume`, the checkpoint's seed, and a different
    /// seed is refused].
    #[arg(long)]
    seed: Option<u64>,
    /// The strategy.
    #[arg(long, value_enum, default_value_t = StrategyName::Nsga2)]
    strategy: StrategyName,
    /// Where to write the result (JSON with `front` and `evaluated`).
    #[arg(long)]
    out: PathBuf,
    /// Also write the front as CSV here.
    #[arg(long)]
    front_csv: Option<PathBuf>,
    /// Also plot the front (first two objectives, over the table's true front) as SVG here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Checkpoint after every generation to this file; with `--resume`, continue from it. An
    /// existing file is never overwritten without `--resume`.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue the search saved in `--checkpoint`.
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    /// Append a JSON-lines event log here.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Show a progress bar on stderr.
    #[arg(long)]
    progress: bool,
    /// Have the evaluations made by `dynas worker` processes through this study store
    /// (`sqlite://PATH` or `postgres://…`) instead of in this process; needs --study. A
    /// search restarted with the same seed finds its results there.
    #[arg(long, requires = "study")]
    store: Option<String>,
    /// The study in --store (created if new, reopened if its table is the same).
    #[arg(long, requires = "store")]
    study: Option<String>,
}

/// Runs a `dynas search` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Table(args) => table(args),
    }
}

fn arch_label(problem: &TableProblem, genotype: &Genotype) -> String {
    if let Some(label) = problem.label(genotype) {
        return label.to_string();
    }
    // No row (or no arch_str column): rebuild the NAS-Bench-201 string from the op codes.
    let dims = dynas::search::Problem::space(problem).dimensions();
    let codes: Option<Vec<usize>> = genotype
        .genes()
        .iter()
        .zip(dims)
        .map(|(&g, d)| d.labels().get(g).and_then(|l| l.parse().ok()))
        .collect();
    codes
        .and_then(|c| nb201_arch_str(&c))
        .unwrap_or_else(|| genotype.to_string())
}

/// Refuses, before any work, outputs that would destroy an input or another output, a
/// checkpoint that would be overwritten, and a plot that cannot be drawn.
fn check_paths(args: &TableArgs) -> anyhow::Result<()> {
    let mut inputs = vec![Flagged::new("--csv", &args.csv)];
    let mut outputs = vec![Flagged::new("--out", &args.out)];
    if let Some(p) = &args.front_csv {
        outputs.push(Flagged::new("--front-csv", p));
    }
    if let Some(p) = &args.svg {
        outputs.push(Flagged::new("--svg", p));
    }
    if let Some(p) = &args.log {
        outputs.push(Flagged::new("--log", p));
    }
    if let Some(p) = &args.checkpoint {
        if p.exists() {
            if !args.resume {
                anyhow::bail!(
                    "checkpoint `{}` already exists: pass --resume to continue that search, or \
                     remove the file to start a new one",
                    p.display()
                );
            }
            // Read first, then replaced: an input no other output may touch.
            inputs.push(Flagged::new("--checkpoint", p));
        } else if args.resume {
            anyhow::bail!("--resume: checkpoint `{}` does not exist", p.display());
        } else {
            outputs.push(Flagged::new("--checkpoint", p));
        }
    }
    check_outputs(&inputs, &outputs)?;
    if args.svg.is_some() && args.minimize.len() + args.maximize.len() < 2 {
        anyhow::bail!("--svg plots two objectives: give at least two of --minimize / --maximize");
    }
    Ok(())
}

fn table(args: TableArgs) -> anyhow::Result<()> {
    if args.minimize.is_empty() && args.maximize.is_empty() {
        anyhow::bail!("give at least one objective with --minimize COLUMN or --maximize COLUMN");
    }
    check_paths(&args)?;
    let objectives: Vec<Objective> = args
        .minimize
        .iter()
        .map(Objective::minimize)
        .chain(args.maximize.iter().map(Objective::maximize))
        .collect();
    let problem = TableProblem::from_csv(&args.csv, objectives)?;
    let budget = Budget::evaluations(args.budget).context("--budget")?;
    match args.strategy {
        StrategyName::Nsga2 => search(&args, &problem, budget, Nsga2::new(Nsga2Config::default())?),
        StrategyName::Aging => search(
            &args,
            &problem,
            budget,
            AgingEvolution::new(AgingConfig::default())?,
        ),
        StrategyName::Random => search(&args, &problem, budget, RandomSearch::new(50)?),
        StrategyName::Surrogate => search(&args, &problem, budget, Surrogate::default()),
    }
}

fn search<S: Strategy>(
    args: &TableArgs,
    problem: &TableProblem,
    budget: Budget,
    strategy: S,
) -> anyhow::Result<()> {
    let evaluator = crate::study::TableEvaluator::new(
        args.store.as_deref(),
        args.study.as_deref(),
        &args.csv,
        problem,
    )?;
    let mut executor = Executor::new(evaluator.problem(), strategy, budget);
    if let Some(seed) = args.seed {
        executor = executor.seed(seed);
    }
    if let Some(path) = &args.checkpoint {
        if args.resume {
            executor = executor.resume_from(path)?;
        }
        executor = executor.checkpoint(path, 1)?;
    }
    if let Some(path) = &args.log {
        executor = executor.observe(JsonLinesObserver::append(path)?);
    }
    if args.progress {
        executor = executor.observe(ProgressObserver::new(args.budget));
    }
    let result = executor.run()?;
    if result.resumed {
        eprintln!(
            "continued the search saved in `{}` (its seed: {})",
            args.checkpoint
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
            result.seed
        );
    }
    let mut front: ParetoFront = result.front.clone();
    problem.label_front(&mut front);
    let points: Vec<Value> = front
        .points
        .iter()
        .map(|p| {
            let mut point = Map::new();
            point.insert("arch_str".into(), json!(arch_label(problem, &p.genotype)));
            point.insert("genotype".into(), json!(p.genotype.to_string()));
            point.insert("genes".into(), json!(p.genes));
            for (o, v) in front.objectives.iter().zip(&p.values) {
                point.insert(o.name.clone(), json!(v));
            }
            Value::Object(point)
        })
        .collect();
    let evaluated: Vec<String> = result
        .archive
        .records()
        .iter()
        .map(|r| arch_label(problem, &r.genotype))
        .collect();
    let infeasible = result
        .archive
        .records()
        .iter()
        .filter(|r| !r.evaluation.is_feasible())
        .count();
    let out = json!({
        "csv": args.csv.display().to_string(),
        "strategy": format!("{:?}", args.strategy).to_lowercase(),
        "seed": result.seed,
        "resumed": result.resumed,
        "budget": args.budget,
        "objectives": front.objectives,
        "generations": result.generations,
        "stop_reason": result.stop_reason,
        "infeasible_evaluated": infeasible,
        "front": points,
        "evaluated": evaluated,
    });
    let text = serde_json::to_string_pretty(&out)?;
    crate::paths::write_output("--out", &args.out, text)?;
    if let Some(path) = &args.front_csv {
        front.write_csv(path)?;
    }
    if let Some(path) = &args.svg {
        front.write_svg(path, Some(&problem.true_front()))?;
    }
    eprintln!(
        "{} architectures evaluated ({} infeasible), {} on the front -> {}",
        result.archive.len(),
        infeasible,
        front.len(),
        args.out.display()
    );
    Ok(())
}
