//! The SQLite roster database: opening it safely and keeping its schema current.
//! **Architecture invariant:** only the host touches SQLite; plugins never see it.

mod schema;
mod wal_writes;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this roster knows ({known})")]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("database {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    #[error("another import or sync is already running on {path}{holder}")]
    Busy { path: String, holder: String },
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Open { source, .. } | StoreError::Sql { source, .. } => sqlite_hint(source),
            _ => None,
        }
    }
}

/// What a user can do about an SQLite error they may meet.
pub fn sqlite_hint(error: &rusqlite::Error) -> Option<String> {
    let error = error.sqlite_error()?;
    if error.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK {
        // A first import writes through a rollback journal (pipeline/bulk.rs); one that
        // was killed leaves it, and only a writing connection can roll it back.
        return Some(
            "an import was interrupted; the next `roster import` or `roster sync run` undoes it"
                .into(),
        );
    }
    (error.code == rusqlite::ErrorCode::DatabaseBusy).then(|| {
        "an import is writing the roster (a first import keeps it to itself until it ends); try again once it is done"
            .into()
    })
}

/// A connection that writes: through [`wal_writes`]' VFS, which gathers WAL frames into
/// large writes.
fn open_writing(path: &Path) -> rusqlite::Result<Connection> {
    wal_writes::register().map_err(|code| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some("cannot register roster's VFS with SQLite".into()),
        )
    })?;
    Connection::open_with_flags_and_vfs(path, OpenFlags::default(), wal_writes::VFS_NAME)
}

/// Process-wide SQLite settings: SQLite allocates from mimalloc like the rest of the host
/// (through glibc malloc, its page and statement allocations took an arena lock each),
/// and keeps no memory statistics, which take a global mutex on every allocation.
/// Together 15% of a large import.
///
/// Call it first thing in `main`, before any thread opens a connection:
/// `sqlite3_config` is not thread-safe. Once SQLite is initialised it refuses
/// (SQLITE_MISUSE) and nothing changes, so a late call is harmless, only useless.
pub fn configure_sqlite() {
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};

    unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
        libmimalloc_sys::mi_malloc(size as usize)
    }
    unsafe extern "C" fn free(pointer: *mut c_void) {
        libmimalloc_sys::mi_free(pointer)
    }
    unsafe extern "C" fn realloc(pointer: *mut c_void, size: c_int) -> *mut c_void {
        libmimalloc_sys::mi_realloc(pointer, size as usize)
    }
    unsafe extern "C" fn size(pointer: *mut c_void) -> c_int {
        libmimalloc_sys::mi_usable_size(pointer) as c_int
    }
    unsafe extern "C" fn roundup(size: c_int) -> c_int {
        libmimalloc_sys::mi_good_size(size as usize) as c_int
    }
    unsafe extern "C" fn init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn shutdown(_: *mut c_void) {}

    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: `sqlite3_config` runs once, before this process opens a connection (SQLite
        // copies `methods`); if SQLite was initialised already it returns SQLITE_MISUSE and
        // changes nothing, and SQLite keeps its default allocator.
        unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            );
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        }
    });
}

pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database for writing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        create_owner_only(path).map_err(|source| StoreError::Create {
            path: shown.clone(),
            source,
        })?;
        let conn = open_writing(path).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure().map_err(|source| StoreError::Sql {
            path: shown.clone(),
            source,
        })?;
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing database for reading only; never creates or migrates it.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|source| StoreError::Sql {
                path: shown,
                source,
            })?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Hold the database's writer lock for as long as the guard lives. One import or sync
    /// writes at a time; readers are not blocked (WAL), except by a first import into an
    /// empty roster (see `pipeline/bulk.rs`). The lock is an OS file lock, so a killed
    /// process releases it.
    pub fn lock_writer(&self) -> Result<WriterLock, StoreError> {
        let lock_path = lock_path(&self.path);
        let shown = self.path.display().to_string();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| StoreError::Create {
                path: lock_path.display().to_string(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::{Seek, Write};
                let _ = file.set_len(0);
                let _ = file.seek(std::io::SeekFrom::Start(0));
                let _ = write!(file, "{}", std::process::id());
                Ok(WriterLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&lock_path).unwrap_or_default();
                let holder = if pid.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (process {})", pid.trim())
                };
                Err(StoreError::Busy {
                    path: shown,
                    holder,
                })
            }
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Create {
                path: lock_path.display().to_string(),
                source,
            }),
        }
    }

    fn configure(&self) -> rusqlite::Result<()> {
        // WAL lets readers (browse, reports) work while an import writes.
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Plans that never depend on bound values. Without this, a statement comparing a
        // parameter with a partial index's condition (the dedupe stage's `c.role = ?`
        // against `contacts_student_match … WHERE role = 'student'`) is re-prepared every
        // time it is re-bound: a third of an import's time went into re-parsing SQL.
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        // An import prepares about 30 distinct statements (apply + dedupe); the default
        // cache of 16 would re-prepare some of them between phases.
        self.conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let sql_error = |source| StoreError::Sql {
            path: self.path.display().to_string(),
            source,
        };
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql_error)?;
        if version > schema::MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                path: self.path.display().to_string(),
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        if version > 0 && version < schema::MIGRATIONS.len() {
            // A large roster takes seconds to upgrade (migration 9 rewrites every
            // contact): say why the command has not started yet.
            tracing::info!(
                "upgrading {} from schema {version} to {}",
                self.path.display(),
                schema::MIGRATIONS.len()
            );
        }
        for (index, migration) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            let batch = format!(
                "BEGIN IMMEDIATE;\n{migration}\nPRAGMA user_version = {};\nCOMMIT;",
                index + 1
            );
            if let Err(error) = self.conn.execute_batch(&batch) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(sql_error(error));
            }
        }
        Ok(())
    }
}

