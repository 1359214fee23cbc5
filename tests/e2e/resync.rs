//! A file source's second run continues from the first: it sends only what changed in
//! the files, and leaves the roster a complete import of the same files leaves.

use std::path::Path;

use crate::harness::{copy_dir, fixtures, query_rows, Sandbox};

fn config(files: &Path) -> String {
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
term = "2025-26"

[[event]]
name = "Fall"
source = "files"
"#,
        files.display()
    )
}

/// The active roster, by the school's own ids (database ids differ between databases,
/// and a record that went is inactive in one and absent from the other).
fn roster_by_source_ids(sandbox: &Sandbox) -> Vec<String> {
    const QUERIES: [&str; 7] = [
        "SELECT 'contact', cs.source_id, c.role, c.first_name, c.last_name, c.email, c.birth_date,
                c.grade, c.security_value, c.room, c.attributes, c.active
         FROM contacts c JOIN contact_sources cs ON cs.contact_id = c.id WHERE cs.active = 1",
        "SELECT 'class', source_id, name, group_name, appointments_per_parent, attributes
         FROM classes WHERE active = 1",
        "SELECT 'enrollment', cl.source_id, cs.source_id FROM enrollments e
         JOIN classes cl ON cl.id = e.class_id JOIN contact_sources cs ON cs.contact_id = e.contact_id
         WHERE e.active = 1",
        "SELECT 'class teacher', cl.source_id, cs.source_id, t.is_primary FROM class_teachers t
         JOIN classes cl ON cl.id = t.class_id JOIN contact_sources cs ON cs.contact_id = t.contact_id
         WHERE t.active = 1",
        "SELECT 'relationship', p.source_id, s.source_id, r.relationship, r.type FROM relationships r
         JOIN contact_sources p ON p.contact_id = r.parent_id
         JOIN contact_sources s ON s.contact_id = r.student_id WHERE r.active = 1",
        "SELECT 'identifier', cs.source_id, i.kind, i.value FROM contact_ids i
         JOIN contact_sources cs ON cs.contact_id = i.contact_id WHERE cs.active = 1",
        "SELECT 'school of', cs.source_id, s.source_id FROM contact_schools x
         JOIN contact_sources cs ON cs.contact_id = x.contact_id JOIN schools s ON s.id = x.school_id
         WHERE cs.active = 1",
    ];
    let db = sandbox.db();
    let mut rows: Vec<String> = QUERIES
        .iter()
        .flat_map(|sql| query_rows(&db, sql))
        .collect();
    rows.sort();
    rows
}

/// A roster whose source is a copy of the fixture folder (the tests change the copy).
fn fixture_folder() -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    copy_dir(&fixtures().join("pickatime"), &files);
    sandbox.write_config(&config(&files));
    (sandbox, files)
}

/// `files` imported in full into a roster of their own, by the school's own ids.
fn complete_import(files: &Path) -> Vec<String> {
    let complete = Sandbox::new(&config(files));
    complete.roster(&["import"]).ok();
    roster_by_source_ids(&complete)
}

