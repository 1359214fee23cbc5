//! A first import's identifiers, gathered and written to `contact_ids` a large chunk at a
//! time, in key order.
//!
//! `contact_ids` is keyed by (kind, value, source). A Clever district gives about ten
//! identifiers per person, most of them random (Clever's object ids), so written as they
//! come each lands on a random page of a B-tree several times the page cache: at nyc, 30 s
//! of the 75 s the Clever import took to apply its records. Sorted, a chunk walks the
//! tree's pages in order, each read once and given several rows: the import's system
//! time halves. Only a first import does this: nothing looks identifiers up while it
//! runs (see `bulk.rs`), and the conflicts they may bring are found when they are
//! written, which is then at the end of a chunk instead of at their person.

/// Rows gathered before they are written: 12 MiB of rows and about as much text.
const CHUNK_ROWS: usize = 1 << 19;

/// Kinds of identifier in one chunk. A source has a handful; a bound keeps the lookup of a
/// kind short whatever a plugin sends.
const CHUNK_KINDS: usize = 1 << 10;

/// Identifiers waiting to be written, their texts back to back in one buffer.
#[derive(Default)]
pub struct PendingIds {
    kinds: Vec<String>,
    values: String,
    rows: Vec<Row>,
}

#[derive(Clone, Copy)]
struct Row {
    contact_id: i64,
    kind: u32,
    start: u32,
    len: u32,
}

impl PendingIds {
    pub fn push(&mut self, contact_id: i64, kind: &str, value: &str) {
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

    /// Time to write them: the chunk is full.
    pub fn is_full(&self) -> bool {
        self.rows.len() >= CHUNK_ROWS
            || self.kinds.len() >= CHUNK_KINDS
            || self.values.len() >= u32::MAX as usize / 2
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Put the rows in key order; rows with the same key stay in the order they came,
    /// so the first to give an identifier is written first.
    pub fn sort(&mut self) {
        let (kinds, values) = (&self.kinds, &self.values);
        let key = |row: &Row| {
            let value = &values[row.start as usize..(row.start + row.len) as usize];
            (kinds[row.kind as usize].as_bytes(), value.as_bytes())
        };
        // Stable, and in byte order, as SQLite's BINARY collation.
        self.rows.sort_by(|a, b| key(a).cmp(&key(b)));
    }

    /// (contact id, kind, value) of each row, in their order.
    pub fn rows(&self) -> impl Iterator<Item = (i64, &str, &str)> {
        self.rows.iter().map(|row| {
            let value = &self.values[row.start as usize..(row.start + row.len) as usize];
            (
                row.contact_id,
                self.kinds[row.kind as usize].as_str(),
                value,
            )
        })
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.values.clear();
        self.kinds.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_out_in_key_order_and_the_first_of_a_key_first() {
        let mut pending = PendingIds::default();
        pending.push(1, "sis_id", "20");
        pending.push(1, "clever_id", "ff");
        pending.push(2, "sis_id", "100");
        pending.push(3, "sis_id", "20");
        pending.push(2, "clever_id", "0a");
        assert!(!pending.is_full());
        pending.sort();
        let rows: Vec<(i64, &str, &str)> = pending.rows().collect();
        assert_eq!(
            rows,
            [
                (2, "clever_id", "0a"),
                (1, "clever_id", "ff"),
                (2, "sis_id", "100"),
                (1, "sis_id", "20"),
                (3, "sis_id", "20"),
            ]
        );
        pending.clear();
        assert!(pending.is_empty());
    }

    #[test]
    fn a_chunk_is_full_at_its_row_or_kind_bound_and_empty_after_clear() {
        let mut pending = PendingIds::default();
        for kind in 0..CHUNK_KINDS - 1 {
            pending.push(1, &format!("kind{kind}"), "v");
        }
        assert!(!pending.is_full());
        pending.push(1, "one more", "v");
        assert!(pending.is_full());
        pending.clear();
        assert!(!pending.is_full());
        for row in 0..CHUNK_ROWS {
            pending.push(row as i64, "sis_id", "v");
        }
        assert!(pending.is_full());
    }
}
