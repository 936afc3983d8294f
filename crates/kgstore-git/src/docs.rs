//! Documents in the tree of each commit.
//!
//! ```text
//! scripts/pilot.fountain             the document `scripts/pilot.fountain`, at its own key
//! README.md   %readme.md             `README.md`, and `readme.md` (escaped: it would collide)
//! blobs/scene-1.npy                  a Git LFS pointer (the object in lfs/objects/…)
//! .kgstore/documents/<xx>/<stem>.json   its metadata: key, path, blob, DocumentMeta
//! ```
//!
//! **Paths.** A document sits at its own key, so that `git clone` shows the user's
//! files. A segment is written as it is unless it could do harm in a checkout: one
//! git or a file system refuses or treats specially (`.git` in any spelling,
//! `.gitattributes` and the other `.git*` files, Windows device names and reserved
//! characters, a trailing dot or space; [`gix::validate`]'s rules with every
//! protection on), a first segment that folds to `.kgstore`, or one starting with
//! the escape mark `%`. Those are written `%` + [`names::encode_segment`] (lower-case
//! ASCII, reversible, long ones hashed: at most 216 bytes). And a segment whose
//! case- and Unicode-folded path is already taken by another key's file or folder
//! (`README.md` beside `readme.md`, NFC beside NFD) is escaped too, so no two
//! entries of a tree can land on one file of a case-insensitive or normalising file
//! system. A key keeps its path while it exists; every document of a folder shares
//! the folder's path.
//!
//! **Metadata** lives in `.kgstore/documents/<shard>/<stem>.json` (stem and shard as
//! for nodes, from the key) with the path and the blob id it describes. A file
//! changed by someone else's commit (its blob is not the recorded one) gets its
//! metadata derived: size and SHA-256 from the bytes (or the LFS pointer), version
//! +1, `updated_at` the time of the commit that changed it, the content type kept.
//! A file added by someone else, with no metadata, is the document whose key is its
//! path (version 1, type guessed from the extension). The next kgstore write of the
//! key records its metadata again.
//!
//! **Git LFS**: a document whose path matches an LFS pattern of the root
//! `.gitattributes` (default `blobs/**`), or of `lfs_threshold` bytes or more, is
//! streamed into `lfs/objects/` and committed as its canonical pointer; one above the
//! threshold outside the patterns gets a `filter=lfs` line of its own in
//! `.gitattributes`, in the same commit, so that git-lfs smudges it in a clone and
//! `git lfs fsck` expects the pointer. Every other document is a plain blob, read
//! whole (it is under the threshold); LFS objects are read as streams.

use std::collections::BTreeSet;
use std::io::{self, Cursor, Read};
use std::ops::Bound;
use std::sync::Arc;

use gix::ObjectId;
use gix::objs::Kind;
use imbl::OrdMap;
use kgstore_core::documents::{
    DocIndex, DocInput, DocRead, DocWrite, Sha256Digest, guess_content_type, input_error,
    key::key_rule,
};
use kgstore_core::{DocumentMeta, Error, Problem, Result, Timestamp, names};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::backend::GitBackend;
use crate::layout::{ATTRIBUTES, DATA};
use crate::lfs::{LfsObjects, LfsPatterns, MAX_POINTER_SIZE, Pointer};
use crate::tree::{self, Leaf};

/// The folder of the documents' metadata files.
pub(crate) const DOCMETA: &str = ".kgstore/documents";
/// The first byte of an escaped segment.
const ESCAPE: char = '%';
/// The attributes of a path kept in Git LFS (what `git lfs track` writes).
const LFS_ATTRIBUTES: &str = "filter=lfs diff=lfs merge=lfs -text";

/// Where a document's bytes are.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// A blob of the repository: the bytes, or the LFS pointer to them.
    Blob(ObjectId),
    /// The blob's bytes as written by the transaction (not in the repository yet).
    New(Arc<Vec<u8>>),
}

