//! The Class file: classes, and the teachers who hold them.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use roster_core::record::{Class, ClassTeacher, Record};
use roster_core::sdk::Host;
use roster_core::PluginError;

use super::people::{attributes, non_empty, required};
use super::{Reader, Roster};
use crate::table::{DataFile, Row, Table};
use crate::text::TextFile;

/// A class as its first row described it, to notice later rows that disagree. A
/// district has hundreds of thousands: its details are kept as a hash (only a notice
/// depends on them) and its teachers by the line that defines them.
pub struct ClassSeen {
    line: u64,
    details: u64,
    teachers: Vec<u64>,
}

pub struct Classes {
    table: Table,
    id: usize,
    teacher: usize,
    name: Option<usize>,
    group: Option<usize>,
    ptan: Option<usize>,
    other: Vec<(usize, String)>,
    row: Row,
}

impl Classes {
    /// How many classes to size the roster's index for (co-taught ones have more rows).
    pub fn rows_hint(&self) -> usize {
        self.table.rows_hint()
    }

    pub fn open(file: &DataFile, text: TextFile, host: &Host) -> Result<Self, PluginError> {
        let table = Table::from_text(file, text, host, &[])?;
        let [id, teacher] = table.require(&["ClassID", "TeacherID"])?[..] else {
            unreachable!("require returns one index per name")
        };
        Ok(Classes {
            id,
            teacher,
            name: table.find("ClassName"),
            group: table.find("GroupName"),
            ptan: table.find("PTAN"),
            other: table.other_columns(&["ClassID", "TeacherID", "ClassName", "GroupName", "PTAN"]),
            table,
            row: Row::default(),
        })
    }

    /// The class, the first time its ClassID is seen; every row adds its teacher. A
    /// continuing run sends the class and its teachers only when the class is dirty.
    fn read(&self, row: &Row, roster: &mut Roster) -> Result<Option<Class>, PluginError> {
        let id = required(&self.table, row, self.id, "ClassID")?;
        let teacher = required(&self.table, row, self.teacher, "TeacherID")?;
        let Some(&teacher_line) = roster.teachers.get(teacher) else {
            return Err(self.table.error(
                row,
                self.teacher,
                format!(
                    "unknown TeacherID `{teacher}` (not in {})",
                    roster.teacher_file
                ),
            ));
        };
        let ptan = match (self.ptan, row.get_opt(self.ptan)) {
            (_, "") => None,
            (Some(column), text) => Some(text.parse::<u32>().map_err(|_| {
                self.table.error(
                    row,
                    column,
                    format!("PTAN must be a whole number of appointments, found `{text}`"),
                )
            })?),
            (None, _) => None,
        };
        let name = non_empty(row.get_opt(self.name)).unwrap_or_else(|| id.to_string());
        let group = non_empty(row.get_opt(self.group));
        let details = (name, group, ptan);
        let details_hash = FixedState::with_seed(0).hash_one(&details);

        if let Some(seen) = roster.classes.get_mut(id) {
            if seen.details != details_hash {
                roster.host.warn(&format!(
                    "{}:{}: ClassID `{id}` repeats line {} with another ClassName, GroupName or PTAN; keeping line {}'s",
                    self.table.file.shown, row.line, seen.line, seen.line
                ));
            }
            if !seen.teachers.contains(&teacher_line) {
                seen.teachers.push(teacher_line);
                if roster.sends(|c| &c.classes, id) {
                    roster.links.push_back(link(id, teacher, false));
                }
            }
            return Ok(None);
        }
        let sends = roster.sends(|c| &c.classes, id);
        if sends {
            roster.links.push_back(link(id, teacher, true));
        }
        roster.classes.insert(
            id.into(),
            ClassSeen {
                line: row.line,
                details: details_hash,
                teachers: vec![teacher_line],
            },
        );
        if !sends {
            return Ok(None);
        }
        let (name, group_name, appointments_per_parent) = details;
        Ok(Some(Class {
            source_id: id.to_string(),
            name,
            school_id: Some(roster.school_id.clone()),
            term_id: roster.term_id.clone(),
            group_name,
            appointments_per_parent,
            attributes: attributes(row, &self.other),
            ..Default::default()
        }))
    }
}

fn link(class_id: &str, teacher_id: &str, primary: bool) -> ClassTeacher {
    ClassTeacher {
        teacher_id_kind: None,
        class_id: class_id.to_string(),
        teacher_id: teacher_id.to_string(),
        primary,
    }
}

impl Reader for Classes {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        while self.table.read_row(&mut self.row)? {
            if let Some(class) = self.read(&self.row, roster)? {
                return Ok(Some(class.into()));
            }
        }
        Ok(None)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}
