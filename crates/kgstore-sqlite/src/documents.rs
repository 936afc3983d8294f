//! Documents in SQLite: one row per document in `documents` (its metadata, and
//! its bytes when they fit in one chunk), larger ones split into
//! `document_chunks` of [`CHUNK`] bytes, so that no value is ever held whole in
//! memory on its way in or out. Listings walk the unique index on `key`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::ops::Bound;

use kgstore_core::documents::{DocInput, for_each_chunk, input_error, key};
use kgstore_core::serde_json::Value;
use kgstore_core::{Document, DocumentMeta, Error, Result};
use rusqlite::blob::Blob;
use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};

use crate::codec::{doc_columns, doc_meta_from_row, version_to_sql};
use crate::error::{Ctx, SqlResult};
use crate::read::{Q, prefix_upper_bound};

/// The size of a chunk; a document of at most this many bytes is kept in its row.
pub const CHUNK: usize = 256 * 1024;

/// The tables format version 2 adds.
pub(crate) const DOCUMENTS_DDL: &str = "
CREATE TABLE documents (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    content      BLOB
) STRICT;

CREATE TABLE document_chunks (
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    seq    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT;
";

/// A document's row: its id, its metadata, and its bytes when kept in the row.
type DocRow = (i64, DocumentMeta, Option<Vec<u8>>);

fn subject(key: &str) -> String {
    format!("document '{}'", kgstore_core::validate::shorten(key))
}

/// A JSON array of strings, for `json_each(?)`.
fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    Value::Array(items.into_iter().map(Value::from).collect()).to_string()
}

impl<'a> Q<'a> {
    fn doc_row(&self, key: &str) -> Result<Option<DocRow>> {
        if !self.ctx.documents {
            return Ok(None);
        }
        let sql = concat!(
            "SELECT ",
            doc_columns!(),
            ", d.content FROM documents d WHERE d.key = ?1"
        );
        let ctx = self.ctx;
        self.one(
            sql,
            [key],
            || format!("reading {}", subject(key)),
            |row| {
                let (id, meta) = doc_meta_from_row(row, ctx)?;
                let content: Option<Vec<u8>> = row.get(8).map_err(|e| {
                    ctx.corrupt(format!("table documents, row {id}, column content: {e}"))
                })?;
                Ok((id, meta, content))
            },
        )
    }

