//! Applying one source's records to the roster: the difference against what the roster
//! already holds for that source, record by record, inside the caller's transaction.
//!
//! Everything the source supplied before is loaded into id maps up front, so each record
//! costs one hash lookup and, only if it changed, one write. A record is "unchanged" when
//! the fingerprint of what the source sent equals the one stored with it.
//!
//! A run that continues from a checkpoint (`Snapshot::continues`) sends only what changed:
//! what it refers to may be as before, nothing is deactivated for being absent, and the
//! links of an owner are loaded only when the run replaces them (`LinksReplaced`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use prost::Message;
use roster_core::record::{
    Class, ClassTeacher, Enrollment, Entity, Kind, LinksReplaced, Person, Record, Relationship,
    Removal, Role, School, Term,
};
use rusqlite::{params, Connection, OptionalExtension, Statement, Transaction};

use super::ahead::Found;
use super::alongside::Alongside;
use super::dedupe::{DedupeStage, Known, Resolution, RunPeople};
use super::digest::{digest, Digest, DigestMap};
use super::pending_ids::PendingIds;
use super::scope::Scope;
use super::statements::{interned, Statements};
use super::summary::{EntityName, Summary};
use super::unattached::{unattached, UnattachedAlongside};
use crate::config::{AccessDefaults, AccessLevel};

pub enum ApplyError {
    Invalid(String),
    Sql(rusqlite::Error),
    /// A first import's identifiers could not be set aside (`pending_ids.rs`).
    TempFile(std::io::Error),
}

impl From<std::io::Error> for ApplyError {
    fn from(error: std::io::Error) -> Self {
        ApplyError::TempFile(error)
    }
}

impl From<rusqlite::Error> for ApplyError {
    fn from(error: rusqlite::Error) -> Self {
        ApplyError::Sql(error)
    }
}

type Result<T> = std::result::Result<T, ApplyError>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Not (yet) in this run.
    No,
    /// In this run and written (or unchanged).
    Written,
    /// In this run but outside the event's scope, or removed by the source.
    Skipped,
}

/// What the run knows of one school, term, class or person. There is one per person of
/// a district (millions), so it is kept small: row ids are SQLite rowids (never 0, which
/// stands for "none"), and the rest is one word — 16 bytes instead of 72 with
/// `Option<i64>`s and the class fields kept here.
#[derive(Clone, Copy)]
struct Entry {
    row: i64,
    /// The fingerprint's low 57 bits; then `active` (bit 57), `seen` (58-59) and, for
    /// people, 1 + their role (60-63; 0: none). Two records that differ share 57
    /// fingerprint bits with odds of 1 in 10^17, and are then taken as unchanged.
    state: u64,
}

fn row_or_none(row: i64) -> Option<i64> {
    (row != 0).then_some(row)
}

impl Entry {
    const FINGERPRINT: u64 = (1 << 57) - 1;
    const ACTIVE: u64 = 1 << 57;
    const SEEN_SHIFT: u32 = 58;
    const ROLE_SHIFT: u32 = 60;

    fn new(row: i64, fingerprint: i64, active: bool, seen: Seen) -> Entry {
        let mut entry = Entry { row, state: 0 };
        entry.set_fingerprint(fingerprint);
        entry.set_active(active);
        entry.set_seen(seen);
        entry
    }

    fn unseen(id: i64, fingerprint: i64, active: bool) -> Entry {
        Entry::new(id, fingerprint, active, Seen::No)
    }

    fn new_in_run(id: Option<i64>, fingerprint: i64, seen: Seen) -> Entry {
        Entry::new(id.unwrap_or(0), fingerprint, true, seen)
    }

    fn id(&self) -> Option<i64> {
        row_or_none(self.row)
    }

    fn has_fingerprint(&self, fingerprint: i64) -> bool {
        self.state & Self::FINGERPRINT == fingerprint as u64 & Self::FINGERPRINT
    }

    fn set_fingerprint(&mut self, fingerprint: i64) {
        self.state = (self.state & !Self::FINGERPRINT) | (fingerprint as u64 & Self::FINGERPRINT);
    }

    fn active(&self) -> bool {
        self.state & Self::ACTIVE != 0
    }

    fn set_active(&mut self, active: bool) {
        self.state = (self.state & !Self::ACTIVE) | if active { Self::ACTIVE } else { 0 };
    }

    fn seen(&self) -> Seen {
        match (self.state >> Self::SEEN_SHIFT) & 3 {
            0 => Seen::No,
            1 => Seen::Written,
            _ => Seen::Skipped,
        }
    }

    fn set_seen(&mut self, seen: Seen) {
        let bits = match seen {
            Seen::No => 0,
            Seen::Written => 1,
            Seen::Skipped => 2,
        };
        self.state = (self.state & !(3 << Self::SEEN_SHIFT)) | bits << Self::SEEN_SHIFT;
    }

    fn role(&self) -> Option<Role> {
        match self.state >> Self::ROLE_SHIFT {
            0 => None,
            n => Role::try_from(n as i32 - 1).ok(),
        }
    }

    fn set_role(&mut self, role: Role) {
        // Roles are 0..=4: 1 + role fits in the four bits.
        let bits = (role as u64 + 1) & 15;
        self.state = (self.state & !(15 << Self::ROLE_SHIFT)) | bits << Self::ROLE_SHIFT;
    }
}

/// Source ids to entries, keyed by the id's digest: a `Box<str>` key costs the same 16
/// bytes plus an allocation per entry, for ids only ever looked up, never listed.
#[derive(Default)]
struct Ids(DigestMap<Entry>);

impl Ids {
    fn with_capacity(capacity: usize) -> Ids {
        Ids(DigestMap::with_capacity(capacity))
    }

    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    fn get(&self, id: &str) -> Option<&Entry> {
        self.0.get(&digest(id))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.0.get_mut(&digest(id))
    }

    fn insert(&mut self, id: &str, entry: Entry) {
        self.0.insert(digest(id), entry);
    }

    fn get_or_insert_with(&mut self, id: &str, new: impl FnOnce() -> Entry) -> &mut Entry {
        self.0.get_or_insert_with(digest(id), new)
    }

    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.0.values()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.0.values_mut()
    }
}

impl RunPeople for Ids {
    fn role_in_run(&self, source_id: &str) -> Option<Role> {
        self.get(source_id)
            .filter(|entry| entry.seen() == Seen::Written)
            .and_then(|entry| entry.role())
    }
}

/// A continuing run's people for the dedupe stage's last check (`check_unsent`), with
/// what the roster before the run showed of each email the run sent (`ahead.rs`).
///
/// Its query asks the roster for the people of this source who hold an email now, for
/// one the run did not send. The answer before the run settles it without asking when
/// every holder then is one the run sent (or the person itself), and no contact the run
/// wrote can hold the email now with a person the run did not send:
/// - a contact the run wrote nothing of has the rows it had before the run;
/// - one that is `alone` had no row of this source but its one person's, and once the
///   run sent that person it has none but those of people the run sent (rows the run
///   adds are its people's);
/// - for every other contact the run wrote, its email now is read here (`others`), and
///   an email among them is asked for.
pub struct UnsentCheck<'a> {
    people: &'a Ids,
    /// By email; `None` in a run that does not continue.
    holders: Option<&'a FastMap<String, Vec<String>>>,
    others: foldhash::HashSet<String>,
}

impl RunPeople for UnsentCheck<'_> {
    fn role_in_run(&self, source_id: &str) -> Option<Role> {
        self.people.role_in_run(source_id)
    }

    fn no_unsent_holder(&self, email: &str, source_id: &str) -> bool {
        !self.others.contains(email)
            && self
                .holders
                .and_then(|h| h.get(email))
                .is_some_and(|holders| {
                    holders
                        .iter()
                        .all(|holder| holder == source_id || self.role_in_run(holder).is_some())
                })
    }
}

/// A class's term and school (by row id), for scoping deactivation to an event's terms
/// and schools.
#[derive(Clone, Copy)]
struct ClassScope {
    term_id: Option<i64>,
    school_id: Option<i64>,
}

/// foldhash instead of SipHash: these maps are hashed a few times per record (7% of an
/// import went into SipHash), and still seeded per process.
type FastMap<K, V> = foldhash::HashMap<K, V>;

/// A link the source supplied before: its fingerprint and two flags in one word, 8
/// bytes for each of a district's millions of enrollments instead of 16. The fingerprint
/// keeps its low 62 bits (a class teacher's is 0 or 1, a relationship's a hash).
#[derive(Clone, Copy)]
struct LinkEntry(u64);

impl LinkEntry {
    const ACTIVE: u64 = 1;
    const SEEN: u64 = 2;

    fn loaded(fingerprint: i64, active: bool) -> LinkEntry {
        let entry = LinkEntry((fingerprint as u64) << 2);
        if active {
            LinkEntry(entry.0 | Self::ACTIVE)
        } else {
            entry
        }
    }

    fn active(self) -> bool {
        self.0 & Self::ACTIVE != 0
    }

    fn seen(self) -> bool {
        self.0 & Self::SEEN != 0
    }

    fn has_fingerprint(self, fingerprint: i64) -> bool {
        self.0 >> 2 == ((fingerprint as u64) << 2) >> 2
    }

    fn mark_seen(&mut self) {
        self.0 |= Self::SEEN;
    }

    /// Seen in this run, active, with this fingerprint.
    fn set_current(&mut self, fingerprint: i64) {
        *self = LinkEntry(((fingerprint as u64) << 2) | Self::ACTIVE | Self::SEEN);
    }

    fn deactivate(&mut self) {
        self.0 &= !Self::ACTIVE;
    }
}

/// A map keyed by a pair of row ids, packed into one `u64` when both fit in 32 bits
/// (always, in practice): half the key size for the millions of enrollments.
struct PairMap<V> {
    narrow: FastMap<u64, V>,
    wide: FastMap<(i64, i64), V>,
}

impl<V> Default for PairMap<V> {
    fn default() -> Self {
        PairMap {
            narrow: FastMap::default(),
            wide: FastMap::default(),
        }
    }
}

fn packed((a, b): (i64, i64)) -> Option<u64> {
    match (u32::try_from(a), u32::try_from(b)) {
        (Ok(a), Ok(b)) => Some((u64::from(a) << 32) | u64::from(b)),
        _ => None,
    }
}

fn unpacked(key: u64) -> (i64, i64) {
    ((key >> 32) as i64, (key & 0xffff_ffff) as i64)
}

impl<V> PairMap<V> {
    fn get_mut(&mut self, key: &(i64, i64)) -> Option<&mut V> {
        match packed(*key) {
            Some(k) => self.narrow.get_mut(&k),
            None => self.wide.get_mut(key),
        }
    }

    fn reserve(&mut self, additional: usize) {
        self.narrow.reserve(additional);
    }

    /// `false` (and no change) when the key is there already.
    fn insert_new(&mut self, key: (i64, i64), value: V) -> bool {
        use std::collections::hash_map::Entry as Slot;
        match packed(key) {
            Some(k) => match self.narrow.entry(k) {
                Slot::Vacant(slot) => {
                    slot.insert(value);
                    true
                }
                Slot::Occupied(_) => false,
            },
            None => match self.wide.entry(key) {
                Slot::Vacant(slot) => {
                    slot.insert(value);
                    true
                }
                Slot::Occupied(_) => false,
            },
        }
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.narrow.values().chain(self.wide.values())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = ((i64, i64), &mut V)> {
        self.narrow
            .iter_mut()
            .map(|(k, v)| (unpacked(*k), v))
            .chain(self.wide.iter_mut().map(|(k, v)| (*k, v)))
    }
}

/// One kind of link: those the source supplied before, loaded up front for the diff and
/// for deactivation. Links new in this run are not kept: a new link is active and seen
/// by definition, and one sent twice is noticed by its write (see `Apply::link`).
#[derive(Default)]
struct Links {
    loaded: PairMap<LinkEntry>,
}

/// The links a source supplied before, of each kind.
#[derive(Default)]
struct SourceLinks {
    enrollments: Links,
    class_teachers: Links,
    relationships: Links,
}

impl SourceLinks {
    fn load(conn: &Connection, source: &str) -> rusqlite::Result<SourceLinks> {
        // Sized up front from the tables' row counts (an upper bound: other sources'
        // links count too): millions of entries would otherwise be rehashed as they grow.
        let load_links = |kind: LinkKind| -> rusqlite::Result<Links> {
            let table = kind.table().0;
            let rows: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            let mut links = Links::default();
            links.loaded.reserve(usize::try_from(rows).unwrap_or(0));
            let mut statement = conn.prepare(kind.select_sql(LinkRows::OfSource))?;
            let mut rows = statement.query([source])?;
            while let Some(row) = rows.next()? {
                let (pair, entry) = loaded_link(kind, row)?;
                links.loaded.insert_new(pair, entry);
            }
            Ok(links)
        };
        Ok(SourceLinks {
            enrollments: load_links(LinkKind::Enrollment)?,
            class_teachers: load_links(LinkKind::ClassTeacher)?,
            relationships: load_links(LinkKind::Relationship)?,
        })
    }

