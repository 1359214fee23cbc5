//! The generated district as Clever API data, served on loopback.
//!
//! Two ways to serve it:
//! - **direct**: the whole district as one [`roster_clever_mock::District`] behind a
//!   [`MockServer`]. The mock renders the whole collection for every page it serves
//!   (O(collection) per request), which is fine for `tiny` and `small` and hopeless for
//!   `nyc` (3M users rendered 300 times).
//! - **replay** (the default): every page the plugin will ask for is rendered once, before
//!   the timed run, by the mock's own router ([`roster_clever_mock::router`]) from a
//!   district holding only that page's objects — so each page costs O(page) and comes out
//!   byte for byte as the mock would serve it from the whole district (same envelope,
//!   links, `next`/`prev` paging). The pages are stored on disk; during the timed import a
//!   small server in the bench process answers each request with its stored page.
//!
//! `--check` imports `tiny` both ways and compares the two databases.
//!
//! For the re-sync, [`capture_events`] renders, the same way, the Events API pages a sync
//! reads: the feed a complete import finds (one event, its checkpoint) and the events of
//! the objects revision 1 changes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_clever_mock as mock;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::generate::{block, District, SIZES};

pub const TOKEN: &str = "bench-token";
pub const VERSION: &str = "v3.0";
pub const PAGE_SIZE: u64 = 10_000;

const DISTRICT_ID: &str = "5a0000000000000000000001";
const TERM_ID: &str = "5c0000000000000000000001";
const COURSES: u64 = 10;

fn school_id(s: u64) -> String {
    format!("5b{s:022x}")
}
fn course_id(c: u64) -> String {
    format!("5c1{c:021x}")
}
fn student_id(i: u64) -> String {
    format!("5d{i:022x}")
}
fn teacher_id(j: u64) -> String {
    format!("5e{j:022x}")
}
fn teacher_v3_id(j: u64) -> String {
    format!("6e{j:022x}")
}
fn section_id(k: u64) -> String {
    format!("5f{k:022x}")
}
fn contact_id(p: u64) -> String {
    format!("60{p:022x}")
}
fn contact_v3_id(p: u64) -> String {
    format!("61{p:022x}")
}

fn name(first: &str, last: &str) -> mock::Name {
    mock::Name {
        first: first.to_string(),
        middle: String::new(),
        last: last.to_string(),
    }
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("objects only"),
    }
}

fn empty_district(district: &District) -> mock::District {
    let size = SIZES
        .iter()
        .find(|(_, s)| *s == district.spec.students)
        .map_or("custom", |(n, _)| n);
    mock::District {
        district: obj(json!({
            "id": DISTRICT_ID,
            "name": format!("Synthetic District ({size}, seed {})", district.spec.seed),
            "sis_type": "sftp", "state": "success", "nces_id": "3600000", "mdr_number": "",
            "last_sync": "2026-01-05T06:00:00.000Z",
        })),
        schools: Vec::new(),
        terms: Vec::new(),
        courses: Vec::new(),
        students: Vec::new(),
        teachers: Vec::new(),
        staff: Vec::new(),
        sections: Vec::new(),
        contacts: Vec::new(),
    }
}

fn schools(district: &District) -> Vec<Map<String, Value>> {
    (0..district.spec.schools)
        .map(|s| {
            obj(json!({
                "id": school_id(s), "name": district.school_name(s),
                "sis_id": (100 + s).to_string(), "school_number": format!("{:04}", 100 + s),
                "state_id": format!("ST-{:05}", s), "low_grade": "Kindergarten", "high_grade": "12",
            }))
        })
        .collect()
}

fn student(district: &District, i: u64) -> mock::Student {
    let s = district.student(i);
    let (y, m, d) = s.dob;
    mock::Student {
        id: student_id(i),
        sis_id: s.file_id(),
        student_number: format!("{}", 2_000_000 + i),
        state_id: format!("NY{:09}", i),
        name: name(s.first, &s.last),
        email: String::new(),
        dob: format!("{m}/{d}/{y}"),
        gender: if i % 2 == 0 { "F" } else { "M" }.into(),
        grade: if s.grade == 0 {
            "Kindergarten".into()
        } else {
            s.grade.to_string()
        },
        graduation_year: (2038 - s.grade).to_string(),
        race: String::new(),
        hispanic_ethnicity: String::new(),
        ell_status: "N".into(),
        school: school_id(s.school),
        schools: vec![school_id(s.school)],
        username: format!("s{}", 1_000_000 + i),
    }
}

