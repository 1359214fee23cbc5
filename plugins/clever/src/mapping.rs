//! Clever objects (either data model) onto roster records.
//!
//! Which id is a person's `source_id`: the one that stays put when a district moves from
//! v2 to v3, so that the same district gives the same roster under both versions.
//! Students kept their ids in v3, so theirs is the Clever id. Every other v3 user got a new
//! id and carries the v2 one as `legacy_id` (NOTES §6), so for them `source_id` is the
//! `legacy_id` when present — the v2 id — and the v3 id is kept as the `clever_id`
//! identifier. A v3-only user without a `legacy_id` is keyed on its v3 id.
//!
//! Raw values are kept: unlisted or empty enum values pass through as text, dates are
//! normalised to ISO with the raw text kept in `attributes` when it differed, and
//! references that do not resolve are left out of the link and kept in `attributes`
//! (`unresolved_*`) — a district is never rejected for its data.

use std::collections::{BTreeMap, HashMap, HashSet};

use roster_core::record::{
    Class, ClassTeacher, Enrollment, Identifier, Person, Relationship, Role, School, Term,
};

use crate::fetch::{Fetched, People};
use crate::model::{
    self, get, Credentials, Field, Name, StaffFields, StudentFields, TeacherFields,
};
use crate::model_v2::{self as v2, ContactName};
use crate::model_v3 as v3;
use crate::normalize::{date_field, yes_no};
use crate::roster::Roster;

/// Map everything fetched onto one roster.
pub fn map(fetched: Fetched) -> Roster {
    let mut roster = Roster::default();
    let Fetched {
        schools,
        terms,
        courses,
        sections,
        people,
        ..
    } = fetched;
    let mut added = Added::default();
    for school in &schools {
        match map_school(school) {
            Some(school) => roster.schools.push(school),
            None => added.skipped += 1,
        }
    }
    for term in &terms {
        match map_term(term) {
            Some(term) => roster.terms.push(term),
            None => added.skipped += 1,
        }
    }
    let mut contacts: Vec<ContactLinks> = Vec::new();
    match people {
        People::V2 {
            students,
            teachers,
            school_admins,
            district_admins,
            contacts: v2_contacts,
        } => {
            roster.contacts_complete = v2_contacts.is_some();
            for s in &students {
                added.push(&mut roster, v2_student(s));
            }
            for t in &teachers {
                added.push(&mut roster, v2_teacher(t));
            }
            for a in &school_admins {
                added.push(&mut roster, v2_school_admin(a));
            }
            for a in &district_admins {
                added.push(&mut roster, v2_district_admin(a));
            }
            for c in v2_contacts.iter().flatten() {
                if let Some((person, links)) = v2_contact(c) {
                    if added.push(&mut roster, Some((person, vec![]))) {
                        contacts.push(links);
                    }
                } else {
                    added.skipped += 1;
                }
            }
        }
        People::V3 {
            users,
            include_contacts,
        } => {
            roster.contacts_complete = include_contacts;
            for user in &users {
                match v3_user(user) {
                    V3Person::Person(person, clever_id) => {
                        added.push(&mut roster, Some((person, vec![clever_id])));
                    }
                    V3Person::Contact(person, clever_id, links) => {
                        if include_contacts
                            && added.push(&mut roster, Some((person, vec![clever_id])))
                        {
                            contacts.push(links);
                        }
                    }
                    V3Person::NoRole(id) => roster.notes.push(format!(
                        "user {id} has no role this importer knows; skipped"
                    )),
                    V3Person::NoId => added.skipped += 1,
                }
            }
        }
    }
    if added.skipped > 0 {
        roster.notes.push(format!(
            "{} objects without an id (or with a duplicate one) were skipped",
            added.skipped
        ));
    }
    let ids = added.ids;

    let school_ids: IdSet = roster.schools.iter().map(|s| s.source_id.clone()).collect();
    for person in &mut roster.people {
        keep_known_schools(person, &school_ids);
    }
    let term_ids: IdSet = roster.terms.iter().map(|t| t.source_id.clone()).collect();
    let courses: Courses = courses.iter().filter_map(course).collect();
    let refs = Refs {
        schools: &school_ids,
        terms: &term_ids,
        courses: &courses,
        people: &ids,
    };
    for section in &sections {
        match map_section(section, &refs) {
            Ok(mapped) => {
                let class_id = &mapped.class.source_id;
                for (teacher_id, primary) in mapped.teachers {
                    roster.class_teachers.push(ClassTeacher {
                        teacher_id_kind: None,
                        class_id: class_id.clone(),
                        teacher_id,
                        primary,
                    });
                }
                for student_id in mapped.students {
                    roster.enrollments.push(Enrollment {
                        student_id_kind: None,
                        class_id: class_id.clone(),
                        student_id,
                    });
                }
                roster.notes.extend(mapped.note);
                roster.classes.push(mapped.class);
            }
            Err(note) => roster.notes.push(note),
        }
    }
    for links in &contacts {
        let (students, note) = map_relationships(links, &ids);
        for (student_id, relationship, contact_type) in students {
            roster.relationships.push(Relationship {
                student_id_kind: None,
                parent_id: links.parent_id.clone(),
                student_id,
                relationship: relationship.clone(),
                contact_type: contact_type.clone(),
            });
        }
        roster.notes.extend(note);
    }
    roster
}

