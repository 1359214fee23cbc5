//! WAL writes gathered into large ones: a VFS over SQLite's own that passes everything
//! through, except that a transaction's WAL frames, appended one after another, reach
//! the kernel together.
//!
//! SQLite writes each WAL frame with two `pwrite`s (its 24-byte header, then the page),
//! one frame at a time as the page cache spills and at the commit; and before a commit
//! that rewrote one of its own frames in place (a page spilled twice), it reads every
//! frame from there on again and rewrites each header with new checksums
//! (`walRewriteChecksums`): a `pread` and a `pwrite` per frame. A night's re-sync at nyc
//! writes 117,000 frames, and a system call costs microseconds on this kind of machine:
//! half of such a run's million calls were these. Here they go in runs of up to
//! [`CAPACITY`] bytes, and the checksum pass reads ahead the same way.
//!
//! What SQLite can observe is unchanged:
//! - Bytes are held only while this connection holds the WAL write lock (watched on the
//!   database file's shared-memory locks), the only time SQLite writes a WAL. When it
//!   lets go, whatever is still held belongs to a transaction rolled back (frames past
//!   the WAL's end for SQLite) and is dropped before another connection can write there;
//!   so is anything read ahead.
//! - Nothing is held past a commit. A commit frame's header (the only 24-byte write with
//!   a database size in it) writes out everything before it, reporting any error to
//!   SQLite as that write's, and goes through, as does every write after it until the
//!   next frame header: by the time SQLite publishes the commit in the WAL index, every
//!   byte of it was handed to the kernel, as without this VFS. With `synchronous=NORMAL`
//!   a commit is not synced either way; with FULL, a sync writes out first.
//! - A read of bytes held is answered from them; a read overlapping them, a sync,
//!   truncation, size query or file control writes them out first. A failed write-out
//!   keeps them and fails the call; SQLite rolls back, as for any failed write.
//!
//! Database and WAL files are wrapped (the database for its locks, every other call
//! passed through); journals and temporary files are SQLite's own.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name connections ask for (`Connection::open_with_flags_and_vfs`).
pub const VFS_NAME: &CStr = c"roster";

/// Bytes held before they are written: 31 frames of 4 KiB pages. The most SQLite's unix
/// VFS writes with one call: it takes each write's length modulo 128 KiB (`nBuf &=
/// 0x1ffff` in `seekAndWriteFd`), and a longer one fails as a full disk.
const CAPACITY: usize = 0x1ffff;

/// A WAL frame's header; SQLite writes it alone, before the frame's page.
const FRAME_HEADER: usize = 24;

/// Register the VFS (once per process; later calls return the first call's result).
pub fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` is the default VFS, which lives as long as the
        // process. Ours is a copy of it (so every function it does not replace sees the
        // same `pAppData` and path length) that SQLite keeps for good: leaked on purpose.
        unsafe {
            let default = ffi::sqlite3_vfs_find(std::ptr::null());
            if default.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let default_file = (*default).szOsFile;
            let Ok(size) = c_int::try_from(REAL_OFFSET + default_file as usize) else {
                return Err(ffi::SQLITE_ERROR);
            };
            let _ = DEFAULT.set(Vfs(default));
            let vfs = Box::leak(Box::new(*default));
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = VFS_NAME.as_ptr();
            vfs.szOsFile = size;
            vfs.xOpen = Some(open);
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                code => Err(code),
            }
        }
    })
}

/// The VFS ours wraps.
struct Vfs(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and safe to use from any
// thread (SQLite's own contract for `sqlite3_vfs`).
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}
static DEFAULT: OnceLock<Vfs> = OnceLock::new();

/// A database or WAL file as SQLite allocates it for this VFS: `szOsFile` bytes, this
/// first, the default VFS's own file at [`REAL_OFFSET`].
#[repr(C)]
struct Wrapped {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// A WAL file's held bytes, which it owns (null: every call passes through); a
    /// database file's WAL's, while that is open (null otherwise).
    held: *mut Held,
    /// A WAL file's database file, whose `held` points at this one's.
    database: *mut Wrapped,
}

const REAL_OFFSET: usize = std::mem::size_of::<Wrapped>().next_multiple_of(16);

/// The slot of SQLite's WAL write lock among its shared-memory locks (`WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

