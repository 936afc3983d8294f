//! Reads, the global order (the no-skip test), and catch-up subscriptions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::{all_events, ev, ev_id, fill, positions, stream_events};
use crate::events::{
    Append, AppendOptions, EventRead, ExpectedVersion, ReadOptions, SubscriptionOptions,
};
use crate::suite::{Fixture, kind_of};
use crate::{ErrorKind, Store};

use ExpectedVersion::Any;

const WAIT: Duration = Duration::from_secs(20);

pub fn events_read_all_forwards_and_backwards(f: Fixture) {
    let s = &f.store;
    fill(s, "a", 3);
    fill(s, "b", 2);
    let fwd = s.read_all(&ReadOptions::forwards(100)).unwrap();
    assert_eq!(positions(&fwd.events), [1, 2, 3, 4, 5]);
    assert!(fwd.at_end);
    assert_eq!(fwd.next, 6);
    assert_eq!(fwd.head, 5);
    let back = s.read_all(&ReadOptions::backwards(100)).unwrap();
    assert_eq!(positions(&back.events), [5, 4, 3, 2, 1]);
    assert!(back.at_end);
    let back = s.read_all(&ReadOptions::backwards(2).from(4)).unwrap();
    assert_eq!(positions(&back.events), [4, 3]);
    assert!(!back.at_end);
    assert_eq!(back.next, 2);
}

pub fn events_read_pages_without_skips_or_repeats(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 23);
    for limit in [1, 4, 7, 23, 50] {
        let mut seen = Vec::new();
        let mut from = 1;
        loop {
            let page = s
                .read_all(&ReadOptions::forwards(limit).from(from))
                .unwrap();
            assert!(page.events.len() <= limit);
            seen.extend(positions(&page.events));
            if page.at_end {
                break;
            }
            from = page.next;
        }
        assert_eq!(seen, (1..=23).collect::<Vec<u64>>(), "limit {limit}");
        // Backwards too.
        let mut seen = Vec::new();
        let mut from = None;
        loop {
            let mut options = ReadOptions::backwards(limit);
            options.from = from;
            let page = s.read_all(&options).unwrap();
            seen.extend(positions(&page.events));
            if page.at_end {
                break;
            }
            from = Some(page.next);
        }
        assert_eq!(seen, (1..=23).rev().collect::<Vec<u64>>(), "limit {limit}");
    }
}

pub fn events_read_stream_by_version_both_ways(f: Fixture) {
    let s = &f.store;
    for i in 0..6 {
        s.append(
            if i % 2 == 0 { "even" } else { "odd" },
            Any,
            [ev("t", json!(i))],
        )
        .unwrap();
    }
    let page = s
        .read_stream("odd", &ReadOptions::forwards(10).from(2))
        .unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(positions(&page.events), [4, 6]);
    assert_eq!(page.head, 3);
    assert_eq!(page.next, 4);
    let back = s.read_stream("even", &ReadOptions::backwards(2)).unwrap();
    assert_eq!(
        back.events
            .iter()
            .map(|e| e.data.clone())
            .collect::<Vec<_>>(),
        [json!(4), json!(2)]
    );
    let empty = s.read_stream("never", &ReadOptions::forwards(10)).unwrap();
    assert!(empty.events.is_empty() && empty.at_end);
    assert_eq!(empty.head, 0);
}

pub fn events_read_filtered_by_type_and_stream_prefix(f: Fixture) {
    let s = &f.store;
    s.append(
        "order-1",
        Any,
        [ev("placed", json!(1)), ev("paid", json!(1))],
    )
    .unwrap();
    s.append("user-1", Any, [ev("placed", json!(2))]).unwrap();
    s.append(
        "order-2",
        Any,
        [ev("placed", json!(3)), ev("shipped", json!(3))],
    )
    .unwrap();
    let placed = s
        .read_all(&ReadOptions::forwards(10).of_type("placed"))
        .unwrap();
    assert_eq!(positions(&placed.events), [1, 3, 4]);
    assert_eq!(
        placed.next, 6,
        "a filtered read at the end continues after the head"
    );
    let orders = s
        .read_all(&ReadOptions::forwards(10).with_stream_prefix("order-"))
        .unwrap();
    assert_eq!(positions(&orders.events), [1, 2, 4, 5]);
    let both = s
        .read_all(
            &ReadOptions::forwards(10)
                .with_stream_prefix("order-")
                .of_type("placed")
                .of_type("shipped"),
        )
        .unwrap();
    assert_eq!(positions(&both.events), [1, 4, 5]);
    let back = s
        .read_all(&ReadOptions::backwards(1).of_type("placed"))
        .unwrap();
    assert_eq!(positions(&back.events), [4]);
    let in_stream = s
        .read_stream("order-2", &ReadOptions::forwards(10).of_type("shipped"))
        .unwrap();
    assert_eq!(positions(&in_stream.events), [5]);
}

