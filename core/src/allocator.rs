//! How roster's allocators hand freed memory back. The host and each bundled plugin file
//! have a mimalloc of their own (a cdylib does not share the host's); each sets it
//! through here (the `mimalloc` feature: this crate is compiled into each of them, and
//! so calls the caller's own), so that the delays and the operator's say over them live
//! in one place.

use std::ffi::{c_int, c_long, OsStr};

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`; the Rust bindings do not name it).
pub const MIMALLOC_PURGE_DELAY_OPTION: c_int = 15;

/// The purge delay (ms) to set: 100, not the second mimalloc 3 waits before freed memory
/// goes back to the system. An import's phases hand memory from one map to the next, and
/// memory held that second was 50-210 MiB of each nyc import's peak; 10 ms (mimalloc 2's
/// delay) saved 25 MiB more and cost a Clever import 5-10% more CPU (docs/performance.md,
/// item 29). `None` when the operator set `MIMALLOC_PURGE_DELAY`: mimalloc has read it,
/// and it stands.
pub fn mimalloc_purge_delay() -> Option<c_long> {
    purge_delay_given(std::env::var_os("MIMALLOC_PURGE_DELAY").as_deref(), 100)
}

/// The purge delay (ms) for a run that continues from the last one, from when it knows it
/// does: mimalloc's own second. Such a run lasts seconds, and memory it gave back after
/// 100 ms it took again moments later as new pages, which on a virtual machine can cost
/// the host's fault on top of the kernel's: at nyc a re-sync takes 15,000-18,000 fewer
/// page faults with the second, for 25-50 MiB more at its peak (docs/performance.md,
/// item 76). `None` when the operator set `MIMALLOC_PURGE_DELAY`.
pub fn continuing_run_purge_delay() -> Option<c_long> {
    purge_delay_given(std::env::var_os("MIMALLOC_PURGE_DELAY").as_deref(), 1000)
}

/// Sets the purge delay for an import (see [`mimalloc_purge_delay`]) on the mimalloc of
/// the binary or plugin file that calls it: each links its own, and this crate with it.
#[cfg(feature = "mimalloc")]
pub fn return_freed_memory_soon() {
    set_purge_delay(mimalloc_purge_delay());
}

/// Sets the purge delay for a continuing run (see [`continuing_run_purge_delay`]), as
/// [`return_freed_memory_soon`] does for an import.
#[cfg(feature = "mimalloc")]
pub fn hold_freed_memory_for_a_continuing_run() {
    set_purge_delay(continuing_run_purge_delay());
}

#[cfg(feature = "mimalloc")]
fn set_purge_delay(delay: Option<c_long>) {
    if let Some(delay) = delay {
        // SAFETY: sets a number in mimalloc's options, which it reads as it purges.
        unsafe { libmimalloc_sys::mi_option_set(MIMALLOC_PURGE_DELAY_OPTION, delay) };
    }
}

fn purge_delay_given(operator: Option<&OsStr>, ours: c_long) -> Option<c_long> {
    operator.is_none().then_some(ours)
}

#[cfg(test)]
mod tests {
    use super::purge_delay_given;
    use std::ffi::OsStr;

    #[test]
    fn the_operators_purge_delay_stands() {
        assert_eq!(purge_delay_given(None, 100), Some(100));
        assert_eq!(purge_delay_given(Some(OsStr::new("10")), 100), None);
        assert_eq!(purge_delay_given(Some(OsStr::new("")), 1000), None);
    }
}
