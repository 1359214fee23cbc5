//! Safeguards: mass deactivations are refused, an empty feed deletes nothing, a killed
//! import leaves the old state or the new one, and database files are private.

use std::path::Path;
use std::time::Duration;

use roster_clever_mock::{District, MockServer};

use crate::clever::{clever_config, run_with_token, TOKEN};
use crate::harness::{count, fixtures, roster_state, Sandbox};

fn files_config(path: &Path) -> String {
    format!(
        "[database]\npath = \"roster.db\"\n[[source]]\nname = \"files\"\nplugin = \"csv\"\nformat = \"pickatime\"\npath = \"{}\"\n[[event]]\nname = \"Fall\"\nsource = \"files\"\nsync = true\n",
        path.display()
    )
}

#[test]
fn a_sync_that_would_deactivate_most_enrollments_is_refused_until_overridden() {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    crate::harness::copy_dir(&fixtures().join("pickatime"), &files);
    sandbox.write_config(&files_config(&files));
    sandbox.roster(&["import"]).ok();
    let before = roster_state(&sandbox.db());

    // A truncated enrollment file: 20 students' rows of 300.
    let enrollment = std::fs::read_to_string(files.join("Enrollment.txt")).unwrap();
    let cut: String = enrollment
        .lines()
        .take(21)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(files.join("Enrollment.txt"), cut).unwrap();

    let out = sandbox.roster(&["sync", "run", "--event", "Fall"]).failed();
    assert!(
        out.stderr.contains("refusing to deactivate"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("enrollments"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--allow-mass-deactivation"),
        "{}",
        out.stderr
    );
    assert_eq!(before, roster_state(&sandbox.db()));
    let recorded: String = sandbox
        .db()
        .query_row(
            "SELECT error FROM sync_runs WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(recorded.contains("of 1557 enrollments"), "{recorded}");

    // The dry run shows the diff; the override applies it.
    let dry = sandbox
        .roster(&[
            "sync",
            "run",
            "--event",
            "Fall",
            "--dry-run",
            "--allow-mass-deactivation",
        ])
        .ok();
    assert!(dry.stdout.contains("dry run"), "{}", dry.stdout);
    assert_eq!(before, roster_state(&sandbox.db()));
    sandbox
        .roster(&[
            "sync",
            "run",
            "--event",
            "Fall",
            "--allow-mass-deactivation",
        ])
        .ok();
    assert!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM enrollments WHERE active = 0"
        ) > 1000
    );
}

#[test]
fn a_source_that_returns_nothing_deletes_nothing() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(server.base_url(), "v3.0", "", ""));
    run_with_token(&sandbox, &["import"]).ok();
    let before = roster_state(&sandbox.db());
    drop(server);

    let mut empty = serde_json::to_value(District::demo()).unwrap();
    for key in [
        "schools", "terms", "courses", "students", "teachers", "staff", "sections", "contacts",
    ] {
        empty[key] = serde_json::json!([]);
    }
    let server = MockServer::start(serde_json::from_value(empty).unwrap(), TOKEN).unwrap();
    sandbox.write_config(&clever_config(server.base_url(), "v3.0", "", ""));
    let out = run_with_token(&sandbox, &["import", "--allow-mass-deactivation"]).failed();
    assert!(out.stderr.contains("returned nothing"), "{}", out.stderr);
    assert_eq!(before, roster_state(&sandbox.db()));
}

#[test]
fn database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new(&files_config(&fixtures().join("pickatime-pairs")));
    sandbox.roster(&["import"]).ok();
    let mode = std::fs::metadata(sandbox.db_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "roster.db mode {mode:o}");
}

#[test]
fn plugins_writable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new(&files_config(&fixtures().join("pickatime-pairs")));
    let dir = sandbox.dir.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let file = crate::harness::plugin_file("csv");
    let plugin = dir.join(&file);
    std::fs::copy(crate::harness::install().bin_dir.join(&file), &plugin).unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = sandbox
        .roster(&["--plugin-dir", dir.to_str().unwrap(), "import"])
        .failed();
    assert!(
        out.stderr.contains("writable by other users"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("chmod go-w"), "{}", out.stderr);
}

