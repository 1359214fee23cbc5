//! The bad-input corpus: every case under `fixtures/bad/pickatime/` either imports with
//! the counts its `expected.txt` gives (`ok students=3 …`) or fails with an error that
//! starts with `<path>/<file>:<line>[:<column>]: ` as given there — never a panic. The
//! plugin is driven in-process through the SDK exactly as the host drives it. The
//! enormous-field cases are generated here rather than committed.
//!
//! The table of cases and outcomes is in docs/reliability.md ("Bad input files").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use roster_core::loader::{LinkedPlugin, PluginHandle};
use roster_core::record::{Kind, Person, Record, Role};
use roster_core::sdk::{HostHooks, Level};
use roster_core::{ErrorKind, PluginError};
use roster_plugin_csv::CsvPlugin;

#[derive(Default)]
struct Logs(Mutex<Vec<(Level, String)>>);

impl HostHooks for Logs {
    fn log(&self, level: Level, message: &str) {
        self.0.lock().unwrap().push((level, message.to_string()));
    }
    fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}

impl Logs {
    fn warnings(&self) -> Vec<String> {
        let logs = self.0.lock().unwrap();
        logs.iter()
            .filter(|(l, _)| *l == Level::Warn)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// The SDK installs a panic hook that only records where a plugin panicked; put a
/// printing one back so that a failing assertion in this test still says why.
fn restore_panic_output() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Imports `path` (relative to `base`) through the SDK, as the host would.
fn import(base: &Path, path: &str) -> (Result<Vec<Record>, PluginError>, Arc<Logs>) {
    let logs = Arc::new(Logs::default());
    let plugin = LinkedPlugin::<CsvPlugin>::default();
    let config = format!("format = \"pickatime\"\npath = {path:?}\n");
    let opened = plugin.open(&config, base, logs.clone());
    restore_panic_output();
    let result = opened.and_then(|mut source| {
        let mut records = Vec::new();
        while let Some(batch) = source.next_batch()? {
            records.extend(batch);
        }
        Ok(records)
    });
    (result, logs)
}

/// The counts `expected.txt` speaks of.
fn counts(records: &[Record]) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> = [
        "students",
        "teachers",
        "parents",
        "classes",
        "enrollments",
        "relationships",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    for record in records {
        let key = match &record.kind {
            Some(Kind::Person(p)) if p.role == Role::Student as i32 => "students",
            Some(Kind::Person(p)) if p.role == Role::Teacher as i32 => "teachers",
            Some(Kind::Person(p)) if p.role == Role::Parent as i32 => "parents",
            Some(Kind::Class(_)) => "classes",
            Some(Kind::Enrollment(_)) => "enrollments",
            Some(Kind::Relationship(_)) => "relationships",
            _ => continue,
        };
        *counts.get_mut(key).unwrap() += 1;
    }
    counts
}

fn person<'a>(records: &'a [Record], role: Role, id: &str) -> Option<&'a Person> {
    records.iter().find_map(|r| match &r.kind {
        Some(Kind::Person(p)) if p.role == role as i32 && p.source_id == id => Some(p),
        _ => None,
    })
}

/// What a case must come to, read from its `expected.txt`.
#[derive(Debug)]
enum Expected {
    Ok(BTreeMap<String, usize>),
    Error(String),
}

fn expected(case: &Path) -> Expected {
    let text = std::fs::read_to_string(case.join("expected.txt")).unwrap();
    let text = text.trim();
    match text.strip_prefix("ok") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => Expected::Ok(
            rest.split_whitespace()
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("key=value");
                    (key.to_string(), value.parse().expect("a count"))
                })
                .collect(),
        ),
        _ => Expected::Error(text.to_string()),
    }
}

/// Checks one case; the problems found, empty when it behaves.
fn check(
    case: &str,
    records: &Result<Vec<Record>, PluginError>,
    expected: &Expected,
    logs: &Logs,
) -> Vec<String> {
    let mut problems = Vec::new();
    let path = format!("fixtures/bad/pickatime/{case}");
    match (expected, records) {
        (Expected::Ok(wanted), Ok(records)) => {
            let got = counts(records);
            for (key, count) in &got {
                let want = wanted.get(*key).copied().unwrap_or(0);
                if *count != want {
                    problems.push(format!("{key}={count}, expected {want}"));
                }
            }
            for key in wanted.keys() {
                if !got.contains_key(key.as_str()) {
                    problems.push(format!("unknown count `{key}` in expected.txt"));
                }
            }
            if !matches!(
                records.last().and_then(|r| r.kind.as_ref()),
                Some(Kind::Snapshot(_))
            ) {
                problems.push("no snapshot at the end".into());
            }
            problems.extend(details(case, records, logs));
        }
        (Expected::Error(at), Err(error)) => {
            let prefix = format!("{path}/{at}: ");
            if !error.to_string().starts_with(&prefix) {
                problems.push(format!("error `{error}` does not start with `{prefix}`"));
            }
            if error.kind != ErrorKind::Input {
                problems.push(format!("kind {:?}, expected Input", error.kind));
            }
        }
        (Expected::Ok(_), Err(error)) => problems.push(format!("failed: {error}")),
        (Expected::Error(at), Ok(_)) => {
            problems.push(format!("imported, expected an error at {at}"))
        }
    }
    problems
}

