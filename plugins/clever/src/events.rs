//! Continuing from the last run through Clever's Events API (v3.x), as Clever recommends
//! for a nightly sync: a complete run records the newest event's id before it starts
//! (changes made while it reads are replayed next time), and the next run reads only the
//! events after it.
//!
//! Each object's last event decides (the feed carries whole objects), and what changed
//! goes to the host as a continuing run: schools, terms, people and classes as records,
//! deletions as `Removal`s. A section's students are diffed where each event is parsed
//! (`previous_attributes.students`, which Clever fills with the whole old list, against the
//! new one), and the run keeps only who left and who joined: one student moving class is
//! two links, not the class's thirty. A section's teachers and a contact's students, when
//! they changed, are replaced (`LinksReplaced`, then the links). Links name people by
//! Clever id (`*_id_kind = "clever_id"`): an unchanged person's source id (its legacy id,
//! when it has one) is only in the roster, and the host finds it there.
//!
//! A run reads the whole district instead when the feed no longer has the checkpoint's
//! event (Clever keeps 30 days), or when a course changed (every section of the course
//! would change with it, and the feed does not say so).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use roster_core::record::{
    Checkpoint, ClassTeacher, Enrollment, Entity, LinksReplaced, Relationship, Removal, Role,
    Snapshot,
};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::client::{Client, Pager};
use crate::config::Config;
use crate::error::FetchError;
use crate::mapping::{self, Courses, Refs, Resolve, V3Person};
use crate::model::{self, get, Envelope, Field};
use crate::model_v3 as v3;
use crate::report::Reporter;
use crate::stream::{Sink, Stop};

/// How a checkpoint starts, so that one of another format is never misread.
const TAG: &str = "clever-events/1";

/// The identifier kind links name people by (every person carries it).
const BY: &str = "clever_id";

/// Whether `config` can continue from events: the v3 feed, and no `schools` filter
/// (which people belong to the kept schools is known only from the whole district).
pub fn usable(config: &Config) -> bool {
    config.api_version.is_v3() && config.schools.is_empty()
}

/// A checkpoint: the API version and the last event applied (`None`: the feed was empty,
/// so every event in it is newer).
pub fn checkpoint(version: &str, after: Option<&str>) -> Checkpoint {
    Checkpoint {
        state: format!("{TAG} {version} {}", after.unwrap_or("-")).into_bytes(),
        extends: false,
    }
}

/// The event a checkpoint continues after, if it is one of ours for `version`.
pub fn continues_after(state: &[u8], version: &str) -> Option<Option<String>> {
    let text = std::str::from_utf8(state).ok()?;
    let mut parts = text.split(' ');
    if parts.next()? != TAG || parts.next()? != version {
        return None;
    }
    let after = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((after != "-").then(|| after.to_string()))
}

/// An event as it comes, borrowed from its page: its object is parsed once its type is
/// known.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Event<'a> {
    id: Field,
    #[serde(rename = "type")]
    kind: Field,
    #[serde(borrow)]
    data: Option<EventData<'a>>,
}

#[derive(Debug, Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
    #[serde(borrow, default)]
    previous_attributes: Option<&'a RawValue>,
}

/// What a section's update changed, of what the links need.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SectionBefore {
    #[serde(deserialize_with = "some_ids")]
    students: Option<Vec<String>>,
    teachers: Option<serde::de::IgnoredAny>,
    teacher: Option<serde::de::IgnoredAny>,
}

fn some_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    model::ids(deserializer).map(Some)
}

/// The newest event's id, for a complete run to start its checkpoint from: `Ok(None)`
/// when there is no feed to continue from (events are opt-in per district app), with
/// the reason logged.
pub async fn newest(client: &Client, report: &Reporter) -> Option<Checkpoint> {
    let version = client.version();
    let url = client.events_url("ending_before=last&limit=1");
    let mut pager = Pager::at(client, "events", url);
    /// Of the newest event, its id is all that is needed.
    #[derive(Deserialize)]
    struct Newest {
        #[serde(default)]
        id: Field,
    }
    match pager.next_page::<Newest>().await {
        Ok(page) => {
            let newest = page.unwrap_or_default().pop().and_then(|e| get(&e.id));
            Some(checkpoint(version, newest.as_deref()))
        }
        Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {
            report.info(&format!(
                "clever: the events API answered HTTP {status}; every sync reads the whole district"
            ));
            None
        }
        Err(error) => {
            report.warn(&format!(
                "clever: could not read the newest event ({error}); the next sync reads the whole district"
            ));
            None
        }
    }
}

