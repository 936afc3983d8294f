//! An application's own backend, written here outside the kgstore crates, plugged
//! in through the registry and put through the whole shared suite via `Store::open`.
//!
//! The backend keeps its graph in kgstore's `GraphState` and appends a line to an
//! audit log for every committed write — the kind of thing an application might
//! want that kgstore does not ship. It holds no documents, so the suite's
//! documents section is skipped for it, explicitly (`skip: documents`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kgstore::{
    Backend, Edge, EdgeKey, GraphRead, GraphState, Node, Open, ReadTxn, Result, SchemaTarget,
    Store, WriteTxn,
};
use kgstore_core::memory::{Gate, GateGuard};
use kgstore_core::suite::Fixture;
use serde_json::Value;

/// Committed writes, one line each.
type AuditLog = Arc<Mutex<Vec<String>>>;

struct AuditedBackend {
    committed: Mutex<GraphState>,
    /// One writer at a time: kgstore's `Gate`, which also reports a writer's wait
    /// (to the log and to `Store::metrics`) as a plain mutex would not.
    writer: Gate,
    log: AuditLog,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend for AuditedBackend {
    fn name(&self) -> &str {
        "audited"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(lock(&self.committed).clone()))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let guard = self.writer.enter(None, "the audited store's writer")?;
        let state = lock(&self.committed).clone();
        Ok(Box::new(AuditedWrite {
            backend: self,
            state,
            pending: Vec::new(),
            _guard: guard,
        }))
    }
}

struct AuditedWrite<'a> {
    backend: &'a AuditedBackend,
    state: GraphState,
    pending: Vec<String>,
    _guard: GateGuard<'a>,
}

kgstore::delegate_read_txn!(AuditedWrite<'_>, state);

impl WriteTxn for AuditedWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.pending.push(format!("put node {}", node.name));
        self.state.put_node(node.clone());
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        self.pending.push(format!("delete node {name}"));
        Ok(self.state.delete_node(name).is_some())
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.pending.push(format!("put edge {}", edge.key()));
        self.state.put_edge(edge.clone());
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        self.pending.push(format!("delete edge {key}"));
        Ok(self.state.delete_edge(key).is_some())
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.pending.push(format!("put schema {target}"));
        self.state.put_schema(target.clone(), schema.clone());
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        self.pending.push(format!("delete schema {target}"));
        Ok(self.state.delete_schema(target).is_some())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let AuditedWrite {
            backend,
            state,
            pending,
            _guard,
        } = *self;
        *lock(&backend.committed) = state;
        lock(&backend.log).extend(pending);
        Ok(())
    }
}

/// Registers the `audited` scheme once per test process; each open gets a fresh store.
fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        kgstore::register("audited", |url| {
            url.options.refuse_extra("audited")?;
            Ok(Box::new(AuditedBackend {
                committed: Mutex::new(GraphState::new()),
                writer: Gate::default(),
                log: Arc::new(Mutex::new(Vec::new())),
            }))
        })
        .unwrap();
    });
}

mod audited_suite {
    // This backend keeps neither documents nor events: the suite checks it says so,
    // and skips those sections.
    kgstore_core::test_suite!(|| {
        super::register();
        super::Fixture::new(<super::Store as super::Open>::open("audited://").unwrap())
    }, skip: documents, events);
}

#[test]
fn the_audit_log_sees_committed_writes_only() {
    let log: AuditLog = Arc::new(Mutex::new(Vec::new()));
    let mut registry = kgstore::Registry::default();
    let shared = Arc::clone(&log);
    registry
        .register("audited", move |_| {
            Ok(Box::new(AuditedBackend {
                committed: Mutex::new(GraphState::new()),
                writer: Gate::default(),
                log: Arc::clone(&shared),
            }))
        })
        .unwrap();
    let store = registry.open("audited://").unwrap();
    store.create_node(Node::new("a", "thing").unwrap()).unwrap();
    let _ = store.write(|tx| {
        tx.create_node(Node::new("b", "thing")?)?;
        Err::<(), _>(kgstore::Error::invalid_input("test", "roll back"))
    });
    assert_eq!(*lock(&log), ["put node a"]);
    assert_eq!(store.count_nodes().unwrap(), 1);
}

