//! Documents as ordinary files: `documents/scripts/pilot.fountain` holds the bytes
//! of the key `scripts/pilot.fountain`, and `docmeta/<xx>/<stem>.json` its
//! metadata (key, content type, size, SHA-256, timestamps, version).
//!
//! A write transaction streams each document into `journal/<pid>-<n>.staged`
//! (bounded memory, whatever its size). At commit the staged file is synced and
//! the journal says `mv journal/<…>.staged documents/<…>`: after the commit mark
//! the staged file is renamed into place. The staged file's name lives in
//! `journal/`, whose sync is the commit mark, so a committed transaction always
//! finds its staged bytes at recovery. Readers open the files; each document's
//! file identity (device and inode) is kept in memory, so a reader on an older
//! snapshot never reads bytes a later commit put there (it gets `Conflict`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use kgstore_core::documents::{DocIndex, DocInput, DocRead, DocWrite, input_error, key::key_rule};
use kgstore_core::{DocumentMeta, Error, Problem, Result};
use sha2::{Digest as _, Sha256};

use crate::fault::Hooks;
use crate::files::{self, Content};
use crate::fsio;
use crate::journal::{FileOp, JOURNAL_DIR};
pub use crate::names::encode_segment;
use crate::names::{EXTENSION, encode_name, fit, shard};
use crate::scan::Finding;

/// Folder of the documents' bytes.
pub const DOCUMENTS: &str = "documents";
/// Folder of the documents' metadata files.
pub const DOCMETA: &str = "docmeta";
/// The extension of a staged document in `journal/`.
pub const STAGED: &str = ".staged";
/// The extension of a one-document commit's staged metadata in `journal/`
/// (format 5): `journal/<pid>-<n>.docmeta`, beside the staged bytes
/// `journal/<pid>-<n>.staged` of the same transaction.
pub const STAGED_META: &str = ".docmeta";

/// The path of a document's bytes, relative to the store's folder.
pub fn doc_path(key: &str) -> String {
    let mut out = String::from(DOCUMENTS);
    for segment in key.split('/') {
        out.push('/');
        out.push_str(&encode_segment(segment));
    }
    out
}

/// The path of a document's metadata file, relative to the store's folder.
pub fn docmeta_path(key: &str) -> String {
    let stem = fit(encode_name(key));
    format!("{DOCMETA}/{}/{stem}{EXTENSION}", shard(&stem))
}

/// Whether `rel` is a path this backend writes for documents (journal replay
/// refuses any other): a content path, a metadata path, or a staged file.
pub fn is_doc_path(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let safe = |part: &&str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part.len() <= 255
            && part.bytes().all(|b| {
                matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'^' | b'%' | b'~')
            })
    };
    match parts.as_slice() {
        [DOCUMENTS, rest @ ..] => !rest.is_empty() && rest.iter().all(safe),
        [DOCMETA, shard, file] => {
            shard.len() == 2 && file.ends_with(EXTENSION) && safe(shard) && safe(file)
        }
        _ => false,
    }
}

/// Whether `rel` names a staged document (`journal/<digits>-<digits>.staged`).
pub fn is_staged_path(rel: &str) -> bool {
    is_staged_with(rel, STAGED)
}

/// Whether `rel` names a one-document commit's staged metadata
/// (`journal/<digits>-<digits>.docmeta`).
pub fn is_staged_meta_path(rel: &str) -> bool {
    is_staged_with(rel, STAGED_META)
}

/// The staged metadata's path that goes with a staged document's (both relative).
pub fn staged_meta_of(staged: &str) -> String {
    let stem = staged.strip_suffix(STAGED).unwrap_or(staged);
    format!("{stem}{STAGED_META}")
}

/// The staged document's path that goes with a staged metadata's (both relative).
fn staged_of_meta(meta: &str) -> String {
    let stem = meta.strip_suffix(STAGED_META).unwrap_or(meta);
    format!("{stem}{STAGED}")
}

