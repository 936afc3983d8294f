//! What the store does when its backend fails: errors surface with their kind and
//! context, and a failed transaction leaves nothing behind.

use std::time::Duration;

use kgstore_core::suite::faulty::{FaultKind, FaultyBackend};
use kgstore_core::suite::{dump, edge, thing};
use kgstore_core::{ErrorKind, GraphRead, MemoryBackend, RelationType, Store};

fn faulty() -> (
    Store,
    std::sync::Arc<kgstore_core::suite::faulty::FaultPlan>,
) {
    let (backend, plan) = FaultyBackend::new(MemoryBackend::new());
    (Store::new(backend), plan)
}

#[test]
fn a_failed_write_surfaces_as_io_and_rolls_back() {
    let (s, plan) = faulty();
    s.create_node(thing("kept")).unwrap();
    let before = dump(&s);
    plan.fail_writes_after(2);
    let err = s
        .write(|tx| {
            tx.create_node(thing("a"))?;
            tx.create_node(thing("b"))?;
            tx.create_edge(edge("a", RelationType::Calls, "b"))?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("/injected/put_edge"), "{err}");
    plan.heal();
    assert_eq!(dump(&s), before);
}

#[test]
fn a_transaction_that_swallows_a_write_failure_cannot_commit() {
    let (s, plan) = faulty();
    plan.fail_writes_after(1);
    let err = s
        .write(|tx| {
            tx.create_node(thing("a"))?;
            // The application ignores this failure and tries to go on.
            assert_eq!(
                tx.create_node(thing("b")).unwrap_err().kind(),
                ErrorKind::Io
            );
            plan.heal();
            assert_eq!(
                tx.create_node(thing("c")).unwrap_err().kind(),
                ErrorKind::Backend
            );
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(
        err.to_string()
            .contains("rolled back because a write in it failed"),
        "{err}"
    );
    assert_eq!(s.count_nodes().unwrap(), 0);
    s.create_node(thing("after")).unwrap();
}

#[test]
fn a_batch_failing_half_way_leaves_nothing() {
    let (s, plan) = faulty();
    plan.fail_writes_after(50);
    let err = s
        .create_nodes((0..100).map(|i| thing(&format!("n{i}"))))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    plan.heal();
    assert_eq!(s.count_nodes().unwrap(), 0);
    assert_eq!(
        s.create_nodes((0..100).map(|i| thing(&format!("n{i}"))))
            .unwrap(),
        100
    );
}

#[test]
fn a_failed_commit_leaves_nothing_and_the_store_recovers() {
    let (s, plan) = faulty();
    plan.raise(FaultKind::Backend);
    plan.fail_commits(true);
    let err = s.create_node(thing("a")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(err.to_string().starts_with("faulty backend error"), "{err}");
    assert!(!s.contains_node("a").unwrap());
    plan.heal();
    s.create_node(thing("a")).unwrap();
    assert!(s.contains_node("a").unwrap());
}

#[test]
fn corrupt_data_is_reported_with_its_location() {
    let (s, plan) = faulty();
    s.create_node(thing("a")).unwrap();
    plan.raise(FaultKind::Corrupt);
    plan.fail_reads(true);
    let err = s.get_node("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(
        err.to_string(),
        "corrupt data in /injected/get_node: injected fault"
    );
    // A write that must read first fails the same way and changes nothing.
    let err = s
        .update_node(thing("a").with_observation("x"), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    plan.heal();
    assert!(s.get_node("a").unwrap().observations.is_empty());
}

#[test]
fn memory_has_no_native_backup() {
    let err = Store::memory()
        .backup_native(std::path::Path::new("/tmp/nowhere"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "native backup is not supported by the memory backend"
    );
    assert!(Store::memory().check().unwrap().backend_checked);
}

#[test]
fn a_writer_waiting_past_its_timeout_gets_locked() {
    let s = Store::new(MemoryBackend::new().with_lock_timeout(Duration::from_millis(20)));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let s = s.clone();
        std::thread::spawn(move || {
            s.write(|tx| {
                tx.create_node(thing("holder"))?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .unwrap();
        })
    };
    held_rx.recv().unwrap();
    let err = s.create_node(thing("waiter")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert_eq!(
        err.to_string(),
        "the memory store is locked by another write transaction"
    );
    // Readers are not blocked by the open writer.
    assert_eq!(s.count_nodes().unwrap(), 0);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    s.create_node(thing("waiter")).unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
}
