//! The writer keeps the event store's state (stream versions, schemas, the change
//! feed's setting) from one transaction to the next: what another handle (another
//! connection, as another process would be) commits in between is seen all the
//! same, and a rolled-back transaction leaves nothing of its own behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{error_of, store, temp_db};
use kgstore_core::events::{EventRead, ExpectedVersion, NewEvent, ReadOptions};
use kgstore_core::{Error, ErrorKind, Node};
use serde_json::json;

fn event(n: u64) -> NewEvent {
    NewEvent::new("order.placed", json!({"order": n})).with_id(format!("e-{n}"))
}

#[test]
fn another_handles_appends_move_the_version_this_writer_checks() {
    let (_dir, path) = temp_db();
    let (a, b) = (store(&path), store(&path));
    a.append("orders", ExpectedVersion::NoStream, [event(1)])
        .unwrap();
    b.append("orders", ExpectedVersion::Exact(1), [event(2)])
        .unwrap();
    // A's writer knew version 1; B made it 2.
    match error_of(a.append("orders", ExpectedVersion::Exact(1), [event(3)])) {
        Error::WrongExpectedVersion { actual: 2, .. } => {}
        other => panic!("expected a wrong expected version at 2, got {other}"),
    }
    let appended = a
        .append("orders", ExpectedVersion::Exact(2), [event(3)])
        .unwrap();
    assert_eq!(appended.positions, [3]);
    assert_eq!(appended.streams[0].last_version, 3);
    // And the other way round, after A's own appends were cached by A.
    let appended = b
        .append("orders", ExpectedVersion::Exact(3), [event(4)])
        .unwrap();
    assert_eq!(appended.positions, [4]);
    let page = a.read_stream("orders", &ReadOptions::forwards(10)).unwrap();
    let versions: Vec<u64> = page.events.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}

#[test]
fn a_schema_set_by_another_handle_is_enforced_at_once() {
    let (_dir, path) = temp_db();
    let (a, b) = (store(&path), store(&path));
    // A's writer learns that the type has no schema.
    a.append("orders", ExpectedVersion::Any, [event(1)])
        .unwrap();
    b.set_event_schema(
        "order.placed",
        json!({"type": "object", "required": ["customer"]}),
        None,
    )
    .unwrap();
    let refused = error_of(a.append("orders", ExpectedVersion::Any, [event(2)]));
    assert_eq!(refused.kind(), ErrorKind::Validation, "{refused}");
    assert_eq!(a.last_position().unwrap(), 1);
}

#[test]
fn a_change_feed_turned_on_by_another_handle_records_this_ones_writes() {
    let (_dir, path) = temp_db();
    let (a, b) = (store(&path), store(&path));
    // A's writer learns that the change feed is off.
    a.create_node(Node::new("before", "thing").unwrap())
        .unwrap();
    b.set_change_feed(true).unwrap();
    a.create_node(Node::new("after", "thing").unwrap()).unwrap();
    let changes = a
        .read_stream("$changes", &ReadOptions::forwards(10))
        .unwrap();
    assert_eq!(changes.events.len(), 1, "{:?}", changes.events);
    assert_eq!(changes.events[0].data["key"], json!("after"));
}

#[test]
fn a_stream_deleted_by_another_handle_refuses_this_ones_appends() {
    let (_dir, path) = temp_db();
    let (a, b) = (store(&path), store(&path));
    a.append("orders", ExpectedVersion::NoStream, [event(1)])
        .unwrap();
    b.delete_stream("orders", ExpectedVersion::Exact(1))
        .unwrap();
    let refused = error_of(a.append("orders", ExpectedVersion::Any, [event(2)]));
    assert_eq!(refused.kind(), ErrorKind::StreamDeleted, "{refused}");
}

#[test]
fn a_rolled_back_append_leaves_the_writer_at_the_committed_version() {
    let (_dir, path) = temp_db();
    let a = store(&path);
    a.append("orders", ExpectedVersion::NoStream, [event(1)])
        .unwrap();
    let failed = a.write(|tx| {
        tx.append("orders", ExpectedVersion::Exact(1), [event(2)])?;
        tx.append("orders", ExpectedVersion::Exact(2), [event(3)])?;
        Err::<(), _>(Error::invalid_input("test", "rolled back on purpose"))
    });
    assert!(failed.is_err());
    match error_of(a.append("orders", ExpectedVersion::Exact(3), [event(4)])) {
        Error::WrongExpectedVersion { actual: 1, .. } => {}
        other => panic!("expected a wrong expected version at 1, got {other}"),
    }
    let appended = a
        .append("orders", ExpectedVersion::Exact(1), [event(2)])
        .unwrap();
    assert_eq!(appended.positions, [2]);
    assert_eq!(appended.streams[0].last_version, 2);
}
