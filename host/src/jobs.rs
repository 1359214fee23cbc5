//! Running one event's job — an import or a sync — from its source, recorded in
//! `sync_runs`. `roster import`, `roster sync run` and the daemon all come through here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use roster_core::loader::{PluginFile, PluginHandle};

use crate::config::DedupePolicy;
use crate::config::{Config, EventConfig};
use crate::context::HostContext;
use crate::error::CliError;
use crate::events::Run;
use crate::pipeline::{self, Dedupe, Job, Scope, Summary};
use crate::store::Store;

/// What every command that runs jobs needs.
pub struct Env {
    pub config: Config,
    pub plugin_dirs: Vec<PathBuf>,
    pub cancelled: Arc<AtomicBool>,
    pub show_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Import,
    /// A sync started by hand.
    Sync,
    /// A sync started by the daemon's schedule.
    Nightly,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Import => "import",
            RunKind::Sync => "sync",
            RunKind::Nightly => "nightly",
        }
    }
}

/// Open a source's record stream without importing anything (for browsing).
pub fn open_source(
    env: &Env,
    source_name: &str,
) -> Result<(Box<dyn roster_core::sdk::RecordSource>, Arc<HostContext>), CliError> {
    let config = &env.config;
    let source = config.source(source_name).ok_or_else(|| {
        CliError::new(format!(
            "no [[source]] named `{source_name}` in {}",
            config.path.display()
        ))
        .with_hint(format!(
            "sources: {}",
            config
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let plugin = crate::plugins::load(&source.plugin, &env.plugin_dirs)?;
    let context = Arc::new(HostContext::new(
        &source.name,
        env.cancelled.clone(),
        env.show_progress,
    ));
    let records = plugin
        .open(&source.plugin_config, &config.base_dir, context.clone())
        .map_err(|error| {
            CliError::from(pipeline::ImportError::Plugin {
                source_name: source.name.clone(),
                error,
            })
        })?;
    Ok((records, context))
}

pub struct Runner<'a> {
    env: &'a Env,
    plugins: HashMap<String, PluginFile>,
    /// `--dedupe`: overrides every source's own policy for this run.
    pub dedupe: Option<DedupePolicy>,
    /// `--allow-mass-deactivation`: the override for a real rollover.
    pub allow_mass_deactivation: bool,
    /// `--full`: read whole sources, never continuing from a checkpoint.
    pub full: bool,
}

impl<'a> Runner<'a> {
    pub fn new(env: &'a Env) -> Self {
        Runner {
            env,
            plugins: HashMap::new(),
            dedupe: None,
            allow_mass_deactivation: false,
            full: false,
        }
    }

    /// Run one event's job to completion or not at all, and record it (unless a dry run).
    pub fn run(
        &mut self,
        store: &mut Store,
        event: &EventConfig,
        kind: RunKind,
        dry_run: bool,
    ) -> Result<Summary, CliError> {
        let config = &self.env.config;
        let source = config.source(&event.source).ok_or_else(|| {
            CliError::new(format!(
                "event `{}` imports from source `{}`, which {} does not define",
                event.name,
                event.source,
                config.path.display()
            ))
            .with_hint("add the [[source]] back to the config, or stop sync for this event")
        })?;
        if !self.plugins.contains_key(&source.plugin) {
            let loaded = crate::plugins::load(&source.plugin, &self.env.plugin_dirs)?;
            self.plugins.insert(source.plugin.clone(), loaded);
        }
        let plugin = &self.plugins[&source.plugin];
        tracing::info!(
            "{} `{}` from source `{}` (plugin {} {})",
            kind.as_str(),
            event.name,
            source.name,
            plugin.info().name,
            plugin.info().version
        );
        let context = Arc::new(HostContext::new(
            &source.name,
            self.env.cancelled.clone(),
            self.env.show_progress,
        ));
        let run = if dry_run {
            None
        } else {
            let event_id = crate::events::find(&store.conn, &event.name)?;
            Some(Run::start(&store.conn, event_id, kind.as_str())?)
        };

        // The default never creates a silent duplicate: a match from another source stops
        // the import until someone chooses link or looks at the report.
        let policy = self.dedupe.or(source.dedupe).unwrap_or(DedupePolicy::Fail);
        let mut dedupe = Dedupe::new(policy);
        let info = plugin.info();
        let scope = format!("{:?} {:?}", event.school, event.terms);
        let access = format!("{:?}", config.access);
        let checkpoint_context = pipeline::checkpoint::context(&[
            &info.name,
            &info.version,
            &source.plugin_config,
            &scope,
            &access,
            &format!("{policy:?}"),
        ]);
        let result = (|| {
            let checkpoint = if self.full {
                None
            } else {
                pipeline::checkpoint::load(&store.conn, &source.name, &checkpoint_context)?
            };
            if let Some(checkpoint) = &checkpoint {
                tracing::debug!(
                    "source `{}`: continuing from its last run (its checkpoint {} bytes{})",
                    source.name,
                    checkpoint.len(),
                    if checkpoint.in_shared_memory() {
                        ", in sealed shared memory"
                    } else {
                        ""
                    }
                );
            }
            let gave_checkpoint = checkpoint.is_some();
            let mut records = plugin
                .open_from(
                    &source.plugin_config,
                    &config.base_dir,
                    checkpoint,
                    context.clone(),
                )
                .map_err(|error| pipeline::ImportError::Plugin {
                    source_name: source.name.clone(),
                    error,
                })?;
            pipeline::run(
                &mut store.conn,
                records.as_mut(),
                Job {
                    source: &source.name,
                    event: Some(event),
                    scope: Scope::new(event.school.clone(), event.terms.clone()),
                    access: &config.access,
                    dry_run,
                    guard: (!self.allow_mass_deactivation).then_some(&config.safety),
                    checkpoint_context: Some(&checkpoint_context),
                    gave_checkpoint,
                },
                &mut dedupe,
                context.as_ref(),
            )
        })();
        context.finish();

        let findings = match &result {
            Ok(summary) => summary.findings.as_slice(),
            Err(pipeline::ImportError::Conflicts { findings, .. }) => findings.as_slice(),
            Err(_) => &[],
        };
        if !findings.is_empty() {
            self.report_findings(&event.name, findings);
        }

        if let Some(run) = run {
            let event_id = crate::events::find(&store.conn, &event.name)?;
            run.set_event(&store.conn, event_id)?;
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

    /// The dedupe report: a table on stdout, CSV and JSON files beside the database.
    fn report_findings(&self, event: &str, findings: &[pipeline::dedupe::Conflict]) {
        crate::outln!(
            "{event}: dedupe report\n{}\n",
            crate::report::table(findings)
        );
        let dir = self
            .env
            .config
            .database
            .parent()
            .map(|p| p.join("reports"))
            .unwrap_or_else(|| PathBuf::from("reports"));
        let stem = format!(
            "dedupe-{}-{}",
            crate::report::slug(event),
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        );
        match crate::report::write_findings(&dir, &stem, findings) {
            Ok((csv, json)) => tracing::info!(
                "dedupe report written to {} and {}",
                csv.display(),
                json.display()
            ),
            Err(error) => tracing::warn!(
                "could not write the dedupe report to {}: {error}",
                dir.display()
            ),
        }
    }
}
