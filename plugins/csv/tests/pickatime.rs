//! Behaviour of the pickAtime reader on small generated file sets.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use roster_core::record::{Entity, Role};
use roster_core::sdk::{Level, OpenContext, Plugin, RecordSource};
use roster_core::ErrorKind;
use roster_plugin_csv::CsvPlugin;

const PARENTS: &[u8] = b"ParentID\tFirst\tLast\tEmail\n\
P1\tMaria\tLopez\tmaria@example.com\n\
P2\tJohn\tLopez\tjohn@example.com\n\
P3\tMaria\tLopez-Garcia\t MARIA@Example.com \n\
P2\tJohnny\tLopez\tjohn@example.com\n";
const LINKS: &[u8] = b"ParentID\tStudentID\nP1\tS1\nP3\tS2\nP2\tS1\nP3\tS1\n";

#[test]
fn repeated_class_id_layout() {
    let enrollment = b"StudentID\tClassID\tClassID\tClassID\nS1\tC1\tC2\t\nS2\tC2\nS1\tC1\t\t\n";
    let (_, records) = folder_ok(&[("Enrollment.txt", enrollment)], "");
    let pairs: Vec<(&str, &str)> = records
        .enrollments()
        .iter()
        .map(|e| (e.student_id.as_str(), e.class_id.as_str()))
        .collect();
    // S1 in C1 again on the last row: sent again, and written once by the host.
    assert_eq!(
        pairs,
        [("S1", "C1"), ("S1", "C2"), ("S2", "C2"), ("S1", "C1")]
    );
}

#[test]
fn pair_layout_with_empty_class_is_an_error() {
    let (location, message) = folder_err(
        &[("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS2\t\n")],
        "",
    );
    assert_eq!(location.as_deref(), Some("Enrollment.txt:3:2"));
    assert_eq!(message, "empty ClassID");
}

#[test]
fn unknown_references_in_enrollments() {
    let (location, message) = folder_err(
        &[(
            "Enrollment.txt",
            b"StudentID\tClassID\tClassID\nS1\tC1\tC9\n",
        )],
        "",
    );
    assert_eq!(location.as_deref(), Some("Enrollment.txt:2:3"));
    assert!(message.starts_with("unknown ClassID `C9`"), "{message}");
    let (location, message) = folder_err(
        &[("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS7\tC1\n")],
        "",
    );
    assert_eq!(location.as_deref(), Some("Enrollment.txt:3:1"));
    assert_eq!(message, "unknown StudentID `S7` (not in Student.txt)");
}

#[test]
fn co_taught_class_is_one_class_with_two_teachers() {
    let classes = b"ClassID\tTeacherID\tClassName\tGroupName\tPTAN\nC1\tT1\tMath\tG6\t2\nC2\tT2\tScience\t\t\nC1\tT2\tMath\tG6\t2\nC1\tT2\tMath\tG6\t2\n";
    let (recorder, records) = folder_ok(&[("Class.txt", classes)], "");
    let classes = records.classes();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0].appointments_per_parent, Some(2));
    assert_eq!(classes[0].group_name.as_deref(), Some("G6"));
    assert_eq!(classes[1].appointments_per_parent, None);
    let links: Vec<(&str, &str, bool)> = records
        .class_teachers()
        .iter()
        .map(|l| (l.class_id.as_str(), l.teacher_id.as_str(), l.primary))
        .collect();
    assert_eq!(
        links,
        [("C1", "T1", true), ("C2", "T2", true), ("C1", "T2", false)]
    );
    assert!(recorder.at(Level::Warn).is_empty());
}

#[test]
fn repeated_class_with_other_details_keeps_the_first_and_warns() {
    let classes =
        b"ClassID\tTeacherID\tClassName\nC1\tT1\tMath\nC2\tT2\tScience\nC1\tT2\tAlgebra\n";
    let (recorder, records) = folder_ok(&[("Class.txt", classes)], "");
    assert_eq!(records.classes()[0].name, "Math");
    let warnings = recorder.at(Level::Warn);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("Class.txt:4: ClassID `C1` repeats line 2"),
        "{warnings:?}"
    );
}

