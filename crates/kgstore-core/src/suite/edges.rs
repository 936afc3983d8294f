//! Edge creation, reading, updating, deletion and validation.

use serde_json::json;

use super::{Fixture, edge, kind_of, thing, things};
use crate::{Direction, Edge, EdgeKey, Error, ErrorKind, GraphRead, RelationType, Timestamp};

use RelationType::{Calls, Contains, DependsOn, References};

pub fn edge_create_and_get(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let created = s
        .create_edge(
            edge("a", Calls, "b")
                .with_weight(2.5)
                .with_confidence(0.75)
                .with_source("trace")
                .with_attribute("count", json!(3))
                .bidirectional(),
        )
        .unwrap();
    assert_eq!(created.metadata.version, 1);
    assert!(created.metadata.created_at > Timestamp::EPOCH);
    let got = s.get_edge(&EdgeKey::new("a", Calls, "b")).unwrap();
    assert_eq!(got, created);
    assert_eq!(got.metadata.weight, 2.5);
    assert_eq!(got.metadata.confidence, Some(0.75));
    assert!(got.metadata.bidirectional);
    assert_eq!(got.attributes["count"], json!(3));
    // Same endpoints, other relation or other direction: other edges.
    s.create_edge(edge("a", References, "b")).unwrap();
    s.create_edge(edge("b", Calls, "a")).unwrap();
    assert_eq!(s.count_edges().unwrap(), 3);
    assert_eq!(
        s.get_edge(&EdgeKey::new("b", Calls, "a"))
            .unwrap()
            .metadata
            .weight,
        1.0
    );
}

pub fn edge_duplicate_is_already_exists(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    s.create_edge(edge("a", Calls, "b").with_weight(1.0))
        .unwrap();
    let err = s
        .create_edge(edge("a", Calls, "b").with_weight(9.0))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.to_string(), "edge a -[calls]-> b already exists");
    assert_eq!(
        s.get_edge(&EdgeKey::new("a", Calls, "b"))
            .unwrap()
            .metadata
            .weight,
        1.0
    );
}

