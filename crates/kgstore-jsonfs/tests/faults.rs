//! Fault points between the steps of a write. Each test makes a child process abort
//! at one named point of a commit (or of recovery), then reopens the store and checks
//! that it holds exactly the state before or after the transaction, as the protocol
//! says for that point, with nothing left behind. The second half fails a step with
//! an I/O error instead (a full disk), in process: the commit must surface it as
//! `Io` and leave the store as before, or, past the commit mark, complete at reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::ErrorKind as IoKind;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use kgstore_core::{Edge, ErrorKind, GraphRead, Node, OnDependents, RelationType, Store, WriteTx};
use kgstore_jsonfs::fault::{Fault, FaultAction, FaultPoint};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, RecoveryReport};
use serde_json::json;

use common::{Dump, child_mode, leftovers, lines, open, spawn_child, state, var};

/// A store with a few nodes and an edge, and its dump.
fn base(path: &Path) -> Dump {
    let store = open(path);
    store
        .write(|tx| {
            tx.create_node(Node::new("keep", "thing")?)?;
            tx.create_node(Node::new("old", "thing")?.with_attribute("v", json!(1)))?;
            tx.create_node(Node::new("gone", "thing")?)?;
            tx.create_edge(Edge::new("keep", RelationType::Calls, "gone")?)?;
            Ok(())
        })
        .unwrap();
    state(&store)
}

/// Which transaction a test runs: one file, several (through the journal), one
/// document written (its metadata staged beside its bytes, format 5), or a large
/// commit (staged in a folder of its own, its journal without the staged
/// contents, format 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    One,
    Many,
    Document,
    Batch,
}

/// Nodes the large commit creates: over the crate's threshold of 256 staged files.
const BATCH_NODES: usize = 300;

impl From<bool> for Kind {
    fn from(multi: bool) -> Self {
        if multi { Self::Many } else { Self::One }
    }
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::Many => "many",
            Self::Document => "document",
            Self::Batch => "batch",
        }
    }
}

/// The document the one-document transaction writes, in folders that do not exist yet.
const DOC_KEY: &str = "scripts/s01/pilot.fountain";

/// The transaction under test.
fn transaction(tx: &mut WriteTx<'_>, kind: impl Into<Kind>) -> kgstore_core::Result<()> {
    match kind.into() {
        Kind::One => {
            tx.create_node(Node::new("solo", "thing")?)?;
            return Ok(());
        }
        Kind::Document => {
            tx.write_document(DOC_KEY, "INT. HOUSE - DAY\n")?;
            return Ok(());
        }
        Kind::Batch => {
            for i in 0..BATCH_NODES {
                tx.create_node(Node::new(format!("batch{i:04}"), "thing")?)?;
            }
        }
        Kind::Many => {}
    }
    tx.create_node(Node::new("new1", "thing")?)?;
    tx.create_node(Node::new("new2", "thing")?.with_dependency("new1"))?;
    tx.create_edge(Edge::new("new1", RelationType::DependsOn, "keep")?)?;
    let mut old = tx.get_node("old")?;
    old.attributes.insert("v".into(), json!(2));
    tx.update_node(old, None)?;
    tx.delete_node("gone", OnDependents::Refuse)?;
    Ok(())
}

