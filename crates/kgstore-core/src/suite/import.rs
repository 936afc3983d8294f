//! Bulk imports (`WriteTx::bulk_import`): what they keep and what they refuse.

use serde_json::json;

use super::{Fixture, edge, kind_of, thing, thing_with_deps};
use crate::{Edge, ErrorKind, GraphRead, Node, RelationType, SchemaTarget, Timestamp};

fn kept(mut node: Node, version: u64) -> Node {
    node.metadata.created_at = Timestamp::parse("2001-02-03T04:05:06.123456Z").unwrap();
    node.metadata.updated_at = Timestamp::parse("2002-02-03T04:05:06.654321Z").unwrap();
    node.metadata.version = version;
    node
}

fn kept_edge(mut e: Edge) -> Edge {
    e.metadata.created_at = Timestamp::parse("2001-02-03T04:05:06.123456Z").unwrap();
    e.metadata.updated_at = Timestamp::parse("2003-02-03T04:05:06Z").unwrap();
    e.metadata.version = 3;
    e
}

pub fn bulk_import_keeps_metadata_and_checks_references(f: Fixture) {
    let s = &f.store;
    // "a" depends on "z", which comes in a later batch.
    let first = vec![kept(thing_with_deps("a", &["z"]), 7), kept(thing("b"), 1)];
    let second = vec![kept(thing("z").with_attribute("k", json!([1, "x"])), 2)];
    let edges = vec![
        kept_edge(edge("a", RelationType::Calls, "b")),
        kept_edge(edge("a", RelationType::Calls, "z")),
        kept_edge(edge("b", RelationType::DependsOn, "z")),
    ];
    s.write(|tx| {
        let mut import = tx.bulk_import()?;
        assert_eq!(import.nodes(first.clone())?, 2);
        assert_eq!(import.nodes(second.clone())?, 1);
        assert_eq!(import.edges(edges[..1].to_vec())?, 1);
        assert_eq!(import.edges(edges[1..].to_vec())?, 2);
        import.finish()
    })
    .unwrap();
    for node in first.iter().chain(&second) {
        assert_eq!(&s.get_node(&node.name).unwrap(), node);
    }
    for e in &edges {
        assert_eq!(&s.get_edge(&e.key()).unwrap(), e);
    }
    assert_eq!(s.resolve_dependencies("a").unwrap(), vec!["z".to_owned()]);
    // A store that holds a graph takes no bulk import.
    assert_eq!(
        kind_of(s.write(|tx| tx.bulk_import().map(|_| ()))),
        ErrorKind::InvalidInput
    );
}

/// A refused import: its name, node batches, edge batches and the error's kind.
type Case = (&'static str, Vec<Vec<Node>>, Vec<Vec<Edge>>, ErrorKind);

pub fn bulk_import_refuses_bad_input_and_writes_nothing(f: Fixture) {
    let s = &f.store;
    s.set_schema(
        SchemaTarget::NodeType("thing".into()),
        json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
    )
    .unwrap();
    let attempt = |nodes: Vec<Vec<Node>>, edges: Vec<Vec<Edge>>| {
        s.write(|tx| {
            let mut import = tx.bulk_import()?;
            for batch in nodes.clone() {
                import.nodes(batch)?;
            }
            for batch in edges.clone() {
                import.edges(batch)?;
            }
            import.finish()
        })
    };
    let pair = || vec![kept(thing("a"), 1), kept(thing("b"), 1)];
    let cases: Vec<Case> = vec![
        (
            "a missing dependency",
            vec![vec![kept(thing_with_deps("a", &["gone"]), 1)]],
            vec![],
            ErrorKind::NodeNotFound,
        ),
        (
            "a self-dependency",
            vec![vec![kept(thing_with_deps("a", &["a"]), 1)]],
            vec![],
            ErrorKind::DependencyCycle,
        ),
        (
            "a cycle across batches",
            vec![
                vec![kept(thing_with_deps("a", &["b"]), 1)],
                vec![kept(thing_with_deps("b", &["a"]), 1)],
            ],
            vec![],
            ErrorKind::DependencyCycle,
        ),
        (
            "a repeated name across batches",
            vec![pair(), vec![kept(thing("a"), 1)]],
            vec![],
            ErrorKind::AlreadyExists,
        ),
        (
            "a missing endpoint",
            vec![pair()],
            vec![vec![kept_edge(edge("a", RelationType::Calls, "c"))]],
            ErrorKind::NodeNotFound,
        ),
        (
            "edges out of order",
            vec![pair()],
            vec![
                vec![kept_edge(edge("b", RelationType::Calls, "a"))],
                vec![kept_edge(edge("a", RelationType::Calls, "b"))],
            ],
            ErrorKind::InvalidInput,
        ),
        (
            "a repeated edge",
            vec![pair()],
            vec![vec![
                kept_edge(edge("a", RelationType::Calls, "b")),
                kept_edge(edge("a", RelationType::Calls, "b")),
            ]],
            ErrorKind::AlreadyExists,
        ),
        (
            "a schema violation",
            vec![vec![kept(thing("a").with_attribute("n", json!("x")), 1)]],
            vec![],
            ErrorKind::Validation,
        ),
        (
            "metadata that goes backwards",
            vec![vec![{
                let mut n = kept(thing("a"), 2);
                n.metadata.updated_at = Timestamp::parse("2000-01-01T00:00:00Z").unwrap();
                n
            }]],
            vec![],
            ErrorKind::Validation,
        ),
        (
            "an invalid name",
            vec![vec![kept(
                Node {
                    name: String::new(),
                    ..thing("a")
                },
                1,
            )]],
            vec![],
            ErrorKind::Validation,
        ),
    ];
    for (name, nodes, edges, kind) in cases {
        assert_eq!(kind_of(attempt(nodes, edges)), kind, "{name}");
        assert_eq!(s.count_nodes().unwrap(), 0, "{name}");
        assert_eq!(s.count_edges().unwrap(), 0, "{name}");
    }
    // An import left unfinished cannot commit: its dependencies were never checked.
    let err = s
        .write(|tx| {
            let mut import = tx.bulk_import()?;
            import.nodes(vec![kept(thing_with_deps("a", &["gone"]), 1)])?;
            Ok(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("not finished"), "{err}");
    assert_eq!(s.count_nodes().unwrap(), 0);
}
