//! The import pipeline: pull records from a plugin, validate them, pass people through
//! the dedupe stage, and apply the difference to the roster in one transaction.
//!
//! **Architecture invariant:** every plugin's records take this one path; there is no
//! plugin-specific write code. An import either applies completely or not at all: any
//! error (from the plugin, from validation, from SQLite, or a cancel) rolls it back.

mod ahead;
mod alongside;
mod apply;
mod bulk;
pub mod checkpoint;
pub mod dedupe;
mod digest;
mod guard;
mod pending_ids;
mod scope;
mod statements;
pub mod summary;
mod unattached;
mod writeback;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use roster_core::record::{Entity, Kind, Record};
use roster_core::sdk::RecordSource;
use roster_core::PluginError;
use rusqlite::{Connection, TransactionBehavior};

use crate::config::{AccessDefaults, DedupePolicy, EventConfig};
use apply::Apply;
pub use dedupe::{Dedupe, DedupeStage};
pub use guard::DeactivationGuard;
pub use scope::Scope;
pub use summary::Summary;
#[cfg(target_os = "linux")]
pub use writeback::unwritten_pages;

/// What to import and where to attach it.
pub struct Job<'a> {
    pub source: &'a str,
    /// The event this import is for: created in the same transaction if new, and its
    /// classes attached.
    pub event: Option<&'a EventConfig>,
    pub scope: Scope,
    pub access: &'a AccessDefaults,
    /// Apply everything, then roll back: the summary shows what would happen.
    pub dry_run: bool,
    /// Refuse mass deactivations; `None` is the explicit override for a real rollover.
    pub guard: Option<&'a DeactivationGuard>,
    /// Keep the run's checkpoint under this context (see `checkpoint.rs`); `None`: the
    /// job keeps none, and leaves any kept one as it is.
    pub checkpoint_context: Option<&'a str>,
    /// The plugin was opened with a checkpoint, so its run may continue from it.
    pub gave_checkpoint: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("source `{source_name}`: {error}")]
    Plugin {
        source_name: String,
        error: PluginError,
    },
    #[error("source `{source_name}`: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("source `{source_name}`: refusing to deactivate {what}; nothing was changed")]
    MassDeactivation { source_name: String, what: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("memory for the last run's checkpoint: {0}; nothing was written")]
    CheckpointMemory(std::io::Error),
    #[error("a temporary file in {}: {error}; nothing was written", std::env::temp_dir().display())]
    TempFile { error: std::io::Error },
    #[error("the import would leave {0}; nothing was written")]
    BrokenReference(bulk::BrokenReference),
    #[error("import cancelled; nothing was written")]
    Cancelled,
    #[error("source `{source_name}`: the thread that looks people up ahead of the job stopped; nothing was written")]
    LookAhead { source_name: String },
    #[error("source `{source_name}`: {} dedupe conflict(s) under policy `{policy}`; nothing was written", findings.len())]
    Conflicts {
        source_name: String,
        policy: &'static str,
        findings: Vec<dedupe::Conflict>,
    },
}

impl From<checkpoint::LoadError> for ImportError {
    fn from(error: checkpoint::LoadError) -> Self {
        match error {
            checkpoint::LoadError::Sql(error) => ImportError::Sql(error),
            checkpoint::LoadError::Memory(error) => ImportError::CheckpointMemory(error),
        }
    }
}

impl ImportError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ImportError::Plugin { error, .. } => error.hint.clone(),
            ImportError::Conflicts { policy: "fail", findings, .. } if findings.iter().all(|f| f.is_link()) => Some(
                "these are the same people from another source: import with --dedupe link to attach them, or --dedupe report to review".into(),
            ),
            ImportError::Conflicts { .. } => Some("fix the conflicts in the source (the report says how), then import again".into()),
            ImportError::MassDeactivation { .. } => Some(
                "if the source really lost them (a new school year), run again with --allow-mass-deactivation; --dry-run shows the changes first".into(),
            ),
            ImportError::Sql(error) => crate::store::sqlite_hint(error),
            ImportError::BrokenReference(_) => Some(
                "this is a fault in roster, not in the source: please report it with the command that ran".into(),
            ),
            ImportError::TempFile { .. } => Some(
                "a first import sorts its identifiers in temporary files, about 30 bytes each: free space there or set TMPDIR to a folder with room".into(),
            ),
            _ => None,
        }
    }
}

/// Something to tell the progress display after each batch.
pub trait Progress {
    fn records(&self, done: u64);
    fn is_cancelled(&self) -> bool;
}

/// Batches the plugin may read ahead of the one being applied. A complete import's
/// plugin reads faster than the host writes: a few batches keep it busy, and more would
/// only hold records in memory.
const READ_AHEAD: usize = 2;
/// Records (not batches: a plugin chooses their size) a continuing run's plugin may read
/// ahead. It still reads every row, with long stretches that send nothing (a file's
/// unchanged rows, the Parent file's index); far enough ahead, it gets through them
/// while the host is still writing what came before. Bounded all the same, for a night
/// when much changed: nyc's 1% re-sync sends 141,773 records in all.
const CONTINUING_RECORDS_AHEAD: usize = 150_000;

/// What was read ahead and not yet applied, and how much may be.
#[derive(Default)]
struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
}

#[derive(Default)]
struct WindowState {
    batches: usize,
    records: usize,
    max_batches: usize,
    max_records: usize,
    /// The job stopped reading: the plugin's thread ends instead of waiting for room.
    closed: bool,
    /// The plugin has sent its last batch (or failed): its thread is done.
    source_done: bool,
}

impl Window {
    fn new(max_batches: usize) -> Self {
        let window = Window::default();
        let mut state = window.state.lock().unwrap();
        (state.max_batches, state.max_records) = (max_batches, usize::MAX);
        drop(state);
        window
    }

    /// Waits until one more batch may be read (with `max_batches` waiting, one more is
    /// being read); `false` once the job stopped reading.
    fn reserve(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        while !state.closed
            && (state.batches > state.max_batches || state.records >= state.max_records)
        {
            state = self.changed.wait(state).unwrap();
        }
        state.batches += 1;
        !state.closed
    }

    fn update(&self, change: impl FnOnce(&mut WindowState)) {
        change(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }
}

fn records_in(batch: &NextBatch) -> usize {
    batch
        .as_ref()
        .map_or(0, |b| b.as_ref().map_or(0, |b| b.records.len()))
}

/// A batch as the job applies it: the plugin's records, and the fingerprint of each
/// school, term, class and person among them (0 for the rest), made on the reading
/// thread. A fingerprint encodes its record again, and at nyc that was 2% of the job's
/// thread, the one an import waits on.
struct Batch {
    records: Vec<Record>,
    fingerprints: Vec<i64>,
    /// In a continuing run, what the roster held for the people the records name, by
    /// record, in record order (`ahead.rs`); empty otherwise.
    ahead: Vec<ahead::Ahead>,
}

impl Batch {
    fn of(records: Vec<Record>) -> Batch {
        let fingerprints = records.iter().map(apply::fingerprint_of).collect();
        Batch {
            records,
            fingerprints,
            ahead: Vec::new(),
        }
    }
}

/// The job's end of the channel: taking a batch makes room for another, and dropping it
/// lets the plugin's thread go.
struct Batches<'w> {
    /// From the reading thread, or from the thread that looks people up ahead.
    receiver: std::cell::RefCell<std::sync::mpsc::Receiver<NextBatch>>,
    /// Batches the job is done with, back to the reading thread to be freed.
    spent: std::sync::mpsc::Sender<Batch>,
    window: &'w Window,
}

impl Batches<'_> {
    fn next(&self) -> NextBatch {
        let batch = self.receiver.borrow().recv().unwrap_or(Ok(None));
        let records = records_in(&batch);
        self.window.update(|state| {
            state.batches = state.batches.saturating_sub(1);
            state.records = state.records.saturating_sub(records);
        });
        batch
    }

    fn done_with(&self, batch: Batch) {
        // Once the reading thread has ended, the batch is freed here.
        let _ = self.spent.send(batch);
    }

    /// Whether the plugin has sent its last batch; the job may still have many to apply.
    fn source_done(&self) -> bool {
        self.window.state.lock().unwrap().source_done
    }

    /// From now on, each batch passes through a thread that looks up the people its
    /// records name on `conn`, for `source` (`ahead.rs`).
    fn look_people_up_ahead(&self, conn: Connection, source: &str) -> std::thread::JoinHandle<()> {
        let (sender, receiver) = std::sync::mpsc::channel::<NextBatch>();
        let upstream = self.receiver.replace(receiver);
        ahead::start(conn, source.to_string(), upstream, sender)
    }

    /// A continuing run: read further ahead (see [`CONTINUING_RECORDS_AHEAD`]).
    fn read_further(&self) {
        self.window.update(|state| {
            (state.max_batches, state.max_records) = (usize::MAX, CONTINUING_RECORDS_AHEAD)
        })
    }
}

impl Drop for Batches<'_> {
    fn drop(&mut self) {
        self.window.update(|state| state.closed = true);
    }
}

/// The page cache (KiB) every job gets at least (SQLite's default is 2 MiB), from its
/// first record: the pages a run writes stay in memory longer before they spill to the
/// WAL, and fewer are read again. SQLite takes the memory only as it reads pages, so a
/// night that changes little never holds much of it. 128 MiB, not 256: at nyc the larger
/// cache made the file import 3-5% faster and cost 160 MiB of a Clever import's peak
/// (the plugin's maps are in memory at the same time), and a re-sync was no faster. A
/// run into a roster with data used to start with 32 MiB and get 128 after 100,000
/// writes; the nyc re-sync then wrote 1.79 GB instead of 1.49 (docs/performance.md,
/// item 54).
const JOB_CACHE_KIB: i64 = 128 * 1024;

