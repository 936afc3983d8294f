//! Writing a pack file and its index (pack version 2, index version 2), objects whole
//! (no deltas): what a large commit writes instead of thousands of loose files, and
//! what `optimize` writes when no `git` is at hand to repack.
//!
//! Format (git's `Documentation/gitformat-pack.txt`): `PACK`, version 2, the object
//! count; per object a header (type and size, 7 bits a byte) and its zlib-compressed
//! content; the SHA-1 of everything before. The index: `\377tOc`, version 2, a
//! 256-entry fan-out table, the sorted ids, a CRC-32 of each object's packed bytes,
//! 4-byte offsets (an 8-byte table for offsets of 2 GiB and more), the pack's
//! checksum, and the SHA-1 of the index itself.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use gix::ObjectId;
use gix::objs::Kind;
use kgstore_core::{Error, Result};

use crate::fsio;
use crate::objects::{deflate, git_error, par_each};

/// The type code of an object kind inside a pack.
fn type_code(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// A packed object's header: type and size, little-endian base-128.
fn entry_header(kind: Kind, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut byte = (type_code(kind) << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: gix::hash::Hasher,
    written: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: gix::hash::hasher(gix::hash::Kind::Sha1),
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn finish(self) -> Result<(W, ObjectId)> {
        let id = self
            .hasher
            .try_finalize()
            .map_err(|e| git_error("hashing a pack", e))?;
        Ok((self.inner, id))
    }
}

/// Writes `objects` as one pack with its index into `pack_dir`, synced when `sync`.
pub(crate) fn write_pack(
    pack_dir: &Path,
    objects: &[(ObjectId, Kind, Vec<u8>)],
    sync: bool,
) -> Result<()> {
    fsio::ensure_dir(pack_dir)?;
    // Compress in parallel, a slice per thread; keep the order.
    let mut compressed: Vec<Vec<u8>> = vec![Vec::new(); objects.len()];
    {
        let slots: Vec<(usize, &mut Vec<u8>)> = compressed.iter_mut().enumerate().collect();
        let slots = std::sync::Mutex::new(slots);
        let work: Vec<usize> =
            (0..std::thread::available_parallelism().map_or(2, |n| n.get())).collect();
        par_each(&work, work.len(), |_| {
            loop {
                let next = slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                let Some((i, slot)) = next else {
                    return Ok(());
                };
                let (_, _, data) = &objects[i];
                *slot = deflate(&[], data).map_err(|e| git_error("compressing an object", e))?;
            }
        })?;
    }
    let temp_pack = fsio::temp_path(pack_dir);
    let file = File::create_new(&temp_pack).map_err(|e| Error::io(&temp_pack, e))?;
    let mut pack = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    let mut entries: Vec<(ObjectId, u32, u64)> = Vec::with_capacity(objects.len());
    let written = (|| -> std::io::Result<()> {
        pack.put(b"PACK")?;
        pack.put(&2u32.to_be_bytes())?;
        pack.put(&(objects.len() as u32).to_be_bytes())?;
        for ((id, kind, data), body) in objects.iter().zip(&compressed) {
            let offset = pack.written;
            let header = entry_header(*kind, data.len() as u64);
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            crc.update(body);
            pack.put(&header)?;
            pack.put(body)?;
            entries.push((*id, crc.finalize(), offset));
        }
        Ok(())
    })();
    let cleanup = |e: Error| {
        let _ = std::fs::remove_file(&temp_pack);
        e
    };
    written.map_err(|e| cleanup(Error::io(&temp_pack, e)))?;
    let (mut writer, checksum) = pack.finish().map_err(cleanup)?;
    writer
        .write_all(checksum.as_bytes())
        .and_then(|()| writer.flush())
        .map_err(|e| cleanup(Error::io(&temp_pack, e)))?;
    let file = writer
        .into_inner()
        .map_err(|e| cleanup(Error::io(&temp_pack, e.into_error())))?;
    if sync {
        file.sync_all()
            .map_err(|e| cleanup(Error::io(&temp_pack, e)))?;
    }
    drop(file);

    entries.sort_by_key(|e| e.0);
    let index = index_bytes(&entries, &checksum)?;
    let temp_index = fsio::write_temp(pack_dir, &index, sync).map_err(cleanup)?;
    let name = format!("pack-{}", checksum.to_hex());
    let pack_path = pack_dir.join(format!("{name}.pack"));
    let index_path = pack_dir.join(format!("{name}.idx"));
    // The pack first: readers look for packs through their indexes.
    fsio::rename(&temp_pack, &pack_path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp_index);
    })?;
    fsio::rename(&temp_index, &index_path)?;
    if sync {
        fsio::sync_dir(pack_dir)?;
    }
    Ok(())
}

/// The bytes of a version-2 index for entries sorted by id.
fn index_bytes(entries: &[(ObjectId, u32, u64)], pack_checksum: &ObjectId) -> Result<Vec<u8>> {
    let mut out = Hashing::new(Vec::with_capacity(entries.len() * 32 + 1100));
    let io = |e: std::io::Error| git_error("writing a pack index", e);
    out.put(b"\xfftOc").map_err(io)?;
    out.put(&2u32.to_be_bytes()).map_err(io)?;
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        out.put(&total.to_be_bytes()).map_err(io)?;
    }
    for (id, _, _) in entries {
        out.put(id.as_bytes()).map_err(io)?;
    }
    for (_, crc, _) in entries {
        out.put(&crc.to_be_bytes()).map_err(io)?;
    }
    let mut large = Vec::new();
    for (_, _, offset) in entries {
        if *offset < 0x8000_0000 {
            out.put(&(*offset as u32).to_be_bytes()).map_err(io)?;
        } else {
            out.put(&(0x8000_0000u32 | large.len() as u32).to_be_bytes())
                .map_err(io)?;
            large.push(*offset);
        }
    }
    for offset in large {
        out.put(&offset.to_be_bytes()).map_err(io)?;
    }
    out.put(pack_checksum.as_bytes()).map_err(io)?;
    let (mut bytes, id) = out.finish()?;
    bytes.extend_from_slice(id.as_bytes());
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_encode_type_and_size() {
        assert_eq!(entry_header(Kind::Blob, 5), vec![0x35]);
        assert_eq!(entry_header(Kind::Commit, 16), vec![0x90, 0x01]);
        assert_eq!(entry_header(Kind::Tree, 300), vec![0xac, 0x12]);
    }
}
