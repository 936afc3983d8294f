//! Durable file writing and hashing for backups.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Result};
use sha2::{Digest, Sha256};

use super::FileEntry;

/// Writes a file while hashing and counting its bytes.
pub(crate) struct HashingWriter {
    name: String,
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    size: u64,
    /// The line being encoded ([`HashingWriter::write_json_line`]).
    line: Vec<u8>,
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
            out: BufWriter::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
            size: 0,
            line: Vec::new(),
        })
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Writes a value as one line of compact JSON.
    /// The line is encoded into a buffer kept from line to line.
    pub(crate) fn write_json_line(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let encoded = serde_json::to_writer(&mut line, value);
        line.push(b'\n');
        let outcome = encoded
            .map_err(|e| {
                Error::backend(
                    "backup",
                    format!("cannot encode a line of {}: {e}", self.name),
                )
            })
            .and_then(|()| self.write_bytes(&line));
        self.line = line;
        outcome
    }

    /// Writes a value as pretty JSON followed by a newline.
    pub(crate) fn write_pretty(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::backend("backup", format!("cannot encode {}: {e}", self.name)))?;
        text.push(b'\n');
        self.write_bytes(&text)
    }

    /// Flushes and syncs the file; its manifest entry.
    pub(crate) fn finish(self) -> Result<FileEntry> {
        let Self {
            name,
            path,
            out,
            hasher,
            size,
            line: _,
        } = self;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok(FileEntry {
            name,
            size,
            sha256: hex(&hasher.finalize()),
        })
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(buf)?;
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
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
