//! What an import did, per entity: the numbers shown at the end and kept in `sync_runs`.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityName {
    Schools,
    Terms,
    Classes,
    Students,
    Teachers,
    Parents,
    Staff,
    Enrollments,
    ClassTeachers,
    Relationships,
}

impl EntityName {
    pub const ALL: [EntityName; 10] = [
        EntityName::Schools,
        EntityName::Terms,
        EntityName::Classes,
        EntityName::Students,
        EntityName::Teachers,
        EntityName::Parents,
        EntityName::Staff,
        EntityName::Enrollments,
        EntityName::ClassTeachers,
        EntityName::Relationships,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EntityName::Schools => "schools",
            EntityName::Terms => "terms",
            EntityName::Classes => "classes",
            EntityName::Students => "students",
            EntityName::Teachers => "teachers",
            EntityName::Parents => "parents",
            EntityName::Staff => "staff",
            EntityName::Enrollments => "enrollments",
            EntityName::ClassTeachers => "class teachers",
            EntityName::Relationships => "relationships",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub entities: std::collections::BTreeMap<EntityName, Counts>,
    /// Records of kinds this roster does not know (from a newer plugin), skipped.
    pub unknown_records: u64,
    /// Records outside the event's school and terms, skipped.
    pub out_of_scope: u64,
    /// Incoming people attached to a contact from another source instead of duplicated.
    pub linked: u64,
    /// The run continued from the source's last checkpoint: it read only what changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// What the dedupe stage found (kept out of `sync_runs`: the report files hold it).
    #[serde(skip)]
    pub findings: Vec<super::dedupe::Conflict>,
}

impl Summary {
    pub fn counts(&mut self, entity: EntityName) -> &mut Counts {
        self.entities.entry(entity).or_default()
    }

    pub fn get(&self, entity: EntityName) -> Counts {
        self.entities.get(&entity).copied().unwrap_or_default()
    }

    pub fn total(&self) -> Counts {
        self.entities
            .values()
            .fold(Counts::default(), |a, b| Counts {
                inserted: a.inserted + b.inserted,
                updated: a.updated + b.updated,
                unchanged: a.unchanged + b.unchanged,
                deactivated: a.deactivated + b.deactivated,
            })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>13}",
            "entity", "inserted", "updated", "unchanged", "deactivated"
        )?;
        for entity in EntityName::ALL {
            let c = self.get(entity);
            if c == Counts::default() {
                continue;
            }
            writeln!(
                f,
                "{:<16}{:>10}{:>10}{:>11}{:>13}",
                entity.label(),
                c.inserted,
                c.updated,
                c.unchanged,
                c.deactivated
            )?;
        }
        let t = self.total();
        write!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>13}",
            "total", t.inserted, t.updated, t.unchanged, t.deactivated
        )?;
        if self.continued {
            // Its "unchanged" are what it sent again, not what the roster has.
            write!(
                f,
                "\n(continued from the last run: only what changed was read)"
            )?;
        }
        Ok(())
    }
}
