//! A first import's identifiers, gathered while the run goes on and written to
//! `contact_ids` at its end, all of them in key order.
//!
//! `contact_ids` is keyed by (kind, value, source). A Clever district gives about four
//! identifiers per person, most of them random (Clever's object ids), so written as they
//! come each lands on a random page of a B-tree several times the page cache. Written in
//! sorted chunks, each chunk still reached every page of the tree grown so far: at nyc the
//! 22 chunks of 11.4 million identifiers rewrote the tree 22 times, 12 of the Clever
//! import's 63 s. So a full chunk is sorted and set aside in a temporary file (a run), and
//! at the end the runs are merged: the tree is written once, appending, the way a sorted
//! `INSERT … SELECT` builds it.
//!
//! Only a first import does this: nothing looks identifiers up while it runs (see
//! `bulk.rs`), and the conflicts they may bring are found when they are written, at the
//! end of the run instead of at their person. Equal keys come out in the order they were
//! pushed, so the first to give an identifier keeps it, as when each is written with its
//! person.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Rows gathered before they are set aside: 12 MiB of rows and about as much text.
/// Tests spill after a few rows, so every first import in them goes through the merge.
const CHUNK_ROWS: usize = if cfg!(test) { 5 } else { 1 << 19 };

/// Kinds of identifier in one chunk. A source has a handful; a bound keeps the lookup of a
/// kind short whatever a plugin sends.
const CHUNK_KINDS: usize = 1 << 10;

/// Buffered bytes per run, writing and reading: at nyc, 22 runs of about 15 MB each.
const RUN_BUFFER: usize = 256 << 10;

/// Rows merged per batch handed to the writing, and batches merged ahead of it. Tests
/// merge a few rows at a time, so a drain in them hands over many batches, each of more
/// than one group.
const BATCH_ROWS: usize = if cfg!(test) { 7 } else { 4096 };
const BATCHES_AHEAD: usize = 4;

/// Identifiers waiting to be written: the chunk being gathered, and the runs set aside.
#[derive(Default)]
pub struct PendingIds {
    chunk: Chunk,
    runs: Vec<Run>,
}

/// Rows in memory, their texts back to back in one buffer.
#[derive(Default)]
struct Chunk {
    kinds: Vec<String>,
    values: String,
    rows: Vec<Row>,
}

#[derive(Clone, Copy, Default)]
struct Row {
    contact_id: i64,
    kind: u32,
    start: u32,
    len: u32,
}

/// A sorted chunk in a temporary file (deleted when closed): per row, the contact id, the
/// kind's index in `kinds`, the value's length and the value.
struct Run {
    file: File,
    kinds: Vec<String>,
    rows: u64,
}

impl PendingIds {
    pub fn push(&mut self, contact_id: i64, kind: &str, value: &str) {
        self.chunk.push(contact_id, kind, value);
    }

    /// Time to set the chunk aside ([`PendingIds::spill`]).
    pub fn is_full(&self) -> bool {
        let chunk = &self.chunk;
        chunk.rows.len() >= CHUNK_ROWS
            || chunk.kinds.len() >= CHUNK_KINDS
            || chunk.values.len() >= u32::MAX as usize / 2
    }

    /// Sort the chunk and move it to a temporary file.
    pub fn spill(&mut self) -> io::Result<()> {
        if self.chunk.rows.is_empty() {
            return Ok(());
        }
        self.chunk.sort();
        let mut out = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile()?);
        for (contact_id, kind, value) in self.chunk.encoded() {
            out.write_all(&contact_id.to_le_bytes())?;
            out.write_all(&kind.to_le_bytes())?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(value.as_bytes())?;
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(Run {
            file,
            kinds: std::mem::take(&mut self.chunk.kinds),
            rows: self.chunk.rows.len() as u64,
        });
        self.chunk.clear();
        Ok(())
    }