/// Held while an import or sync writes; dropping it releases the lock.
pub struct WriterLock {
    _file: std::fs::File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

/// A school's roster is personal data: the database file is readable by its owner only.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let store = Store::open(&path).unwrap();
        let version: usize = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::MIGRATIONS.len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
        drop(store);
        // Opening again is a no-op migration.
        let again = Store::open(&path).unwrap();
        let _held = again.lock_writer().unwrap();
        let error = store_second(&path).lock_writer().err().unwrap().to_string();
        assert!(error.contains("already running"), "{error}");
    }

    /// A roster at `path` as the first `migrations` migrations left it.
    fn roster_before(path: &Path, migrations: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        for migration in &schema::MIGRATIONS[..migrations] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", migrations)
            .unwrap();
        conn
    }

    /// The opcodes SQLite runs for `sql`.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = statement.raw_query(); // unbound parameters are NULL
        let mut opcodes = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            opcodes.push(row.get(1).unwrap());
        }
        opcodes
    }

    #[test]
    fn contacts_check_role_and_access_level_without_a_temporary_table_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let insert = "INSERT INTO contacts (role, first_name, last_name, access_level)
                      VALUES (?1, 'A', 'B', ?2)";
        // A roster of the migrations before, with a contact, and a reader open on it.
        let conn = roster_before(&path, 6);
        conn.execute(insert, ["student", "customer"]).unwrap();
        assert!(opcodes(&conn, insert).contains(&"OpenEphemeral".to_string()));

        let store = Store::open(&path).unwrap();
        // The open connection notices the schema changed at its next statement.
        let _: i64 = conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .unwrap();
        for (name, conn) in [("migrating", &store.conn), ("open before", &conn)] {
            let ephemeral = "OpenEphemeral".to_string();
            assert!(!opcodes(conn, insert).contains(&ephemeral), "{name}");
            let update = "UPDATE contacts SET role = ?1 WHERE id = 1";
            assert!(!opcodes(conn, update).contains(&ephemeral), "{name}");
        }
        let conn = &store.conn;
        for (role, access) in [
            ("student", "customer"),
            ("teacher", "appointment_viewer"),
            ("parent", "appointment_maker"),
            ("staff", "resource_admin"),
            ("staff", "event_admin"),
            ("teacher", "admin"),
        ] {
            conn.execute(insert, [role, access]).unwrap();
        }
        for (role, access) in [
            ("robot", "customer"),
            ("student", "root"),
            ("Student", "customer"),
        ] {
            let error = conn
                .execute(insert, [role, access])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("CHECK constraint failed"),
                "{role} {access}: {error}"
            );
        }
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let count: i64 = conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 7);
    }

    #[test]
    fn links_keep_their_rows_without_a_source_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let links = "SELECT 'e', class_id, contact_id, 0, active FROM enrollments
                     UNION ALL SELECT 't', class_id, contact_id, is_primary, active FROM class_teachers
                     ORDER BY 1, 2, 3";
        type Link = (String, i64, i64, i64, i64);
        let read = |conn: &Connection| -> Vec<Link> {
            let mut statement = conn.prepare(links).unwrap();
            let rows = statement
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let before = {
            let conn = roster_before(&path, 7);
            conn.execute_batch(
                "INSERT INTO contacts (id, role, first_name, last_name, access_level)
                     VALUES (1, 'student', 'Ada', 'L', 'customer'), (2, 'student', 'Bo', 'M', 'customer'),
                            (3, 'teacher', 'Cy', 'N', 'appointment_viewer');
                 INSERT INTO classes (id, source, source_id, name, fingerprint)
                     VALUES (1, 'files', 'C1', 'Art', 0), (2, 'clever', 'c1', 'Art', 0);
                 INSERT INTO enrollments (class_id, contact_id, source, active)
                     VALUES (2, 1, 'clever', 1), (1, 1, 'files', 1), (1, 2, 'files', 0);
                 INSERT INTO class_teachers (class_id, contact_id, is_primary, source, active)
                     VALUES (1, 3, 1, 'files', 1), (2, 3, 0, 'clever', 0);",
            )
            .unwrap();
            read(&conn)
        };
        let store = Store::open(&path).unwrap();
        assert_eq!(read(&store.conn), before);
        for table in ["enrollments", "class_teachers"] {
            let columns: Vec<String> = store
                .conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                !columns.contains(&"source".to_string()),
                "{table}: {columns:?}"
            );
            // Still keyed by class and contact, and found by contact.
            let plan: String = store
                .conn
                .query_row(
                    &format!(
                        "EXPLAIN QUERY PLAN SELECT class_id FROM {table} WHERE contact_id = 1"
                    ),
                    [],
                    |r| r.get(3),
                )
                .unwrap();
            assert!(plan.starts_with("SEARCH"), "{table}: {plan}");
        }
        let duplicate = store.conn.execute(
            "INSERT INTO enrollments (class_id, contact_id) VALUES (1, 1)",
            [],
        );
        assert!(duplicate.unwrap_err().to_string().contains("UNIQUE"));
        let orphan = store.conn.execute(
            "INSERT INTO class_teachers (class_id, contact_id) VALUES (9, 3)",
            [],
        );
        assert!(orphan.unwrap_err().to_string().contains("FOREIGN KEY"));
        let check: String = store
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_contact_one_source_supplies_takes_that_sources_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        {
            let conn = roster_before(&path, 8);
            conn.execute_batch(
                "INSERT INTO contacts (id, role, first_name, last_name, access_level)
                     VALUES (1, 'student', 'Ada', 'L', 'customer'), (2, 'parent', 'Bo', 'M', 'customer'),
                            (3, 'staff', 'Cy', 'N', 'admin');
                 INSERT INTO contact_sources (contact_id, source, source_id, active, fingerprint)
                     VALUES (1, 'files', 'S1', 1, 11), (2, 'files', 'P2', 0, 21), (2, 'clever', 'p2', 1, 22);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut statement = store
            .conn
            .prepare(
                "SELECT c.id, s.source, s.fingerprint, s.active, c.fingerprint
                 FROM contacts c LEFT JOIN contact_sources s ON s.contact_id = c.id
                 ORDER BY c.id, s.source",
            )
            .unwrap();
        type Row = (i64, Option<String>, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = statement
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let files = || Some("files".to_string());
        assert_eq!(
            rows,
            [
                (1, files(), Some(0), Some(1), Some(11)),
                (2, Some("clever".to_string()), Some(22), Some(1), None),
                (2, files(), Some(21), Some(0), None),
                (3, None, None, None, None),
            ]
        );
    }

    /// Bytes of `conn`'s page cache in use.
    fn cache_used(conn: &Connection) -> i64 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is the open connection's; the call only reads a counter.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        i64::from(current)
    }

    /// A read on another connection of the process (the classes read alongside a job)
    /// leaves the job's pages in its cache. `.cargo/config.toml` builds SQLite without
    /// `SQLITE_ENABLE_MEMORY_MANAGEMENT`, under which every connection of a process
    /// draws on one cache with one least-recently-used list: a reader's pages took the
    /// place of the job's.
    #[test]
    fn each_connection_keeps_its_own_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let store = Store::open(&path).unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TABLE a (v BLOB); CREATE TABLE b (v BLOB);
                 WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
                 INSERT INTO a SELECT randomblob(3000) FROM n;
                 INSERT INTO b SELECT v FROM a;",
            )
            .unwrap();
        let options: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM pragma_compile_options
                 WHERE compile_options = 'ENABLE_MEMORY_MANAGEMENT'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(options, 0, "SQLite built with ENABLE_MEMORY_MANAGEMENT");
        let read_all = |conn: &Connection, table: &str| {
            let _: i64 = conn
                .query_row(&format!("SELECT sum(length(v)) FROM {table}"), [], |r| {
                    r.get(0)
                })
                .unwrap();
        };
        // Both caches full: 500 pages each, of tables of 1,500.
        let job = &store.conn;
        job.pragma_update(None, "cache_size", 500).unwrap();
        let tx = job.unchecked_transaction().unwrap();
        read_all(&tx, "a");
        let before = cache_used(&tx);
        assert!(before > 400 * 4096, "{before}");
        let reader = Connection::open(&path).unwrap();
        reader.pragma_update(None, "cache_size", 500).unwrap();
        read_all(&reader, "b");
        assert!(cache_used(&reader) > 400 * 4096);
        assert_eq!(
            cache_used(&tx),
            before,
            "the job's cache after the reader's"
        );
    }

    fn store_second(path: &Path) -> Store {
        Store::open(path).unwrap()
    }

    #[test]
    fn identifiers_keep_their_rows_and_uniqueness_when_rekeyed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let rows =
            "SELECT contact_id, source, kind, value FROM contact_ids ORDER BY contact_id, source";
        let before: Vec<(i64, String, String, String)> = {
            let conn = roster_before(&path, 3);
            conn.execute_batch(
                "INSERT INTO contacts (id, role, first_name, last_name, access_level)
                     VALUES (1, 'student', 'Ada', 'L', 'customer'), (2, 'student', 'Bo', 'M', 'customer');
                 INSERT INTO contact_ids (contact_id, source, kind, value)
                     VALUES (1, 'files', 'StudentID', 'S1'), (1, 'clever', 'sis_id', 'S1'),
                            (2, 'files', 'StudentID', 'S2'), (2, 'clever', 'sis_id', 'S2');",
            )
            .unwrap();
            let mut statement = conn.prepare(rows).unwrap();
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let store = Store::open(&path).unwrap();
        let mut statement = store.conn.prepare(rows).unwrap();
        let after: Vec<(i64, String, String, String)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(after, before);
        let duplicate = store.conn.execute(
            "INSERT INTO contact_ids (contact_id, source, kind, value) VALUES (2, 'files', 'StudentID', 'S1')",
            [],
        );
        assert!(
            duplicate.unwrap_err().to_string().contains("UNIQUE"),
            "(source, kind, value) stays unique"
        );
        // Both lookups the importer makes go through a B-tree, not a scan.
        for sql in [
            "SELECT contact_id FROM contact_ids WHERE kind = 'sis_id' AND value = 'S1'",
            "SELECT kind FROM contact_ids WHERE contact_id = 1 AND source = 'files'",
        ] {
            let plan: String = store
                .conn
                .query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [], |r| r.get(3))
                .unwrap();
            assert!(plan.starts_with("SEARCH"), "{sql}: {plan}");
        }
    }
}
