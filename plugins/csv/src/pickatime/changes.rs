//! A continuing run: which rows of a file changed since the last run, and what that
//! makes *dirty* — the students, classes, contacts… whose records may differ.
//!
//! A run that continues still reads every row of every file the way a complete run
//! does, so that every check (unknown ids, duplicates, one email per teacher) sees the
//! whole roster and fails exactly where a complete run would. It only sends the records
//! of dirty keys, and removals for the dirty keys the files no longer have. Two texts
//! are compared as multisets of rows, each row by a 128-bit digest of its cells: a row
//! that moved is not a change, a row edited is one row gone and one added.

use std::collections::HashSet;

use std::io::Cursor;

use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::hash::{FastBuild, FastMap};
use crate::table::same_name;
use crate::text;

pub type KeySet = HashSet<Box<str>, FastBuild>;

/// How two texts of one file differ.
#[derive(Debug, Default)]
pub struct Diff {
    pub old_header: Vec<String>,
    pub new_header: Vec<String>,
    /// Rows the new text has and the old one had not (added or changed), cells trimmed.
    pub added: Vec<Vec<String>>,
    /// Rows the old text had and the new one has not.
    pub gone: Vec<Vec<String>>,
}

impl Diff {
    /// The cells of column `name` in the added rows, then in the gone ones (each text by
    /// its own header); none when that header lacks the column.
    pub fn cells<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.added_cells(name).chain(self.gone_cells(name))
    }

    /// The cells of column `name` in the added rows.
    pub fn added_cells<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        pick(&self.added, column(&self.new_header, name))
    }

    /// The cells of column `name` in the gone rows.
    pub fn gone_cells<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        pick(&self.gone, column(&self.old_header, name))
    }

    /// Column `name` of the old header, if it has one.
    pub fn old_column(&self, name: &str) -> Option<usize> {
        column(&self.old_header, name)
    }

    pub fn old_columns(&self, name: &str) -> Vec<usize> {
        (0..self.old_header.len())
            .filter(|&i| same_name(&self.old_header[i], name))
            .collect()
    }
}

/// The non-empty cells of column `index` of `rows`.
fn pick(rows: &[Vec<String>], index: Option<usize>) -> impl Iterator<Item = &str> {
    rows.iter()
        .filter_map(move |row| row.get(index?).map(String::as_str))
        .filter(|cell| !cell.is_empty())
}

fn column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| same_name(h, name))
}

pub fn key_set<'a>(keys: impl IntoIterator<Item = &'a str>) -> KeySet {
    keys.into_iter().map(Box::from).collect()
}

/// Compares the text the last run read with this run's, each split with its own
/// delimiter (a file re-saved with another one changes nothing by itself).
///
/// Most rows of a file stay where they were, so the two lists of row digests are walked
/// side by side, stepping over a few rows where one was added or removed, and only the
/// rows that did not pair up are compared as multisets. A file sorted anew is still
/// compared exactly, only slower.
pub fn diff(old: &[u8], old_delimiter: u8, new: &[u8], new_delimiter: u8) -> Diff {
    let mut result = Diff::default();
    // Without a quote anywhere, a record is a line: digests of whole lines (delimiters
    // and all) are as exact, and need no CSV reader.
    let by_line = old_delimiter == new_delimiter
        && memchr::memchr(b'"', old).is_none()
        && memchr::memchr(b'"', new).is_none();
    let rows = if by_line { lines } else { records };
    let old_rows = rows(old, old_delimiter, &mut result.old_header);
    let new_rows = rows(new, new_delimiter, &mut result.new_header);
    let (mut unpaired_old, mut unpaired_new) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old_rows.len() && j < new_rows.len() {
        if old_rows[i].digest == new_rows[j].digest {
            i += 1;
            j += 1;
            continue;
        }
        let ahead = |rows: &[RowAt], from: usize, digest: [u64; 2]| {
            rows[from..rows.len().min(from + LOOK_AHEAD)]
                .iter()
                .position(|r| r.digest == digest)
        };
        if let Some(added) = ahead(&new_rows, j + 1, old_rows[i].digest) {
            unpaired_new.extend(j..=j + added);
            j += added + 1;
        } else if let Some(removed) = ahead(&old_rows, i + 1, new_rows[j].digest) {
            unpaired_old.extend(i..=i + removed);
            i += removed + 1;
        } else {
            unpaired_old.push(i);
            unpaired_new.push(j);
            i += 1;
            j += 1;
        }
    }
    unpaired_old.extend(i..old_rows.len());
    unpaired_new.extend(j..new_rows.len());

    let mut counts: FastMap<[u64; 2], u32> = FastMap::default();
    for &i in &unpaired_old {
        *counts.entry(old_rows[i].digest).or_default() += 1;
    }
    let mut added = Vec::new();
    for &j in &unpaired_new {
        match counts.get_mut(&new_rows[j].digest) {
            Some(count) if *count > 0 => *count -= 1,
            _ => added.push(new_rows[j].offset),
        }
    }
    let mut gone = Vec::new();
    for &i in &unpaired_old {
        if let Some(count) = counts.get_mut(&old_rows[i].digest).filter(|c| **c > 0) {
            *count -= 1;
            gone.push(old_rows[i].offset);
        }
    }
    result.added = cells_at(new, new_delimiter, &added);
    result.gone = cells_at(old, old_delimiter, &gone);
    result
}

/// How far the side-by-side walk looks for a row that was added or removed.
const LOOK_AHEAD: usize = 16;

/// A row's digest and where it starts; the digest in two halves keeps this at 24 bytes
/// (a `u128` would align it to 32), and nyc's Parent file has 1.8 million rows.
struct RowAt {
    digest: [u64; 2],
    offset: u64,
}