#[test]
fn action_delete_marks_the_student_removed() {
    let students = b"StudentID\tFirst\tLast\tSecurityValue\tAction\nS1\tAda\tLovelace\t12/10/2015\tupdate\nS2\tAlan\tTuring\t06/23/2014\t\nS3\t\t\t\tDELETE\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    assert!(!records.person(Role::Student, "S1").removed);
    assert!(!records.person(Role::Student, "S2").removed);
    assert!(records.person(Role::Student, "S3").removed);
}

#[test]
fn removed_student_cannot_be_enrolled() {
    let students = b"StudentID\tFirst\tLast\tSecurityValue\tAction\nS1\tAda\tLovelace\t\t\nS2\tAlan\tTuring\t\tdelete\n";
    let (location, message) = folder_err(&[("Student.txt", students)], "");
    assert_eq!(location.as_deref(), Some("Enrollment.txt:3:1"));
    assert_eq!(
        message,
        "StudentID `S2` is deleted by Action=delete in Student.txt (line 3)"
    );
}

#[test]
fn unknown_action_is_an_error() {
    let students = b"StudentID\tFirst\tLast\tSecurityValue\tAction\nS1\tAda\tLovelace\t\tremove\n";
    let (location, message) = folder_err(&[("Student.txt", students)], "");
    assert_eq!(location.as_deref(), Some("Student.txt:2:5"));
    assert!(message.starts_with("unknown Action `remove`"), "{message}");
}

#[test]
fn student_extras_and_unknown_columns() {
    let students = b" studentid \tFIRST\tLast\tSecurityValue\tGrade\tEmail\tDOB\tLocker\nS1\tAda\tLovelace\t4821\t6\tada@example.com\t3/4/2015\t17\nS2\tAlan\tTuring\t06/23/2014\t7\t\tsoon\t\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    let ada = records.person(Role::Student, "S1");
    assert_eq!(ada.first_name, "Ada");
    assert_eq!(ada.grade.as_deref(), Some("6"));
    assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
    assert_eq!(ada.birth_date.as_deref(), Some("2015-03-04"));
    assert_eq!(ada.security_value.as_deref(), Some("4821"));
    assert_eq!(ada.attributes.get("Locker").map(String::as_str), Some("17"));
    let alan = records.person(Role::Student, "S2");
    assert_eq!(
        alan.birth_date.as_deref(),
        Some("soon"),
        "an explicit DOB is kept as given"
    );
    assert!(alan.attributes.is_empty());
}

#[test]
fn duplicate_student_and_empty_fields() {
    let (location, message) = folder_err(
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\tA\tB\t\nS1\tC\tD\t\n",
        )],
        "",
    );
    assert_eq!(location.as_deref(), Some("Student.txt:3:1"));
    assert_eq!(message, "duplicate StudentID `S1` (also on line 2)");
    let (location, message) = folder_err(
        &[(
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\t \tB\t\n",
        )],
        "",
    );
    assert_eq!(location.as_deref(), Some("Student.txt:2:2"));
    assert_eq!(message, "empty First");
    let (location, message) = folder_err(&[("Class.txt", b"ClassID\tTeacherID\nC1\t\n")], "");
    assert_eq!(location.as_deref(), Some("Class.txt:2:2"));
    assert_eq!(message, "empty TeacherID");
}

#[test]
fn header_problems() {
    let (location, message) = folder_err(
        &[(
            "Teacher.txt",
            b"TeacherID\tFirst\tLast\tEmail\tRoom\tfirst\n",
        )],
        "",
    );
    assert_eq!(location.as_deref(), Some("Teacher.txt:1:6"));
    assert_eq!(message, "duplicate column `first` (also column 2)");
    let (location, message) = folder_err(&[("Teacher.txt", b"TeacherID\tName\n")], "");
    assert_eq!(location.as_deref(), Some("Teacher.txt:1"));
    assert_eq!(
        message,
        "missing columns `First`, `Last`, `Email`, `Room` (found: TeacherID, Name)"
    );
    let (location, message) = folder_err(&[("Teacher.txt", b"\n\n")], "");
    assert_eq!(location.as_deref(), Some("Teacher.txt:1"));
    assert!(message.starts_with("the file is empty"), "{message}");
}

