//! Finishing or discarding what a writer left in `journal/` when it died, or when
//! its commit failed past the commit mark: done by the next writer, under the
//! lock, before its own transaction (and by a writable open that can take the lock).
//!
//! A [`Plan`] says what is there and what will be done with it; `check` reports it
//! as notes, a writer [executes](Plan::execute) it:
//! - temporary files (staged contents, unfinished journals and records): removed;
//! - `journal/<g>.commit`, a committed transaction: rolled forward from the
//!   journal's content (every file rewritten, folders synced), its generation
//!   published, then moved into the log;
//! - `journal/<g>.pending`, a one-file transaction's record: if its generation
//!   is published (its commit mark), rolled forward like a journal and moved into
//!   the log; otherwise it never committed, and is removed;
//! - records in the log that the generation file does not name yet: published.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Problem, Result};

use crate::docs::{self, DOCUMENTS};
use crate::fault::{FaultPoint, Hooks};
use crate::files::{self, JOURNAL_TEMP_SUFFIX, Temp, ensure_dir, is_temp, parent, sync_dir};
use crate::journal::{self, COMMITTED, FileOp, JOURNAL_DIR};
use crate::layout::RecoveryReport;
use crate::log::{self, Generation, PENDING, Published};

/// What became of a one-file transaction whose record is still `.pending`.
#[derive(Debug)]
enum Pending {
    /// Its generation is published: it committed.
    Committed(Vec<FileOp>),
    /// It is not: it never committed (or a failed commit left its record behind).
    Uncommitted,
    /// The record does not decode (cut short by a crash of the machine).
    Damaged(String),
}

/// What a finding of a [`Plan`] is, for an inspection to sort it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// What the next writer recovers by itself.
    Note,
    /// Damage an open refuses the store for (a committed journal that does not decode).
    Damaged,
    /// An entry of `journal/` this store never writes: a problem to report, never a
    /// reason an open refuses the store.
    Stray,
}

/// What a writer left in `journal/`, and the state of the log.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Staged entity contents.
    temps: Vec<PathBuf>,
    /// Unfinished journals and records.
    journal_temps: Vec<PathBuf>,
    /// Large commits' staging folders (`journal/bulk-<pid>-<n>/`).
    bulk_dirs: Vec<PathBuf>,
    /// Committed journals, by generation, with their operations (or why they do not decode).
    commits: Vec<(u64, PathBuf, std::result::Result<Vec<FileOp>, String>)>,
    /// One-file records, by generation.
    pendings: Vec<(u64, PathBuf, Pending)>,
    /// Entries of `journal/` this store never writes.
    strays: Vec<PathBuf>,
    /// What the generation file says.
    published: Published,
    /// The records of the log after the published generation (or every record, if
    /// the generation file does not read).
    beyond: Vec<u64>,
}

impl Plan {
    /// Looks at `journal/` and the log of the store at `root`.
    pub(crate) fn of(root: &Path, generation: &Generation) -> Result<Self> {
        let mut plan = Plan {
            temps: Vec::new(),
            journal_temps: Vec::new(),
            bulk_dirs: Vec::new(),
            commits: Vec::new(),
            pendings: Vec::new(),
            strays: Vec::new(),
            published: generation.read()?,
            beyond: Vec::new(),
        };
        let dir = root.join(JOURNAL_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(plan),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut pendings = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if files::is_bulk_name(&name) {
                plan.bulk_dirs.push(path);
            } else if is_temp(&name) {
                if name.ends_with(JOURNAL_TEMP_SUFFIX) {
                    plan.journal_temps.push(path);
                } else {
                    plan.temps.push(path);
                }
            } else if let Some(g) = name
                .strip_suffix(COMMITTED)
                .and_then(log::parse_record_name)
            {
                let ops = read_ops(root, &path)?;
                plan.commits.push((g, path, ops));
            } else if let Some(g) = name.strip_suffix(PENDING).and_then(log::parse_record_name) {
                pendings.push((g, path));
            } else if crate::docs::is_staged_path(&format!("{JOURNAL_DIR}/{name}"))
                || crate::docs::is_staged_meta_path(&format!("{JOURNAL_DIR}/{name}"))
            {
                // A document's bytes (or a one-document commit's metadata), staged by
                // a transaction: moved by its committed journal or record, or (named
                // by none) settled by the next writable open (`docs::scan`).
            } else if name != "log" {
                plan.strays.push(path);
            }
        }
        plan.temps.sort();
        plan.journal_temps.sort();
        plan.bulk_dirs.sort();
        plan.commits.sort_by_key(|(g, _, _)| *g);
        plan.strays.sort();
        plan.beyond = match plan.published.generation() {
            // Records a writer moved into the log without publishing them (it died
            // in between), one after another.
            Some(published) => (published + 1..)
                .take_while(|g| log::has_record(root, *g))
                .collect(),
            None => log::list(root)?.into_iter().map(|(g, _)| g).collect(),
        };
        pendings.sort();
        for (g, path) in pendings {
            let state = match (read_ops(root, &path)?, plan.published) {
                (Err(detail), _) => Pending::Damaged(detail),
                (Ok(ops), Published::At(published)) if g <= published => Pending::Committed(ops),
                // A generation file a crash of the machine left unreadable: the file
                // itself tells whether the rename happened (either is allowed then).
                (Ok(ops), Published::Unreadable) if happened(root, &ops)? => {
                    Pending::Committed(ops)
                }
                (Ok(_), _) => Pending::Uncommitted,
            };
            plan.pendings.push((g, path, state));
        }
        Ok(plan)
    }