/// A document's place in the tree and its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    /// Its path in the tree.
    pub(crate) path: Arc<str>,
    /// Its blob.
    pub(crate) content: Content,
    /// The pointer, when the blob is an LFS pointer to the bytes.
    pub(crate) lfs: Option<Pointer>,
}

/// The root `.gitattributes` and its LFS patterns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attributes {
    pub(crate) text: String,
    pub(crate) patterns: LfsPatterns,
}

impl Attributes {
    pub(crate) fn parse(text: String) -> Self {
        Self {
            patterns: LfsPatterns::parse(&text),
            text,
        }
    }
}

/// The documents of one commit (or of a write transaction), cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct DocState {
    pub(crate) index: DocIndex<Handle>,
    /// Every key prefix (folders and documents) → its path prefix and how many
    /// documents lie at or under it.
    dirs: OrdMap<String, (Arc<str>, u32)>,
    /// Every path prefix, case- and Unicode-folded → how many documents lie at or under it.
    folds: OrdMap<String, u32>,
    pub(crate) attributes: Arc<Attributes>,
}

/// The form a name is compared in for collisions: NFC, lower case, NFC again.
fn fold(text: &str) -> String {
    text.nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

/// Whether a key segment can be a file name as it is.
fn plain(segment: &str, first: bool) -> bool {
    !segment.starts_with(ESCAPE)
        && !segment
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(".git"))
        && (!first || fold(segment) != fold(DATA))
        && gix::validate::path::component(segment.as_bytes().into(), None, Default::default())
            .is_ok()
}

/// A segment as an escaped file name.
fn escaped(segment: &str) -> String {
    format!("{ESCAPE}{}", names::encode_segment(segment))
}

/// The end of each prefix of a slash-separated text (`a`, `a/b`, `a/b/c`).
fn prefix_ends(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices('/')
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
}

/// The path of a document's metadata file.
pub(crate) fn meta_path(key: &str) -> String {
    let stem = names::fit(names::encode_name(key));
    format!(
        "{DOCMETA}/{}/{stem}{}",
        names::shard(&stem),
        names::EXTENSION
    )
}

/// What a metadata file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    /// Where the document's blob sits in the tree.
    path: String,
    /// The blob the metadata describes (the pointer's, for LFS).
    blob: String,
    meta: DocumentMeta,
}

/// A metadata file's bytes.
pub(crate) fn render_meta(meta: &DocumentMeta, path: &str, blob: &ObjectId) -> Result<Vec<u8>> {
    kgstore_core::entity_file::render(&MetaFile {
        path: path.to_owned(),
        blob: blob.to_hex().to_string(),
        meta: meta.clone(),
    })
}

impl DocState {
    /// No documents, with these attributes.
    pub(crate) fn with_attributes(attributes: Attributes) -> Self {
        Self {
            attributes: Arc::new(attributes),
            ..Self::default()
        }
    }

