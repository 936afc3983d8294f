//! Node creation, reading, updating, deletion and validation.

use serde_json::json;

use super::{Fixture, kind_of, names_of, thing};
use crate::{
    Direction, Edge, ErrorKind, GraphRead, Node, NodeFilter, OnDependents, PageRequest,
    RelationType, Timestamp,
};

pub fn node_create_and_get(f: Fixture) {
    let s = &f.store;
    let created = s
        .create_node(
            Node::new("alpha", "concept")
                .unwrap()
                .with_observation("first")
                .with_observation("second")
                .with_attribute("n", json!(1))
                .with_attribute("nested", json!({"list": [1, "two", null], "ok": true}))
                .with_tag("b")
                .with_tag("a")
                .with_tag("b")
                .with_author("ann")
                .with_source("unit test")
                .with_status("active"),
        )
        .unwrap();
    assert_eq!(created.metadata.version, 1);
    assert_eq!(created.metadata.created_at, created.metadata.updated_at);
    assert!(created.metadata.created_at > Timestamp::EPOCH);
    assert_eq!(
        created.metadata.tags,
        ["a", "b"],
        "tags are kept sorted and unique"
    );
    let got = s.get_node("alpha").unwrap();
    assert_eq!(got, created);
    assert_eq!(got.observations, ["first", "second"]);
    assert_eq!(got.attributes["nested"]["list"][1], json!("two"));
    assert_eq!(got.metadata.author.as_deref(), Some("ann"));
    assert_eq!(got.metadata.source.as_deref(), Some("unit test"));
    assert_eq!(got.metadata.status.as_deref(), Some("active"));
    assert_eq!(s.count_nodes().unwrap(), 1);
    assert!(s.contains_node("alpha").unwrap());
}

pub fn node_duplicate_is_already_exists(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("a").with_observation("original"))
        .unwrap();
    let err = s
        .create_node(thing("a").with_observation("impostor"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("node 'a'"), "{err}");
    assert_eq!(s.get_node("a").unwrap().observations, ["original"]);
}

pub fn node_get_missing_is_not_found(f: Fixture) {
    let s = &f.store;
    let err = s.get_node("ghost").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert_eq!(err.to_string(), "node 'ghost' not found");
    assert_eq!(s.find_node("ghost").unwrap(), None);
    assert!(!s.contains_node("ghost").unwrap());
}