fn halves(digest: u128) -> [u64; 2] {
    [(digest >> 64) as u64, digest as u64]
}

/// The delimiter a text was split with: the one the config names, else the one its
/// header line suggests (as when the file was opened).
pub fn delimiter_of(text: &[u8], configured: Option<u8>) -> u8 {
    configured.unwrap_or_else(|| {
        text::sniff_delimiter(
            text.split(|&b| b == b'\n')
                .find(|line| !line.iter().all(u8::is_ascii_whitespace))
                .unwrap_or(&[]),
        )
    })
}

fn reader(text: &[u8], delimiter: u8) -> csv::Reader<Cursor<&[u8]>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(Cursor::new(text))
}

/// The digest and place of every line that is not blank, after the first (the header),
/// which goes into `header`: `records` for a text without quotes.
fn lines(text: &[u8], delimiter: u8, header: &mut Vec<String>) -> Vec<RowAt> {
    let mut rows = Vec::new();
    let mut start = 0;
    let mut first = true;
    let unterminated = (text.last() != Some(&b'\n')).then_some(text.len());
    for end in memchr::memchr_iter(b'\n', text).chain(unterminated) {
        let line = &text[start..end];
        let offset = start as u64;
        start = end + 1;
        // Cells are trimmed: a line of delimiters and spaces is blank (a cell of other
        // white space is a row to both texts alike, and a key of none).
        if line
            .iter()
            .all(|&b| b == delimiter || b.is_ascii_whitespace())
        {
            continue;
        }
        if first {
            records(line, delimiter, header);
            first = false;
            continue;
        }
        rows.push(RowAt {
            digest: halves(xxh3_128_with_seed(line, LINE_SEED)),
            offset,
        });
    }
    rows
}

/// Line digests are seeded apart from record digests: the two never meet in one diff.
const LINE_SEED: u64 = 0x6c69_6e65;

/// The digest and place of every record that is not blank, after the first (the header,
/// as `Table` reads it), which goes into `header`.
fn records(text: &[u8], delimiter: u8, header: &mut Vec<String>) -> Vec<RowAt> {
    let mut reader = reader(text, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut rows = Vec::new();
    let mut first = true;
    // Reading from memory cannot fail; a text the reader cannot split ends the rows, and
    // the run's own reading of the same text reports it.
    while reader.read_byte_record(&mut record).unwrap_or(false) {
        if record
            .iter()
            .all(|cell| text::decode_field(cell).0.trim().is_empty())
        {
            continue;
        }
        if first {
            *header = cells(&record)
                .into_iter()
                .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
                .collect();
            first = false;
            continue;
        }
        rows.push(RowAt {
            digest: halves(digest(&record)),
            offset: record.position().map_or(0, |p| p.byte()),
        });
    }
    rows
}

/// The cells of the records that start at `offsets`, in order.
fn cells_at(text: &[u8], delimiter: u8, offsets: &[u64]) -> Vec<Vec<String>> {
    let mut reader = reader(text, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut rows = Vec::with_capacity(offsets.len());
    for &offset in offsets {
        let mut at = csv::Position::new();
        at.set_byte(offset);
        if reader.seek(at).is_ok() && reader.read_byte_record(&mut record).unwrap_or(false) {
            rows.push(cells(&record));
        }
    }
    rows
}

/// The record's cells and where each ends: one pass of xxh3 over the text of the cells,
/// seeded with their lengths.
fn digest(record: &csv::ByteRecord) -> u128 {
    let mut seed = record.len() as u64;
    let mut start = 0;
    for i in 0..record.len() {
        let end = record.range(i).map_or(start, |r| r.end);
        seed = seed.rotate_left(5) ^ (end - start) as u64;
        seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        start = end;
    }
    xxh3_128_with_seed(record.as_slice(), seed)
}

fn cells(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|cell| text::decode_field(cell).0.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(rows: &[Vec<String>]) -> Vec<String> {
        let mut rows: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
        rows.sort();
        rows
    }

    #[test]
    fn rows_added_changed_and_gone_are_found_and_moved_rows_are_not() {
        let old = b"ID\tName\n1\tAda\n2\tBo\n3\tCy\n3\tCy\n\n4\tDee\n";
        let new = b"ID,Name\n4,Dee\n1,Ada\n2,Bea\n3,Cy\n5,Eve\n";
        let diff = diff(old, b'\t', new, b',');
        assert_eq!(diff.old_header, ["ID", "Name"]);
        assert_eq!(sorted(&diff.added), ["2|Bea", "5|Eve"]);
        assert_eq!(sorted(&diff.gone), ["2|Bo", "3|Cy"]);
        let keys: Vec<&str> = diff.cells("id").collect();
        assert_eq!(keys, ["2", "5", "2", "3"]);
    }

    #[test]
    fn a_new_header_makes_every_row_a_change() {
        let diff = diff(b"A\tB\n1\t2\n", b'\t', b"B\tA\n2\t1\n", b'\t');
        assert_eq!((diff.added.len(), diff.gone.len()), (1, 1));
        assert_eq!(diff.cells("A").collect::<Vec<_>>(), ["1", "1"]);
        assert!(diff.old_column("C").is_none());
    }

    #[test]
    fn the_same_text_has_no_changes() {
        let text = b"A\n\"x\ny\"\n1\n";
        let same = diff(text, b'\t', text, b'\t');
        assert!(same.added.is_empty() && same.gone.is_empty());
        assert_eq!(delimiter_of(b"\n a;b,c;d\n", None), b';');
        assert_eq!(delimiter_of(b"a;b", Some(b'\t')), b'\t');
    }
}
