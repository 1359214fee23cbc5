//! The fixture district through the real client against the mock: both data models give
//! one roster, paging does not change it, and the data quirks survive as documented.

mod common;

use common::{identifier, normalise, people, Setup};
use roster_core::record::{Entity, Kind, Record, Role};

#[test]
fn v2_1_and_v3_0_give_the_same_roster() {
    let setup = Setup::new();
    let v2 = setup.run("v2.1", "");
    let v3 = setup.run("v3.0", "");
    let (n2, n3) = (normalise(v2.records()), normalise(v3.records()));
    // Compare piece by piece first, for readable failures.
    assert_eq!(n2.schools, n3.schools);
    assert_eq!(n2.terms, n3.terms);
    assert_eq!(
        n2.people.keys().collect::<Vec<_>>(),
        n3.people.keys().collect::<Vec<_>>()
    );
    for (id, person) in &n2.people {
        assert_eq!(Some(person), n3.people.get(id), "person {id}");
    }
    assert_eq!(n2.classes, n3.classes);
    assert_eq!(n2.class_teachers, n3.class_teachers);
    assert_eq!(n2.enrollments, n3.enrollments);
    assert_eq!(n2.relationships, n3.relationships);
    assert_eq!(n2, n3);
    setup.assert_no_token(&v2);
    setup.assert_no_token(&v3);
}

#[test]
fn v3_keys_non_students_on_legacy_id_and_keeps_both_ids() {
    let setup = Setup::new();
    let v2 = setup.run("v2.1", "");
    let v3 = setup.run("v3.0", "");
    for p in people(v2.records()) {
        assert_eq!(identifier(p, "clever_id"), Some(p.source_id.as_str()));
        assert_eq!(identifier(p, "legacy_id"), None);
    }
    let district = roster_clever_mock::District::demo();
    for p in people(v3.records()) {
        let clever_id = identifier(p, "clever_id").expect("every person has a clever_id");
        if p.role == Role::Student as i32 {
            assert_eq!(clever_id, p.source_id, "students keep their id in v3");
            assert_eq!(identifier(p, "legacy_id"), None);
        } else {
            assert_ne!(clever_id, p.source_id, "v3 gave {} a new id", p.source_id);
            assert_eq!(identifier(p, "legacy_id"), Some(p.source_id.as_str()));
        }
    }
    // The v3 id of a teacher is the one the fixture gave it.
    let grace = &district.teachers[0];
    let person = people(v3.records())
        .find(|p| p.source_id == grace.id)
        .expect("teacher keyed on her v2 id");
    assert_eq!(identifier(person, "clever_id"), Some(grace.v3_id.as_str()));
}

#[test]
fn v2_0_and_v3_1_are_served_like_v2_1_and_v3_0() {
    let setup = Setup::new();
    let base = normalise(setup.run("v3.0", "").records());
    assert_eq!(normalise(setup.run("v3.1", "").records()), base);
    assert_eq!(normalise(setup.run("v2.0", "").records()), base);
    assert!(setup.requests_to("/v2.0/students").len() == 1);
    assert!(setup.requests_to("/v3.1/users").len() == 1);
}

#[test]
fn small_pages_give_the_same_roster_as_one_page() {
    let setup = Setup::new();
    for version in ["v2.1", "v3.0"] {
        let whole = setup.run(version, "");
        let paged = setup.run(version, "page_size = 2\nconcurrency = 2");
        assert_eq!(
            normalise(whole.records()),
            normalise(paged.records()),
            "{version}"
        );
    }
    // 73 users in pages of 2: 37 pages, the last one partial, so no trailing empty page.
    let users: Vec<_> = setup
        .requests_to("/v3.0/users")
        .into_iter()
        .filter(|r| r.uri.contains("limit=2"))
        .collect();
    assert_eq!(users.len(), 37);
    assert!(users
        .iter()
        .skip(1)
        .all(|r| r.uri.contains("starting_after=")));
    // 40 students in pages of 2: 20 full pages, then the empty page that ends the list.
    let students = setup.requests_to("/v2.1/students?limit=2").len();
    assert_eq!(students, 21);
}

fn count(records: &[Record], pick: impl Fn(&Kind) -> bool) -> usize {
    records
        .iter()
        .filter(|r| r.kind.as_ref().is_some_and(&pick))
        .count()
}

fn role_count(records: &[Record], role: Role) -> usize {
    people(records).filter(|p| p.role == role as i32).count()
}