    pub(crate) fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        if !self.ctx.documents {
            return Ok(None);
        }
        let sql = concat!(
            "SELECT ",
            doc_columns!(),
            " FROM documents d WHERE d.key = ?1"
        );
        let ctx = self.ctx;
        self.one(
            sql,
            [key],
            || format!("reading {}", subject(key)),
            |row| doc_meta_from_row(row, ctx).map(|(_, meta)| meta),
        )
    }

    pub(crate) fn scan_docs(
        &self,
        prefix: &str,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        if !self.ctx.documents {
            return Ok(Vec::new());
        }
        let (low, inclusive) = match from {
            Bound::Included(k) if k > prefix => (k, true),
            Bound::Excluded(k) if k >= prefix => (k, false),
            _ => (prefix, true),
        };
        let high = if prefix.is_empty() {
            None
        } else {
            prefix_upper_bound(prefix)
        };
        let sql = match (inclusive, high.is_some()) {
            (true, true) => concat!(
                "SELECT ",
                doc_columns!(),
                " FROM documents d WHERE d.key >= ?1 AND d.key < ?2 ORDER BY d.key LIMIT ?3"
            ),
            (false, true) => concat!(
                "SELECT ",
                doc_columns!(),
                " FROM documents d WHERE d.key > ?1 AND d.key < ?2 ORDER BY d.key LIMIT ?3"
            ),
            (true, false) => concat!(
                "SELECT ",
                doc_columns!(),
                " FROM documents d WHERE d.key >= ?1 AND ?2 IS NULL ORDER BY d.key LIMIT ?3"
            ),
            (false, false) => concat!(
                "SELECT ",
                doc_columns!(),
                " FROM documents d WHERE d.key > ?1 AND ?2 IS NULL ORDER BY d.key LIMIT ?3"
            ),
        };
        let ctx = self.ctx;
        let limit = i64::try_from(limit).unwrap_or(-1);
        let mut found = self.rows(
            sql,
            params![low, high, limit],
            || {
                format!(
                    "listing documents under '{}'",
                    kgstore_core::validate::shorten(prefix)
                )
            },
            |row| doc_meta_from_row(row, ctx).map(|(_, meta)| meta),
        )?;
        // Without an upper bound (a prefix of U+10FFFF only), keep the prefix here.
        if let Some(end) = found.iter().position(|m| !m.key.starts_with(prefix)) {
            found.truncate(end);
        }
        Ok(found)
    }

    pub(crate) fn get_doc(&self, key: &str) -> Result<Option<Document>> {
        let Some((id, meta, content)) = self.doc_row(key)? else {
            return Ok(None);
        };
        let content = match content {
            Some(bytes) => bytes,
            None => self.chunks_of(id, &meta)?,
        };
        Ok(Some(Document { meta, content }))
    }

    /// The size and bytes of the document at `key`, reading no other metadata
    /// when the bytes are in its row.
    pub(crate) fn doc_bytes(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>> {
        if !self.ctx.documents {
            return Ok(None);
        }
        let ctx = self.ctx;
        let row = self.one(
            "SELECT d.size, d.content FROM documents d WHERE d.key = ?1",
            [key],
            || format!("reading {}", subject(key)),
            |row| {
                let cell = |e: rusqlite::Error| {
                    ctx.corrupt(format!("table documents, {}: {e}", subject(key)))
                };
                let size: i64 = row.get(0).map_err(cell)?;
                let content: Option<Vec<u8>> = row.get(1).map_err(cell)?;
                let size = u64::try_from(size).map_err(|_| {
                    ctx.corrupt(format!(
                        "table documents, {}: negative size {size}",
                        subject(key)
                    ))
                })?;
                Ok((size, content))
            },
        )?;
        match row {
            None => Ok(None),
            Some((size, Some(bytes))) => Ok(Some((size, bytes))),
            // Kept in chunks: read through the metadata, as `get_doc` does, in one
            // transaction (a one-call read may have begun none: `begin_one`).
            Some((_, None)) => {
                if self.conn.is_autocommit() {
                    self.conn
                        .prepare_cached("BEGIN")
                        .and_then(|mut s| s.execute([]))
                        .ctx(self.ctx, || format!("reading {}", subject(key)))?;
                }
                Ok(self.get_doc(key)?.map(|d| (d.meta.size, d.content)))
            }
        }
    }

    fn chunks_of(&self, id: i64, meta: &DocumentMeta) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        let mut reader = ChunkReader::new(*self, id, meta.clone());
        reader
            .read_to_end(&mut out)
            .map_err(|e| unwrap_io(e, &meta.key))?;
        Ok(out)
    }

    pub(crate) fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
        match self.doc_row(&meta.key)? {
            Some((_, _, Some(bytes))) => Ok(bytes),
            Some((id, stored, None)) => self.chunks_of(id, &stored),
            None => Err(Error::document_not_found(&meta.key)),
        }
    }

    pub(crate) fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + 'a>> {
        match self.doc_row(&meta.key)? {
            Some((_, _, Some(bytes))) => Ok(Box::new(io::Cursor::new(bytes))),
            Some((id, stored, None)) => Ok(Box::new(ChunkReader::new(*self, id, stored))),
            None => Err(Error::document_not_found(&meta.key)),
        }
    }

    pub(crate) fn contains_doc(&self, key: &str) -> Result<bool> {
        if !self.ctx.documents {
            return Ok(false);
        }
        Ok(self
            .one(
                "SELECT 1 FROM documents WHERE key = ?1",
                [key],
                || format!("looking up {}", subject(key)),
                |_| Ok(()),
            )?
            .is_some())
    }

    pub(crate) fn count_docs(&self) -> Result<u64> {
        if !self.ctx.documents {
            return Ok(0);
        }
        let n: i64 = self
            .one(
                "SELECT count(*) FROM documents",
                [],
                || "counting documents".into(),
                |row| row.get(0).map_err(|e| self.ctx.corrupt(e.to_string())),
            )?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The rows whose keys lie in `[lo, hi)`, mapped by `each`, if there are at most
    /// `cap` of them; `None` when there are more. A batch whose keys sit in a sparse
    /// part of the key space (new keys, above all) is answered by this one seek of the
    /// key index instead of one probe per key.
    fn capped_range<T>(
        &self,
        columns_sql: &str,
        (lo, hi): (&str, &str),
        cap: usize,
        each: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        let found = self.rows(
            columns_sql,
            params![lo, hi, i64::try_from(cap + 1).unwrap_or(i64::MAX)],
            || {
                format!(
                    "reading the documents from '{}' on",
                    kgstore_core::validate::shorten(lo)
                )
            },
            each,
        )?;
        Ok((found.len() <= cap).then_some(found))
    }

    pub(crate) fn docs_meta(&self, keys: &[&str]) -> Result<Vec<Option<DocumentMeta>>> {
        if !self.ctx.documents || keys.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        let ctx = self.ctx;
        let meta = |row: &rusqlite::Row<'_>| doc_meta_from_row(row, ctx).map(|(_, meta)| meta);
        let (lo, hi) = key_range(keys, "");
        let ranged = self.capped_range(
            concat!(
                "SELECT ",
                doc_columns!(),
                " FROM documents d WHERE d.key >= ?1 AND d.key < ?2 ORDER BY d.key LIMIT ?3"
            ),
            (&lo, &hi),
            range_cap(keys.len()),
            meta,
        )?;
        let found = match ranged {
            Some(found) => found,
            None => self.rows(
                concat!(
                    "SELECT ",
                    doc_columns!(),
                    " FROM documents d WHERE d.key IN (SELECT value FROM json_each(?1))"
                ),
                [json_list(keys.iter().copied())],
                || format!("reading the metadata of {} documents", keys.len()),
                meta,
            )?,
        };
        if found.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        let mut by_key: HashMap<String, DocumentMeta> =
            found.into_iter().map(|m| (m.key.clone(), m)).collect();
        Ok(keys.iter().map(|k| by_key.remove(*k)).collect())
    }

    pub(crate) fn first_tree_conflict(&self, keys: &[&str]) -> Result<Option<(String, String)>> {
        if keys.is_empty() || !self.ctx.documents {
            return Ok(None);
        }
        // Documents where a new key needs a folder: each distinct folder asked once.
        let folders: BTreeSet<&str> = keys.iter().flat_map(|k| key::ancestors(k)).collect();
        if !folders.is_empty() {
            let stored = self.rows(
                "SELECT key FROM documents WHERE key IN (SELECT value FROM json_each(?1))",
                [json_list(folders.iter().copied())],
                || "looking for documents in the way of new ones".into(),
                |row| {
                    row.get::<_, String>(0)
                        .map_err(|e| self.ctx.corrupt(e.to_string()))
                },
            )?;
            if !stored.is_empty() {
                for k in keys {
                    if let Some(folder) = key::ancestors(k).find(|f| stored.iter().any(|s| s == f))
                    {
                        return Ok(Some(((*k).to_owned(), folder.to_owned())));
                    }
                }
            }
        }
        // Documents inside a new key (as if it were a folder): every such key lies in
        // [smallest key + '/', largest key + '0').
        let (lo, hi) = key_range(keys, "/");
        let text = |row: &rusqlite::Row<'_>| {
            row.get::<_, String>(0)
                .map_err(|e| self.ctx.corrupt(e.to_string()))
        };
        let ranged = self.capped_range(
            "SELECT key FROM documents WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
            (&lo, &hi),
            range_cap(keys.len()),
            text,
        )?;
        if let Some(inside) = ranged {
            let new: HashSet<&str> = keys.iter().copied().collect();
            return Ok(inside.into_iter().find_map(|stored| {
                let folder = key::ancestors(&stored)
                    .find(|f| new.contains(f))?
                    .to_owned();
                Some((folder, stored))
            }));
        }
        self.one(
            "SELECT j.value, d.key FROM json_each(?1) j JOIN documents d \
             ON d.key >= j.value || '/' AND d.key < j.value || '0' LIMIT 1",
            [json_list(keys.iter().copied())],
            || "looking for documents inside new ones".into(),
            |row| {
                let pair: (String, String) = (
                    row.get(0).map_err(|e| self.ctx.corrupt(e.to_string()))?,
                    row.get(1).map_err(|e| self.ctx.corrupt(e.to_string()))?,
                );
                Ok(pair)
            },
        )
    }
}

