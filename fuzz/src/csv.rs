//! Fuzz harness for the data-file parsers of roster-plugin-csv: any bytes as any one of
//! the six pickAtime files (the other five valid), and any bytes through the text
//! decoder, checked against a one-shot reference decoding.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the fuzz smoke tests
//! (`plugins/csv/tests/fuzz_smoke.rs`, which include this file by path).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use encoding_rs::{UTF_16BE, UTF_16LE};
use roster_core::sdk::{Host, Silent};
use roster_core::ErrorKind;
use roster_plugin_csv::config::{Config, Delimiter};
use roster_plugin_csv::pickatime::{self, fuzzing};

/// The six files, in the order a selector byte picks them.
pub const FILES: [&str; 6] = [
    "Student.txt",
    "Teacher.txt",
    "Class.txt",
    "Enrollment.txt",
    "Parent.txt",
    "ParentStudent.txt",
];

/// A small valid set, every column and layout feature in use (Action, DOB, Grade, extra
/// columns, co-taught class, PTAN, the wide enrollment layout, merged parents).
pub const BASE: [&[u8]; 6] = [
    b"StudentID\tFirst\tLast\tSecurityValue\tGrade\tDOB\tAction\tNotes\nS1\tZo\xc3\xab\tLovelace\t12/10/2015\t6\t\t\tquiet\nS2\tJos\xc3\xa9\tN\xc3\xba\xc3\xb1ez\t4821\tK\t2014-06-23\t\t\nS3\tGrace\tHopper\t12/09/2014\t13\t\tdelete\t\n",
    b"TeacherID\tFirst\tLast\tEmail\tRoom\tPassword\nT1\tMary\tJackson\tmary@school.example.org\t12\tsecret\nT2\tKatherine\tJohnson\tkj@school.example.org\t14\t\n",
    b"ClassID\tTeacherID\tClassName\tGroupName\tPTAN\nC1\tT1\tMath 6\tGrade 6\t1\nC2\tT2\tScience 6\tGrade 6\t\nC2\tT1\tScience 6\tGrade 6\t\n",
    b"StudentID\tClassID\tClassID\nS1\tC1\tC2\nS2\tC2\n",
    b"ParentID\tFirst\tLast\tEmail\nP1\tAda\tLovelace\tada@home.example.org\nP2\tJorge\tN\xc3\xba\xc3\xb1ez\tjorge@home.example.org\nP3\tJ.\tNunez\tJORGE@home.example.org\n",
    b"ParentID\tStudentID\tRelationship\nP1\tS1\tMother\nP3\tS2\tFather\nP2\tS2\t\n",
];

static FOLDERS: AtomicUsize = AtomicUsize::new(0);

/// A folder holding the base set, in which one file at a time is replaced.
pub struct Folder {
    parent: PathBuf,
    name: String,
    replaced: Option<usize>,
}

impl Default for Folder {
    fn default() -> Self {
        Self::new()
    }
}

impl Folder {
    /// A fresh folder under `/dev/shm` when there is one (fast), else the temp dir.
    pub fn new() -> Folder {
        let shm = PathBuf::from("/dev/shm");
        let parent = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let name = format!(
            "roster-fuzz-{}-{}",
            std::process::id(),
            FOLDERS.fetch_add(1, Ordering::Relaxed)
        );
        let folder = Folder {
            parent,
            name,
            replaced: None,
        };
        std::fs::create_dir_all(folder.dir()).expect("a scratch folder");
        for (file, content) in FILES.iter().zip(BASE) {
            std::fs::write(folder.dir().join(file), content).expect("a scratch file");
        }
        folder
    }

    fn dir(&self) -> PathBuf {
        self.parent.join(&self.name)
    }

