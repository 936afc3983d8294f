//! Putting one transaction's files in place, all or nothing.
//!
//! One file: temporary file, sync, rename, folder sync; the rename is atomic, so
//! no journal is needed. Several files: every temporary file is written and synced
//! first, then the journal with all their contents is written, synced and renamed
//! to its committed name (the commit mark) and its folder synced; then the files
//! are renamed into place, their folders synced, and the journal removed. See
//! `docs/jsonfs.md` for the crash analysis.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};

use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, Content, ensure_dir, parallel_map, sync_dir, workers_for};
use crate::journal::{self, COMMITTED, FileOp, JOURNAL_DIR};
use crate::options::Durability;

/// Why a commit failed, and what state the files are in.
pub(crate) enum Failure {
    /// Nothing changed on disk that matters: the store is as before the transaction
    /// (stray temporary files, removed at the next open, aside).
    Clean(Error),
    /// The commit passed its commit mark (the journal's rename, or a one-file
    /// commit's rename): it is complete when the store is next opened.
    Committed(Error),
    /// A rename or removal failed and whether it happened cannot be told: the next
    /// open finds the transaction either whole or absent, never in between.
    Unknown(Error),
}

/// One entity file to write (`Some`) or remove (`None`).
pub(crate) struct Change {
    pub rel: String,
    pub content: Option<Content>,
}

/// Where and how to write.
pub(crate) struct Disk<'a> {
    pub root: &'a Path,
    pub durability: Durability,
    pub hooks: &'a Hooks,
}

/// A put whose temporary file is written and synced.
struct Staged {
    rel: String,
    temp: PathBuf,
    bytes: Vec<u8>,
}

