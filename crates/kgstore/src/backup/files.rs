//! Durable file writing and hashing for backups.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use kgstore_core::{Error, Result};
use sha2::{Digest, Sha256};

use super::FileEntry;

/// Bytes gathered before they are hashed and written at once.
const CHUNK: usize = 1 << 18;
/// Chunks a [`HashingWriter::create_beside`] writer has at most (one filling, the
/// others with its hashing thread).
const CHUNKS: usize = 3;

/// Bytes a [`HashingWriter::create_beside`] writer writes between two early syncs
/// ([`EarlySync`]).
const EARLY_SYNC: usize = 16 << 20;

/// A large file's bytes written out to the disk while the file is still being
/// written: every [`EARLY_SYNC`] bytes its hashing thread asks a thread of its own
/// to `fdatasync` what is written so far (a request arriving while one runs is
/// served by the next), so that the disk works beside the scan and the file's
/// final sync ([`HashingWriter::finish`]) has only the rest to wait for. Without
/// it the kernel would start writing the file out only at that final sync, all
/// of it then. Durability is unchanged: the final sync still covers the whole
/// file.
struct EarlySync {
    /// Requests to the thread (`None`: no thread could be started, nothing is
    /// synced early).
    requests: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl EarlySync {
    fn start(file: &File) -> Self {
        let none = Self {
            requests: None,
            thread: None,
        };
        let Ok(copy) = file.try_clone() else {
            return none;
        };
        // One request waits at most: more arriving meanwhile are one sync.
        let (requests, received) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("kgstore-backup-early-sync".to_owned())
            .spawn(move || {
                for () in received {
                    copy.sync_data()?;
                    #[cfg(test)]
                    tests::EARLY_SYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            });
        match thread {
            Ok(thread) => Self {
                requests: Some(requests),
                thread: Some(thread),
            },
            Err(_) => none,
        }
    }

    /// Asks for a sync of what is written so far, unless one is already waiting.
    fn request(&mut self) {
        if let Some(requests) = &self.requests {
            // Full: a sync is already waiting to start. Gone: it failed, which
            // `finish` reports.
            let _ = requests.try_send(());
        }
    }

    /// Waits for the thread; the error of a sync that failed.
    fn finish(mut self) -> std::io::Result<()> {
        self.requests.take();
        self.thread.take().map_or(Ok(()), joined)
    }
}

impl Drop for EarlySync {
    /// Dropped unfinished (the file's writing failed): stops its thread and waits.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes a file while hashing and counting its bytes.
///
/// Bytes are gathered into a buffer of [`CHUNK`] and hashed and written a whole
/// buffer at a time (hashing a line at a time cost the hasher's own buffering on
/// every line) — on the calling thread, or, for a large file
/// ([`HashingWriter::create_beside`]), on a thread of its own while the caller
/// fills the next buffer.
pub(crate) struct HashingWriter {
    name: String,
    path: PathBuf,
    sink: Sink,
    size: u64,
    /// What is not hashed and written yet.
    pending: Vec<u8>,
}

/// Where a [`HashingWriter`]'s full buffers go.
enum Sink {
    /// Hashed and written on the calling thread.
    Here { file: File, hasher: Sha256 },
    /// Hashed and written by a thread of their own (which hands each buffer back
    /// to be filled again), the file and its digest its result.
    Beside {
        /// Full buffers to the thread (`None` once closed).
        full: Option<mpsc::Sender<Vec<u8>>>,
        /// Empty buffers back from it.
        empty: mpsc::Receiver<Vec<u8>>,
        /// Buffers made so far (at most [`CHUNKS`]).
        made: usize,
        /// The thread (`None` once joined).
        worker: Option<Worker>,
    },
}

/// A hashing thread: the file and its digest, or the error it stopped at.
type Worker = JoinHandle<std::io::Result<(File, Sha256)>>;

impl Drop for HashingWriter {
    /// A writer dropped unfinished (an error ended the backup) stops its thread
    /// and waits for it, so that nothing writes into the folder afterwards.
    fn drop(&mut self) {
        if let Sink::Beside { full, worker, .. } = &mut self.sink {
            full.take();
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}

impl HashingWriter {
    /// Creates `folder/name`, which must not exist.
    pub(crate) fn create(folder: &Path, name: &str) -> Result<Self> {
        let path = folder.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            name: name.to_owned(),
            path,
            sink: Sink::Here {
                file,
                hasher: Sha256::new(),
            },
            size: 0,
            pending: Vec::new(),
        })
    }

    /// [`HashingWriter::create`] for a large file: its bytes are hashed and written
    /// on a thread of its own, beside the caller's work of producing them (on the
    /// calling thread if no thread can be started).
    pub(crate) fn create_beside(folder: &Path, name: &str) -> Result<Self> {
        let mut writer = Self::create(folder, name)?;
        let Sink::Here { file, .. } = &writer.sink else {
            return Ok(writer);
        };
        let Ok(mut file) = file.try_clone() else {
            return Ok(writer);
        };
        let (full, full_rx) = mpsc::channel::<Vec<u8>>();
        let (empty_tx, empty) = mpsc::channel::<Vec<u8>>();
        let worker = std::thread::Builder::new()
            .name("kgstore-backup-hash".to_owned())
            .spawn(move || {
                let mut hasher = Sha256::new();
                let mut early = EarlySync::start(&file);
                let mut unsynced = 0;
                for mut chunk in full_rx {
                    hasher.update(&chunk);
                    file.write_all(&chunk)?;
                    unsynced += chunk.len();
                    if unsynced >= EARLY_SYNC {
                        early.request();
                        unsynced = 0;
                    }
                    chunk.clear();
                    // The writer may be gone (an error ended the backup).
                    let _ = empty_tx.send(chunk);
                }
                early.finish()?;
                Ok((file, hasher))
            });
        if let Ok(worker) = worker {
            writer.sink = Sink::Beside {
                full: Some(full),
                empty,
                made: 1,
                worker: Some(worker),
            };
            writer.pending.reserve(CHUNK + (1 << 12));
        }
        Ok(writer)
    }

    /// Hashes and writes what is pending (hands it to the hashing thread).
    fn drain(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Here { file, hasher } => {
                hasher.update(&self.pending);
                file.write_all(&self.pending)?;
                self.pending.clear();
                return Ok(());
            }
            Sink::Beside {
                full, empty, made, ..
            } => {
                let next = match empty.try_recv() {
                    Ok(buffer) => buffer,
                    Err(_) if *made < CHUNKS => {
                        *made += 1;
                        Vec::with_capacity(CHUNK + (1 << 12))
                    }
                    // Every buffer is with the thread: wait for one (none comes
                    // back if it stopped at an error, which the send below reports).
                    Err(_) => empty.recv().unwrap_or_default(),
                };
                let chunk = std::mem::replace(&mut self.pending, next);
                if full.as_ref().is_some_and(|full| full.send(chunk).is_ok()) {
                    return Ok(());
                }
            }
        }
        // The thread stopped: at the error it returns.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| std::io::Error::other("the thread hashing the file stopped")))
    }

    /// Closes the hashing thread's buffers and waits for it: the file and its
    /// digest, or the error it stopped at.
    fn join(&mut self) -> std::io::Result<(File, Sha256)> {
        let Sink::Beside { full, worker, .. } = &mut self.sink else {
            return Err(std::io::Error::other("no hashing thread"));
        };
        full.take();
        match worker.take() {
            Some(worker) => worker
                .join()
                .map_err(|_| std::io::Error::other("the thread hashing the file panicked"))?,
            None => Err(std::io::Error::other("the thread hashing the file stopped")),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
        if self.pending.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.push(bytes).map_err(|e| Error::io(&self.path, e))
    }

    /// Writes `text` (one line's JSON, without its newline) and a newline.
    pub(crate) fn write_line(&mut self, text: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(text);
        self.pending.push(b'\n');
        self.size += text.len() as u64 + 1;
        if self.pending.len() >= CHUNK {
            self.drain().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Writes a value as one line of compact JSON, encoded straight into the buffer.
    pub(crate) fn write_json_line(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let before = self.pending.len();
        let encoded = serde_json::to_writer(&mut self.pending, value);
        if let Err(e) = encoded {
            self.pending.truncate(before);
            return Err(Error::backend(
                "backup",
                format!("cannot encode a line of {}: {e}", self.name),
            ));
        }
        self.pending.push(b'\n');
        self.size += (self.pending.len() - before) as u64;
        if self.pending.len() >= CHUNK {
            self.drain().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Writes a value as pretty JSON followed by a newline.
    pub(crate) fn write_pretty(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::backend("backup", format!("cannot encode {}: {e}", self.name)))?;
        text.push(b'\n');
        self.write_bytes(&text)
    }

    /// Writes what is pending and starts syncing the file among `syncs` (the
    /// file is durable once they have been waited for); its manifest entry.
    pub(crate) fn finish(mut self, syncs: &mut Syncs) -> Result<FileEntry> {
        self.drain().map_err(|e| Error::io(&self.path, e))?;
        let digest = match &mut self.sink {
            Sink::Here { file, hasher } => {
                syncs.start(&self.path, file)?;
                std::mem::take(hasher).finalize()
            }
            Sink::Beside { .. } => {
                let (file, hasher) = self.join().map_err(|e| Error::io(&self.path, e))?;
                syncs.start(&self.path, &file)?;
                hasher.finalize()
            }
        };
        Ok(FileEntry {
            name: std::mem::take(&mut self.name),
            size: self.size,
            sha256: hex(&digest),
        })
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Pending bytes are hashed and written together; `finish` writes the rest.
        Ok(())
    }
}

/// The outcome of a thread that syncs a file (a panic is an error).
fn joined(thread: JoinHandle<std::io::Result<()>>) -> std::io::Result<()> {
    thread
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the thread syncing it panicked")))
}

/// File syncs running at once, at most ([`Syncs`]).
const SYNCS: usize = 8;

/// Data files being synced, each on a thread of its own, while the backup goes
/// on: a file's `fsync` waits for the disk, so the node file's runs beside the
/// edge scan and the small files' beside each other, instead of one after the
/// other on the calling thread. [`Syncs::wait`] waits for all of them (before
/// the folder is synced and renamed: a backup is durable exactly as before);
/// dropped, it waits too, so that no sync outlives a failed backup. At most
/// [`SYNCS`] run at once (a backup of many documents waits for the oldest).
#[derive(Default)]
pub(crate) struct Syncs {
    running: std::collections::VecDeque<(PathBuf, JoinHandle<std::io::Result<()>>)>,
}

impl Syncs {
    /// Starts syncing `file` (at `path`) on a thread of its own, or syncs it here
    /// when no thread can be started.
    pub(crate) fn start(&mut self, path: &Path, file: &File) -> Result<()> {
        if self.running.len() >= SYNCS {
            self.wait_oldest()?;
        }
        let Ok(copy) = file.try_clone() else {
            return file.sync_all().map_err(|e| Error::io(path, e));
        };
        let spawned = std::thread::Builder::new()
            .name("kgstore-backup-sync".to_owned())
            .spawn(move || copy.sync_all());
        match spawned {
            Ok(thread) => self.running.push_back((path.to_path_buf(), thread)),
            Err(_) => file.sync_all().map_err(|e| Error::io(path, e))?,
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        let Some((path, thread)) = self.running.pop_front() else {
            return Ok(());
        };
        joined(thread).map_err(|e| Error::io(&path, e))
    }

    /// Waits for every sync started; the first failure (all are waited for).
    pub(crate) fn wait(mut self) -> Result<()> {
        let mut outcome = Ok(());
        while !self.running.is_empty() {
            let done = self.wait_oldest();
            if outcome.is_ok() {
                outcome = done;
            }
        }
        outcome
    }
}

impl Drop for Syncs {
    fn drop(&mut self) {
        while !self.running.is_empty() {
            let _ = self.wait_oldest();
        }
    }
}

/// Size and SHA-256 of a file, reading it in blocks; `progress` gets bytes read so far.
pub(crate) fn hash_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<(u64, String)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
        progress(size);
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Syncs a folder, so that renames and new entries in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Replaces `path` with `bytes` atomically and durably: temp file, sync, rename, sync folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&temp, e))?;
    drop(file);
    fs::rename(&temp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(folder)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure should panic

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Early syncs run ([`EarlySync`]), in every test of this process.
    pub(super) static EARLY_SYNCS: AtomicUsize = AtomicUsize::new(0);

    /// A file hashed on its own thread has the bytes, size and digest of one
    /// hashed on the calling thread, over many buffers' worth of lines (more
    /// than the writer's buffers, so they go back and forth).
    #[test]
    fn hashing_beside_gives_what_hashing_here_gives() {
        let dir = tempfile::tempdir().unwrap();
        let mut here = HashingWriter::create(dir.path(), "here").unwrap();
        let mut beside = HashingWriter::create_beside(dir.path(), "beside").unwrap();
        assert!(matches!(beside.sink, Sink::Beside { .. }));
        for i in 0..40_000u32 {
            let line = format!(
                "{{\"line\":{i},\"text\":\"{}\"}}",
                "x".repeat((i % 97) as usize)
            );
            here.write_line(line.as_bytes()).unwrap();
            beside.write_line(line.as_bytes()).unwrap();
        }
        let mut syncs = Syncs::default();
        let (here, beside) = (
            here.finish(&mut syncs).unwrap(),
            beside.finish(&mut syncs).unwrap(),
        );
        syncs.wait().unwrap();
        assert!(here.size > (CHUNK * (CHUNKS + 2)) as u64, "{}", here.size);
        assert_eq!((here.size, &here.sha256), (beside.size, &beside.sha256));
        let bytes = fs::read(dir.path().join("beside")).unwrap();
        assert_eq!(bytes, fs::read(dir.path().join("here")).unwrap());
        assert_eq!(
            hash_file(&dir.path().join("beside"), |_| {}).unwrap().1,
            beside.sha256
        );
    }

    /// A file larger than [`EARLY_SYNC`] several times over, written beside with
    /// its early syncs running meanwhile, holds every byte, in order, with the
    /// size and digest its writer reports.
    #[test]
    fn a_file_synced_early_while_written_holds_every_byte() {
        let early_before = EARLY_SYNCS.load(Ordering::Relaxed);
        let dir = tempfile::tempdir().unwrap();
        let mut beside = HashingWriter::create_beside(dir.path(), "big").unwrap();
        let line = "y".repeat(4095);
        let lines = 3 * EARLY_SYNC / 4096 + 17;
        for i in 0..lines {
            let mut text = format!("{i:08}").into_bytes();
            text.extend_from_slice(&line.as_bytes()[8..]);
            beside.write_line(&text).unwrap();
        }
        let mut syncs = Syncs::default();
        let entry = beside.finish(&mut syncs).unwrap();
        syncs.wait().unwrap();
        // Three requests, at 16, 32 and 48 MiB: the first starts a sync, the
        // second waits for it, a third may join the second; other tests' files
        // only add to the count.
        assert!(EARLY_SYNCS.load(Ordering::Relaxed) - early_before >= 2);
        assert_eq!(entry.size, (lines * 4096) as u64);
        let bytes = fs::read(dir.path().join("big")).unwrap();
        assert_eq!(bytes.len() as u64, entry.size);
        for (i, line) in bytes.chunks(4096).enumerate() {
            assert_eq!(&line[..8], format!("{i:08}").as_bytes());
        }
        assert_eq!(
            hash_file(&dir.path().join("big"), |_| {}).unwrap().1,
            entry.sha256
        );
    }
}
