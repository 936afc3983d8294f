//! The commit log: a handle applies what other handles (other processes) committed
//! from the log's records instead of reading the store again; only a handle that
//! fell further behind than the log keeps, or met a damaged record, reads it again.
//! Old records are pruned, large ones sooner, and a failed prune is housekeeping.
//!
//! Two handles on one folder here have separate lock descriptors and images, as
//! two processes do (`tests/lock.rs` and the reliability crate use real processes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use kgstore_core::{
    Durability, Edge, GraphRead, Node, OnDependents, RelationType, SchemaTarget, Store,
};
use kgstore_jsonfs::fault::{Fault, FaultAction, FsOp};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, LOG_DIR, RETAIN, RETAIN_LARGE};
use serde_json::json;

use common::{fast_tempdir, state};

fn backend(path: &Path, options: JsonFsOptions) -> std::sync::Arc<JsonFsBackend> {
    std::sync::Arc::new(JsonFsBackend::open(path, options).unwrap())
}

/// A store over a shared backend, so that the test can still ask the backend.
fn store(backend: &std::sync::Arc<JsonFsBackend>) -> Store {
    Store::new(SharedBackend(std::sync::Arc::clone(backend)))
}

struct SharedBackend(std::sync::Arc<JsonFsBackend>);

impl kgstore_core::Backend for SharedBackend {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn begin_read(&self) -> kgstore_core::Result<Box<dyn kgstore_core::ReadTxn + '_>> {
        self.0.begin_read()
    }
    fn begin_write(&self) -> kgstore_core::Result<Box<dyn kgstore_core::WriteTxn + '_>> {
        self.0.begin_write()
    }
    fn check(&self) -> kgstore_core::Result<Vec<kgstore_core::Problem>> {
        self.0.check()
    }
}

fn records(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path.join(LOG_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // The log's records (not the generation file or the image snapshot).
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    names.sort();
    names
}

fn relaxed() -> JsonFsOptions {
    JsonFsOptions::default().durability(Durability::Relaxed)
}

#[test]
fn a_handle_applies_the_others_commits_without_reading_the_store_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        backend(dir.path(), JsonFsOptions::default()),
        backend(dir.path(), JsonFsOptions::default()),
    );
    let (writer, reader) = (store(&a), store(&b));
    let long = |i: usize| format!("{i}-{}", "long name ".repeat(40));
    for i in 0..30 {
        writer
            .write(|tx| {
                match i % 3 {
                    // Several files: nodes (one with a hashed file name), edges, a schema.
                    0 => {
                        tx.create_node(Node::new(format!("n{i}"), "thing")?)?;
                        tx.create_node(
                            Node::new(long(i), "thing")?.with_dependency(format!("n{i}")),
                        )?;
                        tx.create_edge(Edge::new(format!("n{i}"), RelationType::Calls, long(i))?)?;
                        tx.set_schema(
                            SchemaTarget::NodeType(format!("t{i}")),
                            json!({"type": "object"}),
                        )?;
                    }
                    // One file.
                    1 => {
                        tx.create_node(Node::new(format!("solo{i}"), "thing")?)?;
                    }
                    // Removals, also of hashed names, with their edges.
                    _ => {
                        tx.delete_node(&long(i - 2), OnDependents::Refuse)?;
                        tx.remove_schema(&SchemaTarget::NodeType(format!("t{}", i - 2)))?;
                    }
                }
                Ok(())
            })
            .unwrap();
        assert!(state(&reader) == state(&writer), "after transaction {i}");
        assert_eq!(b.generation(), a.generation());
    }
    assert_eq!(a.generation(), 30);
    assert_eq!(b.full_reads(), 1, "the reader read the whole store again");
    assert!(reader.check().unwrap().is_ok());
}

/// A large commit's record names its staged files without their contents (format
/// 6): another handle applies it by reading each file (staged, or in place), not
/// the whole store; a handle that meets it after a later commit removed one of
/// its files cannot, and reads the store again.
#[test]
fn a_handle_applies_a_large_commit_from_its_record_without_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        backend(dir.path(), JsonFsOptions::default()),
        backend(dir.path(), JsonFsOptions::default()),
        backend(dir.path(), JsonFsOptions::default()),
    );
    let (writer, reader, late) = (store(&a), store(&b), store(&c));
    writer
        .write(|tx| {
            for i in 0..300 {
                tx.create_node(Node::new(format!("bulk{i:03}"), "thing")?)?;
            }
            Ok(())
        })
        .unwrap();
    let record = records(dir.path()).pop().unwrap();
    let text = std::fs::read_to_string(dir.path().join(LOG_DIR).join(record)).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("stg ")).count(), 300);
    assert!(!text.contains("\"name\""), "no content in the record");
    assert!(state(&reader) == state(&writer));
    assert_eq!(b.full_reads(), 1, "the reader read the whole store again");
    // A later commit removes one of the large commit's files: its record no
    // longer reads whole, and a handle that has yet to apply it reads the store.
    writer.delete_node("bulk007", OnDependents::Refuse).unwrap();
    assert!(state(&late) == state(&writer));
    assert_eq!(state(&late).0.len(), 299);
    assert_eq!(c.full_reads(), 2);
    assert!(late.check().unwrap().is_ok());
}

