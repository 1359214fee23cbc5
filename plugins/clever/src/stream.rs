//! The streaming import: records go to the host while later pages are still being fetched,
//! and what is kept between pages is only what resolving references needs.
//!
//! Every collection is fetched concurrently, each into a bounded queue of pages (the
//! client bounds the requests in flight); the pages are mapped in dependency order:
//!
//! 1. districts, schools, terms and courses in full (small: a person's schools and a
//!    section's school, term and course are resolved against them), then schools and terms
//!    are sent;
//! 2. people page by page (v2: students, teachers, school admins, district admins,
//!    contacts; v3: `/users`), each sent at once; kept: a compact map of every id that
//!    names a person, and the contacts' links to students;
//! 3. sections page by page, each class sent at once; its links kept as index pairs;
//! 4. the links — class teachers, enrollments, relationships — then the snapshot.
//!
//! A queue that is full holds its fetch back, so memory is bounded by a few pages per
//! collection plus the compact maps. The first failure of any fetch stops the whole import
//! with that error; the snapshot goes out only after every collection ended cleanly.

use std::time::Instant;

use roster_core::record::{
    Checkpoint, ClassTeacher, Enrollment, Person, Record, Relationship, Role, School, Snapshot,
    Term,
};
use roster_core::sdk::{encode_enrollment, encode_record, encode_relationship};
use roster_core::PluginError;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::client::{Client, Pager};
use crate::config::Config;
use crate::error::FetchError;
use crate::mapping::{self, ContactLinks, Courses, Refs, Resolve, V3Person};
use crate::model::{self, District};
use crate::model_v2 as v2;
use crate::model_v3 as v3;
use crate::report::Reporter;
use crate::roster::{Roster, BATCH_SIZE};

/// Pages a collection may fetch ahead of the mapping.
const PAGES_AHEAD: usize = 2;

/// Why the import stopped early.
pub enum Stop {
    Fetch(FetchError),
    Plugin(PluginError),
    /// The host dropped the source: nobody is listening.
    Closed,
}

impl From<FetchError> for Stop {
    fn from(error: FetchError) -> Stop {
        Stop::Fetch(error)
    }
}

impl From<PluginError> for Stop {
    fn from(error: PluginError) -> Stop {
        Stop::Plugin(error)
    }
}

/// A batch as the import thread hands it over.
pub enum Batch {
    Records(Vec<Record>),
    /// Each record encoded for the plugin boundary as it was made (see [`Sink`]).
    Encoded(Vec<u8>),
}

pub type Batches = mpsc::Sender<Result<Batch, PluginError>>;

/// Records on their way to the host, cut into batches of [`BATCH_SIZE`].
///
/// For a host across the plugin boundary each record is encoded here, on the import
/// thread, and dropped at once: the thread that allocated its strings frees them. Handed
/// over as records, a batch was freed on the host's reading thread after encoding, and a
/// free from another thread is the allocator's slow path (millions of them at nyc, about
/// 2 s of CPU in a Clever import).
pub struct Sink {
    tx: Batches,
    encode: bool,
    records: Vec<Record>,
    bytes: Vec<u8>,
    /// Records in `bytes`.
    encoded: usize,
    /// The largest encoded batch so far, so that the next buffer is allocated once.
    capacity: usize,
}

impl Sink {
    /// `encode`: hand batches over encoded ([`Batch::Encoded`]) rather than as records.
    pub fn new(tx: Batches, encode: bool) -> Self {
        Sink {
            tx,
            encode,
            records: if encode {
                Vec::new()
            } else {
                Vec::with_capacity(BATCH_SIZE)
            },
            bytes: Vec::new(),
            encoded: 0,
            capacity: 0,
        }
    }

    pub async fn push(&mut self, record: impl Into<Record>) -> Result<(), Stop> {
        let record = record.into();
        if self.encode {
            encode_record(&record, &mut self.bytes);
            return self.encoded_one().await;
        }
        self.records.push(record);
        if self.records.len() >= BATCH_SIZE {
            self.flush().await?;
        }
        Ok(())
    }

    /// `push(Enrollment { .. })`, without making the record when the sink encodes: a
    /// district sends millions.
    pub async fn push_enrollment(&mut self, class_id: &str, student_id: &str) -> Result<(), Stop> {
        if !self.encode {
            return self
                .push(Enrollment {
                    student_id_kind: None,
                    class_id: class_id.into(),
                    student_id: student_id.into(),
                })
                .await;
        }
        encode_enrollment(class_id, student_id, &mut self.bytes);
        self.encoded_one().await
    }

