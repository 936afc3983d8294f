//! Appends: expected versions, multi-stream atomicity, idempotency, limits, names,
//! and appends inside graph transactions.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;

use super::{all_events, ev, ev_id, positions, stream_events};
use crate::events::model::{MAX_EVENT_BYTES, MAX_EVENTS_PER_APPEND, MAX_STREAM_BYTES};
use crate::events::{Append, AppendOptions, EventRead, ExpectedVersion, NewEvent, ReadOptions};
use crate::suite::{Fixture, kind_of, thing};
use crate::{Error, ErrorKind, GraphRead};

use ExpectedVersion::{Any, Exact, NoStream, StreamExists};

pub fn events_append_and_read_stream(f: Fixture) {
    let s = &f.store;
    let r = s
        .append(
            "orders",
            NoStream,
            [ev("placed", json!({"n": 1})), ev("paid", json!({"n": 1}))],
        )
        .unwrap();
    assert_eq!(r.positions, [1, 2]);
    assert_eq!(r.commit, 1);
    assert!(!r.duplicate);
    assert_eq!(r.streams[0].first_version, 1);
    assert_eq!(r.streams[0].last_version, 2);
    let events = stream_events(s, "orders");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, "placed");
    assert_eq!(events[0].data, json!({"n": 1}));
    assert_eq!((events[1].position, events[1].version), (2, 2));
    assert_eq!(events[0].commit, events[1].commit);
    assert_eq!(events[0].recorded_at, events[1].recorded_at);
    assert_eq!(events[0].id.len(), 36, "a generated id: {}", events[0].id);
    let info = s.stream_info("orders").unwrap().unwrap();
    assert_eq!((info.version, info.last_position), (2, 2));
    assert_eq!(s.last_position().unwrap(), 2);
    let r = s.append("other", Any, [ev("x", json!(null))]).unwrap();
    assert_eq!(r.positions, [3]);
    assert_eq!(r.commit, 3);
}

pub fn events_expected_any_appends_whatever_the_version(f: Fixture) {
    let s = &f.store;
    for i in 0..3 {
        let r = s.append("s", Any, [ev("t", json!(i))]).unwrap();
        assert_eq!(r.streams[0].last_version, i + 1);
    }
}

pub fn events_expected_no_stream_accepts_only_a_new_stream(f: Fixture) {
    let s = &f.store;
    s.append("s", NoStream, [ev("t", json!(1))]).unwrap();
    let err = s.append("s", NoStream, [ev("t", json!(2))]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    match &err {
        Error::WrongExpectedVersion { stream, actual, .. } => {
            assert_eq!((stream.as_str(), *actual), ("s", 1));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert!(err.to_string().contains("no stream"), "{err}");
    assert_eq!(stream_events(s, "s").len(), 1);
}

pub fn events_expected_stream_exists_refuses_a_new_stream(f: Fixture) {
    let s = &f.store;
    let err = s
        .append("s", StreamExists, [ev("t", json!(1))])
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongExpectedVersion { actual: 0, .. }),
        "{err:?}"
    );
    assert_eq!(s.last_position().unwrap(), 0);
    s.append("s", Any, [ev("t", json!(1))]).unwrap();
    s.append("s", StreamExists, [ev("t", json!(2))]).unwrap();
    assert_eq!(stream_events(s, "s").len(), 2);
}

pub fn events_expected_exact_checks_the_version(f: Fixture) {
    let s = &f.store;
    s.append("s", Exact(0), [ev("t", json!(1))]).unwrap();
    s.append("s", Exact(1), [ev("t", json!(2)), ev("t", json!(3))])
        .unwrap();
    for wrong in [0, 1, 2, 4, 99] {
        let err = s
            .append("s", Exact(wrong), [ev("t", json!(4))])
            .unwrap_err();
        match err {
            Error::WrongExpectedVersion {
                actual, expected, ..
            } => {
                assert_eq!(actual, 3);
                assert!(expected.contains(&wrong.to_string()), "{expected}");
            }
            other => panic!("{other:?}"),
        }
    }
    s.append("s", Exact(3), [ev("t", json!(4))]).unwrap();
    assert_eq!(s.stream_info("s").unwrap().unwrap().version, 4);
}

pub fn events_multi_stream_append_is_atomic(f: Fixture) {
    let s = &f.store;
    s.append("b", Any, [ev("t", json!(0))]).unwrap();
    let err = s
        .append_all(
            vec![
                Append::new("a", NoStream, [ev("t", json!(1))]),
                Append::new("b", NoStream, [ev("t", json!(2))]),
            ],
            &AppendOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongExpectedVersion { stream, .. } if stream == "b"),
        "{err:?}"
    );
    assert!(
        s.stream_info("a").unwrap().is_none(),
        "nothing of 'a' written"
    );
    assert_eq!(s.last_position().unwrap(), 1);
    let r = s
        .append_all(
            vec![
                Append::new("a", NoStream, [ev("t", json!(1)), ev("t", json!(2))]),
                Append::new("b", Exact(1), [ev("t", json!(3))]),
            ],
            &AppendOptions::default(),
        )
        .unwrap();
    assert_eq!(r.positions, [2, 3, 4]);
    assert_eq!(r.streams.len(), 2);
    assert_eq!(
        (r.streams[0].first_position, r.streams[0].last_position),
        (2, 3)
    );
    assert_eq!(
        (r.streams[1].first_version, r.streams[1].last_version),
        (2, 2)
    );
    let all = all_events(s);
    assert!(all[1..].iter().all(|e| e.commit == 2), "one commit");
}

