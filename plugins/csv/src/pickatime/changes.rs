//! A continuing run: which rows of a file changed since the last run, and what that
//! makes *dirty* — the students, classes, contacts… whose records may differ.
//!
//! A run that continues still checks every file the way a complete run does, so that
//! every check (unknown ids, duplicates, one email per teacher) sees the whole roster and
//! fails exactly where a complete run would; it only skips reading the rows nothing that
//! changed can make fail (the enrollments of unchanged students, the Parent rows far from
//! any change). It only sends the records of dirty keys, and removals for the dirty keys
//! the files no longer have. Two texts
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
    /// Rows both texts have, but not in the same order as the rows around them.
    pub moved: usize,
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

    /// Whether an added row has no cell, or an empty one, in column `name`: such a row
    /// is in no set of keys, and reading it is what refuses it. So is a new header
    /// without the column.
    pub fn added_without(&self, name: &str) -> bool {
        match column(&self.new_header, name) {
            Some(index) => self
                .added
                .iter()
                .any(|row| row.get(index).is_none_or(|cell| cell.is_empty())),
            None => true,
        }
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
/// Most rows of a file stay where they were, so the two texts are walked side by side,
/// stepping over a few rows where one was added or removed, and only the rows that did
/// not pair up are compared as multisets. A file sorted anew is still compared exactly,
/// only slower. A header that changed makes every row a change: the same cells may now
/// mean something else.
pub fn diff(old: &[u8], old_delimiter: u8, new: &[u8], new_delimiter: u8) -> Diff {
    let mut result = Diff::default();
    // Without a quote anywhere, a record is a line: whole lines (delimiters and all) are
    // compared as they are, byte for byte, and no CSV reader is needed.
    let by_line = old_delimiter == new_delimiter
        && memchr::memchr(b'"', old).is_none()
        && memchr::memchr(b'"', new).is_none();
    let (unpaired_old, unpaired_new) = if by_line {
        let old_body = header_line(old, old_delimiter, &mut result.old_header);
        let new_body = header_line(new, new_delimiter, &mut result.new_header);
        if result.old_header == result.new_header {
            walk_lines(old, old_body, new, new_body, new_delimiter)
        } else {
            let every = |text, from| line_rows(text, from, new_delimiter).collect();
            (every(old, old_body), every(new, new_body))
        }
    } else {
        let old_rows = records(old, old_delimiter, &mut result.old_header);
        let new_rows = records(new, new_delimiter, &mut result.new_header);
        if result.old_header == result.new_header {
            walk_digests(&old_rows, &new_rows)
        } else {
            (old_rows, new_rows)
        }
    };
    let offsets = |rows: &[RowAt]| rows.iter().map(|row| row.offset).collect::<Vec<_>>();
    let (added, gone) = if result.old_header == result.new_header {
        let (added, gone) = unmatched(&unpaired_old, &unpaired_new);
        result.moved = unpaired_new.len() - added.len();
        (added, gone)
    } else {
        (offsets(&unpaired_new), offsets(&unpaired_old))
    };
    result.added = cells_at(new, new_delimiter, &added);
    result.gone = cells_at(old, old_delimiter, &gone);
    result
}

/// Of the rows that did not pair up, where those start that the other text has fewer
/// of: the new ones added, the old ones gone.
fn unmatched(unpaired_old: &[RowAt], unpaired_new: &[RowAt]) -> (Vec<u64>, Vec<u64>) {
    let mut counts: FastMap<[u64; 2], u32> = FastMap::default();
    for row in unpaired_old {
        *counts.entry(row.digest).or_default() += 1;
    }
    let mut added = Vec::new();
    for row in unpaired_new {
        match counts.get_mut(&row.digest) {
            Some(count) if *count > 0 => *count -= 1,
            _ => added.push(row.offset),
        }
    }
    let mut gone = Vec::new();
    for row in unpaired_old {
        if let Some(count) = counts.get_mut(&row.digest).filter(|c| **c > 0) {
            *count -= 1;
            gone.push(row.offset);
        }
    }
    (added, gone)
}

/// The rows of two lists of digests that do not pair up, walking them side by side.
fn walk_digests(old_rows: &[RowAt], new_rows: &[RowAt]) -> (Vec<RowAt>, Vec<RowAt>) {
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
        if let Some(added) = ahead(new_rows, j + 1, old_rows[i].digest) {
            unpaired_new.extend(new_rows[j..=j + added].iter().cloned());
            j += added + 1;
        } else if let Some(removed) = ahead(old_rows, i + 1, new_rows[j].digest) {
            unpaired_old.extend(old_rows[i..=i + removed].iter().cloned());
            i += removed + 1;
        } else {
            unpaired_old.push(old_rows[i].clone());
            unpaired_new.push(new_rows[j].clone());
            i += 1;
            j += 1;
        }
    }
    unpaired_old.extend(old_rows[i..].iter().cloned());
    unpaired_new.extend(new_rows[j..].iter().cloned());
    (unpaired_old, unpaired_new)
}

