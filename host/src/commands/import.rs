//! `roster import`: run the config's `[[event]]` jobs.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use roster_core::loader::{PluginFile, PluginHandle};

use crate::cli::ImportArgs;
use crate::config::{Config, EventConfig};
use crate::context::HostContext;
use crate::error::CliError;
use crate::events::Run;
use crate::pipeline::{self, Job, PassThrough, Scope, Summary};
use crate::store::Store;

pub struct Env {
    pub config: Config,
    pub plugin_dirs: Vec<std::path::PathBuf>,
    pub cancelled: Arc<AtomicBool>,
    pub show_progress: bool,
}

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
    let mut plugins: HashMap<String, PluginFile> = HashMap::new();
    let mut failures = Vec::new();
    let stdout = std::io::stdout();
    for job in jobs {
        match import_one(env, &mut store, &mut plugins, job, args) {
            Ok(summary) => {
                let mut out = stdout.lock();
                let verb = if args.dry_run {
                    "would change (dry run, nothing written)"
                } else {
                    "imported"
                };
                let _ = writeln!(out, "{} ({}): {verb}", job.name, job.source);
                let _ = writeln!(out, "{summary}\n");
            }
            Err(error) => {
                tracing::error!("{}: {}", job.name, error.message);
                if let Some(hint) = &error.hint {
                    tracing::info!("hint: {hint}");
                }
                failures.push((job.name.clone(), error));
            }
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => {
            let (name, error) = failures.pop().expect("one failure");
            Err(CliError {
                message: format!("event `{name}`: {}", error.message),
                hint: error.hint,
            })
        }
        n => Err(CliError::new(format!(
            "{n} import jobs failed: {}",
            failures
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn import_one(
    env: &Env,
    store: &mut Store,
    plugins: &mut HashMap<String, PluginFile>,
    job: &EventConfig,
    args: &ImportArgs,
) -> Result<Summary, CliError> {
    let config = &env.config;
    let source = config
        .source(&job.source)
        .expect("checked when the config was loaded");
    if !plugins.contains_key(&source.plugin) {
        let loaded = crate::plugins::load(&source.plugin, &env.plugin_dirs)?;
        plugins.insert(source.plugin.clone(), loaded);
    }
    let plugin = &plugins[&source.plugin];
    tracing::info!(
        "importing `{}` from source `{}` with plugin {} {}",
        job.name,
        source.name,
        plugin.info().name,
        plugin.info().version
    );
    let context = Arc::new(HostContext::new(
        &source.name,
        env.cancelled.clone(),
        env.show_progress,
    ));
    let run = (!args.dry_run)
        .then(|| {
            let event_id = crate::events::find(&store.conn, &job.name)?;
            Run::start(&store.conn, event_id, "import")
        })
        .transpose()?;

    let result = (|| {
        let mut records = plugin
            .open(&source.plugin_config, &config.base_dir, context.clone())
            .map_err(|error| pipeline::ImportError::Plugin {
                source_name: source.name.clone(),
                error,
            })?;
        pipeline::run(
            &mut store.conn,
            records.as_mut(),
            Job {
                source: &source.name,
                event: Some(job),
                scope: Scope::new(job.school.clone(), job.terms.clone()),
                access: &config.access,
                dry_run: args.dry_run,
            },
            &mut PassThrough,
            context.as_ref(),
        )
    })();
    context.finish();

    if let Some(run) = run {
        let event_id = crate::events::find(&store.conn, &job.name)?;
        store.conn.execute(
            "UPDATE sync_runs SET event_id = ?2 WHERE id = ?1",
            rusqlite::params![run.id, event_id],
        )?;
        match &result {
            Ok(summary) => {
                let json = serde_json::to_string(summary).expect("summary serialises");
                run.finish(&store.conn, "ok", Some(&json), None)?;
            }
            Err(error) => run.finish(&store.conn, "failed", None, Some(&error.to_string()))?,
        }
    }
    Ok(result?)
}