    /// `push(Relationship { .. })`, without making the record when the sink encodes.
    pub async fn push_relationship(
        &mut self,
        parent_id: &str,
        student_id: &str,
        relationship: Option<&str>,
        contact_type: Option<&str>,
    ) -> Result<(), Stop> {
        if !self.encode {
            return self
                .push(Relationship {
                    student_id_kind: None,
                    parent_id: parent_id.into(),
                    student_id: student_id.into(),
                    relationship: relationship.map(str::to_string),
                    contact_type: contact_type.map(str::to_string),
                })
                .await;
        }
        encode_relationship(
            parent_id,
            student_id,
            relationship,
            contact_type,
            &mut self.bytes,
        );
        self.encoded_one().await
    }

    async fn encoded_one(&mut self) -> Result<(), Stop> {
        self.encoded += 1;
        if self.encoded >= BATCH_SIZE {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), Stop> {
        let batch = if self.encode {
            if self.encoded == 0 {
                return Ok(());
            }
            self.capacity = self.capacity.max(self.bytes.len());
            self.encoded = 0;
            Batch::Encoded(std::mem::replace(
                &mut self.bytes,
                Vec::with_capacity(self.capacity),
            ))
        } else {
            if self.records.is_empty() {
                return Ok(());
            }
            Batch::Records(std::mem::replace(
                &mut self.records,
                Vec::with_capacity(BATCH_SIZE),
            ))
        };
        self.tx.send(Ok(batch)).await.map_err(|_| Stop::Closed)
    }
}

// ---- compact ids ----------------------------------------------------------------------

/// An id as kept between pages: Clever's 24-hex-digit object ids in 12 bytes, anything
/// else as text.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Hex([u8; 12]),
    Text(Box<str>),
}

impl Key {
    fn new(id: &str) -> Key {
        let bytes = id.as_bytes();
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        if bytes.len() == 24 {
            let mut out = [0u8; 12];
            let packed = bytes.chunks(2).zip(out.iter_mut()).all(|(pair, slot)| {
                match (digit(pair[0]), digit(pair[1])) {
                    (Some(hi), Some(lo)) => {
                        *slot = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
            if packed {
                return Key::Hex(out);
            }
        }
        Key::Text(id.into())
    }

    fn text(&self) -> String {
        match self {
            Key::Hex(bytes) => KeyText::hex(bytes).as_str().to_string(),
            Key::Text(text) => text.to_string(),
        }
    }
}

/// A key spelled out without allocating: every link sent spells out two.
enum KeyText<'a> {
    Hex([u8; 24]),
    Text(&'a str),
}

impl KeyText<'_> {
    fn hex(bytes: &[u8; 12]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 24];
        for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
            pair[0] = DIGITS[(b >> 4) as usize];
            pair[1] = DIGITS[(b & 15) as usize];
        }
        KeyText::Hex(out)
    }

    fn as_str(&self) -> &str {
        match self {
            KeyText::Hex(digits) => std::str::from_utf8(digits).expect("hex digits"),
            KeyText::Text(text) => text,
        }
    }
}

/// Keys by position, 12 bytes each: a [`Key`] is 24 (its text variant is a boxed str),
/// and a district's people, classes and contact links are millions of them. The rare
/// text keys are kept aside, by position.
#[derive(Default)]
struct KeyList {
    hex: Vec<[u8; 12]>,
    text: foldhash::HashMap<u32, Box<str>>,
}

impl KeyList {
    /// The position the next key pushed takes.
    fn next_index(&self) -> u32 {
        u32::try_from(self.hex.len()).expect("fewer than 2^32 keys")
    }

    fn push(&mut self, key: Key) -> u32 {
        let index = self.next_index();
        match key {
            Key::Hex(bytes) => self.hex.push(bytes),
            Key::Text(text) => {
                self.hex.push([0; 12]);
                self.text.insert(index, text);
            }
        }
        index
    }

    fn get(&self, index: u32) -> Key {
        if !self.text.is_empty() {
            if let Some(text) = self.text.get(&index) {
                return Key::Text(text.clone());
            }
        }
        Key::Hex(self.hex[index as usize])
    }

    fn text(&self, index: u32) -> String {
        self.get(index).text()
    }

    fn text_of(&self, index: u32) -> KeyText<'_> {
        if !self.text.is_empty() {
            if let Some(text) = self.text.get(&index) {
                return KeyText::Text(text);
            }
        }
        KeyText::hex(&self.hex[index as usize])
    }
}

