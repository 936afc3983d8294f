//! Random sequences mixing graph, document and event operations, in transactions
//! that commit or roll back, checked against a plain model after every step: what
//! a transaction wrote of the three kinds is there together or not at all, and the
//! event log runs without a gap whatever rolled back. (On a backend that keeps no
//! events, appends are expected to be refused as `Unsupported`.)

use std::collections::BTreeMap;
use std::io::{self, Read};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::Fixture;
use super::documents::all_document_keys;
use super::model::{Expect, Model, Op, Outcome, apply_in, observe, reset, run_model, simple_op};
use crate::events::{EventRead, ExpectedVersion, NewEvent, ReadOptions};
use crate::{DocumentRead, DocumentWrite, Error, ErrorKind, Store, WriteOptions, WriteTx};

/// Keys in folder relations (`a` / `a/b` / `a/b/c`), case and normalisation twins.
const KEYS: [&str; 8] = ["a", "a/b", "a/c", "a/b/c", "b", "B", "c\u{e9}", "ce\u{301}"];

/// How many streams the model appends to.
const STREAMS: usize = 2;

/// One step: a graph, document or event operation, or a transaction of them.
#[derive(Clone, Debug)]
pub enum MixedOp {
    Graph(Op),
    Write {
        key: usize,
        content: u8,
        expect: Expect,
        create_only: bool,
        streamed: bool,
    },
    Delete {
        key: usize,
    },
    Remove {
        key: usize,
    },
    Batch {
        items: Vec<(usize, u8)>,
    },
    /// A streamed write whose source fails: nothing changes.
    BrokenStream {
        key: usize,
    },
    /// One event appended to stream `stream`, expecting its version as `expect` says.
    Append {
        stream: usize,
        data: u8,
        expect: Expect,
    },
    Txn {
        ops: Vec<MixedOp>,
        commit: bool,
    },
}

fn expect_event() -> impl Strategy<Value = Expect> {
    prop_oneof![
        Just(Expect::Any),
        Just(Expect::Current),
        Just(Expect::Stale)
    ]
}

fn simple_mixed() -> impl Strategy<Value = MixedOp> {
    let k = 0..KEYS.len();
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::Current),
        Just(Expect::Stale)
    ];
    prop_oneof![
        3 => simple_op().prop_map(MixedOp::Graph),
        5 => (k.clone(), any::<u8>(), expect, proptest::bool::weighted(0.2), any::<bool>())
            .prop_map(|(key, content, expect, create_only, streamed)| MixedOp::Write { key, content, expect, create_only, streamed }),
        2 => k.clone().prop_map(|key| MixedOp::Delete { key }),
        1 => k.clone().prop_map(|key| MixedOp::Remove { key }),
        1 => proptest::collection::vec((k.clone(), any::<u8>()), 1..4).prop_map(|items| MixedOp::Batch { items }),
        1 => k.prop_map(|key| MixedOp::BrokenStream { key }),
        3 => (0..STREAMS, any::<u8>(), expect_event())
            .prop_map(|(stream, data, expect)| MixedOp::Append { stream, data, expect }),
    ]
}

fn mixed() -> impl Strategy<Value = MixedOp> {
    prop_oneof![
        6 => simple_mixed(),
        3 => (proptest::collection::vec(simple_mixed(), 1..8), proptest::bool::weighted(0.7))
            .prop_map(|(ops, commit)| MixedOp::Txn { ops, commit }),
    ]
}

/// The graph model, the documents (key → (content, version)) and the events this
/// case appended, in log order: (stream, data).
#[derive(Clone, Debug, Default, PartialEq)]
struct Both {
    graph: Model,
    docs: BTreeMap<String, (Vec<u8>, u64)>,
    events: Vec<(usize, u8)>,
    /// Whether the backend keeps events (not compared: known before the case).
    keeps_events: bool,
}

fn content(byte: u8) -> Vec<u8> {
    // Lengths from 0 to 255, so empty documents come up too.
    vec![byte; usize::from(byte)]
}

impl Both {
    fn tree_blocked(&self, key: &str, batch: &[&str]) -> bool {
        let clashes = |other: &str| {
            other.starts_with(&format!("{key}/")) || key.starts_with(&format!("{other}/"))
        };
        self.docs.keys().any(|k| clashes(k)) || batch.iter().any(|k| *k != key && clashes(k))
    }

