//! A pickAtime run that continues from the last one's checkpoint: what it sends for each
//! kind of change, and that it fails exactly where a complete read of the same files does.

mod common;

use std::sync::Arc;

use common::*;
use roster_core::record::{Entity, Kind, Record, Role};
use roster_core::PluginError;
use roster_plugin_csv::PickatimeSource;

const PARENTS: &[u8] = b"ParentID\tFirst\tLast\tEmail\nP1\tMaria\tLopez\tmaria@example.com\nP2\tJohn\tLopez\tjohn@example.com\n";
const LINKS: &[u8] = b"ParentID\tStudentID\nP1\tS1\nP2\tS1\nP2\tS2\n";

fn run(
    dir: &tempfile::TempDir,
    checkpoint: Option<Vec<u8>>,
) -> (Arc<Recorder>, Result<Vec<Record>, PluginError>) {
    let (recorder, host) = host();
    let config = config(&format!(
        "format = \"pickatime\"\npath = {:?}\nterm = \"2025-26\"\n",
        dir.path().file_name().unwrap().to_str().unwrap()
    ));
    let base = dir.path().parent().unwrap();
    let result = PickatimeSource::open_from(&config, base, host, checkpoint.map(Into::into))
        .and_then(|source| source.collect());
    (recorder, result)
}

fn checkpoint(records: &[Record]) -> Vec<u8> {
    let kept: Vec<&Vec<u8>> = records
        .iter()
        .filter_map(|r| match &r.kind {
            Some(Kind::Checkpoint(c)) => Some(&c.state),
            _ => None,
        })
        .collect();
    assert_eq!(kept.len(), 1, "one checkpoint per run");
    kept[0].clone()
}

/// A folder read in full, then changed by `changes` (as [`folder`] takes them), and the
/// records of the run that continues from the first.
fn continued(
    first: &[(&str, &[u8])],
    changes: &[(&str, &[u8])],
) -> (tempfile::TempDir, Arc<Recorder>, Records) {
    let dir = folder(first);
    let (_, records) = run(&dir, None);
    let kept = checkpoint(&records.unwrap());
    write(&dir, changes);
    let (recorder, records) = run(&dir, Some(kept));
    let records = records.unwrap_or_else(|e| panic!("{e}"));
    (dir, recorder, Records(records))
}

fn write(dir: &tempfile::TempDir, changes: &[(&str, &[u8])]) {
    for (name, content) in changes {
        let path = dir.path().join(name);
        if content.is_empty() {
            std::fs::remove_file(path).unwrap();
        } else {
            std::fs::write(path, content).unwrap();
        }
    }
}

