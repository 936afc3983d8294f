//! The document phases: their data, kgstore's side on any backend, and the two
//! baselines a user would otherwise write — a hand-written rusqlite table with the
//! same metadata and durability, and bare files (write, fsync, rename, folder fsync).
//!
//! Every subject stores the same documents under the same keys; the checksums
//! (counts, sizes, sampled bytes) must agree.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kgstore::documents::{Sha256Digest, guess_content_type};
use kgstore::{
    DocumentQuery, DocumentRead, DocumentWrite, PageRequest, Store, Timestamp, WriteOptions,
};
use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::data::SplitMix64;
use crate::subject::{Measured, timed};

/// Documents per folder of the generated keys (`notes/<folder>/doc-<i>.md`).
pub const PER_FOLDER: usize = 100;
/// The size of a small document, in bytes.
pub const SMALL_DOC: usize = 1024;
/// A page of the listing phase.
pub const LIST_PAGE: usize = 50;
/// The pieces a large value is written and read in.
pub const PIECE: usize = 256 * 1024;

/// The documents of one run.
#[derive(Clone, Debug)]
pub struct DocData {
    /// Written in one transaction: (key, bytes).
    pub load: Vec<(String, Vec<u8>)>,
    /// Keys to read, at random among `load`.
    pub reads: Vec<String>,
    /// The folders (`notes/<folder>/`) the listing phase lists.
    pub prefixes: Vec<String>,
    /// Written one per durable transaction.
    pub commits: Vec<(String, Vec<u8>)>,
    /// The large value's size in bytes.
    pub stream_bytes: u64,
    /// The seed of the large value's bytes.
    pub seed: u64,
}

/// The key of the large value.
pub const STREAM_KEY: &str = "large/value.bin";

fn text(rng: &mut SplitMix64, size: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "INT. ",
        "HOUSE ",
        "- DAY\n",
        "She ",
        "opens ",
        "the ",
        "door. ",
        "EXT. SEA\n",
    ];
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
    }
    out.truncate(size);
    out
}

impl DocData {
    /// `documents` small documents, `reads` random reads, `commits` single writes and
    /// a large value of `stream_mib` MiB, from `seed`.
    pub fn generate(
        documents: usize,
        reads: usize,
        commits: usize,
        stream_mib: u64,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x646f_6373);
        let key = |i: usize| format!("notes/{:03}/doc-{i:06}.md", i / PER_FOLDER);
        let load: Vec<(String, Vec<u8>)> = (0..documents)
            .map(|i| (key(i), text(&mut rng, SMALL_DOC)))
            .collect();
        let reads = (0..reads)
            .map(|_| key(rng.below(documents.max(1))))
            .collect();
        let prefixes = (0..documents.div_ceil(PER_FOLDER))
            .map(|f| format!("notes/{f:03}/"))
            .collect();
        let commits = (0..commits)
            .map(|i| (format!("commits/{i:06}.md"), text(&mut rng, SMALL_DOC)))
            .collect();
        Self {
            load,
            reads,
            prefixes,
            commits,
            stream_bytes: stream_mib << 20,
            seed,
        }
    }

    /// The large value's bytes, generated as they are read (never all in memory).
    pub fn large_value(&self) -> LargeValue {
        LargeValue {
            rng: SplitMix64::new(self.seed ^ 0x006c_6172_6765),
            left: self.stream_bytes,
        }
    }
}

/// Pseudo-random bytes of a fixed length, as a [`Read`].
pub struct LargeValue {
    rng: SplitMix64,
    left: u64,
}

