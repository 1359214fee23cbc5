//! The Student and Teacher files.

use std::collections::BTreeMap;

use roster_core::record::{Identifier, Person, Record, Role};
use roster_core::sdk::Host;
use roster_core::PluginError;

use super::{Reader, Roster, StudentSeen};
use crate::dates::iso_date;
use crate::hash::FastMap;
use crate::table::{DataFile, Row, RowsAhead, Table};
use crate::text::TextFile;

pub struct Students {
    table: Table,
    id: usize,
    first: usize,
    last: usize,
    security: usize,
    action: Option<usize>,
    grade: Option<usize>,
    email: Option<usize>,
    birth_date: Option<usize>,
    other: Vec<(usize, String)>,
    /// Rows read ahead, each with its id's hash (its slot in the index asked for).
    ahead: RowsAhead<u64>,
    /// A continuing run under the last run's header: the rows of students it does not
    /// send are indexed from their id and Action cells, without being read whole.
    skim: bool,
    row: Row,
}

impl Students {
    pub fn open(file: &DataFile, text: TextFile, host: &Host) -> Result<Self, PluginError> {
        let table = Table::from_text(file, text, host, &[])?;
        let [id, first, last, security] =
            table.require(&["StudentID", "First", "Last", "SecurityValue"])?[..]
        else {
            unreachable!("require returns one index per name")
        };
        let birth_column = ["DOB", "BirthDate"]
            .into_iter()
            .find(|c| table.find(c).is_some());
        let mut known = vec![
            "StudentID",
            "First",
            "Last",
            "SecurityValue",
            "Action",
            "Grade",
            "Email",
        ];
        known.extend(birth_column);
        Ok(Students {
            id,
            first,
            last,
            security,
            action: table.find("Action"),
            grade: table.find("Grade"),
            email: table.find("Email"),
            birth_date: birth_column.and_then(|c| table.find(c)),
            other: table.other_columns(&known),
            table,
            ahead: RowsAhead::default(),
            skim: false,
            row: Row::default(),
        })
    }

    /// A continuing run whose Student file has the header it had: a row of a student it
    /// does not send is one the last run read and checked as it is, so only what later
    /// rows and files look up is taken from it (its id, whether it deletes, its line),
    /// not the rest of its cells: at nyc, where 1% of the students changed, two fifths of
    /// the plugin's time on the file.
    pub fn skim_unchanged(&mut self) {
        // Where the text is read through the CSV reader (it has a quote), every row is
        // read whole anyway, and the rows read ahead pay better.
        self.skim = self.table.scanner().is_some();
    }

