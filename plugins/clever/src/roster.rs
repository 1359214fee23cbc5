//! The mapped roster before it is handed over: the optional school filter, then records in
//! dependency order, in batches, closed by a `Snapshot`.

use std::collections::{HashSet, VecDeque};

use roster_core::record::{
    Class, ClassTeacher, Enrollment, Entity, Person, Record, Relationship, Role, School, Snapshot,
    Term,
};
use roster_core::PluginError;

/// Records per batch: a few thousand keeps memory flat on both sides of the boundary.
pub const BATCH_SIZE: usize = 5_000;

#[derive(Debug, Default)]
pub struct Roster {
    pub schools: Vec<School>,
    pub terms: Vec<Term>,
    pub people: Vec<Person>,
    pub classes: Vec<Class>,
    pub class_teachers: Vec<ClassTeacher>,
    pub enrollments: Vec<Enrollment>,
    pub relationships: Vec<Relationship>,
    /// Parents and relationships were fetched in full (contacts were asked for and served).
    pub contacts_complete: bool,
    /// Things worth a warning: skipped objects, references that did not resolve.
    pub notes: Vec<String>,
}

impl Roster {
    /// Keep only the schools named in `wanted` (by id, name or sis_id) and what belongs to
    /// them: their sections and links, people with one of those schools or a link to a kept
    /// section, district-wide staff, the terms kept sections use, and the contacts of kept
    /// students. A name that matches no school is an error, not an empty import.
    pub fn limit_to_schools(&mut self, wanted: &[String]) -> Result<(), PluginError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let mut keep: HashSet<String> = HashSet::new();
        for entry in wanted {
            let folded = entry.to_lowercase();
            let found: Vec<&School> = self
                .schools
                .iter()
                .filter(|s| {
                    s.source_id == *entry
                        || s.name.to_lowercase() == folded
                        || s.sis_id.as_deref() == Some(entry.as_str())
                })
                .collect();
            if found.is_empty() {
                let known: Vec<String> = self
                    .schools
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.source_id))
                    .collect();
                return Err(PluginError::config(format!(
                    "`schools`: no school in the district has the id or name {entry:?}; the district's schools are: {}",
                    known.join(", ")
                ))
                .at("schools"));
            }
            keep.extend(found.into_iter().map(|s| s.source_id.clone()));
        }

        self.schools.retain(|s| keep.contains(&s.source_id));
        self.classes
            .retain(|c| c.school_id.as_ref().is_some_and(|id| keep.contains(id)));
        let classes: HashSet<&str> = self.classes.iter().map(|c| c.source_id.as_str()).collect();
        self.class_teachers
            .retain(|l| classes.contains(l.class_id.as_str()));
        self.enrollments
            .retain(|l| classes.contains(l.class_id.as_str()));
        let terms: HashSet<&str> = self
            .classes
            .iter()
            .filter_map(|c| c.term_id.as_deref())
            .collect();
        self.terms.retain(|t| terms.contains(t.source_id.as_str()));

        let linked: HashSet<String> = self
            .class_teachers
            .iter()
            .map(|l| l.teacher_id.clone())
            .chain(self.enrollments.iter().map(|l| l.student_id.clone()))
            .collect();
        self.people.retain(|p| {
            p.role == Role::Parent as i32
                || linked.contains(&p.source_id)
                || p.school_ids.iter().any(|s| keep.contains(s))
                // District admins have no schools: they belong to every school.
                || (p.role == Role::Staff as i32 && p.school_ids.is_empty())
        });
        let students: HashSet<String> = self
            .people
            .iter()
            .filter(|p| p.role == Role::Student as i32)
            .map(|p| p.source_id.clone())
            .collect();
        self.relationships
            .retain(|r| students.contains(&r.student_id));
        let parents: HashSet<String> = self
            .relationships
            .iter()
            .map(|r| r.parent_id.clone())
            .collect();
        self.people
            .retain(|p| p.role != Role::Parent as i32 || parents.contains(&p.source_id));
        for person in &mut self.people {
            person.school_ids.retain(|s| keep.contains(s));
        }
        Ok(())
    }

    /// What this run delivers completely, for the host's deactivation of missing records.
    pub fn snapshot(&self) -> Snapshot {
        let mut complete = vec![
            Entity::Schools,
            Entity::Terms,
            Entity::Classes,
            Entity::Students,
            Entity::Teachers,
            Entity::Staff,
            Entity::Enrollments,
            Entity::ClassTeachers,
        ];
        if self.contacts_complete {
            complete.extend([Entity::Parents, Entity::Relationships]);
        }
        Snapshot::of(&complete)
    }

    /// Records in dependency order — schools, terms, people, classes, links — cut into
    /// batches, the last record being the snapshot.
    pub fn into_batches(self) -> VecDeque<Vec<Record>> {
        let snapshot = self.snapshot();
        let records = self
            .schools
            .into_iter()
            .map(Record::from)
            .chain(self.terms.into_iter().map(Record::from))
            .chain(self.people.into_iter().map(Record::from))
            .chain(self.classes.into_iter().map(Record::from))
            .chain(self.class_teachers.into_iter().map(Record::from))
            .chain(self.enrollments.into_iter().map(Record::from))
            .chain(self.relationships.into_iter().map(Record::from))
            .chain(std::iter::once(Record::from(snapshot)));
        let mut batches = VecDeque::new();
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        for record in records {
            batch.push(record);
            if batch.len() == BATCH_SIZE {
                batches.push_back(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_SIZE),
                ));
            }
        }
        if !batch.is_empty() {
            batches.push_back(batch);
        }
        batches
    }
}
