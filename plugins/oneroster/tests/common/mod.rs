//! Helpers shared by the tests: a host that records what the plugin tells it, reading a
//! package, and a one-line rendering of every record to compare against expectations.

#![allow(dead_code)]

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use roster_core::record::{Entity, Kind, Record, Role};
use roster_core::sdk::{Host, HostHooks, Level};
use roster_core::PluginError;
use roster_plugin_oneroster::{read_all, Config};

#[derive(Default)]
pub struct Recorder {
    pub logs: Mutex<Vec<(Level, String)>>,
    pub cancelled: AtomicBool,
}

impl HostHooks for Recorder {
    fn log(&self, level: Level, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
    fn progress(&self, _stage: &str, _done: u64, _total: Option<u64>) {}
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Recorder {
    pub fn warnings(&self) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter(|(l, _)| *l == Level::Warn)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// The workspace root, which the fixtures' paths are relative to.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(base: &Path, path: &str) -> (Arc<Recorder>, Result<Vec<Record>, PluginError>) {
    let recorder = Arc::new(Recorder::default());
    let host = Host::new(recorder.clone());
    let config = Config::parse(&format!("path = {path:?}\n")).unwrap();
    let result = read_all(&config, base, host);
    (recorder, result)
}

pub fn read_ok(base: &Path, path: &str) -> (Arc<Recorder>, Vec<Record>) {
    let (recorder, result) = read(base, path);
    (recorder, result.unwrap_or_else(|e| panic!("{e}")))
}

fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

fn role(value: i32) -> &'static str {
    match Role::try_from(value) {
        Ok(Role::Student) => "student",
        Ok(Role::Teacher) => "teacher",
        Ok(Role::Parent) => "parent",
        Ok(Role::Staff) => "staff",
        _ => "?",
    }
}

fn map(attributes: &std::collections::BTreeMap<String, String>) -> String {
    if attributes.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" {{{}}}", pairs.join(", "))
}

/// One line per record with every field, `-` for a field not set.
pub fn render(record: &Record) -> String {
    let mut line = String::new();
    match record.kind.as_ref().expect("known kind") {
        Kind::School(s) => write!(
            line,
            "school {} | {} | sis {} | number {} | state {}{}",
            s.source_id,
            s.name,
            opt(&s.sis_id),
            opt(&s.school_number),
            opt(&s.state_id),
            map(&s.attributes)
        ),
        Kind::Term(t) => write!(
            line,
            "term {} | {} | {} .. {} | school {}{}",
            t.source_id,
            t.name,
            opt(&t.start_date),
            opt(&t.end_date),
            opt(&t.school_id),
            map(&t.attributes)
        ),
        Kind::Class(c) => write!(
            line,
            "class {} | {} | school {} | term {} | subject {} | course {} | period {} | sis {} | group {} | ptan {}{}",
            c.source_id,
            c.name,
            opt(&c.school_id),
            opt(&c.term_id),
            opt(&c.subject),
            opt(&c.course),
            opt(&c.period),
            opt(&c.sis_id),
            opt(&c.group_name),
            c.appointments_per_parent.map_or("-".to_string(), |n| n.to_string()),
            map(&c.attributes)
        ),
        Kind::Person(p) => {
            let ids: Vec<String> = p
                .identifiers
                .iter()
                .map(|i| format!("{}={}", i.kind, i.value))
                .collect();
            write!(
                line,
                "{}{} {} | {} | {} | middle {} | email {} | phone {} | born {} | grade {} | security {} | room {} | schools [{}] | ids [{}]{}",
                role(p.role),
                if p.removed { " REMOVED" } else { "" },
                p.source_id,
                p.first_name,
                p.last_name,
                opt(&p.middle_name),
                opt(&p.email),
                opt(&p.phone),
                opt(&p.birth_date),
                opt(&p.grade),
                opt(&p.security_value),
                opt(&p.room),
                p.school_ids.join(", "),
                ids.join(", "),
                map(&p.attributes)
            )
        }
        Kind::Enrollment(e) => write!(line, "enrollment {} in {}", e.student_id, e.class_id),
        Kind::ClassTeacher(l) => write!(
            line,
            "teacher {} of {}{}",
            l.teacher_id,
            l.class_id,
            if l.primary { " (primary)" } else { "" }
        ),
        Kind::Relationship(r) => write!(
            line,
            "relationship {} -> {} | {} | {}",
            r.parent_id,
            r.student_id,
            opt(&r.relationship),
            opt(&r.contact_type)
        ),
        Kind::Snapshot(s) => {
            let mut entities: Vec<Entity> = s
                .complete
                .iter()
                .map(|&e| Entity::try_from(e).unwrap())
                .collect();
            entities.sort();
            write!(line, "snapshot {entities:?}")
        }
        // A full run never sends these; render them so a test that meets one says so.
        other => write!(line, "unexpected {other:?}"),
    }
    .unwrap();
    line
}

/// Compares rendered records with the expected lines, reporting the first difference.
#[track_caller]
pub fn assert_lines(records: &[Record], expected: &str) {
    let actual: Vec<String> = records.iter().map(render).collect();
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(a, e, "record {} differs", i + 1);
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "record count differs; all records:\n{}",
        actual.join("\n")
    );
}
