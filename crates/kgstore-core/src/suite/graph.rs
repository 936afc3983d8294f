//! Traversal, shortest paths, statistics and the integrity check.

use serde_json::json;

use super::{Fixture, edge, kind_of, thing_with_deps, things};
use crate::{
    Direction, EdgeKey, ErrorKind, GraphRead, PathOptions, ReachOptions, RelationType,
    SchemaTarget, Store, TraverseOptions, Visit,
};

use RelationType::{Calls, Contains, References};

/// a → b → c → d, a → e → d, f → a (contains), g ↔ a (bidirectional references).
fn chain(s: &Store) {
    things(s, &["a", "b", "c", "d", "e", "f", "g", "lonely"]);
    s.create_edges([
        edge("a", Calls, "b").with_weight(1.0),
        edge("b", Calls, "c").with_weight(1.0),
        edge("c", Calls, "d").with_weight(1.0),
        edge("a", Calls, "e").with_weight(5.0),
        edge("e", Calls, "d").with_weight(5.0),
        edge("f", Contains, "a"),
        edge("g", References, "a").bidirectional(),
    ])
    .unwrap();
}

fn visits(list: &[(&str, usize)]) -> Vec<Visit> {
    list.iter()
        .map(|(n, d)| Visit {
            name: (*n).to_owned(),
            depth: *d,
        })
        .collect()
}

pub fn traverse_reports_min_depths(f: Fixture) {
    let s = &f.store;
    chain(s);
    let calls = |depth| TraverseOptions::depth(depth).relation(Calls);
    assert_eq!(
        s.traverse("a", &calls(1)).unwrap(),
        visits(&[("b", 1), ("e", 1)])
    );
    assert_eq!(
        s.traverse("a", &calls(2)).unwrap(),
        visits(&[("b", 1), ("e", 1), ("c", 2), ("d", 2)])
    );
    assert_eq!(
        s.traverse("a", &calls(10)).unwrap(),
        visits(&[("b", 1), ("e", 1), ("c", 2), ("d", 2)])
    );
    assert!(
        s.traverse("lonely", &TraverseOptions::depth(3))
            .unwrap()
            .is_empty()
    );
}

pub fn traverse_respects_direction_relations_and_bidirectional(f: Fixture) {
    let s = &f.store;
    chain(s);
    // Out from a: its calls, plus g through the bidirectional edge g -> a.
    assert_eq!(
        s.traverse("a", &TraverseOptions::depth(1)).unwrap(),
        visits(&[("b", 1), ("e", 1), ("g", 1)])
    );
    // In to a: f (contains) and g (bidirectional).
    let incoming = TraverseOptions::depth(1).direction(Direction::In);
    assert_eq!(
        s.traverse("a", &incoming).unwrap(),
        visits(&[("f", 1), ("g", 1)])
    );
    let incoming_deep = TraverseOptions::depth(5).direction(Direction::In);
    assert_eq!(
        s.traverse("d", &incoming_deep).unwrap(),
        visits(&[("c", 1), ("e", 1), ("a", 2), ("b", 2), ("f", 3), ("g", 3)])
    );
    let both = TraverseOptions::depth(1).direction(Direction::Both);
    assert_eq!(
        s.traverse("a", &both).unwrap(),
        visits(&[("b", 1), ("e", 1), ("f", 1), ("g", 1)])
    );
    let only_refs = TraverseOptions::depth(2).relation(References);
    assert_eq!(s.traverse("g", &only_refs).unwrap(), visits(&[("a", 1)]));
    assert_eq!(s.traverse("a", &only_refs).unwrap(), visits(&[("g", 1)]));
}

pub fn traverse_invalid_and_missing(f: Fixture) {
    let s = &f.store;
    chain(s);
    assert_eq!(
        kind_of(s.traverse("ghost", &TraverseOptions::depth(1))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.traverse("a", &TraverseOptions::depth(0))),
        ErrorKind::InvalidInput
    );
}

