//! Starting the disk writes of a job's files early, so that its commit does not wait for
//! all of them at the end.
//!
//! SQLite writes a job's pages through the kernel's page cache and, at the commit (a
//! WAL checkpoint, or a rollback journal's commit), asks for them to reach the disk with
//! `fsync`. The kernel starts writing dirty pages on its own only after 30 s or gigabytes,
//! so an import of a few seconds writes nothing until that `fsync`, which then waits for
//! all of it: at nyc, a 1% re-sync's commit spent 0.6 s in two `fsync`s, and another
//! 0.15 s deleting the WAL while its pages were still dirty. A thread asks the kernel every
//! [`EVERY`] to start writing what is dirty in the database and its WAL
//! (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`, which only starts the writes, as
//! PostgreSQL does with its `*_flush_after` settings), so the disk works while the job
//! does. What is durable, and when, is unchanged: SQLite's own `fsync`s still decide it.
//!
//! Linux only; elsewhere the thread is not started.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(100);

/// Until dropped, a job's WAL (and, once asked, its database) is written back as it goes.
pub struct EarlyWriteback {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    stopped: bool,
    database: bool,
}

impl EarlyWriteback {
    /// Nothing is started for a database without a file (in memory), or where the kernel
    /// has no such call: the job runs the same, its commit waits for every write.
    pub fn start(database: Option<&Path>) -> EarlyWriteback {
        let shared = Arc::new(Shared::default());
        let thread = database
            .filter(|_| cfg!(target_os = "linux"))
            .and_then(|database| {
                let (database, wal) = (database.to_path_buf(), with_suffix(database, "-wal"));
                let shared = shared.clone();
                // No thread, no early writes: the commit waits for them as it always did.
                std::thread::Builder::new()
                    .name("writeback".into())
                    .spawn(move || run(&database, &wal, &shared))
                    .ok()
            });
        EarlyWriteback { shared, thread }
    }

    /// The database's own pages from now on. Not from the start: while a job runs, the
    /// database changes only in a first import (through a rollback journal), whose pages
    /// are written again and again as its B-trees grow; written back each time, they
    /// would cost the disk and the kernel's CPU many times over. From the index builds
    /// and the commit (the WAL's checkpoint) on, each page is written once.
    pub fn include_database(&self) {
        lock(&self.shared.state).database = true;
    }
}

impl Drop for EarlyWriteback {
    fn drop(&mut self) {
        lock(&self.shared.state).stopped = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn run(database: &Path, wal: &Path, shared: &Shared) {
    // Each opened once found: the WAL appears with the job's first write.
    let (mut database_file, mut wal_file) = (None, None);
    let mut state = lock(&shared.state);
    while !state.stopped {
        let database_too = state.database;
        drop(state);
        for (path, file, wanted) in [
            (wal, &mut wal_file, true),
            (database, &mut database_file, database_too),
        ] {
            if !wanted {
                continue;
            }
            if file.is_none() {
                *file = std::fs::File::open(path).ok();
            }
            if let Some(file) = file {
                start_writing(file);
            }
        }
        state = lock(&shared.state);
        if !state.stopped {
            state = shared
                .wake
                .wait_timeout(state, EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(target_os = "linux")]
fn start_writing(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor for the call's duration; offset 0 and length 0 mean the
    // whole file. The call only starts writes of pages already dirty: an error (a file
    // system without it) costs nothing but the early start, so it is not reported.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writing(_: &std::fs::File) {}

/// Pages of `path` the kernel still has to write: dirty, or being written (the
/// `cachestat` system call, Linux 6.5 and later). What this thread is for, and what the
/// bench checks of the databases it copies before a measured run.
#[cfg(target_os = "linux")]
pub fn unwritten_pages(path: &Path) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        offset: u64,
        length: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cached: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let file = std::fs::File::open(path)?;
    // Offset and length 0: the whole file.
    let range = Range {
        offset: 0,
        length: 0,
    };
    let mut stat = Stat::default();
    // SAFETY: both structs are laid out as the kernel's and live through the call.
    let result = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.dirty + stat.writeback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn unwritten(path: &Path) -> u64 {
        unwritten_pages(path).expect("cachestat (Linux 6.5 and later)")
    }

    /// Dirty pages of a WAL that appears after the start are written without an `fsync`
    /// while the job runs, and the database's once the job says so. Left to itself the kernel would
    /// wait 30 s (`vm.dirty_expire_centisecs`) or for gigabytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_later_wal_and_then_the_database_are_written_while_the_job_runs() {
        // Beside the test binary, on the target folder's disk: a tmpfs has no writeback.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let database = dir.path().join("roster.db");
        let wal = with_suffix(&database, "-wal");
        std::fs::write(&database, vec![7u8; 4 << 20]).unwrap();
        assert!(unwritten(&database) > 0, "dirty until written back");
        let writeback = EarlyWriteback::start(Some(&database));
        std::thread::sleep(EVERY);
        std::fs::write(&wal, vec![7u8; 4 << 20]).unwrap();
        assert!(unwritten(&wal) > 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while unwritten(&wal) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "WAL still unwritten after 10 s: {}",
                unwritten(&wal)
            );
            std::thread::sleep(EVERY);
        }
        // The database waits until the job asks.
        std::thread::sleep(EVERY * 3);
        assert!(unwritten(&database) > 0, "the database left alone");
        writeback.include_database();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while unwritten(&database) + unwritten(&wal) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "still unwritten after 10 s: database {}, WAL {}",
                unwritten(&database),
                unwritten(&wal)
            );
            std::thread::sleep(EVERY);
        }
        drop(writeback);
    }

    #[test]
    fn a_database_in_memory_starts_no_thread() {
        assert!(EarlyWriteback::start(None).thread.is_none());
    }
}