static DATABASE_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(database_close),
    xRead: Some(database_read),
    xWrite: Some(database_write),
    xTruncate: Some(database_truncate),
    xSync: Some(database_sync),
    xFileSize: Some(database_file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(database_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = DEFAULT.get().expect("registered before use").0;
    let default_open = (*default).xOpen.expect("a VFS opens files");
    let (database, wal) = (
        flags & ffi::SQLITE_OPEN_MAIN_DB != 0,
        flags & ffi::SQLITE_OPEN_WAL != 0,
    );
    if !database && !wal {
        // Journals and temporary files: SQLite's own, in an allocation a little larger
        // than they need.
        return default_open(default, name, file, flags, out_flags);
    }
    let wrapped = file.cast::<Wrapped>();
    let real = file
        .cast::<u8>()
        .add(REAL_OFFSET)
        .cast::<ffi::sqlite3_file>();
    (*wrapped).base.pMethods = std::ptr::null();
    (*real).pMethods = std::ptr::null();
    let code = default_open(default, name, real, flags, out_flags);
    if code != ffi::SQLITE_OK {
        if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
            close(real);
        }
        return code;
    }
    (*wrapped).real = real;
    (*wrapped).held = std::ptr::null_mut();
    (*wrapped).database = std::ptr::null_mut();
    let methods = &*(*real).pMethods;
    if database {
        let shared_memory = methods.iVersion >= 3
            && methods.xShmMap.is_some()
            && methods.xShmLock.is_some()
            && methods.xShmBarrier.is_some()
            && methods.xShmUnmap.is_some();
        if !shared_memory {
            // A file without the methods ours forward (another locking style): SQLite's
            // own file then, where it expects it, and its WAL passed through.
            close_real(real);
            return default_open(default, name, file, flags, out_flags);
        }
        (*wrapped).base.pMethods = &DATABASE_METHODS;
        return ffi::SQLITE_OK;
    }
    // The database file object SQLite opened this WAL for (`name` is the pointer SQLite
    // passed, as the call requires).
    let owner = ffi::sqlite3_database_file_object(name).cast::<Wrapped>();
    if !owner.is_null() && std::ptr::eq((*owner).base.pMethods, &DATABASE_METHODS) {
        let held = Box::into_raw(Box::<Held>::default());
        (*wrapped).held = held;
        (*wrapped).database = owner;
        (*owner).held = held;
    }
    (*wrapped).base.pMethods = &WAL_METHODS;
    ffi::SQLITE_OK
}

unsafe fn close_real(real: *mut ffi::sqlite3_file) -> c_int {
    match (*real).pMethods.as_ref().and_then(|m| m.xClose) {
        Some(close) => close(real),
        None => ffi::SQLITE_OK,
    }
}

/// The real file under `file`, and the bytes held for it or its WAL, if any.
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (Real, Option<&'a mut Held>) {
    let wrapped = file.cast::<Wrapped>();
    (Real((*wrapped).real), (*wrapped).held.as_mut())
}

/// The default VFS's file under ours.
#[derive(Clone, Copy)]
struct Real(*mut ffi::sqlite3_file);

impl Real {
    fn methods(self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: set by the default VFS's successful open, valid until its close.
        unsafe { &*(*self.0).pMethods }
    }
}

impl File for Real {
    fn write(&mut self, bytes: &[u8], offset: i64) -> c_int {
        let write = self.methods().xWrite.expect("files are writable");
        // SAFETY: `bytes` is valid for its length, which `CAPACITY` keeps below c_int.
        unsafe { write(self.0, bytes.as_ptr().cast(), bytes.len() as c_int, offset) }
    }

    fn read(&mut self, buffer: &mut [u8], offset: i64) -> c_int {
        let read = self.methods().xRead.expect("files are readable");
        // SAFETY: as for `write`.
        unsafe {
            read(
                self.0,
                buffer.as_mut_ptr().cast(),
                buffer.len() as c_int,
                offset,
            )
        }
    }

    fn size(&mut self) -> Result<i64, c_int> {
        let size = self.methods().xFileSize.expect("files have a size");
        let mut bytes = 0;
        // SAFETY: `bytes` outlives the call.
        match unsafe { size(self.0, &mut bytes) } {
            ffi::SQLITE_OK => Ok(bytes),
            code => Err(code),
        }
    }
}

