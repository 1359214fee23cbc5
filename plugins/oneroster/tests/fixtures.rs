//! The shipped OneRoster fixtures, record by record: every line below is derived from a
//! row of the fixture files (see fixtures/oneroster/README.md for the counts and quirks).

mod common;

use common::*;
use roster_core::record::{Kind, Record};

/// fixtures/oneroster/v1.1: every rostering file bulk. orgs: a district (skipped) and two
/// schools; all four session types become terms; users with BOM + CRLF, `{type:id}`
/// userIds, agents listed from both sides; demographics birth dates; enrollments with a
/// co-teacher, an aide as teacher, an uppercase `TRUE`, an administrator (skipped) and a
/// duplicate row.
const V11: &str = "
    school s-elm | Elm Street Elementary | sis s-elm | number ELM-101 | state - {metadata.nces=061234500001, parentSourcedId=d1}
    school s-oak | Oak Ridge Middle School | sis s-oak | number OAK-201 | state - {metadata.nces=061234500002, parentSourcedId=d1}
    term y2026 | 2026-2027 | 2026-08-17 .. 2027-06-11 | school - {schoolYear=2027, type=schoolYear}
    term fall26 | Fall 2026 | 2026-08-17 .. 2027-01-15 | school - {parentSourcedId=y2026, schoolYear=2027, type=semester}
    term spr27 | Spring 2027 | 2027-01-19 .. 2027-06-11 | school - {parentSourcedId=y2026, schoolYear=2027, type=semester}
    term t1-26 | Trimester 1 | 2026-08-17 .. 2026-11-20 | school - {parentSourcedId=y2026, schoolYear=2027, type=term}
    term gp1 | Q1 Grading Period | 2026-08-17 .. 2026-10-16 | school - {parentSourcedId=fall26, schoolYear=2027, type=gradingPeriod}
    teacher t-1 | Grace | Hopper | middle Brewster | email ghopper@riverside.example.org | phone 555-0101 | born 1966-12-09 | grade - | security - | room - | schools [s-oak] | ids [sourcedId=t-1, identifier=T1001, LDAP=ghopper, SIS=T1001] {role=teacher, username=ghopper}
    teacher t-2 | Alan | Kay | middle - | email akay@riverside.example.org | phone - | born - | grade - | security - | room - | schools [s-oak] | ids [sourcedId=t-2, identifier=T1002, SIS=T1002] {role=teacher, username=akay}
    teacher t-3 | Maria | Montessori | middle - | email mmontessori@riverside.example.org | phone - | born - | grade - | security - | room - | schools [s-elm, s-oak] | ids [sourcedId=t-3, identifier=T1003] {role=teacher, username=mmontessori}
    staff t-4 | Lev | Vygotsky | middle - | email lvygotsky@riverside.example.org | phone - | born - | grade - | security - | room - | schools [s-elm] | ids [sourcedId=t-4, identifier=A2001] {role=aide, username=lvygotsky}
    staff a-1 | Ada | Principal | middle - | email aprincipal@riverside.example.org | phone - | born - | grade - | security - | room - | schools [s-oak] | ids [sourcedId=a-1, identifier=ADM01] {role=administrator, username=aprincipal}
    student st-1 | Ava | Nguyen | middle - | email - | phone - | born 2014-05-02 | grade 06 | security - | room - | schools [s-oak] | ids [sourcedId=st-1, identifier=100201, SIS=100201] {metadata.lunchCode=L-4411, role=student, username=anguyen}
    student st-2 | Ben | Nguyen | middle - | email - | phone - | born 2014-09-30 | grade 06 | security - | room - | schools [s-oak] | ids [sourcedId=st-2, identifier=100202, SIS=100202] {metadata.lunchCode=L-4412, role=student, username=bnguyen}
    student st-3 | Chloe | Okafor | middle - | email - | phone - | born 2017-01-12 | grade 03 | security - | room - | schools [s-elm] | ids [sourcedId=st-3, identifier=100203, SIS=100203] {role=student, username=cokafor}
    student st-4 | Dev | Patel | middle - | email - | phone - | born 2020-06-21 | grade KG | security - | room - | schools [s-elm] | ids [sourcedId=st-4, identifier=100204, SIS=100204] {role=student, username=dpatel}
    student st-5 | Émile | Durand | middle - | email - | phone - | born 2014-02-28 | grade 06 | security - | room - | schools [s-oak] | ids [sourcedId=st-5, identifier=100205, SIS=100205] {metadata.lunchCode=L-4415, role=student, username=edurand}
    student st-6 | Farah | Haddad | middle - | email - | phone - | born - | grade 03 | security - | room - | schools [s-elm] | ids [sourcedId=st-6, identifier=100206, SIS=100206] {role=student, username=fhaddad}
    parent p-1 | Linh | Nguyen | middle - | email linh.nguyen@example.com | phone 555-0201 | born - | grade - | security - | room - | schools [s-oak] | ids [sourcedId=p-1] {role=parent, sms=555-0201, username=lnguyen}
    parent p-2 | Minh | Nguyen | middle - | email minh.nguyen@example.com | phone 555-0202 | born - | grade - | security - | room - | schools [s-oak] | ids [sourcedId=p-2] {enabledUser=false, role=parent, username=mnguyen}
    parent p-3 | Ngozi | Okafor | middle - | email ngozi.okafor@example.com | phone - | born - | grade - | security - | room - | schools [s-elm] | ids [sourcedId=p-3] {role=parent, username=nokafor}
    parent g-1 | Ravi | Patel | middle - | email ravi.patel@example.com | phone - | born - | grade - | security - | room - | schools [s-elm] | ids [sourcedId=g-1] {role=guardian, username=rpatel}
    parent r-1 | Sofia | Durand | middle - | email sofia.durand@example.com | phone - | born - | grade - | security - | room - | schools [s-oak] | ids [sourcedId=r-1] {role=relative, username=sdurand}
    class cls-math6-1 | Math 6 - Period 1 | school s-oak | term fall26 | subject Mathematics | course Math 6 | period 1 | sis cls-math6-1 | group - | ptan - {classCode=MATH6-1, classType=scheduled, courseCode=MATH6, courseSourcedId=crs-math6, grades=06, location=Room 201, metadata.room=201, termSourcedIds=fall26,spr27}
    class cls-sci6-2 | Science 6 - Period 2 | school s-oak | term fall26 | subject Science | course Science 6 | period 2 | sis cls-sci6-2 | group - | ptan - {classCode=SCI6-2, classType=scheduled, courseCode=SCI6, courseSourcedId=crs-sci6, grades=06, location=Lab B, metadata.room=Lab B}
    class cls-read3 | Reading 3 | school s-elm | term t1-26 | subject Reading | course Reading 3 | period 3,4 | sis cls-read3 | group - | ptan - {classCode=READ3-A, classType=scheduled, courseCode=READ3, courseSourcedId=crs-read3, grades=03}
    class cls-hr-elm | Homeroom K-3 | school s-elm | term y2026 | subject - | course Homeroom | period - | sis cls-hr-elm | group - | ptan - {classCode=HR-ELM, classType=homeroom, courseCode=HR, courseSourcedId=crs-hr, grades=KG,01,02,03, location=Room 4, metadata.room=4}
    class cls-gp | Math 6 Intervention | school s-oak | term gp1 | subject Mathematics | course Math 6 | period 7 | sis cls-gp | group - | ptan - {classCode=MATH6-INT, classType=scheduled, courseCode=MATH6, courseSourcedId=crs-math6, grades=06}
    teacher t-1 of cls-math6-1 (primary)
    teacher t-2 of cls-math6-1
    enrollment st-1 in cls-math6-1
    enrollment st-2 in cls-math6-1
    enrollment st-5 in cls-math6-1
    teacher t-2 of cls-sci6-2 (primary)
    enrollment st-1 in cls-sci6-2
    enrollment st-5 in cls-sci6-2
    teacher t-3 of cls-read3 (primary)
    teacher t-4 of cls-read3
    enrollment st-3 in cls-read3
    enrollment st-6 in cls-read3
    teacher t-3 of cls-hr-elm (primary)
    enrollment st-3 in cls-hr-elm
    enrollment st-4 in cls-hr-elm
    enrollment st-6 in cls-hr-elm
    teacher t-1 of cls-gp
    enrollment st-2 in cls-gp
    relationship p-1 -> st-1 | - | parent
    relationship p-1 -> st-2 | - | parent
    relationship p-2 -> st-2 | - | parent
    relationship g-1 -> st-4 | - | guardian
    relationship p-3 -> st-6 | - | parent
    relationship p-3 -> st-3 | - | parent
    relationship r-1 -> st-5 | - | relative
    snapshot [Schools, Terms, Classes, Students, Teachers, Parents, Staff, Enrollments, ClassTeachers, Relationships]
