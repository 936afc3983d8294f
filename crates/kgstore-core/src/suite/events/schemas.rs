//! Schemas per event type: validation of appends, and every compatibility mode with
//! an accepted and a refused change.

use serde_json::{Value, json};

use super::ev;
use crate::events::{Compatibility, EventRead, ExpectedVersion};
use crate::suite::{Fixture, kind_of};
use crate::{Error, ErrorKind, Store};

use ExpectedVersion::Any;

/// Version 1 of every compatibility test: an open object with a required string.
fn v1() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}},
        "required": ["name"]
    })
}

/// A change that only widens (forward-incompatible, backward-compatible).
fn widened() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 40}},
        "required": ["name"]
    })
}

/// A change that only narrows (backward-incompatible, forward-compatible).
fn narrowed() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 10}},
        "required": ["name"]
    })
}

/// A change that neither widens nor narrows.
fn cosmetic() -> Value {
    json!({
        "type": "object",
        "description": "a person",
        "properties": {"name": {"type": "string", "maxLength": 20, "title": "Name"}},
        "required": ["name"]
    })
}

/// Registers v1 under `mode`, then checks `accepted` is taken and `refused` refused
/// with an error naming the change and its pointer.
fn accepts_and_refuses(s: &Store, mode: Compatibility, accepted: Value, refused: Value) {
    let t = format!("person.{}", mode.as_str());
    s.set_event_schema(&t, v1(), Some(mode)).unwrap();
    let err = s.set_event_schema(&t, refused.clone(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{mode}: {err}");
    let text = err.to_string();
    assert!(
        text.contains("/properties/name/maxLength"),
        "{mode}: {text}"
    );
    assert!(text.contains("maxLength"), "{mode}: {text}");
    assert!(text.contains(mode.as_str()), "{mode}: {text}");
    let check = s.check_event_schema(&t, &refused, None).unwrap();
    assert!(!check.is_compatible());
    let ok = s.set_event_schema(&t, accepted, None).unwrap();
    assert!(ok.is_compatible(), "{mode}: {ok:?}");
    assert_eq!(ok.version, 2);
    let stored = s.event_schema(&t).unwrap().unwrap();
    assert_eq!(stored.versions.len(), 2);
    assert_eq!(stored.compatibility, mode);
}

pub fn events_schema_validates_appends_with_pointers(f: Fixture) {
    let s = &f.store;
    s.set_event_schema("person.created", v1(), None).unwrap();
    let err = s
        .append(
            "people",
            Any,
            [
                ev("person.created", json!({"name": "Ada"})),
                ev("person.created", json!({"name": 7})),
                ev("person.created", json!({})),
                ev("other", json!({"anything": true})),
            ],
        )
        .unwrap_err();
    let Error::Validation { violations } = &err else {
        panic!("{err:?}")
    };
    let found: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.subject.as_str(), v.pointer.as_str()))
        .collect();
    assert!(
        found.contains(&("event 1 of stream 'people'", "/data/name")),
        "{found:?}"
    );
    assert!(
        found.contains(&("event 2 of stream 'people'", "/data")),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(s.last_position().unwrap(), 0, "nothing appended");
    s.append(
        "people",
        Any,
        [ev("person.created", json!({"name": "Ada"}))],
    )
    .unwrap();
    // Removing the schema stops validation.
    assert!(s.remove_event_schema("person.created").unwrap());
    assert!(!s.remove_event_schema("person.created").unwrap());
    s.append("people", Any, [ev("person.created", json!({"name": 7}))])
        .unwrap();
}

pub fn events_schema_invalid_documents_are_refused(f: Fixture) {
    let s = &f.store;
    for bad in [
        json!(3),
        json!({"type": "no-such-type"}),
        json!({"$ref": "https://example.com/schema.json"}),
    ] {
        assert_eq!(
            kind_of(s.set_event_schema("t", bad.clone(), None)),
            ErrorKind::InvalidInput,
            "{bad}"
        );
    }
    assert_eq!(
        kind_of(s.set_event_schema("bad type", json!({}), None)),
        ErrorKind::InvalidInput
    );
    assert!(s.event_schema("t").unwrap().is_none());
    assert!(s.list_event_schemas().unwrap().is_empty());
}

pub fn events_schema_same_version_again_changes_nothing(f: Fixture) {
    let s = &f.store;
    s.set_event_schema("t", v1(), Some(Compatibility::Full))
        .unwrap();
    let again = s.set_event_schema("t", v1(), None).unwrap();
    assert!(again.unchanged);
    assert_eq!(again.version, 1);
    assert_eq!(s.event_schema("t").unwrap().unwrap().versions.len(), 1);
    let check = s.check_event_schema("t", &cosmetic(), None).unwrap();
    assert!(check.is_compatible());
    assert_eq!(check.version, 2);
    assert_eq!(
        s.event_schema("t").unwrap().unwrap().versions.len(),
        1,
        "a check registers nothing"
    );
}

pub fn events_schema_backward_accepts_widening_refuses_narrowing(f: Fixture) {
    accepts_and_refuses(&f.store, Compatibility::Backward, widened(), narrowed());
}

pub fn events_schema_forward_accepts_narrowing_refuses_widening(f: Fixture) {
    accepts_and_refuses(&f.store, Compatibility::Forward, narrowed(), widened());
}

pub fn events_schema_full_accepts_neutral_refuses_either(f: Fixture) {
    let s = &f.store;
    accepts_and_refuses(s, Compatibility::Full, cosmetic(), widened());
    assert_eq!(
        kind_of(s.set_event_schema("person.full", narrowed(), None)),
        ErrorKind::Validation
    );
}

/// `{"name": string of at most n}`, required.
fn name_of_at_most(n: u64) -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": n}}, "required": ["name"]})
}