pub fn events_same_stream_twice_in_one_append_is_refused(f: Fixture) {
    let s = &f.store;
    let err = s
        .append_all(
            vec![
                Append::new("a", Any, [ev("t", json!(1))]),
                Append::new("a", Any, [ev("t", json!(2))]),
            ],
            &AppendOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(s.last_position().unwrap(), 0);
}

pub fn events_idempotent_retry_returns_original_positions(f: Fixture) {
    let s = &f.store;
    s.append("other", Any, [ev("t", json!(0))]).unwrap();
    let events = || [ev_id("a1", "t", json!(1)), ev_id("a2", "t", json!(2))];
    let first = s.append("s", NoStream, events()).unwrap();
    s.append("other", Any, [ev("t", json!(3))]).unwrap();
    // Every expected-version mode, even ones the stream no longer meets.
    for expected in [Any, NoStream, StreamExists, Exact(0), Exact(2), Exact(7)] {
        let again = s.append("s", expected, events()).unwrap();
        assert!(again.duplicate, "{expected}");
        assert_eq!(again.positions, first.positions, "{expected}");
        assert_eq!(again.streams, first.streams, "{expected}");
        assert_eq!(again.commit, first.commit);
    }
    assert_eq!(s.last_position().unwrap(), 4, "nothing appended twice");
    assert_eq!(stream_events(s, "s").len(), 2);
}

pub fn events_idempotent_retry_survives_reopen(mut f: Fixture) {
    let events = || {
        vec![
            Append::new("s", NoStream, [ev_id("r1", "t", json!({"a": [1, 2]}))]),
            Append::new(
                "u",
                NoStream,
                [ev_id("r2", "u", json!("x")).with_correlation_id("c")],
            ),
        ]
    };
    let first = f
        .store
        .append_all(events(), &AppendOptions::default())
        .unwrap();
    f.store.append("s", Any, [ev("t", json!(9))]).unwrap();
    // Persistent backends really reopen; the memory backend keeps going, and the
    // retry must still be recognised however long ago the first append was.
    f.reopen();
    let again = f
        .store
        .append_all(events(), &AppendOptions::default())
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    assert_eq!(f.store.last_position().unwrap(), 3);
    // And a different payload under a known id is still a conflict after the reopen.
    let err = f
        .store
        .append("s", Any, [ev_id("r1", "t", json!({"a": [2, 1]}))])
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEvent { .. }), "{err:?}");
}

