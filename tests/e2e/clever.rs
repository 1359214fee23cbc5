//! The Clever plugin through the real binary: v2.1 and v3.0 give the same roster, terms
//! limit what is imported, a failed pull writes nothing, and the token never leaks.

use std::collections::BTreeSet;

use roster_clever_mock::{District, Fault, FaultRule, MockServer};

use crate::harness::{assert_same_rows, count, roster_state, Sandbox};

pub const TOKEN: &str = "tok-e2e-SECRET-9f3b2a71";

pub fn clever_config(base_url: &str, version: &str, extra_source: &str, event: &str) -> String {
    format!(
        r#"
[database]
path = "roster.db"

[[source]]
name = "district"
plugin = "clever"
api_version = "{version}"
base_url = "{base_url}"
token_env = "ROSTER_E2E_CLEVER_TOKEN"
max_retry_wait_ms = 20
{extra_source}

[[event]]
name = "Spring"
source = "district"
{event}
"#
    )
}

pub fn run_with_token(sandbox: &Sandbox, args: &[&str]) -> crate::harness::Output {
    let output = sandbox
        .cmd()
        .env("ROSTER_E2E_CLEVER_TOKEN", TOKEN)
        .args(args)
        .output()
        .unwrap();
    crate::harness::Output {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The roster as source ids and names, independent of database ids and Clever's
/// version-specific ids.
fn roster(sandbox: &Sandbox) -> Vec<BTreeSet<String>> {
    let db = sandbox.db();
    let set = |sql: &str| -> BTreeSet<String> {
        let mut statement = db.prepare(sql).unwrap();
        statement
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    vec![
        set("SELECT s.source_id || '|' || c.role || '|' || c.first_name || '|' || c.last_name || '|' || coalesce(c.email, '') || '|' || coalesce(c.birth_date, '')
             FROM contacts c JOIN contact_sources s ON s.contact_id = c.id"),
        set("SELECT source_id || '|' || name || '|' || coalesce(term_id, '') FROM classes"),
        set("SELECT cl.source_id || '|' || s.source_id FROM enrollments e JOIN classes cl ON cl.id = e.class_id
             JOIN contact_sources s ON s.contact_id = e.contact_id"),
        set("SELECT cl.source_id || '|' || s.source_id || '|' || t.is_primary FROM class_teachers t JOIN classes cl ON cl.id = t.class_id
             JOIN contact_sources s ON s.contact_id = t.contact_id"),
        set("SELECT p.source_id || '|' || s.source_id || '|' || coalesce(r.relationship, '') FROM relationships r
             JOIN contact_sources p ON p.contact_id = r.parent_id JOIN contact_sources s ON s.contact_id = r.student_id"),
        set("SELECT value FROM contact_ids WHERE kind = 'sis_id'"),
    ]
}

#[test]
fn v2_1_and_v3_0_give_the_same_roster() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let mut rosters = Vec::new();
    for version in ["v2.1", "v3.0"] {
        let sandbox = Sandbox::new(&clever_config(server.base_url(), version, "", ""));
        run_with_token(&sandbox, &["import"]).ok();
        let roster = roster(&sandbox);
        assert_eq!(
            roster[0].len(),
            73,
            "{version}: 40 students, 10 teachers, 3 staff, 20 contacts"
        );
        assert_eq!(roster[2].len(), 114, "{version}: enrollments");
        assert_eq!(roster[4].len(), 21, "{version}: relationships");
        rosters.push(roster);
    }
    assert_eq!(rosters[0], rosters[1]);
    // Moving from v2.1 to v3.0 keeps every contact: legacy ids map v3 people to v2 keys.
    let server_db = Sandbox::new(&clever_config(server.base_url(), "v2.1", "", ""));
    run_with_token(&server_db, &["import"]).ok();
    let before = count(&server_db.db(), "SELECT count(*) FROM contacts");
    server_db.write_config(&clever_config(server.base_url(), "v3.0", "", ""));
    run_with_token(&server_db, &["import"]).ok();
    let db = server_db.db();
    assert_eq!(count(&db, "SELECT count(*) FROM contacts"), before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE active = 0"),
        0
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM contact_ids WHERE kind = 'legacy_id'"
        ) > 0
    );
}

#[test]
fn selecting_terms_limits_classes_and_enrollments() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(
        server.base_url(),
        "v3.0",
        "",
        "terms = [\"2025-26 Semester 1\"]",
    ));
    run_with_token(&sandbox, &["import"]).ok();
    let db = sandbox.db();
    let other_terms = count(
        &db,
        "SELECT count(*) FROM classes c JOIN terms t ON t.id = c.term_id WHERE t.name != '2025-26 Semester 1'",
    );
    assert_eq!(other_terms, 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM classes WHERE term_id IS NULL"),
        0
    );
    let selected = count(&db, "SELECT count(*) FROM classes");
    assert!(selected > 0 && selected < 15, "{selected} of 15 sections");
    assert_eq!(
        count(&db, "SELECT count(*) FROM enrollments e JOIN classes c ON c.id = e.class_id JOIN terms t ON t.id = c.term_id WHERE t.name = '2025-26 Semester 1'"),
        count(&db, "SELECT count(*) FROM enrollments")
    );
    // A term that does not exist is an error that lists the terms there are.
    sandbox.write_config(&clever_config(
        server.base_url(),
        "v3.0",
        "",
        "terms = [\"Semester 9\"]",
    ));
    let out = run_with_token(&sandbox, &["import"]).failed();
    assert!(
        out.stderr.contains("`Semester 9`") && out.stderr.contains("2025-26 Semester 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_permanent_failure_mid_pagination_writes_nothing_and_never_shows_the_token() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(
        server.base_url(),
        "v3.0",
        "page_size = 7\nmax_retries = 2",
        "",
    ));
    run_with_token(&sandbox, &["import"]).ok();
    let before: Vec<String> = roster_state(&sandbox.db());

    for fault in [
        Fault::Status { status: 500 },
        Fault::Unauthorized,
        Fault::Truncated,
    ] {
        server.clear_faults();
        server.inject(
            FaultRule::new(fault.clone())
                .on_path("/v3.0/users")
                .mid_pagination()
                .times(100),
        );
        // `--full`: the failure is in reading the whole district.
        let out = run_with_token(&sandbox, &["import", "--full"]).failed();
        assert!(
            out.stderr.contains("/v3.0/users"),
            "{fault:?}: {}",
            out.stderr
        );
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(TOKEN),
                "{fault:?}: the token leaked:\n{text}"
            );
        }
        let after: Vec<String> = roster_state(&sandbox.db());
        assert_eq!(before, after, "{fault:?}");
    }
    // The failures are on record, without the token.
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
        ),
        3
    );
    server.clear_faults();
    run_with_token(&sandbox, &["-vv", "import"]).ok();
    let bytes = std::fs::read(sandbox.db_path()).unwrap();
    let needle = TOKEN.as_bytes();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the token is in the database file"
    );
}

