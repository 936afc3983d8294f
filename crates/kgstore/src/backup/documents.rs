//! Documents in a backup (format version 2): `documents.jsonl` lists each
//! document's metadata, one per line in key order, and `values/<sha256>` holds
//! each distinct content once, named by its SHA-256 and listed in the manifest
//! with its size and digest. Values are streamed in and out, so a backup of
//! documents of any size needs bounded memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::Path;

use kgstore_core::documents::key::{ancestors, key_rule};
use kgstore_core::documents::{Sha256Digest, content_type_rule};
use kgstore_core::{
    DocumentMeta, DocumentQuery, DocumentRead, Error, ReadTx, Result, WriteTx, validate,
};

use super::files::{HashingWriter, Syncs};
use super::{FileEntry, Manifest, Phase, Progress, VerifyReport};

/// One document's metadata per line, by key.
pub const DOCUMENTS_FILE: &str = "documents.jsonl";
/// The folder of the documents' contents, each named by its SHA-256.
pub const VALUES_DIR: &str = "values";

/// Documents listed per page while writing a backup.
const PAGE: usize = 1000;

/// The name of a value file in the manifest: `values/<sha256>`.
pub fn value_name(sha256: &Sha256Digest) -> String {
    format!("{VALUES_DIR}/{sha256}")
}

/// Whether a manifest entry names a value file (`values/` and 64 hex digits).
pub fn is_value_name(name: &str) -> bool {
    name.strip_prefix(VALUES_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|hex| hex.parse::<Sha256Digest>().is_ok())
}