#[test]
fn fixture_counts_match_its_readme() {
    let setup = Setup::new();
    for version in ["v2.1", "v3.0"] {
        let outcome = setup.run(version, "");
        let r = outcome.records();
        assert_eq!(count(r, |k| matches!(k, Kind::School(_))), 2, "{version}");
        assert_eq!(count(r, |k| matches!(k, Kind::Term(_))), 3);
        assert_eq!(role_count(r, Role::Student), 40);
        assert_eq!(role_count(r, Role::Teacher), 10);
        assert_eq!(role_count(r, Role::Staff), 3);
        assert_eq!(role_count(r, Role::Parent), 20);
        assert_eq!(count(r, |k| matches!(k, Kind::Class(_))), 15);
        assert_eq!(count(r, |k| matches!(k, Kind::Enrollment(_))), 114);
        assert_eq!(count(r, |k| matches!(k, Kind::ClassTeacher(_))), 22);
        assert_eq!(count(r, |k| matches!(k, Kind::Relationship(_))), 21);
        let snapshot = normalise(r).snapshot;
        assert!(snapshot.contains(&(Entity::Parents as i32)));
        assert!(snapshot.contains(&(Entity::Relationships as i32)));
    }
}

#[test]
fn records_come_in_dependency_order_ending_with_the_snapshot() {
    let setup = Setup::new();
    let outcome = setup.run("v3.0", "");
    let rank = |k: &Kind| match k {
        Kind::School(_) => 0,
        Kind::Term(_) => 1,
        Kind::Person(_) => 2,
        Kind::Class(_) => 3,
        Kind::ClassTeacher(_) | Kind::Enrollment(_) | Kind::Relationship(_) => 4,
        Kind::Checkpoint(_) => 5,
        Kind::Snapshot(_) => 6,
        Kind::Removal(_) | Kind::LinksReplaced(_) => panic!("a complete run sent {k:?}"),
    };
    let ranks: Vec<i32> = outcome
        .records()
        .iter()
        .map(|r| rank(r.kind.as_ref().unwrap()))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(ranks.iter().filter(|&&r| r == 6).count(), 1);
    assert_eq!(*ranks.last().unwrap(), 6);
    assert!(outcome
        .batches
        .iter()
        .all(|&n| n <= roster_plugin_clever::BATCH_SIZE));
    let progress = outcome.host.progress.lock().unwrap();
    assert!(progress
        .iter()
        .any(|(stage, n)| stage == "users" && *n == 73));
}

#[test]
fn quirks_are_kept_not_rejected() {
    let setup = Setup::new();
    let district = roster_clever_mock::District::demo();
    for version in ["v2.1", "v3.0"] {
        let outcome = setup.run(version, "");
        let n = normalise(outcome.records());
        let student = |i: usize| &n.people[&district.students[i].id];
        // Three DOB formats become ISO; the raw text stays when it differed.
        assert_eq!(student(0).birth_date.as_deref(), Some("2020-01-01"));
        assert_eq!(
            student(0).attributes.get("dob_raw").map(String::as_str),
            Some("1/1/2020")
        );
        assert_eq!(student(1).birth_date.as_deref(), Some("2019-02-08"));
        assert_eq!(student(1).attributes.get("dob_raw"), None);
        assert_eq!(student(2).birth_date.as_deref(), Some("2018-03-15"));
        assert_eq!(
            student(2).attributes.get("dob_raw").map(String::as_str),
            Some("2018-03-15T00:00:00.000Z")
        );
        assert_eq!(student(7).birth_date, None);
        assert_eq!(student(8).birth_date.as_deref(), Some("00/00/0000"));
        // Y/N booleans, empty and unlisted enum values.
        assert_eq!(
            student(0)
                .attributes
                .get("hispanic_ethnicity")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            student(1).attributes.get("ell_status").map(String::as_str),
            Some("true")
        );
        assert_eq!(student(2).attributes.get("hispanic_ethnicity"), None);
        assert_eq!(student(3).attributes.get("gender"), None);
        assert_eq!(student(30).grade.as_deref(), Some("13"));
        assert_eq!(student(31).grade, None);
        // Multi-school students, with a repeated school id collapsed.
        let (a, b) = (&district.schools[0], &district.schools[1]);
        let id =
            |s: &serde_json::Map<String, serde_json::Value>| s["id"].as_str().unwrap().to_string();
        assert_eq!(student(27).school_ids, vec![id(b), id(a)]);
        assert_eq!(student(24).school_ids, vec![id(b), id(a)]);
        // Sections: unresolvable term and course, and name fallbacks.
        let class = |i: usize| &n.classes[&district.sections[i].id];
        assert_eq!(class(6).term_id, None);
        assert_eq!(
            class(6)
                .attributes
                .get("unresolved_term_id")
                .map(String::as_str),
            Some("603ebb2ab452fb006c7639ff")
        );
        assert_eq!(class(13).course, None);
        assert!(class(13).attributes.contains_key("unresolved_course_id"));
        assert!(class(13).term_id.is_some());
        assert_eq!(class(11).name, "English Language Arts 7");
        assert_eq!(class(12).name, "math (period 3)");
        assert_eq!(class(14).subject.as_deref(), Some("unlisted subject"));
        assert_eq!(class(7).course.as_deref(), Some("Mathematics 6"));
        // Co-teachers: one primary per class, the first listed.
        let primaries = n.class_teachers.iter().filter(|l| l.2).count();
        assert_eq!(primaries, 15);
        assert!(n.class_teachers.contains(&(
            district.sections[10].id.clone(),
            district.teachers[7].id.clone(),
            true
        )));
        assert!(n.class_teachers.contains(&(
            district.sections[10].id.clone(),
            district.teachers[5].id.clone(),
            false
        )));
        // The multi-school music teacher.
        let music = &n.people[&district.teachers[8].id];
        assert_eq!(music.school_ids.len(), 2);
        // Contacts: the whole name in last_name; the guardian of two siblings.
        let margaret = &n.people[&district.contacts[17].id];
        assert_eq!(
            (margaret.first_name.as_str(), margaret.last_name.as_str()),
            ("", "Margaret Walsh")
        );
        let kids: Vec<_> = n
            .relationships
            .iter()
            .filter(|r| r.0 == district.contacts[17].id)
            .collect();
        assert_eq!(kids.len(), 2);
        assert!(n.relationships.contains(&(
            district.contacts[12].id.clone(),
            district.students[12].id.clone(),
            Some("Guardian".into()),
            Some("Parent/Guardian".into())
        )));
        assert!(n.relationships.contains(&(
            district.contacts[13].id.clone(),
            district.students[13].id.clone(),
            None,
            None
        )));
        // Staff: two school admins and a district admin, all role Staff.
        let admin = &n.people[&district.staff[2].id];
        assert_eq!(admin.role, Role::Staff as i32);
        assert_eq!(
            admin.attributes.get("clever_role").map(String::as_str),
            Some("district_admin")
        );
    }
}

