//! The Clever SFTP reader: the shipped fixture record by record, and the rules on small
//! generated folders (errors with their locations, optional files, two-digit years).

mod common;

use common::*;
use roster_core::record::{Entity, Kind, Record, Role};
use roster_core::sdk::{Level, OpenContext, Plugin};
use roster_core::ErrorKind;
use roster_plugin_csv::clever_sftp::contacts::fnv1a;
use roster_plugin_csv::CsvPlugin;

/// fixtures/clever-sftp, every record in order. Each line is derived from rows of the
/// fixture files; see fixtures/clever-sftp/README.md for what each row exercises.
const EXPECTED: &str = "
    school SCH-100 | Cedar Park Elementary | sis SCH-100 | number 100 | state CA-0100 {High_grade=5, Low_grade=Kindergarten, Principal=Dana Whitfield, Principal_email=dwhitfield@cedar.example.org, School_address=12 Elm St, Suite 4, School_city=Springfield, School_phone=555-300-1000, School_state=CA, School_zip=90210}
    school SCH-200 | Lakeview Middle School | sis SCH-200 | number 200 | state CA-0200 {High_grade=8, Low_grade=6, Principal=Omar Reyes, Principal_email=oreyes@cedar.example.org, School_address=400 Lake Rd, School_city=Springfield, School_phone=555-300-2000, School_state=CA, School_zip=90211}
    student student:S001 | Ana | Lopez | middle - | email - | phone - | born 2017-03-14 | grade 3 | schools [SCH-100] | ids [sis_id=S001, student_number=1001, state_id=CA9000001] {Gender=F, Home_language=Spanish, Username=alopez}
    student student:S002 | Carlos | Lopez | middle Luis | email clopez@students.example.org | phone - | born 2013-11-02 | grade 7 | schools [SCH-200] | ids [sis_id=S002, student_number=1002, state_id=CA9000002] {Gender=Male, Home_language=Spanish, Username=clopez}
    student student:S003 | Bao | Nguyen | middle - | email - | phone - | born 2020-09-30 | grade K | schools [SCH-100] | ids [sis_id=S003, student_number=1003, state_id=CA9000003] {Gender=m, Home_language=Vietnamese, Username=bnguyen}
    student student:S004 | Siobhán | O'Brien | middle - | email sobrien@students.example.org | phone - | born 2012-01-05 | grade 8 | schools [SCH-200] | ids [sis_id=S004, student_number=1004, state_id=CA9000004] {Gender=Non-binary, Home_language=English, Username=sobrien}
    student student:S005 | Chidi | Okafor | middle - | email - | phone - | born 2014-06-18 | grade 6 | schools [SCH-200] | ids [sis_id=S005, student_number=1005, state_id=CA9000005] {Gender=X, Home_language=English, Username=cokafor}
    student student:S006 | Amara | Okafor | middle - | email - | phone - | born 2018-07-22 | grade 2 | schools [SCH-100] | ids [sis_id=S006, student_number=1006, state_id=CA9000006] {Gender=Female, Home_language=English, Username=aokafor}
    student student:S007 | Daniel | Kim | middle - | email - | phone - | born 2013-04-04 | grade 7 | schools [SCH-200] | ids [sis_id=S007, student_number=1007, state_id=CA-T-77] {Gender=M, Home_language=Korean, Username=dkim}
    student student:S008 | Joy | Kim | middle - | email - | phone - | born 2016-02-29 | grade 4 | schools [SCH-100] | ids [sis_id=S008, student_number=1008, state_id=CA9000008] {Gender=F, Home_language=Korean, Username=jkim}
    teacher teacher:T01 | José | García | middle - | email jgarcia@cedar.example.org | phone - | born - | grade - | schools [SCH-100] | ids [sis_id=T01, teacher_number=501, state_id=CA-T-01] {Title=Teacher, Username=jgarcia}
    teacher teacher:T02 | Helen | Baker | middle - | email hbaker@cedar.example.org | phone - | born - | grade - | schools [SCH-100, SCH-200] | ids [sis_id=T02, teacher_number=502, state_id=CA-T-02] {Title=Teacher, Username=hbaker}
    teacher teacher:T03 | Priya | Singh | middle - | email psingh@cedar.example.org | phone - | born - | grade - | schools [SCH-200] | ids [sis_id=T03, teacher_number=503] {Title=Teacher, Username=psingh}
    teacher teacher:T04 | Jonas | Müller | middle - | email jmuller@cedar.example.org | phone - | born - | grade - | schools [SCH-200] | ids [sis_id=T04, teacher_number=504, state_id=CA-T-04] {Title=Coach, Username=jmuller}
    teacher teacher:T05 | Ed | Brown | middle - | email ebrown@cedar.example.org | phone - | born - | grade - | schools [SCH-100, SCH-200] | ids [sis_id=T05, teacher_number=505, state_id=CA-T-05] {Title=Teacher, Username=ebrown}
    staff staff:ST-9 | Lena | Grant | middle - | email lgrant@cedar.example.org | phone - | born - | grade - | schools [SCH-100] | ids [sis_id=ST-9] {Department=Office, Role=School Tech Lead, Title=Office Manager, Username=lgrant}
    staff staff:ST-10 | Dev | Admin | middle - | email dadmin@cedar.example.org | phone - | born - | grade - | schools [] | ids [sis_id=ST-10] {Department=District Office, Role=District Admin, Title=Superintendent, Username=dadmin}
    parent contact:5f657b31d12b3282 | Maria | Lopez | middle - | email Maria.Lopez@example.com | phone (555) 201-3344 | born - | grade - | schools [SCH-100, SCH-200] | ids [] {Contact_name=Maria Lopez, Contact_phone_type=Cell}
    parent contact:f12acdd965fdb44c | Jose | Lopez | middle - | email - | phone 555-201-9999 ext. 12 | born - | grade - | schools [SCH-100, SCH-200] | ids [] {Contact_name=Jose Lopez, Contact_phone_type=Work}
    parent contact:6dbe440f9b0cc1e6 | Thi | Nguyen | middle - | email - | phone 1-555-777-1234 | born - | grade - | schools [SCH-100] | ids [sis_id=G-5001] {Contact_name=Thi Nguyen, Contact_phone_type=Home}
    parent contact:6dbe430f9b0cc033 | Ngozi | Okafor | middle - | email ngozi@example.com | phone 555-888-0000 | born - | grade - | schools [SCH-200, SCH-100] | ids [sis_id=G-5002] {Contact_name=Ngozi Okafor, Contact_phone_type=Cell}
    parent contact:4aff87aee91237eb | Pat | Kim | middle - | email - | phone - | born - | grade - | schools [SCH-200] | ids [] {Contact_name=Pat Kim}
    parent contact:4aff84aee91232d2 | Pat | Kim | middle - | email - | phone - | born - | grade - | schools [SCH-100] | ids [] {Contact_name=Pat Kim}
    term 2026-27 School Year|2026-08-17|2027-06-11 | 2026-27 School Year | 2026-08-17 .. 2027-06-11 | school -
    term Fall 2026|2026-08-17|2026-12-18 | Fall 2026 | 2026-08-17 .. 2026-12-18 | school -
    term Spring 2027|2027-01-05|2027-05-28 | Spring 2027 | 2027-01-05 .. 2027-05-28 | school -
    class SEC-1 | Grade 3 Homeroom | school SCH-100 | term 2026-27 School Year|2026-08-17|2027-06-11 | subject Homeroom | course Homeroom 3 | period HR | sis SEC-1 {Course_number=HR3, Grade=3, Section_number=1}
    class SEC-2 | Reading 3 - Period 2 | school SCH-100 | term Fall 2026|2026-08-17|2026-12-18 | subject Language Arts | course Reading 3 | period 2 | sis SEC-2 {Course_description=Reading, writing and spelling, Course_number=RD3, Grade=3, Section_number=2}
    class SEC-3 | Math 7 - Singh - 3 | school SCH-200 | term Fall 2026|2026-08-17|2026-12-18 | subject Math | course Math 7 | period 3 | sis SEC-3 {Course_number=M7, Grade=7, Section_number=3}
    class SEC-4 | PE 8 | school SCH-200 | term Spring 2027|2027-01-05|2027-05-28 | subject PE | course Physical Education | period 4 | sis SEC-4 {Course_number=PE8, Grade=8, Section_number=4}
    class SEC-5 | SEC-5 | school SCH-100 | term - | subject - | course - | period - | sis SEC-5 {Grade=K}
    class SEC-6 | Science 7 | school SCH-200 | term Fall 2026|2026-08-17|2026-12-18 | subject Science | course Science 7 | period 5 | sis SEC-6 {Course_number=SC7, Grade=7, Section_number=6}
    teacher teacher:T01 of SEC-1 (primary)
    teacher teacher:T02 of SEC-2 (primary)
    teacher teacher:T01 of SEC-2
    teacher teacher:T03 of SEC-3 (primary)
    teacher teacher:T02 of SEC-3
    teacher teacher:T04 of SEC-4 (primary)
    teacher staff:ST-9 of SEC-4
    teacher teacher:T05 of SEC-5 (primary)
    teacher teacher:T02 of SEC-6 (primary)
    enrollment student:S001 in SEC-1
    enrollment student:S006 in SEC-1
    enrollment student:S001 in SEC-2
    enrollment student:S008 in SEC-2
    enrollment student:S003 in SEC-5
    enrollment student:S002 in SEC-3
    enrollment student:S007 in SEC-3
    enrollment student:S004 in SEC-4
    enrollment student:S005 in SEC-4
    enrollment student:S002 in SEC-6
    enrollment student:S004 in SEC-6
    enrollment student:S005 in SEC-3
    relationship contact:5f657b31d12b3282 -> student:S001 | Mother | Primary
    relationship contact:5f657b31d12b3282 -> student:S002 | Mother | parent/guardian
    relationship contact:f12acdd965fdb44c -> student:S001 | Father | Secondary
    relationship contact:f12acdd965fdb44c -> student:S002 | Father | Secondary
    relationship contact:6dbe440f9b0cc1e6 -> student:S003 | Grandparent | Emergency
    relationship contact:6dbe430f9b0cc033 -> student:S005 | Parent | Primary
    relationship contact:6dbe430f9b0cc033 -> student:S006 | Parent | Primary
    relationship contact:4aff87aee91237eb -> student:S007 | Guardian | Primary
    relationship contact:4aff84aee91232d2 -> student:S008 | Guardian | Primary
    snapshot [Schools, Terms, Classes, Students, Teachers, Parents, Staff, Enrollments, ClassTeachers, Relationships]
