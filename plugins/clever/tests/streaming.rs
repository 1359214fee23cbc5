//! The import streams: the first batch reaches the host while most of the district is
//! still unfetched, a failure on a later page still fails the import (before the
//! snapshot), and a source dropped early stops fetching.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{normalise, Setup, TestHost};
use roster_clever_mock::{District, Fault, FaultRule};
use roster_core::loader::{LinkedPlugin, PluginHandle};
use roster_core::record::{Kind, Record};
use roster_core::sdk::{decode_batch, encode_record, RecordSource};
use roster_core::ErrorKind;
use roster_plugin_clever::{Clever, BATCH_SIZE};

/// Extra students, in pages of `PAGE`: the users list is `EXTRA / PAGE` pages and more.
const EXTRA: usize = 12_000;
const PAGE: usize = 500;

/// The demo district with `EXTRA` more students (in no section).
fn big_district() -> District {
    let mut district = District::demo();
    let model = district.students[0].clone();
    for i in 0..EXTRA {
        let mut student = model.clone();
        student.id = format!("5d{i:022x}");
        student.sis_id = format!("X{i}");
        student.student_number = format!("N{i}");
        student.state_id = format!("S{i}");
        student.email = format!("extra{i}@example.org");
        student.username = format!("extra{i}");
        district.students.push(student);
    }
    district
}

fn open(setup: &Setup) -> Box<dyn RecordSource> {
    let config = setup.config("v3.0", &format!("page_size = {PAGE}"));
    let plugin = LinkedPlugin::<Clever>::default();
    plugin
        .open(&config, Path::new("."), Arc::new(TestHost::default()))
        .unwrap()
}

fn user_pages(setup: &Setup) -> usize {
    setup.requests_to("/v3.0/users").len()
}

/// A 401 on a late page of users: the first batches are handed out before that page is
/// asked for (a source that fetched everything first would fail its first `next_batch`),
/// and the failure still ends the import, with no snapshot.
#[test]
fn batches_flow_before_the_last_page_and_a_late_failure_still_fails() {
    let setup = Setup::with_district(big_district());
    let pages = EXTRA / PAGE;
    setup.server.inject(
        FaultRule::new(Fault::Unauthorized)
            .on_path("/v3.0/users")
            .skip(pages as u32 - 2),
    );
    let mut source = open(&setup);
    let first = source
        .next_batch()
        .expect("the first batch, before the bad page");
    let first = first.expect("a first batch");
    assert_eq!(first.len(), BATCH_SIZE);
    assert!(matches!(first[0].kind, Some(Kind::School(_))));
    let mut records: Vec<Record> = first;
    let error = loop {
        match source.next_batch() {
            Ok(Some(batch)) => records.extend(batch),
            Ok(None) => panic!("the import ended despite the 401"),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind, ErrorKind::Auth, "{error}");
    assert!(records.len() >= BATCH_SIZE);
    assert!(!records
        .iter()
        .any(|r| matches!(r.kind, Some(Kind::Snapshot(_)))));
    // After the error the source is done.
    assert!(matches!(source.next_batch(), Ok(None)));
}

/// Dropping the source after one batch stops the fetching: no request goes out once
/// `drop` returns, and the rest of the list was never asked for.
#[test]
fn a_dropped_source_stops_fetching() {
    let setup = Setup::with_district(big_district());
    let pages = EXTRA / PAGE;
    let mut source = open(&setup);
    assert!(source.next_batch().unwrap().is_some());
    drop(source);
    let at_drop = user_pages(&setup);
    // Requests already on the wire when `drop` returned may still be answered (the mock
    // logs a request once it has rendered the page, which is slow in a debug build); wait
    // until the log stops growing. The client keeps up to 4 in flight, and none after.
    let mut settled = at_drop;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(300));
        let now = user_pages(&setup);
        if now == settled {
            break;
        }
        settled = now;
    }
    assert!(
        settled <= at_drop + 4,
        "{at_drop} pages at drop, {settled} later"
    );
    assert!(settled < pages, "{settled} of {pages} pages fetched");
}

#[test]
fn a_streamed_import_is_the_whole_district_in_order() {
    let setup = Setup::with_district(big_district());
    for version in ["v2.1", "v3.0"] {
        let streamed = setup.run(version, &format!("page_size = {PAGE}"));
        let one_page = setup.run(version, "");
        let records: &[Record] = streamed.records();
        assert!(
            streamed.batches.len() > 2,
            "{version}: {:?}",
            streamed.batches
        );
        assert!(matches!(
            records.last().and_then(|r| r.kind.as_ref()),
            Some(Kind::Snapshot(_))
        ));
        assert_eq!(
            normalise(records),
            normalise(one_page.records()),
            "{version}"
        );
    }
}

/// Across the plugin boundary the import thread encodes each record as it makes it: the
/// batches are the ones a host linked in gets as records, boundaries and all, in the
/// bytes `Batch::encode` writes.
#[test]
fn encoded_batches_are_the_record_batches_encoded() {
    let setup = Setup::with_district(big_district());
    for version in ["v2.1", "v3.0"] {
        let config = setup.config(version, &format!("page_size = {PAGE}"));
        let plugin = LinkedPlugin::<Clever>::default();
        let open = || {
            plugin
                .open(&config, Path::new("."), Arc::new(TestHost::default()))
                .unwrap()
        };
        let mut as_records = Vec::new();
        let mut source = open();
        while let Some(batch) = source.next_batch().unwrap() {
            as_records.push(batch);
        }
        let mut as_bytes = Vec::new();
        let mut source = open();
        loop {
            let mut bytes = Vec::new();
            if !source.next_batch_encoded(&mut bytes).unwrap() {
                break;
            }
            let records = decode_batch(&bytes).unwrap();
            let mut again = Vec::new();
            for record in &records {
                encode_record(record, &mut again);
            }
            assert_eq!(bytes, again, "{version}: the bytes `Batch::encode` writes");
            as_bytes.push(records);
        }
        assert!(
            as_records.len() > 2,
            "{version}: {} batches",
            as_records.len()
        );
        assert_eq!(as_records.len(), as_bytes.len(), "{version}: batches");
        for (records, decoded) in as_records.iter().zip(&as_bytes) {
            assert_eq!(records, decoded, "{version}");
        }
    }
}
