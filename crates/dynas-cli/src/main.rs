//! The `dynas` command-line tool.

use clap::{Parser, Subcommand};

mod cost;
mod govern;
mod search;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Cost(cmd) => cost::run(cmd),
        Command::Govern(cmd) => govern::run(cmd),
        Command::Search(cmd) => search::run(cmd),
    }
}