fn is_staged_with(rel: &str, extension: &str) -> bool {
    rel.strip_prefix(JOURNAL_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|name| name.strip_suffix(extension))
        .and_then(|stem| stem.split_once('-'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

static STAGED_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new staged file's path relative to the store's folder.
fn staged_rel() -> String {
    let n = STAGED_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{JOURNAL_DIR}/{}-{n}{STAGED}", std::process::id())
}

/// A file's identity: device and inode where the system has them.
pub type FileId = Option<(u64, u64)>;

fn file_id(meta: &fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Where a document's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocFile {
    /// At its own path, in the file with this identity.
    Stored(FileId),
    /// In a staged file (relative path) of a transaction not yet applied.
    Staged(String, FileId),
}

/// The documents of a snapshot.
pub type Docs = DocIndex<DocFile>;

/// Document reads on a snapshot of the index; the bytes come from the files.
pub struct DocView<'a> {
    pub root: &'a Path,
    pub index: Docs,
    /// The committed image, to say which version replaced a file a snapshot wants.
    pub current: &'a RwLock<crate::image::Image>,
}

impl DocView<'_> {
    fn path_of(&self, meta: &DocumentMeta) -> Result<(PathBuf, FileId)> {
        match self.index.get(&meta.key) {
            Some((_, DocFile::Stored(id))) => Ok((self.root.join(doc_path(&meta.key)), *id)),
            Some((_, DocFile::Staged(rel, id))) => Ok((self.root.join(rel), *id)),
            None => Err(Error::document_not_found(&meta.key)),
        }
    }

    /// The error for a file whose bytes do not match `meta`'s digest: replaced by a
    /// later commit (a reused inode number), or changed behind the store's back.
    fn changed(&self, meta: &DocumentMeta) -> Error {
        if self.current_version(&meta.key) != meta.version {
            return self.replaced(meta);
        }
        Error::corrupt(
            format!(
                "<document '{}'>",
                kgstore_core::validate::shorten(&meta.key)
            ),
            "its file's bytes no longer match the SHA-256 the store recorded (changed \
             outside kgstore; `kgstore check` lists such files)",
        )
    }

    fn current_version(&self, key: &str) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .docs
            .get(key)
            .map_or(0, |(m, _)| m.version)
    }

    fn replaced(&self, meta: &DocumentMeta) -> Error {
        let current = self.current_version(&meta.key);
        Error::Conflict {
            entity: format!(
                "document '{}' (its file was replaced or removed after this snapshot was taken; read it again)",
                kgstore_core::validate::shorten(&meta.key)
            ),
            expected: meta.version,
            actual: current,
        }
    }
}

/// A document's file as read on a snapshot, checked against the snapshot's digest
/// at its end. The identity check at open can be fooled: a file system reuses the
/// inode number of a deleted file, so a file written two commits later may carry
/// the identity the snapshot recorded (seen under load: a snapshot read the bytes
/// of a later version). Its digest cannot be fooled: a mismatch is the same
/// [`Error::Conflict`] as a file found replaced at open when a later commit
/// replaced the document, and `Corrupt` when nothing did ([`DocView::changed`]).
struct Verified<'v, 'a> {
    file: io::BufReader<File>,
    /// `None` once the end was reached and the digest compared.
    hasher: Option<Sha256>,
    matched: bool,
    view: &'v DocView<'a>,
    meta: DocumentMeta,
}

impl Read for Verified<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n > 0 {
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&buf[..n]);
            }
        } else if !buf.is_empty() {
            if let Some(hasher) = self.hasher.take() {
                let digest: [u8; 32] = hasher.finalize().into();
                self.matched = digest == self.meta.sha256.0;
            }
            if !self.matched {
                return Err(io::Error::other(self.view.changed(&self.meta)));
            }
        }
        Ok(n)
    }
}

impl DocRead for DocView<'_> {
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        Ok(self.index.meta(key))
    }

    fn scan_docs(
        &self,
        prefix: &str,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        Ok(self.index.scan_meta(prefix, from, limit))
    }

    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
        let (path, id) = self.path_of(meta)?;
        let opened = match File::open(&path) {
            // A staged file of a committed transaction (applied from another
            // process's record) is moved into place after its publication: the same
            // file, by its identity, at the document's own path.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && matches!(self.index.get(&meta.key), Some((_, DocFile::Staged(..)))) =>
            {
                File::open(self.root.join(doc_path(&meta.key)))
            }
            other => other,
        };
        let file = match opened {
            Ok(file) => file,
            // Gone, or its folder became a document: replaced after this snapshot.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(self.replaced(meta));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if id.is_some() {
            let found = file.metadata().map_err(|e| Error::io(&path, e))?;
            if file_id(&found) != id {
                return Err(self.replaced(meta));
            }
        }
        Ok(Box::new(Verified {
            file: io::BufReader::with_capacity(1 << 16, file),
            hasher: Some(Sha256::new()),
            matched: false,
            view: self,
            meta: meta.clone(),
        }))
    }

    fn contains_doc(&self, key: &str) -> Result<bool> {
        Ok(self.index.contains(key))
    }

    fn count_docs(&self) -> Result<u64> {
        Ok(self.index.len() as u64)
    }
}

