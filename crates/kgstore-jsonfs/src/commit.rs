//! Putting one transaction's files in place, all or nothing, and recording it in
//! the commit log for the other processes.
//!
//! Every new file's content is first written to a temporary file in `journal/`
//! and synced. Several files: the journal with all their contents is written,
//! synced and renamed to `journal/<g>.commit` (the commit mark); the generation is
//! published; then the journal's folder is synced, the files are renamed into
//! place and their folders synced. One file: its record is written as
//! `journal/<g>.pending` and the generation published (the commit mark: from then
//! on the record is what the next writer completes); then the file is renamed
//! into place and its folder synced. Either way the record then moves into the log
//! (`journal/log/<g>`). Other processes see a transaction when its generation is
//! published, all at once: its record is in `journal/` from before the publication
//! until after every file is in place. A document's bytes are streamed into a
//! staged file in `journal/` while the transaction runs; the record moves it into
//! place (`mv`), and names the file's identity, which a rename keeps, so that
//! readers of other processes open only the bytes their snapshot names. See
//! `docs/jsonfs.md` for the crash analysis.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};

use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, Content, Temp, ensure_dir, parallel_map, sync_dir, workers_for};
use crate::journal::{self, JOURNAL_DIR, OpRef};
use crate::log::{self, Generation};
use crate::options::Durability;
use crate::{docs, fsio};

/// Why a commit failed, and what state the files are in.
pub(crate) enum Failure {
    /// Nothing changed on disk that matters: the store is as before the transaction.
    /// `tidy` says whether every temporary file was removed too (if not, the next
    /// writer is told to recover, and removes them).
    Clean { error: Error, tidy: bool },
    /// The commit passed its commit mark (the journal's rename, or a one-file
    /// commit's rename): the next writer (or open) completes it.
    Committed(Error),
    /// A rename or removal failed and whether it happened cannot be told: the next
    /// writer finds the transaction either whole or absent, never in between.
    Unknown(Error),
}

impl Failure {
    fn clean(error: Error) -> Self {
        Self::Clean { error, tidy: true }
    }
}

/// From this many staged files (on Linux), a commit writes them all without an
/// fsync each and then makes them durable with one `syncfs(2)` of the store's file
/// system, before its journal is written: a restore or a bulk load of 600,000
/// files pays one sync instead of 600,000. Below it (every ordinary commit) each
/// file is synced on its own, which costs less than flushing the whole file system.
pub(crate) const BATCH_SYNC_FILES: usize = 256;

/// The one sync of a large commit's staged files: the folder they are staged in,
/// opened before they are written, so that `syncfs` reports any write-back error
/// since (Linux 5.8 and later).
struct Batch {
    #[cfg(target_os = "linux")]
    dir: std::fs::File,
    /// The folder the batch stages its files in (`journal/bulk-<pid>-<n>/`), each
    /// at its path relative to the store, so that their folders can be moved into
    /// place whole.
    folder: PathBuf,
}

impl Batch {
    /// A batch for `files` staged files, if the commit takes one.
    fn open(disk: &Disk<'_>, files: usize) -> Result<Option<Self>> {
        #[cfg(target_os = "linux")]
        if files >= BATCH_SYNC_FILES {
            let path = disk.journal_dir();
            let dir = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let folder = path.join(files::bulk_name());
            return Ok(Some(Self { dir, folder }));
        }
        let _ = (disk, files);
        Ok(None)
    }

    /// Makes every staged file durable, passing `TempSynced` once.
    fn sync(self, disk: &Disk<'_>) -> Result<()> {
        let path = disk.journal_dir();
        #[cfg(target_os = "linux")]
        fsio::sync_fs(&self.dir, &path, disk.hooks).map_err(|e| Error::io(&path, e))?;
        disk.at(FaultPoint::TempSynced, &path)
    }
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
    pub generation: &'a Generation,
}

