//! The events section of the shared suite: every backend that keeps events runs
//! all of it. A backend that does not must say so in its `test_suite!` call
//! (`skip: events`); it then runs only [`events_section_skipped`], which checks
//! that the backend really answers `Unsupported` naming itself and prints the skip.

mod append;
mod changefeed;
mod documents;
mod groups;
mod model;
mod read;
mod retention;
mod schemas;

pub use append::*;
pub use changefeed::*;
pub use documents::*;
pub use groups::*;
pub use model::*;
pub use read::*;
pub use retention::*;
pub use schemas::*;

use serde_json::Value;

use super::Fixture;
use crate::events::{EventRead, GroupOptions, NewEvent, ReadOptions, RecordedEvent};
use crate::{ErrorKind, Store};

/// An event of a type with data.
pub fn ev(event_type: &str, data: Value) -> NewEvent {
    NewEvent::new(event_type, data)
}

/// An event with an id.
pub fn ev_id(id: &str, event_type: &str, data: Value) -> NewEvent {
    NewEvent::new(event_type, data).with_id(id)
}

/// Every event of the log, forwards, a page at a time.
pub fn all_events(store: &Store) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = store
            .read_all(&ReadOptions::forwards(1000).from(from))
            .unwrap();
        out.extend(page.events);
        if page.at_end {
            return out;
        }
        from = page.next;
    }
}

/// Every event of a stream.
pub fn stream_events(store: &Store, stream: &str) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = store
            .read_stream(stream, &ReadOptions::forwards(1000).from(from))
            .unwrap();
        out.extend(page.events);
        if page.at_end {
            return out;
        }
        from = page.next;
    }
}

/// The positions of some events.
pub fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

/// Group options with a short lease and no backoff, for tests that drive retries.
pub fn quick_group() -> GroupOptions {
    GroupOptions {
        lease_ms: 60_000,
        backoff: crate::events::Backoff {
            initial_ms: 0,
            max_ms: 0,
            jitter: false,
        },
        ..GroupOptions::default()
    }
}

/// Appends `n` events of type `t` to `stream`, one per transaction.
pub fn fill(store: &Store, stream: &str, n: usize) {
    for i in 0..n {
        store
            .append(
                stream,
                crate::events::ExpectedVersion::Any,
                [ev("t", serde_json::json!({"i": i}))],
            )
            .unwrap();
    }
}

/// For a backend declared `skip: events`: it must refuse with `Unsupported`
/// naming the event store and itself. Prints the skip so that it shows.
pub fn events_section_skipped(f: Fixture) {
    let s = &f.store;
    let err = s.last_position().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let text = err.to_string();
    assert!(text.contains("events"), "{text}");
    assert!(text.contains(s.backend_name()), "{text}");
    let err = s
        .append(
            "s",
            crate::events::ExpectedVersion::Any,
            [ev("t", Value::Null)],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    // The graph still works, and the change feed is simply unavailable.
    s.create_node(super::thing("still-works")).unwrap();
    println!(
        "SKIPPED: the events section of the shared suite, because the {} backend keeps no \
         events ({text})",
        s.backend_name()
    );
}