";

#[test]
fn fixture_record_by_record() {
    let (recorder, records) = read_sftp(&workspace(), "fixtures/clever-sftp");
    let records = records.unwrap_or_else(|e| panic!("{e}"));
    assert_lines(&records, EXPECTED);
    assert_eq!(
        recorder.at(Level::Warn),
        [
            "fixtures/clever-sftp/students.csv: 1 row repeats a Student_id with other details; the first row's are kept (first at fixtures/clever-sftp/students.csv:7:2)",
            "fixtures/clever-sftp/students.csv: 1 row has contact details but no Contact_name; left out (first at fixtures/clever-sftp/students.csv:11:16)",
            "fixtures/clever-sftp/teachers.csv:2: the file is not valid UTF-8; reading it as Windows-1252 (Latin-1)",
            "teachers.csv: the Password column is ignored: roster never imports passwords",
            "fixtures/clever-sftp/teachers.csv: 1 row repeats a Teacher_id with other details; the first row's are kept (first at fixtures/clever-sftp/teachers.csv:8:2)",
            "1 identifier was left out because another person already has it: state_id `CA-T-77` of `teacher:T03` (already `student:S007`'s)",
        ]
    );
    assert_eq!(
        recorder.at(Level::Info),
        ["staff.csv: 1 of its people are also in teachers.csv and are sent once, as teachers"]
    );
}