#[test]
fn a_handle_that_falls_behind_the_log_reads_the_store_again() {
    let dir = fast_tempdir();
    let (a, b) = (
        backend(dir.path(), relaxed()),
        backend(dir.path(), relaxed()),
    );
    let (writer, reader) = (store(&a), store(&b));
    writer
        .create_node(Node::new("first", "thing").unwrap())
        .unwrap();
    assert_eq!(reader.count_nodes().unwrap(), 1);
    for i in 0..RETAIN + 10 {
        writer
            .create_node(Node::new(format!("n{i}"), "thing").unwrap())
            .unwrap();
    }
    // The log keeps its last records only.
    let kept = records(dir.path());
    assert_eq!(kept.len() as u64, RETAIN, "{:?}..", kept.first());
    assert!(state(&reader) == state(&writer));
    assert_eq!(b.full_reads(), 2);
    assert_eq!(b.generation(), RETAIN + 11);
}

#[test]
fn a_damaged_record_makes_a_handle_read_the_store_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        backend(dir.path(), JsonFsOptions::default()),
        backend(dir.path(), JsonFsOptions::default()),
    );
    let (writer, reader) = (store(&a), store(&b));
    writer
        .create_node(Node::new("a", "thing").unwrap())
        .unwrap();
    assert_eq!(reader.count_nodes().unwrap(), 1);
    writer
        .create_node(Node::new("b", "thing").unwrap())
        .unwrap();
    let record = dir
        .path()
        .join(LOG_DIR)
        .join(records(dir.path()).pop().unwrap());
    std::fs::write(&record, "not a record").unwrap();
    assert!(state(&reader) == state(&writer));
    assert_eq!(b.full_reads(), 2);
}

#[test]
fn a_large_record_is_kept_only_a_few_generations() {
    let dir = fast_tempdir();
    let writer = store(&backend(dir.path(), relaxed()));
    // Fewer files than a large commit's batch (whose record names its staged
    // files without their contents, format 6), each large: the record holds them.
    writer
        .write(|tx| {
            for i in 0..250 {
                tx.create_node(
                    Node::new(format!("big{i}"), "thing")?.with_observation("x".repeat(20_000)),
                )?;
            }
            Ok(())
        })
        .unwrap();
    let large = records(dir.path()).pop().unwrap();
    let size = std::fs::metadata(dir.path().join(LOG_DIR).join(&large))
        .unwrap()
        .len();
    assert!(size > kgstore_jsonfs::LARGE_RECORD, "{size}");
    for i in 0..RETAIN_LARGE {
        assert!(records(dir.path()).contains(&large), "pruned after {i}");
        writer
            .create_node(Node::new(format!("small{i}"), "thing").unwrap())
            .unwrap();
    }
    let kept = records(dir.path());
    assert!(!kept.contains(&large), "{kept:?}");
    assert_eq!(kept.len() as u64, RETAIN_LARGE);
}

#[test]
fn a_failed_prune_is_housekeeping_and_the_next_open_prunes() {
    let dir = fast_tempdir();
    let fault = Fault::on_op(
        FsOp::RemoveFile,
        FaultAction::Os(kgstore_jsonfs::fault::EIO),
    )
    .sticky();
    let writer = store(&backend(dir.path(), relaxed().with_fault(fault.clone())));
    for i in 0..=RETAIN {
        writer
            .create_node(Node::new(format!("n{i}"), "thing").unwrap())
            .unwrap_or_else(|e| panic!("commit {i}: {e}"));
    }
    // The commit of generation RETAIN + 1 failed to remove record 1, and stood.
    let failed: Vec<_> = fault.trace().into_iter().filter(|s| s.injected).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].path.ends_with("journal/log/00000000000000000001"),
        "{failed:?}"
    );
    assert_eq!(writer.count_nodes().unwrap(), RETAIN + 1);
    assert_eq!(records(dir.path()).len() as u64, RETAIN + 1);
    drop(writer);
    fault.clear();
    let reopened = store(&backend(dir.path(), JsonFsOptions::default()));
    assert_eq!(records(dir.path()).len() as u64, RETAIN);
    assert!(reopened.check().unwrap().is_ok());
}