/// How a continuing run ended.
pub enum Continued {
    Done,
    /// The feed cannot bring the roster up to date: read the whole district (why).
    Full(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Created,
    Updated,
    Deleted,
}

/// Each object's last event, in the order the objects first appeared: the events in a
/// vector, found by id through a map of positions (an event's object is a few hundred
/// bytes; moved on every rehash of a map holding them, it was 7% of the reading).
struct Latest<T> {
    position: foldhash::HashMap<String, usize>,
    last: Vec<T>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest {
            position: foldhash::HashMap::default(),
            last: Vec::new(),
        }
    }
}

impl<T> Latest<T> {
    /// The entry for object `id`, made by `first` at its first event.
    fn entry(&mut self, id: String, first: impl FnOnce() -> T) -> &mut T {
        let next = self.last.len();
        let at = *self.position.entry(id).or_insert(next);
        if at == next {
            self.last.push(first());
        }
        &mut self.last[at]
    }

    fn set(&mut self, id: String, value: T) {
        let next = self.last.len();
        match self.position.entry(id) {
            std::collections::hash_map::Entry::Occupied(at) => self.last[*at.get()] = value,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(next);
                self.last.push(value);
            }
        }
    }

    fn in_order(&self) -> impl Iterator<Item = &T> {
        self.last.iter()
    }
}

/// A section over the run's events.
struct SectionChange {
    action: Action,
    /// As its last event has it, without its students (they are in `students`).
    section: Box<model::Section>,
    students: Enrolled,
    teachers_changed: bool,
}

/// A section's students over the run's events.
#[derive(Debug, PartialEq)]
enum Enrolled {
    /// Created in the run (again, after a deletion, too): every student its events leave
    /// it, in order; whatever the roster had of it goes.
    Whole(Vec<String>),
    /// A section the roster has: each student the run moved in (`true`) or out (`false`),
    /// in the order they first moved. One who left and came back is not there.
    Moved(Vec<(String, bool)>),
}

impl Enrolled {
    /// One more event's moves, in the feed's order.
    fn apply(&mut self, moves: Moves) {
        match self {
            Enrolled::Whole(students) => {
                students.retain(|s| !moves.left.contains(s));
                for student in moves.joined {
                    if !students.contains(&student) {
                        students.push(student);
                    }
                }
            }
            // The common night: a section's one event, its moves taken as they are.
            Enrolled::Moved(moved) if moved.is_empty() => {
                moved.extend(moves.left.into_iter().map(|s| (s, false)));
                moved.extend(moves.joined.into_iter().map(|s| (s, true)));
            }
            Enrolled::Moved(moved) => {
                let changes = (moves.left.into_iter().map(|s| (s, false)))
                    .chain(moves.joined.into_iter().map(|s| (s, true)));
                for (student, joined) in changes {
                    match moved.iter().position(|(s, _)| *s == student) {
                        // In and out again (or the other way): as before the run.
                        Some(at) if moved[at].1 != joined => {
                            moved.remove(at);
                        }
                        Some(_) => {}
                        None => moved.push((student, joined)),
                    }
                }
            }
        }
    }
}

/// Who left a section and who joined it in one event: each once, in id order.
#[derive(Debug, Default, PartialEq)]
struct Moves {
    left: Vec<String>,
    joined: Vec<String>,
}

impl Moves {
    /// From a section's students before an event and after it.
    fn between(mut before: Vec<String>, mut after: Vec<String>) -> Moves {
        before.sort_unstable();
        before.dedup();
        after.sort_unstable();
        after.dedup();
        let mut moves = Moves::default();
        let (mut before, mut after) = (before.into_iter().peekable(), after.into_iter().peekable());
        loop {
            match (before.peek(), after.peek()) {
                (Some(b), Some(a)) => match b.cmp(a) {
                    std::cmp::Ordering::Less => moves.left.extend(before.next()),
                    std::cmp::Ordering::Greater => moves.joined.extend(after.next()),
                    std::cmp::Ordering::Equal => {
                        before.next();
                        after.next();
                    }
                },
                (Some(_), None) => moves.left.extend(before.next()),
                (None, Some(_)) => moves.joined.extend(after.next()),
                (None, None) => return moves,
            }
        }
    }
}

