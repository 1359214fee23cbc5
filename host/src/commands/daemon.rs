//! `roster daemon`: run every sync-enabled event at the configured local time, once a
//! night, catching up after downtime. Runs are sequential and take the database's writer
//! lock, so they never overlap each other or a manual import.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;

use crate::cli::DaemonArgs;
use crate::error::CliError;
use crate::events;
use crate::jobs::{Env, RunKind};
use crate::schedule::Schedule;
use crate::store::{Store, StoreError};

/// How often the daemon wakes to look at the clock: short enough to notice a changed
/// wall clock or a Ctrl-C promptly.
const TICK: Duration = Duration::from_secs(30);

pub fn run(env: &Env, args: &DaemonArgs) -> Result<(), CliError> {
    let schedule = Schedule::from_settings(&env.config.sync).map_err(CliError::new)?;
    let mut store = Store::open(&env.config.database)?;
    tracing::info!(
        "roster daemon: syncing at {} {} (next: {})",
        schedule.time,
        schedule.zone.iana_name().unwrap_or("local time"),
        schedule.local(schedule.next_after(Timestamp::now()))
    );
    // Owed from before this start (the machine was down at the slot): run now.
    let mut next = if schedule.is_due(Timestamp::now(), last_nightly(&store)?) {
        Timestamp::now()
    } else {
        schedule.next_after(Timestamp::now())
    };
    loop {
        let now = Timestamp::now();
        if now >= next {
            match nightly(env, &mut store) {
                Ok(()) => next = schedule.next_after(now),
                // Another import or sync holds the database: try again at the next tick.
                Err(NightlyError::Busy(message)) => tracing::warn!("{message}; retrying shortly"),
                Err(NightlyError::Other(error)) => return Err(error),
            }
        }
        if args.once || env.cancelled.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(
            TICK.min(
                next.duration_since(now)
                    .unsigned_abs()
                    .max(Duration::from_secs(1)),
            ),
        );
        if env.cancelled.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

fn last_nightly(store: &Store) -> Result<Option<Timestamp>, CliError> {
    let last: Option<String> = store.conn.query_row(
        "SELECT max(started_at) FROM sync_runs WHERE kind = 'nightly'",
        [],
        |r| r.get(0),
    )?;
    Ok(last.and_then(|s| s.parse().ok()))
}

enum NightlyError {
    Busy(String),
    Other(CliError),
}

fn nightly(env: &Env, store: &mut Store) -> Result<(), NightlyError> {
    let _writer = match store.lock_writer() {
        Ok(lock) => lock,
        Err(error @ StoreError::Busy { .. }) => return Err(NightlyError::Busy(error.to_string())),
        Err(error) => return Err(NightlyError::Other(error.into())),
    };
    let events: Vec<_> = events::list(&store.conn)
        .map_err(|e| NightlyError::Other(e.into()))?
        .into_iter()
        .filter(|e| e.sync_enabled)
        .collect();
    tracing::info!("nightly sync: {} event(s)", events.len());
    if events.is_empty() {
        // Recorded so that the night counts as done.
        store
            .conn
            .execute(
                "INSERT INTO sync_runs (kind, started_at, finished_at, status, summary) VALUES ('nightly', ?1, ?1, 'ok', '{\"events\":0}')",
                [events::now()],
            )
            .map_err(|e| NightlyError::Other(e.into()))?;
        return Ok(());
    }
    let failures = crate::commands::sync::sync_events(
        env,
        store,
        &events,
        RunKind::Nightly,
        false,
        false,
        false,
    );
    if !failures.is_empty() {
        tracing::error!(
            "nightly sync: {} of {} event(s) failed",
            failures.len(),
            events.len()
        );
    }
    Ok(())
}