/// How many rows a range scan for a batch of `n` keys may read before the batch is
/// asked key by key instead.
fn range_cap(n: usize) -> usize {
    2 * n + 64
}

/// The smallest key of `keys` followed by `after`, and the bound just above every key
/// of `keys` and everything inside them as folders (the largest key followed by '0',
/// the byte after '/').
fn key_range(keys: &[&str], after: &str) -> (String, String) {
    let lo = keys.iter().copied().min().unwrap_or_default();
    let hi = keys.iter().copied().max().unwrap_or_default();
    (format!("{lo}{after}"), format!("{hi}0"))
}

/// Undoes the wrapping of a kgstore error in an `io::Error` by a reader.
fn unwrap_io(e: io::Error, key: &str) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>())
        && let Some(Ok(inner)) = e.into_inner().map(|b| b.downcast::<Error>())
    {
        return *inner;
    }
    Error::backend("sqlite", format!("reading {}: a read failed", subject(key)))
}

/// The bytes of a chunked document, read a chunk at a time through SQLite's
/// incremental blob I/O: straight from the database pages into the caller's
/// buffer, never a whole chunk in memory.
struct ChunkReader<'a> {
    q: Q<'a>,
    id: i64,
    meta: DocumentMeta,
    seq: i64,
    blob: Option<Blob<'a>>,
    done: u64,
    /// The connection's memory-map size, put back when the reader is dropped.
    mmap: Option<i64>,
}

