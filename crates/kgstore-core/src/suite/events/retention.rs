//! Retention, truncation and tombstones: readers and consumer groups are told what
//! was removed, never stranded or silently moved past it.

use std::thread;
use std::time::Duration;

use serde_json::json;

use super::{all_events, ev, ev_id, fill, positions, quick_group, stream_events};
use crate::events::{
    AckOutcome, DeadLetterReason, EventRead, ExpectedVersion, Nack, ReadOptions, RemovedRange,
    Retention, SubscriptionOptions,
};
use crate::suite::{Fixture, kind_of};
use crate::{Error, ErrorKind};

use ExpectedVersion::Any;

fn range(first: u64, last: u64, count: u64) -> RemovedRange {
    RemovedRange { first, last, count }
}

pub fn events_retention_max_count_keeps_the_newest_and_tells_readers(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 5);
    fill(s, "other", 1);
    let info = s
        .set_retention(
            "s",
            Retention {
                max_count: Some(2),
                ..Retention::default()
            },
        )
        .unwrap();
    assert_eq!(info.removed_before, 4);
    let page = s.read_stream("s", &ReadOptions::forwards(10)).unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(page.removed, [range(1, 3, 3)]);
    let all = s.read_all(&ReadOptions::forwards(10)).unwrap();
    assert_eq!(positions(&all.events), [4, 5, 6]);
    assert_eq!(all.removed, [range(1, 3, 3)]);
    // Appends keep applying the limit.
    fill(s, "s", 1);
    assert_eq!(
        stream_events(s, "s")
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [5, 6]
    );
    assert!(s.event_at(4).unwrap().is_none());
    assert_eq!(
        s.stream_info("s").unwrap().unwrap().version,
        6,
        "versions go on"
    );
    assert_eq!(
        kind_of(s.set_retention(
            "s",
            Retention {
                max_count: Some(0),
                ..Retention::default()
            }
        )),
        ErrorKind::InvalidInput
    );
}

pub fn events_truncate_before_removes_older_versions(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 4);
    s.truncate_stream("s", 3).unwrap();
    assert_eq!(
        stream_events(s, "s")
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    // Truncation only ever moves forward.
    s.truncate_stream("s", 2).unwrap();
    assert_eq!(stream_events(s, "s").len(), 2);
    let info = s.stream_info("s").unwrap().unwrap();
    assert_eq!(info.retention.truncate_before, Some(3));
    let back = s.read_stream("s", &ReadOptions::backwards(10)).unwrap();
    assert_eq!(back.removed, [range(1, 2, 2)]);
}

pub fn events_retention_max_age_hides_then_removes(f: Fixture) {
    let s = &f.store;
    fill(s, "old", 2);
    fill(s, "keep", 1);
    thread::sleep(Duration::from_millis(5));
    s.set_retention(
        "old",
        Retention {
            max_age_secs: Some(0),
            ..Retention::default()
        },
    )
    .unwrap();
    assert!(stream_events(s, "old").is_empty());
    // A new event is kept until it is older than the limit: reads hide it then, even
    // before anything removes it.
    s.append("old", Any, [ev_id("fresh", "t", json!(1))])
        .unwrap();
    thread::sleep(Duration::from_millis(5));
    let page = s.read_all(&ReadOptions::forwards(10)).unwrap();
    assert_eq!(positions(&page.events), [3]);
    assert_eq!(page.removed, [range(1, 2, 2), range(4, 4, 1)]);
    assert!(s.event_by_id("fresh").unwrap().is_none());
    assert_eq!(s.apply_retention().unwrap(), 1);
    assert_eq!(s.apply_retention().unwrap(), 0);
    assert_eq!(positions(&all_events(s)), [3]);
    // Lifting the limit shows nothing removed again, and keeps what is new.
    s.set_retention("old", Retention::default()).unwrap();
    s.append("old", Any, [ev("t", json!(2))]).unwrap();
    thread::sleep(Duration::from_millis(5));
    assert_eq!(stream_events(s, "old").len(), 1);
}

