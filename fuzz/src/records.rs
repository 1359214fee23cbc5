//! What every successful import must look like, whatever its input: one snapshot, last;
//! and no record that points at something the import did not deliver (the host would
//! refuse it, but a plugin must not produce it).

use std::collections::{HashMap, HashSet};

use roster_core::record::{Kind, Record, Role};

/// Panics (with the reason) unless `records` is a consistent import.
pub fn check_consistent(records: &[Record]) {
    let snapshots = records
        .iter()
        .filter(|r| matches!(r.kind, Some(Kind::Snapshot(_))))
        .count();
    assert_eq!(snapshots, 1, "one snapshot");
    assert!(
        matches!(
            records.last().and_then(|r| r.kind.as_ref()),
            Some(Kind::Snapshot(_))
        ),
        "the snapshot comes last"
    );
    let mut schools = HashSet::new();
    let mut terms = HashSet::new();
    let mut classes = HashSet::new();
    // source_id → (role, removed)
    let mut people: HashMap<&str, (i32, bool)> = HashMap::new();
    for record in records {
        match record.kind.as_ref().expect("every record has a kind") {
            Kind::School(s) => {
                assert!(!s.source_id.is_empty(), "a school without an id");
                schools.insert(s.source_id.as_str());
            }
            Kind::Term(t) => {
                assert!(!t.source_id.is_empty(), "a term without an id");
                terms.insert(t.source_id.as_str());
            }
            Kind::Class(c) => {
                assert!(!c.source_id.is_empty(), "a class without an id");
                classes.insert(c.source_id.as_str());
            }
            Kind::Person(p) => {
                assert!(!p.source_id.is_empty(), "a person without an id");
                people.insert(p.source_id.as_str(), (p.role, p.removed));
            }
            _ => {}
        }
    }
    let is = |id: &str, role: Role| matches!(people.get(id), Some((r, removed)) if *r == role as i32 && !removed);
    for record in records {
        match record.kind.as_ref().unwrap() {
            Kind::Term(t) => {
                if let Some(school) = &t.school_id {
                    assert!(
                        schools.contains(school.as_str()),
                        "term {} → school {school}",
                        t.source_id
                    );
                }
            }
            Kind::Class(c) => {
                if let Some(school) = &c.school_id {
                    assert!(
                        schools.contains(school.as_str()),
                        "class {} → school {school}",
                        c.source_id
                    );
                }
                if let Some(term) = &c.term_id {
                    assert!(
                        terms.contains(term.as_str()),
                        "class {} → term {term}",
                        c.source_id
                    );
                }
            }
            Kind::Person(p) => {
                for school in &p.school_ids {
                    assert!(
                        schools.contains(school.as_str()),
                        "person {} → school {school}",
                        p.source_id
                    );
                }
            }
            Kind::Enrollment(e) => {
                assert!(
                    classes.contains(e.class_id.as_str()),
                    "enrollment → class {}",
                    e.class_id
                );
                assert!(
                    is(&e.student_id, Role::Student),
                    "enrollment → student {}",
                    e.student_id
                );
            }
            Kind::ClassTeacher(l) => {
                assert!(
                    classes.contains(l.class_id.as_str()),
                    "class teacher → class {}",
                    l.class_id
                );
                assert!(
                    is(&l.teacher_id, Role::Teacher),
                    "class teacher → teacher {}",
                    l.teacher_id
                );
            }
            Kind::Relationship(r) => {
                assert!(
                    is(&r.parent_id, Role::Parent),
                    "relationship → parent {}",
                    r.parent_id
                );
                assert!(
                    is(&r.student_id, Role::Student),
                    "relationship → student {}",
                    r.student_id
                );
            }
            _ => {}
        }
    }
}
