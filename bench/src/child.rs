//! What the bench runs in child processes of its own (so each has its own peak RSS): one
//! import job in-process, with the plugin linked in or loaded through the ABI, and
//! optionally the dedupe stage timed and the executed statements recorded.
//!
//! The code path is the one `roster import` takes (`roster_host::pipeline::run` with the
//! host's context and dedupe stage); only the plugin handle differs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use roster_core::loader::{LinkedPlugin, PluginFile, PluginHandle};
use roster_core::record::{Person, Role};
use roster_host::config::{Config, DedupePolicy};
use roster_host::context::HostContext;
use roster_host::pipeline::dedupe::{Conflict, Known, Resolution, RunPeople};
use roster_host::pipeline::{self, Dedupe, DedupeStage, Job, Scope};
use roster_host::store::Store;
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};

use crate::sqlplan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Linkage {
    /// `LinkedPlugin::<CsvPlugin>`: the plugin compiled into this binary.
    Static,
    /// `PluginFile::load`: the plugin's .so through the stable ABI.
    Abi,
}

#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, value_enum)]
    pub plugin: Linkage,
    /// The plugin file, for `--plugin abi`.
    #[arg(long)]
    pub plugin_file: Option<PathBuf>,
    /// `--dedupe report` for the dedupe benchmark (a dry run that still checks every
    /// person); the default is what `roster import` uses.
    #[arg(long)]
    pub report: bool,
    /// Record every statement the import runs (for the query-plan check).
    #[arg(long)]
    pub trace: bool,
    /// Only pull the records from the plugin (no database work): what reading costs.
    #[arg(long)]
    pub drain: bool,
    /// Where to write the result (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChildResult {
    pub seconds: f64,
    pub persons: u64,
    pub dedupe_seconds: f64,
    /// Dedupe seconds per block of [`WINDOW`] persons, in order.
    pub windows: Vec<f64>,
    pub findings: u64,
    pub summary: serde_json::Value,
    pub statements: Vec<sqlplan::Statement>,
    /// `EXPLAIN QUERY PLAN` of every statement that ran more than once, asked on the
    /// import's own connection (so with its settings).
    #[serde(default)]
    pub plans: Vec<sqlplan::Plan>,
}

pub const WINDOW: u64 = 100;

/// The dedupe stage with a stopwatch around every call.
struct Timed<D> {
    inner: D,
    persons: u64,
    spent: Duration,
    window_start: Duration,
    windows: Vec<f64>,
}

impl<D: DedupeStage> DedupeStage for Timed<D> {
    fn check(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
        known: Option<Known>,
        run: &dyn RunPeople,
    ) -> rusqlite::Result<Resolution> {
        let started = Instant::now();
        let result = self.inner.check(tx, source, person, known, run);
        self.spent += started.elapsed();
        self.persons += 1;
        if self.persons % WINDOW == 0 {
            self.windows
                .push((self.spent - self.window_start).as_secs_f64());
            self.window_start = self.spent;
        }
        result
    }

    fn repeated(&mut self, source: &str, person: &Person, first_role: Option<Role>) {
        self.inner.repeated(source, person, first_role)
    }

    fn continuing(&mut self) {
        self.inner.continuing()
    }

    fn check_unsent(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        source: &str,
        run: &dyn roster_host::pipeline::dedupe::RunPeople,
    ) -> rusqlite::Result<()> {
        self.inner.check_unsent(tx, source, run)
    }

    fn people_done(&mut self) {
        self.inner.people_done()
    }

    fn findings(&self) -> &[Conflict] {
        self.inner.findings()
    }

    fn policy(&self) -> DedupePolicy {
        self.inner.policy()
    }
}

