//! The shipped fixtures: Maple Grove (the counts its README states), the pair layout,
//! and each malformed set failing where its expected.txt says.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use roster_core::record::{Entity, Identifier, Kind, Role};
use roster_core::sdk::{Level, RecordSource};
use roster_core::ErrorKind;
use roster_plugin_csv::PickatimeSource;

const MAPLE: &str = "school = \"Maple Grove Middle School\"\nterm = \"2026-27\"\n";

#[test]
fn maple_grove_counts() {
    let (_, records) = read_ok(&workspace(), "fixtures/pickatime", MAPLE);
    let students = records.people(Role::Student);
    assert_eq!(students.len(), 301);
    assert_eq!(students.iter().filter(|p| p.removed).count(), 1);
    assert_eq!(
        students.iter().filter(|p| p.birth_date.is_some()).count(),
        296
    );
    assert_eq!(records.people(Role::Teacher).len(), 30);
    assert_eq!(records.people(Role::Parent).len(), 403);
    assert_eq!(records.classes().len(), 60);
    let links = records.class_teachers();
    assert_eq!(links.len(), 64);
    assert_eq!(links.iter().filter(|l| !l.primary).count(), 4);
    assert_eq!(
        records
            .classes()
            .iter()
            .filter(|c| c.appointments_per_parent.is_some())
            .count(),
        36
    );
    // A pair listed twice is sent twice; the host writes it once (the e2e tests count
    // the rows). The README's counts are of distinct pairs.
    let enrollments: HashSet<(&str, &str)> = records
        .enrollments()
        .iter()
        .map(|e| (e.student_id.as_str(), e.class_id.as_str()))
        .collect();
    assert_eq!(enrollments.len(), 1557);
    assert_eq!(records.enrollments().len(), 1558);
    let relationships: HashSet<(&str, &str)> = records
        .relationships()
        .iter()
        .map(|r| (r.parent_id.as_str(), r.student_id.as_str()))
        .collect();
    assert_eq!(relationships.len(), 488);
    let mut per_parent: BTreeMap<&str, usize> = BTreeMap::new();
    for (parent, _) in relationships {
        *per_parent.entry(parent).or_default() += 1;
    }
    assert_eq!(per_parent.values().filter(|&&n| n > 1).count(), 72);
    assert_eq!(
        records.snapshot(),
        vec![
            Entity::Schools,
            Entity::Terms,
            Entity::Classes,
            Entity::Students,
            Entity::Teachers,
            Entity::Parents,
            Entity::Enrollments,
            Entity::ClassTeachers,
            Entity::Relationships,
        ]
    );
}