impl<'a> ChunkReader<'a> {
    /// A reader of the chunks of document `id`. While it lives, its connection
    /// reads without its memory map (`PRAGMA mmap_size = 0`, put back on drop):
    /// every page read through the map stays mapped, counted in the process's
    /// resident set, for as long as the pooled connection lives, so a streamed
    /// value of hundreds of MiB would grow the resident set by its size; read
    /// into the page cache instead, it grows it by at most the cache's size.
    fn new(q: Q<'a>, id: i64, meta: DocumentMeta) -> Self {
        let mmap = q
            .conn
            .pragma_query_value(None, "mmap_size", |row| row.get::<_, i64>(0))
            .ok()
            .filter(|size| *size > 0)
            .filter(|_| q.conn.pragma_update(None, "mmap_size", 0).is_ok());
        Self {
            q,
            id,
            meta,
            seq: 0,
            blob: None,
            done: 0,
            mmap,
        }
    }

    /// Opens the next chunk; `false` if there is none.
    fn next_chunk(&mut self) -> Result<bool> {
        let (q, id, seq) = (self.q, self.id, self.seq);
        let key = &self.meta.key;
        let doing = || format!("reading chunk {seq} of {}", subject(key));
        let rowid: Option<i64> = q.one(
            "SELECT rowid FROM document_chunks WHERE doc_id = ?1 AND seq = ?2",
            [id, seq],
            doing,
            |row| row.get(0).map_err(|e| q.ctx.corrupt(e.to_string())),
        )?;
        let Some(rowid) = rowid else {
            return Ok(false);
        };
        let blob = q
            .conn
            .blob_open(MAIN_DB, "document_chunks", "data", rowid, true)
            .ctx(q.ctx, doing)?;
        self.blob = Some(blob);
        self.seq += 1;
        Ok(true)
    }
}

impl Drop for ChunkReader<'_> {
    fn drop(&mut self) {
        self.blob = None;
        if let Some(size) = self.mmap {
            // Best effort: a connection that cannot take it back reads without
            // the map, which is slower but correct.
            let _ = self.q.conn.pragma_update(None, "mmap_size", size);
        }
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(blob) = &mut self.blob {
                let n = blob.read(buf)?;
                if n > 0 {
                    self.done += n as u64;
                    return Ok(n);
                }
                self.blob = None;
            }
            if self.done >= self.meta.size {
                return Ok(0);
            }
            if !self.next_chunk().map_err(io::Error::other)? {
                return Err(io::Error::other(self.q.ctx.corrupt(format!(
                    "table document_chunks: {} has {} of its {} bytes (chunk {} is missing)",
                    subject(&self.meta.key),
                    self.done,
                    self.meta.size,
                    self.seq
                ))));
            }
        }
    }
}

/// Document writes on the writer connection, inside its open transaction.
pub(crate) struct DocW<'a> {
    pub conn: &'a Connection,
    pub ctx: &'a Ctx,
}

