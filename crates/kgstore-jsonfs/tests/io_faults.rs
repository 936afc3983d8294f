//! I/O errors at every file-system step (the `FsOp` layer of `kgstore_jsonfs::fault`).
//!
//! A representative transaction (new nodes and edges, an update, a delete that takes
//! an edge with it, a schema; documents written — one streamed, one in a new folder —
//! replaced and deleted, and a folder of documents that becomes a document) is run
//! once to record the trace of its file-system steps. Then, for every step of that trace, for `EIO` and `ENOSPC`, once and
//! sticky (every step fails from then on, until the fault clears), a fresh copy of
//! the same store runs the transaction with that step failing, and the test checks:
//! the commit fails; the open handle shows the state before the transaction; a
//! failure up to the commit mark (the journal's rename) leaves the store as before
//! and the same handle takes a new write once the fault clears; a failure past it
//! makes the handle refuse writes, and the next open completes the transaction; after
//! reopening, the state is exactly the one before or after (full dumps compared),
//! `check` is clean and no temporary or journal file is left; no failed step is
//! retried. The same is done for every step of a recovery (the roll-forward at
//! open) and of the creation of a store.
//!
//! One step is housekeeping: clearing the writer's pid from the lock file when it
//! lets go after a transaction that is complete and published (or after an open's
//! recovery). Its failure is not the transaction's: the commit (or open) succeeds,
//! and the next writer, finding the pid, runs a recovery that finds nothing to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use kgstore_core::suite::dump;
use kgstore_core::{
    Durability, Edge, ErrorKind, GraphRead, Node, OnDependents, RelationType, SchemaTarget, Store,
    WriteOptions, WriteTx,
};
use kgstore_jsonfs::fault::{EIO, ENOSPC, Fault, FaultAction, FsOp, Step};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, TEMP_PREFIX};
use serde_json::json;

use common::{Dump, all_files, leftovers, same_but_replaced, state};

/// The errors every step is failed with.
const ERRORS: [(&str, i32); 2] = [("EIO", EIO), ("ENOSPC", ENOSPC)];

fn options(durability: Durability) -> JsonFsOptions {
    JsonFsOptions::default().durability(durability)
}

fn open_with(path: &Path, durability: Durability, fault: &Fault) -> kgstore_core::Result<Store> {
    JsonFsBackend::open(path, options(durability).with_fault(fault.clone())).map(Store::new)
}

fn open_plain(path: &Path) -> Store {
    Store::new(JsonFsBackend::open(path, JsonFsOptions::default()).unwrap())
}

/// The store every case starts from: a few nodes, an edge, a schema.
fn base(path: &Path) {
    let store = open_plain(path);
    store
        .write(|tx| {
            tx.create_node(Node::new("keep", "thing")?)?;
            tx.create_node(Node::new("old", "thing")?.with_attribute("v", json!(1)))?;
            tx.create_node(Node::new("gone", "thing")?)?;
            tx.create_edge(Edge::new("keep", RelationType::Calls, "gone")?)?;
            tx.set_schema(
                SchemaTarget::RelationType(RelationType::Calls),
                json!({"type": "object"}),
            )?;
            tx.write_document("docs/keep.txt", "keep")?;
            tx.write_document("docs/old.txt", "v1")?;
            tx.write_document("gone/only.txt", "bye")?;
            tx.write_document("flip/inner", "becomes a document")?;
            Ok(())
        })
        .unwrap();
}

/// The transaction under test: two new nodes (one depending on the other), two new
/// edges, an update, a delete that removes an edge with its node, and a schema;
/// documents written (in a new folder, and streamed), replaced and deleted (the
/// last of its folder), and a folder that becomes a document.
fn transaction(tx: &mut WriteTx<'_>) -> kgstore_core::Result<()> {
    tx.write_document("docs/new/deep.txt", "new")?;
    tx.write_document("docs/old.txt", "v2")?;
    tx.delete_document("gone/only.txt")?;
    tx.delete_document("flip/inner")?;
    tx.write_document("flip", "was a folder")?;
    tx.write_document_from("blobs/big.bin", &[7u8; 70_000][..], &WriteOptions::new())?;
    tx.create_node(Node::new("new1", "thing")?.with_attribute("v", json!(5)))?;
    tx.create_node(Node::new("new2", "thing")?.with_dependency("new1"))?;
    tx.create_edge(Edge::new("new1", RelationType::DependsOn, "keep")?)?;
    tx.create_edge(Edge::new("new2", RelationType::Calls, "old")?)?;
    let mut old = tx.get_node("old")?;
    old.attributes.insert("v".into(), json!(2));
    tx.update_node(old, None)?;
    tx.delete_node("gone", OnDependents::Refuse)?;
    tx.set_schema(
        SchemaTarget::NodeType("thing".into()),
        json!({"type": "object", "properties": {"v": {"type": "integer"}}}),
    )?;
    Ok(())
}

