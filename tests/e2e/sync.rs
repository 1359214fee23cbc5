//! Events, the Class Editor and the sync: what an admin pruned survives, what the source
//! changed is applied, and nothing else is rewritten.

use std::path::Path;

use crate::harness::{count, fixtures, Sandbox};

fn config(files: &Path, extra: &str) -> String {
    format!(
        r#"
[database]
path = "roster.db"
{extra}
[[source]]
name = "files"
plugin = "csv"
format = "pickatime"
path = "{}"
school = "Pairs Elementary"

[[event]]
name = "Fall"
source = "files"
sync = true

[[event]]
name = "Spring"
source = "files"
sync = true
"#,
        files.display()
    )
}

fn last_summary(sandbox: &Sandbox, event: &str) -> serde_json::Value {
    let text: String = sandbox
        .db()
        .query_row(
            "SELECT r.summary FROM sync_runs r JOIN events e ON e.id = r.event_id
             WHERE e.name = ?1 AND r.status = 'ok' ORDER BY r.id DESC LIMIT 1",
            [event],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn counts(summary: &serde_json::Value, entity: &str) -> [u64; 4] {
    let c = &summary["entities"][entity];
    ["inserted", "updated", "unchanged", "deactivated"].map(|k| c[k].as_u64().unwrap_or(0))
}

#[test]
fn a_sync_restores_deleted_classes_keeps_hidden_ones_and_applies_only_the_changes() {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    crate::harness::copy_dir(&fixtures().join("pickatime-pairs"), &files);
    sandbox.write_config(&config(&files, ""));
    sandbox.roster(&["import", "--event", "Fall"]).ok();

    // The admin prunes: two classes deleted (by source id and by database id), one hidden.
    let c2_id: i64 = sandbox
        .db()
        .query_row("SELECT id FROM classes WHERE source_id = 'C2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let c2 = c2_id.to_string();
    sandbox
        .roster(&["classes", "delete", "--event", "Fall", "C1", &c2, "--yes"])
        .ok();
    sandbox
        .roster(&["classes", "hide", "--event", "Fall", "C3"])
        .ok();
    let listed = sandbox
        .roster(&["classes", "list", "--event", "Fall"])
        .ok()
        .stdout;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("C3") && listed.contains("hidden"),
        "{listed}"
    );

    // The source changes: S1 moves from C1 to C3, teacher T2 leaves (C2 passes to T1,
    // C3 is no longer co-taught), and a new class C4 appears with S2 in it.
    std::fs::write(files.join("Teacher.tsv"), "TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tMary\tJackson\tmary.jackson@school.example.org\t12\n").unwrap();
    std::fs::write(files.join("Class.tsv"), "ClassID\tTeacherID\tClassName\nC1\tT1\tMath 6\nC2\tT1\tScience 6\nC3\tT1\t\nC4\tT1\tArt 6\n").unwrap();
    std::fs::write(
        files.join("Enrollment.tsv"),
        "StudentID\tClassID\nS1\tC3\nS1\tC2\nS2\tC1\nS3\tC3\nS4\tC2\nS2\tC4\n",
    )
    .unwrap();

    // Record every row the sync rewrites.
    sandbox
        .db()
        .execute_batch(
            "CREATE TABLE audit (tbl TEXT, what TEXT);
             CREATE TRIGGER a1 AFTER UPDATE ON contacts BEGIN INSERT INTO audit VALUES ('contacts', NEW.id); END;
             CREATE TRIGGER a2 AFTER UPDATE ON classes BEGIN INSERT INTO audit VALUES ('classes', NEW.source_id); END;
             CREATE TRIGGER a3 AFTER UPDATE ON enrollments BEGIN INSERT INTO audit VALUES ('enrollments', NEW.class_id || '/' || NEW.contact_id); END;
             CREATE TRIGGER a4 AFTER UPDATE ON class_teachers BEGIN INSERT INTO audit VALUES ('class_teachers', NEW.class_id || '/' || NEW.contact_id); END;
             CREATE TRIGGER a5 AFTER UPDATE ON schools BEGIN INSERT INTO audit VALUES ('schools', NEW.id); END;",
        )
        .unwrap();
    sandbox.roster(&["sync", "run", "--event", "Fall"]).ok();

    let db = sandbox.db();
    let listed: Vec<(String, bool)> = db
        .prepare("SELECT c.source_id, ec.hidden FROM event_classes ec JOIN classes c ON c.id = ec.class_id JOIN events e ON e.id = ec.event_id WHERE e.name = 'Fall' ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        listed,
        vec![
            ("C1".into(), false),
            ("C2".into(), false),
            ("C3".into(), true),
            ("C4".into(), false)
        ]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM visible_event_classes v JOIN events e ON e.id = v.event_id WHERE e.name = 'Fall'"), 3);

    // The sync continued from the import: it read only the rows that changed, so what
    // it counts as unchanged is what those rows sent again (C2 and C3, whose teachers
    // changed; S1's and S2's other enrollments).
    let summary = last_summary(&sandbox, "Fall");
    assert_eq!(counts(&summary, "schools"), [0, 0, 1, 0]);
    assert_eq!(counts(&summary, "classes"), [1, 0, 2, 0]);
    assert_eq!(counts(&summary, "students"), [0, 0, 0, 0]);
    assert_eq!(counts(&summary, "teachers"), [0, 0, 0, 1]);
    assert_eq!(counts(&summary, "enrollments"), [2, 0, 2, 1]);
    assert_eq!(counts(&summary, "class_teachers"), [2, 0, 1, 2]);

    // The changes are in the roster: S1 is in C3 and no longer in C1; T2 is inactive.
    let enrolled = |student: &str, class: &str| -> i64 {
        db.query_row(
            "SELECT e.active FROM enrollments e JOIN classes c ON c.id = e.class_id
             JOIN contact_ids i ON i.contact_id = e.contact_id AND i.value = ?1 WHERE c.source_id = ?2",
            [student, class],
            |r| r.get(0),
        )
        .unwrap_or(-1)
    };
    assert_eq!(enrolled("S1", "C3"), 1);
    assert_eq!(enrolled("S1", "C1"), 0);
    assert_eq!(enrolled("S2", "C4"), 1);
    assert_eq!(count(&db, "SELECT c.active FROM contacts c JOIN contact_ids i ON i.contact_id = c.id WHERE i.value = 'T2'"), 0);

    // Only what changed was rewritten: T2, S1's old enrollment, T2's two classes.
    let audit: Vec<String> = db
        .prepare("SELECT tbl FROM audit ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        audit,
        vec![
            "class_teachers",
            "class_teachers",
            "contacts",
            "enrollments"
        ]
    );

    // The other event was not touched by Fall's sync; a later sync of everything works.
    assert_eq!(count(&db, "SELECT count(*) FROM event_classes ec JOIN events e ON e.id = ec.event_id WHERE e.name = 'Spring'"), 0);
    // It continues from the last run, which nothing changed since: no enrollment is
    // touched.
    sandbox.roster(&["sync", "run", "--all"]).ok();
    assert_eq!(
        counts(&last_summary(&sandbox, "Fall"), "enrollments"),
        [0, 0, 0, 0]
    );
}

#[test]
fn stop_all_lists_the_sync_enabled_events_and_needs_a_yes() {
    let sandbox = Sandbox::new("");
    sandbox.write_config(&config(&fixtures().join("pickatime-pairs"), ""));
    sandbox.roster(&["import"]).ok();
    sandbox
        .roster(&["events", "create", "Winter", "--source", "files"])
        .ok();
    let before = crate::harness::snapshot(&sandbox.db());

    let out = sandbox
        .cmd()
        .args(["sync", "stop", "--all"])
        .write_stdin("no\n")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(listed, vec!["Fall", "Spring"], "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));
    assert_eq!(before, crate::harness::snapshot(&sandbox.db()));

    sandbox.roster(&["sync", "stop", "--all", "--yes"]).ok();
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM events WHERE sync_enabled = 1"
        ),
        0
    );
    sandbox.roster(&["sync", "start", "--event", "Spring"]).ok();
    let status = sandbox.roster(&["sync", "status"]).ok().stdout;
    let spring = status.lines().find(|l| l.starts_with("Spring")).unwrap();
    assert!(spring.contains(" on "), "{status}");
}

#[test]
fn the_daemon_catches_up_a_missed_night_and_failures_notify() {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    crate::harness::copy_dir(&fixtures().join("pickatime-pairs"), &files);
    let notify = "[sync]\ntime = \"01:00\"\ntime_zone = \"America/New_York\"\n[notify]\ncommand = \"cat >> notified.json\"\ncontacts = [\"office@school.example.org\"]\n";
    sandbox.write_config(&config(&files, notify));
    sandbox.roster(&["import"]).ok();

    // The last nightly run was two days ago: the machine was down last night.
    sandbox
        .db()
        .execute("INSERT INTO sync_runs (kind, started_at, finished_at, status) VALUES ('nightly', '2000-01-01T06:00:00Z', '2000-01-01T06:01:00Z', 'ok')", [])
        .unwrap();
    sandbox.roster(&["daemon", "--once"]).ok();
    assert_eq!(count(&sandbox.db(), "SELECT count(*) FROM sync_runs WHERE kind = 'nightly' AND status = 'ok' AND event_id IS NOT NULL"), 2);
    // Caught up: running again owes nothing.
    sandbox.roster(&["daemon", "--once"]).ok();
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM sync_runs WHERE kind = 'nightly'"
        ),
        3
    );

    // A sync that fails is recorded and the notification command hears about it.
    std::fs::remove_file(files.join("Student.tsv")).unwrap();
    sandbox.roster(&["sync", "run", "--event", "Fall"]).failed();
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM sync_runs WHERE kind = 'sync' AND status = 'failed'"
        ),
        1
    );
    let notified = std::fs::read_to_string(sandbox.dir.path().join("notified.json")).unwrap();
    let notice: serde_json::Value = serde_json::from_str(notified.trim()).unwrap();
    assert_eq!(notice["event"], "Fall");
    assert_eq!(notice["status"], "failed");
    assert_eq!(notice["contacts"][0], "office@school.example.org");
    assert!(
        notice["error"].as_str().unwrap().contains("Student"),
        "{notice}"
    );
}

