//! `dynas study`: inspect a study store; and the `--store` side of `dynas search`.

use std::path::Path;

use clap::{Args, Subcommand};
use dynas::search::{Problem, TableProblem};
use dynas_store::{ProblemSpec, StoreProblem, open_store, study_front};
use serde_json::json;

/// `dynas study` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Jobs by state, the workers and their last heartbeat, and the current front.
    Status(StatusArgs),
}

/// Arguments of `dynas study status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The study store: `sqlite://PATH` or `postgres://user:password@host:port/database`.
    url: String,
    /// The study [default: every study of the store].
    #[arg(long)]
    study: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs a `dynas study` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Status(args) => status(&args),
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let store = open_store(&args.url)?;
    let names = match &args.study {
        Some(s) => vec![store.study(s)?.name],
        None => store.studies()?,
    };
    if names.is_empty() && !args.json {
        println!("{}: no study", store.url());
    }
    let mut all = Vec::new();
    for name in names {
        let info = store.study(&name)?;
        let status = store.status(&name)?;
        let front = study_front(store.as_ref(), &name)?;
        if args.json {
            all.push(json!({
                "study": info,
                "status": status,
                "front": front,
            }));
            continue;
        }
        println!(
            "study `{name}` ({} problem, data {}): {} pending, {} running, {} done, {} failed",
            info.problem_kind,
            info.fingerprint,
            status.pending,
            status.running,
            status.done,
            status.failed
        );
        for w in &status.workers {
            let ago = (status.now_ms - w.last_heartbeat_ms) as f64 / 1000.0;
            println!(
                "  worker {}: capabilities {}, {} results, last heartbeat {ago:.1} s ago",
                w.id,
                w.capabilities.join(","),
                w.jobs_done
            );
        }
        let names: Vec<&str> = front.objectives.iter().map(|o| o.name.as_str()).collect();
        println!("  front ({} points; {}):", front.len(), names.join(", "));
        for p in &front.points {
            let values: Vec<String> = p.values.iter().map(|v| format!("{v}")).collect();
            println!("    {}  {}", p.genotype, values.join("  "));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}

/// The problem `dynas search table` evaluates: `table` itself, or (with `--store`) a
/// [`StoreProblem`] over it, whose evaluations are made by `dynas worker` processes.
pub enum TableEvaluator<'a> {
    /// In this process.
    Local(&'a TableProblem),
    /// Through the store.
    Store(Box<StoreProblem<&'a TableProblem>>),
}

impl<'a> TableEvaluator<'a> {
    /// Opens the study `study` of the store at `url` (creating it if new) for the table at
    /// `csv`; in process when `url` is `None`.
    pub fn new(
        url: Option<&str>,
        study: Option<&str>,
        csv: &Path,
        table: &'a TableProblem,
    ) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Self::Local(table));
        };
        let study = study.ok_or_else(|| anyhow::anyhow!("--store needs --study NAME"))?;
        let spec = ProblemSpec::table(csv, table.objectives().to_vec());
        let problem = StoreProblem::create(table, open_store(url)?, study, &spec)?;
        let shown = problem.store().url();
        eprintln!(
            "evaluating through study `{study}` of {shown}: start workers with \
             `dynas worker --store {shown} --study {study}`"
        );
        Ok(Self::Store(Box::new(problem)))
    }

    /// The problem to hand to the executor.
    pub fn problem(&self) -> &dyn Problem {
        match self {
            Self::Local(table) => *table,
            Self::Store(problem) => problem.as_ref(),
        }
    }
}