pub fn shortest_path_fewest_hops(f: Fixture) {
    let s = &f.store;
    chain(s);
    let path = s
        .shortest_path("a", "d", &PathOptions::hops())
        .unwrap()
        .unwrap();
    assert_eq!(path.nodes, ["a", "e", "d"]);
    assert_eq!(path.cost, 2.0);
    assert_eq!(
        path.edges,
        [EdgeKey::new("a", Calls, "e"), EdgeKey::new("e", Calls, "d")]
    );
    // Against the arrows only when asked.
    assert!(
        s.shortest_path("d", "a", &PathOptions::hops())
            .unwrap()
            .is_none()
    );
    let back = s
        .shortest_path("d", "a", &PathOptions::hops().direction(Direction::In))
        .unwrap()
        .unwrap();
    assert_eq!(back.nodes, ["d", "e", "a"]);
    assert_eq!(
        back.edges[0],
        EdgeKey::new("e", Calls, "d"),
        "edges are given as stored"
    );
    let via_g = s
        .shortest_path("a", "g", &PathOptions::hops())
        .unwrap()
        .unwrap();
    assert_eq!(
        via_g.nodes,
        ["a", "g"],
        "bidirectional edges are followed backwards"
    );
    let limited = PathOptions {
        max_depth: Some(1),
        ..PathOptions::hops()
    };
    assert!(s.shortest_path("a", "d", &limited).unwrap().is_none());
}

pub fn shortest_path_by_weight(f: Fixture) {
    let s = &f.store;
    chain(s);
    let path = s
        .shortest_path("a", "d", &PathOptions::weighted())
        .unwrap()
        .unwrap();
    assert_eq!(path.nodes, ["a", "b", "c", "d"]);
    assert_eq!(path.cost, 3.0);
    assert_eq!(path.edges.len(), 3);
    let only_calls = PathOptions::weighted().relation(Calls);
    assert!(s.shortest_path("f", "d", &only_calls).unwrap().is_none());
    // Zero weights are allowed and cost nothing.
    things(s, &["x", "y"]);
    s.create_edges([
        edge("x", Calls, "y").with_weight(0.0),
        edge("y", Calls, "d").with_weight(0.0),
    ])
    .unwrap();
    assert_eq!(
        s.shortest_path("x", "d", &PathOptions::weighted())
            .unwrap()
            .unwrap()
            .cost,
        0.0
    );
    let both = PathOptions {
        max_depth: Some(3),
        ..PathOptions::weighted()
    };
    assert_eq!(
        kind_of(s.shortest_path("a", "d", &both)),
        ErrorKind::InvalidInput
    );
}

pub fn shortest_path_edge_cases(f: Fixture) {
    let s = &f.store;
    chain(s);
    let to_self = s
        .shortest_path("a", "a", &PathOptions::hops())
        .unwrap()
        .unwrap();
    assert_eq!(to_self.nodes, ["a"]);
    assert!(to_self.edges.is_empty());
    assert_eq!(to_self.cost, 0.0);
    assert!(
        s.shortest_path("a", "lonely", &PathOptions::hops())
            .unwrap()
            .is_none()
    );
    assert!(
        s.shortest_path("a", "lonely", &PathOptions::weighted())
            .unwrap()
            .is_none()
    );
    assert_eq!(
        kind_of(s.shortest_path("a", "ghost", &PathOptions::hops())),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.shortest_path("ghost", "a", &PathOptions::hops())),
        ErrorKind::NodeNotFound
    );
}

pub fn stats_count_by_type(f: Fixture) {
    let s = &f.store;
    assert_eq!(s.stats().unwrap(), crate::Stats::default());
    chain(s);
    s.create_node(crate::Node::new("p", "person").unwrap())
        .unwrap();
    s.create_node(thing_with_deps("q", &["a", "b"])).unwrap();
    s.set_schema(
        SchemaTarget::NodeType("person".into()),
        json!({"type": "object"}),
    )
    .unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(stats.nodes, 10);
    assert_eq!(stats.edges, 7);
    assert_eq!(stats.schemas, 1);
    assert_eq!(stats.dependencies, 2);
    assert_eq!(stats.node_types.get("thing"), Some(&9));
    assert_eq!(stats.node_types.get("person"), Some(&1));
    assert_eq!(stats.relation_types.get("calls"), Some(&5));
    assert_eq!(stats.relation_types.get("contains"), Some(&1));
    assert_eq!(stats.relation_types.get("references"), Some(&1));
}