/// Where an id points in [`PersonTable`], in one word: the person's index, its role,
/// and whether the id is the person's source id (not one of its other Clever ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(u32);

impl Slot {
    const INDEX_SHIFT: u32 = 4;

    fn new(index: u32, role: i32, source: bool) -> Slot {
        let role = u32::try_from(role).ok().filter(|role| *role < 8);
        let role = role.expect("a role fits in 3 bits");
        assert!(
            index < 1 << (32 - Self::INDEX_SHIFT),
            "fewer than 2^28 people"
        );
        Slot(index << Self::INDEX_SHIFT | role << 1 | u32::from(source))
    }

    fn index(self) -> u32 {
        self.0 >> Self::INDEX_SHIFT
    }

    fn role(self) -> i32 {
        ((self.0 >> 1) & 7) as i32
    }

    fn source(self) -> bool {
        self.0 & 1 != 0
    }

    fn alias(self) -> Slot {
        Slot(self.0 & !1)
    }
}

/// Ids to slots. Clever's own ids (nearly all) go in a map of 16-byte entries: for a
/// district's ~3M people and their other ids, 40% of a map keyed by [`Key`].
#[derive(Default)]
struct Slots {
    hex: foldhash::HashMap<[u8; 12], Slot>,
    text: foldhash::HashMap<Box<str>, Slot>,
}

impl Slots {
    fn get(&self, key: &Key) -> Option<Slot> {
        match key {
            Key::Hex(bytes) => self.hex.get(bytes).copied(),
            Key::Text(text) => self.text.get(text).copied(),
        }
    }

    /// `slot` for `key`, unless `key` is a person's source id already (`false`): one search
    /// of the map where a look first and an insert after were two.
    fn claim(&mut self, key: Key, slot: Slot) -> bool {
        fn claim<K: std::hash::Hash + Eq>(
            map: &mut foldhash::HashMap<K, Slot>,
            key: K,
            slot: Slot,
        ) -> bool {
            match map.entry(key) {
                std::collections::hash_map::Entry::Occupied(taken) if taken.get().source() => false,
                std::collections::hash_map::Entry::Occupied(mut alias) => {
                    alias.insert(slot);
                    true
                }
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(slot);
                    true
                }
            }
        }
        match key {
            Key::Hex(bytes) => claim(&mut self.hex, bytes, slot),
            Key::Text(text) => claim(&mut self.text, text, slot),
        }
    }

    fn insert_if_absent(&mut self, key: Key, slot: Slot) {
        match key {
            Key::Hex(bytes) => self.hex.entry(bytes).or_insert(slot),
            Key::Text(text) => self.text.entry(text).or_insert(slot),
        };
    }
}

/// Every person sent so far, by index, and every id that names one — what
/// `mapping::Added` keeps for the whole-district mapping, without the people themselves.
/// foldhash, not SipHash: two ids go in per person and one comes out per link, and SipHash
/// was most of that.
#[derive(Default)]
struct PersonTable {
    source_ids: KeyList,
    by_id: Slots,
    skipped: usize,
}

impl PersonTable {
    /// Add a person unless its source id is taken; `aliases` are its other Clever ids.
    fn push(&mut self, person: &Person, aliases: &[String]) -> Option<u32> {
        let key = Key::new(&person.source_id);
        let index = self.source_ids.next_index();
        let slot = Slot::new(index, person.role, true);
        if !self.by_id.claim(key.clone(), slot) {
            self.skipped += 1;
            return None;
        }
        self.source_ids.push(key);
        for alias in aliases {
            self.by_id.insert_if_absent(Key::new(alias), slot.alias());
        }
        Some(index)
    }

    fn source_id(&self, index: u32) -> String {
        self.source_ids.text(index)
    }

    fn source_id_text(&self, index: u32) -> KeyText<'_> {
        self.source_ids.text_of(index)
    }
}

impl PersonTable {
    fn resolve(&self, key: &Key, role: Role) -> Option<u32> {
        self.by_id
            .get(key)
            .filter(|slot| slot.role() == role as i32)
            .map(Slot::index)
    }
}

impl Resolve for PersonTable {
    type Id = u32;
    fn person(&self, clever_id: &str, role: Role) -> Option<u32> {
        self.resolve(&Key::new(clever_id), role)
    }
}