#[derive(Default)]
/// The objects are boxed where they are parsed, on the worker threads: folding an event
/// in on the fetching thread then moves a pointer, and the vectors it grows stay small.
struct Changes {
    schools: Latest<(Action, Box<model::School>)>,
    terms: Latest<(Action, Box<model::Term>)>,
    users: Latest<(Action, Box<v3::User>)>,
    sections: Latest<SectionChange>,
}

/// One event of a page, parsed on a worker thread while the next page is fetched.
enum Parsed {
    /// Without an id, a type or data: counted, and nothing else.
    Skipped,
    /// An event with nothing for the roster: the run continues after it.
    Seen(String),
    Change(String, Action, Object),
}

impl Parsed {
    /// A page's events, in order. Its bytes were read as JSON when it was fetched, and
    /// its objects are borrowed from them until parsed.
    fn page(body: &[u8]) -> serde_json::Result<Vec<Parsed>> {
        let page: Envelope<Event<'_>> = match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str(text)?,
            Err(_) => serde_json::from_slice(body)?,
        };
        Ok(page
            .data
            .into_iter()
            .map(|item| Parsed::of(item.data))
            .collect())
    }

    fn of(event: Event<'_>) -> Parsed {
        let (Some(id), Some(kind), Some(data)) = (get(&event.id), get(&event.kind), event.data)
        else {
            return Parsed::Skipped;
        };
        let Some((resource, action)) = kind.rsplit_once('.') else {
            return Parsed::Seen(id);
        };
        let action = match action {
            "created" => Action::Created,
            "updated" => Action::Updated,
            "deleted" => Action::Deleted,
            _ => return Parsed::Seen(id),
        };
        Parsed::Change(id, action, Object::of(resource, action, &data))
    }
}

/// An event's object, parsed once, as what its resource is, with its id. One without an
/// id is skipped, as a list's object without one is, and so is one that is not what its
/// resource says.
enum Object {
    School(String, Box<model::School>),
    Term(String, Box<model::Term>),
    User(String, Box<v3::User>),
    Section(String, Box<model::Section>, SectionEdit),
    /// A course changed: the feed cannot say what that did to its sections.
    Course,
    /// Nothing the roster keeps: districts and other resources, or an object skipped.
    Nothing,
}

/// What a section's event did to its links, worked out where the event is parsed: a
/// night's events name 3.3 million students at nyc, nearly all of them in classes that
/// kept them, and the run keeps only the moves.
struct SectionEdit {
    /// Who left and who joined, for an update or deletion (none when its students did not
    /// change); `None` for a section created, whose students stay in the section.
    moves: Option<Moves>,
    teachers_changed: bool,
}

impl SectionEdit {
    /// `section`'s students are taken for the moves, unless `action` created it.
    fn of(action: Action, section: &mut model::Section, before: SectionBefore) -> SectionEdit {
        let teachers_changed = before.teachers.is_some() || before.teacher.is_some();
        let moves = match (action, before.students) {
            (Action::Created, _) => None,
            (_, None) => {
                section.students = Vec::new();
                Some(Moves::default())
            }
            (_, Some(before)) => Some(Moves::between(
                before,
                std::mem::take(&mut section.students),
            )),
        };
        SectionEdit {
            moves,
            teachers_changed,
        }
    }
}

impl Object {
    fn of(resource: &str, action: Action, data: &EventData<'_>) -> Object {
        fn parse<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Option<T> {
            serde_json::from_str(raw.get()).ok()
        }
        fn with_id<T>(object: Option<T>, id: impl Fn(&T) -> &Field) -> Option<(String, T)> {
            let object = object?;
            Some((get(id(&object))?, object))
        }
        let object = data.object;
        let parsed = match resource {
            "schools" => with_id(parse::<model::School>(object), |s| &s.id)
                .map(|(id, school)| Object::School(id, Box::new(school))),
            "terms" => with_id(parse::<model::Term>(object), |t| &t.id)
                .map(|(id, term)| Object::Term(id, Box::new(term))),
            "users" => with_id(parse::<v3::User>(object), |u| &u.id)
                .map(|(id, user)| Object::User(id, Box::new(user))),
            "sections" => {
                with_id(parse::<model::Section>(object), |s| &s.id).map(|(id, mut section)| {
                    let before = data.previous_attributes.and_then(parse).unwrap_or_default();
                    let edit = SectionEdit::of(action, &mut section, before);
                    Object::Section(id, Box::new(section), edit)
                })
            }
            "courses" => {
                #[derive(Deserialize)]
                struct Id {
                    id: Field,
                }
                with_id(parse::<Id>(object), |i| &i.id).map(|_| Object::Course)
            }
            _ => None,
        };
        parsed.unwrap_or(Object::Nothing)
    }
}

