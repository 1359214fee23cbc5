//! The dedupe stage every plugin's people pass through before they are written.
//!
//! It catches the conflicts that make duplicate or wrongly merged contacts — above all
//! when a school that imported manual files (StudentID/TeacherID/ParentID) switches to
//! Clever, whose ids differ — and decides, per the source's policy, whether an incoming
//! person is new, is linked to a contact the roster already has, or is a conflict that
//! stops the import.
//!
//! Every lookup is an indexed query or an in-memory map, so the cost per person is
//! constant and an import's dedupe cost grows linearly with its size.

use std::collections::HashMap;
use std::sync::LazyLock;

use roster_core::record::{Person, Role};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::digest::{digest, Digest, DigestMap};
use crate::config::DedupePolicy;

/// The contact this source gives `?2` as another manual-file kind than `?3`, of a role other
/// than `?4`.
static SAME_SOURCE_OTHER_KIND: LazyLock<String> = LazyLock::new(|| {
    one_kind_at_a_time(
        &["ID", "ParentID", "StudentID", "TeacherID"],
        "SELECT i.contact_id, i.kind FROM contact_ids i JOIN contacts c ON c.id = i.contact_id
         WHERE i.kind = {kind} AND i.value = ?2 AND i.source = ?1
           AND i.kind != ?3 AND c.role != ?4 AND c.active = 1",
    )
});

/// The contact another source (not `?2`) gives manual-file id `?1`, of a role other than `?3`.
static OTHER_SOURCE_FILE_ID: LazyLock<String> = LazyLock::new(|| {
    one_kind_at_a_time(
        &["ParentID", "StudentID", "TeacherID"],
        "SELECT i.contact_id, i.kind, i.source FROM contact_ids i JOIN contacts c ON c.id = i.contact_id
         WHERE i.kind = {kind} AND i.value = ?1 AND i.source != ?2
           AND c.role != ?3 AND c.active = 1",
    )
});

/// `select` for each of `kinds` (`{kind}` in it), joined by `UNION ALL`, first row only.
///
/// Not `i.kind IN (…)`: for a list of three or more constants SQLite builds a temporary
/// B-tree of it on every execution (docs/performance.md, item 36), and a switch from
/// files to Clever runs these once or twice per person. Each arm seeks `contact_ids`'s
/// primary key. `kinds` are in byte order, the order the `IN` list was visited in, so
/// the row `LIMIT 1` keeps is the same.
fn one_kind_at_a_time(kinds: &[&str], select: &str) -> String {
    let arms: Vec<String> = kinds
        .iter()
        .map(|kind| select.replace("{kind}", &format!("'{kind}'")))
        .collect();
    format!("{} LIMIT 1", arms.join("\nUNION ALL\n"))
}

/// What to do with an incoming person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Create a new contact (or, for a person this source already supplies, update it).
    New,
    /// Attach the source's ids to an existing contact instead of creating a duplicate.
    Link { contact_id: i64 },
}

/// The contact a source already maps an incoming person to.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub contact_id: i64,
    /// The source's data for the person differs from last time.
    pub changed: bool,
    /// The person was active in the same role, with every identifier it has now, from
    /// this source: those ids were checked against the roster when they arrived.
    pub ids_checked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The same id twice in one source with different people behind it.
    DuplicateId,
    /// One contact id used for two roles (StudentID/TeacherID/ParentID share a namespace).
    CrossRoleId,
    /// A known StudentID now names another child.
    RecycledId,
    /// An incoming person matches a contact from another source.
    CrossSource,
    /// Two different people with one email.
    EmailCollision,
    /// An incoming person matches several existing contacts.
    AmbiguousMatch,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::DuplicateId => "duplicate-id",
            Rule::CrossRoleId => "cross-role-id",
            Rule::RecycledId => "recycled-id",
            Rule::CrossSource => "cross-source",
            Rule::EmailCollision => "email-collision",
            Rule::AmbiguousMatch => "ambiguous-match",
        }
    }
}

