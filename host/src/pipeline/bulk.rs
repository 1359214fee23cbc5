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

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction};

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

/// A first import's foreign keys: off while it writes, proven before it commits, on again
/// after it ends.
///
/// With foreign keys on, SQLite looks up the parent of every row as it is written: 25
/// million lookups in a first import of nyc, a fifth of it (8 s of 40 for the files, 10
/// of 58 for Clever). Such an import refers only to rows it has just written, so the
/// check is made once, before the commit, by [`ForeignKeys::prove`]: what SQLite would
/// have refused row by row is refused there, and nothing is written. `PRAGMA
/// foreign_keys` is the connection's own and cannot change inside a transaction, so it is
/// set before the import's transaction begins, like the journal.
#[derive(Debug)]
#[must_use = "foreign keys come back on with `end`"]
pub struct ForeignKeys {
    switched: bool,
}

/// Rows that would break a foreign key; the import is refused.
#[derive(Debug, thiserror::Error)]
#[error("{child}.{column} = {value} refers to no row of {parent}")]
pub struct BrokenReference {
    pub child: String,
    pub column: String,
    pub parent: String,
    pub value: String,
}

impl ForeignKeys {
    pub fn begin(conn: &Connection) -> rusqlite::Result<ForeignKeys> {
        let unchanged = ForeignKeys { switched: false };
        let on: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
        if !on || !roster_is_empty(conn)? {
            return Ok(unchanged);
        }
        conn.pragma_update(None, "foreign_keys", false)?;
        let off = !conn.pragma_query_value::<bool, _>(None, "foreign_keys", |r| r.get(0))?;
        Ok(ForeignKeys { switched: off })
    }

