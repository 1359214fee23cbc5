//! The roster record model: what every plugin emits and the host consumes.
//!
//! Records cross the plugin boundary as protobuf messages (encoded with `prost`), which is
//! what lets the model grow without breaking plugins built earlier:
//! - a new field gets a new tag; an older plugin simply never sets it (it decodes as its
//!   default), and an older host skips tags it does not know;
//! - a new record kind is a new `oneof` arm; a host that meets a kind it does not know sees
//!   `Record { kind: None }` and reports it instead of failing.
//!
//! Rules for changing this file: never reuse or renumber a tag, never change a field's
//! type, only add. Attributes that only one source has go in `attributes`.
//!
//! References between records (a class's `term_id`, an enrollment's `student_id`, …) are
//! the *source's own* ids, exactly as the same source emitted them in `source_id`.

use std::collections::BTreeMap;

/// One unit of transfer: the records a plugin returns from one `next_batch` call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Batch {
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<Record>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(message, tag = "1")]
    School(School),
    #[prost(message, tag = "2")]
    Term(Term),
    #[prost(message, tag = "3")]
    Class(Class),
    #[prost(message, tag = "4")]
    Person(Person),
    #[prost(message, tag = "5")]
    Enrollment(Enrollment),
    #[prost(message, tag = "6")]
    ClassTeacher(ClassTeacher),
    #[prost(message, tag = "7")]
    Relationship(Relationship),
    #[prost(message, tag = "8")]
    Snapshot(Snapshot),
    #[prost(message, tag = "9")]
    Removal(Removal),
    #[prost(message, tag = "10")]
    LinksReplaced(LinksReplaced),
    #[prost(message, tag = "11")]
    Checkpoint(Checkpoint),
}

/// Which entities this source delivers *completely* in this run.
///
/// The host deactivates a previously imported record that is missing from a run only for
/// the entities named here. A source that cannot vouch for completeness (a missing
/// optional file, a delta feed) leaves an entity out, and nothing of it is deactivated.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Snapshot {
    #[prost(enumeration = "Entity", repeated, tag = "1")]
    pub complete: Vec<i32>,
    /// This run continues from the checkpoint the host handed to `open`: it sends only
    /// what changed since, removals included ([`Removal`], [`LinksReplaced`]), and nothing
    /// is inferred from absence (`complete` is ignored). A continuing run sends its
    /// snapshot first, so the host knows before the first record.
    #[prost(bool, tag = "2")]
    pub continues: bool,
}

/// In a continuing run: a record the source no longer has. The host deactivates it, as a
/// complete run would for a missing record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Removal {
    #[prost(enumeration = "Entity", tag = "1")]
    pub entity: i32,
    /// The school, term, class or person; for a link, its class (its parent for a
    /// relationship).
    #[prost(string, tag = "2")]
    pub source_id: String,
    /// For a link only: its student or teacher.
    #[prost(string, tag = "3")]
    pub other_id: String,
    /// As [`Enrollment::student_id_kind`], for `other_id`.
    #[prost(string, optional, tag = "4")]
    pub other_id_kind: Option<String>,
}

/// In a continuing run: the links of `entity` that `owner_id` has are exactly those the
/// run sends; the host deactivates the others. The owner is the class for enrollments
/// and class teachers, the parent for relationships. A source's data that lists the
/// students of a class (Clever's sections) replaces them this way, with no removal of
/// its own.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinksReplaced {
    #[prost(enumeration = "Entity", tag = "1")]
    pub entity: i32,
    #[prost(string, tag = "2")]
    pub owner_id: String,
}

/// Where this source's next run can continue from (e.g. Clever's newest event id). The
/// host keeps the last checkpoint of a run it applied, in that run's transaction, and
/// hands it to the next run's `open`; a run that sends none leaves nothing to continue
/// from. Opaque to the host.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Checkpoint {
    #[prost(bytes = "vec", tag = "1")]
    pub state: Vec<u8>,
    /// Kept *after* the checkpoint the run was given instead of replacing it: the next
    /// run is handed that one's bytes followed by these. For a large state that changes
    /// a little each run (a run that was given none may not extend one).
    #[prost(bool, tag = "2")]
    pub extends: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Entity {
    Unspecified = 0,
    Schools = 1,
    Terms = 2,
    Classes = 3,
    Students = 4,
    Teachers = 5,
    Parents = 6,
    Staff = 7,
    Enrollments = 8,
    ClassTeachers = 9,
    Relationships = 10,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct School {
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, optional, tag = "3")]
    pub sis_id: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub school_number: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub state_id: Option<String>,
    #[prost(btree_map = "string, string", tag = "15")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Term {
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    /// ISO `YYYY-MM-DD` when the source gives a parseable date, else the raw text.
    #[prost(string, optional, tag = "3")]
    pub start_date: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub end_date: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub school_id: Option<String>,
    #[prost(btree_map = "string, string", tag = "15")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Class {
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, optional, tag = "3")]
    pub school_id: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub term_id: Option<String>,
    /// A grouping of teachers for slot management (pickAtime's GroupName).
    #[prost(string, optional, tag = "5")]
    pub group_name: Option<String>,
    /// Appointments a parent may book for this class (pickAtime's PTAN).
    #[prost(uint32, optional, tag = "6")]
    pub appointments_per_parent: Option<u32>,
    #[prost(string, optional, tag = "7")]
    pub subject: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub course: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub period: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub sis_id: Option<String>,
    #[prost(btree_map = "string, string", tag = "15")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum Role {
    Unspecified = 0,
    Student = 1,
    Teacher = 2,
    Parent = 3,
    Staff = 4,
}