/// Relationship and contact-type texts, each kept once.
#[derive(Default)]
struct Texts {
    all: Vec<Option<String>>,
    index: foldhash::HashMap<Option<String>, u32>,
}

impl Texts {
    fn id(&mut self, text: &Option<String>) -> u32 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.all.len() as u32;
        self.all.push(text.clone());
        self.index.insert(text.clone(), id);
        id
    }
}

/// What is kept between pages.
#[derive(Default)]
struct State {
    people: PersonTable,
    links: Links,
    texts: Texts,
    class_ids: KeyList,
    class_teachers: Vec<(u32, u32, bool)>,
    enrollments: Vec<(u32, u32)>,
    counts: Counts,
}

/// The added contacts' links to students, kept until every student is known (v3 users
/// come in any order: a contact's student may be on a later page), a contact's links one
/// after the other. They are resolved to people when sent, not kept resolved beside them:
/// at district scale that second copy was the plugin's peak.
#[derive(Default)]
struct Links {
    /// (parent, relationship, contact type)
    parents: Vec<(u32, u32, u32)>,
    /// The student's Clever id, by the same position.
    students: KeyList,
}

impl Links {
    fn push(&mut self, parent: u32, student: Key, relationship: u32, contact_type: u32) {
        self.parents.push((parent, relationship, contact_type));
        self.students.push(student);
    }

    /// Each contact's links, as the range of positions they hold.
    fn contacts(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let mut start = 0;
        self.parents.chunk_by(|a, b| a.0 == b.0).map(move |group| {
            start += group.len();
            start - group.len()..start
        })
    }

    /// One contact's relationships, in the order its links came and each student once,
    /// into `out` as (parent, student, relationship, contact type); returns how many of
    /// its students are unknown.
    fn resolve(
        &self,
        contact: std::ops::Range<usize>,
        people: &PersonTable,
        out: &mut Vec<(u32, u32, u32, u32)>,
    ) -> usize {
        out.clear();
        // A contact's links are a handful, where a scan beats a set; past that, a set, so
        // a contact with thousands of links costs no more than thousands of contacts.
        let mut many = (contact.len() > 32).then(foldhash::HashSet::default);
        let mut unresolved = 0;
        for position in contact {
            let (parent, relationship, contact_type) = self.parents[position];
            let student = self.students.get(position as u32);
            match people.resolve(&student, Role::Student) {
                Some(student) => {
                    let new = match &mut many {
                        Some(seen) => seen.insert(student),
                        None => !out.iter().any(|r| r.1 == student),
                    };
                    if new {
                        out.push((parent, student, relationship, contact_type));
                    }
                }
                None => unresolved += 1,
            }
        }
        unresolved
    }
}