    /// The path the document `key` has, or would get if written now.
    pub(crate) fn path_for(&self, key: &str) -> Result<String> {
        if let Some((_, handle)) = self.index.get(key) {
            return Ok(handle.path.to_string());
        }
        let mut path = String::new();
        let mut start = 0;
        for end in prefix_ends(key) {
            let segment = &key[start..end];
            let first = start == 0;
            start = end + 1;
            if let Some((known, _)) = self.dirs.get(&key[..end]) {
                path = known.to_string();
                continue;
            }
            let join = |name: &str| {
                if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}/{name}")
                }
            };
            let mut candidate = if plain(segment, first) {
                join(segment)
            } else {
                join(&escaped(segment))
            };
            if self.folds.contains_key(&fold(&candidate)) {
                candidate = join(&escaped(segment));
                if self.folds.contains_key(&fold(&candidate)) {
                    return Err(Error::backend(
                        "git",
                        format!(
                            "document '{}': its file name '{candidate}' is taken by a file \
                             another commit put there",
                            kgstore_core::validate::shorten(key)
                        ),
                    ));
                }
            }
            path = candidate;
        }
        Ok(path)
    }

    /// Adds or replaces a document at `handle.path`; refused (with the reason) when
    /// the path does not fit the key or the paths of its folders' other documents.
    pub(crate) fn insert(
        &mut self,
        meta: DocumentMeta,
        handle: Handle,
    ) -> std::result::Result<(), String> {
        if let Some((_, old)) = self.index.get(&meta.key) {
            if old.path != handle.path {
                return Err(format!(
                    "document '{}' is already at {}",
                    meta.key, old.path
                ));
            }
            self.index.insert(meta, handle);
            return Ok(());
        }
        let key = meta.key.as_str();
        let path: &str = &handle.path;
        let (key_ends, path_ends): (Vec<usize>, Vec<usize>) =
            (prefix_ends(key).collect(), prefix_ends(path).collect());
        if key_ends.len() != path_ends.len() {
            return Err(format!(
                "path {path} does not have as many parts as its key '{key}'"
            ));
        }
        for (k, p) in key_ends.iter().zip(&path_ends) {
            if let Some((known, _)) = self.dirs.get(&key[..*k])
                && **known != path[..*p]
            {
                return Err(format!(
                    "'{}' is at {known} for other documents, not at {}",
                    &key[..*k],
                    &path[..*p]
                ));
            }
        }
        for (k, p) in key_ends.iter().zip(&path_ends) {
            let prefix: Arc<str> = Arc::from(&path[..*p]);
            let entry = self.dirs.entry(key[..*k].to_owned()).or_insert((prefix, 0));
            entry.1 += 1;
            *self.folds.entry(fold(&path[..*p])).or_insert(0) += 1;
        }
        self.index.insert(meta, handle);
        Ok(())
    }

    /// Removes a document; whether it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let Some(removed) = self.index.remove(key) else {
            return false;
        };
        let path: &str = &removed.1.path;
        for (k, p) in prefix_ends(key).zip(prefix_ends(path)) {
            if let Some(entry) = self.dirs.get_mut(&key[..k]) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    self.dirs.remove(&key[..k]);
                }
            }
            let folded = fold(&path[..p]);
            if let Some(count) = self.folds.get_mut(&folded) {
                *count -= 1;
                if *count == 0 {
                    self.folds.remove(&folded);
                }
            }
        }
        true
    }

    /// Adds a `filter=lfs` line for exactly `path` to the attributes.
    fn track(&mut self, path: &str) {
        let mut pattern = String::with_capacity(path.len() + 1);
        pattern.push('/');
        for c in path.chars() {
            // Bytes with a meaning in a gitattributes line or a pattern become `?`
            // (one character); paths it matches as well are kept in LFS too.
            let keep = c.is_ascii_alphanumeric() || "._-/%^~+,=@".contains(c) || !c.is_ascii();
            pattern.push(if keep { c } else { '?' });
        }
        let mut text = self.attributes.text.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{pattern} {LFS_ATTRIBUTES}\n"));
        self.attributes = Arc::new(Attributes::parse(text));
    }
}

/// A `Read` over shared bytes.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// Documents seen through one snapshot (and, in a write transaction, written).
pub(crate) struct GitDocs<'a> {
    backend: &'a GitBackend,
    pub(crate) state: DocState,
    /// The keys the transaction wrote or deleted.
    pub(crate) changed: BTreeSet<String>,
    /// Whether the transaction added lines to `.gitattributes`.
    pub(crate) attributes_changed: bool,
}

impl<'a> GitDocs<'a> {
    pub(crate) fn new(backend: &'a GitBackend, state: DocState) -> Self {
        Self {
            backend,
            state,
            changed: BTreeSet::new(),
            attributes_changed: false,
        }
    }

    fn lfs(&self) -> LfsObjects {
        LfsObjects::new(
            &self.backend.git_dir,
            self.backend.options.durability == kgstore_core::Durability::Immediate,
        )
    }
}

