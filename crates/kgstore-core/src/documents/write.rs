//! Writing documents inside a [`WriteTx`], and the store-level forms.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Write};

use super::backend::{DocInput, DocRead, DocWrite};
use super::key::{ancestors, check_key};
use super::meta::{DocumentMeta, Sha256Digest, content_type_rule, guess_content_type};
use super::ops::{DocumentWrite, Precondition, WriteOptions};
use super::read::{DocumentRead, DocumentReader, unsupported};
use crate::backend::{Backend, ReadTxn};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{GraphRead, ReadTx, Store, WriteTx};
use crate::validate::{self, shorten};

/// How a document is named in errors: `document 'a/b'`.
pub(crate) fn subject(key: &str) -> String {
    format!("document '{}'", shorten(key))
}

fn docs_of<'t>(txn: &'t dyn ReadTxn, backend: &str) -> Result<&'t dyn DocRead> {
    txn.documents().ok_or_else(|| unsupported(backend))
}

/// How many times a one-call read is tried again on a fresh snapshot.
const STALE_READ_RETRIES: u32 = 64;

impl DocumentRead for Store {
    /// Each call reads a fresh snapshot, taken at its first read (as the store's
    /// graph reads: a one-statement read pays no statement to pin it earlier). A
    /// backend whose snapshot can lose a document's file to a later commit (JSON
    /// files, where bytes live in ordinary files) answers such a read with
    /// [`Error::Conflict`]; a one-call read has no snapshot of its own to keep, so
    /// it is tried again on a fresh one (the reads that pass bytes on as they go
    /// are [`read_document_to`](Self::read_document_to)'s, tried again only while
    /// none has been passed on).
    fn with_docs<R>(&self, f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R> {
        self.retried(f, |b| b.begin_call())
    }

    /// As `with_docs`, on the backend's transaction for a single read.
    fn with_one_doc_read<R>(&self, f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R> {
        self.retried(f, |b| b.begin_one())
    }

    /// As the trait's, tried again on a fresh snapshot only while nothing has been
    /// written to `out` (a backend may find a replaced file only at the end of it).
    fn read_document_to(&self, key: &str, out: &mut dyn Write) -> Result<DocumentMeta> {
        let mut retries = 0;
        loop {
            let mut counted = Counted { out, written: 0 };
            match self.read()?.read_document_to(key, &mut counted) {
                Err(e)
                    if e.kind() == ErrorKind::Conflict
                        && counted.written == 0
                        && retries < STALE_READ_RETRIES =>
                {
                    retries += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

impl Store {
    /// Runs a one-call read of documents, tried again on a fresh snapshot after a
    /// [`Error::Conflict`] (see `with_docs`), each time on the transaction `begin`
    /// starts (`begin_call`, or [`Backend::begin_one`](crate::Backend::begin_one)
    /// when `f` makes exactly one primitive read).
    fn retried<R>(
        &self,
        mut f: impl FnMut(&dyn DocRead) -> Result<R>,
        begin: impl for<'s> Fn(&'s dyn Backend) -> Result<Box<dyn ReadTxn + 's>>,
    ) -> Result<R> {
        let backend = self.backend_name();
        let what = crate::observe::query_name(&f);
        let mut retries = 0;
        loop {
            let read = |txn: &dyn ReadTxn| f(docs_of(txn, backend)?);
            match self.call_on(what, &begin, read) {
                Err(e) if e.kind() == ErrorKind::Conflict && retries < STALE_READ_RETRIES => {
                    retries += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

/// A writer that counts what it passed on.
struct Counted<'a> {
    out: &'a mut dyn Write,
    written: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl DocumentRead for ReadTx<'_> {
    /// Counted in the store's metrics as a read, as graph queries are.
    fn with_docs<R>(&self, f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R> {
        let what = crate::observe::query_name(&f);
        let probe = self.observer.read_probe();
        let outcome = self.docs().and_then(f);
        probe.finish(&outcome, what);
        outcome
    }
}

impl DocumentRead for WriteTx<'_> {
    fn with_docs<R>(&self, mut f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R> {
        let backend = self.backend_name();
        self.with_reader(|r| f(docs_of(r, backend)?))
    }
}

impl ReadTx<'_> {
    fn docs(&self) -> Result<&dyn DocRead> {
        docs_of(&*self.txn, self.backend)
    }

    /// The document at `key` as a [`Read`] on this snapshot, for documents of any
    /// size with bounded memory; [`Error::DocumentNotFound`] if there is none.
    pub fn open_document(&self, key: &str) -> Result<DocumentReader<'_>> {
        open(self.docs()?, key)
    }
}

fn open<'a>(docs: &'a dyn DocRead, key: &str) -> Result<DocumentReader<'a>> {
    check_key(key)?;
    let meta = docs
        .doc_meta(key)?
        .ok_or_else(|| Error::document_not_found(key))?;
    Ok(DocumentReader::new(docs.open_doc(&meta)?, meta))
}

impl WriteTx<'_> {
    fn docs(&self) -> Result<&dyn DocRead> {
        let backend = self.backend_name();
        self.reader()
            .documents()
            .ok_or_else(|| unsupported(backend))
    }

    /// The document at `key` as a [`Read`], as this transaction has it.
    pub fn open_document(&self, key: &str) -> Result<DocumentReader<'_>> {
        open(self.docs()?, key)
    }

    /// Writes (creates or replaces) the document at `key`, with a content type
    /// guessed from its extension (or kept, when it replaces one); its new metadata.
    ///
    /// ```
    /// use kgstore_core::{DocumentRead, Node, Store};
    ///
    /// let store = Store::memory();
    /// store.write(|tx| {
    ///     tx.create_node(Node::new("pilot", "script")?)?;
    ///     tx.write_document("scripts/pilot.fountain", "FADE IN:")?;
    ///     Ok(())
    /// })?;
    /// let meta = store.stat_document("scripts/pilot.fountain")?;
    /// assert_eq!((meta.size, meta.version), (8, 1));
    /// assert_eq!(meta.content_type, "text/vnd.fountain; charset=utf-8");
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn write_document(&mut self, key: &str, content: impl AsRef<[u8]>) -> Result<DocumentMeta> {
        self.write_document_with(key, content, &WriteOptions::default())
    }

    /// Writes the document at `key` as `options` say (content type, create only,
    /// expected version).
    pub fn write_document_with(
        &mut self,
        key: &str,
        content: impl AsRef<[u8]>,
        options: &WriteOptions,
    ) -> Result<DocumentMeta> {
        let planned = self.plan_one(key, options)?;
        let mut input = planned.input(DocInput::bytes(planned.meta.clone(), content.as_ref()));
        self.put(&mut input)
    }

    /// Writes the document at `key` from `reader`, read to its end with bounded
    /// memory whatever its size (hundreds of MiB on the persistent backends). If
    /// the reader fails, nothing is written and the transaction goes on.
    pub fn write_document_from(
        &mut self,
        key: &str,
        mut reader: impl Read,
        options: &WriteOptions,
    ) -> Result<DocumentMeta> {
        let planned = self.plan_one(key, options)?;
        let mut input = planned.input(DocInput::reader(planned.meta.clone(), &mut reader));
        self.put(&mut input)
    }

    /// Writes many documents; nothing is written unless every one is valid and
    /// meets its precondition. Their new metadata, in order. The backend is asked
    /// about the whole batch at once (one query on SQLite), so this is the fast
    /// way to write many documents.
    pub fn write_documents(
        &mut self,
        writes: impl IntoIterator<Item = DocumentWrite>,
    ) -> Result<Vec<DocumentMeta>> {
        let writes: Vec<DocumentWrite> = writes.into_iter().collect();
        let mut keys: HashSet<&str> = HashSet::with_capacity(writes.len());
        for w in &writes {
            check_key(&w.key)?;
            if !keys.insert(w.key.as_str()) {
                return Err(Error::invalid_input(
                    subject(&w.key),
                    "it is written twice in one batch",
                ));
            }
        }
        let mut sorted: Vec<&str> = keys.iter().copied().collect();
        sorted.sort_unstable();
        let mut metas = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(BATCH) {
            let chunk_keys: Vec<&str> = chunk.iter().map(|w| w.key.as_str()).collect();
            let olds = self.docs()?.docs_meta(&chunk_keys)?;
            let mut fresh: Vec<&str> = Vec::new();
            for (w, old) in chunk.iter().zip(olds) {
                if old.is_none() {
                    batch_tree_check(&w.key, &keys, &sorted)?;
                    fresh.push(&w.key);
                }
                metas.push(self.plan(&w.key, &w.options, old)?);
            }
            if let Some((key, existing)) = self.docs()?.first_tree_conflict(&fresh)? {
                return Err(tree_error(&key, existing));
            }
        }
        let mut inputs: Vec<DocInput<'_>> = metas
            .into_iter()
            .zip(&writes)
            .map(|(planned, w)| planned.input(DocInput::bytes(planned.meta.clone(), &w.content)))
            .collect();
        self.raw_docs(|d| d.put_docs(&mut inputs))?;
        inputs
            .iter_mut()
            .map(|input| input.finish().cloned())
            .collect()
    }

    /// Writes a document exactly as `meta` describes it, timestamps and version
    /// included (restores and migrations), from `reader`, which must yield exactly
    /// the bytes whose size and SHA-256 `meta` states.
    pub fn import_document(
        &mut self,
        meta: DocumentMeta,
        mut reader: impl Read,
    ) -> Result<DocumentMeta> {
        check_key(&meta.key)?;
        let subject = subject(&meta.key);
        let mut violations =
            validate::kept_metadata(&subject, meta.version, meta.created_at, meta.updated_at);
        if meta.version == 0 {
            violations.push(crate::error::Violation::new(
                &subject,
                "/version",
                "must be at least 1: an import keeps a stored document's metadata",
            ));
        }
        if let Err(reason) = content_type_rule(&meta.content_type) {
            violations.push(crate::error::Violation::new(
                &subject,
                "/content_type",
                reason,
            ));
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        let docs = self.docs()?;
        if docs.contains_doc(&meta.key)? {
            return Err(Error::AlreadyExists { entity: subject });
        }
        if let Some(existing) = docs.tree_conflict(&meta.key)? {
            return Err(tree_error(&meta.key, existing));
        }
        let (size, sha256) = (meta.size, meta.sha256);
        let mut input = DocInput::reader_expecting(meta, &mut reader, size, sha256);
        self.put(&mut input)
    }

    /// Deletes the document at `key` and returns its metadata;
    /// [`Error::DocumentNotFound`] if there is none.
    pub fn delete_document(&mut self, key: &str) -> Result<DocumentMeta> {
        check_key(key)?;
        let meta = self
            .docs()?
            .doc_meta(key)?
            .ok_or_else(|| Error::document_not_found(key))?;
        self.raw_docs(|d| d.delete_doc(key))?;
        Ok(meta)
    }

    /// Deletes the document at `key` if there is one; whether there was.
    pub fn remove_document(&mut self, key: &str) -> Result<bool> {
        check_key(key)?;
        if !self.docs()?.contains_doc(key)? {
            return Ok(false);
        }
        self.raw_docs(|d| d.delete_doc(key))
    }

    /// Checks a single write, file-tree rule included, and decides its metadata.
    fn plan_one(&self, key: &str, options: &WriteOptions) -> Result<Planned> {
        check_key(key)?;
        let docs = self.docs()?;
        let old = docs.doc_meta(key)?;
        let planned = self.plan(key, options, old)?;
        if planned.replaces.is_none()
            && let Some(existing) = docs.tree_conflict(key)?
        {
            return Err(tree_error(key, existing));
        }
        Ok(planned)
    }

    /// Checks a write's options and precondition against the stored `old`, and
    /// decides the metadata it will store (all but size and digest).
    fn plan(
        &self,
        key: &str,
        options: &WriteOptions,
        old: Option<DocumentMeta>,
    ) -> Result<Planned> {
        if let Some(content_type) = &options.content_type {
            content_type_rule(content_type).map_err(|reason| {
                Error::invalid_input(format!("content type of {}", subject(key)), reason)
            })?;
        }
        match (options.precondition, &old) {
            (Precondition::CreateOnly, Some(_)) => {
                return Err(Error::AlreadyExists {
                    entity: subject(key),
                });
            }
            (Precondition::Version(expected), old) => {
                let actual = old.as_ref().map_or(0, |m| m.version);
                if expected != actual {
                    return Err(Error::Conflict {
                        entity: subject(key),
                        expected,
                        actual,
                    });
                }
            }
            _ => {}
        }
        let now = self.now();
        let content_type = match (&options.content_type, &old) {
            (Some(given), _) => given.clone(),
            (None, Some(old)) => old.content_type.clone(),
            (None, None) => guess_content_type(key).to_owned(),
        };
        let replaces = old.as_ref().map(|m| m.size);
        let (created_at, updated_at, version) = match old {
            Some(old) => (
                old.created_at,
                now.max(old.updated_at),
                next_version(old.version, key)?,
            ),
            None => (now, now, 1),
        };
        let meta = DocumentMeta {
            key: key.to_owned(),
            content_type,
            size: 0,
            sha256: Sha256Digest::default(),
            created_at,
            updated_at,
            version,
        };
        Ok(Planned { meta, replaces })
    }

    /// Hands the content to the backend; the stored metadata.
    fn put(&mut self, input: &mut DocInput<'_>) -> Result<DocumentMeta> {
        let backend = self.backend_name().to_owned();
        let input_failed = Cell::new(false);
        self.raw_with(
            |t| {
                let docs = t.documents_mut().ok_or_else(|| unsupported(&backend))?;
                let outcome = docs.put_doc(input);
                input_failed.set(input.input_failed());
                outcome
            },
            // A failure of the caller's reader (or of content that is not what an
            // import says) is no backend fault: the backend left the document as
            // it was, and the transaction may go on.
            |_| !input_failed.get(),
        )?;
        input.finish().cloned()
    }

    fn raw_docs<R>(&mut self, f: impl FnOnce(&mut dyn DocWrite) -> Result<R>) -> Result<R> {
        let backend = self.backend_name().to_owned();
        self.raw(|t| f(t.documents_mut().ok_or_else(|| unsupported(&backend))?))
    }
}

/// A write's metadata as decided, and the size of the document it replaces.
struct Planned {
    meta: DocumentMeta,
    replaces: Option<u64>,
}

impl Planned {
    fn input<'a>(&self, input: DocInput<'a>) -> DocInput<'a> {
        match self.replaces {
            Some(size) => input.replacing(size),
            None => input,
        }
    }
}

/// Keys a batch write asks the backend about at once.
const BATCH: usize = 4096;

/// The file-tree rule among the keys of one batch: `key` (new) may not be inside
/// another key of the batch, nor be the folder of one. `sorted` is `batch` sorted.
fn batch_tree_check(key: &str, batch: &HashSet<&str>, sorted: &[&str]) -> Result<()> {
    if let Some(folder) = ancestors(key).find(|f| batch.contains(f)) {
        return Err(tree_error(key, folder.to_owned()));
    }
    let inside = format!("{key}/");
    let at = sorted.partition_point(|k| *k < inside.as_str());
    match sorted.get(at) {
        Some(other) if other.starts_with(&inside) => Err(tree_error(key, (*other).to_owned())),
        _ => Ok(()),
    }
}

fn next_version(version: u64, key: &str) -> Result<u64> {
    version
        .checked_add(1)
        .filter(|v| *v <= validate::MAX_VERSION)
        .ok_or_else(|| {
            Error::invalid_input(
                format!("update of {}", subject(key)),
                "the version counter is exhausted",
            )
        })
}

/// The file-tree rule's error: `key` cannot be created because of `existing`.
pub(crate) fn tree_error(key: &str, existing: String) -> Error {
    Error::DocumentPathConflict {
        key: key.to_owned(),
        existing,
    }
}

/// Single-operation transactions for documents.
impl Store {
    /// Writes a document in its own transaction; see [`WriteTx::write_document`].
    pub fn write_document(&self, key: &str, content: impl AsRef<[u8]>) -> Result<DocumentMeta> {
        self.write(|tx| tx.write_document(key, content))
    }

    /// Writes a document in its own transaction; see [`WriteTx::write_document_with`].
    pub fn write_document_with(
        &self,
        key: &str,
        content: impl AsRef<[u8]>,
        options: &WriteOptions,
    ) -> Result<DocumentMeta> {
        self.write(|tx| tx.write_document_with(key, content, options))
    }

    /// Streams a document in in its own transaction; see [`WriteTx::write_document_from`].
    pub fn write_document_from(
        &self,
        key: &str,
        reader: impl Read,
        options: &WriteOptions,
    ) -> Result<DocumentMeta> {
        self.write(|tx| tx.write_document_from(key, reader, options))
    }

    /// Writes many documents in one transaction; see [`WriteTx::write_documents`].
    pub fn write_documents(
        &self,
        writes: impl IntoIterator<Item = DocumentWrite>,
    ) -> Result<Vec<DocumentMeta>> {
        self.write(|tx| tx.write_documents(writes))
    }

    /// Deletes a document in its own transaction; see [`WriteTx::delete_document`].
    pub fn delete_document(&self, key: &str) -> Result<DocumentMeta> {
        self.write(|tx| tx.delete_document(key))
    }

    /// Deletes a document if there is one, in its own transaction; see
    /// [`WriteTx::remove_document`].
    pub fn remove_document(&self, key: &str) -> Result<bool> {
        self.write(|tx| tx.remove_document(key))
    }
}