    /// The published generation (0 if unreadable).
    pub(crate) fn published_generation(&self) -> u64 {
        self.published.generation().unwrap_or(0)
    }

    /// The part of [`overlay`](Self::overlay) that is published: what readers see.
    pub(crate) fn published_overlay(&self) -> Vec<(u64, &[FileOp])> {
        let published = self.published_generation();
        let mut out = self.overlay();
        out.retain(|(g, _)| *g <= published);
        out
    }

    /// The journals and records of published transactions that a read-only
    /// reader applies in memory.
    pub(crate) fn overlay_paths(&self) -> Vec<PathBuf> {
        let published = self.published_generation();
        let mut out: Vec<PathBuf> = self
            .commits
            .iter()
            .filter(|(g, _, ops)| ops.is_ok() && *g <= published)
            .map(|(_, path, _)| path.clone())
            .collect();
        out.extend(
            self.pendings
                .iter()
                .filter(|(_, _, state)| matches!(state, Pending::Committed(_)))
                .map(|(_, path, _)| path.clone()),
        );
        out
    }

    /// Everything the next writer will remove or move.
    pub(crate) fn leftovers(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.temps.clone();
        out.extend(self.journal_temps.iter().cloned());
        out.extend(self.bulk_dirs.iter().cloned());
        out.extend(self.commits.iter().map(|(_, path, _)| path.clone()));
        out.extend(self.pendings.iter().map(|(_, path, _)| path.clone()));
        out
    }

    /// The error for a committed journal that cannot be rolled forward, if any.
    pub(crate) fn refuse_damaged(&self) -> Result<()> {
        for (_, path, ops) in &self.commits {
            if let Err(detail) = ops {
                return Err(damaged(path, detail));
            }
        }
        Ok(())
    }

    /// The committed transactions the files may not fully hold yet, in order:
    /// what a reader overlays on the files, and what a check expects.
    pub(crate) fn overlay(&self) -> Vec<(u64, &[FileOp])> {
        let mut out: Vec<(u64, &[FileOp])> = Vec::new();
        for (g, _, ops) in &self.commits {
            if let Ok(ops) = ops {
                out.push((*g, ops));
            }
        }
        for (g, _, state) in &self.pendings {
            if let Pending::Committed(ops) = state {
                out.push((*g, ops));
            }
        }
        out.sort_by_key(|(g, _)| *g);
        out
    }