#[test]
fn row_length_problems() {
    let (location, message) = folder_err(&[("Class.txt", b"ClassID\tTeacherID\nC1\tT1\tx\n")], "");
    assert_eq!(location.as_deref(), Some("Class.txt:2:3"));
    assert_eq!(
        message,
        "the row has 3 fields but the header has 2: `x` has no column"
    );
    // Trailing empty cells are fine.
    let (_, records) = folder_ok(
        &[("Class.txt", b"ClassID\tTeacherID\nC1\tT1\t\t\nC2\tT2\n")],
        "",
    );
    assert_eq!(records.classes().len(), 2);
}

#[test]
fn blank_lines_are_skipped() {
    let students = b"StudentID\tFirst\tLast\tSecurityValue\n\nS1\tAda\tLovelace\t\n\t\t\t\n\nS2\tAlan\tTuring\t\n\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    assert_eq!(records.people(Role::Student).len(), 2);
    // Physical line numbers count the blank lines.
    let (location, _) = folder_err(&[("Class.txt", b"ClassID\tTeacherID\n\n\nC1\tT9\n")], "");
    assert_eq!(location.as_deref(), Some("Class.txt:4:2"));
}

#[test]
fn password_is_never_imported() {
    let teachers = b"TeacherID\tFirst\tLast\tEmail\tRoom\tPassword\nT1\tMary\tJackson\tmary@example.org\t12\tsecret1\nT2\tKatherine\tJohnson\tkj@example.org\t14\tsecret2\n";
    let (recorder, records) = folder_ok(&[("Teacher.txt", teachers)], "");
    assert!(!format!("{:?}", records.0).contains("secret"));
    assert!(records.person(Role::Teacher, "T1").attributes.is_empty());
    assert_eq!(
        recorder.at(Level::Warn),
        ["Teacher.txt: the Password column is ignored: roster never imports passwords"]
    );
    // An empty Password column says nothing.
    let teachers =
        b"TeacherID\tFirst\tLast\tEmail\tRoom\tPassword\nT1\tM\tJ\t\t12\t\nT2\tK\tJ\t\t14\t\n";
    let (recorder, _) = folder_ok(&[("Teacher.txt", teachers)], "");
    assert!(recorder.at(Level::Warn).is_empty());
}

#[test]
fn teacher_emails_must_be_unique() {
    let teachers = b"TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tM\tJ\tmj@example.org\t1\nT2\tK\tJ\t MJ@Example.org \t2\n";
    let (location, message) = folder_err(&[("Teacher.txt", teachers)], "");
    assert_eq!(location.as_deref(), Some("Teacher.txt:3:4"));
    assert!(
        message.starts_with("Email `MJ@Example.org` is already TeacherID `T1`'s"),
        "{message}"
    );
}

#[test]
fn duplicate_parents_merge() {
    let (recorder, records) =
        folder_ok(&[("Parent.txt", PARENTS), ("ParentStudent.txt", LINKS)], "");
    let parents = records.people(Role::Parent);
    assert_eq!(parents.len(), 2);
    let maria = records.person(Role::Parent, "P1");
    // The later row of the merged contact wins; the email is emitted as written.
    assert_eq!(maria.last_name, "Lopez-Garcia");
    assert_eq!(maria.email.as_deref(), Some("MARIA@Example.com"));
    let ids: Vec<&str> = maria.identifiers.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(ids, ["P1", "P3"]);
    assert!(maria.identifiers.iter().all(|i| i.kind == "ParentID"));
    assert_eq!(records.person(Role::Parent, "P2").first_name, "Johnny");
    let links: Vec<(&str, &str)> = records
        .relationships()
        .iter()
        .map(|r| (r.parent_id.as_str(), r.student_id.as_str()))
        .collect();
    // P3 is P1's contact now, so P3–S1 is P1–S1 again (the host keeps the first).
    assert_eq!(
        links,
        [("P1", "S1"), ("P1", "S2"), ("P2", "S1"), ("P1", "S1")]
    );
    let infos = recorder.at(Level::Info);
    assert_eq!(infos.len(), 2, "{infos:?}");
    assert!(infos
        .iter()
        .any(|m| m
            .contains("Parent.txt:4: ParentID `P3` has the same Email as ParentID `P1` (line 2)")));
    assert!(infos
        .iter()
        .any(|m| m.contains("Parent.txt:5: ParentID `P2` repeats line 3")));
    assert!(records.snapshot().contains(&Entity::Relationships));
}