pub fn events_deleted_streams_are_tombstones(f: Fixture) {
    let s = &f.store;
    fill(s, "gone", 3);
    fill(s, "kept", 1);
    let err = s
        .delete_stream("gone", ExpectedVersion::Exact(2))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let info = s.delete_stream("gone", ExpectedVersion::Exact(3)).unwrap();
    assert!(info.deleted);
    for expected in [Any, ExpectedVersion::NoStream, ExpectedVersion::Exact(3)] {
        let err = s.append("gone", expected, [ev("t", json!(1))]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StreamDeleted, "{expected}: {err}");
    }
    let err = s
        .read_stream("gone", &ReadOptions::forwards(10))
        .unwrap_err();
    assert!(matches!(err, Error::StreamDeleted { .. }), "{err:?}");
    assert_eq!(
        kind_of(s.delete_stream("gone", Any)),
        ErrorKind::StreamDeleted
    );
    assert!(!s.stream_exists("gone").unwrap());
    let all = s.read_all(&ReadOptions::forwards(10)).unwrap();
    assert_eq!(positions(&all.events), [4]);
    assert_eq!(all.removed, [range(1, 3, 3)]);
    assert_eq!(
        kind_of(s.delete_stream("$changes", Any)),
        ErrorKind::InvalidInput
    );
    // A stream that never existed can be tombstoned too (NoStream holds).
    s.delete_stream("never", ExpectedVersion::NoStream).unwrap();
    assert_eq!(
        kind_of(s.append("never", Any, [ev("t", json!(1))])),
        ErrorKind::StreamDeleted
    );
}

pub fn events_group_behind_retention_is_told(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 6);
    s.create_group("g", quick_group()).unwrap();
    s.set_retention(
        "s",
        Retention {
            max_count: Some(2),
            ..Retention::default()
        },
    )
    .unwrap();
    let d = s.consumer("g", "c").unwrap().poll(10).unwrap();
    assert_eq!(
        d.iter().map(|d| d.event.position).collect::<Vec<_>>(),
        [5, 6]
    );
    let status = s.group_status("g").unwrap();
    assert_eq!(status.counters.removed_by_retention, 4);
    assert_eq!(status.retention_gaps, [range(1, 4, 4)]);
    for d in d {
        s.ack(&d.token).unwrap();
    }
    assert_eq!(s.group_status("g").unwrap().checkpoint, 6);
}

pub fn events_subscription_behind_retention_is_told(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 3);
    let mut sub = s.subscribe(SubscriptionOptions::all()).unwrap();
    s.truncate_stream("s", 3).unwrap();
    let page = sub.next_page(Duration::from_secs(10)).unwrap();
    assert_eq!(page.removed, [range(1, 2, 2)]);
    assert_eq!(positions(&page.events), [3]);
}

pub fn events_retries_of_removed_events_stay_idempotent(f: Fixture) {
    let s = &f.store;
    let first = s
        .append("s", Any, [ev_id("x", "t", json!({"v": 1}))])
        .unwrap();
    fill(s, "s", 1);
    s.truncate_stream("s", 2).unwrap();
    let again = s
        .append("s", Any, [ev_id("x", "t", json!({"v": 1}))])
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    let err = s
        .append("s", Any, [ev_id("x", "t", json!({"v": 2}))])
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEvent { .. }), "{err:?}");
}

pub fn events_delivery_removed_before_redelivery_is_dead_lettered(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 2);
    s.create_group("g", quick_group()).unwrap();
    let d = s.consumer("g", "c").unwrap().poll(1).unwrap();
    s.nack(&d[0].token, &Nack::Retry { after_ms: None }, "later")
        .unwrap();
    s.truncate_stream("s", 2).unwrap();
    let again = s.consumer("g", "c").unwrap().poll(5).unwrap();
    assert_eq!(
        again.iter().map(|d| d.event.position).collect::<Vec<_>>(),
        [2]
    );
    let dlq = s.dead_letters("g", None, 10).unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].reason, DeadLetterReason::Removed);
    assert_eq!(s.ack(&again[0].token).unwrap(), AckOutcome::Acked);
    assert_eq!(s.group_status("g").unwrap().checkpoint, 2);
}
