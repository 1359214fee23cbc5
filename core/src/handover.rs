//! A checkpoint's bytes on their way from the host to the plugin that sent them.
//!
//! A file source's checkpoint runs to tens of MiB (53 MB at nyc), and a continuing run
//! cannot start before the plugin holds it. Written out as hex in the config text, it
//! cost three times its size in new memory and, in a slow hour, half a second before
//! the plugin's first record. On Linux the host reads it from the roster into a sealed
//! memfd instead, and a plugin file built with this crate at 0.1.1 or later maps the
//! same pages: the config's first line names the descriptor (see `abi`). Plugin files
//! built before get the hex they always had, so none is shut out.

use std::fmt;
use std::io;
use std::ops::Deref;

/// The bytes of a checkpoint: read-only, owned, and cheap to hand to a plugin.
pub struct CheckpointBytes(Repr);

enum Repr {
    Owned(Vec<u8>),
    #[cfg(target_os = "linux")]
    Sealed(sealed::Sealed),
}

impl CheckpointBytes {
    /// `len` bytes written by `fill`, in memory a plugin file can map (on Linux; a
    /// buffer of the process's elsewhere).
    pub fn filled<E: From<io::Error>>(
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<CheckpointBytes, E> {
        #[cfg(target_os = "linux")]
        if let Ok(unsealed) = sealed::Unsealed::new(len) {
            return unsealed
                .fill(fill)
                .map(|bytes| CheckpointBytes(Repr::Sealed(bytes)));
        }
        // Where no memfd is to be had (a kernel before 3.17, a sandbox that forbids
        // them): the process's own buffer, which a plugin file gets as hex, as before
        // 0.1.1. The host's log says which (`in_shared_memory`).
        let mut bytes = vec![0; len];
        fill(&mut bytes)?;
        Ok(CheckpointBytes(Repr::Owned(bytes)))
    }

    /// Whether the bytes are in memory shared with the host (as the host handed them over,
    /// not copied).
    pub fn in_shared_memory(&self) -> bool {
        match &self.0 {
            Repr::Owned(_) => false,
            #[cfg(target_os = "linux")]
            Repr::Sealed(_) => true,
        }
    }

    /// The descriptor of the sealed memory holding the bytes, if they are in one.
    #[cfg(target_os = "linux")]
    pub(crate) fn descriptor(&self) -> Option<std::os::fd::RawFd> {
        match &self.0 {
            Repr::Sealed(sealed) => Some(sealed.descriptor()),
            Repr::Owned(_) => None,
        }
    }

    /// The bytes behind the host's descriptor `fd`, mapped: `len` of them, sealed
    /// against any change. The descriptor stays the host's.
    #[cfg(target_os = "linux")]
    pub(crate) fn from_descriptor(fd: i32, len: usize) -> io::Result<CheckpointBytes> {
        sealed::Sealed::open(fd, len).map(|bytes| CheckpointBytes(Repr::Sealed(bytes)))
    }
}

impl Deref for CheckpointBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(bytes) => bytes,
            #[cfg(target_os = "linux")]
            Repr::Sealed(sealed) => sealed.bytes(),
        }
    }
}

impl From<Vec<u8>> for CheckpointBytes {
    fn from(bytes: Vec<u8>) -> Self {
        CheckpointBytes(Repr::Owned(bytes))
    }
}

impl fmt::Debug for CheckpointBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointBytes({} bytes)", self.len())
    }
}

#[cfg(target_os = "linux")]
mod sealed {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::ptr::NonNull;

    /// What makes the memory unchangeable: once these are set, no one can write,
    /// shrink or grow it, so a mapping of it can neither change under a reader nor
    /// fault past its end.
    const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

    pub struct Sealed {
        fd: OwnedFd,
        map: Map,
    }

    /// A memfd of the checkpoint's length, mapped for writing, not yet sealed.
    pub struct Unsealed {
        fd: OwnedFd,
        writable: Map,
    }

    impl Unsealed {
        pub fn new(len: usize) -> io::Result<Unsealed> {
            // SAFETY: a C string and flags; the result is checked.
            let raw = unsafe {
                libc::memfd_create(
                    c"roster checkpoint".as_ptr(),
                    libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
                )
            };
            let fd = owned(raw)?;
            let size = libc::off_t::try_from(len).map_err(|_| io::Error::other("too large"))?;
            // SAFETY: a descriptor this function owns.
            check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
            let writable = Map::new(&fd, len, libc::PROT_READ | libc::PROT_WRITE)?;
            Ok(Unsealed { fd, writable })
        }