/// What a job sets on its connection for its run, and puts back after it (the journal
/// aside: `run_job` never needs it).
struct Settings {
    cache: PageCache,
    foreign_keys: bulk::ForeignKeys,
}

/// The connection's page cache during a job: raised for the job (never lowered below
/// what the connection had), restored after it.
struct PageCache {
    previous: i64,
    previous_kib: i64,
    current_kib: i64,
}

impl PageCache {
    fn of(conn: &Connection) -> rusqlite::Result<PageCache> {
        let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        // Negative: KiB; positive: pages (of 4 KiB, the schema's page size).
        let previous_kib = if previous < 0 {
            -previous
        } else {
            previous * 4
        };
        Ok(PageCache {
            previous,
            previous_kib,
            current_kib: previous_kib,
        })
    }

    /// At least `kib` from now on.
    fn raise_to(&mut self, conn: &Connection, kib: i64) -> rusqlite::Result<()> {
        if kib > self.current_kib {
            conn.pragma_update(None, "cache_size", -kib)?;
            self.current_kib = kib;
        }
        Ok(())
    }

    fn restore(&self, conn: &Connection) -> rusqlite::Result<()> {
        if self.current_kib != self.previous_kib {
            conn.pragma_update(None, "cache_size", self.previous)?;
        }
        Ok(())
    }
}

/// A continuing run's hold on the memory the host's allocator frees: longer than an
/// import's, until the job ends (`roster_core::allocator`); while any such job runs in
/// the process. The plugin holds its own.
struct HeldFreedMemory;

/// How many continuing jobs hold it.
static HOLDING: Mutex<usize> = Mutex::new(0);

impl HeldFreedMemory {
    fn start() -> HeldFreedMemory {
        let mut holding = HOLDING.lock().unwrap_or_else(|e| e.into_inner());
        if *holding == 0 {
            roster_core::allocator::hold_freed_memory_for_a_continuing_run();
        }
        *holding += 1;
        HeldFreedMemory
    }
}

impl Drop for HeldFreedMemory {
    fn drop(&mut self) {
        let mut holding = HOLDING.lock().unwrap_or_else(|e| e.into_inner());
        *holding -= 1;
        if *holding == 0 {
            roster_core::allocator::return_freed_memory_soon();
        }
    }
}

type NextBatch = Result<Option<Batch>, PluginError>;

/// Run one import job to completion, or not at all.
///
/// The plugin is read on a thread of its own, up to [`READ_AHEAD`] batches ahead, so
/// reading and parsing overlap with writing (the records are applied in the order the
/// plugin sends them, exactly as if read here).
pub fn run(
    conn: &mut Connection,
    records: &mut dyn RecordSource,
    job: Job<'_>,
    dedupe: &mut dyn DedupeStage,
    progress: &dyn Progress,
) -> Result<Summary, ImportError> {
    let mut settings = Settings {
        cache: PageCache::of(conn)?,
        foreign_keys: bulk::ForeignKeys::begin(conn)?,
    };
    let journal = bulk::RollbackJournal::begin(conn)?;
    let window = Window::new(READ_AHEAD);
    let result = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel::<NextBatch>();
        let (spent_sender, spent) = std::sync::mpsc::channel::<Batch>();
        let window = &window;
        scope.spawn(move || {
            // The job stopped (an error or a cancel) once the window closes or the
            // channel does: the plugin is read no further.
            while window.reserve() {
                // Batches the job is done with are freed here, where they were decoded:
                // a free from another thread is the allocator's slow path, and the
                // job's thread is the one an import waits on.
                spent.try_iter().for_each(drop);
                let next = records.next_batch().map(|b| b.map(Batch::of));
                let read = records_in(&next);
                let last = !matches!(next, Ok(Some(_)));
                window.update(|state| {
                    state.records += read;
                    state.source_done = last;
                });
                if sender.send(next).is_err() || last {
                    break;
                }
            }
        });
        let batches = Batches {
            receiver: std::cell::RefCell::new(receiver),
            spent: spent_sender,
            window,
        };
        run_job(conn, &batches, job, dedupe, progress, &mut settings)
    });
    // The memory goes back once the job is over; a failure here changes no data.
    let _ = settings.cache.restore(conn);
    journal.end(conn);
    let restored = settings.foreign_keys.end(conn);
    result.and_then(|summary| restored.map(|()| summary).map_err(ImportError::Sql))
}

