//! The ParentStudent file: which parent belongs to which student.

use roster_core::record::{Record, Relationship};
use roster_core::sdk::{encode_relationship, Host};
use roster_core::PluginError;

use super::enrollments::warn_ignored;
use super::people::required;
use super::{Reader, Roster};
use crate::config::Delimiter;
use crate::table::{DataFile, Row, Table};

pub struct Relationships {
    table: Table,
    parent: usize,
    student: usize,
    /// Not in the documented format, but where a school would say "Mother" or "Aunt".
    relationship: Option<usize>,
    row: Row,
}

impl Relationships {
    pub fn open(file: &DataFile, delimiter: Delimiter, host: &Host) -> Result<Self, PluginError> {
        let table = Table::open(file, delimiter, host, &[])?;
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
    /// the relationship. Two ParentIDs merged into one contact can make a pair twice:
    /// both go out, and the host keeps the first (as it does with any link sent twice).
    fn read<T>(
        &mut self,
        row: &Row,
        roster: &Roster,
        emit: impl FnOnce(&str, &str, Option<&str>) -> T,
    ) -> Result<T, PluginError> {
        let parent_id = required(&self.table, row, self.parent, "ParentID")?;
        let student_id = required(&self.table, row, self.student, "StudentID")?;
        let resolved = roster.parents.as_ref().and_then(|p| p.resolve(parent_id));
        let Some((_, canonical)) = resolved else {
            return Err(self.table.error(
                row,
                self.parent,
                format!(
                    "unknown ParentID `{parent_id}` (not in {})",
                    roster.parent_file
                ),
            ));
        };
        roster.check_student(&self.table, row, self.student)?;
        let relationship = Some(row.get_opt(self.relationship)).filter(|r| !r.is_empty());
        Ok(emit(canonical, student_id, relationship))
    }
}

const CONTACT_TYPE: &str = "parent";

impl Reader for Relationships {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        if !self.table.read_row(&mut self.row)? {
            return Ok(None);
        }
        let row = std::mem::take(&mut self.row);
        let read = self.read(&row, roster, |parent, student, relationship| Relationship {
            student_id_kind: None,
            parent_id: parent.to_string(),
            student_id: student.to_string(),
            relationship: relationship.map(str::to_string),
            contact_type: Some(CONTACT_TYPE.to_string()),
        });
        self.row = row;
        Ok(Some(read?.into()))
    }

    fn next_encoded(
        &mut self,
        roster: &mut Roster,
        out: &mut Vec<u8>,
    ) -> Result<bool, PluginError> {
        if !self.table.read_row(&mut self.row)? {
            return Ok(false);
        }
        let row = std::mem::take(&mut self.row);
        let read = self.read(&row, roster, |parent, student, relationship| {
            encode_relationship(parent, student, relationship, Some(CONTACT_TYPE), out)
        });
        self.row = row;
        read.map(|()| true)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}