#[test]
fn contact_ids_come_from_their_best_key() {
    let (_, records) = read_sftp(&workspace(), "fixtures/clever-sftp");
    let records = Records(records.unwrap());
    let parents = records.people(Role::Parent);
    let id = |key: &str| format!("contact:{:016x}", fnv1a(key));
    let ids: Vec<&str> = parents.iter().map(|p| p.source_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            id("email:maria.lopez@example.com|maria lopez").as_str(),
            id("phone:5552019999|jose lopez").as_str(),
            id("sis:G-5001").as_str(),
            id("sis:G-5002").as_str(),
            id("name:pat kim|student:S007").as_str(),
            id("name:pat kim|student:S008").as_str(),
        ]
    );
}

/// The counts fixtures/clever-sftp/README.md states.
#[test]
fn readme_counts() {
    let (_, records) = read_sftp(&workspace(), "fixtures/clever-sftp");
    let records = Records(records.unwrap());
    let count = |f: fn(&Kind) -> bool| records.kinds().filter(|k| f(k)).count();
    assert_eq!(count(|k| matches!(k, Kind::School(_))), 2);
    assert_eq!(count(|k| matches!(k, Kind::Term(_))), 3);
    assert_eq!(records.people(Role::Student).len(), 8);
    assert_eq!(records.people(Role::Teacher).len(), 5);
    assert_eq!(records.people(Role::Staff).len(), 2);
    assert_eq!(records.people(Role::Parent).len(), 6);
    assert_eq!(records.classes().len(), 6);
    assert_eq!(records.class_teachers().len(), 9);
    assert_eq!(
        records
            .class_teachers()
            .iter()
            .filter(|l| l.primary)
            .count(),
        6
    );
    assert_eq!(records.enrollments().len(), 12);
    assert_eq!(records.relationships().len(), 9);
    assert_eq!(
        records.snapshot(),
        [
            Entity::Schools,
            Entity::Terms,
            Entity::Classes,
            Entity::Students,
            Entity::Teachers,
            Entity::Parents,
            Entity::Staff,
            Entity::Enrollments,
            Entity::ClassTeachers,
            Entity::Relationships,
        ]
    );
}