    /// The generations the next writer will publish, beyond the published one.
    pub(crate) fn unpublished(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self.beyond.clone();
        out.extend(self.overlay().iter().map(|(g, _)| *g));
        let published = self.published.generation().unwrap_or(0);
        out.retain(|g| *g > published);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What a check reports: notes for what the next writer recovers, problems for
    /// what it cannot.
    pub(crate) fn findings(&self) -> Vec<Problem> {
        self.kinded_findings()
            .into_iter()
            .map(|(_, problem)| problem)
            .collect()
    }

    /// [`Plan::findings`], each with its [`Kind`]: how an inspection sorts it,
    /// decided where the finding is made rather than from its text.
    pub(crate) fn kinded_findings(&self) -> Vec<(Kind, Problem)> {
        let at = |path: &Path| path.display().to_string();
        let note = |location: String, detail: String| (Kind::Note, Problem::note(location, detail));
        let mut out = Vec::new();
        for temp in &self.temps {
            out.push(note(
                at(temp),
                "temporary file of an interrupted write: the next write (or writable open) removes it"
                    .to_owned(),
            ));
        }
        for folder in &self.bulk_dirs {
            out.push(note(
                at(folder),
                "staged files of an interrupted large write: the next write (or writable open) \
                 puts in place those its committed journal names, if it committed, and removes \
                 the folder"
                    .to_owned(),
            ));
        }
        for temp in &self.journal_temps {
            out.push(note(
                at(temp),
                "journal of a transaction that never committed: the next write (or writable open) \
                 discards it"
                    .to_owned(),
            ));
        }
        for (_, path, ops) in &self.commits {
            out.push(match ops {
                Ok(ops) => note(
                    at(path),
                    format!(
                        "a committed transaction of {} file(s) whose writer stopped before putting \
                         them all in place: the next write (or writable open) finishes it from \
                         this journal",
                        ops.len()
                    ),
                ),
                Err(detail) => (
                    Kind::Damaged,
                    Problem::new(
                        at(path),
                        format!(
                            "a committed journal {detail}; it cannot be rolled forward safely, so \
                             the store cannot be opened for writing (restore it from a backup)"
                        ),
                    ),
                ),
            });
        }
        for (_, path, state) in &self.pendings {
            let detail = match state {
                Pending::Committed(_) => "a committed one-file transaction whose writer \
                     stopped before putting its file in place: the next write (or writable \
                     open) finishes it from this record"
                    .to_owned(),
                Pending::Uncommitted => "the record of a one-file transaction that never \
                     committed: the next write (or writable open) discards it"
                    .to_owned(),
                Pending::Damaged(why) => format!(
                    "the record of a one-file transaction that {why} (cut short by a crash of \
                     the machine?): the next write (or writable open) discards it"
                ),
            };
            out.push(note(at(path), detail));
        }
        for stray in &self.strays {
            out.push((
                Kind::Stray,
                Problem::new(
                    at(stray),
                    "is not a file this store writes in journal/ (stray)",
                ),
            ));
        }
        match (self.published, self.beyond.last()) {
            (Published::Unreadable, _) => out.push(note(
                "journal/log/generation".to_owned(),
                "the generation file does not read (left by a crash of the machine?): the next \
                 write (or writable open) rewrites it"
                    .to_owned(),
            )),
            (Published::At(g), Some(last)) => out.push(note(
                "journal/log/generation".to_owned(),
                format!(
                    "names generation {g}, the log holds transactions up to {last}: the next \
                     write (or writable open) publishes them"
                ),
            )),
            _ => {}
        }
        out
    }

    /// Does what the plan says; returns the generation published at the end. Every
    /// step is idempotent, so a recovery cut short is finished by the next one.
    pub(crate) fn execute(
        &self,
        root: &Path,
        hooks: &Hooks,
        generation: &Generation,
        report: &mut RecoveryReport,
    ) -> Result<u64> {
        let journal_dir = root.join(JOURNAL_DIR);
        let mut changed_journal = false;
        for (temps, into) in [
            (&self.temps, &mut report.temps_removed),
            (&self.journal_temps, &mut report.discarded),
        ] {
            for temp in temps {
                files::remove(temp, hooks)?;
                hooks
                    .at(FaultPoint::CleanupRemoved)
                    .map_err(|e| Error::io(temp, e))?;
                into.push(temp.clone());
                changed_journal = true;
            }
        }
        // The removals need not be durable before what follows (a temporary file
        // a power cut brings back is removed again): a later step that syncs
        // `journal/` makes them durable with its own change.
        let synced_later =
            !self.commits.is_empty() || !self.bulk_dirs.is_empty() || !self.pendings.is_empty();
        if changed_journal && !synced_later {
            sync_dir(&journal_dir, hooks)?;
        }
        let mut head = self.published.generation().unwrap_or(0);
        for (g, path, ops) in &self.commits {
            let ops = ops.as_ref().map_err(|detail| damaged(path, detail))?;
            roll_forward(root, ops, false, hooks)?;
            // Published before it moves into the log, as a commit does.
            head = head.max(*g);
            generation.publish(head, hooks)?;
            files::rename(path, &log::record_path(root, *g), hooks)?;
            sync_dir(&journal_dir, hooks)?;
            report.rolled_forward.push(path.clone());
        }
        // A large commit's staging folders: a committed journal's (format 6) held
        // the content of its staged puts, read into its operations when this plan
        // was made and written in place above; an uncommitted one's, nothing. Removed
        // only now, so that a recovery cut short finds them again.
        for folder in &self.bulk_dirs {
            files::remove_tree(folder, hooks)?;
            hooks
                .at(FaultPoint::CleanupRemoved)
                .map_err(|e| Error::io(folder, e))?;
            report.temps_removed.push(folder.clone());
        }
        if !self.bulk_dirs.is_empty() {
            sync_dir(&journal_dir, hooks)?;
        }
        for (g, path, state) in &self.pendings {
            match state {
                Pending::Committed(ops) => {
                    // Its file may not be in place, or its folder not synced.
                    roll_forward(root, ops, true, hooks)?;
                    files::rename(path, &log::record_path(root, *g), hooks)?;
                    head = head.max(*g);
                    report.completed.push(path.clone());
                }
                _ => {
                    files::remove(path, hooks)?;
                    report.discarded.push(path.clone());
                }
            }
        }
        if let Some(last) = self.beyond.last() {
            head = head.max(*last);
        }
        let stale_generation = self.published != Published::At(head);
        if stale_generation {
            generation.publish(head, hooks)?;
        }
        if !self.pendings.is_empty() {
            sync_dir(&journal_dir, hooks)?;
        }
        Ok(head)
    }
}

/// The error for a committed journal that does not decode.
pub(crate) fn damaged(path: &Path, detail: &str) -> Error {
    Error::corrupt(
        path,
        format!(
            "a committed journal {detail}; it cannot be rolled forward safely, \
             so the store is not opened (restore it from a backup)"
        ),
    )
}

/// A journal's or record's operations, or why they do not decode.
fn read_ops(root: &Path, path: &Path) -> Result<std::result::Result<Vec<FileOp>, String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(journal::decode(&bytes, root)),
        // Moved or removed meanwhile (a check does not hold every writer out): gone.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Err("is gone".into())),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Whether a one-file transaction's operation is what its file now shows.
fn happened(root: &Path, ops: &[FileOp]) -> Result<bool> {
    for op in ops {
        let path = root.join(&op.rel);
        let now = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if now != op.content {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies a committed journal's operations to the files, durably whatever the
/// durability setting. Idempotent, so a crash here only means doing it again.
/// `journal/` is not synced here: the caller moves the record out of it next and
/// syncs it then, which makes the staged files' moves out of it durable too (it
/// was synced twice, here and there, before).
///
/// A one-document commit's record (`pending`, format 5) whose staged bytes are
/// gone was applied: its bytes were renamed into place after its metadata, so
/// only its folders are synced (its metadata is not written again — after a power
/// cut that kept an old record, that would put back a replaced document's
/// metadata; a metadata rename the power cut lost is in `journal/`, where the
/// open's `docs::scan` finds it). Otherwise its bytes are moved and its staged
/// metadata, if still there, removed.
fn roll_forward(root: &Path, ops: &[FileOp], pending: bool, hooks: &Hooks) -> Result<()> {
    let journal_dir = root.join(JOURNAL_DIR);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let applied = pending
        && ops
            .iter()
            .filter_map(|op| op.from.as_ref())
            .any(|from| files::exists(&root.join(from)) == Some(false));
    for op in ops {
        if applied && op.content.is_some() && op.rel.starts_with(docs::DOCMETA) {
            dirs.push(parent(&root.join(&op.rel)).to_path_buf());
            continue;
        }
        let path = root.join(&op.rel);
        let dir = parent(&path).to_path_buf();
        let document = op.rel.starts_with(DOCUMENTS);
        match (&op.content, &op.from) {
            (Some(content), _) => {
                if ensure_dir(&dir, hooks)? {
                    dirs.push(parent(&dir).to_path_buf());
                }
                let temp = files::write_temp(&journal_dir, content, hooks, Temp::Rewrite)?;
                files::rename(&temp, &path, hooks)?;
            }
            (None, Some(from)) => {
                // Not there any more: moved by the interrupted commit, or an earlier
                // roll-forward (the open then checks the document's size).
                let staged = root.join(from);
                // What leaves `journal/` (the staged bytes, and the staged metadata
                // below) is made durable by the caller's sync of `journal/` after it
                // moves the record out of it, the step that follows this one.
                if files::exists(&staged) == Some(true) {
                    dirs.extend(docs::ensure_doc_dirs(root, &dir, hooks)?);
                    docs::clear_empty_dir_at(&path, hooks)?;
                    files::rename(&staged, &path, hooks)?;
                }
                // A one-document commit's staged metadata: its content is the put
                // beside this move, written above.
                if !applied {
                    files::remove(&root.join(docs::staged_meta_of(from)), hooks)?;
                }
            }
            (None, None) => {
                files::remove(&path, hooks)?;
                if document {
                    dirs.extend(docs::prune_doc_dirs(root, &dir, hooks)?);
                }
            }
        }
        dirs.push(dir);
        hooks
            .at(FaultPoint::RecoveryApplied)
            .map_err(|e| Error::io(&path, e))?;
    }
    let documents = root.join(DOCUMENTS);
    dirs.retain(|d| !d.starts_with(&documents) || d.is_dir());
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        sync_dir(&dir, hooks)?;
    }
    Ok(())
}