impl DocRead for GitDocs<'_> {
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        Ok(self.state.index.meta(key))
    }

    fn scan_docs(
        &self,
        prefix: &str,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        Ok(self.state.index.scan_meta(prefix, from, limit))
    }

    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
        let Some((_, handle)) = self.state.index.get(&meta.key) else {
            return Ok(Box::new(io::empty()));
        };
        if let Some(pointer) = &handle.lfs {
            return Ok(Box::new(self.lfs().open(pointer)?));
        }
        Ok(match &handle.content {
            Content::New(bytes) => Box::new(Cursor::new(Shared(Arc::clone(bytes)))),
            Content::Blob(id) => Box::new(Cursor::new(tree::read_kind(
                &self.backend.local(),
                id,
                Kind::Blob,
            )?)),
        })
    }

    fn contains_doc(&self, key: &str) -> Result<bool> {
        Ok(self.state.index.contains(key))
    }

    fn count_docs(&self) -> Result<u64> {
        Ok(self.state.index.len() as u64)
    }
}

/// A reader that keeps the error of the reader it wraps (LFS writes report their own).
struct Watched<'r, 'i> {
    input: &'r mut DocInput<'i>,
    error: Option<io::Error>,
}

impl Read for Watched<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf).inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

impl DocWrite for GitDocs<'_> {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        let key = input.key().to_owned();
        let path = self.state.path_for(&key)?;
        let by_pattern = self.state.attributes.patterns.matches(&path);
        let threshold = self.backend.options.lfs_threshold;
        // Up to the threshold in memory; a document that reaches it goes to LFS.
        let limit = if by_pattern { 0 } else { threshold };
        let mut head = Vec::new();
        input
            .by_ref()
            .take(limit)
            .read_to_end(&mut head)
            .map_err(|e| input_error(input, e))?;
        // (A threshold of 0 puts every document in LFS.)
        let to_lfs = by_pattern || head.len() as u64 >= threshold;
        let (content, lfs) = if to_lfs {
            let mut watched = Watched { input, error: None };
            let stored = self.lfs().put(&mut Cursor::new(head).chain(&mut watched));
            let Watched { input, error } = watched;
            if let Some(e) = error {
                return Err(input_error(input, e));
            }
            let pointer = stored?;
            let meta = input.finish()?;
            if meta.sha256.to_hex() != pointer.oid || meta.size != pointer.size {
                return Err(Error::backend(
                    "git",
                    format!(
                        "document '{}': the LFS object written ({}) is not the content read",
                        kgstore_core::validate::shorten(&key),
                        pointer.oid
                    ),
                ));
            }
            if pointer.size == 0 {
                // The pointer of an empty file is the empty file.
                (Vec::new(), None)
            } else {
                (pointer.encode().into_bytes(), Some(pointer))
            }
        } else {
            (head, None)
        };
        let meta = input.finish()?.clone();
        if lfs.is_some() && !by_pattern {
            self.state.track(&path);
            self.attributes_changed = true;
        }
        let handle = Handle {
            path: Arc::from(path.as_str()),
            content: Content::New(Arc::new(content)),
            lfs,
        };
        self.state
            .insert(meta, handle)
            .map_err(|why| Error::backend("git", why))?;
        self.changed.insert(key);
        Ok(())
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        let existed = self.state.remove(key);
        if existed {
            self.changed.insert(key.to_owned());
        }
        Ok(existed)
    }
}

/// Whether a path of the tree is a document's (not the store's own, not the root
/// attributes).
pub(crate) fn is_document_path(path: &str) -> bool {
    path != ATTRIBUTES
        && !(path.starts_with(DATA) && path.as_bytes().get(DATA.len()) == Some(&b'/'))
        && path != DATA
}

/// Whether a change at `path` can change the documents (a document, its metadata,
/// the attributes, or the format marker: without attributes, whether it is there
/// decides the LFS patterns, see [`load`]).
pub(crate) fn touches_documents(path: &str) -> bool {
    path == ATTRIBUTES
        || path == crate::layout::MARKER
        || is_meta_path(path)
        || is_document_path(path)
}