    fn of(&mut self, kind: LinkKind) -> &mut Links {
        match kind {
            LinkKind::Enrollment => &mut self.enrollments,
            LinkKind::ClassTeacher => &mut self.class_teachers,
            LinkKind::Relationship => &mut self.relationships,
        }
    }
}

/// The source's links, read alongside the run's first records (schools, people,
/// classes), or already here.
///
/// A district's re-sync loads millions of links, and no record needs them before the
/// first link: loading them alongside saves seconds of a run that is a few seconds long
/// when little changed.
fn load_links_alongside(
    tx: &Transaction<'_>,
    source: &str,
) -> rusqlite::Result<Alongside<SourceLinks>> {
    let owned = source.to_string();
    match Alongside::start(tx, "links loader", move |conn| {
        SourceLinks::load(conn, &owned)
    })? {
        Some(loading) => Ok(loading),
        None => Ok(Alongside::here(SourceLinks::load(tx, source)?)),
    }
}

/// The classes a source supplied before the run, by source id, and each one's scope.
#[derive(Default)]
struct SuppliedClasses {
    classes: Ids,
    /// By class row id.
    scope: FastMap<i64, ClassScope>,
}

impl SuppliedClasses {
    fn load(conn: &Connection, source: &str) -> rusqlite::Result<SuppliedClasses> {
        // Counted first (in the key's index) to size the maps once: grown by doubling,
        // they were copied again and again into fresh memory (at nyc's 280,000 classes,
        // 17,900 page faults against 10,000).
        let count: usize = conn.query_row(
            "SELECT count(*) FROM classes WHERE source = ?1",
            [source],
            |r| r.get(0),
        )?;
        let mut statement = conn.prepare(
            "SELECT source_id, id, fingerprint, active, term_id, school_id FROM classes
             WHERE source = ?1",
        )?;
        let mut rows = statement.query([source])?;
        let mut supplied = SuppliedClasses {
            classes: Ids::with_capacity(count),
            scope: FastMap::with_capacity_and_hasher(count, Default::default()),
        };
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(1)?;
            supplied.classes.insert(
                row.get_ref(0)?.as_str()?,
                Entry::unseen(id, row.get(2)?, row.get(3)?),
            );
            let scope = ClassScope {
                term_id: row.get(4)?,
                school_id: row.get(5)?,
            };
            supplied.scope.insert(id, scope);
        }
        Ok(supplied)
    }
}

/// The source's classes, read alongside from the job's start, before the plugin's first
/// record says whether the run is complete or continues.
///
/// A complete run needs them all and waits for them (while the plugin starts). A
/// continuing one looks up only those it names: one by one on its own connection until
/// the read is over, from the map after it. At nyc a night names more than
/// [`CLASSES_ONE_BY_ONE`] of the 280,000 (students changing classes), and loading them
/// all in the middle of the run was 6-7% of a re-sync's busiest thread; a Clever re-sync
/// reads them while its plugin reads the events. A small night ends before the read
/// does, which is then stopped. People are looked up one by one whatever the
/// size: reading the source's millions alongside took three seconds of the core the
/// plugin reads on, and each person a night names is one whose pages its write reads
/// anyway.
pub struct SuppliedBefore(Option<Alongside<SuppliedClasses>>);

impl SuppliedBefore {
    /// `empty`: a roster without data, where there is nothing to read.
    pub fn start(tx: &Transaction<'_>, source: &str, empty: bool) -> rusqlite::Result<Self> {
        if empty {
            return Ok(SuppliedBefore(None));
        }
        let source = source.to_string();
        Ok(SuppliedBefore(Alongside::start(
            tx,
            "classes loader",
            move |conn| SuppliedClasses::load(conn, &source),
        )?))
    }
}

/// The statements every record runs, prepared once for the import: `prepare_cached`
/// finds a statement by hashing its whole SQL text, on every call (4% of an import).
struct Hot<'t> {
    contact_source: RefCell<Statement<'t>>,
    contact: RefCell<Statement<'t>>,
    /// `contact_ids` inserts of 1 to [`IDS_PER_INSERT`] rows, each prepared when first
    /// needed.
    contact_ids: RefCell<Vec<Option<Statement<'t>>>>,
    contact_school: RefCell<Statement<'t>>,
    enrollment: RefCell<Statement<'t>>,
    class_teacher: RefCell<Statement<'t>>,
    relationship: RefCell<Statement<'t>>,
}

impl<'t> Hot<'t> {
    fn prepare(tx: &'t Transaction<'t>) -> rusqlite::Result<Self> {
        Ok(Hot {
            contact_source: RefCell::new(tx.prepare(
                "INSERT INTO contact_sources (contact_id, source, source_id, fingerprint) VALUES (?1, ?2, ?3, ?4)",
            )?),
            contact: RefCell::new(tx.prepare(
                "INSERT INTO contacts (role, first_name, last_name, middle_name, email, phone, birth_date,
                 grade, security_value, room, access_level, attributes, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?),
            contact_ids: RefCell::new((0..IDS_PER_INSERT).map(|_| None).collect()),
            contact_school: RefCell::new(tx.prepare(
                "INSERT OR IGNORE INTO contact_schools (contact_id, school_id) VALUES (?1, ?2)",
            )?),
            enrollment: RefCell::new(tx.prepare(
                "INSERT INTO enrollments (class_id, contact_id) VALUES (?1, ?2)
                 ON CONFLICT (class_id, contact_id) DO NOTHING",
            )?),
            class_teacher: RefCell::new(tx.prepare(
                "INSERT INTO class_teachers (class_id, contact_id, is_primary) VALUES (?1, ?2, ?3)
                 ON CONFLICT (class_id, contact_id) DO NOTHING",
            )?),
            relationship: RefCell::new(tx.prepare(
                "INSERT INTO relationships (parent_id, student_id, relationship, type, source) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (parent_id, student_id) DO UPDATE SET active = 1, relationship = excluded.relationship,
                 type = excluded.type, source = excluded.source WHERE relationships.source IS NOT excluded.source",
            )?),
        })
    }

    /// Insert the link `key` of `kind` unless this source has it already (a
    /// relationship another source has becomes this one's); returns how many rows
    /// changed.
    fn insert_link(
        &self,
        kind: LinkKind,
        key: (i64, i64),
        fp: i64,
        relationship: Option<&str>,
        contact_type: Option<&str>,
        source: &str,
    ) -> rusqlite::Result<usize> {
        match kind {
            LinkKind::Enrollment => self.enrollment.borrow_mut().execute(params![key.0, key.1]),
            LinkKind::ClassTeacher => self
                .class_teacher
                .borrow_mut()
                .execute(params![key.0, key.1, fp]),
            LinkKind::Relationship => self.relationship.borrow_mut().execute(params![
                key.0,
                key.1,
                relationship,
                contact_type,
                source
            ]),
        }
    }

    /// Insert (contact id, kind, value) `rows` (at most [`IDS_PER_INSERT`]), skipping
    /// any the source already gives a contact; returns how many went in.
    fn insert_id_rows(
        &self,
        tx: &'t Transaction<'t>,
        source: &str,
        rows: &[(i64, &str, &str)],
    ) -> rusqlite::Result<usize> {
        let mut statements = self.contact_ids.borrow_mut();
        let statement = match &mut statements[rows.len() - 1] {
            Some(statement) => statement,
            slot => slot.insert(tx.prepare(&contact_ids_sql(rows.len()))?),
        };
        statement.raw_bind_parameter(1, source)?;
        for (i, (contact_id, kind, value)) in rows.iter().enumerate() {
            statement.raw_bind_parameter(2 + 3 * i, contact_id)?;
            statement.raw_bind_parameter(3 + 3 * i, kind)?;
            statement.raw_bind_parameter(4 + 3 * i, value)?;
        }
        statement.raw_execute()
    }
}

/// `rows` rows of (contact id, kind, value) for one source, which is `?1`.
///
/// `OR IGNORE` and not `ON CONFLICT … DO NOTHING`: both skip a row whose key is taken,
/// but with the latter the `NOT NULL` constraints may abort a statement of several rows
/// halfway, so SQLite copied every page the statement touched into a statement journal
/// first (a sixth of writing a first import's identifiers). The values bound are never
/// NULL, and `contact_ids` has no other constraint `OR IGNORE` would pass over; foreign
/// keys, when on, still refuse the statement whole.
fn contact_ids_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| format!("(?{}, ?1, ?{}, ?{})", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i))
        .collect();
    format!(
        "INSERT OR IGNORE INTO contact_ids (contact_id, source, kind, value) VALUES {}",
        values.join(", ")
    )
}

/// Identifiers written by one statement. Clever gives every person four to six, and a
/// statement per identifier paid for binding, opening its cursors and resetting on every
/// row (about a tenth of writing them). A first import writes them all at its end, in
/// groups of this many: 32 wrote nyc Clever's 11.4 million in 4.6 s, 8 in 5.1 s, 96 in 4.8 s.
const IDS_PER_INSERT: usize = 32;

pub struct Apply<'t> {
    tx: &'t Transaction<'t>,
    hot: Hot<'t>,
    /// Every other statement a record may run (see `statements.rs`).
    statements: Statements<'t>,
    source: String,
    access: AccessDefaults,
    pub scope: Scope,
    pub summary: Summary,
    schools: Ids,
    terms: Ids,
    classes: Ids,
    /// By class row id.
    class_scope: FastMap<i64, ClassScope>,
    people: Ids,
    links: Alongside<SourceLinks>,
    /// A first import's identifiers, written at its end in key order (`pending_ids.rs`);
    /// `None` when the roster had contacts, whose identifiers others may look up.
    pending_ids: Option<RefCell<PendingIds>>,
    /// `Some` in a run that continues from a checkpoint.
    continuing: Option<Continuing>,
    /// A continuing run of an event: the classes the event lacked, read alongside.
    unattached: Option<UnattachedAlongside>,
    /// Identifiers a person was given that another of the source's contacts of its role
    /// still holds: settled at the end of the run (see [`Apply::settle_contested`]).
    contested: RefCell<Vec<Contested>>,
    /// In a continuing run, every contact the run has written anything of so far: what
    /// the roster held for them before the run no longer holds (see [`Apply::offer`]).
    touched: RefCell<foldhash::HashSet<i64>>,
}

/// A person's identifier that another contact of this source and role held when the
/// person was written.
struct Contested {
    contact_id: i64,
    role: String,
    source_id: String,
    kind: String,
    value: String,
}

/// What a continuing run keeps besides the maps.
#[derive(Default)]
struct Continuing {
    /// The link owners (class or parent row id) whose links the run replaces: their
    /// links are in `links`, loaded when the owner was named.
    replaced: foldhash::HashSet<(LinkKind, i64)>,
    /// Contacts and classes the run removed: their links from this source go too, at the
    /// end, as a complete run's would for links it no longer sends.
    removed_contacts: Vec<i64>,
    removed_classes: Vec<i64>,
    /// Source ids found by another identifier of theirs (`*_id_kind`), by kind and value.
    by_identifier: FastMap<(String, String), Option<String>>,
    /// Class and person ids already looked up in the roster (found or not).
    looked_up: foldhash::HashSet<(MapName, Digest)>,
    /// Classes looked up one by one so far; past [`CLASSES_ONE_BY_ONE`], all of them are
    /// loaded at once and `all_classes` is set.
    classes_looked_up: usize,
    all_classes: bool,
    /// The classes the source supplied before, while and once read alongside.
    supplied: Option<Alongside<SuppliedClasses>>,
    /// What people looked up ahead (`ahead.rs`) showed of the roster before the run,
    /// taken by [`Apply::offer`] for contacts the run had not written yet:
    /// - each contact's identifiers from this source, for [`Apply::identifiers_had`];
    identifiers_before: FastMap<i64, Vec<(String, String)>>,
    /// - the contacts that had no row of this source but one person's (by contact, that
    ///   person's source id), and those the run created: once the run sent that person,
    ///   every row of this source they have is one the run sent;
    alone: FastMap<i64, String>,
    /// - the people of this source whose contact had each teacher's or parent's email
    ///   the run sent, by the email as the dedupe stage compares it (`UnsentCheck`).
    email_holders: FastMap<String, Vec<String>>,
}

/// How many classes a continuing run looks up one at a time before it loads all of the
/// source's: nyc's 280,000 load in a tenth of a second, the time of some twenty thousand
/// lookups, and a night when many students changed classes names tens of thousands.
pub(super) const CLASSES_ONE_BY_ONE: usize = 10_000;

/// What a run compares a school, term, class or person with to know whether it changed:
/// the hash of the record as the host encodes it (whatever bytes the plugin sent), so that
/// a plugin built with another encoder changes nothing. 0 for the other records.
pub fn fingerprint_of(record: &Record) -> i64 {
    match &record.kind {
        Some(Kind::School(school)) => fingerprint(&school.encode_to_vec()),
        Some(Kind::Term(term)) => fingerprint(&term.encode_to_vec()),
        Some(Kind::Class(class)) => fingerprint(&class.encode_to_vec()),
        Some(Kind::Person(person)) => fingerprint(&person.encode_to_vec()),
        _ => 0,
    }
}

/// Never 0: a `contact_sources` row with a fingerprint of 0 means that its contact carries
/// the fingerprint (migration 9).
fn fingerprint(bytes: &[u8]) -> i64 {
    match xxhash_rust::xxh3::xxh3_64(bytes) as i64 {
        0 => 1,
        fingerprint => fingerprint,
    }
}

/// A changed contact's columns that no index reads, and (RETURNING) whether it carries
/// its fingerprint and whether its email, or its role, names or birth date, differ from
/// `?9` and `?10`–`?13`.
const UPDATE_UNINDEXED: &str =
    "UPDATE contacts SET middle_name = ?2, phone = ?3, grade = ?4, security_value = ?5,
     room = ?6, attributes = ?7, active = 1, fingerprint = iif(fingerprint IS NULL, NULL, ?8)
     WHERE id = ?1
     RETURNING fingerprint IS NOT NULL, email IS NOT ?9,
       role IS NOT ?10 OR first_name IS NOT ?11 OR last_name IS NOT ?12 OR birth_date IS NOT ?13";
/// The column `contacts_email` reads.
const UPDATE_EMAIL: &str = "UPDATE contacts SET email = ?2 WHERE id = ?1";
/// The columns `contacts_student_match` reads, its condition's included.
const UPDATE_MATCHED: &str =
    "UPDATE contacts SET role = ?2, first_name = ?3, last_name = ?4, birth_date = ?5 WHERE id = ?1";

