//! The switch from manual files to Clever (fixtures/switch): two years of files, then the
//! same school from the Clever mock. `link` leaves no duplicate; `report` lists exactly
//! the planted conflicts and changes nothing; the default refuses to duplicate.

use std::collections::BTreeMap;

use roster_clever_mock::{District, MockServer};

use crate::clever::{run_with_token, TOKEN};
use crate::harness::{count, fixtures, roster_state, Sandbox};

fn config(base_url: &str, year: u32) -> String {
    format!(
        r#"
[database]
path = "roster.db"

[[source]]
name = "manual"
plugin = "csv"
format = "pickatime"
path = "{}"
school = "Maple Grove Elementary"

[[source]]
name = "district"
plugin = "clever"
api_version = "v3.0"
base_url = "{base_url}"
token_env = "ROSTER_E2E_CLEVER_TOKEN"
max_retry_wait_ms = 20

[[event]]
name = "Conferences 2025"
source = "manual"

[[event]]
name = "Conferences 2026"
source = "district"
"#,
        fixtures()
            .join("switch")
            .join(format!("year{year}"))
            .display()
    )
}

/// Two years of manual files imported; returns the sandbox.
fn manual_history(base_url: &str) -> Sandbox {
    let sandbox = Sandbox::new(&config(base_url, 1));
    sandbox
        .roster(&["import", "--event", "Conferences 2025"])
        .ok();
    sandbox.write_config(&config(base_url, 2));
    // A new school year: every class has a new ClassID, so half the roster's classes go.
    // The guard refuses that until told it is a rollover.
    let refused = sandbox
        .roster(&["import", "--event", "Conferences 2025"])
        .failed();
    assert!(
        refused.stderr.contains("refusing to deactivate"),
        "{}",
        refused.stderr
    );
    sandbox
        .roster(&[
            "import",
            "--event",
            "Conferences 2025",
            "--allow-mass-deactivation",
        ])
        .ok();
    let db = sandbox.db();
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE active = 0"),
        4,
        "3 graduates and a retired teacher"
    );
    sandbox
}

fn planted() -> District {
    let mut district = serde_json::to_value(District::demo()).unwrap();
    let school = district["schools"][0]["id"].clone();
    district["students"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "5a25ffb0c1bc2a00360009f1", "sis_id": "G9001", "student_number": "249001",
            "name": {"first": "Nora", "last": "Quinn"}, "dob": "5/5/2020",
            "school": school, "schools": [school], "grade": "Kindergarten"
        }));
    district["teachers"].as_array_mut().unwrap().push(serde_json::json!({
        "id": "5a25ff9fa1782763460009f2", "v3_id": "603ebb2ab452fb006c7639f2", "sis_id": "P3002",
        "teacher_number": "7999", "name": {"first": "Ruth", "last": "Ellis"},
        "email": "r.ellis@district.example.org", "school": school, "schools": [school]
    }));
    let student = district["students"][5]["id"].clone();
    district["contacts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "5a25ffd0e1f2a3b4c50009f3", "v3_id": "603ebb2bb452fb006c7639f3", "sis_id": "",
            "name": "Grace Hopper", "email": "g.hopper@district.example.org",
            "students": [{"student": student, "relationship": "Parent", "type": "Parent/Guardian"}]
        }));
    serde_json::from_value(district).unwrap()
}

#[test]
fn link_switches_to_clever_without_a_single_duplicate() {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let sandbox = manual_history(server.base_url());
    let manual_active = count(
        &sandbox.db(),
        "SELECT count(*) FROM contacts WHERE active = 1",
    );
    // Each source's links are its classes': the files' stay as they were.
    let links_of = |source: &str| {
        format!(
            "SELECT (SELECT count(*) FROM enrollments e JOIN classes c ON c.id = e.class_id
                     WHERE c.source = '{source}' AND e.active = 1)
                  + (SELECT count(*) FROM class_teachers t JOIN classes c ON c.id = t.class_id
                     WHERE c.source = '{source}' AND t.active = 1)"
        )
    };
    let manual_links = count(&sandbox.db(), &links_of("manual"));
    assert!(manual_links > 0);

    // The default policy refuses to create duplicates and says what to do.
    let out = run_with_token(&sandbox, &["import", "--event", "Conferences 2026"]).failed();
    assert!(out.stderr.contains("--dedupe link"), "{}", out.stderr);

    run_with_token(
        &sandbox,
        &["import", "--event", "Conferences 2026", "--dedupe", "link"],
    )
    .ok();
    let db = sandbox.db();
    // Clever's 73 people: the manual ones linked, plus the 3 staff the files never had.
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE active = 1"),
        manual_active + 3
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM contact_sources WHERE source = 'district'"
        ),
        73
    );
    // Every old contact still active now carries its Clever id.
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts c WHERE c.active = 1
             AND EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id AND s.source = 'manual')
             AND NOT EXISTS (SELECT 1 FROM contact_ids i WHERE i.contact_id = c.id AND i.kind = 'clever_id')"),
        0
    );
    // No two contacts for one person: sis ids and Clever ids each name one contact.
    for kind in ["clever_id", "sis_id", "StudentID", "TeacherID", "ParentID"] {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM (SELECT value FROM contact_ids WHERE kind = '{kind}' GROUP BY value HAVING count(DISTINCT contact_id) > 1)")),
            0,
            "{kind}"
        );
    }
    // The old contacts kept their history: the graduates stay inactive, not deleted.
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE active = 0"),
        4
    );
    // A complete run of one source leaves the other's links alone.
    assert_eq!(count(&db, &links_of("manual")), manual_links);
    assert!(count(&db, &links_of("district")) > 0);
    // Running the Clever import again is a no-op.
    let before = roster_state(&db);
    run_with_token(
        &sandbox,
        &["import", "--event", "Conferences 2026", "--dedupe", "link"],
    )
    .ok();
    assert_eq!(roster_state(&db), before);
}

