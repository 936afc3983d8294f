//! The `kgstore` binary; see the `kgstore_cli` library for everything it does.

fn main() {
    std::process::exit(kgstore_cli::main_entry());
}
