//! Bulk loading: the first import into an empty roster builds its secondary indexes once,
//! at the end, instead of row by row.
//!
//! At district scale (millions of contacts and enrollments) keeping the lookup indexes
//! current on every insert is most of the writing: each insert lands on a random page of
//! an index much larger than the page cache. Into an empty roster nothing reads those
//! indexes while the import runs (every contact is new, the dedupe stage has no other
//! source to look in, links are resolved from the run's own maps), so they are dropped
//! inside the import's transaction and created again by sorting just before it commits.
//! The committed database has exactly the schema it had; a failed or cancelled import
//! rolls the drops back with everything else. Unique indexes and primary keys stay: they
//! are what refuses a duplicate.
//!
//! Such an import also writes through a rollback journal instead of the WAL
//! ([`RollbackJournal`]): every page it writes is new, and a rollback journal keeps only
//! the pages that existed when the transaction began, so the roster's gigabytes are
//! written once, to the database, instead of to the WAL and again by the checkpoint.

use rusqlite::{Connection, Transaction};

/// Whether the roster has no contacts (and so no links to them either).
fn roster_is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM contacts)", [], |r| {
        r.get(0)
    })
}

/// The journal a first import writes through, set before its transaction begins and
/// the WAL again after it ends.
///
/// A rollback journal undoes a page past the file's original end by truncating the file,
/// so it holds only the empty roster's few changed pages: a failed, cancelled or crashed
/// import is still undone whole (a crash's journal is rolled back when the roster is next
/// opened). What it costs: until the import ends, other connections cannot read the
/// roster (there is nothing in it yet to read). `synchronous` is FULL meanwhile, as a
/// rollback journal needs it to survive a power cut. A connection that is not in WAL
/// mode (in memory), or a roster another connection has open, keeps its journal.
#[derive(Debug)]
#[must_use = "the WAL comes back with `end`"]
pub struct RollbackJournal {
    switched: bool,
}

impl RollbackJournal {
    pub fn begin(conn: &Connection) -> rusqlite::Result<RollbackJournal> {
        let unchanged = RollbackJournal { switched: false };
        let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") || !roster_is_empty(conn)? {
            return Ok(unchanged);
        }
        // WAL -> DELETE needs the only connection; with another one open SQLite keeps
        // the WAL (or reports the roster busy): the import is then as safe, only slower.
        let changed =
            conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
        match changed {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") => {
                conn.pragma_update(None, "synchronous", "FULL")?;
                tracing::debug!("empty roster: written through a rollback journal");
                Ok(RollbackJournal { switched: true })
            }
            Ok(mode) => {
                tracing::debug!("empty roster, but open elsewhere: written through the {mode}");
                Ok(unchanged)
            }
            Err(error) => {
                tracing::debug!("empty roster, written through the WAL: {error}");
                Ok(unchanged)
            }
        }
    }

    /// Back to the WAL and the roster's usual `synchronous`. Failing changes no data (the
    /// next open sets the WAL again), so it is a warning.
    pub fn end(self, conn: &Connection) {
        if !self.switched {
            return;
        }
        let restored = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .and_then(|mode| {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                Ok(mode)
            });
        match restored {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => {}
            Ok(mode) => tracing::warn!("the roster stays in journal mode {mode} until next opened"),
            Err(error) => {
                tracing::warn!("the roster stays in journal mode delete until next opened: {error}")
            }
        }
    }
}

/// The indexes only lookups use (see `store/schema.rs`). Unique constraints are not here.
const DEFERRABLE: &[&str] = &[
    "contacts_email",
    "contacts_student_match",
    "contact_sources_contact",
    "contact_ids_contact",
    "class_teachers_contact",
    "enrollments_contact",
    "relationships_student",
];

/// The statements that build the deferred indexes again, in schema order.
#[derive(Debug, Default)]
pub struct Deferred {
    create: Vec<String>,
}

