//! The `kgstore-bench-mp` binary; everything it does is in the library's `mp` module.

fn main() -> std::process::ExitCode {
    kgstore_bench::mp::main_entry()
}