    /// Check every foreign key of every table, as SQLite would have row by row; call
    /// before committing. A no-op when foreign keys stayed on.
    ///
    /// A key that refers to a table's rowid (all of the roster's but one) is proven from
    /// a few index lookups: when the parent's ids are every integer from its least to its
    /// greatest (a count equal to the span; a first import deletes nothing), a child's
    /// values refer to rows exactly when its least and greatest do. The import binds
    /// every id as an integer; a text value sorts above every number, so it fails the
    /// bound too. Any other key, or ids with gaps, gets SQLite's own
    /// `PRAGMA foreign_key_check` on the child table.
    pub fn prove(&self, tx: &Transaction<'_>) -> Result<(), ProveError> {
        if !self.switched {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let tables: Vec<String> = tx
            .prepare(
                "SELECT name FROM pragma_table_list
                 WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut parents: std::collections::HashMap<String, Parent> = Default::default();
        for child in &tables {
            let keys = foreign_keys_of(tx, child)?;
            let mut row_by_row = false;
            for key in &keys {
                if !parents.contains_key(&key.parent) {
                    parents.insert(key.parent.clone(), Parent::read(tx, &key.parent)?);
                }
                let parent = &parents[&key.parent];
                // A key of several columns, or not to a rowid, is checked row by row, as
                // are rowids with gaps.
                let ids = match parent.ids {
                    Some(ids) if key.is_single(&keys) && parent.is_rowid(key) => ids,
                    _ => Rowids::Gaps,
                };
                if ids == Rowids::Gaps {
                    row_by_row = true;
                    continue;
                }
                for bound in ["min", "max"] {
                    let value: Value = tx.query_row(
                        &format!("SELECT {bound}(\"{}\") FROM \"{child}\"", key.column),
                        [],
                        |r| r.get(0),
                    )?;
                    let refers = match (&value, ids) {
                        (Value::Null, _) => true,
                        (Value::Integer(id), Rowids::Every(least, greatest)) => {
                            (least..=greatest).contains(id)
                        }
                        _ => false,
                    };
                    if !refers {
                        return Err(ProveError::Broken(BrokenReference {
                            child: child.clone(),
                            column: key.column.clone(),
                            parent: key.parent.clone(),
                            value: format!("{value:?}"),
                        }));
                    }
                }
            }
            if row_by_row {
                if let Some(broken) = first_broken(tx, child, &keys)? {
                    return Err(ProveError::Broken(broken));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::debug!("foreign keys proven in {seconds:.2} s");
        Ok(())
    }

    /// Foreign keys on again. Failing would leave the connection without them, so it is
    /// an error.
    pub fn end(self, conn: &Connection) -> rusqlite::Result<()> {
        if !self.switched {
            return Ok(());
        }
        conn.pragma_update(None, "foreign_keys", true)?;
        match conn.pragma_query_value::<bool, _>(None, "foreign_keys", |r| r.get(0))? {
            true => Ok(()),
            false => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some("foreign keys stayed off after a first import".into()),
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Broken(BrokenReference),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// One column of a foreign key (`id` numbers the keys of the table; a key of several
/// columns has several rows).
struct KeyColumn {
    id: i64,
    parent: String,
    column: String,
    /// The parent's column; `None` for its primary key.
    to: Option<String>,
}

impl KeyColumn {
    fn is_single(&self, keys: &[KeyColumn]) -> bool {
        keys.iter().filter(|k| k.id == self.id).count() == 1
    }
}

fn foreign_keys_of(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Vec<KeyColumn>> {
    tx.prepare(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?
    .query_map([table], |r| {
        Ok(KeyColumn {
            id: r.get(0)?,
            parent: r.get(1)?,
            column: r.get(2)?,
            to: r.get(3)?,
        })
    })?
    .collect()
}

/// SQLite's own check of every row of `child`: the first reference it finds broken.
fn first_broken(
    tx: &Transaction<'_>,
    child: &str,
    keys: &[KeyColumn],
) -> rusqlite::Result<Option<BrokenReference>> {
    let broken = tx
        .prepare("SELECT rowid, parent, fkid FROM pragma_foreign_key_check(?1) LIMIT 1")?
        .query_row([child], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    let Some((rowid, parent, id)) = broken else {
        return Ok(None);
    };
    let columns: Vec<&KeyColumn> = keys.iter().filter(|k| k.id == id).collect();
    // The value itself, for a key of one column; the row (if it has a rowid) otherwise.
    let value = match columns.as_slice() {
        [key] => tx
            .query_row(
                &format!(
                    "SELECT c.\"{column}\" FROM \"{child}\" c WHERE c.\"{column}\" IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM \"{parent}\" p WHERE p.\"{to}\" = c.\"{column}\")
                     LIMIT 1",
                    column = key.column,
                    to = key.to.as_deref().unwrap_or("rowid"),
                ),
                [],
                |r| r.get::<_, Value>(0),
            )
            .map(|value| format!("{value:?}"))
            .ok(),
        _ => None,
    };
    Ok(Some(BrokenReference {
        child: child.to_string(),
        column: columns
            .iter()
            .map(|k| k.column.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        parent,
        value: value
            .unwrap_or_else(|| rowid.map_or("a row".into(), |r| format!("the row with rowid {r}"))),
    }))
}

/// What the proof needs of a table that keys refer to: which column is its rowid (its
/// `INTEGER PRIMARY KEY`), if one is, and then what its rowids are.
struct Parent {
    rowid_alias: Option<String>,
    ids: Option<Rowids>,
}

/// A table's rowids.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rowids {
    /// None: the table has no rows.
    Empty,
    /// Every integer from the first to the second.
    Every(i64, i64),
    /// Some integers between its least and greatest are not rowids.
    Gaps,
}

impl Parent {
    fn read(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Parent> {
        let without_rowid: bool = tx.query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        let keys: Vec<(String, String)> = tx
            .prepare("SELECT name, type FROM pragma_table_info(?1) WHERE pk > 0")?
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let rowid_alias = match keys.as_slice() {
            [(name, kind)] if !without_rowid && kind.eq_ignore_ascii_case("INTEGER") => {
                Some(name.clone())
            }
            _ => None,
        };
        let ids = match rowid_alias {
            Some(_) => Some(rowids(tx, table)?),
            None => None,
        };
        Ok(Parent { rowid_alias, ids })
    }

    /// Whether `key` names this table's rowid.
    fn is_rowid(&self, key: &KeyColumn) -> bool {
        self.rowid_alias.as_ref().is_some_and(|alias| {
            key.to
                .as_ref()
                .is_none_or(|to| to.eq_ignore_ascii_case(alias))
        })
    }
}

fn rowids(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Rowids> {
    let rows: i64 = tx.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })?;
    if rows == 0 {
        return Ok(Rowids::Empty);
    }
    let bound = |bound: &str| -> rusqlite::Result<i64> {
        tx.query_row(
            &format!("SELECT {bound}(rowid) FROM \"{table}\""),
            [],
            |r| r.get(0),
        )
    };
    let (least, greatest) = (bound("min")?, bound("max")?);
    let span = greatest
        .checked_sub(least)
        .and_then(|span| span.checked_add(1));
    Ok(if span == Some(rows) {
        Rowids::Every(least, greatest)
    } else {
        Rowids::Gaps
    })
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

    fn foreign_keys_on(conn: &rusqlite::Connection) -> bool {
        conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap()
    }

    /// Contacts with these ids, a class (id 1) and enrollments of `enrolled` in it; then
    /// what `prove` says of it.
    fn prove_after(
        contacts: &[i64],
        enrolled: &[rusqlite::types::Value],
    ) -> Result<(), ProveError> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("roster.db")).unwrap();
        let foreign_keys = ForeignKeys::begin(&store.conn).unwrap();
        assert!(
            !foreign_keys_on(&store.conn),
            "an empty roster is written without them"
        );
        let tx = store.conn.transaction().unwrap();
        for id in contacts {
            tx.execute(
                "INSERT INTO contacts (id, role, first_name, last_name, access_level)
                 VALUES (?1, 'student', 'A', 'B', 'customer')",
                [id],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO classes (id, source, source_id, name, fingerprint) VALUES (1, 's', 'c', 'C', 0)",
            [],
        )
        .unwrap();
        for contact in enrolled {
            tx.execute(
                "INSERT INTO enrollments (class_id, contact_id) VALUES (1, ?1)",
                [contact],
            )
            .unwrap();
        }
        let proven = foreign_keys.prove(&tx);
        drop(tx);
        foreign_keys.end(&store.conn).unwrap();
        assert!(foreign_keys_on(&store.conn), "on again after the import");
        proven
    }

    fn broken(result: Result<(), ProveError>) -> String {
        match result {
            Err(ProveError::Broken(broken)) => broken.to_string(),
            other => panic!("expected a broken reference, got {other:?}"),
        }
    }

    #[test]
    fn a_first_import_proves_its_foreign_keys_before_it_commits() {
        use rusqlite::types::Value::{Integer, Text};
        // Ids from 1 to 3 with no gap: the bounds decide.
        prove_after(&[1, 2, 3], &[Integer(1), Integer(3)]).unwrap();
        assert_eq!(
            broken(prove_after(&[1, 2, 3], &[Integer(1), Integer(4)])),
            "enrollments.contact_id = Integer(4) refers to no row of contacts"
        );
        assert_eq!(
            broken(prove_after(&[2, 3], &[Integer(1), Integer(3)])),
            "enrollments.contact_id = Integer(1) refers to no row of contacts"
        );
        assert_eq!(
            broken(prove_after(&[1], &[Text("1x".into())])),
            "enrollments.contact_id = Text(\"1x\") refers to no row of contacts"
        );
        assert_eq!(
            broken(prove_after(&[], &[Integer(1)])),
            "enrollments.contact_id = Integer(1) refers to no row of contacts"
        );
        // A gap: every row is looked up, as SQLite would have.
        prove_after(&[1, 3, 4], &[Integer(1), Integer(4)]).unwrap();
        assert_eq!(
            broken(prove_after(
                &[1, 3, 4],
                &[Integer(1), Integer(2), Integer(4)]
            )),
            "enrollments.contact_id = Integer(2) refers to no row of contacts"
        );
    }

    #[test]
    fn a_key_to_text_is_checked_row_by_row_and_a_roster_with_contacts_keeps_them_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("roster.db")).unwrap();
        let foreign_keys = ForeignKeys::begin(&store.conn).unwrap();
        let tx = store.conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO source_checkpoint_parts (source, part, bytes) VALUES ('nobody', 1, x'00')",
            [],
        )
        .unwrap();
        assert_eq!(
            broken(foreign_keys.prove(&tx)),
            "source_checkpoint_parts.source = Text(\"nobody\") refers to no row of source_checkpoints"
        );
        tx.rollback().unwrap();
        foreign_keys.end(&store.conn).unwrap();

        store
            .conn
            .execute(
                "INSERT INTO contacts (role, first_name, last_name, access_level)
                 VALUES ('student', 'A', 'B', 'customer')",
                [],
            )
            .unwrap();
        let foreign_keys = ForeignKeys::begin(&store.conn).unwrap();
        assert!(foreign_keys_on(&store.conn));
        let tx = store.conn.transaction().unwrap();
        let refused = tx.execute(
            "INSERT INTO enrollments (class_id, contact_id) VALUES (7, 7)",
            [],
        );
        let error = refused.unwrap_err().to_string();
        assert!(
            error.contains("FOREIGN KEY"),
            "checked as it is written: {error}"
        );
        foreign_keys.prove(&tx).unwrap();
        drop(tx);
        foreign_keys.end(&store.conn).unwrap();
    }
}