/// Case-specific checks of what an import that succeeds must contain: text decoded right
/// whatever the encoding, quoted values intact, dates and grades as documented.
fn details(case: &str, records: &[Record], logs: &Logs) -> Vec<String> {
    let mut problems = Vec::new();
    let mut want = |what: &str, got: Option<String>, expected: Option<&str>| {
        if got.as_deref() != expected {
            problems.push(format!("{what}: {got:?}, expected {expected:?}"));
        }
    };
    let student = |id: &str| person(records, Role::Student, id);
    // Every ok case has the same first two students, whatever the encoding.
    if !case.starts_with("header-only") {
        want(
            "S1's name",
            student("S1").map(|p| format!("{} {}", p.first_name, p.last_name)),
            Some("Zoë Lovelace"),
        );
        want(
            "S2's name",
            student("S2").map(|p| format!("{} {}", p.first_name, p.last_name)),
            Some("José Núñez"),
        );
    }
    let latin1_warned = logs
        .warnings()
        .iter()
        .any(|w| w.contains("not valid UTF-8"));
    want(
        "Latin-1 warning",
        Some(latin1_warned.to_string()),
        Some(if case == "latin1" { "true" } else { "false" }),
    );
    let class_name = |id: &str| {
        records.iter().find_map(|r| match &r.kind {
            Some(Kind::Class(c)) if c.source_id == id => Some(c.name.clone()),
            _ => None,
        })
    };
    match case {
        "quoted-newline" => want(
            "S1's Notes",
            student("S1").and_then(|p| p.attributes.get("Notes").cloned()),
            Some("allergic to peanuts\nsee nurse\nbus 12"),
        ),
        "semicolon-excel" => {
            want("C1's name", class_name("C1"), Some("Math; advanced"));
            want(
                "T2's last name",
                person(records, Role::Teacher, "T2").map(|p| p.last_name.clone()),
                Some("Johnson \"Kat\""),
            );
        }
        "comma-quoted" => want(
            "S3's last name",
            student("S3").map(|p| p.last_name.clone()),
            Some("Hopper, Jr."),
        ),
        "dates-mixed" => {
            for (id, date) in [
                ("S1", Some("2015-12-10")), // SecurityValue, when DOB is empty
                ("S2", Some("2014-06-23")), // DOB wins over a PIN in SecurityValue
                ("S3", Some("2014-12-09")), // MM-DD-YYYY
                ("S4", Some("2014-06-03")), // M/D/YYYY
                ("S5", None),               // 02/30: no such day
                ("S6", Some("Nov 7 2013")), // an unreadable DOB is kept as written
                ("S7", Some("2013-11-07")), // YYYY/MM/DD
            ] {
                want(
                    &format!("{id}'s birth date"),
                    student(id).and_then(|p| p.birth_date.clone()),
                    date,
                );
            }
            want(
                "S2's SecurityValue",
                student("S2").and_then(|p| p.security_value.clone()),
                Some("4821"),
            );
        }
        "unknown-grades" => {
            for (id, grade) in [
                ("S1", "K"),
                ("S2", "PreKindergarten"),
                ("S3", "13"),
                ("S4", "Ungraded"),
                ("S5", "-1"),
                ("S6", "Postgraduate"),
            ] {
                want(
                    &format!("{id}'s grade"),
                    student(id).and_then(|p| p.grade.clone()),
                    Some(grade),
                );
            }
        }
        _ => {}
    }
    problems
}

#[test]
fn every_corpus_case_imports_or_fails_where_expected() {
    let root = workspace().join("fixtures/bad/pickatime");
    let mut cases: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| root.join(name).is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    let (mut ok, mut errors) = (0, 0);
    for case in &cases {
        let expected = expected(&root.join(case));
        let (result, logs) = import(&workspace(), &format!("fixtures/bad/pickatime/{case}"));
        match &result {
            Ok(records) => eprintln!("{case:<40} ok {:?}", counts(records)),
            Err(error) => eprintln!("{case:<40} {error}"),
        }
        match expected {
            Expected::Ok(_) => ok += 1,
            Expected::Error(_) => errors += 1,
        }
        failures.extend(
            check(case, &result, &expected, &logs)
                .into_iter()
                .map(|p| format!("{case}: {p}")),
        );
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= 35 && ok >= 15 && errors >= 15,
        "{} cases: {ok} ok, {errors} errors",
        cases.len()
    );
}