const SCHOOLS: &[u8] = b"School_id,School_name\nX1,Example School\n";
const STUDENTS: &[u8] = b"School_id,Student_id,First_name,Last_name,Dob,Contact_name,Contact_email\nX1,S1,Ada,Lovelace,12/10/15,Anne Lovelace,anne@example.com\nX1,S2,Alan,Turing,6/23/14,,\n";
const TEACHERS: &[u8] =
    b"School_id,Teacher_id,First_name,Last_name\nX1,T1,Mary,Jackson\nX1,T2,Katherine,Johnson\n";
const SECTIONS: &[u8] = b"School_id,Section_id,Teacher_id,Teacher_2_id,Name\nX1,C1,T1,T2,Math\n";
const ENROLLMENTS: &[u8] = b"School_id,Section_id,Student_id\nX1,C1,S1\nX1,C1,S2\n";

/// A minimal valid Clever SFTP folder with `changes` (an empty content removes a file).
fn sftp(changes: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("schools.csv", SCHOOLS),
        ("students.csv", STUDENTS),
        ("teachers.csv", TEACHERS),
        ("sections.csv", SECTIONS),
        ("enrollments.csv", ENROLLMENTS),
    ];
    for (name, content) in changes {
        files.retain(|(n, _)| n != name);
        files.push((name, content));
    }
    for (name, content) in files {
        if !content.is_empty() {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
    }
    dir
}

