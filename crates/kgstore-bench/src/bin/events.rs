//! The `kgstore-bench-events` binary; everything it does is in `kgstore_bench::events`.

fn main() -> std::process::ExitCode {
    kgstore_bench::events::main_entry()
}