/// A transaction to fail at every step.
type Transaction = fn(&mut WriteTx<'_>) -> kgstore_core::Result<()>;

/// One document replaced and nothing else: the commit without a journal (format
/// 5), whose mark is its publication.
fn one_document(tx: &mut WriteTx<'_>) -> kgstore_core::Result<()> {
    tx.write_document("docs/old.txt", "v2, longer")?;
    Ok(())
}

/// One document created in new folders, streamed in.
fn one_new_document(tx: &mut WriteTx<'_>) -> kgstore_core::Result<()> {
    tx.write_document_from(
        "fresh/deep/new.bin",
        &[9u8; 70_000][..],
        &WriteOptions::new(),
    )?;
    Ok(())
}

/// Copies a store's folder (without syncing: the copies are scratch).
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in all_files(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
    // Git-like copies lose empty folders; a real store keeps them.
    for folder in [
        "nodes",
        "edges",
        "journal",
        "schemas/node_type",
        "schemas/relation_type",
        "documents",
        "docmeta",
    ] {
        std::fs::create_dir_all(to.join(folder)).unwrap();
    }
}

/// A step's path relative to the store, with temporary file names made alike
/// (their numbers differ from run to run).
fn shape(root: &Path, step: &Step) -> (FsOp, PathBuf) {
    let rel = step
        .path
        .strip_prefix(root)
        .unwrap_or(&step.path)
        .to_path_buf();
    let rel = match rel.file_name() {
        Some(name) if name.to_string_lossy().starts_with(TEMP_PREFIX) => {
            rel.with_file_name(format!("{TEMP_PREFIX}*"))
        }
        Some(name) if name.to_string_lossy().ends_with(".staged") => rel.with_file_name("*.staged"),
        Some(name) if name.to_string_lossy().ends_with(".docmeta") => {
            rel.with_file_name("*.docmeta")
        }
        _ => rel,
    };
    (step.op, rel)
}

/// Checks a reopened store: the expected state, nothing left behind, `check` clean,
/// and a new write taken and kept.
fn reopened_is(path: &Path, expected: &Dump, what: &str) {
    let store = open_plain(path);
    assert!(
        state(&store) == *expected,
        "{what}: wrong state after reopening"
    );
    assert_eq!(leftovers(path), Vec::<PathBuf>::new(), "{what}: leftovers");
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{what}: {:?}", check.problems);
    store
        .create_node(Node::new("after-reopen", "thing").unwrap())
        .unwrap_or_else(|e| panic!("{what}: no write after reopening: {e}"));
}

/// A prepared store and what the transaction does to it.
struct Setup {
    _dir: tempfile::TempDir,
    base: PathBuf,
    /// The copy whose commit was traced.
    traced: PathBuf,
    before: Dump,
    after: Dump,
    durability: Durability,
    /// Steps of a plain open of the base store.
    open_steps: usize,
    /// Steps of the transaction's commit.
    commit: Vec<Step>,
    /// The index in `commit` of the commit mark (the journal's rename; for one
    /// document, the publication of its generation).
    mark: usize,
    /// Whether the mark is the publication (one document): a publication that
    /// fails may or may not have reached the generation file, so the handle then
    /// refuses writes and the next open finds the transaction whole or absent.
    mark_is_publish: bool,
    /// The index in `commit` of the publication of its generation: from there on the
    /// handle's image holds the transaction.
    publish: usize,
    /// The transaction.
    transaction: Transaction,
}

/// Whether step `k` of `steps` is the lock file's clearing when the writer lets go
/// (the last step, a `write-lock`): housekeeping.
fn is_release(steps: &[Step], k: usize) -> bool {
    k + 1 == steps.len() && steps[k].op == FsOp::WriteLock
}

fn setup(durability: Durability) -> Setup {
    setup_with(durability, transaction)
}

fn setup_with(durability: Durability, transaction: Transaction) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base_path = dir.path().join("base");
    base(&base_path);
    let before = state(&open_plain(&base_path));
    let run = dir.path().join("trace");
    copy_store(&base_path, &run);
    let tracer = Fault::trace_only();
    let store = open_with(&run, durability, &tracer).unwrap();
    let open_steps = tracer.trace().len();
    store.write(transaction).unwrap();
    let after = state(&store);
    let commit = tracer.trace()[open_steps..].to_vec();
    drop(store);
    let publish = commit
        .iter()
        .position(|s| s.op == FsOp::Publish)
        .expect("the commit publishes its generation");
    let journal = commit
        .iter()
        .position(|s| s.op == FsOp::Rename && s.path.extension().is_some_and(|e| e == "commit"));
    let mark = journal.unwrap_or(publish);
    Setup {
        _dir: dir,
        base: base_path,
        traced: run,
        before,
        after,
        durability,
        open_steps,
        commit,
        mark,
        mark_is_publish: journal.is_none(),
        publish,
        transaction,
    }
}

/// Fails step `k` of the commit with `code`, once or sticky, and checks everything.
fn case(setup: &Setup, scratch: &Path, k: usize, (name, code): (&str, i32), mode: Mode) {
    let sticky = mode == Mode::Sticky;
    let expected_step = shape(&setup.traced, &setup.commit[k]);
    let what = format!(
        "step {k} ({} {}) failing with {name}{}",
        expected_step.0,
        expected_step.1.display(),
        mode.as_str()
    );
    let path = scratch.join(format!("{k}-{name}-{}", mode.as_str()));
    copy_store(&setup.base, &path);
    let mut fault = Fault::on_step(FaultAction::Os(code)).after((setup.open_steps + k) as u32);
    match mode {
        Mode::Once => {}
        Mode::Sticky => fault = fault.sticky(),
        Mode::Late => fault = fault.late(),
    }
    let store = open_with(&path, setup.durability, &fault).unwrap();
    assert!(!fault.fired(), "{what}: fired during open");
    if is_release(&setup.commit, k) {
        // Housekeeping: the transaction is complete and published; the commit stands.
        store
            .write(setup.transaction)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(fault.fired(), "{what}");
        assert!(state(&store) == setup.after, "{what}");
        fault.clear();
        drop(store);
        reopened_is(&path, &setup.after, &what);
        std::fs::remove_dir_all(&path).unwrap();
        return;
    }
    let err = store
        .write(setup.transaction)
        .expect_err(&format!("{what}: the commit succeeded"));
    assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
    assert!(
        err.to_string()
            .contains(&std::io::Error::from_raw_os_error(code).to_string()),
        "{what}: {err}"
    );
    // The step that failed is the one the trace said, and no failed step is retried.
    let trace = fault.trace()[setup.open_steps..].to_vec();
    let failed: Vec<&Step> = trace.iter().filter(|s| s.injected).collect();
    let first = failed
        .first()
        .unwrap_or_else(|| panic!("{what}: nothing failed"));
    assert_eq!(
        shape(&path, first),
        (expected_step.0, expected_step.1.clone()),
        "{what}"
    );
    if !sticky {
        let at = trace.iter().position(|s| s.injected).unwrap();
        assert!(
            !trace[at + 1..]
                .iter()
                .any(|s| s.op == first.op && s.path == first.path),
            "{what}: the failed step was retried: {:?}",
            &trace[at + 1..]
        );
    }
    // Readers of the open handle see the last whole state: the one before, or,
    // once the files are in place and the generation is being published, the one after.
    let installed = if setup.mark_is_publish {
        // The handle installs what it committed once its publication succeeded; a
        // publication done and then reported failed is read back from the record.
        k > setup.publish || (k == setup.publish && mode == Mode::Late)
    } else {
        k >= setup.publish
    };
    assert!(
        same_but_replaced(
            &state(&store),
            if installed {
                &setup.after
            } else {
                &setup.before
            }
        ),
        "{what}: the open store shows the wrong state"
    );
    fault.clear();
    // A step done and then reported failed counts as done: the commit mark's rename
    // then commits the transaction.
    let before_mark = if mode == Mode::Late || setup.mark_is_publish {
        k < setup.mark
    } else {
        k <= setup.mark
    };
    let expected = if setup.mark_is_publish && k == setup.mark {
        // The publication failed: whether it reached the generation file is not
        // known to the handle; the next open finds the transaction whole (it did,
        // reported failed afterwards) or absent (it did not).
        assert!(
            err.to_string().contains("whether the commit took effect"),
            "{what}: {err}"
        );
        if mode == Mode::Late {
            setup.after.clone()
        } else {
            setup.before.clone()
        }
    } else {
        expected_after_failure(&store, &err, before_mark, &setup.after, &what)
    };
    if !before_mark {
        // Past the mark the handle refuses writes.
        let refused = store
            .create_node(Node::new("refused", "thing").unwrap())
            .expect_err(&format!("{what}: a poisoned handle took a write"));
        assert!(
            refused.to_string().contains("reopen the store"),
            "{refused}"
        );
    }
    drop(store);
    reopened_is(&path, &expected, &what);
    std::fs::remove_dir_all(&path).unwrap();
}

