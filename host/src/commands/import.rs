//! `roster import`: run the config's `[[event]]` jobs.

use std::io::Write;

use crate::cli::ImportArgs;
use crate::config::EventConfig;
use crate::error::CliError;
use crate::jobs::{Env, RunKind, Runner};
use crate::store::Store;

pub fn run(env: &Env, args: &ImportArgs) -> Result<(), CliError> {
    let config = &env.config;
    let jobs: Vec<&EventConfig> = if args.event.is_empty() {
        config.events.iter().collect()
    } else {
        let mut jobs = Vec::new();
        for name in &args.event {
            let job = config
                .events
                .iter()
                .find(|e| &e.name == name)
                .ok_or_else(|| {
                    CliError::new(format!(
                        "no [[event]] named `{name}` in {}",
                        config.path.display()
                    ))
                    .with_hint(format!(
                        "events in the config: {}",
                        config
                            .events
                            .iter()
                            .map(|e| e.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            jobs.push(job);
        }
        jobs
    };
    if jobs.is_empty() {
        return Err(
            CliError::new(format!("{} has no [[event]] jobs", config.path.display()))
                .with_hint("add an [[event]] with a name and a source; see the README"),
        );
    }

    let mut store = Store::open(&config.database)?;
    let _writer = store.lock_writer()?;
    let mut runner = Runner::new(env);
    runner.dedupe = args.dedupe;
    runner.allow_mass_deactivation = args.allow_mass_deactivation;
    runner.full = args.full;
    let mut failures = Vec::new();
    let several = jobs.len() > 1;
    for job in jobs {
        match runner.run(&mut store, job, RunKind::Import, args.dry_run) {
            Ok(summary) => {
                let verb = if args.dry_run {
                    "would change (dry run, nothing written)"
                } else {
                    "imported"
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{} (source {}): {verb}", job.name, job.source);
                let _ = writeln!(out, "{summary}\n");
            }
            Err(error) => {
                if several {
                    tracing::error!("{}: {}", job.name, error.message);
                }
                failures.push((job.name.clone(), error));
            }
        }
    }
    CliError::from_failures(failures, "import")
}