    /// Reads the set with file `which` (mod 6) replaced by `bytes`, and checks the
    /// outcome: a consistent import, or an input error located at a file, a line of it
    /// (1-based, within the file) and possibly a column.
    pub fn check(&mut self, which: usize, bytes: &[u8]) {
        let which = which % FILES.len();
        if let Some(previous) = self.replaced.take() {
            std::fs::write(self.dir().join(FILES[previous]), BASE[previous]).unwrap();
        }
        std::fs::write(self.dir().join(FILES[which]), bytes).unwrap();
        self.replaced = Some(which);
        let config = Config::parse(&format!(
            "format = \"pickatime\"\npath = {:?}\nterm = \"Fall\"\n",
            self.name
        ))
        .unwrap();
        let host = Host::new(Arc::new(Silent));
        match pickatime::read_all(&config, &self.parent, host) {
            Ok(records) => crate::records::check_consistent(&records),
            Err(error) => {
                assert_eq!(error.kind, ErrorKind::Input, "{error}");
                let location = error
                    .location
                    .as_deref()
                    .unwrap_or_else(|| panic!("no location: {error}"));
                let rest = location
                    .strip_prefix(&format!("{}/", self.name))
                    .unwrap_or_else(|| panic!("location {location} is not in the folder"));
                let (file, position) = rest
                    .split_once(':')
                    .unwrap_or_else(|| panic!("no line in {location}"));
                let index = FILES
                    .iter()
                    .position(|f| *f == file)
                    .unwrap_or_else(|| panic!("unknown file in {location}"));
                let mut parts = position.split(':');
                let line: u64 = parts
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad line in {location}"));
                let column: Option<usize> = parts.next().map(|c| {
                    c.parse()
                        .unwrap_or_else(|_| panic!("bad column in {location}"))
                });
                assert!(parts.next().is_none(), "{location}");
                let content: &[u8] = if index == which { bytes } else { BASE[index] };
                let lines = physical_lines(content) as u64;
                assert!(
                    line >= 1 && line <= lines.max(1),
                    "{location}: line {line} of {lines}: {error}"
                );
                assert!(column.is_none_or(|c| c >= 1), "{location}");
                assert!(!error.message.is_empty());
            }
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// How many lines a file has as the reader counts them (`\r\n`, `\r` and `\n` each end
/// one; a last line without an ending counts), after decoding.
fn physical_lines(content: &[u8]) -> usize {
    let text = reference_decode(content).0;
    text.iter().filter(|&&b| b == b'\n').count()
}

/// What the streaming decoder must produce, computed in one go: the encoding sniffed
/// from the first bytes, the whole input decoded at once, line endings made `\n`, and a
/// final `\n` added. Returns the text and whether it was UTF-16.
pub fn reference_decode(bytes: &[u8]) -> (Vec<u8>, bool) {
    let (text, utf16): (Vec<u8>, bool) = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => (rest.to_vec(), false),
        [0xFF, 0xFE, rest @ ..] => (utf16(UTF_16LE, rest), true),
        [0xFE, 0xFF, rest @ ..] => (utf16(UTF_16BE, rest), true),
        [a, 0, ..] if *a != 0 => (utf16(UTF_16LE, bytes), true),
        [0, b, ..] if *b != 0 => (utf16(UTF_16BE, bytes), true),
        _ => (bytes.to_vec(), false),
    };
    let mut out = Vec::with_capacity(text.len() + 1);
    let mut after_cr = false;
    for &b in &text {
        match b {
            b'\r' => {
                out.push(b'\n');
                after_cr = true;
            }
            b'\n' if after_cr => after_cr = false,
            _ => {
                out.push(b);
                after_cr = false;
            }
        }
    }
    if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    (out, utf16)
}

fn utf16(encoding: &'static encoding_rs::Encoding, bytes: &[u8]) -> Vec<u8> {
    encoding
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
        .into_bytes()
}

/// The delimiter the header line calls for: the first line that is not blank within the
/// first 64 KiB of text.
fn reference_delimiter(text: &[u8]) -> u8 {
    let head = &text[..text.len().min(1 << 16)];
    let line = head
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    let count = |c: u8| line.iter().filter(|&&b| b == c).count();
    if line.contains(&b'\t') {
        b'\t'
    } else if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

/// The text decoder against [`reference_decode`]; cells through `decode_field`.
pub fn check_decode(bytes: &[u8]) {
    let (out, delimiter, utf16) =
        fuzzing::decode(bytes.to_vec(), Delimiter::Auto).expect("decoding from memory cannot fail");
    let (expected, expected_utf16) = reference_decode(bytes);
    assert_eq!(utf16, expected_utf16, "encoding");
    if out != expected {
        let at = out
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(out.len().min(expected.len()));
        panic!(
            "decoded text differs at byte {at} (lengths {} and {}): {:?} vs {:?}",
            out.len(),
            expected.len(),
            String::from_utf8_lossy(&out[at..out.len().min(at + 40)]),
            String::from_utf8_lossy(&expected[at..expected.len().min(at + 40)]),
        );
    }
    assert_eq!(delimiter, reference_delimiter(&out), "delimiter");
    if utf16 {
        assert!(
            std::str::from_utf8(&out).is_ok(),
            "UTF-16 input decodes to UTF-8"
        );
    }
    for cell in out.split(|&b| b == b'\n' || b == delimiter) {
        let (text, latin1) = fuzzing::decode_field(cell);
        assert_eq!(latin1, std::str::from_utf8(cell).is_err());
        assert!(latin1 || text.as_bytes() == cell);
    }
    for delimiter in [Delimiter::Tab, Delimiter::Comma, Delimiter::Semicolon] {
        let (forced, chosen, _) = fuzzing::decode(bytes.to_vec(), delimiter).unwrap();
        assert_eq!(forced, expected);
        assert_eq!(
            chosen,
            match delimiter {
                Delimiter::Tab => b'\t',
                Delimiter::Comma => b',',
                _ => b';',
            }
        );
    }
}