    /// [`Reader::next`] of a run that skims (see [`Students::skim_unchanged`]).
    fn next_skimming(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        loop {
            // A row that is not plainly one of these is read whole, and what it holds
            // (a new id, another Action, a duplicate) is checked as in any run.
            let mut take = |line: u64, id: &str, action: &str| {
                if roster.sends(|c| &c.students, id) {
                    return false;
                }
                let Some(removed) = removes(action) else {
                    return false;
                };
                let hash = roster.students.hash(id);
                if !roster.students.insert_hashed(id, hash).1 {
                    return false;
                }
                roster.student_seen.push(StudentSeen { line, removed });
                true
            };
            match self.action {
                Some(action) => self.table.skim([self.id, action], |line, [id, action]| {
                    take(line, id, action)
                }),
                None => self.table.skim([self.id], |line, [id]| take(line, id, "")),
            }
            let mut row = std::mem::take(&mut self.row);
            // `None` at the end of the file; `Some(None)` for a row it does not send.
            let read = match self.table.read_row(&mut row) {
                Ok(true) => {
                    let hash = roster.students.hash(row.get(self.id));
                    self.person(&row, hash, roster).map(Some)
                }
                Ok(false) => Ok(None),
                Err(error) => Err(error),
            };
            self.row = row;
            match read? {
                Some(Some(person)) => return Ok(Some(person.into())),
                Some(None) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next student to send, each row read whole, a few ahead.
    fn next_read_ahead(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        let id = self.id;
        while let Some((row, hash)) = self.ahead.next(&mut self.table, |row| {
            let hash = roster.students.hash(row.get(id));
            roster.students.prefetch(hash);
            hash
        })? {
            let person = self.person(&row, hash, roster);
            self.ahead.done_with(row);
            if let Some(person) = person? {
                return Ok(Some(person.into()));
            }
        }
        Ok(None)
    }

    /// The row's student, checked and indexed; `None` when a continuing run does not
    /// send it.
    /// `hash` is the id's in the roster's index of students.
    fn person(
        &self,
        row: &Row,
        hash: u64,
        roster: &mut Roster,
    ) -> Result<Option<Person>, PluginError> {
        let id = required(&self.table, row, self.id, "StudentID")?;
        let action = row.get_opt(self.action);
        let Some(removed) = removes(action) else {
            return Err(self.table.error(
                row,
                self.action.unwrap_or(0),
                format!(
                    "unknown Action `{}`: expected `delete`, `update` or nothing",
                    action.to_ascii_lowercase()
                ),
            ));
        };
        // A deletion only has to say whom it deletes.
        let (first, last) = if removed {
            (row.get(self.first), row.get(self.last))
        } else {
            (
                required(&self.table, row, self.first, "First")?,
                required(&self.table, row, self.last, "Last")?,
            )
        };
        let (number, new) = roster.students.insert_hashed(id, hash);
        if !new {
            return Err(self.table.error(
                row,
                self.id,
                format!(
                    "duplicate StudentID `{id}` (also on line {})",
                    roster.student_seen[number].line
                ),
            ));
        }
        roster.student_seen.push(StudentSeen {
            line: row.line,
            removed,
        });
        if !roster.sends(|c| &c.students, id) {
            return Ok(None);
        }
        let security_value = non_empty(row.get(self.security));
        // pickAtime's SecurityValue is typically the date of birth.
        let birth_date = match non_empty(row.get_opt(self.birth_date)) {
            Some(text) => Some(iso_date(&text).unwrap_or(text)),
            None => security_value.as_deref().and_then(iso_date),
        };
        Ok(Some(Person {
            source_id: id.to_string(),
            role: Role::Student as i32,
            first_name: first.to_string(),
            last_name: last.to_string(),
            email: non_empty(row.get_opt(self.email)),
            birth_date,
            grade: non_empty(row.get_opt(self.grade)),
            security_value,
            school_ids: vec![roster.school_id.clone()],
            identifiers: vec![identifier("StudentID", id)],
            removed,
            attributes: attributes(row, &self.other),
            ..Default::default()
        }))
    }
}

impl Students {
    /// How many students to size the roster's index for.
    pub fn rows_hint(&self) -> usize {
        self.table.rows_hint()
    }
}

impl Teachers {
    pub fn rows_hint(&self) -> usize {
        self.table.rows_hint()
    }
}

/// Whether a student row's Action removes the student (`delete`), keeps it (empty,
/// `add`, `update`), or is none of these (`None`); any case.
fn removes(action: &str) -> Option<bool> {
    if action.is_empty()
        || action.eq_ignore_ascii_case("add")
        || action.eq_ignore_ascii_case("update")
    {
        Some(false)
    } else if action.eq_ignore_ascii_case("delete") {
        Some(true)
    } else {
        None
    }
}

impl Reader for Students {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        let next = if self.skim {
            self.next_skimming(roster)?
        } else {
            self.next_read_ahead(roster)?
        };
        if next.is_none() && self.table.rows == 0 {
            roster.host.warn(&format!(
                "{}: the file has no students",
                self.table.file.shown
            ));
        }
        Ok(next)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}

pub struct Teachers {
    table: Table,
    id: usize,
    first: usize,
    last: usize,
    email: usize,
    room: usize,
    password: Option<usize>,
    password_warned: bool,
    other: Vec<(usize, String)>,
    /// Lowercased email → (TeacherID, line): pickAtime refuses two teachers with one email.
    emails: FastMap<String, (Box<str>, u64)>,
    row: Row,
}

impl Teachers {
    pub fn open(file: &DataFile, text: TextFile, host: &Host) -> Result<Self, PluginError> {
        let table = Table::from_text(file, text, host, &[])?;
        let [id, first, last, email, room] =
            table.require(&["TeacherID", "First", "Last", "Email", "Room"])?[..]
        else {
            unreachable!("require returns one index per name")
        };
        Ok(Teachers {
            id,
            first,
            last,
            email,
            room,
            password: table.find("Password"),
            password_warned: false,
            other: table.other_columns(&[
                "TeacherID",
                "First",
                "Last",
                "Email",
                "Room",
                "Password",
            ]),
            emails: FastMap::default(),
            table,
            row: Row::default(),
        })
    }

    fn person(&mut self, row: &Row, roster: &mut Roster) -> Result<Option<Person>, PluginError> {
        let id = required(&self.table, row, self.id, "TeacherID")?;
        let first = required(&self.table, row, self.first, "First")?;
        let last = required(&self.table, row, self.last, "Last")?;
        if let Some(line) = roster.teachers.get(id) {
            return Err(self.table.error(
                row,
                self.id,
                format!("duplicate TeacherID `{id}` (also on line {line})"),
            ));
        }
        let email = non_empty(row.get(self.email));
        if let Some(email) = &email {
            let key = email.to_lowercase();
            if let Some((other, line)) = self.emails.get(&key) {
                return Err(self.table.error(
                    row,
                    self.email,
                    format!("Email `{email}` is already TeacherID `{other}`'s (line {line}); teacher emails must be unique"),
                ));
            }
            self.emails.insert(key, (id.into(), row.line));
        }
        if !self.password_warned && !row.get_opt(self.password).is_empty() {
            self.password_warned = true;
            roster.host.warn(&format!(
                "{}: the Password column is ignored: roster never imports passwords",
                self.table.file.name
            ));
        }
        roster.teachers.insert(id.into(), row.line);
        if !roster.sends(|c| &c.teachers, id) {
            return Ok(None);
        }
        Ok(Some(Person {
            source_id: id.to_string(),
            role: Role::Teacher as i32,
            first_name: first.to_string(),
            last_name: last.to_string(),
            email,
            room: non_empty(row.get(self.room)),
            school_ids: vec![roster.school_id.clone()],
            identifiers: vec![identifier("TeacherID", id)],
            attributes: attributes(row, &self.other),
            ..Default::default()
        }))
    }
}

impl Reader for Teachers {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        while self.table.read_row(&mut self.row)? {
            let row = std::mem::take(&mut self.row);
            let person = self.person(&row, roster);
            self.row = row;
            if let Some(person) = person? {
                return Ok(Some(person.into()));
            }
        }
        Ok(None)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}

/// The field in `index`, or an error at it when it is empty.
pub(super) fn required<'r>(
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

pub(super) fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

pub(super) fn identifier(kind: &str, value: &str) -> Identifier {
    Identifier {
        kind: kind.to_string(),
        value: value.to_string(),
    }
}

pub(super) fn attributes(row: &Row, columns: &[(usize, String)]) -> BTreeMap<String, String> {
    columns
        .iter()
        .filter(|(i, _)| !row.get(*i).is_empty())
        .map(|(i, name)| (name.clone(), row.get(*i).to_string()))
        .collect()
}
