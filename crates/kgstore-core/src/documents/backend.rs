//! The documents' slice of the backend contract: keyed reads and writes with an
//! ordered scan, and streaming in both directions.
//!
//! A backend that holds documents returns itself from
//! [`ReadTxn::documents`](crate::ReadTxn::documents) and
//! [`WriteTxn::documents_mut`](crate::WriteTxn::documents_mut); one that does not
//! keeps their defaults (`None`), and the store answers every document
//! operation with [`Error::Unsupported`] naming documents and the backend.
//!
//! Like the graph's, these are raw operations: keys are valid, the metadata is
//! complete and the store has checked versions, preconditions and the
//! file-tree rule before it calls them.

use std::io::{self, Read};
use std::ops::Bound;

use sha2::{Digest as _, Sha256};

use super::key;
use super::meta::{Document, DocumentMeta, Sha256Digest};
use crate::error::{Error, Result};

/// Reads of documents on one snapshot (inside a write transaction: seeing its writes).
pub trait DocRead {
    /// The metadata of the document at `key`.
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>>;

    /// Up to `limit` documents whose keys start with `prefix` and lie after `from`
    /// (a bound on the key), in byte order of their keys.
    fn scan_docs(&self, prefix: &str, from: Bound<&str>, limit: usize)
    -> Result<Vec<DocumentMeta>>;

    /// The bytes of the document `meta` describes (as this snapshot has it), for
    /// reading in pieces: memory use must not grow with the document's size.
    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>>;

    /// The whole content of the document `meta` describes (override to avoid the
    /// copy through a reader).
    fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0).min(1 << 26));
        self.open_doc(meta)?
            .read_to_end(&mut out)
            .map_err(|e| read_error(&meta.key, e))?;
        Ok(out)
    }

    /// The document at `key` with its bytes (override to fetch both at once).
    fn get_doc(&self, key: &str) -> Result<Option<Document>> {
        let Some(meta) = self.doc_meta(key)? else {
            return Ok(None);
        };
        let content = self.read_doc(&meta)?;
        Ok(Some(Document { meta, content }))
    }

    /// The bytes of the document at `key` with the size its metadata records, for
    /// a read that wants nothing else of the metadata (override to skip reading the
    /// rest of it: `read_document` asks this).
    fn doc_bytes(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.get_doc(key)?.map(|doc| (doc.meta.size, doc.content)))
    }

    /// The metadata of many keys at once, in their order (override to ask in one
    /// query: batch writes ask for every key of the batch).
    fn docs_meta(&self, keys: &[&str]) -> Result<Vec<Option<DocumentMeta>>> {
        keys.iter().map(|key| self.doc_meta(key)).collect()
    }

    /// The first of `keys` (new keys of a batch) that the file-tree rule keeps from
    /// being created, with the stored key in its way; see [`tree_conflict`](Self::tree_conflict).
    /// Override to ask in one query.
    fn first_tree_conflict(&self, keys: &[&str]) -> Result<Option<(String, String)>> {
        for key in keys {
            if let Some(existing) = self.tree_conflict(key)? {
                return Ok(Some(((*key).to_owned(), existing)));
            }
        }
        Ok(None)
    }

    /// Whether a document exists (override when cheaper than fetching its metadata).
    fn contains_doc(&self, key: &str) -> Result<bool> {
        Ok(self.doc_meta(key)?.is_some())
    }

    /// How many documents there are (override when the backend keeps a count).
    fn count_docs(&self) -> Result<u64> {
        const PAGE: usize = 4096;
        let mut count = 0u64;
        let mut after: Option<String> = None;
        loop {
            let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let page = self.scan_docs("", from, PAGE)?;
            count += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.key.clone()),
                _ => return Ok(count),
            }
        }
    }

    /// A stored key that keeps `key` from being created under the file-tree rule
    /// (a key is never both a document and a folder of documents): one of its
    /// folders stored as a document, or a document inside `key/`. Override to ask
    /// in one query.
    fn tree_conflict(&self, key: &str) -> Result<Option<String>> {
        for folder in key::ancestors(key) {
            if self.contains_doc(folder)? {
                return Ok(Some(folder.to_owned()));
            }
        }
        let inside = format!("{key}/");
        Ok(self
            .scan_docs(&inside, Bound::Included(&inside), 1)?
            .into_iter()
            .next()
            .map(|m| m.key))
    }
}

/// Raw writes of documents inside a write transaction.
pub trait DocWrite: DocRead {
    /// Stores a document, creating or replacing it: reads `input` to its end, then
    /// takes the complete metadata from [`DocInput::finish`]. If anything fails
    /// (the input, or the backend), the document must be as before the call.
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()>;

    /// Stores many documents given in full (override to batch).
    fn put_docs(&mut self, inputs: &mut [DocInput<'_>]) -> Result<()> {
        inputs.iter_mut().try_for_each(|input| self.put_doc(input))
    }

    /// Removes a document; whether it existed.
    fn delete_doc(&mut self, key: &str) -> Result<bool>;
}

enum Source<'a> {
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read),
}

/// A document's content on its way into a backend: bytes the caller gave in full,
/// or a reader streamed to its end. Reading it (it is a [`Read`]) counts and
/// hashes the bytes; after the end, [`finish`](Self::finish) gives the complete
/// metadata to store.
pub struct DocInput<'a> {
    meta: DocumentMeta,
    source: Source<'a>,
    hasher: Option<Sha256>,
    read: u64,
    ended: bool,
    source_error: Option<String>,
    /// The size and digest the content must have (an import's).
    expect: Option<(u64, Sha256Digest)>,
    mismatch: bool,
    /// The size of the stored document this one replaces, if any.
    replaces: Option<u64>,
}

