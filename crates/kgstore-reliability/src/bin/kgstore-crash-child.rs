//! The writer the crash harness kills: `kgstore-crash-child URL SEED START`.
//! See `kgstore_reliability::crash`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    match kgstore_reliability::crash::child_main(&args, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kgstore-crash-child: {message}");
            ExitCode::FAILURE
        }
    }
}