/// One side of a conflict, as a person reading the report needs it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Party {
    pub source: String,
    pub source_id: String,
    pub contact_id: Option<i64>,
    pub role: String,
    pub name: String,
    pub email: String,
    pub birth_date: String,
    pub ids: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub rule: Rule,
    /// How sure the match is, 0–100 (for cross-source matches; 100 for hard conflicts).
    pub confidence: u8,
    pub reason: String,
    pub incoming: Party,
    pub existing: Option<Party>,
    pub action: String,
}

impl Conflict {
    /// A cross-source match is only a conflict until it is linked.
    pub fn is_link(&self) -> bool {
        self.rule == Rule::CrossSource
    }
}

/// The people of the run so far, as the import keeps them anyway.
pub trait RunPeople {
    /// The role `source_id` was sent with earlier in this run, if it was.
    fn role_in_run(&self, source_id: &str) -> Option<Role>;

    /// In a continuing run, whether what is known without asking the roster shows that
    /// no person of the source that the run did not send holds `email` (as the dedupe
    /// stage compares emails) besides `source_id`. `false`: ask.
    fn no_unsent_holder(&self, _email: &str, _source_id: &str) -> bool {
        false
    }
}

pub trait DedupeStage {
    /// Every in-scope person of a run, before it is written.
    fn check(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
        known: Option<Known>,
        run: &dyn RunPeople,
    ) -> rusqlite::Result<Resolution>;

    /// The source sent `person`'s id a second time in this run, with different data
    /// (`first_role`: the role it had the first time).
    fn repeated(&mut self, source: &str, person: &Person, first_role: Option<Role>);

    /// The run continues from a checkpoint: it sends only the people who changed.
    fn continuing(&mut self) {}

    /// A continuing run has sent its last person: check what the run's own maps could not
    /// see, the people it did not send (as the roster has them).
    fn check_unsent(
        &mut self,
        _tx: &Transaction<'_>,
        _source: &str,
        _run: &dyn RunPeople,
    ) -> rusqlite::Result<()> {
        Ok(())
    }

    /// The run has sent its last person: what was kept to compare them with each other
    /// can go while the job finishes (for a district, hundreds of MiB).
    fn people_done(&mut self) {}

    /// Conflicts that stop the import (and, under `report`, cross-source matches).
    fn findings(&self) -> &[Conflict];

    fn policy(&self) -> DedupePolicy;
}

/// The people of source ?2 whose contact has email ?1 (as `lower` gives it), for rule 5
/// against those a continuing run did not send. CROSS JOIN keeps the email index
/// outermost: joined the other way, SQLite reads every one of the source's people for
/// each email (minutes at nyc).
pub(super) static EMAIL_HOLDERS: &str =
    "SELECT s.source_id FROM contacts c CROSS JOIN contact_sources s
     WHERE lower(c.email) = ?1 AND c.email IS NOT NULL AND c.role IN ('teacher', 'parent')
       AND s.contact_id = c.id AND s.source = ?2 AND s.active = 1";

#[cfg(test)]
thread_local! {
    /// Emails `check_unsent` settled without asking the roster, for the tests.
    pub(super) static EMAILS_SETTLED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Id kinds in pickAtime's one contact-id namespace.
const CONTACT_ID_KINDS: [&str; 4] = ["StudentID", "TeacherID", "ParentID", "ID"];

fn legacy_kind(role: Role) -> &'static str {
    match role {
        Role::Student => "StudentID",
        Role::Teacher => "TeacherID",
        Role::Parent => "ParentID",
        Role::Staff | Role::Unspecified => "ID",
    }
}

/// An email (or name) as the dedupe stage compares it.
pub(super) fn lower(text: &str) -> String {
    text.trim().to_lowercase()
}

fn identifier<'p>(person: &'p Person, kind: &str) -> Option<&'p str> {
    person
        .identifiers
        .iter()
        .find(|i| i.kind == kind && !i.value.trim().is_empty())
        .map(|i| i.value.trim())
}

