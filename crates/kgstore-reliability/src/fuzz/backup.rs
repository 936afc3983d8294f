//! The backup manifest and JSONL reader, through `verify` and `restore`.

use std::fs;

use kgstore::backup::{
    self, Counts, EDGES_FILE, FORMAT, FORMAT_VERSION, FileEntry, MANIFEST_FILE, Manifest,
    NODES_FILE, RestoreMode, SCHEMAS_FILE,
};
use kgstore::{Store, Timestamp};
use sha2::{Digest, Sha256};

use crate::snapshot::Snapshot;

use super::{Finding, Input, Outcome};

const TARGET: &str = "backup_dir";

/// Separates the parts of a [`backup_dir`] input.
pub const SEPARATOR: &[u8] = b"\xff\xfe\xfd";

/// Flag: write a manifest that matches the data files instead of the given bytes.
pub const FIX_MANIFEST: u8 = 1;
/// Flag: leave `schemas.json` out.
pub const DROP_SCHEMAS: u8 = 2;
/// Flag: add a file the manifest does not list.
pub const EXTRA_FILE: u8 = 4;

fn fail(message: String) -> Outcome {
    Err(Finding::new(TARGET, message))
}

fn io(what: &str, e: impl std::fmt::Display) -> Finding {
    Finding::new(TARGET, format!("cannot {what}: {e}"))
}

/// Builds a [`backup_dir`] input: a flags byte, then the manifest, nodes, edges
/// and schemas files separated by [`SEPARATOR`].
pub fn assemble_backup_input(
    flags: u8,
    manifest: &[u8],
    nodes: &[u8],
    edges: &[u8],
    schemas: &[u8],
) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, part) in [manifest, nodes, edges, schemas].into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEPARATOR);
        }
        out.extend_from_slice(part);
    }
    out
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 3 {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts.resize(4, &[]);
    parts
}