fn teacher(district: &District, j: u64) -> mock::Teacher {
    let t = district.teacher(j);
    mock::Teacher {
        id: teacher_id(j),
        v3_id: teacher_v3_id(j),
        sis_id: t.file_id(),
        teacher_number: format!("{}", 70_000 + j),
        state_id: String::new(),
        name: name(t.first, t.last),
        email: t.email,
        title: "Teacher".into(),
        school: school_id(t.school),
        schools: vec![school_id(t.school)],
        username: format!("t{j}"),
    }
}

fn contact(district: &District, p: u64) -> mock::Contact {
    let parent = district.parent(p);
    let (s0, s1) = district.family_students(parent.family);
    mock::Contact {
        id: contact_id(p),
        v3_id: contact_v3_id(p),
        sis_id: parent.file_id(),
        name: format!("{} {}", parent.first, parent.last),
        email: parent.email.clone(),
        phone: String::new(),
        phone_type: String::new(),
        students: (s0..s1)
            .map(|s| mock::StudentRelationship {
                student: student_id(s),
                relationship: parent.relationship().into(),
                kind: "Parent/Guardian".into(),
            })
            .collect(),
    }
}

/// Sections `[k0, k1)`, with their students, and the teachers they name (the mock needs
/// them for the teachers' v3 ids).
fn sections(district: &District, k0: u64, k1: u64, out: &mut mock::District) {
    let spec = &district.spec;
    if k0 >= k1 {
        return;
    }
    let first_school = crate::generate::owner(spec.classes, spec.schools, k0);
    let last_school = crate::generate::owner(spec.classes, spec.schools, k1 - 1);
    let mut students: HashMap<u64, Vec<String>> = HashMap::new();
    for school in first_school..=last_school {
        let (i0, i1) = block(spec.students, spec.schools, school);
        for i in i0..i1 {
            for k in district.enrollments(i) {
                if (k0..k1).contains(&k) {
                    students.entry(k).or_default().push(student_id(i));
                }
            }
        }
    }
    let mut teachers = std::collections::BTreeSet::new();
    for k in k0..k1 {
        let c = district.class(k);
        teachers.extend(c.teachers.iter().copied());
        out.sections.push(mock::Section {
            id: section_id(k),
            school: school_id(c.school),
            sis_id: c.file_id(),
            name: c.name,
            section_number: format!("{}", 1 + k % 40),
            period: c.period.to_string(),
            grade: String::new(),
            subject: match c.subject {
                "Math" => "math",
                "English" => "english/language arts",
                "Science" => "science",
                "Social Studies" => "social studies",
                "Spanish" => "language",
                "Art" | "Music" => "arts and music",
                "Physical Education" => "PE and health",
                "Computer Science" => "technology and engineering",
                _ => "homeroom/advisory",
            }
            .into(),
            course: course_id(k % COURSES),
            term_id: TERM_ID.into(),
            teachers: c.teachers.iter().map(|&t| teacher_id(t)).collect(),
            students: students.remove(&k).unwrap_or_default(),
        });
    }
    out.teachers
        .extend(teachers.into_iter().map(|j| teacher(district, j)));
}

/// v3 users sort by id: students (`5d…`), then contacts (`61…`), then teachers (`6e…`).
fn users(district: &District, u0: u64, u1: u64, out: &mut mock::District) {
    let (students, parents) = (district.spec.students, district.parents());
    for u in u0..u1 {
        if u < students {
            out.students.push(student(district, u));
        } else if u < students + parents {
            out.contacts.push(contact(district, u - students));
        } else {
            out.teachers.push(teacher(district, u - students - parents));
        }
    }
}

const RESOURCES: [&str; 6] = [
    "districts",
    "schools",
    "terms",
    "courses",
    "sections",
    "users",
];

fn resource_len(district: &District, resource: &str) -> u64 {
    let spec = &district.spec;
    match resource {
        "districts" | "terms" => 1,
        "schools" => spec.schools,
        "courses" => COURSES,
        "sections" => spec.classes,
        "users" => spec.students + district.parents() + spec.teachers,
        _ => 0,
    }
}

/// A district holding only objects `[start, end)` of `resource`, in id order.
fn slice(district: &District, resource: &str, start: u64, end: u64) -> mock::District {
    let mut out = empty_district(district);
    match resource {
        "schools" => {
            out.schools = schools(district)[start as usize..end as usize].to_vec();
        }
        "terms" => {
            out.terms = vec![obj(json!({
                "id": TERM_ID, "name": "2025-26", "start_date": "2025-09-04", "end_date": "2026-06-26",
            }))]
        }
        "courses" => {
            out.courses = (start..end)
                .map(|c| {
                    obj(json!({"id": course_id(c), "name": format!("Course {c}"), "number": format!("CRS-{c:02}")}))
                })
                .collect()
        }
        "sections" => sections(district, start, end, &mut out),
        "users" => users(district, start, end, &mut out),
        _ => {}
    }
    out
}