impl Role {
    /// The value stored in `contacts.role`.
    pub fn as_db_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
            Role::Parent => "parent",
            Role::Staff | Role::Unspecified => "staff",
        }
    }
}

/// One identifier a source gives a person: `kind` is e.g. `clever_id`, `sis_id`,
/// `StudentID`, `state_id`, `student_number`, `teacher_number`, `legacy_id`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Identifier {
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Person {
    /// The source's primary key for this person; references use it.
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(enumeration = "Role", tag = "2")]
    pub role: i32,
    #[prost(string, tag = "3")]
    pub first_name: String,
    #[prost(string, tag = "4")]
    pub last_name: String,
    #[prost(string, optional, tag = "5")]
    pub middle_name: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub email: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub phone: Option<String>,
    /// Date of birth: ISO `YYYY-MM-DD` when parseable, else the raw text.
    #[prost(string, optional, tag = "8")]
    pub birth_date: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub grade: Option<String>,
    /// The value a parent types to prove the child is theirs (pickAtime's SecurityValue).
    #[prost(string, optional, tag = "10")]
    pub security_value: Option<String>,
    /// Where this teacher holds conferences.
    #[prost(string, optional, tag = "11")]
    pub room: Option<String>,
    #[prost(string, repeated, tag = "12")]
    pub school_ids: Vec<String>,
    /// Every identifier the source gives, including the one in `source_id`.
    #[prost(message, repeated, tag = "13")]
    pub identifiers: Vec<Identifier>,
    /// The source says this person was removed (pickAtime's `Action=delete`).
    #[prost(bool, tag = "14")]
    pub removed: bool,
    #[prost(btree_map = "string, string", tag = "15")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Enrollment {
    #[prost(string, tag = "1")]
    pub class_id: String,
    #[prost(string, tag = "2")]
    pub student_id: String,
    /// Set when `student_id` is not the student's source id but an identifier of this
    /// kind that the same source gave the student (see [`Person::identifiers`]). Only in
    /// a continuing run, whose source may know a student by another id than the one it
    /// keys the student by (Clever's sections name students by Clever id).
    #[prost(string, optional, tag = "3")]
    pub student_id_kind: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClassTeacher {
    #[prost(string, tag = "1")]
    pub class_id: String,
    #[prost(string, tag = "2")]
    pub teacher_id: String,
    #[prost(bool, tag = "3")]
    pub primary: bool,
    /// As [`Enrollment::student_id_kind`], for `teacher_id`.
    #[prost(string, optional, tag = "4")]
    pub teacher_id_kind: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Relationship {
    #[prost(string, tag = "1")]
    pub parent_id: String,
    #[prost(string, tag = "2")]
    pub student_id: String,
    /// The relationship as the source words it: "Mother", "Guardian", "Aunt", …
    #[prost(string, optional, tag = "3")]
    pub relationship: Option<String>,
    /// The contact type: "parent", "guardian", "emergency", … as the source gives it.
    #[prost(string, optional, tag = "4")]
    pub contact_type: Option<String>,
    /// As [`Enrollment::student_id_kind`], for `student_id`.
    #[prost(string, optional, tag = "5")]
    pub student_id_kind: Option<String>,
}

macro_rules! into_record {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Record {
            fn from(value: $ty) -> Self {
                Record { kind: Some(Kind::$ty(value)) }
            }
        }
    )*};
}
into_record!(
    School,
    Term,
    Class,
    Person,
    Enrollment,
    ClassTeacher,
    Relationship,
    Snapshot,
    Removal,
    LinksReplaced,
    Checkpoint
);

impl Snapshot {
    pub fn of(entities: &[Entity]) -> Self {
        Snapshot {
            complete: entities.iter().map(|e| *e as i32).collect(),
            continues: false,
        }
    }

    /// The snapshot a continuing run starts with.
    pub fn continuing() -> Self {
        Snapshot {
            complete: Vec::new(),
            continues: true,
        }
    }
}