/// Whether a path of the tree is a document metadata file.
pub(crate) fn is_meta_path(path: &str) -> bool {
    path.starts_with(DOCMETA) && path.as_bytes().get(DOCMETA.len()) == Some(&b'/')
}

/// The root `.gitattributes` of a tree.
pub(crate) fn attributes_of(repo: &gix::Repository, root: &ObjectId) -> Result<Attributes> {
    Ok(match tree::entry_at(repo, root, ATTRIBUTES)? {
        Some((mode, id)) if mode.is_blob() => Attributes::parse(
            String::from_utf8_lossy(&tree::read_kind(repo, &id, Kind::Blob)?).into_owned(),
        ),
        _ => Attributes::default(),
    })
}

/// The size, digest and pointer of a blob at `path`.
fn describe(
    repo: &gix::Repository,
    patterns: &LfsPatterns,
    path: &str,
    id: &ObjectId,
) -> Result<(u64, Sha256Digest, Option<Pointer>)> {
    let data = tree::read_kind(repo, id, Kind::Blob)?;
    if patterns.matches(path)
        && !data.is_empty()
        && data.len() < MAX_POINTER_SIZE
        && let Ok((pointer, _)) = Pointer::parse(&data)
        && let Ok(digest) = pointer.oid.parse::<Sha256Digest>()
    {
        return Ok((pointer.size, digest, Some(pointer)));
    }
    Ok((data.len() as u64, Sha256Digest::of(&data), None))
}

/// When the file at `path` last changed on the line to `tip`.
fn changed_at(repo: &gix::Repository, tip: Option<&ObjectId>, path: &str) -> Result<Timestamp> {
    let Some(tip) = tip else {
        return Ok(Timestamp::EPOCH);
    };
    let revision = match crate::history::last_change(repo, tip, None, path)? {
        Some(revision) => revision,
        None => crate::history::revision(repo, tip)?,
    };
    Timestamp::from_micros(revision.committer.time.saturating_mul(1_000_000))
}