#[derive(Default)]
struct Counts {
    schools: usize,
    terms: usize,
    courses: usize,
    sections: usize,
    /// (collection, objects fetched)
    people: Vec<(&'static str, usize)>,
    people_sent: usize,
    classes: usize,
}

// ---- fetching -------------------------------------------------------------------------

enum Page<T> {
    Items(Vec<T>),
    End,
}

type Pages<T> = mpsc::Receiver<Page<T>>;

/// Fetch `resource` page by page into `tx`, `End` after the last page.
async fn pages<T: DeserializeOwned>(
    client: &Client,
    resource: &'static str,
    tx: mpsc::Sender<Page<T>>,
) -> Result<(), Stop> {
    let mut pager = Pager::new(client, resource);
    while let Some(page) = pager.next_page::<T>().await? {
        if tx.send(Page::Items(page)).await.is_err() {
            // The mapping is over (it stopped): nothing more is needed.
            return Ok(());
        }
    }
    let _ = tx.send(Page::End).await;
    Ok(())
}

/// v2 contacts: Clever retired `/v2.x/contacts` on 2025-07-31: a 404 or 410 there becomes
/// an error that says so and points to v3.
async fn v2_contact_pages(
    client: &Client,
    tx: mpsc::Sender<Page<v2::Contact>>,
) -> Result<(), Stop> {
    match pages(client, "contacts", tx).await {
        Err(Stop::Fetch(FetchError::Status {
            url,
            status: status @ (404 | 410),
            ..
        })) => Err(Stop::Fetch(FetchError::ContactsGone { url, status })),
        other => other,
    }
}

/// The next page, `None` after the last. A queue closed without `End` belongs to a fetch
/// that failed or panicked: its error ends the whole import (the `try_join!` in [`run`]),
/// so this waits for that instead of taking the list as complete.
async fn next<T>(rx: &mut Pages<T>) -> Option<Vec<T>> {
    match rx.recv().await {
        Some(Page::Items(items)) => Some(items),
        Some(Page::End) => None,
        None => std::future::pending().await,
    }
}

async fn all<T>(rx: &mut Pages<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(page) = next(rx).await {
        out.extend(page);
    }
    out
}

fn queue<T>() -> (mpsc::Sender<Page<T>>, Pages<T>) {
    mpsc::channel(PAGES_AHEAD)
}

/// The common collections' queues.
struct Common {
    districts: Pages<District>,
    schools: Pages<model::School>,
    terms: Pages<model::Term>,
    courses: Pages<model::Course>,
    sections: Pages<model::Section>,
}

enum PeopleQueues {
    V2 {
        students: Pages<v2::Student>,
        teachers: Pages<v2::Teacher>,
        school_admins: Pages<v2::SchoolAdmin>,
        district_admins: Pages<v2::DistrictAdmin>,
        contacts: Option<Pages<v2::Contact>>,
    },
    V3 {
        users: Pages<v3::User>,
    },
}

/// The whole streaming import: fetches, maps and sends until the snapshot is out.
/// `checkpoint`: where the next run can continue from, sent before the snapshot.
pub async fn run(
    client: &Client,
    config: &Config,
    report: &Reporter,
    sink: &mut Sink,
    checkpoint: Option<Checkpoint>,
) -> Result<(), Stop> {
    let started = Instant::now();
    let (districts_tx, districts) = queue();
    let (schools_tx, schools) = queue();
    let (terms_tx, terms) = queue();
    let (courses_tx, courses) = queue();
    let (sections_tx, sections) = queue();
    let common = Common {
        districts,
        schools,
        terms,
        courses,
        sections,
    };
    let fetch_common = async {
        tokio::try_join!(
            pages(client, "districts", districts_tx),
            pages(client, "schools", schools_tx),
            pages(client, "terms", terms_tx),
            pages(client, "courses", courses_tx),
            pages(client, "sections", sections_tx),
        )
        .map(|_| ())
    };
    let snapshot = if config.api_version.is_v3() {
        let (users_tx, users) = queue();
        let queues = PeopleQueues::V3 { users };
        let map = map(common, queues, config, report, sink, started, client);
        tokio::try_join!(fetch_common, pages(client, "users", users_tx), map)?.2
    } else {
        let (students_tx, students) = queue();
        let (teachers_tx, teachers) = queue();
        let (school_admins_tx, school_admins) = queue();
        let (district_admins_tx, district_admins) = queue();
        let (contacts_tx, contacts) = if config.include_contacts {
            let (tx, rx) = queue();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let queues = PeopleQueues::V2 {
            students,
            teachers,
            school_admins,
            district_admins,
            contacts,
        };
        let fetch_people = async {
            let contacts = async {
                match contacts_tx {
                    Some(tx) => v2_contact_pages(client, tx).await,
                    None => Ok(()),
                }
            };
            tokio::try_join!(
                pages(client, "students", students_tx),
                pages(client, "teachers", teachers_tx),
                pages(client, "school_admins", school_admins_tx),
                pages(client, "district_admins", district_admins_tx),
                contacts,
            )
            .map(|_| ())
        };
        let map = map(common, queues, config, report, sink, started, client);
        tokio::try_join!(fetch_common, fetch_people, map)?.2
    };
    // Every fetch ended cleanly.
    if let Some(checkpoint) = checkpoint {
        sink.push(checkpoint).await?;
    }
    sink.push(snapshot).await?;
    sink.flush().await
}

/// The mapping side of [`run`]: takes pages in dependency order and sends records; the
/// snapshot is [`run`]'s to send, after every fetch has ended.
async fn map(
    mut common: Common,
    people: PeopleQueues,
    config: &Config,
    report: &Reporter,
    sink: &mut Sink,
    started: Instant,
    client: &Client,
) -> Result<Snapshot, Stop> {
    let mut state = State::default();
    let district = all(&mut common.districts).await.into_iter().next();
    let schools = all(&mut common.schools).await;
    let terms = all(&mut common.terms).await;
    let courses = all(&mut common.courses).await;
    state.counts.schools = schools.len();
    state.counts.terms = terms.len();
    state.counts.courses = courses.len();
    let courses: Courses = courses.iter().filter_map(mapping::course).collect();

    let mut school_ids = mapping::IdSet::default();
    let mut term_ids = mapping::IdSet::default();
    let mut skipped = 0;
    let mut mapped_schools: Vec<School> = Vec::new();
    for school in &schools {
        match mapping::map_school(school) {
            Some(school) => mapped_schools.push(school),
            None => skipped += 1,
        }
    }
    let mut mapped_terms: Vec<Term> = Vec::new();
    for term in &terms {
        match mapping::map_term(term) {
            Some(term) => mapped_terms.push(term),
            None => skipped += 1,
        }
    }
    drop((schools, terms));
    let (sent_schools, sent_terms) = (mapped_schools.len(), mapped_terms.len());
    for school in mapped_schools {
        school_ids.insert(school.source_id.clone());
        sink.push(school).await?;
    }
    for term in mapped_terms {
        term_ids.insert(term.source_id.clone());
        sink.push(term).await?;
    }

    let contacts_complete = match people {
        PeopleQueues::V2 {
            mut students,
            mut teachers,
            mut school_admins,
            mut district_admins,
            contacts,
        } => {
            let mut st = People::new(&mut state, &school_ids, sink);
            st.collection("students", &mut students, mapping::v2_student)
                .await?;
            st.collection("teachers", &mut teachers, mapping::v2_teacher)
                .await?;
            st.collection(
                "school_admins",
                &mut school_admins,
                mapping::v2_school_admin,
            )
            .await?;
            st.collection(
                "district_admins",
                &mut district_admins,
                mapping::v2_district_admin,
            )
            .await?;
            let complete = contacts.is_some();
            if let Some(mut contacts) = contacts {
                let mut n = 0;
                while let Some(page) = next(&mut contacts).await {
                    n += page.len();
                    for c in &page {
                        match mapping::v2_contact(c) {
                            Some((person, links)) => st.contact(person, vec![], links).await?,
                            None => st.state.people.skipped += 1,
                        }
                    }
                }
                st.state.counts.people.push(("contacts", n));
            }
            complete
        }
        PeopleQueues::V3 { mut users } => {
            let include = config.include_contacts;
            let mut st = People::new(&mut state, &school_ids, sink);
            let mut n = 0;
            while let Some(page) = next(&mut users).await {
                n += page.len();
                for user in &page {
                    match mapping::v3_user(user) {
                        V3Person::Person(person, clever_id) => {
                            st.person(person, vec![clever_id]).await?;
                        }
                        V3Person::Contact(person, clever_id, links) => {
                            if include {
                                st.contact(person, vec![clever_id], links).await?;
                            }
                        }
                        V3Person::NoRole(id) => report.warn(&format!(
                            "clever: user {id} has no role this importer knows; skipped"
                        )),
                        V3Person::NoId => st.state.people.skipped += 1,
                    }
                }
            }
            st.state.counts.people.push(("users", n));
            include
        }
    };
    skipped += state.people.skipped;
    if skipped > 0 {
        report.warn(&format!(
            "clever: {skipped} objects without an id (or with a duplicate one) were skipped"
        ));
    }

    // Every person is known: the contacts' links resolve now, into index quadruples. A
    // contact's source id is unique among the contacts added, so each student once per
    // contact is each pair once.
    let mut relationships = 0;
    let mut resolved = Vec::new();
    for contact in state.links.contacts() {
        let parent = state.links.parents[contact.start].0;
        let unresolved = state.links.resolve(contact, &state.people, &mut resolved);
        relationships += resolved.len();
        if unresolved > 0 {
            report.warn(&format!(
                "clever: contact {}: {unresolved} linked students were not returned by Clever; those relationships were skipped",
                state.people.source_id(parent)
            ));
        }
    }

    let refs = Refs {
        schools: &school_ids,
        terms: &term_ids,
        courses: &courses,
        people: &state.people,
    };
    let mut sections = common.sections;
    while let Some(page) = next(&mut sections).await {
        state.counts.sections += page.len();
        for section in &page {
            match mapping::map_section(section, &refs) {
                Ok(mapped) => {
                    let class = state.class_ids.push(Key::new(&mapped.class.source_id));
                    for (teacher, primary) in mapped.teachers {
                        state.class_teachers.push((class, teacher, primary));
                    }
                    for student in mapped.students {
                        state.enrollments.push((class, student));
                    }
                    if let Some(note) = mapped.note {
                        report.warn(&format!("clever: {note}"));
                    }
                    state.counts.classes += 1;
                    sink.push(mapped.class).await?;
                }
                Err(note) => report.warn(&format!("clever: {note}")),
            }
        }
    }

    // Every fetch ended cleanly: the links, then the snapshot.
    let district = district
        .as_ref()
        .map(|d| {
            let id = model::get(&d.id).unwrap_or_default();
            match model::get(&d.name) {
                Some(name) => format!("{name} ({id})"),
                None => id,
            }
        })
        .unwrap_or_else(|| "(unnamed district)".into());
    let c = &state.counts;
    let people_fetched: Vec<String> = c
        .people
        .iter()
        .map(|(what, n)| format!("{n} {}", what.replace('_', " ")))
        .collect();
    report.info(&format!(
        "clever {}: {district}: fetched {} schools, {} terms, {} courses, {} sections, {} in {} requests, {:.1} s",
        config.api_version.as_str(),
        c.schools,
        c.terms,
        c.courses,
        c.sections,
        people_fetched.join(", "),
        client.request_count(),
        started.elapsed().as_secs_f64()
    ));
    if config.include_contacts && !contacts_complete {
        report.warn(
            "clever: contacts were not fetched; parents and relationships are left as they are",
        );
    }
    report.info(&format!(
        "clever: {sent_schools} schools, {sent_terms} terms, {} people, {} classes, {} enrollments, {} class-teacher links, {} relationships",
        c.people_sent,
        c.classes,
        state.enrollments.len(),
        state.class_teachers.len(),
        relationships
    ));
    let class_id = |index: u32| state.class_ids.text(index);
    for &(class, teacher, primary) in &state.class_teachers {
        sink.push(ClassTeacher {
            teacher_id_kind: None,
            class_id: class_id(class),
            teacher_id: state.people.source_id(teacher),
            primary,
        })
        .await?;
    }
    for &(class, student) in &state.enrollments {
        let class_id = state.class_ids.text_of(class);
        let student_id = state.people.source_id_text(student);
        sink.push_enrollment(class_id.as_str(), student_id.as_str())
            .await?;
    }
    for contact in state.links.contacts() {
        state.links.resolve(contact, &state.people, &mut resolved);
        for &(parent, student, relationship, contact_type) in &resolved {
            let parent_id = state.people.source_id_text(parent);
            let student_id = state.people.source_id_text(student);
            sink.push_relationship(
                parent_id.as_str(),
                student_id.as_str(),
                state.texts.all[relationship as usize].as_deref(),
                state.texts.all[contact_type as usize].as_deref(),
            )
            .await?;
        }
    }
    Ok(Roster {
        contacts_complete,
        ..Roster::default()
    }
    .snapshot())
}

/// People as their pages come: mapped, checked against the ids taken, sent.
struct People<'a> {
    state: &'a mut State,
    school_ids: &'a mapping::IdSet,
    sink: &'a mut Sink,
}

impl<'a> People<'a> {
    fn new(state: &'a mut State, school_ids: &'a mapping::IdSet, sink: &'a mut Sink) -> Self {
        People {
            state,
            school_ids,
            sink,
        }
    }