    /// Hand every row to `write`, `group` rows at a time (the last group may be shorter),
    /// in key order, and forget them. `write` sees (contact id, kind, value).
    pub fn drain_sorted<E: From<io::Error>>(
        &mut self,
        group: usize,
        mut write: impl FnMut(&[(i64, &str, &str)]) -> Result<(), E>,
    ) -> Result<(), E> {
        assert!(group > 0, "a group has rows");
        if self.runs.is_empty() {
            // Everything fits in one chunk: no file.
            self.chunk.sort();
            let result = {
                let mut sorted = self.chunk.rows();
                let mut rows = Vec::with_capacity(group);
                loop {
                    rows.clear();
                    rows.extend(sorted.by_ref().take(group));
                    if rows.is_empty() {
                        break Ok(());
                    }
                    if let Err(error) = write(&rows) {
                        break Err(error);
                    }
                }
            };
            self.chunk.clear();
            return result;
        }
        self.spill()?;
        let mut merge = Merge::new(std::mem::take(&mut self.runs))?;
        let kinds = std::mem::take(&mut merge.kinds);
        // The runs are merged on a thread of their own, a batch ahead of the writing: the
        // heap, the reads and the copies were a sixth of the 5 s a Clever import at nyc
        // spends writing its 11.4 million identifiers, with the other core idle.
        let (merged_tx, merged_rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Batch>();
        // Whole groups in every batch, so that only the last group is short.
        let batch_rows = group * (BATCH_ROWS / group).max(1);
        std::thread::scope(|scope| {
            let merging = std::thread::Builder::new()
                .name("identifier merge".into())
                .spawn_scoped(scope, move || -> io::Result<()> {
                    loop {
                        let mut batch = spent_rx.try_recv().unwrap_or_default();
                        batch.fill(&mut merge, batch_rows)?;
                        // Empty: the runs are done. A send that fails: the writing stopped.
                        if batch.rows.is_empty() || merged_tx.send(batch).is_err() {
                            return Ok(());
                        }
                    }
                })?;
            let mut written = Ok(());
            for batch in merged_rx.iter() {
                if let Err(error) = batch.write(&kinds, group, &mut write) {
                    written = Err(error);
                    break;
                }
                // Its buffers go back for another batch; gone if the merging is done.
                let _ = spent_tx.send(batch);
            }
            // So that a merge waiting to hand over its next batch sees the writing stopped.
            drop(merged_rx);
            let merged = merging
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            written?;
            merged.map_err(E::from)
        })
    }
}

/// Rows merged ahead of the writing (about [`BATCH_ROWS`]), their values back to back.
#[derive(Default)]
struct Batch {
    /// (contact id, kind's index in `Merge::kinds`, value's start and length in `texts`)
    rows: Vec<(i64, u32, usize, usize)>,
    texts: String,
}

impl Batch {
    /// The next `rows` rows of `merge` (fewer at its end, none after it), in place of
    /// this batch's.
    fn fill(&mut self, merge: &mut Merge, rows: usize) -> io::Result<()> {
        self.rows.clear();
        self.texts.clear();
        while self.rows.len() < rows {
            let Some((contact_id, kind, value)) = merge.next()? else {
                break;
            };
            self.rows
                .push((contact_id, kind, self.texts.len(), value.len()));
            self.texts.push_str(value);
        }
        Ok(())
    }

    /// Hand the batch's rows to `write`, `group` at a time.
    fn write<E>(
        &self,
        kinds: &[String],
        group: usize,
        write: &mut impl FnMut(&[(i64, &str, &str)]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rows = Vec::with_capacity(group);
        for picked in self.rows.chunks(group) {
            rows.clear();
            rows.extend(picked.iter().map(|&(contact_id, kind, start, len)| {
                (
                    contact_id,
                    kinds[kind as usize].as_str(),
                    &self.texts[start..start + len],
                )
            }));
            write(&rows)?;
        }
        Ok(())
    }
}

impl Chunk {
    fn push(&mut self, contact_id: i64, kind: &str, value: &str) {
        let kind = match self.kinds.iter().position(|k| k == kind) {
            Some(index) => index,
            None => {
                self.kinds.push(kind.to_string());
                self.kinds.len() - 1
            }
        };
        self.rows.push(Row {
            contact_id,
            // At most CHUNK_KINDS plus one person's identifiers.
            kind: u32::try_from(kind).expect("fewer than 2^32 kinds in a chunk"),
            start: u32::try_from(self.values.len()).expect("a chunk's values fit in 4 GiB"),
            len: u32::try_from(value.len()).expect("an identifier under 4 GiB"),
        });
        self.values.push_str(value);
    }

