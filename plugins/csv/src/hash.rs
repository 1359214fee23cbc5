//! Compact indexes for the readers. Their keys are ids from the school's own files,
//! hashed millions of times: foldhash instead of SipHash, which cost a tenth of the
//! reading time.

use std::collections::HashMap;
use std::hash::BuildHasher;

pub type FastBuild = foldhash::fast::RandomState;
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;

/// A set of ids numbered densely in the order they were first added. The ids are kept
/// once, one after another in one buffer, and found again through an open-addressing
/// table of their numbers: about 4 bytes per id besides its text, where a
/// `HashMap<String, _>` spends some 60.
#[derive(Default)]
pub struct IdTable {
    text: String,
    /// Where each id ends in `text`; it starts where the one before ends.
    ends: Vec<u32>,
    /// Id numbers; `EMPTY` where none. A power of two long, at most half full.
    slots: Vec<u32>,
    hasher: FastBuild,
}

const EMPTY: u32 = u32::MAX;

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

    /// The number of `id`, if it was added.
    pub fn get(&self, id: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.hasher.hash_one(id) as usize & mask;
        loop {
            match self.slots[slot] {
                EMPTY => return None,
                number if self.name(number as usize) == id => return Some(number as usize),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// The number of `id`, adding it when it is new; `true` when it was.
    pub fn insert(&mut self, id: &str) -> (usize, bool) {
        // Room first, so that the slot the search ends on is the one the id goes in.
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow((self.len() + 1) * 2);
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.hasher.hash_one(id) as usize & mask;
        loop {
            match self.slots[slot] {
                EMPTY => break,
                number if self.name(number as usize) == id => return (number as usize, false),
                _ => slot = (slot + 1) & mask,
            }
        }
        let number = self.len();
        self.text.push_str(id);
        self.ends
            .push(u32::try_from(self.text.len()).expect("less than 4 GiB of ids"));
        self.slots[slot] = u32::try_from(number).expect("fewer than 4 billion ids");
        (number, true)
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
        let mut slot = self.hasher.hash_one(self.name(number as usize)) as usize & mask;
        while self.slots[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = number;
    }

    /// At least `slots` slots (a power of two), every id placed again.
    fn grow(&mut self, slots: usize) {
        let size = slots.next_power_of_two().max(self.slots.len() * 2).max(16);
        self.slots = vec![EMPTY; size];
        for number in 0..self.len() {
            self.place(number as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_table_numbers_ids_in_order_and_finds_them_again() {
        let mut table = IdTable::default();
        assert_eq!(table.get("a"), None);
        for i in 0..1000 {
            assert_eq!(table.insert(&format!("id{i}")), (i, true));
        }
        assert_eq!(table.insert("id7"), (7, false));
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
}