pub fn events_same_id_other_payload_is_conflict(f: Fixture) {
    let s = &f.store;
    s.append(
        "s",
        Any,
        [ev_id("x", "t", json!(1)).with_causation_id("c1")],
    )
    .unwrap();
    let variants = [
        ("s", ev_id("x", "t", json!(2)).with_causation_id("c1")),
        ("s", ev_id("x", "t2", json!(1)).with_causation_id("c1")),
        ("s2", ev_id("x", "t", json!(1)).with_causation_id("c1")),
        ("s", ev_id("x", "t", json!(1)).with_causation_id("c2")),
        ("s", ev_id("x", "t", json!(1))),
    ];
    for (stream, event) in variants {
        let err = s.append(stream, Any, [event]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(
            matches!(&err, Error::DuplicateEvent { id, .. } if id == "x"),
            "{err:?}"
        );
        assert!(err.to_string().contains("position 1"), "{err}");
    }
    assert_eq!(s.last_position().unwrap(), 1);
}

pub fn events_partial_retry_is_conflict(f: Fixture) {
    let s = &f.store;
    s.append("s", Any, [ev_id("p1", "t", json!(1))]).unwrap();
    let err = s
        .append(
            "s",
            Any,
            [ev_id("p1", "t", json!(1)), ev_id("p2", "t", json!(2))],
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateEvent { id, .. } if id == "p1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("whole"), "{err}");
    assert_eq!(s.last_position().unwrap(), 1);
}

pub fn events_known_id_late_in_a_long_append_writes_none_of_it(f: Fixture) {
    // Backends may let the insert find known ids (SQLite inserts 32 rows a
    // statement): an id known at the 38th event must leave none of the 37 before it,
    // and the transaction must go on with the same positions.
    let s = &f.store;
    s.append("s", Any, [ev_id("k37", "t", json!(37))]).unwrap();
    let events = |known: bool| -> Vec<NewEvent> {
        (0..40)
            .map(|i| match i {
                37 if known => ev_id("k37", "t", json!(37)),
                _ => ev_id(&format!("n{i}"), "t", json!(i)),
            })
            .collect()
    };
    let (err, next) = s
        .write(|tx| {
            let err = tx.append("long", Any, events(true)).unwrap_err();
            let next = tx.append("s", Exact(1), [ev_id("after", "t", json!(0))])?;
            tx.create_node(thing("n"))?;
            Ok((err, next))
        })
        .unwrap();
    assert!(
        matches!(&err, Error::DuplicateEvent { id, .. } if id == "k37"),
        "{err:?}"
    );
    assert!(err.to_string().contains("position 1"), "{err}");
    assert_eq!(
        next.positions,
        [2],
        "no position was taken by the refused events"
    );
    assert_eq!(s.last_position().unwrap(), 2);
    assert!(s.event_by_id("n0").unwrap().is_none());
    assert!(s.stream_info("long").unwrap().is_none());
    // The same outside a graph transaction, and the new ids stay free.
    let err = s.append("long", NoStream, events(true)).unwrap_err();
    assert!(matches!(&err, Error::DuplicateEvent { .. }), "{err:?}");
    assert_eq!(s.last_position().unwrap(), 2);
    let mut fresh = events(false);
    fresh.remove(37);
    let r = s.append("long", NoStream, fresh).unwrap();
    assert_eq!(r.positions, (3..42).collect::<Vec<u64>>());
    assert_eq!(positions(&all_events(s)), (1..42).collect::<Vec<u64>>());
}

pub fn events_retry_wins_over_a_schema_set_since(f: Fixture) {
    // A retry returns the original result even where the append would now be
    // refused for its data (the ids are looked up on every refusal).
    let s = &f.store;
    let first = s
        .append("s", NoStream, [ev_id("v1", "typed", json!({"n": "text"}))])
        .unwrap();
    s.set_event_schema(
        "typed",
        json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
        None,
    )
    .unwrap();
    let again = s
        .append("s", NoStream, [ev_id("v1", "typed", json!({"n": "text"}))])
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    let err = s
        .append("s", Any, [ev_id("v2", "typed", json!({"n": "text"}))])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(s.last_position().unwrap(), 1);
}

pub fn events_duplicate_ids_in_one_append_are_refused(f: Fixture) {
    let s = &f.store;
    let err = s
        .append(
            "s",
            Any,
            [ev_id("d", "t", json!(1)), ev_id("d", "t", json!(1))],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.to_string().contains("/id"), "{err}");
    assert_eq!(s.last_position().unwrap(), 0);
}

pub fn events_generated_ids_are_unique(f: Fixture) {
    let s = &f.store;
    let events: Vec<NewEvent> = (0..200).map(|i| ev("t", json!(i))).collect();
    s.append("s", Any, events).unwrap();
    let ids: std::collections::HashSet<String> =
        stream_events(s, "s").into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 200);
}

pub fn events_borrowed_appends_leave_the_events_with_the_caller(f: Fixture) {
    let s = &f.store;
    let events = vec![ev_id("b1", "t", json!(1)), ev("t", json!(2))];
    let kept = events.clone();
    let first = s.append_borrowed("s", NoStream, &events[..1]).unwrap();
    assert_eq!(first.positions, [1]);
    // A retry of the same borrowed event returns the original positions.
    let again = s.append_borrowed("s", NoStream, &events[..1]).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    // An event without an id gets one per append, not written into the event.
    s.append_borrowed("s", Exact(1), &events[1..]).unwrap();
    s.append_borrowed("s", Exact(2), &events[1..]).unwrap();
    assert_eq!(events, kept, "the caller's events are as they were");
    let stored = stream_events(s, "s");
    let ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], "b1");
    assert_ne!(ids[1], ids[2]);
    // Refusals are the same as `append`'s, inside a transaction too.
    let err = s
        .write(|tx| tx.append_borrowed("s", Exact(1), &events[1..]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(s.last_position().unwrap(), 3);
}

pub fn events_invalid_input_is_refused_listing_every_violation(f: Fixture) {
    let s = &f.store;
    let err = s
        .append(
            "s",
            Any,
            [
                ev("Bad Type", json!(1)),
                ev_id("", "t", json!(1)),
                ev_id("tab\tid", "t", json!(1)),
                ev("t", json!(1)).with_correlation_id("line\nbreak"),
                ev("9starts-with-digit", json!(1)),
            ],
        )
        .unwrap_err();
    let Error::Validation { violations } = &err else {
        panic!("{err:?}")
    };
    let pointers: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.subject.as_str(), v.pointer.as_str()))
        .collect();
    assert!(
        pointers.contains(&("event 0 of stream 's'", "/type")),
        "{pointers:?}"
    );
    assert!(
        pointers.contains(&("event 1 of stream 's'", "/id")),
        "{pointers:?}"
    );
    assert!(
        pointers.contains(&("event 2 of stream 's'", "/id")),
        "{pointers:?}"
    );
    assert!(
        pointers.contains(&("event 3 of stream 's'", "/metadata/correlation_id")),
        "{pointers:?}"
    );
    assert!(
        pointers.contains(&("event 4 of stream 's'", "/type")),
        "{pointers:?}"
    );
    assert_eq!(s.last_position().unwrap(), 0);
    // Empty appends and malformed expected versions.
    assert_eq!(
        kind_of(s.append("s", Any, Vec::<NewEvent>::new())),
        ErrorKind::InvalidInput
    );
    assert!("minus-one".parse::<ExpectedVersion>().is_err());
}