impl Changes {
    /// Fold one event's object in, in the feed's order; `Err` names what makes the feed
    /// unusable.
    fn fold(&mut self, action: Action, object: Object) -> Result<(), String> {
        match object {
            Object::School(id, school) => self.schools.set(id, (action, school)),
            Object::Term(id, term) => self.terms.set(id, (action, term)),
            Object::User(id, user) => self.users.set(id, (action, user)),
            Object::Section(id, mut section, edit) => {
                let change = self.sections.entry(id, || SectionChange {
                    action,
                    section: Box::default(),
                    students: Enrolled::Moved(Vec::new()),
                    teachers_changed: false,
                });
                match edit.moves {
                    Some(moves) => change.students.apply(moves),
                    None => {
                        change.students = Enrolled::Whole(std::mem::take(&mut section.students))
                    }
                }
                change.action = action;
                change.teachers_changed |= edit.teachers_changed || action == Action::Created;
                change.section = section;
            }
            Object::Course => {
                return Err("a course changed, and with it every section of the course".into())
            }
            Object::Nothing => {}
        }
        Ok(())
    }
}

/// People named by their Clever id, for the host to find: a continuing run does not
/// know the source ids of the people it did not read.
struct ByCleverId;

impl Resolve for ByCleverId {
    type Id = String;
    fn person(&self, clever_id: &str, _role: Role) -> Option<String> {
        Some(clever_id.to_string())
    }
}

fn removal(entity: Entity, source_id: String) -> Removal {
    Removal {
        entity: entity as i32,
        source_id,
        ..Removal::default()
    }
}

fn links_replaced(entity: Entity, owner_id: &str) -> LinksReplaced {
    LinksReplaced {
        entity: entity as i32,
        owner_id: owner_id.to_string(),
    }
}

fn entity_of(role: i32) -> Entity {
    match Role::try_from(role) {
        Ok(Role::Student) => Entity::Students,
        Ok(Role::Teacher) => Entity::Teachers,
        Ok(Role::Parent) => Entity::Parents,
        _ => Entity::Staff,
    }
}

/// Pages of events parsed side by side (the fetching thread goes on with the next).
const PAGES_PARSED_AT_ONCE: usize = 2;

/// The events after the checkpoint's, folded into the objects they leave changed.
struct Feed {
    changes: Changes,
    last_event: Option<String>,
    events: usize,
}

