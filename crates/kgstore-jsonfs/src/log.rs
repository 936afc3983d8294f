//! The commit log: what every committed transaction changed, by generation, kept
//! for a while so that the open handles of other processes can apply what changed
//! instead of reading the whole store again.
//!
//! ```text
//! journal/log/generation              the last published generation (written in place)
//! journal/log/00000000000000000042    what transaction 42 changed (the journal format)
//! ```
//!
//! A transaction's record is its journal: every file it wrote, with the full new
//! content, and every file it removed, with a checksum (see `journal.rs`). A
//! multi-file transaction's record is the journal that committed it, moved into
//! the log once its files are in place; a one-file transaction's record is written
//! beside it. Records are never synced on their own account: they serve the
//! processes that share the store while it runs, and after a power cut every
//! process starts from the files.
//!
//! The generation file holds one fixed-length line, rewritten in place by the
//! writer that holds the lock: the generation, and a check value that a torn read
//! (a reader catching a half-written line) fails. Reading it is one `pread` on a
//! descriptor kept open, which is all a reader pays per transaction when nothing
//! changed.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use kgstore_core::{Error, Result};

use crate::fault::Hooks;
use crate::fsio;
use crate::journal::{self, COMMITTED, FileOp, JOURNAL_DIR};

/// The log's folder, relative to the store's.
pub const LOG_DIR: &str = "journal/log";
/// The generation file's name in the log's folder.
pub const GENERATION: &str = "generation";
/// The extension of a one-file transaction's record before its file is renamed into place.
pub const PENDING: &str = ".pending";
/// How many records the log keeps: a handle that falls further behind reads the
/// whole store again.
pub const RETAIN: u64 = 1024;
/// Records larger than this are kept for only [`RETAIN_LARGE`] generations (a bulk
/// import's record holds every file it wrote).
pub const LARGE_RECORD: u64 = 4 << 20;
/// How many generations a large record is kept.
pub const RETAIN_LARGE: u64 = 8;

/// The length of the generation file's line.
const LINE: usize = 38;

/// A record's file name: the generation in 20 digits, so that names sort by generation.
pub fn record_name(generation: u64) -> String {
    format!("{generation:020}")
}

/// The generation a record's file name stands for.
pub fn parse_record_name(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// A record's path.
pub fn record_path(root: &Path, generation: u64) -> PathBuf {
    root.join(LOG_DIR).join(record_name(generation))
}

/// The path of the journal that commits a multi-file transaction.
pub fn commit_path(root: &Path, generation: u64) -> PathBuf {
    root.join(JOURNAL_DIR)
        .join(format!("{}{COMMITTED}", record_name(generation)))
}

/// The path of a one-file transaction's record while its file is renamed into place.
pub fn pending_path(root: &Path, generation: u64) -> PathBuf {
    root.join(JOURNAL_DIR)
        .join(format!("{}{PENDING}", record_name(generation)))
}

fn check_value(generation: u64) -> u64 {
    generation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x006b_6773_746f_7265
}

/// The generation file's line for `generation`.
fn line(generation: u64) -> String {
    format!("{generation:020} {:016x}\n", check_value(generation))
}

fn parse_line(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (number, check) = text.strip_suffix('\n')?.split_once(' ')?;
    let generation = parse_record_name(number)?;
    (check.len() == 16 && u64::from_str_radix(check, 16).ok()? == check_value(generation))
        .then_some(generation)
}

/// What the generation file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// No generation file: nothing was ever published (a new store, or one written
    /// by an older version).
    Nothing,
    /// The last published generation.
    At(u64),
    /// A line that does not read (left by a crash of the machine): the next writer
    /// repairs it.
    Unreadable,
}

impl Published {
    /// The generation, counting "nothing" as 0; `None` if unreadable.
    pub fn generation(self) -> Option<u64> {
        match self {
            Self::Nothing => Some(0),
            Self::At(g) => Some(g),
            Self::Unreadable => None,
        }
    }
}

