//! The foundation: plugins load through the ABI, the bundled school imports row for row,
//! re-imports change nothing, and bad plugins or bad files leave the database untouched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::harness::{count, fixtures, install, roster_state, snapshot, Sandbox};

fn files_config(path: &Path) -> String {
    format!(
        r#"
[database]
path = "roster.db"

[[source]]
name = "files"
plugin = "csv"
format = "pickatime"
path = "{}"
school = "Maple Grove Middle School"

[[event]]
name = "Fall Conferences 2026"
source = "files"
sync = true
"#,
        path.display()
    )
}

/// Rows of a tab-delimited fixture file as header -> value maps (repeated headers get
/// every value under the same key, in order).
fn read_table(path: &Path) -> Vec<BTreeMap<String, Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .flexible(true)
        .from_path(path)
        .unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let mut row: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers.iter().zip(record.iter()) {
            row.entry(header.clone())
                .or_default()
                .push(value.trim().to_string());
        }
        rows.push(row);
    }
    rows
}

fn one(row: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    row.get(key)
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default()
}

fn query_set(conn: &rusqlite::Connection, sql: &str) -> BTreeSet<Vec<String>> {
    let mut statement = conn.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            Ok((0..columns)
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => String::new(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => panic!("unexpected value {other:?}"),
                })
                .collect())
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn plugins_lists_the_installed_plugins_with_versions_and_abi() {
    let sandbox = Sandbox::new("[database]\npath = \"roster.db\"\n");
    let out = sandbox.roster(&["plugins"]).ok();
    let csv_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("csv "))
        .unwrap_or_else(|| panic!("no csv plugin in:\n{}", out.stdout));
    assert!(csv_line.contains(env!("CARGO_PKG_VERSION")), "{csv_line}");
    assert!(csv_line.contains("abi v1"), "{csv_line}");
    for plugin in ["clever ", "oneroster "] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(plugin)),
            "{plugin}: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.lines().any(|l| l.starts_with("clever ")),
        "{}",
        out.stdout
    );
}