pub fn events_oversize_events_are_refused_and_nothing_appended(f: Fixture) {
    let s = &f.store;
    let big = "x".repeat(MAX_EVENT_BYTES);
    let err = s
        .append("s", Any, [ev("t", json!(1)), ev("t", json!(big))])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.to_string().contains("at most"), "{err}");
    // Metadata counts too.
    let err = s
        .append(
            "s",
            Any,
            [ev("t", json!(1)).with_metadata("blob", json!("y".repeat(MAX_EVENT_BYTES)))],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    // The data's JSON (the string and its quotes) plus `{}` of metadata: exactly the limit.
    let just_fits = "z".repeat(MAX_EVENT_BYTES - 4);
    s.append("s", Any, [ev("t", json!(just_fits))]).unwrap();
    assert_eq!(s.last_position().unwrap(), 1);
}

pub fn events_too_many_events_in_one_append_are_refused(f: Fixture) {
    let s = &f.store;
    let events: Vec<NewEvent> = (0..=MAX_EVENTS_PER_APPEND)
        .map(|_| ev("t", json!(0)))
        .collect();
    assert_eq!(kind_of(s.append("s", Any, events)), ErrorKind::InvalidInput);
    assert_eq!(s.last_position().unwrap(), 0);
}

pub fn events_deep_data_is_refused(f: Fixture) {
    let s = &f.store;
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let err = s.append("s", Any, [ev("t", deep.clone())]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.to_string().contains("/data"), "{err}");
    let err = s
        .append("s", Any, [ev("t", json!(1)).with_metadata("m", deep)])
        .unwrap_err();
    assert!(err.to_string().contains("/metadata"), "{err}");
    assert_eq!(s.last_position().unwrap(), 0);
}

