//! The floor of a durable one-file commit on this machine: a bare temporary-file
//! write, its fsync, a rename over the target and an fsync of the folder — what
//! any crash-safe file store must pay per commit. The file backends' single
//! commits are given as a ratio to it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Durably creates `iterations` new `payload`-sized files in `dir` (created if
/// missing), named `floor-{first}.json` onwards, each through a temporary file
/// as a one-file commit of a new node would, and returns the total time taken.
pub fn measure(
    dir: &Path,
    payload: &[u8],
    first: usize,
    iterations: usize,
) -> std::io::Result<Duration> {
    fs::create_dir_all(dir)?;
    let temp = dir.join(".floor.tmp");
    let started = Instant::now();
    for i in 0..iterations {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(payload)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, dir.join(format!("floor-{}.json", first + i)))?;
        File::open(dir)?.sync_all()?;
    }
    Ok(started.elapsed())
}