pub fn events_read_invalid_options_are_refused(f: Fixture) {
    let s = &f.store;
    for options in [
        ReadOptions::forwards(0),
        ReadOptions::forwards(10_001),
        ReadOptions::forwards(1).of_type("not a type"),
        ReadOptions::forwards(1).with_stream_prefix(""),
    ] {
        assert_eq!(
            kind_of(s.read_all(&options)),
            ErrorKind::InvalidInput,
            "{options:?}"
        );
    }
    assert_eq!(
        kind_of(s.read_stream("", &ReadOptions::forwards(1))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_streams("", None, 0)),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind_of(s.event_by_id("")), ErrorKind::InvalidInput);
}

pub fn events_lookups_by_position_and_id_and_stream_listing(f: Fixture) {
    let s = &f.store;
    s.append("b", Any, [ev_id("b1", "t", json!(1))]).unwrap();
    s.append("a", Any, [ev_id("a1", "t", json!(2))]).unwrap();
    s.append("a2", Any, [ev_id("a21", "t", json!(3))]).unwrap();
    assert_eq!(s.event_at(2).unwrap().unwrap().id, "a1");
    assert!(s.event_at(4).unwrap().is_none());
    assert!(s.event_at(0).unwrap().is_none());
    assert_eq!(s.event_by_id("b1").unwrap().unwrap().position, 1);
    assert!(s.event_by_id("zz").unwrap().is_none());
    let names: Vec<String> = s
        .list_streams("", None, 10)
        .unwrap()
        .into_iter()
        .map(|i| i.stream)
        .collect();
    assert_eq!(names, ["a", "a2", "b"]);
    let names: Vec<String> = s
        .list_streams("a", Some("a"), 10)
        .unwrap()
        .into_iter()
        .map(|i| i.stream)
        .collect();
    assert_eq!(names, ["a2"]);
}

/// Whether a snapshot's positions run 1, 2, 3, … without a hole.
fn contiguous(events: &[crate::events::RecordedEvent]) -> bool {
    events
        .iter()
        .zip(1u64..)
        .all(|(e, expected)| e.position == expected)
}

