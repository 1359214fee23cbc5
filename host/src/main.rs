// An import allocates millions of short strings on the reading thread and frees them on
// the writing one; glibc malloc spent a third of a large import on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Before any thread starts.
    roster_core::allocator::return_freed_memory_soon();
    roster_host::store::configure_sqlite();
    roster_host::main()
}

#[cfg(test)]
mod tests {
    use roster_core::allocator::MIMALLOC_PURGE_DELAY_OPTION;

    #[test]
    fn the_option_main_sets_is_mimallocs_purge_delay() {
        // Nothing in this test binary has set it: mimalloc 3's default, 1000 ms, which no
        // other option of its has. The plugin files link the same mimalloc.
        let default = unsafe { libmimalloc_sys::mi_option_get(MIMALLOC_PURGE_DELAY_OPTION) };
        assert_eq!(default, 1000);
    }
}
