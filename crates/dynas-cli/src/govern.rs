//! `dynas govern` subcommands.

use clap::Subcommand;

/// `dynas govern` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs a `dynas govern` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {}
}
