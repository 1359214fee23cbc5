//! A continuing run's people, looked up ahead of the job on a connection of their own.
//!
//! A continuing run is sent only what changed, so the job knows none of the people its
//! records name until it asks the roster, one point query each (`Apply::ensure`, and
//! `Apply::source_id_of` for a link that names a person by another identifier). Those
//! queries were over a quarter of a nightly Clever sync's job thread and a fifth of a
//! file re-sync's, while the other core sat idle for much of the Clever sync (item 72 in
//! docs/performance-history.md). Here a thread between the reading thread and the job
//! asks them of the roster as last committed (see `alongside.rs`: the job's own writes
//! are invisible to it), and each batch reaches the job with the answers for its
//! records.
//!
//! For each person the run sends, it also reads what the job asks of the contact when
//! the person changed (its identifiers from the source, `Apply::identifiers_had`), and
//! whether the contact has another person of the source; for each teacher's or
//! parent's email, who held it. With those the dedupe stage's last check asks the
//! roster only for the emails the run's own writes may have changed (`UnsentCheck`;
//! item 73).
//!
//! An answer is what the job's own query would have found at the start of the run.
//! The job takes one just before the record it belongs to, and only while it still
//! holds (`Apply::offer`): for a name the job has not looked up yet, and a contact the
//! run has written nothing of. Otherwise the job asks its own connection, as it did
//! before. Answers that find nothing are not sent, and the job asks for those names
//! itself.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use roster_core::record::{Entity, Kind, Person, Record, Role};
use rusqlite::{Connection, OptionalExtension};

use super::apply::{IDENTIFIERS_OF_CONTACT, PERSON_BY_SOURCE_ID, SOURCE_ID_BY_IDENTIFIER};
use super::dedupe::{lower, EMAIL_HOLDERS};
use super::{Batch, NextBatch};

/// What the roster held for one name a record gives, before the run.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Found {
    /// A link's person named by another identifier (`kind`, `value`): their source id, and
    /// the contact the identifier belongs to.
    Identifier {
        kind: String,
        value: String,
        source_id: String,
        contact_id: i64,
    },
    /// A person by source id, as `Apply::ensure` loads one.
    Person {
        source_id: String,
        contact_id: i64,
        fingerprint: i64,
        active: bool,
        role: String,
    },
    /// What the job asks of the contact of a person the run sends.
    Contact {
        contact_id: i64,
        /// The person's source id.
        person: String,
        /// The contact has no row of this source but the person's.
        alone: bool,
        /// The contact's identifiers from this source (`Apply::identifiers_had`).
        identifiers: Vec<(String, String)>,
    },
    /// The people of this source whose contact had a teacher's or parent's email the run
    /// sends (`dedupe::EMAIL_HOLDERS`), for the dedupe stage's last check.
    EmailHolders { email: String, holders: Vec<String> },
}

/// A [`Found`] and the index of the record in its batch it is for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ahead {
    pub record: usize,
    pub found: Found,
}

/// Starts the thread: batches from `upstream` go on to `downstream`, each with what the
/// roster on `conn` (`alongside::second_connection`) holds for its records' names. It ends after the last batch, or when
/// either channel closes.
pub(super) fn start(
    conn: Connection,
    source: String,
    upstream: Receiver<NextBatch>,
    downstream: Sender<NextBatch>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("people ahead".into())
        .spawn(move || {
            let mut lookups = Some(Lookups::new(source));
            for next in upstream {
                let next = match next {
                    Ok(Some(mut batch)) => {
                        if let Some(found) = &mut lookups {
                            if let Err(error) = found.of_batch(&conn, &mut batch) {
                                // The job then asks for each name itself, as it would
                                // without this thread: slower, never different.
                                tracing::debug!("people looked up ahead no further: {error}");
                                batch.ahead.clear();
                                lookups = None;
                            }
                        }
                        Ok(Some(batch))
                    }
                    other => other,
                };
                let last = !matches!(next, Ok(Some(_)));
                if downstream.send(next).is_err() || last {
                    break;
                }
            }
        })
        // As for the job's reading thread: no thread, no import.
        .expect("a thread to look people up ahead of the job")
}

/// The names already looked up, so that each is asked once.
struct Lookups {
    source: String,
    identifiers: HashSet<(String, String)>,
    /// By source id: the contact found, if one was.
    people: HashMap<String, Option<i64>>,
    contacts: HashSet<i64>,
    emails: HashSet<String>,
}

impl Lookups {
    fn new(source: String) -> Self {
        Lookups {
            source,
            identifiers: HashSet::new(),
            people: HashMap::new(),
            contacts: HashSet::new(),
            emails: HashSet::new(),
        }
    }

    fn of_batch(&mut self, conn: &Connection, batch: &mut Batch) -> rusqlite::Result<()> {
        for (record, named) in batch.records.iter().enumerate() {
            for (id, kind) in names(named) {
                let source_id = match kind {
                    None => Some(id.to_string()),
                    Some(kind) => self.identifier(conn, kind, id, record, &mut batch.ahead)?,
                };
                if let Some(source_id) = source_id {
                    self.person(conn, source_id, record, &mut batch.ahead)?;
                }
            }
            if let Some(Kind::Person(person)) = &named.kind {
                if !person.removed {
                    self.contact(conn, &person.source_id, record, &mut batch.ahead)?;
                }
                self.email_holders(conn, person, record, &mut batch.ahead)?;
            }
        }
        Ok(())
    }