/// The documents of a commit's tree, and what is wrong with its document files.
pub(crate) fn load(
    repo: &gix::Repository,
    commit: Option<&ObjectId>,
    root: Option<&ObjectId>,
) -> Result<(DocState, Vec<Problem>)> {
    let Some(root) = root else {
        return Ok((DocState::default(), Vec::new()));
    };
    let mut attributes = attributes_of(repo, root)?;
    if attributes.text.is_empty() && tree::entry_at(repo, root, crate::layout::MARKER)?.is_none() {
        // kgstore's first commit on this tree adds the default patterns.
        attributes = Attributes::parse(crate::init::DEFAULT_ATTRIBUTES.to_owned());
    }
    let mut leaves: Vec<Leaf> = Vec::new();
    for entry in tree::entries(repo, root)? {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if name == DATA {
            if entry.mode.is_tree()
                && let Some((mode, id)) = tree::entry_at(repo, &entry.id, "documents")?
                && mode.is_tree()
            {
                tree::leaves(repo, &id, DOCMETA, &mut leaves)?;
            }
        } else if entry.mode.is_tree() {
            let utf8 = std::str::from_utf8(&entry.name).is_ok();
            tree::leaves_under(repo, &entry.id, &name, utf8, &mut leaves)?;
        } else if name != ATTRIBUTES {
            leaves.push(Leaf {
                utf8: std::str::from_utf8(&entry.name).is_ok(),
                path: name,
                mode: entry.mode,
                id: entry.id,
            });
        }
    }
    let at = match commit {
        Some(id) => format!("commit {}", id.to_hex_with_len(12)),
        None => "the tree".to_owned(),
    };
    let mut problems = Vec::new();
    let mut files: std::collections::BTreeMap<String, (gix::objs::tree::EntryMode, ObjectId)> =
        Default::default();
    let mut metas = Vec::new();
    for leaf in leaves {
        if !leaf.utf8 {
            // A key is text: such a file has no key, and its replaced name would
            // neither find it again nor be only its own (nor its history).
            problems.push(Problem::new(
                format!("{at}: {}", leaf.path),
                "is not a document: its path is not UTF-8".to_owned(),
            ));
            continue;
        }
        if is_meta_path(&leaf.path) {
            let parsed = if leaf.mode.is_blob() {
                serde_json::from_slice::<MetaFile>(&tree::read_kind(repo, &leaf.id, Kind::Blob)?)
                    .map_err(|e| e.to_string())
                    .and_then(|file| {
                        key_rule(&file.meta.key)?;
                        if meta_path(&file.meta.key) != leaf.path {
                            return Err(format!(
                                "holds the metadata of '{}', which belongs elsewhere",
                                file.meta.key
                            ));
                        }
                        let blob = ObjectId::from_hex(file.blob.as_bytes())
                            .map_err(|e| format!("blob id: {e}"))?;
                        Ok((file, blob))
                    })
            } else {
                Err("is not a file".to_owned())
            };
            match parsed {
                Ok(found) => metas.push(found),
                Err(why) => problems.push(Problem::new(
                    format!("{at}: {}", leaf.path),
                    format!("document metadata: {why}"),
                )),
            }
        } else {
            files.insert(leaf.path, (leaf.mode, leaf.id));
        }
    }
    let mut state = DocState::with_attributes(attributes);
    let patterns = state.attributes.patterns.clone();
    // Documents kgstore described first, then files others added.
    let mut found = Vec::new();
    for (file, blob) in metas {
        let MetaFile { path, meta, .. } = file;
        let Some((mode, id)) = files.remove(&path) else {
            continue; // removed by someone else's commit
        };
        if !mode.is_blob() || !is_document_path(&path) {
            problems.push(Problem::new(
                format!("{at}: {path}"),
                format!("document '{}' is not a plain file there", meta.key),
            ));
            continue;
        }
        found.push((meta, path, id, Some(blob)));
    }
    for (path, (mode, id)) in files {
        if !mode.is_blob() {
            problems.push(Problem::new(
                format!("{at}: {path}"),
                format!(
                    "is a {}, not a document (documents are plain files)",
                    mode.as_str()
                ),
            ));
            continue;
        }
        if let Err(why) = key_rule(&path) {
            problems.push(Problem::new(
                format!("{at}: {path}"),
                format!("is not a document: its path is not a valid key ({why})"),
            ));
            continue;
        }
        let meta = DocumentMeta {
            key: path.clone(),
            content_type: guess_content_type(&path).to_owned(),
            size: 0,
            sha256: Sha256Digest::of(b""),
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
        };
        found.push((meta, path, id, None));
    }
    for (mut meta, path, id, recorded) in found {
        let (size, sha256, lfs) = describe(repo, &patterns, &path, &id)?;
        if recorded != Some(id) {
            // Changed or added by someone else: derive what kgstore would have recorded.
            let when = changed_at(repo, commit, &path)?;
            if recorded.is_none() {
                meta.created_at = when;
            }
            // (Commit times have whole seconds; kgstore's own, microseconds.)
            meta.updated_at = when.max(meta.updated_at);
            meta.version += 1;
            meta.size = size;
            meta.sha256 = sha256;
        }
        let handle = Handle {
            path: Arc::from(path.as_str()),
            content: Content::Blob(id),
            lfs,
        };
        let key = meta.key.clone();
        if state.index.contains(&key) {
            problems.push(Problem::new(
                format!("{at}: {path}"),
                format!("another file already holds document '{key}'; this one is left out"),
            ));
            continue;
        }
        if let Err(why) = state.insert(meta, handle) {
            problems.push(Problem::new(
                format!("{at}: {path}"),
                format!("left out: {why}"),
            ));
        }
    }
    Ok((state, problems))
}
