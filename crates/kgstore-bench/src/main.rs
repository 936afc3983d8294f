//! The `kgstore-bench` binary; everything it does is in the library's `run_cli`.

fn main() -> std::process::ExitCode {
    kgstore_bench::main_entry()
}