impl<'a> DocInput<'a> {
    /// Content given in full: its size and digest are known at once.
    pub fn bytes(mut meta: DocumentMeta, bytes: &'a [u8]) -> Self {
        meta.size = bytes.len() as u64;
        meta.sha256 = Sha256Digest::of(bytes);
        Self {
            meta,
            source: Source::Bytes(bytes),
            hasher: None,
            read: 0,
            ended: false,
            source_error: None,
            expect: None,
            mismatch: false,
            replaces: None,
        }
    }

    /// Content streamed from `reader`; `meta`'s size and digest are filled in as it is read.
    pub fn reader(meta: DocumentMeta, reader: &'a mut dyn Read) -> Self {
        Self {
            meta,
            source: Source::Reader(reader),
            hasher: Some(Sha256::new()),
            read: 0,
            ended: false,
            source_error: None,
            expect: None,
            mismatch: false,
            replaces: None,
        }
    }

    /// Content streamed from `reader` that must be exactly `size` bytes with digest
    /// `sha256` (an import's): [`finish`](Self::finish) fails otherwise.
    pub fn reader_expecting(
        meta: DocumentMeta,
        reader: &'a mut dyn Read,
        size: u64,
        sha256: Sha256Digest,
    ) -> Self {
        let mut input = Self::reader(meta, reader);
        input.expect = Some((size, sha256));
        input
    }

    /// Marks the write as replacing a stored document of `size` bytes (the store
    /// knows; a backend may skip looking).
    pub fn replacing(mut self, size: u64) -> Self {
        self.replaces = Some(size);
        self
    }

    /// The size of the stored document this write replaces; `None` when it creates one.
    pub fn replaces(&self) -> Option<u64> {
        self.replaces
    }

    /// The metadata as known before the content is read: all but size and digest
    /// are final (for a backend that records a row before streaming into it).
    pub fn meta_so_far(&self) -> &DocumentMeta {
        &self.meta
    }

    /// The document's key.
    pub fn key(&self) -> &str {
        &self.meta.key
    }

    /// The whole content, when the caller gave it in full (a backend may store it
    /// at once instead of reading).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.source {
            Source::Bytes(bytes) => Some(bytes),
            Source::Reader(_) => None,
        }
    }

    /// The size, if known before reading.
    pub fn known_size(&self) -> Option<u64> {
        self.as_bytes().map(|b| b.len() as u64)
    }

    /// The complete metadata. For streamed content, only once the input has been
    /// read to its end (otherwise an error: the backend did not consume it).
    pub fn finish(&mut self) -> Result<&DocumentMeta> {
        if let Some(hasher) = &self.hasher {
            if !self.ended {
                return Err(Error::backend(
                    "documents",
                    format!(
                        "the content of document '{}' was not read to its end before being stored",
                        crate::validate::shorten(&self.meta.key)
                    ),
                ));
            }
            self.meta.size = self.read;
            self.meta.sha256 = Sha256Digest(hasher.clone().finalize().into());
        }
        if let Some((size, sha256)) = self.expect
            && (size, sha256) != (self.meta.size, self.meta.sha256)
        {
            self.mismatch = true;
            return Err(Error::corrupt(
                format!(
                    "<content of document '{}'>",
                    crate::validate::shorten(&self.meta.key)
                ),
                format!(
                    "expected {size} bytes with SHA-256 {sha256}, got {} bytes with SHA-256 {}",
                    self.meta.size, self.meta.sha256
                ),
            ));
        }
        Ok(&self.meta)
    }

    /// Whether the content itself failed (the caller's reader, or content that is
    /// not what an import states): the write fails, and no backend fault is to blame.
    pub fn input_failed(&self) -> bool {
        self.source_error.is_some() || self.mismatch
    }
}

impl Read for DocInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.source {
            Source::Bytes(bytes) => {
                let at = usize::try_from(self.read)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = buf.len().min(bytes.len() - at);
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                n
            }
            Source::Reader(reader) => loop {
                match reader.read(buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.source_error = Some(e.to_string());
                        return Err(e);
                    }
                }
            },
        };
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// The error for a document's bytes that could not be read.
pub(crate) fn read_error(key: &str, e: io::Error) -> Error {
    // A reader may fail with one of the store's errors (its own, or a JSON-files
    // snapshot's `Conflict` for a file found replaced): that error, as it is.
    let e = match e.downcast::<Error>() {
        Ok(error) => return error,
        Err(e) => e,
    };
    Error::backend(
        "documents",
        format!(
            "reading document '{}' failed: {e}",
            crate::validate::shorten(key)
        ),
    )
}

/// Reads `input` into chunks of `chunk` bytes (the last one shorter), calling
/// `each` with every full or final chunk: the shape in which backends that store
/// documents in pieces receive a stream. Returns how many chunks there were.
pub fn for_each_chunk(
    input: &mut DocInput<'_>,
    chunk: usize,
    mut each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let mut buffer = vec![0u8; chunk.max(1)];
    let mut seq = 0u64;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match input.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(input_error(input, e)),
            }
        }
        if filled > 0 {
            each(seq, &buffer[..filled])?;
            seq += 1;
        }
        if filled < buffer.len() {
            return Ok(seq);
        }
    }
}

/// The error for a failed read of a document's input: the caller's reader.
pub fn input_error(input: &DocInput<'_>, e: io::Error) -> Error {
    Error::io(
        format!(
            "<content of document '{}'>",
            crate::validate::shorten(input.key())
        ),
        e,
    )
}
