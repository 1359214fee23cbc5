//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::DedupePolicy;

/// Bring school rosters from Clever and data files into one SQLite roster database.
#[derive(Debug, Parser)]
#[command(name = "roster", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file
    #[arg(
        long,
        short,
        global = true,
        default_value = "importer.toml",
        env = "ROSTER_CONFIG"
    )]
    pub config: PathBuf,

    /// Also look for plugin files in this folder (before the default places)
    #[arg(long, global = true, value_name = "DIR")]
    pub plugin_dir: Vec<PathBuf>,

    /// Show more (-v: debug, -vv: trace); RUST_LOG overrides
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Show only errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every [[event]] job in the config, creating events that do not exist yet
    Import(ImportArgs),
    /// List the plugins roster can load, with their versions
    Plugins,
    /// Check the configuration and the plugins it needs, without importing
    Check,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Run only this event's job (repeatable); all jobs when absent
    #[arg(long, value_name = "NAME")]
    pub event: Vec<String>,

    /// Show what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How to treat contacts the roster already has from another source
    #[arg(long, value_enum, value_name = "POLICY")]
    pub dedupe: Option<DedupePolicy>,
}