#[test]
fn the_bundled_school_imports_row_for_row() {
    let folder = fixtures().join("pickatime");
    let sandbox = Sandbox::new(&files_config(&folder));
    sandbox.roster(&["import"]).ok();
    let db = sandbox.db();

    // Students: every row but the ones the file itself removes.
    let students = read_table(&folder.join("Student.txt"));
    let expected: BTreeSet<Vec<String>> = students
        .iter()
        .filter(|r| !one(r, "Action").eq_ignore_ascii_case("delete"))
        .map(|r| {
            vec![
                one(r, "StudentID"),
                one(r, "First"),
                one(r, "Last"),
                one(r, "SecurityValue"),
            ]
        })
        .collect();
    let actual = query_set(
        &db,
        "SELECT i.value, c.first_name, c.last_name, c.security_value FROM contacts c
         JOIN contact_ids i ON i.contact_id = c.id AND i.kind = 'StudentID'
         WHERE c.role = 'student' AND c.active = 1 AND c.access_level = 'customer'",
    );
    assert_eq!(actual, expected);
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE role = 'student'"),
        expected.len() as i64
    );

    let teachers = read_table(&folder.join("Teacher.txt"));
    let expected: BTreeSet<Vec<String>> = teachers
        .iter()
        .map(|r| {
            vec![
                one(r, "TeacherID"),
                one(r, "First"),
                one(r, "Last"),
                one(r, "Email"),
                one(r, "Room"),
            ]
        })
        .collect();
    let actual = query_set(
        &db,
        "SELECT i.value, c.first_name, c.last_name, c.email, c.room FROM contacts c
         JOIN contact_ids i ON i.contact_id = c.id AND i.kind = 'TeacherID'
         WHERE c.role = 'teacher' AND c.access_level = 'appointment_viewer'",
    );
    assert_eq!(actual, expected);
    // Passwords are never stored, in any column.
    for row in &teachers {
        let password = one(row, "Password");
        if !password.is_empty() {
            let hits = snapshot(&db)
                .into_iter()
                .filter(|r| r.contains(&password))
                .count();
            assert_eq!(hits, 0, "password {password:?} found in the database");
        }
    }

    // Classes, and which teachers teach them (a ClassID twice = co-taught).
    let classes = read_table(&folder.join("Class.txt"));
    let mut expected_classes = BTreeSet::new();
    let mut expected_teaching = BTreeSet::new();
    for row in &classes {
        let id = one(row, "ClassID");
        let name = Some(one(row, "ClassName"))
            .filter(|n| !n.is_empty())
            .unwrap_or(id.clone());
        expected_classes.insert(vec![id.clone(), name]);
        expected_teaching.insert(vec![id, one(row, "TeacherID")]);
    }
    let actual = query_set(&db, "SELECT source_id, name FROM classes WHERE active = 1");
    assert_eq!(actual, expected_classes);
    let actual = query_set(
        &db,
        "SELECT cl.source_id, i.value FROM class_teachers ct JOIN classes cl ON cl.id = ct.class_id
         JOIN contact_ids i ON i.contact_id = ct.contact_id AND i.kind = 'TeacherID'",
    );
    assert_eq!(actual, expected_teaching);
    assert!(
        count(&db, "SELECT count(*) FROM (SELECT class_id FROM class_teachers GROUP BY class_id HAVING count(*) > 1)") > 0,
        "the fixture has co-taught classes"
    );

    // Enrollments, in the one-row-per-student layout with repeated ClassID columns.
    let mut expected = BTreeSet::new();
    for row in read_table(&folder.join("Enrollment.txt")) {
        for class in row
            .get("ClassID")
            .into_iter()
            .flatten()
            .filter(|c| !c.is_empty())
        {
            expected.insert(vec![one(&row, "StudentID"), class.clone()]);
        }
    }
    let actual = query_set(
        &db,
        "SELECT i.value, cl.source_id FROM enrollments e JOIN classes cl ON cl.id = e.class_id
         JOIN contact_ids i ON i.contact_id = e.contact_id AND i.kind = 'StudentID'",
    );
    assert_eq!(actual, expected);

    // Parents: one contact per ParentID, except that a row repeating another parent's
    // email is the same person.
    let parents = read_table(&folder.join("Parent.txt"));
    let mut by_email: HashMap<String, String> = HashMap::new();
    let mut alias: HashMap<String, String> = HashMap::new();
    for row in &parents {
        let id = one(row, "ParentID");
        let email = one(row, "Email").to_lowercase();
        match by_email.get(&email) {
            Some(first) if *first != id && !email.is_empty() => {
                alias.insert(id, first.clone());
            }
            _ => {
                by_email.insert(email, id);
            }
        }
    }
    let canonical = |id: String| alias.get(&id).cloned().unwrap_or(id);
    let holder: HashMap<String, String> = query_set(
        &db,
        "SELECT i.value, c.id FROM contacts c JOIN contact_ids i ON i.contact_id = c.id AND i.kind = 'ParentID'
         WHERE c.role = 'parent' AND c.access_level = 'customer'",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let file_ids: BTreeSet<String> = parents.iter().map(|r| one(r, "ParentID")).collect();
    assert_eq!(holder.keys().cloned().collect::<BTreeSet<_>>(), file_ids);
    for (alias_id, first) in &alias {
        assert_eq!(
            holder[alias_id], holder[first],
            "{alias_id} shares {first}'s email"
        );
    }
    let distinct: BTreeSet<&String> = holder.values().collect();
    let canonical_ids: BTreeSet<String> = file_ids.iter().cloned().map(canonical).collect();
    assert_eq!(distinct.len(), canonical_ids.len());
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts WHERE role = 'parent'"),
        canonical_ids.len() as i64
    );
    assert!(
        !alias.is_empty(),
        "the fixture has a parent repeated under another ParentID with the same email"
    );

    let expected: BTreeSet<Vec<String>> = read_table(&folder.join("ParentStudent.txt"))
        .iter()
        .map(|r| vec![canonical(one(r, "ParentID")), one(r, "StudentID")])
        .collect();
    let actual = query_set(
        &db,
        "SELECT p.value, s.value FROM relationships r
         JOIN contact_ids p ON p.contact_id = r.parent_id AND p.kind = 'ParentID'
         JOIN contact_ids s ON s.contact_id = r.student_id AND s.kind = 'StudentID'",
    )
    .into_iter()
    .map(|r| vec![canonical(r[0].clone()), r[1].clone()])
    .collect::<BTreeSet<_>>();
    assert_eq!(actual, expected);
    assert!(
        count(&db, "SELECT count(*) FROM (SELECT parent_id FROM relationships GROUP BY parent_id HAVING count(*) > 1)") > 0,
        "the fixture has parents of siblings"
    );

    // The event exists with every class attached, and the run is on record.
    assert_eq!(
        count(&db, "SELECT count(*) FROM event_classes ec JOIN events e ON e.id = ec.event_id WHERE e.name = 'Fall Conferences 2026' AND e.sync_enabled = 1"),
        expected_classes.len() as i64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM sync_runs WHERE status = 'ok'"),
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
}

