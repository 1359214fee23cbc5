//! `roster sync`: run now, status, history, start and stop — and the nightly run the
//! daemon performs.

use jiff::Timestamp;
use rusqlite::params;

use crate::cli::{SyncCommand, SyncRunArgs, SyncSwitchArgs, SyncTarget};
use crate::commands::events::require;
use crate::error::CliError;
use crate::events::{self, EventRow};
use crate::jobs::{Env, RunKind, Runner};
use crate::pipeline::Summary;
use crate::schedule::Schedule;
use crate::store::Store;
use crate::ui::{confirm, table};

pub fn run(env: &Env, command: &SyncCommand) -> Result<(), CliError> {
    let mut store = Store::open(&env.config.database)?;
    match command {
        SyncCommand::Run(args) => run_now(env, &mut store, args),
        SyncCommand::Status => status(env, &store),
        SyncCommand::History { event, limit } => history(&store, event.as_deref(), *limit),
        SyncCommand::Start(args) => switch(&store, args, true),
        SyncCommand::Stop(args) => switch(&store, args, false),
    }
}

fn targets(
    store: &Store,
    target: &SyncTarget,
    only_enabled: bool,
) -> Result<Vec<EventRow>, CliError> {
    match &target.event {
        Some(name) => Ok(vec![require(store, name)?]),
        None => Ok(events::list(&store.conn)?
            .into_iter()
            .filter(|e| !only_enabled || e.sync_enabled)
            .collect()),
    }
}

fn run_now(env: &Env, store: &mut Store, args: &SyncRunArgs) -> Result<(), CliError> {
    let events = targets(store, &args.target, true)?;
    if events.is_empty() {
        crate::outln!("no events have sync enabled");
        return Ok(());
    }
    let _writer = store.lock_writer()?;
    let failures = sync_events(
        env,
        store,
        &events,
        RunKind::Sync,
        args.dry_run,
        args.allow_mass_deactivation,
        args.full,
    );
    CliError::from_failures(failures, "sync")
}

/// Sync each event in turn, printing each summary and notifying on each failure.
pub fn sync_events(
    env: &Env,
    store: &mut Store,
    events: &[EventRow],
    kind: RunKind,
    dry_run: bool,
    allow_mass_deactivation: bool,
    full: bool,
) -> Vec<(String, CliError)> {
    let mut runner = Runner::new(env);
    runner.allow_mass_deactivation = allow_mass_deactivation;
    runner.full = full;
    let mut failures = Vec::new();
    for event in events {
        let started = crate::events::now();
        let result = match event.job() {
            Some(job) => runner.run(store, &job, kind, dry_run),
            None => Err(CliError::new(format!(
                "event `{}` has no source to sync from",
                event.name
            ))),
        };
        match result {
            Ok(summary) => print_summary(&event.name, &summary, dry_run),
            Err(error) => {
                tracing::error!("{}: {}", event.name, error.message);
                if !dry_run {
                    crate::notify::failure(
                        &env.config.notify,
                        &serde_json::json!({
                            "event": event.name,
                            "kind": kind.as_str(),
                            "started_at": started,
                            "status": "failed",
                            "error": error.message,
                        }),
                    );
                }
                failures.push((event.name.clone(), error));
            }
        }
    }
    failures
}

fn print_summary(event: &str, summary: &Summary, dry_run: bool) {
    let verb = if dry_run {
        "would change (dry run, nothing written)"
    } else {
        "synced"
    };
    crate::outln!("{event}: {verb}\n{summary}\n");
}

fn status(env: &Env, store: &Store) -> Result<(), CliError> {
    let schedule = Schedule::from_settings(&env.config.sync).map_err(CliError::new)?;
    let next = schedule.local(schedule.next_after(Timestamp::now()));
    let mut rows = Vec::new();
    for event in events::list(&store.conn)? {
        let last: Option<(String, String)> = store
            .conn
            .query_row(
                "SELECT started_at, status FROM sync_runs WHERE event_id = ?1 ORDER BY id DESC LIMIT 1",
                [event.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let (last_at, last_status) = last.unwrap_or_else(|| ("never".into(), String::new()));
        rows.push(vec![
            event.name,
            if event.sync_enabled { "on" } else { "off" }.into(),
            last_at,
            last_status,
            if event.sync_enabled {
                next.strftime("%Y-%m-%d %H:%M %Z").to_string()
            } else {
                "-".into()
            },
        ]);
    }
    crate::outln!(
        "{}",
        table(&["event", "sync", "last run", "result", "next run"], &rows)
    );
    Ok(())
}

fn history(store: &Store, event: Option<&str>, limit: u32) -> Result<(), CliError> {
    let event_id = match event {
        Some(name) => Some(require(store, name)?.id),
        None => None,
    };
    let mut statement = store.conn.prepare(
        "SELECT r.id, coalesce(e.name, '-'), r.kind, r.started_at, coalesce(r.finished_at, ''), r.status,
                coalesce(r.summary, ''), coalesce(r.error, '')
         FROM sync_runs r LEFT JOIN events e ON e.id = r.event_id
         WHERE ?1 IS NULL OR r.event_id = ?1 ORDER BY r.id DESC LIMIT ?2",
    )?;
    let rows: Vec<Vec<String>> = statement
        .query_map(params![event_id, limit], |r| {
            let summary: String = r.get(6)?;
            Ok(vec![
                r.get::<_, i64>(0)?.to_string(),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                counts_text(&summary),
                r.get(7)?,
            ])
        })?
        .collect::<Result<_, _>>()?;
    crate::outln!(
        "{}",
        table(
            &["run", "event", "kind", "started", "finished", "status", "changes", "error"],
            &rows
        )
    );
    Ok(())
}

fn counts_text(summary: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(summary) else {
        return String::new();
    };
    let mut totals = [0u64; 4];
    if let Some(entities) = value["entities"].as_object() {
        for counts in entities.values() {
            for (i, key) in ["inserted", "updated", "deactivated", "unchanged"]
                .iter()
                .enumerate()
            {
                totals[i] += counts[key].as_u64().unwrap_or(0);
            }
        }
    }
    format!(
        "+{} ~{} -{} ={}",
        totals[0], totals[1], totals[2], totals[3]
    )
}

fn switch(store: &Store, args: &SyncSwitchArgs, on: bool) -> Result<(), CliError> {
    let verb = if on { "start" } else { "stop" };
    let events: Vec<EventRow> = targets(store, &args.target, false)?
        .into_iter()
        .filter(|e| e.sync_enabled != on)
        .collect();
    if events.is_empty() {
        crate::outln!(
            "nothing to {verb}: sync is already {} for the selected events",
            if on { "on" } else { "off" }
        );
        return Ok(());
    }
    if args.target.all {
        let state = if on { "off" } else { "on" };
        crate::outln!("Events with sync {state}:");
        for event in &events {
            crate::outln!("  {}", event.name);
        }
        confirm(
            &format!(
                "{} sync for these {} event(s)?",
                if on { "Start" } else { "Stop" },
                events.len()
            ),
            args.yes,
        )?;
    }
    let tx = store.conn.unchecked_transaction()?;
    for event in &events {
        tx.execute(
            "UPDATE events SET sync_enabled = ?2 WHERE id = ?1",
            params![event.id, on],
        )?;
    }
    tx.commit()?;
    for event in &events {
        crate::outln!(
            "sync {} for `{}`",
            if on { "started" } else { "stopped" },
            event.name
        );
    }
    Ok(())
}
