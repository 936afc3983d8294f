//! Durable file writing and hashing for backups.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};
use sha2::{Digest, Sha256};

use super::FileEntry;

/// Bytes gathered before they are hashed and written at once.
const CHUNK: usize = 1 << 18;

/// Writes a file while hashing and counting its bytes.
///
/// Bytes are gathered into a buffer of [`CHUNK`] and hashed and written a whole
/// buffer at a time (hashing a line at a time cost the hasher's own buffering on
/// every line).
pub(crate) struct HashingWriter {
    name: String,
    path: PathBuf,
    file: File,
    hasher: Sha256,
    size: u64,
    /// What is not hashed and written yet.
    pending: Vec<u8>,
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
            file,
            hasher: Sha256::new(),
            size: 0,
            pending: Vec::new(),
        })
    }

    /// Hashes and writes what is pending.
    fn drain(&mut self) -> std::io::Result<()> {
        self.hasher.update(&self.pending);
        self.file.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
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

    /// Writes what is pending and syncs the file; its manifest entry.
    pub(crate) fn finish(mut self) -> Result<FileEntry> {
        self.drain().map_err(|e| Error::io(&self.path, e))?;
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        Ok(FileEntry {
            name: self.name,
            size: self.size,
            sha256: hex(&self.hasher.finalize()),
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
