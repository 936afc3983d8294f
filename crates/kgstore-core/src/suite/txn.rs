//! Transactions: atomicity, isolation, deferred checks.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;

use super::{Fixture, edge, kind_of, thing, thing_with_deps, things};
use crate::{
    Direction, Error, ErrorKind, GraphRead, NodeFilter, OnDependents, PageRequest, RelationType,
    SchemaTarget,
};

use crate::algo;
use RelationType::Calls;

pub fn txn_commits_all_on_ok(f: Fixture) {
    let s = &f.store;
    let stamp = s
        .write(|tx| {
            let a = tx.create_node(thing("a"))?;
            let b = tx.create_node(thing_with_deps("b", &["a"]))?;
            tx.create_edge(edge("a", Calls, "b"))?;
            tx.set_schema(
                SchemaTarget::NodeType("thing".into()),
                json!({"type": "object"}),
            )?;
            assert_eq!(
                a.metadata.created_at, b.metadata.created_at,
                "one time per transaction"
            );
            Ok(a.metadata.created_at)
        })
        .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
    assert_eq!(s.count_edges().unwrap(), 1);
    assert_eq!(s.list_schemas().unwrap().len(), 1);
    assert_eq!(s.get_node("b").unwrap().metadata.created_at, stamp);
}

pub fn txn_rolls_back_on_err(f: Fixture) {
    let s = &f.store;
    things(s, &["keep"]);
    let keep = s.get_node("keep").unwrap();
    let err = s
        .write(|tx| {
            tx.create_node(thing("a"))?;
            tx.create_edge(edge("a", Calls, "keep"))?;
            tx.update_node(keep.clone().with_observation("changed"), None)?;
            tx.delete_node("keep", OnDependents::Cascade)?;
            tx.set_schema(
                SchemaTarget::NodeType("thing".into()),
                json!({"type": "object"}),
            )?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(s.get_node("keep").unwrap(), keep);
    assert_eq!(s.count_nodes().unwrap(), 1);
    assert_eq!(s.count_edges().unwrap(), 0);
    assert!(s.list_schemas().unwrap().is_empty());
    // A failing operation's error also rolls back what came before it.
    let err = s
        .write(|tx| {
            tx.create_node(thing("b"))?;
            tx.create_node(thing("keep"))?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(!s.contains_node("b").unwrap());
}

pub fn txn_rolls_back_on_panic(f: Fixture) {
    let s = &f.store;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        s.write(|tx| {
            tx.create_node(thing("doomed"))?;
            panic!("the application failed half-way");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(outcome.is_err());
    assert!(!s.contains_node("doomed").unwrap());
    // The store is usable again, from this thread and from another.
    s.create_node(thing("after")).unwrap();
    let other = s.clone();
    std::thread::spawn(move || other.create_node(thing("from another thread")).unwrap())
        .join()
        .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn txn_sees_its_own_writes(f: Fixture) {
    let s = &f.store;
    things(s, &["old"]);
    s.write(|tx| {
        tx.create_node(thing("new").with_tag("fresh"))?;
        tx.create_node(thing_with_deps("newer", &["new", "old"]))?;
        tx.create_edge(edge("new", Calls, "old"))?;
        assert_eq!(tx.get_node("new")?.metadata.version, 1);
        assert_eq!(tx.count_nodes()?, 3);
        assert_eq!(tx.count_edges()?, 1);
        assert_eq!(tx.resolve_dependencies("newer")?, ["new", "old"]);
        assert_eq!(tx.direct_dependents("old")?, ["newer"]);
        assert_eq!(tx.edges_of("old", crate::Direction::In, &[])?.len(), 1);
        let tagged = tx.list_nodes(
            &NodeFilter::default().with_tag("fresh"),
            &PageRequest::default(),
        )?;
        assert_eq!(super::names_of(&tagged.items), ["new"]);
        tx.delete_edge(&edge("new", Calls, "old").key())?;
        assert_eq!(tx.count_edges()?, 0);
        tx.delete_node("newer", OnDependents::Refuse)?;
        assert!(tx.find_node("newer")?.is_none());
        Ok(())
    })
    .unwrap();
    // Meanwhile nothing leaked before commit; after it, all is there.
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn txn_failed_operation_leaves_txn_usable(f: Fixture) {
    let s = &f.store;
    things(s, &["a"]);
    s.write(|tx| {
        tx.create_node(thing("b"))?;
        // Each of these fails without changing the transaction.
        assert_eq!(
            kind_of(tx.create_node(thing("a"))),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_of(tx.create_node(thing_with_deps("c", &["ghost"]))),
            ErrorKind::NodeNotFound
        );
        assert_eq!(
            kind_of(tx.create_edge(edge("b", Calls, "ghost"))),
            ErrorKind::NodeNotFound
        );
        assert_eq!(
            kind_of(tx.create_nodes([thing("d"), thing("a")])),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_of(tx.update_node(thing("b"), Some(9))),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind_of(tx.delete_node("ghost", OnDependents::Refuse)),
            ErrorKind::NodeNotFound
        );
        tx.create_edge(edge("b", Calls, "a"))?;
        Ok(())
    })
    .unwrap();
    let (nodes, edges, _) = super::dump(s);
    assert_eq!(super::names_of(&nodes), ["a", "b"]);
    assert_eq!(edges.len(), 1);
    assert_eq!(nodes[1].metadata.version, 1);
}

pub fn txn_deferred_checks_allow_any_order(f: Fixture) {
    let s = &f.store;
    s.write(|tx| {
        tx.defer_checks();
        tx.create_edge(edge("a", Calls, "b"))?; // neither exists yet
        tx.create_node(thing_with_deps("b", &["c"]))?; // nor does c
        tx.create_node(thing("c"))?;
        tx.create_node(thing_with_deps("a", &["b"]))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(s.resolve_dependencies("a").unwrap(), ["c", "b"]);
    assert_eq!(s.count_edges().unwrap(), 1);
    assert!(s.check().unwrap().is_ok());
}

/// With deferred checks an edge may name nodes not created yet: until they are,
/// reading that name's edges inside the transaction is a missing node's answer
/// (the reference's), not the pending edge; once the node exists, it has the edge.
pub fn txn_deferred_edges_of_a_node_not_created_yet(f: Fixture) {
    let s = &f.store;
    things(s, &["z"]);
    let outcome = s.write(|tx| {
        tx.defer_checks();
        tx.create_edge(edge("a", Calls, "b"))?; // neither exists yet
        tx.create_edge(edge("z", Calls, "b"))?;
        let agree = |tx: &crate::WriteTx<'_>, stage: &str| {
            tx.with_reader(|txn| {
                for name in ["a", "b", "z", "ghost"] {
                    for direction in [Direction::Out, Direction::In, Direction::Both] {
                        let native = txn.edges_of_node(name, direction, &[]);
                        let reference = algo::edges_of_node(txn, name, direction, &[]);
                        assert_eq!(
                            native.map_err(|e| e.to_string()),
                            reference.map_err(|e| e.to_string()),
                            "{stage}: edges of {name} {direction:?}"
                        );
                        let native = txn.neighbour_names(name, direction, &[]);
                        let reference = algo::neighbour_names(txn, name, direction, &[]);
                        assert_eq!(
                            native.map_err(|e| e.to_string()),
                            reference.map_err(|e| e.to_string()),
                            "{stage}: neighbours of {name} {direction:?}"
                        );
                    }
                }
                Ok(())
            })
        };
        agree(tx, "before the nodes")?;
        assert_eq!(
            kind_of(tx.with_reader(|txn| {
                txn.edges_of_node("a", Direction::Out, &[])?
                    .ok_or_else(|| Error::node_not_found("a"))
            })),
            ErrorKind::NodeNotFound
        );
        tx.create_node(thing("a"))?;
        tx.create_node(thing("b"))?;
        agree(tx, "after the nodes")?;
        Err::<(), _>(Error::invalid_input("test", "roll back"))
    });
    assert!(outcome.is_err());
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn txn_deferred_checks_list_every_offender(f: Fixture) {
    let s = &f.store;
    things(s, &["z"]);
    let err = s
        .write(|tx| {
            tx.defer_checks();
            tx.create_node(thing_with_deps("a", &["x", "z", "y"]))?;
            tx.create_edge(edge("a", Calls, "w"))?;
            tx.create_edge(edge("v", Calls, "z"))?;
            Ok(())
        })
        .unwrap_err();
    match &err {
        Error::Validation { violations } => {
            let found: Vec<(String, String)> = violations
                .iter()
                .map(|v| (v.subject.clone(), v.pointer.clone()))
                .collect();
            assert_eq!(
                found,
                [
                    ("edge a -[calls]-> w".to_owned(), "/to".to_owned()),
                    ("edge v -[calls]-> z".to_owned(), "/from".to_owned()),
                    ("node 'a'".to_owned(), "/dependencies/0".to_owned()),
                    ("node 'a'".to_owned(), "/dependencies/2".to_owned()),
                ],
                "{err}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.count_nodes().unwrap(), 1);
    assert_eq!(s.count_edges().unwrap(), 0);
}

pub fn txn_deferred_cycle_is_refused_at_commit(f: Fixture) {
    let s = &f.store;
    let err = s
        .write(|tx| {
            tx.defer_checks();
            tx.create_node(thing_with_deps("a", &["b"]))?;
            tx.create_node(thing_with_deps("b", &["c"]))?;
            tx.create_node(thing_with_deps("c", &["a"]))?;
            Ok(())
        })
        .unwrap_err();
    match err {
        Error::DependencyCycle { cycle } => assert_eq!(cycle, ["a", "b", "c", "a"]),
        other => panic!("{other}"),
    }
    assert_eq!(s.count_nodes().unwrap(), 0);
}

pub fn txn_deferred_delete_then_delete_dependent(f: Fixture) {
    let s = &f.store;
    s.create_nodes([thing("base"), thing_with_deps("user", &["base"])])
        .unwrap();
    // Deleting the dependency first is fine when the dependent goes too.
    s.write(|tx| {
        tx.defer_checks();
        tx.delete_node("base", OnDependents::Refuse)?;
        tx.delete_node("user", OnDependents::Refuse)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 0);
    // But not when the dependent stays.
    s.create_nodes([thing("base"), thing_with_deps("user", &["base"])])
        .unwrap();
    let err = s
        .write(|tx| {
            tx.defer_checks();
            tx.delete_node("base", OnDependents::Refuse)?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(
        err.to_string().contains("node 'user' at /dependencies/0"),
        "{err}"
    );
    assert_eq!(s.count_nodes().unwrap(), 2);
}

pub fn txn_nested_write_on_same_thread_is_refused(f: Fixture) {
    let s = &f.store;
    s.write(|tx| {
        tx.create_node(thing("outer"))?;
        let err = s.create_node(thing("inner")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.to_string().contains("same thread"), "{err}");
        // Reads from the store meanwhile see the last commit, not the open transaction.
        assert!(!s.contains_node("outer")?);
        Ok(())
    })
    .unwrap();
    assert!(s.contains_node("outer").unwrap());
    assert!(!s.contains_node("inner").unwrap());
}

pub fn snapshot_does_not_see_later_commits(f: Fixture) {
    let s = &f.store;
    things(s, &["before"]);
    let snapshot = s.read().unwrap();
    assert_eq!(snapshot.count_nodes().unwrap(), 1);
    s.create_node(thing("after")).unwrap();
    s.delete_node("before", OnDependents::Refuse).unwrap();
    assert!(snapshot.contains_node("before").unwrap());
    assert!(!snapshot.contains_node("after").unwrap());
    assert_eq!(snapshot.count_nodes().unwrap(), 1);
    drop(snapshot);
    let fresh = s.read().unwrap();
    assert!(fresh.contains_node("after").unwrap());
    assert!(!fresh.contains_node("before").unwrap());
}

/// A small graph with every part a one-read call reads: attributes, observations,
/// tags, dependencies, a custom relation, a self-loop and a name outside ASCII.
fn one_read_graph(s: &crate::Store) -> Vec<&'static str> {
    let rich = thing("b")
        .with_attribute("size", json!(3))
        .with_attribute("label", json!("bee"))
        .with_observation("seen")
        .with_tag("t")
        .with_status("active")
        .with_author("ann")
        .with_source("here")
        .with_dependency("a");
    s.write(|tx| {
        tx.create_node(thing("a"))?;
        tx.create_node(rich)?;
        tx.create_node(thing_with_deps("c", &["b"]))?;
        tx.create_node(thing("späť"))?;
        tx.create_edge(edge("a", Calls, "b"))?;
        tx.create_edge(edge("a", RelationType::parse("owns")?, "c"))?;
        tx.create_edge(edge("b", Calls, "c").with_weight(2.5))?;
        tx.create_edge(edge("c", Calls, "c"))?;
        tx.create_edge(edge("späť", Calls, "a"))?;
        Ok(())
    })
    .unwrap();
    vec!["a", "b", "c", "späť", "missing"]
}

/// One of [`one_read_calls`]: a single [`crate::ReadTxn`] call, its answer as text.
type OneReadCall<'a> = Box<dyn Fn(&dyn crate::ReadTxn) -> String + 'a>;

/// The one-read calls asked of [`one_read_graph`]'s names: each makes exactly one
/// [`crate::ReadTxn`] method call (as a transaction from `Backend::begin_one`, and so
/// a read of `Backend::read_one`, may), and answers its result as text.
fn one_read_calls(name: &str) -> Vec<OneReadCall<'_>> {
    let mut calls: Vec<OneReadCall<'_>> = vec![Box::new(move |txn| {
        format!("{:?}", txn.get_node(name).unwrap())
    })];
    for d in [Direction::Out, Direction::In, Direction::Both] {
        calls.push(Box::new(move |txn| {
            format!("{:?}", txn.edges_of_node(name, d, &[]).unwrap())
        }));
        calls.push(Box::new(move |txn| {
            format!("{:?}", txn.neighbour_names(name, d, &[Calls]).unwrap())
        }));
    }
    calls.push(Box::new(move |txn| {
        format!(
            "{:?}",
            txn.reach_count(name, &crate::ReachOptions::within(2))
                .unwrap()
        )
    }));
    calls.push(Box::new(move |txn| {
        format!("{:?}", txn.contains_node(name).unwrap())
    }));
    calls
}

/// `Backend::read_one` runs its read once, on the committed state, and answers as the
/// transaction `Backend::begin_one` gives (its default) does.
pub fn one_read_agrees_with_the_default_path(f: Fixture) {
    let s = &f.store;
    for name in one_read_graph(s) {
        for (i, call) in one_read_calls(name).iter().enumerate() {
            let mut runs = 0;
            let mut answer = None;
            s.backend()
                .read_one(&mut |txn| {
                    runs += 1;
                    answer = Some(call(txn));
                })
                .unwrap();
            assert_eq!(runs, 1, "{name}, call {i}: the read runs once");
            let default = call(&*s.backend().begin_one().unwrap());
            assert_eq!(answer, Some(default), "{name}, call {i}");
        }
    }
    // A read's error is the read's: read_one itself answers Ok.
    let mut refused = None;
    s.backend()
        .read_one(&mut |txn| refused = Some(txn.resolve_dependencies("missing")))
        .unwrap();
    assert_eq!(kind_of(refused.unwrap()), ErrorKind::NodeNotFound);
}

/// The store's one-read calls (on `Backend::read_one`) answer as the same calls on a
/// read transaction, for present and missing nodes alike.
pub fn one_read_store_calls_agree_with_a_read_transaction(f: Fixture) {
    let s = &f.store;
    let names = one_read_graph(s);
    let r = s.read().unwrap();
    let depth = algo::TraverseOptions::depth(2);
    let reach = crate::ReachOptions::within(2);
    for name in names {
        let same = |one: Result<String, Error>, tx: Result<String, Error>| match (one, tx) {
            (Ok(one), Ok(tx)) => assert_eq!(one, tx, "{name}"),
            (Err(one), Err(tx)) => {
                assert_eq!(one.kind(), tx.kind(), "{name}");
                assert_eq!(one.to_string(), tx.to_string(), "{name}");
            }
            (one, tx) => panic!("{name}: {one:?} against {tx:?}"),
        };
        let text = |v: &dyn std::fmt::Debug| format!("{v:?}");
        same(
            s.get_node(name).map(|v| text(&v)),
            r.get_node(name).map(|v| text(&v)),
        );
        same(
            s.find_node(name).map(|v| text(&v)),
            r.find_node(name).map(|v| text(&v)),
        );
        for d in [Direction::Out, Direction::In, Direction::Both] {
            same(
                s.edges_of(name, d, &[]).map(|v| text(&v)),
                r.edges_of(name, d, &[]).map(|v| text(&v)),
            );
            same(
                s.neighbour_names(name, d, &[]).map(|v| text(&v)),
                r.neighbour_names(name, d, &[]).map(|v| text(&v)),
            );
        }
        same(
            s.reach_count(name, &reach).map(|v| text(&v)),
            r.reach_count(name, &reach).map(|v| text(&v)),
        );
        same(
            s.traverse(name, &depth).map(|v| text(&v)),
            r.traverse(name, &depth).map(|v| text(&v)),
        );
        same(
            s.resolve_dependencies(name).map(|v| text(&v)),
            r.resolve_dependencies(name).map(|v| text(&v)),
        );
        same(
            s.dependents(name).map(|v| text(&v)),
            r.dependents(name).map(|v| text(&v)),
        );
    }
    // A malformed name is refused before any read, as on a read transaction.
    for bad in [
        "",
        "bad\u{7}name",
        "bad\u{7f}",
        "bad\u{85}name",
        &"n".repeat(513),
    ] {
        assert_eq!(kind_of(s.get_node(bad)), ErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(kind_of(r.get_node(bad)), ErrorKind::InvalidInput, "{bad:?}");
        let edges = s.edges_of(bad, Direction::Out, &[]);
        assert_eq!(kind_of(edges), ErrorKind::InvalidInput, "{bad:?}");
    }
}

/// Each one-read call sees every commit before it and nothing of a write still open.
pub fn one_read_sees_each_commit_and_no_open_write(f: Fixture) {
    let s = &f.store;
    things(s, &["first"]);
    assert!(s.get_node("first").is_ok());
    assert_eq!(kind_of(s.get_node("second")), ErrorKind::NodeNotFound);
    s.create_node(thing("second")).unwrap();
    assert!(s.get_node("second").is_ok());
    let seen = super::while_writing(s, thing("held"), || {
        (
            s.find_node("held").unwrap(),
            s.edges_of("held", Direction::Out, &[]).map(|e| e.len()),
            s.get_node("second").is_ok(),
        )
    });
    assert_eq!(seen.0, None);
    assert_eq!(kind_of(seen.1), ErrorKind::NodeNotFound);
    assert!(seen.2);
    assert!(s.get_node("held").is_ok());
}