#[test]
fn unknown_schemes_and_bad_urls_are_refused() {
    let err = Store::open("nosuch://x").unwrap_err();
    assert_eq!(err.kind(), kgstore::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("known: "), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
    assert_eq!(
        Store::open("memory://?read_only=true").unwrap_err().kind(),
        kgstore::ErrorKind::InvalidInput
    );
    let err = Store::open("memory://?colour=blue").unwrap_err();
    assert!(err.to_string().contains("'colour'"), "{err}");
    assert_eq!(
        kgstore::Registry::default()
            .register("Bad Scheme", |_| unreachable!())
            .unwrap_err()
            .kind(),
        kgstore::ErrorKind::InvalidInput
    );
    let verified = kgstore::OpenOptions::new()
        .verify(true)
        .open("memory://")
        .unwrap();
    assert_eq!(verified.count_nodes().unwrap(), 0);
}

/// A backend that keeps no events backs up (with an empty event log) and restores
/// such backups, but refuses one that holds events, naming itself, and is left as it was.
#[test]
fn a_backend_without_events_refuses_a_backup_that_has_them() {
    use kgstore::backup::{self, RestoreMode};
    use kgstore::events::{ExpectedVersion, NewEvent};
    register();
    let dir = tempfile::tempdir().unwrap();
    let audited = <Store as Open>::open("audited://").unwrap();
    audited
        .create_node(Node::new("a", "thing").unwrap())
        .unwrap();
    let manifest = backup::backup(&audited, &dir.path().join("plain")).unwrap();
    assert_eq!(manifest.counts.events, 0);
    let again = <Store as Open>::open("audited://").unwrap();
    backup::restore_into(&dir.path().join("plain"), &again, RestoreMode::Empty).unwrap();
    assert_eq!(again.count_nodes().unwrap(), 1);

    let with_events = kgstore::open("memory://").unwrap();
    with_events
        .append(
            "s",
            ExpectedVersion::Any,
            [NewEvent::new("t", serde_json::json!(1))],
        )
        .unwrap();
    backup::backup(&with_events, &dir.path().join("events")).unwrap();
    let target = <Store as Open>::open("audited://").unwrap();
    let err =
        backup::restore_into(&dir.path().join("events"), &target, RestoreMode::Empty).unwrap_err();
    assert_eq!(err.kind(), kgstore::ErrorKind::Unsupported);
    assert!(err.to_string().contains("audited"), "{err}");
    assert!(err.to_string().contains("1 events"), "{err}");
    assert_eq!(target.count_nodes().unwrap(), 0);
}

/// How a counted backend's write transactions ended.
#[derive(Default)]
struct Ends {
    begun: std::sync::atomic::AtomicUsize,
    committed: std::sync::atomic::AtomicUsize,
    rolled_back: std::sync::atomic::AtomicUsize,
}

impl Ends {
    /// `(begun, committed, rolled back)`.
    fn get(&self) -> (usize, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.begun.load(SeqCst),
            self.committed.load(SeqCst),
            self.rolled_back.load(SeqCst),
        )
    }
}

/// A backend with events (so that the change feed can be on) that counts how
/// its write transactions end. Its `Backend::write_with` is the default one
/// (`begin_write`, then `WriteTxn::commit`); [`OwnWriteWith`] overrides it.
struct CountedBackend {
    committed: Mutex<GraphState>,
    writer: Gate,
    ends: Arc<Ends>,
}

struct CountedRead {
    state: GraphState,
}

kgstore::delegate_read_txn!(CountedRead, state, events);

struct CountedWrite<'a> {
    committed: &'a Mutex<GraphState>,
    ends: &'a Ends,
    state: GraphState,
    done: bool,
    _guard: GateGuard<'a>,
}

kgstore::delegate_read_txn!(CountedWrite<'_>, state, events);

impl CountedBackend {
    fn new(ends: &Arc<Ends>) -> Self {
        Self {
            committed: Mutex::new(GraphState::new()),
            writer: Gate::default(),
            ends: Arc::clone(ends),
        }
    }

    fn write_txn(&self) -> Result<CountedWrite<'_>> {
        let guard = self.writer.enter(None, "the counted store's writer")?;
        self.ends
            .begun
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(CountedWrite {
            committed: &self.committed,
            ends: &self.ends,
            state: lock(&self.committed).clone(),
            done: false,
            _guard: guard,
        })
    }
}

