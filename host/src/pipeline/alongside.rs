//! Reading the roster as last committed on a thread of its own, while the job goes on.
//!
//! A job's transaction takes the write lock with its first statement (an immediate
//! transaction), so nothing else commits until it ends, and its own uncommitted writes
//! are not visible to another connection: in WAL mode a second, read-only connection
//! sees exactly what the roster held before the job. What a job needs of that in bulk
//! (the source's links and classes: millions of rows at nyc) is read there, on the
//! other core, instead of on the job's own connection.

use std::thread::JoinHandle;

use rusqlite::{Connection, InterruptHandle, OpenFlags, Transaction};

/// A read-only connection to the roster `tx` writes, which sees it as last committed;
/// `None` where no second connection can (an in-memory database, as in tests, or a
/// journal other than the WAL).
pub(super) fn second_connection(tx: &Transaction<'_>) -> rusqlite::Result<Option<Connection>> {
    let journal: String = tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let path = tx.path().filter(|path| !path.is_empty());
    let (Some(path), true) = (path, journal.eq_ignore_ascii_case("wal")) else {
        return Ok(None);
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(Some(conn))
}

/// Something read on its own connection, or already here.
pub(super) struct Alongside<T> {
    /// `None` once joined (or never started).
    thread: Option<JoinHandle<rusqlite::Result<T>>>,
    /// Stops the read when the job no longer needs it (see `Drop`).
    interrupt: Option<InterruptHandle>,
    value: Option<T>,
}

impl<T: Send + 'static> Alongside<T> {
    /// Start `read` on a thread named `name`; `None` where no second connection can see
    /// the roster (an in-memory database, as in tests, or a journal other than the WAL),
    /// and the caller reads on its own connection.
    pub fn start(
        tx: &Transaction<'_>,
        name: &str,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<Option<Alongside<T>>> {
        let Some(conn) = second_connection(tx)? else {
            return Ok(None);
        };
        let interrupt = conn.get_interrupt_handle();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || read(&conn))
            // As for the job's reading thread: no thread, no import.
            .expect("a thread to read the roster alongside the job");
        Ok(Some(Alongside {
            thread: Some(thread),
            interrupt: Some(interrupt),
            value: None,
        }))
    }

    /// What the caller read itself.
    pub fn here(value: T) -> Alongside<T> {
        Alongside {
            thread: None,
            interrupt: None,
            value: Some(value),
        }
    }

    /// The value, waiting for the read if it is still going.
    pub fn get(&mut self) -> rusqlite::Result<&mut T> {
        if let Some(thread) = self.thread.take() {
            self.value = Some(match thread.join() {
                Ok(value) => value?,
                Err(panic) => std::panic::resume_unwind(panic),
            });
        }
        // A failed read fails the job, which asks for nothing after its first error.
        Ok(self
            .value
            .as_mut()
            .expect("asked for after its read failed"))
    }

    /// The value if the read is over, without waiting for it.
    pub fn ready(&mut self) -> rusqlite::Result<Option<&mut T>> {
        match &self.thread {
            Some(thread) if !thread.is_finished() => Ok(None),
            _ => self.get().map(Some),
        }
    }

    /// The value, waiting for the read if it is still going.
    pub fn wait(mut self) -> rusqlite::Result<T> {
        self.get()?;
        Ok(self.value.take().expect("read above"))
    }
}

impl<T> Drop for Alongside<T> {
    /// A job that ends before it needed the value (an error, a cancel, a small continuing
    /// run) stops the read and waits for its thread, so that its memory is gone before the
    /// next job of a batch or the daemon starts.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            if let Some(interrupt) = &self.interrupt {
                // SQLite forgets an interrupt that comes between two statements (one that
                // starts with none running clears it), so it is repeated until the read
                // is over.
                while !thread.is_finished() {
                    interrupt.interrupt();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            // Its result is of no use any more; a panic in it is not this job's error.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::TransactionBehavior;

    fn roster() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("roster.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        (dir, conn)
    }

    #[test]
    fn a_read_alongside_sees_the_roster_as_last_committed() {
        let (_dir, mut conn) = roster();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let mut read = Alongside::start(&tx, "test reader", |conn| {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        })
        .unwrap()
        .expect("a WAL roster in a file can be read alongside");
        assert_eq!(*read.get().unwrap(), 1, "the job's own writes are not seen");
        assert_eq!(read.ready().unwrap().copied(), Some(1));
        assert_eq!(read.wait().unwrap(), 1);
    }

    #[test]
    fn an_in_memory_roster_is_read_by_the_job_itself() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        let read = Alongside::start(&tx, "test reader", |_| Ok(())).unwrap();
        assert!(read.is_none());
    }

    /// A job that ends first (a small night, an error) does not wait for a read it no
    /// longer needs: dropping it interrupts the read, whether a statement is running
    /// then or only about to start.
    #[test]
    fn a_read_no_longer_needed_is_stopped() {
        for statement_started in [false, true] {
            let (_dir, mut conn) = roster();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            let (started, has_started) = std::sync::mpsc::channel();
            let (go, may_go) = std::sync::mpsc::channel::<()>();
            let read = Alongside::start(&tx, "test reader", move |conn| {
                started.send(()).unwrap();
                if !statement_started {
                    // Dropped before its statement starts.
                    let _ = may_go.recv();
                }
                // Hours of work, unless interrupted.
                conn.query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
                     SELECT count(*) FROM (SELECT i FROM n LIMIT 100000000000)",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap()
            .unwrap();
            has_started.recv().unwrap();
            if statement_started {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let (dropped, was_dropped) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                drop(read);
                dropped.send(()).unwrap();
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(go);
            assert!(
                was_dropped
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .is_ok(),
                "the read went on (its statement {})",
                if statement_started {
                    "running"
                } else {
                    "about to start"
                }
            );
        }
    }
}