/// The whole district at once, for [`MockServer`](mock::MockServer) (small sizes only).
pub fn whole(district: &District) -> mock::District {
    let mut out = empty_district(district);
    for resource in RESOURCES {
        let part = slice(district, resource, 0, resource_len(district, resource));
        out.schools.extend(part.schools);
        out.terms.extend(part.terms);
        out.courses.extend(part.courses);
        out.sections.extend(part.sections);
        out.students.extend(part.students);
        out.contacts.extend(part.contacts);
        if resource == "users" {
            out.teachers = part.teachers;
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(serde::Deserialize)]
struct Link {
    rel: String,
    uri: String,
}

/// Renders every page the plugin asks for into `dir` (with `index.json`: uri → file).
/// Returns the number of pages.
pub fn capture(district: &District, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut index: HashMap<String, String> = HashMap::new();
    for resource in RESOURCES {
        let total = resource_len(district, resource);
        let mut uri = format!("/{VERSION}/{resource}?limit={PAGE_SIZE}");
        let mut start = 0u64;
        loop {
            let end = (start + PAGE_SIZE).min(total);
            let state = mock::ServerState::new(slice(district, resource, start, end), TOKEN);
            let request = Request::builder()
                .uri(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())?;
            let bytes = runtime.block_on(async {
                let response = mock::router(state).oneshot(request).await?;
                if response.status() != StatusCode::OK {
                    bail!("the mock answered {uri} with {}", response.status());
                }
                Ok(axum::body::to_bytes(response.into_body(), usize::MAX).await?)
            })?;
            let page: Page = serde_json::from_slice(&bytes)
                .with_context(|| format!("the mock's page {uri} is not an envelope"))?;
            let file = format!("{:05}.json", index.len());
            std::fs::write(dir.join(&file), &bytes)?;
            index.insert(uri.clone(), file);
            if page.data.len() as u64 != end - start {
                bail!(
                    "{uri}: expected {} objects, the mock served {}",
                    end - start,
                    page.data.len()
                );
            }
            let next = page.links.into_iter().find(|l| l.rel == "next");
            match next {
                Some(next) if !page.data.is_empty() => {
                    uri = next.uri;
                    start = end;
                }
                _ => break,
            }
        }
    }
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(index.len())
}

/// One request to the mock's router over `state`.
fn render(
    runtime: &tokio::runtime::Runtime,
    state: Arc<mock::ServerState>,
    uri: &str,
) -> Result<Vec<u8>> {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())?;
    runtime.block_on(async {
        let response = mock::router(state).oneshot(request).await?;
        if response.status() != StatusCode::OK {
            bail!("the mock answered {uri} with {}", response.status());
        }
        Ok(axum::body::to_bytes(response.into_body(), usize::MAX)
            .await?
            .to_vec())
    })
}

/// The objects of `after` that differ from `before` (same ids, revision 1 changes no
/// ids): a district of the old ones and one of the new ones, with the teachers their
/// sections name (the mock renders v3 teacher ids from them).
fn changed_objects(before: &District, after: &District) -> (mock::District, mock::District) {
    fn differs<T: serde::Serialize>(a: &T, b: &T) -> bool {
        serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
    }
    let (mut old, mut new) = (empty_district(before), empty_district(after));
    let mut teachers: BTreeMap<String, (mock::Teacher, mock::Teacher)> = BTreeMap::new();
    for resource in ["users", "sections"] {
        let total = resource_len(before, resource);
        for start in (0..total).step_by(PAGE_SIZE as usize) {
            let end = (start + PAGE_SIZE).min(total);
            let (a, b) = (
                slice(before, resource, start, end),
                slice(after, resource, start, end),
            );
            for (x, y) in a.students.iter().zip(&b.students) {
                if differs(x, y) {
                    old.students.push(x.clone());
                    new.students.push(y.clone());
                }
            }
            for (x, y) in a.contacts.iter().zip(&b.contacts) {
                if differs(x, y) {
                    old.contacts.push(x.clone());
                    new.contacts.push(y.clone());
                }
            }
            let named: BTreeMap<&str, (&mock::Teacher, &mock::Teacher)> = a
                .teachers
                .iter()
                .zip(&b.teachers)
                .map(|(x, y)| (x.id.as_str(), (x, y)))
                .collect();
            for (x, y) in named.values() {
                if resource == "users" && differs(x, y) {
                    teachers.insert(x.id.clone(), ((*x).clone(), (*y).clone()));
                }
            }
            for (x, y) in a.sections.iter().zip(&b.sections) {
                if differs(x, y) {
                    old.sections.push(x.clone());
                    new.sections.push(y.clone());
                    for id in x.teachers.iter().chain(&y.teachers) {
                        if let Some((x, y)) = named.get(id.as_str()) {
                            teachers
                                .entry(id.clone())
                                .or_insert_with(|| ((*x).clone(), (*y).clone()));
                        }
                    }
                }
            }
        }
    }
    for (x, y) in teachers.into_values() {
        old.teachers.push(x);
        new.teachers.push(y);
    }
    (old, new)
}

/// Renders the Events API pages of a sync from `before` to `after` into `dir` (with
/// `index.json`, as [`capture`]). A complete import asks for the newest event and keeps
/// its id; the sync after it asks for the events after that id. Returns the number of
/// events.
pub fn capture_events(before: &District, after: &District, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut index: HashMap<String, String> = HashMap::new();
    let mut store = |uri: &str, bytes: &[u8]| -> Result<()> {
        let file = format!("events-{:05}.json", index.len());
        std::fs::write(dir.join(&file), bytes)?;
        index.insert(uri.to_string(), file);
        Ok(())
    };

    // The feed a complete import finds: one event, from the district's last sync.
    let baseline = mock::ServerState::new(empty_district(before), TOKEN);
    let mut touched = empty_district(before);
    touched
        .district
        .insert("last_sync".into(), json!("2026-01-06T06:00:00.000Z"));
    baseline.change_district(touched);
    let newest_uri = format!("/{VERSION}/events?ending_before=last&limit=1");
    let newest = render(&runtime, baseline, &newest_uri)?;
    let page: serde_json::Value = serde_json::from_slice(&newest)?;
    let Some(checkpoint) = page["data"][0]["data"]["id"].as_str() else {
        bail!("the mock's newest event has no id: {page}");
    };
    store(&newest_uri, &newest)?;

    // The events after it: every object revision 1 changes.
    let (old, new) = changed_objects(before, after);
    let state = mock::ServerState::new(old, TOKEN);
    state.change_district(new);
    // The mock's feed starts at these events; the sync asks for them after the checkpoint.
    let mut uri = format!("/{VERSION}/events?limit={PAGE_SIZE}");
    let mut key = format!("/{VERSION}/events?starting_after={checkpoint}&limit={PAGE_SIZE}");
    let mut events = 0;
    loop {
        let bytes = render(&runtime, state.clone(), &uri)?;
        let page: Page = serde_json::from_slice(&bytes)
            .with_context(|| format!("the mock's page {uri} is not an envelope"))?;
        store(&key, &bytes)?;
        events += page.data.len();
        match page.links.into_iter().find(|l| l.rel == "next") {
            Some(next) if !page.data.is_empty() => {
                uri = next.uri.clone();
                key = next.uri;
            }
            _ => break,
        }
    }
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(events)
}

/// Serves captured pages on 127.0.0.1 until dropped.
pub struct Replay {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Pages {
    /// URI -> the page's file.
    index: HashMap<String, PathBuf>,
}

async fn serve_page(State(pages): State<Arc<Pages>>, request: Request) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if presented != format!("Bearer {TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"message\":\"invalid bearer token\"}",
        )
            .into_response();
    }
    let uri = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let Some(file) = pages.index.get(&uri) else {
        return (StatusCode::NOT_FOUND, "{\"message\":\"not captured\"}").into_response();
    };
    // Blocking read: pages come from the page cache, and this runtime serves nothing else.
    match std::fs::read(file) {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl Replay {
    /// Serve the pages captured into each of `dirs`.
    pub fn start(dirs: &[&Path]) -> Result<Replay> {
        let mut index = HashMap::new();
        for dir in dirs {
            let files: HashMap<String, String> =
                serde_json::from_slice(&std::fs::read(dir.join("index.json"))?)?;
            index.extend(files.into_iter().map(|(uri, file)| (uri, dir.join(file))));
        }
        let pages = Arc::new(Pages { index });
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("clever-replay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = axum::Router::new().fallback(serve_page).with_state(pages);
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(Replay {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
