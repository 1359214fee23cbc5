//! Compact indexes for the readers. Their keys are ids from the school's own files,
//! hashed millions of times: foldhash instead of SipHash, which cost a tenth of the
//! reading time.

use std::collections::HashMap;
use std::hash::BuildHasher;

pub type FastBuild = foldhash::fast::RandomState;
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;

/// A set of ids numbered densely in the order they were first added. The ids are kept
/// once, one after another in one buffer, and found again through an open-addressing
/// table of their numbers and tags: 14 to 24 bytes per id besides its text, where a
/// `HashMap<String, _>` spends some 60.
#[derive(Default)]
pub struct IdTable {
    text: String,
    /// Where each id ends in `text`; it starts where the one before ends.
    ends: Vec<u32>,
    /// Id numbers, a power of two long, at most half full; valid where `tags` is not 0.
    slots: Vec<u32>,
    /// Seven bits of each slot's hash with the high bit set, or 0 where the slot is
    /// empty. A probe compares an id's text only where its tag matches (one time in
    /// 128 for another id): without tags, each occupied slot on the way cost two
    /// cache misses (its end, its text), most of the time of indexing a million
    /// ParentIDs.
    tags: Vec<u8>,
    hasher: FastBuild,
}

fn tag_of(hash: u64) -> u8 {
    (hash >> 57) as u8 | 0x80
}

impl IdTable {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The id numbered `number`.
    pub fn name(&self, number: usize) -> &str {
        let start = if number == 0 {
            0
        } else {
            self.ends[number - 1] as usize
        };
        &self.text[start..self.ends[number] as usize]
    }

    /// The number of `id`, if it is in the table.
    pub fn get(&self, id: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(id, self.hasher.hash_one(id)).ok()
    }

    /// The number of `id`, and whether it was added just now (numbered `len()`).
    #[cfg(test)]
    pub fn insert(&mut self, id: &str) -> (usize, bool) {
        self.insert_hashed(id, self.hash(id))
    }

    /// The hash of `id` that [`IdTable::prefetch`] and [`IdTable::insert_hashed`] take.
    pub fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Starts loading the slot an id of `hash` is looked for first, for an insert a few
    /// ids later. In a table of millions each id's slot is a cache miss, most of the
    /// time of indexing a large file; asked for ahead, the misses overlap.
    pub fn prefetch(&self, hash: u64) {
        if let Some(mask) = self.slots.len().checked_sub(1) {
            let slot = hash as usize & mask;
            prefetch(&self.tags[slot]);
            prefetch(&self.slots[slot]);
        }
    }

    /// [`IdTable::insert`], with `hash` from [`IdTable::hash`].
    pub fn insert_hashed(&mut self, id: &str, hash: u64) -> (usize, bool) {
        // Room first, so that the slot the search ends on is the one the id goes in.
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow((self.len() + 1) * 2);
        }
        let slot = match self.find(id, hash) {
            Ok(number) => return (number, false),
            Err(slot) => slot,
        };
        let number = self.len();
        self.text.push_str(id);
        self.ends
            .push(u32::try_from(self.text.len()).expect("less than 4 GiB of ids"));
        self.slots[slot] = u32::try_from(number).expect("fewer than 4 billion ids");
        self.tags[slot] = tag_of(hash);
        (number, true)
    }

    /// `Ok(number)` where `id` is, or `Err(slot)`: the empty slot it would go in.
    fn find(&self, id: &str, hash: u64) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let tag = tag_of(hash);
        let mut slot = hash as usize & mask;
        loop {
            match self.tags[slot] {
                0 => return Err(slot),
                t if t == tag && self.name(self.slots[slot] as usize) == id => {
                    return Ok(self.slots[slot] as usize)
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Room for `more` ids besides those it has, without growing on the way: a table
    /// grown a million ids at a time places every id again each time.
    pub fn reserve(&mut self, more: usize) {
        self.ends.reserve(more);
        let wanted = (self.len() + more) * 2;
        if wanted > self.slots.len() {
            self.grow(wanted);
        }
    }

    fn place(&mut self, number: u32) {
        let mask = self.slots.len() - 1;
        let hash = self.hasher.hash_one(self.name(number as usize));
        let mut slot = hash as usize & mask;
        while self.tags[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = number;
        self.tags[slot] = tag_of(hash);
    }

    /// At least `slots` slots (a power of two), every id placed again.
    fn grow(&mut self, slots: usize) {
        let size = slots.next_power_of_two().max(self.slots.len() * 2).max(16);
        self.slots = vec![0; size];
        self.tags = vec![0; size];
        for number in 0..self.len() {
            self.place(number as u32);
        }
    }
}

/// A hint to the CPU, never a read: any address is fine, and nothing changes.
#[inline]
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE, which `_mm_prefetch` needs, is part of every x86_64 CPU; and a
        // prefetch reads no memory, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_table_numbers_ids_in_order_and_finds_them_again() {
        let mut table = IdTable::default();
        assert_eq!(table.get("a"), None);
        table.prefetch(table.hash("a")); // no slots yet: nothing to ask for
        for i in 0..1000 {
            assert_eq!(table.insert(&format!("id{i}")), (i, true));
        }
        assert_eq!(table.insert("id7"), (7, false));
        let hash = table.hash("id7");
        table.prefetch(hash);
        assert_eq!(table.insert_hashed("id7", hash), (7, false));
        assert_eq!(table.insert(""), (1000, true));
        for i in 0..1000 {
            assert_eq!(table.get(&format!("id{i}")), Some(i));
            assert_eq!(table.name(i), format!("id{i}"));
        }
        assert_eq!(table.get(""), Some(1000));
        assert_eq!(table.get("id1000"), None);
        assert_eq!(table.len(), 1001);
        table.reserve(5000);
        assert_eq!(table.get("id999"), Some(999));
        assert_eq!(table.insert("id1000"), (1001, true));
    }

    #[test]
    fn ids_whose_tags_match_are_told_apart_by_their_text() {
        // 100,000 ids share 128 tags: hundreds of probes meet a slot whose tag matches
        // but whose id does not (a table that trusted the tag would answer with that
        // id), and the table grows from empty on the way.
        let mut table = IdTable::default();
        for i in 0..100_000 {
            assert_eq!(table.insert(&format!("P{i:07}")), (i, true));
        }
        for i in 0..100_000 {
            assert_eq!(table.get(&format!("P{i:07}")), Some(i));
            assert_eq!(table.insert(&format!("P{i:07}")), (i, false));
        }
        assert_eq!(table.get("P0100000"), None);
        assert_eq!(table.get("P000000"), None);
    }
}