/// A WAL file's close: what is held then belongs to no commit (every commit wrote its
/// bytes out) and goes.
unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wrapped = file.cast::<Wrapped>();
    if !(*wrapped).held.is_null() {
        drop(Box::from_raw((*wrapped).held));
        (*wrapped).held = std::ptr::null_mut();
        if let Some(owner) = (*wrapped).database.as_mut() {
            owner.held = std::ptr::null_mut();
        }
    }
    database_close(file)
}

/// Closes the real file; what SQLite holds is then no file of this VFS's.
unsafe extern "C" fn database_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wrapped = file.cast::<Wrapped>();
    let code = close_real((*wrapped).real);
    (*wrapped).base.pMethods = std::ptr::null();
    code
}

unsafe extern "C" fn wal_read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (mut real, held) = parts(file);
    let buffer = std::slice::from_raw_parts_mut(buffer.cast::<u8>(), amount as usize);
    match held {
        Some(held) => held.read(&mut real, buffer, offset),
        None => real.read(buffer, offset),
    }
}

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (mut real, held) = parts(file);
    let bytes = std::slice::from_raw_parts(buffer.cast::<u8>(), amount as usize);
    match held {
        Some(held) => held.write(&mut real, bytes, offset),
        None => real.write(bytes, offset),
    }
}

/// A WAL file's method that writes out what is held, then calls the real file's.
macro_rules! after_write_out {
    ($name:ident ( $($arg:ident : $ty:ty),* ), $method:ident) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let (mut real, held) = parts(file);
            if let Some(held) = held {
                let code = held.write_out(&mut real);
                if code != ffi::SQLITE_OK {
                    return code;
                }
            }
            match real.methods().$method {
                Some(method) => method(real.0, $($arg),*),
                None => ffi::SQLITE_NOTFOUND,
            }
        }
    };
}

after_write_out!(wal_truncate(size: i64), xTruncate);
after_write_out!(wal_sync(flags: c_int), xSync);
after_write_out!(wal_file_size(size: *mut i64), xFileSize);
after_write_out!(wal_file_control(op: c_int, arg: *mut c_void), xFileControl);

/// A method that only calls the real file's: nothing held concerns it.
macro_rules! through {
    ($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty, $method:ident, $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            let (real, _) = parts(file);
            match real.methods().$method {
                Some(method) => method(real.0, $($arg),*),
                None => $missing,
            }
        }
    };
}

