//! What people see: the help text (snapshotted), and hostile names that must round-trip
//! untouched into the database and come out of exports defused.

use crate::harness::Sandbox;

#[test]
fn the_help_text_is_stable() {
    let sandbox = Sandbox::new("");
    let help = sandbox.roster(&["--help"]).ok().stdout;
    insta::assert_snapshot!("help", help);
    let sync = sandbox.roster(&["sync", "--help"]).ok().stdout;
    insta::assert_snapshot!("sync-help", sync);
}

#[test]
fn names_with_quotes_and_sql_round_trip_and_exports_are_defused() {
    let sandbox = Sandbox::new("");
    let files = sandbox.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let hostile = [
        ("S1", "O'Brien", "Robert'); DROP TABLE contacts;--"),
        ("S2", "\"Quoted\"", "=HYPERLINK(\"http://evil.example\")"),
        ("S3", "@SUM(1+1)", "+1-2"),
    ];
    let mut students = String::from("StudentID\tFirst\tLast\tSecurityValue\n");
    for (id, first, last) in hostile {
        // Tab-delimited with quoting: the csv reader un-quotes "" as it should.
        students.push_str(&format!(
            "{id}\t\"{}\"\t\"{}\"\t1234\n",
            first.replace('"', "\"\""),
            last.replace('"', "\"\"")
        ));
    }
    std::fs::write(files.join("Student.txt"), students).unwrap();
    std::fs::write(
        files.join("Teacher.txt"),
        "TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tAda\tL\tada@school.example.org\t1\n",
    )
    .unwrap();
    std::fs::write(
        files.join("Class.txt"),
        "ClassID\tTeacherID\tClassName\nC1\tT1\t-Math\n",
    )
    .unwrap();
    std::fs::write(
        files.join("Enrollment.txt"),
        "StudentID\tClassID\nS1\tC1\nS2\tC1\nS3\tC1\n",
    )
    .unwrap();
    sandbox.write_config(&format!(
        "[database]\npath = \"roster.db\"\n[[source]]\nname = \"f\"\nplugin = \"csv\"\nformat = \"pickatime\"\npath = \"{}\"\n[[event]]\nname = \"E\"\nsource = \"f\"\n",
        files.display()
    ));
    sandbox.roster(&["import"]).ok();
    let db = sandbox.db();
    for (id, first, last) in hostile {
        let (f, l): (String, String) = db
            .query_row(
                "SELECT first_name, last_name FROM contacts c JOIN contact_ids i ON i.contact_id = c.id WHERE i.value = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((f.as_str(), l.as_str()), (first, last));
    }
    sandbox
        .roster(&["export", "--event", "E", "--dir", "out"])
        .ok();
    let contacts = std::fs::read_to_string(sandbox.dir.path().join("out/e/contacts.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(contacts.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for dangerous in ["=HYPERLINK(\"http://evil.example\")", "@SUM(1+1)", "+1-2"] {
        assert!(
            cells.contains(&format!("'{dangerous}")),
            "{dangerous} not defused in:\n{contacts}"
        );
        assert!(
            !cells.contains(&dangerous.to_string()),
            "{dangerous} left live"
        );
    }
    assert!(cells.contains(&"Robert'); DROP TABLE contacts;--".to_string()));
    let classes = std::fs::read_to_string(sandbox.dir.path().join("out/e/classes.csv")).unwrap();
    assert!(classes.contains("'-Math"), "{classes}");
}