/// A put whose temporary file is written and synced.
struct Staged {
    rel: String,
    temp: PathBuf,
    bytes: Vec<u8>,
}

/// The staged puts of a staging's `results`, in order, and its first error.
fn split_staged(results: Vec<Result<Staged, Error>>) -> (Vec<Staged>, Option<Error>) {
    let mut staged = Vec::with_capacity(results.len());
    let mut failure = None;
    for result in results {
        match result {
            Ok(s) => staged.push(s),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    (staged, failure)
}

/// Which sequence a transaction's commit takes (see `docs/jsonfs.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// One file written or removed (not a document's bytes): its record, unsynced,
    /// and its publication are the commit mark.
    OneFile,
    /// One document written and nothing else (its metadata file and its staged
    /// bytes): the metadata is staged beside the bytes, both synced with their
    /// folder at once, then the record and publication, then both renames and
    /// their folders synced at once (format 5).
    OneDocument,
    /// Anything else: through a synced journal.
    Many,
}

/// A transaction past its commit mark, its files not yet in place.
pub(crate) struct Committed {
    shape: Shape,
    generation: u64,
    /// `journal/<g>.commit` or `journal/<g>.pending`.
    record: PathBuf,
    /// The changes and their staged contents.
    changes: Vec<Change>,
    staged: Vec<Staged>,
    /// Folders to sync once the files are in place.
    to_sync: Vec<PathBuf>,
    /// Shard folders this commit made.
    new_dirs: Vec<String>,
}

/// Whether a path is a one-document commit's staged metadata.
fn is_staged_meta(path: &Path) -> bool {
    path.to_string_lossy().ends_with(docs::STAGED_META)
}

/// Whether a relative path is a document's bytes (under `documents/`, any depth).
fn is_document(rel: &str) -> bool {
    rel.starts_with(docs::DOCUMENTS) && rel.as_bytes().get(docs::DOCUMENTS.len()) == Some(&b'/')
}

/// Which sequence a transaction's changes take: one file (a single change, not of
/// a document's bytes), one document written (its metadata and its staged bytes),
/// or a journal.
fn shape(changes: &[Change]) -> Shape {
    match changes {
        [only] if !is_document(&only.rel) => Shape::OneFile,
        [a, b] if is_one_document(a, b) || is_one_document(b, a) => Shape::OneDocument,
        _ => Shape::Many,
    }
}

/// Whether `meta` and `bytes` are the metadata and the staged bytes of one document.
fn is_one_document(meta: &Change, bytes: &Change) -> bool {
    matches!(&meta.content, Some(Content::DocMeta(m)) if meta.rel == docs::docmeta_path(&m.key)
        && bytes.rel == docs::doc_path(&m.key))
        && matches!(&bytes.content, Some(Content::Staged(from, _)) if docs::is_staged_path(from))
}

/// The operations of a transaction's journal or record: each put with its staged
/// content (or, for a document's bytes, the move of its staged file), each removal.
/// A put staged in `bulk` (a large commit's staging folder, and its name relative
/// to the store) is recorded without its content (format 6): the staged file,
/// durable before the commit mark, is its redo data.
fn ops<'a>(
    changes: &'a [Change],
    staged: &'a [Staged],
    bulk: Option<(&Path, &'a str)>,
) -> Vec<OpRef<'a>> {
    let mut staged_iter = staged.iter();
    changes
        .iter()
        .map(|change| {
            let staged = change.content.as_ref().and_then(|_| staged_iter.next());
            match &change.content {
                Some(Content::Staged(from, id)) => OpRef {
                    rel: &change.rel,
                    content: None,
                    from: Some(from),
                    id: *id,
                    staged_in: None,
                },
                _ => OpRef {
                    rel: &change.rel,
                    content: staged.map(|s| s.bytes.as_slice()),
                    from: None,
                    id: None,
                    staged_in: bulk
                        .filter(|(folder, _)| staged.is_some_and(|s| s.temp.starts_with(folder)))
                        .map(|(_, name)| name),
                },
            }
        })
        .collect()
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

    fn journal_dir(&self) -> PathBuf {
        self.root.join(JOURNAL_DIR)
    }

    /// Writes `changes` as transaction `generation` up to its commit mark: after
    /// it the transaction is committed (the next writer completes it if this one
    /// cannot), before it nothing that matters changed. `dirs` holds the shard
    /// folders known to exist with their names synced.
    ///
    /// No failed step is retried: after a failed `fsync` the data it was to make
    /// durable is not trusted (the kernel may have dropped it and report the next
    /// sync as a success), so a failure before the commit mark throws the
    /// temporary files away, and one after it leaves the record for the next
    /// writer to roll forward, which writes every file anew.
    pub(crate) fn commit(
        &self,
        mut changes: Vec<Change>,
        dirs: &HashSet<String>,
        generation: u64,
    ) -> Result<Committed, Failure> {
        // Removals first: a document's file may give way to a folder of the same
        // name in one transaction, or the reverse.
        changes.sort_by_key(|c| c.content.is_some());
        let shape = shape(&changes);
        // Folders first: a new shard folder's own name must be synced in its parent
        // too (with the files' folders, or, for one document, before its renames).
        let mut to_sync: Vec<PathBuf> = Vec::new();
        let mut new_parents: Vec<PathBuf> = Vec::new();
        let mut new_dirs: Vec<String> = Vec::new();
        for change in &changes {
            let dir = rel_dir(&change.rel);
            to_sync.push(self.root.join(dir));
            if is_document(&change.rel) {
                if shape == Shape::OneDocument {
                    // Made now, so that they are durable before the renames.
                    let target = self.root.join(&change.rel);
                    let dir = files::parent(&target);
                    let made = docs::ensure_doc_dirs(self.root, dir, self.hooks)
                        .and_then(|made| {
                            docs::clear_empty_dir_at(&target, self.hooks).map(|()| made)
                        })
                        .map_err(Failure::clean)?;
                    new_parents.extend(made);
                }
                // Otherwise its folders are made right before its move, after the
                // commit mark.
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
                ensure_dir(&path, self.hooks).map_err(Failure::clean)?;
                new_parents.push(files::parent(&path).to_path_buf());
                new_dirs.push(folder.to_owned());
            }
        }
        if shape != Shape::OneDocument {
            to_sync.append(&mut new_parents);
        }
        to_sync.sort();
        to_sync.dedup();
        let (staged, record) = if shape == Shape::OneDocument {
            let staged = self.stage_document(&changes, new_parents)?;
            let record = self.mark_one(&changes, &staged, generation)?;
            (staged, record)
        } else {
            let (staged, journal) = self.stage(&changes)?;
            let record = if shape == Shape::OneFile {
                self.mark_one(&changes, &staged, generation)?
            } else {
                self.mark_many(&changes, &staged, generation, journal)?
            };
            (staged, record)
        };
        Ok(Committed {
            shape,
            generation,
            record,
            changes,
            staged,
            to_sync,
            new_dirs,
        })
    }

    /// Removes temporary files of a failed commit; whether all are gone.
    fn discard<'p>(&self, paths: impl IntoIterator<Item = &'p Path>) -> bool {
        paths
            .into_iter()
            .all(|path| files::remove(path, self.hooks).is_ok())
    }

    /// A put of a document's bytes at `from`, written while the transaction ran:
    /// only its sync is left.
    fn synced_in_place(&self, rel: &str, from: &str) -> Result<Staged, Error> {
        let temp = self.root.join(from);
        fsio::sync_path(&temp, self.hooks).map_err(|e| Error::io(&temp, e))?;
        Ok(Staged {
            rel: rel.to_owned(),
            temp,
            bytes: Vec::new(),
        })
    }

    /// Removes the staged files (a batch's folder at once, with everything in it).
    fn discard_staged(&self, staged: &[Staged]) -> bool {
        match self.bulk_of(staged) {
            Some(folder) => self.discard_batch(staged, &folder),
            None => self.discard(staged.iter().map(|s| s.temp.as_path())),
        }
    }

    /// Removes a batch's staged files: those staged elsewhere (a document's bytes,
    /// written while the transaction ran) one by one, then its `folder` once, with
    /// everything in it, whether or not the others could be removed.
    fn discard_batch(&self, staged: &[Staged], folder: &Path) -> bool {
        let others = staged.iter().filter(|s| !s.temp.starts_with(folder));
        let others_gone = self.discard(others.map(|s| s.temp.as_path()));
        files::remove_tree(folder, self.hooks).is_ok() && others_gone
    }

    /// The folder a batch staged its files in, if `staged` is a batch's.
    fn bulk_of(&self, staged: &[Staged]) -> Option<PathBuf> {
        let journal_dir = self.journal_dir();
        staged.iter().find_map(|s| {
            let inside = s.temp.strip_prefix(&journal_dir).ok()?;
            let first = inside.components().next()?.as_os_str().to_str()?;
            files::is_bulk_name(first).then(|| journal_dir.join(first))
        })
    }

    /// Moves a batch's staged folders into place whole, where the store's folder
    /// is empty (or missing): one rename instead of one per file. Deepest first, so
    /// that a folder holding another is moved, if at all, after it. The folders
    /// moved; the files of the others are renamed one by one.
    fn move_folders(&self, bulk: &Path, staged: &[Staged]) -> Result<HashSet<String>> {
        let mut folders: Vec<&str> = staged
            .iter()
            .filter(|s| s.temp.starts_with(bulk))
            .map(|s| rel_dir(&s.rel))
            .collect();
        folders.sort_unstable();
        folders.dedup();
        let mut moved = HashSet::new();
        for dir in folders.into_iter().rev() {
            let target = self.root.join(dir);
            match fsio::rename(&bulk.join(dir), &target, self.hooks) {
                Ok(()) => {
                    moved.insert(dir.to_owned());
                }
                // The store's folder holds files (or folders): renamed one by one.
                Err(e)
                    if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
                        || e.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    continue;
                }
                Err(e) => return Err(Error::io(&target, e)),
            }
        }
        Ok(moved)
    }

    /// The failure of a commit before its mark, its temporary files (and `others`)
    /// removed. A one-document commit's staged metadata goes first; if it cannot be
    /// removed, its staged bytes stay with it (a pair the next open discards; the
    /// transaction's own cleanup keeps them too): removed alone, the bytes would
    /// leave metadata that could pass for that of a commit whose bytes were moved
    /// into place.
    fn clean_failure(&self, error: Error, staged: &[Staged], others: &[&Path]) -> Failure {
        let metas = staged.iter().filter(|s| is_staged_meta(&s.temp));
        let tidy = self.discard(others.iter().copied())
            && self.discard(metas.map(|s| s.temp.as_path()))
            && self.discard_staged(staged);
        Failure::Clean { error, tidy }
    }

    /// One document: its metadata rendered and written beside its staged bytes
    /// (`journal/<pid>-<n>.docmeta` beside `.staged`, unsynced), then, at once (on
    /// as many threads), the bytes and the metadata synced and — with
    /// [`Durability::Immediate`] — `journal/`, whose sync makes both names durable,
    /// and the parents of the folders `new_parents` made. From there a power cut
    /// that keeps either rename of the commit leaves the other file where the next
    /// open finds it (`docs::scan`). The staged files, in the order of `changes`.
    fn stage_document(
        &self,
        changes: &[Change],
        new_parents: Vec<PathBuf>,
    ) -> Result<Vec<Staged>, Failure> {
        let from = changes.iter().find_map(|c| match &c.content {
            Some(Content::Staged(from, _)) => Some(from),
            _ => None,
        });
        let Some(from) = from else {
            return Err(Failure::clean(Error::backend(
                "jsonfs",
                "a one-document commit without its staged bytes".to_owned(),
            )));
        };
        let bytes_path = self.root.join(from);
        let meta_path = self.root.join(docs::staged_meta_of(from));
        let mut staged = Vec::with_capacity(2);
        for change in changes {
            let Some(content) = &change.content else {
                continue;
            };
            if let Content::Staged(..) = content {
                staged.push(Staged {
                    rel: change.rel.clone(),
                    temp: bytes_path.clone(),
                    bytes: Vec::new(),
                });
                continue;
            }
            let meta = Staged {
                rel: change.rel.clone(),
                temp: meta_path.clone(),
                bytes: content.render().map_err(Failure::clean)?,
            };
            let written = fsio::create_new(&meta.temp, self.hooks)
                .and_then(|mut file| {
                    fsio::write_all(&mut file, &meta.temp, &meta.bytes, self.hooks)
                })
                .map_err(|e| Error::io(&meta.temp, e))
                .and_then(|()| self.at(FaultPoint::TempWritten, &meta.temp));
            if let Err(error) = written {
                return Err(self.clean_failure(error, &[meta], &[]));
            }
            staged.push(meta);
        }
        let mut to_sync: Vec<(PathBuf, bool)> = vec![(bytes_path, false), (meta_path, false)];
        if crate::options::sync_folders(self.durability) {
            to_sync.push((self.journal_dir(), true));
            to_sync.extend(new_parents.into_iter().map(|dir| (dir, true)));
        }
        let workers = if self.hooks.serial() {
            1
        } else {
            to_sync.len()
        };
        let synced: Result<()> = parallel_map(&to_sync, workers, |(path, dir)| {
            if *dir {
                sync_dir(path, self.hooks)
            } else {
                fsio::sync_path(path, self.hooks).map_err(|e| Error::io(path, e))
            }
        })
        .into_iter()
        .collect();
        // Never retried: after a failed sync the staged contents are not trusted.
        match synced.and_then(|()| self.at(FaultPoint::TempSynced, &self.journal_dir())) {
            Ok(()) => Ok(staged),
            Err(error) => Err(self.clean_failure(error, &staged, &[])),
        }
    }

    /// Several files: the journal, written, synced (unless `written` names its
    /// temporary file, written and synced with a batch's staged files) and renamed
    /// to its committed name (the commit mark).
    fn mark_many(
        &self,
        changes: &[Change],
        staged: &[Staged],
        generation: u64,
        written: Option<PathBuf>,
    ) -> Result<PathBuf, Failure> {
        let journal_path = log::commit_path(self.root, generation);
        let temp = match written {
            Some(temp) => temp,
            None => {
                let bytes = journal::encode_refs(&ops(changes, staged, None));
                match files::write_temp(&self.journal_dir(), &bytes, self.hooks, Temp::Journal) {
                    Ok(temp) => temp,
                    Err(error) => {
                        let tidy = self.discard_staged(staged);
                        return Err(Failure::Clean { error, tidy });
                    }
                }
            }
        };
        if let Err(e) = files::rename(&temp, &journal_path, self.hooks) {
            return Err(match files::exists(&temp) {
                // Not renamed: nothing is committed.
                Some(true) => {
                    let tidy = self.discard([temp.as_path()]) && self.discard_staged(staged);
                    Failure::Clean { error: e, tidy }
                }
                // Renamed after all (or cannot be told): the next writer decides.
                Some(false) => Failure::Committed(e),
                None => Failure::Unknown(e),
            });
        }
        Ok(journal_path)
    }

    /// One file, or one document: its record, written (unsynced) as `.pending`,
    /// and its generation published (the commit mark).
    fn mark_one(
        &self,
        changes: &[Change],
        staged: &[Staged],
        generation: u64,
    ) -> Result<PathBuf, Failure> {
        let pending = log::pending_path(self.root, generation);
        let record = files::write_temp(
            &self.journal_dir(),
            &journal::encode_refs(&ops(changes, staged, None)),
            self.hooks,
            Temp::Record,
        )
        .and_then(|temp| {
            files::rename(&temp, &pending, self.hooks).inspect_err(|_| {
                let _ = files::remove(&temp, self.hooks);
            })
        })
        .and_then(|()| self.at(FaultPoint::PendingWritten, &pending));
        if let Err(error) = record {
            return Err(self.clean_failure(error, staged, &[pending.as_path()]));
        }
        // A failed publication may or may not have reached the file: the next writer
        // finds the record named by the generation file (committed) or not (absent).
        self.generation
            .publish(generation, self.hooks)
            .map_err(Failure::Unknown)?;
        Ok(pending)
    }

    /// Renders and writes the temporary file of every put, in parallel for many,
    /// and makes them durable: each with its own fsync, or, from
    /// [`BATCH_SYNC_FILES`] files on Linux, all with one `syncfs` at the end (see
    /// [`Self::stage_batch`], which also writes the journal: then the journal's
    /// temporary file, written and durable, comes back too).
    fn stage(&self, changes: &[Change]) -> Result<(Vec<Staged>, Option<PathBuf>), Failure> {
        let puts: Vec<(&str, &Content)> = changes
            .iter()
            .filter_map(|c| c.content.as_ref().map(|content| (c.rel.as_str(), content)))
            .collect();
        match Batch::open(self, puts.len()).map_err(Failure::clean)? {
            Some(batch) => self.stage_batch(changes, &puts, batch),
            None => self.stage_each(&puts).map(|staged| (staged, None)),
        }
    }

    /// Stages each put as a temporary file in `journal/`, synced on its own.
    fn stage_each(&self, puts: &[(&str, &Content)]) -> Result<Vec<Staged>, Failure> {
        // Threads mostly wait in fsync, and the file system batches concurrent syncs
        // into fewer journal commits: 32 measured best on a 2-core machine's ext4.
        let workers = if self.hooks.serial() {
            1
        } else {
            workers_for(puts.len(), 4, 32)
        };
        let journal_dir = self.journal_dir();
        let results = parallel_map(puts, workers, |(rel, content)| {
            if let Content::Staged(from, _) = content {
                return self.synced_in_place(rel, from);
            }
            let bytes = content.render()?;
            let temp = files::write_temp(&journal_dir, &bytes, self.hooks, Temp::Entity)?;
            Ok(Staged {
                rel: (*rel).to_owned(),
                temp,
                bytes,
            })
        });
        let (staged, failure) = split_staged(results);
        match failure {
            None => Ok(staged),
            Some(error) => {
                let tidy = self.discard_staged(&staged);
                Err(Failure::Clean { error, tidy })
            }
        }
    }

    /// A large commit's staging: each file rendered and written at its path in the
    /// batch's folder without a sync, on up to 16 threads; then the journal (a
    /// batch holds [`BATCH_SYNC_FILES`] puts or more, so it is always a commit of
    /// several files, [`Shape::Many`]), which names the staged files without their content
    /// (format 6), written to its temporary file in `journal/` without a sync
    /// either; then one `syncfs` makes the staged files and the journal durable at
    /// once (passing `TempSynced`, then `JournalSynced`). The journal is not
    /// renamed: that is the commit mark, the caller's next step.
    fn stage_batch(
        &self,
        changes: &[Change],
        puts: &[(&str, &Content)],
        batch: Batch,
    ) -> Result<(Vec<Staged>, Option<PathBuf>), Failure> {
        let folder = batch.folder.clone();
        // The staging folder goes with everything in it (the shard folders made in
        // it, the files staged so far): a folder is not removed by `discard`.
        let remove_folder = |error: Error| {
            let tidy = files::remove_tree(&folder, self.hooks).is_ok();
            Failure::Clean { error, tidy }
        };
        // Every folder the batch's files go to, made before any file is written.
        let mut folders: Vec<&str> = puts
            .iter()
            .filter(|(_, content)| !matches!(content, Content::Staged(..)))
            .map(|(rel, _)| rel_dir(rel))
            .collect();
        folders.sort_unstable();
        folders.dedup();
        folders
            .iter()
            .try_for_each(|dir| {
                let path = folder.join(dir);
                fsio::create_dir_all(&path, self.hooks).map_err(|e| Error::io(&path, e))
            })
            .map_err(remove_folder)?;
        // A batch does not sync each file: its work is the CPU's and the file
        // system's (creating inodes), and its files go to many folders, so that
        // creations do not queue on one folder's lock as they do in `journal/`. 16
        // threads: a file creation also waits on the inode table's blocks, and a
        // loaded machine shares its CPU per thread.
        let workers = if self.hooks.serial() {
            1
        } else {
            workers_for(puts.len(), 64, 16)
        };
        let results = parallel_map(puts, workers, |(rel, content)| {
            if let Content::Staged(from, _) = content {
                return self.synced_in_place(rel, from);
            }
            let bytes = content.render()?;
            let temp = folder.join(rel);
            files::write_staged(&temp, &bytes, self.hooks)?;
            Ok(Staged {
                rel: (*rel).to_owned(),
                temp,
                bytes,
            })
        });
        let (staged, failure) = split_staged(results);
        // The staging folder is removed once, whether or not a file was staged in
        // it (`discard_staged` finds it from the files staged).
        let fail = |error: Error, staged: &[Staged], journal: Option<&PathBuf>| {
            let journal_gone = self.discard(journal.map(PathBuf::as_path));
            let tidy = self.discard_batch(staged, &folder) && journal_gone;
            Failure::Clean { error, tidy }
        };
        if let Some(error) = failure {
            return Err(fail(error, &staged, None));
        }
        // The journal: a line per staged put, without its content (~60 bytes
        // instead of the file), written unsynced; the sync below makes it durable.
        let name = folder
            .file_name()
            .map(|name| format!("{JOURNAL_DIR}/{}", name.to_string_lossy()))
            .unwrap_or_default();
        let bytes = journal::encode_refs(&ops(changes, &staged, Some((&folder, &name))));
        let journal =
            match files::write_temp(&self.journal_dir(), &bytes, self.hooks, Temp::BatchJournal) {
                Ok(path) => Some(path),
                Err(error) => return Err(fail(error, &staged, None)),
            };
        // Never retried: after a failed sync the staged contents are not trusted.
        let synced = batch.sync(self).and_then(|()| match &journal {
            Some(path) => self.at(FaultPoint::JournalSynced, path),
            None => Ok(()),
        });
        match synced {
            Ok(()) => Ok((staged, journal)),
            Err(error) => Err(fail(error, &staged, journal.as_ref())),
        }
    }

    /// Completes a committed transaction: publishes it (several files; one file
    /// is published already), puts its files in place, moves its record into the
    /// log, then removes old records (housekeeping). On success the shard folders
    /// it made join `dirs`.
    pub(crate) fn complete(
        &self,
        committed: Committed,
        dirs: &mut HashSet<String>,
    ) -> Result<(), Failure> {
        let Committed {
            shape,
            generation,
            record,
            changes,
            staged,
            to_sync,
            new_dirs,
        } = committed;
        // One file or one document: published already, with an unsynced record.
        let one_file = shape != Shape::Many;
        let journal_dir = self.journal_dir();
        // Past the commit mark: every failure from here on is completed by recovery,
        // including a failed sync of the journal's folder, which is never retried.
        let committed = |result: Result<()>| result.map_err(Failure::Committed);
        if !one_file {
            committed(self.at(FaultPoint::JournalRenamed, &record))?;
            committed(self.generation.publish(generation, self.hooks))?;
            committed(self.at(FaultPoint::Published, self.generation.path()))?;
            committed(self.sync_if_immediate(&journal_dir))?;
            committed(self.at(FaultPoint::JournalCommitted, &record))?;
        } else {
            committed(self.at(FaultPoint::Published, self.generation.path()))?;
        }
        let mut staged_iter = staged.iter();
        let mut to_sync = to_sync;
        let bulk = self.bulk_of(&staged);
        // The folders a batch moved into place whole, once the removals are done.
        let mut moved: Option<HashSet<String>> = None;
        for change in &changes {
            let target = self.root.join(&change.rel);
            let document = is_document(&change.rel);
            match &change.content {
                Some(_) => {
                    let Some(s) = staged_iter.next() else { break };
                    debug_assert_eq!(s.rel, change.rel);
                    let moved = match (&mut moved, &bulk) {
                        (Some(moved), _) => moved,
                        (None, Some(bulk)) => {
                            let folders = self
                                .move_folders(bulk, &staged)
                                .map_err(Failure::Committed)?;
                            // Their names changed in their parents.
                            to_sync.extend(
                                folders
                                    .iter()
                                    .map(|d| files::parent(&self.root.join(d)).to_path_buf()),
                            );
                            moved.insert(folders)
                        }
                        (None, None) => moved.insert(HashSet::new()),
                    };
                    if bulk.as_ref().is_some_and(|b| s.temp.starts_with(b))
                        && moved.contains(rel_dir(&change.rel))
                    {
                        committed(self.at(FaultPoint::Renamed, &target))?;
                        continue;
                    }
                    if document {
                        let dir = files::parent(&target);
                        to_sync.extend(
                            docs::ensure_doc_dirs(self.root, dir, self.hooks)
                                .map_err(Failure::Committed)?,
                        );
                        committed(docs::clear_empty_dir_at(&target, self.hooks))?;
                    }
                    committed(files::rename(&s.temp, &target, self.hooks))?;
                }
                None => {
                    committed(files::remove(&target, self.hooks).map(drop))?;
                    if document {
                        let dir = files::parent(&target);
                        to_sync.extend(
                            docs::prune_doc_dirs(self.root, dir, self.hooks)
                                .map_err(Failure::Committed)?,
                        );
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
        // One document's two folders are synced at once, as its staged files were.
        let workers = match shape {
            Shape::OneDocument if !self.hooks.serial() => to_sync.len(),
            _ => 0,
        };
        committed(self.sync_all(&to_sync, workers))?;
        committed(self.at(FaultPoint::FoldersSynced, &record))?;
        if let Some(bulk) = &bulk {
            // What is left of a batch's folder: the empty folders its files left.
            // A leftover is removed by the next writable open.
            let _ = files::remove_tree(bulk, self.hooks);
        }
        let in_log = log::record_path(self.root, generation);
        committed(files::rename(&record, &in_log, self.hooks))?;
        if one_file {
            committed(self.at(FaultPoint::Recorded, &in_log))?;
        } else {
            committed(self.at(FaultPoint::JournalRemoved, &record))?;
            // A journal whose move were lost could later be replayed over newer commits.
            committed(self.sync_if_immediate(&journal_dir))?;
        }
        dirs.extend(new_dirs);
        log::prune_after(self.root, generation, self.hooks);
        Ok(())
    }

    fn sync_if_immediate(&self, dir: &Path) -> Result<()> {
        if crate::options::sync_folders(self.durability) {
            sync_dir(dir, self.hooks)
        } else {
            Ok(())
        }
    }

    /// Syncs `dirs` on `workers` threads (0: as many as their number calls for).
    fn sync_all(&self, dirs: &[PathBuf], workers: usize) -> Result<()> {
        if !crate::options::sync_folders(self.durability) {
            return Ok(());
        }
        let workers = if self.hooks.serial() {
            1
        } else if workers > 0 {
            workers
        } else {
            workers_for(dirs.len(), 8, 16)
        };
        parallel_map(dirs, workers, |dir| sync_dir(dir, self.hooks))
            .into_iter()
            .collect()
    }
}
