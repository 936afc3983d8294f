//! Events with documents: graph changes, documents and events in one `store.write`
//! transaction, all or nothing; the change feed records document writes and
//! deletes (key, versions, size and SHA-256, never the bytes) in the same commit.

use serde_json::{Value, json};

use super::changefeed::{row, summary};
use super::{all_events, ev, stream_events};
use crate::documents::Sha256Digest;
use crate::events::{CHANGES_STREAM, EventRead, ExpectedVersion, RecordedEvent};
use crate::suite::documents_model::Broken;
use crate::suite::{Fixture, thing};
use crate::{DocumentRead, DocumentWrite, Error, ErrorKind, GraphRead, WriteOptions};

fn changes(f: &Fixture) -> Vec<RecordedEvent> {
    stream_events(&f.store, CHANGES_STREAM)
}

pub fn events_documents_and_graph_commit_together_or_not_at_all(f: Fixture) {
    let s = &f.store;
    let r = s
        .write(|tx| {
            tx.create_node(thing("order-1"))?;
            tx.write_document("orders/1.json", r#"{"lines":2}"#)?;
            tx.append(
                "orders",
                ExpectedVersion::NoStream,
                [ev("placed", json!(1))],
            )
        })
        .unwrap();
    assert_eq!(r.positions, [1]);
    assert!(s.contains_node("order-1").unwrap());
    assert_eq!(s.read_document("orders/1.json").unwrap(), br#"{"lines":2}"#);

    // An error after all three kinds of write: none of them stays, no position is used.
    let err = s
        .write(|tx| {
            tx.create_node(thing("order-2"))?;
            tx.write_document("orders/2.json", "{}")?;
            tx.append(
                "orders",
                ExpectedVersion::Exact(1),
                [ev("placed", json!(2))],
            )?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!s.contains_node("order-2").unwrap());
    assert!(!s.document_exists("orders/2.json").unwrap());
    assert_eq!(s.last_position().unwrap(), 1);

    // A refused append (a stale expected version) propagated by the closure takes the
    // graph change and the document with it.
    let err = s
        .write(|tx| {
            tx.create_node(thing("order-3"))?;
            tx.write_document("orders/3.json", "{}")?;
            tx.append(
                "orders",
                ExpectedVersion::Exact(7),
                [ev("placed", json!(3))],
            )
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(!s.contains_node("order-3").unwrap());
    assert!(!s.document_exists("orders/3.json").unwrap());

    // A refused document write (create-only over an existing key) propagated by the
    // closure takes the event with it.
    let err = s
        .write(|tx| {
            tx.append(
                "orders",
                ExpectedVersion::Exact(1),
                [ev("placed", json!(4))],
            )?;
            tx.write_document_with("orders/1.json", "x", &WriteOptions::new().create_only())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(s.last_position().unwrap(), 1);

    // A panic rolls all three back too.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.write(|tx| {
            tx.create_node(thing("order-5"))?;
            tx.write_document("orders/5.json", "{}")?;
            tx.append("orders", ExpectedVersion::Any, [ev("placed", json!(5))])?;
            panic!("mid-transaction");
            #[allow(unreachable_code)]
            Ok(())
        });
    }));
    assert!(panicked.is_err());
    assert!(!s.contains_node("order-5").unwrap());
    assert!(!s.document_exists("orders/5.json").unwrap());

    // The next commit takes the next position: nothing left a gap.
    let r = s
        .write(|tx| {
            tx.write_document("orders/6.json", "{}")?;
            tx.append(
                "orders",
                ExpectedVersion::Exact(1),
                [ev("placed", json!(6))],
            )
        })
        .unwrap();
    assert_eq!(r.positions, [2]);
    let positions: Vec<u64> = all_events(s).iter().map(|e| e.position).collect();
    assert_eq!(positions, [1, 2]);
    assert_eq!(s.count_documents().unwrap(), 2);
    assert!(s.check().unwrap().is_ok());
}

pub fn events_change_feed_records_document_writes_and_deletes(f: Fixture) {
    let s = &f.store;
    s.set_change_feed(true).unwrap();
    let first = s.write_document("notes/a.md", "one").unwrap();
    let second = s.write_document("notes/a.md", "two!").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.write_document_from("blobs/b.bin", big.as_slice(), &WriteOptions::new())
        .unwrap();
    s.write_documents([
        DocumentWrite::new("batch/x", "x"),
        DocumentWrite::new("batch/y", "y"),
    ])
    .unwrap();
    assert!(!s.remove_document("missing").unwrap(), "nothing to record");
    // A streamed write whose source fails writes nothing and records nothing.
    s.write(|tx| {
        assert!(
            tx.write_document_from("broken", Broken(10), &WriteOptions::new())
                .is_err()
        );
        Ok(())
    })
    .unwrap();
    s.delete_document("notes/a.md").unwrap();
    let events = changes(&f);
    let doc = |t: &str, k: &str, o: Value, n: Value| row(t, json!(k), o, n);
    assert_eq!(
        summary(&events),
        [
            doc("document.created", "notes/a.md", Value::Null, json!(1)),
            doc("document.updated", "notes/a.md", json!(1), json!(2)),
            doc("document.created", "blobs/b.bin", Value::Null, json!(1)),
            doc("document.created", "batch/x", Value::Null, json!(1)),
            doc("document.created", "batch/y", Value::Null, json!(1)),
            doc("document.deleted", "notes/a.md", json!(2), Value::Null),
        ]
    );
    // Old and new metadata (size, digest, content type, version), never the bytes.
    let updated = &events[1].data;
    assert_eq!(updated["old"]["sha256"], json!(first.sha256.to_hex()));
    assert_eq!(updated["new"]["sha256"], json!(second.sha256.to_hex()));
    assert_eq!(updated["old"]["size"], json!(3));
    assert_eq!(updated["new"]["size"], json!(4));
    assert_eq!(updated["new"]["version"], json!(2));
    assert!(updated["new"]["content_type"].is_string());
    let streamed = &events[2].data["new"];
    assert_eq!(streamed["size"], json!(big.len()));
    assert_eq!(streamed["sha256"], json!(Sha256Digest::of(&big).to_hex()));
    for e in &events {
        let text = e.data.to_string();
        assert!(!text.contains("content\""), "no bytes in {text}");
        assert!(!text.contains("two!"), "no bytes in {text}");
    }
    assert_eq!(events[3].commit, events[4].commit, "a batch is one commit");
    assert_eq!(events[5].data["new"], Value::Null);
    assert_eq!(s.change_feed_status().unwrap().events, 6);
}

pub fn events_change_feed_records_documents_in_their_commit_and_not_rolled_back(f: Fixture) {
    let s = &f.store;
    s.set_change_feed(true).unwrap();
    let r = s
        .write(|tx| {
            tx.create_node(thing("script"))?;
            tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY\n")?;
            tx.append("scripts", ExpectedVersion::Any, [ev("drafted", json!(1))])
        })
        .unwrap();
    let feed = changes(&f);
    let kinds: Vec<&str> = feed.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["node.created", "document.created"]);
    assert!(feed.iter().all(|e| e.commit == r.commit), "one commit");
    assert!(feed.iter().all(|e| e.position > r.positions[0]));
    // Rolled back: neither the document nor its change stays.
    let err = s
        .write(|tx| {
            tx.write_document("scripts/pilot.fountain", "rewritten")?;
            tx.delete_document("scripts/pilot.fountain")?;
            tx.write_document("scripts/other", "x")?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(changes(&f).len(), 2);
    assert_eq!(
        s.read_document("scripts/pilot.fountain").unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    // Within one committed transaction, each step is recorded in order.
    s.write(|tx| {
        tx.write_document("scripts/pilot.fountain", "v2")?;
        tx.delete_document("scripts/pilot.fountain")?;
        tx.write_document("scripts/pilot.fountain", "v3")?;
        Ok(())
    })
    .unwrap();
    let last: Vec<(String, Value)> = changes(&f)
        .iter()
        .skip(2)
        .map(|e| (e.event_type.clone(), e.data["new_version"].clone()))
        .collect();
    assert_eq!(
        last,
        [
            ("document.updated".to_owned(), json!(2)),
            ("document.deleted".to_owned(), Value::Null),
            ("document.created".to_owned(), json!(1)),
        ]
    );
}
