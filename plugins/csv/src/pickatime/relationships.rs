//! The ParentStudent file: which parent belongs to which student.

use roster_core::record::{Record, Relationship};
use roster_core::sdk::{encode_relationship, Host};
use roster_core::PluginError;

use super::enrollments::warn_ignored;
use super::people::required;
use super::{first_time, Reader, Roster};
use crate::config::Delimiter;
use crate::hash::PairSet;
use crate::table::{DataFile, Row, Table};

pub struct Relationships {
    table: Table,
    parent: usize,
    student: usize,
    /// Not in the documented format, but where a school would say "Mother" or "Aunt".
    relationship: Option<usize>,
    seen: PairSet,
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
            seen: PairSet::default(),
            table,
            row: Row::default(),
        })
    }

    /// `emit` makes the row's relationship of the contact's ParentID, the StudentID and
    /// the relationship, unless it was emitted already.
    fn read<T>(
        &mut self,
        row: &Row,
        roster: &Roster,
        emit: impl FnOnce(&str, &str, Option<&str>) -> T,
    ) -> Result<Option<T>, PluginError> {
        let parent_id = required(&self.table, row, self.parent, "ParentID")?;
        let student_id = required(&self.table, row, self.student, "StudentID")?;
        let resolved = roster.parents.as_ref().and_then(|p| p.resolve(parent_id));
        let Some((parent, canonical)) = resolved else {
            return Err(self.table.error(
                row,
                self.parent,
                format!(
                    "unknown ParentID `{parent_id}` (not in {})",
                    roster.parent_file
                ),
            ));
        };
        let student = roster.student(&self.table, row, self.student)?;
        let parent = u32::try_from(parent).expect("fewer than 4 billion parents");
        if !first_time(&mut self.seen, parent, student) {
            return Ok(None);
        }
        let relationship = Some(row.get_opt(self.relationship)).filter(|r| !r.is_empty());
        Ok(Some(emit(canonical, student_id, relationship)))
    }
}

const CONTACT_TYPE: &str = "parent";

impl Reader for Relationships {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        while self.table.read_row(&mut self.row)? {
            let row = std::mem::take(&mut self.row);
            let read = self.read(&row, roster, |parent, student, relationship| Relationship {
                parent_id: parent.to_string(),
                student_id: student.to_string(),
                relationship: relationship.map(str::to_string),
                contact_type: Some(CONTACT_TYPE.to_string()),
            });
            self.row = row;
            if let Some(relationship) = read? {
                return Ok(Some(relationship.into()));
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