impl Read for LargeValue {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            / 8
            * 8;
        let n = if n == 0 {
            buf.len().min(usize::try_from(self.left).unwrap_or(0))
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A [`Write`] that keeps no bytes, only a checksum independent of how they are
/// cut: their count plus every 4,096th byte.
#[derive(Default)]
pub struct Sampler {
    at: u64,
    sum: u64,
}

impl Sampler {
    /// The checksum of everything written.
    pub fn checksum(&self) -> u64 {
        self.at.wrapping_add(self.sum)
    }
}

impl Write for Sampler {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let first = (4096 - self.at % 4096) % 4096;
        let mut i = first as usize;
        while i < buf.len() {
            self.sum = self.sum.wrapping_add(u64::from(buf[i]));
            i += 4096;
        }
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The document phases on a kgstore store.
pub struct KgDocs<'a> {
    /// The store (a fresh one, holding only the phases' documents).
    pub store: &'a Store,
}

impl KgDocs<'_> {
    /// Every small document in one transaction.
    pub fn load(&self, data: &DocData) -> Result<Measured> {
        let writes: Vec<DocumentWrite> = data
            .load
            .iter()
            .map(|(k, v)| DocumentWrite::new(k.clone(), v.clone()))
            .collect();
        let mut m = timed(|| Ok((self.store.write_documents(writes)?.len() as u64, None)))?;
        m.checksum = Some(self.store.count_documents()?);
        Ok(m)
    }

    /// Random reads; the checksum adds up the sizes read.
    pub fn reads(&self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let mut sum = 0;
            for key in &data.reads {
                sum += self.store.read_document(key)?.len() as u64;
            }
            Ok((data.reads.len() as u64, Some(sum)))
        })
    }

    /// Every folder listed in keyset pages; ops are entries, the checksum adds their sizes.
    pub fn list(&self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let (mut count, mut sum) = (0, 0);
            for prefix in &data.prefixes {
                let mut query =
                    DocumentQuery::prefix(prefix.clone()).page(PageRequest::first(LIST_PAGE));
                loop {
                    let page = self.store.list_documents(&query)?;
                    count += page.documents.len() as u64;
                    sum += page.documents.iter().map(|d| d.size).sum::<u64>();
                    match page.next_cursor {
                        Some(cursor) => query = query.after(Some(cursor)),
                        None => break,
                    }
                }
            }
            Ok((count, Some(count + sum)))
        })
    }

    /// One document per durable transaction.
    pub fn commits(&self, docs: &[(String, Vec<u8>)]) -> Result<Measured> {
        let mut m = timed(|| {
            for (key, bytes) in docs {
                self.store.write_document(key, bytes)?;
            }
            Ok((docs.len() as u64, None))
        })?;
        m.checksum = Some(self.store.count_documents()?);
        Ok(m)
    }

    /// The large value streamed in; ops are bytes.
    pub fn stream_write(&self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let meta = self.store.write_document_from(
                STREAM_KEY,
                data.large_value(),
                &WriteOptions::new(),
            )?;
            Ok((meta.size, Some(meta.size)))
        })
    }

    /// The large value streamed out; ops are bytes.
    pub fn stream_read(&self) -> Result<Measured> {
        timed(|| {
            let mut sink = Sampler::default();
            let meta = self.store.read_document_to(STREAM_KEY, &mut sink)?;
            Ok((meta.size, Some(sink.checksum())))
        })
    }
}

/// The raw SQLite baseline: one table with the metadata kgstore keeps (size,
/// SHA-256, content type, times, version) and the bytes in the row, large values
/// written and read through SQLite's incremental blob I/O; WAL and
/// `synchronous = FULL`, as the SQLite backend with immediate durability.
pub struct RawDocs {
    conn: Connection,
}

const RAW_DDL: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
    CREATE TABLE IF NOT EXISTS docs (
        key TEXT PRIMARY KEY, content_type TEXT NOT NULL, size INTEGER NOT NULL,
        sha256 BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL, content BLOB NOT NULL) STRICT;";
const RAW_PUT: &str = "INSERT INTO docs(key, content_type, size, sha256, created_at, updated_at, \
     version, content) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6) \
     ON CONFLICT(key) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, \
     updated_at = excluded.updated_at, version = version + 1, content = excluded.content";

