//! The SQLite backend agrees with the reference: native traversal at every depth,
//! overrides on graphs that are not (yet) clean, batched writes, and filters
//! pushed into SQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{store, temp_db};
use kgstore_core::algo;
use kgstore_core::suite::scrambled_graph;
use kgstore_core::{
    Backend, Direction, Edge, EdgeFilter, GraphRead, MemoryBackend, Node, NodeFilter, PageRequest,
    RelationType, Store, Timestamp, TraverseOptions,
};
use kgstore_sqlite::SqliteBackend;
use serde_json::json;

use RelationType::{Calls, Contains, References};

#[test]
fn native_traversal_agrees_with_the_reference_at_every_depth() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    scrambled_graph(&s, 80);
    let read = s.read().unwrap();
    read.with_reader(|txn| {
        for i in (0..80).step_by(3) {
            let name = format!("g{i:03}");
            for max_depth in 1..=7 {
                for direction in [Direction::Out, Direction::In, Direction::Both] {
                    for relations in [vec![], vec![Calls], vec![Contains, References]] {
                        let options = TraverseOptions {
                            direction,
                            relations,
                            max_depth,
                        };
                        assert_eq!(
                            txn.traverse(&name, &options)?,
                            algo::traverse(txn, &name, &options)?,
                            "{name} {options:?}"
                        );
                    }
                }
            }
        }
        // A start with no node and no edges reaches nothing, at any depth.
        for max_depth in [1, 9] {
            assert!(
                txn.traverse("nowhere", &TraverseOptions::depth(max_depth))?
                    .is_empty()
            );
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn overrides_agree_with_the_reference_on_unfinished_graphs() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_node(Node::new("base", "thing").unwrap()).unwrap();
    let outcome = s.write(|tx| {
        tx.defer_checks();
        // A dangling dependency and a cycle, both allowed until commit.
        tx.create_node(Node::new("a", "thing")?.with_dependency("b"))?;
        tx.create_node(
            Node::new("b", "thing")?
                .with_dependency("missing")
                .with_dependency("base"),
        )?;
        tx.create_node(Node::new("x", "thing")?.with_dependency("y"))?;
        tx.create_node(
            Node::new("y", "thing")?
                .with_dependency("x")
                .with_dependency("base"),
        )?;
        tx.create_node(Node::new("z", "thing")?.with_dependency("y"))?;
        tx.with_reader(|txn| {
            for name in ["a", "b", "x", "y", "z", "base"] {
                let native = txn.resolve_dependencies(name).map_err(|e| e.to_string());
                let reference = algo::resolve_dependencies(txn, name).map_err(|e| e.to_string());
                assert_eq!(native, reference, "dependencies of {name}");
                let native = txn.resolve_dependents(name).map_err(|e| e.to_string());
                let reference = algo::resolve_dependents(txn, name).map_err(|e| e.to_string());
                assert_eq!(native, reference, "dependents of {name}");
            }
            assert!(txn.resolve_dependencies("a").is_err());
            assert!(txn.resolve_dependencies("x").is_err());
            Ok(())
        })?;
        Err::<(), _>(kgstore_core::Error::invalid_input("test", "roll back"))
    });
    assert!(outcome.is_err());
    assert_eq!(s.count_nodes().unwrap(), 1);
}

fn stamped(node: Node) -> Node {
    let mut node = node;
    node.metadata.version = 1;
    node.metadata.created_at = Timestamp::from_micros(1_000).unwrap();
    node.metadata.updated_at = node.metadata.created_at;
    node
}

/// Everything a backend holds, read through the plain reads.
fn contents(backend: &dyn Backend) -> (Vec<Node>, Vec<Edge>, BTreeMap<String, Vec<String>>) {
    let txn = backend.begin_read().unwrap();
    let nodes = txn
        .scan_nodes(&NodeFilter::default(), None, usize::MAX)
        .unwrap();
    let edges = txn
        .scan_edges(&EdgeFilter::default(), None, usize::MAX)
        .unwrap();
    let mut dependents = BTreeMap::new();
    for name in nodes
        .iter()
        .map(|n| n.name.clone())
        .chain(["ghost".to_owned()])
    {
        dependents.insert(name.clone(), txn.dependents_of(&name).unwrap());
    }
    (nodes, edges, dependents)
}

#[test]
fn batched_writes_agree_with_the_memory_backend() {
    let (_dir, path) = temp_db();
    let sqlite = SqliteBackend::open(&path, common::options()).unwrap();
    let memory = MemoryBackend::new();
    let backends: [&dyn Backend; 2] = [&memory, &sqlite];
    for backend in backends {
        let mut txn = backend.begin_write().unwrap();
        // Names known before the batch: nodes to update, and a name only an edge uses.
        txn.put_nodes(
            &(0..10)
                .map(|i| {
                    stamped(
                        Node::new(format!("n{i:03}"), "old")
                            .unwrap()
                            .with_tag("old"),
                    )
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        txn.put_edge(&Edge::new("n000", Calls, "only-an-edge-end").unwrap())
            .unwrap();
        // 100 nodes: three full multi-row batches and a remainder; updates, the edge
        // end becoming a node, tags, dependencies, and one name twice (last wins).
        let mut batch: Vec<Node> = (0..99)
            .map(|i| {
                let mut node = Node::new(format!("n{i:03}"), "new")
                    .unwrap()
                    .with_observation(format!("number {i}"))
                    .with_attribute("i", json!(i));
                if i % 3 == 0 {
                    node = node.with_tag("three").with_tag(format!("t{i}"));
                }
                if i % 5 == 1 && i > 1 {
                    node = node
                        .with_dependency(format!("n{:03}", i - 1))
                        .with_dependency("ghost");
                }
                stamped(node)
            })
            .collect();
        batch[40] = stamped(Node::new("only-an-edge-end", "new").unwrap());
        batch.push(stamped(
            Node::new("n050", "twice").unwrap().with_tag("second"),
        ));
        txn.put_nodes(&batch).unwrap();
        // Updates through a batch drop the old tags and dependencies.
        txn.put_nodes(
            &(0..40)
                .map(|i| stamped(Node::new(format!("n{i:03}"), "again").unwrap()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        txn.commit().unwrap();
    }
    let (m, s) = (contents(&memory), contents(&sqlite));
    assert_eq!(s.0, m.0);
    assert_eq!(s.1, m.1);
    assert_eq!(s.2, m.2);
    assert!(sqlite.check().unwrap().is_empty());
    let read = sqlite.begin_read().unwrap();
    assert_eq!(read.get_node("n050").unwrap().unwrap().node_type, "twice");
}

/// Nodes with types, tags, statuses, attributes and mixed-case text.
fn catalogue() -> Vec<Node> {
    let words = [
        "École",
        "école",
        "STRASSE",
        "Straße",
        "ǅemal",
        "ΣΊΣΥΦΟΣ",
        "σίσυφος",
        "plain",
        "50%",
        "a_b",
    ];
    (0..240)
        .map(|i| {
            let mut node = Node::new(
                format!("{}-{i:03}", words[i % words.len()]),
                ["crate", "person", "tool"][i % 3],
            )
            .unwrap()
            .with_observation(format!(
                "{} observation {}",
                words[(i * 7) % words.len()],
                i % 11
            ))
            .with_attribute(
                "lang",
                [
                    json!("rust"),
                    json!("go"),
                    json!(["rust"]),
                    json!(1),
                    json!(1.0),
                ][i % 5]
                    .clone(),
            )
            .with_attribute(
                "meta",
                json!({"stars": i % 4, "team": {"name": words[i % 4]}}),
            );
            if i % 2 == 0 {
                node = node.with_tag("even");
            }
            if i % 3 == 0 {
                node = node.with_tag("three");
            }
            if i % 4 != 3 {
                node = node.with_status(["stable", "experimental", "deprecated"][i % 4 % 3]);
            }
            node
        })
        .collect()
}

fn all_names(s: &Store, filter: &NodeFilter, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = s.list_nodes(filter, &page).unwrap();
        assert!(got.items.len() <= limit);
        out.extend(got.items.into_iter().map(|n| n.name));
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => return out,
        }
    }
}

fn all_keys(s: &Store, filter: &EdgeFilter, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = s.list_edges(filter, &page).unwrap();
        out.extend(got.items.into_iter().map(|e| e.key().to_string()));
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => return out,
        }
    }
}

#[test]
fn filters_and_pages_agree_with_the_reference_semantics() {
    let (_dir, path) = temp_db();
    let sqlite = store(&path);
    let memory = Store::memory();
    let nodes = catalogue();
    let edges: Vec<Edge> = (0..nodes.len())
        .map(|i| {
            Edge::new(
                nodes[i].name.clone(),
                [Calls, Contains, References][i % 3].clone(),
                nodes[(i * 7 + 1) % nodes.len()].name.clone(),
            )
            .unwrap()
            .with_weight((i % 6) as f64 / 2.0)
            .with_attribute("k", json!(i % 4))
        })
        .collect();
    for s in [&sqlite, &memory] {
        s.create_nodes(nodes.clone()).unwrap();
        s.create_edges(edges.clone()).unwrap();
    }
    let since = sqlite.get_node(&nodes[0].name).unwrap().metadata.updated_at;
    let filters = [
        NodeFilter::default(),
        NodeFilter::default().of_type("crate"),
        NodeFilter::default().of_type("crate").of_type("tool"),
        NodeFilter::default().with_name_prefix("É"),
        NodeFilter::default().with_name_prefix("50%"),
        NodeFilter::default().with_name_prefix("a_"),
        NodeFilter::default().with_tag("even").with_tag("three"),
        NodeFilter::default().with_tag("even").with_tag("even"),
        NodeFilter::default().with_status("stable"),
        NodeFilter::default().updated_since(since),
        NodeFilter::default().where_eq("/lang", json!("rust")),
        NodeFilter::default().where_eq("/lang", json!(1)),
        NodeFilter::default().where_eq("/lang", json!(1.0)),
        NodeFilter::default().where_eq("/lang", json!(["rust"])),
        NodeFilter::default().where_eq("/meta/team/name", json!("école")),
        NodeFilter::default().containing("école"),
        NodeFilter::default().containing("STRASSE"),
        NodeFilter::default().containing("straße"),
        NodeFilter::default().containing("σίσυφος"),
        NodeFilter::default().containing("ǆ"),
        NodeFilter::default().containing("observation 1"),
        NodeFilter::default().containing("%"),
        NodeFilter::default()
            .of_type("person")
            .with_tag("even")
            .containing("observation")
            .where_eq("/meta/stars", json!(2)),
        // A long list of types is bound as one JSON array.
        (0..100).fold(NodeFilter::default().of_type("tool"), |f, i| {
            f.of_type(format!("t{i}"))
        }),
    ];
    for filter in &filters {
        let expected = all_names(&memory, filter, 1000);
        for limit in [1, 7, 100] {
            assert_eq!(
                all_names(&sqlite, filter, limit),
                expected,
                "{filter:?} limit {limit}"
            );
        }
    }
    let edge_filters = [
        EdgeFilter::default(),
        EdgeFilter::default().from_node(nodes[5].name.clone()),
        EdgeFilter::default().to_node(nodes[36].name.clone()),
        EdgeFilter::default()
            .of_relation(Calls)
            .of_relation(References),
        EdgeFilter::default().with_min_weight(1.5),
        EdgeFilter::default().where_eq("/k", json!(2)),
        EdgeFilter::default()
            .of_relation(Contains)
            .with_min_weight(1.0)
            .where_eq("/k", json!(1)),
        (0..40).fold(EdgeFilter::default().of_relation(Calls), |f, i| {
            f.of_relation(RelationType::Custom(format!("r{i}").into()))
        }),
    ];
    for filter in &edge_filters {
        let expected = all_keys(&memory, filter, 1000);
        for limit in [1, 9, 100] {
            assert_eq!(
                all_keys(&sqlite, filter, limit),
                expected,
                "{filter:?} limit {limit}"
            );
        }
    }
    for node in nodes.iter().step_by(17) {
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            for relations in [vec![], vec![Calls, Contains]] {
                assert_eq!(
                    sqlite.edges_of(&node.name, direction, &relations).unwrap(),
                    memory
                        .edges_of(&node.name, direction, &relations)
                        .unwrap()
                        .into_iter()
                        .map(|mut e| {
                            let stored = sqlite.get_edge(&e.key()).unwrap();
                            e.metadata.created_at = stored.metadata.created_at;
                            e.metadata.updated_at = stored.metadata.updated_at;
                            e
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
}

/// Nodes written 32 a statement, most batches plain (`write.rs`'s `plain_node`:
/// written by the statement that binds three values a node), the batches holding
/// a node with a tag or an observation not; and edges enough for a write into an
/// empty table to build `edges_by_to` again at its end (`write.rs`'s
/// `REBUILD_INDEXES_FROM`, 16,384), every fourth one not of the default content
/// (so written by the full statement, not the plain one); `bidirectional`: every
/// one of those is bidirectional instead (enough of them to build the partial
/// index again too).
fn large_load(bidirectional: bool) -> (Vec<Node>, Vec<Edge>) {
    let nodes: Vec<Node> = (0..500)
        .map(|i| {
            let node = Node::new(format!("m{i:03}"), if i % 3 == 0 { "a" } else { "b" })
                .unwrap()
                .with_attribute("i", json!(i));
            stamped(match i % 100 {
                7 => node.with_tag("seven"),
                77 => node.with_observation("seventy-seven"),
                _ => node,
            })
        })
        .collect();
    let rels = [Calls, Contains, References];
    let mut edges = Vec::new();
    for k in 0..70_000_usize {
        let (from, to) = (k * 7919 % 500, k * 104_729 % 499);
        let rel = rels[k % 3].clone();
        let mut edge = Edge::new(format!("m{from:03}"), rel, format!("m{to:03}"))
            .unwrap()
            .with_weight(k as f64 / 7.0);
        if k % 4 == 1 {
            edge = if bidirectional {
                edge.bidirectional()
            } else {
                match k % 3 {
                    0 => edge.with_confidence(0.5),
                    1 => edge.with_attribute("k", json!(k)),
                    _ => edge.with_source("test"),
                }
            };
        }
        edge.metadata.created_at = Timestamp::from_micros(2_000 + k as i64).unwrap();
        edge.metadata.updated_at = edge.metadata.created_at;
        edge.metadata.version = 1;
        edges.push(edge);
    }
    // Keys given twice: the last wins, as one by one.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<Edge> = edges
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.key()))
        .collect();
    unique.reverse();
    assert!(unique.len() >= 20_000);
    (nodes, unique)
}

/// The rows of a table and the schema's text, read straight from a store's file.
fn table_rows(path: &std::path::Path, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        (0..columns)
            .map(|i| row.get::<_, rusqlite::types::Value>(i))
            .collect()
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

#[test]
fn large_loads_write_the_rows_writes_one_by_one_write() {
    for bidirectional in [false, true] {
        let (nodes, edges) = large_load(bidirectional);
        let memory = MemoryBackend::new();
        let (_bulk_dir, bulk_path) = temp_db();
        let (_single_dir, single_path) = temp_db();
        let bulk = SqliteBackend::open(&bulk_path, common::options()).unwrap();
        let single = SqliteBackend::open(&single_path, common::options()).unwrap();
        for backend in [&memory as &dyn Backend, &bulk] {
            let mut txn = backend.begin_write().unwrap();
            txn.put_nodes(&nodes).unwrap();
            txn.put_edges(&edges).unwrap();
            txn.commit().unwrap();
        }
        let mut txn = single.begin_write().unwrap();
        for node in &nodes {
            txn.put_node(node).unwrap();
        }
        for edge in &edges {
            txn.put_edge(edge).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(contents(&bulk), contents(&memory));
        for backend in [&bulk, &single] {
            assert!(backend.check().unwrap().is_empty());
        }
        drop((bulk, single));
        // Most rows went in by the plain edges' statement.
        let plain = table_rows(&bulk_path, "SELECT count(*) FROM edges WHERE flags = 2");
        assert!(matches!(plain[0][0], rusqlite::types::Value::Integer(n) if n > 10_000));
        for sql in [
            "SELECT * FROM names ORDER BY id",
            "SELECT * FROM nodes ORDER BY id",
            "SELECT * FROM node_tags ORDER BY node_id, tag",
            "SELECT * FROM node_type_counts ORDER BY node_type",
            "SELECT * FROM edges ORDER BY from_id, rel, to_id",
            "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name",
            "SELECT to_id, rel, from_id FROM edges INDEXED BY edges_bidirectional_by_to \
             WHERE flags & 1 ORDER BY to_id, rel, from_id",
        ] {
            assert_eq!(
                table_rows(&bulk_path, sql),
                table_rows(&single_path, sql),
                "{sql}"
            );
        }
    }
}

/// A walk one name at a time on one read snapshot (`edges_of` of each `to` end in
/// turn, as a client-side two-hop does; SQLite reads a kept end from its id)
/// gives what each call on a snapshot of its own gives, and what the memory
/// backend gives: with and without a relation, through plain edges and edges with
/// content, to a node without outgoing edges, and a missing name.
#[test]
fn walks_one_name_at_a_time_on_one_snapshot_agree() {
    let (_dir, path) = temp_db();
    let sqlite = store(&path);
    let memory = Store::memory();
    for s in [&sqlite, &memory] {
        scrambled_graph(s, 60);
        s.create_node(Node::new("leaf", "thing").unwrap()).unwrap();
        s.create_edge(
            Edge::new("g001", Calls, "leaf")
                .unwrap()
                .with_attribute("k", json!(1)),
        )
        .unwrap();
    }
    let key = |edges: &[Edge]| {
        edges
            .iter()
            .map(|e| {
                (
                    e.key(),
                    e.metadata.weight.to_bits(),
                    e.metadata.bidirectional,
                    e.attributes.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let starts = (0..60)
        .map(|i| format!("g{i:03}"))
        .chain(["leaf".to_owned()]);
    for start in starts {
        let read = sqlite.read().unwrap();
        let reference = memory.read().unwrap();
        let mut frontier = vec![start.clone()];
        for _hop in 0..3 {
            let mut next = Vec::new();
            for name in &frontier {
                for relations in [&[][..], &[Calls, References][..]] {
                    let walked = read.edges_of(name, Direction::Out, relations).unwrap();
                    let alone = sqlite.edges_of(name, Direction::Out, relations).unwrap();
                    assert_eq!(walked, alone, "{start}: {name} {relations:?}");
                    let expected = reference.edges_of(name, Direction::Out, relations).unwrap();
                    assert_eq!(
                        key(&walked),
                        key(&expected),
                        "{start}: {name} {relations:?}"
                    );
                }
                let walked = read.edges_of(name, Direction::Out, &[]).unwrap();
                next.extend(walked.into_iter().map(|e| e.to));
            }
            next.sort();
            next.dedup();
            next.truncate(12);
            frontier = next;
        }
        assert!(read.edges_of("missing", Direction::Out, &[]).is_err());
    }
}

/// A node's outgoing edges come from SQLite by relation (`ORDER BY e.rel`, the
/// order of the table's key, so nothing is sorted there) and are sorted by the
/// other end's name within each relation in Rust (session 15). Names created in
/// the reverse of their order (so their ids run against the names) with several
/// edges per relation show that order is by name, not by id: store-level, on a
/// snapshot (a name's edges read from its kept id too), whole and plain rows,
/// against the memory backend.
#[test]
fn outgoing_edges_come_in_key_order_when_ids_run_against_names() {
    let (_dir, path) = temp_db();
    let sqlite = store(&path);
    let memory = Store::memory();
    let names: Vec<String> = (0..12).rev().map(|i| format!("m{i:02}")).collect();
    for s in [&sqlite, &memory] {
        for name in ["start"]
            .into_iter()
            .chain(names.iter().map(String::as_str))
        {
            s.create_node(Node::new(name, "thing").unwrap()).unwrap();
        }
        for (i, name) in names.iter().enumerate() {
            let relation = [Calls, References, Contains][i % 3].clone();
            let mut edge = Edge::new("start", relation, name).unwrap();
            if i == 7 {
                // One edge with content: a whole read.
                edge = edge.with_attribute("k", json!(i));
            }
            s.create_edge(edge).unwrap();
            s.create_edge(Edge::new(name, Calls, "start").unwrap())
                .unwrap();
            s.create_edge(Edge::new(name, References, &names[(i + 5) % 12]).unwrap())
                .unwrap();
            s.create_edge(Edge::new(name, References, &names[(i + 1) % 12]).unwrap())
                .unwrap();
        }
    }
    let keys = |edges: &[Edge]| edges.iter().map(Edge::key).collect::<Vec<_>>();
    for round in 0..12 {
        let expected = memory.edges_of("start", Direction::Out, &[]).unwrap();
        let sorted = {
            let mut k = keys(&expected);
            k.sort();
            k
        };
        assert_eq!(keys(&expected), sorted);
        assert_eq!(
            keys(&sqlite.edges_of("start", Direction::Out, &[]).unwrap()),
            sorted,
            "{round}"
        );
        let snapshot = sqlite.read().unwrap();
        let reference = memory.read().unwrap();
        let start = snapshot.edges_of("start", Direction::Out, &[]).unwrap();
        assert_eq!(keys(&start), sorted, "{round}");
        for end in start {
            let walked = snapshot.edges_of(&end.to, Direction::Out, &[]).unwrap();
            let expected = reference.edges_of(&end.to, Direction::Out, &[]).unwrap();
            assert_eq!(keys(&walked), keys(&expected), "{round}: {}", end.to);
            assert!(
                walked.windows(2).all(|w| w[0].key() < w[1].key()),
                "{round}"
            );
        }
    }
}
