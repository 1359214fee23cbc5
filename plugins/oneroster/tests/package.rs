//! Behaviour on packages derived from the fixtures: .zip packages, manifest rules,
//! bulk/delta reference rules, errors with their locations, and cancellation.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use roster_core::record::{Entity, Kind, Record};
use roster_core::sdk::{Host, RecordSource};
use roster_core::ErrorKind;
use roster_plugin_oneroster::{Config, OneRosterSource};

/// A copy of a fixture package in a temporary folder, with `changes` applied: a file's
/// new content, or `None` to remove it.
fn package(fixture: &str, changes: &[(&str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = workspace().join("fixtures/oneroster").join(fixture);
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    for (name, content) in changes {
        let path = dir.path().join(name);
        match content {
            Some(text) => std::fs::write(path, text).unwrap(),
            None => std::fs::remove_file(path).unwrap(),
        }
    }
    dir
}

/// Reads a temporary package by its path relative to its parent, so locations are short.
fn read_dir(dir: &Path) -> (Arc<Recorder>, Result<Vec<Record>, roster_core::PluginError>) {
    read(
        dir.parent().unwrap(),
        dir.file_name().unwrap().to_str().unwrap(),
    )
}

/// The error's location with the temporary folder's name taken off.
fn error_at(dir: &tempfile::TempDir) -> (String, String) {
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let error = read_dir(dir.path()).1.expect_err("expected an error");
    let location = error.location.clone().unwrap_or_default();
    let location = location
        .strip_prefix(&format!("{name}/"))
        .unwrap_or(&location)
        .to_string();
    (location, error.message)
}

fn zip_folder(from: &Path, to: &Path, prefix: &str) {
    let mut writer = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut names: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    if !prefix.is_empty() {
        writer.add_directory(prefix, options).unwrap();
    }
    for name in names {
        writer
            .start_file(format!("{prefix}{name}"), options)
            .unwrap();
        writer
            .write_all(&std::fs::read(from.join(&name)).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
}

fn rendered(records: &[Record]) -> Vec<String> {
    records.iter().map(render).collect()
}

#[test]
fn a_zip_reads_like_its_folder() {
    for fixture in ["v1.1", "v1.2"] {
        let (_, folder) = read_ok(&workspace(), &format!("fixtures/oneroster/{fixture}"));
        let dir = tempfile::tempdir().unwrap();
        let source = workspace().join("fixtures/oneroster").join(fixture);
        zip_folder(&source, &dir.path().join("flat.zip"), "");
        zip_folder(&source, &dir.path().join("nested.zip"), "export/");
        for zip in ["flat.zip", "nested.zip"] {
            let (_, records) = read_ok(dir.path(), zip);
            assert_eq!(rendered(&records), rendered(&folder), "{fixture} {zip}");
        }
    }
}

#[test]
fn zip_errors_name_the_file_inside() {
    let dir = package(
        "v1.1",
        &[(
            "classes.csv",
            Some("sourcedId,title,schoolSourcedId,termSourcedIds\nc1,Algebra,s-nowhere,fall26\n"),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    zip_folder(dir.path(), &out.path().join("pkg.zip"), "");
    let error = read(out.path(), "pkg.zip").1.unwrap_err();
    assert_eq!(error.location.as_deref(), Some("pkg.zip/classes.csv:2:3"));
    assert_eq!(
        error.message,
        "unknown schoolSourcedId `s-nowhere` (not in orgs.csv)"
    );
}

#[test]
fn not_a_zip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pkg.zip"), "not a zip").unwrap();
    let error = read(dir.path(), "pkg.zip").1.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Input);
    assert!(
        error.message.starts_with("not a readable .zip file"),
        "{}",
        error.message
    );
    let error = read(dir.path(), "missing").1.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.starts_with("path: "), "{}", error.message);
}

#[test]
fn a_package_needs_its_manifest() {
    let dir = package("v1.1", &[("manifest.csv", None)]);
    let (location, message) = error_at(&dir);
    assert_eq!(location, "manifest.csv");
    assert_eq!(message, "the package has no manifest.csv");
}

#[test]
fn a_bulk_file_must_be_there_and_have_rows() {
    let dir = package("v1.1", &[("users.csv", None)]);
    assert_eq!(
        error_at(&dir),
        (
            "manifest.csv:16".to_string(),
            "file.users is bulk but the package has no users.csv".to_string()
        )
    );
    let dir = package(
        "v1.1",
        &[("users.csv", Some("sourcedId,role,givenName,familyName\n"))],
    );
    let (location, message) = error_at(&dir);
    assert_eq!(location, "users.csv");
    assert!(
        message.starts_with("users.csv is bulk but has no rows"),
        "{message}"
    );
}

#[test]
fn absent_files_are_ignored_even_when_present() {
    let manifest =
        std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/manifest.csv"))
            .unwrap()
            .replace("file.demographics,bulk", "file.demographics,absent");
    let dir = package("v1.1", &[("manifest.csv", Some(&manifest))]);
    let (recorder, records) = read_dir(dir.path());
    let records = records.unwrap();
    assert!(records.iter().all(|r| match &r.kind {
        Some(Kind::Person(p)) => p.birth_date.is_none(),
        _ => true,
    }));
    assert!(
        recorder.warnings()[0].ends_with("demographics.csv: the manifest does not supply it (file.demographics is absent or missing); ignored"),
        "{:?}",
        recorder.warnings()
    );
}

#[test]
fn a_delta_file_needs_status() {
    let manifest =
        std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/manifest.csv"))
            .unwrap()
            .replace("file.orgs,bulk", "file.orgs,delta");
    let orgs = "sourcedId,name,type\ns-oak,Oak Ridge Middle School,school\n";
    let dir = package(
        "v1.1",
        &[("manifest.csv", Some(&manifest)), ("orgs.csv", Some(orgs))],
    );
    let (location, message) = error_at(&dir);
    assert_eq!(location, "orgs.csv:1");
    assert!(message.starts_with("missing column `status`"), "{message}");
    // A blank status in a delta file is read as active, with one warning.
    let users =
        std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/users.csv")).unwrap();
    let manifest = manifest
        .replace("file.orgs,delta", "file.orgs,bulk")
        .replace("file.users,bulk", "file.users,delta");
    let dir = package(
        "v1.1",
        &[
            ("manifest.csv", Some(&manifest)),
            ("users.csv", Some(&users)),
        ],
    );
    let (recorder, records) = read_dir(dir.path());
    let records = records.unwrap();
    let Some(Kind::Snapshot(snapshot)) = &records.last().unwrap().kind else {
        panic!("snapshot last")
    };
    let complete: Vec<Entity> = snapshot
        .complete
        .iter()
        .map(|&e| Entity::try_from(e).unwrap())
        .collect();
    assert_eq!(
        complete,
        [
            Entity::Schools,
            Entity::Terms,
            Entity::Classes,
            Entity::Enrollments,
            Entity::ClassTeachers
        ]
    );
    assert_eq!(recorder.warnings().len(), 2, "{:?}", recorder.warnings());
    assert!(recorder.warnings()[0]
        .ends_with("users.csv:2:2: empty status in a delta file; read as `active`"));
}

#[test]
fn bulk_references_must_resolve() {
    let enrollments = "sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role\ne1,cls-math6-1,s-oak,st-1,student\ne2,cls-nope,s-oak,st-1,student\n";
    let dir = package("v1.1", &[("enrollments.csv", Some(enrollments))]);
    assert_eq!(
        error_at(&dir),
        (
            "enrollments.csv:3:2".to_string(),
            "unknown classSourcedId `cls-nope` (not in classes.csv)".to_string()
        )
    );
    let enrollments = "sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role\ne1,cls-math6-1,s-oak,st-99,student\n";
    let dir = package("v1.1", &[("enrollments.csv", Some(enrollments))]);
    assert_eq!(
        error_at(&dir),
        (
            "enrollments.csv:2:4".to_string(),
            "unknown userSourcedId `st-99` (not in users.csv)".to_string()
        )
    );
    let classes =
        "sourcedId,title,schoolSourcedId,termSourcedIds\nc1,Algebra,s-oak,\"fall26,t-x\"\n";
    let dir = package(
        "v1.1",
        &[
            ("classes.csv", Some(classes)),
            (
                "enrollments.csv",
                Some("classSourcedId,userSourcedId,role\nc1,st-1,student\n"),
            ),
        ],
    );
    assert_eq!(
        error_at(&dir),
        (
            "classes.csv:2:4".to_string(),
            "unknown termSourcedIds entry `t-x` (not in academicSessions.csv)".to_string()
        )
    );
    let users = std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/users.csv"))
        .unwrap()
        .replace("\"s-elm,s-oak\"", "\"s-elm,s-pine\"");
    let dir = package("v1.1", &[("users.csv", Some(&users))]);
    assert_eq!(
        error_at(&dir),
        (
            "users.csv:4:5".to_string(),
            "unknown org `s-pine` (not in orgs.csv)".to_string()
        )
    );
}

#[test]
fn delta_references_outside_the_package_skip_the_row_and_the_snapshot() {
    // orgs delta with only one school: users and classes of the other are skipped, and
    // people and classes are then not vouched complete.
    let manifest =
        std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/manifest.csv"))
            .unwrap()
            .replace("file.orgs,bulk", "file.orgs,delta");
    let orgs = "sourcedId,status,dateLastModified,name,type\ns-oak,active,2026-08-01,Oak Ridge Middle School,school\n";
    let dir = package(
        "v1.1",
        &[("manifest.csv", Some(&manifest)), ("orgs.csv", Some(orgs))],
    );
    let (recorder, records) = read_dir(dir.path());
    let records = records.unwrap();
    let people: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.kind {
            Some(Kind::Person(p)) => Some(p.source_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        people,
        ["t-1", "t-2", "st-1", "st-2", "st-5", "p-1", "p-2", "r-1"]
    );
    let Some(Kind::Snapshot(snapshot)) = &records.last().unwrap().kind else {
        panic!("snapshot last")
    };
    let complete: Vec<Entity> = snapshot
        .complete
        .iter()
        .map(|&e| Entity::try_from(e).unwrap())
        .collect();
    assert_eq!(complete, [Entity::Terms]);
    let warnings = recorder.warnings();
    assert!(
        warnings.iter().any(|w| w
            .contains("users.csv: 8 rows skipped: refers to an org this package does not deliver")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("classes.csv: 2 rows skipped")),
        "{warnings:?}"
    );
}

#[test]
fn bad_values_are_located() {
    let users = std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.2/users.csv"))
        .unwrap()
        .replace("u-t2,active", "u-t2,inactive");
    let dir = package("v1.2", &[("users.csv", Some(&users))]);
    assert_eq!(
        error_at(&dir),
        (
            "users.csv:3:2".to_string(),
            "unknown status `inactive`: expected `active` or `tobedeleted`".to_string()
        )
    );
    let users = std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/users.csv"))
        .unwrap()
        .replace("Chloe,Okafor", ",");
    let dir = package("v1.1", &[("users.csv", Some(&users))]);
    assert_eq!(
        error_at(&dir),
        (
            "users.csv:9:9".to_string(),
            "empty givenName and familyName: a user needs a name".to_string()
        )
    );
    let users = std::fs::read_to_string(workspace().join("fixtures/oneroster/v1.1/users.csv"))
        .unwrap()
        .replace("st-6,", "st-5,");
    let dir = package("v1.1", &[("users.csv", Some(&users))]);
    assert_eq!(
        error_at(&dir),
        (
            "users.csv:12:1".to_string(),
            "duplicate sourcedId `st-5` (also on line 11)".to_string()
        )
    );
}

#[test]
fn a_1_2_package_needs_roles() {
    let dir = package("v1.2", &[("roles.csv", None)]);
    let manifest = std::fs::read_to_string(dir.path().join("manifest.csv"))
        .unwrap()
        .replace("file.roles,delta", "file.roles,absent");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let error = read_dir(dir.path()).1.unwrap_err();
    assert_eq!(error.location, Some(format!("{name}/users.csv:1")));
    assert!(
        error.message.starts_with("missing column `role`"),
        "{}",
        error.message
    );
    assert!(error.hint.unwrap().contains("roles.csv"));
}

#[test]
fn latin1_and_header_case_are_tolerated() {
    let mut orgs = b"SOURCEDID,Name,TYPE\nd1,District,district\ns-elm,Elm Street Elementary,school\ns-oak,Oak Ridge Caf\xe9 School,school\n".to_vec();
    orgs.extend_from_slice(b"\n\n");
    let dir = package("v1.1", &[]);
    std::fs::write(dir.path().join("orgs.csv"), orgs).unwrap();
    let (recorder, records) = read_dir(dir.path());
    let records = records.unwrap();
    assert!(records
        .iter()
        .any(|r| matches!(&r.kind, Some(Kind::School(s)) if s.name == "Oak Ridge Café School")));
    assert!(recorder.warnings()[0]
        .ends_with("orgs.csv: not valid UTF-8; read as Windows-1252 (Latin-1)"));
}

#[test]
fn cancellation_stops_between_batches() {
    let recorder = Arc::new(Recorder::default());
    let config = Config::parse("path = \"fixtures/oneroster/v1.1\"").unwrap();
    let mut source =
        OneRosterSource::open(&config, &workspace(), Host::new(recorder.clone())).unwrap();
    recorder.cancelled.store(true, Ordering::SeqCst);
    let error = source.next_batch().unwrap_err();
    assert_eq!(error.kind, ErrorKind::Cancelled);
}
