//! The ParentStudent file: which parent belongs to which student.

use roster_core::record::{Record, Relationship};
use roster_core::sdk::Host;
use roster_core::PluginError;

use super::enrollments::warn_ignored;
use super::people::{non_empty, required};
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

    fn read(&mut self, row: &Row, roster: &Roster) -> Result<Option<Relationship>, PluginError> {
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
        Ok(Some(Relationship {
            parent_id: canonical.to_string(),
            student_id: student_id.to_string(),
            relationship: non_empty(row.get_opt(self.relationship)),
            contact_type: Some("parent".to_string()),
        }))
    }
}

impl Reader for Relationships {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        while self.table.read_row(&mut self.row)? {
            let row = std::mem::take(&mut self.row);
            let read = self.read(&row, roster);
            self.row = row;
            if let Some(relationship) = read? {
                return Ok(Some(relationship.into()));
            }
        }
        Ok(None)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}