impl Feed {
    /// Folds a parsed page's events in, in order; `Some(why)` when one of them means
    /// the run must read the whole district instead.
    async fn fold_page(
        &mut self,
        client: &Client,
        url: String,
        parsed: tokio::task::JoinHandle<(serde_json::Result<Vec<Parsed>>, Vec<u8>)>,
    ) -> Result<Option<String>, Stop> {
        let parsed = match parsed.await {
            Ok((parsed, body)) => {
                client.give_back(body);
                parsed
            }
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        let parsed = parsed.map_err(|error| FetchError::Body {
            url,
            detail: error.to_string(),
            attempts: 1,
        })?;
        for event in parsed {
            self.events += 1;
            let (id, action, object) = match event {
                Parsed::Skipped => continue,
                Parsed::Seen(id) => {
                    self.last_event = Some(id);
                    continue;
                }
                Parsed::Change(id, action, object) => (id, action, object),
            };
            self.last_event = Some(id);
            if let Err(why) = self.changes.fold(action, object) {
                return Ok(Some(why));
            }
        }
        Ok(None)
    }
}

/// Reads the feed from `query` on: `Err(why)` inside when the run must read the whole
/// district instead.
async fn read_events(
    client: &Client,
    query: &str,
    after: &Option<String>,
) -> Result<Result<Feed, String>, Stop> {
    let mut pager = Pager::at(client, "events", client.events_url(query));
    let mut feed = Feed {
        changes: Changes::default(),
        last_event: after.clone(),
        events: 0,
    };
    let mut pages = 0usize;
    // Each page is parsed on the runtime's blocking pool while the next ones are fetched,
    // and folded in in the feed's order: the host has nothing to apply until the last
    // page is in. Parsing is what that wait is made of (a page takes longer to parse than
    // to fetch), and the host's core is idle meanwhile: [`PAGES_PARSED_AT_ONCE`] pages
    // are parsed side by side.
    let mut parsing = VecDeque::new();
    let fetched = loop {
        let page = match pager.next_raw_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        pages += 1;
        let url = pager.last_url().to_string();
        parsing.push_back((
            url,
            tokio::task::spawn_blocking(move || (Parsed::page(&page.body), page.body)),
        ));
        if parsing.len() == PAGES_PARSED_AT_ONCE {
            let (url, parsed) = parsing.pop_front().expect("a page is being parsed");
            if let Some(why) = feed.fold_page(client, url, parsed).await? {
                return Ok(Err(why));
            }
        }
    };
    // The pages fetched before a failure are folded in first: one of them may already
    // have decided that the run reads the whole district.
    while let Some((url, parsed)) = parsing.pop_front() {
        if let Some(why) = feed.fold_page(client, url, parsed).await? {
            return Ok(Err(why));
        }
    }
    match fetched {
        Ok(()) => Ok(Ok(feed)),
        // The mock's answer for an event the feed no longer has; Clever does not
        // document its own, so any 404 on the first page is read that way.
        Err(FetchError::Status { status: 404, .. }) if pages == 0 => Ok(Err(format!(
            "the events feed no longer has event {}",
            after.as_deref().unwrap_or("(start)")
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Read the events after `after` and send what changed, or say why the whole district
/// must be read instead (before anything was sent).
pub async fn continue_from(
    client: &Client,
    config: &Config,
    report: &Reporter,
    sink: &mut Sink,
    after: Option<String>,
) -> Result<Continued, Stop> {
    let started = Instant::now();
    let query = match &after {
        Some(id) => format!("starting_after={id}"),
        None => String::new(),
    };
    // What sections and people refer to, in full (a few thousand objects), fetched
    // while the events are read: after them, it was the last wait before the first
    // record.
    let refs = async {
        tokio::try_join!(
            client.fetch_all::<model::School>("schools"),
            client.fetch_all::<model::Term>("terms"),
            client.fetch_all::<model::Course>("courses"),
        )
    };
    let (read, refs) = tokio::join!(read_events(client, &query, &after), refs);
    // The events decide first: a run that reads the whole district fetches these again.
    let Feed {
        changes,
        last_event,
        events,
    } = match read? {
        Ok(feed) => feed,
        Err(why) => return Ok(Continued::Full(why)),
    };
    let (schools, terms, courses) = refs?;
    let school_ids: mapping::IdSet = schools.iter().filter_map(|s| get(&s.id)).collect();
    let term_ids: mapping::IdSet = terms.iter().filter_map(|t| get(&t.id)).collect();
    let courses: Courses = courses.iter().filter_map(mapping::course).collect();

    sink.push(Snapshot::continuing()).await?;
    let mut sent = Counts::default();
    for (action, school) in changes.schools.in_order() {
        let Some(school) = mapping::map_school(school) else {
            continue;
        };
        sent.count(*action);
        match action {
            Action::Deleted => {
                sink.push(removal(Entity::Schools, school.source_id))
                    .await?
            }
            _ => sink.push(school).await?,
        }
    }
    for (action, term) in changes.terms.in_order() {
        let Some(term) = mapping::map_term(term) else {
            continue;
        };
        sent.count(*action);
        match action {
            Action::Deleted => sink.push(removal(Entity::Terms, term.source_id)).await?,
            _ => sink.push(term).await?,
        }
    }

    let mut contacts = Vec::new();
    for (action, user) in changes.users.in_order() {
        let (mut person, links) = match mapping::v3_user(user) {
            V3Person::Person(person, _) => (person, None),
            V3Person::Contact(person, _, links) if config.include_contacts => (person, Some(links)),
            V3Person::Contact(..) | V3Person::NoId => continue,
            V3Person::NoRole(id) => {
                report.warn(&format!(
                    "clever: user {id} has no role this importer knows; skipped"
                ));
                continue;
            }
        };
        sent.count(*action);
        if *action == Action::Deleted {
            let entity = entity_of(person.role);
            sink.push(removal(entity, person.source_id)).await?;
            continue;
        }
        mapping::keep_known_schools(&mut person, &school_ids);
        sink.push(person).await?;
        if let Some(links) = links {
            contacts.push(links);
        }
    }

    let refs = Refs {
        schools: &school_ids,
        terms: &term_ids,
        courses: &courses,
        people: &ByCleverId,
    };
    for change in changes.sections.in_order() {
        let mapped = match mapping::map_section(&change.section, &refs) {
            Ok(mapped) => mapped,
            Err(note) => {
                report.warn(&format!("clever: {note}"));
                continue;
            }
        };
        sent.count(change.action);
        let class_id = mapped.class.source_id.clone();
        if change.action == Action::Deleted {
            sink.push(removal(Entity::Classes, class_id)).await?;
            continue;
        }
        if let Some(note) = mapped.note {
            report.warn(&format!("clever: {note}"));
        }
        sink.push(mapped.class).await?;
        if change.teachers_changed {
            sink.push(links_replaced(Entity::ClassTeachers, &class_id))
                .await?;
            for (teacher, primary) in mapped.teachers {
                sink.push(ClassTeacher {
                    class_id: class_id.clone(),
                    teacher_id: teacher,
                    primary,
                    teacher_id_kind: Some(BY.into()),
                })
                .await?;
            }
        }
        let enrollment = |student: &String| Enrollment {
            class_id: class_id.clone(),
            student_id: student.clone(),
            student_id_kind: Some(BY.into()),
        };
        match &change.students {
            Enrolled::Whole(students) => {
                sink.push(links_replaced(Entity::Enrollments, &class_id))
                    .await?;
                let mut seen = HashSet::new();
                for student in students.iter().filter(|s| seen.insert(*s)) {
                    sink.push(enrollment(student)).await?;
                }
            }
            Enrolled::Moved(moved) => {
                for (student, joined) in moved {
                    if *joined {
                        sink.push(enrollment(student)).await?;
                    } else {
                        sink.push(Removal {
                            entity: Entity::Enrollments as i32,
                            source_id: class_id.clone(),
                            other_id: student.clone(),
                            other_id_kind: Some(BY.into()),
                        })
                        .await?;
                    }
                }
            }
        }
    }
    // After every person: a contact's students may be new in this run.
    for links in contacts {
        sink.push(links_replaced(Entity::Relationships, &links.parent_id))
            .await?;
        let mut seen = HashSet::new();
        for (student, relationship, contact_type) in links.students {
            if !seen.insert(student.clone()) {
                continue;
            }
            sink.push(Relationship {
                parent_id: links.parent_id.clone(),
                student_id: student,
                relationship,
                contact_type,
                student_id_kind: Some(BY.into()),
            })
            .await?;
        }
    }
    report.info(&format!(
        "clever {}: continued after event {}: {events} events, {} changed and {} deleted objects, in {} requests, {:.1} s",
        config.api_version.as_str(),
        after.as_deref().unwrap_or("(start of the feed)"),
        sent.changed,
        sent.deleted,
        client.request_count(),
        started.elapsed().as_secs_f64()
    ));
    sink.push(checkpoint(client.version(), last_event.as_deref()))
        .await?;
    sink.flush().await?;
    Ok(Continued::Done)
}

#[derive(Default)]
struct Counts {
    changed: usize,
    deleted: usize,
}

impl Counts {
    fn count(&mut self, action: Action) {
        match action {
            Action::Created | Action::Updated => self.changed += 1,
            Action::Deleted => self.deleted += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    fn moves(left: &[&str], joined: &[&str]) -> Moves {
        Moves {
            left: ids(left),
            joined: ids(joined),
        }
    }

    #[test]
    fn an_events_moves_are_who_left_and_who_joined_each_once() {
        assert_eq!(
            Moves::between(ids(&["c", "a", "b", "a"]), ids(&["d", "b", "b", "e"])),
            moves(&["a", "c"], &["d", "e"])
        );
        assert_eq!(
            Moves::between(ids(&["a", "b"]), ids(&["b", "a"])),
            Moves::default()
        );
        assert_eq!(Moves::between(Vec::new(), ids(&["a"])), moves(&[], &["a"]));
        assert_eq!(Moves::between(ids(&["a"]), Vec::new()), moves(&["a"], &[]));
    }

    #[test]
    fn a_sections_moves_over_a_run_leave_out_who_came_back() {
        let mut students = Enrolled::Moved(Vec::new());
        students.apply(moves(&["a"], &["x"]));
        students.apply(moves(&["x", "b"], &["a", "y"]));
        students.apply(moves(&["y"], &["z"]));
        students.apply(moves(&[], &["z"]));
        let moved = [("b", false), ("z", true)].map(|(s, joined)| (s.to_string(), joined));
        assert_eq!(students, Enrolled::Moved(moved.to_vec()));
    }

    #[test]
    fn a_section_made_in_the_run_keeps_its_whole_list() {
        let mut students = Enrolled::Whole(ids(&["a", "b"]));
        students.apply(moves(&["a"], &["c", "b"]));
        students.apply(moves(&["c"], &["a"]));
        assert_eq!(students, Enrolled::Whole(ids(&["b", "a"])));
    }

    fn section_event(action: Action, object: &str, previous: Option<&str>) -> Object {
        let previous = previous.map(|p| format!(r#","previous_attributes":{p}"#));
        let text = format!(r#"{{"object":{object}{}}}"#, previous.unwrap_or_default());
        let data: EventData<'_> = serde_json::from_str(&text).unwrap();
        Object::of("sections", action, &data)
    }

    #[test]
    fn a_sections_events_fold_into_its_moves_or_its_whole_list() {
        let mut changes = Changes::default();
        let events = [
            (
                Action::Updated,
                r#"{"id":"s1","students":["a","c"]}"#,
                Some(r#"{"students":["a","b"]}"#),
            ),
            (
                Action::Updated,
                r#"{"id":"s1","name":"Renamed","students":["a","c"]}"#,
                Some(r#"{"name":"Art"}"#),
            ),
            (Action::Created, r#"{"id":"s2","students":["a","b"]}"#, None),
            (
                Action::Updated,
                r#"{"id":"s2","students":["b","d"],"teacher":"t"}"#,
                Some(r#"{"students":["a","b"],"teacher":null}"#),
            ),
            (Action::Deleted, r#"{"id":"s3","students":["a"]}"#, None),
            (Action::Created, r#"{"id":"s3","students":["e"]}"#, None),
        ];
        for (action, object, previous) in events {
            changes
                .fold(action, section_event(action, object, previous))
                .unwrap();
        }
        let sections: Vec<_> = changes.sections.in_order().collect();
        let moved = [("b", false), ("c", true)].map(|(s, joined)| (s.to_string(), joined));
        assert_eq!(sections[0].students, Enrolled::Moved(moved.to_vec()));
        assert_eq!(get(&sections[0].section.name).as_deref(), Some("Renamed"));
        assert!(sections[0].section.students.is_empty());
        assert!(!sections[0].teachers_changed);
        assert_eq!(sections[1].students, Enrolled::Whole(ids(&["b", "d"])));
        assert!(sections[1].teachers_changed);
        assert!(sections[2].action == Action::Created);
        assert_eq!(sections[2].students, Enrolled::Whole(ids(&["e"])));
    }

    #[test]
    fn a_checkpoint_reads_back_only_for_its_own_version() {
        let state = checkpoint("v3.0", Some("5f0000000000000000000001")).state;
        assert_eq!(
            continues_after(&state, "v3.0"),
            Some(Some("5f0000000000000000000001".to_string()))
        );
        assert_eq!(continues_after(&state, "v3.1"), None);
        let empty = checkpoint("v3.0", None).state;
        assert_eq!(continues_after(&empty, "v3.0"), Some(None));
        assert_eq!(continues_after(b"something else", "v3.0"), None);
        assert_eq!(continues_after(&[0xff, 0xfe], "v3.0"), None);
    }
}
