//! Dependencies: integrity, cycles, resolution and deletion policies.

use super::{Fixture, kind_of, thing, thing_with_deps, things};
use crate::{Edge, Error, ErrorKind, GraphRead, OnDependents, RelationType};

pub fn dependency_on_missing_node_is_refused(f: Fixture) {
    let s = &f.store;
    let err = s.create_node(thing_with_deps("a", &["ghost"])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert_eq!(
        err.to_string(),
        "node 'ghost' not found (referenced by the dependencies of node 'a')"
    );
    assert_eq!(s.count_nodes().unwrap(), 0);
    // Adding a missing dependency on update is refused the same way.
    let a = s.create_node(thing("a")).unwrap();
    let err = s.update_node(a.with_dependency("ghost"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    assert!(s.get_node("a").unwrap().dependencies.is_empty());
}

pub fn dependency_on_itself_is_a_cycle(f: Fixture) {
    let s = &f.store;
    let err = s.create_node(thing_with_deps("me", &["me"])).unwrap_err();
    match &err {
        Error::DependencyCycle { cycle } => assert_eq!(cycle, &["me", "me"]),
        other => panic!("{other}"),
    }
    let me = s.create_node(thing("me")).unwrap();
    assert_eq!(
        kind_of(s.update_node(me.with_dependency("me"), None)),
        ErrorKind::DependencyCycle
    );
}

pub fn dependency_cycle_is_refused_and_named(f: Fixture) {
    let s = &f.store;
    s.create_node(thing("c")).unwrap();
    s.create_node(thing_with_deps("b", &["c"])).unwrap();
    s.create_node(thing_with_deps("a", &["b"])).unwrap();
    let c = s.get_node("c").unwrap();
    let err = s.update_node(c.with_dependency("a"), None).unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: c -> a -> b -> c");
    match err {
        Error::DependencyCycle { cycle } => assert_eq!(cycle, ["c", "a", "b", "c"]),
        other => panic!("{other}"),
    }
    assert!(s.get_node("c").unwrap().dependencies.is_empty());
    assert_eq!(s.get_node("c").unwrap().metadata.version, 1);
}

pub fn dependency_duplicates_are_refused(f: Fixture) {
    let s = &f.store;
    things(s, &["x"]);
    let err = s
        .create_node(thing_with_deps("a", &["x", "x"]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.to_string().contains("/dependencies/1"), "{err}");
}

/// A diamond with a tail: top → (left, right) → base → root; extra → base.
fn diamond(s: &crate::Store) {
    s.create_nodes([
        thing("root"),
        thing_with_deps("base", &["root"]),
        thing_with_deps("left", &["base"]),
        thing_with_deps("right", &["base", "root"]),
        thing_with_deps("top", &["right", "left"]),
        thing_with_deps("extra", &["base"]),
    ])
    .unwrap();
}

pub fn resolve_dependencies_in_topological_order(f: Fixture) {
    let s = &f.store;
    diamond(s);
    assert_eq!(
        s.resolve_dependencies("top").unwrap(),
        ["root", "base", "left", "right"]
    );
    assert_eq!(s.resolve_dependencies("base").unwrap(), ["root"]);
    assert!(s.resolve_dependencies("root").unwrap().is_empty());
    // The order is a valid build order: each node after all of its dependencies.
    let order = s.resolve_dependencies("top").unwrap();
    for (i, name) in order.iter().enumerate() {
        for dep in s.get_node(name).unwrap().dependencies {
            assert!(order[..i].contains(&dep), "{dep} must come before {name}");
        }
    }
}

pub fn resolve_dependencies_of_missing_node(f: Fixture) {
    let s = &f.store;
    assert_eq!(
        kind_of(s.resolve_dependencies("ghost")),
        ErrorKind::NodeNotFound
    );
    assert_eq!(kind_of(s.dependents("ghost")), ErrorKind::NodeNotFound);
    assert_eq!(
        kind_of(s.direct_dependents("ghost")),
        ErrorKind::NodeNotFound
    );
}

/// The native resolution (SQLite: one statement that, on a committed snapshot, does
/// not look each member up, as every dependency there is a node) against the
/// reference, through every way of reading: the store's one-call read, a read
/// transaction, a write transaction (with and without deferred checks, where a
/// dependency may name a node not yet created). The nodes are created in an order
/// other than their names', then reshaped by deletes that detach and cascade, a
/// name deleted and created again, and dependencies changed by updates.
pub fn resolutions_agree_with_the_reference_after_every_kind_of_write(f: Fixture) {
    use crate::algo;
    let s = &f.store;
    s.create_nodes([
        thing("z"),
        thing("y"),
        thing_with_deps("m", &["z", "y"]),
        thing_with_deps("b", &["m", "y"]),
        thing_with_deps("a", &["b", "z"]),
        thing_with_deps("top", &["a", "m"]),
        thing_with_deps("c", &["y"]),
        thing_with_deps("leaf-user", &["c"]),
    ])
    .unwrap();
    let names = ["z", "y", "m", "b", "a", "top", "c", "leaf-user", "ghost"];
    let agree = |when: &str| {
        let read = s.read().unwrap();
        for name in names {
            let one = s.resolve_dependencies(name).map_err(|e| e.to_string());
            read.with_reader(|txn| {
                let native = txn.resolve_dependencies(name).map_err(|e| e.to_string());
                let reference = algo::resolve_dependencies(txn, name).map_err(|e| e.to_string());
                assert_eq!(native, reference, "{when}: {name}");
                assert_eq!(one, reference, "{when}: {name} (one call)");
                Ok(())
            })
            .unwrap();
        }
    };
    agree("created");
    assert_eq!(
        s.resolve_dependencies("top").unwrap(),
        ["y", "z", "m", "b", "a"]
    );
    s.delete_node("m", OnDependents::Detach).unwrap();
    agree("m deleted, its dependents detached");
    s.create_node(thing_with_deps("m", &["c"])).unwrap();
    let mut b = s.get_node("b").unwrap();
    b.dependencies.push("m".to_owned());
    s.update_node(b, None).unwrap();
    agree("m created again, b on it");
    assert_eq!(
        s.resolve_dependencies("top").unwrap(),
        ["y", "c", "m", "b", "z", "a"]
    );
    s.delete_node("c", OnDependents::Cascade).unwrap();
    agree("c deleted with its dependents");
    assert_eq!(kind_of(s.get_node("top")), ErrorKind::NodeNotFound);
    assert_eq!(s.resolve_dependencies("z").unwrap(), Vec::<String>::new());
    // Inside write transactions: without deferred checks, and with them while a
    // dependency names a node not created yet (the reference reports it).
    for defer in [false, true] {
        let outcome = s.write(|tx| {
            if defer {
                tx.defer_checks();
                tx.create_node(thing_with_deps("late", &["not-yet"]))?;
                tx.create_node(thing_with_deps("later", &["late", "y"]))?;
            } else {
                tx.create_node(thing_with_deps("late", &["y"]))?;
            }
            tx.with_reader(|txn| {
                for name in ["late", "later", "y", "ghost"] {
                    let native = txn.resolve_dependencies(name).map_err(|e| e.to_string());
                    let reference =
                        algo::resolve_dependencies(txn, name).map_err(|e| e.to_string());
                    assert_eq!(native, reference, "defer {defer}: {name}");
                }
                Ok(())
            })?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        });
        assert!(outcome.is_err());
    }
    assert!(s.check().unwrap().is_ok());
}

pub fn dependents_transitive_and_direct(f: Fixture) {
    let s = &f.store;
    diamond(s);
    assert_eq!(
        s.direct_dependents("base").unwrap(),
        ["extra", "left", "right"]
    );
    assert_eq!(
        s.dependents("base").unwrap(),
        ["extra", "left", "right", "top"]
    );
    assert_eq!(
        s.dependents("root").unwrap(),
        ["base", "extra", "left", "right", "top"]
    );
    assert!(s.dependents("top").unwrap().is_empty());
}

pub fn delete_with_dependents_is_refused(f: Fixture) {
    let s = &f.store;
    diamond(s);
    let err = s.delete_node("base", OnDependents::Refuse).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HasDependents);
    match &err {
        Error::HasDependents { name, dependents } => {
            assert_eq!(name, "base");
            assert_eq!(dependents, &["extra", "left", "right"]);
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("'extra', 'left', 'right'"),
        "{err}"
    );
    assert_eq!(s.count_nodes().unwrap(), 6);
}

pub fn delete_with_detach_updates_dependents(f: Fixture) {
    let s = &f.store;
    diamond(s);
    s.create_edge(Edge::new("left", RelationType::Calls, "base").unwrap())
        .unwrap();
    let report = s.delete_node("base", OnDependents::Detach).unwrap();
    assert_eq!(report.deleted, ["base"]);
    assert_eq!(report.detached, ["extra", "left", "right"]);
    assert_eq!(report.edges_removed, 1);
    let right = s.get_node("right").unwrap();
    assert_eq!(right.dependencies, ["root"]);
    assert_eq!(right.metadata.version, 2);
    assert!(s.get_node("left").unwrap().dependencies.is_empty());
    assert_eq!(
        s.resolve_dependencies("top").unwrap(),
        ["left", "root", "right"]
    );
    assert!(s.check().unwrap().is_ok());
}

pub fn delete_with_cascade_removes_dependents(f: Fixture) {
    let s = &f.store;
    diamond(s);
    s.create_node(thing("outsider")).unwrap();
    s.create_edge(Edge::new("outsider", RelationType::References, "top").unwrap())
        .unwrap();
    s.create_edge(Edge::new("root", RelationType::Contains, "outsider").unwrap())
        .unwrap();
    let report = s.delete_node("base", OnDependents::Cascade).unwrap();
    assert_eq!(report.deleted, ["base", "extra", "left", "right", "top"]);
    assert_eq!(report.edges_removed, 1);
    let mut left: Vec<String> = s
        .list_nodes(&Default::default(), &Default::default())
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.name)
        .collect();
    left.sort();
    assert_eq!(left, ["outsider", "root"]);
    assert_eq!(s.count_edges().unwrap(), 1);
    assert!(s.check().unwrap().is_ok());
}
