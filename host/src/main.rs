// An import allocates millions of short strings on the reading thread and frees them on
// the writing one; glibc malloc spent a third of a large import on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    roster_host::store::configure_sqlite();
    roster_host::main()
}
