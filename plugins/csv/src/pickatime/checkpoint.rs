//! What a pickAtime run keeps for the next one (`roster_core::record::Checkpoint`): the
//! text of every file it read, as the CSV reader saw it (decoded, `\n` line endings),
//! compressed, and which ParentIDs it merged into which contact.
//!
//! Files have no change feed: the next run finds what changed by comparing its files
//! with these texts row by row (see `changes`). Keeping the texts themselves, rather
//! than a digest per row, is what lets it name what a row *was* — the key of a removed
//! student, the classes of an enrollment row that went — and keeps the comparison
//! exact. A zstd level-1 frame costs about a fifth of the text.
//!
//! A continuing run keeps its texts as *deltas* of the ones it compared them with
//! (`delta`), sent to extend the checkpoint it was given (`Checkpoint::extends`): at nyc
//! a night of 1% changes is 1 MB where the texts again were 53 MB to compress
//! and write. So a checkpoint is a base, then the deltas of the runs since, each the
//! same layout under its own magic; the next run applies them all, composed, in one
//! pass. Once the deltas come to a quarter of the base (or [`MAX_PARTS`] of them), a
//! run keeps its texts whole again, as a new base.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use roster_core::sdk::CheckpointBytes;

use super::delta::Delta;

/// The files of a run, each by its number in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Students = 0,
    Teachers = 1,
    Parents = 2,
    Classes = 3,
    Enrollments = 4,
    ParentStudents = 5,
}

const SLOTS: usize = 6;
const MAGIC: &[u8; 8] = b"rpkt\x00\x00\x00\x01";
/// A later run's deltas, after the base.
const DELTA_MAGIC: &[u8; 8] = b"rpkd\x00\x00\x00\x01";
/// Deltas kept after one base at most: a run reads them all.
const MAX_PARTS: usize = 60;
const LEVEL: i32 = 1;
/// The magic and the number of frames.
const HEADER: usize = MAGIC.len() + 8;

/// A checkpoint, as the last run left it: `slot length frame` for each file in the order
/// it was read, then the aliases; then, for each run that extended it, the same with
/// each frame a compressed delta.
pub struct Kept {
    /// As the host handed them over: on Linux, the host's own pages, mapped.
    bytes: CheckpointBytes,
    /// Where each file's zstd frame is in `bytes`; `None` for a file the run did not have.
    frames: [Option<Range<usize>>; SLOTS],
    /// The deltas of each later run, oldest first, where `frames` has a file.
    parts: Vec<[Option<Range<usize>>; SLOTS]>,
    /// Where the parts start in `bytes` (the base's length).
    base_len: usize,
    /// ParentID → the contact it was merged into, for merged ParentIDs only (as the
    /// newest run left them).
    pub aliases: Vec<(String, String)>,
}

type Frames = [Option<Range<usize>>; SLOTS];

impl Kept {
    pub fn has(&self, slot: Slot) -> bool {
        self.frames[slot as usize].is_some()
    }

    /// The base's frame of `slot`'s text (empty when the run had no such file).
    pub fn frame(&self, slot: Slot) -> &[u8] {
        self.frames[slot as usize]
            .clone()
            .map_or(&[][..], |range| &self.bytes[range])
    }

    /// Whether this run may keep its texts as deltas after these: the deltas are few
    /// and small next to the base, so that reading them stays cheap.
    pub fn extendable(&self) -> bool {
        self.parts.len() < MAX_PARTS && (self.bytes.len() - self.base_len) * 4 < self.base_len
    }

