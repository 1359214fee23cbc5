//! The run's maps key ids and emails by a hash of the text instead of the text: 16 bytes
//! with no allocation behind them, for millions of entries at district scale.

/// A 128-bit hash of an id or email. Two different values of a district share one with
/// odds below 1 in 10^25.
pub type Digest = [u64; 2];

pub fn digest(text: &str) -> Digest {
    let hash = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
    [hash as u64, (hash >> 64) as u64]
}

const PARTS: usize = 16;

/// A map keyed by digests, in 16 parts by a digest's top bits, each growing on its own. A
/// hash map that doubles holds its old and new tables at once; for a district's millions
/// of people and emails that moment was the import's peak memory, and now it is a
/// sixteenth of it.
pub struct DigestMap<V> {
    parts: [foldhash::HashMap<Digest, V>; PARTS],
}

impl<V> Default for DigestMap<V> {
    fn default() -> Self {
        DigestMap {
            parts: std::array::from_fn(|_| foldhash::HashMap::default()),
        }
    }
}

fn part(key: &Digest) -> usize {
    (key[1] >> 60) as usize
}

impl<V> DigestMap<V> {
    /// Room for about `capacity` entries (a part that gets more than its share grows).
    pub fn with_capacity(capacity: usize) -> Self {
        let each = capacity / PARTS + capacity / PARTS / 8;
        DigestMap {
            parts: std::array::from_fn(|_| {
                foldhash::HashMap::with_capacity_and_hasher(each, Default::default())
            }),
        }
    }

    /// Room for about `additional` more entries, spread as `with_capacity` spreads them.
    pub fn reserve(&mut self, additional: usize) {
        let each = additional / PARTS + additional / PARTS / 8;
        self.parts.iter_mut().for_each(|part| part.reserve(each));
    }

    pub fn get(&self, key: &Digest) -> Option<&V> {
        self.parts[part(key)].get(key)
    }

    pub fn get_mut(&mut self, key: &Digest) -> Option<&mut V> {
        self.parts[part(key)].get_mut(key)
    }

    pub fn insert(&mut self, key: Digest, value: V) -> Option<V> {
        self.parts[part(&key)].insert(key, value)
    }

    pub fn get_or_insert_with(&mut self, key: Digest, new: impl FnOnce() -> V) -> &mut V {
        self.parts[part(&key)].entry(key).or_insert_with(new)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.parts.iter().flat_map(|part| part.values())
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.parts.iter_mut().flat_map(|part| part.values_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_map_finds_what_it_holds_across_its_parts() {
        let mut map = DigestMap::with_capacity(100);
        for n in 0..1000 {
            assert_eq!(map.insert(digest(&n.to_string()), n), None);
        }
        assert_eq!(map.insert(digest("7"), 70), Some(7));
        *map.get_mut(&digest("8")).unwrap() = 80;
        assert_eq!(*map.get_or_insert_with(digest("9"), || 0), 9);
        assert_eq!(*map.get_or_insert_with(digest("new"), || 1), 1);
        assert_eq!(map.values().count(), 1001);
        assert_eq!(map.get(&digest("7")), Some(&70));
        assert_eq!(map.get(&digest("8")), Some(&80));
        assert_eq!(map.get(&digest("missing")), None);
        let used = map.parts.iter().filter(|part| !part.is_empty()).count();
        assert_eq!(used, PARTS, "digests spread over every part");
        let sum: i64 = map.values().map(|&n| i64::from(n)).sum();
        assert_eq!(sum, (0..1000).sum::<i64>() - 7 - 8 + 70 + 80 + 1);
        map.values_mut().for_each(|n| *n = 0);
        assert!(map.values().all(|&n| n == 0));
        map.reserve(10_000);
        assert!(map.parts.iter().all(|part| part.capacity() >= 625));
        assert_eq!(
            map.get(&digest("new")),
            Some(&0),
            "reserving keeps what it holds"
        );
    }
}
