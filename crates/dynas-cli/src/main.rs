//! The `dynas` command-line tool.

use clap::{Parser, Subcommand};
// For `serve_flags` (a `tch` command's flags), which the Dynamic-OFA example includes too.
#[cfg(feature = "tch")]
use dynas::dvfs::MissGuard;

mod cost;
#[cfg(feature = "tch")]
mod fmnist;
#[cfg(feature = "tch")]
mod goldennas;
#[cfg(feature = "tch")]
mod gos;
mod govern;
#[cfg(feature = "tch")]
mod hadas;
mod paths;
mod search;
#[cfg(feature = "tch")]
mod serve;
#[cfg(feature = "tch")]
mod serve_flags;
mod study;
mod worker;

/// Hardware-aware dynamic neural architecture search.
#[derive(Debug, Parser)]
#[command(name = "dynas", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fit and check hardware cost models on your own measurements.
    #[command(subcommand)]
    Cost(cost::Command),
    /// Run DVFS governors and the runtime manager.
    #[command(subcommand)]
    Govern(govern::Command),
    /// Search architectures.
    #[command(subcommand)]
    Search(search::Command),
    /// Inspect a study store (`dynas search … --store URL --study NAME`).
    #[command(subcommand)]
    Study(study::Command),
    /// Evaluate the jobs of a study store (any number of workers, on any machine with the
    /// study's data).
    Worker(worker::WorkerArgs),
    /// HADAS on a trained supernet: backbone, early exits and DVFS searched together; writes
    /// a deployment for the runtime manager (needs the `tch` feature).
    #[cfg(feature = "tch")]
    Hadas(Box<hadas::HadasArgs>),
    /// GOS operator replacement: adapt a trained model by swapping operators for cheaper
    /// ones, fine-tune with distillation, report accuracy and measured latency (needs the
    /// `tch` feature).
    #[cfg(feature = "tch")]
    Gos(Box<gos::GosArgs>),
    /// GoldenNAS on Fashion-MNIST: width-elastic supernet, shrinking toward each target
    /// during training, evolved GoldenNets, a depth-adaptive GoldenNet; writes a report and
    /// a deployment (needs the `tch` feature).
    #[cfg(feature = "tch")]
    Goldennas(Box<goldennas::GoldenNasArgs>),
    /// Dynamic-OFA serving: classify the test stream with a pre-sampled family under load
    /// traces (static, reactive and predictive policies), beside the simulator's prediction
    /// (needs the `tch` feature).
    #[cfg(feature = "tch")]
    Serve(Box<serve::ServeArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Cost(cmd) => cost::run(cmd),
        Command::Govern(cmd) => govern::run(cmd),
        Command::Search(cmd) => search::run(cmd),
        Command::Study(cmd) => study::run(cmd),
        Command::Worker(args) => worker::run(args),
        #[cfg(feature = "tch")]
        Command::Hadas(args) => hadas::run(*args),
        #[cfg(feature = "tch")]
        Command::Gos(args) => gos::run(*args),
        #[cfg(feature = "tch")]
        Command::Goldennas(args) => goldennas::run(*args),
        #[cfg(feature = "tch")]
        Command::Serve(args) => serve::run(*args),
    }
}
