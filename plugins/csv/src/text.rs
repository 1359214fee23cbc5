//! Turning a data file's bytes into text the CSV reader can split: byte-order marks,
//! UTF-16, line endings and the delimiter are all decided here, while streaming.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use encoding_rs::{Decoder, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::config::Delimiter;
use crate::mapped::Mapped;

/// What a file turned out to be encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, or Windows-1252 for fields that are not valid UTF-8 (see [`decode_field`]).
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// A file opened for the CSV reader: UTF-8 bytes with `\n` line endings only, and the
/// delimiter to split them with.
pub struct TextFile {
    pub reader: Box<dyn Read + Send>,
    pub encoding: Encoding,
    pub delimiter: u8,
    /// The same text, when it was read whole into memory: one without a quote in it is
    /// split line by line, without the CSV reader (see `Table`).
    pub whole: Option<Shared>,
}

impl TextFile {
    /// A text already read whole (and decoded, as `open` does).
    pub fn in_memory(text: Shared, encoding: Encoding, delimiter: u8) -> TextFile {
        TextFile {
            reader: Box::new(Cursor::new(text.clone())),
            encoding,
            delimiter,
            whole: Some(text),
        }
    }
}

/// A file's text whole: read into memory, or mapped from the page cache (`mapped.rs`).
pub enum Text {
    Read(Vec<u8>),
    Mapped(Mapped),
}

impl std::ops::Deref for Text {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Text::Read(bytes) => bytes,
            Text::Mapped(mapped) => mapped,
        }
    }
}

/// A text read whole, shared by its readers and the thread compressing it.
#[derive(Clone)]
pub struct Shared(Arc<Text>);

impl From<Text> for Shared {
    fn from(text: Text) -> Shared {
        Shared(Arc::new(text))
    }
}

impl From<Vec<u8>> for Shared {
    fn from(bytes: Vec<u8>) -> Shared {
        Shared::from(Text::Read(bytes))
    }
}

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub fn open(path: &Path, delimiter: Delimiter) -> io::Result<TextFile> {
    open_reader(File::open(path)?, delimiter)
}

pub fn open_reader(
    mut raw: impl Read + Send + 'static,
    delimiter: Delimiter,
) -> io::Result<TextFile> {
    let mut head = read_prefix(&mut raw, 4, |_| false)?;
    let (encoding, bom) = sniff_encoding(&head);
    head.drain(..bom);
    let rest = Cursor::new(head).chain(raw);
    let utf8: Box<dyn Read + Send> = match encoding {
        Encoding::Utf8 => Box::new(rest),
        Encoding::Utf16Le => Box::new(Utf16Reader::new(
            rest,
            UTF_16LE.new_decoder_without_bom_handling(),
        )),
        Encoding::Utf16Be => Box::new(Utf16Reader::new(
            rest,
            UTF_16BE.new_decoder_without_bom_handling(),
        )),
    };
    let mut lines = LineEndings::new(utf8);
    // The header line (the first that is not blank) decides the delimiter; it is read
    // ahead and then handed back.
    let head = read_prefix(&mut lines, 1 << 16, has_complete_line)?;
    let delimiter = delimiter.byte().unwrap_or_else(|| {
        sniff_delimiter(
            head.split(|&b| b == b'\n')
                .find(|line| !is_blank(line))
                .unwrap_or(&[]),
        )
    });
    Ok(TextFile {
        reader: Box::new(Cursor::new(head).chain(lines)),
        encoding,
        delimiter,
        whole: None,
    })
}