/// A case folder written at test time: the corpus's valid files with `changes`.
fn generated(changes: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let base = workspace().join("fixtures/bad/pickatime/utf8-bom");
    for name in ["Student.txt", "Teacher.txt", "Class.txt", "Enrollment.txt"] {
        std::fs::copy(base.join(name), dir.path().join(name)).unwrap();
    }
    for (name, content) in changes {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

/// The error of importing a generated case (its location relative to the case folder);
/// a summary, not the records, when it imports.
fn import_generated_err(dir: &tempfile::TempDir) -> PluginError {
    match import_generated(dir) {
        Ok(records) => panic!("imported: {:?}", counts(&records)),
        Err(error) => error,
    }
}

fn import_generated(dir: &tempfile::TempDir) -> Result<Vec<Record>, PluginError> {
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let (result, _) = import(base, name);
    // Locations relative to the case folder, as in expected.txt.
    result.map_err(|mut error| {
        error.location = error.location.map(|l| {
            l.strip_prefix(&format!("{name}/"))
                .map_or(l.clone(), str::to_string)
        });
        error
    })
}

const TEN_MB: usize = 10 << 20;

fn students_with(row: &[u8]) -> Vec<u8> {
    let mut text =
        b"StudentID\tFirst\tLast\tSecurityValue\tNotes\nS1\tZo\xC3\xAB\tLovelace\t12/10/2015\t\n"
            .to_vec();
    text.extend_from_slice(row);
    text.extend_from_slice(b"S3\tGrace\tHopper\t12/09/2014\t\n");
    text
}

#[test]
fn a_ten_megabyte_field_is_refused_at_its_cell() {
    // A 10 MB name: a broken export, not a name. The error names its cell.
    let mut row = b"S2\t".to_vec();
    row.extend(std::iter::repeat_n(b'x', TEN_MB));
    row.extend_from_slice(b"\tTuring\t06/23/2014\t\n");
    let dir = generated(&[("Student.txt", students_with(&row))]);
    let error = import_generated_err(&dir);
    assert_eq!(
        error.location.as_deref(),
        Some("Student.txt:3:2"),
        "{}",
        short(&error)
    );
    assert!(
        error.message.contains("longer than 65536 bytes"),
        "{}",
        short(&error)
    );
}

#[test]
fn a_ten_megabyte_quoted_field_with_line_breaks_is_refused_at_its_cell() {
    // Notes of 10 MB in quotes, over many lines: the location is still the row's first line.
    let mut row = b"S2\tAlan\tTuring\t06/23/2014\t\"".to_vec();
    for _ in 0..(TEN_MB / 64) {
        row.extend(std::iter::repeat_n(b'n', 63));
        row.push(b'\n');
    }
    row.extend_from_slice(b"\"\n");
    let dir = generated(&[("Student.txt", students_with(&row))]);
    let error = import_generated_err(&dir);
    assert_eq!(
        error.location.as_deref(),
        Some("Student.txt:3:5"),
        "{}",
        short(&error)
    );
}

#[test]
fn a_ten_megabyte_header_line_is_refused() {
    let mut text = b"StudentID\tFirst\tLast\tSecurityValue\t".to_vec();
    text.extend(std::iter::repeat_n(b'h', TEN_MB));
    text.extend_from_slice(b"\nS1\tZo\xC3\xAB\tLovelace\t12/10/2015\t\n");
    let dir = generated(&[("Student.txt", text)]);
    let error = import_generated_err(&dir);
    assert_eq!(
        error.location.as_deref(),
        Some("Student.txt:1:5"),
        "{}",
        short(&error)
    );
}

#[test]
fn a_ten_megabyte_file_without_a_line_break_is_refused() {
    // No header line to speak of: one enormous line of tabs and text.
    let text: Vec<u8> = b"StudentID\tFirst\tLast\tSecurityValue"
        .iter()
        .copied()
        .cycle()
        .take(TEN_MB)
        .collect();
    let dir = generated(&[("Student.txt", text)]);
    let error = import_generated_err(&dir);
    assert!(
        error
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("Student.txt:1")),
        "{}",
        short(&error)
    );
}

/// An error as text, cut to a readable length.
fn short(error: &PluginError) -> String {
    error.to_string().chars().take(300).collect()
}