    /// One v2 collection of people, page by page.
    async fn collection<T>(
        &mut self,
        name: &'static str,
        rx: &mut Pages<T>,
        map: fn(&T) -> mapping::Mapped,
    ) -> Result<(), Stop> {
        let mut n = 0;
        while let Some(page) = next(rx).await {
            n += page.len();
            for item in &page {
                match map(item) {
                    Some((person, aliases)) => {
                        self.person(person, aliases).await?;
                    }
                    None => self.state.people.skipped += 1,
                }
            }
        }
        self.state.counts.people.push((name, n));
        Ok(())
    }

    async fn person(&mut self, person: Person, aliases: Vec<String>) -> Result<Option<u32>, Stop> {
        let Some(index) = self.state.people.push(&person, &aliases) else {
            return Ok(None);
        };
        let mut person = person;
        mapping::keep_known_schools(&mut person, self.school_ids);
        self.state.counts.people_sent += 1;
        self.sink.push(person).await?;
        Ok(Some(index))
    }

    async fn contact(
        &mut self,
        person: Person,
        aliases: Vec<String>,
        links: ContactLinks,
    ) -> Result<(), Stop> {
        if let Some(parent) = self.person(person, aliases).await? {
            let state = &mut *self.state;
            for (student, relationship, contact_type) in &links.students {
                let relationship = state.texts.id(relationship);
                let contact_type = state.texts.id(contact_type);
                state
                    .links
                    .push(parent, Key::new(student), relationship, contact_type);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_index_role_and_source_apart() {
        let slot = Slot::new((1 << 28) - 1, Role::Staff as i32, true);
        assert_eq!(slot.index(), (1 << 28) - 1);
        assert_eq!(slot.role(), Role::Staff as i32);
        assert!(slot.source());
        let alias = slot.alias();
        assert_eq!((alias.index(), alias.role()), (slot.index(), slot.role()));
        assert!(!alias.source());
        assert_eq!(Slot::new(0, Role::Unspecified as i32, false).0, 0);
    }

    #[test]
    fn people_are_found_by_every_id_of_theirs_and_their_role() {
        let hex = "5f0c3a1b2c3d4e5f60718293";
        let person = |id: &str, role: Role| Person {
            source_id: id.into(),
            role: role as i32,
            ..Default::default()
        };
        let mut table = PersonTable::default();
        assert_eq!(
            table.push(&person(hex, Role::Student), &["v2-student".into()]),
            Some(0)
        );
        assert_eq!(table.push(&person("T-1", Role::Teacher), &[]), Some(1));
        // A source id taken is skipped; an alias taken is not a source id.
        assert_eq!(table.push(&person(hex, Role::Student), &[]), None);
        assert_eq!(
            table.push(&person("v2-student", Role::Student), &[]),
            Some(2)
        );
        assert_eq!(table.skipped, 1);

        assert_eq!(table.person(hex, Role::Student), Some(0));
        assert_eq!(table.person(hex, Role::Teacher), None);
        assert_eq!(table.person("T-1", Role::Teacher), Some(1));
        // The source id now names person 2; the alias of person 0 gave way to it.
        assert_eq!(table.person("v2-student", Role::Student), Some(2));
        assert_eq!(table.person("unknown", Role::Student), None);
        assert_eq!(table.source_id(0), hex);
        assert_eq!(table.source_id(1), "T-1");
    }

    #[test]
    fn a_key_list_gives_back_each_key_at_its_position() {
        let hex = "5f0c3a1b2c3d4e5f60718293";
        let mut keys = KeyList::default();
        assert_eq!(keys.push(Key::new(hex)), 0);
        assert_eq!(keys.push(Key::new("not-hex")), 1);
        // All zeros is a hex key like any other, not the text slot's filler.
        assert_eq!(keys.push(Key::new("000000000000000000000000")), 2);
        assert_eq!(keys.text(0), hex);
        assert_eq!(keys.text(1), "not-hex");
        assert_eq!(keys.text(2), "000000000000000000000000");
        assert!(keys.get(1) == Key::Text("not-hex".into()));
    }

    #[test]
    fn a_contacts_links_resolve_in_order_each_student_once() {
        let student = |n: u32| format!("5f0c3a1b2c3d4e5f6071{n:04x}");
        let mut people = PersonTable::default();
        for n in 0..40 {
            let person = Person {
                source_id: student(n),
                role: Role::Student as i32,
                ..Default::default()
            };
            people.push(&person, &[]);
        }
        let teacher = Person {
            source_id: "teacher".into(),
            role: Role::Teacher as i32,
            ..Default::default()
        };
        people.push(&teacher, &[]).unwrap();

        let mut links = Links::default();
        // Contact 100: student 3, student 1, student 3 again, a teacher, an unknown id.
        for (id, relationship) in [
            (student(3), 1),
            (student(1), 2),
            (student(3), 3),
            ("teacher".to_string(), 4),
            ("unknown".to_string(), 5),
        ] {
            links.push(100, Key::new(&id), relationship, 9);
        }
        // Contact 101: all forty students twice (past the scan, into the set).
        for n in (0..40).chain(0..40) {
            links.push(101, Key::new(&student(n)), 0, 0);
        }
        links.push(102, Key::new(&student(0)), 7, 8);

        let contacts: Vec<_> = links.contacts().collect();
        assert_eq!(contacts, vec![0..5, 5..85, 85..86]);
        let mut out = Vec::new();
        assert_eq!(links.resolve(contacts[0].clone(), &people, &mut out), 2);
        assert_eq!(out, vec![(100, 3, 1, 9), (100, 1, 2, 9)]);
        assert_eq!(links.resolve(contacts[1].clone(), &people, &mut out), 0);
        assert_eq!(
            out.iter().map(|r| r.1).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        assert_eq!(links.resolve(contacts[2].clone(), &people, &mut out), 0);
        assert_eq!(out, vec![(102, 0, 7, 8)]);
    }
}
