//! The classes a continuing run's event lacks: which of the source's active classes have
//! no row in `event_classes`, as the roster was last committed.
//!
//! A continuing run sends only what changed, yet every active class of the source goes
//! back to the event at each sync (an admin who deleted one from the event gets it back).
//! Finding them means reading every class of the source and every class of the event: at
//! nyc 280,000 of each, a tenth of a second at the very end of a re-sync, when the job
//! works alone. Read on a second connection instead, once the plugin has sent its last
//! batch and its core is free, what is left for the job is the run's own classes.

use std::sync::mpsc::{channel, Sender};

use rusqlite::{Connection, Transaction};

use super::alongside::Alongside;

/// The source's active classes that event `event_id` lacked, in id order.
pub(super) struct Unattached {
    pub event_id: i64,
    pub classes: Vec<i64>,
}

/// [`Unattached`] read on a thread of its own, which waits for [`UnattachedAlongside::go`]
/// before it reads: until the plugin is done, both cores have work.
pub(super) struct UnattachedAlongside {
    // In this order, as fields are dropped: the sender first, since a thread still
    // waiting for it would never end, and dropping the read waits for its thread.
    go: Option<Sender<()>>,
    read: Alongside<Option<Unattached>>,
}

impl UnattachedAlongside {
    /// `None` where no second connection can see the roster (see [`Alongside::start`]).
    pub fn start(
        tx: &Transaction<'_>,
        source: &str,
        event: &str,
    ) -> rusqlite::Result<Option<UnattachedAlongside>> {
        let (go, wait) = channel::<()>();
        let (source, event) = (source.to_string(), event.to_string());
        let read = Alongside::start(tx, "event classes", move |conn| {
            // A job that ends early drops the sender: the read then starts and is
            // interrupted at once (`Alongside`'s drop).
            let _ = wait.recv();
            let Some(event_id) = crate::events::find(conn, &event)? else {
                return Ok(None);
            };
            Ok(Some(Unattached {
                event_id,
                classes: unattached(conn, event_id, &source)?,
            }))
        })?;
        Ok(read.map(|read| UnattachedAlongside { go: Some(go), read }))
    }

    /// Start reading (once; later calls do nothing).
    pub fn go(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
    }

    /// What was read, waiting for it if need be; `None` when the roster had no such event
    /// before the run.
    pub fn wait(mut self) -> rusqlite::Result<Option<Unattached>> {
        self.go();
        self.read.wait()
    }
}

/// The active classes of `source` that event `event_id` has no row for, in id order: both
/// lists read in id order and merged, since almost every class is attached (looking each
/// one up in `event_classes`, as `INSERT OR IGNORE … SELECT` does, took a fourth longer).
pub(super) fn unattached(
    conn: &Connection,
    event_id: i64,
    source: &str,
) -> rusqlite::Result<Vec<i64>> {
    let attached: Vec<i64> = conn
        .prepare_cached("SELECT class_id FROM event_classes WHERE event_id = ?1 ORDER BY class_id")?
        .query_map([event_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut classes = conn.prepare_cached(
        "SELECT id FROM classes NOT INDEXED WHERE source = ?1 AND active = 1 ORDER BY id",
    )?;
    let mut rows = classes.query([source])?;
    let (mut at, mut missing) = (0, Vec::new());
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        at += attached[at..].partition_point(|&attached| attached < id);
        if attached.get(at) != Some(&id) {
            missing.push(id);
        }
    }
    Ok(missing)
}
