//! The record source the host pulls from. The first `next_batch` starts the import on a
//! thread of its own (with its own tokio runtime), which fetches, maps and sends batches
//! into a bounded queue that `next_batch` drains: the host writes the first batches while
//! later pages are still being fetched (see [`crate::stream`]). A host across the plugin
//! boundary calls `next_batch_encoded` instead, and gets batches that thread encoded.
//!
//! With a `schools` filter the district is fetched and mapped whole before the first batch
//! (which people, terms and contacts belong to the kept schools is known only once every
//! section and relationship is in), on the same thread and through the same queue.
//!
//! A fetch error ends the queue with that error; the host then rolls the import back, so
//! the batches already handed out never stand alone. A panic on the import thread reaches
//! `next_batch` as a panic (so the SDK's boundary reports it as the plugin's); a source
//! dropped before the end closes the queue, which stops the import thread, and waits for
//! it.

use std::thread::JoinHandle;
use std::time::Instant;

use roster_core::record::Record;
use roster_core::sdk::{decode_batch, encode_record, CheckpointBytes, RecordSource};
use roster_core::{ErrorKind, PluginError};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::config::Config;
use crate::events;
use crate::fetch::fetch;
use crate::mapping;
use crate::report::Reporter;
use crate::stream::{self, Batch, Sink, Stop};

/// Batches the import thread may run ahead of the host.
const BATCHES_AHEAD: usize = 2;

type Queue = mpsc::Receiver<Result<Batch, PluginError>>;

pub struct CleverSource {
    config: Config,
    report: Reporter,
    /// The checkpoint the host handed in, taken by the import thread.
    checkpoint: Option<CheckpointBytes>,
    state: State,
}

enum State {
    NotStarted,
    Running {
        queue: Queue,
        thread: JoinHandle<()>,
    },
    Done,
}

impl CleverSource {
    pub fn new(config: Config, report: Reporter, checkpoint: Option<CheckpointBytes>) -> Self {
        CleverSource {
            config,
            report,
            checkpoint,
            state: State::NotStarted,
        }
    }

    /// `encode`: the import thread encodes each record for the plugin boundary as it
    /// makes it (see [`Sink`]).
    fn start(&mut self, encode: bool) -> Result<State, PluginError> {
        let (tx, queue) = mpsc::channel(BATCHES_AHEAD);
        let config = self.config.clone();
        let report = self.report.clone();
        let checkpoint = self.checkpoint.take();
        let thread = std::thread::Builder::new()
            .name("clever-fetch".into())
            .spawn(move || import_thread(config, report, checkpoint, encode, tx))
            .map_err(|error| {
                PluginError::new(
                    ErrorKind::Other,
                    format!("cannot start the fetch thread: {error}"),
                )
            })?;
        Ok(State::Running { queue, thread })
    }

    /// The import thread has ended: pass its panic on, if it had one.
    fn finish(&mut self) {
        if let State::Running { thread, .. } = std::mem::replace(&mut self.state, State::Done) {
            if let Err(payload) = thread.join() {
                // Let the SDK's boundary report the panic as the plugin's.
                std::panic::resume_unwind(payload);
            }
        }
    }
}

impl CleverSource {
    /// The import thread's next batch. The first call starts the thread, in the form the
    /// caller asks for: encoded for a host across the boundary, records for one linked in.
    fn next(&mut self, encode: bool) -> Result<Option<Batch>, PluginError> {
        // Checked on every call: a host that asked to stop gets no more batches.
        self.report.check_cancelled()?;
        if let State::NotStarted = self.state {
            self.state = self.start(encode)?;
        }
        let State::Running { queue, .. } = &mut self.state else {
            return Ok(None);
        };
        match receive(queue) {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(error)) => {
                self.finish();
                Err(self.report.token().scrub_error(error))
            }
            // The thread is gone: after the snapshot, or in a panic.
            None => {
                self.finish();
                Ok(None)
            }
        }
    }
}