/// Reads until `limit` bytes, the end of input, or `done` says enough.
fn read_prefix(
    reader: &mut impl Read,
    limit: usize,
    done: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while buffer.len() < limit && !done(&buffer) {
        let want = (limit - buffer.len()).min(chunk.len());
        let n = reader.read(&mut chunk[..want])?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(buffer)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Whether `bytes` holds a whole line that is not blank (blank lines before the header
/// are skipped by the reader, so they must not decide the delimiter either).
fn has_complete_line(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|start| bytes[start..].contains(&b'\n'))
}

/// The encoding and the length of its byte-order mark. Excel's "Unicode Text" export is
/// UTF-16 LE with a BOM; UTF-16 without one is recognised by the zero byte of an ASCII
/// first character, which every valid header has.
pub fn sniff_encoding(head: &[u8]) -> (Encoding, usize) {
    match head {
        [0xEF, 0xBB, 0xBF, ..] => (Encoding::Utf8, 3),
        [0xFF, 0xFE, ..] => (Encoding::Utf16Le, 2),
        [0xFE, 0xFF, ..] => (Encoding::Utf16Be, 2),
        [a, 0, ..] if *a != 0 => (Encoding::Utf16Le, 0),
        [0, b, ..] if *b != 0 => (Encoding::Utf16Be, 0),
        _ => (Encoding::Utf8, 0),
    }
}

/// Tab if the header has one (the documented format), else whichever of `;` and `,` is
/// more common: a European Excel saves "CSV" with semicolons.
pub fn sniff_delimiter(header: &[u8]) -> u8 {
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if header.contains(&b'\t') {
        b'\t'
    } else if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

/// A field as text, and whether it had to be read as Windows-1252. Deciding per field
/// keeps the reader streaming: a file is only known to be non-UTF-8 when a bad byte
/// shows up, possibly on its last line.
pub fn decode_field(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), false),
        Err(_) => (WINDOWS_1252.decode_without_bom_handling(bytes).0, true),
    }
}

/// `cell.trim()`, returned as it is when it starts and ends with an ASCII byte that is
/// not whitespace, as nearly every cell of a school's file does: `str::trim` decodes a
/// character at each end and asks Unicode about it, for each of millions of cells.
pub fn trim_cell(cell: &str) -> &str {
    let kept =
        |byte: Option<&u8>| byte.is_some_and(|&b| b.is_ascii() && !(b as char).is_whitespace());
    let bytes = cell.as_bytes();
    if kept(bytes.first()) && kept(bytes.last()) {
        cell
    } else {
        cell.trim()
    }
}

/// Rewrites `\r\n` and a lone `\r` to `\n`, so that the CSV reader's line numbers count
/// physical lines whichever ending the file uses (it counts `\n` only), and ends the
/// text with a `\n`, so that every record is followed by one (see `Table`).
pub struct LineEndings<R> {
    inner: R,
    after_cr: bool,
    /// Whether the last byte handed out was `\n` (true before any: an empty file stays empty).
    at_line_start: bool,
    done: bool,
}

impl<R> LineEndings<R> {
    pub fn new(inner: R) -> Self {
        LineEndings {
            inner,
            after_cr: false,
            at_line_start: true,
            done: false,
        }
    }
}

impl<R: Read> Read for LineEndings<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let n = self.inner.read(buf)?;
            if n == 0 {
                self.done = true;
                if self.at_line_start {
                    return Ok(0);
                }
                buf[0] = b'\n';
                return Ok(1);
            }
            // Most reads hold no `\r` at all: nothing to rewrite.
            if !self.after_cr && !buf[..n].contains(&b'\r') {
                self.at_line_start = buf[n - 1] == b'\n';
                return Ok(n);
            }
            let mut written = 0;
            for i in 0..n {
                let byte = buf[i];
                match byte {
                    b'\r' => {
                        buf[written] = b'\n';
                        written += 1;
                        self.after_cr = true;
                    }
                    b'\n' if self.after_cr => self.after_cr = false,
                    _ => {
                        buf[written] = byte;
                        written += 1;
                        self.after_cr = false;
                    }
                }
            }
            // A read that held only the `\n` of a `\r\n` split across reads yields
            // nothing; returning 0 would mean end of file.
            if written > 0 {
                self.at_line_start = buf[written - 1] == b'\n';
                return Ok(written);
            }
        }
    }
}

/// Streams UTF-16 as UTF-8.
struct Utf16Reader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    position: usize,
    eof: bool,
    finished: bool,
}