/// The records, each as one line of text: kind and ids.
fn summary(records: &Records) -> Vec<String> {
    records
        .kinds()
        .map(|kind| match kind {
            Kind::Snapshot(s) if s.continues => "continues".to_string(),
            Kind::Snapshot(_) => "snapshot".to_string(),
            Kind::Checkpoint(_) => "checkpoint".to_string(),
            Kind::School(s) => format!("school {}", s.source_id),
            Kind::Term(t) => format!("term {}", t.source_id),
            Kind::Person(p) => format!(
                "person {}{}",
                p.source_id,
                if p.removed { " removed" } else { "" }
            ),
            Kind::Class(c) => format!("class {} {}", c.source_id, c.name),
            Kind::ClassTeacher(l) => format!(
                "class teacher {} {} {}",
                l.class_id, l.teacher_id, l.primary
            ),
            Kind::Enrollment(l) => format!("enrollment {} {}", l.class_id, l.student_id),
            Kind::Relationship(l) => format!("relationship {} {}", l.parent_id, l.student_id),
            Kind::Removal(r) => format!(
                "removal {:?} {} {}",
                Entity::try_from(r.entity).unwrap(),
                r.source_id,
                r.other_id
            ),
            Kind::LinksReplaced(l) => format!(
                "links replaced {:?} {}",
                Entity::try_from(l.entity).unwrap(),
                l.owner_id
            ),
        })
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// What the host keeps after a run: its checkpoint, after `kept` when it extends it.
fn kept_after(kept: Option<Vec<u8>>, records: &[Record]) -> (Vec<u8>, bool) {
    let sent = records
        .iter()
        .find_map(|r| match &r.kind {
            Some(Kind::Checkpoint(c)) => Some(c.clone()),
            _ => None,
        })
        .expect("a checkpoint");
    match (sent.extends, kept) {
        (true, Some(mut kept)) => {
            kept.extend(sent.state);
            (kept, true)
        }
        (true, None) => panic!("extends a checkpoint it was not given"),
        (false, _) => (sent.state, false),
    }
}

/// Night after night: the changes kept after the checkpoint, then the texts whole again
/// once those are large, and each night compares with the files as they were the night
/// before — also a file the last night did not change, but one before it did.
#[test]
fn nights_compare_with_the_night_before_through_deltas_and_new_bases() {
    let dir = folder(&[]);
    let nights: [&[(&str, &[u8])]; 4] = [
        // Every file changed: deltas as large as the texts.
        &[
            (
                "Student.txt",
                b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tKing\t12/10/2015\nS2\tAlan\tMathison\t06/23/2014\n",
            ),
            ("Class.txt", b"ClassID\tTeacherID\tClassName\nC1\tT1\tAlgebra\nC2\tT2\tBiology\n"),
            ("Enrollment.txt", b"StudentID\tClassID\nS1\tC2\nS2\tC1\n"),
            (
                "Teacher.txt",
                b"TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tMary\tJackson\tmary@school.example.org\t21\nT2\tKatherine\tJohnson\tkj@school.example.org\t41\n",
            ),
        ],
        // One student renamed: the texts kept whole again, the classes as last night.
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace-King\t12/10/2015\nS2\tAlan\tMathison\t06/23/2014\n",
        )],
        // Nothing changed.
        &[],
        &[],
    ];
    let (_, first) = run(&dir, None);
    let (mut kept, _) = kept_after(None, &first.unwrap());
    let mut extended = Vec::new();
    for changes in nights {
        write(&dir, changes);
        let (_, records) = run(&dir, Some(kept.clone()));
        let records = records.unwrap_or_else(|e| panic!("{e}"));
        let sent = summary(&Records(records.clone()));
        let changed = sent.iter().any(|line| line.starts_with("class "));
        extended.push((kept_after(Some(kept.clone()), &records).1, changed));
        kept = kept_after(Some(kept), &records).0;
    }
    // The first night extends the checkpoint with its classes' changes, the second keeps
    // the texts whole (the deltas are a quarter of the base and more), and after that no
    // night sends a class again.
    assert_eq!(
        extended,
        [(true, true), (false, false), (true, false), (true, false)]
    );
}

#[test]
fn files_that_did_not_change_send_nothing_but_the_checkpoint() {
    let (_, _, records) = continued(
        &[("Parent.txt", PARENTS), ("ParentStudent.txt", LINKS)],
        &[],
    );
    assert_eq!(
        summary(&records),
        ["continues", "school school", "term 2025-26", "checkpoint"]
    );
}

#[test]
fn changed_rows_go_out_and_what_went_is_removed() {
    let (_, _, records) = continued(
        &[],
        &[
            (
                "Student.txt",
                b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tKing\t12/10/2015\nS3\tGrace\tHopper\t12/09/2014\n",
            ),
            ("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS1\tC2\nS3\tC2\n"),
            // C2 is co-taught now; C1 did not change.
            (
                "Class.txt",
                b"ClassID\tTeacherID\tClassName\nC1\tT1\tMath\nC2\tT2\tScience\nC2\tT1\tScience\n",
            ),
        ],
    );
    assert_eq!(
        summary(&records),
        [
            "continues",
            "school school",
            "term 2025-26",
            "person S1",
            "person S3",
            "removal Students S2",
            "class C2 Science",
            "links replaced ClassTeachers C2",
            "class teacher C2 T2 true",
            "class teacher C2 T1 false",
            "enrollment C1 S1",
            "enrollment C2 S1",
            "enrollment C2 S3",
            "removal Enrollments C2 S2",
            "checkpoint",
        ]
    );
}

#[test]
fn a_parent_whose_email_is_another_s_now_merges_and_its_relationships_move() {
    let (_, recorder, records) = continued(
        &[("Parent.txt", PARENTS), ("ParentStudent.txt", LINKS)],
        &[(
            "Parent.txt",
            b"ParentID\tFirst\tLast\tEmail\nP1\tMaria\tLopez\tmaria@example.com\nP2\tJohn\tLopez\tMaria@example.com\n",
        )],
    );
    assert_eq!(
        summary(&records),
        [
            "continues",
            "school school",
            "term 2025-26",
            "person P1",
            "removal Parents P2",
            "links replaced Relationships P1",
            "relationship P1 S1",
            "relationship P1 S1",
            "relationship P1 S2",
            "checkpoint",
        ]
    );
    let merged = records.person(Role::Parent, "P1");
    let ids: Vec<&str> = merged
        .identifiers
        .iter()
        .map(|i| i.value.as_str())
        .collect();
    assert_eq!(ids, ["P1", "P2"]);
    assert!(recorder
        .at(roster_core::sdk::Level::Info)
        .iter()
        .any(|m| m.contains("merged")));
}