/// The state a reopen must find after a commit failed and its fault cleared. Before
/// the commit mark the store is as before and the same handle writes on: the state
/// is what it holds after one more write. Past the mark the error says the next open
/// completes the transaction: the state is `after`.
fn expected_after_failure(
    store: &Store,
    err: &kgstore_core::Error,
    before_mark: bool,
    after: &Dump,
    what: &str,
) -> Dump {
    if before_mark {
        store
            .create_node(Node::new("later", "thing").unwrap())
            .unwrap_or_else(|e| panic!("{what}: no write after the fault cleared: {e}"));
        state(store)
    } else {
        assert!(
            err.to_string()
                .contains("completes when the store is next opened"),
            "{what}: {err}"
        );
        after.clone()
    }
}

/// Runs `f` on every item, on a few threads: the cases wait on `fsync` far more
/// than they compute. A panic in any of them fails the test.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while let Some(item) =
                    items.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    f(item);
                }
            });
        }
    });
}

/// How a step fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Once, without taking effect.
    Once,
    /// From then on, every step, until the fault clears.
    Sticky,
    /// Once, after taking effect (the system could not confirm it).
    Late,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Sticky => "sticky",
            Self::Late => "late",
        }
    }
}

fn every_step_of_a_commit(durability: Durability, errors: &[(&str, i32)], mode: Mode) {
    every_step_of(setup(durability), errors, mode);
}

fn every_step_of(setup: Setup, errors: &[(&str, i32)], mode: Mode) {
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let cases: Vec<(usize, (&str, i32))> = errors
        .iter()
        .flat_map(|&error| (0..setup.commit.len()).map(move |k| (k, error)))
        .collect();
    parallel(&cases, |&(k, error)| {
        case(&setup, scratch.path(), k, error, mode)
    });
    eprintln!(
        "{} steps × {} errors ({}) in {:.2?}",
        setup.commit.len(),
        errors.len(),
        mode.as_str(),
        started.elapsed()
    );
}

#[test]
fn the_traced_commit_has_every_kind_of_step() {
    let setup = setup(Durability::Immediate);
    for (i, step) in setup.commit.iter().enumerate() {
        let (op, rel) = shape(&setup.traced, step);
        eprintln!(
            "{i:>3} {op} {}{}",
            rel.display(),
            if i == setup.mark {
                "   <- commit mark"
            } else {
                ""
            }
        );
    }
    for op in [
        FsOp::CreateDir,
        FsOp::CreateFile,
        FsOp::WriteFile,
        FsOp::SyncFile,
        FsOp::Rename,
        FsOp::RemoveFile,
        FsOp::SyncDir,
        FsOp::WriteLock,
        FsOp::Publish,
    ] {
        assert!(
            setup.commit.iter().any(|s| s.op == op),
            "no {op} in the trace: {:#?}",
            setup.commit
        );
    }
    // Everything before the mark is staging; the journal is the last file synced.
    let synced = setup.commit[..setup.mark]
        .iter()
        .rposition(|s| s.op == FsOp::SyncFile)
        .unwrap();
    assert_eq!(
        shape(&setup.traced, &setup.commit[synced]),
        (
            FsOp::SyncFile,
            PathBuf::from(format!("journal/{TEMP_PREFIX}*"))
        ),
    );
}

#[test]
fn every_step_of_a_commit_failing_once() {
    every_step_of_a_commit(Durability::Immediate, &ERRORS, Mode::Once);
}

#[test]
fn every_step_of_a_commit_failing_from_then_on() {
    every_step_of_a_commit(Durability::Immediate, &ERRORS, Mode::Sticky);
}

#[test]
fn every_step_of_a_relaxed_commit_failing() {
    every_step_of_a_commit(Durability::Relaxed, &ERRORS[..1], Mode::Once);
    every_step_of_a_commit(Durability::Relaxed, &ERRORS[1..], Mode::Sticky);
}

/// Every step done, then reported failed (`EIO`): the commit fails; a rename that
/// took effect though it reported an error is found out (its source is gone), so
/// the journal's rename commits the transaction and a one-file commit's rename
/// poisons the handle rather than being reported as undone.
#[test]
fn every_step_of_a_commit_done_then_reported_failed() {
    every_step_of_a_commit(Durability::Immediate, &ERRORS[..1], Mode::Late);
}

/// A one-document commit (its metadata, and its staged bytes moved into place) at
/// every step, in every mode. Since format version 5 it stages its metadata beside
/// its bytes and takes the one-file sequence (record, publication as its commit
/// mark, renames), so that other processes still learn of it from its record:
/// before its mark the store is as before; at it (a publication that failed) the
/// next open finds it whole or absent; after it the handle is poisoned or shows
/// it, and the next writer rolls it forward from its record.
#[test]
fn every_step_of_a_one_document_commit_failing() {
    for transaction in [one_document as Transaction, one_new_document] {
        let trace = setup_with(Durability::Immediate, transaction);
        assert!(trace.mark_is_publish, "{:?}", trace.commit);
        assert!(
            trace
                .commit
                .iter()
                .any(|s| s.op == FsOp::CreateFile && s.path.to_string_lossy().ends_with(".docmeta")),
            "{:?}",
            trace.commit
        );
        every_step_of(trace, &ERRORS, Mode::Once);
        every_step_of(
            setup_with(Durability::Immediate, transaction),
            &ERRORS,
            Mode::Sticky,
        );
        every_step_of(
            setup_with(Durability::Immediate, transaction),
            &ERRORS[..1],
            Mode::Late,
        );
        every_step_of(
            setup_with(Durability::Relaxed, transaction),
            &ERRORS[1..],
            Mode::Once,
        );
    }
}