pub struct Dedupe {
    policy: DedupePolicy,
    /// This run's contact-id namespace: value -> the role holding it, for the values
    /// that are not their holder's own source id. The others (in pickAtime files, every
    /// person's own id: millions at district scale) are found through [`RunPeople`].
    namespace: DigestMap<Role>,
    /// The holders in `namespace` whose source id is not the value itself (in pickAtime
    /// files it always is).
    holders: Holders,
    /// This run's teacher and parent emails: email -> source id.
    emails: Holders,
    findings: Vec<Conflict>,
    /// (rule, source, source id) of every finding, so each is recorded once.
    recorded: std::collections::HashSet<(Rule, String, String)>,
    /// Contacts linked in this run, so two incoming people never link to one contact.
    linked: HashMap<i64, String>,
    /// What the database held for the run's source before it started (one `Dedupe`
    /// serves one job).
    prior: Option<(String, Prior)>,
    /// In a continuing run, the teachers and parents with an email, to check against the
    /// people the run did not send once it has sent them all.
    sent_emails: Option<Vec<(String, Person)>>,
}

/// Which of the database lookups can find anything this run. Contacts are only ever
/// created by an import together with their source's row, so a database whose contacts
/// all come from the run's own source holds no cross-source match or foreign id; and a
/// source with no identifiers yet has none to collide with. A first import and the
/// nightly re-sync of a one-source roster skip those queries (a quarter of a large
/// first import was spent in them, finding nothing).
#[derive(Debug, Clone, Copy)]
struct Prior {
    /// Contacts supplied by another source exist.
    other_sources: bool,
    /// The run's source already has identifiers in the roster.
    this_source: bool,
}

impl Prior {
    fn load(tx: &Transaction<'_>, source: &str) -> rusqlite::Result<Prior> {
        // Range scans of the primary keys on either side of `source`, and the source's
        // contacts until one has an identifier from it: no table scan.
        let (other_sources, this_source) = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM contact_sources WHERE source < ?1)
                 OR EXISTS (SELECT 1 FROM contact_sources WHERE source > ?1),
                    EXISTS (SELECT 1 FROM contact_sources s WHERE s.source = ?1 AND EXISTS
                        (SELECT 1 FROM contact_ids i WHERE i.contact_id = s.contact_id AND i.source = ?1))",
            [source],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Prior {
            other_sources,
            this_source,
        })
    }
}

/// Values of this run and the source id holding each. The ids are written one after
/// another into one buffer, and an entry says where its id is: 24 bytes with nothing
/// behind it, where a boxed id was 16 bytes and an allocation, for each of a district's
/// ~2M emails.
#[derive(Default)]
struct Holders {
    /// value -> (start, length) of its holder's id in `ids`
    by_value: DigestMap<(u32, u32)>,
    ids: String,
}

impl Holders {
    fn get(&self, value: &Digest) -> Option<&str> {
        let &(start, len) = self.by_value.get(value)?;
        Some(&self.ids[start as usize..][..len as usize])
    }

    fn insert(&mut self, value: Digest, holder: &str) {
        // 4 GiB of source ids is over 100 million people in one run.
        let start = u32::try_from(self.ids.len()).expect("a run's ids fit in 4 GiB");
        let len = u32::try_from(holder.len()).expect("a source id under 4 GiB");
        self.ids.push_str(holder);
        self.by_value.insert(value, (start, len));
    }
}

struct Candidate {
    contact_id: i64,
    confidence: u8,
    reason: String,
}

impl Dedupe {
    pub fn new(policy: DedupePolicy) -> Self {
        Dedupe {
            policy,
            namespace: Default::default(),
            holders: Default::default(),
            emails: Default::default(),
            findings: Vec::new(),
            recorded: std::collections::HashSet::new(),
            linked: HashMap::new(),
            prior: None,
            sent_emails: None,
        }
    }

    fn prior(&mut self, tx: &Transaction<'_>, source: &str) -> rusqlite::Result<Prior> {
        match &self.prior {
            Some((known, prior)) if known == source => Ok(*prior),
            _ => {
                let prior = Prior::load(tx, source)?;
                self.prior = Some((source.to_string(), prior));
                Ok(prior)
            }
        }
    }