/// Kill the import at many points; each time the database is intact and holds either the
/// state before or the state after, and a re-run converges.
#[test]
fn a_killed_import_leaves_the_old_or_the_new_state() {
    // CI runs this at the bundled school's size; a larger run points ROSTER_E2E_CRASH_FILES
    // at a bigger pickAtime folder (e.g. one from `roster-bench`) and spaces the kill
    // points further apart with ROSTER_E2E_CRASH_STEP_MS (a multiplier).
    let files = std::env::var_os("ROSTER_E2E_CRASH_FILES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| fixtures().join("pickatime"));
    let step: u64 = std::env::var("ROSTER_E2E_CRASH_STEP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let reference = Sandbox::new(&files_config(&files));
    reference.roster(&["import"]).ok();
    let complete = roster_state(&reference.db());

    let sandbox = Sandbox::new(&files_config(&files));
    sandbox
        .roster(&["import", "--event", "Fall", "--dry-run"])
        .ok();
    let empty = roster_state(&sandbox.db());
    let mut outcomes = [0u32; 2];
    let mut journals = 0u32;
    for delay_ms in [
        0u64, 5, 10, 20, 30, 45, 60, 80, 100, 130, 160, 200, 250, 300, 400,
    ]
    .map(|d| d * step)
    {
        let mut child = std::process::Command::new(crate::harness::install().roster())
            .current_dir(sandbox.dir.path())
            .env("NO_COLOR", "1")
            .args(["-q", "import"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // A first import writes through a rollback journal: one killed midway leaves it
        // for the next connection to roll back.
        let journal = format!("{}-journal", sandbox.db_path().display());
        if std::path::Path::new(&journal).exists() {
            journals += 1;
        }
        let db = sandbox.db();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after {delay_ms} ms");
        let state = roster_state(&db);
        if state == empty {
            outcomes[0] += 1;
        } else {
            assert_eq!(
                state, complete,
                "after {delay_ms} ms: neither the old nor the new state"
            );
            outcomes[1] += 1;
            // Start over from empty for the next kill point.
            drop(db);
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", sandbox.db_path().display()));
            }
            sandbox.roster(&["import", "--dry-run"]).ok();
        }
    }
    eprintln!(
        "kill outcomes: {} old state, {} new state; {journals} left a journal to roll back",
        outcomes[0], outcomes[1]
    );
    // A re-run converges to the uninterrupted result.
    sandbox.roster(&["import"]).ok();
    assert_eq!(roster_state(&sandbox.db()), complete);
}

/// The same for a sync that changes existing rows: after a kill the roster is exactly the
/// state before the sync or the state after it.
#[test]
fn a_killed_sync_leaves_the_old_or_the_new_state() {
    let changed_files = |dir: &Path| {
        crate::harness::copy_dir(&fixtures().join("pickatime"), dir);
        let students = std::fs::read_to_string(dir.join("Student.txt")).unwrap();
        let renamed: String = students
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i > 0 && i % 2 == 0 {
                    format!("{}\n", line.replacen('\t', "\tRenamed", 1))
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(dir.join("Student.txt"), renamed).unwrap();
    };
    let reference = Sandbox::new("");
    let reference_files = reference.dir.path().join("files");
    crate::harness::copy_dir(&fixtures().join("pickatime"), &reference_files);
    reference.write_config(&files_config(&reference_files));
    reference.roster(&["import"]).ok();
    let before = roster_state(&reference.db());
    changed_files(&reference_files);
    reference.roster(&["sync", "run", "--all"]).ok();
    let after = roster_state(&reference.db());
    assert_ne!(before, after);

    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    crate::harness::copy_dir(&fixtures().join("pickatime"), &files);
    sandbox.write_config(&files_config(&files));
    sandbox.roster(&["import"]).ok();
    changed_files(&files);
    let mut outcomes = [0u32; 2];
    for delay_ms in [0u64, 10, 25, 50, 75, 100, 150, 200, 300] {
        let mut child = std::process::Command::new(crate::harness::install().roster())
            .current_dir(sandbox.dir.path())
            .args(["-q", "sync", "run", "--all"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let db = sandbox.db();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after {delay_ms} ms");
        let state = roster_state(&db);
        if state == before {
            outcomes[0] += 1;
            continue;
        }
        assert_eq!(
            state, after,
            "after {delay_ms} ms: neither the old nor the new state"
        );
        outcomes[1] += 1;
        break;
    }
    eprintln!(
        "sync kill outcomes: {} old state, {} new state",
        outcomes[0], outcomes[1]
    );
    sandbox.roster(&["sync", "run", "--all"]).ok();
    assert_eq!(roster_state(&sandbox.db()), after);
}