pub fn edge_missing_endpoint_is_refused(f: Fixture) {
    let s = &f.store;
    things(s, &["a"]);
    let err = s.create_edge(edge("a", Calls, "ghost")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert_eq!(
        err.to_string(),
        "node 'ghost' not found (referenced by edge a -[calls]-> ghost)"
    );
    assert_eq!(
        kind_of(s.create_edge(edge("ghost", Calls, "a"))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn edge_invalid_values_are_refused(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    for (bad, pointer) in [
        (edge("a", Calls, "b").with_weight(-1.0), "/metadata/weight"),
        (
            edge("a", Calls, "b").with_weight(f64::NAN),
            "/metadata/weight",
        ),
        (
            edge("a", Calls, "b").with_weight(f64::INFINITY),
            "/metadata/weight",
        ),
        (
            edge("a", Calls, "b").with_confidence(1.01),
            "/metadata/confidence",
        ),
        (
            edge("a", Calls, "b").with_confidence(-0.1),
            "/metadata/confidence",
        ),
        (
            edge("a", Calls, "b").with_source("bad\nsource"),
            "/metadata/source",
        ),
        (
            Edge {
                relation_type: RelationType::Custom("Not Valid".into()),
                ..edge("a", Calls, "b")
            },
            "/relation_type",
        ),
        (
            Edge {
                from: String::new(),
                ..edge("a", Calls, "b")
            },
            "/from",
        ),
    ] {
        let err = s.create_edge(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert!(err.to_string().contains(pointer), "{pointer}: {err}");
    }
    assert_eq!(
        Edge::new("a", Calls, "b\0").unwrap_err().kind(),
        ErrorKind::Validation
    );
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn edge_update_and_version_conflict(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let v1 = s.create_edge(edge("a", Calls, "b")).unwrap();
    let v2 = s
        .update_edge(
            v1.clone().with_weight(3.0).with_attribute("x", json!(1)),
            Some(1),
        )
        .unwrap();
    assert_eq!(v2.metadata.version, 2);
    assert_eq!(v2.metadata.created_at, v1.metadata.created_at);
    let err = s.update_edge(v1.with_weight(7.0), Some(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string()
            .contains("edge a -[calls]-> b has version 2"),
        "{err}"
    );
    assert_eq!(s.get_edge(&EdgeKey::new("a", Calls, "b")).unwrap(), v2);
    assert_eq!(
        kind_of(s.update_edge(edge("b", Calls, "a"), None)),
        ErrorKind::EdgeNotFound
    );
}

pub fn edge_upsert(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    assert_eq!(
        s.upsert_edge(edge("a", Calls, "b"))
            .unwrap()
            .metadata
            .version,
        1
    );
    let second = s
        .upsert_edge(edge("a", Calls, "b").with_weight(4.0))
        .unwrap();
    assert_eq!(second.metadata.version, 2);
    assert_eq!(s.get_edge(&second.key()).unwrap().metadata.weight, 4.0);
    assert_eq!(
        kind_of(s.upsert_edge(edge("a", Calls, "ghost"))),
        ErrorKind::NodeNotFound
    );
}

pub fn edge_delete_and_delete_missing(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    s.create_edge(edge("a", Calls, "b").with_weight(2.0))
        .unwrap();
    let removed = s.delete_edge(&EdgeKey::new("a", Calls, "b")).unwrap();
    assert_eq!(removed.metadata.weight, 2.0);
    assert_eq!(s.count_edges().unwrap(), 0);
    let err = s.delete_edge(&EdgeKey::new("a", Calls, "b")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EdgeNotFound);
    assert_eq!(err.to_string(), "edge a -[calls]-> b not found");
    assert_eq!(
        kind_of(s.get_edge(&EdgeKey::new("a", Calls, "b"))),
        ErrorKind::EdgeNotFound
    );
    assert!(s.edges_of("a", Direction::Both, &[]).unwrap().is_empty());
    // The nodes stay.
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn edge_custom_relations(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let owned_by = RelationType::parse("owned_by").unwrap();
    s.create_edge(edge("a", owned_by.clone(), "b")).unwrap();
    // A custom spelling of a built-in name is the built-in relation.
    s.create_edge(edge("a", RelationType::Custom("calls".into()), "b"))
        .unwrap();
    assert_eq!(
        kind_of(s.create_edge(edge("a", Calls, "b"))),
        ErrorKind::AlreadyExists
    );
    let got = s
        .get_edge(&EdgeKey::new("a", owned_by.clone(), "b"))
        .unwrap();
    assert_eq!(got.relation_type, owned_by);
    assert_eq!(
        s.edges_of("a", Direction::Out, &[owned_by]).unwrap().len(),
        1
    );
    assert_eq!(
        RelationType::parse("Owned By").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

pub fn edges_of_by_direction_and_relation(f: Fixture) {
    let s = &f.store;
    things(s, &["hub", "x", "y", "z"]);
    s.create_edges([
        edge("hub", Calls, "x"),
        edge("hub", Contains, "y"),
        edge("y", Calls, "hub"),
        edge("z", References, "hub"),
        edge("x", Calls, "y"),
    ])
    .unwrap();
    let keys = |edges: Vec<Edge>| {
        edges
            .iter()
            .map(|e| e.key().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(s.edges_of("hub", Direction::Out, &[]).unwrap()),
        ["hub -[calls]-> x", "hub -[contains]-> y"]
    );
    assert_eq!(
        keys(s.edges_of("hub", Direction::In, &[]).unwrap()),
        ["y -[calls]-> hub", "z -[references]-> hub"]
    );
    assert_eq!(
        keys(s.edges_of("hub", Direction::Both, &[]).unwrap()),
        [
            "hub -[calls]-> x",
            "hub -[contains]-> y",
            "y -[calls]-> hub",
            "z -[references]-> hub"
        ]
    );
    assert_eq!(
        keys(s.edges_of("hub", Direction::Both, &[Calls]).unwrap()),
        ["hub -[calls]-> x", "y -[calls]-> hub"]
    );
    assert_eq!(
        keys(
            s.edges_of("hub", Direction::In, &[Contains, References])
                .unwrap()
        ),
        ["z -[references]-> hub"]
    );
    assert_eq!(
        kind_of(s.edges_of("ghost", Direction::Out, &[])),
        ErrorKind::NodeNotFound
    );
}

/// `edges_of` gives every edge whole whatever the reads before it found: nodes whose
/// edges have the default content (but for the weight) and nodes with an edge that
/// carries more (confidence, source, attributes, bidirectional, an update) are read
/// in runs of every length and alternately, each answer against the edges as a scan
/// lists them. (A backend may read edges of the default content with less work after
/// reads that found only such edges: SQLite does.)
pub fn edges_of_whole_after_any_earlier_reads(f: Fixture) {
    let s = &f.store;
    let names: Vec<String> = (0..12).map(|i| format!("e{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    things(s, &refs);
    let mut edges = Vec::new();
    for (i, from) in names.iter().enumerate() {
        let to = &names[(i + 1) % names.len()];
        let other = &names[(i + 5) % names.len()];
        edges.push(edge(from, Calls, to).with_weight(i as f64 / 4.0));
        edges.push(edge(from, References, other));
        // Every third node has one edge with content.
        match i % 6 {
            0 => edges.push(edge(from, Contains, to).with_attribute("n", json!(i))),
            3 => edges.push(
                edge(from, DependsOn, other)
                    .with_confidence(0.5)
                    .with_source("s"),
            ),
            _ => {}
        }
    }
    edges.push(edge("e01", Contains, "e04").bidirectional());
    s.create_edges(edges).unwrap();
    // An updated edge: its version and update time are not a new edge's.
    let updated = s.get_edge(&EdgeKey::new("e07", Calls, "e08")).unwrap();
    s.update_edge(updated.with_weight(9.0), None).unwrap();
    let all = s
        .list_edges(
            &crate::EdgeFilter::default(),
            &crate::PageRequest::first(1000),
        )
        .unwrap()
        .items;
    let expected = |name: &str, direction: Direction| -> Vec<Edge> {
        let mut found: Vec<Edge> = all
            .iter()
            .filter(|e| match direction {
                Direction::Out => e.from == name,
                Direction::In => e.to == name,
                Direction::Both => e.from == name || e.to == name,
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (a.from.as_str(), a.relation_type.as_str(), a.to.as_str()).cmp(&(
                b.from.as_str(),
                b.relation_type.as_str(),
                b.to.as_str(),
            ))
        });
        found
    };
    // Outgoing edges: runs of nodes whose edges all have the default content, longer
    // than a backend's memory of such reads, broken by nodes with content.
    let plain = ["e02", "e04", "e05", "e08", "e10", "e11"];
    let mut order: Vec<(&str, Direction)> = Vec::new();
    for _ in 0..3 {
        order.extend(plain.iter().chain(&plain).map(|n| (*n, Direction::Out)));
        order.push(("e00", Direction::Out));
        order.extend(plain.iter().map(|n| (*n, Direction::Out)));
        order.extend(["e03", "e07", "e01"].map(|n| (n, Direction::Out)));
    }
    // Then every node in every direction, alternating with the plain ones.
    for (i, name) in names.iter().enumerate() {
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            order.push((name.as_str(), direction));
            order.push((plain[i % plain.len()], Direction::Out));
        }
    }
    for (name, direction) in order {
        let got = s.edges_of(name, direction, &[]).unwrap();
        assert_eq!(got, expected(name, direction), "{name} {direction:?}");
        let read = s.read().unwrap();
        assert_eq!(read.edges_of(name, direction, &[]).unwrap(), got);
    }
}

pub fn edge_self_loop(f: Fixture) {
    let s = &f.store;
    things(s, &["me"]);
    s.create_edge(edge("me", References, "me")).unwrap();
    assert_eq!(s.edges_of("me", Direction::Out, &[]).unwrap().len(), 1);
    assert_eq!(s.edges_of("me", Direction::In, &[]).unwrap().len(), 1);
    assert_eq!(
        s.edges_of("me", Direction::Both, &[]).unwrap().len(),
        1,
        "a self-loop is listed once"
    );
    let report = s.delete_node("me", crate::OnDependents::Refuse).unwrap();
    assert_eq!(report.edges_removed, 1);
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn edges_batch_create(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b", "c"]);
    let n = s
        .create_edges([
            edge("a", Calls, "b"),
            edge("b", Calls, "c"),
            edge("a", DependsOn, "c"),
        ])
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(s.count_edges().unwrap(), 3);
    let err = s
        .create_edges([edge("c", Calls, "a"), edge("c", Calls, "a")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = s
        .create_edges([edge("c", Calls, "b"), edge("a", Calls, "b")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(s.count_edges().unwrap(), 3);
}

pub fn edges_batch_with_missing_endpoint_writes_nothing(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let err = s
        .create_edges([edge("a", Calls, "b"), edge("b", Calls, "ghost")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    let err = s
        .create_edges([
            edge("a", Calls, "b"),
            edge("b", Calls, "a").with_weight(-2.0),
        ])
        .unwrap_err();
    match err {
        Error::Validation { violations } => assert_eq!(violations[0].pointer, "/metadata/weight"),
        other => panic!("{other}"),
    }
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn edge_import_keeps_metadata(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let mut e = edge("a", Calls, "b").with_weight(0.5);
    e.metadata.created_at = Timestamp::parse("1999-12-31T23:59:59.999999Z").unwrap();
    e.metadata.updated_at = Timestamp::parse("2000-01-01T00:00:00Z").unwrap();
    e.metadata.version = 7;
    s.write(|tx| tx.import_edge(e.clone())).unwrap();
    assert_eq!(s.get_edge(&e.key()).unwrap(), e);
    assert_eq!(
        kind_of(s.write(|tx| tx.import_edge(e.clone()))),
        ErrorKind::AlreadyExists
    );
}

pub fn edges_batch_reports_the_first_offender_in_order(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b", "c"]);
    s.create_edge(edge("a", Calls, "b")).unwrap();
    let entity = |err: Error| match err {
        Error::AlreadyExists { entity } => entity,
        other => panic!("{other}"),
    };
    // A stored key before a repeat: the stored one is named.
    let err = s
        .create_edges([
            edge("a", References, "b"),
            edge("a", Calls, "c"),
            edge("a", Calls, "b"),
            edge("a", References, "b"),
        ])
        .unwrap_err();
    assert_eq!(entity(err), "edge a -[calls]-> b");
    // A repeat before a stored key: the repeat is named.
    let err = s
        .create_edges([
            edge("a", References, "b"),
            edge("a", References, "b"),
            edge("a", Calls, "b"),
        ])
        .unwrap_err();
    assert_eq!(entity(err), "edge a -[references]-> b");
    // Past the first batch of probes (4,096 keys): still the first stored key.
    let many: Vec<String> = (0..2100).map(|i| format!("m{i:04}")).collect();
    s.create_nodes(many.iter().map(|n| thing(n))).unwrap();
    s.create_edge(edge("m2050", Calls, "m2051")).unwrap();
    let batch = many
        .windows(2)
        .flat_map(|w| [edge(&w[0], Calls, &w[1]), edge(&w[1], Calls, &w[0])]);
    assert_eq!(
        entity(s.create_edges(batch).unwrap_err()),
        "edge m2050 -[calls]-> m2051"
    );
    // The first missing endpoint in the order edges name them, with its edge.
    let err = s
        .create_edges([
            edge("a", References, "c"),
            edge("c", References, "x"),
            edge("y", References, "a"),
            edge("a", References, "x"),
        ])
        .unwrap_err();
    match err {
        Error::NodeNotFound {
            name,
            referenced_by,
        } => {
            assert_eq!(name, "x");
            assert_eq!(referenced_by.as_deref(), Some("edge c -[references]-> x"));
        }
        other => panic!("{other}"),
    }
    // Every refused batch wrote nothing.
    assert_eq!(s.count_edges().unwrap(), 2);
    assert_eq!(
        s.neighbour_names("a", Direction::Out, &[]).unwrap(),
        vec!["b".to_owned()]
    );
}