fn lines(bytes: &[u8]) -> u64 {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

/// A manifest that matches the data files as written.
fn matching_manifest(files: &[(&str, &[u8])]) -> Result<Vec<u8>, Finding> {
    let mut counts = Counts::default();
    let mut entries = Vec::new();
    for (name, bytes) in files {
        match *name {
            NODES_FILE => counts.nodes = lines(bytes),
            EDGES_FILE => counts.edges = lines(bytes),
            SCHEMAS_FILE => {
                counts.schemas = serde_json::from_slice::<Vec<serde_json::Value>>(bytes)
                    .map_or(0, |v| v.len() as u64);
            }
            _ => {}
        }
        let digest = Sha256::digest(bytes);
        entries.push(FileEntry {
            name: (*name).to_owned(),
            size: bytes.len() as u64,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        kgstore_version: "0.1.0".to_owned(),
        source_backend: "memory".to_owned(),
        created_at: Timestamp::EPOCH,
        counts,
        files: entries,
    };
    serde_json::to_vec_pretty(&manifest).map_err(|e| io("encode a manifest", e))
}

/// Writes the bytes as a backup folder's files and runs `verify` and `restore`
/// on it. Errors are fine, panics are not; and
/// - a backup that verifies restores (into a memory store), with the counts
///   `verify` found, into a store that passes `check`;
/// - a backup that does not verify is refused by `restore`;
/// - the restored store backs up into a backup that verifies and restores into
///   the same content.
///
/// The first byte holds flags ([`FIX_MANIFEST`] writes a matching manifest so
/// that the data files are parsed, [`DROP_SCHEMAS`], [`EXTRA_FILE`]); the rest
/// is the manifest, `nodes.jsonl`, `edges.jsonl` and `schemas.json` separated by
/// [`SEPARATOR`] (see [`assemble_backup_input`]).
pub fn backup_dir(data: &[u8]) -> Outcome {
    let mut input = Input::new(data);
    let flags = input.byte();
    let parts = split(input.rest());
    let scratch = super::scratch(TARGET)?;
    let dir = scratch.path().join("backup");
    fs::create_dir(&dir).map_err(|e| io("make the backup folder", e))?;
    let mut files: Vec<(&str, &[u8])> = vec![(NODES_FILE, parts[1]), (EDGES_FILE, parts[2])];
    if flags & DROP_SCHEMAS == 0 {
        files.push((SCHEMAS_FILE, parts[3]));
    }
    for (name, bytes) in &files {
        fs::write(dir.join(name), bytes).map_err(|e| io("write a data file", e))?;
    }
    let manifest = if flags & FIX_MANIFEST != 0 {
        matching_manifest(&files)?
    } else {
        parts[0].to_vec()
    };
    fs::write(dir.join(MANIFEST_FILE), &manifest).map_err(|e| io("write the manifest", e))?;
    if flags & EXTRA_FILE != 0 {
        fs::write(dir.join("notes.txt"), b"extra").map_err(|e| io("write a file", e))?;
    }

    let Ok(verified) = backup::verify(&dir) else {
        return Ok(());
    };
    let store = Store::memory();
    let restored = backup::restore_into(&dir, &store, RestoreMode::Empty);
    let report = match (verified.is_ok(), restored) {
        (false, Ok(report)) => {
            return fail(format!(
                "a backup that does not verify ({}) was restored: {report:?}",
                verified.summary()
            ));
        }
        (false, Err(_)) => return Ok(()),
        (true, Err(e)) => {
            return fail(format!("a backup that verifies does not restore: {e}"));
        }
        (true, Ok(report)) => report,
    };
    let counts = verified.counts;
    if (report.nodes, report.edges, report.schemas) != (counts.nodes, counts.edges, counts.schemas)
    {
        return fail(format!(
            "verify counted {counts:?} but restore loaded {report:?}"
        ));
    }
    match store.check() {
        Ok(check) if check.is_ok() => {}
        other => return fail(format!("a restored store does not check: {other:?}")),
    }
    // Round trip: back the restored store up, verify, restore again.
    let again = scratch.path().join("again");
    backup::backup(&store, &again)
        .map_err(|e| Finding::new(TARGET, format!("backing a restored store up failed: {e}")))?;
    let second = backup::verify(&again).map_err(|e| io("verify the second backup", e))?;
    if !second.is_ok() {
        return fail(format!(
            "the backup of a restored store does not verify: {}",
            second.summary()
        ));
    }
    let copy = Store::memory();
    backup::restore_into(&again, &copy, RestoreMode::Empty)
        .map_err(|e| Finding::new(TARGET, format!("the second backup does not restore: {e}")))?;
    let restored = match (Snapshot::of(&store), Snapshot::of(&copy)) {
        (Ok(a), Ok(b)) if a == b => a,
        (Ok(a), Ok(b)) => {
            return fail(format!(
                "backup → restore changed the content:\n  {}",
                a.diff(&b)
            ));
        }
        (a, b) => return fail(format!("cannot read the stores: {a:?} {b:?}")),
    };
    // Every persistent backend restores the same backup into the same content.
    for url in [
        format!(
            "sqlite://{}/kg.db?durability=relaxed",
            scratch.path().display()
        ),
        format!("json://{}/kg?durability=relaxed", scratch.path().display()),
    ] {
        let target = kgstore::open(&url)
            .map_err(|e| Finding::new(TARGET, format!("cannot open {url}: {e}")))?;
        if let Err(e) = backup::restore_into(&dir, &target, RestoreMode::Empty) {
            return fail(format!(
                "a backup the memory backend restores does not restore into {url}: {e}"
            ));
        }
        let snapshot = Snapshot::of(&target)
            .map_err(|e| Finding::new(TARGET, format!("cannot read {url}: {e}")))?;
        if snapshot != restored {
            return fail(format!(
                "{url} restored other content than memory (left: {url}):\n  {}",
                snapshot.diff(&restored)
            ));
        }
    }
    Ok(())
}