    /// Put the rows in key order; rows with the same key stay in the order they came.
    ///
    /// A chunk has a handful of kinds: its rows are first placed kind by kind (a counting
    /// sort, stable), then each kind's rows sorted by value alone. Comparing the kinds'
    /// texts in every comparison made the sort three times slower: 190 ms a chunk instead
    /// of 70, about 4 s of nyc Clever's 22 chunks on the thread that writes.
    fn sort(&mut self) {
        let kinds = &self.kinds;
        let mut by_text: Vec<usize> = (0..kinds.len()).collect();
        by_text.sort_by(|&a, &b| kinds[a].cmp(&kinds[b]));
        let mut rank = vec![0; kinds.len()];
        for (position, &kind) in by_text.iter().enumerate() {
            rank[kind] = position;
        }
        // Where each kind's rows begin, in rank order; the last entry is the end.
        let mut bounds = vec![0; kinds.len() + 1];
        for row in &self.rows {
            bounds[rank[row.kind as usize] + 1] += 1;
        }
        for i in 1..bounds.len() {
            bounds[i] += bounds[i - 1];
        }
        let mut next = bounds.clone();
        let mut placed = vec![Row::default(); self.rows.len()];
        for row in &self.rows {
            let slot = &mut next[rank[row.kind as usize]];
            placed[*slot] = *row;
            *slot += 1;
        }
        let values = self.values.as_bytes();
        let value = |row: &Row| &values[row.start as usize..(row.start + row.len) as usize];
        for range in bounds.windows(2) {
            // Stable, and in byte order, as SQLite's BINARY collation.
            placed[range[0]..range[1]].sort_by(|a, b| value(a).cmp(value(b)));
        }
        self.rows = placed;
    }

    /// (contact id, kind's index, value) of each row, in their order.
    fn encoded(&self) -> impl Iterator<Item = (i64, u32, &str)> {
        self.rows.iter().map(|row| {
            let value = &self.values[row.start as usize..(row.start + row.len) as usize];
            (row.contact_id, row.kind, value)
        })
    }