    fn incoming(source: &str, person: &Person) -> Party {
        Party {
            source: source.to_string(),
            source_id: person.source_id.clone(),
            contact_id: None,
            role: person.role().as_db_str().to_string(),
            name: format!("{} {}", person.first_name, person.last_name)
                .trim()
                .to_string(),
            email: person.email.clone().unwrap_or_default(),
            birth_date: person.birth_date.clone().unwrap_or_default(),
            ids: person
                .identifiers
                .iter()
                .map(|i| format!("{}={}", i.kind, i.value))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    fn existing(tx: &Transaction<'_>, contact_id: i64) -> rusqlite::Result<Party> {
        tx.prepare_cached(
            "SELECT c.role, trim(c.first_name || ' ' || c.last_name), coalesce(c.email, ''), coalesce(c.birth_date, ''),
                    coalesce((SELECT group_concat(source || ':' || kind || '=' || value, ' ') FROM contact_ids WHERE contact_id = c.id), ''),
                    coalesce((SELECT group_concat(source || ':' || source_id, ' ') FROM contact_sources WHERE contact_id = c.id), '')
             FROM contacts c WHERE c.id = ?1",
        )?
        .query_row([contact_id], |r| {
            let sources: String = r.get(5)?;
            let (source, source_id) = sources
                .split(' ')
                .next()
                .and_then(|s| s.split_once(':'))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or_default();
            Ok(Party {
                source,
                source_id,
                contact_id: Some(contact_id),
                role: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                birth_date: r.get(3)?,
                ids: r.get(4)?,
            })
        })
    }

    // Every finding carries all of these; a struct for them would only be built to be
    // taken apart again here.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        tx: &Transaction<'_>,
        rule: Rule,
        confidence: u8,
        reason: String,
        source: &str,
        person: &Person,
        existing: Option<i64>,
        action: &str,
    ) -> rusqlite::Result<()> {
        // One finding per rule and person, however many ways it was found.
        // A set, not a scan of the findings: a switch can find a match for every person.
        if !self
            .recorded
            .insert((rule, source.to_string(), person.source_id.clone()))
        {
            return Ok(());
        }
        let existing = existing.map(|id| Self::existing(tx, id)).transpose()?;
        self.findings.push(Conflict {
            rule,
            confidence,
            reason,
            incoming: Self::incoming(source, person),
            existing,
            action: action.to_string(),
        });
        Ok(())
    }

    /// Rule 2 (within the run and, with `in_db`, against the database) and rule 5
    /// (within the run).
    fn check_namespace_and_email(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
        in_db: bool,
        run: &dyn RunPeople,
    ) -> rusqlite::Result<()> {
        let role = person.role();
        for id in person
            .identifiers
            .iter()
            .filter(|i| CONTACT_ID_KINDS.contains(&i.kind.as_str()))
        {
            let value = id.value.trim();
            let key = digest(value);
            let own = value == person.source_id;
            // Another person's own id is theirs in the run's people, not in `namespace`.
            let holder = match self.namespace.get(&key) {
                Some(&role) => Some(role),
                None if !own => run.role_in_run(value),
                None => None,
            };
            match holder {
                Some(other_role) if other_role != role => {
                    let other_id = self.holders.get(&key).unwrap_or(value);
                    let reason = format!(
                        "{} `{value}` is also {} {other_id}'s id: one contact id for two roles",
                        id.kind,
                        other_role.as_db_str(),
                    );
                    self.record(
                        tx,
                        Rule::CrossRoleId,
                        100,
                        reason,
                        source,
                        person,
                        None,
                        "give one of them a different id in the source files",
                    )?;
                }
                Some(_) => {}
                None => {
                    if !own {
                        self.namespace.insert(key, role);
                        self.holders.insert(key, &person.source_id);
                    }
                    if !in_db {
                        continue;
                    }
                    // The same value under another role's kind, already in the roster for this source.
                    let holder: Option<(i64, String)> = tx
                        .prepare_cached(&SAME_SOURCE_OTHER_KIND)?
                        .query_row(params![source, value, id.kind, role.as_db_str()], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    if let Some((contact_id, kind)) = holder {
                        let reason = format!(
                            "{} `{value}` is already {kind} `{value}` of another contact",
                            id.kind
                        );
                        self.record(
                            tx,
                            Rule::CrossRoleId,
                            100,
                            reason,
                            source,
                            person,
                            Some(contact_id),
                            "give one of them a different id in the source files",
                        )?;
                    }
                }
            }
        }
        if matches!(role, Role::Teacher | Role::Parent) {
            if let Some(email) = person.email.as_deref().map(lower).filter(|e| !e.is_empty()) {
                let key = digest(&email);
                match self.emails.get(&key) {
                    Some(other) if other != person.source_id => {
                        let reason = format!("email `{email}` is also {other}'s: teacher and parent emails are unique");
                        self.record(
                            tx,
                            Rule::EmailCollision,
                            100,
                            reason,
                            source,
                            person,
                            None,
                            "correct one of the emails, or merge the two records in the source",
                        )?;
                    }
                    Some(_) => {}
                    None => {
                        self.emails.insert(key, &person.source_id);
                    }
                }
                if let Some(sent) = &mut self.sent_emails {
                    sent.push((email, person.clone()));
                }
            }
        }
        Ok(())
    }

    /// Rule 3: a known StudentID whose name and birth date now describe another child.
    fn check_recycled(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
        contact_id: i64,
    ) -> rusqlite::Result<()> {
        if person.role() != Role::Student {
            return Ok(());
        }
        let (first, last, birth): (String, String, Option<String>) = tx
            .prepare_cached("SELECT first_name, last_name, birth_date FROM contacts WHERE id = ?1")?
            .query_row([contact_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let first_differs = lower(&first) != lower(&person.first_name);
        let last_differs = lower(&last) != lower(&person.last_name);
        let births = (
            birth.as_deref().map(lower),
            person.birth_date.as_deref().map(lower),
        );
        let recycled = match births {
            (Some(old), Some(new)) if !old.is_empty() && !new.is_empty() => {
                old != new && (first_differs || last_differs)
            }
            _ => first_differs && last_differs,
        };
        if recycled {
            let reason = format!(
                "`{}` was {} {} ({}) and is now {} {} ({}): another child under a reused id",
                person.source_id,
                first,
                last,
                birth.unwrap_or_else(|| "no birth date".into()),
                person.first_name,
                person.last_name,
                person
                    .birth_date
                    .clone()
                    .unwrap_or_else(|| "no birth date".into())
            );
            self.record(tx, Rule::RecycledId, 100, reason, source, person, Some(contact_id),
                "never re-point: give the new child a new id, or remove the old contact first (roster contacts delete)")?;
        }
        Ok(())
    }

    /// Rules 2 and 5 against other sources: an id of this person that is another role's
    /// manual-file id, or an email that another role's contact already has.
    fn check_other_roles(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
    ) -> rusqlite::Result<()> {
        let role = person.role();
        for kind in ["sis_id", "student_number", "teacher_number", "staff_id"] {
            let Some(value) = identifier(person, kind) else {
                continue;
            };
            let holder: Option<(i64, String, String)> = tx
                .prepare_cached(&OTHER_SOURCE_FILE_ID)?
                .query_row(params![value, source, role.as_db_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            if let Some((contact_id, other_kind, other_source)) = holder {
                let reason = format!(
                    "{kind} {value} is {other_kind} {value} in source `{other_source}`: one contact id for two roles"
                );
                self.record(
                    tx,
                    Rule::CrossRoleId,
                    100,
                    reason,
                    source,
                    person,
                    Some(contact_id),
                    "correct the id in the SIS, or in the old files before linking",
                )?;
            }
        }
        if matches!(role, Role::Teacher | Role::Parent) {
            if let Some(email) = person.email.as_deref().map(lower).filter(|e| !e.is_empty()) {
                let holder: Option<(i64, String)> = tx
                    .prepare_cached(
                        "SELECT c.id, c.role FROM contacts c WHERE lower(c.email) = ?1 AND c.email IS NOT NULL
                           AND c.role != ?2 AND c.role IN ('teacher', 'parent') AND c.active = 1
                           AND NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id AND s.source = ?3)
                         LIMIT 1",
                    )?
                    .query_row(params![email, role.as_db_str(), source], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((contact_id, other_role)) = holder {
                    let reason = format!("email `{email}` already belongs to a {other_role}: teacher and parent emails are unique");
                    self.record(
                        tx,
                        Rule::EmailCollision,
                        100,
                        reason,
                        source,
                        person,
                        Some(contact_id),
                        "give one of them another email in the source",
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Rule 4: contacts from other sources this person may be, strongest evidence first.
    fn candidates(
        &self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
    ) -> rusqlite::Result<Vec<Candidate>> {
        let role = person.role();
        let mut found: Vec<Candidate> = Vec::new();
        let mut add = |contact_id: i64, confidence: u8, reason: String| {
            if let Some(existing) = found.iter_mut().find(|c| c.contact_id == contact_id) {
                if confidence > existing.confidence {
                    existing.confidence = confidence;
                    existing.reason = reason;
                }
            } else {
                found.push(Candidate {
                    contact_id,
                    confidence,
                    reason,
                });
            }
        };
        // Contacts of the same role that this source does not supply yet.
        let by_id = "SELECT i.contact_id, i.source FROM contact_ids i JOIN contacts c ON c.id = i.contact_id
                     WHERE i.kind = ?1 AND i.value = ?2 AND i.source != ?3 AND c.role = ?4
                       AND NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = i.contact_id AND s.source = ?3)";
        let lookup = |kind: &str, value: &str| -> rusqlite::Result<Vec<(i64, String)>> {
            tx.prepare_cached(by_id)?
                .query_map(params![kind, value, source, role.as_db_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
        };
        let legacy = legacy_kind(role);
        for kind in ["sis_id", "student_number", "teacher_number"] {
            if let Some(value) = identifier(person, kind) {
                for (contact_id, other) in lookup(legacy, value)? {
                    add(
                        contact_id,
                        95,
                        format!("{kind} {value} = {legacy} {value} from source `{other}`"),
                    );
                }
                for (contact_id, other) in lookup(kind, value)? {
                    add(
                        contact_id,
                        95,
                        format!("{kind} {value} = {kind} {value} from source `{other}`"),
                    );
                }
            }
        }
        // The same manual-file id under another source (files re-imported under a new name).
        for id in person
            .identifiers
            .iter()
            .filter(|i| CONTACT_ID_KINDS.contains(&i.kind.as_str()))
        {
            for (contact_id, other) in lookup(&id.kind, id.value.trim())? {
                add(
                    contact_id,
                    95,
                    format!("{} {} from source `{other}`", id.kind, id.value.trim()),
                );
            }
        }
        if let Some(value) = identifier(person, "state_id") {
            for (contact_id, other) in lookup("state_id", value)? {
                add(
                    contact_id,
                    95,
                    format!("state_id {value} from source `{other}`"),
                );
            }
        }
        if matches!(role, Role::Teacher | Role::Parent | Role::Staff) {
            if let Some(email) = person.email.as_deref().map(lower).filter(|e| !e.is_empty()) {
                let rows: Vec<i64> = tx
                    .prepare_cached(
                        "SELECT c.id FROM contacts c WHERE lower(c.email) = ?1 AND c.email IS NOT NULL AND c.role = ?2
                           AND NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id AND s.source = ?3)",
                    )?
                    .query_map(params![email, role.as_db_str(), source], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for contact_id in rows {
                    add(contact_id, 90, format!("same email {email}"));
                }
            }
        }
        if role == Role::Student {
            if let Some(birth) = person
                .birth_date
                .as_deref()
                .filter(|b| !b.trim().is_empty())
            {
                let rows: Vec<i64> = tx
                    .prepare_cached(
                        "SELECT c.id FROM contacts c WHERE c.birth_date = ?1 AND lower(c.last_name) = ?2
                           AND lower(c.first_name) = ?3 AND c.role = 'student'
                           AND NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id AND s.source = ?4)",
                    )?
                    .query_map(params![birth, lower(&person.last_name), lower(&person.first_name), source], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for contact_id in rows {
                    add(contact_id, 80, format!("same name and birth date {birth}"));
                }
            }
        }
        // An id match whose names disagree entirely is not the same person.
        for candidate in &mut found {
            let (first, last): (String, String) = tx
                .prepare_cached("SELECT first_name, last_name FROM contacts WHERE id = ?1")?
                .query_row([candidate.contact_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let same_last = lower(&last) == lower(&person.last_name);
            let same_first = lower(&first) == lower(&person.first_name);
            // A v3 Clever contact keeps the whole name in `last`.
            let whole = lower(&format!("{first} {last}"))
                == lower(&format!("{} {}", person.first_name, person.last_name));
            if !(same_last || same_first || whole) {
                candidate.confidence = candidate.confidence.min(40);
                candidate
                    .reason
                    .push_str(&format!(", but the names differ ({first} {last})"));
            }
        }
        found.sort_by_key(|c| std::cmp::Reverse(c.confidence));
        Ok(found)
    }
}

/// The confidence from which a cross-source match is linked without a person's review.
const LINK_CONFIDENCE: u8 = 80;

impl DedupeStage for Dedupe {
    fn check(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
        known: Option<Known>,
        run: &dyn RunPeople,
    ) -> rusqlite::Result<Resolution> {
        let prior = self.prior(tx, source)?;
        // A person this source sent unchanged was checked against the roster when their
        // ids arrived, and every later holder of one of those ids was checked against
        // them: only people new in this run, or changed in their ids, role or active
        // state, can bring a collision. (A new name or email keeps the ids as they were:
        // at nyc the query for each of 30,000 changed people was 0.3 s of a re-sync.)
        let in_db = prior.this_source && known.is_none_or(|k| k.changed && !k.ids_checked);
        self.check_namespace_and_email(tx, source, person, in_db, run)?;
        if let Some(known) = known {
            if known.changed {
                self.check_recycled(tx, source, person, known.contact_id)?;
            }
            return Ok(Resolution::New);
        }
        if !prior.other_sources {
            return Ok(Resolution::New);
        }
        self.check_other_roles(tx, source, person)?;
        let candidates = self.candidates(tx, source, person)?;
        let confident: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.confidence >= LINK_CONFIDENCE)
            .collect();
        match confident.as_slice() {
            [] => {
                if let Some(weak) = candidates.first() {
                    let reason = weak.reason.clone();
                    // An id that matches while the names say otherwise: for a student,
                    // a reused StudentID; never re-point anyone to another child.
                    let (rule, action) = if person.role() == Role::Student {
                        (Rule::RecycledId, "never link: the id was reused for another child; keep them apart and correct the id")
                    } else {
                        (Rule::AmbiguousMatch, "review: if they are the same person, correct the source; otherwise correct the id")
                    };
                    self.record(
                        tx,
                        rule,
                        weak.confidence,
                        reason,
                        source,
                        person,
                        Some(weak.contact_id),
                        action,
                    )?;
                }
                Ok(Resolution::New)
            }
            [one] => {
                let (contact_id, confidence, reason) =
                    (one.contact_id, one.confidence, one.reason.clone());
                if let Some(first) = self.linked.get(&contact_id) {
                    let reason =
                        format!("{reason}; but `{first}` of this source matched the same contact");
                    self.record(
                        tx,
                        Rule::AmbiguousMatch,
                        confidence,
                        reason,
                        source,
                        person,
                        Some(contact_id),
                        "review both records in the source",
                    )?;
                    return Ok(Resolution::New);
                }
                self.linked.insert(contact_id, person.source_id.clone());
                let action = match self.policy {
                    DedupePolicy::Link => "linked",
                    _ => "link (import with --dedupe link)",
                };
                self.record(
                    tx,
                    Rule::CrossSource,
                    confidence,
                    reason,
                    source,
                    person,
                    Some(contact_id),
                    action,
                )?;
                Ok(match self.policy {
                    DedupePolicy::Link => Resolution::Link { contact_id },
                    _ => Resolution::New,
                })
            }
            [first, ..] => {
                let reason = format!(
                    "matches {} contacts: {}",
                    confident.len(),
                    confident
                        .iter()
                        .map(|c| format!("#{} ({})", c.contact_id, c.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let contact_id = first.contact_id;
                self.record(
                    tx,
                    Rule::AmbiguousMatch,
                    100,
                    reason,
                    source,
                    person,
                    Some(contact_id),
                    "the roster already has duplicates: remove them, then import again",
                )?;
                Ok(Resolution::New)
            }
        }
    }

    fn repeated(&mut self, source: &str, person: &Person, first_role: Option<Role>) {
        let (rule, reason, action) = match first_role {
            Some(role) if role != person.role() => (
                Rule::CrossRoleId,
                format!(
                    "`{}` is both a {} and a {} in this source: one contact id for two roles",
                    person.source_id,
                    role.as_db_str(),
                    person.role().as_db_str()
                ),
                "give one of them a different id in the source files",
            ),
            _ => (
                Rule::DuplicateId,
                format!(
                    "`{}` appears twice in this source with different data",
                    person.source_id
                ),
                "keep one record per id in the source",
            ),
        };
        self.findings.push(Conflict {
            rule,
            confidence: 100,
            reason,
            incoming: Self::incoming(source, person),
            existing: None,
            action: action.into(),
        });
    }

    fn continuing(&mut self) {
        self.sent_emails = Some(Vec::new());
    }

    /// Rule 5 against the people a continuing run did not send: their emails are the
    /// roster's. (Rule 2's database lookup already sees them: it asks the roster for
    /// every changed person.)
    fn check_unsent(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        run: &dyn RunPeople,
    ) -> rusqlite::Result<()> {
        let sent = self.sent_emails.take().unwrap_or_default();
        let mut settled = 0;
        for (email, person) in &sent {
            if run.no_unsent_holder(email, &person.source_id) {
                settled += 1;
                continue;
            }
            let holders: Vec<String> = tx
                .prepare_cached(EMAIL_HOLDERS)?
                .query_map(params![email, source], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            // One the run sent has its new email, checked within the run already.
            if let Some(other) = holders
                .iter()
                .find(|h| **h != person.source_id && run.role_in_run(h).is_none())
            {
                let reason = format!(
                    "email `{email}` is also {other}'s: teacher and parent emails are unique"
                );
                self.record(
                    tx,
                    Rule::EmailCollision,
                    100,
                    reason,
                    source,
                    person,
                    None,
                    "correct one of the emails, or merge the two records in the source",
                )?;
            }
        }
        tracing::debug!(
            "emails the run sent, checked against the people it did not send: {}, {settled} \
             of them settled by who held them before the run",
            sent.len()
        );
        #[cfg(test)]
        EMAILS_SETTLED.with(|count| count.set(count.get() + settled));
        Ok(())
    }

    fn people_done(&mut self) {
        self.namespace = Default::default();
        self.holders = Default::default();
        self.emails = Default::default();
    }

    fn findings(&self) -> &[Conflict] {
        &self.findings
    }

    fn policy(&self) -> DedupePolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of each query by manual-file kind: a primary-key seek per kind, and no
    /// temporary table (what `i.kind IN (…)` built on every execution).
    #[test]
    fn id_lookups_across_kinds_seek_each_kind_and_build_no_temporary_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
        // One column of what `sql` returns, its parameters unbound (NULL).
        let column = |sql: &str, index: usize| -> Vec<String> {
            let mut statement = store.conn.prepare(sql).unwrap();
            let mut rows = statement.raw_query();
            let mut values = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                values.push(row.get(index).unwrap());
            }
            values
        };
        for (sql, kinds) in [(&*SAME_SOURCE_OTHER_KIND, 4), (&*OTHER_SOURCE_FILE_ID, 3)] {
            let opcodes = column(&format!("EXPLAIN {sql}"), 1);
            assert!(!opcodes.iter().any(|op| op == "OpenEphemeral"), "{sql}");
            let plan = column(&format!("EXPLAIN QUERY PLAN {sql}"), 3);
            let seeks = plan
                .iter()
                .filter(|step| step.contains("SEARCH i USING PRIMARY KEY (kind=? AND value=?"))
                .count();
            assert_eq!(seeks, kinds, "{plan:?}");
        }
        let in_list = "EXPLAIN SELECT i.contact_id FROM contact_ids i
                       WHERE i.kind IN ('ParentID', 'StudentID', 'TeacherID') AND i.value = ?1";
        assert!(
            column(in_list, 1).iter().any(|op| op == "OpenEphemeral"),
            "the IN list this replaces builds one"
        );
    }

    #[test]
    fn holders_give_back_each_values_holder() {
        let mut holders = Holders::default();
        holders.insert(digest("a@school.org"), "T-1");
        holders.insert(digest("b@school.org"), "");
        holders.insert(digest("c@school.org"), "P-17");
        assert_eq!(holders.get(&digest("a@school.org")), Some("T-1"));
        assert_eq!(holders.get(&digest("b@school.org")), Some(""));
        assert_eq!(holders.get(&digest("c@school.org")), Some("P-17"));
        assert_eq!(holders.get(&digest("d@school.org")), None);
    }
}