fn rel_dir(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl Disk<'_> {
    fn at(&self, point: FaultPoint, path: &Path) -> Result<()> {
        self.hooks.at(point).map_err(io_at(path))
    }

    /// Writes `changes` all or nothing. `dirs` caches the shard folders known to
    /// exist with their names synced; the folders this commit creates join it only
    /// when it succeeds, so that a later commit syncs a name a failed one left
    /// unsynced. `seq` names the journal.
    ///
    /// No failed step is retried: after a failed `fsync` the data it was to make
    /// durable is not trusted (the kernel may have dropped it and report the next
    /// sync as a success), so a failure before the commit mark throws the
    /// temporary files away, and one after it leaves the journal for the next open
    /// to roll forward, which writes every file anew.
    pub(crate) fn apply(
        &self,
        changes: Vec<Change>,
        dirs: &mut HashSet<String>,
        seq: u64,
    ) -> Result<(), Failure> {
        // Folders first: a new shard folder's own name must be synced in its parent too.
        let mut to_sync: Vec<PathBuf> = Vec::new();
        let mut new_dirs: Vec<String> = Vec::new();
        for change in &changes {
            let dir = rel_dir(&change.rel);
            to_sync.push(self.root.join(dir));
            if change.content.is_none() {
                continue;
            }
            // The folder and, top down, those of its parents the store does not
            // always have (an event-store state space).
            let mut chain = vec![dir];
            let mut below = dir;
            while let Some((parent, _)) = below.rsplit_once('/') {
                if crate::layout::FOLDERS.contains(&parent) {
                    break;
                }
                chain.push(parent);
                below = parent;
            }
            for folder in chain.into_iter().rev() {
                if dirs.contains(folder) || new_dirs.iter().any(|d| d == folder) {
                    continue;
                }
                let path = self.root.join(folder);
                // Made now, or by an earlier commit that failed: synced in its parent either way.
                ensure_dir(&path, self.hooks).map_err(Failure::Clean)?;
                to_sync.push(files::parent(&path).to_path_buf());
                new_dirs.push(folder.to_owned());
            }
        }
        to_sync.sort();
        to_sync.dedup();

        let staged = self.stage(&changes).map_err(Failure::Clean)?;
        let outcome = if changes.len() == 1 {
            self.apply_one(&changes[0], staged, &to_sync)
        } else {
            self.apply_many(&changes, staged, &to_sync, seq)
        };
        if outcome.is_ok() {
            dirs.extend(new_dirs);
        }
        outcome
    }

    fn discard(&self, staged: &[Staged]) {
        for s in staged {
            let _ = files::remove(&s.temp, self.hooks);
        }
    }

    /// A transaction of several files, through the journal.
    fn apply_many(
        &self,
        changes: &[Change],
        staged: Vec<Staged>,
        to_sync: &[PathBuf],
        seq: u64,
    ) -> Result<(), Failure> {
        // The journal: written, synced, renamed to its committed name, folder synced.
        let journal_dir = self.root.join(JOURNAL_DIR);
        let journal_path = journal_dir.join(format!("{seq:020}{COMMITTED}"));
        let mut staged_iter = staged.iter();
        let ops: Vec<FileOp> = changes
            .iter()
            .map(|change| FileOp {
                rel: change.rel.clone(),
                content: change
                    .content
                    .as_ref()
                    .and_then(|_| staged_iter.next())
                    .map(|s| s.bytes.clone()),
            })
            .collect();
        let bytes = journal::encode(&ops);
        drop(ops);
        let temp = match files::write_temp_at(
            &journal_dir,
            &bytes,
            self.hooks,
            Some((FaultPoint::JournalWritten, FaultPoint::JournalSynced)),
        ) {
            Ok(temp) => temp,
            Err(e) => {
                self.discard(&staged);
                return Err(Failure::Clean(e));
            }
        };
        // The commit mark.
        if let Err(e) = files::rename(&temp, &journal_path, self.hooks) {
            return Err(match files::exists(&temp) {
                // Not renamed: nothing is committed.
                Some(true) => {
                    let _ = files::remove(&temp, self.hooks);
                    self.discard(&staged);
                    Failure::Clean(e)
                }
                // Renamed after all (or cannot be told): the next open decides.
                Some(false) => Failure::Committed(e),
                None => Failure::Unknown(e),
            });
        }

        // Past the commit mark: every failure from here on is completed by recovery,
        // including a failed sync of the journal's folder, which is never retried.
        let committed = |result: Result<()>| result.map_err(Failure::Committed);
        committed(self.at(FaultPoint::JournalRenamed, &journal_path))?;
        committed(self.sync_if_immediate(&journal_dir))?;
        committed(self.at(FaultPoint::JournalCommitted, &journal_path))?;
        let mut staged_iter = staged.iter();
        for change in changes {
            let target = self.root.join(&change.rel);
            match &change.content {
                Some(_) => {
                    let Some(s) = staged_iter.next() else { break };
                    committed(files::rename(&s.temp, &target, self.hooks))?;
                }
                None => {
                    committed(files::remove(&target, self.hooks).map(drop))?;
                }
            }
            committed(self.at(FaultPoint::Renamed, &target))?;
        }
        committed(self.sync_all(to_sync))?;
        committed(self.at(FaultPoint::FoldersSynced, &journal_path))?;
        committed(files::remove(&journal_path, self.hooks).map(drop))?;
        committed(self.at(FaultPoint::JournalRemoved, &journal_path))?;
        // A journal whose removal were lost could later be replayed over newer commits.
        committed(self.sync_if_immediate(&journal_dir))
    }

    /// Renders and writes the temporary file of every put, in parallel for many.
    fn stage(&self, changes: &[Change]) -> Result<Vec<Staged>> {
        let puts: Vec<(&str, &Content)> = changes
            .iter()
            .filter_map(|c| c.content.as_ref().map(|content| (c.rel.as_str(), content)))
            .collect();
        // Threads mostly wait in fsync, and the file system batches concurrent syncs
        // into fewer journal commits: 32 measured best on a 2-core machine's ext4.
        let workers = if self.hooks.serial() {
            1
        } else {
            workers_for(puts.len(), 4, 32)
        };
        let results = parallel_map(&puts, workers, |(rel, content)| {
            let bytes = content.render()?;
            let dir = self.root.join(rel_dir(rel));
            let temp = files::write_temp(&dir, &bytes, self.hooks)?;
            Ok(Staged {
                rel: (*rel).to_owned(),
                temp,
                bytes,
            })
        });
        let mut staged = Vec::with_capacity(results.len());
        let mut failure = None;
        for result in results {
            match result {
                Ok(s) => staged.push(s),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            None => Ok(staged),
            Some(e) => {
                self.discard(&staged);
                Err(e)
            }
        }
    }

    /// A one-file transaction: the rename (or removal) is atomic by itself, and is
    /// its commit mark.
    fn apply_one(
        &self,
        change: &Change,
        staged: Vec<Staged>,
        to_sync: &[PathBuf],
    ) -> Result<(), Failure> {
        let target = self.root.join(&change.rel);
        // `witness` is still there exactly when the step did not happen.
        let (result, witness) = match staged.first() {
            Some(s) => {
                debug_assert_eq!(s.rel, change.rel);
                (files::rename(&s.temp, &target, self.hooks), &s.temp)
            }
            None => (files::remove(&target, self.hooks).map(drop), &target),
        };
        if let Err(e) = result {
            return Err(match files::exists(witness) {
                Some(true) => {
                    self.discard(&staged);
                    Failure::Clean(e)
                }
                Some(false) => Failure::Committed(e),
                None => Failure::Unknown(e),
            });
        }
        self.at(FaultPoint::Renamed, &target)
            .and_then(|()| self.sync_all(to_sync))
            .and_then(|()| self.at(FaultPoint::FoldersSynced, &target))
            .map_err(Failure::Committed)
    }

    fn sync_if_immediate(&self, dir: &Path) -> Result<()> {
        if crate::options::sync_folders(self.durability) {
            sync_dir(dir, self.hooks)
        } else {
            Ok(())
        }
    }

    fn sync_all(&self, dirs: &[PathBuf]) -> Result<()> {
        if !crate::options::sync_folders(self.durability) {
            return Ok(());
        }
        let workers = if self.hooks.serial() {
            1
        } else {
            workers_for(dirs.len(), 8, 16)
        };
        parallel_map(dirs, workers, |dir| sync_dir(dir, self.hooks))
            .into_iter()
            .collect()
    }
}