#[test]
fn a_second_writer_is_refused_while_one_runs() {
    let sandbox = Sandbox::new("");
    sandbox.write_config(&config(&fixtures().join("pickatime-pairs"), ""));
    sandbox.roster(&["import"]).ok();
    // Hold the writer lock the way a running import does.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(sandbox.dir.path().join("roster.db.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let out = sandbox.roster(&["sync", "run", "--all"]).failed();
    assert!(out.stderr.contains("already running"), "{}", out.stderr);
    // Reading still works.
    sandbox.roster(&["classes", "list", "--event", "Fall"]).ok();
    drop(lock);
    sandbox.roster(&["sync", "run", "--all"]).ok();
}

#[test]
fn fees_count_the_schools_attached_to_events() {
    let sandbox = Sandbox::new("");
    sandbox.write_config(&config(
        &fixtures().join("pickatime-pairs"),
        "[fees]\nper_school = 250\n",
    ));
    sandbox.roster(&["import"]).ok();
    let out = sandbox.roster(&["fees"]).ok().stdout;
    assert!(out.contains("Pairs Elementary"), "{out}");
    assert!(
        out.contains("1 school attached × $250 = $250 a year"),
        "{out}"
    );
    let out = sandbox.roster(&["fees", "--per-school", "230"]).ok().stdout;
    assert!(out.contains("= $230 a year"), "{out}");
}
