//! Shared test harness: a mock Clever on loopback, the plugin linked in-process through
//! the SDK, and a host that records every log line so tests can look for the token.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use roster_clever_mock::{District, MockServer};
use roster_core::loader::{LinkedPlugin, PluginHandle};
use roster_core::record::{Class, Kind, Person, Record, School, Term};
use roster_core::sdk::{HostHooks, Level};
use roster_core::PluginError;
use roster_plugin_clever::Clever;

#[derive(Default)]
pub struct TestHost {
    pub logs: Mutex<Vec<(Level, String)>>,
    pub progress: Mutex<Vec<(String, u64)>>,
    pub cancelled: AtomicBool,
}

impl HostHooks for TestHost {
    fn log(&self, level: Level, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
    fn progress(&self, stage: &str, done: u64, _total: Option<u64>) {
        self.progress
            .lock()
            .unwrap()
            .push((stage.to_string(), done));
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl TestHost {
    pub fn lines(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }
}

/// A mock district plus a token in an environment variable of this test's own.
pub struct Setup {
    pub server: MockServer,
    pub token: String,
    pub token_env: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Setup {
    pub fn new() -> Setup {
        Setup::with_district(District::demo())
    }

    pub fn with_district(district: District) -> Setup {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let token = format!("tok-{n}-9f8e7d6c5b4a39281706f5e4d3c2b1a0");
        let token_env = format!("ROSTER_CLEVER_TEST_TOKEN_{}_{n}", std::process::id());
        // Each test has its own variable, so tests running in parallel never race on one.
        std::env::set_var(&token_env, &token);
        let server = MockServer::start(district, token.clone()).expect("mock server starts");
        Setup {
            server,
            token,
            token_env,
        }
    }

    /// A source table for `version` against the mock; `extra` lines are appended. Retry
    /// waits are capped at 20 ms so fault tests stay fast.
    pub fn config(&self, version: &str, extra: &str) -> String {
        let mut config = format!(
            "api_version = \"{version}\"\nbase_url = \"{}\"\ntoken_env = \"{}\"\n{extra}\n",
            self.server.base_url(),
            self.token_env
        );
        for default in ["max_retry_wait_ms = 20", "timeout_seconds = 5"] {
            let key = default.split(' ').next().unwrap();
            if !extra.contains(key) {
                config.push_str(default);
                config.push('\n');
            }
        }
        config
    }

    pub fn run(&self, version: &str, extra: &str) -> Outcome {
        run(&self.config(version, extra))
    }

    /// Neither the outcome nor any log line may contain the token.
    pub fn assert_no_token(&self, outcome: &Outcome) {
        let mut texts = outcome.host.lines();
        if let Err(error) = &outcome.result {
            texts.push(format!("{error} {error:?}"));
        }
        for text in texts {
            assert!(!text.contains(&self.token), "token leaked: {text}");
        }
    }

    pub fn requests_to(&self, path: &str) -> Vec<roster_clever_mock::RequestRecord> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.uri.contains(path))
            .collect()
    }
}

pub struct Outcome {
    pub result: Result<Vec<Record>, PluginError>,
    /// Sizes of the batches handed out, in order.
    pub batches: Vec<usize>,
    pub host: Arc<TestHost>,
}

impl Outcome {
    pub fn records(&self) -> &[Record] {
        match &self.result {
            Ok(records) => records,
            Err(error) => panic!("import failed: {error} (hint: {:?})", error.hint),
        }
    }

    pub fn error(&self) -> &PluginError {
        match &self.result {
            Ok(records) => panic!("import succeeded with {} records", records.len()),
            Err(error) => error,
        }
    }
}

pub fn run(config: &str) -> Outcome {
    run_with(config, Arc::new(TestHost::default()))
}

/// The SDK replaces the process's panic hook with one that only records where a plugin
/// panicked (so the default hook does not print behind the host's back). In a test
/// process that also silences failed assertions; put a printing hook back once the SDK's
/// is in (its installation is a `Once` that finished inside `open`).
fn restore_panic_output() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

pub fn run_with(config: &str, host: Arc<TestHost>) -> Outcome {
    let plugin = LinkedPlugin::<Clever>::default();
    let mut batches = Vec::new();
    let opened = plugin.open(config, Path::new("."), host.clone());
    restore_panic_output();
    let result = opened.and_then(|mut source| {
        let mut records = Vec::new();
        while let Some(batch) = source.next_batch()? {
            batches.push(batch.len());
            records.extend(batch);
        }
        Ok(records)
    });
    Outcome {
        result,
        batches,
        host,
    }
}

/// A roster in a form that can be compared across API versions: keyed by source id, with
/// the version-specific identifiers (`clever_id`, `legacy_id`) left out of people.
#[derive(Debug, PartialEq)]
pub struct Normal {
    pub schools: BTreeMap<String, School>,
    pub terms: BTreeMap<String, Term>,
    pub people: BTreeMap<String, Person>,
    pub classes: BTreeMap<String, Class>,
    pub class_teachers: BTreeSet<(String, String, bool)>,
    pub enrollments: BTreeSet<(String, String)>,
    pub relationships: BTreeSet<(String, String, Option<String>, Option<String>)>,
    pub snapshot: Vec<i32>,
}

pub fn normalise(records: &[Record]) -> Normal {
    let mut n = Normal {
        schools: BTreeMap::new(),
        terms: BTreeMap::new(),
        people: BTreeMap::new(),
        classes: BTreeMap::new(),
        class_teachers: BTreeSet::new(),
        enrollments: BTreeSet::new(),
        relationships: BTreeSet::new(),
        snapshot: Vec::new(),
    };
    for record in records {
        match record.kind.clone().expect("every record has a kind") {
            Kind::School(s) => assert!(n.schools.insert(s.source_id.clone(), s).is_none()),
            Kind::Term(t) => assert!(n.terms.insert(t.source_id.clone(), t).is_none()),
            Kind::Person(mut p) => {
                p.identifiers
                    .retain(|i| i.kind != "clever_id" && i.kind != "legacy_id");
                p.identifiers.sort();
                let id = p.source_id.clone();
                assert!(
                    n.people.insert(id.clone(), p).is_none(),
                    "person {id} twice"
                );
            }
            Kind::Class(c) => assert!(n.classes.insert(c.source_id.clone(), c).is_none()),
            Kind::ClassTeacher(l) => {
                assert!(n
                    .class_teachers
                    .insert((l.class_id, l.teacher_id, l.primary)))
            }
            Kind::Enrollment(l) => assert!(n.enrollments.insert((l.class_id, l.student_id))),
            Kind::Relationship(r) => assert!(n.relationships.insert((
                r.parent_id,
                r.student_id,
                r.relationship,
                r.contact_type
            ))),
            Kind::Snapshot(s) => {
                let mut complete = s.complete;
                complete.sort();
                n.snapshot = complete;
            }
            Kind::Checkpoint(_) => {}
            other @ (Kind::Removal(_) | Kind::LinksReplaced(_)) => {
                panic!("a complete run sent {other:?}")
            }
        }
    }
    n
}

pub fn people(records: &[Record]) -> impl Iterator<Item = &Person> {
    records.iter().filter_map(|r| match &r.kind {
        Some(Kind::Person(p)) => Some(p),
        _ => None,
    })
}

pub fn identifier<'a>(person: &'a Person, kind: &str) -> Option<&'a str> {
    person
        .identifiers
        .iter()
        .find(|i| i.kind == kind)
        .map(|i| i.value.as_str())
}