/// The generation file of one store, with a descriptor kept open once it exists.
#[derive(Debug)]
pub struct Generation {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Generation {
    /// The generation file of the store at `root` (not opened yet).
    pub fn new(root: &Path) -> Self {
        Self {
            path: root.join(LOG_DIR).join(GENERATION),
            file: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the last published generation: one `pread` once the file is open.
    pub fn read(&self) -> Result<Published> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            match File::open(&self.path) {
                Ok(file) => *slot = Some(file),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Published::Nothing),
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        let Some(file) = slot.as_ref() else {
            return Ok(Published::Nothing);
        };
        // A writer rewrites the line in place while readers read it: a torn read
        // fails the check and is read again.
        let mut buf = [0u8; 64];
        for _ in 0..8 {
            let n = read_at(file, &mut buf).map_err(|e| Error::io(&self.path, e))?;
            if n == 0 {
                return Ok(Published::Nothing);
            }
            if let Some(generation) = parse_line(&buf[..n]) {
                return Ok(Published::At(generation));
            }
            std::thread::yield_now();
        }
        Ok(Published::Unreadable)
    }

    /// Publishes `generation` (the writer holds the lock): rewrites the line in
    /// place, creating the file if needed. Not synced: see the module's documentation.
    pub fn publish(&self, generation: u64, hooks: &Hooks) -> Result<()> {
        fsio::publish(&self.path, line(generation).as_bytes(), hooks)
            .map_err(|e| Error::io(&self.path, e))?;
        debug_assert_eq!(line(generation).len(), LINE);
        Ok(())
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, 0)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, 0)
}

/// What reading a record found.
#[derive(Debug)]
pub enum Record {
    /// The record's operations.
    Found(Vec<FileOp>),
    /// No record of this generation (pruned, or never written).
    Missing,
    /// A record that does not decode.
    Damaged,
}

/// Reads the record of a published `generation`: the committing journal (or a
/// one-file transaction's pending record) while its files are put in place, else
/// the log's copy. A record moves into the log only after its generation is
/// published, so trying `journal/` first never misses one that moves in between.
pub fn read_record(root: &Path, generation: u64) -> Result<Record> {
    for path in [
        commit_path(root, generation),
        pending_path(root, generation),
        record_path(root, generation),
    ] {
        match fs::read(&path) {
            Ok(bytes) => {
                return Ok(match journal::decode(&bytes, root) {
                    Ok(ops) => Record::Found(ops),
                    Err(_) => Record::Damaged,
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(Record::Missing)
}

/// Whether the record of `generation` is still in `journal/`: its transaction
/// may not have all its files in place.
pub fn in_journal(root: &Path, generation: u64) -> bool {
    [
        commit_path(root, generation),
        pending_path(root, generation),
    ]
    .iter()
    .any(|path| fs::symlink_metadata(path).is_ok())
}

/// Whether a record of `generation` is in the log.
pub fn has_record(root: &Path, generation: u64) -> bool {
    fs::symlink_metadata(record_path(root, generation)).is_ok()
}

/// Removes the records that the commit of `generation` makes old: the one
/// [`RETAIN`] generations back, and the one [`RETAIN_LARGE`] back if it is large.
/// Housekeeping: a failure is left for a later prune (or the next open's).
pub fn prune_after(root: &Path, generation: u64, hooks: &Hooks) {
    // Generations start at 1.
    if let Some(old) = generation.checked_sub(RETAIN).filter(|g| *g > 0) {
        let _ = remove(&record_path(root, old), hooks);
    }
    if let Some(old) = generation.checked_sub(RETAIN_LARGE).filter(|g| *g > 0) {
        let path = record_path(root, old);
        if fs::metadata(&path).is_ok_and(|m| m.len() > LARGE_RECORD) {
            let _ = remove(&path, hooks);
        }
    }
}

fn remove(path: &Path, hooks: &Hooks) -> std::io::Result<()> {
    match fsio::remove_file(path, hooks) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Every record in the log: (generation, path), by generation.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = root.join(LOG_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        if let Some(generation) = parse_record_name(&entry.file_name().to_string_lossy()) {
            records.push((generation, entry.path()));
        }
    }
    records.sort();
    Ok(records)
}

/// Removes the records older than [`RETAIN`] generations before `head` (at a
/// writable open, for what the commits' own pruning missed). Housekeeping too.
pub fn prune_all(root: &Path, head: u64, hooks: &Hooks) -> Result<()> {
    for (generation, path) in list(root)? {
        if generation + RETAIN <= head {
            let _ = remove(&path, hooks);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_generation_line_reads_back_and_a_torn_one_does_not() {
        for generation in [0, 1, 42, 1 << 40, u64::MAX] {
            let text = line(generation);
            assert_eq!(text.len(), LINE);
            assert_eq!(parse_line(text.as_bytes()), Some(generation));
        }
        // A line half rewritten from 99 to 100 is refused, not read as 199 or 90.
        let (old, new) = (line(99), line(100));
        for cut in 1..LINE {
            let torn = format!("{}{}", &new[..cut], &old[cut..]);
            if torn != old && torn != new {
                assert_eq!(parse_line(torn.as_bytes()), None, "{torn:?}");
            }
        }
        assert_eq!(parse_line(b""), None);
        assert_eq!(parse_line(&[0u8; 38]), None);
    }

    #[test]
    fn record_names_sort_by_generation() {
        assert_eq!(record_name(7), "00000000000000000007");
        assert_eq!(parse_record_name(&record_name(123)), Some(123));
        assert_eq!(parse_record_name("generation"), None);
        assert_eq!(parse_record_name("0000000000000000007"), None);
    }
}