/// The counts by type follow updates that change a type, deletions and upserts,
/// are seen by the writing transaction itself, and a rolled-back transaction
/// changes none of them (SQLite keeps them in a table of their own from format 10).
pub fn stats_follow_type_changes_deletions_and_rollbacks(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b", "c"]);
    s.write(|tx| {
        let mut b = tx.get_node("b")?;
        b.node_type = "person".into();
        tx.update_node(b, None)?;
        tx.create_node(crate::Node::new("d", "person")?)?;
        assert_eq!(tx.count_nodes()?, 4);
        let stats = tx.stats()?;
        assert_eq!(stats.node_types.get("thing"), Some(&2));
        assert_eq!(stats.node_types.get("person"), Some(&2));
        tx.delete_node("c", crate::OnDependents::Refuse)?;
        Ok(())
    })
    .unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(stats.nodes, 3);
    assert_eq!(stats.node_types.get("thing"), Some(&1));
    assert_eq!(stats.node_types.get("person"), Some(&2));
    let outcome: crate::Result<()> = s.write(|tx| {
        tx.delete_node("a", crate::OnDependents::Refuse)?;
        tx.create_node(crate::Node::new("e", "robot")?)?;
        assert_eq!(tx.stats()?.node_types.get("robot"), Some(&1));
        Err(crate::Error::invalid_input(
            "the test",
            "rolled back on purpose",
        ))
    });
    assert!(outcome.is_err());
    assert_eq!(s.stats().unwrap(), stats);
    // A type whose last node goes leaves the statistics.
    s.delete_node("a", crate::OnDependents::Refuse).unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(stats.node_types.get("thing"), None);
    assert_eq!(stats.nodes, 2);
    s.upsert_node(crate::Node::new("b", "thing").unwrap())
        .unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(stats.node_types.get("thing"), Some(&1));
    assert_eq!(stats.node_types.get("person"), Some(&1));
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn check_finds_healthy_store_healthy(f: Fixture) {
    let s = &f.store;
    chain(s);
    s.create_node(thing_with_deps("q", &["a", "b"])).unwrap();
    s.set_schema(
        SchemaTarget::NodeType("thing".into()),
        json!({"type": "object"}),
    )
    .unwrap();
    let report = s.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.nodes, 9);
    assert_eq!(report.edges, 7);
}

/// A reproducible, irregular graph: a dependency DAG, weighted edges of three
/// relations, some bidirectional, some self-loops.
pub fn scrambled_graph(s: &Store, nodes: usize) {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    let names: Vec<String> = (0..nodes).map(|i| format!("g{i:03}")).collect();
    s.create_nodes(names.iter().enumerate().map(|(i, name)| {
        // Dependencies only on lower indexes keep the graph acyclic.
        let deps: std::collections::BTreeSet<usize> = (0..next(4))
            .filter(|_| i > 0)
            .map(|_| next(i.max(1)))
            .collect();
        deps.into_iter()
            .fold(crate::Node::new(name, "thing").unwrap(), |n, d| {
                n.with_dependency(&names[d])
            })
    }))
    .unwrap();
    let relations = [Calls, Contains, References];
    let mut edges = std::collections::BTreeMap::new();
    for _ in 0..nodes * 3 {
        let from = &names[next(nodes)];
        let to = &names[next(nodes)];
        let rel = relations[next(3)].clone();
        let mut e = edge(from, rel, to).with_weight((next(10) as f64) / 2.0);
        if next(5) == 0 {
            e = e.bidirectional();
        }
        edges.insert(e.key(), e);
    }
    s.create_edges(edges.into_values()).unwrap();
}

