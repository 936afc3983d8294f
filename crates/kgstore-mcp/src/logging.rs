//! Where the server's log goes: stderr or a file, never stdout (which carries
//! the protocol). Names and other user data appear only at the debug level.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Mutex;

use kgstore::Error;
pub use tracing::Level;

/// Where log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// The process's standard error (MCP clients show or keep it).
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// Installs the process-wide log subscriber (once; a second call changes nothing
/// and returns `Ok`): events at `level` and above go to `target`, one line
/// each, without colours.
pub fn install(level: Level, target: &LogTarget) -> Result<(), Error> {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false);
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let _ = match target {
        LogTarget::Stderr => builder.with_writer(std::io::stderr).try_init(),
        LogTarget::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            builder.with_writer(Mutex::new(file)).try_init()
        }
    };
    Ok(())
}
