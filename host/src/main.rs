// An import allocates millions of short strings on the reading thread and frees them on
// the writing one; glibc malloc spent a third of a large import on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`; the Rust bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Freed memory goes back to the system after 100 ms, not the second mimalloc 3 waits:
    // an import's phases hand memory from one map to the next, and memory held that
    // second was at nyc 50-210 MiB of each import's peak. 10 ms (mimalloc 2's delay)
    // saved 25 MiB more and cost a Clever import 5-10% more CPU (docs/performance.md,
    // item 29). Each plugin file sets its own allocator's.
    // SAFETY: sets a number in mimalloc's options, before any thread starts.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    roster_host::store::configure_sqlite();
    roster_host::main()
}

#[cfg(test)]
mod tests {
    use super::MI_OPTION_PURGE_DELAY;

    #[test]
    fn the_option_main_sets_is_mimallocs_purge_delay() {
        // Nothing in this test binary has set it: mimalloc 3's default, 1000 ms, which no
        // other option of its has.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