/// What a write transaction did to one key.
pub enum DocChange {
    /// Wrote it: its bytes are in this staged file (relative path).
    Put(String),
    /// Deleted it.
    Delete,
}

/// A write transaction's documents: the view it reads (with its own writes) and
/// the changes to apply at commit.
pub struct DocTxn<'a> {
    pub view: DocView<'a>,
    pub changes: BTreeMap<String, DocChange>,
    pub hooks: &'a Hooks,
}

impl DocTxn<'_> {
    /// Removes the staged file of an earlier write of `key` in this transaction.
    fn unstage(&mut self, key: &str) {
        if let Some(DocChange::Put(rel)) = self.changes.remove(key) {
            let _ = files::remove(&self.view.root.join(rel), self.hooks);
        }
    }

    /// Streams `input` into a new staged file; its relative path and identity.
    fn stage(&self, input: &mut DocInput<'_>) -> Result<(String, FileId)> {
        let rel = staged_rel();
        let path = self.view.root.join(&rel);
        let mut file = fsio::create_new(&path, self.hooks).map_err(|e| Error::io(&path, e))?;
        let outcome = (|| {
            if let Some(bytes) = input.as_bytes() {
                return fsio::write_all(&mut file, &path, bytes, self.hooks)
                    .map_err(|e| Error::io(&path, e));
            }
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let n = match input.read(&mut buffer) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(input_error(input, e)),
                };
                fsio::write_all(&mut file, &path, &buffer[..n], self.hooks)
                    .map_err(|e| Error::io(&path, e))?;
            }
        })()
        .and_then(|()| input.finish().map(drop))
        .and_then(|()| file.metadata().map_err(|e| Error::io(&path, e)));
        match outcome {
            Ok(meta) => Ok((rel, file_id(&meta))),
            Err(e) => {
                drop(file);
                let _ = files::remove(&path, self.hooks);
                Err(e)
            }
        }
    }
}

impl Drop for DocTxn<'_> {
    /// A transaction that did not commit leaves no staged file behind.
    fn drop(&mut self) {
        let keys: Vec<String> = self.changes.keys().cloned().collect();
        for key in keys {
            self.unstage(&key);
        }
    }
}

impl DocRead for DocTxn<'_> {
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        self.view.doc_meta(key)
    }

    fn scan_docs(
        &self,
        prefix: &str,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        self.view.scan_docs(prefix, from, limit)
    }

    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
        self.view.open_doc(meta)
    }

    fn contains_doc(&self, key: &str) -> Result<bool> {
        self.view.contains_doc(key)
    }

    fn count_docs(&self) -> Result<u64> {
        self.view.count_docs()
    }
}

impl DocWrite for DocTxn<'_> {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        let (rel, id) = self.stage(input)?;
        let meta = input.finish()?.clone();
        let key = meta.key.clone();
        self.unstage(&key);
        self.view
            .index
            .insert(meta, DocFile::Staged(rel.clone(), id));
        self.changes.insert(key, DocChange::Put(rel));
        Ok(())
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        let existed = self.view.index.remove(key).is_some();
        if existed {
            self.unstage(key);
            self.changes.insert(key.to_owned(), DocChange::Delete);
        }
        Ok(existed)
    }
}

