//! The performance record of a file-backed store: the metrics of every `kgstore`
//! run on it, added up in a small JSON file beside the store
//! (`<store path>.perf.json`), so that `kgstore stats --perf` shows what the store
//! did across runs rather than what its own short process did.
//!
//! Each run merges its store's metrics into the file under an exclusive lock on it.
//! The file holds only counts, durations and error kinds, never names or data.
//! `KGSTORE_PERF=off` turns the record off; `kgstore stats --perf --reset` clears it.
//! A record that does not parse (cut short by a crash, edited by hand) is replaced,
//! with a warning in the log: it is a convenience, not data. A run that cannot
//! write it (a full disk) leaves it as it was.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kgstore::{Metrics, StoreUrl};

/// The environment variable that turns the record off (`off`, `0` or `false`).
pub const PERF_ENV: &str = "KGSTORE_PERF";

/// Whether runs record their metrics (not when `KGSTORE_PERF` says off).
pub fn enabled() -> bool {
    !matches!(
        std::env::var(PERF_ENV).as_deref(),
        Ok("off" | "0" | "false" | "no")
    )
}

/// The record's path for a store URL: beside a file-backed store, none for others.
pub fn path_for(url: &StoreUrl) -> Option<PathBuf> {
    if !matches!(url.scheme.as_str(), "sqlite" | "json" | "git") || url.path.is_empty() {
        return None;
    }
    let trimmed = url.path.trim_end_matches('/');
    Some(PathBuf::from(format!("{trimmed}.perf.json")))
}

fn open_locked(path: &Path, create: bool) -> Result<Option<File>> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(Some(file))
}

fn read_record(file: &mut File, path: &Path) -> Result<Option<Metrics>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str(&text) {
        Ok(metrics) => Ok(Some(metrics)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "performance record unreadable; starting a new one");
            Ok(None)
        }
    }
}

/// The figures recorded so far, if any.
pub fn load(path: &Path) -> Result<Option<Metrics>> {
    match open_locked(path, false)? {
        Some(mut file) => read_record(&mut file, path),
        None => Ok(None),
    }
}

/// Adds one run's figures to the record.
pub fn add(path: &Path, run: &Metrics) -> Result<()> {
    let Some(mut file) = open_locked(path, true)? else {
        return Ok(());
    };
    let mut total = read_record(&mut file, path)?.unwrap_or_default();
    total.merge(run);
    let text = serde_json::to_vec_pretty(&total)?;
    replace_contents(&mut file, &text).with_context(|| format!("writing {}", path.display()))
}

/// Replaces the locked record's contents with `text`, keeping the old ones whole
/// if the disk is full (or the write fails otherwise): the new text is first
/// appended after the old, which claims the space it needs, and only once that
/// has succeeded is it copied to the start over space already held and the file
/// cut to its length. A failed append is cut off again. (Writing a new file and
/// renaming it over the record would leave the lock, which is on the file, to a
/// file no longer in place.) A crash between the copy and the cut leaves a record
/// that does not parse, which the next run starts again, as the module says.
fn replace_contents(file: &mut File, text: &[u8]) -> std::io::Result<()> {
    let old_len = file.seek(SeekFrom::End(0))?;
    if let Err(e) = file.write_all(text) {
        let _ = file.set_len(old_len);
        return Err(e);
    }
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text)?;
    file.set_len(text.len() as u64)
}

/// Forgets every recorded figure.
pub fn clear(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_sit_beside_file_stores_only() {
        let path = |url: &str| path_for(&StoreUrl::parse(url).unwrap());
        assert_eq!(
            path("sqlite://./data/kg.db"),
            Some(PathBuf::from("./data/kg.db.perf.json"))
        );
        assert_eq!(
            path("json://./data/kg/"),
            Some(PathBuf::from("./data/kg.perf.json"))
        );
        assert_eq!(path("memory://"), None);
    }

    #[test]
    fn runs_add_up_and_a_damaged_record_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kg.db.perf.json");
        assert!(load(&path).unwrap().is_none());
        let mut run = Metrics {
            runs: 1,
            entities_written: 2,
            ..Metrics::default()
        };
        run.reads.count = 3;
        add(&path, &run).unwrap();
        add(&path, &run).unwrap();
        let total = load(&path).unwrap().unwrap();
        assert_eq!(
            (total.runs, total.reads.count, total.entities_written),
            (2, 6, 4)
        );
        std::fs::write(&path, "{ cut short").unwrap();
        add(&path, &run).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().runs, 1);
        clear(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        clear(&path).unwrap();
    }
}