";

/// fixtures/oneroster/v1.2: orgs/sessions/courses/classes bulk; users, roles,
/// demographics and enrollments delta (CR-only line endings in enrollments). Roles come
/// from roles.csv (primary first); `tobedeleted` users are sent removed; a user without
/// a role and an enrollment of a user outside the package are skipped with warnings.
const V12: &str = "
    school s-lake | Lakeside High School | sis s-lake | number LHS-9 | state - {parentSourcedId=d9}
    term sy27 | 2026-27 | 2026-08-24 .. 2027-06-04 | school - {schoolYear=2027, type=schoolYear}
    term s1-27 | Semester 1 | 2026-08-24 .. 2027-01-22 | school - {parentSourcedId=sy27, schoolYear=2027, type=semester}
    term s2-27 | Semester 2 | 2027-01-25 .. 2027-06-04 | school - {parentSourcedId=sy27, schoolYear=2027, type=semester}
    teacher u-t1 | Katherine | Johnson | middle - | email kjohnson@lakeside.example.org | phone - | born - | grade - | security - | room - | schools [s-lake] | ids [sourcedId=u-t1, identifier=E-501, userMasterIdentifier=M-501, LDAP=kjohnson] {preferredGivenName=Kat, pronouns=she/her, role=teacher, username=kjohnson}
    teacher u-t2 | Dorothy | Vaughan | middle - | email dvaughan@lakeside.example.org | phone - | born - | grade - | security - | room - | schools [s-lake] | ids [sourcedId=u-t2, identifier=E-502, userMasterIdentifier=M-502] {role=teacher, username=dvaughan}
    student u-s1 | Jamal | Carter | middle - | email - | phone - | born 2010-03-14 | grade 10 | security - | room - | schools [s-lake] | ids [sourcedId=u-s1, identifier=900101, userMasterIdentifier=M-9001, SIS=900101, State=CA-7788] {metadata.house=Gold, role=student, username=jcarter}
    student u-s2 | Lucía | Fernández | middle - | email - | phone - | born 2010-11-02 | grade 10 | security - | room - | schools [s-lake] | ids [sourcedId=u-s2, identifier=900102, userMasterIdentifier=M-9002, SIS=900102] {metadata.house=Blue, preferredGivenName=Lucy, role=student, username=lfernandez}
    student REMOVED u-s3 |  | u-s3 | middle - | email - | phone - | born - | grade - | security - | room - | schools [] | ids [sourcedId=u-s3]
    parent u-p1 | Keisha | Carter | middle - | email keisha.carter@example.com | phone 555-0301 | born - | grade - | security - | room - | schools [s-lake] | ids [sourcedId=u-p1] {role=parent, sms=555-0301, username=kcarter}
    parent u-g1 | Rosa | Fernández | middle - | email rosa.f@example.com | phone 555-0302 ext. 4 | born - | grade - | security - | room - | schools [s-lake] | ids [sourcedId=u-g1] {role=guardian, username=rfernandez}
    parent REMOVED u-p2 | Hans | Becker | middle - | email - | phone - | born - | grade - | security - | room - | schools [] | ids [sourcedId=u-p2]
    staff u-a1 | Sam | Admin | middle - | email sadmin@lakeside.example.org | phone - | born - | grade - | security - | room - | schools [s-lake] | ids [sourcedId=u-a1, identifier=E-900] {role=siteAdministrator, username=sadmin}
    class k-bio1 | Biology - P1 | school s-lake | term s1-27 | subject Science | course Biology | period 1 | sis k-bio1 | group - | ptan - {classCode=BIO1-1, classType=scheduled, courseCode=BIO1, courseSourcedId=c-bio, grades=09,10, location=Lab 2}
    class k-bio2 | Biology - P2 | school s-lake | term s1-27 | subject Science | course Biology | period 2 | sis k-bio2 | group - | ptan - {classCode=BIO1-2, classType=scheduled, courseCode=BIO1, courseSourcedId=c-bio, grades=09,10, location=Lab 2, termSourcedIds=s1-27,s2-27}
    class k-eng | English 10 | school s-lake | term sy27 | subject English Language Arts | course English 10 | period 3 | sis k-eng | group - | ptan - {classCode=ENG10-3, classType=scheduled, courseCode=ENG10, courseSourcedId=c-eng, grades=10, location=Room 114}
    teacher u-t1 of k-bio1 (primary)
    enrollment u-s1 in k-bio1
    teacher u-t2 of k-bio2 (primary)
    enrollment u-s2 in k-bio2
    enrollment u-s1 in k-bio2
    teacher u-t1 of k-eng
    teacher u-a1 of k-eng (primary)
    relationship u-p1 -> u-s1 | - | parent
    relationship u-g1 -> u-s2 | - | guardian
    snapshot [Schools, Terms, Classes]
