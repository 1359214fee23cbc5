//! A text as edits of the text before it: how a continuing run keeps the night's files
//! without compressing every byte of them again (see `checkpoint`).
//!
//! A delta is the new text as pieces, each either a range of the old text or bytes of
//! its own. It is found line by line the way `changes` walks two texts: runs of common
//! bytes are stepped over whole, and a few lines of look-ahead tell added and removed
//! lines from changed ones. A file sorted anew still gets an exact delta, only a large
//! one (its lines as they are). Deltas compose, so a chain of them is applied to the
//! text it starts from in one pass.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use super::changes::{common_prefix, next_line};

/// Lines looked at ahead in each text for the other's line, as `changes` does.
const LOOK_AHEAD: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes of the old text.
    Old(Range<usize>),
    /// Bytes of the delta's own, in `Delta::bytes`.
    New(Range<usize>),
}

/// How to make a text of `new_len` bytes (digest `new_digest`) from one of `old_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    old_len: usize,
    new_len: usize,
    new_digest: u64,
    pieces: Vec<Piece>,
    bytes: Vec<u8>,
}

impl Delta {
    /// The delta that makes `new` from `old`.
    pub fn between(old: &[u8], new: &[u8]) -> Delta {
        let mut delta = Delta {
            old_len: old.len(),
            new_len: new.len(),
            new_digest: xxh3_64(new),
            pieces: Vec::new(),
            bytes: Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        loop {
            let same = common_prefix(&old[i..], &new[j..]);
            if i + same == old.len() && j + same == new.len() {
                delta.push_old(i..i + same);
                break;
            }
            // Both at the start of a line: up to the start of the line where they part.
            let back = memchr::memrchr(b'\n', &old[i..i + same]).map_or(0, |at| at + 1);
            delta.push_old(i..i + back);
            (i, j) = (i + back, j + back);
            if i == old.len() {
                delta.push_own(&new[j..]);
                break;
            }
            if j == new.len() {
                break;
            }
            // Lines with their `\n`, so that the pieces make the text byte for byte.
            let (old_end, new_end) = (next_line(old, i), next_line(new, j));
            if let Some(found) = ahead(new, new_end, &old[i..old_end]) {
                delta.push_own(&new[j..found]);
                j = found;
            } else if let Some(found) = ahead(old, old_end, &new[j..new_end]) {
                i = found;
            } else {
                delta.push_own(&new[j..new_end]);
                (i, j) = (old_end, new_end);
            }
        }
        delta
    }

    /// `old` made into the new text, into `text` (cleared first); `None` when `old` is
    /// not the text this delta was made from, or the result not the text it made.
    pub fn apply(&self, old: &[u8], text: &mut Vec<u8>) -> Option<()> {
        let made = self
            .pieces
            .iter()
            .try_fold(0usize, |n, piece| n.checked_add(piece.len()));
        if old.len() != self.old_len || made != Some(self.new_len) {
            return None;
        }
        text.clear();
        text.reserve(self.new_len);
        for piece in &self.pieces {
            match piece {
                Piece::Old(range) => text.extend_from_slice(old.get(range.clone())?),
                Piece::New(range) => text.extend_from_slice(self.bytes.get(range.clone())?),
            }
        }
        (text.len() == self.new_len && xxh3_64(text) == self.new_digest).then_some(())
    }

    /// The delta that does what `self` and then `next` do.
    pub fn then(&self, next: &Delta) -> Option<Delta> {
        if next.old_len != self.new_len {
            return None;
        }
        let mut composed = Delta {
            old_len: self.old_len,
            new_len: next.new_len,
            new_digest: next.new_digest,
            pieces: Vec::new(),
            bytes: Vec::new(),
        };
        // Where each of `self`'s pieces starts in the text it makes.
        let mut starts = Vec::with_capacity(self.pieces.len());
        let mut at = 0;
        for piece in &self.pieces {
            starts.push(at);
            at += piece.len();
        }
        for piece in &next.pieces {
            let range = match piece {
                Piece::New(range) => {
                    composed.push_own(next.bytes.get(range.clone())?);
                    continue;
                }
                Piece::Old(range) => range.clone(),
            };
            // The pieces of `self` that made `range` of its text.
            let mut index = starts.partition_point(|&start| start <= range.start);
            index = index.checked_sub(1)?;
            let mut from = range.start;
            while from < range.end {
                let piece = self.pieces.get(index)?;
                let start = starts[index];
                let skip = from - start;
                let take = (piece.len() - skip).min(range.end - from);
                match piece {
                    Piece::Old(old) => composed.push_old(old.start + skip..old.start + skip + take),
                    Piece::New(own) => {
                        composed.push_own(self.bytes.get(own.start + skip..)?.get(..take)?)
                    }
                }
                from += take;
                index += 1;
            }
        }
        Some(composed)
    }

    fn push_old(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Some(Piece::Old(last)) = self.pieces.last_mut() {
            if last.end == range.start {
                last.end = range.end;
                return;
            }
        }
        self.pieces.push(Piece::Old(range));
    }

    fn push_own(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        if let Some(Piece::New(last)) = self.pieces.last_mut() {
            last.end = self.bytes.len();
            return;
        }
        self.pieces.push(Piece::New(start..self.bytes.len()));
    }

    /// As bytes: the lengths and digest, then each piece (`0 start length` for old
    /// bytes, `1 length bytes` for its own), numbers as LEB128.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + self.pieces.len() * 8 + 32);
        put(&mut out, self.old_len as u64);
        put(&mut out, self.new_len as u64);
        out.extend_from_slice(&self.new_digest.to_le_bytes());
        for piece in &self.pieces {
            match piece {
                Piece::Old(range) => {
                    out.push(0);
                    put(&mut out, range.start as u64);
                    put(&mut out, range.len() as u64);
                }
                Piece::New(range) => {
                    out.push(1);
                    put(&mut out, range.len() as u64);
                    out.extend_from_slice(&self.bytes[range.clone()]);
                }
            }
        }
        out
    }

