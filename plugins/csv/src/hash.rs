//! Compact indexes for the readers. Their keys are ids from the school's own files,
//! hashed millions of times: foldhash instead of SipHash, which cost a tenth of the
//! reading time.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

pub type FastBuild = foldhash::fast::RandomState;
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;
pub type FastSet<K> = HashSet<K, FastBuild>;

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
        if let Some(number) = self.get(id) {
            return (number, false);
        }
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let number = self.len();
        self.text.push_str(id);
        self.ends
            .push(u32::try_from(self.text.len()).expect("less than 4 GiB of ids"));
        self.place(u32::try_from(number).expect("fewer than 4 billion ids"));
        (number, true)
    }

    fn place(&mut self, number: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = self.hasher.hash_one(self.name(number as usize)) as usize & mask;
        while self.slots[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = number;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        self.slots = vec![EMPTY; size];
        for number in 0..self.len() {
            self.place(number as u32);
        }
    }
}

/// A set of pairs of dense numbers `(a, b)`, kept as one list of `b`s per `a`: 8 bytes
/// a pair (a hash set of `u64`s takes 9 to 18, and twice that while it grows). An `a`
/// with many pairs has those past the first [`PairSet::LISTED`] in a hash set, so no
/// insertion walks more than that many.
#[derive(Default)]
pub struct PairSet {
    /// The first node of each `a`'s list; `EMPTY` for none.
    heads: Vec<u32>,
    /// `(b, next node)`, newest first.
    nodes: Vec<(u32, u32)>,
    /// The length of each `a`'s list.
    listed: Vec<u8>,
    more: FastSet<u64>,
}

impl PairSet {
    const LISTED: u8 = 32;

    /// Adds `(a, b)`; `false` when it was there already.
    pub fn insert(&mut self, a: u32, b: u32) -> bool {
        let key = a as usize;
        if key >= self.heads.len() {
            let len = (key + 1).max(self.heads.len() * 2);
            self.heads.resize(len, EMPTY);
            self.listed.resize(len, 0);
        }
        let mut node = self.heads[key];
        while node != EMPTY {
            let (value, next) = self.nodes[node as usize];
            if value == b {
                return false;
            }
            node = next;
        }
        if self.listed[key] == Self::LISTED {
            return self.more.insert((u64::from(a) << 32) | u64::from(b));
        }
        let number = u32::try_from(self.nodes.len()).expect("fewer than 4 billion pairs");
        self.nodes.push((b, self.heads[key]));
        self.heads[key] = number;
        self.listed[key] += 1;
        true
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
    }

    #[test]
    fn a_pair_set_is_a_set() {
        let mut set = PairSet::default();
        let mut reference = std::collections::HashSet::new();
        // Few pairs for most, hundreds for some: both the lists and the overflow.
        for i in 0..20_000u32 {
            let a = (i * 7919) % 101;
            let b = (i * 104_729) % if a % 10 == 0 { 500 } else { 5 };
            assert_eq!(set.insert(a, b), reference.insert((a, b)), "({a}, {b})");
        }
        assert!(!set.more.is_empty());
    }
}