through!(database_read(buffer: *mut c_void, amount: c_int, offset: i64) -> c_int, xRead, ffi::SQLITE_IOERR_READ);
through!(database_write(buffer: *const c_void, amount: c_int, offset: i64) -> c_int, xWrite, ffi::SQLITE_IOERR_WRITE);
through!(database_truncate(size: i64) -> c_int, xTruncate, ffi::SQLITE_IOERR_TRUNCATE);
through!(database_sync(flags: c_int) -> c_int, xSync, ffi::SQLITE_IOERR_FSYNC);
through!(database_file_size(size: *mut i64) -> c_int, xFileSize, ffi::SQLITE_IOERR_FSTAT);
through!(database_file_control(op: c_int, arg: *mut c_void) -> c_int, xFileControl, ffi::SQLITE_NOTFOUND);
through!(lock(level: c_int) -> c_int, xLock, ffi::SQLITE_OK);
through!(unlock(level: c_int) -> c_int, xUnlock, ffi::SQLITE_OK);
through!(check_reserved_lock(out: *mut c_int) -> c_int, xCheckReservedLock, ffi::SQLITE_OK);
through!(sector_size() -> c_int, xSectorSize, 4096);
through!(device_characteristics() -> c_int, xDeviceCharacteristics, 0);
through!(shm_map(page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, xShmMap, ffi::SQLITE_IOERR_SHMMAP);
through!(shm_barrier() -> (), xShmBarrier, ());
through!(shm_unmap(delete: c_int) -> c_int, xShmUnmap, ffi::SQLITE_OK);
through!(fetch(offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int, xFetch, {
    *out = std::ptr::null_mut();
    ffi::SQLITE_OK
});
through!(unfetch(offset: i64, page: *mut c_void) -> c_int, xUnfetch, ffi::SQLITE_OK);

/// The database file's shared-memory locks, watched for the WAL write lock: only its
/// holder writes the WAL, so bytes are held only while this connection holds it, and
/// whatever is held when it lets go (a transaction rolled back: its frames are garbage
/// past the WAL's end) goes before another connection may write there.
unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    count: c_int,
    flags: c_int,
) -> c_int {
    let (real, held) = parts(file);
    let Some(shm_lock) = real.methods().xShmLock else {
        return ffi::SQLITE_IOERR_SHMLOCK;
    };
    let write_lock = offset <= WAL_WRITE_LOCK && WAL_WRITE_LOCK < offset + count;
    let unlock = flags & ffi::SQLITE_SHM_UNLOCK != 0;
    match held {
        Some(held) if write_lock && unlock => {
            held.let_go();
            shm_lock(real.0, offset, count, flags)
        }
        Some(held) if write_lock && flags & ffi::SQLITE_SHM_EXCLUSIVE != 0 => {
            let code = shm_lock(real.0, offset, count, flags);
            held.write_locked = code == ffi::SQLITE_OK;
            code
        }
        _ => shm_lock(real.0, offset, count, flags),
    }
}

/// The file under the held bytes: the real one, or a test's.
trait File {
    /// SQLite result codes, as the VFS's methods return them.
    fn write(&mut self, bytes: &[u8], offset: i64) -> c_int;
    fn read(&mut self, buffer: &mut [u8], offset: i64) -> c_int;
    fn size(&mut self) -> Result<i64, c_int>;
}

/// A run of a WAL file's bytes, `start..start + bytes.len()`, kept in memory: written
/// by SQLite and not yet passed on (`dirty`), or read ahead for a sequential reader.
///
/// Besides the frames a transaction appends, the window serves the one sequential pass
/// SQLite makes over a WAL: before a commit that rewrote a frame of its own transaction
/// in place, it reads every frame from that one on and rewrites each one's 24-byte
/// header with new checksums (`walRewriteChecksums`), a `pread` and a `pwrite` per frame.
/// Read ahead into the window, those headers are written back together with their pages.
#[derive(Default)]
struct Held {
    start: i64,
    bytes: Vec<u8>,
    /// Holds bytes the file does not have yet.
    dirty: bool,
    /// From a commit frame's header to the next frame header: every write goes through.
    through: bool,
    /// Where the last read ended: a read starting there is sequential.
    last_read_end: i64,
    /// This connection holds the WAL write lock: nobody else writes the WAL.
    write_locked: bool,
}

impl Held {
    fn end(&self) -> i64 {
        self.start + self.bytes.len() as i64
    }

    fn holds(&self, offset: i64, length: usize) -> bool {
        !self.bytes.is_empty() && offset >= self.start && offset + length as i64 <= self.end()
    }

    fn overlaps(&self, offset: i64, length: usize) -> bool {
        !self.bytes.is_empty() && offset < self.end() && offset + length as i64 > self.start
    }

    fn write(&mut self, file: &mut dyn File, bytes: &[u8], offset: i64) -> c_int {
        if !self.write_locked {
            // Not SQLite's way (it writes a WAL under the lock), so not held either.
            let code = self.write_out(file);
            if code != ffi::SQLITE_OK {
                return code;
            }
            return file.write(bytes, offset);
        }
        if bytes.len() == FRAME_HEADER {
            // Bytes 4..8 of a frame header: the database's size after a commit, else 0.
            self.through = bytes[4..8] != [0; 4];
        }
        if self.holds(offset, bytes.len()) && !self.through {
            // A frame rewritten while held, or a header rewritten in a window read ahead.
            let from = (offset - self.start) as usize;
            self.bytes[from..from + bytes.len()].copy_from_slice(bytes);
            self.dirty = true;
            return ffi::SQLITE_OK;
        }
        let appends = self.dirty && offset == self.end();
        if self.through || !appends || self.bytes.len() + bytes.len() > CAPACITY {
            let code = self.write_out(file);
            if code != ffi::SQLITE_OK {
                return code;
            }
        }
        if self.through || bytes.len() >= CAPACITY {
            return file.write(bytes, offset);
        }
        if self.bytes.is_empty() {
            self.start = offset;
            self.bytes.reserve(CAPACITY);
        }
        self.bytes.extend_from_slice(bytes);
        self.dirty = true;
        ffi::SQLITE_OK
    }

    fn read(&mut self, file: &mut dyn File, buffer: &mut [u8], offset: i64) -> c_int {
        let sequential = offset == self.last_read_end;
        self.last_read_end = offset + buffer.len() as i64;
        if !self.holds(offset, buffer.len()) && (sequential || self.overlaps(offset, buffer.len()))
        {
            let code = self.write_out(file);
            if code != ffi::SQLITE_OK {
                return ffi::SQLITE_IOERR_READ;
            }
            if sequential && self.write_locked && buffer.len() < CAPACITY {
                self.read_ahead(file, offset, buffer.len());
            }
        }
        if self.holds(offset, buffer.len()) {
            let from = (offset - self.start) as usize;
            buffer.copy_from_slice(&self.bytes[from..from + buffer.len()]);
            return ffi::SQLITE_OK;
        }
        file.read(buffer, offset)
    }

    /// Up to [`CAPACITY`] bytes from `offset`, as far as the file goes, into the (empty)
    /// window; nothing when that is less than the `wanted` bytes of the read, or when
    /// reading fails (the read then asks the file itself, and reports what it says).
    fn read_ahead(&mut self, file: &mut dyn File, offset: i64, wanted: usize) {
        let Ok(size) = file.size() else {
            return;
        };
        let length = (size - offset).clamp(0, CAPACITY as i64) as usize;
        if length < wanted {
            return;
        }
        self.bytes.resize(length, 0);
        self.start = offset;
        if file.read(&mut self.bytes, offset) != ffi::SQLITE_OK {
            self.bytes.clear();
        }
    }

    /// The write lock goes: nothing held may outlive it (see `shm_lock`).
    fn let_go(&mut self) {
        self.bytes.clear();
        self.dirty = false;
        self.through = false;
        self.write_locked = false;
    }

    /// Pass any bytes the file does not have on, and empty the window; on failure they
    /// stay held, and the code says why.
    fn write_out(&mut self, file: &mut dyn File) -> c_int {
        if self.dirty {
            let code = file.write(&self.bytes, self.start);
            if code != ffi::SQLITE_OK {
                return code;
            }
            self.dirty = false;
        }
        self.bytes.clear();
        ffi::SQLITE_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn open(path: &std::path::Path) -> Connection {
        register().unwrap();
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn
    }

    /// A file in memory, and what SQLite wrote to it so far: what it must read back.
    #[derive(Default)]
    struct Memory {
        file: Vec<u8>,
        writes: usize,
        reads: usize,
    }

    impl File for Memory {
        fn write(&mut self, bytes: &[u8], offset: i64) -> c_int {
            assert!(
                bytes.len() <= CAPACITY,
                "the unix VFS writes no more at once"
            );
            let end = offset as usize + bytes.len();
            if self.file.len() < end {
                self.file.resize(end, 0);
            }
            self.file[offset as usize..end].copy_from_slice(bytes);
            self.writes += 1;
            ffi::SQLITE_OK
        }

        fn read(&mut self, buffer: &mut [u8], offset: i64) -> c_int {
            self.reads += 1;
            let (from, to) = (offset as usize, offset as usize + buffer.len());
            if to > self.file.len() {
                return ffi::SQLITE_IOERR_SHORT_READ;
            }
            buffer.copy_from_slice(&self.file[from..to]);
            ffi::SQLITE_OK
        }

        fn size(&mut self) -> Result<i64, c_int> {
            Ok(self.file.len() as i64)
        }
    }

    fn write_at(model: &mut Vec<u8>, bytes: &[u8], offset: usize) {
        if model.len() < offset + bytes.len() {
            model.resize(offset + bytes.len(), 0);
        }
        model[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// As SQLite's writer finds it: under the WAL write lock.
    fn locked() -> Held {
        Held {
            write_locked: true,
            ..Held::default()
        }
    }

    /// A transaction rolled back leaves frames held; they must never reach the file once
    /// the lock is gone (another connection may have written there since), nor be read.
    #[test]
    fn what_is_held_when_the_write_lock_goes_is_dropped_unwritten() {
        let (mut held, mut memory) = (locked(), Memory::default());
        assert_eq!(held.write(&mut memory, &[1; 32], 0), 0);
        assert_eq!(held.write(&mut memory, &header(false, 1), 32), 0);
        assert_eq!(held.write(&mut memory, &[1; 4096], 56), 0);
        assert!(memory.file.is_empty(), "held until a commit");
        held.let_go();
        // Another connection writes the same frame and commits.
        memory.file = vec![2; 56 + 4096];
        let mut page = vec![0; 4096];
        assert_eq!(held.read(&mut memory, &mut page, 56), 0);
        assert_eq!(page, vec![2; 4096]);
        assert_eq!(held.write_out(&mut memory), 0);
        assert_eq!(memory.file, vec![2; 56 + 4096]);
        // Without the lock, writes and reads go straight to the file.
        assert_eq!(held.write(&mut memory, &header(false, 3), 32), 0);
        assert_eq!(memory.file[32], 3);
    }

    /// Frames of 4,096-byte pages after a 32-byte WAL header, as SQLite lays them out.
    fn frame_offset(frame: usize) -> usize {
        32 + frame * (FRAME_HEADER + 4096)
    }

    fn header(commit: bool, seed: u8) -> Vec<u8> {
        let mut header = vec![seed; FRAME_HEADER];
        header[4..8].copy_from_slice(if commit { &[0, 0, 1, 0] } else { &[0; 4] });
        header
    }

    /// SQLite's traffic on a WAL, replayed against the window and against a plain copy:
    /// transactions appending frames, rewriting some in place, reading pages back, a
    /// checksum pass before the commit; every read must see what was last written, and
    /// after each commit frame the file must hold everything written before it.
    #[test]
    fn every_read_sees_the_last_write_and_a_commit_leaves_nothing_held() {
        let mut random = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            (random % bound as u64) as usize
        };
        let (mut held, mut memory, mut model) = (locked(), Memory::default(), Vec::new());
        let write = |held: &mut Held,
                     memory: &mut Memory,
                     model: &mut Vec<u8>,
                     bytes: &[u8],
                     offset: usize| {
            assert_eq!(held.write(memory, bytes, offset as i64), ffi::SQLITE_OK);
            write_at(model, bytes, offset);
        };
        write(&mut held, &mut memory, &mut model, &[7; 32], 0);
        let mut frames = 0;
        for transaction in 0..40u8 {
            let first = frames;
            for _ in 0..1 + next(120) {
                match next(10) {
                    // A frame rewritten in place (a page spilled twice).
                    0 if frames > first => {
                        let frame = first + next(frames - first);
                        let page = vec![transaction ^ 0x55; 4096];
                        write(
                            &mut held,
                            &mut memory,
                            &mut model,
                            &page,
                            frame_offset(frame) + FRAME_HEADER,
                        );
                    }
                    // A page read back.
                    1 if frames > 0 => {
                        let offset = frame_offset(next(frames)) + FRAME_HEADER;
                        let mut page = vec![0; 4096];
                        assert_eq!(
                            held.read(&mut memory, &mut page, offset as i64),
                            ffi::SQLITE_OK
                        );
                        assert!(
                            page == model[offset..offset + 4096],
                            "a read of a stale page"
                        );
                    }
                    _ => {
                        let offset = frame_offset(frames);
                        write(
                            &mut held,
                            &mut memory,
                            &mut model,
                            &header(false, transaction),
                            offset,
                        );
                        write(
                            &mut held,
                            &mut memory,
                            &mut model,
                            &vec![transaction; 4096],
                            offset + FRAME_HEADER,
                        );
                        frames += 1;
                    }
                }
            }
            let offset = frame_offset(frames);
            write(
                &mut held,
                &mut memory,
                &mut model,
                &header(true, transaction),
                offset,
            );
            assert!(
                memory.file == model[..memory.file.len()]
                    && memory.file.len() == offset + FRAME_HEADER
            );
            write(
                &mut held,
                &mut memory,
                &mut model,
                &vec![transaction; 4096],
                offset + FRAME_HEADER,
            );
            frames += 1;
            assert!(
                memory.file == model,
                "the commit's frame reached the file with all before it"
            );
            if transaction % 3 == 0 {
                // The checksum pass: every frame of the transaction read in order, its
                // header written anew, the commit frame's last.
                for frame in first..frames {
                    let offset = frame_offset(frame);
                    let mut whole = vec![0; FRAME_HEADER + 4096];
                    assert_eq!(
                        held.read(&mut memory, &mut whole, offset as i64),
                        ffi::SQLITE_OK
                    );
                    assert!(
                        whole == model[offset..offset + whole.len()],
                        "a stale frame"
                    );
                    let rewritten = header(frame + 1 == frames, transaction.wrapping_add(100));
                    write(&mut held, &mut memory, &mut model, &rewritten, offset);
                }
                assert!(
                    memory.file == model,
                    "the rewritten headers reached the file"
                );
            }
        }
        assert_eq!(held.write_out(&mut memory), ffi::SQLITE_OK);
        assert!(memory.file == model);
    }

    /// What it is for: a transaction of 1,000 frames and the checksum pass over them in
    /// a few dozen calls each, instead of 2,000.
    #[test]
    fn appended_frames_and_a_checksum_pass_reach_the_file_in_large_calls() {
        let (mut held, mut memory) = (locked(), Memory::default());
        for frame in 0..1_000 {
            let offset = frame_offset(frame) as i64;
            assert_eq!(held.write(&mut memory, &header(frame == 999, 1), offset), 0);
            assert_eq!(held.write(&mut memory, &[1; 4096], offset + 24), 0);
        }
        let frames_per_call = CAPACITY / (FRAME_HEADER + 4096);
        assert!(
            memory.writes <= 1_000 / frames_per_call + 3,
            "{} writes",
            memory.writes
        );
        let (writes, reads) = (memory.writes, memory.reads);
        let mut whole = vec![0; FRAME_HEADER + 4096];
        for frame in 0..1_000 {
            let offset = frame_offset(frame) as i64;
            assert_eq!(held.read(&mut memory, &mut whole, offset), 0);
            assert_eq!(held.write(&mut memory, &header(frame == 999, 2), offset), 0);
        }
        let (writes, reads) = (memory.writes - writes, memory.reads - reads);
        assert!(writes <= 1_000 / frames_per_call + 3, "{writes} writes");
        assert!(reads <= 1_000 / frames_per_call + 3, "{reads} reads");
        assert!((0..1_000).all(|frame| memory.file[frame_offset(frame)] == 2));
    }

    /// A large transaction rolled back (frames held and written), another connection's
    /// commit in the same part of the WAL, then a commit of the first: the second's rows
    /// must survive it.
    #[test]
    fn frames_of_a_rolled_back_transaction_never_overwrite_a_later_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let mut first = open(&path);
        first
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 20;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
            )
            .unwrap();
        let tx = first.transaction().unwrap();
        for i in 0..3_000 {
            tx.execute(
                "INSERT INTO t (id, v) VALUES (?1, printf('%0300d', ?1))",
                [i],
            )
            .unwrap();
        }
        tx.rollback().unwrap();
        let second = open(&path);
        second
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 20; BEGIN;
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2989)
                 INSERT INTO t (id, v) SELECT i, printf('%0300d', i) FROM n; COMMIT;",
            )
            .unwrap();
        first
            .execute("INSERT INTO t (id, v) VALUES (5000, 'last')", [])
            .unwrap();
        drop((first, second));
        let check = Connection::open(&path).unwrap();
        let integrity: String = check
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let (count, same): (i64, i64) = check
            .query_row(
                "SELECT count(*), sum(v = printf('%0300d', id) OR id = 5000) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, same), (2_991, 2_991));
    }

    #[test]
    fn a_transaction_larger_than_the_cache_commits_whole_through_the_vfs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        let mut conn = open(&path);
        conn.execute_batch(
            "PRAGMA cache_size = 50; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..20_000 {
            tx.execute(
                "INSERT INTO t (id, v) VALUES (?1, ?2)",
                (i, format!("{i:0>200}")),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let other = Connection::open(&path).unwrap();
        let (count, sum): (i64, i64) = other
            .query_row("SELECT count(*), sum(id) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((count, sum), (20_000, 19_999 * 20_000 / 2));
    }
}
