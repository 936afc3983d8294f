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

/// Why a commit failed, and whether the files are as before it.
pub(crate) enum Failure {
    /// Nothing changed on disk: the store is as before the transaction.
    Clean(Error),
    /// The commit passed its commit point: it completes when the store is next opened.
    Dirty(Error),
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

    /// Writes `changes` all or nothing. `dirs` caches the shard folders known to exist;
    /// `seq` names the journal.
    pub(crate) fn apply(
        &self,
        changes: Vec<Change>,
        dirs: &mut HashSet<String>,
        seq: u64,
    ) -> Result<(), Failure> {
        // Folders first: a new shard folder's own name must be synced in its parent too.
        let mut to_sync: Vec<PathBuf> = Vec::new();
        for change in &changes {
            let dir = rel_dir(&change.rel);
            to_sync.push(self.root.join(dir));
            if change.content.is_some() && !dirs.contains(dir) {
                let path = self.root.join(dir);
                if ensure_dir(&path).map_err(Failure::Clean)? {
                    to_sync.push(files::parent(&path).to_path_buf());
                }
                dirs.insert(dir.to_owned());
            }
        }
        to_sync.sort();
        to_sync.dedup();

        let staged = self.stage(&changes).map_err(Failure::Clean)?;
        let discard = |staged: &[Staged]| {
            for s in staged {
                let _ = files::remove(&s.temp);
            }
        };
        if changes.len() == 1 {
            return self.apply_one(&changes[0], staged, &to_sync);
        }

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
            FaultPoint::JournalWritten,
            FaultPoint::JournalSynced,
        ) {
            Ok(temp) => temp,
            Err(e) => {
                discard(&staged);
                return Err(Failure::Clean(e));
            }
        };
        if let Err(e) = files::rename(&temp, &journal_path) {
            let _ = files::remove(&temp);
            discard(&staged);
            return Err(Failure::Clean(e));
        }
        let committed = self
            .at(FaultPoint::JournalRenamed, &journal_path)
            .and_then(|()| self.sync_if_immediate(&journal_dir))
            .and_then(|()| self.at(FaultPoint::JournalCommitted, &journal_path));
        if let Err(e) = committed {
            // Nothing is in place yet: taking the commit mark back undoes the commit.
            let undone = files::remove(&journal_path).and_then(|_| sync_dir(&journal_dir));
            discard(&staged);
            return Err(match undone {
                Ok(()) => Failure::Clean(e),
                Err(_) => Failure::Dirty(e),
            });
        }

        // Past the commit mark: every failure from here on is completed by recovery.
        let mut staged_iter = staged.iter();
        for change in &changes {
            let target = self.root.join(&change.rel);
            match &change.content {
                Some(_) => {
                    let Some(s) = staged_iter.next() else { break };
                    files::rename(&s.temp, &target).map_err(Failure::Dirty)?;
                }
                None => {
                    files::remove(&target).map_err(Failure::Dirty)?;
                }
            }
            self.at(FaultPoint::Renamed, &target)
                .map_err(Failure::Dirty)?;
        }
        self.sync_all(&to_sync).map_err(Failure::Dirty)?;
        self.at(FaultPoint::FoldersSynced, &journal_path)
            .map_err(Failure::Dirty)?;
        files::remove(&journal_path).map_err(Failure::Dirty)?;
        self.at(FaultPoint::JournalRemoved, &journal_path)
            .map_err(Failure::Dirty)?;
        // A journal whose removal were lost could later be replayed over newer commits.
        self.sync_if_immediate(&journal_dir).map_err(Failure::Dirty)
    }

    /// Renders and writes the temporary file of every put, in parallel for many.
    fn stage(&self, changes: &[Change]) -> Result<Vec<Staged>> {
        let puts: Vec<(&str, &Content)> = changes
            .iter()
            .filter_map(|c| c.content.as_ref().map(|content| (c.rel.as_str(), content)))
            .collect();
        // Threads mostly wait in fsync, and the file system batches concurrent syncs
        // into fewer journal commits: 32 measured best on a 2-core machine's ext4.
        let workers = workers_for(puts.len(), 4, 32);
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
                for s in &staged {
                    let _ = files::remove(&s.temp);
                }
                Err(e)
            }
        }
    }

    /// A one-file transaction: the rename (or removal) is atomic by itself.
    fn apply_one(
        &self,
        change: &Change,
        staged: Vec<Staged>,
        to_sync: &[PathBuf],
    ) -> Result<(), Failure> {
        let target = self.root.join(&change.rel);
        match staged.into_iter().next() {
            Some(s) => {
                debug_assert_eq!(s.rel, change.rel);
                if let Err(e) = files::rename(&s.temp, &target) {
                    let _ = files::remove(&s.temp);
                    return Err(Failure::Clean(e));
                }
            }
            None => {
                files::remove(&target).map_err(Failure::Clean)?;
            }
        }
        self.at(FaultPoint::Renamed, &target)
            .and_then(|()| self.sync_all(to_sync))
            .and_then(|()| self.at(FaultPoint::FoldersSynced, &target))
            .map_err(Failure::Dirty)
    }

    fn sync_if_immediate(&self, dir: &Path) -> Result<()> {
        if crate::options::sync_folders(self.durability) {
            sync_dir(dir)
        } else {
            Ok(())
        }
    }

    fn sync_all(&self, dirs: &[PathBuf]) -> Result<()> {
        if !crate::options::sync_folders(self.durability) {
            return Ok(());
        }
        parallel_map(dirs, workers_for(dirs.len(), 8, 16), |dir| sync_dir(dir))
            .into_iter()
            .collect()
    }
}