/// A person's fingerprint as the roster keeps it: in the `contact_sources` row, or, for a
/// contact one source alone supplies, in the contact (the row's is then 0). A contact
/// without one (never expected) reads as 0, which no record matches: it is rewritten. A
/// macro, so that the queries are whole constants: a continuing run looks people up one
/// by one, and [`Statements`] finds each statement by where its text lies.
macro_rules! person_fingerprint {
    () => {
        "coalesce(nullif(cs.fingerprint, 0), c.fingerprint, 0)"
    };
}

#[cfg(test)]
thread_local! {
    /// Answers looked up ahead that the job took (`Apply::offer`), for the tests.
    pub(super) static OFFERS_TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Contacts' identifiers looked up ahead that `identifiers_had` took, for the tests.
    pub(super) static IDENTIFIERS_TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Links a continuing run read from the roster one by one (`Apply::link`), for the tests.
    pub(super) static LINK_ROWS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A person of this source by source id, as `ensure` loads one: contact, fingerprint,
/// active, role. A `static`, so that the job's statement pool finds it by one address;
/// the lookups ahead (`ahead.rs`) ask the very same.
pub(super) static PERSON_BY_SOURCE_ID: &str = concat!(
    "SELECT cs.contact_id, ",
    person_fingerprint!(),
    ", cs.active, c.role
     FROM contact_sources cs JOIN contacts c ON c.id = cs.contact_id
     WHERE cs.source = ?1 AND cs.source_id = ?2"
);

/// A contact's identifiers from a source: (kind, value).
pub(super) static IDENTIFIERS_OF_CONTACT: &str =
    "SELECT kind, value FROM contact_ids WHERE contact_id = ?1 AND source = ?2";

/// The source id of the person this source gave identifier (`?1`, `?2`), and the contact
/// holding it. The source's own identifiers: written with each person, including those
/// sent earlier in this run.
pub(super) static SOURCE_ID_BY_IDENTIFIER: &str =
    "SELECT s.source_id, i.contact_id FROM contact_ids i
     JOIN contact_sources s ON s.contact_id = i.contact_id AND s.source = i.source
     WHERE i.kind = ?1 AND i.value = ?2 AND i.source = ?3";

fn attributes_json(attributes: &BTreeMap<String, String>) -> Option<String> {
    (!attributes.is_empty()).then(|| serde_json::to_string(attributes).expect("string map"))
}

/// Most texts have nothing to trim: those keep their allocation.
fn trim_in_place(text: &mut String) {
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        *text = trimmed.to_string();
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn entity_of(role: Role) -> EntityName {
    match role {
        Role::Student => EntityName::Students,
        Role::Teacher => EntityName::Teachers,
        Role::Parent => EntityName::Parents,
        Role::Staff | Role::Unspecified => EntityName::Staff,
    }
}

fn role_from_db(text: &str) -> Role {
    match text {
        "student" => Role::Student,
        "teacher" => Role::Teacher,
        "parent" => Role::Parent,
        _ => Role::Staff,
    }
}

impl<'t> Apply<'t> {
    /// `bulk`: the roster has no contacts yet (`bulk.rs`), so nothing looks up
    /// `contact_ids` while the run goes on, and identifiers are written at its end.
    pub fn new(
        tx: &'t Transaction<'t>,
        source: &str,
        access: &AccessDefaults,
        mut scope: Scope,
        bulk: bool,
        continuing: bool,
        supplied: SuppliedBefore,
    ) -> rusqlite::Result<Self> {
        // An empty roster has no links to load (they refer to contacts); a continuing run
        // loads those of the owners it replaces, when it names them.
        let links = if bulk || continuing {
            Alongside::here(SourceLinks::default())
        } else {
            load_links_alongside(tx, source)?
        };
        if continuing {
            // What a complete run established about the event's scope is in the roster:
            // the schools and terms it took are the source's there, and no others.
            let active = |table: &str| -> rusqlite::Result<Vec<String>> {
                let mut statement = tx.prepare(&format!(
                    "SELECT source_id FROM {table} WHERE source = ?1 AND active = 1"
                ))?;
                let ids = statement.query_map([source], |r| r.get(0))?;
                ids.collect()
            };
            scope.resume(active("schools")?, active("terms")?);
        }
        let load = |sql: &str| -> rusqlite::Result<Ids> {
            let mut statement = tx.prepare(sql)?;
            let mut rows = statement.query([source])?;
            let mut ids = Ids::default();
            while let Some(row) = rows.next()? {
                ids.insert(
                    row.get_ref(0)?.as_str()?,
                    Entry::unseen(row.get(1)?, row.get(2)?, row.get(3)?),
                );
            }
            Ok(ids)
        };
        let schools =
            load("SELECT source_id, id, fingerprint, active FROM schools WHERE source = ?1")?;
        let terms = load("SELECT source_id, id, fingerprint, active FROM terms WHERE source = ?1")?;
        // A continuing run looks its classes and people up as it names them (`ensure`):
        // loading a district's millions was half of a night's sync.
        let (classes, people, continuing) = match (supplied.0, continuing) {
            (classes, true) => (
                SuppliedClasses::default(),
                Ids::default(),
                Some(Continuing {
                    supplied: classes,
                    ..Continuing::default()
                }),
            ),
            (Some(classes), false) => {
                let people = Self::load_people(tx, source)?;
                (classes.wait()?, people, None)
            }
            (None, false) => (
                SuppliedClasses::load(tx, source)?,
                Self::load_people(tx, source)?,
                None,
            ),
        };
        Ok(Apply {
            tx,
            hot: Hot::prepare(tx)?,
            statements: Statements::new(tx),
            source: source.to_string(),
            access: access.clone(),
            scope,
            summary: Summary::default(),
            schools,
            terms,
            classes: classes.classes,
            class_scope: classes.scope,
            people,
            links,
            pending_ids: bulk.then(RefCell::default),
            continuing,
            contested: RefCell::default(),
            touched: RefCell::default(),
            unattached: None,
        })
    }

    /// Every person the source supplied before, by source id.
    fn load_people(conn: &Connection, source: &str) -> rusqlite::Result<Ids> {
        // Sized up front (an upper bound: other sources' contacts count too), so that
        // a district's millions are not rehashed as the map grows.
        let contacts: i64 = conn.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
        let mut people = Ids::with_capacity(usize::try_from(contacts).unwrap_or(0));
        let mut statement = conn.prepare(concat!(
            "SELECT cs.source_id, cs.contact_id, ",
            person_fingerprint!(),
            ", cs.active, c.role
             FROM contact_sources cs JOIN contacts c ON c.id = cs.contact_id
             WHERE cs.source = ?1"
        ))?;
        let mut rows = statement.query([source])?;
        while let Some(row) = rows.next()? {
            let mut entry = Entry::unseen(row.get(1)?, row.get(2)?, row.get(3)?);
            entry.set_role(role_from_db(row.get_ref(4)?.as_str()?));
            people.insert(row.get_ref(0)?.as_str()?, entry);
        }
        Ok(people)
    }

    /// A continuing run has written something of contact `contact_id`.
    fn touch(&self, contact_id: i64) {
        if self.continuing.is_some() {
            self.touched.borrow_mut().insert(contact_id);
        }
    }

    /// What the roster held before the run for a name the next record gives, looked up
    /// ahead on another connection (`ahead.rs`): taken where it is what this connection
    /// would answer now, that is for a contact the run has written nothing of, and only
    /// into a map that has nothing for the name yet. `ensure` and `source_id_of` then
    /// find it there instead of asking. Anything else is left for them to ask.
    pub fn offer(&mut self, found: Found) {
        let Some(continuing) = &mut self.continuing else {
            return;
        };
        let touched = self.touched.borrow();
        match found {
            Found::Identifier {
                kind,
                value,
                source_id,
                contact_id,
            } => {
                if touched.contains(&contact_id) {
                    return;
                }
                if let std::collections::hash_map::Entry::Vacant(vacant) =
                    continuing.by_identifier.entry((kind, value))
                {
                    vacant.insert(Some(source_id));
                    #[cfg(test)]
                    OFFERS_TAKEN.with(|taken| taken.set(taken.get() + 1));
                }
            }
            Found::Person {
                source_id,
                contact_id,
                fingerprint,
                active,
                role,
            } => {
                if touched.contains(&contact_id) || self.people.get(&source_id).is_some() {
                    return;
                }
                if continuing
                    .looked_up
                    .insert((MapName::People, digest(&source_id)))
                {
                    let mut entry = Entry::unseen(contact_id, fingerprint, active);
                    entry.set_role(role_from_db(&role));
                    self.people.insert(&source_id, entry);
                    #[cfg(test)]
                    OFFERS_TAKEN.with(|taken| taken.set(taken.get() + 1));
                }
            }
            Found::Contact {
                contact_id,
                person,
                alone,
                identifiers,
            } => {
                if touched.contains(&contact_id) {
                    return;
                }
                if alone {
                    continuing.alone.insert(contact_id, person);
                }
                continuing
                    .identifiers_before
                    .entry(contact_id)
                    .or_insert(identifiers);
            }
            // Not a contact's: who held the email is checked against who the run sent,
            // at its end (`UnsentCheck`).
            Found::EmailHolders { email, holders } => {
                continuing.email_holders.entry(email).or_insert(holders);
            }
        }
    }

    /// In a continuing run, what the roster has for class or person `id`, into its map
    /// (once per id): a class from those read alongside once they are here, else (and a
    /// person always) by a point query.
    fn ensure(&mut self, map: MapName, id: &str) -> rusqlite::Result<()> {
        let Some(continuing) = &mut self.continuing else {
            return Ok(());
        };
        if map == MapName::Classes && continuing.all_classes {
            return Ok(());
        }
        if !continuing.looked_up.insert((map, digest(id))) {
            return Ok(());
        }
        let known = match map {
            MapName::Classes => self.classes.get(id).is_some(),
            MapName::People => self.people.get(id).is_some(),
            _ => true,
        };
        if known {
            return Ok(());
        }
        if map == MapName::Classes {
            if let Some(supplied) = match &mut continuing.supplied {
                Some(supplied) => supplied.ready()?,
                None => None,
            } {
                if let Some(entry) = supplied.classes.get(id) {
                    self.classes.insert(id, *entry);
                    if let Some(scope) = supplied.scope.get(&entry.row) {
                        self.class_scope.insert(entry.row, *scope);
                    }
                }
                return Ok(());
            }
        }
        match map {
            MapName::Classes => {
                continuing.classes_looked_up += 1;
                if continuing.classes_looked_up > CLASSES_ONE_BY_ONE {
                    continuing.all_classes = true;
                    return self.load_all_classes();
                }
                let found = self
                    .statements
                    .get(
                        "SELECT id, fingerprint, active, term_id, school_id FROM classes
                         WHERE source = ?1 AND source_id = ?2",
                    )?
                    .query_row(params![self.source, id], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            ClassScope {
                                term_id: r.get(3)?,
                                school_id: r.get(4)?,
                            },
                        ))
                    })
                    .optional()?;
                if let Some((row, fingerprint, active, scope)) = found {
                    self.classes
                        .insert(id, Entry::unseen(row, fingerprint, active));
                    self.class_scope.insert(row, scope);
                }
            }
            MapName::People => {
                let found = self
                    .statements
                    .get(PERSON_BY_SOURCE_ID)?
                    .query_row(params![self.source, id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
                    })
                    .optional()?;
                if let Some((row, fingerprint, active, role)) = found {
                    let mut entry = Entry::unseen(row, fingerprint, active);
                    entry.set_role(role_from_db(&role));
                    self.people.insert(id, entry);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Every class of the source the run has not looked up yet, at once.
    fn load_all_classes(&mut self) -> rusqlite::Result<()> {
        // Sized up front (an upper bound: other sources' classes count too), as for
        // people: a district's hundreds of thousands would otherwise be rehashed.
        let classes: i64 = self
            .tx
            .query_row("SELECT count(*) FROM classes", [], |r| r.get(0))?;
        let classes = usize::try_from(classes).unwrap_or(0);
        self.classes.reserve(classes);
        self.class_scope.reserve(classes);
        let mut statement = self.statements.get(
            "SELECT source_id, id, fingerprint, active, term_id, school_id FROM classes
             WHERE source = ?1",
        )?;
        let mut rows = statement.query([&self.source])?;
        while let Some(row) = rows.next()? {
            let source_id = row.get_ref(0)?.as_str()?;
            // One the run already has may have changed in it: the run's entry stays.
            if self.classes.get(source_id).is_some() {
                continue;
            }
            let id: i64 = row.get(1)?;
            self.classes
                .insert(source_id, Entry::unseen(id, row.get(2)?, row.get(3)?));
            self.class_scope.insert(
                id,
                ClassScope {
                    term_id: row.get(4)?,
                    school_id: row.get(5)?,
                },
            );
        }
        Ok(())
    }

    /// The run's people for `check_unsent` (see [`UnsentCheck`]): reads the email of
    /// each contact the run wrote that is not known `alone` with a person it sent.
    pub fn unsent_check(&self) -> rusqlite::Result<UnsentCheck<'_>> {
        let holders = self.continuing.as_ref().map(|c| &c.email_holders);
        let mut others = foldhash::HashSet::default();
        if let Some(continuing) = self
            .continuing
            .as_ref()
            .filter(|c| !c.email_holders.is_empty())
        {
            // As `check_unsent`'s query compares them: SQLite's lower() of the email.
            let mut statement = self.statements.get(
                "SELECT lower(email) FROM contacts
                 WHERE id = ?1 AND email IS NOT NULL AND role IN ('teacher', 'parent')",
            )?;
            for contact_id in self.touched.borrow().iter() {
                let alone_with_sent = continuing
                    .alone
                    .get(contact_id)
                    .is_some_and(|person| self.people.role_in_run(person).is_some());
                if alone_with_sent {
                    continue;
                }
                if let Some(email) = statement
                    .query_row(params![contact_id], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    others.insert(email);
                }
            }
        }
        Ok(UnsentCheck {
            people: &self.people,
            holders,
            others,
        })
    }

    pub fn finish(self) -> Summary {
        self.summary
    }

    /// How many records of each entity this source had active before the run: the
    /// base the mass-deactivation guard measures against.
    pub fn active_before(&mut self) -> rusqlite::Result<Vec<(EntityName, u64)>> {
        let summary = &self.summary;
        let source_links = self.links.get()?;
        let count = |map: &Ids| {
            map.values()
                .filter(|e| e.active() && e.id().is_some())
                .count() as u64
        };
        // Every link inserted in this run is active.
        let links = |links: &Links, entity: EntityName| {
            links.loaded.values().filter(|e| e.active()).count() as u64
                + summary.get(entity).inserted
        };
        let mut counts = vec![
            (EntityName::Schools, count(&self.schools)),
            (EntityName::Terms, count(&self.terms)),
            (EntityName::Classes, count(&self.classes)),
            (
                EntityName::Enrollments,
                links(&source_links.enrollments, EntityName::Enrollments),
            ),
            (
                EntityName::ClassTeachers,
                links(&source_links.class_teachers, EntityName::ClassTeachers),
            ),
            (
                EntityName::Relationships,
                links(&source_links.relationships, EntityName::Relationships),
            ),
        ];
        for role in [Role::Student, Role::Teacher, Role::Parent, Role::Staff] {
            let n = self
                .people
                .values()
                .filter(|e| e.active() && e.id().is_some() && e.role() == Some(role))
                .count() as u64;
            counts.push((entity_of(role), n));
        }
        Ok(counts)
    }

    fn invalid(&self, message: String) -> ApplyError {
        ApplyError::Invalid(message)
    }

    /// Look up a reference: `Ok(Some(id))` written, `Ok(None)` skipped (drop the record
    /// that refers to it), `Err` when the source never sent it. `referrer` names the record
    /// that refers, for the error only (it is not formatted for the millions that resolve).
    fn resolve(
        &self,
        map: &Ids,
        what: &str,
        id: &str,
        referrer: &dyn Fn() -> String,
    ) -> Result<Option<i64>> {
        match map.get(id) {
            Some(entry) if entry.seen() == Seen::Written => Ok(entry.id()),
            Some(entry) if entry.seen() == Seen::Skipped => Ok(None),
            // A continuing run refers to what it did not change: as the roster has it.
            Some(entry) if self.continuing.is_some() && entry.active() => Ok(entry.id()),
            Some(_) if self.continuing.is_some() => Err(self.invalid(format!(
                "{} refers to {what} `{id}`, which the source removed in an earlier run",
                referrer()
            ))),
            // Never written: outside the event's school or terms when a complete run read it.
            None if self.continuing.is_some()
                && (self.scope.filters_schools() || self.scope.filters_terms()) =>
            {
                Ok(None)
            }
            _ => Err(self.invalid(format!(
                "{} refers to {what} `{id}`, which the source has not sent (a plugin must send a record before the records that refer to it)",
                referrer()
            ))),
        }
    }

    /// The common decision for schools, terms and classes: seen twice, unchanged,
    /// changed, or new. Returns the existing id when a write is needed for it.
    fn upsert_decision(map: &mut Ids, key: &str, fp: i64) -> std::result::Result<Decision, ()> {
        match map.get_mut(key) {
            Some(entry) if entry.seen() != Seen::No => {
                if entry.has_fingerprint(fp) {
                    Ok(Decision::Repeat)
                } else {
                    Err(())
                }
            }
            Some(entry) => {
                entry.set_seen(Seen::Written);
                if entry.has_fingerprint(fp) && entry.active() {
                    Ok(Decision::Unchanged)
                } else {
                    entry.set_fingerprint(fp);
                    entry.set_active(true);
                    Ok(Decision::Update(
                        entry.id().expect("loaded from the database"),
                    ))
                }
            }
            None => Ok(Decision::Insert),
        }
    }

    /// `fp`: the school's [`fingerprint_of`].
    pub fn school(&mut self, school: School, fp: i64) -> Result<()> {
        if school.source_id.trim().is_empty() {
            return Err(self.invalid(format!("school `{}` has no id", school.name)));
        }
        if school.name.trim().is_empty() {
            return Err(self.invalid(format!("school `{}` has no name", school.source_id)));
        }
        if !self.scope.take_school(&school) {
            self.mark_skipped(MapName::Schools, &school.source_id);
            return Ok(());
        }
        let decision =
            Self::upsert_decision(&mut self.schools, &school.source_id, fp).map_err(|_| {
                self.invalid(format!(
                    "school `{}` was sent twice with different data",
                    school.source_id
                ))
            })?;
        let attributes = attributes_json(&school.attributes);
        let counts = self.summary.counts(EntityName::Schools);
        match decision {
            Decision::Repeat => {}
            Decision::Unchanged => counts.unchanged += 1,
            Decision::Update(id) => {
                counts.updated += 1;
                self.statements.get(
                    "UPDATE schools SET name = ?2, sis_id = ?3, school_number = ?4, state_id = ?5,
                     attributes = ?6, fingerprint = ?7, active = 1 WHERE id = ?1",
                )?
                .execute(params![id, school.name, school.sis_id, school.school_number, school.state_id, attributes, fp])?;
            }
            Decision::Insert => {
                counts.inserted += 1;
                self.statements.get(
                    "INSERT INTO schools (source, source_id, name, sis_id, school_number, state_id, attributes, fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![self.source, school.source_id, school.name, school.sis_id, school.school_number, school.state_id, attributes, fp])?;
                let id = self.tx.last_insert_rowid();
                self.schools.insert(
                    &school.source_id,
                    Entry::new_in_run(Some(id), fp, Seen::Written),
                );
            }
        }
        Ok(())
    }

    /// `fp`: the term's [`fingerprint_of`].
    pub fn term(&mut self, term: Term, fp: i64) -> Result<()> {
        if term.source_id.trim().is_empty() {
            return Err(self.invalid(format!("term `{}` has no id", term.name)));
        }
        let school_id = match non_empty(&term.school_id) {
            Some(id) => self.resolve(&self.schools, "school", id, &|| {
                format!("term `{}`", term.source_id)
            })?,
            None => None,
        };
        if !self.scope.take_term(&term) {
            self.summary.out_of_scope += 1;
            self.mark_skipped(MapName::Terms, &term.source_id);
            return Ok(());
        }
        let decision =
            Self::upsert_decision(&mut self.terms, &term.source_id, fp).map_err(|_| {
                self.invalid(format!(
                    "term `{}` was sent twice with different data",
                    term.source_id
                ))
            })?;
        let attributes = attributes_json(&term.attributes);
        let counts = self.summary.counts(EntityName::Terms);
        match decision {
            Decision::Repeat => {}
            Decision::Unchanged => counts.unchanged += 1,
            Decision::Update(id) => {
                counts.updated += 1;
                self.statements.get(
                    "UPDATE terms SET school_id = ?2, name = ?3, start_date = ?4, end_date = ?5,
                     attributes = ?6, fingerprint = ?7, active = 1 WHERE id = ?1",
                )?
                .execute(params![id, school_id, term.name, term.start_date, term.end_date, attributes, fp])?;
            }
            Decision::Insert => {
                counts.inserted += 1;
                self.statements.get(
                    "INSERT INTO terms (source, source_id, school_id, name, start_date, end_date, attributes, fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![self.source, term.source_id, school_id, term.name, term.start_date, term.end_date, attributes, fp])?;
                let id = self.tx.last_insert_rowid();
                self.terms.insert(
                    &term.source_id,
                    Entry::new_in_run(Some(id), fp, Seen::Written),
                );
            }
        }
        Ok(())
    }

    /// `fp`: the class's [`fingerprint_of`].
    pub fn class(&mut self, class: Class, fp: i64) -> Result<()> {
        if class.source_id.trim().is_empty() {
            return Err(self.invalid(format!("class `{}` has no id", class.name)));
        }
        let referrer = || format!("class `{}`", class.source_id);
        let school_ref = non_empty(&class.school_id);
        let term_ref = non_empty(&class.term_id);
        let school_id = match school_ref {
            Some(id) => self.resolve(&self.schools, "school", id, &referrer)?,
            None => None,
        };
        let term_id = match term_ref {
            Some(id) => self.resolve(&self.terms, "term", id, &referrer)?,
            None => None,
        };
        if !self.scope.takes_class(school_ref, term_ref) {
            self.summary.out_of_scope += 1;
            self.mark_skipped(MapName::Classes, &class.source_id);
            return Ok(());
        }
        let name = if class.name.trim().is_empty() {
            class.source_id.clone()
        } else {
            class.name.clone()
        };
        self.ensure(MapName::Classes, &class.source_id)?;
        let decision =
            Self::upsert_decision(&mut self.classes, &class.source_id, fp).map_err(|_| {
                self.invalid(format!(
                    "class `{}` was sent twice with different data",
                    class.source_id
                ))
            })?;
        let attributes = attributes_json(&class.attributes);
        let counts = self.summary.counts(EntityName::Classes);
        match decision {
            Decision::Repeat => {}
            Decision::Unchanged => counts.unchanged += 1,
            Decision::Update(id) => {
                counts.updated += 1;
                self.statements.get(
                    "UPDATE classes SET school_id = ?2, term_id = ?3, name = ?4, group_name = ?5,
                     appointments_per_parent = ?6, subject = ?7, course = ?8, period = ?9, sis_id = ?10,
                     attributes = ?11, fingerprint = ?12, active = 1 WHERE id = ?1",
                )?
                .execute(params![id, school_id, term_id, name, class.group_name, class.appointments_per_parent,
                    class.subject, class.course, class.period, class.sis_id, attributes, fp])?;
            }
            Decision::Insert => {
                counts.inserted += 1;
                self.statements.get(
                    "INSERT INTO classes (source, source_id, school_id, term_id, name, group_name,
                     appointments_per_parent, subject, course, period, sis_id, attributes, fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?
                .execute(params![self.source, class.source_id, school_id, term_id, name, class.group_name,
                    class.appointments_per_parent, class.subject, class.course, class.period, class.sis_id,
                    attributes, fp])?;
                let id = self.tx.last_insert_rowid();
                self.classes.insert(
                    &class.source_id,
                    Entry::new_in_run(Some(id), fp, Seen::Written),
                );
            }
        }
        if let Some(id) = self.classes.get(&class.source_id).and_then(Entry::id) {
            self.class_scope
                .insert(id, ClassScope { term_id, school_id });
        }
        Ok(())
    }

    /// `person` is normalised in place (names and email trimmed, a blank email none) and
    /// left to the caller, who frees it (see `pipeline::run`).
    /// `fp`: the person's [`fingerprint_of`], made before anything is taken out of it.
    pub fn person(
        &mut self,
        person: &mut Person,
        fp: i64,
        dedupe: &mut dyn DedupeStage,
    ) -> Result<()> {
        trim_in_place(&mut person.first_name);
        trim_in_place(&mut person.last_name);
        if let Some(email) = &mut person.email {
            trim_in_place(email);
            if email.is_empty() {
                person.email = None;
            }
        }
        let role = person.role();
        if person.source_id.trim().is_empty() {
            return Err(self.invalid(format!(
                "a {} named `{} {}` has no id",
                role.as_db_str(),
                person.first_name,
                person.last_name
            )));
        }
        if role == Role::Unspecified {
            return Err(self.invalid(format!("person `{}` has no role", person.source_id)));
        }
        if person.first_name.is_empty() && person.last_name.is_empty() {
            return Err(self.invalid(format!(
                "{} `{}` has no name",
                role.as_db_str(),
                person.source_id
            )));
        }
        let entity = entity_of(role);
        self.ensure(MapName::People, &person.source_id)?;
        if person.removed {
            return self.remove_person(&person.source_id, entity);
        }
        if !self.scope.takes_person(&person.school_ids) {
            self.summary.out_of_scope += 1;
            self.mark_skipped(MapName::People, &person.source_id);
            return Ok(());
        }
        let mut school_ids = Vec::with_capacity(person.school_ids.len());
        for school in &person.school_ids {
            let referrer = || format!("{} `{}`", role.as_db_str(), person.source_id);
            if let Some(id) = self.resolve(&self.schools, "school", school, &referrer)? {
                school_ids.push(id);
            }
        }
        let mut was_active = false;
        let existing = match self.people.get_mut(person.source_id.as_str()) {
            Some(entry) if entry.seen() != Seen::No => {
                if !entry.has_fingerprint(fp) {
                    dedupe.repeated(&self.source, person, entry.role());
                }
                return Ok(());
            }
            Some(entry) => {
                entry.set_seen(Seen::Written);
                was_active = entry.active();
                let unchanged = entry.has_fingerprint(fp) && entry.active();
                let active_as = entry.active().then(|| entry.role()).flatten();
                entry.set_fingerprint(fp);
                entry.set_active(true);
                entry.set_role(role);
                Some((
                    Known {
                        contact_id: entry.id().expect("loaded"),
                        changed: !unchanged,
                        ids_checked: false,
                    },
                    active_as,
                ))
            }
            None => None,
        };
        // A changed person's identifiers as the roster has them from this source, read
        // once for the dedupe stage and for writing only those that changed.
        let mut had = None;
        let existing = match existing {
            Some((mut known, active_as)) if known.changed => {
                let ids = self.identifiers_had(known.contact_id)?;
                known.ids_checked = active_as == Some(role)
                    && person
                        .identifiers
                        .iter()
                        .filter(|i| !i.kind.trim().is_empty() && !i.value.trim().is_empty())
                        .all(|i| ids.iter().any(|(k, v)| *k == i.kind && *v == i.value));
                had = Some(ids);
                Some(known)
            }
            other => other.map(|(known, _)| known),
        };
        let resolution = dedupe.check(self.tx, &self.source, person, existing, &self.people)?;
        match existing {
            Some(Known { changed: false, .. }) => self.summary.counts(entity).unchanged += 1,
            Some(Known { contact_id, .. }) => {
                self.summary.counts(entity).updated += 1;
                let carried = self.update_contact(contact_id, person, fp)?;
                self.replace_source_data(contact_id, person, &school_ids, had)?;
                if !carried {
                    self.statements
                        .get(
                            "UPDATE contact_sources SET fingerprint = ?3, active = 1 WHERE source = ?1 AND source_id = ?2",
                        )?
                        .execute(params![self.source, person.source_id, fp])?;
                } else if !was_active {
                    self.statements
                        .get(
                            "UPDATE contact_sources SET active = 1 WHERE source = ?1 AND source_id = ?2",
                        )?
                        .execute(params![self.source, person.source_id])?;
                }
            }
            None => {
                // A contact created just now has no identifiers or schools to replace.
                let fresh = resolution == Resolution::New;
                let contact_id = match resolution {
                    Resolution::New => {
                        self.summary.counts(entity).inserted += 1;
                        self.insert_contact(person, fp)?
                    }
                    Resolution::Link { contact_id } => {
                        self.summary.counts(entity).updated += 1;
                        self.summary.linked += 1;
                        self.fill_blanks(contact_id, person)?;
                        contact_id
                    }
                };
                // A new contact carries the fingerprint; a linked one now has two
                // sources, and each row keeps its own.
                self.touch(contact_id);
                if let (true, Some(continuing)) = (fresh, &mut self.continuing) {
                    continuing
                        .alone
                        .insert(contact_id, person.source_id.clone());
                }
                self.hot.contact_source.borrow_mut().execute(params![
                    contact_id,
                    self.source,
                    person.source_id,
                    if fresh { 0 } else { fp }
                ])?;
                let had = match fresh {
                    true => None,
                    false => Some(self.identifiers_had(contact_id)?),
                };
                self.replace_source_data(contact_id, person, &school_ids, had)?;
                let mut entry = Entry::new_in_run(Some(contact_id), fp, Seen::Written);
                entry.set_role(role);
                self.people.insert(&person.source_id, entry);
            }
        }
        Ok(())
    }

    /// A linked contact keeps what it had (names, access level, history); the new source
    /// only fills what was missing, and reactivates it. The source that supplied it alone
    /// until now gets its fingerprint back in its own row: the contact has two sources.
    fn fill_blanks(&self, contact_id: i64, person: &Person) -> rusqlite::Result<()> {
        self.touch(contact_id);
        self.statements
            .get(
                "UPDATE contact_sources SET fingerprint = (SELECT coalesce(fingerprint, 0) FROM contacts WHERE id = ?1)
                 WHERE contact_id = ?1 AND fingerprint = 0",
            )?
            .execute([contact_id])?;
        self.statements
            .get(
                "UPDATE contacts SET email = coalesce(email, ?2), phone = coalesce(phone, ?3),
                 birth_date = coalesce(birth_date, ?4), grade = coalesce(grade, ?5),
                 middle_name = coalesce(middle_name, ?6), active = 1, fingerprint = NULL WHERE id = ?1",
            )?
            .execute(params![
                contact_id,
                person.email,
                person.phone,
                person.birth_date,
                person.grade,
                person.middle_name
            ])?;
        Ok(())
    }

    fn remove_person(&mut self, source_id: &str, entity: EntityName) -> Result<()> {
        self.ensure(MapName::People, source_id)?;
        let entry = self
            .people
            .get_or_insert_with(source_id, || Entry::new_in_run(None, 0, Seen::Skipped));
        entry.set_seen(Seen::Skipped);
        if let (Some(contact_id), true) = (entry.id(), entry.active()) {
            entry.set_active(false);
            self.summary.counts(entity).deactivated += 1;
            self.deactivate_contact(contact_id)?;
            if let Some(continuing) = &mut self.continuing {
                continuing.removed_contacts.push(contact_id);
            }
        }
        Ok(())
    }

    fn deactivate_contact(&self, contact_id: i64) -> rusqlite::Result<()> {
        self.touch(contact_id);
        self.statements
            .get("UPDATE contact_sources SET active = 0 WHERE contact_id = ?1 AND source = ?2")?
            .execute(params![contact_id, self.source])?;
        self.statements
            .get(
                "UPDATE contacts SET active = 0 WHERE id = ?1 AND NOT EXISTS
                 (SELECT 1 FROM contact_sources WHERE contact_id = ?1 AND active = 1)",
            )?
            .execute([contact_id])?;
        Ok(())
    }

    fn access_level(&self, role: Role) -> AccessLevel {
        match role {
            Role::Student | Role::Parent => AccessLevel::Customer,
            Role::Teacher => self.access.teachers,
            Role::Staff | Role::Unspecified => self.access.staff,
        }
    }

    fn insert_contact(&self, person: &Person, fp: i64) -> rusqlite::Result<i64> {
        self.hot.contact.borrow_mut().execute(params![
            person.role().as_db_str(),
            person.first_name,
            person.last_name,
            person.middle_name,
            person.email,
            person.phone,
            person.birth_date,
            person.grade,
            person.security_value,
            person.room,
            self.access_level(person.role()).as_str(),
            attributes_json(&person.attributes),
            fp,
        ])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The source's data wins over what it sent before; the access level is the admin's
    /// and is never touched by an import. True when the contact carries its one source's
    /// fingerprint, now `fp`; false when its `contact_sources` rows keep theirs.
    fn update_contact(&self, contact_id: i64, person: &Person, fp: i64) -> rusqlite::Result<bool> {
        self.touch(contact_id);
        // SQLite rewrites an index's entry whenever an UPDATE sets a column the index
        // reads, even to the value it had: a teacher whose room changed moved their email's
        // entry, and a student whose grade changed their email's and name-match index's
        // (every student at the year's rollover). So the columns no index reads are set
        // first, the statement's RETURNING compares the others with what the row has, and
        // only a group that differs is set: the email (`contacts_email`), or the role,
        // names and birth date (`contacts_student_match` and its condition).
        //
        // Whether the contact carries the fingerprint is read from the row being written,
        // not from the run's map: linking another of the run's records to the same
        // contact moves the fingerprints into the rows mid-run.
        let role = person.role().as_db_str();
        let (carried, email_differs, match_differs): (bool, bool, bool) =
            self.statements.get(UPDATE_UNINDEXED)?.query_row(
                params![
                    contact_id,
                    person.middle_name,
                    person.phone,
                    person.grade,
                    person.security_value,
                    person.room,
                    attributes_json(&person.attributes),
                    fp,
                    person.email,
                    role,
                    person.first_name,
                    person.last_name,
                    person.birth_date,
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        if email_differs {
            self.statements
                .get(UPDATE_EMAIL)?
                .execute(params![contact_id, person.email])?;
        }
        if match_differs {
            self.statements.get(UPDATE_MATCHED)?.execute(params![
                contact_id,
                role,
                person.first_name,
                person.last_name,
                person.birth_date
            ])?;
        }
        Ok(carried)
    }

    /// The contact this source gives `kind` `value`, and its role.
    fn holder_of(&self, kind: &str, value: &str) -> rusqlite::Result<Option<(i64, String)>> {
        self.statements
            .get(
                "SELECT i.contact_id, c.role FROM contact_ids i JOIN contacts c ON c.id = i.contact_id
                 WHERE i.source = ?1 AND i.kind = ?2 AND i.value = ?3",
            )?
            .query_row(params![self.source, kind, value], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// A `role`'s identifier is one this source already gives contact `holder`: an
    /// error, unless the holder has another role.
    fn identifier_taken(
        &self,
        role: &str,
        source_id: &str,
        kind: &str,
        value: &str,
        holder: i64,
        holder_role: &str,
    ) -> Result<()> {
        // Districts number students and staff separately, so a student and a teacher may
        // share an sis_id: a quirk to keep going on, not a conflict.
        if holder_role != role {
            tracing::warn!(
                "source `{}`: {role} `{source_id}` has {kind} `{value}`, which is also a {holder_role}'s (contact #{holder}); kept on the {holder_role} only",
                self.source
            );
            return Ok(());
        }
        Err(self.invalid(format!(
            "{role} `{source_id}` has {kind} `{value}`, which this source already gives contact #{holder}"
        )))
    }

    /// The identifiers that were another contact's when their person was written: the
    /// person gets each one whose holder this run deactivated (the roster a complete
    /// import of the same data leaves), and one still held by an active contact is the
    /// conflict it always was.
    pub fn settle_contested(&self) -> Result<()> {
        for contested in self.contested.take() {
            let Contested {
                contact_id,
                role,
                source_id,
                kind,
                value,
            } = contested;
            self.touch(contact_id);
            let Some((holder, holder_role)) = self.holder_of(&kind, &value)? else {
                let row = [(contact_id, kind.as_str(), value.as_str())];
                self.hot.insert_id_rows(self.tx, &self.source, &row)?;
                continue;
            };
            if holder == contact_id {
                continue;
            }
            let holder_active: bool = self
                .statements
                .get("SELECT active FROM contact_sources WHERE contact_id = ?1 AND source = ?2")?
                .query_row(params![holder, self.source], |r| r.get(0))
                .optional()?
                .unwrap_or(false);
            if holder_active {
                return self.identifier_taken(
                    &role,
                    &source_id,
                    &kind,
                    &value,
                    holder,
                    &holder_role,
                );
            }
            self.touch(holder);
            tracing::info!(
                "source `{}`: {role} `{source_id}` takes {kind} `{value}` from contact #{holder}, which this source no longer has",
                self.source
            );
            self.statements
                .get(
                    "UPDATE contact_ids SET contact_id = ?1 WHERE source = ?2 AND kind = ?3 AND value = ?4",
                )?
                .execute(params![contact_id, self.source, kind, value])?;
        }
        Ok(())
    }

    /// Write the gathered identifiers, in key order. As when each is written with its
    /// person, the first to give an identifier keeps it and a later one is warned about
    /// or refused, only here rather than where it came.
    /// False when the run writes identifiers with their people.
    pub fn write_pending_ids(&self) -> Result<bool> {
        let Some(pending) = &self.pending_ids else {
            return Ok(false);
        };
        pending
            .borrow_mut()
            .drain_sorted(IDS_PER_INSERT, |group| self.write_id_group(group))?;
        Ok(true)
    }

    /// Write up to [`IDS_PER_INSERT`] (contact id, kind, value) rows, warning about or
    /// refusing each that another contact holds.
    fn write_id_group(&self, group: &[(i64, &str, &str)]) -> Result<()> {
        let inserted = self.hot.insert_id_rows(self.tx, &self.source, group)?;
        if inserted == group.len() {
            return Ok(());
        }
        for &(contact_id, kind, value) in group {
            // The insert skipped it: somebody has it, maybe an earlier row of its own.
            let Some(holder) = self.holder_of(kind, value)? else {
                continue;
            };
            if holder.0 == contact_id {
                continue;
            }
            let (role, source_id): (String, String) = self
                .statements
                .get(
                    "SELECT c.role, s.source_id FROM contacts c
                     JOIN contact_sources s ON s.contact_id = c.id AND s.source = ?2
                     WHERE c.id = ?1",
                )?
                .query_row(params![contact_id, self.source], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            self.identifier_taken(&role, &source_id, kind, value, holder.0, &holder.1)?;
        }
        Ok(())
    }

    /// The identifiers contact `contact_id` has from this source, as (kind, value).
    fn identifiers_had(&mut self, contact_id: i64) -> rusqlite::Result<Vec<(String, String)>> {
        // Looked up ahead, and still what the roster has: the run has written nothing of
        // the contact (identifiers moved to or from it would have touched it).
        if let Some(continuing) = &mut self.continuing {
            if let Some(ids) = continuing.identifiers_before.remove(&contact_id) {
                if !self.touched.borrow().contains(&contact_id) {
                    #[cfg(test)]
                    IDENTIFIERS_TAKEN.with(|taken| taken.set(taken.get() + 1));
                    return Ok(ids);
                }
            }
        }
        self.statements
            .get(IDENTIFIERS_OF_CONTACT)?
            .query_map(params![contact_id, self.source], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
    }

    /// Identifiers and school memberships as this source gives them now. `had`: the
    /// contact's identifiers from this source ([`Apply::identifiers_had`]), or `None` for
    /// a contact created just now, which has none and so nothing to delete.
    fn replace_source_data(
        &self,
        contact_id: i64,
        person: &Person,
        school_ids: &[i64],
        had: Option<Vec<(String, String)>>,
    ) -> Result<()> {
        self.touch(contact_id);
        let fresh = had.is_none();
        let mut identifiers: Vec<_> = person
            .identifiers
            .iter()
            .filter(|i| !i.kind.trim().is_empty() && !i.value.trim().is_empty())
            .collect();
        identifiers.sort();
        identifiers.dedup();
        if let Some(had) = had {
            // Only what changed is written: a person's identifiers sit on as many pages of
            // `contact_ids` as they have kinds, and a changed name leaves them all as they
            // were (rewriting them was most of a re-sync's writes).
            for (kind, value) in &had {
                if !identifiers
                    .iter()
                    .any(|i| i.kind == *kind && i.value == *value)
                {
                    self.statements
                        .get(
                            "DELETE FROM contact_ids WHERE kind = ?1 AND value = ?2 AND source = ?3",
                        )?
                        .execute(params![kind, value, self.source])?;
                }
            }
            identifiers.retain(|i| !had.iter().any(|(k, v)| *k == i.kind && *v == i.value));
        }
        if let (true, Some(pending)) = (fresh, &self.pending_ids) {
            let full = {
                let mut pending = pending.borrow_mut();
                for identifier in &identifiers {
                    pending.push(contact_id, &identifier.kind, &identifier.value);
                }
                pending.is_full()
            };
            if full {
                pending.borrow_mut().spill()?;
            }
            identifiers.clear();
        }
        let mut rows = Vec::with_capacity(IDS_PER_INSERT);
        for chunk in identifiers.chunks(IDS_PER_INSERT) {
            rows.clear();
            rows.extend(
                chunk
                    .iter()
                    .map(|i| (contact_id, i.kind.as_str(), i.value.as_str())),
            );
            let inserted = self.hot.insert_id_rows(self.tx, &self.source, &rows)?;
            if inserted == chunk.len() {
                continue;
            }
            for identifier in chunk {
                let holder = self.holder_of(&identifier.kind, &identifier.value)?;
                // Only identifiers the contact did not have from this source are left
                // (or it has none yet): a row of its own went in just now.
                if let Some((holder, holder_role)) =
                    holder.filter(|(holder, _)| *holder != contact_id)
                {
                    let role = person.role().as_db_str();
                    let (kind, value) = (&identifier.kind, &identifier.value);
                    if holder_role == role {
                        // Two contacts of one role with one identifier: a conflict, unless
                        // the holder goes in this run (a parent merged into another by
                        // email, a ParentID that moved). Which it is, the run's end knows.
                        self.contested.borrow_mut().push(Contested {
                            contact_id,
                            role: role.to_string(),
                            source_id: person.source_id.clone(),
                            kind: kind.clone(),
                            value: value.clone(),
                        });
                        continue;
                    }
                    self.identifier_taken(
                        role,
                        &person.source_id,
                        kind,
                        value,
                        holder,
                        &holder_role,
                    )?;
                }
            }
        }
        let mut school_ids = school_ids.to_vec();
        if !fresh {
            let had: Vec<i64> = self
                .statements
                // A join, not `IN (SELECT id FROM schools …)`: SQLite builds that list
                // into a temporary index on every call (90% of a Clever sync's time).
                .get(
                    "SELECT cs.school_id FROM contact_schools cs JOIN schools s ON s.id = cs.school_id
                     WHERE cs.contact_id = ?1 AND s.source = ?2",
                )?
                .query_map(params![contact_id, self.source], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for school_id in had.iter().filter(|s| !school_ids.contains(s)) {
                self.statements
                    .get("DELETE FROM contact_schools WHERE contact_id = ?1 AND school_id = ?2")?
                    .execute(params![contact_id, school_id])?;
            }
            school_ids.retain(|s| !had.contains(s));
        }
        for school_id in school_ids {
            self.hot
                .contact_school
                .borrow_mut()
                .execute(params![contact_id, school_id])?;
        }
        Ok(())
    }

    fn mark_skipped(&mut self, map: MapName, key: &str) {
        let map = match map {
            MapName::Schools => &mut self.schools,
            MapName::Terms => &mut self.terms,
            MapName::Classes => &mut self.classes,
            MapName::People => &mut self.people,
        };
        map.get_or_insert_with(key, || Entry::new_in_run(None, 0, Seen::Skipped))
            .set_seen(Seen::Skipped);
    }

    fn person_ref(
        &self,
        id: &str,
        expected: Role,
        referrer: &dyn Fn() -> String,
    ) -> Result<Option<i64>> {
        let what = expected.as_db_str();
        let resolved = self.resolve(&self.people, what, id, referrer)?;
        if resolved.is_some() {
            let role = self.people.get(id).and_then(|e| e.role());
            if role != Some(expected) && !(expected == Role::Teacher && role == Some(Role::Staff)) {
                return Err(self.invalid(format!(
                    "{} refers to `{id}` as a {what}, but the source sent `{id}` as a {}",
                    referrer(),
                    role.map(Role::as_db_str).unwrap_or("person")
                )));
            }
        }
        Ok(resolved)
    }

    /// The class a link names (looked up first, in a continuing run).
    fn class_ref(&mut self, id: &str, referrer: &dyn Fn() -> String) -> Result<Option<i64>> {
        self.ensure(MapName::Classes, id)?;
        self.resolve(&self.classes, "class", id, referrer)
    }

    /// The person a link names, by source id or, with `kind`, by another identifier of
    /// theirs; `None`: the link is skipped.
    fn linked_person(
        &mut self,
        id: &str,
        kind: &Option<String>,
        expected: Role,
        referrer: &dyn Fn() -> String,
    ) -> Result<Option<i64>> {
        let Some(source_id) = self.source_id_of(id, kind, referrer)? else {
            return Ok(None);
        };
        self.ensure(MapName::People, &source_id)?;
        self.person_ref(&source_id, expected, referrer)
    }

    pub fn enrollment(&mut self, link: &Enrollment) -> Result<()> {
        let referrer = || format!("enrollment of `{}` in `{}`", link.student_id, link.class_id);
        let class = self.class_ref(&link.class_id, &referrer)?;
        let student = self.linked_person(
            &link.student_id,
            &link.student_id_kind,
            Role::Student,
            &referrer,
        )?;
        let (Some(class_id), Some(student_id)) = (class, student) else {
            self.summary.out_of_scope += 1;
            return Ok(());
        };
        self.link(LinkKind::Enrollment, (class_id, student_id), 0, None, None)
    }

    pub fn class_teacher(&mut self, link: &ClassTeacher) -> Result<()> {
        let referrer = || format!("teacher `{}` of class `{}`", link.teacher_id, link.class_id);
        let class = self.class_ref(&link.class_id, &referrer)?;
        let teacher = self.linked_person(
            &link.teacher_id,
            &link.teacher_id_kind,
            Role::Teacher,
            &referrer,
        )?;
        let (Some(class_id), Some(teacher_id)) = (class, teacher) else {
            self.summary.out_of_scope += 1;
            return Ok(());
        };
        self.link(
            LinkKind::ClassTeacher,
            (class_id, teacher_id),
            link.primary as i64,
            None,
            None,
        )
    }

    pub fn relationship(&mut self, link: &Relationship) -> Result<()> {
        let referrer = || {
            format!(
                "relationship of `{}` to `{}`",
                link.parent_id, link.student_id
            )
        };
        let parent = self.linked_person(&link.parent_id, &None, Role::Parent, &referrer)?;
        let student = self.linked_person(
            &link.student_id,
            &link.student_id_kind,
            Role::Student,
            &referrer,
        )?;
        let (Some(parent_id), Some(student_id)) = (parent, student) else {
            self.summary.out_of_scope += 1;
            return Ok(());
        };
        let fp =
            relationship_fingerprint(link.relationship.as_deref(), link.contact_type.as_deref());
        self.link(
            LinkKind::Relationship,
            (parent_id, student_id),
            fp,
            link.relationship.as_deref(),
            link.contact_type.as_deref(),
        )
    }

    fn link(
        &mut self,
        kind: LinkKind,
        key: (i64, i64),
        fp: i64,
        relationship: Option<&str>,
        contact_type: Option<&str>,
    ) -> Result<()> {
        let links = self.links.get()?.of(kind);
        let entity = match kind {
            LinkKind::Enrollment => EntityName::Enrollments,
            LinkKind::ClassTeacher => EntityName::ClassTeachers,
            LinkKind::Relationship => EntityName::Relationships,
        };
        let source = &self.source;
        if let Some(continuing) = &self.continuing {
            // A link of an owner whose links the run does not replace: as the roster has
            // it, if it has it. Most such links a night names are new (a student who
            // changed classes), so the insert goes first, and the row is read only when
            // it was there already: a read before each insert was a fifth of a file
            // re-sync's enrollments.
            if !continuing.replaced.contains(&(kind, key.0)) && links.loaded.get_mut(&key).is_none()
            {
                if self
                    .hot
                    .insert_link(kind, key, fp, relationship, contact_type, source)?
                    > 0
                {
                    self.summary.counts(entity).inserted += 1;
                    return Ok(());
                }
                #[cfg(test)]
                LINK_ROWS_READ.with(|read| read.set(read.get() + 1));
                let mut statement = self.statements.get(kind.select_sql(LinkRows::One))?;
                let mut rows = statement.query(params![key.0, source, key.1])?;
                if let Some(row) = rows.next()? {
                    let (pair, entry) = loaded_link(kind, row)?;
                    links.loaded.insert_new(pair, entry);
                }
            }
        }
        match links.loaded.get_mut(&key) {
            // Sent twice in this run: the first one counted.
            Some(entry) if entry.seen() => {}
            Some(entry) => {
                if entry.active() && entry.has_fingerprint(fp) {
                    entry.mark_seen();
                    self.summary.counts(entity).unchanged += 1;
                    return Ok(());
                }
                entry.set_current(fp);
                self.summary.counts(entity).updated += 1;
                let mut statement = self.statements.get(match kind {
                    LinkKind::Enrollment => {
                        "UPDATE enrollments SET active = 1 WHERE class_id = ?1 AND contact_id = ?2"
                    }
                    LinkKind::ClassTeacher => {
                        "UPDATE class_teachers SET active = 1, is_primary = ?3
                         WHERE class_id = ?1 AND contact_id = ?2"
                    }
                    LinkKind::Relationship => {
                        "UPDATE relationships SET active = 1, relationship = ?3, type = ?4, source = ?5
                         WHERE parent_id = ?1 AND student_id = ?2"
                    }
                })?;
                match kind {
                    LinkKind::Enrollment => statement.execute(params![key.0, key.1])?,
                    LinkKind::ClassTeacher => statement.execute(params![key.0, key.1, fp])?,
                    LinkKind::Relationship => statement.execute(params![
                        key.0,
                        key.1,
                        relationship,
                        contact_type,
                        source
                    ])?,
                };
            }
            None => {
                // New to this source. The insert changes nothing when the row is this
                // source's already, which can only be a repeat within this run (all it
                // had before is in `loaded`): no map of new links is needed to notice it.
                let changed =
                    self.hot
                        .insert_link(kind, key, fp, relationship, contact_type, source)?;
                if changed > 0 {
                    self.summary.counts(entity).inserted += 1;
                }
            }
        }
        Ok(())
    }

    /// The source id of a person a link names: `id` itself, or, when the link names them
    /// by another identifier (`kind`), the source id of the person this source gave it.
    /// `None`: no person of this source has it (outside the event's scope, or never
    /// returned by the source), and the link is skipped.
    fn source_id_of(
        &mut self,
        id: &str,
        kind: &Option<String>,
        referrer: &dyn Fn() -> String,
    ) -> Result<Option<String>> {
        let Some(kind) = kind else {
            return Ok(Some(id.to_string()));
        };
        let Some(continuing) = &mut self.continuing else {
            return Err(ApplyError::Invalid(format!(
                "{} names a person by `{kind}`, which only a run that continues from a checkpoint may do",
                referrer()
            )));
        };
        let key = (kind.clone(), id.to_string());
        let found = match continuing.by_identifier.get(&key) {
            Some(found) => found.clone(),
            None => {
                let found: Option<String> = self
                    .statements
                    .get(SOURCE_ID_BY_IDENTIFIER)?
                    .query_row(params![kind, id, self.source], |r| r.get(0))
                    .optional()?;
                continuing.by_identifier.insert(key, found.clone());
                found
            }
        };
        if found.is_none() && !self.scope.filters_schools() && !self.scope.filters_terms() {
            // As a complete run's source skips a link to a person it did not return.
            tracing::warn!(
                "source `{}`: {} names a person by {kind} `{id}`, which no person of this source has; skipped",
                self.source,
                referrer()
            );
        }
        Ok(found)
    }

    fn require_continuing(&self, what: impl FnOnce() -> String) -> Result<()> {
        if self.continuing.is_none() {
            return Err(self.invalid(format!(
                "the source sent {} in a run that does not continue from a checkpoint",
                what()
            )));
        }
        Ok(())
    }

    /// A continuing run's removal of a school, term, class or person.
    pub fn removal(&mut self, removal: Removal) -> Result<()> {
        self.require_continuing(|| format!("a removal of `{}`", removal.source_id))?;
        let entity = Entity::try_from(removal.entity).unwrap_or(Entity::Unspecified);
        let id = removal.source_id.as_str();
        let (deactivate, name) = match entity {
            Entity::Schools => (
                "UPDATE schools SET active = 0 WHERE id = ?1",
                EntityName::Schools,
            ),
            Entity::Terms => (
                "UPDATE terms SET active = 0 WHERE id = ?1",
                EntityName::Terms,
            ),
            Entity::Classes => (
                "UPDATE classes SET active = 0 WHERE id = ?1",
                EntityName::Classes,
            ),
            Entity::Students => return self.remove_person(id, EntityName::Students),
            Entity::Teachers => return self.remove_person(id, EntityName::Teachers),
            Entity::Parents => return self.remove_person(id, EntityName::Parents),
            Entity::Staff => return self.remove_person(id, EntityName::Staff),
            Entity::Enrollments => return self.remove_link(LinkKind::Enrollment, &removal),
            Entity::ClassTeachers => return self.remove_link(LinkKind::ClassTeacher, &removal),
            Entity::Relationships => return self.remove_link(LinkKind::Relationship, &removal),
            _ => {
                return Err(self.invalid(format!(
                    "a removal of `{id}` names entity {}, which this roster does not know",
                    removal.entity
                )))
            }
        };
        if entity == Entity::Classes {
            self.ensure(MapName::Classes, id)?;
        }
        let map = match entity {
            Entity::Schools => &mut self.schools,
            Entity::Terms => &mut self.terms,
            _ => &mut self.classes,
        };
        // What the roster never had (outside the event's scope) has nothing to remove.
        let entry = map.get_or_insert_with(id, || Entry::new_in_run(None, 0, Seen::Skipped));
        entry.set_seen(Seen::Skipped);
        if let (Some(row), true) = (entry.id(), entry.active()) {
            entry.set_active(false);
            self.summary.counts(name).deactivated += 1;
            self.statements.get(deactivate)?.execute([row])?;
            if entity == Entity::Classes {
                if let Some(continuing) = &mut self.continuing {
                    continuing.removed_classes.push(row);
                }
            }
        }
        Ok(())
    }

    /// A continuing run replaces the links of one class or parent: those it had from
    /// this source are loaded, so that the run's links are diffed against them and the
    /// ones it does not send are deactivated at the end.
    pub fn links_replaced(&mut self, replaced: LinksReplaced) -> Result<()> {
        let owner_id = replaced.owner_id.as_str();
        self.require_continuing(|| format!("a LinksReplaced for `{owner_id}`"))?;
        let entity = Entity::try_from(replaced.entity).unwrap_or(Entity::Unspecified);
        let Some(kind) = LinkKind::of(entity) else {
            return Err(self.invalid(format!(
                "a LinksReplaced for `{owner_id}` names entity {}, not a kind of link",
                replaced.entity
            )));
        };
        let referrer = || format!("the {} links of `{owner_id}`", kind.entity().label());
        match kind {
            LinkKind::Enrollment | LinkKind::ClassTeacher => {
                self.ensure(MapName::Classes, owner_id)?
            }
            LinkKind::Relationship => self.ensure(MapName::People, owner_id)?,
        }
        let owner = match kind {
            LinkKind::Enrollment | LinkKind::ClassTeacher => {
                self.resolve(&self.classes, "class", owner_id, &referrer)?
            }
            LinkKind::Relationship => self.person_ref(owner_id, Role::Parent, &referrer)?,
        };
        let Some(owner) = owner else {
            // Outside the event's scope: its links will be too.
            return Ok(());
        };
        let continuing = self.continuing.as_mut().expect("checked above");
        if !continuing.replaced.insert((kind, owner)) {
            return Ok(());
        }
        let links = self.links.get()?.of(kind);
        let mut statement = self.statements.get(kind.select_sql(LinkRows::OfOwner))?;
        let mut rows = statement.query(params![owner, self.source])?;
        while let Some(row) = rows.next()? {
            let (pair, entry) = loaded_link(kind, row)?;
            links.loaded.insert_new(pair, entry);
        }
        Ok(())
    }

    /// A continuing run's removal of one link: deactivated if the roster has it active.
    fn remove_link(&mut self, kind: LinkKind, removal: &Removal) -> Result<()> {
        let referrer = || {
            format!(
                "the removal of {} `{}`–`{}`",
                kind.entity().label(),
                removal.source_id,
                removal.other_id
            )
        };
        let owner_map = match kind {
            LinkKind::Enrollment | LinkKind::ClassTeacher => MapName::Classes,
            LinkKind::Relationship => MapName::People,
        };
        self.ensure(owner_map, &removal.source_id)?;
        let Some(other) =
            self.source_id_of(&removal.other_id, &removal.other_id_kind, &referrer)?
        else {
            return Ok(());
        };
        self.ensure(MapName::People, &other)?;
        // Whatever the two are now (removed too, in this run or before): the link goes.
        let row = |map: &Ids, id: &str| map.get(id).and_then(Entry::id);
        let owner_map = match owner_map {
            MapName::Classes => &self.classes,
            _ => &self.people,
        };
        let (Some(owner), Some(other)) = (
            row(owner_map, &removal.source_id),
            row(&self.people, &other),
        ) else {
            return Ok(());
        };
        if let Some(entry) = self.links.get()?.of(kind).loaded.get_mut(&(owner, other)) {
            if entry.seen() {
                return Err(
                    self.invalid(format!("{} comes after the run sent that link", referrer()))
                );
            }
            entry.deactivate();
        }
        let changed =
            self.statements
                .get(kind.remove_sql())?
                .execute(params![owner, other, self.source])?;
        self.summary.counts(kind.entity()).deactivated += changed as u64;
        Ok(())
    }

    /// The end of a continuing run: the replaced links it did not send, and the links
    /// of what it removed, are deactivated.
    pub fn finish_continuing(&mut self) -> rusqlite::Result<()> {
        let Some(continuing) = self.continuing.take() else {
            return Ok(());
        };
        for kind in [
            LinkKind::Enrollment,
            LinkKind::ClassTeacher,
            LinkKind::Relationship,
        ] {
            let links = self.links.get()?.of(kind);
            let mut deactivate = self.statements.get(kind.deactivate_sql())?;
            for (key, entry) in links.loaded.iter_mut() {
                if !entry.seen() && entry.active() {
                    entry.deactivate();
                    self.summary.counts(kind.entity()).deactivated += 1;
                    deactivate.execute(params![key.0, key.1])?;
                }
            }
        }
        // The source's active links of `?1` in `column`, deactivated.
        let mut gone = |kind: LinkKind, column: Column, row: i64| -> rusqlite::Result<()> {
            let changed = self
                .statements
                .get(kind.deactivate_of_sql(column))?
                .execute(params![row, self.source])?;
            self.summary.counts(kind.entity()).deactivated += changed as u64;
            Ok(())
        };
        for contact in continuing.removed_contacts {
            gone(LinkKind::Enrollment, Column::Person, contact)?;
            gone(LinkKind::ClassTeacher, Column::Person, contact)?;
            gone(LinkKind::Relationship, Column::Owner, contact)?;
            gone(LinkKind::Relationship, Column::Person, contact)?;
        }
        for class in continuing.removed_classes {
            gone(LinkKind::Enrollment, Column::Owner, class)?;
            gone(LinkKind::ClassTeacher, Column::Owner, class)?;
        }
        Ok(())
    }

    /// How many `entity` records the source had active before the run, as the roster
    /// counts them: the guard's base for a continuing run, whose maps hold only what it
    /// named. Counted only for what the run deactivated, and only when that smaller base
    /// would refuse it. The run's own writes are in the count: its deactivations are
    /// added back, its inserts taken out.
    ///
    /// Counted only up to a base of `enough` (the guard's bound): past that the exact
    /// number changes nothing, and counting a district's millions of enrollments to the
    /// end took longer than the rest of a nightly run's checks.
    pub fn active_in_db(&self, entity: EntityName, enough: u64) -> rusqlite::Result<u64> {
        let rows = |name: &str, of_source: &str| {
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM {name} WHERE {of_source} AND active = 1 LIMIT ?2)"
            )
        };
        let table = |name: &str| rows(name, "source = ?1");
        let links = |kind: LinkKind| match kind {
            LinkKind::Relationship => rows(kind.table().0, &kind.all_of_source("?1")),
            // Class by class, which stops at the bound: `class_id IN (…)` lists all the
            // source's classes before the first row is counted (half the count's time at
            // nyc, whose bound is a tenth of its enrollments).
            LinkKind::Enrollment | LinkKind::ClassTeacher => format!(
                "SELECT count(*) FROM (SELECT 1 FROM classes c CROSS JOIN {} l ON l.class_id = c.id
                 WHERE c.source = ?1 AND l.active = 1 LIMIT ?2)",
                kind.table().0
            ),
        };
        let people = |role: Role| {
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM contact_sources s JOIN contacts c ON c.id = s.contact_id
                 WHERE s.source = ?1 AND s.active = 1 AND c.role = '{}' LIMIT ?2)",
                role.as_db_str()
            )
        };
        let sql = match entity {
            EntityName::Schools => table("schools"),
            EntityName::Terms => table("terms"),
            EntityName::Classes => table("classes"),
            EntityName::Students => people(Role::Student),
            EntityName::Teachers => people(Role::Teacher),
            EntityName::Parents => people(Role::Parent),
            EntityName::Staff => people(Role::Staff),
            EntityName::Enrollments => links(LinkKind::Enrollment),
            EntityName::ClassTeachers => links(LinkKind::ClassTeacher),
            EntityName::Relationships => links(LinkKind::Relationship),
        };
        let counts = self.summary.get(entity);
        // The base is what is active now, with the run's deactivations back and its
        // insertions out.
        let wanted = (enough.saturating_add(counts.inserted)).saturating_sub(counts.deactivated);
        let limit = i64::try_from(wanted).unwrap_or(-1);
        let now: u64 = self
            .tx
            .query_row(&sql, params![&self.source, limit], |r| r.get(0))?;
        Ok((now + counts.deactivated).saturating_sub(counts.inserted))
    }

    /// Deactivate what the source supplied before but not in this run, for the entities
    /// it vouches are complete, within the event's scope.
    pub fn deactivate_missing(&mut self, complete: &HashSet<Entity>) -> rusqlite::Result<()> {
        let tx = self.tx;
        let source = self.source.clone();
        let deactivate = |map: &mut Ids,
                          entity: EntityName,
                          table: &str,
                          in_scope: &dyn Fn(&Entry) -> bool,
                          summary: &mut Summary|
         -> rusqlite::Result<()> {
            let mut deactivate =
                tx.prepare(&format!("UPDATE {table} SET active = 0 WHERE id = ?1"))?;
            for entry in map.values_mut() {
                if entry.seen() == Seen::No && entry.active() && in_scope(entry) {
                    entry.set_active(false);
                    summary.counts(entity).deactivated += 1;
                    deactivate.execute([entry.id().expect("loaded")])?;
                }
            }
            Ok(())
        };
        let everything = |_: &Entry| true;
        if complete.contains(&Entity::Schools) && !self.scope.filters_schools() {
            deactivate(
                &mut self.schools,
                EntityName::Schools,
                "schools",
                &everything,
                &mut self.summary,
            )?;
        }
        if complete.contains(&Entity::Terms) && !self.scope.filters_terms() {
            deactivate(
                &mut self.terms,
                EntityName::Terms,
                "terms",
                &everything,
                &mut self.summary,
            )?;
        }
        // An unseen class is in the event's scope when its term and school are.
        let term_ids: HashSet<i64> = self
            .terms
            .values()
            .filter(|e| e.seen() == Seen::Written)
            .filter_map(|e| e.id())
            .collect();
        let school_ids: HashSet<i64> = self
            .schools
            .values()
            .filter(|e| e.seen() == Seen::Written)
            .filter_map(|e| e.id())
            .collect();
        let (filters_terms, filters_schools) =
            (self.scope.filters_terms(), self.scope.filters_schools());
        let class_scope = &self.class_scope;
        let class_in_scope = |entry: &Entry| {
            let scope = entry.id().and_then(|id| class_scope.get(&id));
            (!filters_terms
                || scope
                    .and_then(|s| s.term_id)
                    .is_some_and(|t| term_ids.contains(&t)))
                && (!filters_schools
                    || scope
                        .and_then(|s| s.school_id)
                        .is_some_and(|s| school_ids.contains(&s)))
        };
        if complete.contains(&Entity::Classes) {
            deactivate(
                &mut self.classes,
                EntityName::Classes,
                "classes",
                &class_in_scope,
                &mut self.summary,
            )?;
        }
        let scoped_classes: HashSet<i64> = self
            .classes
            .values()
            .filter(|e| e.seen() == Seen::Written || (e.seen() == Seen::No && class_in_scope(e)))
            .filter_map(|e| e.id())
            .collect();

        for (role, entity) in [
            (Role::Student, Entity::Students),
            (Role::Teacher, Entity::Teachers),
            (Role::Parent, Entity::Parents),
            (Role::Staff, Entity::Staff),
        ] {
            if !complete.contains(&entity) {
                continue;
            }
            let mut gone = Vec::new();
            for entry in self.people.values_mut() {
                if entry.seen() == Seen::No && entry.active() && entry.role() == Some(role) {
                    entry.set_active(false);
                    gone.push(entry.id().expect("loaded"));
                }
            }
            self.summary.counts(entity_of(role)).deactivated += gone.len() as u64;
            for contact_id in gone {
                self.deactivate_contact(contact_id)?;
            }
        }

        for (entity, kind) in [
            (Entity::Enrollments, LinkKind::Enrollment),
            (Entity::ClassTeachers, LinkKind::ClassTeacher),
            (Entity::Relationships, LinkKind::Relationship),
        ] {
            if !complete.contains(&entity) {
                continue;
            }
            let map = self.links.get()?.of(kind);
            let mut deactivate = self.statements.get(kind.deactivate_sql())?;
            for (key, entry) in map.loaded.iter_mut() {
                let in_scope = kind == LinkKind::Relationship || scoped_classes.contains(&key.0);
                if !entry.seen() && entry.active() && in_scope {
                    entry.deactivate();
                    self.summary.counts(kind.entity()).deactivated += 1;
                    deactivate.execute(params![key.0, key.1])?;
                }
            }
        }
        let _ = source;
        Ok(())
    }

    /// Attach every class of this run to the event. A class an admin removed from the
    /// event comes back; one they hid keeps its `hidden` flag.
    pub fn attach_classes(&mut self, event_id: i64, continuing: bool) -> rusqlite::Result<()> {
        let mut statement = self
            .statements
            .get("INSERT OR IGNORE INTO event_classes (event_id, class_id) VALUES (?1, ?2)")?;
        let read_alongside = match self.unattached.take() {
            Some(reading) => reading.wait()?,
            None => None,
        };
        if continuing {
            // A continuing run sent only what changed, yet a class an admin deleted from
            // the event comes back at every sync: each active class of the source in the
            // event's scope is attached again.
            if !self.scope.filters_schools() && !self.scope.filters_terms() {
                let Some(before) = read_alongside.filter(|read| read.event_id == event_id) else {
                    for id in unattached(self.tx, event_id, &self.source)? {
                        statement.execute(params![event_id, id])?;
                    }
                    return Ok(());
                };
                // What the event lacked before the run, as read alongside, and every class
                // the run sent: a class becomes active only by being sent (`class`), so no
                // other can have joined the missing. Each is attached only if it is active
                // now (the run may have removed it).
                let mut candidates = before.classes;
                candidates.extend(self.written_class_ids());
                candidates.sort_unstable();
                candidates.dedup();
                let mut active_only = self.statements.get(
                    "INSERT OR IGNORE INTO event_classes (event_id, class_id)
                     SELECT ?1, id FROM classes WHERE id = ?2 AND active = 1",
                )?;
                for id in candidates {
                    active_only.execute(params![event_id, id])?;
                }
                return Ok(());
            }
            let mut classes = self.statements.get(
                "SELECT c.id, s.source_id, t.source_id FROM classes c
                 LEFT JOIN schools s ON s.id = c.school_id LEFT JOIN terms t ON t.id = c.term_id
                 WHERE c.source = ?1 AND c.active = 1",
            )?;
            let mut rows = classes.query([&self.source])?;
            while let Some(row) = rows.next()? {
                let school: Option<String> = row.get(1)?;
                let term: Option<String> = row.get(2)?;
                if self.scope.takes_class(school.as_deref(), term.as_deref()) {
                    statement.execute(params![event_id, row.get::<_, i64>(0)?])?;
                }
            }
            return Ok(());
        }
        // In id order: the rows then append to `event_classes` and its index, and each
        // class's row is next to the last one checked, where the map's order put every
        // insert on a random page (at nyc, 280,000 of them).
        let mut ids: Vec<i64> = self.written_class_ids().collect();
        ids.sort_unstable();
        for id in ids {
            statement.execute(params![event_id, id])?;
        }
        Ok(())
    }

    /// The row ids of the classes this run sent.
    fn written_class_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.classes
            .values()
            .filter(|entry| entry.seen() == Seen::Written)
            .filter_map(|entry| entry.id())
    }

    /// A continuing run of an event that takes every class of the source: what the event
    /// lacks is read alongside (see `unattached.rs`), from [`Apply::plugin_done`] on.
    pub fn read_unattached_alongside(&mut self, event: &str) -> rusqlite::Result<()> {
        if !self.scope.filters_schools() && !self.scope.filters_terms() {
            self.unattached = UnattachedAlongside::start(self.tx, &self.source, event)?;
        }
        Ok(())
    }

    /// The plugin has sent its last batch: its core is free for what the end of the run
    /// reads.
    pub fn plugin_done(&mut self) {
        if let Some(reading) = &mut self.unattached {
            reading.go();
        }
    }
}

enum Decision {
    Repeat,
    Unchanged,
    Update(i64),
    Insert,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum MapName {
    Schools,
    Terms,
    Classes,
    People,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum LinkKind {
    Enrollment,
    ClassTeacher,
    Relationship,
}

impl LinkKind {
    fn of(entity: Entity) -> Option<LinkKind> {
        match entity {
            Entity::Enrollments => Some(LinkKind::Enrollment),
            Entity::ClassTeachers => Some(LinkKind::ClassTeacher),
            Entity::Relationships => Some(LinkKind::Relationship),
            _ => None,
        }
    }

    fn entity(self) -> EntityName {
        match self {
            LinkKind::Enrollment => EntityName::Enrollments,
            LinkKind::ClassTeacher => EntityName::ClassTeachers,
            LinkKind::Relationship => EntityName::Relationships,
        }
    }

    /// Its table, the owner's and the person's columns, and the columns its fingerprint
    /// is made of.
    fn table(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            LinkKind::Enrollment => ("enrollments", "class_id", "contact_id", "0, NULL"),
            LinkKind::ClassTeacher => (
                "class_teachers",
                "class_id",
                "contact_id",
                "is_primary, NULL",
            ),
            LinkKind::Relationship => (
                "relationships",
                "parent_id",
                "student_id",
                "relationship, type",
            ),
        }
    }

    /// Whether a row of its table is the source `param`'s. A relationship says so; an
    /// enrollment or a class teacher is its class's source's (migration 8), looked up
    /// by the class's key for each row it is asked of.
    fn of_source(self, param: &str) -> String {
        match self {
            LinkKind::Relationship => format!("source = {param}"),
            LinkKind::Enrollment | LinkKind::ClassTeacher => {
                format!("(SELECT source FROM classes WHERE id = class_id) = {param}")
            }
        }
    }

    /// [`Self::of_source`] for a statement that reads the source's rows at large: the
    /// source's classes listed once, their links read a class at a time in key order.
    fn all_of_source(self, param: &str) -> String {
        match self {
            LinkKind::Relationship => self.of_source(param),
            LinkKind::Enrollment | LinkKind::ClassTeacher => {
                format!("class_id IN (SELECT id FROM classes WHERE source = {param})")
            }
        }
    }

    /// The source's links of this kind, as [`loaded_link`] reads them.
    fn select_sql(self, rows: LinkRows) -> &'static str {
        static SQL: [[OnceLock<String>; 3]; 3] = [const { [const { OnceLock::new() }; 3] }; 3];
        interned(&SQL[self as usize][rows as usize], || {
            let (table, owner, person, fingerprint) = self.table();
            let filter = match rows {
                LinkRows::OfSource => self.all_of_source("?1"),
                LinkRows::OfOwner => format!("{owner} = ?1 AND {}", self.of_source("?2")),
                LinkRows::One => format!(
                    "{owner} = ?1 AND {} AND {person} = ?3",
                    self.of_source("?2")
                ),
            };
            format!("SELECT {owner}, {person}, active, {fingerprint} FROM {table} WHERE {filter}")
        })
    }

    /// Deactivate the source's active link between `?1` and `?2` (source `?3`).
    fn remove_sql(self) -> &'static str {
        static SQL: [OnceLock<String>; 3] = [const { OnceLock::new() }; 3];
        interned(&SQL[self as usize], || {
            let (table, owner, person, _) = self.table();
            format!(
                "UPDATE {table} SET active = 0 WHERE {owner} = ?1 AND {person} = ?2 AND {} AND active = 1",
                self.of_source("?3")
            )
        })
    }

    /// Deactivate the link between `?1` and `?2`.
    fn deactivate_sql(self) -> &'static str {
        static SQL: [OnceLock<String>; 3] = [const { OnceLock::new() }; 3];
        interned(&SQL[self as usize], || {
            let (table, owner, person, _) = self.table();
            format!("UPDATE {table} SET active = 0 WHERE {owner} = ?1 AND {person} = ?2")
        })
    }

    /// Deactivate the source's (`?2`) active links whose `column` is `?1`.
    fn deactivate_of_sql(self, column: Column) -> &'static str {
        static SQL: [[OnceLock<String>; 2]; 3] = [const { [const { OnceLock::new() }; 2] }; 3];
        interned(&SQL[self as usize][column as usize], || {
            let (table, owner, person, _) = self.table();
            let column = match column {
                Column::Owner => owner,
                Column::Person => person,
            };
            format!(
                "UPDATE {table} SET active = 0 WHERE {column} = ?1 AND {} AND active = 1",
                self.of_source("?2")
            )
        })
    }
}

/// One of a link table's two keys: the class or parent it belongs to, or the person.
#[derive(Clone, Copy)]
enum Column {
    Owner,
    Person,
}

/// Which of a source's links [`LinkKind::select_sql`] reads: all (`?1` the source), one
/// owner's (`?1` the owner, `?2` the source), or one link (and `?3` the person).
#[derive(Clone, Copy)]
enum LinkRows {
    OfSource,
    OfOwner,
    One,
}

/// A link row of [`LinkKind::select_sql`]: its key and what the run compares it with.
fn loaded_link(
    kind: LinkKind,
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<((i64, i64), LinkEntry)> {
    let fingerprint = match kind {
        LinkKind::Relationship => relationship_fingerprint(
            row.get_ref(3)?.as_str_or_null()?,
            row.get_ref(4)?.as_str_or_null()?,
        ),
        _ => row.get(3)?,
    };
    Ok((
        (row.get(0)?, row.get(1)?),
        LinkEntry::loaded(fingerprint, row.get(2)?),
    ))
}

fn relationship_fingerprint(relationship: Option<&str>, kind: Option<&str>) -> i64 {
    let (relationship, kind) = (
        relationship.unwrap_or("").as_bytes(),
        kind.unwrap_or("").as_bytes(),
    );
    let len = relationship.len() + 1 + kind.len();
    // Joined on the stack: this runs for each of a district's millions of relationships.
    let mut joined = [0u8; 64];
    if len > joined.len() {
        return fingerprint(&[relationship, b"\x1f", kind].concat());
    }
    joined[..relationship.len()].copy_from_slice(relationship);
    joined[relationship.len()] = 0x1f;
    joined[relationship.len() + 1..len].copy_from_slice(kind);
    fingerprint(&joined[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The index B-trees a statement writes: the cursors its `IdxInsert`s and `IdxDelete`s
    /// use, by the name of what each cursor opened.
    fn indexes_written(conn: &Connection, sql: &str) -> Vec<String> {
        let names: HashMap<i64, String> = conn
            .prepare("SELECT rootpage, name FROM sqlite_schema WHERE type = 'index'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut statement = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = statement.raw_query();
        let (mut opened, mut written) = (HashMap::new(), Vec::new());
        while let Some(row) = rows.next().unwrap() {
            let (opcode, p1, p2): (String, i64, i64) = (
                row.get(1).unwrap(),
                row.get(2).unwrap(),
                row.get(3).unwrap(),
            );
            match opcode.as_str() {
                "OpenWrite" => {
                    opened.insert(p1, p2);
                }
                "IdxInsert" | "IdxDelete" => {
                    if let Some(name) = opened.get(&p1).and_then(|root| names.get(root)) {
                        written.push(name.clone());
                    }
                }
                _ => {}
            }
        }
        written.sort();
        written.dedup();
        written
    }

    #[test]
    fn a_changed_contact_rewrites_only_the_index_entries_its_change_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
        let conn = &store.conn;
        assert!(indexes_written(conn, UPDATE_UNINDEXED).is_empty());
        assert_eq!(indexes_written(conn, UPDATE_EMAIL), ["contacts_email"]);
        assert_eq!(
            indexes_written(conn, UPDATE_MATCHED),
            ["contacts_student_match"]
        );
        // The one statement it replaced wrote both: what the check above would catch.
        let before = "UPDATE contacts SET role = ?2, email = ?3, room = ?4 WHERE id = ?1";
        assert_eq!(
            indexes_written(conn, before),
            ["contacts_email", "contacts_student_match"]
        );
    }

    #[test]
    fn a_text_is_trimmed_in_place_and_keeps_its_allocation_when_already_trim() {
        let mut trim = String::from("Ada");
        let at = trim.as_ptr();
        trim_in_place(&mut trim);
        assert_eq!((trim.as_str(), trim.as_ptr()), ("Ada", at));
        for (text, trimmed) in [(" Ada ", "Ada"), ("\tAda\n", "Ada"), ("  ", "")] {
            let mut text = String::from(text);
            trim_in_place(&mut text);
            assert_eq!(text, trimmed);
        }
    }

    #[test]
    fn an_entry_keeps_its_fields_apart_in_one_word() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        let mut entry = Entry::unseen(7, -1, true);
        assert_eq!(
            (entry.id(), entry.active(), entry.role()),
            (Some(7), true, None)
        );
        assert!(entry.seen() == Seen::No);
        assert!(entry.has_fingerprint(-1) && !entry.has_fingerprint(1 << 20));
        for role in [
            Role::Unspecified,
            Role::Student,
            Role::Teacher,
            Role::Parent,
            Role::Staff,
        ] {
            entry.set_role(role);
            assert_eq!(entry.role(), Some(role));
        }
        for seen in [Seen::Written, Seen::Skipped, Seen::No] {
            entry.set_seen(seen);
            assert!(entry.seen() == seen);
        }
        entry.set_active(false);
        entry.set_fingerprint(i64::MIN + 5);
        assert!(!entry.active() && entry.has_fingerprint(i64::MIN + 5));
        assert!(!entry.has_fingerprint(5 + (1 << 40)));
        assert_eq!((entry.role(), entry.id()), (Some(Role::Staff), Some(7)));
        assert!(entry.seen() == Seen::No);
        let fresh = Entry::new_in_run(None, 3, Seen::Written);
        assert!(fresh.id().is_none() && fresh.active() && fresh.seen() == Seen::Written);
    }

    #[test]
    fn a_relationship_fingerprint_is_its_fields_hashed_with_a_separator() {
        let long = "x".repeat(100);
        for (relationship, kind) in [
            (None, None),
            (Some("Mother"), Some("guardian")),
            (Some(long.as_str()), Some("guardian")),
        ] {
            let text = format!("{}\u{1f}{}", relationship.unwrap_or(""), kind.unwrap_or(""));
            assert_eq!(
                relationship_fingerprint(relationship, kind),
                fingerprint(text.as_bytes())
            );
        }
        assert_ne!(
            relationship_fingerprint(Some("ab"), Some("c")),
            relationship_fingerprint(Some("a"), Some("bc"))
        );
    }

    #[test]
    fn a_link_entry_keeps_its_flags_and_fingerprint_apart() {
        let fingerprints = [0, 1, -1, i64::MAX, i64::MIN, 0x1234_5678_9abc_def0];
        for fp in fingerprints {
            for active in [false, true] {
                let mut entry = LinkEntry::loaded(fp, active);
                assert_eq!((entry.active(), entry.seen()), (active, false));
                assert!(entry.has_fingerprint(fp));
                entry.mark_seen();
                assert_eq!((entry.active(), entry.seen()), (active, true));
                assert!(entry.has_fingerprint(fp));
                entry.deactivate();
                assert_eq!((entry.active(), entry.seen()), (false, true));
            }
        }
        // A primary teacher is no longer primary: 1 against 0.
        assert!(!LinkEntry::loaded(1, true).has_fingerprint(0));
        let mut entry = LinkEntry::loaded(7, false);
        entry.set_current(8);
        assert!(entry.active() && entry.seen() && entry.has_fingerprint(8));
        assert!(!entry.has_fingerprint(7));
    }
}