/// Makes `path` hold a copy of the base store whose last commit passed its commit
/// mark and then stopped (the publication of its generation failed), left as a crash leaves
/// it: the lock file still names the dead writer.
fn crashed_store(setup: &Setup, path: &Path) {
    copy_store(&setup.base, path);
    let fault =
        Fault::on_step(FaultAction::Os(EIO)).after((setup.open_steps + setup.mark + 1) as u32);
    let store = open_with(path, setup.durability, &fault).unwrap();
    let err = store.write(transaction).unwrap_err();
    assert!(
        err.to_string()
            .contains("completes when the store is next opened"),
        "{err}"
    );
    drop(store);
    std::fs::write(path.join(kgstore_jsonfs::LOCK_FILE), "pid 999999\n").unwrap();
    assert!(
        all_files(&path.join("journal"))
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "commit")),
        "no committed journal to recover"
    );
}

/// Fails every step of an open, once and sticky, with each error: the open fails
/// (nothing is half done that the next open cannot finish), and once the fault
/// clears an open finds `expected`.
fn every_step_of_an_open(prepare: impl Fn(&Path) + Sync, expected: &Dump, what: &str) -> Vec<Step> {
    let scratch = tempfile::tempdir().unwrap();
    let traced = scratch.path().join("traced");
    prepare(&traced);
    let tracer = Fault::trace_only();
    let store = open_with(&traced, Durability::Immediate, &tracer).unwrap();
    assert!(state(&store) == *expected, "{what}: the traced open");
    // The open's steps (not the close's, which writes the image snapshot).
    let steps = tracer.trace();
    drop(store);
    let mut cases = Vec::new();
    for error in ERRORS {
        for sticky in [false, true] {
            for k in 0..steps.len() {
                cases.push((k, error, sticky));
            }
        }
    }
    parallel(&cases, |&(k, (name, code), sticky)| {
        let (op, rel) = shape(&traced, &steps[k]);
        let case = format!(
            "{what}: step {k} ({op} {}) failing with {name}{}",
            rel.display(),
            if sticky { ", sticky" } else { ", once" }
        );
        let path = scratch.path().join(format!("{k}-{name}-{sticky}"));
        prepare(&path);
        let mut fault = Fault::on_step(FaultAction::Os(code)).after(k as u32);
        if sticky {
            fault = fault.sticky();
        }
        let opened = open_with(&path, Durability::Immediate, &fault);
        assert!(fault.fired(), "{case}");
        assert_eq!(shape(&path, &fault.trace()[k]), (op, rel), "{case}");
        if is_release(&steps, k) {
            // Housekeeping: the recovery is done; the open stands.
            let store = opened.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert!(state(&store) == *expected, "{case}");
            fault.clear();
            drop(store);
            reopened_is(&path, expected, &case);
            std::fs::remove_dir_all(&path).unwrap();
            return;
        }
        let err = opened
            .err()
            .unwrap_or_else(|| panic!("{case}: the open succeeded"));
        assert_eq!(err.kind(), ErrorKind::Io, "{case}: {err}");
        reopened_is(&path, expected, &case);
        std::fs::remove_dir_all(&path).unwrap();
    });
    steps
}

#[test]
fn every_step_of_a_recovery_failing() {
    let started = Instant::now();
    let setup = setup(Durability::Immediate);
    let template = tempfile::tempdir().unwrap();
    let crashed = template.path().join("crashed");
    crashed_store(&setup, &crashed);
    let steps = every_step_of_an_open(|path| copy_store(&crashed, path), &setup.after, "recovery");
    // The roll-forward rewrote files and removed the journal, and every shard was synced.
    for op in [
        FsOp::CreateFile,
        FsOp::SyncFile,
        FsOp::Rename,
        FsOp::RemoveFile,
        FsOp::SyncDir,
    ] {
        assert!(steps.iter().any(|s| s.op == op), "no {op} in recovery");
    }
    eprintln!(
        "{} steps of recovery × 4 in {:.2?}",
        steps.len(),
        started.elapsed()
    );
}

#[test]
fn every_step_of_a_store_creation_failing() {
    let started = Instant::now();
    let empty: Dump = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let steps = every_step_of_an_open(|_| {}, &empty, "creation");
    assert_eq!(steps[0].op, FsOp::CreateDir, "{steps:?}");
    eprintln!(
        "{} steps of creation × 4 in {:.2?}",
        steps.len(),
        started.elapsed()
    );
}

// ----- fsync failures and regressions -----

/// The steps of a commit run by `f` on a store opened with `fault`.
fn steps_of(fault: &Fault, f: impl FnOnce()) -> Vec<Step> {
    let from = fault.trace().len();
    f();
    fault.trace()[from..].to_vec()
}

fn synced_dirs(steps: &[Step]) -> Vec<PathBuf> {
    steps
        .iter()
        .filter(|s| s.op == FsOp::SyncDir)
        .map(|s| s.path.clone())
        .collect()
}

#[test]
fn a_failed_fsync_of_a_file_fails_the_commit_and_its_content_is_thrown_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let fault = Fault::on_op(FsOp::SyncFile, FaultAction::Os(EIO));
    let store = open_with(&path, Durability::Immediate, &fault).unwrap();
    let before = state(&store);
    let steps = steps_of(&fault, || {
        let err = store
            .create_node(Node::new("solo", "thing").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert!(err.to_string().contains("os error 5"), "{err}");
    });
    let at = steps.iter().position(|s| s.injected).unwrap();
    let temp = &steps[at].path;
    // The file whose sync failed is never synced again, renamed or trusted: it is
    // removed, and the writer lets go of the lock, clean.
    assert_eq!(
        steps[at + 1..].to_vec(),
        vec![
            Step {
                op: FsOp::RemoveFile,
                path: temp.clone(),
                injected: false,
            },
            Step {
                op: FsOp::WriteLock,
                path: path.join(kgstore_jsonfs::LOCK_FILE),
                injected: false,
            }
        ],
    );
    assert!(state(&store) == before);
    // The next commit writes the content anew, and succeeds.
    store
        .create_node(Node::new("solo", "thing").unwrap())
        .unwrap();
    let expected = state(&store);
    drop(store);
    reopened_is(&path, &expected, "after a failed file sync");
}