fn run_job(
    conn: &mut Connection,
    batches: &Batches<'_>,
    job: Job<'_>,
    dedupe: &mut dyn DedupeStage,
    progress: &dyn Progress,
    settings: &mut Settings,
) -> Result<Summary, ImportError> {
    let source_name = job.source.to_string();
    let invalid = |message: String| ImportError::Invalid {
        source_name: source_name.clone(),
        message,
    };
    let apply_error = |error: apply::ApplyError| match error {
        apply::ApplyError::Invalid(message) => invalid(message),
        apply::ApplyError::Sql(error) => ImportError::Sql(error),
        apply::ApplyError::TempFile(error) => ImportError::TempFile { error },
    };
    let writeback =
        writeback::EarlyWriteback::start(conn.path().filter(|p| !p.is_empty()).map(Path::new));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deferred = bulk::Deferred::begin(&tx)?;
    if deferred.is_active() {
        tracing::debug!("empty roster: lookup indexes are built once, after the rows");
    }
    settings.cache.raise_to(&tx, JOB_CACHE_KIB)?;
    let started = std::time::Instant::now();
    // Read from now on, while the plugin starts: what its first record asks for.
    let supplied = apply::SuppliedBefore::start(&tx, job.source, deferred.is_active())?;
    let read = |batches: &Batches| match batches.next() {
        Ok(batch) => Ok(batch),
        Err(error) if error.kind == roster_core::ErrorKind::Cancelled => {
            Err(ImportError::Cancelled)
        }
        Err(error) => Err(ImportError::Plugin {
            source_name: source_name.clone(),
            error,
        }),
    };
    // A continuing run says so in its first record, before anything is loaded for it.
    let mut first = Some(read(batches)?);
    let continuing = matches!(
        first.as_ref().and_then(|batch| batch.as_ref()?.records.first()),
        Some(roster_core::record::Record { kind: Some(Kind::Snapshot(s)) }) if s.continues
    );
    if continuing && !job.gave_checkpoint {
        return Err(invalid(
            "the source says its run continues from a checkpoint, but it was given none".into(),
        ));
    }
    if continuing {
        batches.read_further();
    }
    let _held = continuing.then(HeldFreedMemory::start);
    // Only where a second connection sees the roster as last committed (a file, in WAL),
    // and opened before the batches are handed over: without it, they come as before.
    let people_ahead = match continuing && looks_ahead() {
        true => match alongside::second_connection(&tx) {
            Ok(conn) => conn.map(|conn| batches.look_people_up_ahead(conn, job.source)),
            Err(error) => {
                tracing::debug!("people not looked up ahead: {error}");
                None
            }
        },
        false => None,
    };
    let mut apply = Apply::new(
        &tx,
        job.source,
        job.access,
        job.scope,
        deferred.is_active(),
        continuing,
        supplied,
    )?;
    tracing::debug!(
        "source `{}`: what it supplied before loaded in {:.2} s{}",
        job.source,
        started.elapsed().as_secs_f64(),
        if continuing {
            " (continuing from the last run)"
        } else {
            ""
        }
    );
    if continuing {
        dedupe.continuing();
        if let Some(event) = job.event {
            apply.read_unattached_alongside(&event.name)?;
        }
    }
    let mut plugin_done = false;
    let mut complete: HashSet<Entity> = HashSet::new();
    let mut sent_checkpoint = false;
    let mut done = 0u64;
    // Records with roster data in them (a bare Snapshot is an empty feed).
    let mut payload = 0u64;

    loop {
        if progress.is_cancelled() {
            return Err(ImportError::Cancelled);
        }
        let next = match first.take() {
            Some(batch) => batch,
            None => read(batches)?,
        };
        let Some(mut batch) = next else { break };
        let mut ahead = std::mem::take(&mut batch.ahead).into_iter().peekable();
        for (index, (record, &fingerprint)) in batch
            .records
            .iter_mut()
            .zip(&batch.fingerprints)
            .enumerate()
        {
            // Taken just before its record, when the job would otherwise ask for it.
            while let Some(found) = ahead.next_if(|a| a.record == index) {
                apply.offer(found.found);
            }
            let is_snapshot = matches!(record.kind, Some(Kind::Snapshot(_) | Kind::Checkpoint(_)));
            // Each record is applied where it lies; what `apply` keeps is taken out of it.
            // The batch goes to `done_with` afterwards, to be freed where it was decoded.
            let result = match &mut record.kind {
                None => {
                    apply.summary.unknown_records += 1;
                    Ok(())
                }
                Some(Kind::School(school)) => apply.school(std::mem::take(school), fingerprint),
                Some(Kind::Term(term)) => apply.term(std::mem::take(term), fingerprint),
                Some(Kind::Class(class)) => apply.class(std::mem::take(class), fingerprint),
                Some(Kind::Person(person)) => apply.person(person, fingerprint, dedupe),
                Some(Kind::Enrollment(link)) => apply.enrollment(link),
                Some(Kind::ClassTeacher(link)) => apply.class_teacher(link),
                Some(Kind::Relationship(link)) => apply.relationship(link),
                Some(Kind::Removal(removal)) => apply.removal(std::mem::take(removal)),
                Some(Kind::LinksReplaced(replaced)) => {
                    apply.links_replaced(std::mem::take(replaced))
                }
                // Written as it comes (a file source's runs to tens of MiB, not to be held
                // through the end of a large import); the context is set at the end.
                Some(Kind::Checkpoint(kept)) if kept.extends && !job.gave_checkpoint => {
                    Err(apply::ApplyError::Invalid(
                        "the source extends a checkpoint, but it was given none".into(),
                    ))
                }
                Some(Kind::Checkpoint(kept)) => match job.checkpoint_context {
                    Some(context) => {
                        sent_checkpoint = true;
                        checkpoint::keep(&tx, job.source, context, Some(&kept.state), kept.extends)
                            .map_err(apply::ApplyError::Sql)
                    }
                    None => Ok(()),
                },
                Some(Kind::Snapshot(snapshot)) if continuing => {
                    if done > 0 || !snapshot.continues {
                        Err(apply::ApplyError::Invalid(
                            "a continuing run sent a second Snapshot".into(),
                        ))
                    } else {
                        Ok(())
                    }
                }
                Some(Kind::Snapshot(snapshot)) => {
                    complete.extend(
                        snapshot
                            .complete
                            .iter()
                            .filter_map(|e| Entity::try_from(*e).ok()),
                    );
                    Ok(())
                }
            };
            if !is_snapshot {
                payload += 1;
            }
            result.map_err(apply_error)?;
            done += 1;
        }
        batches.done_with(batch);
        progress.records(done);
        if !plugin_done && batches.source_done() {
            plugin_done = true;
            apply.plugin_done();
        }
    }

    // Its connection is closed before anything is committed, and a thread that stopped
    // early may have ended the batches early.
    if let Some(thread) = people_ahead {
        thread.join().map_err(|_| ImportError::LookAhead {
            source_name: source_name.clone(),
        })?;
    }
    if continuing {
        dedupe.check_unsent(&tx, job.source, &apply.unsent_check()?)?;
    }
    dedupe.people_done();
    let writing_ids = std::time::Instant::now();
    if apply.write_pending_ids().map_err(apply_error)? {
        let seconds = writing_ids.elapsed().as_secs_f64();
        tracing::debug!("identifiers written in key order: {seconds:.2} s");
    }
    let unmatched = apply.scope.unmatched();
    if !unmatched.is_empty() {
        return Err(invalid(format!(
            "the event selects {} that the source does not have (schools: {}; terms: {})",
            unmatched
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            list_or_none(&apply.scope.seen_schools),
            list_or_none(&apply.scope.seen_terms),
        )));
    }
    let mut before = apply.active_before()?;
    // An empty feed is an outage, not a school where everyone left: no override for it.
    // A continuing run with nothing in it is a day when nothing changed.
    let had: u64 = before.iter().map(|(_, n)| n).sum();
    if payload == 0 && had > 0 && !continuing {
        return Err(ImportError::MassDeactivation {
            source_name,
            what: format!("everything ({had} records): the source returned nothing at all"),
        });
    }
    tracing::debug!(
        "source `{}`: {done} records applied after {:.2} s",
        job.source,
        started.elapsed().as_secs_f64()
    );
    if continuing {
        apply.finish_continuing()?;
    } else {
        apply.deactivate_missing(&complete)?;
    }
    apply.settle_contested().map_err(apply_error)?;
    if let Some(guard) = job.guard {
        let records = (!continuing).then_some(payload);
        let mut refused = guard.check(&before, &apply.summary, records);
        if refused.is_some() && continuing {
            // Measured against what it named, a continuing run's base was too small.
            for (entity, base) in &mut before {
                let gone = apply.summary.get(*entity).deactivated;
                if gone > 0 {
                    *base = apply.active_in_db(*entity, guard.base_enough(gone))?;
                }
            }
            refused = guard.check(&before, &apply.summary, records);
        }
        if let Some(what) = refused {
            return Err(ImportError::MassDeactivation { source_name, what });
        }
    }
    if let (Some(context), false) = (job.checkpoint_context, sent_checkpoint) {
        checkpoint::keep(&tx, job.source, context, None, false)?;
    }
    if let Some(event) = job.event {
        let (event_id, _) = crate::events::ensure(&tx, event)?;
        apply.attach_classes(event_id, continuing)?;
    }
    let mut summary = apply.finish();
    summary.continued = continuing;
    summary.findings = dedupe.findings().to_vec();
    let policy = dedupe.policy();
    let blocking = match policy {
        DedupePolicy::Report => false,
        DedupePolicy::Fail => !summary.findings.is_empty(),
        DedupePolicy::Link => summary.findings.iter().any(|f| !f.is_link()),
    };
    if blocking {
        tx.rollback()?;
        return Err(ImportError::Conflicts {
            source_name,
            policy: match policy {
                DedupePolicy::Fail => "fail",
                _ => "link",
            },
            findings: summary.findings,
        });
    }
    if job.dry_run || policy == DedupePolicy::Report {
        tx.rollback()?;
    } else {
        writeback.include_database();
        deferred.finish(&tx)?;
        settings
            .foreign_keys
            .prove(&tx)
            .map_err(|error| match error {
                bulk::ProveError::Broken(broken) => ImportError::BrokenReference(broken),
                bulk::ProveError::Sql(error) => ImportError::Sql(error),
            })?;
        tx.commit()?;
        tracing::debug!(
            "source `{}`: committed after {:.2} s",
            job.source,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(summary)
}

/// Whether a continuing run looks people up ahead where it can: always, but for the
/// tests that compare a run doing so with the same run asking for each itself.
fn looks_ahead() -> bool {
    #[cfg(test)]
    if !tests::LOOK_AHEAD.with(std::cell::Cell::get) {
        return false;
    }
    true
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::record::{Identifier, Person, Record, Role};

    thread_local! {
        /// See `looks_ahead`.
        pub(super) static LOOK_AHEAD: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    }

    struct Feed(Option<Vec<Record>>);

    /// Each record a batch of its own, as a continuing plugin's batches come in turn.
    struct OneByOne(std::collections::VecDeque<Record>);

    impl RecordSource for OneByOne {
        fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
            Ok(self.0.pop_front().map(|record| vec![record]))
        }
    }

    impl RecordSource for Feed {
        fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
            Ok(self.0.take())
        }
    }

    struct Quiet;

    impl Progress for Quiet {
        fn records(&self, _: u64) {}
        fn is_cancelled(&self) -> bool {
            false
        }
    }

    /// A teacher with an email, and a Clever id that links can name them by.
    fn teacher(id: &str, email: &str) -> Record {
        Person {
            source_id: id.into(),
            role: Role::Teacher as i32,
            first_name: id.into(),
            last_name: "Teacher".into(),
            email: Some(email.into()),
            identifiers: vec![Identifier {
                kind: "clever_id".into(),
                value: format!("clever-{id}"),
            }],
            ..Default::default()
        }
        .into()
    }

    fn person(id: &str, role: Role, sis_id: &str) -> Record {
        Person {
            source_id: id.into(),
            role: role as i32,
            first_name: id.into(),
            last_name: "Test".into(),
            identifiers: vec![Identifier {
                kind: "sis_id".into(),
                value: sis_id.into(),
            }],
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn a_batch_carries_the_fingerprint_of_each_record_that_has_one_where_it_lies() {
        let link: Record = roster_core::record::Enrollment {
            class_id: "c1".into(),
            student_id: "p1".into(),
            ..Default::default()
        }
        .into();
        let school: Record = roster_core::record::School {
            source_id: "sch".into(),
            name: "School".into(),
            ..Default::default()
        }
        .into();
        let records = vec![
            link.clone(),
            person("p1", Role::Student, "S1"),
            link,
            school,
            person("p2", Role::Student, "S2"),
        ];
        let fingerprints = Batch::of(records.clone()).fingerprints;
        assert_eq!(fingerprints.len(), records.len());
        assert_eq!(
            (fingerprints[0], fingerprints[2]),
            (0, 0),
            "links have none"
        );
        for i in [1, 3, 4] {
            assert_ne!(fingerprints[i], 0);
        }
        // Each follows its record wherever the record lies in the batch.
        let reversed: Vec<Record> = records.iter().rev().cloned().collect();
        let mut again = Batch::of(reversed).fingerprints;
        again.reverse();
        assert_eq!(again, fingerprints);
        assert_ne!(
            fingerprints[1], fingerprints[4],
            "two people, two fingerprints"
        );
    }

    /// A job of source `sis` over `records`; with `checkpoint`, as `roster import` runs
    /// one (the guard on, checkpoints kept under one context, `gave`: one was handed in).
    fn job(
        conn: &mut Connection,
        records: Vec<Record>,
        checkpoint: Option<bool>,
    ) -> Result<Summary, ImportError> {
        job_for(conn, records, checkpoint, None)
    }

    /// [`job`], attaching the source's classes to `event`.
    fn job_for(
        conn: &mut Connection,
        records: Vec<Record>,
        checkpoint: Option<bool>,
        event: Option<&EventConfig>,
    ) -> Result<Summary, ImportError> {
        let access = AccessDefaults::default();
        let guard = DeactivationGuard::default();
        let job = Job {
            source: "sis",
            event,
            scope: Scope::new(None, None),
            access: &access,
            dry_run: false,
            guard: checkpoint.map(|_| &guard),
            checkpoint_context: checkpoint.map(|_| "context"),
            gave_checkpoint: checkpoint == Some(true),
        };
        let mut dedupe = Dedupe::new(DedupePolicy::Fail);
        run(conn, &mut Feed(Some(records)), job, &mut dedupe, &Quiet)
    }

    fn import(conn: &mut Connection, records: Vec<Record>) -> Result<Summary, ImportError> {
        job(conn, records, None)
    }

    /// A full run of `source` that links its people to other sources' contacts.
    fn import_linking(
        conn: &mut Connection,
        source: &str,
        records: Vec<Record>,
    ) -> Result<Summary, ImportError> {
        let access = AccessDefaults::default();
        let job = Job {
            source,
            event: None,
            scope: Scope::new(None, None),
            access: &access,
            dry_run: false,
            guard: None,
            checkpoint_context: None,
            gave_checkpoint: false,
        };
        let mut dedupe = Dedupe::new(DedupePolicy::Link);
        run(conn, &mut Feed(Some(records)), job, &mut dedupe, &Quiet)
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn sync(
        conn: &mut Connection,
        records: Vec<Record>,
        gave_checkpoint: bool,
    ) -> Result<Summary, ImportError> {
        job(conn, records, Some(gave_checkpoint))
    }

    /// Every row of the roster's tables, for "nothing changed".
    fn state(conn: &Connection) -> Vec<String> {
        let mut rows = Vec::new();
        for table in [
            "contacts",
            "contact_sources",
            "contact_ids",
            "classes",
            "enrollments",
            "class_teachers",
            "source_checkpoints",
        ] {
            let mut statement = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns = statement.column_count();
            let mut query = statement.query([]).unwrap();
            while let Some(row) = query.next().unwrap() {
                let values: Vec<String> = (0..columns)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                rows.push(format!("{table}|{}", values.join("|")));
            }
        }
        rows.sort();
        rows
    }

    fn kept(conn: &Connection) -> Option<Vec<u8>> {
        checkpoint::load(conn, "sis", "context")
            .unwrap()
            .map(|bytes| bytes.to_vec())
    }

    fn class(id: &str) -> Record {
        roster_core::record::Class {
            source_id: id.into(),
            name: id.into(),
            ..Default::default()
        }
        .into()
    }

    fn enrollment(class_id: &str, student_id: &str) -> Record {
        roster_core::record::Enrollment {
            class_id: class_id.into(),
            student_id: student_id.into(),
            student_id_kind: None,
        }
        .into()
    }

    fn checkpoint_record(state: &[u8]) -> Record {
        roster_core::record::Checkpoint {
            state: state.to_vec(),
            extends: false,
        }
        .into()
    }

    fn replaced(entity: Entity, owner: &str) -> Record {
        roster_core::record::LinksReplaced {
            entity: entity as i32,
            owner_id: owner.into(),
        }
        .into()
    }

    fn complete_run() -> Vec<Record> {
        vec![
            person("S1", Role::Student, "1"),
            person("S2", Role::Student, "2"),
            person("S3", Role::Student, "3"),
            class("C1"),
            class("C2"),
            enrollment("C1", "S1"),
            enrollment("C1", "S2"),
            enrollment("C2", "S3"),
            checkpoint_record(b"after the first run"),
            roster_core::record::Snapshot::of(&[
                Entity::Students,
                Entity::Classes,
                Entity::Enrollments,
            ])
            .into(),
        ]
    }

    fn store() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
        (dir, store)
    }

    /// The one text column of `sql`'s rows, with `?1` bound to `param`.
    fn texts(conn: &Connection, sql: &str, param: &str) -> Vec<String> {
        let mut statement = conn.prepare(sql).unwrap();
        let rows = statement.query_map([param], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    fn enrolled(conn: &Connection, class: &str) -> Vec<String> {
        texts(
            conn,
            "SELECT s.source_id FROM enrollments e JOIN classes c ON c.id = e.class_id
             JOIN contact_sources s ON s.contact_id = e.contact_id
             WHERE c.source_id = ?1 AND e.active = 1 ORDER BY 1",
            class,
        )
    }

    /// A person with a contact id of pickAtime's one namespace (`kind`: StudentID, ...).
    fn with_id(id: &str, role: Role, kind: &str, last_name: &str) -> Person {
        Person {
            source_id: id.into(),
            role: role as i32,
            first_name: id.into(),
            last_name: last_name.into(),
            identifiers: vec![Identifier {
                kind: kind.into(),
                value: id.into(),
            }],
            ..Default::default()
        }
    }

    fn continuing(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
        let mut run = vec![roster_core::record::Snapshot::continuing().into()];
        run.extend(records);
        run.push(checkpoint_record(b"later"));
        run
    }

    /// The cross-role conflicts that refuse a continuing run sending `person`; the
    /// roster is as it was.
    fn refused_for_cross_role(conn: &mut Connection, person: Person) -> Vec<String> {
        let before = state(conn);
        let result = sync(conn, continuing([person.into()]), true);
        assert_eq!(state(conn), before, "a refused run writes nothing");
        match result {
            Err(ImportError::Conflicts { findings, .. }) => findings
                .iter()
                .filter(|f| f.rule == dedupe::Rule::CrossRoleId)
                .map(|f| f.reason.clone())
                .collect(),
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    /// A changed person is checked against the roster's other roles for what is new in
    /// them: a new id, or a return after being removed (what a rename brings is not).
    #[test]
    fn a_changed_person_is_checked_against_other_roles_for_a_new_id_or_a_return() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let mut first = complete_run();
        first.insert(0, with_id("T1", Role::Teacher, "TeacherID", "Ames").into());
        first.insert(0, with_id("A7", Role::Student, "StudentID", "Baker").into());
        sync(conn, first, false).unwrap();

        // A rename: updated, nothing found.
        let renamed = with_id("A7", Role::Student, "StudentID", "Baker-Cole");
        let summary = sync(conn, continuing([renamed.clone().into()]), true).unwrap();
        assert_eq!(summary.get(summary::EntityName::Students).updated, 1);

        // The same student with the teacher's TeacherID as another id of theirs.
        let mut taking = renamed.clone();
        taking.last_name = "Cole".into();
        taking.identifiers.push(Identifier {
            kind: "ID".into(),
            value: "T1".into(),
        });
        assert_eq!(
            refused_for_cross_role(conn, taking),
            ["ID `T1` is already TeacherID `T1` of another contact"]
        );

        // Removed, then a teacher with the student's id arrives (no active holder then),
        // then the student comes back with the ids it always had: the return is checked.
        let removal = roster_core::record::Removal {
            entity: Entity::Students as i32,
            source_id: "A7".into(),
            ..Default::default()
        };
        sync(conn, continuing([removal.into()]), true).unwrap();
        let mut teacher = with_id("A7-T", Role::Teacher, "TeacherID", "Dunn");
        teacher.identifiers[0].value = "A7".into();
        sync(conn, continuing([teacher.into()]), true).unwrap();
        assert_eq!(
            refused_for_cross_role(conn, renamed),
            ["StudentID `A7` is already TeacherID `A7` of another contact"]
        );
    }

    /// Another source's class `K{i}` with the `sis` students `students` in it, as a
    /// second source linked to the same contacts leaves it (migration 8: an enrollment
    /// is its class's source's).
    fn other_sources_class(conn: &Connection, i: usize, students: &[&str]) {
        let class = format!("K{i}");
        conn.execute(
            "INSERT INTO classes (source, source_id, name, fingerprint) VALUES ('other', ?1, ?1, 0)",
            [&class],
        )
        .unwrap();
        for student in students {
            conn.execute(
                "INSERT INTO enrollments (class_id, contact_id)
                 SELECT c.id, s.contact_id FROM classes c, contact_sources s
                 WHERE c.source = 'other' AND c.source_id = ?1 AND s.source = 'sis' AND s.source_id = ?2",
                [&class, &student.to_string()],
            )
            .unwrap();
        }
    }

    /// A continuing run's removals deactivate the links of its own source's classes: a
    /// removed student stays enrolled in another source's class.
    /// Where each person's fingerprint is kept: `(source:source_id, the contact_sources
    /// row's, the contact's)`.
    fn fingerprints(conn: &Connection) -> Vec<(String, i64, Option<i64>)> {
        let mut statement = conn
            .prepare(
                "SELECT cs.source || ':' || cs.source_id, cs.fingerprint, c.fingerprint
                 FROM contact_sources cs JOIN contacts c ON c.id = cs.contact_id ORDER BY 1",
            )
            .unwrap();
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_contact_one_source_supplies_carries_its_fingerprint_and_a_linked_one_keeps_one_per_source()
    {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        // `first` is the same across sources: the link is by sis_id and name.
        let student = |id: &str, first: &str, sis_id: &str, last: &str| -> Record {
            Person {
                source_id: id.into(),
                role: Role::Student as i32,
                first_name: first.into(),
                last_name: last.into(),
                identifiers: vec![Identifier {
                    kind: "sis_id".into(),
                    value: sis_id.into(),
                }],
                ..Default::default()
            }
            .into()
        };
        let renamed = |id: &str, sis_id: &str, last: &str| student(id, id, sis_id, last);
        let files = |s1_last: &str, s2_last: &str| {
            vec![renamed("S1", "1", s1_last), renamed("S2", "2", s2_last)]
        };
        import(conn, files("Test", "Test")).unwrap();
        let first = fingerprints(conn);
        assert_eq!(first.len(), 2);
        for (who, row, contact) in &first {
            assert_eq!(*row, 0, "{who}: the row defers to its contact");
            assert!(contact.is_some_and(|fp| fp != 0), "{who}: {contact:?}");
        }

        // Unchanged: nothing is written.
        let before = state(conn);
        let summary = import(conn, files("Test", "Test")).unwrap();
        assert_eq!(summary.total().unchanged, 2);
        assert_eq!(state(conn), before);

        // S1 renamed: its contact's fingerprint follows; its row is not written.
        let summary = import(conn, files("Other", "Test")).unwrap();
        assert_eq!((summary.total().updated, summary.total().unchanged), (1, 1));
        let renamed_once = fingerprints(conn);
        assert_eq!(renamed_once[0].1, 0);
        assert_ne!(renamed_once[0].2, first[0].2);
        assert_eq!(renamed_once[1], first[1]);

        // S1 gone, then back as it was: deactivated, and active again in both tables.
        let without_s1 = vec![
            renamed("S2", "2", "Test"),
            roster_core::record::Snapshot::of(&[Entity::Students]).into(),
        ];
        import(conn, without_s1).unwrap();
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM contact_sources WHERE active = 0"
            ),
            1
        );
        let summary = import(conn, files("Other", "Test")).unwrap();
        assert_eq!((summary.total().updated, summary.total().unchanged), (1, 1));
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM contact_sources WHERE active = 0"
            ),
            0
        );
        assert_eq!(
            count(conn, "SELECT count(*) FROM contacts WHERE active = 0"),
            0
        );
        assert_eq!(fingerprints(conn), renamed_once);

        // Another source links S2's contact: each row now keeps its own fingerprint, and
        // files' is the one its contact carried.
        let c2 = student("c2", "S2", "2", "Test");
        let summary = import_linking(conn, "clever", vec![c2.clone()]).unwrap();
        assert_eq!(summary.linked, 1);
        let linked = fingerprints(conn);
        let s2_contact = first[1].2.unwrap();
        assert_eq!(linked[0].0, "clever:c2");
        assert!(linked[0].1 != 0 && linked[0].2.is_none(), "{linked:?}");
        assert_eq!(linked[2], ("sis:S2".to_string(), s2_contact, None));
        assert_eq!(linked[1], renamed_once[0], "S1 is as it was");

        // Neither source's unchanged records rewrite the contact, run after run.
        let before = state(conn);
        for _ in 0..2 {
            let summary = import(conn, files("Other", "Test")).unwrap();
            assert_eq!(summary.total().unchanged, 2);
            let summary = import_linking(conn, "clever", vec![c2.clone()]).unwrap();
            assert_eq!(summary.total().unchanged, 1);
        }
        assert_eq!(state(conn), before);

        // A change from either source writes its own row.
        let summary = import(conn, files("Other", "Changed")).unwrap();
        assert_eq!(summary.total().updated, 1);
        let changed = fingerprints(conn);
        assert_eq!(changed[0], linked[0]);
        assert!(
            changed[2].1 != 0 && changed[2].1 != s2_contact,
            "{changed:?}"
        );
        assert_eq!(changed[2].2, None);
        let summary = import(conn, files("Other", "Changed")).unwrap();
        assert_eq!(summary.total().unchanged, 2);
    }

    #[test]
    fn a_changed_contact_is_written_whole_and_its_indexes_follow() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let person_as = |role: Role, email: &str, room: &str, last: &str| -> Record {
            Person {
                source_id: "T1".into(),
                role: role as i32,
                first_name: "Ada".into(),
                last_name: last.into(),
                email: Some(email.into()),
                room: Some(room.into()),
                birth_date: Some("1980-01-02".into()),
                ..Default::default()
            }
            .into()
        };
        let teacher =
            |email: &str, room: &str, last: &str| person_as(Role::Teacher, email, room, last);
        let row = |conn: &Connection| -> (String, String, String, String) {
            conn.query_row(
                "SELECT role, last_name, email, room FROM contacts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
        };
        let by_email = |conn: &Connection, email: &str| {
            count(
                conn,
                &format!("SELECT count(*) FROM contacts INDEXED BY contacts_email WHERE lower(email) = '{email}' AND email IS NOT NULL"),
            )
        };
        let as_student = |conn: &Connection, last: &str| {
            count(
                conn,
                &format!(
                    "SELECT count(*) FROM contacts INDEXED BY contacts_student_match
                     WHERE birth_date = '1980-01-02' AND lower(last_name) = '{last}'
                       AND lower(first_name) = 'ada' AND role = 'student'"
                ),
            )
        };
        import(conn, vec![teacher("a@x.org", "100", "Lee")]).unwrap();
        for (record, expected) in [
            // The room alone.
            (
                teacher("a@x.org", "101", "Lee"),
                ("teacher", "Lee", "a@x.org", "101"),
            ),
            // The email alone.
            (
                teacher("b@x.org", "101", "Lee"),
                ("teacher", "Lee", "b@x.org", "101"),
            ),
            // The name and the room.
            (
                teacher("b@x.org", "102", "Kim"),
                ("teacher", "Kim", "b@x.org", "102"),
            ),
        ] {
            let summary = import(conn, vec![record]).unwrap();
            assert_eq!(summary.total().updated, 1);
            let (role, last, email, room) = expected;
            assert_eq!(
                row(conn),
                (role.into(), last.into(), email.into(), room.into())
            );
        }
        assert_eq!(
            (by_email(conn, "a@x.org"), by_email(conn, "b@x.org")),
            (0, 1)
        );
        // A new role moves the person into the student match index.
        let student = person_as(Role::Student, "b@x.org", "102", "Kim");
        assert_eq!(as_student(conn, "kim"), 0);
        import(conn, vec![student]).unwrap();
        assert_eq!(row(conn).0, "student");
        assert_eq!(as_student(conn, "kim"), 1);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_removal_deactivates_its_own_sources_links_only() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        sync(conn, complete_run(), false).unwrap();
        other_sources_class(conn, 1, &["S1", "S3"]);
        let removal = |entity: Entity, id: &str| -> Record {
            roster_core::record::Removal {
                entity: entity as i32,
                source_id: id.into(),
                ..Default::default()
            }
            .into()
        };
        sync(
            conn,
            continuing([
                removal(Entity::Students, "S1"),
                removal(Entity::Classes, "C2"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(enrolled(conn, "C1"), ["S2"]);
        assert!(enrolled(conn, "C2").is_empty());
        assert_eq!(enrolled(conn, "K1"), ["S1", "S3"]);
    }

    /// An event of source `sis` that syncs, over all its schools and terms.
    fn sync_event(name: &str) -> EventConfig {
        EventConfig {
            name: name.into(),
            source: "sis".into(),
            school: None,
            terms: None,
            sync: true,
        }
    }

    /// A continuing run attaches the source's active classes to its event again: one an
    /// admin took out comes back, a hidden one stays hidden, one the run removed does
    /// not come back, a new one joins, one an earlier run removed and this one sends again
    /// joins, another source's stays as it was. (What the event lacked is read alongside:
    /// the roster is a file.)
    #[test]
    fn a_continuing_run_attaches_every_active_class_again() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let event = sync_event("Fall");
        let mut first = complete_run();
        first.insert(5, class("C3"));
        first.insert(5, class("C5"));
        job_for(conn, first, Some(false), Some(&event)).unwrap();
        other_sources_class(conn, 1, &[]);
        conn.execute_batch(
            "UPDATE classes SET active = 0 WHERE source_id = 'C5';
             DELETE FROM event_classes WHERE class_id IN
                 (SELECT id FROM classes WHERE source_id IN ('C1', 'C3', 'C5'));
             UPDATE event_classes SET hidden = 1
                 WHERE class_id = (SELECT id FROM classes WHERE source_id = 'C2');
             INSERT INTO event_classes (event_id, class_id)
                 SELECT e.id, c.id FROM events e, classes c WHERE c.source = 'other';",
        )
        .unwrap();
        let removal = roster_core::record::Removal {
            entity: Entity::Classes as i32,
            source_id: "C3".into(),
            ..Default::default()
        };
        job_for(
            conn,
            continuing([removal.into(), class("C4"), class("C5")]),
            Some(true),
            Some(&event),
        )
        .unwrap();
        let attached: Vec<String> = conn
            .prepare(
                "SELECT c.source_id || ' ' || ec.hidden FROM event_classes ec
                 JOIN classes c ON c.id = ec.class_id ORDER BY c.source_id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(attached, ["C1 0", "C2 1", "C4 0", "C5 0", "K1 0"]);
    }

    /// A continuing run for an event the roster does not have yet (nothing to read
    /// alongside) attaches every active class of the source to it, and the run's new one.
    #[test]
    fn a_continuing_run_of_a_new_event_attaches_all_the_sources_classes() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        job_for(conn, complete_run(), Some(false), Some(&sync_event("Fall"))).unwrap();
        other_sources_class(conn, 1, &[]);
        job_for(
            conn,
            continuing([class("C3")]),
            Some(true),
            Some(&sync_event("Spring")),
        )
        .unwrap();
        let attached: Vec<String> = conn
            .prepare(
                "SELECT c.source_id FROM event_classes ec JOIN events e ON e.id = ec.event_id
                 JOIN classes c ON c.id = ec.class_id WHERE e.name = 'Spring' ORDER BY c.source_id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(attached, ["C1", "C2", "C3"]);
    }

    /// A continuing run of an event that fails ends at once, whether or not the event's
    /// classes were being read alongside: the reading thread is let go with the job.
    #[test]
    fn a_failed_continuing_run_of_an_event_ends() {
        let (_dir, mut store) = store();
        let event = sync_event("Fall");
        job_for(&mut store.conn, complete_run(), Some(false), Some(&event)).unwrap();
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let twice = continuing([roster_core::record::Snapshot::continuing().into()]);
            let result = job_for(&mut store.conn, twice, Some(true), Some(&event));
            let _ = done.send(result.map(|_| ()).map_err(|e| e.to_string()));
        });
        let result = ended
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the failed run ended");
        assert!(result.unwrap_err().contains("second Snapshot"));
    }

    /// The guard's base for a continuing run is the source's own links: another source's
    /// enrollments of the same students do not dilute it.
    #[test]
    fn the_guard_counts_its_own_sources_links_only() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let students: Vec<String> = (0..12).map(|i| format!("S{i}")).collect();
        let mut first: Vec<Record> = students
            .iter()
            .map(|s| person(s, Role::Student, s))
            .collect();
        first.push(class("C1"));
        first.extend(students.iter().map(|s| enrollment("C1", s)));
        first.push(
            roster_core::record::Snapshot::of(&[
                Entity::Students,
                Entity::Classes,
                Entity::Enrollments,
            ])
            .into(),
        );
        first.push(checkpoint_record(b"first"));
        sync(conn, first, false).unwrap();
        let names: Vec<&str> = students.iter().map(String::as_str).collect();
        for i in 0..10 {
            other_sources_class(conn, i, &names);
        }
        // C1 keeps two of its twelve: ten of the source's twelve enrollments go.
        let result = sync(
            conn,
            continuing([
                replaced(Entity::Enrollments, "C1"),
                enrollment("C1", "S0"),
                enrollment("C1", "S1"),
            ]),
            true,
        );
        match result {
            Err(ImportError::MassDeactivation { what, .. }) => {
                assert!(what.contains("10 of 12 enrollments"), "{what}")
            }
            other => panic!("expected the guard to refuse, got {other:?}"),
        }
    }

    /// A continuing run that names more classes than it looks up one by one loads the
    /// source's others at once: each is found (none written twice), and what the run
    /// changed before that stays changed.
    #[test]
    fn a_continuing_run_that_names_many_classes_finds_each_of_them() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let classes = apply::CLASSES_ONE_BY_ONE + 50;
        let name = |i: usize| format!("K{i}");
        let mut first = complete_run();
        first.splice(3..3, (0..classes).map(|i| class(&name(i))));
        sync(conn, first, false).unwrap();

        let mut records = vec![
            roster_core::record::Snapshot::continuing().into(),
            // Changed before the rest are loaded: the run's own entry must stay.
            roster_core::record::Class {
                source_id: name(0),
                name: "renamed".into(),
                ..Default::default()
            }
            .into(),
        ];
        records.extend((0..classes).map(|i| enrollment(&name(i), "S3")));
        records.push(
            roster_core::record::Removal {
                entity: Entity::Classes as i32,
                source_id: name(classes - 1),
                ..Default::default()
            }
            .into(),
        );
        records.push(class("C-new"));
        records.push(checkpoint_record(b"after the second run"));
        let summary = sync(conn, records, true).unwrap();
        assert_eq!(
            summary.get(summary::EntityName::Enrollments).inserted,
            classes as u64
        );
        let total = classes as i64 + 2 + 1;
        assert_eq!(count(conn, "SELECT count(*) FROM classes"), total);
        assert_eq!(
            count(conn, "SELECT count(*) FROM classes WHERE active = 1"),
            total - 1
        );
        assert_eq!(
            count(conn, "SELECT count(*) FROM classes WHERE name = 'renamed'"),
            1
        );
        assert_eq!(enrolled(conn, &name(classes / 2)), ["S3"]);
        assert_eq!(enrolled(conn, &name(0)), ["S3"]);
    }

    #[test]
    fn a_continuing_run_applies_only_what_it_sends_and_keeps_its_checkpoint() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        sync(conn, complete_run(), false).unwrap();
        assert_eq!(kept(conn).as_deref(), Some(&b"after the first run"[..]));

        let summary = sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                person("S4", Role::Student, "4"),
                roster_core::record::Removal {
                    entity: Entity::Students as i32,
                    source_id: "S3".into(),
                    ..Default::default()
                }
                .into(),
                // C1's students are now S2 and S4; C2 is not named, and keeps S3's link
                // only until S3's removal takes it.
                replaced(Entity::Enrollments, "C1"),
                enrollment("C1", "S2"),
                enrollment("C1", "S4"),
                checkpoint_record(b"after the second run"),
            ],
            true,
        )
        .unwrap();
        assert!(summary.continued);
        assert_eq!(kept(conn).as_deref(), Some(&b"after the second run"[..]));
        let active = |sql: &str| count(conn, sql);
        assert_eq!(active("SELECT count(*) FROM contacts WHERE active = 1"), 3);
        assert_eq!(active("SELECT count(*) FROM classes WHERE active = 1"), 2);

        assert_eq!(enrolled(conn, "C1"), ["S2", "S4"]);
        assert!(enrolled(conn, "C2").is_empty(), "S3's link went with S3");
        assert_eq!(summary.get(summary::EntityName::Enrollments).deactivated, 2);

        // Single links, without replacing an owner's: one removed, one new, one as before.
        let summary = sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                roster_core::record::Removal {
                    entity: Entity::Enrollments as i32,
                    source_id: "C1".into(),
                    other_id: "S2".into(),
                    other_id_kind: None,
                }
                .into(),
                enrollment("C2", "S2"),
                enrollment("C1", "S4"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(enrolled(conn, "C1"), ["S4"]);
        assert_eq!(enrolled(conn, "C2"), ["S2"]);
        let counts = summary.get(summary::EntityName::Enrollments);
        assert_eq!(
            (counts.inserted, counts.unchanged, counts.deactivated),
            (1, 1, 1)
        );

        // The link removed comes back, and a new one: each sent twice. A link is read
        // from the roster only where its insert found it there: the one that came back,
        // and the new one's repeat (which counts as unchanged).
        apply::LINK_ROWS_READ.with(|read| read.set(0));
        let summary = sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                enrollment("C1", "S2"),
                enrollment("C2", "S4"),
                enrollment("C1", "S2"),
                enrollment("C2", "S4"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(enrolled(conn, "C1"), ["S2", "S4"]);
        assert_eq!(enrolled(conn, "C2"), ["S2", "S4"]);
        let counts = summary.get(summary::EntityName::Enrollments);
        assert_eq!(
            (
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.deactivated
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(apply::LINK_ROWS_READ.with(std::cell::Cell::get), 2);

        // A day with no changes: an empty continuing run is not an empty feed.
        let summary = sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                checkpoint_record(b"after the third run"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(summary.total().deactivated, 0);
        assert_eq!(kept(conn).as_deref(), Some(&b"after the third run"[..]));
    }

    #[test]
    fn a_checkpoint_extended_by_later_runs_is_handed_over_whole_until_one_replaces_it() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        sync(conn, complete_run(), false).unwrap();
        let extending = |state: &[u8]| -> Record {
            roster_core::record::Checkpoint {
                state: state.to_vec(),
                extends: true,
            }
            .into()
        };
        let continuing = || -> Record { roster_core::record::Snapshot::continuing().into() };
        sync(conn, vec![continuing(), extending(b", the second")], true).unwrap();
        sync(conn, vec![continuing(), extending(b", the third")], true).unwrap();
        // Nothing to add: the checkpoint stays as it is.
        sync(conn, vec![continuing(), extending(b"")], true).unwrap();
        assert_eq!(
            kept(conn).as_deref(),
            Some(&b"after the first run, the second, the third"[..])
        );
        let parts = |conn: &Connection| count(conn, "SELECT count(*) FROM source_checkpoint_parts");
        assert_eq!(parts(conn), 2);

        // Extending a checkpoint it was not given is refused, and changes nothing.
        let before = state(conn);
        let error = sync(conn, vec![extending(b", out of nowhere")], false).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("extends a checkpoint, but it was given none"),
            "{error}"
        );
        assert_eq!(state(conn), before);
        assert_eq!(parts(conn), 2);

        // A checkpoint of its own replaces the base and what extended it.
        sync(conn, vec![continuing(), checkpoint_record(b"anew")], true).unwrap();
        assert_eq!(kept(conn).as_deref(), Some(&b"anew"[..]));
        assert_eq!(parts(conn), 0);
        sync(conn, vec![continuing(), extending(b", again")], true).unwrap();
        assert_eq!(kept(conn).as_deref(), Some(&b"anew, again"[..]));
        // A run that sends none leaves nothing to continue from.
        sync(conn, vec![continuing()], true).unwrap();
        assert_eq!(kept(conn), None);
        assert_eq!(parts(conn), 0);
    }

    #[test]
    fn a_run_that_continues_must_have_been_given_a_checkpoint_and_say_so() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        sync(conn, complete_run(), false).unwrap();
        let before = state(conn);

        let failures = [
            (
                vec![roster_core::record::Snapshot::continuing().into()],
                false,
                "it was given none",
            ),
            (
                vec![replaced(Entity::Enrollments, "C1")],
                true,
                "does not continue from a checkpoint",
            ),
            (
                vec![
                    class("C1"),
                    roster_core::record::Enrollment {
                        class_id: "C1".into(),
                        student_id: "1".into(),
                        student_id_kind: Some("sis_id".into()),
                    }
                    .into(),
                ],
                true,
                "only a run that continues from a checkpoint may do",
            ),
        ];
        for (records, given, expected) in failures {
            let error = sync(conn, records, given).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert_eq!(state(conn), before, "{expected}");
        }
        // A failed run leaves the last good checkpoint.
        assert_eq!(kept(conn).as_deref(), Some(&b"after the first run"[..]));
        // A complete run that sends none leaves nothing to continue from.
        let mut records = complete_run();
        records.retain(|r| !matches!(r.kind, Some(Kind::Checkpoint(_))));
        sync(conn, records, false).unwrap();
        assert_eq!(kept(conn), None);
    }

    #[test]
    fn a_continuing_run_finds_people_by_another_id_and_checks_emails_against_the_unsent() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let mut first = complete_run();
        first.insert(0, teacher("T1", "one@example.org"));
        first.insert(0, teacher("T2", "two@example.org"));
        sync(conn, first, false).unwrap();

        sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                replaced(Entity::ClassTeachers, "C1"),
                roster_core::record::ClassTeacher {
                    class_id: "C1".into(),
                    teacher_id: "clever-T1".into(),
                    primary: true,
                    teacher_id_kind: Some("clever_id".into()),
                }
                .into(),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM class_teachers t JOIN contact_sources s ON s.contact_id = t.contact_id
                 WHERE s.source_id = 'T1' AND t.active = 1"
            ),
            1
        );

        // T2 takes T1's email; T1 is not in the run, so only the roster knows it has it.
        let error = sync(
            conn,
            vec![
                roster_core::record::Snapshot::continuing().into(),
                teacher("T2", "ONE@example.org"),
            ],
            true,
        )
        .unwrap_err();
        assert!(
            matches!(&error, ImportError::Conflicts { findings, .. }
                if findings.iter().any(|f| f.rule == dedupe::Rule::EmailCollision)),
            "{error}"
        );
    }

    /// What a continuing run took of what was looked up ahead (`continued_one_by_one`).
    #[derive(Debug, Default, PartialEq)]
    struct Taken {
        /// Answers for names (`Apply::offer`).
        offers: usize,
        /// Contacts' identifiers (`Apply::identifiers_had`).
        identifiers: usize,
        /// Emails settled without asking (`check_unsent`).
        emails: usize,
    }

    /// A continuing run, each record a batch, on a roster as `first` left it and
    /// `prepare` then changed: the roster it leaves and its summary, with people looked
    /// up ahead or each asked for by the job, and what the job took of what was looked
    /// up ahead.
    fn continued_one_by_one(
        first: Vec<Record>,
        prepare: &dyn Fn(&Connection),
        then: Vec<Record>,
        ahead: bool,
    ) -> (Vec<String>, String, Taken) {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        sync(conn, first, false).unwrap();
        prepare(conn);
        let access = AccessDefaults::default();
        let guard = DeactivationGuard::default();
        let job = Job {
            source: "sis",
            event: None,
            scope: Scope::new(None, None),
            access: &access,
            dry_run: false,
            guard: Some(&guard),
            checkpoint_context: Some("context"),
            gave_checkpoint: true,
        };
        let mut dedupe = Dedupe::new(DedupePolicy::Fail);
        LOOK_AHEAD.with(|on| on.set(ahead));
        apply::OFFERS_TAKEN.with(|taken| taken.set(0));
        apply::IDENTIFIERS_TAKEN.with(|taken| taken.set(0));
        dedupe::EMAILS_SETTLED.with(|taken| taken.set(0));
        let summary = run(conn, &mut OneByOne(then.into()), job, &mut dedupe, &Quiet);
        LOOK_AHEAD.with(|on| on.set(true));
        let findings: Vec<_> = dedupe.findings().iter().map(|f| &f.reason).collect();
        let summary = format!("{:?} {findings:?}", summary.map_err(|e| e.to_string()));
        let taken = Taken {
            offers: apply::OFFERS_TAKEN.with(std::cell::Cell::get),
            identifiers: apply::IDENTIFIERS_TAKEN.with(std::cell::Cell::get),
            emails: dedupe::EMAILS_SETTLED.with(std::cell::Cell::get),
        };
        (state(conn), summary, taken)
    }

    /// What the job takes of the people looked up ahead is what it would have asked its
    /// own connection for: a run leaves the same roster either way, here with the names
    /// whose answers the run itself makes stale — an identifier that moved to another
    /// person earlier in the run, a person the run removed or created, one it changed.
    #[test]
    fn people_looked_up_ahead_leave_the_roster_the_job_would_have_left_asking_itself() {
        let by_sis = |class_id: &str, sis_id: &str| -> Record {
            roster_core::record::Enrollment {
                class_id: class_id.into(),
                student_id: sis_id.into(),
                student_id_kind: Some("sis_id".into()),
            }
            .into()
        };
        let mut first = complete_run();
        first.insert(0, person("S4", Role::Student, "4"));
        first.insert(0, person("S5", Role::Student, "5"));
        let then = vec![
            roster_core::record::Snapshot::continuing().into(),
            replaced(Entity::Enrollments, "C2"),
            // Unchanged people, by source id and by another identifier.
            enrollment("C2", "S5"),
            by_sis("C2", "3"),
            // S1 takes sis_id 2 from S2, then a link names 2: S1, not S2 as before.
            person("S2", Role::Student, "22"),
            person("S1", Role::Student, "2"),
            by_sis("C2", "2"),
            // Removed, then named: a person the run deactivated.
            roster_core::record::Removal {
                entity: Entity::Students as i32,
                source_id: "S4".into(),
                ..Default::default()
            }
            .into(),
            enrollment("C2", "S4"),
            // New in the run, then named by its new identifier.
            person("S6", Role::Student, "6"),
            by_sis("C2", "6"),
            // Changed, then named by its old identifier and its new one.
            person("S5", Role::Student, "55"),
            by_sis("C2", "5"),
            by_sis("C2", "55"),
            checkpoint_record(b"after the second run"),
        ];
        let (looked_up_ahead, summary_ahead, taken) =
            continued_one_by_one(first.clone(), &|_| {}, then.clone(), true);
        let (asked, summary_asked, taken_asking) =
            continued_one_by_one(first, &|_| {}, then, false);
        assert_eq!(looked_up_ahead, asked);
        assert_eq!(summary_ahead, summary_asked);
        assert!(summary_asked.starts_with("Ok"), "{summary_asked}");
        // Taken: S5 (by id), sis_id 3 and S3, then S2, S1 and S4 at their own records.
        // Refused: sis_id 2 and sis_id 5, whose contacts (S2's, S5's) the run had
        // written by then. Not found ahead: S6 and sis_ids 6 and 55, new in the run.
        assert_eq!(taken.offers, 6);
        // The identifiers of S2, S1 and S5, changed at their records before anything
        // else of their contacts was written.
        assert_eq!(taken.identifiers, 3);
        assert_eq!(taken_asking, Taken::default());
    }

    /// The dedupe stage's last check of a continuing run (an email the run sent that a
    /// person it did not send holds) finds what asking the roster finds when it settles
    /// emails from who held them before the run: here with a holder the run did not
    /// send, one it sent, and a contact with a second person of the source whose email
    /// the run changed (its other person then holds the new email, which no one held
    /// before the run).
    #[test]
    fn unsent_emails_settled_from_what_was_looked_up_ahead_find_what_asking_finds() {
        let mut first = complete_run();
        for (id, email) in [
            ("T1", "one@example.org"),
            ("T2", "two@example.org"),
            ("T3", "three@example.org"),
            ("T4", "four@example.org"),
        ] {
            first.insert(0, teacher(id, email));
        }
        // T3's row of the source on T4's contact: one contact, two people of the source.
        let two_on_one = |conn: &Connection| {
            conn.execute(
                "UPDATE contact_sources SET contact_id =
                     (SELECT contact_id FROM contact_sources WHERE source_id = 'T4')
                 WHERE source_id = 'T3'",
                [],
            )
            .unwrap();
        };
        let continuing = |records: Vec<Record>| -> Vec<Record> {
            std::iter::once(roster_core::record::Snapshot::continuing().into())
                .chain(records)
                .chain([checkpoint_record(b"after the second run")])
                .collect()
        };
        let collision = |summary: &str, holder: &str| {
            summary.starts_with("Err")
                && summary.contains("dedupe conflict")
                && summary.contains(&format!("is also {holder}'s"))
        };
        struct Case {
            what: &'static str,
            then: Vec<Record>,
            ok: bool,
            settled: usize,
        }
        let cases = [
            Case {
                what: "T2 takes the email of T1, not in the run",
                then: continuing(vec![teacher("T2", "ONE@example.org")]),
                ok: false,
                settled: 0,
            },
            Case {
                what: "a new email, no one's",
                then: continuing(vec![teacher("T2", "new@example.org")]),
                ok: true,
                settled: 1,
            },
            Case {
                what: "T1 and T2 swap, both in the run",
                then: continuing(vec![
                    teacher("T1", "two@example.org"),
                    teacher("T2", "one@example.org"),
                ]),
                ok: true,
                settled: 2,
            },
            Case {
                what: "T4's contact, which T3 shares, gets a new email",
                then: continuing(vec![teacher("T4", "new@example.org")]),
                ok: false,
                settled: 0,
            },
            // T4's change writes the contact before T3's record: what was looked up
            // ahead of it for T3 no longer holds, and the job asks.
            Case {
                what: "T4 and then T3, on one contact, change",
                then: continuing(vec![
                    teacher("T4", "four2@example.org"),
                    teacher("T3", "three2@example.org"),
                ]),
                ok: true,
                // four2@ (the contact's email is three2@ by the end), not three2@.
                settled: 1,
            },
        ];
        for case in cases {
            let (looked_up_ahead, summary_ahead, taken) =
                continued_one_by_one(first.clone(), &two_on_one, case.then.clone(), true);
            let (asked, summary_asked, taken_asking) =
                continued_one_by_one(first.clone(), &two_on_one, case.then, false);
            assert_eq!(looked_up_ahead, asked, "{}", case.what);
            assert_eq!(summary_ahead, summary_asked, "{}", case.what);
            assert_eq!(taken.emails, case.settled, "{}", case.what);
            assert_eq!(taken_asking, Taken::default(), "{}", case.what);
            if case.ok {
                assert!(
                    summary_asked.starts_with("Ok"),
                    "{}: {summary_asked}",
                    case.what
                );
            } else {
                let holder = if case.what.starts_with("T2") {
                    "T1"
                } else {
                    "T3"
                };
                assert!(
                    collision(&summary_asked, holder),
                    "{}: {summary_asked}",
                    case.what
                );
            }
        }
    }

    /// The first import writes identifiers at its end, merged from sorted runs set aside
    /// (five rows each in tests), later ones with each person: either way the first to
    /// give an identifier keeps it. Others between the two put them in different runs.
    #[test]
    fn an_identifier_given_twice_is_refused_or_kept_on_its_first_holder() {
        let between = |first: Record, second: Record| -> Vec<Record> {
            let others = (0..12).map(|i| person(&format!("X{i}"), Role::Student, &format!("x{i}")));
            std::iter::once(first)
                .chain(others)
                .chain([second])
                .collect()
        };
        for first_import in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
            let conn = &mut store.conn;
            if !first_import {
                import(conn, vec![person("A0", Role::Student, "1")]).unwrap();
            }
            let before = count(conn, "SELECT count(*) FROM contacts");

            let error = import(
                conn,
                between(
                    person("S1", Role::Student, "7"),
                    person("S2", Role::Student, "7"),
                ),
            )
            .unwrap_err()
            .to_string();
            assert!(
                error.contains(
                    "student `S2` has sis_id `7`, which this source already gives contact #"
                ),
                "{error}"
            );
            assert_eq!(count(conn, "SELECT count(*) FROM contacts"), before);

            // Students and teachers are numbered apart: kept on the first, no error.
            import(
                conn,
                between(
                    person("S1", Role::Student, "7"),
                    person("T1", Role::Teacher, "7"),
                ),
            )
            .unwrap();
            let holder: String = conn
                .query_row(
                    "SELECT s.source_id FROM contact_ids i JOIN contact_sources s ON s.contact_id = i.contact_id
                     WHERE i.kind = 'sis_id' AND i.value = '7'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(holder, "S1", "first import: {first_import}");
        }
    }

    /// A first import writes without foreign keys and proves them before its commit; the
    /// connection has them on again after it, whether it committed or failed.
    #[test]
    fn foreign_keys_are_on_again_after_a_first_import() {
        let foreign_keys_on = |conn: &Connection| -> bool {
            conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .unwrap()
        };
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        import(
            conn,
            vec![
                person("S1", Role::Student, "7"),
                person("S2", Role::Student, "7"),
            ],
        )
        .unwrap_err();
        assert!(foreign_keys_on(conn), "after a failed first import");
        import(conn, vec![person("S1", Role::Student, "7")]).unwrap();
        assert!(foreign_keys_on(conn), "after a first import");
        let orphan = conn.execute(
            "INSERT INTO enrollments (class_id, contact_id) VALUES (99, 99)",
            [],
        );
        let error = orphan.unwrap_err().to_string();
        assert!(
            error.contains("FOREIGN KEY"),
            "and they are enforced: {error}"
        );
    }

    /// An identifier another contact of the role holds goes to the new person when the
    /// run deactivates its holder (two ParentIDs merged into one contact by a file), and
    /// is refused while the holder stays (the test above).
    #[test]
    fn an_identifier_moves_from_a_contact_the_run_deactivates() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        import(conn, vec![person("S1", Role::Student, "7")]).unwrap();
        let complete =
            || -> Record { roster_core::record::Snapshot::of(&[Entity::Students]).into() };
        import(conn, vec![person("S2", Role::Student, "7"), complete()]).unwrap();
        let holder: (String, i64) = conn
            .query_row(
                "SELECT s.source_id, s.active FROM contact_ids i
                 JOIN contact_sources s ON s.contact_id = i.contact_id
                 WHERE i.kind = 'sis_id' AND i.value = '7'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(holder, ("S2".to_string(), 1));
        let s1_active: i64 = conn
            .query_row(
                "SELECT active FROM contact_sources WHERE source_id = 'S1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(s1_active, 0);
    }

    /// A changed person keeps the identifiers and schools it still has, loses the ones it
    /// no longer has (an identifier is then free for someone else in the same run), and
    /// gets the new ones.
    #[test]
    fn a_changed_persons_identifiers_and_schools_follow_the_source() {
        let (_dir, mut store) = store();
        let conn = &mut store.conn;
        let school = |id: &str| -> Record {
            roster_core::record::School {
                source_id: id.into(),
                name: id.into(),
                ..Default::default()
            }
            .into()
        };
        let with_ids = |id: &str, ids: &[(&str, &str)]| -> Record {
            Person {
                source_id: id.into(),
                role: Role::Student as i32,
                first_name: id.into(),
                last_name: "Test".into(),
                school_ids: vec![if ids.len() > 1 { "A" } else { "B" }.into()],
                identifiers: ids
                    .iter()
                    .map(|(kind, value)| Identifier {
                        kind: kind.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        };
        import(
            conn,
            vec![
                school("A"),
                school("B"),
                with_ids("S1", &[("sis_id", "1"), ("state_id", "NY1")]),
                with_ids("S2", &[("sis_id", "2")]),
            ],
        )
        .unwrap();
        import(
            conn,
            vec![
                school("A"),
                school("B"),
                with_ids("S1", &[("sis_id", "9")]),
                with_ids("S2", &[("sis_id", "1"), ("state_id", "NY2")]),
            ],
        )
        .unwrap();
        let schools = |source_id: &str| {
            texts(
                conn,
                "SELECT sc.source_id FROM contact_schools cs JOIN schools sc ON sc.id = cs.school_id
                 JOIN contact_sources s ON s.contact_id = cs.contact_id
                 WHERE s.source_id = ?1 ORDER BY 1",
                source_id,
            )
        };
        assert_eq!(schools("S1"), ["B"]);
        assert_eq!(schools("S2"), ["A"]);
        let ids = |source_id: &str| {
            texts(
                conn,
                "SELECT i.kind || '=' || i.value FROM contact_ids i
                 JOIN contact_sources s ON s.contact_id = i.contact_id
                 WHERE s.source_id = ?1 ORDER BY 1",
                source_id,
            )
        };
        assert_eq!(ids("S1"), ["sis_id=9"]);
        assert_eq!(ids("S2"), ["sis_id=1", "state_id=NY2"]);
    }

    #[test]
    fn a_continuing_run_holds_freed_memory_until_it_ends() {
        let purge_delay = || unsafe {
            libmimalloc_sys::mi_option_get(roster_core::allocator::MIMALLOC_PURGE_DELAY_OPTION)
        };
        // Held while any continuing job holds it (other tests run jobs meanwhile).
        let held = HeldFreedMemory::start();
        let second = HeldFreedMemory::start();
        assert_eq!(purge_delay(), 1000);
        drop(held);
        assert_eq!(purge_delay(), 1000);
        drop(second);
        // Under the lock, so that no other job starts meanwhile.
        let holding = HOLDING.lock().unwrap();
        if *holding == 0 {
            assert_eq!(purge_delay(), 100);
        }
    }

    fn cache_size(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_page_cache_is_raised_for_a_job_and_given_back_after_it() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "cache_size", 500).unwrap(); // pages: 2,000 KiB
        let mut cache = PageCache::of(&conn).unwrap();
        cache.raise_to(&conn, 1_000).unwrap(); // below what it has: unchanged
        assert_eq!(cache_size(&conn), 500);
        cache.raise_to(&conn, JOB_CACHE_KIB / 4).unwrap();
        assert_eq!(cache_size(&conn), -JOB_CACHE_KIB / 4);
        cache.raise_to(&conn, JOB_CACHE_KIB).unwrap();
        assert_eq!(cache_size(&conn), -JOB_CACHE_KIB);
        cache.raise_to(&conn, JOB_CACHE_KIB / 4).unwrap(); // never lowered within a job
        assert_eq!(cache_size(&conn), -JOB_CACHE_KIB);
        cache.restore(&conn).unwrap();
        assert_eq!(cache_size(&conn), 500);

        // A connection that has more than a job would ask for keeps it.
        conn.pragma_update(None, "cache_size", -2 * JOB_CACHE_KIB)
            .unwrap();
        let mut cache = PageCache::of(&conn).unwrap();
        cache.raise_to(&conn, JOB_CACHE_KIB).unwrap();
        cache.restore(&conn).unwrap();
        assert_eq!(cache_size(&conn), -2 * JOB_CACHE_KIB);
    }
}
