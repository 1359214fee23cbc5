//! `roster-host`: everything behind the `roster` command — config, plugin loading, the
//! import pipeline, the SQLite store, sync and scheduling. `main.rs` is only glue; the
//! library form lets benchmarks and tests drive the pipeline directly.

pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod jobs;
pub mod notify;
pub mod pipeline;
pub mod plugins;
pub mod report;
pub mod schedule;
pub mod store;
pub mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use cli::{Cli, Command};
use error::CliError;

/// Run the `roster` command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let color = use_color();
            let (red, bold, reset) = if color {
                ("\x1b[31m", "\x1b[1m", "\x1b[0m")
            } else {
                ("", "", "")
            };
            eprintln!("{red}{bold}error{reset}: {}", error.message);
            if let Some(hint) = error.hint {
                eprintln!("{bold}hint{reset}: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let load_config = || {
        config::Config::load(&cli.config).map_err(|error| {
            let missing = matches!(&error, config::ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
            let error = CliError::from(error);
            if missing {
                error.with_hint("run roster from the folder with importer.toml, or pass --config FILE")
            } else {
                error
            }
        })
    };
    match &cli.command {
        Command::Plugins => {
            // The config is optional here: it only adds plugin folders.
            let config_dirs = config::Config::load(&cli.config)
                .map(|c| c.plugin_dirs)
                .unwrap_or_default();
            commands::plugins::run(&plugins::search_path(&cli.plugin_dir, &config_dirs))
        }
        Command::Check => commands::check::run(&env(&cli, load_config()?)),
        Command::Plugin(cli::PluginCommand::Check {
            path,
            source,
            plugin_config,
        }) => commands::plugin::check(
            path,
            source.as_deref(),
            plugin_config.as_deref(),
            &cli.config,
        ),
        Command::Import(args) => {
            let env = env(&cli, load_config()?);
            cancel_on_ctrl_c(&env);
            commands::import::run(&env, args)
        }
        Command::Events(command) => commands::events::run(&load_config()?, command),
        Command::Browse(command) => commands::browse::run(&env(&cli, load_config()?), command),
        Command::Classes(command) => commands::classes::run(&load_config()?, command),
        Command::Sync(command) => {
            let env = env(&cli, load_config()?);
            cancel_on_ctrl_c(&env);
            commands::sync::run(&env, command)
        }
        Command::Daemon(args) => {
            let env = env(&cli, load_config()?);
            cancel_on_ctrl_c(&env);
            commands::daemon::run(&env, args)
        }
        Command::Fees(args) => commands::fees::run(&load_config()?, args),
        Command::Contacts(command) => commands::contacts::run(&load_config()?, command),
        Command::Export(args) => commands::export::run(&load_config()?, args),
        Command::Migrate(args) => commands::migrate::run(&env(&cli, load_config()?), args),
    }
}

/// The first Ctrl-C asks the running job to stop (it rolls back); the second quits.
fn cancel_on_ctrl_c(env: &jobs::Env) {
    let cancelled = env.cancelled.clone();
    let _ = ctrlc::set_handler(move || {
        if cancelled.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("cancelling: the current job rolls back (Ctrl-C again to quit now)");
    });
}

fn env(cli: &Cli, config: config::Config) -> jobs::Env {
    let plugin_dirs = plugins::search_path(&cli.plugin_dir, &config.plugin_dirs);
    jobs::Env {
        config,
        plugin_dirs,
        cancelled: Arc::new(AtomicBool::new(false)),
        show_progress: !cli.quiet && std::io::stderr().is_terminal(),
    }
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn init_logging(cli: &Cli) {
    let default = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_color())
        .with_target(false)
        .without_time()
        .init();
}