impl RawDocs {
    /// A new database file at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch(RAW_DDL)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Self { conn })
    }

    fn put(conn: &Connection, key: &str, bytes: &[u8], now: i64) -> Result<()> {
        let sha = Sha256::digest(bytes);
        conn.prepare_cached(RAW_PUT)?.execute(params![
            key,
            guess_content_type(key),
            bytes.len() as i64,
            &sha[..],
            now,
            bytes
        ])?;
        Ok(())
    }

    fn count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM docs", [], |r| r.get::<_, i64>(0))?
            .try_into()?)
    }

    /// Every small document in one transaction.
    pub fn load(&mut self, data: &DocData) -> Result<Measured> {
        let mut m = timed(|| {
            let tx = self.conn.transaction()?;
            let now = Timestamp::now().as_micros();
            for (key, bytes) in &data.load {
                Self::put(&tx, key, bytes, now)?;
            }
            tx.commit()?;
            Ok((data.load.len() as u64, None))
        })?;
        m.checksum = Some(self.count()?);
        Ok(m)
    }

    /// Random reads.
    pub fn reads(&mut self, data: &DocData) -> Result<Measured> {
        let conn = &self.conn;
        timed(|| {
            let mut sum = 0;
            let mut statement = conn.prepare_cached("SELECT content FROM docs WHERE key = ?1")?;
            for key in &data.reads {
                let bytes: Vec<u8> = statement
                    .query_row([key], |r| r.get(0))
                    .optional()?
                    .with_context(|| format!("no document {key}"))?;
                sum += bytes.len() as u64;
            }
            Ok((data.reads.len() as u64, Some(sum)))
        })
    }

    /// Every folder in keyset pages, with the metadata of each entry.
    pub fn list(&mut self, data: &DocData) -> Result<Measured> {
        let conn = &self.conn;
        timed(|| {
            let (mut count, mut sum) = (0u64, 0u64);
            let mut statement = conn.prepare_cached(
                "SELECT key, content_type, size, sha256, created_at, updated_at, version \
                 FROM docs WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
            )?;
            for prefix in &data.prefixes {
                // Keys in the folder sort after `prefix` and before its end ('/' + 1 = '0').
                let end = format!("{}0", &prefix[..prefix.len() - 1]);
                let mut after = prefix.clone();
                loop {
                    let mut rows = statement.query(params![after, end, LIST_PAGE as i64])?;
                    let mut got = 0;
                    while let Some(row) = rows.next()? {
                        let key: String = row.get(0)?;
                        let _content_type: String = row.get(1)?;
                        let size: i64 = row.get(2)?;
                        let sha: Vec<u8> = row.get(3)?;
                        let _times: (i64, i64, i64) = (row.get(4)?, row.get(5)?, row.get(6)?);
                        if Sha256Digest::from_slice(&sha).is_none() {
                            bail!("a bad digest for {key}");
                        }
                        sum += u64::try_from(size)?;
                        after = key;
                        got += 1;
                    }
                    count += got;
                    if got < LIST_PAGE as u64 {
                        break;
                    }
                }
            }
            Ok((count, Some(count + sum)))
        })
    }

    /// One document per durable transaction.
    pub fn commits(&mut self, docs: &[(String, Vec<u8>)]) -> Result<Measured> {
        let conn = &self.conn;
        let mut m = timed(|| {
            for (key, bytes) in docs {
                Self::put(conn, key, bytes, Timestamp::now().as_micros())?;
            }
            Ok((docs.len() as u64, None))
        })?;
        m.checksum = Some(self.count()?);
        Ok(m)
    }

    /// The large value streamed in through incremental blob I/O. SQLite rewrites a
    /// whole row on any `UPDATE`, so a digest stored after the bytes would read and
    /// rewrite all of them: the baseline hashes the source in a first pass (as a
    /// program holding a file can), then inserts the row with its digest and a
    /// `zeroblob` and writes the bytes into it.
    pub fn stream_write(&mut self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let size = data.stream_bytes;
            let mut piece = vec![0u8; PIECE];
            let mut hash = Sha256::new();
            let mut source = data.large_value();
            loop {
                let n = source.read(&mut piece)?;
                if n == 0 {
                    break;
                }
                hash.update(&piece[..n]);
            }
            let tx = self.conn.transaction()?;
            let now = Timestamp::now().as_micros();
            tx.execute(
                "INSERT INTO docs(key, content_type, size, sha256, created_at, updated_at, \
                 version, content) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, zeroblob(?3))",
                params![
                    STREAM_KEY,
                    guess_content_type(STREAM_KEY),
                    size as i64,
                    &hash.finalize()[..],
                    now
                ],
            )?;
            let row = tx.last_insert_rowid();
            {
                let mut blob = tx.blob_open(MAIN_DB, "docs", "content", row, false)?;
                let mut source = data.large_value();
                loop {
                    let n = source.read(&mut piece)?;
                    if n == 0 {
                        break;
                    }
                    blob.write_all(&piece[..n])?;
                }
            }
            tx.commit()?;
            Ok((size, Some(size)))
        })
    }

    /// The large value streamed out through incremental blob I/O.
    pub fn stream_read(&mut self) -> Result<Measured> {
        let conn = &self.conn;
        timed(|| {
            let tx = conn.unchecked_transaction()?;
            let row: i64 =
                tx.query_row("SELECT rowid FROM docs WHERE key = ?1", [STREAM_KEY], |r| {
                    r.get(0)
                })?;
            let mut blob = tx.blob_open(MAIN_DB, "docs", "content", row, true)?;
            let mut sink = Sampler::default();
            let mut piece = vec![0u8; PIECE];
            loop {
                let n = blob.read(&mut piece)?;
                if n == 0 {
                    break;
                }
                sink.write_all(&piece[..n])?;
            }
            drop(blob);
            tx.finish()?;
            Ok((sink.at, Some(sink.checksum())))
        })
    }
}

