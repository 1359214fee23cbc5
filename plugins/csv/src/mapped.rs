//! A file's text mapped from the kernel's page cache instead of read into new memory.
//!
//! A continuing run compares each file whole with the text the last run read: about
//! 250 MB at nyc. Read, each text is a copy in memory the process has not touched
//! before. On a virtual machine that hands freed memory back to its host, such a page
//! costs the host a fault when first touched (about 17 µs, against 2 µs for memory the
//! machine used lately), and the copies were a quarter of a re-sync's page faults
//! (docs/performance-history.md, item 74). Mapped, the text is the page cache's own
//! pages: no copy and no new memory.
//!
//! A map has one hazard a read has not. A file cut short while it is mapped ends the
//! process with `SIGBUS` at the next touch of a page past its new end, where a read
//! holds a whole copy. So each map is listed where a `SIGBUS` handler finds it: the
//! handler names the file on stderr and ends the process with status 1 before anything
//! is committed, as the run's other errors do. A file changed in place without being
//! cut short changes under the map: [`Watch::check`], at the end of the run, finds that
//! by its size and modification time and fails the run.
//!
//! Only a text that needs no decoding is mapped (UTF-8, a BOM stepped over, `\n` line
//! endings, a last line that ends), and only on Linux; any other is read as before
//! (`text::open`).

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use crate::text::{self, Encoding};

/// A file's text in a map of the file, listed for the `SIGBUS` handler while it lives.
pub struct Mapped {
    // Declared first, dropped first: the place is given back before the map goes.
    #[cfg(target_os = "linux")]
    _listed: sigbus::Listed,
    map: memmap2::Mmap,
    /// Where the text starts: after a BOM.
    start: usize,
}

impl std::ops::Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.start..]
    }
}

/// The file as it was mapped, to find at the end of the run whether it changed since.
pub struct Watch {
    file: File,
    len: u64,
    modified: Option<SystemTime>,
}

impl Watch {
    /// Whether the file still has the size and modification time it had when mapped.
    pub fn check(&self) -> io::Result<bool> {
        let now = self.file.metadata()?;
        Ok(now.len() == self.len && now.modified().ok() == self.modified)
    }
}

/// `path`'s text mapped, if it needs no decoding, with the watch of the file; `None` if
/// it must be read (see the module's docs). `shown` names the file to the handler.
pub fn map(path: &Path, shown: &str) -> io::Result<Option<(Mapped, Watch)>> {
    // Linux only: the handler reads the fault's address from Linux's `siginfo_t`.
    if !cfg!(target_os = "linux") {
        return Ok(None);
    }
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the map is read only. What another process does to the file meanwhile is
    // the module's concern: cut short, the handler ends the run; changed, `Watch` fails it.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    // Sniffed again here, not taken from the caller's open: this is the text mapped.
    let (encoding, start) = text::sniff_encoding(&map);
    let text = &map[start..];
    let plain = encoding == Encoding::Utf8
        && text.last() == Some(&b'\n')
        && memchr::memchr(b'\r', text).is_none();
    if !plain {
        return Ok(None);
    }
    #[cfg(target_os = "linux")]
    let Some(listed) = sigbus::list(map.as_ptr() as usize, map.len(), shown) else {
        // Every place in the list taken: read, as a text that is not mapped is.
        return Ok(None);
    };
    #[cfg(not(target_os = "linux"))]
    let _ = shown;
    let watch = Watch {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        file,
    };
    Ok(Some((
        Mapped {
            #[cfg(target_os = "linux")]
            _listed: listed,
            map,
            start,
        },
        watch,
    )))
}

#[cfg(target_os = "linux")]
mod sigbus {
    //! The maps a `SIGBUS` may come from, and the handler that names their files.
    //!
    //! Everything the handler reads is an atomic in a fixed list, and everything it
    //! does (`write`, `_exit`, `sigaction`) is async-signal-safe.

    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Maps at once: a run has at most two files' texts in hand, and six files in all.
    const PLACES: usize = 16;

    struct Place {
        taken: AtomicBool,
        start: AtomicUsize,
        end: AtomicUsize,
        message: AtomicPtr<u8>,
        message_len: AtomicUsize,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Place = Place {
        taken: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        message: AtomicPtr::new(std::ptr::null_mut()),
        message_len: AtomicUsize::new(0),
    };

    static LIST: [Place; PLACES] = [FREE; PLACES];

    /// The action before this module's, for a `SIGBUS` that is not from a map.
    static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

    /// A map's place in the list, given back when dropped.
    pub struct Listed {
        index: usize,
        /// What the handler writes; freed after `drop` has taken it off the list.
        _message: Box<[u8]>,
    }

    impl Drop for Listed {
        fn drop(&mut self) {
            let place = &LIST[self.index];
            place.start.store(0, Ordering::Release);
            place.end.store(0, Ordering::Release);
            place.message.store(std::ptr::null_mut(), Ordering::Release);
            place.taken.store(false, Ordering::Release);
        }
    }

