//! Random sequences of event-store operations on the backend under test and on the
//! memory backend: every outcome and the whole event store after them must agree
//! (`KGSTORE_MODEL_CASES` raises the number of sequences), and the log must stay
//! contiguous.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use super::ev_id;
use crate::events::backend::{EventLogRead, LogScan};
use crate::events::{
    AckOutcome, Append, AppendOptions, EventRead, ExpectedVersion, GroupOptions, Nack, Retention,
};
use crate::suite::Fixture;
use crate::{Error, Result, Store};

const STREAMS: [&str; 3] = ["s0", "s1", "s-2"];
const GROUPS: [&str; 2] = ["g0", "g1"];

/// One stream's part of a random append: stream index, expected-version code, and
/// `(id, data)` of each event.
pub type Part = (usize, u8, Vec<(u8, u8)>);

/// One step of a random sequence.
#[derive(Clone, Debug)]
pub enum EvOp {
    Append {
        streams: Vec<Part>,
        batch: bool,
    },
    RolledBack {
        stream: usize,
        id: u8,
    },
    Delete {
        stream: usize,
        expected: u8,
    },
    Truncate {
        stream: usize,
        before: u64,
    },
    MaxCount {
        stream: usize,
        count: u64,
    },
    CreateGroup {
        group: usize,
    },
    Poll {
        group: usize,
        max: usize,
        settle: u8,
    },
    Replay {
        group: usize,
    },
}

fn expected(code: u8) -> ExpectedVersion {
    match code % 6 {
        0 | 1 => ExpectedVersion::Any,
        2 => ExpectedVersion::NoStream,
        3 => ExpectedVersion::StreamExists,
        n => ExpectedVersion::Exact(u64::from(n) - 3),
    }
}

fn op() -> impl Strategy<Value = EvOp> {
    let events = prop::collection::vec((0u8..14, 0u8..3), 1..4);
    let part = (0..STREAMS.len(), any::<u8>(), events);
    prop_oneof![
        6 => (prop::collection::vec(part, 1..3), any::<bool>())
            .prop_map(|(streams, batch)| EvOp::Append { streams, batch }),
        1 => (0..STREAMS.len(), 0u8..14).prop_map(|(stream, id)| EvOp::RolledBack { stream, id }),
        1 => (0..STREAMS.len(), any::<u8>()).prop_map(|(stream, expected)| EvOp::Delete { stream, expected }),
        1 => (0..STREAMS.len(), 0u64..5).prop_map(|(stream, before)| EvOp::Truncate { stream, before }),
        1 => (0..STREAMS.len(), 1u64..4).prop_map(|(stream, count)| EvOp::MaxCount { stream, count }),
        1 => (0..GROUPS.len()).prop_map(|group| EvOp::CreateGroup { group }),
        3 => (0..GROUPS.len(), 1usize..6, any::<u8>()).prop_map(|(group, max, settle)| EvOp::Poll { group, max, settle }),
        1 => (0..GROUPS.len()).prop_map(|group| EvOp::Replay { group }),
    ]
}

/// The outcome of one step, without anything time-dependent.
fn outcome(result: Result<Value>) -> Value {
    match result {
        Ok(v) => v,
        Err(e) => json!({"error": e.kind().as_str()}),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::backend("suite", e))
}

fn run(store: &Store, op: &EvOp) -> Value {
    outcome(match op {
        EvOp::Append { streams, batch } => {
            let appends = streams
                .iter()
                .map(|(s, code, events)| {
                    Append::new(
                        STREAMS[*s],
                        expected(*code),
                        events
                            .iter()
                            .map(|(id, data)| ev_id(&format!("id{id}"), "t", json!(data))),
                    )
                })
                .collect();
            let options = AppendOptions {
                batch: batch.then(|| "b".to_owned()),
            };
            store
                .append_all(appends, &options)
                .and_then(|r| to_value(&r))
        }
        EvOp::RolledBack { stream, id } => store
            .write(|tx| {
                tx.append(
                    STREAMS[*stream],
                    ExpectedVersion::Any,
                    [ev_id(&format!("rb{id}"), "t", json!(0))],
                )?;
                Err::<(), _>(Error::invalid_input("test", "roll back"))
            })
            .map(|()| Value::Null),
        EvOp::Delete {
            stream,
            expected: code,
        } => store
            .delete_stream(STREAMS[*stream], expected(*code))
            .map(|i| json!([i.version, i.deleted, i.removed_before])),
        EvOp::Truncate { stream, before } => store
            .truncate_stream(STREAMS[*stream], *before)
            .map(|i| json!([i.version, i.removed_before])),
        EvOp::MaxCount { stream, count } => store
            .set_retention(
                STREAMS[*stream],
                Retention {
                    max_count: Some(*count),
                    ..Retention::default()
                },
            )
            .map(|i| json!([i.version, i.removed_before])),
        EvOp::CreateGroup { group } => {
            let options = GroupOptions {
                max_deliveries: 2,
                lease_ms: 3_600_000,
                backoff: crate::events::Backoff {
                    initial_ms: 0,
                    max_ms: 0,
                    jitter: false,
                },
                ..GroupOptions::default()
            };
            store
                .create_group(GROUPS[*group], options)
                .map(|g| json!([g.checkpoint, g.cursor]))
        }
        EvOp::Poll { group, max, settle } => poll(store, GROUPS[*group], *max, *settle),
        EvOp::Replay { group } => store
            .replay_dead_letters(GROUPS[*group], 1, u64::MAX, 2)
            .map(|n| json!(n)),
    })
}