/// A course's name and number: all a section takes from its course.
pub(crate) type CourseInfo = (Option<String>, Option<String>);

/// Course id → its name and number.
pub(crate) type Courses = HashMap<String, CourseInfo>;

/// A course's entry in [`Courses`]; `None` without an id.
pub(crate) fn course(c: &model::Course) -> Option<(String, CourseInfo)> {
    Some((get(&c.id)?, (get(&c.name), get(&c.number))))
}

/// How references to people are resolved: to a source id (whole-district mapping) or to a
/// compact index (streaming).
pub(crate) trait Resolve {
    type Id: Clone + Eq + std::hash::Hash;
    /// The person `clever_id` names, if it names one in `role`.
    fn person(&self, clever_id: &str, role: Role) -> Option<Self::Id>;
}

impl Resolve for PersonIds {
    type Id = String;
    fn person(&self, clever_id: &str, role: Role) -> Option<String> {
        lookup(self, clever_id, role).cloned()
    }
}

/// Clever id (and source id) → (source_id, role), for resolving references.
pub(crate) type PersonIds = HashMap<String, (String, i32)>;

/// The source_id a reference resolves to, if it names a person in `role`: a section's
/// `students` must be students, its `teachers` teachers, a contact's links students.
fn lookup<'a>(ids: &'a PersonIds, clever_id: &str, role: Role) -> Option<&'a String> {
    ids.get(clever_id)
        .filter(|(_, r)| *r == role as i32)
        .map(|(source_id, _)| source_id)
}

/// A v2 person and its other Clever ids (none in v2); `None` without an id.
pub(crate) type Mapped = Option<(Person, Vec<String>)>;

/// People as they are added: their Clever ids for lookups, and which source ids are taken.
#[derive(Default)]
struct Added {
    /// Clever id (and source id) → (source_id, role).
    ids: PersonIds,
    taken: HashSet<String>,
    skipped: usize,
}

impl Added {
    /// Add a person unless its source_id is taken; `aliases` are its other Clever ids.
    fn push(&mut self, roster: &mut Roster, person: Mapped) -> bool {
        let Some((person, aliases)) = person else {
            self.skipped += 1;
            return false;
        };
        if !self.taken.insert(person.source_id.clone()) {
            self.skipped += 1;
            return false;
        }
        let key = (person.source_id.clone(), person.role);
        self.ids.insert(person.source_id.clone(), key.clone());
        for alias in aliases {
            self.ids.entry(alias).or_insert_with(|| key.clone());
        }
        roster.people.push(person);
        true
    }
}

pub(crate) fn map_school(s: &model::School) -> Option<School> {
    let id = get(&s.id)?;
    let mut attributes = BTreeMap::new();
    for (key, value) in [
        ("nces_id", &s.nces_id),
        ("mdr_number", &s.mdr_number),
        ("low_grade", &s.low_grade),
        ("high_grade", &s.high_grade),
        ("phone", &s.phone),
    ] {
        if let Some(value) = get(value) {
            attributes.insert(key.to_string(), value);
        }
    }
    Some(School {
        name: get(&s.name).unwrap_or_else(|| id.clone()),
        source_id: id,
        sis_id: get(&s.sis_id),
        school_number: get(&s.school_number),
        state_id: get(&s.state_id),
        attributes,
    })
}

