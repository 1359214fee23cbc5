//! The admin's workflow around imports: browse a source before importing, templates and
//! the clean slate, and the guided switch preview.

use roster_clever_mock::{District, MockServer};

use crate::clever::{clever_config, run_with_token, TOKEN};
use crate::harness::{count, fixtures, roster_state, snapshot, Sandbox};

#[test]
fn the_data_browser_reads_the_source_without_importing_and_the_database_after() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(server.base_url(), "v3.0", "", ""));

    let terms = run_with_token(&sandbox, &["browse", "terms"]).ok().stdout;
    for term in [
        "2025-26 Semester 1",
        "2025-26 Semester 2",
        "2025-26 Full Year",
    ] {
        assert!(terms.contains(term), "{terms}");
    }
    // Browsing wrote nothing: not even a database file.
    assert!(!sandbox.db_path().exists());

    let sections = run_with_token(
        &sandbox,
        &["browse", "sections", "--term", "2025-26 Semester 1"],
    )
    .ok()
    .stdout;
    let rows: Vec<&str> = sections.lines().skip(1).collect();
    assert!(!rows.is_empty(), "{sections}");
    assert!(
        sections.contains("Katherine Johnson"),
        "teachers by name: {sections}"
    );
    let first_id = rows[0].split_whitespace().next().unwrap().to_string();
    let members = run_with_token(&sandbox, &["browse", "section", &first_id])
        .ok()
        .stdout;
    assert!(
        members.contains("teacher") && members.contains("student"),
        "{members}"
    );

    // The same views over the database once imported.
    run_with_token(&sandbox, &["import"]).ok();
    let db_terms = sandbox.roster(&["browse", "terms", "--db"]).ok().stdout;
    assert!(db_terms.contains("2025-26 Semester 1"), "{db_terms}");
    let db_sections = sandbox.roster(&["browse", "sections", "--db"]).ok().stdout;
    assert_eq!(
        db_sections.lines().count(),
        16,
        "15 sections and a header:\n{db_sections}"
    );
}

fn files_config() -> String {
    format!(
        "[database]\npath = \"roster.db\"\n[[source]]\nname = \"files\"\nplugin = \"csv\"\nformat = \"pickatime\"\npath = \"{}\"\n[[event]]\nname = \"Fall 2025\"\nsource = \"files\"\n",
        fixtures().join("pickatime-pairs").display()
    )
}

/// The counts of one entity in an import's summary table: inserted, updated, unchanged,
/// deactivated.
fn summary_counts(stdout: &str, entity: &str) -> Vec<u64> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(entity))
        .unwrap_or_else(|| panic!("no `{entity}` line in:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn a_link_listed_twice_is_written_and_counted_once() {
    // pickatime-pairs lists S2 in C1 twice; the plugin sends both, the host keeps one.
    let sandbox = Sandbox::new(&files_config());
    let first = sandbox.roster(&["import"]).ok().stdout;
    assert_eq!(
        summary_counts(&first, "enrollments"),
        [5, 0, 0, 0],
        "{first}"
    );
    let db = sandbox.db();
    assert_eq!(count(&db, "SELECT count(*) FROM enrollments"), 5);

    // Again, every file read in full against what it wrote: the repeat is neither new
    // nor a change.
    let again = sandbox.roster(&["import", "--full"]).ok().stdout;
    assert_eq!(
        summary_counts(&again, "enrollments"),
        [0, 0, 5, 0],
        "{again}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM enrollments WHERE active = 1"),
        5
    );
}

#[test]
fn the_clean_slate_path_previews_and_confirms_each_step() {
    let sandbox = Sandbox::new(&files_config());
    sandbox.roster(&["import"]).ok();
    sandbox
        .roster(&["classes", "hide", "--event", "Fall 2025", "C3"])
        .ok();

    // 1. A new event from the old one as a template: classes and hidden flags come along.
    sandbox
        .roster(&["events", "create", "Fall 2026", "--from", "Fall 2025"])
        .ok();
    let db = sandbox.db();
    assert_eq!(count(&db, "SELECT count(*) FROM event_classes ec JOIN events e ON e.id = ec.event_id WHERE e.name = 'Fall 2026'"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM event_classes ec JOIN events e ON e.id = ec.event_id WHERE e.name = 'Fall 2026' AND hidden = 1"), 1);

    // 2. Export the old event's reports.
    sandbox
        .roster(&["export", "--event", "Fall 2025", "--dir", "out"])
        .ok();
    for file in ["classes.csv", "enrollments.csv", "contacts.csv"] {
        let text =
            std::fs::read_to_string(sandbox.dir.path().join("out/fall-2025").join(file)).unwrap();
        assert!(text.lines().count() > 1, "{file}: {text}");
    }

    // 3. Delete every event but the new one — not without a yes.
    let before = snapshot(&db);
    let out = sandbox
        .cmd()
        .args(["events", "delete", "--all-except", "Fall 2026"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Fall 2025"));
    assert_eq!(before, snapshot(&db));
    sandbox
        .roster(&["events", "delete", "--all-except", "Fall 2026", "--yes"])
        .ok();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);

    // 4. Delete every contact at Event Administrator and below; administrators stay.
    db.execute(
        "INSERT INTO contacts (role, first_name, last_name, access_level) VALUES ('staff', 'Pat', 'Principal', 'admin')",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE contacts SET access_level = 'event_admin' WHERE first_name = 'Mary'",
        [],
    )
    .unwrap();
    let out = sandbox
        .roster(&["contacts", "delete", "--level", "event_admin"])
        .failed();
    assert!(
        out.stderr.contains("event_admin") && out.stderr.contains("customer"),
        "{}",
        out.stderr
    );
    sandbox
        .roster(&["contacts", "delete", "--level", "event_admin", "--yes"])
        .ok();
    assert_eq!(count(&db, "SELECT count(*) FROM contacts"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM contacts WHERE access_level = 'admin'"
        ),
        1
    );
    assert_eq!(count(&db, "SELECT count(*) FROM enrollments"), 0);
    let refused = sandbox
        .roster(&["contacts", "delete", "--level", "admin", "--yes"])
        .failed();
    assert!(
        refused.stderr.contains("refusing to delete administrators"),
        "{}",
        refused.stderr
    );
}

#[test]
fn migrate_previews_the_switch_and_changes_nothing_until_applied() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let config = format!(
        "{}\n[[source]]\nname = \"manual\"\nplugin = \"csv\"\nformat = \"pickatime\"\npath = \"{}\"\n[[event]]\nname = \"Old\"\nsource = \"manual\"\n",
        clever_config(server.base_url(), "v3.0", "", ""),
        fixtures().join("switch").join("year2").display()
    );
    let sandbox = Sandbox::new(&config);
    sandbox.roster(&["import", "--event", "Old"]).ok();
    let before = roster_state(&sandbox.db());
    let preview = run_with_token(
        &sandbox,
        &["migrate", "--event", "Old", "--source", "district"],
    )
    .ok()
    .stdout;
    assert!(
        preview.contains("linked to existing contacts  70"),
        "{preview}"
    );
    assert!(
        preview.contains("new contacts                 3"),
        "{preview}"
    );
    assert_eq!(before, roster_state(&sandbox.db()));
    run_with_token(
        &sandbox,
        &[
            "migrate", "--event", "Old", "--source", "district", "--apply", "--yes",
        ],
    )
    .ok();
    let db = sandbox.db();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM contact_sources WHERE source = 'district'"
        ),
        73
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE active = 1"),
        73
    );
}