pub fn events_schema_backward_transitive_checks_every_version(f: Fixture) {
    let s = &f.store;
    let t = "person.bt";
    s.set_event_schema(t, name_of_at_most(40), Some(Compatibility::None))
        .unwrap();
    s.set_event_schema(t, name_of_at_most(20), None).unwrap();
    // 30 widens the latest version (20): plain backward accepts it …
    let plain = s
        .check_event_schema(t, &name_of_at_most(30), Some(Compatibility::Backward))
        .unwrap();
    assert!(plain.is_compatible(), "{plain:?}");
    // … but it narrows version 1 (40), so the transitive mode refuses it.
    let err = s
        .set_event_schema(
            t,
            name_of_at_most(30),
            Some(Compatibility::BackwardTransitive),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("version 1"), "{text}");
    assert!(!text.contains("version 2"), "{text}");
    let ok = s
        .set_event_schema(
            t,
            name_of_at_most(50),
            Some(Compatibility::BackwardTransitive),
        )
        .unwrap();
    assert_eq!(ok.version, 3);
}

pub fn events_schema_forward_transitive_checks_every_version(f: Fixture) {
    let s = &f.store;
    let t = "person.ft";
    s.set_event_schema(t, name_of_at_most(10), Some(Compatibility::None))
        .unwrap();
    s.set_event_schema(t, name_of_at_most(20), None).unwrap();
    // 15 narrows the latest version (20): plain forward accepts it …
    let plain = s
        .check_event_schema(t, &name_of_at_most(15), Some(Compatibility::Forward))
        .unwrap();
    assert!(plain.is_compatible(), "{plain:?}");
    // … but it widens version 1 (10).
    let err = s
        .set_event_schema(
            t,
            name_of_at_most(15),
            Some(Compatibility::ForwardTransitive),
        )
        .unwrap_err();
    assert!(err.to_string().contains("version 1"), "{err}");
    let ok = s
        .set_event_schema(
            t,
            name_of_at_most(5),
            Some(Compatibility::ForwardTransitive),
        )
        .unwrap();
    assert_eq!(ok.version, 3);
}