pub(crate) fn map_term(t: &model::Term) -> Option<Term> {
    let id = get(&t.id)?;
    let start = get(&t.start_date);
    let end = get(&t.end_date);
    let (start_date, start_raw) = date_field(start.as_deref());
    let (end_date, end_raw) = date_field(end.as_deref());
    let mut attributes = BTreeMap::new();
    insert(&mut attributes, "start_date_raw", start_raw);
    insert(&mut attributes, "end_date_raw", end_raw);
    // Clever builds a term from section data and needs only one of name/start/end (§10.3).
    let name = get(&t.name).unwrap_or_else(|| match (&start_date, &end_date) {
        (Some(s), Some(e)) => format!("{s} – {e}"),
        (Some(d), None) | (None, Some(d)) => d.clone(),
        (None, None) => id.clone(),
    });
    Some(Term {
        source_id: id,
        name,
        start_date,
        end_date,
        school_id: None,
        attributes,
    })
}

fn insert(attributes: &mut BTreeMap<String, String>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        attributes.insert(key.to_string(), value);
    }
}

fn identifier(person: &mut Person, kind: &str, value: Option<String>) {
    if let Some(value) = value {
        let id = Identifier {
            kind: kind.to_string(),
            value,
        };
        if !person.identifiers.contains(&id) {
            person.identifiers.push(id);
        }
    }
}

fn new_person(role: Role, source_id: &str, name: Option<&Name>, email: &Field) -> Person {
    let part = |f: fn(&Name) -> &Field| name.and_then(|n| get(f(n)));
    Person {
        source_id: source_id.to_string(),
        role: role as i32,
        first_name: part(|n| &n.first).unwrap_or_default(),
        last_name: part(|n| &n.last).unwrap_or_default(),
        middle_name: part(|n| &n.middle),
        email: get(email),
        ..Default::default()
    }
}

/// Primary school first, each school once (Clever repeats ids in multi-school lists).
fn school_list(primary: Option<String>, all: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in primary.into_iter().chain(all.iter().cloned()) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn username(credentials: &Option<Credentials>) -> Option<String> {
    credentials.as_ref().and_then(|c| get(&c.district_username))
}

/// The district's school or term ids. foldhash, not SipHash: every person's schools and
/// every section's school and term are looked up in one, millions of times at nyc.
pub(crate) type IdSet = foldhash::HashSet<String>;

/// Schools the district did not return stay out of the link list but are kept as text.
pub(crate) fn keep_known_schools(person: &mut Person, known: &IdSet) {
    if person.school_ids.iter().all(|id| known.contains(id)) {
        return;
    }
    let (kept, unknown): (Vec<String>, Vec<String>) = person
        .school_ids
        .drain(..)
        .partition(|id| known.contains(id));
    person.school_ids = kept;
    person
        .attributes
        .insert("unresolved_school_ids".into(), unknown.join(","));
}

struct Ids<'a> {
    source_id: &'a str,
    clever_id: &'a str,
    legacy_ids: &'a [String],
}

fn with_ids(person: &mut Person, ids: &Ids) {
    identifier(person, "clever_id", Some(ids.clever_id.to_string()));
    for legacy in ids.legacy_ids {
        identifier(person, "legacy_id", Some(legacy.clone()));
    }
    debug_assert_eq!(person.source_id, ids.source_id);
}

fn student(ids: &Ids, name: Option<&Name>, email: &Field, f: &StudentFields) -> Person {
    let mut p = new_person(Role::Student, ids.source_id, name, email);
    with_ids(&mut p, ids);
    identifier(&mut p, "sis_id", get(&f.sis_id));
    identifier(&mut p, "student_number", get(&f.student_number));
    identifier(&mut p, "state_id", get(&f.state_id));
    identifier(&mut p, "district_username", username(&f.credentials));
    p.school_ids = school_list(get(&f.school), &f.schools);
    p.grade = get(&f.grade);
    let (birth_date, dob_raw) = date_field(get(&f.dob).as_deref());
    p.birth_date = birth_date;
    let a = &mut p.attributes;
    insert(a, "dob_raw", dob_raw);
    insert(a, "gender", get(&f.gender));
    insert(a, "race", get(&f.race));
    insert(a, "graduation_year", get(&f.graduation_year));
    insert(
        a,
        "hispanic_ethnicity",
        get(&f.hispanic_ethnicity).and_then(|v| yes_no(&v)),
    );
    insert(a, "ell_status", get(&f.ell_status).and_then(|v| yes_no(&v)));
    insert(a, "clever_role", Some("student".into()));
    p
}