#[test]
fn email_chains_merge_into_the_earliest_parent() {
    // P2 and P3 share an email; P3's later row takes P1's email: all three are one contact.
    let parents = b"ParentID\tFirst\tLast\tEmail\nP1\tA\tX\ta@example.com\nP2\tB\tY\tb@example.com\nP3\tC\tZ\tb@example.com\nP3\tC\tZ\ta@example.com\nP4\tD\tW\t\nP5\tE\tV\t\n";
    let (_, records) = folder_ok(&[("Parent.txt", parents)], "");
    let ids: Vec<&str> = records
        .people(Role::Parent)
        .iter()
        .map(|p| p.source_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["P1", "P4", "P5"],
        "parents without email are never merged"
    );
    let p1 = records.person(Role::Parent, "P1");
    assert_eq!(p1.first_name, "C");
    assert_eq!(p1.identifiers.len(), 3);
}

/// More rows than the Parent file's first pass reads ahead (16), merging across that
/// window in every way an email is compared: as written, in other case, not ASCII.
#[test]
fn parents_merge_across_a_long_file() {
    let mut parents = String::from("ParentID\tFirst\tLast\tEmail\n");
    for n in 1..=40 {
        let email = match n {
            3 => "ana@example.com".to_string(),
            5 => "josé@example.com".to_string(),
            21 => "ANA@Example.COM".to_string(),
            33 => "JOSÉ@example.com".to_string(),
            39 => "ana@example.com".to_string(),
            _ => format!("p{n}@example.com"),
        };
        parents.push_str(&format!("P{n}\tF{n}\tL{n}\t{email}\n"));
    }
    parents.push_str("P7\tSeven\tAgain\tp7@example.com\n");
    let (recorder, records) = folder_ok(&[("Parent.txt", parents.as_bytes())], "");
    assert_eq!(records.people(Role::Parent).len(), 40 - 3);
    let ids = |id: &str| -> Vec<String> {
        let person = records.person(Role::Parent, id);
        person.identifiers.iter().map(|i| i.value.clone()).collect()
    };
    assert_eq!(ids("P3"), ["P3", "P21", "P39"]);
    assert_eq!(ids("P5"), ["P5", "P33"]);
    assert_eq!(records.person(Role::Parent, "P7").first_name, "Seven");
    let infos = recorder.at(Level::Info);
    assert_eq!(infos.len(), 4, "{infos:?}");
    assert!(infos.iter().any(|m| m
        .contains("Parent.txt:34: ParentID `P33` has the same Email as ParentID `P5` (line 6)")));
    assert!(infos
        .iter()
        .any(|m| m.contains("Parent.txt:42: ParentID `P7` repeats line 8")));

    // A row without its ParentID far into the file: that row is named.
    let broken = parents.replacen("P30\t", "\t", 1);
    let (location, message) = folder_err(&[("Parent.txt", broken.as_bytes())], "");
    assert_eq!(location.as_deref(), Some("Parent.txt:31:1"));
    assert!(message.contains("ParentID"), "{message}");
}

#[test]
fn parent_errors() {
    let (location, message) = folder_err(
        &[
            ("Parent.txt", PARENTS),
            ("ParentStudent.txt", b"ParentID\tStudentID\nP9\tS1\n"),
        ],
        "",
    );
    assert_eq!(location.as_deref(), Some("ParentStudent.txt:2:1"));
    assert_eq!(message, "unknown ParentID `P9` (not in Parent.txt)");
    let (location, message) = folder_err(
        &[
            ("Parent.txt", PARENTS),
            ("ParentStudent.txt", b"ParentID\tStudentID\nP1\tS9\n"),
        ],
        "",
    );
    assert_eq!(location.as_deref(), Some("ParentStudent.txt:2:2"));
    assert_eq!(message, "unknown StudentID `S9` (not in Student.txt)");
    let (location, message) = folder_err(&[("ParentStudent.txt", LINKS)], "");
    assert_eq!(location.as_deref(), Some("ParentStudent.txt"));
    assert!(message.contains("there is no Parent file"), "{message}");
}

