//! A consumer of the "under fire" scenario: `kgstore-fire-child URL ID SEED`.
//! See `kgstore_reliability::fire`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    match kgstore_reliability::fire::child_main(&args, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kgstore-fire-child: {message}");
            ExitCode::FAILURE
        }
    }
}