fn poll(store: &Store, group: &str, max: usize, settle: u8) -> Result<Value> {
    let deliveries = store.consumer(group, "c")?.poll(max)?;
    let mut out = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        let result = match (settle >> (i % 4)) % 4 {
            0 => store.ack(&d.token)?,
            1 => store.nack(&d.token, &Nack::Retry { after_ms: None }, "again")?,
            2 => store.nack(&d.token, &Nack::Park, "parked")?,
            _ => store.nack(&d.token, &Nack::Skip, "skipped")?,
        };
        let result = match result {
            AckOutcome::Retrying { .. } => json!("retrying"),
            other => to_value(&other)?,
        };
        out.push(json!([d.event.position, d.attempt, d.replay, result]));
    }
    Ok(Value::Array(out))
}

/// Everything in the event store but times.
fn state(store: &Store) -> Value {
    let outcome = store.with_events(|r: &dyn EventLogRead, _| {
        let records = r.log_scan(&LogScan {
            from: 1,
            limit: usize::MAX,
            ..LogScan::default()
        })?;
        let log: Vec<Value> = records
            .iter()
            .map(|r| {
                json!([
                    r.position, r.stream, r.version, r.id, r.data, r.removed, r.commit, r.batch,
                    r.digest
                ])
            })
            .collect();
        let contiguous = records.iter().zip(1u64..).all(|(r, p)| r.position == p);
        let mut streams = Vec::new();
        for s in STREAMS {
            if let Some(i) = crate::events::read::stream_info(r, s)? {
                streams.push(json!([
                    i.stream,
                    i.version,
                    i.last_position,
                    i.deleted,
                    i.removed_before,
                    i.retention
                ]));
            }
        }
        Ok(json!({"log": log, "contiguous": contiguous, "streams": streams}))
    });
    let mut value = outcome.unwrap_or_else(|e| json!({"error": e.to_string()}));
    let groups: Vec<Value> = store
        .list_groups()
        .unwrap()
        .into_iter()
        .map(|g| {
            let dlq: Vec<Value> = store
                .dead_letters(&g.name, None, 1000)
                .unwrap()
                .into_iter()
                .map(|l| {
                    json!([
                        l.position,
                        l.reason,
                        l.attempts,
                        l.replays,
                        l.replaying,
                        l.error
                    ])
                })
                .collect();
            let pending: Vec<Value> = store
                .pending_deliveries(&g.name)
                .unwrap()
                .into_iter()
                .map(|p| json!([p.position, p.attempt, p.leased, p.failures, p.replay]))
                .collect();
            json!([
                g.name,
                g.checkpoint,
                g.cursor,
                g.in_flight,
                g.dead_letters,
                g.replaying,
                g.counters,
                g.retention_gaps,
                dlq,
                pending
            ])
        })
        .collect();
    value["groups"] = Value::Array(groups);
    value["batch"] = match store.batch_status("b") {
        Ok(b) => json!([b.total, b.first_position, b.last_position, b.groups]),
        Err(e) => json!(e.kind().as_str()),
    };
    value
}

/// How many random sequences to run: `KGSTORE_MODEL_CASES`, default 24.
fn cases() -> u32 {
    std::env::var("KGSTORE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

pub fn events_agree_with_the_memory_backend(f: Fixture) {
    let fixture = std::cell::RefCell::new(f);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        let reference = Store::memory();
        // A fresh, empty event store for every case: clear the fixture's.
        let fixture = fixture.borrow();
        let store = &fixture.store;
        store
            .write(|tx| tx.ev_write(|w| w.log_clear()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, op) in ops.iter().enumerate() {
            let expected = run(&reference, op);
            let got = run(store, op);
            prop_assert_eq!(&got, &expected, "step {} ({:?})", i, op);
            let want = state(&reference);
            let have = state(store);
            prop_assert_eq!(&have, &want, "state after step {} ({:?})", i, op);
            prop_assert_eq!(&have["contiguous"], &json!(true));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

pub fn events_reopen_keeps_the_event_store(mut f: Fixture) {
    let s = f.store.clone();
    s.set_change_feed(true).unwrap();
    s.create_node(crate::suite::thing("n")).unwrap();
    s.set_event_schema("t", json!({"type": "integer"}), None)
        .unwrap();
    for op in [
        EvOp::CreateGroup { group: 0 },
        EvOp::Append {
            streams: vec![(0, 0, vec![(1, 1), (2, 2)]), (1, 2, vec![(3, 0)])],
            batch: true,
        },
        EvOp::Append {
            streams: vec![(2, 0, vec![(4, 1), (5, 2), (6, 0)])],
            batch: false,
        },
        EvOp::Poll {
            group: 0,
            max: 3,
            settle: 0b0110_0100,
        },
        EvOp::MaxCount {
            stream: 2,
            count: 1,
        },
        EvOp::Delete {
            stream: 1,
            expected: 0,
        },
    ] {
        let _ = run(&s, &op);
    }
    drop(s);
    let before = state(&f.store);
    let schema = f.store.event_schema("t").unwrap();
    let feed = f.store.change_feed_status().unwrap();
    f.reopen();
    assert_eq!(state(&f.store), before);
    assert_eq!(f.store.event_schema("t").unwrap(), schema);
    assert_eq!(f.store.change_feed_status().unwrap(), feed);
    assert!(f.store.change_feed_enabled().unwrap());
    // It goes on where it stopped: the next position follows the last.
    let last = f.store.last_position().unwrap();
    let r = f
        .store
        .append("s0", ExpectedVersion::Any, [ev_id("after", "t", json!(1))])
        .unwrap();
    assert_eq!(r.positions, [last + 1]);
}
