//! `dynas search` subcommands.

use clap::Subcommand;

/// `dynas search` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs a `dynas search` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {}
}