#[test]
fn a_429_storm_and_transient_errors_are_survived() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let clean = Sandbox::new(&clever_config(
        server.base_url(),
        "v2.1",
        "page_size = 5",
        "",
    ));
    run_with_token(&clean, &["import"]).ok();
    server.inject(
        FaultRule::new(Fault::RateLimit {
            reset_in_secs: 0,
            header: Default::default(),
        })
        .times(6),
    );
    server.inject(
        FaultRule::new(Fault::Status { status: 503 })
            .on_path("/v2.1/students")
            .mid_pagination()
            .times(2),
    );
    server.inject(
        FaultRule::new(Fault::Status { status: 502 })
            .on_path("/v2.1/sections")
            .times(1),
    );
    let stormy = Sandbox::new(&clever_config(
        server.base_url(),
        "v2.1",
        "page_size = 5",
        "",
    ));
    run_with_token(&stormy, &["import"]).ok();
    assert_eq!(roster(&clean), roster(&stormy));
}

/// A day's changes to the demo district: people renamed, added and removed, a section's
/// students changed and a section removed, a contact's links changed and a contact gone.
fn a_days_changes() -> District {
    let mut district = District::demo();
    district.schools[0].insert("name".into(), "Renamed Elementary".into());
    district.students[0].name.first = "Renamed".into();
    let gone = district.students.remove(1).id;
    let mut new = district.students[2].clone();
    new.id = "5a0000000000000000009999".into();
    new.sis_id = "new-sis-9999".into();
    new.student_number = "9999".into();
    new.state_id = "ST9999".into();
    new.username = "new.student".into();
    new.email = "new.student@example.org".into();
    new.name.first = "Newly".into();
    district.students.push(new.clone());
    district.sections[0].students.push(new.id.clone());
    district.sections[1].students.pop();
    district.sections.remove(2);
    district.teachers[0].email = "changed.teacher@example.org".into();
    district.contacts[0].students.truncate(1);
    district.contacts[0].students[0].relationship = "Aunt".into();
    district.contacts.remove(1);
    // Clever updates the sections of a student it deletes.
    for section in &mut district.sections {
        section.students.retain(|s| *s != gone);
    }
    district
}

