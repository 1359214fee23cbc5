//! The batches a pickAtime source encodes for the plugin boundary as it reads
//! (`next_batch_encoded`) are exactly the batches `next_batch` returns, encoded.

mod common;

use std::fmt::Write;
use std::path::Path;

use common::*;
use roster_core::record::Record;
use roster_core::sdk::{decode_batch, encode_record, RecordSource};
use roster_plugin_csv::pickatime::{PickatimeSource, BATCH_SIZE};

type Pulled = (Vec<Vec<Record>>, Option<String>);

fn open(base: &Path, path: &str) -> PickatimeSource {
    let config = config(&format!(
        "format = \"pickatime\"\npath = {path:?}\nterm = \"2025-26\""
    ));
    PickatimeSource::open(&config, base, host().1).unwrap()
}

fn located(error: roster_core::PluginError) -> String {
    format!("{:?}: {}", error.location, error.message)
}

fn by_records(base: &Path, path: &str) -> Pulled {
    let mut source = open(base, path);
    let mut batches = Vec::new();
    loop {
        match source.next_batch() {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => return (batches, None),
            Err(error) => return (batches, Some(located(error))),
        }
    }
}

fn by_bytes(base: &Path, path: &str) -> Pulled {
    let mut source = open(base, path);
    let mut batches = Vec::new();
    loop {
        let mut bytes = Vec::new();
        match source.next_batch_encoded(&mut bytes) {
            Ok(true) => {
                let records = decode_batch(&bytes).unwrap();
                let mut again = Vec::new();
                for record in &records {
                    encode_record(record, &mut again);
                }
                assert_eq!(bytes, again, "the bytes `Batch::encode` writes");
                batches.push(records);
            }
            Ok(false) => return (batches, None),
            Err(error) => return (batches, Some(located(error))),
        }
    }
}

fn same_both_ways(base: &Path, path: &str) -> Pulled {
    let records = by_records(base, path);
    let bytes = by_bytes(base, path);
    assert_eq!(records.0.len(), bytes.0.len(), "batches");
    for (a, b) in records.0.iter().zip(&bytes.0) {
        assert_eq!(a, b);
    }
    assert_eq!(records.1, bytes.1);
    records
}

#[test]
fn fixtures_encode_as_their_records() {
    for path in ["fixtures/pickatime", "fixtures/pickatime-pairs"] {
        let (batches, error) = same_both_ways(&workspace(), path);
        assert!(error.is_none(), "{path}: {error:?}");
        assert!(!batches.is_empty());
    }
}

/// Several batches' worth, with repeated and merged parents and a repeated enrollment.
fn district(students: usize, broken: bool) -> tempfile::TempDir {
    let mut student = String::from("StudentID\tFirst\tLast\tSecurityValue\tGrade\n");
    let mut enrollment = String::from("StudentID\tClassID\tClassID\n");
    let mut parent = String::from("ParentID\tFirst\tLast\tEmail\n");
    let mut links = String::from("ParentID\tStudentID\tRelationship\n");
    for i in 0..students {
        writeln!(
            student,
            "S{i}\tFirst{i}\tLast{i}\t01/0{}/2015\t{}",
            i % 9 + 1,
            i % 12
        )
        .unwrap();
        writeln!(enrollment, "S{i}\tC{}\tC{}", i % 7, (i * 3) % 11).unwrap();
        writeln!(
            parent,
            "P{i}\tPa{i}\tLast{i}\tp{}@example.com",
            i % (students - 50)
        )
        .unwrap();
        writeln!(links, "P{i}\tS{i}\tMother").unwrap();
        if i % 97 == 0 {
            writeln!(parent, "P{i}\tPb{i}\tLast{i}\t").unwrap();
            writeln!(links, "P{}\tS{i}\t", i / 2).unwrap();
        }
    }
    if broken {
        enrollment.push_str("S1\tC1\tC404\n");
    }
    let classes: String = std::iter::once("ClassID\tTeacherID\tClassName\n".to_string())
        .chain((0..11).map(|c| format!("C{c}\tT{}\tClass {c}\n", c % 2 + 1)))
        .collect();
    folder(&[
        ("Student.txt", student.as_bytes()),
        ("Class.txt", classes.as_bytes()),
        ("Enrollment.txt", enrollment.as_bytes()),
        ("Parent.txt", parent.as_bytes()),
        ("ParentStudent.txt", links.as_bytes()),
    ])
}

#[test]
fn a_district_encodes_as_its_records_batch_by_batch() {
    let dir = district(BATCH_SIZE, false);
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let (batches, error) = same_both_ways(base, name);
    assert!(error.is_none(), "{error:?}");
    assert!(batches.len() > 3, "{} batches", batches.len());
}

#[test]
fn an_error_stops_both_at_the_same_batch() {
    let dir = district(BATCH_SIZE / 2, true);
    let base = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let (_, error) = same_both_ways(base, name);
    let error = error.expect("an unknown ClassID");
    assert!(error.contains("Enrollment.txt:"), "{error}");
    assert!(error.contains("C404"), "{error}");
}