#[test]
fn parent_without_relationship_file() {
    let (_, records) = folder_ok(&[("Parent.txt", PARENTS)], "");
    assert_eq!(records.people(Role::Parent).len(), 2);
    let snapshot = records.snapshot();
    assert!(snapshot.contains(&Entity::Parents));
    assert!(!snapshot.contains(&Entity::Relationships));
}

#[test]
fn missing_optional_files_are_not_complete() {
    let (_, records) = folder_ok(&[], "");
    let snapshot = records.snapshot();
    assert!(!snapshot.contains(&Entity::Parents) && !snapshot.contains(&Entity::Relationships));
    assert!(snapshot.contains(&Entity::Students) && snapshot.contains(&Entity::Enrollments));
}

#[test]
fn missing_required_file_names_the_path() {
    let (location, message) = folder_err(&[("Class.txt", b"")], "");
    assert_eq!(location.as_deref(), Some("Class.txt"));
    assert_eq!(
        message,
        "required file not found (looked for Class.txt, Class.tsv, Class.csv)"
    );
}

#[test]
fn default_names_accept_other_extensions_and_case() {
    let dir = folder(&[]);
    std::fs::rename(
        dir.path().join("Student.txt"),
        dir.path().join("student.CSV"),
    )
    .unwrap();
    std::fs::rename(dir.path().join("Class.txt"), dir.path().join("Class.tsv")).unwrap();
    let (_, result) = read_folder(&dir, "");
    assert_eq!(Records(result.unwrap()).people(Role::Student).len(), 2);
}

#[test]
fn files_key_overrides_names() {
    let dir = folder(&[]);
    std::fs::rename(dir.path().join("Student.txt"), dir.path().join("kids.csv")).unwrap();
    let (_, result) = read_folder(&dir, "[files]\nstudents = \"kids.csv\"\n");
    assert_eq!(Records(result.unwrap()).people(Role::Student).len(), 2);
    let error = read_folder(&dir, "[files]\nstudents = \"nope.csv\"\n")
        .1
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(
        error.message.starts_with("files.students: "),
        "{}",
        error.message
    );
}

#[test]
fn utf8_bom() {
    let students = b"\xEF\xBB\xBFStudentID\tFirst\tLast\tSecurityValue\nS1\tZo\xC3\xAB\tFischer\t\nS2\tA\tB\t\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    assert_eq!(records.person(Role::Student, "S1").first_name, "Zoë");
}

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut bytes = if little_endian {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    bytes
}

#[test]
fn utf16_with_bom() {
    let text = "StudentID\tFirst\tLast\tSecurityValue\r\nS1\tJosé\tHernández\t01/02/2015\r\nS2\tA\tB\t\r\n";
    for little_endian in [true, false] {
        let bytes = utf16(text, little_endian);
        let (recorder, records) = folder_ok(&[("Student.txt", &bytes)], "");
        let jose = records.person(Role::Student, "S1");
        assert_eq!(
            (jose.first_name.as_str(), jose.last_name.as_str()),
            ("José", "Hernández")
        );
        assert_eq!(jose.birth_date.as_deref(), Some("2015-01-02"));
        assert!(recorder.at(Level::Warn).is_empty());
    }
}

#[test]
fn latin1_falls_back_with_one_warning() {
    let students = b"StudentID\tFirst\tLast\tSecurityValue\nS1\tJos\xE9\tHern\xE1ndez\t\nS2\tZo\xEB\tM\xFCller\t\n";
    let (recorder, records) = folder_ok(&[("Student.txt", students)], "");
    assert_eq!(records.person(Role::Student, "S1").first_name, "José");
    assert_eq!(records.person(Role::Student, "S2").last_name, "Müller");
    let warnings = recorder.at(Level::Warn);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].ends_with(
            "Student.txt:2: the file is not valid UTF-8; reading it as Windows-1252 (Latin-1)"
        ),
        "{warnings:?}"
    );
}