/// A sync of a v3 district continues from its last run's checkpoint: it reads only the
/// events since (no user or section lists), and the roster ends as a complete read of the
/// changed district leaves it, row for row.
#[test]
fn a_sync_from_events_leaves_the_roster_a_complete_read_would() {
    sync_from_events_matches_a_complete_read("");
}

/// The same with the feed read two events a page: pages are parsed side by side and
/// must still be folded in in the feed's order (an object changed on several pages
/// ends as its last event has it).
#[test]
fn a_sync_from_events_read_in_many_pages_folds_them_in_the_feeds_order() {
    let pages = sync_from_events_matches_a_complete_read("page_size = 2");
    assert!(pages >= 5, "{pages} pages of events");
}

/// Returns how many pages of events the sync read.
fn sync_from_events_matches_a_complete_read(extra_source: &str) -> usize {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let config = clever_config(server.base_url(), "v3.0", extra_source, "");
    let continued = Sandbox::new(&config);
    let complete = Sandbox::new(&config);
    for sandbox in [&continued, &complete] {
        run_with_token(sandbox, &["import"]).ok();
    }
    server.change_district(a_days_changes());
    let before = server.requests().len();

    let out = run_with_token(&continued, &["-v", "import"]).ok();
    let event_pages = server.requests()[before..]
        .iter()
        .filter(|r| r.uri.contains("/events"))
        .count();
    assert!(
        out.stderr.contains("continued after event"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("continued from the last run"),
        "{}",
        out.stdout
    );
    let lists: Vec<String> = server.requests()[before..]
        .iter()
        .map(|r| r.uri.clone())
        .filter(|uri| uri.contains("/users") || uri.contains("/sections"))
        .collect();
    assert!(lists.is_empty(), "a continuing run read {lists:?}");
    run_with_token(&complete, &["import", "--full"]).ok();

    let (continued_db, complete_db) = (continued.db(), complete.db());
    assert_same_rows(&roster_state(&continued_db), &roster_state(&complete_db));
    // The changes are there (not two unchanged rosters).
    assert_eq!(
        count(
            &continued_db,
            "SELECT count(*) FROM contacts WHERE first_name = 'Newly' AND active = 1"
        ),
        1
    );
    assert!(
        count(
            &continued_db,
            "SELECT count(*) FROM enrollments WHERE active = 0"
        ) > 0
    );
    assert!(
        count(
            &continued_db,
            "SELECT count(*) FROM relationships WHERE active = 0"
        ) > 0
    );
    assert_eq!(
        count(
            &continued_db,
            "SELECT count(*) FROM classes WHERE active = 0"
        ),
        1
    );

    // Nothing new: the next sync reads one empty page of events and changes nothing.
    let before = server.requests().len();
    run_with_token(&continued, &["import"]).ok();
    assert_same_rows(&roster_state(&continued.db()), &roster_state(&complete_db));
    assert!(server.requests()[before..]
        .iter()
        .all(|r| !r.uri.contains("/users")));
    event_pages
}

/// Two days of events read in one sync, several on the same sections: a student who
/// joins a class and leaves it again, one who leaves and comes back, a class made and
/// then changed, one deleted and made again. Each ends as its last event leaves it, as a
/// complete read of the district leaves it.
#[test]
fn a_sync_over_days_of_events_on_the_same_sections_leaves_what_a_complete_read_would() {
    let demo = District::demo();
    let server = MockServer::start(demo.clone(), TOKEN).unwrap();
    let config = clever_config(server.base_url(), "v3.0", "page_size = 3", "");
    let continued = Sandbox::new(&config);
    let complete = Sandbox::new(&config);
    for sandbox in [&continued, &complete] {
        run_with_token(sandbox, &["import"]).ok();
    }
    let outside = |section: usize| {
        let students = &demo.sections[section].students;
        let student = demo.students.iter().find(|s| !students.contains(&s.id));
        student.expect("a student outside the class").id.clone()
    };
    let (joins_and_leaves, made, deleted) = (outside(0), "5a25ffc265e950634b0001ff", 3);

    let mut day1 = demo.clone();
    day1.sections[0].students.push(joins_and_leaves.clone());
    let leaves_and_comes_back = day1.sections[1].students.remove(0);
    let mut class = demo.sections[2].clone();
    class.id = made.into();
    class.sis_id = "made-in-the-night".into();
    class.students = demo.students[..3].iter().map(|s| s.id.clone()).collect();
    day1.sections.push(class);
    let gone = day1.sections.remove(deleted);
    server.change_district(day1.clone());

    let mut day2 = day1;
    day2.sections[0].students.retain(|s| *s != joins_and_leaves);
    day2.sections[1].students.insert(0, leaves_and_comes_back);
    let leaves = day2.sections[1].students.pop().expect("a student");
    let class = day2.sections.iter_mut().find(|s| s.id == made).unwrap();
    class.students.remove(0);
    class.students.push(demo.students[5].id.clone());
    let mut again = gone.clone();
    again.students = demo.students[6..8].iter().map(|s| s.id.clone()).collect();
    day2.sections.push(again);
    server.change_district(day2);

    let out = run_with_token(&continued, &["-v", "import"]).ok();
    assert!(
        out.stderr.contains("continued after event"),
        "{}",
        out.stderr
    );
    run_with_token(&complete, &["import", "--full"]).ok();
    let (continued_db, complete_db) = (continued.db(), complete.db());
    assert_same_rows(&roster_state(&continued_db), &roster_state(&complete_db));
    // The nights did change the classes.
    let active_in = |class: &str| {
        count(
            &continued_db,
            &format!(
                "SELECT count(*) FROM enrollments e JOIN classes c ON c.id = e.class_id
                 WHERE c.source_id = '{class}' AND e.active = 1"
            ),
        )
    };
    assert_eq!(active_in(made), 3);
    assert_eq!(active_in(&gone.id), 2);
    assert_eq!(
        active_in(&demo.sections[1].id),
        demo.sections[1].students.len() as i64 - 1,
        "{leaves} left"
    );
}

/// A checkpoint older than the feed (Clever keeps 30 days) reads the whole district.
#[test]
fn a_checkpoint_the_feed_no_longer_has_reads_the_whole_district() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(server.base_url(), "v3.0", "", ""));
    // The first import's checkpoint is the newest event then: make one, then lose it.
    server.change_district(a_days_changes());
    run_with_token(&sandbox, &["import"]).ok();
    let mut district = a_days_changes();
    district.students[0].name.first = "Again".into();
    server.change_district(district);
    server.expire_events(usize::MAX);
    let out = run_with_token(&sandbox, &["-v", "import"]).ok();
    assert!(out.stderr.contains("no longer has event"), "{}", out.stderr);
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM contacts WHERE first_name = 'Again'"
        ),
        1
    );
}