/// The no-skip test: transaction A holds a position open while B tries to commit;
/// no reader ever sees B's event without A's, and a subscriber gets both in order.
pub fn events_no_skip_while_a_transaction_holds_a_position(f: Fixture) {
    let s = &f.store;
    s.append("warm", Any, [ev_id("W", "t", json!(0))]).unwrap();
    let (appended_tx, appended_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let done = AtomicBool::new(false);
    let mut sub = s.subscribe(SubscriptionOptions::all().after(1)).unwrap();
    thread::scope(|scope| {
        // Readers check every snapshot they see while A and B run.
        let reader = scope.spawn(|| {
            let mut snapshots = 0u64;
            while !done.load(Ordering::SeqCst) {
                let events = all_events(s);
                assert!(
                    contiguous(&events),
                    "a reader saw a gap: {:?}",
                    positions(&events)
                );
                snapshots += 1;
            }
            snapshots
        });
        let a = scope.spawn(move || {
            s.write(|tx| {
                tx.append("a", Any, [ev_id("A", "t", json!("A"))])?;
                appended_tx.send(()).unwrap();
                // Hold the position open until told.
                release_rx.recv().unwrap();
                Ok(())
            })
        });
        appended_rx.recv().unwrap();
        let b = scope.spawn(|| s.append("b", Any, [ev_id("B", "t", json!("B"))]));
        // While A is open nothing past position 1 is visible.
        let page = sub.next_page(Duration::from_millis(150)).unwrap();
        assert!(page.events.is_empty(), "saw {:?}", positions(&page.events));
        assert_eq!(s.last_position().unwrap(), 1);
        release_tx.send(()).unwrap();
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        let page = sub.next_page(WAIT).unwrap();
        assert!(!page.events.is_empty(), "the subscriber timed out");
        got.extend(page.events);
    }
    assert_eq!(positions(&got), [2, 3]);
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["A", "B"]
    );
}

pub fn events_concurrent_appenders_make_a_contiguous_log(f: Fixture) {
    let s = &f.store;
    const THREADS: usize = 4;
    const APPENDS: usize = 15;
    thread::scope(|scope| {
        for t in 0..THREADS {
            let store: Store = s.clone();
            scope.spawn(move || {
                for i in 0..APPENDS {
                    store
                        .append_all(
                            vec![
                                Append::new(
                                    format!("own-{t}"),
                                    ExpectedVersion::Exact(i as u64),
                                    [ev("t", json!(i))],
                                ),
                                Append::new("shared", Any, [ev("t", json!([t, i]))]),
                            ],
                            &AppendOptions::default(),
                        )
                        .unwrap();
                }
            });
        }
    });
    let all = all_events(s);
    assert!(contiguous(&all));
    assert_eq!(all.len(), THREADS * APPENDS * 2);
    let shared = stream_events(s, "shared");
    assert_eq!(
        shared.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=(THREADS * APPENDS) as u64).collect::<Vec<_>>()
    );
    // Commit order is position order: each commit's events are adjacent.
    for pair in all.chunks(2) {
        assert_eq!(pair[0].commit, pair[1].commit);
        assert_eq!(pair[0].commit, pair[0].position);
    }
}

pub fn events_snapshot_does_not_see_later_appends(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 2);
    let snapshot = s.read().unwrap();
    fill(s, "s", 1);
    assert_eq!(snapshot.last_position().unwrap(), 2);
    assert_eq!(
        snapshot
            .read_all(&ReadOptions::forwards(10))
            .unwrap()
            .events
            .len(),
        2
    );
    assert_eq!(s.last_position().unwrap(), 3);
}

pub fn events_subscription_catches_up_then_waits(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 5);
    let mut sub = s
        .subscribe(SubscriptionOptions::all().page_size(2))
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.extend(positions(&sub.next_page(WAIT).unwrap().events));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    assert_eq!(sub.position(), 6);
    let writer = s.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        writer.append("s", Any, [ev("late", json!(1))]).unwrap();
    });
    let page = sub.next_page(WAIT).unwrap();
    assert_eq!(positions(&page.events), [6]);
    t.join().unwrap();
    // Nothing more: the wait times out with an empty page.
    let page = sub.next_page(Duration::from_millis(30)).unwrap();
    assert!(page.events.is_empty());
    assert_eq!(sub.position(), 7);
}

pub fn events_subscription_resumes_from_a_checkpoint(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 6);
    let mut sub = s.subscribe(SubscriptionOptions::all().after(4)).unwrap();
    assert_eq!(positions(&sub.next_page(WAIT).unwrap().events), [5, 6]);
    let mut stream_sub = s
        .subscribe(SubscriptionOptions::stream("s").after(5))
        .unwrap();
    let page = stream_sub.next_page(WAIT).unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [6]
    );
}

pub fn events_subscription_filters_streams_and_types(f: Fixture) {
    let s = &f.store;
    s.append("x-1", Any, [ev("keep", json!(1)), ev("drop", json!(2))])
        .unwrap();
    s.append("y-1", Any, [ev("keep", json!(3))]).unwrap();
    let mut sub = s
        .subscribe(
            SubscriptionOptions::all()
                .with_stream_prefix("x-")
                .of_type("keep"),
        )
        .unwrap();
    assert_eq!(positions(&sub.next_page(WAIT).unwrap().events), [1]);
    s.append("y-1", Any, [ev("keep", json!(4))]).unwrap();
    s.append("x-2", Any, [ev("keep", json!(5))]).unwrap();
    assert_eq!(positions(&sub.next_page(WAIT).unwrap().events), [5]);
    let mut one = s.subscribe(SubscriptionOptions::stream("y-1")).unwrap();
    assert_eq!(
        one.next_page(WAIT)
            .unwrap()
            .events
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        [3, 4]
    );
}