fn teacher(ids: &Ids, name: Option<&Name>, email: &Field, f: &TeacherFields) -> Person {
    let mut p = new_person(Role::Teacher, ids.source_id, name, email);
    with_ids(&mut p, ids);
    identifier(&mut p, "sis_id", get(&f.sis_id));
    identifier(&mut p, "teacher_number", get(&f.teacher_number));
    identifier(&mut p, "state_id", get(&f.state_id));
    identifier(&mut p, "district_username", username(&f.credentials));
    p.school_ids = school_list(get(&f.school), &f.schools);
    insert(&mut p.attributes, "title", get(&f.title));
    insert(&mut p.attributes, "clever_role", Some("teacher".into()));
    p
}

/// School staff's fields onto `p` (a staff person, or a v3 teacher who is also staff).
fn add_staff_fields(p: &mut Person, f: &StaffFields) {
    identifier(p, "staff_id", get(&f.staff_id));
    identifier(p, "district_username", username(&f.credentials));
    let schools = school_list(None, &f.schools);
    p.school_ids = school_list(None, &[std::mem::take(&mut p.school_ids), schools].concat());
    if !p.attributes.contains_key("title") {
        insert(&mut p.attributes, "title", get(&f.title));
    }
    insert(&mut p.attributes, "department", get(&f.department));
}

fn staff(ids: &Ids, name: Option<&Name>, email: &Field, f: &StaffFields) -> Person {
    let mut p = new_person(Role::Staff, ids.source_id, name, email);
    with_ids(&mut p, ids);
    add_staff_fields(&mut p, f);
    insert(&mut p.attributes, "clever_role", Some("staff".into()));
    p
}

fn district_admin(ids: &Ids, name: Option<&Name>, email: &Field, title: &Field) -> Person {
    let mut p = new_person(Role::Staff, ids.source_id, name, email);
    with_ids(&mut p, ids);
    insert(&mut p.attributes, "title", get(title));
    insert(
        &mut p.attributes,
        "clever_role",
        Some("district_admin".into()),
    );
    p
}

struct ParentFields<'a> {
    first: Option<String>,
    last: Option<String>,
    email: &'a Field,
    phone: &'a Field,
    phone_type: &'a Field,
    sis_id: &'a Field,
}

fn parent(ids: &Ids, f: ParentFields) -> Person {
    let mut p = new_person(Role::Parent, ids.source_id, None, f.email);
    // Both versions give a contact's whole name in one piece (v2 `name`, v3 `name.last`).
    p.first_name = f.first.unwrap_or_default();
    p.last_name = f.last.unwrap_or_default();
    p.phone = get(f.phone);
    with_ids(&mut p, ids);
    identifier(&mut p, "sis_id", get(f.sis_id));
    insert(&mut p.attributes, "phone_type", get(f.phone_type));
    insert(&mut p.attributes, "clever_role", Some("contact".into()));
    p
}

// ---- v2.x -----------------------------------------------------------------------------

fn v2_ids<'a>(id: &'a str) -> Ids<'a> {
    Ids {
        source_id: id,
        clever_id: id,
        legacy_ids: &[],
    }
}

pub(crate) fn v2_student(s: &v2::Student) -> Mapped {
    let id = get(&s.id)?;
    Some((student(&v2_ids(&id), s.name.as_ref(), &s.email, s), vec![]))
}

pub(crate) fn v2_teacher(t: &v2::Teacher) -> Mapped {
    let id = get(&t.id)?;
    Some((teacher(&v2_ids(&id), t.name.as_ref(), &t.email, t), vec![]))
}

pub(crate) fn v2_school_admin(a: &v2::SchoolAdmin) -> Mapped {
    let id = get(&a.id)?;
    Some((staff(&v2_ids(&id), a.name.as_ref(), &a.email, a), vec![]))
}

pub(crate) fn v2_district_admin(a: &v2::DistrictAdmin) -> Mapped {
    let id = get(&a.id)?;
    Some((
        district_admin(&v2_ids(&id), a.name.as_ref(), &a.email, &a.title),
        vec![],
    ))
}