        pub fn fill<E: From<io::Error>>(
            mut self,
            fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
        ) -> Result<Sealed, E> {
            fill(self.writable.bytes_mut())?;
            let Unsealed { fd, writable } = self;
            let len = writable.len;
            // The write seal cannot be set while a writable shared mapping exists.
            drop(writable);
            // SAFETY: a descriptor this value owns.
            check(unsafe {
                libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS | libc::F_SEAL_SEAL)
            })?;
            let map = Map::new(&fd, len, libc::PROT_READ)?;
            Ok(Sealed { fd, map })
        }
    }

    impl Sealed {
        pub fn open(host_fd: RawFd, len: usize) -> io::Result<Sealed> {
            // SAFETY: duplicating a descriptor number does not touch what it names; a
            // number that names nothing fails here.
            let fd = owned(unsafe { libc::fcntl(host_fd, libc::F_DUPFD_CLOEXEC, 0) })?;
            // SAFETY: `fd` is this function's, and `stat` is written by the call.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
            if u64::try_from(stat.st_size).ok() != Some(len as u64) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} bytes where {len} were named", stat.st_size),
                ));
            }
            // Only sealed memory is read in place: a file that could shrink under the
            // map would end the process when read past its new end.
            // SAFETY: as above.
            let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
            if seals < 0 || seals & SEALS != SEALS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not sealed against change",
                ));
            }
            let map = Map::new(&fd, len, libc::PROT_READ)?;
            Ok(Sealed { fd, map })
        }

        pub fn descriptor(&self) -> RawFd {
            self.fd.as_raw_fd()
        }

        pub fn bytes(&self) -> &[u8] {
            self.map.bytes()
        }
    }

    /// A shared mapping of a whole memfd; none for an empty one (`mmap` refuses 0 bytes).
    struct Map {
        start: NonNull<u8>,
        len: usize,
    }

    // SAFETY: the mapping is owned by this value alone; writable only through
    // `bytes_mut`, which takes `&mut self`.
    unsafe impl Send for Map {}
    unsafe impl Sync for Map {}

    impl Map {
        fn new(fd: &OwnedFd, len: usize, protection: libc::c_int) -> io::Result<Map> {
            if len == 0 {
                return Ok(Map {
                    start: NonNull::dangling(),
                    len,
                });
            }
            // SAFETY: a fresh mapping of `len` bytes of a file at least that long; the
            // result is checked before use.
            let start = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    protection,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if start == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Map {
                start: NonNull::new(start.cast()).expect("mmap gives no null mapping"),
                len,
            })
        }

        fn bytes(&self) -> &[u8] {
            // SAFETY: `len` mapped bytes (or none), readable while `self` lives.
            unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
        }

        fn bytes_mut(&mut self) -> &mut [u8] {
            // SAFETY: as in `bytes`; only a writable mapping is ever written through.
            unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
        }
    }

    impl Drop for Map {
        fn drop(&mut self) {
            if self.len > 0 {
                // SAFETY: the mapping `new` made, unmapped once.
                unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
            }
        }
    }

    fn owned(raw: RawFd) -> io::Result<OwnedFd> {
        check(raw)?;
        // SAFETY: a descriptor just returned to this process and owned by no one else.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    fn check(result: libc::c_int) -> io::Result<()> {
        if result < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::CheckpointBytes;
    use std::os::fd::AsRawFd;

    #[test]
    fn sealed_bytes_read_back_whole_and_are_mapped_again_from_their_descriptor() {
        for len in [0, 1, 4096, 4097, 3 << 20] {
            let state: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let sealed = CheckpointBytes::filled::<std::io::Error>(len, |out| {
                out.copy_from_slice(&state);
                Ok(())
            })
            .unwrap();
            assert_eq!(&sealed[..], &state[..], "{len} bytes");
            let fd = sealed.descriptor().expect("in sealed memory");
            let taken = CheckpointBytes::from_descriptor(fd, len).unwrap();
            // The plugin's copy of the descriptor outlives the host's.
            drop(sealed);
            assert_eq!(&taken[..], &state[..], "{len} bytes, taken");
        }
    }

    #[test]
    fn a_fill_that_fails_gives_its_own_error() {
        let failed = CheckpointBytes::filled(10, |_| Err(std::io::Error::other("blob gone")));
        assert_eq!(failed.unwrap_err().to_string(), "blob gone");
    }

    #[test]
    fn memory_that_could_still_change_is_not_read_in_place() {
        // A memfd of the right length, but not sealed: it could shrink under the map.
        // SAFETY: a C string and flags; the result is checked.
        let raw = unsafe { libc::memfd_create(c"unsealed".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0);
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        file.set_len(4096).unwrap();
        let error = CheckpointBytes::from_descriptor(file.as_raw_fd(), 4096).unwrap_err();
        assert_eq!(error.to_string(), "not sealed against change");
        // An ordinary file cannot be sealed at all.
        let plain = tempfile_in_target();
        plain.set_len(4096).unwrap();
        let error = CheckpointBytes::from_descriptor(plain.as_raw_fd(), 4096).unwrap_err();
        assert_eq!(error.to_string(), "not sealed against change");
    }

    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("roster-handover-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