/// The lines of two texts (from `old_at` and `new_at`, after their headers) that do not
/// pair up. Runs of identical bytes are stepped over whole, so only the lines around a
/// change are looked at one by one, and only the lines left over get a digest.
fn walk_lines(
    old: &[u8],
    mut i: usize,
    new: &[u8],
    mut j: usize,
    delimiter: u8,
) -> (Vec<RowAt>, Vec<RowAt>) {
    let (mut unpaired_old, mut unpaired_new) = (Vec::new(), Vec::new());
    let row = |text: &[u8], at: usize| RowAt {
        digest: line_digest(line_at(text, at)),
        offset: at as u64,
    };
    loop {
        // Both texts are at the start of a line: step over what they have in common, up
        // to the start of the line where they part.
        let same = common_prefix(&old[i..], &new[j..]);
        let back = memchr::memrchr(b'\n', &old[i..i + same]).map_or(0, |at| at + 1);
        i += back;
        j += back;
        if i >= old.len() || j >= new.len() {
            break;
        }
        let (old_line, new_line) = (line_at(old, i), line_at(new, j));
        if is_blank_line(old_line, delimiter) {
            i = next_line(old, i);
            continue;
        }
        if is_blank_line(new_line, delimiter) {
            j = next_line(new, j);
            continue;
        }
        // The same line, the last of one text without its `\n`.
        if old_line == new_line {
            i = next_line(old, i);
            j = next_line(new, j);
            continue;
        }
        // A few lines on, does either text go on with the other's line? Then the lines
        // before it were added (or removed).
        let ahead = |text: &[u8], from: usize, wanted: &[u8]| {
            let mut at = from;
            for _ in 0..LOOK_AHEAD {
                if at >= text.len() {
                    return None;
                }
                if line_at(text, at) == wanted {
                    return Some(at);
                }
                at = next_line(text, at);
            }
            None
        };
        if let Some(found) = ahead(new, next_line(new, j), old_line) {
            unpaired_new.extend(line_rows(&new[..found], j, delimiter));
            j = next_line(new, found);
            i = next_line(old, i);
        } else if let Some(found) = ahead(old, next_line(old, i), new_line) {
            unpaired_old.extend(line_rows(&old[..found], i, delimiter));
            i = next_line(old, found);
            j = next_line(new, j);
        } else {
            unpaired_old.push(row(old, i));
            unpaired_new.push(row(new, j));
            i = next_line(old, i);
            j = next_line(new, j);
        }
    }
    unpaired_old.extend(line_rows(old, i.min(old.len()), delimiter));
    unpaired_new.extend(line_rows(new, j.min(new.len()), delimiter));
    (unpaired_old, unpaired_new)
}

/// How many bytes `a` and `b` start with in common.
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let n = a.len().min(b.len());
    let mut k = 0;
    while k + BLOCK <= n && a[k..k + BLOCK] == b[k..k + BLOCK] {
        k += BLOCK;
    }
    while k + 8 <= n {
        let word = |t: &[u8]| u64::from_le_bytes(t[k..k + 8].try_into().expect("8 bytes"));
        let differ = word(a) ^ word(b);
        if differ != 0 {
            return k + (differ.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// The line starting at `at`, without its `\n`.
fn line_at(text: &[u8], at: usize) -> &[u8] {
    let rest = &text[at..];
    &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())]
}

/// Where the line after the one starting at `at` starts (the text's length after the last).
pub(super) fn next_line(text: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |end| at + end + 1)
}

/// Cells are trimmed: a line of delimiters and spaces is blank (a cell of other white
/// space is a row to both texts alike, and a key of none).
fn is_blank_line(line: &[u8], delimiter: u8) -> bool {
    line.iter()
        .all(|&b| b == delimiter || b.is_ascii_whitespace())
}

/// The rows (lines that are not blank) of `text` from `at` on.
fn line_rows(text: &[u8], at: usize, delimiter: u8) -> impl Iterator<Item = RowAt> + '_ {
    let mut at = at;
    std::iter::from_fn(move || {
        while at < text.len() {
            let line = line_at(text, at);
            let offset = at;
            at = next_line(text, at);
            if !is_blank_line(line, delimiter) {
                return Some(RowAt {
                    digest: line_digest(line),
                    offset: offset as u64,
                });
            }
        }
        None
    })
}

fn line_digest(line: &[u8]) -> [u64; 2] {
    halves(xxh3_128_with_seed(line, LINE_SEED))
}

/// The header (the first line that is not blank) into `header`, and where the line
/// after it starts.
fn header_line(text: &[u8], delimiter: u8, header: &mut Vec<String>) -> usize {
    let mut at = 0;
    while at < text.len() {
        let line = line_at(text, at);
        at = next_line(text, at);
        if !is_blank_line(line, delimiter) {
            records(line, delimiter, header);
            break;
        }
    }
    at
}

/// How far the side-by-side walk looks for a row that was added or removed.
const LOOK_AHEAD: usize = 16;