/// The file changes of a transaction's documents: for each written key its
/// metadata file and the move of its staged bytes into place, for each deleted
/// one (stored before) the removal of both. `base` is the index before it.
pub fn file_changes(txn: &DocTxn<'_>, base: &Docs) -> Vec<crate::commit::Change> {
    let mut out = Vec::new();
    for (key, change) in &txn.changes {
        match change {
            DocChange::Put(rel) => {
                if let Some((meta, file)) = txn.view.index.get(key) {
                    let (DocFile::Staged(_, id) | DocFile::Stored(id)) = file;
                    out.push(crate::commit::Change {
                        rel: docmeta_path(key),
                        content: Some(Content::DocMeta(meta.clone())),
                    });
                    out.push(crate::commit::Change {
                        rel: doc_path(key),
                        content: Some(Content::Staged(rel.clone(), *id)),
                    });
                }
            }
            DocChange::Delete => {
                if base.contains(key) {
                    out.push(crate::commit::Change {
                        rel: docmeta_path(key),
                        content: None,
                    });
                    out.push(crate::commit::Change {
                        rel: doc_path(key),
                        content: None,
                    });
                }
            }
        }
    }
    out
}

/// The index once a commit's files are in place: staged files are now stored at
/// their paths (a rename keeps the file's identity).
pub fn committed(index: &Docs) -> Docs {
    let mut out = index.clone();
    for (meta, file) in index.iter() {
        if let DocFile::Staged(_, id) = file {
            out.insert(meta.clone(), DocFile::Stored(*id));
        }
    }
    out
}

/// Creates the folders between `documents/` and `dir` that are missing; the parents
/// of those created (whose new entries need syncing). An empty folder may stand
/// where a file must go, and the reverse never (the file-tree rule).
pub fn ensure_doc_dirs(root: &Path, dir: &Path, hooks: &Hooks) -> Result<Vec<PathBuf>> {
    let base = root.join(DOCUMENTS);
    let mut missing = Vec::new();
    let mut at = dir.to_path_buf();
    while at != base && at.starts_with(&base) && files::exists(&at) == Some(false) {
        missing.push(at.clone());
        if !at.pop() {
            break;
        }
    }
    let mut parents = Vec::new();
    for created in missing.into_iter().rev() {
        files::ensure_dir(&created, hooks)?;
        parents.push(files::parent(&created).to_path_buf());
    }
    Ok(parents)
}

/// Removes the folders between `documents/` and `dir` that a removal left empty;
/// the folders whose entries changed.
pub fn prune_doc_dirs(root: &Path, dir: &Path, hooks: &Hooks) -> Result<Vec<PathBuf>> {
    let base = root.join(DOCUMENTS);
    let mut changed = Vec::new();
    let mut at = dir.to_path_buf();
    while at != base && at.starts_with(&base) {
        let empty = fs::read_dir(&at)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            break;
        }
        match fsio::remove_dir(&at, hooks) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&at, e)),
        }
        at.pop();
        changed.push(at.clone());
    }
    Ok(changed)
}