pub fn events_schema_full_transitive_checks_every_version(f: Fixture) {
    let s = &f.store;
    let t = "person.fullt";
    s.set_event_schema(t, v1(), Some(Compatibility::None))
        .unwrap();
    s.set_event_schema(t, widened(), None).unwrap();
    // The same meaning as version 2: plain full accepts it …
    let same = cosmetic_of(&widened());
    let check = s
        .check_event_schema(t, &same, Some(Compatibility::Full))
        .unwrap();
    assert!(check.is_compatible(), "{check:?}");
    // … but it widens version 1.
    let refused = s
        .check_event_schema(t, &same, Some(Compatibility::FullTransitive))
        .unwrap();
    assert_eq!(refused.refused.len(), 1, "{refused:?}");
    assert_eq!(refused.refused[0].0, 1);
    assert_eq!(refused.refused[0].1.pointer, "/properties/name/maxLength");
    assert_eq!(
        kind_of(s.set_event_schema(t, same, Some(Compatibility::FullTransitive))),
        ErrorKind::Validation
    );
    // A neutral change to every version is accepted.
    let t2 = "person.fullt2";
    s.set_event_schema(t2, v1(), Some(Compatibility::FullTransitive))
        .unwrap();
    assert_eq!(s.set_event_schema(t2, cosmetic(), None).unwrap().version, 2);
    assert_eq!(
        kind_of(s.set_event_schema(t2, widened(), None)),
        ErrorKind::Validation
    );
}

fn cosmetic_of(schema: &Value) -> Value {
    let mut out = schema.clone();
    out["title"] = json!("cosmetic");
    out
}

pub fn events_schema_none_accepts_anything(f: Fixture) {
    let s = &f.store;
    s.set_event_schema("t", v1(), Some(Compatibility::None))
        .unwrap();
    for (i, next) in [
        narrowed(),
        widened(),
        json!({"type": "array"}),
        json!(false),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            s.set_event_schema("t", next, None).unwrap().version,
            i as u32 + 2
        );
    }
    // A schema accepting nothing refuses every append of its type.
    assert_eq!(
        kind_of(s.append("s", Any, [ev("t", json!({"name": "x"}))])),
        ErrorKind::Validation
    );
    // What "none" still refuses: a document that is not a JSON Schema.
    assert_eq!(
        kind_of(s.set_event_schema("t", json!({"type": 5}), None)),
        ErrorKind::InvalidInput
    );
    assert_eq!(s.event_schema("t").unwrap().unwrap().versions.len(), 5);
    assert!(
        "sideways".parse::<Compatibility>().is_err(),
        "unknown modes are refused"
    );
}

pub fn events_schema_open_content_model_rules(f: Fixture) {
    let s = &f.store;
    let open = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    s.set_event_schema("open", open.clone(), None).unwrap();
    // Adding a typed property to an open model narrows: refused under backward,
    // naming the property.
    let mut typed = open.clone();
    typed["properties"]["b"] = json!({"type": "integer"});
    let err = s.set_event_schema("open", typed, None).unwrap_err();
    assert!(err.to_string().contains("/properties/b"), "{err}");
    assert!(err.to_string().contains("open content model"), "{err}");
    // A required property with a default is accepted, as in the Confluent registry.
    let mut defaulted = open.clone();
    defaulted["properties"]["a"]["default"] = json!("");
    defaulted["required"] = json!(["a"]);
    s.set_event_schema("open", defaulted, None).unwrap();
    // In a closed model an optional property may be added under backward.
    let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
    s.set_event_schema("closed", closed.clone(), None).unwrap();
    let mut more = closed;
    more["properties"]["b"] = json!({"type": "integer"});
    s.set_event_schema("closed", more, None).unwrap();
}