#[test]
fn without_contacts_no_parents_and_no_claim_to_them() {
    let setup = Setup::new();
    for version in ["v2.1", "v3.0"] {
        let outcome = setup.run(version, "include_contacts = false");
        let r = outcome.records();
        assert_eq!(role_count(r, Role::Parent), 0, "{version}");
        assert_eq!(count(r, |k| matches!(k, Kind::Relationship(_))), 0);
        let snapshot = normalise(r).snapshot;
        assert!(!snapshot.contains(&(Entity::Parents as i32)));
        assert!(!snapshot.contains(&(Entity::Relationships as i32)));
        assert!(snapshot.contains(&(Entity::Students as i32)));
    }
    assert!(setup.requests_to("/v2.1/contacts").is_empty());
}

#[test]
fn a_school_filter_limits_the_import() {
    let setup = Setup::new();
    let district = roster_clever_mock::District::demo();
    let elementary = district.schools[0]["id"].as_str().unwrap().to_string();
    for version in ["v2.1", "v3.0"] {
        let outcome = setup.run(version, "schools = [\"maple grove elementary\"]");
        let n = normalise(outcome.records());
        assert_eq!(n.schools.keys().collect::<Vec<_>>(), vec![&elementary]);
        assert_eq!(n.classes.len(), 7, "{version}");
        assert!(n
            .classes
            .values()
            .all(|c| c.school_id.as_deref() == Some(&elementary)));
        assert!(n
            .people
            .values()
            .all(|p| p.school_ids.iter().all(|s| *s == elementary)));
        // Students of the middle school who take no class at the elementary are out...
        assert!(!n.people.contains_key(&district.students[30].id));
        // ...but the middle-schooler enrolled in elementary music stays.
        assert!(n.people.contains_key(&district.students[24].id));
        assert!(
            n.people.contains_key(&district.staff[2].id),
            "district admins stay"
        );
        // Margaret Walsh keeps her elementary child only.
        let kids = n
            .relationships
            .iter()
            .filter(|r| r.0 == district.contacts[17].id)
            .count();
        assert_eq!(kids, 1);
    }
    let outcome = setup.run("v3.0", "schools = [\"Nowhere High\"]");
    let error = outcome.error();
    assert_eq!(error.kind, roster_core::ErrorKind::Config);
    assert!(
        error.message.contains("schools") && error.message.contains("Nowhere High"),
        "{error}"
    );
    assert!(error.message.contains("Maple Grove Elementary"), "{error}");
}