#[test]
fn cr_only_and_crlf_line_endings() {
    let cr = b"ClassID\tTeacherID\rC1\tT1\rC2\tT2\r";
    let (_, records) = folder_ok(&[("Class.txt", cr)], "");
    assert_eq!(records.classes().len(), 2);
    let crlf = b"ClassID\tTeacherID\r\nC1\tT1\r\nC2\tT2\r\n";
    let (_, records) = folder_ok(&[("Class.txt", crlf)], "");
    assert_eq!(records.classes().len(), 2);
    // Line numbers count physical lines whatever the ending, mixed ones too.
    let (location, _) = folder_err(
        &[(
            "Class.txt",
            b"ClassID\tTeacherID\rC1\tT1\r\nC2\tT2\nC3\tT9\r",
        )],
        "",
    );
    assert_eq!(location.as_deref(), Some("Class.txt:4:2"));
}

#[test]
fn quoted_field_with_embedded_newline() {
    let classes = b"ClassID\tTeacherID\tClassName\nC1\tT1\t\"Math\nLab\"\nC2\tT9\tScience\n";
    let (location, _) = folder_err(&[("Class.txt", classes)], "");
    assert_eq!(location.as_deref(), Some("Class.txt:4:2"));
    let classes =
        b"ClassID\tTeacherID\tClassName\nC1\tT1\t\"Math\nLab\"\nC2\tT2\t\"Science, \"\"Lab\"\"\"\n";
    let (_, records) = folder_ok(&[("Class.txt", classes)], "");
    assert_eq!(records.classes()[0].name, "Math\nLab");
    assert_eq!(records.classes()[1].name, "Science, \"Lab\"");
}

#[test]
fn semicolon_and_comma_delimiters() {
    let students =
        b"StudentID;First;Last;SecurityValue\nS1;Ada;Lovelace, Countess;\nS2;Alan;Turing;\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    assert_eq!(
        records.person(Role::Student, "S1").last_name,
        "Lovelace, Countess"
    );
    let students =
        b"StudentID,First,Last,SecurityValue\nS1,Ada,\"Lovelace; Countess\",\nS2,Alan,Turing,\n";
    let (_, records) = folder_ok(&[("Student.txt", students)], "");
    assert_eq!(
        records.person(Role::Student, "S1").last_name,
        "Lovelace; Countess"
    );
    // A forced delimiter is used even where sniffing would pick another.
    let teachers = b"TeacherID,First,Last,Email,Room\nT1,M,J,,1\nT2,K,J,,2\n";
    let classes = b"ClassID,TeacherID\nC1,T1\nC2,T2\n";
    let enrollment = b"StudentID,ClassID\nS1,C1\nS2,C2\n";
    let students = b"StudentID,First,Last,SecurityValue\nS1,Ada,Lovelace;x,\nS2,Alan,Turing,\n";
    let (_, records) = folder_ok(
        &[
            ("Student.txt", students),
            ("Teacher.txt", teachers),
            ("Class.txt", classes),
            ("Enrollment.txt", enrollment),
        ],
        "delimiter = \"comma\"\n",
    );
    assert_eq!(records.person(Role::Student, "S1").last_name, "Lovelace;x");
}

#[test]
fn large_file_streams_in_batches_of_5000() {
    let mut students = b"StudentID\tFirst\tLast\tSecurityValue\n".to_vec();
    let mut enrollment = b"StudentID\tClassID\n".to_vec();
    for i in 0..12_000 {
        students.extend_from_slice(format!("S{i}\tFirst{i}\tLast\t01/01/2014\n").as_bytes());
        enrollment.extend_from_slice(format!("S{i}\tC{}\n", 1 + i % 2).as_bytes());
    }
    let dir = folder(&[("Student.txt", &students), ("Enrollment.txt", &enrollment)]);
    let (recorder, host) = host();
    let config = config(&format!(
        "format = \"pickatime\"\npath = {:?}\n",
        dir.path().to_str().unwrap()
    ));
    let mut source =
        roster_plugin_csv::PickatimeSource::open(&config, std::path::Path::new("/"), host).unwrap();
    let sizes: Vec<usize> =
        std::iter::from_fn(|| source.next_batch().unwrap().map(|b| b.len())).collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        1 + 12_000 + 2 + 2 + 2 + 12_000 + 2
    );
    assert_eq!(sizes[0], 5_000);
    assert!(sizes.iter().all(|&s| s <= 5_000));
    assert!(recorder
        .progress
        .lock()
        .unwrap()
        .iter()
        .any(|(stage, _)| stage == "Student.txt"));
}