#[test]
fn a_continuing_run_fails_where_a_complete_read_fails() {
    let cases: [&[(&str, &[u8])]; 12] = [
        // A new row repeats a StudentID an unchanged row has.
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace\t12/10/2015\nS2\tAlan\tTuring\t06/23/2014\nS2\tAl\tTuring\t\n",
        )],
        // A class goes that an unchanged enrollment row still names.
        &[("Class.txt", b"ClassID\tTeacherID\tClassName\nC1\tT1\tMath\n")],
        // A student is deleted that an unchanged enrollment row still names.
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\tAction\nS1\tAda\tLovelace\t12/10/2015\t\nS2\tAlan\tTuring\t06/23/2014\tdelete\n",
        )],
        // A student's row goes that an unchanged enrollment row still names.
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace\t12/10/2015\n",
        )],
        // Nothing went, and a new enrollment row names a student, a class, no one.
        &[("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS2\tC2\nS9\tC1\n")],
        &[("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS2\tC2\nS2\tC9\n")],
        &[("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS2\tC2\n\tC1\n")],
        // A teacher goes that an unchanged class row still names.
        &[(
            "Teacher.txt",
            b"TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tMary\tJackson\tmary@school.example.org\t12\n",
        )],
        // Nothing went, and a new class row names no teacher the file has.
        &[(
            "Class.txt",
            b"ClassID\tTeacherID\tClassName\nC1\tT1\tMath\nC2\tT2\tScience\nC3\tT9\tArt\n",
        )],
        // A new header without the key.
        &[("Enrollment.txt", b"Student\tClassID\nS1\tC1\nS2\tC2\n")],
        // A new relationship row without a ParentID, or a StudentID.
        &[(
            "ParentStudent.txt",
            b"ParentID\tStudentID\nP1\tS1\nP2\tS1\nP2\tS2\n\tS2\n",
        )],
        &[(
            "ParentStudent.txt",
            b"ParentID\tStudentID\nP1\tS1\nP2\tS1\nP2\tS2\nP1\t\n",
        )],
    ];
    for changes in cases {
        let dir = folder(&[("Parent.txt", PARENTS), ("ParentStudent.txt", LINKS)]);
        let kept = checkpoint(&run(&dir, None).1.unwrap());
        write(&dir, changes);
        let complete = run(&dir, None).1.expect_err("a complete read fails");
        let continuing = run(&dir, Some(kept))
            .1
            .expect_err("a continuing read fails");
        assert_eq!(continuing.to_string(), complete.to_string());
    }
}

/// The students a continuing run does not send are known by their id and Action cells
/// alone, the rest of their rows being as the last run checked them: an unchanged student
/// can be enrolled anew, and one that an unchanged row deletes still cannot be, with the
/// error a complete read gives.
#[test]
fn unchanged_students_are_known_by_their_id_and_action() {
    let students: &[u8] = b"StudentID\tFirst\tLast\tSecurityValue\tAction\n\
        S1\tAda\tLovelace\t12/10/2015\t\n\
        S2\tAlan\tTuring\t06/23/2014\tupdate\n\
        S3\tGrace\tHopper\t\tDelete\n";
    let (_, _, records) = continued(
        &[("Student.txt", students)],
        &[(
            "Enrollment.txt",
            b"StudentID\tClassID\nS1\tC1\nS2\tC2\nS2\tC1\n",
        )],
    );
    assert_eq!(
        summary(&records),
        [
            "continues",
            "school school",
            "term 2025-26",
            "enrollment C2 S2",
            "enrollment C1 S2",
            "checkpoint",
        ]
    );

    let dir = folder(&[("Student.txt", students)]);
    let kept = checkpoint(&run(&dir, None).1.unwrap());
    write(
        &dir,
        &[(
            "Enrollment.txt",
            b"StudentID\tClassID\nS1\tC1\nS2\tC2\nS3\tC1\n",
        )],
    );
    let complete = run(&dir, None).1.expect_err("a complete read fails");
    let continuing = run(&dir, Some(kept))
        .1
        .expect_err("a continuing read fails");
    assert!(complete.to_string().contains("S3"), "{complete}");
    assert_eq!(continuing.to_string(), complete.to_string());
}

