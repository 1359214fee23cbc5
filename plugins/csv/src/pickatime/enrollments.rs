//! The Enrollment file, in either documented layout: one row per (student, class), or
//! one row per student with a repeated `ClassID` column.

use std::collections::VecDeque;

use roster_core::record::{Enrollment, Record};
use roster_core::sdk::{encode_enrollment, Host};
use roster_core::PluginError;

use super::people::required;
use super::{Reader, Roster};
use crate::table::{DataFile, Row, Table};
use crate::text::TextFile;

pub struct Enrollments {
    table: Table,
    student: usize,
    classes: Vec<usize>,
    /// The columns of `row` whose enrollments are still to be emitted.
    ready: VecDeque<usize>,
    row: Row,
}

impl Enrollments {
    pub fn open(file: &DataFile, text: TextFile, host: &Host) -> Result<Self, PluginError> {
        let mut table = Table::from_text(file, text, host, &["ClassID"])?;
        let student = table.require(&["StudentID", "ClassID"])?[0];
        let classes = table.find_all("ClassID");
        if classes.len() > 1 {
            // Spreadsheets drop the empty cells after a student's last class.
            table.allow_short_rows();
        }
        warn_ignored(&table, &["StudentID", "ClassID"], host);
        Ok(Enrollments {
            table,
            student,
            classes,
            ready: VecDeque::new(),
            row: Row::default(),
        })
    }

    /// Checks the row, and readies its enrollments when they go out (always in a
    /// complete run; when its student's enrollments changed in a continuing one).
    fn read(&mut self, row: &Row, roster: &mut Roster) -> Result<(), PluginError> {
        let student = required(&self.table, row, self.student, "StudentID")?;
        let sends = roster.sends(|c| &c.enrolled, student);
        // A row a continuing run does not send is one the last run read and checked: it
        // can only have gone wrong through a student or class that changed.
        if sends || roster.sends(|c| &c.students, student) {
            roster.check_student(&self.table, row, self.student)?;
        }
        let one_per_row = self.classes.len() == 1;
        for &column in &self.classes {
            let class_id = match row.get(column) {
                "" if one_per_row => return Err(self.table.error(row, column, "empty ClassID")),
                "" => continue,
                class_id => class_id,
            };
            if (sends || roster.sends(|c| &c.classes, class_id))
                && !roster.classes.contains_key(class_id)
            {
                return Err(self.table.error(
                    row,
                    column,
                    format!("unknown ClassID `{class_id}` (not in the Class file)"),
                ));
            }
            if !sends {
                continue;
            }
            if let Some(changes) = &mut roster.changes {
                changes
                    .enrollments_gone
                    .remove(&(class_id.into(), student.into()));
            }
            // A pair listed twice goes out twice: the host writes a link once, however
            // often it comes (and keeps no more for it than the database's own key).
            self.ready.push_back(column);
        }
        Ok(())
    }

    /// Reads rows until one has enrollments to emit; `false` at the end of the file.
    fn fill(&mut self, roster: &mut Roster) -> Result<bool, PluginError> {
        while self.ready.is_empty() {
            // A continuing run reads in full only the rows of the students whose
            // enrollments changed, and of the students that changed when one of them
            // went: every other row is one the last run checked, naming students and
            // classes that are all still there (no class went). At nyc that is 1.1
            // million rows not split into cells, nor their classes looked up.
            let more = match roster.changes.as_ref().filter(|c| !c.went.classes) {
                Some(changes) => self
                    .table
                    .read_row_where(&mut self.row, self.student, |id| {
                        changes.enrolled.contains(id)
                            || (changes.went.students && changes.students.contains(id))
                    })?,
                None => self.table.read_row(&mut self.row)?,
            };
            if !more {
                return Ok(false);
            }
            let row = std::mem::take(&mut self.row);
            let read = self.read(&row, roster);
            self.row = row;
            read?;
        }
        Ok(true)
    }
}

impl Reader for Enrollments {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        if !self.fill(roster)? {
            return Ok(None);
        }
        let column = self.ready.pop_front().expect("filled");
        Ok(Some(
            Enrollment {
                student_id_kind: None,
                class_id: self.row.get(column).to_string(),
                student_id: self.row.get(self.student).to_string(),
            }
            .into(),
        ))
    }

    fn next_encoded(
        &mut self,
        roster: &mut Roster,
        out: &mut Vec<u8>,
    ) -> Result<bool, PluginError> {
        if !self.fill(roster)? {
            return Ok(false);
        }
        let column = self.ready.pop_front().expect("filled");
        encode_enrollment(self.row.get(column), self.row.get(self.student), out);
        Ok(true)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}

/// Link files have nowhere to put other columns; say so instead of dropping them quietly.
pub(super) fn warn_ignored(table: &Table, known: &[&str], host: &Host) {
    let other: Vec<String> = table
        .other_columns(known)
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    if !other.is_empty() {
        host.warn(&format!(
            "{}: ignoring column{} {}",
            table.file.shown,
            if other.len() > 1 { "s" } else { "" },
            other.join(", ")
        ));
    }
}
