//! The ParentStudent file: which parent belongs to which student.

use roster_core::record::{Record, Relationship};
use roster_core::sdk::{encode_relationship, Host};
use roster_core::PluginError;

use super::enrollments::warn_ignored;
use super::people::required;
use super::{Reader, Roster};
use crate::table::{DataFile, Row, Table};
use crate::text::TextFile;

pub struct Relationships {
    table: Table,
    parent: usize,
    student: usize,
    /// Not in the documented format, but where a school would say "Mother" or "Aunt".
    relationship: Option<usize>,
    row: Row,
}

impl Relationships {
    pub fn open(file: &DataFile, text: TextFile, host: &Host) -> Result<Self, PluginError> {
        let table = Table::from_text(file, text, host, &[])?;
        let [parent, student] = table.require(&["ParentID", "StudentID"])?[..] else {
            unreachable!("require returns one index per name")
        };
        warn_ignored(&table, &["ParentID", "StudentID", "Relationship"], host);
        Ok(Relationships {
            parent,
            student,
            relationship: table.find("Relationship"),
            table,
            row: Row::default(),
        })
    }

    /// `emit` makes the row's relationship of the contact's ParentID, the StudentID and
    /// the relationship; `None` when a continuing run does not send it (the contact's
    /// relationships did not change). Two ParentIDs merged into one contact can make a
    /// pair twice: both go out, and the host keeps the first (as with any link sent twice).
    fn read<T>(
        &mut self,
        row: &Row,
        roster: &Roster,
        emit: impl FnOnce(&str, &str, Option<&str>) -> T,
    ) -> Result<Option<T>, PluginError> {
        let parent_id = required(&self.table, row, self.parent, "ParentID")?;
        let student_id = required(&self.table, row, self.student, "StudentID")?;
        if let Some(changes) = &roster.changes {
            if !changes.related.contains(parent_id) && !changes.owned.contains(parent_id) {
                // A row the last run read and checked, of a contact whose relationships
                // did not change: it can only have gone wrong through what changed.
                if changes.parent_ids.contains(parent_id) && roster.resolve(parent_id).is_none() {
                    return Err(self.unknown_parent(row, roster, parent_id));
                }
                if changes.students.contains(student_id) {
                    roster.check_student(&self.table, row, self.student)?;
                }
                return Ok(None);
            }
        }
        let Some(canonical) = roster.resolve(parent_id) else {
            return Err(self.unknown_parent(row, roster, parent_id));
        };
        roster.check_student(&self.table, row, self.student)?;
        if !roster.sends(|c| &c.owners, canonical) {
            return Ok(None);
        }
        let relationship = Some(row.get_opt(self.relationship)).filter(|r| !r.is_empty());
        Ok(Some(emit(canonical, student_id, relationship)))
    }
}

impl Relationships {
    fn unknown_parent(&self, row: &Row, roster: &Roster, parent_id: &str) -> PluginError {
        self.table.error(
            row,
            self.parent,
            format!(
                "unknown ParentID `{parent_id}` (not in {})",
                roster.parent_file
            ),
        )
    }
}

const CONTACT_TYPE: &str = "parent";

impl Reader for Relationships {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        while self.table.read_row(&mut self.row)? {
            let row = std::mem::take(&mut self.row);
            let read = self.read(&row, roster, |parent, student, relationship| Relationship {
                student_id_kind: None,
                parent_id: parent.to_string(),
                student_id: student.to_string(),
                relationship: relationship.map(str::to_string),
                contact_type: Some(CONTACT_TYPE.to_string()),
            });
            self.row = row;
            if let Some(link) = read? {
                return Ok(Some(link.into()));
            }
        }
        Ok(None)
    }

    fn next_encoded(
        &mut self,
        roster: &mut Roster,
        out: &mut Vec<u8>,
    ) -> Result<bool, PluginError> {
        while self.table.read_row(&mut self.row)? {
            let row = std::mem::take(&mut self.row);
            let read = self.read(&row, roster, |parent, student, relationship| {
                encode_relationship(parent, student, relationship, Some(CONTACT_TYPE), out)
            });
            self.row = row;
            if read?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}