impl Deferred {
    /// Drop the deferrable indexes if the roster has no contacts yet (and so no links to
    /// them either); otherwise keep everything as it is.
    pub fn begin(tx: &Transaction<'_>) -> rusqlite::Result<Deferred> {
        if !roster_is_empty(tx)? {
            return Ok(Deferred::default());
        }
        let mut statement = tx.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )?;
        let indexes: Vec<(String, String)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut create = Vec::new();
        for (name, sql) in indexes {
            if DEFERRABLE.contains(&name.as_str()) {
                tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
                create.push(sql);
            }
        }
        Ok(Deferred { create })
    }

    /// Build the dropped indexes again; call before committing.
    pub fn finish(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        for sql in &self.create {
            let started = std::time::Instant::now();
            tx.execute_batch(sql)?;
            tracing::debug!("{sql}: {:.2} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    pub fn is_active(&self) -> bool {
        !self.create.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::time::Duration;

    fn schema(conn: &rusqlite::Connection) -> Vec<(String, String)> {
        let mut statement = conn
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_empty_roster_defers_its_lookup_indexes_and_gets_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("roster.db")).unwrap();
        let before = schema(&store.conn);
        for name in DEFERRABLE {
            assert!(
                before.iter().any(|(n, _)| n == name),
                "{name} is in the schema"
            );
        }
        let tx = store.conn.transaction().unwrap();
        let deferred = Deferred::begin(&tx).unwrap();
        assert!(deferred.is_active());
        let during = schema(&tx);
        assert_eq!(during.len(), before.len() - DEFERRABLE.len());
        deferred.finish(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(schema(&store.conn), before);

        // A rollback brings them back too.
        let tx = store.conn.transaction().unwrap();
        assert!(Deferred::begin(&tx).unwrap().is_active());
        tx.rollback().unwrap();
        assert_eq!(schema(&store.conn), before);
    }

    fn journal_and_sync(conn: &rusqlite::Connection) -> (String, i64) {
        (
            conn.pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap(),
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap(),
        )
    }

    fn add_contacts(conn: &rusqlite::Connection, count: usize) {
        let mut insert = conn
            .prepare(
                "INSERT INTO contacts (role, first_name, last_name, access_level) VALUES ('student', ?1, 'B', 'customer')",
            )
            .unwrap();
        for n in 0..count {
            insert.execute([format!("first name {n:08}")]).unwrap();
        }
    }

    /// The error a read-only connection meets reading `path` at once, with its hint.
    fn hint_for_a_reader(path: &std::path::Path) -> String {
        let reader = Store::open_read_only(path).unwrap();
        reader.conn.busy_timeout(Duration::ZERO).unwrap();
        let error = reader
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        let hint = crate::store::sqlite_hint(&error).unwrap_or_default();
        format!("{error}: {hint}")
    }

    #[test]
    fn a_first_import_writes_through_a_rollback_journal_then_the_wal_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("roster.db")).unwrap();
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
        let journal = RollbackJournal::begin(&store.conn).unwrap();
        // FULL: a rollback journal survives a power cut only with it.
        assert_eq!(journal_and_sync(&store.conn), ("delete".into(), 2));
        journal.end(&store.conn);
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
    }

    #[test]
    fn a_roster_with_contacts_or_open_elsewhere_keeps_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let store = Store::open(&path).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        let _: i64 = reader
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .unwrap();
        let journal = RollbackJournal::begin(&store.conn).unwrap();
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
        journal.end(&store.conn);
        drop(reader);

        add_contacts(&store.conn, 1);
        let journal = RollbackJournal::begin(&store.conn).unwrap();
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
        journal.end(&store.conn);
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
    }

    /// What a crash leaves: the database and its journal as they are on disk in the middle
    /// of a first import, its pages already spilling into the database file.
    #[test]
    fn a_first_import_cut_off_midway_is_undone_from_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let mut store = Store::open(&path).unwrap();
        let empty_size = std::fs::metadata(&path).unwrap().len();
        let journal = RollbackJournal::begin(&store.conn).unwrap();
        store.conn.pragma_update(None, "cache_size", 20).unwrap();
        let crashed = dir.path().join("crashed");
        std::fs::create_dir(&crashed).unwrap();
        {
            let tx = store.conn.transaction().unwrap();
            let deferred = Deferred::begin(&tx).unwrap();
            assert!(deferred.is_active());
            add_contacts(&tx, 20_000);
            // Meanwhile a reader is refused, and told why.
            let hint = hint_for_a_reader(&path);
            assert!(hint.contains("an import is writing"), "{hint}");
            for suffix in ["", "-journal"] {
                std::fs::copy(
                    dir.path().join(format!("roster.db{suffix}")),
                    crashed.join(format!("roster.db{suffix}")),
                )
                .unwrap();
            }
        }
        journal.end(&store.conn);
        let copy = crashed.join("roster.db");
        assert!(
            std::fs::metadata(&copy).unwrap().len() > empty_size * 4,
            "the import's pages reached the database file"
        );

        // A reader cannot undo it, and says who can.
        let hint = hint_for_a_reader(&copy);
        assert!(hint.contains("import was interrupted"), "{hint}");

        // The next writer does: the empty roster, whole, with every index back.
        let store = Store::open(&copy).unwrap();
        let check: String = store
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let contacts: i64 = store
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(contacts, 0);
        assert_eq!(
            schema(&store.conn),
            schema(&Store::open(&path).unwrap().conn)
        );
        assert!(!crashed.join("roster.db-journal").exists());
        assert_eq!(journal_and_sync(&store.conn), ("wal".into(), 1));
    }

    #[test]
    fn a_roster_with_contacts_keeps_every_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("roster.db")).unwrap();
        add_contacts(&store.conn, 1);
        let before = schema(&store.conn);
        let tx = store.conn.transaction().unwrap();
        let deferred = Deferred::begin(&tx).unwrap();
        assert!(!deferred.is_active());
        assert_eq!(schema(&tx), before);
    }
}