const INSERT_INLINE: &str = "INSERT INTO documents(key, content_type, size, sha256, created_at, \
     updated_at, version, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const UPSERT: &str = "INSERT INTO documents(key, content_type, size, sha256, created_at, \
     updated_at, version, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT(key) DO UPDATE SET content_type = excluded.content_type, size = excluded.size, \
     sha256 = excluded.sha256, created_at = excluded.created_at, updated_at = excluded.updated_at, \
     version = excluded.version, content = excluded.content RETURNING id";

/// Rows per multi-row insert of new documents.
const ROWS: usize = 32;

fn insert_rows_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO documents(key, content_type, size, sha256, created_at, updated_at, \
             version, content) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; ROWS].join(", ")
        )
    })
}

const DELETE_CHUNKS: &str = "DELETE FROM document_chunks WHERE doc_id = ?1";

impl DocW<'_> {
    fn run(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        doing: impl FnOnce() -> String,
    ) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .ctx(self.ctx, doing)
    }

    /// Writes the row of a document (with `content` when inline); its id. Old
    /// chunks of a replaced document are removed.
    fn write_row(
        &self,
        meta: &DocumentMeta,
        content: Option<&[u8]>,
        replaces: bool,
    ) -> Result<i64> {
        let doing = || format!("writing {} into table documents", subject(&meta.key));
        let version = version_to_sql(meta.version, || subject(&meta.key))?;
        let size = i64::try_from(meta.size).unwrap_or(i64::MAX);
        let values = params![
            meta.key,
            meta.content_type,
            size,
            meta.sha256.as_bytes().as_slice(),
            meta.created_at.as_micros(),
            meta.updated_at.as_micros(),
            version,
            content,
        ];
        if !replaces {
            self.run(INSERT_INLINE, values, doing)?;
            return Ok(self.conn.last_insert_rowid());
        }
        let id: i64 = self
            .conn
            .prepare_cached(UPSERT)
            .and_then(|mut s| s.query_row(values, |row| row.get(0)))
            .ctx(self.ctx, doing)?;
        self.run(DELETE_CHUNKS, [id], || {
            format!("removing the old chunks of {}", subject(&meta.key))
        })?;
        Ok(id)
    }

    pub(crate) fn put_doc(&self, input: &mut DocInput<'_>) -> Result<()> {
        let replaces = input.replaces().is_some();
        if let Some(bytes) = input.as_bytes()
            && bytes.len() <= CHUNK
        {
            let meta = input.finish()?.clone();
            self.write_row(&meta, Some(bytes), replaces)?;
            return Ok(());
        }
        // Several statements: all or nothing for this document, whatever fails.
        self.run("SAVEPOINT kgstore_doc", [], || {
            "starting a document write".into()
        })?;
        match self.put_streamed(input, replaces) {
            Ok(()) => self
                .run("RELEASE kgstore_doc", [], || {
                    "finishing a document write".into()
                })
                .map(drop),
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO kgstore_doc; RELEASE kgstore_doc");
                Err(e)
            }
        }
    }

    fn put_streamed(&self, input: &mut DocInput<'_>, replaces: bool) -> Result<()> {
        // The first chunk decides: a document that fits stays in its row.
        let mut first = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < first.len() {
            match input.read(&mut first[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(input_error(input, e)),
            }
        }
        if filled < first.len() {
            first.truncate(filled);
            let meta = input.finish()?.clone();
            self.write_row(&meta, Some(&first), replaces)?;
            return Ok(());
        }
        let key = input.key().to_owned();
        let pending = input.meta_so_far().clone();
        let id = self.write_row(&pending, None, replaces)?;
        let insert = |seq: u64, data: &[u8]| {
            self.run(
                "INSERT INTO document_chunks(doc_id, seq, data) VALUES (?1, ?2, ?3)",
                params![id, i64::try_from(seq).unwrap_or(i64::MAX), data],
                || format!("writing chunk {seq} of {}", subject(&key)),
            )
            .map(drop)
        };
        insert(0, &first)?;
        drop(first);
        for_each_chunk(input, CHUNK, |seq, data| insert(seq + 1, data))?;
        let meta = input.finish()?.clone();
        self.run(
            "UPDATE documents SET content_type = ?2, size = ?3, sha256 = ?4 WHERE id = ?1",
            params![
                id,
                meta.content_type,
                i64::try_from(meta.size).unwrap_or(i64::MAX),
                meta.sha256.as_bytes().as_slice()
            ],
            || format!("recording the size and digest of {}", subject(&key)),
        )?;
        Ok(())
    }

    /// Writes many documents: new ones that fit in a row with multi-row inserts,
    /// the others one by one.
    pub(crate) fn put_docs(&self, inputs: &mut [DocInput<'_>]) -> Result<()> {
        let mut batch: Vec<(DocumentMeta, &[u8])> = Vec::with_capacity(ROWS);
        for input in inputs.iter_mut() {
            match input.as_bytes() {
                Some(bytes) if bytes.len() <= CHUNK && input.replaces().is_none() => {
                    batch.push((input.finish()?.clone(), bytes));
                    if batch.len() == ROWS {
                        self.insert_rows(&batch)?;
                        batch.clear();
                    }
                }
                _ => self.put_doc(input)?,
            }
        }
        batch.chunks(1).try_for_each(|one| self.insert_rows(one))
    }

    /// Inserts new documents kept in their rows: `ROWS` at a time in one statement.
    fn insert_rows(&self, rows: &[(DocumentMeta, &[u8])]) -> Result<()> {
        let sql = if rows.len() == ROWS {
            insert_rows_sql()
        } else {
            INSERT_INLINE
        };
        if rows.len() != ROWS && rows.len() != 1 {
            return rows.chunks(1).try_for_each(|one| self.insert_rows(one));
        }
        // Bound by reference: the keys and bytes are not copied on their way in.
        let numbers: Vec<[i64; 4]> = rows
            .iter()
            .map(|(meta, _)| {
                Ok([
                    i64::try_from(meta.size).unwrap_or(i64::MAX),
                    meta.created_at.as_micros(),
                    meta.updated_at.as_micros(),
                    version_to_sql(meta.version, || subject(&meta.key))?,
                ])
            })
            .collect::<Result<_>>()?;
        let digests: Vec<&[u8]> = rows.iter().map(|(m, _)| &m.sha256.as_bytes()[..]).collect();
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(rows.len() * 8);
        for (((meta, bytes), n), digest) in rows.iter().zip(&numbers).zip(&digests) {
            values.extend([
                &meta.key as &dyn rusqlite::ToSql,
                &meta.content_type,
                &n[0],
                digest,
                &n[1],
                &n[2],
                &n[3],
                bytes,
            ]);
        }
        self.run(sql, rusqlite::params_from_iter(values), || {
            format!("writing {} documents into table documents", rows.len())
        })
        .map(drop)
    }

    pub(crate) fn delete_doc(&self, key: &str) -> Result<bool> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM documents WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
            .ctx(self.ctx, || format!("looking up {}", subject(key)))?;
        let Some(id) = id else { return Ok(false) };
        self.run(DELETE_CHUNKS, [id], || {
            format!("removing the chunks of {}", subject(key))
        })?;
        self.run("DELETE FROM documents WHERE id = ?1", [id], || {
            format!("removing {} from table documents", subject(key))
        })?;
        Ok(true)
    }
}