    fn write(&mut self, key: &str, bytes: Vec<u8>, expect: Expect, create_only: bool) -> Outcome {
        let current = self.docs.get(key).map(|(_, v)| *v);
        // `create_only` replaces any expected version (both are preconditions).
        if create_only {
            if current.is_some() {
                return Err(ErrorKind::AlreadyExists);
            }
        } else if matches!(expect, Expect::Stale) {
            return Err(ErrorKind::Conflict);
        }
        if current.is_none() && self.tree_blocked(key, &[]) {
            return Err(ErrorKind::AlreadyExists);
        }
        self.docs
            .insert(key.to_owned(), (bytes, current.unwrap_or(0) + 1));
        Ok(())
    }

    fn apply(&mut self, op: &MixedOp) -> Outcome {
        match op {
            MixedOp::Graph(op) => self.graph.apply(op, false),
            MixedOp::Write {
                key,
                content: c,
                expect,
                create_only,
                ..
            } => self.write(KEYS[*key], content(*c), *expect, *create_only),
            MixedOp::Delete { key } => self
                .docs
                .remove(KEYS[*key])
                .map(|_| ())
                .ok_or(ErrorKind::DocumentNotFound),
            MixedOp::Remove { key } => {
                self.docs.remove(KEYS[*key]);
                Ok(())
            }
            MixedOp::Batch { items } => {
                let keys: Vec<&str> = items.iter().map(|(k, _)| KEYS[*k]).collect();
                for (i, key) in keys.iter().enumerate() {
                    if keys[..i].contains(key) {
                        return Err(ErrorKind::InvalidInput);
                    }
                }
                for key in &keys {
                    if !self.docs.contains_key(*key) && self.tree_blocked(key, &keys) {
                        return Err(ErrorKind::AlreadyExists);
                    }
                }
                for (k, c) in items {
                    let version = self.docs.get(KEYS[*k]).map_or(0, |(_, v)| *v);
                    self.docs
                        .insert(KEYS[*k].to_owned(), (content(*c), version + 1));
                }
                Ok(())
            }
            MixedOp::BrokenStream { key } => {
                let key = KEYS[*key];
                if !self.docs.contains_key(key) && self.tree_blocked(key, &[]) {
                    Err(ErrorKind::AlreadyExists)
                } else {
                    Err(ErrorKind::Io)
                }
            }
            MixedOp::Append {
                stream,
                data,
                expect,
            } => {
                if !self.keeps_events {
                    return Err(ErrorKind::Unsupported);
                }
                if matches!(expect, Expect::Stale) {
                    return Err(ErrorKind::Conflict);
                }
                self.events.push((*stream, *data));
                Ok(())
            }
            MixedOp::Txn { ops, commit } => {
                let mut inner = self.clone();
                for op in ops {
                    let _ = inner.apply(op);
                }
                if !commit {
                    return Err(ErrorKind::InvalidInput);
                }
                *self = inner;
                Ok(())
            }
        }
    }
}

/// A reader that yields some bytes, then fails.
pub(crate) struct Broken(pub(crate) usize);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("broken source"));
        }
        let n = buf.len().min(self.0);
        self.0 -= n;
        Ok(n)
    }
}

/// The name of the model's stream `i` in the case whose log started after `base`.
fn stream_name(base: u64, i: usize) -> String {
    format!("model-{base}-s{i}")
}

fn apply_in_tx(tx: &mut WriteTx<'_>, op: &MixedOp, base: u64) -> Result<(), Error> {
    match op {
        MixedOp::Graph(op) => apply_in(tx, op),
        MixedOp::Write {
            key,
            content: c,
            expect,
            create_only,
            streamed,
        } => {
            let key = KEYS[*key];
            let current = tx.find_document(key)?.map_or(0, |d| d.meta.version);
            let mut options = WriteOptions::new();
            match expect {
                Expect::Any => {}
                Expect::Current => options = options.expect_version(current),
                Expect::Stale => options = options.expect_version(current + 1),
            }
            if *create_only {
                options = options.create_only();
            }
            let bytes = content(*c);
            if *streamed {
                tx.write_document_from(key, bytes.as_slice(), &options)
                    .map(drop)
            } else {
                tx.write_document_with(key, &bytes, &options).map(drop)
            }
        }
        MixedOp::Delete { key } => tx.delete_document(KEYS[*key]).map(drop),
        MixedOp::Remove { key } => tx.remove_document(KEYS[*key]).map(drop),
        MixedOp::Batch { items } => tx
            .write_documents(
                items
                    .iter()
                    .map(|(k, c)| DocumentWrite::new(KEYS[*k], content(*c))),
            )
            .map(drop),
        MixedOp::BrokenStream { key } => tx
            .write_document_from(KEYS[*key], Broken(100), &WriteOptions::new())
            .map(drop),
        MixedOp::Append {
            stream,
            data,
            expect,
        } => {
            let name = stream_name(base, *stream);
            let expected = match expect {
                Expect::Any => ExpectedVersion::Any,
                Expect::Current | Expect::Stale => {
                    let version = tx.stream_info(&name)?.map_or(0, |i| i.version);
                    match (expect, version) {
                        (Expect::Current, 0) => ExpectedVersion::NoStream,
                        (Expect::Current, v) => ExpectedVersion::Exact(v),
                        _ => ExpectedVersion::Exact(version + 1),
                    }
                }
            };
            tx.append(
                &name,
                expected,
                [NewEvent::new("m", serde_json::json!(data))],
            )
            .map(drop)
        }
        MixedOp::Txn { .. } => Err(Error::invalid_input(
            "model operation",
            "transactions do not nest",
        )),
    }
}