#[test]
fn a_new_header_or_delimiter_still_sends_exactly_what_changed() {
    let (_, _, records) = continued(
        &[],
        &[
            // Columns reordered: every row reads differently, and every student goes out.
            (
                "Student.txt",
                b"First\tStudentID\tLast\tSecurityValue\nAda\tS1\tLovelace\t12/10/2015\nAlan\tS2\tTuring\t06/23/2014\n",
            ),
            // Another delimiter, the same cells: nothing changed.
            ("Teacher.txt", b"TeacherID,First,Last,Email,Room\nT1,Mary,Jackson,mary@school.example.org,12\nT2,Katherine,Johnson,kj@school.example.org,14\n"),
        ],
    );
    assert_eq!(
        summary(&records),
        [
            "continues",
            "school school",
            "term 2025-26",
            "person S1",
            "person S2",
            "checkpoint"
        ]
    );
}

#[test]
fn a_checkpoint_that_does_not_fit_reads_everything() {
    let dir = folder(&[("Parent.txt", PARENTS), ("ParentStudent.txt", LINKS)]);
    let (recorder, records) = run(&dir, Some(b"not a checkpoint".to_vec()));
    let records = Records(records.unwrap());
    assert!(records.snapshot().contains(&Entity::Students));
    assert!(recorder
        .at(roster_core::sdk::Level::Warn)
        .iter()
        .any(|m| m.contains("reading everything")));

    // The parent files are gone since the checkpoint: what they held cannot be diffed.
    let kept = checkpoint(&records.0);
    write(&dir, &[("Parent.txt", b""), ("ParentStudent.txt", b"")]);
    let (recorder, records) = run(&dir, Some(kept));
    let records = Records(records.unwrap());
    assert!(!records.snapshot().contains(&Entity::Parents));
    assert!(recorder
        .at(roster_core::sdk::Level::Info)
        .iter()
        .any(|m| m.contains("reading everything")));
}

#[test]
fn a_damaged_text_of_any_file_fails_the_run_at_its_step_with_the_way_out() {
    let dir = folder(&[]);
    let (_, records) = run(&dir, None);
    let kept = checkpoint(&records.unwrap());
    let frames: Vec<usize> = kept
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x28, 0xb5, 0x2f, 0xfd])
        .map(|(at, _)| at)
        .collect();
    assert_eq!(frames.len(), 4, "a text for each file");
    // Each frame's magic number broken in turn. Every file after the first is compared
    // while the step before it reads its rows: its failure is the run's all the same.
    for at in frames {
        let mut damaged = kept.clone();
        damaged[at..at + 4].fill(0);
        let (_, records) = run(&dir, Some(damaged));
        let error = records.unwrap_err();
        assert!(
            error
                .message
                .starts_with("the last run's checkpoint cannot be read"),
            "{error}"
        );
        assert_eq!(
            error.hint.as_deref(),
            Some("run with `--full` to read every file in full")
        );
    }
}

/// Linux only, where a continuing run maps the files it compares (`mapped.rs`).
#[cfg(target_os = "linux")]
#[test]
fn a_file_changed_while_a_continuing_run_reads_it_fails_the_run() {
    let dir = folder(&[]);
    let (_, records) = run(&dir, None);
    let kept = checkpoint(&records.unwrap());
    let changed: &[u8] = b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace\t12/10/2015\nS2\tAlan\tTuring\t06/24/2014\n";
    write(&dir, &[("Student.txt", changed)]);
    let (_, host) = host();
    let config = config(&format!(
        "format = \"pickatime\"\npath = {:?}\nterm = \"2025-26\"\n",
        dir.path().file_name().unwrap().to_str().unwrap()
    ));
    let base = dir.path().parent().unwrap();
    let mut source = PickatimeSource::open_from(&config, base, host, Some(kept.into())).unwrap();
    // Up to the changed student: the Student file is compared, and mapped, by then.
    while !matches!(
        source.next().expect("a record").unwrap().kind,
        Some(Kind::Person(_))
    ) {}
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("Student.txt"))
        .and_then(|mut file| std::io::Write::write_all(&mut file, b"S3\tGrace\tHopper\t\n"))
        .unwrap();
    let error = source
        .collect::<Result<Vec<_>, _>>()
        .expect_err("the run fails");
    assert!(
        error.location.as_deref().unwrap().ends_with("/Student.txt"),
        "{error}"
    );
    assert_eq!(
        error.message,
        "changed while the import read it; nothing was applied"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("run the import again once the file is written in full")
    );
}