";

#[test]
fn v1_1_record_by_record() {
    let (recorder, records) = read_ok(&workspace(), "fixtures/oneroster/v1.1");
    assert_lines(&records, V11);
    assert_eq!(
        recorder.warnings(),
        ["fixtures/oneroster/v1.1/enrollments.csv: 1 row skipped: role `administrator`: only students and teachers are imported (first at fixtures/oneroster/v1.1/enrollments.csv:20:7)"]
    );
}

#[test]
fn v1_2_record_by_record() {
    let (recorder, records) = read_ok(&workspace(), "fixtures/oneroster/v1.2");
    assert_lines(&records, V12);
    assert_eq!(
        recorder.warnings(),
        [
            "fixtures/oneroster/v1.2/users.csv: 1 row skipped: no role (not in users.csv, nor a current row in roles.csv) (first at fixtures/oneroster/v1.2/users.csv:10:1)",
            "fixtures/oneroster/v1.2/enrollments.csv: 1 row skipped: refers to a user this package does not deliver (first at fixtures/oneroster/v1.2/enrollments.csv:8:6)",
        ]
    );
}

fn count(records: &[Record], what: fn(&Kind) -> bool) -> usize {
    records
        .iter()
        .filter(|r| r.kind.as_ref().is_some_and(what))
        .count()
}

/// The counts fixtures/oneroster/README.md states.
#[test]
fn readme_counts() {
    let (_, v11) = read_ok(&workspace(), "fixtures/oneroster/v1.1");
    let (_, v12) = read_ok(&workspace(), "fixtures/oneroster/v1.2");
    let counts = |records: &[Record]| {
        [
            count(records, |k| matches!(k, Kind::School(_))),
            count(records, |k| matches!(k, Kind::Term(_))),
            count(records, |k| matches!(k, Kind::Person(_))),
            count(records, |k| matches!(k, Kind::Person(p) if p.removed)),
            count(records, |k| matches!(k, Kind::Class(_))),
            count(records, |k| matches!(k, Kind::ClassTeacher(_))),
            count(records, |k| matches!(k, Kind::Enrollment(_))),
            count(records, |k| matches!(k, Kind::Relationship(_))),
        ]
    };
    assert_eq!(counts(&v11), [2, 5, 16, 0, 5, 7, 11, 7]);
    assert_eq!(counts(&v12), [1, 3, 9, 2, 3, 4, 3, 2]);
}