pub fn node_invalid_names_are_refused(f: Fixture) {
    let s = &f.store;
    let long = "x".repeat(513);
    for bad in [
        "",
        "a\nb",
        "tab\there",
        "nul\0byte",
        "bell\u{7}",
        "c1\u{85}",
        long.as_str(),
    ] {
        let err = Node::new(bad, "thing").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{bad:?}");
        assert!(err.to_string().contains("/name"), "{err}");
        // Bypassing the constructor does not help: the store checks again.
        let node = Node {
            name: bad.to_owned(),
            ..thing("placeholder")
        };
        assert_eq!(
            kind_of(s.create_node(node.clone())),
            ErrorKind::Validation,
            "{bad:?}"
        );
        assert_eq!(
            kind_of(s.upsert_node(node.clone())),
            ErrorKind::Validation,
            "{bad:?}"
        );
        assert_eq!(
            kind_of(s.update_node(node, None)),
            ErrorKind::Validation,
            "{bad:?}"
        );
    }
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn node_name_limits_and_unicode_are_accepted(f: Fixture) {
    let s = &f.store;
    let longest = "é".repeat(256); // 512 bytes
    let names = [
        longest.as_str(),
        "a",
        " leading and trailing ",
        "emoji 😀 and CJK 𠀀 and plane 14 \u{E0041} and plane 16 \u{10FFFD}",
        "quote's \"double\" `back`",
        "Robert'); DROP TABLE nodes;--",
        "../../etc/passwd",
        "C:\\Windows\\system32",
        "CON",
        "name with / slash",
        "%00%2e%2e",
    ];
    for name in names {
        s.create_node(thing(name)).unwrap();
        assert_eq!(s.get_node(name).unwrap().name, name);
    }
    let listed = s
        .list_nodes(&NodeFilter::default(), &PageRequest::first(100))
        .unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(names_of(&listed.items), expected, "listed in byte order");
}

pub fn node_invalid_type_is_refused(f: Fixture) {
    let s = &f.store;
    let long = "t".repeat(65);
    for bad in [
        "",
        "Thing",
        "1thing",
        "thing-type",
        "thing type",
        "_thing",
        "tÿpe",
        long.as_str(),
    ] {
        let err = Node::new("a", bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{bad:?}");
        assert!(err.to_string().contains("/node_type"), "{err}");
        let node = Node {
            node_type: bad.to_owned(),
            ..thing("a")
        };
        assert_eq!(kind_of(s.create_node(node)), ErrorKind::Validation);
    }
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn node_invalid_metadata_is_refused(f: Fixture) {
    let s = &f.store;
    let cases: Vec<(Node, &str)> = vec![
        (thing("a").with_tag(""), "/metadata/tags/0"),
        (thing("a").with_tag("bad\ntag"), "/metadata/tags/0"),
        (thing("a").with_status("x".repeat(200)), "/metadata/status"),
        (thing("a").with_author("\u{0}"), "/metadata/author"),
        (thing("a").with_source(""), "/metadata/source"),
        (thing("a").with_dependency(""), "/dependencies/0"),
    ];
    for (node, pointer) in cases {
        let err = s.create_node(node).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        match &err {
            crate::Error::Validation { violations } => {
                assert!(
                    violations.iter().any(|v| v.pointer == pointer),
                    "{pointer}: {err}"
                );
            }
            other => panic!("{other}"),
        }
    }
    // Several violations at once are all reported.
    let err = s
        .create_node(Node {
            node_type: "Bad".into(),
            ..thing("a").with_tag("").with_source("")
        })
        .unwrap_err();
    match err {
        crate::Error::Validation { violations } => {
            assert_eq!(violations.len(), 3, "{violations:?}")
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn node_update_bumps_version_keeps_created_at(f: Fixture) {
    let s = &f.store;
    let created = s.create_node(thing("a").with_observation("v1")).unwrap();
    let mut changed = created.clone();
    changed.observations.push("v2".into());
    changed.node_type = "other_thing".into();
    changed.metadata.created_at = Timestamp::EPOCH; // ignored: the store owns it
    changed.metadata.version = 99; // ignored too
    let updated = s.update_node(changed, Some(1)).unwrap();
    assert_eq!(updated.metadata.version, 2);
    assert_eq!(updated.metadata.created_at, created.metadata.created_at);
    assert!(updated.metadata.updated_at >= created.metadata.updated_at);
    let got = s.get_node("a").unwrap();
    assert_eq!(got, updated);
    assert_eq!(got.node_type, "other_thing");
    assert_eq!(got.observations, ["v1", "v2"]);
    let third = s.update_node(got, None).unwrap();
    assert_eq!(third.metadata.version, 3);
}

pub fn node_update_with_stale_version_conflicts(f: Fixture) {
    let s = &f.store;
    let v1 = s.create_node(thing("a")).unwrap();
    s.update_node(v1.clone().with_observation("first writer"), Some(1))
        .unwrap();
    let err = s
        .update_node(v1.with_observation("second writer"), Some(1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "node 'a' has version 2, but version 1 was expected"
    );
    assert_eq!(s.get_node("a").unwrap().observations, ["first writer"]);
}

pub fn node_update_missing_is_not_found(f: Fixture) {
    let s = &f.store;
    assert_eq!(
        kind_of(s.update_node(thing("ghost"), None)),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.update_node(thing("ghost"), Some(1))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn node_upsert_creates_then_updates(f: Fixture) {
    let s = &f.store;
    let first = s.upsert_node(thing("a").with_observation("one")).unwrap();
    assert_eq!(first.metadata.version, 1);
    let second = s.upsert_node(thing("a").with_observation("two")).unwrap();
    assert_eq!(second.metadata.version, 2);
    assert_eq!(second.metadata.created_at, first.metadata.created_at);
    assert_eq!(s.get_node("a").unwrap().observations, ["two"]);
    assert_eq!(s.count_nodes().unwrap(), 1);
}

pub fn node_delete_removes_node_and_its_edges(f: Fixture) {
    let s = &f.store;
    super::things(s, &["a", "b", "c"]);
    s.create_edges([
        Edge::new("a", RelationType::Calls, "b").unwrap(),
        Edge::new("b", RelationType::Calls, "c").unwrap(),
        Edge::new("c", RelationType::References, "b").unwrap(),
        Edge::new("a", RelationType::Calls, "c").unwrap(),
    ])
    .unwrap();
    let report = s.delete_node("b", OnDependents::Refuse).unwrap();
    assert_eq!(report.deleted, ["b"]);
    assert_eq!(report.edges_removed, 3);
    assert!(report.detached.is_empty());
    assert_eq!(kind_of(s.get_node("b")), ErrorKind::NodeNotFound);
    assert_eq!(s.count_edges().unwrap(), 1);
    assert_eq!(s.edges_of("a", Direction::Both, &[]).unwrap().len(), 1);
    assert!(
        s.edges_of("c", Direction::In, &[])
            .unwrap()
            .iter()
            .all(|e| e.from == "a")
    );
}

pub fn node_delete_missing_is_not_found(f: Fixture) {
    let s = &f.store;
    let err = s.delete_node("ghost", OnDependents::Cascade).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert!(err.to_string().contains("ghost"));
}

pub fn node_hostile_values_round_trip(f: Fixture) {
    let s = &f.store;
    let megabyte: String = "0123456789abcdef".repeat(64 * 1024);
    let hostile = [
        "'; DROP TABLE nodes; --",
        "\"quoted\" and 'single' and `back`",
        "nul \0 inside \0\0",
        "line\nbreaks\r\nand\ttabs",
        "\u{1F600}\u{20000}\u{E0041}\u{10FFFD}\u{FEFF}\u{200B}",
        "<script>alert(1)</script>",
        "\\ backslashes \\\\ and %s %d {} {{}}",
        "",
    ];
    let mut node = thing("hostile");
    for text in hostile {
        node = node.with_observation(text);
    }
    node = node
        .with_observation(megabyte.clone())
        .with_attribute("'; DROP TABLE edges; --", json!("key injection"))
        .with_attribute("nul\0key", json!("nul\0value"))
        .with_attribute(
            "numbers",
            json!([0, -1, 1.5, 1e300, -0.0, 9007199254740993_u64, i64::MIN]),
        )
        .with_attribute("unicode", json!("\u{10FFFF}\u{1F4A9}"));
    s.create_node(node.clone()).unwrap();
    let got = s.get_node("hostile").unwrap();
    assert_eq!(got.observations.len(), hostile.len() + 1);
    for (i, text) in hostile.iter().enumerate() {
        assert_eq!(got.observations[i], *text);
    }
    assert_eq!(got.observations[hostile.len()], megabyte);
    assert_eq!(got.attributes, node.attributes);
    let found = s
        .list_nodes(
            &NodeFilter::default().containing("drop table"),
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(names_of(&found.items), ["hostile"]);
}

pub fn node_deep_attributes_are_refused(f: Fixture) {
    let s = &f.store;
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!({ "d": deep });
    }
    let err = s
        .create_node(thing("deep").with_attribute("root", deep))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.to_string().contains("/attributes"), "{err}");
    let mut fine = json!(1);
    for _ in 0..60 {
        fine = json!([fine]);
    }
    s.create_node(thing("fine").with_attribute("root", fine.clone()))
        .unwrap();
    assert_eq!(s.get_node("fine").unwrap().attributes["root"], fine);
}

pub fn nodes_batch_create_in_any_order(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("base")).unwrap();
    let count = s
        .create_nodes([
            super::thing_with_deps("top", &["mid", "base"]),
            super::thing_with_deps("mid", &["low"]),
            super::thing_with_deps("low", &["base"]),
        ])
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(
        s.resolve_dependencies("top").unwrap(),
        ["base", "low", "mid"]
    );
    for name in ["top", "mid", "low"] {
        assert_eq!(s.get_node(name).unwrap().metadata.version, 1);
    }
    // A cycle inside a batch is refused.
    let err = s
        .create_nodes([
            super::thing_with_deps("x", &["y"]),
            super::thing_with_deps("y", &["x"]),
        ])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DependencyCycle);
    assert_eq!(s.count_nodes().unwrap(), 4);
}

pub fn nodes_batch_with_duplicate_writes_nothing(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("taken")).unwrap();
    let err = s
        .create_nodes([thing("new1"), thing("taken"), thing("new2")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("taken"));
    let err = s.create_nodes([thing("dup"), thing("dup")]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(s.count_nodes().unwrap(), 1);
}

pub fn nodes_batch_with_invalid_item_lists_all_and_writes_nothing(f: Fixture) {
    let s = &f.store;
    let bad_type = Node {
        node_type: "Bad Type".into(),
        ..thing("b")
    };
    let bad_tag = thing("c").with_tag("");
    let err = s
        .create_nodes([thing("a"), bad_type, bad_tag, thing("d")])
        .unwrap_err();
    match &err {
        crate::Error::Validation { violations } => {
            assert_eq!(violations.len(), 2, "{err}");
            assert!(violations[0].subject.contains("'b'"));
            assert!(violations[1].subject.contains("'c'"));
        }
        other => panic!("{other}"),
    }
    let err = s
        .create_nodes([thing("a"), super::thing_with_deps("b", &["missing"])])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn node_import_keeps_metadata(f: Fixture) {
    let s = &f.store;
    let mut node = thing("old").with_attribute("k", json!("v"));
    node.metadata.created_at = Timestamp::parse("2001-02-03T04:05:06.123456Z").unwrap();
    node.metadata.updated_at = Timestamp::parse("2002-02-03T04:05:06.654321Z").unwrap();
    node.metadata.version = 42;
    let imported = s.write(|tx| tx.import_node(node.clone())).unwrap();
    assert_eq!(imported, node);
    assert_eq!(s.get_node("old").unwrap(), node);
    assert_eq!(
        kind_of(s.write(|tx| tx.import_node(node.clone()))),
        ErrorKind::AlreadyExists
    );
    let mut backwards = thing("backwards");
    backwards.metadata.version = 1;
    backwards.metadata.created_at = Timestamp::parse("2005-01-01T00:00:00Z").unwrap();
    backwards.metadata.updated_at = Timestamp::parse("2004-01-01T00:00:00Z").unwrap();
    let err = s.write(|tx| tx.import_node(backwards)).unwrap_err();
    assert!(err.to_string().contains("/metadata/updated_at"), "{err}");
}

pub fn node_import_of_version_zero_is_a_create(f: Fixture) {
    let s = &f.store;
    let imported = s.write(|tx| tx.import_node(thing("fresh"))).unwrap();
    assert_eq!(imported.metadata.version, 1);
    assert!(imported.metadata.created_at > Timestamp::EPOCH);
}

pub fn node_lookups_with_invalid_names_are_refused(f: Fixture) {
    let s = &f.store;
    for bad in ["", "a\u{0}b", &"n".repeat(600)] {
        assert_eq!(kind_of(s.get_node(bad)), ErrorKind::InvalidInput);
        assert_eq!(
            kind_of(s.edges_of(bad, Direction::Out, &[])),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind_of(s.resolve_dependencies(bad)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind_of(s.delete_node(bad, OnDependents::Refuse)),
            ErrorKind::InvalidInput
        );
    }
}

/// Found by fuzzing imports: a version above `i64::MAX` was kept by memory and
/// jsonfs but could not be stored by SQLite, so a store could not move between them.
/// Every backend now refuses it, keeps `MAX_VERSION` exactly, and will not count past it.
pub fn regression_versions_beyond_i64_max_are_refused_by_every_backend(mut f: Fixture) {
    use crate::validate::MAX_VERSION;
    let s = &f.store;
    let mut top = thing("top");
    top.metadata.version = MAX_VERSION;
    s.write(|tx| tx.import_node(top.clone())).unwrap();
    s.create_node(thing("other")).unwrap();
    let mut link = super::edge("top", RelationType::RelatesTo, "other");
    link.metadata.version = MAX_VERSION;
    s.write(|tx| tx.import_edge(link.clone())).unwrap();
    for version in [MAX_VERSION + 1, u64::MAX] {
        let mut node = thing("beyond");
        node.metadata.version = version;
        let err = s.write(|tx| tx.import_node(node)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
        assert!(err.to_string().contains("/metadata/version"), "{err}");
        let mut edge = super::edge("other", RelationType::RelatesTo, "top");
        edge.metadata.version = version;
        let err = s.write(|tx| tx.import_edge(edge)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    }
    let err = s.update_node(thing("top"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("exhausted"), "{err}");
    let err = s.update_edge(link.clone(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    f.reopen();
    let s = &f.store;
    assert_eq!(s.get_node("top").unwrap().metadata.version, MAX_VERSION);
    assert_eq!(
        s.get_edge(&link.key()).unwrap().metadata.version,
        MAX_VERSION
    );
    assert!(s.get_node("beyond").is_err());
    assert_eq!(s.count_edges().unwrap(), 1);
}

/// Bulk creates ask the backend which names exist a batch at a time
/// (`ReadTxn::first_existing_node`, one query on SQLite): the answer must name the
/// first taken name in the caller's order, across batches, and must not count a
/// node deleted earlier in the same transaction.
pub fn nodes_batch_reports_the_first_taken_name_across_batches(f: Fixture) {
    let s = &f.store;
    let odd = "quote's \"name\" ;-- 名前 \u{1F600}";
    s.create_nodes([
        thing("taken-a"),
        thing("taken-b"),
        thing(odd),
        thing("gone"),
    ])
    .unwrap();
    let fresh = |range: std::ops::Range<usize>| range.map(|i| thing(&format!("fresh-{i:05}")));
    let mut batch: Vec<Node> = fresh(0..5000).collect();
    batch.insert(4500, thing("taken-b"));
    batch.insert(4700, thing("taken-a"));
    let err = s.create_nodes(batch).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("taken-b"), "{err}");
    let mut batch: Vec<Node> = fresh(0..10).collect();
    batch.push(thing(odd));
    let err = s.create_nodes(batch).unwrap_err();
    assert!(err.to_string().contains("名前"), "{err}");
    assert_eq!(s.count_nodes().unwrap(), 4);
    s.write(|tx| {
        tx.delete_node("gone", OnDependents::Refuse)?;
        tx.create_nodes([thing("gone"), thing("fresh-x")])
    })
    .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 5);
    assert_eq!(s.create_nodes(fresh(0..5000)).unwrap(), 5000);
}