    pub fn decode(mut input: &[u8]) -> Option<Delta> {
        let old_len = take(&mut input)?;
        let new_len = take(&mut input)?;
        let (digest, rest) = input.split_first_chunk::<8>()?;
        input = rest;
        let mut delta = Delta {
            old_len,
            new_len,
            new_digest: u64::from_le_bytes(*digest),
            pieces: Vec::new(),
            bytes: Vec::new(),
        };
        while let Some((&kind, rest)) = input.split_first() {
            input = rest;
            match kind {
                0 => {
                    let start = take(&mut input)?;
                    let len = take(&mut input)?;
                    delta.push_old(start..start.checked_add(len)?);
                }
                1 => {
                    let len = take(&mut input)?;
                    let (bytes, rest) = input.split_at_checked(len)?;
                    delta.push_own(bytes);
                    input = rest;
                }
                _ => return None,
            }
        }
        Some(delta)
    }

    /// Whether it makes the text unchanged.
    pub fn is_identity(&self) -> bool {
        self.old_len == self.new_len
            && match &self.pieces[..] {
                [] => self.old_len == 0,
                [Piece::Old(range)] => range.start == 0 && range.end == self.old_len,
                _ => false,
            }
    }
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Old(range) | Piece::New(range) => range.len(),
        }
    }
}

/// Where, among the `LOOK_AHEAD` lines of `text` from `from`, a line is `line` (both
/// with their `\n`).
fn ahead(text: &[u8], from: usize, line: &[u8]) -> Option<usize> {
    let mut at = from;
    for _ in 0..LOOK_AHEAD {
        if at >= text.len() {
            return None;
        }
        let end = next_line(text, at);
        if &text[at..end] == line {
            return Some(at);
        }
        at = end;
    }
    None
}

fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take(input: &mut &[u8]) -> Option<usize> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return usize::try_from(n).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(old: &[u8], delta: &Delta) -> Vec<u8> {
        let mut text = Vec::new();
        delta.apply(old, &mut text).expect("applies");
        text
    }

    fn round_trip(old: &str, new: &str) -> Delta {
        let delta = Delta::between(old.as_bytes(), new.as_bytes());
        assert_eq!(
            made(old.as_bytes(), &delta),
            new.as_bytes(),
            "{old:?} -> {new:?}"
        );
        let decoded = Delta::decode(&delta.encode()).expect("decodes");
        assert_eq!(decoded, delta);
        delta
    }

    #[test]
    fn a_delta_makes_the_new_text_byte_for_byte() {
        let old = "id\tname\n1\tAda\n2\tBo\n3\tCy\n4\tDi\n";
        for new in [
            old,
            "",
            "id\tname\n1\tAda\n2\tBob\n3\tCy\n4\tDi\n",
            "id\tname\n1\tAda\n3\tCy\n4\tDi\n",
            "id\tname\n0\tZed\n1\tAda\n2\tBo\n3\tCy\n4\tDi\n5\tEd\n",
            "id\tname\n4\tDi\n3\tCy\n2\tBo\n1\tAda\n",
            "id\tname\n1\tAda\n2\tBo\n3\tCy\n4\tDi",
            "id\tname\r\n1\tAda\r\n",
            "something else entirely",
        ] {
            round_trip(old, new);
            round_trip(new, old);
        }
        round_trip("", "a\nb\n");
        round_trip("a", "a\n");
        round_trip("a\n", "a");
    }

    #[test]
    fn a_small_change_is_a_small_delta() {
        let old: String = (0..10_000)
            .map(|i| format!("{i}\tname {i}\tgrade 5\n"))
            .collect();
        let new = old.replace("\n5000\tname 5000\t", "\n5000\tname changed\t");
        let delta = round_trip(&old, &new);
        assert!(delta.encode().len() < 100, "{}", delta.encode().len());
        assert!(round_trip(&old, &old).is_identity());
        assert!(!delta.is_identity());
    }

    #[test]
    fn deltas_compose() {
        let texts = [
            "h\n1\n2\n3\n4\n5\n",
            "h\n1\n2b\n3\n5\n6\n",
            "h\n0\n1\n2b\n3\n5\n6\n7\n",
            "h\n7\n6\n5\n",
            "",
            "h\n1\n",
        ];
        let deltas: Vec<Delta> = texts
            .windows(2)
            .map(|pair| Delta::between(pair[0].as_bytes(), pair[1].as_bytes()))
            .collect();
        for from in 0..deltas.len() {
            let mut chain = deltas[from].clone();
            for (k, next) in deltas.iter().enumerate().skip(from + 1) {
                chain = chain.then(next).expect("composes");
                assert_eq!(
                    made(texts[from].as_bytes(), &chain),
                    texts[k + 1].as_bytes()
                );
            }
        }
        // A delta of another text is not applied.
        assert!(deltas[1].then(&deltas[3]).is_none());
        let mut text = Vec::new();
        assert!(deltas[1].apply(texts[0].as_bytes(), &mut text).is_none());
    }

    #[test]
    fn a_damaged_delta_is_refused() {
        let delta = Delta::between(b"a\nb\nc\n", b"a\nB\nc\n");
        let bytes = delta.encode();
        assert!(Delta::decode(&bytes[..bytes.len() - 1]).is_none());
        let mut text = Vec::new();
        assert!(
            delta.apply(b"a\nb\nC\n", &mut text).is_none(),
            "same length, other text"
        );
    }
}