/// The commit mark's own sync (of `journal/`, after the rename) used to be followed,
/// on failure, by removing the journal and syncing the folder again, and the commit
/// reported as cleanly failed: a sync retried as if nothing had happened (after a
/// failed fsync the kernel may report the next one as a success without the data
/// having reached the disk), with a journal that could come back and be replayed
/// over later commits.
#[test]
fn regression_a_failed_sync_of_the_commit_mark_is_neither_retried_nor_undone() {
    let setup = setup(Durability::Immediate);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    copy_store(&setup.base, &path);
    // The journal's folder sync after the mark (and the generation's publication).
    let k = setup.mark
        + setup.commit[setup.mark..]
            .iter()
            .position(|s| s.op == FsOp::SyncDir)
            .unwrap();
    assert_eq!(
        shape(&setup.traced, &setup.commit[k]),
        (FsOp::SyncDir, PathBuf::from("journal"))
    );
    assert_eq!(setup.commit[k - 1].op, FsOp::Publish);
    let fault = Fault::on_step(FaultAction::Os(EIO)).after((setup.open_steps + k) as u32);
    let store = open_with(&path, Durability::Immediate, &fault).unwrap();
    let steps = steps_of(&fault, || {
        let err = store.write(transaction).unwrap_err();
        assert!(
            err.to_string()
                .contains("completes when the store is next opened"),
            "{err}"
        );
    });
    assert!(
        steps.last().unwrap().injected,
        "steps after the failed sync: {steps:?}"
    );
    let refused = store
        .create_node(Node::new("x", "thing").unwrap())
        .unwrap_err();
    assert!(
        refused.to_string().contains("reopen the store"),
        "{refused}"
    );
    drop(store);
    reopened_is(&path, &setup.after, "after the commit mark's sync failed");
}

#[test]
fn regression_a_writable_open_syncs_the_store_folder_and_journal_whose_names_may_be_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    // A writable open syncs the store's folder (the marker's name, made by the process
    // that created the store), `journal/` (a relaxed writer's removed journals) and
    // the data folders (their shard folders' names).
    let tracer = Fault::trace_only();
    let store = open_with(&path, Durability::Immediate, &tracer).unwrap();
    let synced = synced_dirs(&tracer.trace());
    for folder in [
        "",
        "journal",
        "nodes",
        "edges",
        "schemas",
        "schemas/node_type",
        "schemas/relation_type",
    ] {
        assert!(
            synced.contains(&path.join(folder)),
            "{folder:?} not synced: {synced:?}"
        );
    }
    drop(store);
    // A read-only open writes and syncs nothing.
    let tracer = Fault::trace_only();
    let options = JsonFsOptions::default()
        .read_only(true)
        .with_fault(tracer.clone());
    drop(JsonFsBackend::open(&path, options).unwrap());
    assert_eq!(tracer.trace(), Vec::new());
}

#[test]
fn regression_after_an_unclean_shutdown_a_writable_open_syncs_every_shard_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let shards: Vec<PathBuf> = all_files(&path)
        .into_iter()
        .filter(|f| f.starts_with(path.join("nodes")) || f.starts_with(path.join("edges")))
        .map(|f| f.parent().unwrap().to_path_buf())
        .collect();
    assert!(!shards.is_empty());
    // Closed cleanly: the shard folders were synced by the commits that wrote them.
    let tracer = Fault::trace_only();
    drop(open_with(&path, Durability::Immediate, &tracer).unwrap());
    let synced = synced_dirs(&tracer.trace());
    assert!(shards.iter().all(|s| !synced.contains(s)), "{synced:?}");
    // A writer that died (its pid still in the lock file) may have renamed a file
    // into a shard folder without syncing it: every shard folder is synced.
    std::fs::write(path.join(kgstore_jsonfs::LOCK_FILE), "pid 999999\n").unwrap();
    let tracer = Fault::trace_only();
    drop(open_with(&path, Durability::Immediate, &tracer).unwrap());
    let synced = synced_dirs(&tracer.trace());
    assert!(shards.iter().all(|s| synced.contains(s)), "{synced:?}");
}

#[test]
fn regression_a_shard_folder_made_by_a_failed_commit_is_synced_in_its_parent_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    // The first commit into a new shard folder makes it, then fails (a full disk).
    let fault = Fault::on_op(FsOp::WriteFile, FaultAction::Os(ENOSPC));
    let store = open_with(&path, Durability::Immediate, &fault).unwrap();
    let failed = steps_of(&fault, || {
        store
            .create_node(Node::new("solo", "thing").unwrap())
            .unwrap_err();
    });
    let made = failed
        .iter()
        .find(|s| s.op == FsOp::CreateDir)
        .expect("the node's shard folder is new")
        .path
        .clone();
    // The next commit into it must sync its name in `nodes/`, though it exists now.
    let steps = steps_of(&fault, || {
        store
            .create_node(Node::new("solo", "thing").unwrap())
            .unwrap();
    });
    let synced = synced_dirs(&steps);
    assert!(synced.contains(&made), "{synced:?}");
    assert!(
        synced.contains(&path.join("nodes")),
        "the new shard's name was never synced: {synced:?}"
    );
}

#[test]
fn regression_creating_a_store_again_after_a_failed_creation_syncs_the_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    // The folder is made, then the sync of its name fails.
    let fault = Fault::on_op(FsOp::SyncDir, FaultAction::Os(EIO));
    JsonFsBackend::open(&path, JsonFsOptions::default().with_fault(fault.clone())).unwrap_err();
    assert!(path.is_dir());
    // The next open finds the folder there, and must still sync its name.
    let tracer = Fault::trace_only();
    drop(open_with(&path, Durability::Immediate, &tracer).unwrap());
    assert!(synced_dirs(&tracer.trace()).contains(&dir.path().to_path_buf()));
}