fn read_tmp(dir: &tempfile::TempDir) -> Result<Vec<Record>, roster_core::PluginError> {
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    read_sftp(base, name).1
}

fn sftp_ok(changes: &[(&str, &[u8])]) -> Records {
    Records(read_tmp(&sftp(changes)).unwrap_or_else(|e| panic!("{e}")))
}

/// The error's location without the temporary folder, and its message.
fn sftp_err(changes: &[(&str, &[u8])]) -> (String, String) {
    let dir = sftp(changes);
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let error = read_tmp(&dir).expect_err("expected an error");
    let location = error.location.unwrap_or_default();
    let location = location
        .strip_prefix(&format!("{name}/"))
        .unwrap_or(&location)
        .to_string();
    (location, error.message)
}

#[test]
fn minimal_folder() {
    let records = sftp_ok(&[]);
    let ada = records.person(Role::Student, "student:S1");
    assert_eq!(ada.birth_date.as_deref(), Some("2015-12-10"));
    assert_eq!(records.people(Role::Parent).len(), 1);
    let links: Vec<(&str, bool)> = records
        .class_teachers()
        .iter()
        .map(|l| (l.teacher_id.as_str(), l.primary))
        .collect();
    assert_eq!(links, [("teacher:T1", true), ("teacher:T2", false)]);
    // No staff.csv: staff are not vouched for; contact columns: parents are.
    assert!(!records.snapshot().contains(&Entity::Staff));
    assert!(records.snapshot().contains(&Entity::Parents));
}

#[test]
fn without_contact_columns_parents_are_not_vouched_for() {
    let students =
        b"School_id,Student_id,First_name,Last_name\r\nX1,S1,Ada,Lovelace\r\nX1,S2,Alan,Turing\r\n";
    let records = sftp_ok(&[("students.csv", students)]);
    assert!(records.people(Role::Parent).is_empty());
    let snapshot = records.snapshot();
    assert!(!snapshot.contains(&Entity::Parents));
    assert!(!snapshot.contains(&Entity::Relationships));
}

#[test]
fn missing_required_file() {
    let (location, message) = sftp_err(&[("sections.csv", b"")]);
    assert_eq!(location, "sections.csv");
    assert_eq!(message, "required file sections.csv not found");
}

#[test]
fn references_are_checked_where_they_are() {
    let students =
        b"School_id,Student_id,First_name,Last_name\nX1,S1,Ada,Lovelace\nX9,S2,Alan,Turing\n";
    assert_eq!(
        sftp_err(&[("students.csv", students)]),
        (
            "students.csv:3:1".into(),
            "unknown School_id `X9` (not in schools.csv)".into()
        )
    );
    let sections = b"School_id,Section_id,Teacher_id,Teacher_2_id,Name\nX1,C1,T1,T7,Math\n";
    assert_eq!(
        sftp_err(&[("sections.csv", sections)]),
        (
            "sections.csv:2:4".into(),
            "unknown Teacher_2_id `T7` (not in teachers.csv)".into()
        )
    );
    let sections = b"School_id,Section_id,Teacher_id\nX1,C1,T1\nX1,C1,T2\n";
    assert_eq!(
        sftp_err(&[("sections.csv", sections)]),
        (
            "sections.csv:3:2".into(),
            "duplicate Section_id `C1` (also on line 2)".into()
        )
    );
    let enrollments = b"School_id,Section_id,Student_id\rX1,C1,S1\rX1,C2,S1\r";
    assert_eq!(
        sftp_err(&[("enrollments.csv", enrollments)]),
        (
            "enrollments.csv:3:2".into(),
            "unknown Section_id `C2` (not in sections.csv)".into()
        )
    );
    let enrollments = b"School_id,Section_id,Student_id\nX1,C1,S3\n";
    assert_eq!(
        sftp_err(&[("enrollments.csv", enrollments)]),
        (
            "enrollments.csv:2:3".into(),
            "unknown Student_id `S3` (not in students.csv)".into()
        )
    );
    let students = b"School_id,Student_id,First_name\nX1,S1,Ada\n";
    let (location, message) = sftp_err(&[("students.csv", students)]);
    assert_eq!(location, "students.csv:1");
    assert!(
        message.starts_with("missing column `Last_name`"),
        "{message}"
    );
}