#[test]
fn importing_the_same_files_twice_changes_nothing() {
    let sandbox = Sandbox::new(&files_config(&fixtures().join("pickatime")));
    sandbox.roster(&["import"]).ok();
    let before = roster_state(&sandbox.db());
    let out = sandbox.roster(&["import"]).ok();
    let summary: serde_json::Value = sandbox
        .db()
        .query_row(
            "SELECT summary FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap();
    let entities = summary["entities"].as_object().unwrap();
    assert!(!entities.is_empty());
    for (entity, counts) in entities {
        assert_eq!(counts["inserted"], 0, "{entity}: {counts}");
        assert_eq!(counts["updated"], 0, "{entity}: {counts}");
        assert_eq!(counts["deactivated"], 0, "{entity}: {counts}");
    }
    assert!(out.stdout.contains("total"), "{}", out.stdout);
    assert_eq!(before, roster_state(&sandbox.db()));
}

fn plugin_config(plugin: &str, extra: &str) -> String {
    format!(
        "[database]\npath = \"roster.db\"\n[[source]]\nname = \"s\"\nplugin = \"{plugin}\"\n{extra}\n[[event]]\nname = \"E\"\nsource = \"s\"\n"
    )
}

#[test]
fn a_plugin_built_for_another_abi_is_refused_with_what_to_rebuild() {
    let sandbox = Sandbox::new(&plugin_config("wrong-abi", ""));
    let dir = install().test_plugin_dir.display().to_string();
    let out = sandbox.roster(&["--plugin-dir", &dir, "import"]).failed();
    assert!(
        out.stderr
            .contains("speaks plugin ABI v999, this roster speaks v1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: rebuild the plugin against roster-core"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_panicking_plugin_is_an_error_and_writes_nothing() {
    let dir = install().test_plugin_dir.display().to_string();
    for (extra, place) in [("", "next_batch"), ("panic_in = \"open\"", "open")] {
        let sandbox = Sandbox::new(&plugin_config("panicking", extra));
        let out = sandbox.roster(&["--plugin-dir", &dir, "import"]).failed();
        assert_eq!(out.status, Some(1));
        assert!(
            out.stderr.contains(&format!(
                "plugin `panicking` panicked: deliberate test panic in {place}"
            )),
            "{}",
            out.stderr
        );
        let db = sandbox.db();
        assert_eq!(count(&db, "SELECT count(*) FROM schools"), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM events"), 0);
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
            ),
            1
        );
    }
}

/// The bad-input corpus (`fixtures/bad/pickatime/<case>/expected.txt`): each case either
/// imports with the expected counts, or fails naming file, line and column with the
/// database exactly as it was.
#[test]
fn the_bad_input_corpus_imports_correctly_or_fails_with_a_location_and_no_change() {
    let cases = fixtures().join("bad").join("pickatime");
    let (mut failing, mut importing) = (0, 0);
    let mut names: Vec<_> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for case in names {
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let expected = expected.trim();
        if let Some(counts) = expected.strip_prefix("ok") {
            let sandbox = Sandbox::new(&files_config(&case));
            sandbox.roster(&["import"]).ok();
            let db = sandbox.db();
            for pair in counts.split_whitespace() {
                let (what, n) = pair.split_once('=').unwrap();
                let sql = match what {
                    "students" | "teachers" | "parents" => format!(
                        "SELECT count(*) FROM contacts WHERE active = 1 AND role = '{}'",
                        what.trim_end_matches('s')
                    ),
                    "classes" => "SELECT count(*) FROM classes WHERE active = 1".to_string(),
                    "enrollments" => {
                        "SELECT count(*) FROM enrollments WHERE active = 1".to_string()
                    }
                    "relationships" => {
                        "SELECT count(*) FROM relationships WHERE active = 1".to_string()
                    }
                    other => panic!("{}: unknown count `{other}`", case.display()),
                };
                assert_eq!(
                    count(&db, &sql),
                    n.parse::<i64>().unwrap(),
                    "{}: {what}",
                    case.display()
                );
            }
            importing += 1;
            continue;
        }
        let expected = format!("{}/{}", case.display(), expected);
        let sandbox = Sandbox::new(&files_config(&fixtures().join("pickatime")));
        sandbox.roster(&["import"]).ok();
        let before = roster_state(&sandbox.db());

        sandbox.write_config(&files_config(&case));
        let out = sandbox.roster(&["import"]).failed();
        assert!(
            out.stderr.contains(&expected),
            "{}: expected `{expected}` in:\n{}",
            case.display(),
            out.stderr
        );
        assert_eq!(before, roster_state(&sandbox.db()), "{}", case.display());
        failing += 1;
    }
    assert!(failing >= 4, "only {failing} failing cases");
    eprintln!("bad-input corpus: {importing} cases import, {failing} fail with a location");
}

#[test]
fn config_errors_point_at_the_key() {
    let sandbox = Sandbox::new("[database]\npath = \"roster.db\"\n[[source]]\nname = \"s\"\nplugin = \"csv\"\nformat = \"pickatime\"\npth = \"x\"\n[[event]]\nname = \"E\"\nsource = \"s\"\n");
    let out = sandbox.roster(&["check"]).failed();
    assert!(out.stdout.contains("pth"), "{}\n{}", out.stdout, out.stderr);
    let sandbox = Sandbox::new("[database]\npath = \"roster.db\"\nsize = 3\n");
    let out = sandbox.roster(&["import"]).failed();
    assert!(
        out.stderr.contains("line 3") && out.stderr.contains("size"),
        "{}",
        out.stderr
    );
}