/// Every named fault point (between steps) fails with each error once: before the
/// commit mark the store is as before and the handle writes on; past it, or in
/// recovery, the next open finds the transaction complete. (`tests/faults.rs`
/// aborts the process at each point.)
#[test]
fn every_fault_point_fails_with_each_error() {
    use kgstore_jsonfs::fault::FaultPoint as P;
    let setup = setup(Durability::Immediate);
    let scratch = tempfile::tempdir().unwrap();
    let cases: Vec<(P, (&str, i32))> = P::ALL
        .into_iter()
        .flat_map(|point| ERRORS.into_iter().map(move |error| (point, error)))
        .collect();
    parallel(&cases, |&(point, (name, code))| {
        let what = format!("{point} failing with {name}");
        let path = scratch.path().join(format!("{point}-{name}"));
        let fault = Fault::new(point, FaultAction::Os(code));
        if matches!(point, P::RecoveryApplied | P::CleanupRemoved) {
            crashed_store(&setup, &path);
            let err = open_with(&path, Durability::Immediate, &fault)
                .err()
                .unwrap_or_else(|| panic!("{what}: the open succeeded"));
            assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
            assert!(fault.fired(), "{what}");
            reopened_is(&path, &setup.after, &what);
            return;
        }
        copy_store(&setup.base, &path);
        // The open takes the lock too (to recover): the commit's turn is the second.
        let fault = if point == P::LockTaken {
            fault.after(1)
        } else {
            fault
        };
        let store = open_with(&path, Durability::Immediate, &fault).unwrap();
        // Two points are a one-file commit's only: a one-file transaction for them.
        let one_file = matches!(point, P::PendingWritten | P::Recorded);
        let (before, after) = if one_file {
            let copy = scratch.path().join(format!("{point}-{name}-after"));
            copy_store(&setup.base, &copy);
            let other = open_plain(&copy);
            other.write(one_file_transaction).unwrap();
            (setup.before.clone(), state(&other))
        } else {
            (setup.before.clone(), setup.after.clone())
        };
        let err = if one_file {
            store.write(one_file_transaction).unwrap_err()
        } else {
            store.write(transaction).unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
        assert!(fault.fired(), "{what}");
        let before_mark = matches!(
            point,
            P::LockTaken
                | P::TempWritten
                | P::TempSynced
                | P::JournalWritten
                | P::JournalSynced
                | P::PendingWritten
        );
        // Past the commit mark the handle's readers see the transaction.
        assert!(
            same_but_replaced(&state(&store), if before_mark { &before } else { &after }),
            "{what}: the open store shows the wrong state"
        );
        let expected = expected_after_failure(&store, &err, before_mark, &after, &what);
        drop(store);
        reopened_is(&path, &expected, &what);
    });
}

/// A transaction of one file: a new node.
fn one_file_transaction(tx: &mut WriteTx<'_>) -> kgstore_core::Result<()> {
    tx.create_node(Node::new("solo", "thing")?)?;
    Ok(())
}

/// A one-file commit has no journal: when the sync of its folder failed after the
/// rename, the file's name may not be durable, and the next open used to build on
/// it without syncing that folder (the handle closed cleanly). The poisoned handle
/// now leaves the store as a crash does, and the next open syncs every shard folder.
#[test]
fn regression_a_one_file_commit_whose_folder_sync_failed_has_its_folder_synced_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let tracer = Fault::trace_only();
    drop(open_with(&path, Durability::Immediate, &tracer).unwrap());
    let open_syncs = synced_dirs(&tracer.trace()).len() as u32;
    let fault = Fault::on_op(FsOp::SyncDir, FaultAction::Os(EIO)).after(open_syncs);
    let store = open_with(&path, Durability::Immediate, &fault).unwrap();
    let steps = steps_of(&fault, || {
        // An update: one file, in a shard folder that exists.
        let err = store
            .write(|tx| {
                let mut old = tx.get_node("old")?;
                old.attributes.insert("v".into(), json!(3));
                tx.update_node(old, None)
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("completes when the store is next opened"),
            "{err}"
        );
    });
    let failed = steps.iter().find(|s| s.injected).unwrap();
    assert_eq!(failed.path.parent(), Some(&*path.join("nodes")), "{failed}");
    drop(store);
    let tracer = Fault::trace_only();
    let store = open_with(&path, Durability::Immediate, &tracer).unwrap();
    assert_eq!(store.get_node("old").unwrap().attributes["v"], json!(3));
    assert!(
        synced_dirs(&tracer.trace()).contains(&failed.path),
        "{:?}",
        tracer.trace()
    );
}

/// Every step of a native backup failing once (`ENOSPC`): the backup fails and leaves nothing,
/// neither at its destination nor as a partial copy; the store is untouched and the
/// next backup succeeds. (A backup whose final folder sync failed used to stay at
/// its destination, complete but reported as failed, so that a retry was refused
/// with "already exists".)
#[test]
fn regression_every_step_of_a_backup_failing_leaves_nothing_behind() {
    use kgstore_core::Backend;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let tracer = Fault::trace_only();
    let backend =
        JsonFsBackend::open(&path, JsonFsOptions::default().with_fault(tracer.clone())).unwrap();
    let from = tracer.trace().len();
    backend.backup_native(&dir.path().join("traced")).unwrap();
    let steps = tracer.trace()[from..].to_vec();
    drop(backend);
    let expected = state(&open_plain(&path));
    assert!(steps.len() > 20, "{steps:?}");
    // One error is enough here: the backup's steps do not depend on which one.
    let cases: Vec<(usize, (&str, i32))> = (0..steps.len()).map(|k| (k, ERRORS[1])).collect();
    let root = tempfile::tempdir().unwrap();
    parallel(&cases, |&(k, (name, code))| {
        let what = format!("backup step {k} ({}) failing with {name}", steps[k]);
        let store = root.path().join(format!("{k}-{name}"));
        copy_store(&path, &store);
        let fault_at = Fault::on_step(FaultAction::Os(code)).after((from + k) as u32);
        let backend = JsonFsBackend::open(
            &store,
            JsonFsOptions::default().with_fault(fault_at.clone()),
        )
        .unwrap();
        let out = root.path().join(format!("{k}-{name}-backup"));
        let err = backend.backup_native(&out).expect_err(&what);
        assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
        assert!(fault_at.fired(), "{what}");
        assert!(
            !out.exists(),
            "{what}: a failed backup left its destination"
        );
        let partial = format!(".{k}-{name}-backup.partial-");
        let left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&partial))
            .collect();
        assert!(left.is_empty(), "{what}: partial copies left: {left:?}");
        backend
            .backup_native(&out)
            .unwrap_or_else(|e| panic!("{what}: no backup after: {e}"));
        drop(backend);
        reopened_is(&out, &expected, &what);
    });
}

/// A one-file commit's rename (or removal) that took effect but reported an error:
/// the commit is not reported as undone, the handle is poisoned, and the next open
/// finds the transaction whole.
#[test]
fn a_one_file_step_that_took_effect_despite_its_error_is_not_reported_undone() {
    for op in [FsOp::Rename, FsOp::RemoveFile] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        base(&path);
        // A one-file commit first renames its record to `.pending`: skip that rename.
        let skip = u32::from(op == FsOp::Rename);
        let fault = Fault::on_op(op, FaultAction::Os(EIO)).after(skip).late();
        let store = open_with(&path, Durability::Immediate, &fault).unwrap();
        let err = match op {
            FsOp::Rename => store
                .create_node(Node::new("solo", "thing").unwrap())
                .map(drop),
            _ => store
                .delete_edge(
                    &Edge::new("keep", RelationType::Calls, "gone")
                        .unwrap()
                        .key(),
                )
                .map(drop),
        }
        .unwrap_err();
        assert!(fault.fired(), "{op}");
        assert!(
            err.to_string()
                .contains("completes when the store is next opened"),
            "{op}: {err}"
        );
        let refused = store
            .create_node(Node::new("x", "thing").unwrap())
            .unwrap_err();
        assert!(
            refused.to_string().contains("reopen the store"),
            "{op}: {refused}"
        );
        drop(store);
        let store = open_plain(&path);
        match op {
            FsOp::Rename => assert!(store.get_node("solo").is_ok()),
            _ => assert!(dump(&store).1.is_empty()),
        }
        drop(store);
    }
}

