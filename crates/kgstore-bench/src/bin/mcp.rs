//! The `kgstore-bench-mcp` binary; everything it does is in `kgstore_bench::mcp`.

fn main() -> std::process::ExitCode {
    kgstore_bench::mcp::main_entry()
}
