//! Writing git objects durably.
//!
//! gix writes objects through a temporary file and a rename but syncs nothing, so a
//! power cut could leave an object file empty under its final name, and a later
//! write of the same object would skip it as present. kgstore writes its objects
//! itself: a commit's new objects are collected in memory ([`Pending`]), then written
//! either as loose objects (`objects/aa/bbbb…`: temporary file, `fsync`, rename, folder
//! `fsync`; an object file already there is trusted only after it decompresses to
//! the right id) or, for a large commit, as one pack (`objects/pack/pack-*.pack` and
//! its `.idx`, both synced, the index renamed last so the pack is never seen
//! without it), which is what `git fast-import` does.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::objs::{Kind, WriteTo};
use kgstore_core::{Durability, Error, Result};

use crate::fsio;
use crate::pack;

/// The objects of one commit, not yet on disk.
#[derive(Default)]
pub(crate) struct Pending {
    objects: Vec<(ObjectId, Kind, Vec<u8>)>,
    seen: HashSet<ObjectId>,
}

/// Where a repository's objects live.
#[derive(Clone, Debug)]
pub(crate) struct ObjectDir {
    pub(crate) dir: PathBuf,
}

pub(crate) fn git_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend("git", format!("{what}: {e}"))
}

/// The id of an object of `kind` with content `data`.
pub(crate) fn hash(kind: Kind, data: &[u8]) -> Result<ObjectId> {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, data)
        .map_err(|e| git_error("hashing an object", e))
}

impl Pending {
    /// Adds an object by content; its id.
    pub(crate) fn add(&mut self, kind: Kind, data: Vec<u8>) -> Result<ObjectId> {
        let id = hash(kind, &data)?;
        if self.seen.insert(id) {
            self.objects.push((id, kind, data));
        }
        Ok(id)
    }

    /// Adds a tree, commit or other object gix can serialize; its id.
    pub(crate) fn add_object(&mut self, object: &impl WriteTo) -> Result<ObjectId> {
        let mut data = Vec::with_capacity(object.size() as usize);
        object
            .write_to(&mut data)
            .map_err(|e| git_error("serializing an object", e))?;
        self.add(object.kind(), data)
    }

    /// Writes every pending object: loose, or as one pack above `pack_threshold`.
    pub(crate) fn persist(
        self,
        dir: &ObjectDir,
        durability: Durability,
        pack_threshold: usize,
    ) -> Result<()> {
        let sync = durability == Durability::Immediate;
        if self.objects.len() > pack_threshold {
            pack::write_pack(&dir.dir.join("pack"), &self.objects, sync)
        } else {
            write_loose(dir, &self.objects, sync)
        }
    }
}

impl ObjectDir {
    /// The loose path of an object.
    pub(crate) fn loose_path(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex().to_string();
        self.dir.join(&hex[..2]).join(&hex[2..])
    }
}

/// Zlib-compresses `header` followed by `data`.
pub(crate) fn deflate(header: &[u8], data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = gix::zlib::stream::deflate::Write::new(
        Vec::with_capacity(data.len() / 2 + 64),
        gix::zlib::Compression::BEST_SPEED,
    );
    out.write_all(header)?;
    out.write_all(data)?;
    out.flush()?;
    Ok(out.into_inner())
}

/// Whether the loose object file at `path` holds exactly object `id`.
fn loose_is_sound(dir: &ObjectDir, id: &ObjectId) -> bool {
    let store = gix::odb::loose::Store::at(&dir.dir, gix::hash::Kind::Sha1);
    let mut buf = Vec::new();
    match store.try_find(id, &mut buf) {
        Ok(Some(data)) => hash(data.kind, data.data).is_ok_and(|found| found == *id),
        _ => false,
    }
}

/// Writes objects as loose files, in parallel when there are several.
fn write_loose(dir: &ObjectDir, objects: &[(ObjectId, Kind, Vec<u8>)], sync: bool) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let mut fanouts: Vec<PathBuf> = objects
        .iter()
        .filter_map(|(id, _, _)| dir.loose_path(id).parent().map(Path::to_path_buf))
        .collect();
    fanouts.sort();
    fanouts.dedup();
    let mut created = false;
    for fanout in &fanouts {
        created |= fsio::ensure_dir(fanout)?;
    }
    let write_one = |(id, kind, data): &(ObjectId, Kind, Vec<u8>)| -> Result<()> {
        let path = dir.loose_path(id);
        // A file already there is kept if sound; a damaged one (a power cut before it
        // was synced) is replaced.
        if path.exists() && loose_is_sound(dir, id) {
            if sync {
                // Written by a process that may have died before syncing it.
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(&path, e))?;
            }
            return Ok(());
        }
        let header = gix::objs::encode::loose_header(*kind, data.len() as u64);
        let bytes = deflate(&header, data).map_err(|e| Error::io(&path, e))?;
        let parent = path.parent().unwrap_or(&dir.dir);
        let temp = fsio::write_temp(parent, &bytes, sync)?;
        fsio::rename(&temp, &path)
    };
    par_each(objects, if sync { 8 } else { 1 }, write_one)?;
    if sync {
        sync_dirs(&fanouts)?;
        if created {
            fsio::sync_dir(&dir.dir)?;
        }
    }
    Ok(())
}

/// Syncs several folders, in parallel.
pub(crate) fn sync_dirs(dirs: &[PathBuf]) -> Result<()> {
    par_each(dirs, 8, |d| fsio::sync_dir(d))
}

/// Runs `f` on every item, on up to `workers` threads; the first error wins.
pub(crate) fn par_each<T: Sync>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.iter().try_for_each(f);
    }
    let chunk = items.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().try_for_each(f)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(git_error("writing objects", "a thread panicked")))
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}
