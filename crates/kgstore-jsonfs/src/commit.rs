//! Putting one transaction's files in place, all or nothing.
//!
//! One file: temporary file, sync, rename, folder sync; the rename is atomic, so
//! no journal is needed. Several files: every temporary file is written and synced
//! first, then the journal with all their contents is written, synced and renamed
//! to its committed name (the commit mark) and its folder synced; then the files
//! are renamed into place, their folders synced, and the journal removed. One
//! document (its metadata file and its staged bytes, nothing else): the metadata
//! file's rename is the commit mark and no journal is written; the bytes are moved
//! into place after it, and the next open completes a move a crash interrupted
//! (it finds the staged file by the SHA-256 the metadata records). See
//! `docs/jsonfs.md` for the crash analysis.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};

use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, Content, ensure_dir, parallel_map, sync_dir, workers_for};
use crate::journal::{self, COMMITTED, FileOp, JOURNAL_DIR};
use crate::options::Durability;
use crate::{docs, fsio};

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

/// Whether a relative path is a document's bytes (under `documents/`, any depth).
fn is_document(rel: &str) -> bool {
    rel.starts_with(docs::DOCUMENTS) && rel.as_bytes().get(docs::DOCUMENTS.len()) == Some(&b'/')
}

/// The metadata change and the document change of a transaction that writes one
/// document and nothing else.
fn single_document(changes: &[Change]) -> Option<(&Change, &Change)> {
    let [a, b] = changes else { return None };
    let (meta, doc) = if is_document(&a.rel) { (b, a) } else { (a, b) };
    match (&meta.content, &doc.content) {
        (Some(Content::DocMeta(m)), Some(Content::Staged(_)))
            if docs::docmeta_path(&m.key) == meta.rel && docs::doc_path(&m.key) == doc.rel =>
        {
            Some((meta, doc))
        }
        _ => None,
    }
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
        mut changes: Vec<Change>,
        dirs: &mut HashSet<String>,
        seq: u64,
    ) -> Result<(), Failure> {
        if let Some((meta, doc)) = single_document(&changes) {
            return self.apply_document(meta, doc, dirs);
        }
        // Removals first: a document's file may give way to a folder of the same
        // name in one transaction, or the reverse.
        changes.sort_by_key(|c| c.content.is_some());
        // Folders first: a new shard folder's own name must be synced in its parent too.
        let mut to_sync: Vec<PathBuf> = Vec::new();
        let mut new_dirs: Vec<String> = Vec::new();
        for change in &changes {
            let dir = rel_dir(&change.rel);
            to_sync.push(self.root.join(dir));
            if is_document(&change.rel) {
                // Its folders are made right before its move, after the commit mark.
                continue;
            }
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
        let single = changes.len() == 1 && !is_document(&changes[0].rel);
        let outcome = if single {
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
            .map(|change| {
                let staged = change.content.as_ref().and_then(|_| staged_iter.next());
                match &change.content {
                    Some(Content::Staged(from)) => FileOp {
                        rel: change.rel.clone(),
                        content: None,
                        from: Some(from.clone()),
                    },
                    _ => FileOp {
                        rel: change.rel.clone(),
                        content: staged.map(|s| s.bytes.clone()),
                        from: None,
                    },
                }
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
        fn committed<T>(result: Result<T>) -> Result<T, Failure> {
            result.map_err(Failure::Committed)
        }
        committed(self.at(FaultPoint::JournalRenamed, &journal_path))?;
        committed(self.sync_if_immediate(&journal_dir))?;
        committed(self.at(FaultPoint::JournalCommitted, &journal_path))?;
        let mut staged_iter = staged.iter();
        let mut to_sync = to_sync.to_vec();
        for change in changes {
            let target = self.root.join(&change.rel);
            let document = is_document(&change.rel);
            match &change.content {
                Some(_) => {
                    let Some(s) = staged_iter.next() else { break };
                    if document {
                        let dir = files::parent(&target);
                        to_sync.extend(committed(docs::ensure_doc_dirs(
                            self.root, dir, self.hooks,
                        ))?);
                        committed(docs::clear_empty_dir_at(&target, self.hooks))?;
                    }
                    committed(files::rename(&s.temp, &target, self.hooks))?;
                }
                None => {
                    committed(files::remove(&target, self.hooks).map(drop))?;
                    if document {
                        let dir = files::parent(&target);
                        to_sync
                            .extend(committed(docs::prune_doc_dirs(self.root, dir, self.hooks))?);
                    }
                }
            }
            committed(self.at(FaultPoint::Renamed, &target))?;
        }
        // Document folders emptied by removals are gone; the rest are synced.
        let documents = self.root.join(docs::DOCUMENTS);
        to_sync.retain(|d| !d.starts_with(&documents) || d.is_dir());
        to_sync.sort();
        to_sync.dedup();
        committed(self.sync_all(&to_sync))?;
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
            if let Content::Staged(from) = content {
                // Already written while the transaction ran: only its sync is left.
                let temp = self.root.join(from);
                fsio::sync_path(&temp, self.hooks).map_err(|e| Error::io(&temp, e))?;
                return Ok(Staged {
                    rel: (*rel).to_owned(),
                    temp,
                    bytes: Vec::new(),
                });
            }
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

    /// A transaction that writes one document and nothing else, without a journal:
    ///
    /// 1. the staged bytes are synced, the metadata is written to a temporary file
    ///    in its shard folder and synced, and `journal/` (where the staged file's
    ///    name lives) is synced — three independent syncs, run at once;
    /// 2. the metadata's temporary file is renamed over the metadata file — **the
    ///    commit mark** — and its folder synced;
    /// 3. the staged file is renamed into place (its folders made as needed).
    ///
    /// Before the mark nothing changed. After it, the metadata names the new bytes
    /// by size and SHA-256 and the staged file is durable in `journal/`: an open
    /// that finds a staged file whose digest a metadata file records, where that
    /// document's file lacks those bytes, moves it into place (`docs::scan`). So
    /// step 3 needs no folder sync of its own, and the commit costs two rounds of
    /// syncs, as a one-file commit does, plus one rename.
    fn apply_document(
        &self,
        meta: &Change,
        doc: &Change,
        dirs: &mut HashSet<String>,
    ) -> Result<(), Failure> {
        let (Some(meta_content), Some(Content::Staged(staged_rel))) = (&meta.content, &doc.content)
        else {
            return Err(Failure::Clean(Error::backend(
                "jsonfs",
                "a one-document commit without its metadata and staged bytes",
            )));
        };
        let shard = rel_dir(&meta.rel);
        let shard_path = self.root.join(shard);
        let mut mark_dirs = vec![shard_path.clone()];
        let new_shard = !dirs.contains(shard);
        if new_shard {
            // Made now, or by an earlier commit that failed: synced in its parent either way.
            ensure_dir(&shard_path, self.hooks).map_err(Failure::Clean)?;
            mark_dirs.push(files::parent(&shard_path).to_path_buf());
        }
        let staged = self.root.join(staged_rel);
        let bytes = meta_content.render().map_err(Failure::Clean)?;
        let journal_dir = self.root.join(JOURNAL_DIR);

        // Step 1: three syncs at once (one after the other while a fault is set, so
        // that step n is the same step in every run).
        let sync_staged =
            || fsio::sync_path(&staged, self.hooks).map_err(|e| Error::io(&staged, e));
        let write_meta = || files::write_temp(&shard_path, &bytes, self.hooks);
        let sync_journal = || self.sync_if_immediate(&journal_dir);
        let (synced, temp, journal_synced) = if self.hooks.serial() {
            let synced = sync_staged();
            let temp = synced.as_ref().ok().map(|()| write_meta());
            let journal = temp.as_ref().is_some_and(|t| t.is_ok()).then(sync_journal);
            (synced, temp, journal)
        } else {
            std::thread::scope(|scope| {
                let staged_sync = scope.spawn(sync_staged);
                let journal_sync = scope.spawn(sync_journal);
                let temp = write_meta();
                let join = |handle: std::thread::ScopedJoinHandle<'_, Result<()>>| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                };
                (join(staged_sync), Some(temp), Some(join(journal_sync)))
            })
        };
        let mut errors: Vec<Error> = Vec::new();
        errors.extend(synced.err());
        errors.extend(journal_synced.and_then(Result::err));
        let temp = match temp {
            Some(Ok(temp)) => Some(temp),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        };
        let temp = match (temp, errors.into_iter().next()) {
            (Some(temp), None) => temp,
            (temp, error) => {
                if let Some(temp) = temp {
                    let _ = files::remove(&temp, self.hooks);
                }
                // Without an error, the metadata was not written only if a sync failed.
                let e = error.unwrap_or_else(|| {
                    Error::backend("jsonfs", "a one-document commit's first step failed")
                });
                return Err(Failure::Clean(e));
            }
        };

        // Step 2: the commit mark.
        let meta_path = self.root.join(&meta.rel);
        if let Err(e) = files::rename(&temp, &meta_path, self.hooks) {
            return Err(match files::exists(&temp) {
                Some(true) => {
                    let _ = files::remove(&temp, self.hooks);
                    Failure::Clean(e)
                }
                Some(false) => Failure::Committed(e),
                None => Failure::Unknown(e),
            });
        }
        fn committed<T>(result: Result<T>) -> Result<T, Failure> {
            result.map_err(Failure::Committed)
        }
        committed(self.at(FaultPoint::Renamed, &meta_path))?;
        committed(self.sync_all(&mark_dirs))?;
        committed(self.at(FaultPoint::FoldersSynced, &meta_path))?;
        if new_shard {
            dirs.insert(shard.to_owned());
        }

        // Step 3: the bytes into place (completed by the next open if this fails).
        let target = self.root.join(&doc.rel);
        committed(docs::ensure_doc_dirs(
            self.root,
            files::parent(&target),
            self.hooks,
        ))?;
        committed(docs::clear_empty_dir_at(&target, self.hooks))?;
        committed(files::rename(&staged, &target, self.hooks))?;
        committed(self.at(FaultPoint::Renamed, &target))
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