impl RecordSource for CleverSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        match self.next(false)? {
            Some(Batch::Records(records)) => Ok(Some(records)),
            // Only if the caller switched forms after the first batch.
            Some(Batch::Encoded(bytes)) => decode_batch(&bytes).map(Some).map_err(|error| {
                PluginError::new(
                    ErrorKind::Other,
                    format!("a batch this plugin encoded does not decode: {error}"),
                )
            }),
            None => Ok(None),
        }
    }

    fn next_batch_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        match self.next(true)? {
            Some(Batch::Encoded(bytes)) => {
                if out.is_empty() {
                    *out = bytes;
                } else {
                    out.extend_from_slice(&bytes);
                }
                Ok(true)
            }
            Some(Batch::Records(records)) => {
                for record in &records {
                    encode_record(record, out);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Drop for CleverSource {
    fn drop(&mut self) {
        if let State::Running { queue, thread } = std::mem::replace(&mut self.state, State::Done) {
            // A closed queue stops the import thread at its next send (or at once: it
            // watches for the close); its panic, if any, has no one to go to now.
            drop(queue);
            let _ = thread.join();
        }
    }
}

/// The next batch from the import thread. Blocking on a tokio queue is refused inside a
/// runtime; a host that calls from one (possible when the plugin is linked in) gets the
/// wait done on a short-lived thread of its own.
fn receive(queue: &mut Queue) -> Option<Result<Batch, PluginError>> {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| {
            scope
                .spawn(|| queue.blocking_recv())
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        })
    } else {
        queue.blocking_recv()
    }
}

/// The import thread: a runtime of its own (each plugin file carries its own tokio, and a
/// fresh thread never finds itself inside some other runtime), the import on it, and its
/// error, if any, as the queue's last item.
fn import_thread(
    config: Config,
    report: Reporter,
    checkpoint: Option<CheckpointBytes>,
    encode: bool,
    tx: mpsc::Sender<Result<Batch, PluginError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = tx.blocking_send(Err(PluginError::new(
                ErrorKind::Other,
                format!("cannot start the async runtime: {error}"),
            )));
            return;
        }
    };
    let closed = tx.clone();
    let result = runtime.block_on(async {
        tokio::select! {
            result = import(&config, &report, checkpoint, encode, tx.clone()) => result,
            // The host dropped the source: stop fetching now, not at the next send.
            () = closed.closed() => Err(Stop::Closed),
        }
    });
    let error = match result {
        Ok(()) | Err(Stop::Closed) => None,
        Err(Stop::Fetch(error)) => Some(error.into_plugin_error(&config.token_env)),
        Err(Stop::Plugin(error)) => Some(error),
    };
    if let Some(error) = error {
        let _ = runtime.block_on(tx.send(Err(error)));
    }
    // Requests still in flight (there are none after a clean end) are abandoned, not
    // waited for.
    runtime.shutdown_background();
}

async fn import(
    config: &Config,
    report: &Reporter,
    checkpoint: Option<CheckpointBytes>,
    encode: bool,
    tx: stream::Batches,
) -> Result<(), Stop> {
    let client = Client::new(config, report.clone())?;
    let mut sink = Sink::new(tx, encode);
    if !events::usable(config) {
        if config.schools.is_empty() {
            return stream::run(&client, config, report, &mut sink, None).await;
        }
        return whole_district(&client, config, report, &mut sink).await;
    }
    let version = config.api_version.as_str();
    if let Some(after) = checkpoint.and_then(|state| events::continues_after(&state, version)) {
        roster_core::allocator::hold_freed_memory_for_a_continuing_run();
        match events::continue_from(&client, config, report, &mut sink, after).await? {
            events::Continued::Done => return Ok(()),
            events::Continued::Full(why) => {
                roster_core::allocator::return_freed_memory_soon();
                report.info(&format!("clever: {why}; reading the whole district"))
            }
        }
    }
    // Before the district is read, so that what changes while it is read comes again.
    let newest = events::newest(&client, report).await;
    stream::run(&client, config, report, &mut sink, newest).await
}

/// The import with a `schools` filter: it needs the whole district before it knows which
/// people belong (`Roster::limit_to_schools`), so this path does not stream.
async fn whole_district(
    client: &Client,
    config: &Config,
    report: &Reporter,
    sink: &mut Sink,
) -> Result<(), Stop> {
    let started = Instant::now();
    let fetched = fetch(client, config).await?;
    let district = fetched
        .district
        .as_ref()
        .map(|d| {
            let id = crate::model::get(&d.id).unwrap_or_default();
            match crate::model::get(&d.name) {
                Some(name) => format!("{name} ({id})"),
                None => id,
            }
        })
        .unwrap_or_else(|| "(unnamed district)".into());
    report.info(&format!(
        "clever {}: {district}: fetched {} in {} requests, {:.1} s",
        config.api_version.as_str(),
        fetched.summary(),
        client.request_count(),
        started.elapsed().as_secs_f64()
    ));
    let mut roster = mapping::map(fetched);
    roster.limit_to_schools(&config.schools)?;
    for note in &roster.notes {
        report.warn(&format!("clever: {note}"));
    }
    if config.include_contacts && !roster.contacts_complete {
        report.warn(
            "clever: contacts were not fetched; parents and relationships are left as they are",
        );
    }
    report.info(&format!(
        "clever: {} schools, {} terms, {} people, {} classes, {} enrollments, {} class-teacher links, {} relationships",
        roster.schools.len(),
        roster.terms.len(),
        roster.people.len(),
        roster.classes.len(),
        roster.enrollments.len(),
        roster.class_teachers.len(),
        roster.relationships.len()
    ));
    for batch in roster.into_batches() {
        for record in batch {
            sink.push(record).await?;
        }
    }
    sink.flush().await
}
