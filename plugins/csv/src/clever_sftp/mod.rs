//! Clever's SFTP CSV layout ("Secure Sync" uploads, and SIS "Clever export" jobs):
//! schools.csv, students.csv, teachers.csv, sections.csv, enrollments.csv (required) and
//! staff.csv (optional), comma-separated with a header row, columns in any order.
//!
//! Records come out in dependency order: schools, students, teachers, staff, contacts
//! (parents), terms, classes, class teachers, enrollments, relationships, and last one
//! [`Snapshot`].
//!
//! People's ids carry their file, `student:<Student_id>`, `teacher:<Teacher_id>`,
//! `staff:<Staff_id>` and `contact:<hash>`: a district numbers students and staff in
//! separate SIS tables, so `1001` may be both a student and a teacher. The ids as the
//! files give them are in each person's `identifiers`.
//!
//! The mapping (columns compared without regard to case):
//! - **schools.csv** → `School` (`School_id` is the id and `sis_id`, `School_number`,
//!   `State_id`; every other column in `attributes`).
//! - **students.csv** has one row per student–contact pair. Rows are grouped by
//!   `Student_id` (the first row's student fields win; rows that disagree are reported in
//!   one warning); a student in several schools gets them all. Identifiers: `sis_id` =
//!   `Student_id`, `student_number`, `state_id`. `Dob`/`DOB` becomes the birth date.
//!   `Gender` and other columns are kept raw in `attributes`, except sensitive ones
//!   which are never read: `Password`, `Ell_status`, `Frl_status`, `Iep_status`, `Race`,
//!   `Hispanic_Latino`, `Unweighted_gpa`, `Weighted_gpa`.
//! - **Contacts** come from the `Contact_*` columns of students.csv and have no id: rows
//!   of the same contact are joined by [`contacts`]' keys (email + name, phone + name,
//!   `Contact_sis_id`), so a parent of two siblings is one `Person` (role parent, id
//!   `contact:<hash>`) with two `Relationship`s. `Contact_relationship` and
//!   `Contact_type` are kept as written (free text) on the relationship; the phone is
//!   kept as written (extensions included) and normalised only for matching.
//! - **teachers.csv** may list a teacher once per school: rows with one `Teacher_id` are
//!   one `Person` with every school. Identifiers: `sis_id`, `teacher_number`, `state_id`
//!   (= `State_teacher_id`).
//! - **staff.csv** → `Person`s with role staff; a `Staff_id` that is also a `Teacher_id`
//!   is the same person and is not sent twice.
//! - **sections.csv** → `Class` (`Name`, else `Course_name` and `Period`, else
//!   `Section_number`, else the id; `Subject`, `Course_name`, `Period`); `Teacher_id` is
//!   the primary teacher, `Teacher_2_id` … `Teacher_10_id` (any `Teacher_<n>_id`) the
//!   others. `Term_name`/`Term_start`/`Term_end` define the terms: one `Term` per
//!   distinct (name, start, end), with the id `name|start|end` (dates as ISO).
//! - **enrollments.csv** → `Enrollment` (repeated pairs sent once).
//!
//! Dates: `MM/DD/YYYY`, `M/D/YYYY`, `YYYY-MM-DD` and two-digit years `M/D/YY`. A
//! two-digit birth year is the latest such year not after the current year (in 2026:
//! `12` → 2012, `30` → 1930); a two-digit term year is the latest not after ten years
//! from now (`27` → 2027). A date that cannot be read is kept as written.
//!
//! Identifiers: if two people would get the same identifier (`sis_id` `1001` for a
//! student and a teacher from different SIS tables), the later one is sent without it,
//! with one warning listing them — the roster keeps identifiers unique per source.
//!
//! Snapshot: schools, terms, students, teachers, classes, class teachers and
//! enrollments always; staff only when staff.csv exists; parents and relationships only
//! when students.csv has contact columns.

pub mod contacts;
mod files;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use roster_core::record::{
    Class, ClassTeacher, Enrollment, Entity, Identifier, Person, Record, Relationship, Role,
    School, Snapshot, Term,
};
use roster_core::sdk::{Host, RecordSource};
use roster_core::PluginError;

use crate::config::{Config, Delimiter};
use crate::dates::{current_year, iso_date_pivot};
use crate::table::{DataFile, Row, Table};
use contacts::ContactRow;
pub use files::FileSet;

