//! Helpers shared by the tests: a host that records what the plugin tells it, and
//! readers that turn a folder into records.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use roster_core::record::{
    Class, ClassTeacher, Enrollment, Entity, Kind, Person, Record, Relationship, Role, Snapshot,
};
use roster_core::sdk::{Host, HostHooks, Level};
use roster_core::PluginError;
use roster_plugin_csv::{pickatime, Config};

#[derive(Default)]
pub struct Recorder {
    pub logs: Mutex<Vec<(Level, String)>>,
    pub progress: Mutex<Vec<(String, u64)>>,
    pub cancelled: AtomicBool,
}

impl HostHooks for Recorder {
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
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Recorder {
    pub fn at(&self, level: Level) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

pub fn host() -> (Arc<Recorder>, Host) {
    let recorder = Arc::new(Recorder::default());
    let host = Host::new(recorder.clone());
    (recorder, host)
}

/// The workspace root, which the fixtures' paths are relative to.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn config(text: &str) -> Config {
    Config::parse(text).unwrap()
}

/// Reads `path` (relative to `base`) with extra config lines.
pub fn read(
    base: &Path,
    path: &str,
    extra: &str,
) -> (Arc<Recorder>, Result<Vec<Record>, PluginError>) {
    let (recorder, host) = host();
    let config = config(&format!("format = \"pickatime\"\npath = {path:?}\n{extra}"));
    let result = pickatime::read_all(&config, base, host);
    (recorder, result)
}

pub fn read_ok(base: &Path, path: &str, extra: &str) -> (Arc<Recorder>, Records) {
    let (recorder, result) = read(base, path, extra);
    (recorder, Records(result.unwrap_or_else(|e| panic!("{e}"))))
}

pub fn read_err(base: &Path, path: &str, extra: &str) -> PluginError {
    match read(base, path, extra).1 {
        Ok(records) => panic!("expected an error, got {} records", records.len()),
        Err(error) => error,
    }
}

pub struct Records(pub Vec<Record>);

impl Records {
    pub fn kinds(&self) -> impl Iterator<Item = &Kind> {
        self.0.iter().filter_map(|r| r.kind.as_ref())
    }
    pub fn people(&self, role: Role) -> Vec<&Person> {
        self.kinds()
            .filter_map(|k| match k {
                Kind::Person(p) if p.role == role as i32 => Some(p),
                _ => None,
            })
            .collect()
    }
    pub fn person(&self, role: Role, id: &str) -> &Person {
        self.people(role)
            .into_iter()
            .find(|p| p.source_id == id)
            .unwrap_or_else(|| panic!("no {role:?} {id}"))
    }
    pub fn classes(&self) -> Vec<&Class> {
        self.kinds()
            .filter_map(|k| match k {
                Kind::Class(c) => Some(c),
                _ => None,
            })
            .collect()
    }
    pub fn class_teachers(&self) -> Vec<&ClassTeacher> {
        self.kinds()
            .filter_map(|k| match k {
                Kind::ClassTeacher(c) => Some(c),
                _ => None,
            })
            .collect()
    }
    pub fn enrollments(&self) -> Vec<&Enrollment> {
        self.kinds()
            .filter_map(|k| match k {
                Kind::Enrollment(e) => Some(e),
                _ => None,
            })
            .collect()
    }
    pub fn relationships(&self) -> Vec<&Relationship> {
        self.kinds()
            .filter_map(|k| match k {
                Kind::Relationship(r) => Some(r),
                _ => None,
            })
            .collect()
    }
    pub fn snapshot(&self) -> Vec<Entity> {
        let snapshots: Vec<&Snapshot> = self
            .kinds()
            .filter_map(|k| match k {
                Kind::Snapshot(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(snapshots.len(), 1, "one snapshot");
        assert!(
            matches!(self.0.last().unwrap().kind, Some(Kind::Snapshot(_))),
            "snapshot last"
        );
        let mut entities: Vec<Entity> = snapshots[0]
            .complete
            .iter()
            .map(|&e| Entity::try_from(e).unwrap())
            .collect();
        entities.sort();
        entities
    }
}

/// A minimal valid file set; `changes` replace or add files (an empty content removes one).
pub fn folder(changes: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(&str, &[u8])> = vec![
        (
            "Student.txt",
            b"StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace\t12/10/2015\nS2\tAlan\tTuring\t06/23/2014\n",
        ),
        (
            "Teacher.txt",
            b"TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tMary\tJackson\tmary@school.example.org\t12\nT2\tKatherine\tJohnson\tkj@school.example.org\t14\n",
        ),
        ("Class.txt", b"ClassID\tTeacherID\tClassName\nC1\tT1\tMath\nC2\tT2\tScience\n"),
        ("Enrollment.txt", b"StudentID\tClassID\nS1\tC1\nS2\tC2\n"),
    ];
    for (name, content) in changes {
        files.retain(|(n, _)| n != name);
        files.push((name, content));
    }
    for (name, content) in files {
        if !content.is_empty() {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
    }
    dir
}

/// Reads a [`folder`] (its path relative to its parent, so locations are short).
pub fn read_folder(
    dir: &tempfile::TempDir,
    extra: &str,
) -> (Arc<Recorder>, Result<Vec<Record>, PluginError>) {
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    read(base, name, extra)
}

pub fn folder_ok(changes: &[(&str, &[u8])], extra: &str) -> (Arc<Recorder>, Records) {
    let dir = folder(changes);
    let (recorder, result) = read_folder(&dir, extra);
    (recorder, Records(result.unwrap_or_else(|e| panic!("{e}"))))
}

/// The error, with the temporary folder's name taken off its location.
pub fn folder_err(changes: &[(&str, &[u8])], extra: &str) -> (Option<String>, String) {
    let dir = folder(changes);
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let error = read_folder(&dir, extra).1.expect_err("expected an error");
    let location = error.location.map(|l| {
        l.strip_prefix(&format!("{name}/"))
            .map(str::to_string)
            .unwrap_or(l)
    });
    (location, error.message)
}

fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
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
    match record.kind.as_ref().expect("known kind") {
        Kind::School(s) => format!(
            "school {} | {} | sis {} | number {} | state {}{}",
            s.source_id,
            s.name,
            opt(&s.sis_id),
            opt(&s.school_number),
            opt(&s.state_id),
            map(&s.attributes)
        ),
        Kind::Term(t) => format!(
            "term {} | {} | {} .. {} | school {}{}",
            t.source_id,
            t.name,
            opt(&t.start_date),
            opt(&t.end_date),
            opt(&t.school_id),
            map(&t.attributes)
        ),
        Kind::Class(c) => format!(
            "class {} | {} | school {} | term {} | subject {} | course {} | period {} | sis {}{}",
            c.source_id,
            c.name,
            opt(&c.school_id),
            opt(&c.term_id),
            opt(&c.subject),
            opt(&c.course),
            opt(&c.period),
            opt(&c.sis_id),
            map(&c.attributes)
        ),
        Kind::Person(p) => {
            let ids: Vec<String> = p
                .identifiers
                .iter()
                .map(|i| format!("{}={}", i.kind, i.value))
                .collect();
            let role = match Role::try_from(p.role) {
                Ok(Role::Student) => "student",
                Ok(Role::Teacher) => "teacher",
                Ok(Role::Parent) => "parent",
                Ok(Role::Staff) => "staff",
                _ => "?",
            };
            format!(
                "{role}{} {} | {} | {} | middle {} | email {} | phone {} | born {} | grade {} | schools [{}] | ids [{}]{}",
                if p.removed { " REMOVED" } else { "" },
                p.source_id,
                p.first_name,
                p.last_name,
                opt(&p.middle_name),
                opt(&p.email),
                opt(&p.phone),
                opt(&p.birth_date),
                opt(&p.grade),
                p.school_ids.join(", "),
                ids.join(", "),
                map(&p.attributes)
            )
        }
        Kind::Enrollment(e) => format!("enrollment {} in {}", e.student_id, e.class_id),
        Kind::ClassTeacher(l) => format!(
            "teacher {} of {}{}",
            l.teacher_id,
            l.class_id,
            if l.primary { " (primary)" } else { "" }
        ),
        Kind::Relationship(r) => format!(
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
            format!("snapshot {entities:?}")
        }
        // The file plugins never send these; render them so a test that meets one says so.
        other => format!("unexpected {other:?}"),
    }
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

/// Reads a Clever SFTP folder (relative to `base`) as if the year were 2026.
pub fn read_sftp(base: &Path, path: &str) -> (Arc<Recorder>, Result<Vec<Record>, PluginError>) {
    let (recorder, host) = host();
    let config = config(&format!("format = \"clever-sftp\"\npath = {path:?}\n"));
    let result = roster_plugin_csv::CleverSftpSource::open(&config, base, host)
        .and_then(|source| source.with_current_year(2026).collect());
    (recorder, result)
}