    /// How many runs extended the base.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// The text the last run read for `slot`, into `text` (cleared first).
    pub fn text(&self, slot: Slot, text: &mut Vec<u8>) -> io::Result<()> {
        text.clear();
        let Some(frame) = &self.frames[slot as usize] else {
            return Ok(());
        };
        decode_into(&self.bytes[frame.clone()], text)?;
        let mut chain: Option<Delta> = None;
        for part in &self.parts {
            let frame = part[slot as usize]
                .clone()
                .expect("decode checked every part");
            let delta = Delta::decode(&zstd::stream::decode_all(&self.bytes[frame])?)
                .ok_or_else(|| io::Error::other("a later run's delta is damaged"))?;
            chain = Some(match chain {
                None => delta,
                Some(chain) => chain.then(&delta).ok_or_else(|| {
                    io::Error::other("a later run's delta is not of the text before it")
                })?,
            });
        }
        match chain {
            Some(chain) if !chain.is_identity() => {
                let mut made = Vec::new();
                chain.apply(text, &mut made).ok_or_else(|| {
                    io::Error::other("the later runs' deltas do not make the text they recorded")
                })?;
                *text = made;
            }
            _ => {}
        }
        Ok(())
    }

    pub fn decode(bytes: CheckpointBytes) -> Option<Kept> {
        let mut input = Input(&bytes, 0);
        let (frames, mut aliases) = section(&mut input, MAGIC)?;
        let base_len = input.1;
        let mut parts = Vec::new();
        while input.1 < bytes.len() {
            let (part, part_aliases) = section(&mut input, DELTA_MAGIC)?;
            // A run extends only a checkpoint of the same files.
            if (0..SLOTS).any(|slot| part[slot].is_some() != frames[slot].is_some()) {
                return None;
            }
            parts.push(part);
            aliases = part_aliases;
        }
        Some(Kept {
            bytes,
            frames,
            parts,
            base_len,
            aliases,
        })
    }
}

/// A frame's text into `text` (empty, its capacity what the caller expects the text to
/// take): in one call straight into it when it fits, which spares the streaming
/// decoder's copy of every block through a buffer of its own; streamed when it does not.
fn decode_into(frame: &[u8], text: &mut Vec<u8>) -> io::Result<()> {
    let fits = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) => size <= text.capacity() as u64,
        // A frame written as a stream does not say its size: tried, and streamed if it
        // did not fit.
        Ok(None) => text.capacity() > 0,
        Err(_) => false,
    };
    if fits
        && zstd::bulk::Decompressor::new()?
            .decompress_to_buffer(frame, text)
            .is_ok()
    {
        return Ok(());
    }
    text.clear();
    zstd::stream::copy_decode(frame, &mut *text)
}

/// One run's frames and aliases, under `magic`.
fn section(input: &mut Input<'_>, magic: &[u8; 8]) -> Option<(Frames, Vec<(String, String)>)> {
    if input.take(magic.len())? != magic {
        return None;
    }
    let mut frames: Frames = Default::default();
    for _ in 0..input.number()? {
        let slot = usize::from(input.take(1)?[0]);
        let length = input.number()?;
        let start = input.1;
        input.take(length)?;
        *frames.get_mut(slot)? = Some(start..start + length);
    }
    let count = input.number()?;
    let mut aliases = Vec::new();
    for _ in 0..count {
        aliases.push((input.text()?, input.text()?));
    }
    Some((frames, aliases))
}

/// The next checkpoint, gathered as the run reads its files. A finished frame goes
/// straight into the checkpoint's bytes, so no text is held compressed twice.
#[derive(Default)]
pub struct Recorder {
    out: Arc<Mutex<Out>>,
    /// The thread making the last frame, which waits for the one before.
    compressing: Option<JoinHandle<()>>,
    aliases: Vec<(String, String)>,
    /// Deltas to extend the checkpoint the run was given, instead of a new base.
    extending: bool,
    /// Whether any of the deltas changes its text.
    changed: bool,
}

#[derive(Default)]
struct Out {
    /// `slot length frame`, one after the other.
    frames: Vec<u8>,
    count: u64,
    expected: u64,
    failed: Option<io::Error>,
}