/// The dump after the transaction, computed on a copy of the folder that commits it.
fn after(path: &Path, multi: impl Into<Kind>) -> Dump {
    let multi = multi.into();
    let copy = tempfile::tempdir().unwrap();
    let to = copy.path().join("store");
    std::fs::create_dir(&to).unwrap();
    for file in common::all_files(path) {
        let rel = file.strip_prefix(path).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
    let store = open(&to);
    store.write(|tx| transaction(tx, multi)).unwrap();
    state(&store)
}

fn options_with(point: FaultPoint, action: FaultAction, skip: u32) -> JsonFsOptions {
    JsonFsOptions::default().with_fault(Fault::new(point, action).after(skip))
}

#[test]
fn child() {
    let Some(mode) = child_mode() else { return };
    let dir = var("FAULT_DIR");
    let point: FaultPoint = var("FAULT_POINT").parse().unwrap();
    let skip: u32 = var("FAULT_SKIP").parse().unwrap();
    // A short lock wait: sibling tests fork children too, and a forked child holds
    // a copy of this process's lock descriptors until it execs.
    let options = options_with(point, FaultAction::Abort, skip)
        .lock_timeout(Some(std::time::Duration::from_secs(10)));
    let backend = JsonFsBackend::open(&dir, options).unwrap();
    if mode == "commit" {
        let multi = match var("FAULT_KIND").as_str() {
            "many" => Kind::Many,
            "document" => Kind::Document,
            "batch" => Kind::Batch,
            _ => Kind::One,
        };
        Store::new(backend)
            .write(|tx| transaction(tx, multi))
            .unwrap();
    }
    println!("NO-ABORT");
}

/// Runs a child that must abort at `point`.
fn abort_child(path: &Path, mode: &str, point: FaultPoint, skip: u32, multi: impl Into<Kind>) {
    let multi = multi.into();
    let mut child = spawn_child(
        mode,
        &[
            ("FAULT_DIR", path.display().to_string()),
            ("FAULT_POINT", point.to_string()),
            ("FAULT_SKIP", skip.to_string()),
            ("FAULT_KIND", multi.as_str().to_owned()),
        ],
    );
    let rx = lines(child.stdout.take().unwrap());
    let status = child.wait().unwrap();
    let said: Vec<String> = rx.iter().collect();
    assert_eq!(
        status.signal(),
        Some(6),
        "the child should have aborted at {point}: {status:?}, said {said:?}"
    );
}

/// Reopens after a crash and checks the state and that nothing is left behind.
fn reopened(path: &Path, expected: &Dump) -> RecoveryReport {
    // The dead child's lock is free at once; the short wait only covers a sibling
    // test's fork that briefly shares this process's descriptors.
    let options = JsonFsOptions::default().lock_timeout(Some(std::time::Duration::from_secs(2)));
    let backend = JsonFsBackend::open(path, options).unwrap();
    let report = backend.recovery().clone();
    let store = Store::new(backend);
    assert!(
        state(&store) == *expected,
        "the state after recovery is not the expected one"
    );
    assert_eq!(leftovers(path), Vec::<std::path::PathBuf>::new());
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    report
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Before,
    After,
}

fn crash_at(
    point: FaultPoint,
    skip: u32,
    multi: impl Into<Kind> + Copy,
    outcome: Outcome,
) -> RecoveryReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let before = base(&path);
    let after = after(&path, multi);
    abort_child(&path, "commit", point, skip, multi);
    let expected = match outcome {
        Outcome::Before => &before,
        Outcome::After => &after,
    };
    let report = reopened(&path, expected);
    // And the store works on.
    let store = open(&path);
    store
        .create_node(Node::new("later", "thing").unwrap())
        .unwrap();
    report
}

// ----- aborts in a commit of several files (journaled) -----

#[test]
fn abort_after_a_temp_file_is_written_leaves_no_trace() {
    let report = crash_at(FaultPoint::TempWritten, 2, true, Outcome::Before);
    assert_eq!(report.temps_removed.len(), 3, "{report}");
    assert!(report.rolled_forward.is_empty());
}

#[test]
fn abort_after_a_temp_file_is_synced_leaves_no_trace() {
    let report = crash_at(FaultPoint::TempSynced, 0, true, Outcome::Before);
    assert_eq!(report.temps_removed.len(), 1, "{report}");
}

#[test]
fn abort_inside_the_journal_before_its_sync_leaves_no_trace() {
    let report = crash_at(FaultPoint::JournalWritten, 0, true, Outcome::Before);
    assert_eq!(report.discarded.len(), 1, "{report}");
    assert_eq!(report.temps_removed.len(), 4, "{report}");
}

#[test]
fn abort_after_the_journal_is_synced_but_not_committed_leaves_no_trace() {
    let report = crash_at(FaultPoint::JournalSynced, 0, true, Outcome::Before);
    assert_eq!(report.discarded.len(), 1, "{report}");
    assert!(report.rolled_forward.is_empty());
}

#[test]
fn abort_after_the_commit_mark_is_rolled_forward() {
    for point in [FaultPoint::JournalRenamed, FaultPoint::JournalCommitted] {
        let report = crash_at(point, 0, true, Outcome::After);
        assert_eq!(report.rolled_forward.len(), 1, "{point}: {report}");
        // The staged temporary files are removed; the journal rewrote every file.
        assert_eq!(report.temps_removed.len(), 4, "{point}: {report}");
    }
}