pub fn run(args: &ChildArgs) -> Result<()> {
    let config = Config::load(&args.config).map_err(|e| anyhow!("{e}"))?;
    let event = config
        .events
        .first()
        .context("the bench config has one [[event]]")?;
    let source = config
        .source(&event.source)
        .context("the event's source is in the config")?;
    let mut store = Store::open(&config.database).map_err(|e| anyhow!("{e}"))?;
    let _lock = store.lock_writer().map_err(|e| anyhow!("{e}"))?;
    if args.trace {
        sqlplan::record(&store.conn);
    }
    // Experiments only: the page cache, the statement cache's capacity.
    if let Ok(kib) = std::env::var("ROSTER_BENCH_CACHE_KIB") {
        store
            .conn
            .pragma_update(None, "cache_size", format!("-{kib}"))?;
    }
    if let Some(n) = std::env::var("ROSTER_BENCH_STATEMENT_CACHE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        store.conn.set_prepared_statement_cache_capacity(n);
    }
    let plugin: Box<dyn PluginHandle> = match args.plugin {
        Linkage::Static => Box::new(LinkedPlugin::<roster_plugin_csv::CsvPlugin>::default()),
        Linkage::Abi => {
            let path = args
                .plugin_file
                .as_ref()
                .context("--plugin abi needs --plugin-file")?;
            Box::new(PluginFile::load(path).map_err(|e| anyhow!("{e}"))?)
        }
    };
    let context = Arc::new(HostContext::new(
        &source.name,
        Arc::new(AtomicBool::new(false)),
        false,
    ));
    let policy = if args.report {
        DedupePolicy::Report
    } else {
        source.dedupe.unwrap_or(DedupePolicy::Fail)
    };
    let mut dedupe = Timed {
        inner: Dedupe::new(policy),
        persons: 0,
        spent: Duration::ZERO,
        window_start: Duration::ZERO,
        windows: Vec::new(),
    };
    let started = Instant::now();
    let mut records = plugin
        .open(&source.plugin_config, &config.base_dir, context.clone())
        .map_err(|e| anyhow!("{e}"))?;
    if args.drain {
        let mut count = 0u64;
        while let Some(batch) = records.next_batch().map_err(|e| anyhow!("{e}"))? {
            count += batch.len() as u64;
        }
        let result = ChildResult {
            seconds: started.elapsed().as_secs_f64(),
            persons: count,
            dedupe_seconds: 0.0,
            windows: Vec::new(),
            findings: 0,
            summary: serde_json::json!({ "records": count }),
            statements: Vec::new(),
            plans: Vec::new(),
        };
        std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?)?;
        return Ok(());
    }
    let summary = pipeline::run(
        &mut store.conn,
        records.as_mut(),
        Job {
            source: &source.name,
            event: Some(event),
            scope: Scope::new(event.school.clone(), event.terms.clone()),
            access: &config.access,
            dry_run: false,
            guard: None,
            checkpoint_context: None,
            gave_checkpoint: false,
        },
        &mut dedupe,
        context.as_ref(),
    )
    .map_err(|error| {
        let mut text = error.to_string();
        if let pipeline::ImportError::Conflicts { findings, .. } = &error {
            let mut rules: std::collections::BTreeMap<&str, (u64, String)> = Default::default();
            for finding in findings {
                let slot = rules.entry(finding.rule.as_str()).or_default();
                slot.0 += 1;
                if slot.1.is_empty() {
                    slot.1 = format!(
                        "{} {}: {}",
                        finding.incoming.role, finding.incoming.source_id, finding.reason
                    );
                }
            }
            for (rule, (n, example)) in rules {
                text.push_str(&format!("\n  {rule}: {n} (e.g. {example})"));
            }
        }
        anyhow!(text)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let statements = if args.trace {
        sqlplan::recorded()
    } else {
        Vec::new()
    };
    let plans = sqlplan::check(&store.conn, &statements)?;
    let result = ChildResult {
        seconds,
        persons: dedupe.persons,
        dedupe_seconds: dedupe.spent.as_secs_f64(),
        windows: dedupe.windows,
        findings: summary.findings.len() as u64,
        summary: serde_json::json!({
            "linked": summary.linked,
        }),
        statements,
        plans,
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?)?;
    Ok(())
}