    /// (contact id, kind, value) of each row, in their order.
    fn rows(&self) -> impl Iterator<Item = (i64, &str, &str)> {
        self.encoded().map(|(contact_id, kind, value)| {
            (contact_id, self.kinds[kind as usize].as_str(), value)
        })
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.values.clear();
        self.kinds.clear();
    }
}

/// The runs' rows in key order: a heap of each run's next row.
struct Merge {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Head>,
    /// Every run's kinds, sorted: a row's kind is its index here, so comparing indexes
    /// compares kinds.
    kinds: Vec<String>,
    /// The row last taken, until the next call.
    taken: String,
}

struct RunReader {
    input: BufReader<File>,
    /// Index in `Merge::kinds` of each of the run's own kinds.
    kinds: Vec<u32>,
    left: u64,
}

/// One run's next row. Ordered so the heap's top is the least key, and of equal keys the
/// earliest run's: rows keep the order they were pushed in.
struct Head {
    kind: u32,
    value: String,
    run: usize,
    contact_id: i64,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.kind, self.value.as_bytes(), self.run)
            .cmp(&(other.kind, other.value.as_bytes(), other.run))
            .reverse()
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl Merge {
    fn new(runs: Vec<Run>) -> io::Result<Merge> {
        let mut kinds: Vec<String> = runs.iter().flat_map(|r| r.kinds.iter().cloned()).collect();
        kinds.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        kinds.dedup();
        let mut readers = Vec::with_capacity(runs.len());
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (index, run) in runs.into_iter().enumerate() {
            let mut reader = RunReader {
                input: BufReader::with_capacity(RUN_BUFFER, run.file),
                kinds: run
                    .kinds
                    .iter()
                    .map(|k| kinds.binary_search(k).expect("every run's kind is listed") as u32)
                    .collect(),
                left: run.rows,
            };
            let mut head = Head {
                kind: 0,
                value: String::new(),
                run: index,
                contact_id: 0,
            };
            if reader.read_into(&mut head)? {
                heap.push(head);
            }
            readers.push(reader);
        }
        Ok(Merge {
            readers,
            heap,
            kinds,
            taken: String::new(),
        })
    }

    /// The next row in key order: (contact id, kind's index in `kinds`, value).
    fn next(&mut self) -> io::Result<Option<(i64, u32, &str)>> {
        let Some(mut head) = self.heap.peek_mut() else {
            return Ok(None);
        };
        let (contact_id, kind) = (head.contact_id, head.kind);
        // The head's text buffer goes on with its run; the row's text stays here.
        std::mem::swap(&mut self.taken, &mut head.value);
        if !self.readers[head.run].read_into(&mut head)? {
            PeekMut::pop(head);
        }
        Ok(Some((contact_id, kind, &self.taken)))
    }
}

impl RunReader {
    /// Read the run's next row into `head`; false at the run's end.
    fn read_into(&mut self, head: &mut Head) -> io::Result<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        let mut fixed = [0u8; 16];
        self.input.read_exact(&mut fixed)?;
        let contact_id = i64::from_le_bytes(fixed[..8].try_into().expect("8 bytes"));
        let kind = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(fixed[12..].try_into().expect("4 bytes"));
        let mut bytes = std::mem::take(&mut head.value).into_bytes();
        bytes.clear();
        bytes.resize(len as usize, 0);
        self.input.read_exact(&mut bytes)?;
        head.value =
            String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        head.kind = *self.kinds.get(kind as usize).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "an identifier kind out of range",
            )
        })?;
        head.contact_id = contact_id;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row `drain_sorted` hands over, in groups of `group`.
    fn drained(pending: &mut PendingIds, group: usize) -> Vec<Vec<(i64, String, String)>> {
        let mut groups = Vec::new();
        pending
            .drain_sorted::<io::Error>(group, |rows| {
                groups.push(
                    rows.iter()
                        .map(|&(c, k, v)| (c, k.to_string(), v.to_string()))
                        .collect(),
                );
                Ok(())
            })
            .unwrap();
        groups
    }

    fn owned(rows: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
        rows.iter()
            .map(|&(c, k, v)| (c, k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_come_out_in_key_order_and_the_first_of_a_key_first() {
        let mut pending = PendingIds::default();
        pending.push(1, "sis_id", "20");
        pending.push(1, "clever_id", "ff");
        pending.push(2, "sis_id", "100");
        pending.push(3, "sis_id", "20");
        assert!(!pending.is_full());
        pending.push(2, "clever_id", "0a");
        let groups = drained(&mut pending, 2);
        assert_eq!(
            groups,
            [
                owned(&[(2, "clever_id", "0a"), (1, "clever_id", "ff")]),
                owned(&[(2, "sis_id", "100"), (1, "sis_id", "20")]),
                owned(&[(3, "sis_id", "20")]),
            ]
        );
        assert!(drained(&mut pending, 2).is_empty(), "drained means gone");
    }

    #[test]
    fn runs_set_aside_merge_in_key_order_and_the_first_of_a_key_first() {
        let mut pending = PendingIds::default();
        let mut expected = Vec::new();
        // Runs of different kinds, values that are prefixes of each other, multi-byte
        // text (byte order, as SQLite's), and keys repeated within and across runs.
        let kinds = ["sis_id", "clever_id", "state_id", "Zed", "émail"];
        let mut contact = 0;
        for round in 0..7 {
            for (k, kind) in kinds.iter().enumerate().skip(round % 3) {
                contact += 1;
                let value = match (round + k) % 4 {
                    0 => format!("{}", round % 2),
                    1 => format!("{}{}", round % 2, "0".repeat(k)),
                    2 => format!("ü{}", k),
                    _ => format!("v{round}"),
                };
                pending.push(contact, kind, &value);
                expected.push((contact, kind.to_string(), value));
                if pending.is_full() {
                    pending.spill().unwrap();
                }
            }
        }
        assert!(pending.runs.len() >= 3, "the test spans several runs");
        // Stable by key alone: pushes of one key stay in push order.
        expected.sort_by(|a, b| {
            (a.1.as_bytes(), a.2.as_bytes()).cmp(&(b.1.as_bytes(), b.2.as_bytes()))
        });
        let groups = drained(&mut pending, 3);
        assert!(groups[..groups.len() - 1].iter().all(|g| g.len() == 3));
        let rows: Vec<_> = groups.into_iter().flatten().collect();
        assert_eq!(rows, expected);
        assert!(pending.runs.is_empty() && pending.chunk.rows.is_empty());
        assert!(drained(&mut pending, 3).is_empty());
    }

    /// A release build sorts chunks of half a million rows; tests spill at five, where a
    /// sort is stable whatever its kind. So one large chunk, sorted directly: many rows
    /// per key, the kinds pushed out of order.
    #[test]
    fn a_large_chunk_sorts_by_kind_then_value_keeping_the_order_of_equal_keys() {
        let mut pending = PendingIds::default();
        let kinds = ["sis_id", "clever_id", "state_id", "Zed", "émail", "a"];
        let mut expected = Vec::new();
        for contact in 0..5_000i64 {
            let kind = kinds[(contact * 7 % 6) as usize];
            let value = format!("{}", contact * 13 % 37);
            pending.chunk.push(contact, kind, &value);
            expected.push((contact, kind.to_string(), value));
        }
        pending.chunk.sort();
        expected.sort_by(|a, b| {
            (a.1.as_bytes(), a.2.as_bytes()).cmp(&(b.1.as_bytes(), b.2.as_bytes()))
        });
        let sorted: Vec<_> = pending
            .chunk
            .rows()
            .map(|(c, k, v)| (c, k.to_string(), v.to_string()))
            .collect();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn a_chunk_is_full_at_its_row_or_kind_bound_and_empty_after_a_spill() {
        let mut pending = PendingIds::default();
        for kind in 0..CHUNK_KINDS - 1 {
            pending.chunk.kinds.push(format!("kind{kind}"));
        }
        pending.push(1, "kind0", "v");
        assert!(!pending.is_full());
        pending.push(1, "one more", "v");
        assert!(pending.is_full());
        pending.spill().unwrap();
        assert!(!pending.is_full());
        for row in 0..CHUNK_ROWS {
            pending.push(row as i64, "sis_id", "v");
        }
        assert!(pending.is_full());
    }

    /// Three chunks' worth of rows, each contact's id its number, set aside in runs.
    fn three_runs() -> PendingIds {
        let mut pending = PendingIds::default();
        for contact in 0..3 * CHUNK_ROWS as i64 {
            pending.push(contact, "sis_id", &contact.to_string());
            if pending.is_full() {
                pending.spill().unwrap();
            }
        }
        pending
    }

    #[test]
    fn a_run_that_cannot_be_read_to_its_end_fails_the_drain() {
        let mut pending = three_runs();
        // The last run loses the end of its last row: its first rows merge, then the
        // merging thread meets the cut.
        let run = pending.runs.last().unwrap();
        let length = run.file.metadata().unwrap().len();
        run.file.set_len(length - 1).unwrap();
        let mut written = 0;
        let result = pending.drain_sorted::<io::Error>(2, |rows| {
            written += rows.len();
            Ok(())
        });
        assert_eq!(
            result.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof,
            "after {written} rows"
        );
        assert!(written < 3 * CHUNK_ROWS);
    }

    #[test]
    fn an_error_from_the_writer_stops_the_drain() {
        let mut pending = three_runs();
        let mut calls = 0;
        let result = pending.drain_sorted(2, |_| {
            calls += 1;
            Err(io::Error::other("refused"))
        });
        assert_eq!(result.unwrap_err().to_string(), "refused");
        assert_eq!(calls, 1);
    }
}