/// A changed course changes every section of it, and the feed says so only of the
/// course: the sync reads the whole district instead.
#[test]
fn a_changed_course_makes_the_sync_read_the_whole_district() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(server.base_url(), "v3.0", "", ""));
    run_with_token(&sandbox, &["import"]).ok();
    let mut district = District::demo();
    let course = district.courses[0]["id"].as_str().unwrap().to_string();
    district.courses[0].insert("name".into(), "Renamed Course".into());
    assert!(district.sections.iter().any(|s| s.course == course));
    server.change_district(district);
    let out = run_with_token(&sandbox, &["-v", "import"]).ok();
    assert!(
        out.stderr.contains("a course changed")
            && out.stderr.contains("reading the whole district"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("continued from the last run"),
        "{}",
        out.stdout
    );
    assert!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM classes WHERE course = 'Renamed Course'"
        ) > 0
    );
}

/// A sync whose events cannot be read fails like any other pull: the URL and status in
/// the error, nothing written, the checkpoint kept; the next sync picks up from it.
#[test]
fn a_failed_events_read_writes_nothing_and_keeps_the_checkpoint() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = Sandbox::new(&clever_config(
        server.base_url(),
        "v3.0",
        "max_retries = 1",
        "",
    ));
    run_with_token(&sandbox, &["import"]).ok();
    server.change_district(a_days_changes());
    let before = roster_state(&sandbox.db());
    server.inject(
        FaultRule::new(Fault::Status { status: 500 })
            .on_path("/v3.0/events")
            .times(100),
    );
    let out = run_with_token(&sandbox, &["import"]).failed();
    assert!(
        out.stderr.contains("/v3.0/events") && out.stderr.contains("500"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(TOKEN));
    assert_same_rows(&roster_state(&sandbox.db()), &before);
    server.clear_faults();
    let out = run_with_token(&sandbox, &["import"]).ok();
    assert!(
        out.stdout.contains("continued from the last run"),
        "{}",
        out.stdout
    );
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM contacts WHERE first_name = 'Newly' AND active = 1"
        ),
        1
    );
}