/// A contact's links to students, to be resolved once every student is known.
pub(crate) struct ContactLinks {
    pub parent_id: String,
    /// (student Clever id, relationship, type)
    pub students: Vec<(String, Option<String>, Option<String>)>,
}

pub(crate) fn v2_contact(c: &v2::Contact) -> Option<(Person, ContactLinks)> {
    let id = get(&c.id)?;
    let (first, last) = match &c.name {
        Some(ContactName::Whole(text)) => (None, get(&Some(text.clone()))),
        Some(ContactName::Parts(name)) => (get(&name.first), get(&name.last)),
        None => (None, None),
    };
    let person = parent(
        &v2_ids(&id),
        ParentFields {
            first,
            last,
            email: &c.email,
            phone: &c.phone,
            phone_type: &c.phone_type,
            sis_id: &c.sis_id,
        },
    );
    // v2 holds one relationship per contact: it stands for every linked student.
    let links = ContactLinks {
        parent_id: id,
        students: c
            .students
            .iter()
            .map(|s| (s.clone(), get(&c.relationship), get(&c.kind)))
            .collect(),
    };
    Some((person, links))
}

// ---- v3.x -----------------------------------------------------------------------------

pub(crate) enum V3Person {
    Person(Person, String),
    Contact(Person, String, ContactLinks),
    NoRole(String),
    NoId,
}

