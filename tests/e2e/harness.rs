//! Builds the real `roster` binary and plugin files once, lays them out as an install
//! (binary with its plugins beside it), and gives each test its own folder and database.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

pub const GOOD_PLUGINS: &[&str] = &["csv", "clever", "oneroster"];
pub const TEST_PLUGINS: &[&str] = &["panicking", "wrong_abi"];

pub struct Install {
    _dir: tempfile::TempDir,
    pub bin_dir: PathBuf,
    /// Plugins built only to test failure handling; not in the install.
    pub test_plugin_dir: PathBuf,
}

impl Install {
    pub fn roster(&self) -> PathBuf {
        self.bin_dir.join("roster")
    }
}

/// Build once per test run: the binary and the plugin files, which `cargo test` does not
/// leave in the target folder for another package's tests.
pub fn install() -> &'static Install {
    static INSTALL: OnceLock<Install> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let (mut build, profile) = roster_core::conformance::cargo_build_from_test().unwrap();
        build.current_dir(repo_root());
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the binary and plugins failed");

        let dir = tempfile::tempdir().unwrap();
        let bin_dir = dir.path().join("bin");
        let test_plugin_dir = dir.path().join("test-plugins");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::fs::create_dir_all(&test_plugin_dir).unwrap();
        copy_executable(&profile.join("roster"), &bin_dir.join("roster"));
        for name in GOOD_PLUGINS {
            let file = plugin_file(name);
            copy_executable(&profile.join(&file), &bin_dir.join(&file));
        }
        for name in TEST_PLUGINS {
            let file = plugin_file(name);
            copy_executable(&profile.join(&file), &test_plugin_dir.join(&file));
        }
        Install {
            _dir: dir,
            bin_dir,
            test_plugin_dir,
        }
    })
}

pub fn plugin_file(name: &str) -> String {
    format!(
        "{}roster_plugin_{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

fn copy_executable(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// One test's folder: its config, its database, its output.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(config: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("importer.toml"), config).unwrap();
        Sandbox { dir }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("roster.db")
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("importer.toml"), config).unwrap();
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(install().roster());
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("ROSTER_PLUGIN_DIR")
            .env_remove("ROSTER_CONFIG");
        cmd
    }

    pub fn roster(&self, args: &[&str]) -> Output {
        let output = self.cmd().args(args).output().unwrap();
        Output {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).unwrap()
    }
}

#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(
            self.status,
            Some(0),
            "roster failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failed(self) -> Output {
        assert_ne!(
            self.status,
            Some(0),
            "roster should have failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.status.is_some(),
            "roster was killed by a signal:\n{}",
            self.stderr
        );
        self
    }
}

/// A whole-database digest: every row of every roster table, sorted. Equal digests mean
/// the database holds exactly the same data.
pub fn snapshot(conn: &rusqlite::Connection) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let table_rows = query_rows(conn, &format!("SELECT * FROM {table}"));
        rows.extend(table_rows.into_iter().map(|row| format!("{table}|{row}")));
    }
    rows.sort();
    rows
}

/// Each row `sql` returns, its values joined with `|`: text as text, numbers as numbers,
/// `NULL`, blobs as their bytes.
pub fn query_rows(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    use rusqlite::types::ValueRef;
    let mut statement = conn.prepare(sql).unwrap();
    let columns = statement.column_count();
    let mut query = statement.query([]).unwrap();
    let mut rows = Vec::new();
    while let Some(row) = query.next().unwrap() {
        let values: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i).unwrap() {
                ValueRef::Null => "NULL".to_string(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                ValueRef::Blob(bytes) => format!("{bytes:?}"),
            })
            .collect();
        rows.push(values.join("|"));
    }
    rows
}

/// Two [`snapshot`]s hold the same rows; the rows only one has are shown if not.
#[track_caller]
pub fn assert_same_rows(left: &[String], right: &[String]) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|row| !b.contains(row)).cloned().collect()
    };
    let (left_only, right_only) = (only(left, right), only(right, left));
    assert!(
        left_only.is_empty() && right_only.is_empty(),
        "only in the first:\n{}\nonly in the second:\n{}",
        left_only.join("\n"),
        right_only.join("\n")
    );
}

pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The roster a database holds: [`snapshot`] without the run log (`sync_runs` grows with
/// every attempt, failed ones included), without events' creation times, and without the
/// context a checkpoint is kept under (a digest of the source's config, whose paths
/// differ between two sandboxes).
pub fn roster_state(conn: &rusqlite::Connection) -> Vec<String> {
    snapshot(conn)
        .into_iter()
        .filter(|r| !r.starts_with("sync_runs|"))
        .map(|r| {
            if r.starts_with("events|") {
                return r
                    .rsplit_once('|')
                    .map(|(head, _)| head.to_string())
                    .unwrap_or(r);
            }
            if r.starts_with("source_checkpoints|") {
                let cells: Vec<&str> = r.splitn(4, '|').collect();
                if let [table, source, _context, checkpoint] = cells[..] {
                    return format!("{table}|{source}|{checkpoint}");
                }
            }
            r
        })
        .collect()
}

/// Copy a fixture folder's files, so a test can change them.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