    /// Lists `len` bytes at `start` as the text of `shown`; `None` when the list is full
    /// or no handler could be installed.
    pub fn list(start: usize, len: usize, shown: &str) -> Option<Listed> {
        PREVIOUS.get_or_init(install).as_ref()?;
        let index = LIST.iter().position(|place| {
            place
                .taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })?;
        let mut message: Box<[u8]> = format!(
            "error: {shown}: cut short while the import read it; nothing was applied\n\
             hint: run the import again once the file is written in full\n"
        )
        .into_bytes()
        .into_boxed_slice();
        let place = &LIST[index];
        place.message_len.store(message.len(), Ordering::Release);
        place.message.store(message.as_mut_ptr(), Ordering::Release);
        place.end.store(start + len, Ordering::Release);
        place.start.store(start, Ordering::Release);
        Some(Listed {
            index,
            _message: message,
        })
    }

    /// Installs the handler once; the action it replaces, or `None` if it could not.
    fn install() -> Option<libc::sigaction> {
        // SAFETY: plain data, filled in below; `sigaction` is called with valid pointers.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handle as *const () as usize;
            // On the thread's alternate stack where it has one, as Rust's own handler for
            // a stack overflow runs.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0).then_some(previous)
        }
    }

    extern "C" fn handle(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO` handler.
        let address = unsafe { (*info).si_addr() } as usize;
        for place in &LIST {
            let start = place.start.load(Ordering::Acquire);
            if start != 0 && start <= address && address < place.end.load(Ordering::Acquire) {
                let message = place.message.load(Ordering::Acquire);
                let len = place.message_len.load(Ordering::Acquire);
                // SAFETY: the place's message lives while the place is listed, and the map
                // this fault is in is listed; `write` and `_exit` are async-signal-safe.
                unsafe {
                    if !message.is_null() {
                        libc::write(2, message.cast(), len);
                    }
                    libc::_exit(1);
                }
            }
        }
        // Not from a map: back to the action before, and the fault, taken again on return,
        // goes to it (Rust's stack-overflow handler in the host, or the default).
        if let Some(Some(previous)) = PREVIOUS.get() {
            // SAFETY: restores an action `sigaction` gave back.
            unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Student.txt");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn plain_text_is_mapped_after_its_bom() {
        for (bytes, text) in [
            (&b"ID\tLast\n1\tAb\n"[..], &b"ID\tLast\n1\tAb\n"[..]),
            (b"\xEF\xBB\xBFID\n1\n", b"ID\n1\n"),
        ] {
            let (_dir, path) = file_with(bytes);
            let (mapped, watch) = map(&path, "Student.txt").unwrap().expect("mapped");
            assert_eq!(&*mapped, text);
            assert!(watch.check().unwrap());
        }
    }

    #[test]
    fn text_that_needs_decoding_is_read_instead() {
        for bytes in [
            &b"ID\r\n1\r\n"[..],
            b"ID\n1",
            b"",
            b"\xFF\xFEI\0D\0\n\0",
            b"I\0D\0\n\0",
        ] {
            let (_dir, path) = file_with(bytes);
            assert!(map(&path, "Student.txt").unwrap().is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn a_file_changed_while_mapped_is_found() {
        let (_dir, path) = file_with(b"ID\n1\n");
        let (_mapped, watch) = map(&path, "Student.txt").unwrap().expect("mapped");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2\n")
            .unwrap();
        assert!(!watch.check().unwrap());
    }

    /// The part of the two tests below that runs in a process of its own: a file is cut
    /// short under a map this module listed, or under another (`ROSTER_TEST_MAP=other`),
    /// with the handler installed either way, and the map read past the file's new end.
    #[test]
    fn cut_short_under_a_map() {
        let Some(path) = std::env::var_os("ROSTER_TEST_CUT_SHORT") else {
            return;
        };
        let path = std::path::PathBuf::from(path);
        let (listed, _watch) = map(&path, "school/Student.txt").unwrap().expect("mapped");
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // SAFETY: the test cuts the file short under this map on purpose.
        let other = unsafe { memmap2::Mmap::map(&File::open(&path).unwrap()) }.unwrap();
        let read: &[u8] = match std::env::var("ROSTER_TEST_MAP").as_deref() {
            Ok("other") => &other,
            _ => &listed,
        };
        file.set_len(0).unwrap();
        let last = std::hint::black_box(read[read.len() - 1]);
        panic!("read {last} past the end of a file cut short");
    }

    /// `cut_short_under_a_map` in a process of its own, and its stderr.
    fn cut_short_alone(map: &str) -> (std::process::ExitStatus, String) {
        let (_dir, path) = file_with(&b"ID\n1\n".repeat(10_000));
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "mapped::tests::cut_short_under_a_map",
                "--nocapture",
            ])
            .env("ROSTER_TEST_CUT_SHORT", &path)
            .env("ROSTER_TEST_MAP", map)
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn a_file_cut_short_while_mapped_ends_the_run_naming_it() {
        let (status, stderr) = cut_short_alone("listed");
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                "error: school/Student.txt: cut short while the import read it; nothing was applied\n\
                 hint: run the import again once the file is written in full\n"
            ),
            "{stderr}"
        );
    }

    #[test]
    fn a_fault_outside_the_maps_goes_to_the_action_before() {
        use std::os::unix::process::ExitStatusExt;
        let (status, stderr) = cut_short_alone("other");
        assert_eq!(status.signal(), Some(libc::SIGBUS), "{stderr}");
        assert!(!stderr.contains("cut short while"), "{stderr}");
    }
}