    /// The source id `kind` `value` names, if it was looked up here for the first time
    /// and found.
    fn identifier(
        &mut self,
        conn: &Connection,
        kind: &str,
        value: &str,
        record: usize,
        ahead: &mut Vec<Ahead>,
    ) -> rusqlite::Result<Option<String>> {
        if !self
            .identifiers
            .insert((kind.to_string(), value.to_string()))
        {
            return Ok(None);
        }
        let found: Option<(String, i64)> = conn
            .prepare_cached(SOURCE_ID_BY_IDENTIFIER)?
            .query_row(rusqlite::params![kind, value, self.source], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((source_id, contact_id)) = found else {
            return Ok(None);
        };
        ahead.push(Ahead {
            record,
            found: Found::Identifier {
                kind: kind.to_string(),
                value: value.to_string(),
                source_id: source_id.clone(),
                contact_id,
            },
        });
        Ok(Some(source_id))
    }

    fn person(
        &mut self,
        conn: &Connection,
        source_id: String,
        record: usize,
        ahead: &mut Vec<Ahead>,
    ) -> rusqlite::Result<()> {
        if self.people.contains_key(&source_id) {
            return Ok(());
        }
        let found = conn
            .prepare_cached(PERSON_BY_SOURCE_ID)?
            .query_row(rusqlite::params![self.source, source_id], |r| {
                Ok(Found::Person {
                    source_id: source_id.clone(),
                    contact_id: r.get(0)?,
                    fingerprint: r.get(1)?,
                    active: r.get(2)?,
                    role: r.get(3)?,
                })
            })
            .optional()?;
        let contact_id = match &found {
            Some(Found::Person { contact_id, .. }) => Some(*contact_id),
            _ => None,
        };
        self.people.insert(source_id, contact_id);
        if let Some(found) = found {
            ahead.push(Ahead { record, found });
        }
        Ok(())
    }

    /// For a person record, what the job asks of its contact if the person changed:
    /// once per contact, and only for a person sent, not one only named by a link.
    fn contact(
        &mut self,
        conn: &Connection,
        source_id: &str,
        record: usize,
        ahead: &mut Vec<Ahead>,
    ) -> rusqlite::Result<()> {
        let Some(&Some(contact_id)) = self.people.get(source_id) else {
            return Ok(());
        };
        if !self.contacts.insert(contact_id) {
            return Ok(());
        }
        let others: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM contact_sources
                                WHERE contact_id = ?1 AND source = ?2 AND source_id != ?3)",
            )?
            .query_row(rusqlite::params![contact_id, self.source, source_id], |r| {
                r.get(0)
            })?;
        let identifiers = conn
            .prepare_cached(IDENTIFIERS_OF_CONTACT)?
            .query_map(rusqlite::params![contact_id, self.source], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        ahead.push(Ahead {
            record,
            found: Found::Contact {
                contact_id,
                person: source_id.to_string(),
                alone: !others,
                identifiers,
            },
        });
        Ok(())
    }

    /// Who held a teacher's or parent's email before the run, once per email.
    fn email_holders(
        &mut self,
        conn: &Connection,
        person: &Person,
        record: usize,
        ahead: &mut Vec<Ahead>,
    ) -> rusqlite::Result<()> {
        if !matches!(person.role(), Role::Teacher | Role::Parent) {
            return Ok(());
        }
        // As the dedupe stage gives it to its check.
        let Some(email) = person.email.as_deref().map(lower).filter(|e| !e.is_empty()) else {
            return Ok(());
        };
        if self.emails.contains(&email) {
            return Ok(());
        }
        let holders = conn
            .prepare_cached(EMAIL_HOLDERS)?
            .query_map(rusqlite::params![email, self.source], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        self.emails.insert(email.clone());
        ahead.push(Ahead {
            record,
            found: Found::EmailHolders { email, holders },
        });
        Ok(())
    }
}

/// The people `record` names, as (id, the kind of identifier it is when not the source
/// id), in the order the job looks them up.
fn names(record: &Record) -> impl Iterator<Item = (&str, Option<&str>)> {
    fn by_id(id: &str) -> Option<(&str, Option<&str>)> {
        Some((id, None))
    }
    let named: [Option<(&str, Option<&str>)>; 2] = match &record.kind {
        Some(Kind::Person(person)) => [by_id(&person.source_id), None],
        Some(Kind::Enrollment(link)) => [
            Some((&link.student_id, link.student_id_kind.as_deref())),
            None,
        ],
        Some(Kind::ClassTeacher(link)) => [
            Some((&link.teacher_id, link.teacher_id_kind.as_deref())),
            None,
        ],
        Some(Kind::Relationship(link)) => [
            by_id(&link.parent_id),
            Some((&link.student_id, link.student_id_kind.as_deref())),
        ],
        Some(Kind::Removal(removal)) => {
            let other = Some((removal.other_id.as_str(), removal.other_id_kind.as_deref()));
            match Entity::try_from(removal.entity) {
                Ok(Entity::Students | Entity::Teachers | Entity::Parents | Entity::Staff) => {
                    [by_id(&removal.source_id), None]
                }
                Ok(Entity::Relationships) => [by_id(&removal.source_id), other],
                Ok(Entity::Enrollments | Entity::ClassTeachers) => [other, None],
                _ => [None, None],
            }
        }
        _ => [None, None],
    };
    named.into_iter().flatten()
}