/// Writes `documents.jsonl` and the value files of every document of the snapshot;
/// how many documents, and the manifest entries (the list, then each value).
pub(super) fn write(
    snapshot: &ReadTx<'_>,
    folder: &Path,
    syncs: &mut Syncs,
    progress: &mut impl FnMut(Progress),
) -> Result<(u64, Vec<FileEntry>)> {
    let mut list = HashingWriter::create(folder, DOCUMENTS_FILE)?;
    let total = match snapshot.count_documents() {
        // A backend without documents: the backup holds none.
        Err(e) if e.kind() == kgstore_core::ErrorKind::Unsupported => {
            return Ok((0, vec![list.finish(syncs)?]));
        }
        other => other?,
    };
    let mut values: Vec<FileEntry> = Vec::new();
    let mut written: HashSet<Sha256Digest> = HashSet::new();
    let mut count = 0u64;
    let mut query = DocumentQuery::prefix("").limit(PAGE);
    loop {
        let page = snapshot.list_documents(&query)?;
        for meta in &page.documents {
            list.write_json_line(meta)?;
            count += 1;
            if written.insert(meta.sha256) {
                if values.is_empty() {
                    let dir = folder.join(VALUES_DIR);
                    fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                values.push(write_value(snapshot, folder, meta, syncs)?);
            }
        }
        progress(Progress {
            phase: Phase::Documents,
            done: count,
            total,
        });
        match page.next_cursor {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    if !values.is_empty() {
        super::files::sync_dir(&folder.join(VALUES_DIR))?;
    }
    let mut entries = vec![list.finish(syncs)?];
    entries.extend(values);
    Ok((count, entries))
}

/// Streams one document's bytes into `values/<sha256>`, checking the digest.
fn write_value(
    snapshot: &ReadTx<'_>,
    folder: &Path,
    meta: &DocumentMeta,
    syncs: &mut Syncs,
) -> Result<FileEntry> {
    let name = value_name(&meta.sha256);
    let mut out = HashingWriter::create(folder, &name)?;
    let mut reader = snapshot.open_document(&meta.key)?;
    io::copy(&mut reader, &mut out).map_err(|e| Error::io(folder.join(&name), e))?;
    let entry = out.finish(syncs)?;
    if entry.sha256 != meta.sha256.to_hex() || entry.size != meta.size {
        return Err(Error::corrupt(
            format!("<document '{}'>", validate::shorten(&meta.key)),
            format!(
                "its bytes ({} bytes, SHA-256 {}) are not what its metadata records ({} bytes, SHA-256 {})",
                entry.size, entry.sha256, meta.size, meta.sha256
            ),
        ));
    }
    Ok(entry)
}

/// Every line of `documents.jsonl`, with its line number; unreadable lines are problems.
fn for_each_document(
    dir: &Path,
    report: &mut VerifyReport,
    mut each: impl FnMut(usize, DocumentMeta, &mut VerifyReport) -> Result<()>,
) -> Result<()> {
    let path = dir.join(DOCUMENTS_FILE);
    let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    super::verify::each_line(
        file,
        &path,
        DOCUMENTS_FILE,
        report,
        |number, line, report| match serde_json::from_slice::<DocumentMeta>(line) {
            Ok(meta) => each(number, meta, report),
            Err(e) => {
                report.problem(
                    format!("{DOCUMENTS_FILE} line {number}"),
                    format!("is not a document's metadata: {e}"),
                );
                Ok(())
            }
        },
    )
}

/// Checks `documents.jsonl` against the rules of stored documents and the value
/// files the manifest lists (whose sizes and digests `verify` has checked).
pub(super) fn check(dir: &Path, manifest: &Manifest, report: &mut VerifyReport) -> Result<()> {
    let values: HashMap<&str, u64> = manifest
        .files
        .iter()
        .filter(|f| is_value_name(&f.name))
        .map(|f| (f.name.as_str(), f.size))
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut previous: Option<String> = None;
    if !dir.join(DOCUMENTS_FILE).is_file() {
        return Ok(()); // reported missing with the files
    }
    for_each_document(dir, report, |number, meta, report| {
        let at = format!("{DOCUMENTS_FILE} line {number}");
        report.counts.documents += 1;
        let subject = format!("document '{}'", validate::shorten(&meta.key));
        if let Err(rule) = key_rule(&meta.key) {
            report.problem(&at, format!("{subject}: invalid key: {rule}"));
        }
        if let Err(rule) = content_type_rule(&meta.content_type) {
            report.problem(&at, format!("{subject}: invalid content type: {rule}"));
        }
        if meta.version == 0 {
            report.problem(
                &at,
                format!("{subject} has version 0, which no stored document has"),
            );
        }
        for v in validate::kept_metadata(&subject, meta.version, meta.created_at, meta.updated_at) {
            report.problem(&at, v.to_string());
        }
        if previous.as_ref().is_some_and(|p| *p >= meta.key) {
            report.problem(&at, format!("{subject} is out of order or repeated"));
        }
        previous = Some(meta.key.clone());
        let name = value_name(&meta.sha256);
        match values.get(name.as_str()) {
            None => report.problem(
                &at,
                format!("{subject}: its bytes ({name}) are not in the backup"),
            ),
            Some(size) if *size != meta.size => report.problem(
                &at,
                format!(
                    "{subject} is {} bytes, but {name} is {size} bytes",
                    meta.size
                ),
            ),
            Some(_) => {}
        }
        used.insert(name);
        keys.insert(meta.key);
        Ok(())
    })?;
    for key in &keys {
        if let Some(folder) = ancestors(key).find(|f| keys.contains(*f)) {
            report.problem(
                DOCUMENTS_FILE,
                format!(
                    "document '{}' is inside document '{}': a key cannot be both a document and a folder",
                    validate::shorten(key),
                    validate::shorten(folder)
                ),
            );
        }
    }
    for name in values.keys() {
        if !used.contains(*name) {
            report.problem(
                *name,
                "no document of the backup has these bytes (an extra value)",
            );
        }
    }
    Ok(())
}

/// Loads every document of the backup into `tx`, streaming each value and keeping
/// the metadata; how many.
pub(super) fn restore(
    dir: &Path,
    tx: &mut WriteTx<'_>,
    total: u64,
    progress: &mut impl FnMut(Progress),
) -> Result<u64> {
    let mut count = 0u64;
    let mut report = VerifyReport::default();
    for_each_document(dir, &mut report, |_, meta, _| {
        let path = dir.join(value_name(&meta.sha256));
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        tx.import_document(meta, BufReader::with_capacity(1 << 16, file))?;
        count += 1;
        if count.is_multiple_of(1000) || count == total {
            progress(Progress {
                phase: Phase::Documents,
                done: count,
                total,
            });
        }
        Ok(())
    })?;
    if let Some(problem) = report.problems.first() {
        return Err(Error::corrupt(
            dir.join(DOCUMENTS_FILE),
            problem.to_string(),
        ));
    }
    Ok(count)
}

/// Deletes every document, inside a restore that replaces a store's content.
pub(super) fn clear(tx: &mut WriteTx<'_>) -> Result<()> {
    loop {
        let page = tx.list_documents(&DocumentQuery::prefix("").limit(PAGE))?;
        if page.documents.is_empty() {
            return Ok(());
        }
        for meta in page.documents {
            tx.delete_document(&meta.key)?;
        }
    }
}