pub fn overrides_agree_with_reference_algorithms(f: Fixture) {
    use crate::algo;
    let s = &f.store;
    scrambled_graph(s, 60);
    let read = s.read().unwrap();
    read.with_reader(|txn| {
        assert_eq!(txn.stats()?, algo::stats(txn)?);
        let names: Vec<String> = (0..60).map(|i| format!("g{i:03}")).collect();
        for name in &names {
            assert_eq!(
                txn.resolve_dependencies(name)?,
                algo::resolve_dependencies(txn, name)?,
                "{name}"
            );
            assert_eq!(
                txn.resolve_dependents(name)?,
                algo::resolve_dependents(txn, name)?,
                "{name}"
            );
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                for relations in [vec![], vec![Calls], vec![Contains, References]] {
                    let options = TraverseOptions {
                        direction,
                        relations: relations.clone(),
                        max_depth: 3,
                    };
                    assert_eq!(
                        txn.traverse(name, &options)?,
                        algo::traverse(txn, name, &options)?,
                        "{name} {options:?}"
                    );
                }
            }
        }
        // Traversals from a node that may not exist, at every depth up to past the
        // deepest a backend answers in one query (SQLite: 2), through cycles,
        // self-loops and bidirectional edges.
        let mut starts: Vec<String> = names.iter().step_by(3).cloned().collect();
        starts.push("ghost".to_owned());
        for name in &starts {
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                for relations in [vec![], vec![References], vec![Contains, References]] {
                    for max_depth in [1, 2, 3, 4, 5, 9] {
                        let options = TraverseOptions {
                            direction,
                            relations: relations.clone(),
                            max_depth,
                        };
                        let expected = algo::traverse_node(txn, name, &options)?;
                        assert_eq!(
                            txn.traverse_node(name, &options)?,
                            expected,
                            "{name} {options:?}"
                        );
                        assert_eq!(
                            txn.traverse(name, &options)?,
                            expected.unwrap_or_default(),
                            "{name} {options:?}"
                        );
                    }
                }
            }
        }
        for (i, from) in names.iter().enumerate().step_by(7) {
            for to in names.iter().skip(i % 5).step_by(11) {
                for options in [
                    PathOptions::hops(),
                    PathOptions::weighted(),
                    PathOptions::hops()
                        .direction(Direction::Both)
                        .relation(Calls),
                ] {
                    assert_eq!(
                        txn.shortest_path(from, to, &options)?,
                        algo::shortest_path(txn, from, to, &options)?,
                        "{from} -> {to} {options:?}"
                    );
                }
            }
        }
        Ok(())
    })
    .unwrap();
}

pub fn neighbours_and_reach_by_direction_relation_and_bidirectional(f: Fixture) {
    let s = &f.store;
    chain(s);
    things(s, &["s"]);
    s.create_edges([edge("s", Calls, "s"), edge("s", Calls, "a")])
        .unwrap();
    let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let out = |name| s.neighbour_names(name, Direction::Out, &[]).unwrap();
    // One name per edge, in edge-key order; a bidirectional edge is listed as stored.
    assert_eq!(out("a"), names(&["b", "e"]));
    assert_eq!(
        s.neighbour_names("a", Direction::In, &[]).unwrap(),
        names(&["f", "g", "s"])
    );
    assert_eq!(
        s.neighbour_names("a", Direction::Both, &[]).unwrap(),
        names(&["b", "e", "f", "g", "s"])
    );
    assert_eq!(
        s.neighbour_names("a", Direction::Both, &[Contains, References])
            .unwrap(),
        names(&["f", "g"])
    );
    assert!(out("lonely").is_empty());
    // A self-loop names the node itself, once even in both directions.
    assert_eq!(out("s"), names(&["a", "s"]));
    assert_eq!(
        s.neighbour_names("s", Direction::In, &[]).unwrap(),
        names(&["s"])
    );
    assert_eq!(
        s.neighbour_names("s", Direction::Both, &[]).unwrap(),
        names(&["a", "s"])
    );
    // Within: the traversal's nodes, by name; g comes in through the bidirectional edge.
    let within = |hops| s.reach("a", &ReachOptions::within(hops)).unwrap();
    assert_eq!(within(1), names(&["b", "e", "g"]));
    assert_eq!(within(2), names(&["b", "c", "d", "e", "g"]));
    // Exactly: the ends of two-edge walks, the start included (a -> g -> a).
    let exactly = ReachOptions::exactly(2);
    assert_eq!(s.reach("a", &exactly).unwrap(), names(&["a", "c", "d"]));
    assert_eq!(s.reach_count("a", &exactly).unwrap(), 3);
    assert_eq!(
        s.reach("a", &ReachOptions::exactly(2).relation(Calls))
            .unwrap(),
        names(&["c", "d"])
    );
    assert_eq!(
        s.reach("d", &ReachOptions::exactly(2).direction(Direction::In))
            .unwrap(),
        names(&["a", "b"])
    );
    assert_eq!(
        s.reach("s", &ReachOptions::exactly(1)).unwrap(),
        names(&["a", "s"])
    );
    assert_eq!(
        s.reach("s", &ReachOptions::within(1)).unwrap(),
        names(&["a"])
    );
    assert_eq!(s.reach_count("s", &ReachOptions::exactly(3)).unwrap(), 7);
    assert_eq!(
        s.reach_count("lonely", &ReachOptions::exactly(1)).unwrap(),
        0
    );
    // Missing nodes and zero hops are refused, as traversals refuse them.
    assert_eq!(
        kind_of(s.neighbour_names("ghost", Direction::Out, &[])),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.edges_of("ghost", Direction::Both, &[])),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.reach("ghost", &ReachOptions::within(1))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.reach_count("ghost", &ReachOptions::exactly(2))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(
        kind_of(s.reach_count("a", &ReachOptions::exactly(0))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.neighbour_names("bad\u{0}name", Direction::Out, &[])),
        ErrorKind::InvalidInput
    );
    // A write transaction sees its own edges and nodes; a snapshot does not.
    let before = s.read().unwrap();
    s.write(|tx| {
        tx.create_node(crate::Node::new("t", "thing")?)?;
        tx.create_edge(edge("lonely", Calls, "t"))?;
        assert_eq!(
            tx.neighbour_names("lonely", Direction::Out, &[])?,
            names(&["t"])
        );
        assert_eq!(
            tx.reach("t", &ReachOptions::within(1).direction(Direction::In))?,
            names(&["lonely"])
        );
        Ok(())
    })
    .unwrap();
    assert!(
        before
            .neighbour_names("lonely", Direction::Out, &[])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        kind_of(before.reach_count("t", &ReachOptions::within(1))),
        ErrorKind::NodeNotFound
    );
    assert_eq!(out("lonely"), names(&["t"]));
}