#[test]
fn report_lists_exactly_the_planted_conflicts_and_changes_nothing() {
    let server = MockServer::start(planted(), TOKEN).unwrap();
    let sandbox = manual_history(server.base_url());
    let before = roster_state(&sandbox.db());
    let out = run_with_token(
        &sandbox,
        &[
            "import",
            "--event",
            "Conferences 2026",
            "--dedupe",
            "report",
        ],
    )
    .ok();
    let after = roster_state(&sandbox.db());
    assert_eq!(before, after, "report must not change the roster");

    // The JSON report beside the database.
    let reports = sandbox.dir.path().join("reports");
    let json = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for finding in &findings {
        by_rule
            .entry(finding["rule"].as_str().unwrap().to_string())
            .or_default()
            .push(finding["incoming"]["name"].as_str().unwrap().to_string());
    }
    let conflicts: BTreeMap<_, _> = by_rule
        .iter()
        .filter(|(rule, _)| *rule != "cross-source")
        .collect();
    let expected: BTreeMap<String, Vec<String>> = [
        ("cross-role-id", "Ruth Ellis"),
        ("email-collision", "Grace Hopper"),
        ("recycled-id", "Nora Quinn"),
    ]
    .into_iter()
    .map(|(rule, name)| (rule.to_string(), vec![name.to_string()]))
    .collect();
    assert_eq!(
        conflicts,
        expected.iter().collect::<BTreeMap<_, _>>(),
        "{out:?}"
    );
    // Everyone else who is in both is listed as a match to link, with a reason.
    assert_eq!(
        by_rule["cross-source"].len(),
        70,
        "40 students + 10 teachers + 20 contacts"
    );
    assert!(findings
        .iter()
        .all(|f| !f["reason"].as_str().unwrap().is_empty()));
    // The terminal table and the CSV say the same.
    assert!(
        out.stdout.contains("recycled-id") && out.stdout.contains("G9001"),
        "{}",
        out.stdout
    );
    let csv = std::fs::read_to_string(json.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), findings.len() + 1);

    // With link, the planted conflicts stop the import: nothing is merged wrongly.
    let out = run_with_token(
        &sandbox,
        &["import", "--event", "Conferences 2026", "--dedupe", "link"],
    )
    .failed();
    assert!(
        out.stderr.contains("3 dedupe conflict(s)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        count(
            &sandbox.db(),
            "SELECT count(*) FROM contact_sources WHERE source = 'district'"
        ),
        0
    );
}

#[test]
fn a_recycled_student_id_in_the_same_files_is_a_conflict_not_an_update() {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    for entry in std::fs::read_dir(fixtures().join("switch").join("year1")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), files.join(entry.file_name())).unwrap();
    }
    let config = format!(
        "[database]\npath = \"roster.db\"\n[[source]]\nname = \"manual\"\nplugin = \"csv\"\nformat = \"pickatime\"\npath = \"{}\"\n[[event]]\nname = \"E\"\nsource = \"manual\"\n",
        files.display()
    );
    sandbox.write_config(&config);
    sandbox.roster(&["import"]).ok();
    let before = roster_state(&sandbox.db());
    // Next year the school gives graduate G9001's StudentID to a new child, and reuses a
    // TeacherID as a ParentID.
    let students = std::fs::read_to_string(files.join("Student.txt")).unwrap();
    std::fs::write(
        files.join("Student.txt"),
        students.replace(
            "G9001\tMarcus\tBell\t03/14/2011",
            "G9001\tNora\tQuinn\t05/05/2020",
        ),
    )
    .unwrap();
    let parents = std::fs::read_to_string(files.join("Parent.txt")).unwrap();
    std::fs::write(
        files.join("Parent.txt"),
        format!("{parents}T201\tAlan\tParent\talan.parent@mail.example.com\n"),
    )
    .unwrap();
    let out = sandbox.roster(&["import"]).failed();
    assert!(out.stdout.contains("recycled-id"), "{}", out.stdout);
    assert!(out.stdout.contains("cross-role-id"), "{}", out.stdout);
    assert_eq!(before, roster_state(&sandbox.db()));
}