/// Removes an empty folder standing where a document's file must go (left by a
/// crash between a removal and its folder's pruning).
pub fn clear_empty_dir_at(path: &Path, hooks: &Hooks) -> Result<()> {
    let empty_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        && fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    if empty_dir {
        fsio::remove_dir(path, hooks).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// What reading the documents' files found.
#[derive(Default)]
pub struct DocScan {
    pub index: Docs,
    pub findings: Vec<Finding>,
    /// Staged files no committed journal names, and temporary files of metadata
    /// (left by a crash or a failed commit).
    pub strays: Vec<PathBuf>,
    /// The metadata shard folders that exist (relative paths).
    pub dirs: std::collections::HashSet<String>,
    /// One-document commits past their commit mark whose bytes (format 2 and
    /// later) or metadata (format 5) a crash kept in `journal/`: (staged file, the
    /// path it goes to), both relative. The index reads them from the staged file;
    /// a writable open moves them into place ([`complete_moves`]).
    pub pending: Vec<(String, String)>,
}

fn finding(path: PathBuf, detail: String, fatal: bool) -> Finding {
    Finding {
        path,
        detail,
        fatal,
    }
}

/// Reads every metadata file, checks each document's file (present, of the
/// recorded size), and lists stray files; `overlay` is a committed journal that
/// a read-only open could not roll forward.
pub fn scan(root: &Path, overlay: &[FileOp]) -> Result<DocScan> {
    let mut out = DocScan::default();
    let mut metas: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let meta_root = root.join(DOCMETA);
    match fs::read_dir(&meta_root) {
        Ok(shards) => {
            for shard in shards {
                let shard = shard.map_err(|e| Error::io(&meta_root, e))?;
                let name = shard.file_name().to_string_lossy().into_owned();
                let is_dir = shard.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if !is_dir || name.len() != 2 {
                    if files::is_temp(&name) {
                        out.strays.push(shard.path());
                    } else {
                        out.findings.push(finding(
                            shard.path(),
                            "is not a file or folder this store writes (stray)".into(),
                            false,
                        ));
                    }
                    continue;
                }
                out.dirs.insert(format!("{DOCMETA}/{name}"));
                for entry in fs::read_dir(shard.path()).map_err(|e| Error::io(shard.path(), e))? {
                    let entry = entry.map_err(|e| Error::io(shard.path(), e))?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if files::is_temp(&file) {
                        out.strays.push(entry.path());
                        continue;
                    }
                    let rel = format!("{DOCMETA}/{name}/{file}");
                    metas.insert(rel, fs::read(entry.path()).ok());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&meta_root, e)),
    }
    // A committed journal not yet applied (read-only open): its files win.
    let mut moved: HashMap<String, String> = HashMap::new();
    for op in overlay {
        if op.rel.starts_with(DOCMETA) {
            metas.insert(op.rel.clone(), op.content.clone());
            if op.content.is_none() {
                metas.remove(&op.rel);
            }
        } else if let Some(from) = &op.from {
            moved.insert(op.rel.clone(), from.clone());
        }
    }
    // Staged files no committed journal names: strays, except the bytes of a
    // one-document commit that passed its commit mark (its metadata file) before a
    // crash kept them from their place — found below by the digest the metadata
    // records. Only files left by a crash are hashed here.
    let mut leftovers: HashMap<[u8; 32], Vec<(String, u64)>> = HashMap::new();
    let mut staged_metas: Vec<String> = Vec::new();
    let journal = root.join(JOURNAL_DIR);
    let named: BTreeSet<&String> = moved.values().collect();
    if let Ok(entries) = fs::read_dir(&journal) {
        for entry in entries.flatten() {
            let rel = format!("{JOURNAL_DIR}/{}", entry.file_name().to_string_lossy());
            if is_staged_meta_path(&rel) {
                staged_metas.push(rel);
                continue;
            }
            if !is_staged_path(&rel) || named.contains(&rel) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len());
            match (size, hash_file(&entry.path())) {
                (Ok(size), Ok(digest)) => leftovers.entry(digest).or_default().push((rel, size)),
                _ => out.strays.push(entry.path()),
            }
        }
    }
    // A one-document commit (format 5) stages its metadata beside its bytes and
    // renames both into place after its publication; a power cut may keep either
    // rename without the other. Staged metadata whose bytes are still staged beside
    // it (or named by a committed record, which moves them) never got that far: a
    // stray. Staged metadata whose bytes have left was renamed no further than its
    // bytes: it is the document's metadata if the document's file holds exactly
    // the bytes it records (read from there now, moved into place by a writable
    // open), else a stray.
    staged_metas.sort();
    for rel in staged_metas {
        let path = root.join(&rel);
        let staged = staged_of_meta(&rel);
        let bytes_left =
            !named.contains(&staged) && files::exists(&root.join(&staged)) == Some(false);
        match bytes_left.then(|| completed_meta(root, &path)).flatten() {
            Some((meta_rel, bytes)) => {
                metas.insert(meta_rel.clone(), Some(bytes));
                out.pending.push((rel, meta_rel));
            }
            None => out.strays.push(path),
        }
    }
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (rel, bytes) in metas {
        let path = root.join(&rel);
        let Some(bytes) = bytes else {
            out.findings
                .push(finding(path, "cannot be read".into(), true));
            continue;
        };
        let meta: DocumentMeta = match serde_json::from_slice(&bytes) {
            Ok(meta) => meta,
            Err(e) => {
                out.findings.push(finding(
                    path,
                    format!("does not parse as a document's metadata: {e}"),
                    true,
                ));
                continue;
            }
        };
        if let Err(rule) = key_rule(&meta.key) {
            out.findings.push(finding(
                path,
                format!("names an invalid document key: {rule}"),
                true,
            ));
            continue;
        }
        if docmeta_path(&meta.key) != rel {
            out.findings.push(finding(
                path,
                format!(
                    "holds the metadata of document '{}', whose file is {}: a file must sit where its key says",
                    kgstore_core::validate::shorten(&meta.key),
                    docmeta_path(&meta.key)
                ),
                true,
            ));
            continue;
        }
        let content_rel = doc_path(&meta.key);
        expected.insert(content_rel.clone());
        let (file_rel, staged) = match moved.get(&content_rel) {
            Some(from) => (from.clone(), true),
            None => match take_pending(root, &meta, &content_rel, &mut leftovers) {
                Some(from) => {
                    out.pending.push((from.clone(), content_rel.clone()));
                    (from, true)
                }
                None => (content_rel.clone(), false),
            },
        };
        let mut file_path = root.join(&file_rel);
        let mut found = fs::metadata(&file_path);
        if staged
            && found
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        {
            // Moved into place meanwhile (a writer in another process at work).
            file_path = root.join(&content_rel);
            found = fs::metadata(&file_path);
        }
        match found {
            Ok(found) if found.is_file() && found.len() == meta.size => {
                let id = file_id(&found);
                let file = if staged {
                    DocFile::Staged(file_rel, id)
                } else {
                    DocFile::Stored(id)
                };
                out.index.insert(meta, file);
            }
            Ok(found) if found.is_file() => out.findings.push(finding(
                file_path,
                format!(
                    "document '{}' has {} bytes, but its metadata ({rel}) says {} (changed outside kgstore?)",
                    kgstore_core::validate::shorten(&meta.key),
                    found.len(),
                    meta.size
                ),
                true,
            )),
            _ => out.findings.push(finding(
                file_path,
                format!(
                    "document '{}' has metadata ({rel}) but no file",
                    kgstore_core::validate::shorten(&meta.key)
                ),
                true,
            )),
        }
    }
    walk_strays(root, &root.join(DOCUMENTS), &expected, &mut out.findings)?;
    out.strays.extend(
        leftovers
            .into_values()
            .flatten()
            .map(|(rel, _)| root.join(rel)),
    );
    out.strays.sort();
    Ok(out)
}

/// The metadata in the staged file at `path` and the path it goes to, if the
/// document's own file holds exactly the bytes it records and its metadata file
/// is not already the same.
fn completed_meta(root: &Path, path: &Path) -> Option<(String, Vec<u8>)> {
    let bytes = fs::read(path).ok()?;
    let meta: DocumentMeta = serde_json::from_slice(&bytes).ok()?;
    key_rule(&meta.key).ok()?;
    let meta_rel = docmeta_path(&meta.key);
    if fs::read(root.join(&meta_rel)).is_ok_and(|current| current == bytes) {
        return None;
    }
    let content = root.join(doc_path(&meta.key));
    let found = fs::metadata(&content).ok()?;
    let holds = found.is_file()
        && found.len() == meta.size
        && hash_file(&content).is_ok_and(|digest| digest == *meta.sha256.as_bytes());
    holds.then_some((meta_rel, bytes))
}

/// The staged file holding the bytes `meta` records, if the document's own file
/// does not hold them (a one-document commit a crash interrupted after its commit
/// mark); taken out of `leftovers`.
fn take_pending(
    root: &Path,
    meta: &DocumentMeta,
    content_rel: &str,
    leftovers: &mut HashMap<[u8; 32], Vec<(String, u64)>>,
) -> Option<String> {
    let candidates = leftovers.get_mut(meta.sha256.as_bytes())?;
    let at = candidates.iter().position(|(_, size)| *size == meta.size)?;
    let path = root.join(content_rel);
    let in_place = match fs::metadata(&path) {
        Ok(found) if found.is_file() && found.len() == meta.size => {
            hash_file(&path).is_ok_and(|digest| digest == *meta.sha256.as_bytes())
        }
        _ => false,
    };
    if in_place {
        return None;
    }
    Some(candidates.swap_remove(at).0)
}

/// Moves the staged bytes (or, format 5, metadata) of interrupted one-document
/// commits into place and syncs the folders concerned (whatever the durability:
/// this is recovery).
pub fn complete_moves(root: &Path, pending: &[(String, String)], hooks: &Hooks) -> Result<()> {
    let mut to_sync: Vec<PathBuf> = vec![root.join(JOURNAL_DIR)];
    for (from, to) in pending {
        let target = root.join(to);
        let dir = files::parent(&target);
        if to.starts_with(DOCMETA) && files::ensure_dir(dir, hooks)? {
            to_sync.push(files::parent(dir).to_path_buf());
        }
        to_sync.extend(ensure_doc_dirs(root, dir, hooks)?);
        clear_empty_dir_at(&target, hooks)?;
        files::rename(&root.join(from), &target, hooks)?;
        to_sync.push(dir.to_path_buf());
    }
    to_sync.sort();
    to_sync.dedup();
    to_sync
        .iter()
        .try_for_each(|dir| files::sync_dir(dir, hooks))
}

fn walk_strays(
    root: &Path,
    dir: &Path,
    expected: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk_strays(root, &path, expected, findings)?;
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if !expected.contains(&rel) {
            findings.push(finding(
                path,
                "is not a document of this store (no metadata names it): stray".into(),
                false,
            ));
        }
    }
    Ok(())
}

/// Differences between the open store's documents and the files, and every
/// document whose bytes do not have the recorded SHA-256.
pub fn check(root: &Path, open: &Docs, disk: &Docs, problems: &mut Vec<Problem>) -> Result<()> {
    let keys: BTreeSet<&String> = open
        .iter()
        .map(|(m, _)| &m.key)
        .chain(disk.iter().map(|(m, _)| &m.key))
        .collect();
    for key in keys {
        let (a, b) = (open.get(key).map(|(m, _)| m), disk.get(key).map(|(m, _)| m));
        let detail = match (a, b) {
            (Some(_), None) => {
                Some("the open store holds this document, but its files are missing")
            }
            (None, Some(_)) => Some("the files hold a document the open store does not have"),
            (Some(x), Some(y)) if x != y => Some("the metadata file differs from the open store"),
            _ => None,
        };
        if let Some(detail) = detail {
            problems.push(Problem::new(
                root.join(docmeta_path(key)).display().to_string(),
                format!("{detail} (edited while the store was open?)"),
            ));
        }
        if let Some((meta, _)) = disk.get(key) {
            let path = root.join(doc_path(key));
            let digest = hash_file(&path)?;
            if digest != *meta.sha256.as_bytes() {
                problems.push(Problem::new(
                    path.display().to_string(),
                    format!(
                        "the bytes of document '{}' do not have the SHA-256 its metadata records (changed outside kgstore?)",
                        kgstore_core::validate::shorten(key)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
    }
}

/// Copies every document of `index` (bytes read from `source`) into the store
/// being built at `dest`, each file synced; the folders written.
pub fn copy_into(index: &Docs, source: &Path, dest: &Path, hooks: &Hooks) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for (meta, file) in index.iter() {
        let from = match file {
            DocFile::Stored(_) => source.join(doc_path(&meta.key)),
            DocFile::Staged(rel, _) => source.join(rel),
        };
        let to = dest.join(doc_path(&meta.key));
        let dir = files::parent(&to).to_path_buf();
        dirs.extend(ensure_doc_dirs(dest, &dir, hooks)?);
        dirs.push(dir);
        let mut input = File::open(&from).map_err(|e| Error::io(&from, e))?;
        let mut out = fsio::create_new(&to, hooks).map_err(|e| Error::io(&to, e))?;
        let mut buffer = vec![0u8; 1 << 16];
        let mut copied = 0u64;
        loop {
            let n = input.read(&mut buffer).map_err(|e| Error::io(&from, e))?;
            if n == 0 {
                break;
            }
            fsio::write_all(&mut out, &to, &buffer[..n], hooks).map_err(|e| Error::io(&to, e))?;
            copied += n as u64;
        }
        if copied != meta.size {
            return Err(Error::corrupt(
                &from,
                format!("has {copied} bytes, its metadata says {}", meta.size),
            ));
        }
        fsio::sync_file(&out, &to, hooks).map_err(|e| Error::io(&to, e))?;
        let meta_rel = docmeta_path(&meta.key);
        let meta_path = dest.join(&meta_rel);
        let meta_dir = files::parent(&meta_path).to_path_buf();
        files::ensure_dir(&meta_dir, hooks)?;
        dirs.push(meta_dir);
        let bytes = Content::DocMeta(meta.clone()).render()?;
        let mut file = fsio::create_new(&meta_path, hooks).map_err(|e| Error::io(&meta_path, e))?;
        fsio::write_all(&mut file, &meta_path, &bytes, hooks)
            .and_then(|()| fsio::sync_file(&file, &meta_path, hooks))
            .map_err(|e| Error::io(&meta_path, e))?;
    }
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}