impl<R> Utf16Reader<R> {
    fn new(inner: R, decoder: Decoder) -> Self {
        Utf16Reader {
            inner,
            decoder,
            input: vec![0; 8192],
            start: 0,
            end: 0,
            output: Vec::new(),
            position: 0,
            eof: false,
            finished: false,
        }
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.position < self.output.len() {
                let n = buf.len().min(self.output.len() - self.position);
                buf[..n].copy_from_slice(&self.output[self.position..self.position + n]);
                self.position += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.end = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.eof = self.end == 0;
            }
            let pending = &self.input[self.start..self.end];
            let capacity = self
                .decoder
                .max_utf8_buffer_length(pending.len())
                .unwrap_or(pending.len() * 3 + 16);
            self.output.resize(capacity.max(16), 0);
            let (_, read, written, _) =
                self.decoder
                    .decode_to_utf8(pending, &mut self.output, self.eof);
            self.start += read;
            self.output.truncate(written);
            self.position = 0;
            self.finished = self.eof && self.start == self.end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_trimmed_as_str_trim_trims_it() {
        let cells = [
            "",
            " ",
            "a",
            "ab",
            " a",
            "a ",
            "\ta\t",
            "\u{b}a",
            "a\u{c}",
            "\u{3000}a",
            "a\u{85}",
            "\u{a0}a\u{a0}",
            "é",
            "Ren\u{e9}e ",
            "\u{3a3}",
            "a b",
        ];
        for cell in cells {
            assert_eq!(trim_cell(cell), cell.trim(), "{cell:?}");
        }
        // Nothing to trim: the very text, not a copy of it.
        let cell = "Ada";
        assert!(std::ptr::eq(trim_cell(cell), cell));
    }

    fn read_all(bytes: Vec<u8>) -> (String, u8, Encoding) {
        let mut file = open_reader(Cursor::new(bytes), Delimiter::Auto).unwrap();
        let mut out = Vec::new();
        file.reader.read_to_end(&mut out).unwrap();
        (
            String::from_utf8(out).unwrap(),
            file.delimiter,
            file.encoding,
        )
    }

    #[test]
    fn line_endings_become_lf() {
        let (text, delimiter, _) = read_all(b"a\tb\r\n1\t2\r3\t4\n5\t6\r".to_vec());
        assert_eq!(text, "a\tb\n1\t2\n3\t4\n5\t6\n");
        assert_eq!(read_all(b"a\tb\n1\t2".to_vec()).0, "a\tb\n1\t2\n");
        assert_eq!(read_all(Vec::new()).0, "");
        assert_eq!(delimiter, b'\t');
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_ending() {
        struct OneByte(Vec<u8>, usize);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 == self.0.len() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let mut out = String::new();
        LineEndings::new(OneByte(b"a\r\nb\r\n\r\nc".to_vec(), 0))
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "a\nb\n\nc\n");
    }

    #[test]
    fn utf8_bom_is_dropped() {
        let (text, _, encoding) = read_all(b"\xEF\xBB\xBFStudentID;First;Last\n".to_vec());
        assert_eq!(text, "StudentID;First;Last\n");
        assert_eq!(encoding, Encoding::Utf8);
    }

    #[test]
    fn utf16_le_and_be_are_decoded() {
        let text = "StudentID\tFirst\r\nS1\tZoë\r\n";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
            be.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(read_all(le).0, "StudentID\tFirst\nS1\tZoë\n");
        assert_eq!(read_all(be).0, "StudentID\tFirst\nS1\tZoë\n");
    }

    #[test]
    fn long_utf16_input_streams_through() {
        let text: String = (0..5000).map(|i| format!("S{i}\tJosé\n")).collect();
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(read_all(bytes).0, text);
    }

    #[test]
    fn blank_lines_before_the_header_do_not_decide_the_delimiter() {
        let (_, delimiter, _) = read_all(b"\n\r\n \t\nStudentID\tFirst;x\nS1\tAda;y\n".to_vec());
        assert_eq!(delimiter, b'\t');
        let (_, delimiter, _) = read_all(b"\n\nStudentID;First;Last\n".to_vec());
        assert_eq!(delimiter, b';');
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter(b"a\tb,c,d"), b'\t');
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a,b;c,d"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
    }

    #[test]
    fn invalid_utf8_falls_back_to_windows_1252() {
        assert_eq!(decode_field(b"Jos\xE9"), (Cow::Borrowed("José"), true));
        assert_eq!(
            decode_field("José".as_bytes()),
            (Cow::Borrowed("José"), false)
        );
    }
}
