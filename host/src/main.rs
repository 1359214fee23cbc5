fn main() -> std::process::ExitCode {
    roster_host::main()
}