/// The bare-file baseline: each document a file under its key in a folder, written
/// as a durable program would — temporary file, fsync, rename, folder fsync.
pub struct FileDocs {
    root: PathBuf,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl FileDocs {
    /// A new folder at `root`.
    pub fn create(root: &Path) -> Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn temp(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    /// Writes `bytes` to the temporary file and syncs it.
    fn write_temp(&self, mut bytes: impl Read) -> io::Result<u64> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.temp())?;
        let n = io::copy(&mut bytes, &mut file)?;
        file.sync_all()?;
        Ok(n)
    }

    /// Renames the temporary file to `key` (its folder made first) and syncs the folder.
    fn place(&self, key: &str) -> io::Result<()> {
        let target = self.root.join(key);
        let dir = target.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        fs::rename(self.temp(), &target)?;
        sync_dir(dir)
    }

    fn count(&self) -> io::Result<u64> {
        let mut n = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    stack.push(entry.path());
                } else {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Every small document durably: each written and synced, renamed, then every
    /// folder synced once (what a batch without a journal needs at least).
    pub fn load(&mut self, data: &DocData) -> Result<Measured> {
        let mut m = timed(|| {
            let mut dirs: Vec<PathBuf> = Vec::new();
            for (key, bytes) in &data.load {
                let target = self.root.join(key);
                let dir = target.parent().unwrap_or(&self.root).to_owned();
                fs::create_dir_all(&dir)?;
                let temp = dir.join(".tmp-load");
                let mut file = File::create(&temp)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                fs::rename(&temp, &target)?;
                if dirs.last() != Some(&dir) {
                    dirs.push(dir);
                }
            }
            for dir in &dirs {
                sync_dir(dir)?;
            }
            sync_dir(&self.root.join("notes"))?;
            Ok((data.load.len() as u64, None))
        })?;
        m.checksum = Some(self.count()?);
        Ok(m)
    }

    /// Random reads of whole files.
    pub fn reads(&mut self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let mut sum = 0;
            for key in &data.reads {
                sum += fs::read(self.root.join(key))?.len() as u64;
            }
            Ok((data.reads.len() as u64, Some(sum)))
        })
    }

    /// Each folder's entries, sorted, with their sizes (a directory listing and a
    /// `stat` per file; pages make no sense for a bare folder).
    pub fn list(&mut self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let (mut count, mut sum) = (0u64, 0u64);
            for prefix in &data.prefixes {
                let mut entries: Vec<(String, u64)> = Vec::new();
                for entry in fs::read_dir(self.root.join(prefix))? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    entries.push((name, entry.metadata()?.len()));
                }
                entries.sort();
                count += entries.len() as u64;
                sum += entries.iter().map(|(_, n)| n).sum::<u64>();
            }
            Ok((count, Some(count + sum)))
        })
    }

    /// One document per durable write.
    pub fn commits(&mut self, docs: &[(String, Vec<u8>)]) -> Result<Measured> {
        let mut m = timed(|| {
            for (key, bytes) in docs {
                self.write_temp(&bytes[..])?;
                self.place(key)?;
            }
            Ok((docs.len() as u64, None))
        })?;
        m.checksum = Some(self.count()?);
        Ok(m)
    }

    /// The large value streamed into a file durably.
    pub fn stream_write(&mut self, data: &DocData) -> Result<Measured> {
        timed(|| {
            let source = io::BufReader::with_capacity(PIECE, data.large_value());
            let n = self.write_temp(source)?;
            self.place(STREAM_KEY)?;
            Ok((n, Some(n)))
        })
    }

    /// The large value streamed out of its file.
    pub fn stream_read(&mut self) -> Result<Measured> {
        timed(|| {
            let file = File::open(self.root.join(STREAM_KEY))?;
            let mut reader = io::BufReader::with_capacity(PIECE, file);
            let mut sink = Sampler::default();
            loop {
                let buf = reader.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let n = buf.len();
                sink.write_all(buf)?;
                reader.consume(n);
            }
            Ok((sink.at, Some(sink.checksum())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_does_not_depend_on_how_bytes_are_cut() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Sampler::default();
        whole.write_all(&bytes).unwrap();
        let mut cut = Sampler::default();
        for piece in bytes.chunks(777) {
            cut.write_all(piece).unwrap();
        }
        assert_eq!(whole.checksum(), cut.checksum());
        assert_ne!(whole.checksum(), Sampler::default().checksum());
    }

    #[test]
    fn the_large_value_has_its_length_and_is_the_same_each_time() {
        let data = DocData::generate(10, 5, 2, 1, 7);
        let mut a = Vec::new();
        data.large_value().read_to_end(&mut a).unwrap();
        let mut b = Vec::new();
        io::copy(&mut data.large_value(), &mut b).unwrap();
        assert_eq!(a.len(), 1 << 20);
        assert_eq!(a, b);
        assert_eq!(data.prefixes, ["notes/000/"]);
    }
}