/// Records per `next_batch` call.
pub const BATCH_SIZE: usize = 5_000;

/// Columns of students.csv that are never read into a record.
pub const SENSITIVE: [&str; 8] = [
    "Password",
    "Ell_status",
    "Frl_status",
    "Iep_status",
    "Race",
    "Hispanic_Latino",
    "Unweighted_gpa",
    "Weighted_gpa",
];

const CONTACT_COLUMNS: [&str; 7] = [
    "Contact_name",
    "Contact_type",
    "Contact_relationship",
    "Contact_phone",
    "Contact_phone_type",
    "Contact_email",
    "Contact_sis_id",
];

#[derive(Debug, Clone, Copy)]
enum Stage {
    Schools,
    Students,
    Teachers,
    Staff,
    Parents,
    Sections,
    Enrollments,
    Relationships,
    Snapshot,
}

/// A Clever SFTP folder read as a stream of records. Usable without the plugin ABI: it is
/// an iterator of records as well as a [`RecordSource`].
pub struct CleverSftpSource {
    host: Host,
    files: FileSet,
    delimiter: Delimiter,
    stages: VecDeque<Stage>,
    pending: VecDeque<Record>,
    seen: Seen,
    failed: bool,
    /// The latest year a two-digit birth year may mean.
    birth_year_limit: u32,
}

#[derive(Default)]
struct Seen {
    /// School_id → line in schools.csv.
    schools: HashMap<String, u64>,
    /// Student_id → (line in students.csv, schools).
    students: HashMap<String, (u64, Vec<String>)>,
    /// Teacher_id → line in teachers.csv.
    teachers: HashMap<String, u64>,
    staff: HashSet<String>,
    contact_rows: Vec<ContactRow>,
    has_contacts: bool,
    /// (contact id, Student_id, relationship, contact type), in order.
    relationships: Vec<(String, String, Option<String>, Option<String>)>,
    sections: HashSet<String>,
    /// (kind, value) → the person that has it.
    identifiers: HashMap<(String, String), String>,
    dropped_identifiers: Vec<String>,
}

impl Seen {
    /// The identifiers `person` may have: those no earlier person has.
    fn claim(&mut self, person: &str, identifiers: Vec<Identifier>) -> Vec<Identifier> {
        let mut kept = Vec::with_capacity(identifiers.len());
        for identifier in identifiers {
            if identifier.value.is_empty() {
                continue;
            }
            let key = (identifier.kind.clone(), identifier.value.clone());
            match self.identifiers.get(&key) {
                Some(holder) if holder != person => {
                    self.dropped_identifiers.push(format!(
                        "{} `{}` of `{person}` (already `{holder}`'s)",
                        identifier.kind, identifier.value
                    ));
                    continue;
                }
                Some(_) => {}
                None => {
                    self.identifiers.insert(key, person.to_string());
                }
            }
            if !kept.contains(&identifier) {
                kept.push(identifier);
            }
        }
        kept
    }
}

/// Rows that disagree with an earlier row of the same id: counted, reported once.
#[derive(Default)]
struct Disagreements {
    count: u64,
    first: Option<String>,
}

impl Disagreements {
    fn add(&mut self, at: String) {
        self.count += 1;
        self.first.get_or_insert(at);
    }

    fn report(&self, host: &Host, file: &str, what: &str) {
        if let Some(first) = &self.first {
            host.warn(&format!(
                "{file}: {} repeat{} a {what} with other details; the first row's are kept (first at {first})",
                rows_text(self.count),
                if self.count == 1 { "s" } else { "" }
            ));
        }
    }
}

/// `1 row`, `2 rows`.
fn rows_text(count: u64) -> String {
    format!("{count} row{}", if count == 1 { "" } else { "s" })
}

/// The record id of a person of `kind` (`student`, `teacher`, `staff`) with this file id.
pub fn person_id(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn identifier(kind: &str, value: &str) -> Identifier {
    Identifier {
        kind: kind.to_string(),
        value: value.to_string(),
    }
}

fn attributes(row: &Row, columns: &[(usize, String)]) -> BTreeMap<String, String> {
    columns
        .iter()
        .filter(|(i, _)| !row.get(*i).is_empty())
        .map(|(i, name)| (name.clone(), row.get(*i).to_string()))
        .collect()
}

fn required<'r>(
    table: &Table,
    row: &'r Row,
    index: usize,
    column: &str,
) -> Result<&'r str, PluginError> {
    match row.get(index) {
        "" => Err(table.error(row, index, format!("empty {column}"))),
        value => Ok(value),
    }
}

