//! The change feed: every committed graph change, in the same transaction, with old
//! and new versions; nothing for rolled-back work.

use serde_json::{Value, json};

use super::{ev, stream_events};
use crate::events::{CHANGES_STREAM, EventRead, ExpectedVersion, RecordedEvent};
use crate::suite::{Fixture, edge, thing, thing_with_deps};
use crate::{Error, OnDependents, RelationType, SchemaTarget};

fn changes(f: &Fixture) -> Vec<RecordedEvent> {
    stream_events(&f.store, CHANGES_STREAM)
}

/// `(type, key, old_version, new_version)` of each change.
pub(super) fn summary(events: &[RecordedEvent]) -> Vec<(String, Value, Value, Value)> {
    events
        .iter()
        .map(|e| {
            (
                e.event_type.clone(),
                e.data["key"].clone(),
                e.data["old_version"].clone(),
                e.data["new_version"].clone(),
            )
        })
        .collect()
}

pub(super) fn row(t: &str, key: Value, old: Value, new: Value) -> (String, Value, Value, Value) {
    (t.to_owned(), key, old, new)
}

pub fn events_change_feed_is_off_by_default(f: Fixture) {
    let s = &f.store;
    assert!(!s.change_feed_enabled().unwrap());
    s.create_node(thing("a")).unwrap();
    assert!(changes(&f).is_empty());
    let status = s.change_feed_status().unwrap();
    assert_eq!((status.enabled, status.events), (false, 0));
}

pub fn events_change_feed_records_every_change_with_versions(f: Fixture) {
    let s = &f.store;
    s.set_change_feed(true).unwrap();
    assert!(s.change_feed_enabled().unwrap());
    s.create_node(thing("a")).unwrap();
    s.create_node(thing("b")).unwrap();
    s.update_node(thing("a").with_observation("seen"), Some(1))
        .unwrap();
    s.create_edge(edge("a", RelationType::Calls, "b")).unwrap();
    s.update_edge(edge("a", RelationType::Calls, "b").with_weight(2.0), None)
        .unwrap();
    let target = SchemaTarget::NodeType("thing".into());
    s.set_schema(target.clone(), json!({"type": "object"}))
        .unwrap();
    s.remove_schema(&target).unwrap();
    s.delete_edge(&edge("a", RelationType::Calls, "b").key())
        .unwrap();
    s.delete_node("b", OnDependents::Refuse).unwrap();
    let events = changes(&f);
    let key_ab = json!({"from": "a", "relation_type": "calls", "to": "b"});
    assert_eq!(
        summary(&events),
        [
            row("node.created", json!("a"), Value::Null, json!(1)),
            row("node.created", json!("b"), Value::Null, json!(1)),
            row("node.updated", json!("a"), json!(1), json!(2)),
            row("edge.created", key_ab.clone(), Value::Null, json!(1)),
            row("edge.updated", key_ab.clone(), json!(1), json!(2)),
            row(
                "schema.set",
                json!({"node_type": "thing"}),
                Value::Null,
                Value::Null
            ),
            row(
                "schema.removed",
                json!({"node_type": "thing"}),
                Value::Null,
                Value::Null
            ),
            row("edge.deleted", key_ab, json!(2), Value::Null),
            row("node.deleted", json!("b"), json!(1), Value::Null),
        ]
    );
    // Old and new versions of the entities themselves.
    let updated = &events[2];
    assert_eq!(updated.data["old"]["observations"], json!([]));
    assert_eq!(updated.data["new"]["observations"], json!(["seen"]));
    assert_eq!(events[4].data["new"]["metadata"]["weight"], json!(2.0));
    assert_eq!(events[5].data["new"], json!({"type": "object"}));
    assert_eq!(events[6].data["old"], json!({"type": "object"}));
    assert_eq!(events[8].data["new"], Value::Null);
    let status = s.change_feed_status().unwrap();
    assert_eq!((status.enabled, status.events), (true, 9));
}

pub fn events_change_feed_leaves_nothing_for_rolled_back_work(f: Fixture) {
    let s = &f.store;
    s.set_change_feed(true).unwrap();
    s.create_node(thing("keep")).unwrap();
    let err = s
        .write(|tx| {
            tx.create_node(thing("x"))?;
            tx.update_node(thing("keep").with_observation("changed"), None)?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    // A failing operation inside a committed transaction leaves nothing either.
    s.write(|tx| {
        assert!(tx.create_node(thing("keep")).is_err());
        tx.create_node(thing("y"))?;
        Ok(())
    })
    .unwrap();
    let keys: Vec<Value> = changes(&f).iter().map(|e| e.data["key"].clone()).collect();
    assert_eq!(keys, [json!("keep"), json!("y")]);
}

pub fn events_change_feed_sees_cascades_and_detaches(f: Fixture) {
    let s = &f.store;
    s.create_nodes([
        thing("base"),
        thing_with_deps("mid", &["base"]),
        thing_with_deps("top", &["mid"]),
    ])
    .unwrap();
    s.create_edge(edge("top", RelationType::Calls, "base"))
        .unwrap();
    s.set_change_feed(true).unwrap();
    s.delete_node("base", OnDependents::Cascade).unwrap();
    let deleted: Vec<(String, Value)> = changes(&f)
        .iter()
        .map(|e| (e.event_type.clone(), e.data["key"].clone()))
        .collect();
    assert!(
        deleted.contains(&("node.deleted".into(), json!("base"))),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&("node.deleted".into(), json!("mid"))),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&("node.deleted".into(), json!("top"))),
        "{deleted:?}"
    );
    assert!(
        deleted.iter().any(|(t, _)| t == "edge.deleted"),
        "the node's edge goes with it: {deleted:?}"
    );
    assert_eq!(deleted.len(), 4);
    s.create_nodes([thing("p"), thing_with_deps("q", &["p"])])
        .unwrap();
    s.delete_node("p", OnDependents::Detach).unwrap();
    let last: Vec<(String, Value, Value)> = changes(&f)
        .iter()
        .skip(6)
        .map(|e| {
            (
                e.event_type.clone(),
                e.data["key"].clone(),
                e.data["new_version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("node.updated".into(), json!("q"), json!(2)),
            ("node.deleted".into(), json!("p"), Value::Null)
        ]
    );
}

pub fn events_change_feed_shares_the_commit_with_application_events(f: Fixture) {
    let s = &f.store;
    s.set_change_feed(true).unwrap();
    let r = s
        .write(|tx| {
            tx.create_node(thing("order"))?;
            tx.append("orders", ExpectedVersion::Any, [ev("placed", json!(1))])
        })
        .unwrap();
    let feed = changes(&f);
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].commit, r.commit, "one commit");
    assert_eq!(
        feed[0].position,
        r.positions[0] + 1,
        "recorded at commit, after the app's"
    );
    // Turning it off stops recording from the next transaction.
    s.set_change_feed(false).unwrap();
    s.create_node(thing("quiet")).unwrap();
    assert_eq!(changes(&f).len(), 1);
    assert!(!s.change_feed_status().unwrap().enabled);
}
