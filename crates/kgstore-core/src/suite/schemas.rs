//! JSON Schemas for node and relation attributes.

use serde_json::{Value, json};

use super::{Fixture, edge, kind_of, thing, things};
use crate::{Error, ErrorKind, GraphRead, Node, RelationType, SchemaTarget};

fn crate_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+"},
            "downloads": {"type": "integer", "minimum": 0},
            "license": {"type": "string"}
        },
        "required": ["version"],
        "additionalProperties": false
    })
}

fn krate(name: &str) -> Node {
    Node::new(name, "crate").unwrap()
}

fn pointers(err: &Error) -> Vec<String> {
    match err {
        Error::Validation { violations } => violations.iter().map(|v| v.pointer.clone()).collect(),
        other => panic!("expected a validation error, got {other}"),
    }
}

pub fn schema_validates_node_attributes_with_pointers(f: Fixture) {
    let s = &f.store;
    s.set_schema(SchemaTarget::NodeType("crate".into()), crate_schema())
        .unwrap();
    s.create_node(
        krate("good")
            .with_attribute("version", json!("1.0.0"))
            .with_attribute("downloads", json!(5)),
    )
    .unwrap();
    let err = s
        .create_node(
            krate("bad")
                .with_attribute("version", json!("one"))
                .with_attribute("downloads", json!(-3))
                .with_attribute("colour", json!("red")),
        )
        .unwrap_err();
    let mut found = pointers(&err);
    found.sort();
    assert_eq!(
        found,
        [
            "/attributes",
            "/attributes/downloads",
            "/attributes/version"
        ],
        "{err}"
    );
    assert!(err.to_string().contains("node 'bad'"), "{err}");
    let err = s.create_node(krate("empty")).unwrap_err();
    assert_eq!(pointers(&err), ["/attributes"]);
    // Other node types are not affected.
    s.create_node(thing("free").with_attribute("anything", json!([1, 2])))
        .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn schema_refused_when_stored_data_violates(f: Fixture) {
    let s = &f.store;
    s.create_nodes([
        krate("ok").with_attribute("version", json!("1.2.3")),
        krate("no_version"),
        krate("bad_version").with_attribute("version", json!(7)),
    ])
    .unwrap();
    let err = s
        .set_schema(SchemaTarget::NodeType("crate".into()), crate_schema())
        .unwrap_err();
    match &err {
        Error::Validation { violations } => {
            let subjects: Vec<&str> = violations.iter().map(|v| v.subject.as_str()).collect();
            assert_eq!(
                subjects,
                ["node 'bad_version'", "node 'no_version'"],
                "{err}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        s.get_schema(&SchemaTarget::NodeType("crate".into()))
            .unwrap()
            .is_none()
    );
    // Once the data is fixed, the schema is accepted.
    s.update_node(
        krate("no_version").with_attribute("version", json!("0.1.0")),
        None,
    )
    .unwrap();
    s.update_node(
        krate("bad_version").with_attribute("version", json!("7.0.0")),
        None,
    )
    .unwrap();
    s.set_schema(SchemaTarget::NodeType("crate".into()), crate_schema())
        .unwrap();
    assert_eq!(
        s.get_schema(&SchemaTarget::NodeType("crate".into()))
            .unwrap(),
        Some(crate_schema())
    );
}

pub fn schema_for_relation_validates_edges(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    s.create_edge(edge("a", RelationType::Calls, "b").with_attribute("count", json!("many")))
        .unwrap();
    let target = SchemaTarget::RelationType(RelationType::Calls);
    let schema = json!({"properties": {"count": {"type": "integer"}}, "required": ["count"]});
    let err = s.set_schema(target.clone(), schema.clone()).unwrap_err();
    assert_eq!(pointers(&err), ["/attributes/count"]);
    assert!(err.to_string().contains("edge a -[calls]-> b"), "{err}");
    s.delete_edge(&edge("a", RelationType::Calls, "b").key())
        .unwrap();
    s.set_schema(target, schema).unwrap();
    let err = s
        .create_edge(edge("a", RelationType::Calls, "b"))
        .unwrap_err();
    assert_eq!(pointers(&err), ["/attributes"]);
    s.create_edge(edge("a", RelationType::Calls, "b").with_attribute("count", json!(2)))
        .unwrap();
    s.create_edge(edge("a", RelationType::References, "b"))
        .unwrap();
    let mut bad = s
        .get_edge(&edge("a", RelationType::Calls, "b").key())
        .unwrap();
    bad.attributes.insert("count".into(), json!(2.5));
    assert_eq!(kind_of(s.update_edge(bad, None)), ErrorKind::Validation);
}

pub fn schema_invalid_documents_are_refused(f: Fixture) {
    let s = &f.store;
    let target = SchemaTarget::NodeType("crate".into());
    for bad in [
        json!(42),
        json!("schema"),
        json!({"type": "strnig"}),
        json!({"$ref": "http://example.com/s.json"}),
        json!({"minimum": "zero"}),
    ] {
        let err = s.set_schema(target.clone(), bad.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
        assert!(err.to_string().contains("node type 'crate'"), "{err}");
    }
    let bad_target = SchemaTarget::NodeType("Not An Identifier".into());
    assert_eq!(
        kind_of(s.set_schema(bad_target, json!({}))),
        ErrorKind::InvalidInput
    );
    assert!(s.list_schemas().unwrap().is_empty());
    // Boolean schemas are schemas too.
    s.set_schema(target.clone(), json!(false)).unwrap();
    assert_eq!(kind_of(s.create_node(krate("x"))), ErrorKind::Validation);
}

pub fn schema_list_get_remove(f: Fixture) {
    let s = &f.store;
    let node_target = SchemaTarget::NodeType("crate".into());
    let rel_target = SchemaTarget::RelationType(RelationType::Custom("owned_by".into()));
    s.set_schema(rel_target.clone(), json!({"type": "object"}))
        .unwrap();
    s.set_schema(node_target.clone(), crate_schema()).unwrap();
    let listed = s.list_schemas().unwrap();
    assert_eq!(
        listed,
        [
            (node_target.clone(), crate_schema()),
            (rel_target.clone(), json!({"type": "object"}))
        ]
    );
    // Replacing a schema.
    s.set_schema(node_target.clone(), json!({"type": "object"}))
        .unwrap();
    assert_eq!(
        s.get_schema(&node_target).unwrap(),
        Some(json!({"type": "object"}))
    );
    s.create_node(krate("now_free")).unwrap();
    assert!(s.remove_schema(&node_target).unwrap());
    assert!(!s.remove_schema(&node_target).unwrap());
    assert_eq!(s.get_schema(&node_target).unwrap(), None);
    assert_eq!(s.list_schemas().unwrap().len(), 1);
}

pub fn schema_set_in_rolled_back_txn_is_gone(f: Fixture) {
    let s = &f.store;
    let target = SchemaTarget::NodeType("crate".into());
    let _ = s.write(|tx| {
        tx.set_schema(target.clone(), crate_schema())?;
        // Inside, it applies at once.
        assert_eq!(kind_of(tx.create_node(krate("x"))), ErrorKind::Validation);
        Err::<(), _>(Error::invalid_input("test", "roll back"))
    });
    assert!(s.get_schema(&target).unwrap().is_none());
    s.create_node(krate("x")).unwrap();
    // Removing inside a transaction lifts it at once too.
    s.delete_node("x", crate::OnDependents::Refuse).unwrap();
    s.set_schema(target.clone(), crate_schema()).unwrap();
    s.write(|tx| {
        tx.remove_schema(&target)?;
        tx.create_node(krate("y"))?;
        Ok(())
    })
    .unwrap();
}

pub fn schema_applies_on_update_and_type_change(f: Fixture) {
    let s = &f.store;
    s.set_schema(SchemaTarget::NodeType("crate".into()), crate_schema())
        .unwrap();
    let plain = s.create_node(thing("shape_shifter")).unwrap();
    let as_crate = Node {
        node_type: "crate".into(),
        ..plain
    };
    let err = s.update_node(as_crate.clone(), None).unwrap_err();
    assert_eq!(pointers(&err), ["/attributes"]);
    s.update_node(as_crate.with_attribute("version", json!("1.0.0")), None)
        .unwrap();
    let mut node = s.get_node("shape_shifter").unwrap();
    node.attributes.insert("version".into(), json!(false));
    assert_eq!(
        pointers(&s.upsert_node(node).unwrap_err()),
        ["/attributes/version"]
    );
    assert_eq!(
        s.get_node("shape_shifter").unwrap().attributes["version"],
        json!("1.0.0")
    );
}