impl Out {
    /// Appends `slot`'s frame, which `write` writes.
    fn add(&mut self, slot: Slot, write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) {
        if self.frames.is_empty() {
            // Room for the header, written in front of the frames at the end.
            self.frames.resize(HEADER, 0);
        }
        let at = self.frames.len();
        self.frames.push(slot as u8);
        self.frames.extend_from_slice(&[0; 8]);
        match write(&mut self.frames) {
            Ok(()) => {
                let length = (self.frames.len() - at - 9) as u64;
                self.frames[at + 1..at + 9].copy_from_slice(&length.to_le_bytes());
                self.count += 1;
            }
            Err(error) => {
                self.frames.truncate(at);
                self.failed = Some(error);
            }
        }
    }
}

impl Recorder {
    /// A recorder of deltas, to extend the checkpoint the run was given.
    pub fn extending() -> Recorder {
        Recorder {
            extending: true,
            ..Recorder::default()
        }
    }

    pub fn is_extending(&self) -> bool {
        self.extending
    }

    /// `slot`'s text as the delta from `old`, the text the last run read, compressed
    /// while the run goes on.
    pub fn delta(&mut self, slot: Slot, old: &[u8], new: &[u8]) {
        let delta = Delta::between(old, new);
        self.changed |= !delta.is_identity();
        let delta = delta.encode();
        self.in_turn(slot, move || zstd::bulk::compress(&delta, LEVEL));
    }

    /// `reader`, with every byte it hands out compressed into `slot`'s frame.
    pub fn tee(&mut self, slot: Slot, reader: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        let mut out = self.out.lock().unwrap();
        out.expected += 1;
        let encoder = match zstd::stream::write::Encoder::new(Vec::new(), LEVEL) {
            Ok(encoder) => Some(encoder),
            Err(error) => {
                out.failed = Some(error);
                None
            }
        };
        drop(out);
        Box::new(Tee {
            inner: reader,
            encoder,
            slot,
            out: self.out.clone(),
        })
    }

    /// `text`, compressed into `slot`'s frame while the run goes on.
    pub fn compress(&mut self, slot: Slot, text: impl AsRef<[u8]> + Send + 'static) {
        // In one piece: zstd's streaming mode takes a slower path for every block.
        self.in_turn(slot, move || zstd::bulk::compress(text.as_ref(), LEVEL));
    }

    /// Makes `slot`'s frame on a thread of its own, and adds it after the frame before
    /// it: the same files make the same checkpoint, byte for byte.
    fn in_turn(
        &mut self,
        slot: Slot,
        frame: impl FnOnce() -> io::Result<Vec<u8>> + Send + 'static,
    ) {
        self.out.lock().unwrap().expected += 1;
        let out = self.out.clone();
        let before = self.compressing.take();
        self.compressing = Some(std::thread::spawn(move || {
            let frame = frame();
            if let Some(before) = before {
                // A thread that panicked added nothing: `finish` finds a frame missing.
                let _ = before.join();
            }
            out.lock().unwrap().add(slot, |frames| {
                frames.extend_from_slice(&frame?);
                Ok(())
            });
        }));
    }

    /// `frame`, the last run's for a text that has not changed, as `slot`'s.
    pub fn keep(&mut self, slot: Slot, frame: &[u8]) {
        let frame = frame.to_vec();
        self.in_turn(slot, move || Ok(frame));
    }

    pub fn set_aliases(&mut self, aliases: Vec<(String, String)>) {
        self.aliases = aliases;
    }