/// The steps `f` takes on the base store (opened with a tracer), and their shapes
/// (`op path`); the store's folder, in the returned temporary folder.
fn traced(f: impl FnOnce(&Store)) -> (tempfile::TempDir, PathBuf, Vec<Step>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let tracer = Fault::trace_only();
    let store = open_with(&path, Durability::Immediate, &tracer).unwrap();
    let steps = steps_of(&tracer, || f(&store));
    let shapes = steps
        .iter()
        .map(|s| {
            let (op, rel) = shape(&path, s);
            format!("{op} {}", rel.display())
        })
        .collect();
    (dir, path, steps, shapes)
}

/// The steps of a one-file commit (an update, in an existing shard folder), as
/// `docs/jsonfs.md` lists them: its publication is its commit mark, and it syncs
/// the file's content and its folder, nothing more.
#[test]
fn the_traced_one_file_commit_is_its_record_publication_rename_and_sync() {
    let (_dir, _, steps, shapes) = traced(|store| {
        store
            .write(|tx| {
                let mut old = tx.get_node("old")?;
                old.attributes.insert("v".into(), json!(9));
                tx.update_node(old, None).map(drop)
            })
            .unwrap();
    });
    let shard = names_shard("old");
    assert_eq!(
        shapes,
        [
            "write-lock LOCK".to_owned(),
            "create-file journal/.tmp-*".into(),
            "write-file journal/.tmp-*".into(),
            "sync-file journal/.tmp-*".into(),
            "create-file journal/.tmp-*".into(),
            "write-file journal/.tmp-*".into(),
            "rename journal/00000000000000000002.pending".into(),
            "publish journal/log/generation".into(),
            format!("rename {shard}/old.json"),
            format!("sync-dir {shard}"),
            "rename journal/log/00000000000000000002".into(),
            "write-lock LOCK".into(),
        ]
    );
    assert_eq!(steps.iter().filter(|s| s.op.is_sync()).count(), 2);
}

/// The steps of a one-document commit (a replacement, in folders that exist), as
/// `docs/jsonfs.md` lists them: its metadata staged beside its bytes, both and
/// `journal/` synced (at once, outside fault injection), its record and its
/// publication (the commit mark), both renames, their two folders synced (at
/// once), the record moved into the log — five syncs in two rounds, against the
/// bare durable write's two.
#[test]
fn the_traced_one_document_commit_is_two_rounds_of_syncs_around_its_record() {
    let (_dir, path, steps, shapes) = traced(|store| store.write(one_document).unwrap());
    use kgstore_core::DocumentRead;
    use kgstore_jsonfs::names::{EXTENSION, encode_name, fit, shard};
    let stem = fit(encode_name("docs/old.txt"));
    let meta_dir = format!("docmeta/{}", shard(&stem));
    let meta = format!("{meta_dir}/{stem}{EXTENSION}");
    assert_eq!(
        shapes,
        [
            "write-lock LOCK".to_owned(),
            "create-file journal/*.staged".into(),
            "write-file journal/*.staged".into(),
            "create-file journal/*.docmeta".into(),
            "write-file journal/*.docmeta".into(),
            "sync-file journal/*.staged".into(),
            "sync-file journal/*.docmeta".into(),
            "sync-dir journal".into(),
            "create-file journal/.tmp-*".into(),
            "write-file journal/.tmp-*".into(),
            "rename journal/00000000000000000002.pending".into(),
            "publish journal/log/generation".into(),
            format!("rename {meta}"),
            "rename documents/docs/old.txt".into(),
            format!("sync-dir {meta_dir}"),
            "sync-dir documents/docs".into(),
            "rename journal/log/00000000000000000002".into(),
            "write-lock LOCK".into(),
        ]
    );
    assert_eq!(steps.iter().filter(|s| s.op.is_sync()).count(), 5);
    let store = open_plain(&path);
    assert_eq!(store.read_document("docs/old.txt").unwrap(), b"v2, longer");
    assert!(store.check().unwrap().is_ok());
}

/// The shard folder of a node's file.
fn names_shard(name: &str) -> String {
    let rel = kgstore_jsonfs::names::node_path(name);
    rel.rsplit_once('/').unwrap().0.to_owned()
}

/// A commit of this many nodes stages its files in one batch (one `syncfs`): above
/// the crate's threshold of 256 files (the trace below proves the batch is taken).
const BATCHED: usize = 300;

fn batched_transaction(tx: &mut WriteTx<'_>) -> kgstore_core::Result<()> {
    for i in 0..BATCHED {
        tx.create_node(Node::new(format!("bulk{i}"), "thing")?)?;
    }
    Ok(())
}