#[test]
fn abort_half_way_through_the_renames_is_rolled_forward() {
    for skip in [0, 2, 5] {
        let report = crash_at(FaultPoint::Renamed, skip, true, Outcome::After);
        assert_eq!(report.rolled_forward.len(), 1, "after {skip}: {report}");
    }
}

#[test]
fn abort_after_the_folders_are_synced_is_rolled_forward() {
    let report = crash_at(FaultPoint::FoldersSynced, 0, true, Outcome::After);
    assert_eq!(report.rolled_forward.len(), 1, "{report}");
    assert!(report.temps_removed.is_empty(), "{report}");
}

#[test]
fn abort_after_the_generation_is_published_is_rolled_forward_again() {
    // The journal is still in `journal/`: the next writer rolls it forward again
    // (idempotent) and moves it into the log.
    let report = crash_at(FaultPoint::Published, 0, true, Outcome::After);
    assert_eq!(report.rolled_forward.len(), 1, "{report}");
}

#[test]
fn abort_after_the_journal_is_moved_into_the_log_is_complete() {
    let report = crash_at(FaultPoint::JournalRemoved, 0, true, Outcome::After);
    assert!(report.is_clean(), "{report}");
}

#[test]
fn abort_with_the_lock_taken_and_nothing_written_leaves_no_trace() {
    for multi in [true, false] {
        // Skipping the open's own turn, which recovers (nothing here).
        let report = crash_at(FaultPoint::LockTaken, 1, multi, Outcome::Before);
        assert!(report.is_clean(), "{report}");
    }
}

// ----- aborts in a commit of one file (no journal) -----

#[test]
fn single_file_commit_abort_before_rename_leaves_no_trace() {
    for point in [FaultPoint::TempWritten, FaultPoint::TempSynced] {
        let report = crash_at(point, 0, false, Outcome::Before);
        assert_eq!(report.temps_removed.len(), 1, "{point}: {report}");
        assert!(report.rolled_forward.is_empty() && report.discarded.is_empty());
    }
}

#[test]
fn single_file_commit_abort_before_its_rename_discards_its_record() {
    let report = crash_at(FaultPoint::PendingWritten, 0, false, Outcome::Before);
    assert_eq!(report.discarded.len(), 1, "{report}");
    assert_eq!(report.temps_removed.len(), 1, "{report}");
}

#[test]
fn single_file_commit_abort_after_rename_keeps_the_commit() {
    // Published (its commit mark), its record still `.pending`: the next writer
    // finishes it from the record and moves the record into the log.
    for point in [
        FaultPoint::Published,
        FaultPoint::Renamed,
        FaultPoint::FoldersSynced,
    ] {
        let report = crash_at(point, 0, false, Outcome::After);
        assert_eq!(report.completed.len(), 1, "{point}: {report}");
    }
    // Recorded in the log: nothing is left.
    let report = crash_at(FaultPoint::Recorded, 0, false, Outcome::After);
    assert!(report.is_clean(), "{report}");
}

// ----- aborts in a one-document commit (format 5: no journal) -----

#[test]
fn one_document_commit_abort_before_its_publication_leaves_no_trace() {
    // Its staged metadata written, then synced with the bytes: both are discarded.
    for point in [FaultPoint::TempWritten, FaultPoint::TempSynced] {
        let report = crash_at(point, 0, Kind::Document, Outcome::Before);
        assert_eq!(report.temps_removed.len(), 2, "{point}: {report}");
        assert!(report.rolled_forward.is_empty() && report.discarded.is_empty());
    }
    // Its record written, not published: discarded with the staged pair.
    let report = crash_at(
        FaultPoint::PendingWritten,
        0,
        Kind::Document,
        Outcome::Before,
    );
    assert_eq!(report.discarded.len(), 1, "{report}");
    assert_eq!(report.temps_removed.len(), 2, "{report}");
}

#[test]
fn one_document_commit_abort_after_its_publication_keeps_the_commit() {
    // Published (its commit mark), before its renames, between them (skip 0: the
    // metadata renamed), after them, after their folders' syncs: the next writer
    // finishes it from its record.
    for (point, skip) in [
        (FaultPoint::Published, 0),
        (FaultPoint::Renamed, 0),
        (FaultPoint::Renamed, 1),
        (FaultPoint::FoldersSynced, 0),
    ] {
        let report = crash_at(point, skip, Kind::Document, Outcome::After);
        assert_eq!(report.completed.len(), 1, "{point} {skip}: {report}");
    }
    let report = crash_at(FaultPoint::Recorded, 0, Kind::Document, Outcome::After);
    assert!(report.is_clean(), "{report}");
}