#[test]
fn a_teacher_may_share_an_id_with_a_student() {
    // Districts number students and staff in separate tables: `S2` is both here.
    let teachers =
        b"School_id,Teacher_id,First_name,Last_name\nX1,T1,Mary,Jackson\nX1,S2,Katherine,Johnson\n";
    let sections = b"School_id,Section_id,Teacher_id,Teacher_2_id,Name\nX1,C1,T1,S2,Math\n";
    let dir = sftp(&[("teachers.csv", teachers), ("sections.csv", sections)]);
    let base = dir.path().parent().unwrap();
    let (recorder, records) = read_sftp(base, dir.path().file_name().unwrap().to_str().unwrap());
    let records = Records(records.unwrap());
    let student = records.person(Role::Student, "student:S2");
    let teacher = records.person(Role::Teacher, "teacher:S2");
    assert_eq!(student.identifiers[0].value, "S2");
    // The identifier stays with the student; the teacher is sent without it.
    assert!(teacher.identifiers.is_empty());
    assert_eq!(records.class_teachers()[1].teacher_id, "teacher:S2");
    assert_eq!(
        recorder.at(Level::Warn),
        ["1 identifier was left out because another person already has it: sis_id `S2` of `teacher:S2` (already `student:S2`'s)"]
    );
}

#[test]
fn two_digit_years_follow_the_year_of_the_run() {
    let dir = sftp(&[]);
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let config = config(&format!("format = \"clever-sftp\"\npath = {name:?}\n"));
    let (_, host) = host();
    let records: Vec<Record> = roster_plugin_csv::CleverSftpSource::open(&config, base, host)
        .unwrap()
        .with_current_year(2014)
        .collect::<Result<_, _>>()
        .unwrap();
    let records = Records(records);
    // In 2014, a child born in "15" was born in 1915; "14" is this year.
    assert_eq!(
        records
            .person(Role::Student, "student:S1")
            .birth_date
            .as_deref(),
        Some("1915-12-10")
    );
    assert_eq!(
        records
            .person(Role::Student, "student:S2")
            .birth_date
            .as_deref(),
        Some("2014-06-23")
    );
}

#[test]
fn through_the_plugin_entry_point() {
    let dir = sftp(&[]);
    let (recorder, host) = host();
    let config = format!("format = \"clever-sftp\"\npath = {:?}\n", dir.path());
    let mut source = CsvPlugin::open(
        &config,
        OpenContext {
            checkpoint: None,
            base_dir: dir.path().to_path_buf(),
            host,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let batch = source.next_batch().unwrap().unwrap();
    assert_eq!(batch.len(), 13);
    assert!(source.next_batch().unwrap().is_none());

    let mut source = CsvPlugin::open(
        &config,
        OpenContext {
            checkpoint: None,
            base_dir: dir.path().to_path_buf(),
            host: roster_core::sdk::Host::new(recorder.clone()),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    recorder
        .cancelled
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(source.next_batch().unwrap_err().kind, ErrorKind::Cancelled);

    let error = match CsvPlugin::open(
        "format = \"clever-sftp\"\npath = \"x\"\nterm = \"Fall\"\n",
        OpenContext {
            checkpoint: None,
            base_dir: dir.path().to_path_buf(),
            host: roster_core::sdk::Host::new(recorder.clone()),
        },
    ) {
        Err(error) => error,
        Ok(_) => panic!("a pickatime key must be refused"),
    };
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error
        .message
        .starts_with("term: only for format = \"pickatime\""));
}