/// Every row of a table.
fn rows(table: &mut Table) -> Result<Vec<Row>, PluginError> {
    let mut rows = Vec::new();
    while let Some(row) = table.next_row()? {
        rows.push(row);
    }
    Ok(rows)
}

/// Rows grouped by the id in `column`, groups in order of their first row.
fn group_by(rows: &[Row], column: usize) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let id = row.get(column);
        match index.get(id) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(id, groups.len());
                groups.push((id.to_string(), vec![i]));
            }
        }
    }
    groups
}

impl CleverSftpSource {
    /// Finds the files (a missing required file is an error now, before any record); the
    /// files themselves are read as records are pulled.
    pub fn open(config: &Config, base_dir: &Path, host: Host) -> Result<Self, PluginError> {
        let files = files::resolve(config, base_dir)?;
        let mut stages = VecDeque::from([Stage::Schools, Stage::Students, Stage::Teachers]);
        if files.staff.is_some() {
            stages.push_back(Stage::Staff);
        }
        stages.extend([
            Stage::Parents,
            Stage::Sections,
            Stage::Enrollments,
            Stage::Relationships,
            Stage::Snapshot,
        ]);
        Ok(CleverSftpSource {
            host,
            files,
            delimiter: config.delimiter,
            stages,
            pending: VecDeque::new(),
            seen: Seen::default(),
            failed: false,
            birth_year_limit: current_year(),
        })
    }

    /// Reads two-digit birth years as if it were `year` (for tests).
    pub fn with_current_year(mut self, year: u32) -> Self {
        self.birth_year_limit = year;
        self
    }

    /// The files this source reads.
    pub fn files(&self) -> &FileSet {
        &self.files
    }

    fn table(&self, file: &DataFile, repeatable: &[&str]) -> Result<Table, PluginError> {
        Table::open(file, self.delimiter, &self.host, repeatable)
    }