/// The reference answers from a plain list of every edge (by key), independent of
/// the backend's `edges_of`.
fn neighbours_from_list(
    all: &[crate::Edge],
    name: &str,
    direction: Direction,
    relations: &[RelationType],
) -> Vec<String> {
    all.iter()
        .filter(|e| relations.is_empty() || relations.contains(&e.relation_type))
        .filter_map(|e| match direction {
            Direction::Out => (e.from == name).then(|| e.to.clone()),
            Direction::In => (e.to == name).then(|| e.from.clone()),
            Direction::Both if e.from == name => Some(e.to.clone()),
            Direction::Both => (e.to == name).then(|| e.from.clone()),
        })
        .collect()
}

/// Walk counts and short traversals (SQLite: one statement that leaves out the
/// walks back along bidirectional edges when the store holds none) against the
/// reference, as the store goes from no bidirectional edge to one (a self-loop
/// too), within a write transaction that adds one, and back to none.
pub fn reach_and_traversal_agree_as_bidirectional_edges_come_and_go(f: Fixture) {
    use crate::ReadTxn;
    use crate::algo::{self, Reach};
    let s = &f.store;
    things(s, &["a", "b", "c", "d", "e"]);
    s.create_edges([
        edge("a", Calls, "b"),
        edge("b", Calls, "c"),
        edge("c", References, "a"),
        edge("d", Calls, "c"),
    ])
    .unwrap();
    let names = ["a", "b", "c", "d", "e", "ghost"];
    let agree = |txn: &dyn ReadTxn, when: &str| -> crate::Result<()> {
        for name in names {
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                for relations in [vec![], vec![Calls]] {
                    for hops in 1..=2 {
                        let options = crate::ReachOptions {
                            direction,
                            relations: relations.clone(),
                            hops,
                            reach: Reach::Exactly,
                        };
                        let expected = algo::reach(txn, name, &options)?;
                        assert_eq!(
                            txn.reach_count(name, &options)?,
                            expected.map(|n| n.len() as u64),
                            "{when}: {name} {options:?}"
                        );
                        let options = TraverseOptions {
                            direction,
                            relations: relations.clone(),
                            max_depth: hops,
                        };
                        assert_eq!(
                            txn.traverse_node(name, &options)?,
                            algo::traverse_node(txn, name, &options)?,
                            "{when}: {name} {options:?}"
                        );
                    }
                }
            }
        }
        Ok(())
    };
    let check = |when: &str| {
        s.read()
            .unwrap()
            .with_reader(|txn| agree(txn, when))
            .unwrap()
    };
    check("no bidirectional edge");
    assert_eq!(s.reach_count("a", &ReachOptions::exactly(2)).unwrap(), 1);
    s.create_edge(edge("e", Calls, "a").bidirectional())
        .unwrap();
    check("one bidirectional edge");
    // c, and a itself: back from a along e ↔ a, then out of e.
    assert_eq!(s.reach_count("a", &ReachOptions::exactly(2)).unwrap(), 2);
    s.create_edge(edge("d", References, "d").bidirectional())
        .unwrap();
    check("and a bidirectional self-loop");
    let outcome = s.write(|tx| {
        tx.create_edge(edge("b", References, "d").bidirectional())?;
        tx.with_reader(|txn| agree(txn, "in a write transaction"))?;
        Err::<(), _>(crate::Error::invalid_input("test", "roll back"))
    });
    assert!(outcome.is_err());
    s.delete_edge(&EdgeKey::new("e", Calls, "a")).unwrap();
    s.delete_edge(&EdgeKey::new("d", References, "d")).unwrap();
    check("none again");
    assert_eq!(s.reach_count("a", &ReachOptions::exactly(2)).unwrap(), 1);
}