#[test]
fn cancellation_stops_between_batches() {
    let dir = folder(&[]);
    let (recorder, host) = host();
    let config = config(&format!(
        "format = \"pickatime\"\npath = {:?}\n",
        dir.path().to_str().unwrap()
    ));
    let mut source =
        roster_plugin_csv::PickatimeSource::open(&config, std::path::Path::new("/"), host).unwrap();
    recorder.cancelled.store(true, Ordering::SeqCst);
    let error = source.next_batch().unwrap_err();
    assert_eq!(error.kind, ErrorKind::Cancelled);
}

#[test]
fn plugin_open_checks_the_config() {
    let open = |config: &str| {
        let (_, host) = host();
        let ctx = OpenContext {
            checkpoint: None,
            base_dir: workspace(),
            host,
        };
        CsvPlugin::open(config, ctx).err().expect("an error")
    };
    // A pickAtime folder is not a Clever SFTP folder.
    let error = open("format = \"clever-sftp\"\npath = \"fixtures/pickatime\"\n");
    assert_eq!(error.kind, ErrorKind::Input);
    assert_eq!(error.message, "required file schools.csv not found");
    let error = open("format = \"pickatime\"\npth = \"x\"\n");
    assert!(
        error
            .message
            .starts_with("unknown key `pth` in source config"),
        "{}",
        error.message
    );
    let error = open("format = \"pickatime\"\npath = \"fixtures/nowhere\"\n");
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(
        error.message.starts_with("path: the folder"),
        "{}",
        error.message
    );
}

#[test]
fn plugin_streams_the_fixture() {
    let (_, host) = host();
    let ctx = OpenContext {
        checkpoint: None,
        base_dir: workspace(),
        host,
    };
    let mut source = CsvPlugin::open(
        "format = \"pickatime\"\npath = \"fixtures/pickatime\"\n",
        ctx,
    )
    .unwrap();
    let mut total = 0;
    while let Some(batch) = source.next_batch().unwrap() {
        total += batch.len();
    }
    // One enrollment and one relationship come twice (see fixtures.rs); the checkpoint
    // and the snapshot end the run.
    assert_eq!(total, 1 + 301 + 30 + 403 + 60 + 64 + 1558 + 489 + 2);
}

/// The built plugin file, loaded through the stable ABI the host uses.
#[test]
fn plugin_file_loads_and_reads_through_the_abi() {
    use roster_core::loader::{plugin_file_name, PluginFile, PluginHandle};
    // Tests run from target/<profile>/deps; cargo puts the cdylib one folder up.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(plugin_file_name("csv"));
    let plugin = PluginFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.info().name, "csv");
    let (recorder, _) = host();
    let mut source = plugin
        .open(
            "format = \"pickatime\"\npath = \"fixtures/pickatime-pairs\"\n",
            &workspace(),
            recorder,
        )
        .unwrap();
    let mut total = 0;
    while let Some(batch) = source.next_batch().unwrap() {
        total += batch.len();
    }
    assert_eq!(total, 1 + 4 + 2 + 3 + 4 + 6 + 2);
    let error = plugin
        .open(
            "format = \"pickatime\"\npath = \"fixtures/bad/pickatime/unknown-teacher\"\n",
            &workspace(),
            host().0,
        )
        .unwrap()
        .next_batch()
        .unwrap_err();
    assert_eq!(error.to_string(), "fixtures/bad/pickatime/unknown-teacher/Class.txt:4:2: unknown TeacherID `T999` (not in Teacher.txt)");
}