    /// The next record in dependency order, `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, PluginError> {
        loop {
            if self.failed {
                return Ok(None);
            }
            if let Some(record) = self.pending.pop_front() {
                return Ok(Some(record));
            }
            let Some(stage) = self.stages.pop_front() else {
                return Ok(None);
            };
            let result = self.run(stage);
            if result.is_err() {
                self.failed = true;
            }
            result?;
        }
    }

    fn run(&mut self, stage: Stage) -> Result<(), PluginError> {
        match stage {
            Stage::Schools => self.schools(),
            Stage::Students => self.students(),
            Stage::Teachers => self.teachers(),
            Stage::Staff => self.staff(),
            Stage::Parents => {
                self.parents();
                Ok(())
            }
            Stage::Sections => self.sections(),
            Stage::Enrollments => self.enrollments(),
            Stage::Relationships => {
                for (parent_id, student_id, relationship, contact_type) in
                    std::mem::take(&mut self.seen.relationships)
                {
                    self.pending.push_back(
                        Relationship {
                            student_id_kind: None,
                            parent_id,
                            student_id,
                            relationship,
                            contact_type,
                        }
                        .into(),
                    );
                }
                if !self.seen.dropped_identifiers.is_empty() {
                    let dropped = &self.seen.dropped_identifiers;
                    self.host.warn(&format!(
                        "{} left out because another person already has {}: {}",
                        match dropped.len() {
                            1 => "1 identifier was".to_string(),
                            n => format!("{n} identifiers were"),
                        },
                        if dropped.len() == 1 { "it" } else { "them" },
                        dropped
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
                Ok(())
            }
            Stage::Snapshot => {
                let mut complete = vec![
                    Entity::Schools,
                    Entity::Terms,
                    Entity::Students,
                    Entity::Teachers,
                    Entity::Classes,
                    Entity::ClassTeachers,
                    Entity::Enrollments,
                ];
                if self.files.staff.is_some() {
                    complete.push(Entity::Staff);
                }
                if self.seen.has_contacts {
                    complete.extend([Entity::Parents, Entity::Relationships]);
                }
                self.pending.push_back(Snapshot::of(&complete).into());
                Ok(())
            }
        }
    }

    fn progress(&self, table: &Table) {
        self.host
            .progress(&table.file.name, table.rows, Some(table.rows));
    }

    fn schools(&mut self) -> Result<(), PluginError> {
        let mut table = self.table(&self.files.schools.clone(), &[])?;
        let [id, name] = table.require(&["School_id", "School_name"])?[..] else {
            unreachable!("one index per name")
        };
        let number = table.find("School_number");
        let state = table.find("State_id");
        let other = table.other_columns(&["School_id", "School_name", "School_number", "State_id"]);
        while let Some(row) = table.next_row()? {
            let school = required(&table, &row, id, "School_id")?;
            let school_name = required(&table, &row, name, "School_name")?;
            if let Some(line) = self.seen.schools.insert(school.to_string(), row.line) {
                return Err(table.error(
                    &row,
                    id,
                    format!("duplicate School_id `{school}` (also on line {line})"),
                ));
            }
            self.pending.push_back(
                School {
                    source_id: school.to_string(),
                    name: school_name.to_string(),
                    sis_id: Some(school.to_string()),
                    school_number: non_empty(row.get_opt(number)),
                    state_id: non_empty(row.get_opt(state)),
                    attributes: attributes(&row, &other),
                }
                .into(),
            );
        }
        if self.seen.schools.is_empty() {
            return Err(PluginError::input("the file has no schools")
                .at(table.file.shown.clone())
                .with_hint(
                    "every student, teacher and section names its School_id from schools.csv",
                ));
        }
        self.progress(&table);
        Ok(())
    }

    /// A `School_id` that must be in schools.csv.
    fn school(&self, table: &Table, row: &Row, column: usize) -> Result<String, PluginError> {
        let school = required(table, row, column, "School_id")?;
        if self.seen.schools.contains_key(school) {
            Ok(school.to_string())
        } else {
            Err(table.error(
                row,
                column,
                format!(
                    "unknown School_id `{school}` (not in {})",
                    self.files.schools.name
                ),
            ))
        }
    }

    fn students(&mut self) -> Result<(), PluginError> {
        let mut table = self.table(&self.files.students.clone(), &[])?;
        let [school, id, last, first] =
            table.require(&["School_id", "Student_id", "Last_name", "First_name"])?[..]
        else {
            unreachable!("one index per name")
        };
        let number = table.find("Student_number");
        let state = table.find("State_id");
        let middle = table.find("Middle_name");
        let grade = table.find("Grade");
        let dob = ["Dob", "DOB", "Birthdate"]
            .into_iter()
            .find_map(|c| table.find(c));
        let email = table.find("Student_email");
        let contact: Vec<Option<usize>> = CONTACT_COLUMNS.iter().map(|c| table.find(c)).collect();
        self.seen.has_contacts = contact.iter().any(Option::is_some);
        let mut known: Vec<&str> = vec![
            "School_id",
            "Student_id",
            "Student_number",
            "State_id",
            "Last_name",
            "First_name",
            "Middle_name",
            "Grade",
            "Dob",
            "DOB",
            "Birthdate",
            "Student_email",
        ];
        known.extend(CONTACT_COLUMNS);
        known.extend(SENSITIVE);
        let other = table.other_columns(&known);
        let rows = rows(&mut table)?;
        let mut disagreements = Disagreements::default();
        let mut nameless_contacts = Disagreements::default();
        for (student_id, members) in group_by(&rows, id) {
            let first_row = &rows[members[0]];
            required(&table, first_row, id, "Student_id")?;
            let first_name = required(&table, first_row, first, "First_name")?;
            let last_name = required(&table, first_row, last, "Last_name")?;
            let mut schools: Vec<String> = Vec::new();
            let details = |row: &Row| -> Vec<String> {
                [
                    Some(first),
                    Some(last),
                    middle,
                    number,
                    state,
                    grade,
                    dob,
                    email,
                ]
                .iter()
                .map(|c| row.get_opt(*c).to_string())
                .collect()
            };
            let first_details = details(first_row);
            for &i in &members {
                let row = &rows[i];
                let row_school = self.school(&table, row, school)?;
                if !schools.contains(&row_school) {
                    schools.push(row_school);
                }
                if i != members[0] && details(row) != first_details {
                    disagreements.add(table.at(row.line, id));
                }
                // The contact on this row, if it has one.
                let value = |k: usize| non_empty(row.get_opt(contact[k]));
                if contact.iter().any(|c| !row.get_opt(*c).is_empty()) {
                    let Some(name) = value(0) else {
                        nameless_contacts.add(table.at(row.line, contact[0].unwrap_or(id)));
                        continue;
                    };
                    self.seen.contact_rows.push(ContactRow {
                        student: student_id.clone(),
                        name,
                        contact_type: value(1),
                        relationship: value(2),
                        phone: value(3),
                        phone_type: value(4),
                        email: value(5),
                        sis_id: value(6),
                        at: format!("{}:{}", table.file.shown, row.line),
                    });
                }
            }
            let birth_date = non_empty(first_row.get_opt(dob))
                .map(|text| iso_date_pivot(&text, self.birth_year_limit).unwrap_or(text));
            let person = person_id("student", &student_id);
            let identifiers = self.seen.claim(
                &person,
                vec![
                    identifier("sis_id", &student_id),
                    identifier("student_number", first_row.get_opt(number)),
                    identifier("state_id", first_row.get_opt(state)),
                ],
            );
            self.seen
                .students
                .insert(student_id.clone(), (first_row.line, schools.clone()));
            self.pending.push_back(
                Person {
                    source_id: person,
                    role: Role::Student as i32,
                    first_name: first_name.to_string(),
                    last_name: last_name.to_string(),
                    middle_name: non_empty(first_row.get_opt(middle)),
                    email: non_empty(first_row.get_opt(email)),
                    birth_date,
                    grade: non_empty(first_row.get_opt(grade)),
                    school_ids: schools,
                    identifiers,
                    attributes: attributes(first_row, &other),
                    ..Default::default()
                }
                .into(),
            );
        }
        let shown = table.file.shown.clone();
        disagreements.report(&self.host, &shown, "Student_id");
        if let Some(first) = &nameless_contacts.first {
            self.host.warn(&format!(
                "{shown}: {} contact details but no Contact_name; left out (first at {first})",
                match nameless_contacts.count {
                    1 => "1 row has".to_string(),
                    n => format!("{n} rows have"),
                }
            ));
        }
        self.progress(&table);
        Ok(())
    }

    fn teachers(&mut self) -> Result<(), PluginError> {
        let mut table = self.table(&self.files.teachers.clone(), &[])?;
        let [school, id, first, last] =
            table.require(&["School_id", "Teacher_id", "First_name", "Last_name"])?[..]
        else {
            unreachable!("one index per name")
        };
        let number = table.find("Teacher_number");
        let state = table.find("State_teacher_id");
        let email = table.find("Teacher_email");
        let middle = table.find("Middle_name");
        let password = table.find("Password");
        let other = table.other_columns(&[
            "School_id",
            "Teacher_id",
            "Teacher_number",
            "State_teacher_id",
            "Teacher_email",
            "First_name",
            "Middle_name",
            "Last_name",
            "Password",
        ]);
        let rows = rows(&mut table)?;
        if password.is_some_and(|p| rows.iter().any(|r| !r.get(p).is_empty())) {
            self.host.warn(&format!(
                "{}: the Password column is ignored: roster never imports passwords",
                table.file.name
            ));
        }
        let mut disagreements = Disagreements::default();
        for (teacher_id, members) in group_by(&rows, id) {
            let first_row = &rows[members[0]];
            required(&table, first_row, id, "Teacher_id")?;
            let first_name = required(&table, first_row, first, "First_name")?;
            let last_name = required(&table, first_row, last, "Last_name")?;
            let details = |row: &Row| -> Vec<String> {
                [Some(first), Some(last), middle, email, number, state]
                    .iter()
                    .map(|c| row.get_opt(*c).to_string())
                    .collect()
            };
            let first_details = details(first_row);
            let mut schools = Vec::new();
            for &i in &members {
                let row = &rows[i];
                let row_school = self.school(&table, row, school)?;
                if !schools.contains(&row_school) {
                    schools.push(row_school);
                }
                if i != members[0] && details(row) != first_details {
                    disagreements.add(table.at(row.line, id));
                }
            }
            let person = person_id("teacher", &teacher_id);
            let identifiers = self.seen.claim(
                &person,
                vec![
                    identifier("sis_id", &teacher_id),
                    identifier("teacher_number", first_row.get_opt(number)),
                    identifier("state_id", first_row.get_opt(state)),
                ],
            );
            self.seen.teachers.insert(teacher_id, first_row.line);
            self.pending.push_back(
                Person {
                    source_id: person,
                    role: Role::Teacher as i32,
                    first_name: first_name.to_string(),
                    last_name: last_name.to_string(),
                    middle_name: non_empty(first_row.get_opt(middle)),
                    email: non_empty(first_row.get_opt(email)),
                    school_ids: schools,
                    identifiers,
                    attributes: attributes(first_row, &other),
                    ..Default::default()
                }
                .into(),
            );
        }
        disagreements.report(&self.host, &table.file.shown, "Teacher_id");
        self.progress(&table);
        Ok(())
    }

    fn staff(&mut self) -> Result<(), PluginError> {
        let file = self
            .files
            .staff
            .clone()
            .expect("only planned with staff.csv");
        let mut table = self.table(&file, &[])?;
        let [id] = table.require(&["Staff_id"])?[..] else {
            unreachable!("one index per name")
        };
        let school = table.find("School_id");
        let first = table.find("First_name");
        let last = table.find("Last_name");
        let email = table.find("Staff_email");
        let other = table.other_columns(&[
            "School_id",
            "Staff_id",
            "Staff_email",
            "First_name",
            "Last_name",
            "Password",
        ]);
        let rows = rows(&mut table)?;
        let mut merged = 0u64;
        let mut disagreements = Disagreements::default();
        for (staff_id, members) in group_by(&rows, id) {
            let first_row = &rows[members[0]];
            required(&table, first_row, id, "Staff_id")?;
            if self.seen.teachers.contains_key(&staff_id) {
                // Clever merges a teacher who is also staff into one user; so do we.
                merged += 1;
                continue;
            }
            let (first_name, last_name) = (first_row.get_opt(first), first_row.get_opt(last));
            if first_name.is_empty() && last_name.is_empty() {
                return Err(table.error(
                    first_row,
                    first.or(last).unwrap_or(id),
                    "empty First_name and Last_name: a staff member needs a name",
                ));
            }
            let mut schools = Vec::new();
            for &i in &members {
                let row = &rows[i];
                if let Some(column) = school.filter(|&c| !row.get(c).is_empty()) {
                    let row_school = self.school(&table, row, column)?;
                    if !schools.contains(&row_school) {
                        schools.push(row_school);
                    }
                }
                if i != members[0]
                    && (row.get_opt(first), row.get_opt(last), row.get_opt(email))
                        != (first_name, last_name, first_row.get_opt(email))
                {
                    disagreements.add(table.at(row.line, id));
                }
            }
            let person = person_id("staff", &staff_id);
            let identifiers = self
                .seen
                .claim(&person, vec![identifier("sis_id", &staff_id)]);
            self.seen.staff.insert(staff_id);
            self.pending.push_back(
                Person {
                    source_id: person,
                    role: Role::Staff as i32,
                    first_name: first_name.to_string(),
                    last_name: last_name.to_string(),
                    email: non_empty(first_row.get_opt(email)),
                    school_ids: schools,
                    identifiers,
                    attributes: attributes(first_row, &other),
                    ..Default::default()
                }
                .into(),
            );
        }
        if merged > 0 {
            self.host.info(&format!(
                "{}: {merged} of its people are also in {} and are sent once, as teachers",
                table.file.name, self.files.teachers.name
            ));
        }
        disagreements.report(&self.host, &table.file.shown, "Staff_id");
        self.progress(&table);
        Ok(())
    }

    /// One parent per group of contact rows, then its relationships (sent later).
    fn parents(&mut self) {
        let rows = std::mem::take(&mut self.seen.contact_rows);
        let mut linked: HashSet<(String, String)> = HashSet::new();
        for contact in contacts::group(&rows) {
            let members: Vec<&ContactRow> = contact.rows.iter().map(|&i| &rows[i]).collect();
            let first = members[0];
            let pick = |field: fn(&ContactRow) -> &Option<String>| {
                members.iter().find_map(|r| field(r).clone())
            };
            let (first_name, last_name) = contacts::split_name(&first.name);
            let mut schools: Vec<String> = Vec::new();
            let mut sis_ids: Vec<Identifier> = Vec::new();
            for row in &members {
                for school in &self.seen.students[&row.student].1 {
                    if !schools.contains(school) {
                        schools.push(school.clone());
                    }
                }
                if let Some(sis) = &row.sis_id {
                    sis_ids.push(identifier("sis_id", sis));
                }
                if linked.insert((contact.id.clone(), row.student.clone())) {
                    self.seen.relationships.push((
                        contact.id.clone(),
                        person_id("student", &row.student),
                        row.relationship.clone(),
                        row.contact_type.clone(),
                    ));
                }
            }
            let mut attributes = BTreeMap::from([("Contact_name".to_string(), first.name.clone())]);
            if let Some(kind) = pick(|r| &r.phone_type) {
                attributes.insert("Contact_phone_type".to_string(), kind);
            }
            let identifiers = self.seen.claim(&contact.id, sis_ids);
            self.pending.push_back(
                Person {
                    source_id: contact.id,
                    role: Role::Parent as i32,
                    first_name,
                    last_name,
                    email: pick(|r| &r.email),
                    phone: pick(|r| &r.phone),
                    school_ids: schools,
                    identifiers,
                    attributes,
                    ..Default::default()
                }
                .into(),
            );
        }
    }

    fn sections(&mut self) -> Result<(), PluginError> {
        let file = self.files.sections.clone();
        let mut table = self.table(&file, &[])?;
        let [school, id, teacher] = table.require(&["School_id", "Section_id", "Teacher_id"])?[..]
        else {
            unreachable!("one index per name")
        };
        // Teacher_2_id … Teacher_10_id, or however many the export has, in order.
        let mut co_teachers: Vec<(u32, usize)> = table
            .header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let lower = h.to_ascii_lowercase();
                let n = lower.strip_prefix("teacher_")?.strip_suffix("_id")?;
                Some((n.parse::<u32>().ok()?, i))
            })
            .collect();
        co_teachers.sort();
        let column = |name: &str| table.find(name);
        let (name, number, course, period, subject) = (
            column("Name"),
            column("Section_number"),
            column("Course_name"),
            column("Period"),
            column("Subject"),
        );
        let (term_name, term_start, term_end) = (
            column("Term_name"),
            column("Term_start"),
            column("Term_end"),
        );
        let mut known: Vec<String> = [
            "School_id",
            "Section_id",
            "Teacher_id",
            "Name",
            "Course_name",
            "Period",
            "Subject",
            "Term_name",
            "Term_start",
            "Term_end",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        known.extend(co_teachers.iter().map(|(_, i)| table.header[*i].clone()));
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let other = table.other_columns(&known);
        let rows = rows(&mut table)?;

        // Terms first: every class refers to one.
        let term_year_limit = current_year() + 10;
        let date =
            |text: &str| iso_date_pivot(text, term_year_limit).unwrap_or_else(|| text.to_string());
        let mut terms: Vec<Term> = Vec::new();
        let mut term_of_row: Vec<Option<String>> = Vec::with_capacity(rows.len());
        let mut term_index: HashMap<String, usize> = HashMap::new();
        for row in &rows {
            let (title, start, end) = (
                row.get_opt(term_name),
                row.get_opt(term_start),
                row.get_opt(term_end),
            );
            if title.is_empty() && start.is_empty() && end.is_empty() {
                term_of_row.push(None);
                continue;
            }
            let (start, end) = (
                non_empty(start).map(|d| date(&d)),
                non_empty(end).map(|d| date(&d)),
            );
            let term_id = format!(
                "{title}|{}|{}",
                start.as_deref().unwrap_or(""),
                end.as_deref().unwrap_or("")
            );
            if !term_index.contains_key(&term_id) {
                let name = if title.is_empty() {
                    format!(
                        "{} – {}",
                        start.as_deref().unwrap_or("?"),
                        end.as_deref().unwrap_or("?")
                    )
                } else {
                    title.to_string()
                };
                term_index.insert(term_id.clone(), terms.len());
                terms.push(Term {
                    source_id: term_id.clone(),
                    name,
                    start_date: start,
                    end_date: end,
                    ..Default::default()
                });
            }
            term_of_row.push(Some(term_id));
        }
        self.pending.extend(terms.into_iter().map(Record::from));

        let mut links: Vec<ClassTeacher> = Vec::new();
        let mut lines: HashMap<String, u64> = HashMap::new();
        for (row, term_id) in rows.iter().zip(term_of_row) {
            let section = required(&table, row, id, "Section_id")?;
            if let Some(line) = lines.insert(section.to_string(), row.line) {
                return Err(table.error(
                    row,
                    id,
                    format!("duplicate Section_id `{section}` (also on line {line})"),
                ));
            }
            let school_id = self.school(&table, row, school)?;
            required(&table, row, teacher, "Teacher_id")?;
            let mut teachers: Vec<&str> = Vec::new();
            for column in std::iter::once(teacher).chain(co_teachers.iter().map(|(_, i)| *i)) {
                let teacher_id = row.get(column);
                if teacher_id.is_empty() || teachers.contains(&teacher_id) {
                    continue;
                }
                let kind = if self.seen.teachers.contains_key(teacher_id) {
                    "teacher"
                } else if self.seen.staff.contains(teacher_id) {
                    "staff"
                } else {
                    return Err(table.error(
                        row,
                        column,
                        format!(
                            "unknown {} `{teacher_id}` (not in {})",
                            table.header[column], self.files.teachers.name
                        ),
                    ));
                };
                teachers.push(teacher_id);
                links.push(ClassTeacher {
                    teacher_id_kind: None,
                    class_id: section.to_string(),
                    teacher_id: person_id(kind, teacher_id),
                    primary: teachers.len() == 1,
                });
            }
            let course_name = non_empty(row.get_opt(course));
            let period_text = non_empty(row.get_opt(period));
            let class_name = non_empty(row.get_opt(name))
                .or_else(|| {
                    course_name.as_ref().map(|c| match &period_text {
                        Some(p) => format!("{c} - Period {p}"),
                        None => c.clone(),
                    })
                })
                .or_else(|| non_empty(row.get_opt(number)))
                .unwrap_or_else(|| section.to_string());
            self.seen.sections.insert(section.to_string());
            self.pending.push_back(
                Class {
                    source_id: section.to_string(),
                    name: class_name,
                    school_id: Some(school_id),
                    term_id,
                    subject: non_empty(row.get_opt(subject)),
                    course: course_name,
                    period: period_text,
                    sis_id: Some(section.to_string()),
                    attributes: attributes(row, &other),
                    ..Default::default()
                }
                .into(),
            );
        }
        self.pending.extend(links.into_iter().map(Record::from));
        self.progress(&table);
        Ok(())
    }

    fn enrollments(&mut self) -> Result<(), PluginError> {
        let mut table = self.table(&self.files.enrollments.clone(), &[])?;
        let [section, student] = table.require(&["Section_id", "Student_id"])?[..] else {
            unreachable!("one index per name")
        };
        let mut seen: HashSet<(String, String)> = HashSet::new();
        while let Some(row) = table.next_row()? {
            let class_id = required(&table, &row, section, "Section_id")?;
            let student_id = required(&table, &row, student, "Student_id")?;
            if !self.seen.sections.contains(class_id) {
                return Err(table.error(
                    &row,
                    section,
                    format!(
                        "unknown Section_id `{class_id}` (not in {})",
                        self.files.sections.name
                    ),
                ));
            }
            if !self.seen.students.contains_key(student_id) {
                return Err(table.error(
                    &row,
                    student,
                    format!(
                        "unknown Student_id `{student_id}` (not in {})",
                        self.files.students.name
                    ),
                ));
            }
            if seen.insert((class_id.to_string(), student_id.to_string())) {
                self.pending.push_back(
                    Enrollment {
                        student_id_kind: None,
                        class_id: class_id.to_string(),
                        student_id: person_id("student", student_id),
                    }
                    .into(),
                );
            }
        }
        self.progress(&table);
        Ok(())
    }
}

impl RecordSource for CleverSftpSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.host.check_cancelled()?;
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        while batch.len() < BATCH_SIZE {
            if self.pending.is_empty() && !self.stages.is_empty() {
                // Between files is a good place to stop when asked.
                self.host.check_cancelled()?;
            }
            match self.next_record()? {
                Some(record) => batch.push(record),
                None => break,
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

impl Iterator for CleverSftpSource {
    type Item = Result<Record, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads a whole Clever SFTP folder into memory: for tests and small tools.
pub fn read_all(config: &Config, base_dir: &Path, host: Host) -> Result<Vec<Record>, PluginError> {
    CleverSftpSource::open(config, base_dir, host)?.collect()
}