pub fn neighbours_and_reach_agree_with_reference_algorithms(f: Fixture) {
    use crate::algo::{self, Reach};
    use crate::{EdgeFilter, ReadTxn};
    let s = &f.store;
    scrambled_graph(s, 60);
    let read = s.read().unwrap();
    let mut names: Vec<String> = (0..60).map(|i| format!("g{i:03}")).collect();
    names.push("ghost".to_owned());
    let relation_sets = [vec![], vec![Calls], vec![Contains, References]];
    read.with_reader(|txn: &dyn ReadTxn| {
        let all = txn.scan_edges(&EdgeFilter::default(), None, usize::MAX)?;
        assert!(
            all.iter().any(|e| e.from == e.to),
            "the graph has self-loops"
        );
        assert!(all.iter().any(|e| e.metadata.bidirectional));
        for name in &names {
            let exists = txn.contains_node(name)?;
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                for relations in &relation_sets {
                    let expected =
                        exists.then(|| neighbours_from_list(&all, name, direction, relations));
                    let got = txn.neighbour_names(name, direction, relations)?;
                    assert_eq!(got, expected, "{name} {direction:?} {relations:?}");
                    assert_eq!(got, algo::neighbour_names(txn, name, direction, relations)?);
                    assert_eq!(
                        txn.edges_of_node(name, direction, relations)?,
                        algo::edges_of_node(txn, name, direction, relations)?,
                        "{name} {direction:?} {relations:?}"
                    );
                    for reach in [Reach::Within, Reach::Exactly] {
                        for hops in 1..=3 {
                            let options = crate::ReachOptions {
                                direction,
                                relations: relations.clone(),
                                hops,
                                reach,
                            };
                            let expected = algo::reach(txn, name, &options)?;
                            let got = txn.reach(name, &options)?;
                            assert_eq!(got, expected, "{name} {options:?}");
                            assert_eq!(
                                txn.reach_count(name, &options)?,
                                expected.map(|n| n.len() as u64),
                                "{name} {options:?}"
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    })
    .unwrap();
    // The store's calls (each on a fresh snapshot) answer the same.
    let options = crate::ReachOptions::exactly(2).direction(Direction::Both);
    for name in names.iter().take(60).step_by(9) {
        assert_eq!(
            s.reach(name, &options).unwrap(),
            read.reach(name, &options).unwrap()
        );
        assert_eq!(
            s.neighbour_names(name, Direction::In, &[]).unwrap(),
            read.neighbour_names(name, Direction::In, &[]).unwrap()
        );
        for max_depth in [2, 9] {
            let options = TraverseOptions::depth(max_depth).direction(Direction::Both);
            assert_eq!(
                s.traverse(name, &options).unwrap(),
                read.traverse(name, &options).unwrap()
            );
        }
    }
    assert_eq!(
        kind_of(s.traverse("ghost", &TraverseOptions::depth(9))),
        ErrorKind::NodeNotFound
    );
}