/// Document reads for a transaction type with a `q()`, and `documents()` on it.
macro_rules! doc_read_via_sql {
    ($ty:ty) => {
        impl kgstore_core::documents::DocRead for $ty {
            fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
                self.q()?.doc_meta(key)
            }
            fn scan_docs(
                &self,
                prefix: &str,
                from: Bound<&str>,
                limit: usize,
            ) -> Result<Vec<DocumentMeta>> {
                self.q()?.scan_docs(prefix, from, limit)
            }
            fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
                self.q()?.open_doc(meta)
            }
            fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
                self.q()?.read_doc(meta)
            }
            fn get_doc(&self, key: &str) -> Result<Option<Document>> {
                self.q()?.get_doc(key)
            }
            fn doc_bytes(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>> {
                // One statement (a document kept in chunks begins a transaction).
                self.q_one()?.doc_bytes(key)
            }
            fn docs_meta(&self, keys: &[&str]) -> Result<Vec<Option<DocumentMeta>>> {
                self.q()?.docs_meta(keys)
            }
            fn first_tree_conflict(&self, keys: &[&str]) -> Result<Option<(String, String)>> {
                self.q()?.first_tree_conflict(keys)
            }
            fn tree_conflict(&self, key: &str) -> Result<Option<String>> {
                Ok(self
                    .q()?
                    .first_tree_conflict(&[key])?
                    .map(|(_, existing)| existing))
            }
            fn contains_doc(&self, key: &str) -> Result<bool> {
                self.q()?.contains_doc(key)
            }
            fn count_docs(&self) -> Result<u64> {
                self.q()?.count_docs()
            }
        }
    };
}

pub(crate) use doc_read_via_sql;