fn edit(files: &Path, name: &str, change: impl FnOnce(Vec<String>) -> Vec<String>) {
    let path = files.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = change(text.lines().map(str::to_string).collect());
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn without(lines: Vec<String>, gone: impl Fn(&str) -> bool) -> Vec<String> {
    lines.into_iter().filter(|l| !gone(l)).collect()
}

/// A term's worth of changes to the fixture district, touching every file and every
/// rule that spans rows: a student renamed, one gone and one new; a class renamed, one
/// co-taught now and one gone; a student's classes changed; a parent whose email is now
/// another's (two contacts merge into one), one whose email is no longer another's (a
/// contact of two ParentIDs splits in two), a parent gone; relationships gone and new.
fn change_the_district(files: &Path) {
    edit(files, "Student.txt", |mut lines| {
        lines = without(lines, |l| l.starts_with("24003\t"));
        for line in &mut lines {
            if line.starts_with("24002\t") {
                *line = line.replace("Anderson", "Anderson-Reyes");
            }
        }
        lines.push("24999\tNew\tStudent\t01/02/2015\t6\t6A\t".into());
        lines
    });
    edit(files, "Class.txt", |mut lines| {
        lines = without(lines, |l| l.starts_with("SPAN-P7\t"));
        for line in &mut lines {
            if line.starts_with("MATH6-P2\t") {
                *line = line.replace("Math 6 - P2", "Math 6 - P2 (honors)");
            }
        }
        lines.push("MATH6-P1\tT003\tMath 6 - P1\tGrade 6 Team\t2".into());
        lines
    });
    edit(files, "Enrollment.txt", |lines| {
        let mut lines: Vec<String> = without(lines, |l| l.starts_with("24003\t"))
            .into_iter()
            .map(|l| {
                let cells: Vec<&str> = l
                    .split('\t')
                    .map(|c| if c == "SPAN-P7" { "" } else { c })
                    .collect();
                cells.join("\t")
            })
            .collect();
        for line in &mut lines {
            if line.starts_with("24001\t") {
                *line = line.replace("MATH6-P3", "MATH6-P1");
            }
        }
        lines.push("24999\tMATH6-P2\tENG6-P2\t\t\t\t".into());
        lines
    });
    edit(files, "Parent.txt", |lines| {
        without(lines, |l| l.starts_with("P30003\t"))
            .into_iter()
            .map(|l| {
                if l.starts_with("P30002\t") {
                    l.replace("mei.obrien2@", "LARRY.OBRIEN1@")
                } else if l.starts_with("P30404\t") {
                    l.replace("SCOTT.RODRIGUEZ10@", "s.rodriguez.404@")
                } else {
                    l
                }
            })
            .collect()
    });
    edit(files, "ParentStudent.txt", |mut lines| {
        lines = without(lines, |l| {
            l.starts_with("P30003\t") || l.ends_with("\t24003") || l == "P30001\t24051"
        });
        lines.push("P30004\t24999".into());
        lines
    });
}

#[test]
fn a_second_import_of_changed_files_continues_and_leaves_what_a_complete_one_leaves() {
    let (sandbox, files) = fixture_folder();
    let first = sandbox.roster(&["import"]).ok();
    assert!(!first.stdout.contains("continued"), "{}", first.stdout);
    let kept: i64 = sandbox
        .db()
        .query_row(
            "SELECT count(*) FROM source_checkpoints WHERE source = 'files'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "a file import keeps a checkpoint");

    change_the_district(&files);
    let second = sandbox.roster(&["-v", "import"]).ok();
    assert!(
        second.stdout.contains("continued from the last run"),
        "{}",
        second.stdout
    );
    // On Linux the plugin file maps the host's copy of the checkpoint (no hex).
    if cfg!(target_os = "linux") {
        assert!(
            second
                .stderr
                .contains("bytes, read in place from the host's memory"),
            "{}",
            second.stderr
        );
    }

    let continued = roster_by_source_ids(&sandbox);
    assert_eq!(continued, complete_import(&files));
    // The changes are in it: the merged parents, the one split off, the co-teacher; what
    // went is inactive.
    let has = |row: &str| continued.iter().any(|r| r == row);
    assert!(has("identifier|P30001|ParentID|P30002"));
    assert!(has("identifier|P30404|ParentID|P30404"));
    assert!(!has("identifier|P30010|ParentID|P30404"));
    assert!(has("class teacher|MATH6-P1|T003|0"));
    let active = |sql: &str| -> Vec<i64> {
        let db = sandbox.db();
        let mut statement = db.prepare(sql).unwrap();
        let rows = statement.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(
        active(
            "SELECT active FROM contact_sources WHERE source_id IN ('24003', 'P30002', 'P30003')"
        ),
        [0, 0, 0]
    );
    assert_eq!(
        active("SELECT active FROM classes WHERE source_id = 'SPAN-P7'"),
        [0]
    );

    // Nothing changed since: nothing is written.
    let third = sandbox.roster(&["import"]).ok();
    assert!(third.stdout.contains("continued"), "{}", third.stdout);
    assert_eq!(roster_by_source_ids(&sandbox), continued);
    let summary: String = sandbox
        .db()
        .query_row(
            "SELECT summary FROM sync_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    for (entity, counts) in summary["entities"].as_object().unwrap() {
        for what in ["inserted", "updated", "deactivated"] {
            assert_eq!(counts[what].as_u64().unwrap_or(0), 0, "{entity} {what}");
        }
    }
}

#[test]
fn full_reads_every_file_again() {
    let (sandbox, files) = fixture_folder();
    sandbox.roster(&["import"]).ok();
    change_the_district(&files);
    let full = sandbox.roster(&["import", "--full"]).ok();
    assert!(!full.stdout.contains("continued"), "{}", full.stdout);
    assert_eq!(roster_by_source_ids(&sandbox), complete_import(&files));
}

/// Night after night, a run keeps its files as the changes from the texts it compared
/// them with (parts after the checkpoint), and the next run reads them back exactly.
#[test]
fn nights_of_changes_extend_the_checkpoint_and_each_leaves_what_a_complete_import_leaves() {
    let (sandbox, files) = fixture_folder();
    sandbox.roster(&["import"]).ok();
    let parts = || -> i64 {
        sandbox
            .db()
            .query_row("SELECT count(*) FROM source_checkpoint_parts", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(parts(), 0);
    // Each night's change to the files, and the parts kept after it.
    type Night<'a> = (&'a dyn Fn(&Path), i64);
    let nights: [Night; 3] = [
        (
            &|files| {
                edit(files, "Student.txt", |lines| {
                    lines
                        .into_iter()
                        .map(|l| l.replace("Anderson", "Andersen"))
                        .collect()
                })
            },
            1,
        ),
        (&change_the_district, 2),
        // Nothing changed: nothing kept.
        (&|_| {}, 2),
    ];
    for (night, (change, kept_parts)) in nights.iter().enumerate() {
        change(&files);
        let run = sandbox.roster(&["import"]).ok();
        assert!(run.stdout.contains("continued"), "{}", run.stdout);
        assert_eq!(parts(), *kept_parts, "night {night}");
        assert_eq!(
            roster_by_source_ids(&sandbox),
            complete_import(&files),
            "night {night}"
        );
    }
    // A run in full keeps its files whole again.
    sandbox.roster(&["import", "--full"]).ok();
    assert_eq!(parts(), 0);
    edit(&files, "Class.txt", |lines| {
        lines
            .into_iter()
            .map(|l| l.replace("Math 6 - P2", "Math 6, P2"))
            .collect()
    });
    sandbox.roster(&["import"]).ok();
    assert_eq!(parts(), 1);
    assert_eq!(roster_by_source_ids(&sandbox), complete_import(&files));
}