impl Backend for CountedBackend {
    fn name(&self) -> &str {
        "counted"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let state = lock(&self.committed).clone();
        Ok(Box::new(CountedRead { state }))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(self.write_txn()?))
    }
}

/// [`CountedBackend`] overriding `Backend::write_with`, keeping the transaction
/// on the stack as the memory backend does; all else is the counted backend's.
struct OwnWriteWith(CountedBackend);

impl Backend for OwnWriteWith {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.0.begin_read()
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        self.0.begin_write()
    }

    fn write_with(&self, work: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut txn = self.0.write_txn()?;
        work(&mut txn)?;
        txn.finish()
    }
}

impl CountedWrite<'_> {
    fn finish(mut self) -> Result<()> {
        *lock(self.committed) = self.state.clone();
        self.done = true;
        self.ends
            .committed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for CountedWrite<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.ends
                .rolled_back
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl WriteTxn for CountedWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.state.put_node(node.clone());
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        Ok(self.state.delete_node(name).is_some())
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.state.put_edge(edge.clone());
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        Ok(self.state.delete_edge(key).is_some())
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.state.put_schema(target.clone(), schema.clone());
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        Ok(self.state.delete_schema(target).is_some())
    }

    fn events_mut(&mut self) -> Option<&mut dyn kgstore::events::EventLogWrite> {
        Some(self.state.event_state_mut())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        (*self).finish()
    }
}

/// Every `Store::write` commits the backend's transaction exactly once when it
/// succeeds and never when its work fails, fails at commit (a deferred check),
/// or panics — through the default `Backend::write_with` and through one that
/// overrides it, with the change feed off and on (where the store wraps the
/// lent transaction in the feed's recorder, whose own commit commits nothing:
/// the feed's events are committed with the graph by the one backend commit).
#[test]
fn each_write_commits_the_backend_once_and_a_failed_one_never() {
    for (own, feed) in [(false, false), (false, true), (true, false), (true, true)] {
        let case = format!("write_with overridden: {own}, change feed: {feed}");
        let ends = Arc::new(Ends::default());
        let store = if own {
            Store::new(OwnWriteWith(CountedBackend::new(&ends)))
        } else {
            Store::new(CountedBackend::new(&ends))
        };
        if feed {
            store.set_change_feed(true).unwrap();
        }
        let (begun, committed, rolled_back) = ends.get();
        let n = usize::from(feed);
        assert_eq!((begun, committed, rolled_back), (n, n, 0), "{case}");
        let expect = |more: (usize, usize, usize), what: &str| {
            let (b, c, r) = ends.get();
            assert_eq!(
                (b - begun, c - committed, r - rolled_back),
                more,
                "{case}: {what}"
            );
        };
        store.create_node(Node::new("a", "thing").unwrap()).unwrap();
        expect((1, 1, 0), "one write");
        store.write(|_| Ok(())).unwrap();
        expect((2, 2, 0), "a write that writes nothing");
        let err = store
            .write(|tx| {
                tx.create_node(Node::new("b", "thing")?)?;
                Err::<(), _>(kgstore::Error::invalid_input("test", "roll back"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), kgstore::ErrorKind::InvalidInput, "{case}");
        expect((3, 2, 1), "work that failed");
        let err = store
            .write(|tx| {
                tx.defer_checks();
                tx.create_edge(Edge::new("a", kgstore::RelationType::Calls, "ghost")?)?;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.kind(), kgstore::ErrorKind::Validation, "{case}");
        expect((4, 2, 2), "a deferred check that failed at commit");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|tx| -> Result<()> {
                tx.create_node(Node::new("c", "thing")?)?;
                panic!("the work panics");
            })
        }));
        assert!(panicked.is_err(), "{case}");
        expect((5, 2, 3), "work that panicked");
        store.create_node(Node::new("d", "thing").unwrap()).unwrap();
        expect((6, 3, 3), "a write after the panic");
        let names: Vec<String> = store
            .list_nodes(
                &kgstore::NodeFilter::default(),
                &kgstore::PageRequest::first(10),
            )
            .unwrap()
            .items
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["a", "d"], "{case}");
        let status = store.change_feed_status().unwrap();
        assert_eq!(
            (status.enabled, status.events),
            (feed, if feed { 2 } else { 0 }),
            "{case}"
        );
    }
}