pub(crate) fn v3_user(u: &v3::User) -> V3Person {
    let Some(clever_id) = get(&u.id) else {
        return V3Person::NoId;
    };
    let r = &u.roles;
    let name = u.name.as_ref();
    // Student and contact roles never combine with others (NOTES §5); employee roles
    // (teacher, staff, district_admin) merge into one user, each with its own legacy_id.
    if let Some(s) = &r.student {
        let legacy: Vec<String> = get(&s.legacy_id).into_iter().collect();
        let source = legacy.first().cloned().unwrap_or_else(|| clever_id.clone());
        let ids = Ids {
            source_id: &source,
            clever_id: &clever_id,
            legacy_ids: &legacy,
        };
        return V3Person::Person(student(&ids, name, &u.email, s), clever_id);
    }
    if let Some(c) = &r.contact {
        let legacy: Vec<String> = get(&c.legacy_id).into_iter().collect();
        let source = legacy.first().cloned().unwrap_or_else(|| clever_id.clone());
        let ids = Ids {
            source_id: &source,
            clever_id: &clever_id,
            legacy_ids: &legacy,
        };
        let person = parent(
            &ids,
            ParentFields {
                first: name.and_then(|n| get(&n.first)),
                last: name.and_then(|n| get(&n.last)),
                email: &u.email,
                phone: &c.phone,
                phone_type: &c.phone_type,
                sis_id: &c.sis_id,
            },
        );
        let links = ContactLinks {
            parent_id: source.clone(),
            students: c
                .student_relationships
                .iter()
                .filter_map(|rel| {
                    Some((get(&rel.student)?, get(&rel.relationship), get(&rel.kind)))
                })
                .collect(),
        };
        return V3Person::Contact(person, clever_id, links);
    }
    let legacy: Vec<String> = [
        r.teacher.as_ref().and_then(|t| get(&t.legacy_id)),
        r.staff.as_ref().and_then(|s| get(&s.legacy_id)),
        r.district_admin.as_ref().and_then(|d| get(&d.legacy_id)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The primary role's legacy id is the v2 id of the same person in that role.
    let source = legacy.first().cloned().unwrap_or_else(|| clever_id.clone());
    let ids = Ids {
        source_id: &source,
        clever_id: &clever_id,
        legacy_ids: &legacy,
    };
    let mut roles = Vec::new();
    let mut person = None;
    if let Some(t) = &r.teacher {
        roles.push("teacher");
        person = Some(teacher(&ids, name, &u.email, t));
    }
    if let Some(s) = &r.staff {
        roles.push("staff");
        match &mut person {
            Some(p) => add_staff_fields(p, s),
            None => person = Some(staff(&ids, name, &u.email, s)),
        }
    }
    if let Some(d) = &r.district_admin {
        roles.push("district_admin");
        match &mut person {
            Some(p) => {
                if !p.attributes.contains_key("title") {
                    insert(&mut p.attributes, "title", get(&d.title));
                }
            }
            None => person = Some(district_admin(&ids, name, &u.email, &d.title)),
        }
    }
    match person {
        Some(mut p) => {
            p.attributes.insert("clever_role".into(), roles.join(","));
            V3Person::Person(p, clever_id)
        }
        None => V3Person::NoRole(clever_id),
    }
}

// ---- sections and links ---------------------------------------------------------------

pub(crate) struct Refs<'a, R> {
    pub schools: &'a IdSet,
    pub terms: &'a IdSet,
    pub courses: &'a Courses,
    pub people: &'a R,
}

/// A section as a class with its links (teachers with whether primary, students), and a
/// note when some of its references did not resolve.
pub(crate) struct MappedSection<I> {
    pub class: Class,
    pub teachers: Vec<(I, bool)>,
    pub students: Vec<I>,
    pub note: Option<String>,
}

/// Each value once, in the order first given. A section's students are a score or two,
/// where a scan beats a set (a set per section, hashed with SipHash and grown row by
/// row, was an eighth of the plugin's work while the host waited for the sections); past
/// [`Distinct::SCAN`], a set, so a section of thousands costs no more than thousands of
/// sections.
struct Distinct<T> {
    items: Vec<T>,
    set: Option<foldhash::HashSet<T>>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            items: Vec::new(),
            set: None,
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Distinct<T> {
    const SCAN: usize = 32;

    fn push(&mut self, item: T) {
        let new = match &mut self.set {
            Some(set) => set.insert(item.clone()),
            None if self.items.len() < Self::SCAN => !self.items.contains(&item),
            None => {
                let mut set: foldhash::HashSet<T> = self.items.iter().cloned().collect();
                let new = set.insert(item.clone());
                self.set = Some(set);
                new
            }
        };
        if new {
            self.items.push(item);
        }
    }
}

/// A section as a class and its links; `Err` is the note for a section without an id.
pub(crate) fn map_section<R: Resolve>(
    s: &model::Section,
    refs: &Refs<R>,
) -> Result<MappedSection<R::Id>, String> {
    let Some(id) = get(&s.id) else {
        return Err("a section without an id was skipped".into());
    };
    let mut attributes = BTreeMap::new();
    let school_id = resolve(
        get(&s.school),
        refs.schools,
        &mut attributes,
        "unresolved_school_id",
    );
    let term_id = resolve(
        get(&s.term_id),
        refs.terms,
        &mut attributes,
        "unresolved_term_id",
    );
    let course = get(&s.course).and_then(|course_id| match refs.courses.get(&course_id) {
        Some(course) => Some(course),
        None => {
            attributes.insert("unresolved_course_id".into(), course_id);
            None
        }
    });
    let course_name = course.and_then(|(name, number)| name.clone().or_else(|| number.clone()));
    insert(
        &mut attributes,
        "course_number",
        course.and_then(|(_, number)| number.clone()),
    );
    insert(&mut attributes, "section_number", get(&s.section_number));
    insert(&mut attributes, "grade", get(&s.grade));
    let subject = get(&s.subject);
    let period = get(&s.period);
    // Clever generates "<course> - <teacher> - <period>" names; the SIS name may be blank.
    let name = get(&s.name)
        .or_else(|| course_name.clone())
        .or_else(|| match (&subject, &period) {
            (Some(subject), Some(period)) => Some(format!("{subject} (period {period})")),
            (Some(subject), None) => Some(subject.clone()),
            (None, Some(period)) => Some(format!("Period {period}")),
            (None, None) => None,
        })
        .or_else(|| get(&s.sis_id))
        .unwrap_or_else(|| id.clone());

    let primary = get(&s.teacher).or_else(|| s.teachers.first().cloned());
    let mut unresolved_teachers = Vec::new();
    let mut linked = HashSet::new();
    let mut teachers = Vec::new();
    for teacher in primary.iter().chain(s.teachers.iter()) {
        match refs.people.person(teacher, Role::Teacher) {
            Some(person) if linked.insert(person.clone()) => {
                teachers.push((person, Some(teacher) == primary.as_ref()));
            }
            Some(_) => {}
            None if !unresolved_teachers.contains(teacher) => {
                unresolved_teachers.push(teacher.clone())
            }
            None => {}
        }
    }
    let mut unresolved_students = Vec::new();
    let mut students = Distinct::default();
    for student in &s.students {
        match refs.people.person(student, Role::Student) {
            Some(person) => students.push(person),
            None => unresolved_students.push(student.clone()),
        }
    }
    let students = students.items;
    let mut note = None;
    if !unresolved_teachers.is_empty() || !unresolved_students.is_empty() {
        note = Some(format!(
            "section {id}: {} teacher and {} student references name users Clever did not return; those links were skipped",
            unresolved_teachers.len(),
            unresolved_students.len()
        ));
    }
    if !unresolved_teachers.is_empty() {
        attributes.insert(
            "unresolved_teacher_ids".into(),
            unresolved_teachers.join(","),
        );
    }
    if !unresolved_students.is_empty() {
        attributes.insert(
            "unresolved_student_ids".into(),
            unresolved_students.join(","),
        );
    }
    let class = Class {
        source_id: id,
        name,
        school_id,
        term_id,
        subject,
        course: course_name,
        period,
        sis_id: get(&s.sis_id),
        attributes,
        ..Default::default()
    };
    Ok(MappedSection {
        class,
        teachers,
        students,
        note,
    })
}

fn resolve(
    raw: Option<String>,
    known: &IdSet,
    attributes: &mut BTreeMap<String, String>,
    key: &str,
) -> Option<String> {
    let raw = raw?;
    if known.contains(&raw) {
        Some(raw)
    } else {
        attributes.insert(key.to_string(), raw);
        None
    }
}

/// One relationship of a contact: (student, relationship, contact type).
pub(crate) type Related<'l, I> = (I, &'l Option<String>, &'l Option<String>);

/// A contact's relationships, each student once: (student, relationship, type), and a
/// note when some linked students did not resolve. A contact's `parent_id` is unique among
/// the contacts added, so each student once per contact is each pair once.
pub(crate) fn map_relationships<'l, R: Resolve>(
    links: &'l ContactLinks,
    people: &R,
) -> (Vec<Related<'l, R::Id>>, Option<String>) {
    let mut unresolved = 0;
    let mut related = HashSet::new();
    let mut out = Vec::new();
    for (student, relationship, contact_type) in &links.students {
        let Some(student_id) = people.person(student, Role::Student) else {
            unresolved += 1;
            continue;
        };
        if related.insert(student_id.clone()) {
            out.push((student_id, relationship, contact_type));
        }
    }
    let note = (unresolved > 0).then(|| {
        format!(
            "contact {}: {unresolved} linked students were not returned by Clever; those relationships were skipped",
            links.parent_id
        )
    });
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::{keep_known_schools, Distinct, IdSet, Person};

    #[test]
    fn schools_the_district_did_not_return_are_kept_as_text() {
        let known: IdSet = ["s1", "s2"].into_iter().map(String::from).collect();
        let person = |schools: &[&str]| Person {
            school_ids: schools.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };

        let mut mixed = person(&["s2", "gone", "s1", "also-gone"]);
        keep_known_schools(&mut mixed, &known);
        assert_eq!(mixed.school_ids, ["s2", "s1"]);
        assert_eq!(
            mixed
                .attributes
                .get("unresolved_school_ids")
                .map(String::as_str),
            Some("gone,also-gone")
        );

        for schools in [&["s1", "s2"][..], &["s2"], &[]] {
            let mut all_known = person(schools);
            keep_known_schools(&mut all_known, &known);
            assert_eq!(all_known.school_ids, schools);
            assert!(all_known.attributes.is_empty());
        }
    }

    #[test]
    fn distinct_keeps_the_first_of_each_in_order_past_its_scan() {
        for len in [3, Distinct::<u32>::SCAN, Distinct::<u32>::SCAN + 1, 500] {
            let given: Vec<u32> = (0..len as u32 * 3).map(|i| (i * 7) % len as u32).collect();
            let mut distinct = Distinct::default();
            let mut expected = Vec::new();
            for &value in &given {
                distinct.push(value);
                if !expected.contains(&value) {
                    expected.push(value);
                }
            }
            assert_eq!(distinct.items, expected, "{len} values");
            assert_eq!(distinct.set.is_some(), len >= Distinct::<u32>::SCAN);
        }
    }
}