fn apply_to_store(store: &Store, op: &MixedOp, inner: &mut Vec<Outcome>, base: u64) -> Outcome {
    let outcome = match op {
        MixedOp::Txn { ops, commit } => store.write(|tx| {
            for op in ops {
                inner.push(apply_in_tx(tx, op, base).map_err(|e| e.kind()));
            }
            super::model::commit_or_roll_back(*commit)
        }),
        other => store.write(|tx| apply_in_tx(tx, other, base)),
    };
    outcome.map_err(|e| e.kind())
}

/// The events after position `base`, as the model has them; their positions must
/// run on from `base` without a gap.
fn observe_events(store: &Store, base: u64) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    let mut from = base + 1;
    loop {
        let page = store
            .read_all(&ReadOptions::forwards(500).from(from))
            .unwrap_or_else(|e| panic!("reading the log: {e}"));
        for e in &page.events {
            assert_eq!(
                e.position,
                from,
                "the log skips from {} to {}",
                from - 1,
                e.position
            );
            from += 1;
            let stream = (0..STREAMS)
                .find(|i| e.stream == stream_name(base, *i))
                .unwrap_or_else(|| panic!("an event of another stream: {}", e.stream));
            let data = e
                .data
                .as_u64()
                .and_then(|d| u8::try_from(d).ok())
                .unwrap_or_else(|| panic!("unexpected data {}", e.data));
            out.push((stream, data));
        }
        if page.at_end {
            return out;
        }
    }
}

fn observe_both(store: &Store, base: u64, keeps_events: bool) -> Both {
    let mut docs = BTreeMap::new();
    for key in all_document_keys(store) {
        let doc = store
            .get_document(&key)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        docs.insert(key, (doc.content, doc.meta.version));
    }
    Both {
        graph: observe(store),
        docs,
        events: if keeps_events {
            observe_events(store, base)
        } else {
            Vec::new()
        },
        keeps_events,
    }
}

fn run_case(store: &Store, ops: &[MixedOp]) -> Result<(), TestCaseError> {
    reset(store).map_err(|e| TestCaseError::fail(format!("reset failed: {e}")))?;
    for key in all_document_keys(store) {
        store
            .remove_document(&key)
            .map_err(|e| TestCaseError::fail(format!("reset failed: {e}")))?;
    }
    // Events cannot be removed between cases: each case appends after the log's end,
    // to streams of its own.
    let (keeps_events, base) = match store.last_position() {
        Ok(head) => (true, head),
        Err(e) if e.kind() == ErrorKind::Unsupported => (false, 0),
        Err(e) => return Err(TestCaseError::fail(format!("reading the log: {e}"))),
    };
    let mut model = Both {
        keeps_events,
        ..Both::default()
    };
    for (step, op) in ops.iter().enumerate() {
        let expected_inner: Vec<Outcome> = match op {
            MixedOp::Txn { ops, .. } => {
                let mut inner = model.clone();
                ops.iter().map(|op| inner.apply(op)).collect()
            }
            _ => Vec::new(),
        };
        let expected = model.apply(op);
        let mut inner = Vec::new();
        let got = apply_to_store(store, op, &mut inner, base);
        prop_assert_eq!(
            &inner,
            &expected_inner,
            "inner outcomes of step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(got, expected, "outcome of step {}: {:?}", step, op);
        let observed = observe_both(store, base, keeps_events);
        prop_assert_eq!(&observed, &model, "state after step {}: {:?}", step, op);
    }
    let report = store
        .check()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(report.is_ok(), "check found {:?}", report.problems);
    Ok(())
}

pub fn documents_model_check(f: Fixture) {
    run_model(
        &proptest::collection::vec(mixed(), 1..30),
        |ops| run_case(&f.store, &ops),
        "the store disagrees with the model of graph, documents and events",
    );
}