    /// The checkpoint, once every file was read to its end; for a recorder of deltas
    /// none of which changes anything, nothing (the checkpoint stays as it is).
    pub fn finish(&mut self) -> io::Result<Vec<u8>> {
        if let Some(handle) = self.compressing.take() {
            handle
                .join()
                .map_err(|_| io::Error::other("compressing a file's text failed"))?;
        }
        let out = std::mem::take(&mut *self.out.lock().unwrap());
        let count = out.count;
        if let Some(error) = out.failed {
            return Err(error);
        }
        if out.count != out.expected {
            return Err(io::Error::other("a file was not read to its end"));
        }
        if self.extending && !self.changed {
            return Ok(Vec::new());
        }
        let mut out = out.frames;
        if out.is_empty() {
            out.resize(HEADER, 0);
        }
        let magic = if self.extending { DELTA_MAGIC } else { MAGIC };
        out[..MAGIC.len()].copy_from_slice(magic);
        out[MAGIC.len()..HEADER].copy_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(self.aliases.len() as u64).to_le_bytes());
        for (alias, root) in &self.aliases {
            put_bytes(&mut out, alias.as_bytes());
            put_bytes(&mut out, root.as_bytes());
        }
        Ok(out)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A checkpoint being read, and how far.
struct Input<'a>(&'a [u8], usize);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.1.checked_add(n).filter(|&end| end <= self.0.len())?;
        let taken = &self.0[self.1..end];
        self.1 = end;
        Some(taken)
    }

    fn number(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.number()?;
        self.take(n)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

struct Tee {
    inner: Box<dyn Read + Send>,
    /// `None` once finished, or when zstd could not start one (then `finish` reports it).
    encoder: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    slot: Slot,
    out: Arc<Mutex<Out>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let result = match (&mut self.encoder, n) {
            (None, _) => return Ok(n),
            (Some(encoder), 1..) => encoder.write_all(&buf[..n]).map(|()| None),
            (Some(_), 0) => self.encoder.take().expect("matched").finish().map(Some),
        };
        match result {
            Ok(None) => {}
            Ok(Some(frame)) => self.out.lock().unwrap().add(self.slot, |frames| {
                frames.extend_from_slice(&frame);
                Ok(())
            }),
            Err(error) => {
                self.encoder = None;
                self.out.lock().unwrap().add(self.slot, |_| Err(error));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_what_was_recorded() {
        let mut recorder = Recorder::default();
        let mut teed = recorder.tee(
            Slot::Students,
            Box::new(io::Cursor::new(b"StudentID\n1\n".to_vec())),
        );
        let mut seen = Vec::new();
        teed.read_to_end(&mut seen).unwrap();
        recorder.compress(Slot::Classes, b"ClassID\tTeacherID\n".to_vec());
        recorder.set_aliases(vec![("P2".into(), "P1".into())]);
        let bytes = recorder.finish().unwrap();

        let kept = Kept::decode(bytes.clone().into()).expect("decodes");
        let mut text = Vec::new();
        kept.text(Slot::Students, &mut text).unwrap();
        assert_eq!(text, seen);
        kept.text(Slot::Classes, &mut text).unwrap();
        assert_eq!(text, b"ClassID\tTeacherID\n");
        assert!(!kept.has(Slot::Parents));
        assert_eq!(kept.aliases, [("P2".to_string(), "P1".to_string())]);
        assert!(Kept::decode(bytes[..bytes.len() - 1].to_vec().into()).is_none());
        assert!(Kept::decode(b"something else".to_vec().into()).is_none());
    }

    #[test]
    fn a_frame_decodes_into_any_buffer_whatever_it_says_of_its_size() {
        let text: Vec<u8> = (0..5_000u32)
            .flat_map(|i| format!("S{i}\tName {}\n", i % 97).into_bytes())
            .collect();
        let sized = zstd::bulk::compress(&text, LEVEL).unwrap();
        let streamed = {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL).unwrap();
            encoder.write_all(&text).unwrap();
            encoder.finish().unwrap()
        };
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(),
            None,
            "a streamed frame that says its size tests nothing here"
        );
        for frame in [&sized, &streamed] {
            // Room to spare, exactly enough, too little, none; filled with another
            // text first, as the buffer kept from file to file is.
            for capacity in [2 * text.len(), text.len(), text.len() - 1, 0] {
                let mut buffer = Vec::with_capacity(capacity);
                buffer.extend_from_slice(&b"another file's text"[..capacity.min(19)]);
                buffer.clear();
                decode_into(frame, &mut buffer).unwrap();
                assert_eq!(buffer, text, "capacity {capacity}");
            }
        }
        let mut buffer = Vec::with_capacity(text.len());
        assert!(decode_into(&sized[..sized.len() / 2], &mut buffer).is_err());
    }

    #[test]
    fn deltas_kept_after_a_checkpoint_make_the_newest_texts() {
        let students = [
            "StudentID\tLast\n1\tAb\n2\tCd\n3\tEf\n",
            "StudentID\tLast\n1\tAb\n2\tCx\n3\tEf\n4\tGh\n",
            "StudentID\tLast\n2\tCx\n3\tEf\n4\tGh\n",
        ];
        let classes = "ClassID\tTeacherID\nM1\tT1\n";
        let mut recorder = Recorder::default();
        recorder.compress(Slot::Students, students[0].as_bytes().to_vec());
        recorder.compress(Slot::Classes, classes.as_bytes().to_vec());
        let mut bytes = recorder.finish().unwrap();
        let base_len = bytes.len();
        for (night, pair) in students.windows(2).enumerate() {
            let kept = Kept::decode(bytes.clone().into()).expect("decodes");
            assert_eq!(kept.parts(), night);
            let mut text = Vec::new();
            kept.text(Slot::Students, &mut text).unwrap();
            assert_eq!(text, pair[0].as_bytes());
            let mut recorder = Recorder::extending();
            recorder.delta(Slot::Students, pair[0].as_bytes(), pair[1].as_bytes());
            recorder.delta(Slot::Classes, classes.as_bytes(), classes.as_bytes());
            recorder.set_aliases(vec![(format!("P{night}"), "P9".into())]);
            bytes.extend(recorder.finish().unwrap());
        }
        // A night when nothing changed leaves the checkpoint as it is.
        let mut recorder = Recorder::extending();
        recorder.delta(
            Slot::Students,
            students[2].as_bytes(),
            students[2].as_bytes(),
        );
        recorder.delta(Slot::Classes, classes.as_bytes(), classes.as_bytes());
        assert_eq!(recorder.finish().unwrap(), b"");
        let kept = Kept::decode(bytes.clone().into()).expect("decodes");
        assert_eq!(kept.parts(), 2);
        let mut text = Vec::new();
        kept.text(Slot::Students, &mut text).unwrap();
        assert_eq!(text, students[2].as_bytes());
        kept.text(Slot::Classes, &mut text).unwrap();
        assert_eq!(text, classes.as_bytes());
        assert_eq!(kept.aliases, [("P1".to_string(), "P9".to_string())]);
        // Deltas this size next to so small a base: the next run keeps its texts whole.
        assert!(bytes.len() - base_len > base_len / 4);
        assert!(!kept.extendable());

        // A part of other files, or a damaged one, makes no checkpoint to continue from.
        let mut recorder = Recorder::extending();
        recorder.delta(
            Slot::Students,
            students[0].as_bytes(),
            students[1].as_bytes(),
        );
        let mut other_files = bytes[..base_len].to_vec();
        other_files.extend(recorder.finish().unwrap());
        assert!(Kept::decode(other_files.into()).is_none());
        assert!(Kept::decode(bytes[..bytes.len() - 1].to_vec().into()).is_none());
        // A delta of another text is an error when its file is read.
        let mut recorder = Recorder::extending();
        recorder.delta(
            Slot::Students,
            students[2].as_bytes(),
            students[0].as_bytes(),
        );
        recorder.delta(Slot::Classes, classes.as_bytes(), classes.as_bytes());
        let mut wrong = bytes[..base_len].to_vec();
        wrong.extend(recorder.finish().unwrap());
        let kept = Kept::decode(wrong.into()).expect("decodes");
        assert!(kept.text(Slot::Students, &mut text).is_err());
    }

    #[test]
    fn a_file_not_read_to_its_end_leaves_no_checkpoint() {
        let mut recorder = Recorder::default();
        let mut teed = recorder.tee(Slot::Students, Box::new(io::Cursor::new(vec![b'x'; 64])));
        teed.read_exact(&mut [0; 8]).unwrap();
        assert!(recorder.finish().is_err());
    }
}