/// A row's digest and where it starts; the digest in two halves keeps this at 24 bytes
/// (a `u128` would align it to 32), and nyc's Parent file has 1.8 million rows.
#[derive(Clone)]
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
    use std::collections::BTreeMap;

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
        // Dee moved to the top; the rest kept their order.
        assert_eq!(diff.moved, 1);
        // Rows edited, added and removed in place move nothing, by lines or by records.
        let old = b"ID\tName\n1\tAda\n2\tBo\n3\tCy\n4\tDee\n";
        let new = b"ID\tName\n0\tZoe\n1\tAda\n2\tBea\n4\tDee\n5\tEve\n";
        assert_eq!(super::diff(old, b'\t', new, b'\t').moved, 0);
        let quoted = b"ID\tName\n0\tZoe\n1\t\"Ada\"\n2\tBea\n4\tDee\n5\tEve\n";
        assert_eq!(super::diff(old, b'\t', quoted, b'\t').moved, 0);
        // Bo moved to the end (or Cy and Dee before it, as the walk sees it).
        let moved = b"ID\tName\n1\tAda\n3\tCy\n4\tDee\n2\tBo\n";
        assert_eq!(super::diff(old, b'\t', moved, b'\t').moved, 2);
    }

    #[test]
    fn a_new_header_makes_every_row_a_change() {
        let diff = diff(b"A\tB\n1\t2\n", b'\t', b"B\tA\n2\t1\n", b'\t');
        assert_eq!((diff.added.len(), diff.gone.len()), (1, 1));
        assert_eq!(diff.cells("A").collect::<Vec<_>>(), ["1", "1"]);
        assert!(diff.old_column("C").is_none());
    }

    #[test]
    fn a_header_that_changed_makes_every_row_a_change_even_when_the_rows_did_not() {
        let old = b"First\tLast\nAda\tLovelace\nBo\tDiddley\n";
        let new = b"Last\tFirst\nAda\tLovelace\nBo\tDiddley\n";
        let diff = diff(old, b'\t', new, b'\t');
        assert_eq!((diff.added.len(), diff.gone.len()), (2, 2));
        assert_eq!(diff.added_cells("Last").collect::<Vec<_>>(), ["Ada", "Bo"]);
        // Quoted, the same.
        let diff = super::diff(b"A\tB\n\"1\"\t2\n", b'\t', b"B\tA\n\"1\"\t2\n", b'\t');
        assert_eq!((diff.added.len(), diff.gone.len()), (1, 1));
    }

    /// The rows (lines that are not blank, after the header) of a text as a multiset.
    fn multiset(text: &[u8]) -> std::collections::BTreeMap<Vec<u8>, i64> {
        let mut rows = std::collections::BTreeMap::new();
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !is_blank_line(l, b'\t'));
        for line in lines.skip(1) {
            let cells: Vec<&[u8]> = line
                .split(|&b| b == b'\t')
                .map(|c| c.trim_ascii())
                .collect();
            *rows.entry(cells.join(&b'\t')).or_insert(0) += 1;
        }
        rows
    }

    #[test]
    fn the_side_by_side_walk_finds_exactly_the_rows_added_and_gone() {
        let mut random = crate::pickatime::Dice(0x5eed);
        for round in 0..300 {
            let rows = 1 + random.below(60);
            let mut old: Vec<Vec<u8>> = vec![b"ID\tName".to_vec()];
            for _ in 0..rows {
                // Few distinct values, so that rows repeat and runs of them look alike.
                old.push(format!("{}\tn{}", random.below(12), random.below(3)).into_bytes());
                if random.below(10) == 0 {
                    old.push(b" \t ".to_vec());
                }
            }
            let mut new = old.clone();
            for _ in 0..random.below(8) {
                let at = 1 + random.below(new.len());
                match random.below(4) {
                    0 => new.insert(
                        at.min(new.len()),
                        format!("{}\tx", random.below(99)).into_bytes(),
                    ),
                    1 if at < new.len() => drop(new.remove(at)),
                    2 if at < new.len() => new[at].push(b'!'),
                    _ if at + 1 < new.len() => new.swap(at, at + 1),
                    _ => {}
                }
            }
            let join = |lines: &[Vec<u8>], end: bool| {
                let mut text = lines.join(&b'\n');
                if end {
                    text.push(b'\n');
                }
                text
            };
            let (old, new) = (
                join(&old, random.below(5) > 0),
                join(&new, random.below(5) > 0),
            );
            let diff = diff(&old, b'\t', &new, b'\t');
            let (before, after) = (multiset(&old), multiset(&new));
            let mut added = BTreeMap::new();
            let mut gone = BTreeMap::new();
            for (row, &n) in &after {
                let more = n - before.get(row).copied().unwrap_or(0);
                if more > 0 {
                    added.insert(row.clone(), more);
                }
            }
            for (row, &n) in &before {
                let fewer = n - after.get(row).copied().unwrap_or(0);
                if fewer > 0 {
                    gone.insert(row.clone(), fewer);
                }
            }
            let counted = |rows: &[Vec<String>]| {
                let mut counts = BTreeMap::new();
                for row in rows {
                    *counts.entry(row.join("\t").into_bytes()).or_insert(0) += 1;
                }
                counts
            };
            assert_eq!(counted(&diff.added), added, "round {round}");
            assert_eq!(counted(&diff.gone), gone, "round {round}");
        }
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
