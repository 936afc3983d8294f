//! Hostile values round-trip unchanged, in every place a value can go, and
//! survive reopening: SQL is only ever parameterized.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{store, temp_db};
use kgstore_core::suite::dump;
use kgstore_core::{
    Direction, Edge, EdgeFilter, GraphRead, Node, NodeFilter, PageRequest, RelationType,
    SchemaTarget, TraverseOptions,
};
use serde_json::json;

/// A character from each of the 17 Unicode planes.
fn every_plane() -> String {
    (0u32..=16)
        .map(|plane| char::from_u32((plane << 16) | 0x0041).unwrap())
        .collect()
}

fn hostile_names() -> Vec<String> {
    vec![
        "'; DROP TABLE nodes; --".to_owned(),
        "\"double\" 'single' `back`".to_owned(),
        "50%_off".to_owned(),
        "a*b?c[d]".to_owned(),
        "x') OR ('1'='1".to_owned(),
        "\\escaped\\".to_owned(),
        every_plane(),
        "\u{10FFFF}\u{10FFFF}".to_owned(),
        "\u{FEFF}bom \u{200B} zero width".to_owned(),
        "ends with space ".to_owned(),
        "é".repeat(256), // 512 bytes, the longest name
    ]
}

#[test]
fn hostile_values_round_trip_everywhere_and_survive_reopening() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    let megabyte: String = "0123456789abcdef".repeat(64 * 1024);
    let names = hostile_names();
    let rel = RelationType::Custom("drop_table".into());
    s.write(|tx| {
        tx.set_schema(
            SchemaTarget::NodeType("thing".into()),
            json!({"type": "object", "description": "'; DROP TABLE schemas; --\u{0}"}),
        )?;
        for (i, name) in names.iter().enumerate() {
            let mut node = Node::new(name.clone(), "thing")?
                .with_observation(format!("{name} \0 nul {i}"))
                .with_observation(every_plane())
                .with_attribute(name.clone(), json!(name))
                .with_attribute("nul\0key", json!("nul\0value"))
                .with_tag(format!("tag '{i}'; --"))
                .with_status("'; DELETE FROM nodes; --")
                .with_author("Robert'); DROP TABLE students;--")
                .with_source(every_plane());
            if i > 0 {
                node = node.with_dependency(names[i - 1].clone());
            }
            if i == 0 {
                node = node.with_observation(megabyte.clone());
            }
            tx.create_node(node)?;
        }
        for pair in names.windows(2) {
            tx.create_edge(
                Edge::new(pair[0].clone(), rel.clone(), pair[1].clone())?
                    .with_attribute("q", json!("' OR 1=1 --"))
                    .with_source("\"; --"),
            )?;
        }
        Ok(())
    })
    .unwrap();

    for (i, name) in names.iter().enumerate() {
        let node = s.get_node(name).unwrap();
        assert_eq!(&node.name, name);
        assert_eq!(node.observations[0], format!("{name} \0 nul {i}"));
        assert_eq!(node.observations[1], every_plane());
        assert_eq!(node.attributes[name.as_str()], json!(name));
        assert_eq!(node.attributes["nul\0key"], json!("nul\0value"));
        assert_eq!(node.metadata.tags, [format!("tag '{i}'; --")]);
        assert_eq!(
            node.metadata.author.as_deref(),
            Some("Robert'); DROP TABLE students;--")
        );
    }
    assert_eq!(s.get_node(&names[0]).unwrap().observations[2], megabyte);

    // Filters with wildcard characters match literally.
    let listed = |filter: NodeFilter| -> Vec<String> {
        s.list_nodes(&filter, &PageRequest::first(100))
            .unwrap()
            .items
            .into_iter()
            .map(|n| n.name)
            .collect()
    };
    assert_eq!(
        listed(NodeFilter::default().with_name_prefix("50%")),
        ["50%_off"]
    );
    assert_eq!(
        listed(NodeFilter::default().with_name_prefix("a*b?c[")),
        ["a*b?c[d]"]
    );
    assert!(listed(NodeFilter::default().with_name_prefix("%")).is_empty());
    assert!(listed(NodeFilter::default().with_name_prefix("_")).is_empty());
    assert_eq!(
        listed(NodeFilter::default().with_name_prefix("'; DROP")),
        [names[0].clone()]
    );
    assert_eq!(
        listed(NodeFilter::default().with_name_prefix("\u{10FFFF}")),
        [names[7].clone()]
    );
    assert_eq!(
        listed(NodeFilter::default().with_tag("tag '3'; --")),
        [names[3].clone()]
    );
    assert_eq!(
        listed(NodeFilter::default().with_status("'; DELETE FROM nodes; --")).len(),
        names.len()
    );
    assert_eq!(
        listed(NodeFilter::default().where_eq("/nul\0key", json!("nul\0value"))).len(),
        names.len()
    );
    assert_eq!(
        listed(NodeFilter::default().containing("OR ('1'='1")),
        [names[4].clone()]
    );
    assert_eq!(
        listed(NodeFilter::default().containing("%_")),
        [names[2].clone()]
    );
    assert_eq!(
        listed(NodeFilter::default().containing("\0 NUL 1")).len(),
        2,
        "case-insensitive, NUL inside"
    );

    // Edges, traversal and dependency resolution over hostile names.
    let edges = s
        .list_edges(
            &EdgeFilter::default().from_node(names[0].clone()),
            &PageRequest::first(10),
        )
        .unwrap()
        .items;
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].attributes["q"], json!("' OR 1=1 --"));
    assert_eq!(
        s.edges_of(&names[1], Direction::In, std::slice::from_ref(&rel))
            .unwrap()
            .len(),
        1
    );
    let reached = s
        .traverse(&names[0], &TraverseOptions::depth(names.len()))
        .unwrap();
    assert_eq!(reached.len(), names.len() - 1);
    let last = names.last().unwrap();
    assert_eq!(s.resolve_dependencies(last).unwrap().len(), names.len() - 1);
    assert_eq!(s.dependents(&names[0]).unwrap().len(), names.len() - 1);

    let before = dump(&s);
    drop(s);
    let s = store(&path);
    assert_eq!(dump(&s), before);
    let report = s.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // The tables are all still there.
    let conn = common::raw(&path);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // 6 of the graph; 2 of the documents; search_docs, search_totals, search_terms,
    // the FTS5 table with its four shadow tables, the fts5vocab table, and the
    // trigram FTS5 table over search_terms with its three (it keeps no column sizes),
    // search_terms_pending, search_stale, search_stale_from; 2 of the event store;
    // node_type_counts.
    assert_eq!(tables, 27);
}
