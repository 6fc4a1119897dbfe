//! `dynas cost` subcommands.

use clap::Subcommand;

/// `dynas cost` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs a `dynas cost` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {}
}
