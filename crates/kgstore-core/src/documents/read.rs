//! Reading documents, written once for the store, a read snapshot and a write
//! transaction.

use std::io::{self, Read, Write};
use std::ops::Bound;

use super::backend::{DocRead, read_error};
use super::key::{check_key, check_prefix, folder_end};
use super::meta::{Document, DocumentMeta};
use super::ops::{DocPosition, DocumentPage, DocumentQuery};
use crate::error::{Error, Result};
use crate::validate::shorten;

/// The error for a backend that holds no documents.
pub(crate) fn unsupported(backend: &str) -> Error {
    Error::unsupported("documents", backend)
}

/// The reads of documents, shared by [`Store`](crate::Store) (each call on a fresh
/// snapshot), [`ReadTx`](crate::ReadTx) (every call on one snapshot) and
/// [`WriteTx`](crate::WriteTx) (seeing its own writes) — the `read`, `exists` and
/// `list` of the seed's storage interface.
///
/// Bring it into scope with `use kgstore_core::DocumentRead;` (or the prelude).
///
/// ```
/// use kgstore_core::{DocumentQuery, DocumentRead, Store};
///
/// let store = Store::memory();
/// store.write(|tx| {
///     tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY")?;
///     tx.write_document("scripts/s01/e02.fountain", "EXT. SEA - NIGHT")?;
///     Ok(())
/// })?;
/// assert_eq!(store.read_document("scripts/pilot.fountain")?, b"INT. HOUSE - DAY");
/// assert!(store.document_exists("scripts/s01/e02.fountain")?);
/// let page = store.list_documents(&DocumentQuery::prefix("scripts/").folders())?;
/// assert_eq!(page.documents[0].key, "scripts/pilot.fountain");
/// assert_eq!(page.folders, ["scripts/s01/"]);
/// # Ok::<(), kgstore_core::Error>(())
/// ```
pub trait DocumentRead {
    /// Runs `f` on the underlying document reads (more than once only where a
    /// one-call read is tried again on a fresh snapshot: see [`Store`](crate::Store)).
    #[doc(hidden)]
    fn with_docs<R>(&self, f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R>;

    /// As [`with_docs`](Self::with_docs), for `f` that makes exactly one
    /// primitive read (a [`Store`](crate::Store) may then skip beginning a
    /// transaction of its own: [`Backend::begin_one`](crate::Backend::begin_one)).
    #[doc(hidden)]
    fn with_one_doc_read<R>(&self, f: impl FnMut(&dyn DocRead) -> Result<R>) -> Result<R> {
        self.with_docs(f)
    }

    /// The bytes of the document at `key`, or [`Error::DocumentNotFound`].
    fn read_document(&self, key: &str) -> Result<Vec<u8>> {
        check_key(key)?;
        // A missing document is the caller's answer, not a failed read (metrics).
        self.with_one_doc_read(|d| {
            d.doc_bytes(key)?
                .map(|(size, content)| {
                    check_size(key, size, content.len() as u64)?;
                    Ok(content)
                })
                .transpose()
        })?
        .ok_or_else(|| Error::document_not_found(key))
    }

    /// The document at `key` with its metadata, or [`Error::DocumentNotFound`].
    fn get_document(&self, key: &str) -> Result<Document> {
        self.find_document(key)?
            .ok_or_else(|| Error::document_not_found(key))
    }

    /// The document at `key` with its metadata, if there is one.
    fn find_document(&self, key: &str) -> Result<Option<Document>> {
        check_key(key)?;
        self.with_docs(|d| read_one(d, key))
    }

    /// The metadata of the document at `key` (its `stat`), or [`Error::DocumentNotFound`].
    fn stat_document(&self, key: &str) -> Result<DocumentMeta> {
        check_key(key)?;
        self.with_docs(|d| d.doc_meta(key))?
            .ok_or_else(|| Error::document_not_found(key))
    }

    /// Whether a document is stored at `key`.
    fn document_exists(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        self.with_docs(|d| d.contains_doc(key))
    }

    /// How many documents there are.
    fn count_documents(&self) -> Result<u64> {
        self.with_docs(|d| d.count_docs())
    }

    /// Many documents at once, in the order of `keys`: `None` where none is stored.
    fn read_documents(&self, keys: &[&str]) -> Result<Vec<Option<Document>>> {
        keys.iter().try_for_each(|k| check_key(k))?;
        self.with_docs(|d| keys.iter().map(|key| read_one(d, key)).collect())
    }

    /// Streams the document at `key` into `out` with bounded memory, whatever its
    /// size; its metadata, or [`Error::DocumentNotFound`].
    fn read_document_to(&self, key: &str, out: &mut dyn Write) -> Result<DocumentMeta> {
        check_key(key)?;
        self.with_docs(|d| {
            let meta = d
                .doc_meta(key)?
                .ok_or_else(|| Error::document_not_found(key))?;
            let mut reader = DocumentReader::new(d.open_doc(&meta)?, meta.clone());
            copy(&mut reader, out, &meta.key)?;
            Ok(meta)
        })
    }

    /// One page of a listing: documents whose keys start with the query's prefix, in
    /// byte order, or with the `/` delimiter the documents directly in that folder
    /// and its sub-folders.
    fn list_documents(&self, query: &DocumentQuery) -> Result<DocumentPage> {
        check_prefix(&query.prefix)?;
        query.page.check()?;
        if let Some(other) = query.delimiter.filter(|d| *d != '/') {
            return Err(Error::invalid_input(
                format!("delimiter '{}'", other.escape_debug()),
                "the only delimiter offered is '/'",
            ));
        }
        let start = query
            .page
            .cursor
            .as_ref()
            .map(DocPosition::parse)
            .transpose()?;
        self.with_docs(|d| list(d, query, start.clone()))
    }
}

fn read_one(d: &dyn DocRead, key: &str) -> Result<Option<Document>> {
    let Some(doc) = d.get_doc(key)? else {
        return Ok(None);
    };
    check_size(&doc.meta.key, doc.meta.size, doc.content.len() as u64)?;
    Ok(Some(doc))
}

fn check_size(key: &str, size: u64, got: u64) -> Result<()> {
    if got == size {
        Ok(())
    } else {
        Err(Error::corrupt(
            format!("<document '{}'>", shorten(key)),
            format!("its metadata says {size} bytes, but {got} bytes were read"),
        ))
    }
}

fn copy(reader: &mut DocumentReader<'_>, out: &mut dyn Write, key: &str) -> Result<u64> {
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reader.error(e)),
        };
        out.write_all(&buffer[..n])
            .map_err(|e| Error::io(format!("<destination of document '{}'>", shorten(key)), e))?;
        total += n as u64;
    }
}

