//! What `Store::metrics` counts, the same on every backend: reads, write
//! transactions and commits, entities written, failures by kind, lock waits between
//! two writers, reset and turning metrics off. (Latencies are only checked to be
//! recorded, never compared with a time.)

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{Fixture, kind_of, thing};
use crate::observe::FigureKind;
use crate::{ErrorKind, GraphRead, Metrics, OnDependents, Store};

/// The metrics after a reset, with no operation since: every count is zero and so
/// is every counter among the backend's figures.
fn assert_zero(m: &Metrics) {
    assert_eq!(m.reads.count, 0);
    assert_eq!(m.write_transactions.count, 0);
    assert_eq!(m.commits.count, 0);
    assert_eq!(m.lock_waits.count, 0);
    assert_eq!(m.entities_written, 0);
    assert!(m.errors_by_kind.is_empty(), "{:?}", m.errors_by_kind);
    for figure in &m.backend_figures {
        if figure.kind == FigureKind::Counter {
            assert_eq!(figure.value, 0, "{} after a reset", figure.name);
        }
    }
}

pub fn metrics_count_reads_writes_commits_and_failures_by_kind(f: Fixture) {
    let s = &f.store;
    // Opening may have counted something (a recovery, a lock wait): start from zero.
    s.reset_metrics();
    assert_zero(&s.metrics());
    s.create_nodes(["a", "b", "c"].map(thing)).unwrap();
    s.create_node(thing("d")).unwrap();
    assert_eq!(kind_of(s.create_node(thing("a"))), ErrorKind::AlreadyExists);
    assert_eq!(
        kind_of(s.write(|tx| tx.delete_node("nobody", OnDependents::Refuse))),
        ErrorKind::NodeNotFound
    );
    for name in ["a", "b", "zz"] {
        s.find_node(name).unwrap();
    }
    assert_eq!(kind_of(s.get_node("zz")), ErrorKind::NodeNotFound);

    let m = s.metrics();
    assert!(m.enabled);
    assert_eq!(m.write_transactions.count, 4, "{m:?}");
    assert_eq!(m.write_transactions.errors, 2);
    assert_eq!(m.commits.count, 2);
    assert_eq!(m.commits.errors, 0);
    if m.write_sample_every == 1 {
        // Every write transaction is timed, failed ones too.
        assert_eq!(m.write_transactions.latency.count, 4);
        assert_eq!(m.commits.latency.count, 2);
    } else {
        // A backend without durability times one in `write_sample_every` per thread
        // (`observe::WRITE_SAMPLE_EVERY`), its commit with it.
        // Four writes on one thread hold at most one timed one.
        assert_eq!(m.write_sample_every, crate::observe::WRITE_SAMPLE_EVERY);
        assert!(m.write_transactions.latency.count <= 1, "{m:?}");
        assert!(m.commits.latency.count <= m.write_transactions.latency.count);
    }
    assert_eq!(m.entities_written, 4);
    assert_eq!(m.reads.count, 4);
    // A read that finds nothing succeeded; `get_node` turning it into an error is
    // the caller's business, counted by kind but not as a failed read.
    assert_eq!(m.reads.errors, 0);
    assert_eq!(m.errors_by_kind.get("already_exists"), Some(&1));
    assert_eq!(m.errors_by_kind.get("node_not_found"), Some(&1));
    assert_eq!(m.lock_waits.count, 0);

    // A reset starts every count again, the backend's counters too.
    s.reset_metrics();
    assert_zero(&s.metrics());
    s.find_node("a").unwrap();
    assert_eq!(s.metrics().reads.count, 1);

    // With a slow-operation threshold set, every write transaction is timed on
    // every backend.
    s.observer()
        .set_slow_threshold(Some(Duration::from_secs(3600)));
    s.reset_metrics();
    s.create_node(thing("e")).unwrap();
    s.create_node(thing("f")).unwrap();
    let m = s.metrics();
    s.observer().set_slow_threshold(None);
    assert_eq!(m.write_sample_every, 1);
    assert_eq!(m.write_transactions.latency.count, 2);
    assert_eq!(m.commits.latency.count, 2);
}

pub fn metrics_turned_off_count_only_failures(f: Fixture) {
    let s = &f.store;
    s.reset_metrics();
    s.observer().set_enabled(false);
    s.create_node(thing("a")).unwrap();
    s.find_node("a").unwrap();
    assert_eq!(kind_of(s.create_node(thing("a"))), ErrorKind::AlreadyExists);
    let m = s.metrics();
    assert!(!m.enabled);
    assert_eq!(m.reads.count, 0);
    assert_eq!(m.write_transactions.count, 0);
    assert_eq!(m.commits.count, 0);
    assert_eq!(m.entities_written, 0);
    // Failures are counted whatever the setting: "error log review" needs them.
    assert_eq!(m.errors_by_kind.get("already_exists"), Some(&1));
    s.observer().set_enabled(true);
    s.create_node(thing("b")).unwrap();
    assert_eq!(s.metrics().write_transactions.count, 1);
}

pub fn metrics_count_a_lock_wait_between_two_writers(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("first")).unwrap();
    s.reset_metrics();
    // A writer holds the store's write lock until the other one has started to
    // wait for it. "Started" cannot be seen from outside, so the holder keeps the
    // lock a while after the other thread's signal and the scenario is repeated
    // until a wait was seen (once is the rule; a wait is never invented).
    for attempt in 1..=5u64 {
        let (entered, wait_for_entry) = mpsc::channel();
        let (about_to_write, wait_for_writer) = mpsc::channel();
        thread::scope(|scope| {
            let holder: Store = s.clone();
            scope.spawn(move || {
                holder
                    .write(|tx| {
                        tx.upsert_node(thing("held"))?;
                        entered.send(()).unwrap();
                        wait_for_writer.recv().unwrap();
                        thread::sleep(Duration::from_millis(200 * attempt));
                        Ok(())
                    })
                    .unwrap();
            });
            let waiter: Store = s.clone();
            scope.spawn(move || {
                wait_for_entry.recv().unwrap();
                about_to_write.send(()).unwrap();
                waiter
                    .upsert_node(thing(&format!("waited{attempt}")))
                    .unwrap();
            });
        });
        if s.metrics().lock_waits.count > 0 {
            break;
        }
    }
    let m = s.metrics();
    assert!(m.lock_waits.count >= 1, "{m:?}");
    assert_eq!(m.lock_waits.errors, 0, "every wait ended with the lock");
    assert_eq!(m.lock_waits.latency.count, m.lock_waits.count);
    assert!(m.lock_waits.max() > Duration::ZERO);
    assert_eq!(m.write_transactions.errors, 0);
}