pub fn events_hostile_stream_names_round_trip(mut f: Fixture) {
    let names = [
        "../../etc/passwd",
        "CON",
        "nul.txt",
        "a/b\\c:d",
        " leading and trailing ",
        "Café",
        "Cafe\u{301}",
        "café",
        "日本語のストリーム",
        ".hidden",
        "%2e%2e",
        "~tilde,comma",
    ];
    let longest = "s".repeat(MAX_STREAM_BYTES);
    for (i, name) in names.iter().copied().chain([longest.as_str()]).enumerate() {
        f.store
            .append(name, NoStream, [ev_id(&format!("h{i}"), "t", json!(name))])
            .unwrap();
    }
    f.reopen();
    for (i, name) in names.iter().copied().chain([longest.as_str()]).enumerate() {
        let events = stream_events(&f.store, name);
        assert_eq!(events.len(), 1, "{name:?}");
        assert_eq!(events[0].stream, name);
        assert_eq!(events[0].id, format!("h{i}"));
    }
    let refused = [
        String::new(),
        "nul\0byte".to_owned(),
        "new\nline".to_owned(),
        "s".repeat(MAX_STREAM_BYTES + 1),
        "$changes".to_owned(),
        "$anything".to_owned(),
    ];
    for name in &refused {
        let err = f.store.append(name, Any, [ev("t", json!(1))]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}: {err}");
    }
    assert_eq!(f.store.last_position().unwrap(), names.len() as u64 + 1);
}

pub fn events_metadata_round_trips(mut f: Fixture) {
    let event = ev_id("m", "t", json!({"k": [1, "two", null, {"x": 1.5}]}))
        .with_correlation_id("corr")
        .with_causation_id("cause")
        .with_metadata("tenant", json!("acme"))
        .with_metadata("nested", json!({"a": {"b": [true]}}));
    f.store.append("s", Any, [event.clone()]).unwrap();
    f.reopen();
    let got = &stream_events(&f.store, "s")[0];
    assert_eq!(got.data, event.data);
    assert_eq!(got.metadata, event.metadata);
    assert!(got.recorded_at > crate::Timestamp::EPOCH);
    assert_eq!(
        f.store.event_by_id("m").unwrap().as_ref(),
        Some(got),
        "found by id"
    );
}

pub fn events_append_in_graph_transaction_commits_together(f: Fixture) {
    let s = &f.store;
    let r = s
        .write(|tx| {
            tx.create_node(thing("order-1"))?;
            let r = tx.append(
                "orders",
                NoStream,
                [ev("placed", json!({"node": "order-1"}))],
            )?;
            tx.update_node(thing("order-1").with_observation("placed"), None)?;
            Ok(r)
        })
        .unwrap();
    assert_eq!(r.positions, [1]);
    assert_eq!(s.get_node("order-1").unwrap().metadata.version, 2);
    assert_eq!(stream_events(s, "orders").len(), 1);
}

pub fn events_rolled_back_appends_leave_nothing_and_no_gap(f: Fixture) {
    let s = &f.store;
    s.append("s", Any, [ev("t", json!(0))]).unwrap();
    let err = s
        .write(|tx| {
            tx.create_node(thing("n"))?;
            tx.append("s", Any, [ev_id("gone", "t", json!(1))])?;
            tx.append("other", Any, [ev("t", json!(2))])?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!s.contains_node("n").unwrap());
    assert_eq!(s.last_position().unwrap(), 1);
    assert!(s.stream_info("other").unwrap().is_none());
    assert!(s.event_by_id("gone").unwrap().is_none());
    // The positions it took are taken again: the log has no gap.
    let r = s.append("s", Any, [ev_id("gone", "t", json!(1))]).unwrap();
    assert_eq!(r.positions, [2]);
    assert!(!r.duplicate);
    assert_eq!(positions(&all_events(s)), [1, 2]);
    assert_eq!(s.stream_info("s").unwrap().unwrap().version, 2);
}

pub fn events_panic_rolls_back_appends(f: Fixture) {
    let s = &f.store;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        s.write(|tx| {
            tx.append("s", Any, [ev("t", json!(1))])?;
            panic!("the application failed half-way");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(s.last_position().unwrap(), 0);
    s.append("s", Any, [ev("t", json!(2))]).unwrap();
    assert_eq!(positions(&all_events(s)), [1]);
}

pub fn events_transaction_sees_its_own_appends(f: Fixture) {
    let s = &f.store;
    s.write(|tx| {
        tx.append("s", Any, [ev("t", json!(1))])?;
        assert_eq!(tx.last_position()?, 1);
        assert_eq!(tx.stream_info("s")?.map(|i| i.version), Some(1));
        let page = tx.read_stream("s", &ReadOptions::forwards(10))?;
        assert_eq!(page.events.len(), 1);
        // A failing append (wrong version) leaves the transaction usable.
        assert_eq!(
            tx.append("s", NoStream, [ev("t", json!(2))])
                .unwrap_err()
                .kind(),
            ErrorKind::Conflict
        );
        tx.append("s", Exact(1), [ev("t", json!(3))])?;
        Ok(())
    })
    .unwrap();
    assert_eq!(positions(&all_events(s)), [1, 2]);
}