/// The listing algorithm, on any backend: a keyed scan, skipping each sub-folder
/// with one seek past its end.
fn list(
    d: &dyn DocRead,
    query: &DocumentQuery,
    start: Option<DocPosition>,
) -> Result<DocumentPage> {
    let prefix = query.prefix.as_str();
    let limit = query.page.limit;
    let mut from: String;
    let mut bound_included;
    match start {
        None => {
            from = prefix.to_owned();
            bound_included = true;
        }
        Some(DocPosition::Document(key)) => {
            from = key;
            bound_included = false;
        }
        Some(DocPosition::Folder(folder)) => {
            from = folder_end(&folder);
            bound_included = true;
        }
    }
    // In key order: `None` for the next document of `documents`, `Some` for a folder.
    let mut entries: Vec<Option<String>> = Vec::new();
    let mut documents: Vec<DocumentMeta> = Vec::new();
    'scan: while entries.len() <= limit {
        let want = limit + 1 - entries.len();
        let bound = if bound_included {
            Bound::Included(from.as_str())
        } else {
            Bound::Excluded(from.as_str())
        };
        let batch = d.scan_docs(prefix, bound, want)?;
        let full = batch.len() == want;
        for meta in batch {
            let rest = &meta.key[prefix.len()..];
            if let (Some('/'), Some(at)) = (query.delimiter, rest.find('/')) {
                let folder = format!("{prefix}{}", &rest[..=at]);
                from = folder_end(&folder);
                bound_included = true;
                entries.push(Some(folder));
                // Seek past the folder's keys.
                continue 'scan;
            }
            entries.push(None);
            documents.push(meta);
        }
        // The whole batch was documents: the next one starts after the last.
        match documents.last() {
            Some(last) if full => {
                from.clone_from(&last.key);
                bound_included = false;
            }
            _ => break,
        }
    }
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        documents.truncate(entries.iter().filter(|e| e.is_none()).count());
        match entries.last() {
            Some(Some(folder)) => Some(DocPosition::Folder(folder.clone()).cursor()),
            Some(None) => documents
                .last()
                .map(|m| DocPosition::Document(m.key.clone()).cursor()),
            None => None,
        }
    } else {
        None
    };
    let folders = entries.into_iter().flatten().collect();
    Ok(DocumentPage {
        documents,
        folders,
        next_cursor,
    })
}

/// A document's bytes as a [`Read`], with bounded memory whatever its size; from
/// [`ReadTx::open_document`](crate::ReadTx::open_document) or
/// [`WriteTx::open_document`](crate::WriteTx::open_document). A read that finds
/// more or fewer bytes than the metadata says fails.
pub struct DocumentReader<'a> {
    inner: Box<dyn Read + 'a>,
    meta: DocumentMeta,
    read: u64,
}

impl<'a> DocumentReader<'a> {
    pub(crate) fn new(inner: Box<dyn Read + 'a>, meta: DocumentMeta) -> Self {
        Self {
            inner,
            meta,
            read: 0,
        }
    }

    /// The document's metadata.
    pub fn meta(&self) -> &DocumentMeta {
        &self.meta
    }

    /// The kgstore error behind a failed read (a backend's, or this reader's own).
    pub(crate) fn error(&self, e: io::Error) -> Error {
        read_error(&self.meta.key, e)
    }
}

impl Read for DocumentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let wrong = (n == 0 && !buf.is_empty() && self.read != self.meta.size)
            || self.read > self.meta.size;
        if wrong {
            let e = Error::corrupt(
                format!("<document '{}'>", shorten(&self.meta.key)),
                format!(
                    "its metadata says {} bytes, but {} or more were read",
                    self.meta.size, self.read
                ),
            );
            return Err(io::Error::other(e));
        }
        Ok(n)
    }
}

impl std::fmt::Debug for DocumentReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentReader")
            .field("meta", &self.meta)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}