#[test]
fn maple_grove_records_come_in_dependency_order() {
    let (_, records) = read_ok(&workspace(), "fixtures/pickatime", MAPLE);
    // Parents come after the enrollments: nothing before them needs the Parent file.
    let rank = |kind: &Kind| match kind {
        Kind::School(_) => 0,
        Kind::Term(_) => 1,
        Kind::Person(p) if p.role != Role::Parent as i32 => 2,
        Kind::Class(_) => 3,
        Kind::ClassTeacher(_) => 4,
        Kind::Enrollment(_) => 5,
        Kind::Person(_) => 6,
        Kind::Relationship(_) => 7,
        Kind::Checkpoint(_) => 8,
        Kind::Snapshot(_) => 9,
        other => panic!("the file plugin sent {other:?}"),
    };
    let ranks: Vec<i32> = records.kinds().map(rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    let Some(Kind::School(school)) = records.0[0].kind.as_ref() else {
        panic!("school first")
    };
    assert_eq!(
        (school.source_id.as_str(), school.name.as_str()),
        ("school", "Maple Grove Middle School")
    );
    let Some(Kind::Term(term)) = records.0[1].kind.as_ref() else {
        panic!("term second")
    };
    assert_eq!(term.source_id, "2026-27");
    assert!(records
        .classes()
        .iter()
        .all(|c| c.term_id.as_deref() == Some("2026-27")));
    assert!(records
        .classes()
        .iter()
        .all(|c| c.school_id.as_deref() == Some("school")));
}

#[test]
fn maple_grove_quirks() {
    let (recorder, records) = read_ok(&workspace(), "fixtures/pickatime", MAPLE);
    let removed = records.person(Role::Student, "23999");
    assert!(removed.removed);
    assert!(records
        .enrollments()
        .iter()
        .all(|e| e.student_id != "23999"));

    let students = records.people(Role::Student);
    let named = |first: &str| students.iter().filter(|p| p.first_name == first).count();
    assert_eq!(named("José"), 1);
    assert_eq!(named("Zoë"), 1);
    assert_eq!(named("Robert \"Bobby\""), 1);
    assert_eq!(named("Liam  "), 0, "names are trimmed");
    assert!(students.iter().any(|p| p.last_name == "O'Brien"));

    let first = records.person(Role::Student, "24001");
    assert_eq!(first.security_value.as_deref(), Some("09/02/2014"));
    assert_eq!(first.birth_date.as_deref(), Some("2014-09-02"));
    assert_eq!(first.grade.as_deref(), Some("6"));
    assert_eq!(
        first.attributes.get("Homeroom").map(String::as_str),
        Some("6B")
    );
    assert_eq!(
        first.identifiers,
        vec![Identifier {
            kind: "StudentID".into(),
            value: "24001".into()
        }]
    );
    let pin = records.person(Role::Student, "24041");
    assert_eq!(pin.birth_date, None);
    assert!(pin.security_value.as_deref().is_some_and(|v| v.len() == 4));

    let kevin = records.person(Role::Teacher, "T010");
    assert_eq!(
        kevin.email.as_deref(),
        Some("Kevin.Park@MapleGrove.Example.org")
    );
    assert_eq!(
        records.person(Role::Teacher, "T014").room.as_deref(),
        Some("114")
    );
    assert_eq!(records.person(Role::Teacher, "T021").last_name, "Baptiste");
    let everything = format!("{:?}", records.0);
    assert!(!everything.contains("Welcome123") && !everything.contains("maple2026!"));
    let warnings = recorder.at(Level::Warn);
    assert_eq!(
        warnings,
        vec![
            "Teacher.txt: the Password column is ignored: roster never imports passwords"
                .to_string()
        ]
    );

    let honors = records
        .classes()
        .into_iter()
        .find(|c| c.source_id == "ENG7-P3")
        .unwrap();
    assert_eq!(honors.name, "English 7 \"Honors\" - P3");
    assert_eq!(honors.group_name.as_deref(), Some("Grade 7 Team"));
    let co_taught: Vec<_> = records
        .class_teachers()
        .into_iter()
        .filter(|l| l.class_id == "MATH6-P2")
        .collect();
    assert_eq!(co_taught.len(), 2);
    assert!(co_taught[0].primary && co_taught[0].teacher_id == "T002");
    assert!(!co_taught[1].primary && co_taught[1].teacher_id == "T029");

    // P30404 is P30010 entered a second time with the same email.
    let mother = records.person(Role::Parent, "P30010");
    assert_eq!(
        mother
            .identifiers
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>(),
        ["P30010", "P30404"]
    );
    assert!(records
        .people(Role::Parent)
        .iter()
        .all(|p| p.source_id != "P30404"));
    let mother_kids: HashSet<&str> = records
        .relationships()
        .iter()
        .filter(|r| r.parent_id == "P30010")
        .map(|r| r.student_id.as_str())
        .collect();
    assert_eq!(mother_kids, HashSet::from(["24176", "24274"]));
    assert!(records
        .relationships()
        .iter()
        .all(|r| r.contact_type.as_deref() == Some("parent")));
    assert_eq!(
        records.person(Role::Parent, "P30043").last_name,
        "Edwards-Walsh"
    );
    let infos = recorder.at(Level::Info);
    assert!(
        infos
            .iter()
            .any(|m| m.contains("ParentID `P30404` has the same Email as ParentID `P30010`")),
        "{infos:?}"
    );
    assert_eq!(
        infos
            .iter()
            .filter(|m| m.contains("ParentID `P30043` repeats"))
            .count(),
        2
    );
}

#[test]
fn maple_grove_streams_in_batches_with_progress() {
    let (recorder, host) = host();
    let config = config(&format!(
        "format = \"pickatime\"\npath = \"fixtures/pickatime\"\n{MAPLE}"
    ));
    let mut source = PickatimeSource::open(&config, &workspace(), host).unwrap();
    let mut total = 0;
    while let Some(batch) = source.next_batch().unwrap() {
        assert!(batch.len() <= 5_000);
        total += batch.len();
    }
    // One enrollment and one relationship (of a merged parent) come twice; the run ends
    // with its checkpoint and its snapshot.
    assert_eq!(total, 2 + 301 + 30 + 403 + 60 + 64 + 1558 + 489 + 2);
    let progress = recorder.progress.lock().unwrap();
    assert!(
        progress.contains(&("Student.txt".to_string(), 301)),
        "{progress:?}"
    );
    assert!(
        progress.contains(&("Enrollment.txt".to_string(), 300)),
        "{progress:?}"
    );
}

#[test]
fn pairs_layout_and_no_parent_files() {
    let (_, records) = read_ok(&workspace(), "fixtures/pickatime-pairs", "");
    let pairs: Vec<(&str, &str)> = records
        .enrollments()
        .iter()
        .map(|e| (e.student_id.as_str(), e.class_id.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("S1", "C1"),
            ("S1", "C2"),
            ("S2", "C1"),
            ("S3", "C3"),
            // Listed twice in the file, sent twice: the host writes it once.
            ("S2", "C1"),
            ("S4", "C2")
        ]
    );
    let c3 = records
        .classes()
        .into_iter()
        .find(|c| c.source_id == "C3")
        .unwrap();
    assert_eq!(
        c3.name, "C3",
        "a class without ClassName is named by its ClassID"
    );
    assert_eq!(c3.term_id, None);
    assert_eq!(
        records.person(Role::Student, "S2").birth_date.as_deref(),
        Some("2014-06-23")
    );
    assert_eq!(
        records.person(Role::Student, "S4").birth_date.as_deref(),
        Some("2013-05-11")
    );
    assert_eq!(records.person(Role::Student, "S3").birth_date, None);
    assert!(records.kinds().all(|k| !matches!(k, Kind::Term(_))));
    let Some(Kind::School(school)) = records.0[0].kind.as_ref() else {
        panic!("school first")
    };
    assert_eq!(school.name, "School");
    assert_eq!(
        records.snapshot(),
        vec![
            Entity::Schools,
            Entity::Terms,
            Entity::Classes,
            Entity::Students,
            Entity::Teachers,
            Entity::Enrollments,
            Entity::ClassTeachers,
        ]
    );
}

#[test]
fn bad_fixtures_fail_where_expected() {
    let bad = workspace().join("fixtures/bad/pickatime");
    let mut cases = 0;
    for entry in std::fs::read_dir(&bad).unwrap() {
        let case = entry.unwrap().file_name().into_string().unwrap();
        let expected = std::fs::read_to_string(bad.join(&case).join("expected.txt")).unwrap();
        if expected.starts_with("ok") {
            // Cases of the corpus that must import: checked in corpus.rs.
            continue;
        }
        let path = format!("fixtures/bad/pickatime/{case}");
        let error = read_err(&workspace(), &path, "");
        assert_eq!(error.kind, ErrorKind::Input, "{case}");
        assert_eq!(
            error.location,
            Some(format!("{path}/{}", expected.trim())),
            "{case}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("{path}/{}: ", expected.trim())),
            "{error}"
        );
        cases += 1;
    }
    assert!(cases >= 4, "{cases} failing cases");
}

#[test]
fn bad_fixture_messages() {
    let message =
        |case: &str| read_err(&workspace(), &format!("fixtures/bad/pickatime/{case}"), "").message;
    assert_eq!(
        message("missing-column"),
        "missing column `SecurityValue` (found: StudentID, First, Last)"
    );
    assert_eq!(
        message("unknown-teacher"),
        "unknown TeacherID `T999` (not in Teacher.txt)"
    );
    assert_eq!(
        message("bad-ptan"),
        "PTAN must be a whole number of appointments, found `two`"
    );
    assert_eq!(
        message("short-row"),
        "the row has 3 fields but the header has 4"
    );
}