/// What a power cut may leave of a one-document commit whose record and
/// publication (never synced) it lost: either of its two renames without the
/// other. Made from a commit stopped after its publication, its record then
/// removed as a power cut may remove it: the metadata renamed and its bytes still
/// staged (the open moves them by their SHA-256), or the bytes renamed and the
/// metadata still staged (the open moves it, the document's file holding the
/// bytes it records); and neither (the staged pair is discarded).
#[test]
fn one_document_commit_cut_by_a_power_cut_between_its_renames_is_completed_at_open() {
    fn lose_the_record(path: &Path) {
        for entry in std::fs::read_dir(path.join("journal")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().ends_with(".pending") {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
    fn staged(path: &Path, extension: &str) -> std::path::PathBuf {
        std::fs::read_dir(path.join("journal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(extension))
            .unwrap_or_else(|| panic!("no {extension} in journal/"))
    }
    for case in ["metadata renamed", "bytes renamed", "neither"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let before = base(&path);
        let after = after(&path, Kind::Document);
        match case {
            "metadata renamed" => {
                abort_child(&path, "commit", FaultPoint::Renamed, 0, Kind::Document);
                assert!(staged(&path, ".staged").exists());
            }
            _ => {
                abort_child(&path, "commit", FaultPoint::TempSynced, 0, Kind::Document);
                if case == "bytes renamed" {
                    let target = path.join("documents/scripts/s01/pilot.fountain");
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    std::fs::rename(staged(&path, ".staged"), &target).unwrap();
                }
            }
        }
        lose_the_record(&path);
        // A read-only open reads the completed commit already, and writes nothing.
        let expected = if case == "neither" { &before } else { &after };
        let read_only = Store::new(
            JsonFsBackend::open(&path, JsonFsOptions::default().read_only(true)).unwrap(),
        );
        assert!(state(&read_only) == *expected, "{case}: read-only");
        drop(read_only);
        let report = reopened(&path, expected);
        match case {
            "neither" => assert_eq!(report.temps_removed.len(), 2, "{case}: {report}"),
            _ => assert_eq!(report.rolled_forward.len(), 1, "{case}: {report}"),
        }
    }
}

// ----- aborts during recovery -----

#[test]
fn abort_during_roll_forward_is_rolled_forward_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    base(&path);
    let after = after(&path, true);
    abort_child(&path, "commit", FaultPoint::JournalCommitted, 0, true);
    // The recovering process dies after rolling two files forward…
    abort_child(&path, "open", FaultPoint::RecoveryApplied, 1, true);
    // …and the next open finishes the job.
    let report = reopened(&path, &after);
    assert_eq!(report.rolled_forward.len(), 1, "{report}");
}

#[test]
fn abort_during_cleanup_is_cleaned_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let before = base(&path);
    abort_child(&path, "commit", FaultPoint::JournalSynced, 0, true);
    // The recovering process dies after removing one stray temporary file…
    abort_child(&path, "open", FaultPoint::CleanupRemoved, 0, true);
    // …and the next open removes the rest.
    let report = reopened(&path, &before);
    assert_eq!(report.temps_removed.len(), 3, "{report}");
}

// ----- aborts in a large commit (staged in its own folder; format 6) -----

#[test]
fn abort_anywhere_in_a_large_commit_leaves_it_absent_or_whole() {
    use Outcome::{After, Before};
    for (point, skip, outcome) in [
        (FaultPoint::TempWritten, 0, Before),
        (FaultPoint::TempWritten, 150, Before),
        (FaultPoint::JournalWritten, 0, Before),
        (FaultPoint::TempSynced, 0, Before),
        (FaultPoint::JournalSynced, 0, Before),
        // Past the commit mark: the journal holds no staged content, the staged
        // files (or, once moved, the store's) are what the roll-forward writes.
        (FaultPoint::JournalRenamed, 0, After),
        (FaultPoint::Published, 0, After),
        (FaultPoint::JournalCommitted, 0, After),
        (FaultPoint::Renamed, 0, After),
        (FaultPoint::Renamed, 200, After),
        (FaultPoint::FoldersSynced, 0, After),
    ] {
        let report = crash_at(point, skip, Kind::Batch, outcome);
        let rolled = usize::from(outcome == After);
        assert_eq!(
            report.rolled_forward.len(),
            rolled,
            "{point} after {skip}: {report}"
        );
    }
}

#[test]
fn abort_while_recovering_a_large_commit_is_finished_by_the_next_open() {
    for skip in [1, 150] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        base(&path);
        let after = after(&path, Kind::Batch);
        // Killed half-way through moving the staged folders into place…
        abort_child(&path, "commit", FaultPoint::Renamed, 100, Kind::Batch);
        // …the recovering process dies after rolling some files forward…
        abort_child(
            &path,
            "open",
            FaultPoint::RecoveryApplied,
            skip,
            Kind::Batch,
        );
        // …and the next open finishes the job from the staged files left.
        let report = reopened(&path, &after);
        assert_eq!(report.rolled_forward.len(), 1, "{report}");
    }
}

#[test]
fn every_fault_point_is_exercised_by_an_abort_test() {
    // The tests above name each point; this keeps the list honest when points are added.
    let source = include_str!("faults.rs");
    for point in FaultPoint::ALL {
        let variant = format!("{point:?}");
        assert!(
            source.matches(&format!("FaultPoint::{variant},")).count()
                + source.matches(&format!("FaultPoint::{variant}]")).count()
                > 0,
            "no test aborts at {point}"
        );
    }
}

// ----- failing steps: a full disk and other I/O errors -----

fn fail_at(
    point: FaultPoint,
    skip: u32,
    multi: impl Into<Kind>,
) -> (tempfile::TempDir, Store, Dump, Dump) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let before = base(&path);
    let after = after(&path, multi);
    let options = options_with(point, FaultAction::Fail(IoKind::StorageFull), skip);
    let store = Store::new(JsonFsBackend::open(&path, options).unwrap());
    (dir, store, before, after)
}

#[test]
fn a_full_disk_before_the_commit_mark_surfaces_as_io_and_changes_nothing() {
    for (point, skip, multi) in [
        (FaultPoint::LockTaken, 1, true),
        (FaultPoint::TempWritten, 0, false),
        (FaultPoint::TempSynced, 0, false),
        (FaultPoint::PendingWritten, 0, false),
        (FaultPoint::TempWritten, 2, true),
        (FaultPoint::TempSynced, 3, true),
        (FaultPoint::JournalWritten, 0, true),
        (FaultPoint::JournalSynced, 0, true),
    ] {
        let (dir, store, before, _) = fail_at(point, skip, multi);
        let path = dir.path().join("store");
        let err = store.write(|tx| transaction(tx, multi)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{point}: {err}");
        assert!(err.to_string().contains("injected fault"), "{err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert!(state(&store) == before, "{point}: the open store changed");
        assert_eq!(
            leftovers(&path),
            Vec::<std::path::PathBuf>::new(),
            "{point}"
        );
        // The store goes on, and what it had and what came after survive a reopen.
        store
            .create_node(Node::new("after", "thing").unwrap())
            .unwrap();
        let expected = state(&store);
        drop(store);
        let report = reopened(&path, &expected);
        assert!(report.is_clean(), "{point}: {report}");
    }
}

#[test]
fn a_failure_after_the_commit_mark_refuses_more_writes_and_completes_at_reopen() {
    for (point, skip, multi) in [
        (FaultPoint::Renamed, 0, false),
        (FaultPoint::FoldersSynced, 0, false),
        (FaultPoint::Recorded, 0, false),
        (FaultPoint::Published, 0, false),
        (FaultPoint::JournalRenamed, 0, true),
        (FaultPoint::JournalCommitted, 0, true),
        (FaultPoint::Renamed, 1, true),
        (FaultPoint::FoldersSynced, 0, true),
        (FaultPoint::Published, 0, true),
        (FaultPoint::JournalRemoved, 0, true),
    ] {
        let (dir, store, _, after) = fail_at(point, skip, multi);
        let path = dir.path().join("store");
        let err = store.write(|tx| transaction(tx, multi)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{point}: {err}");
        assert!(
            err.to_string()
                .contains("completes when the store is next opened"),
            "{err}"
        );
        // Committed: the handle's readers see the transaction.
        assert!(state(&store) == after, "{point}");
        let refused = store
            .create_node(Node::new("refused", "thing").unwrap())
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Backend, "{refused}");
        assert!(
            refused.to_string().contains("reopen the store"),
            "{refused}"
        );
        assert!(!store.check().unwrap().is_ok());
        drop(store);
        reopened(&path, &after);
    }
}