/// A large commit writes its staged files (and, meanwhile, its journal, which
/// records them without their content) without an fsync each and makes them
/// durable with one `syncfs` before the journal's rename, the commit mark; every failure of that
/// sync, or of a staged write, fails the commit cleanly: the store as before, no
/// file left, the sync never retried, and the same handle commits once the fault
/// clears.
#[test]
#[cfg(target_os = "linux")]
fn a_large_commit_syncs_its_staged_files_at_once_and_fails_cleanly_if_that_fails() {
    let scratch = tempfile::tempdir().unwrap();
    // The trace of a successful one.
    let path = scratch.path().join("traced");
    base(&path);
    let fault = Fault::trace_only();
    let store = open_with(&path, Durability::Immediate, &fault).unwrap();
    // The folders an open of such a store makes: a fault on folders skips them.
    let open_dirs = u32::try_from(
        fault
            .trace()
            .iter()
            .filter(|s| s.op == FsOp::CreateDir)
            .count(),
    )
    .unwrap();
    let steps = steps_of(&fault, || store.write(batched_transaction).unwrap());
    // The folders the commit makes: the store's new shard folders, then those of
    // its staging folder (`journal/bulk-…/nodes/…`), from which a fault below acts.
    let dirs: Vec<&Step> = steps.iter().filter(|s| s.op == FsOp::CreateDir).collect();
    let staging_dirs = dirs
        .iter()
        .position(|s| s.path.to_string_lossy().contains("/journal/bulk-"))
        .unwrap();
    assert!(dirs.len() > staging_dirs + 1, "{dirs:#?}");
    let staging_dirs = open_dirs + u32::try_from(staging_dirs).unwrap();
    let synced_fs: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].op == FsOp::SyncFs)
        .collect();
    assert_eq!(synced_fs.len(), 1, "{steps:#?}");
    let at = synced_fs[0];
    let is_journal = |s: &Step| s.path.to_string_lossy().ends_with(".journal");
    let staged_writes = steps[..at]
        .iter()
        .filter(|s| s.op == FsOp::WriteFile && !is_journal(s))
        .count();
    assert_eq!(
        staged_writes, BATCHED,
        "every staged file is written before the sync"
    );
    // The journal is written before the sync too (while the files are staged),
    // which makes it durable with them: no file is synced on its own, and the
    // journal's rename (the commit mark) comes after the sync.
    let journal_written = steps[..at]
        .iter()
        .position(|s| s.op == FsOp::WriteFile && is_journal(s));
    assert!(journal_written.is_some(), "{steps:#?}");
    let file_syncs: Vec<&Step> = steps.iter().filter(|s| s.op == FsOp::SyncFile).collect();
    assert!(file_syncs.is_empty(), "{file_syncs:#?}");
    let marked = steps
        .iter()
        .position(|s| s.op == FsOp::Rename && s.path.to_string_lossy().ends_with(".commit"));
    assert!(marked.is_some_and(|m| m > at), "{steps:#?}");
    // The journal (now in the log) records the staged puts without their content
    // (format 6): a line each, far smaller than the files.
    let log = path.join("journal/log");
    let record = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n != "generation" && n != "snapshot")
        })
        .max()
        .unwrap();
    let text = String::from_utf8(std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("stg ")).count(),
        BATCHED
    );
    assert!(!text.lines().any(|l| l.starts_with("put ")), "{text}");
    let expected = state(&store);
    drop(store);
    reopened_is(&path, &expected, "after a batched commit");

    let cases: Vec<(&str, Fault)> = vec![
        (
            "sync-fs EIO",
            Fault::on_op(FsOp::SyncFs, FaultAction::Os(EIO)),
        ),
        (
            "sync-fs ENOSPC",
            Fault::on_op(FsOp::SyncFs, FaultAction::Os(ENOSPC)),
        ),
        (
            "sync-fs EIO, late",
            Fault::on_op(FsOp::SyncFs, FaultAction::Os(EIO)).late(),
        ),
        // The staging's first folder (made with the staging folder itself), then
        // its second.
        (
            "the staging's first folder ENOSPC, from then on",
            Fault::on_op(FsOp::CreateDir, FaultAction::Os(ENOSPC))
                .after(staging_dirs)
                .sticky(),
        ),
        (
            "the staging's second folder ENOSPC, from then on",
            Fault::on_op(FsOp::CreateDir, FaultAction::Os(ENOSPC))
                .after(staging_dirs + 1)
                .sticky(),
        ),
        // No staged file written at all: the staging folder (and the shard
        // folders made in it) is all there is to remove.
        (
            "the first write ENOSPC, from then on",
            Fault::on_op(FsOp::WriteFile, FaultAction::Os(ENOSPC)).sticky(),
        ),
        (
            "the 200th write ENOSPC, from then on",
            Fault::on_op(FsOp::WriteFile, FaultAction::Os(ENOSPC))
                .after(199)
                .sticky(),
        ),
    ];
    for (what, fault) in cases {
        let path = scratch.path().join(what.replace([' ', ','], "-"));
        base(&path);
        let store = open_with(&path, Durability::Immediate, &fault).unwrap();
        let before = state(&store);
        let steps = steps_of(&fault, || {
            let err = store.write(batched_transaction).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
        });
        let failed = steps.iter().position(|s| s.injected).unwrap();
        // Nothing is synced, renamed or published after the failure (the other
        // staged files are still written, or fail too): the staged files are
        // removed and the writer lets go, clean.
        assert!(
            steps[failed + 1..].iter().all(|s| matches!(
                s.op,
                FsOp::CreateFile | FsOp::WriteFile | FsOp::RemoveFile | FsOp::WriteLock
            )),
            "{what}: {:#?}",
            &steps[failed..]
        );
        // The staging folder is removed once, with everything in it (it was removed
        // a second time, as a folder already gone, once a file had been staged).
        let staging_removals: Vec<&Step> = steps[failed + 1..]
            .iter()
            .filter(|s| {
                s.op == FsOp::RemoveFile
                    && s.path.parent().is_some_and(|p| p.ends_with("journal"))
                    && s.path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("bulk-"))
            })
            .collect();
        assert_eq!(staging_removals.len(), 1, "{what}: {staging_removals:#?}");
        assert!(state(&store) == before, "{what}");
        assert_eq!(leftovers(&path), Vec::<PathBuf>::new(), "{what}");
        fault.clear();
        store.write(batched_transaction).unwrap();
        let after = state(&store);
        assert_eq!(after.0.len(), before.0.len() + BATCHED, "{what}");
        drop(store);
        reopened_is(&path, &after, what);
    }
}

/// Regression: a recovery synced `journal/` three times for one committed journal:
/// after removing the temporary files it found there, with the folders of the
/// files it put in place (for the staged documents it moved out of `journal/`),
/// and after moving the journal into the log. The last makes all of it durable
/// (nothing needs the removals or moves durable before the journal leaves), and is
/// the only one left; a writable open's own sync of the store's folders before
/// the recovery stays.
#[test]
fn regression_a_recovery_syncs_journal_once_per_journal_rolled_forward() {
    let setup = setup(Durability::Immediate);
    let template = tempfile::tempdir().unwrap();
    let crashed = template.path().join("crashed");
    crashed_store(&setup, &crashed);
    let tracer = Fault::trace_only();
    let store = open_with(&crashed, Durability::Immediate, &tracer).unwrap();
    let steps: Vec<(FsOp, PathBuf)> = tracer.trace().iter().map(|s| shape(&crashed, s)).collect();
    drop(store);
    let journal = (FsOp::SyncDir, PathBuf::from("journal"));
    // The recovery begins with the removal of the temporary files in `journal/`
    // (after the open's syncs of the store's folders, `journal/` among them).
    let begins = steps
        .iter()
        .position(|(op, path)| *op == FsOp::RemoveFile && path.starts_with("journal"))
        .unwrap();
    assert!(steps[..begins].contains(&journal), "{steps:#?}");
    let recovery = &steps[begins..];
    // It moves staged documents out of `journal/` and the journal into the log.
    assert!(
        recovery
            .iter()
            .any(|(op, path)| *op == FsOp::Rename && path.starts_with("documents")),
        "{recovery:#?}"
    );
    let moved: Vec<usize> = (0..recovery.len())
        .filter(|&i| recovery[i].0 == FsOp::Rename && recovery[i].1.starts_with("journal/log"))
        .collect();
    assert_eq!(moved.len(), 1, "{recovery:#?}");
    let synced: Vec<usize> = (0..recovery.len())
        .filter(|&i| recovery[i] == journal)
        .collect();
    assert_eq!(synced, [moved[0] + 1], "{recovery:#?}");
}
