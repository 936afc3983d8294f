//! Random operation sequences on the store, checked against a plain model.
//!
//! The model is a pair of `BTreeMap`s with the semantics of DESIGN.md spelled out
//! directly (no indexes, no backend). Every operation's outcome (success or error
//! kind) and the whole state after it must agree, including inside transactions
//! that commit, roll back, or defer their checks to commit.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::{Fixture, dump};
use crate::{
    Edge, EdgeKey, Error, ErrorKind, GraphRead, Node, OnDependents, RelationType, Store, WriteTx,
};

const NAMES: [&str; 6] = ["n0", "n1", "n2", "n3", "n4", "n5"];

fn relation(i: usize) -> RelationType {
    [
        RelationType::DependsOn,
        RelationType::Calls,
        RelationType::Custom("likes".into()),
    ][i % 3]
        .clone()
}

/// What an update expects of the stored version.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// No expectation.
    Any,
    /// The current version.
    Current,
    /// A stale version (current − 1).
    Stale,
}

/// One step of a random sequence.
#[derive(Clone, Debug)]
pub enum Op {
    CreateNode {
        name: usize,
        deps: Vec<usize>,
    },
    CreateNodes {
        names: Vec<usize>,
    },
    UpdateNode {
        name: usize,
        deps: Vec<usize>,
        value: i64,
        expect: Expect,
    },
    DeleteNode {
        name: usize,
        mode: OnDependents,
    },
    CreateEdge {
        from: usize,
        rel: usize,
        to: usize,
        weight: u8,
    },
    UpdateEdge {
        from: usize,
        rel: usize,
        to: usize,
        weight: u8,
        expect: Expect,
    },
    DeleteEdge {
        from: usize,
        rel: usize,
        to: usize,
    },
    Txn {
        ops: Vec<Op>,
        commit: bool,
        deferred: bool,
    },
}

fn deps() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..NAMES.len(), 0..3).prop_map(|s| s.into_iter().collect())
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        Just(Expect::Any),
        Just(Expect::Current),
        Just(Expect::Stale)
    ]
}

pub(super) fn simple_op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    prop_oneof![
        4 => (n.clone(), deps()).prop_map(|(name, deps)| Op::CreateNode { name, deps }),
        1 => proptest::collection::vec(n.clone(), 1..4).prop_map(|names| Op::CreateNodes { names }),
        2 => (n.clone(), deps(), -5i64..5, expect())
            .prop_map(|(name, deps, value, expect)| Op::UpdateNode { name, deps, value, expect }),
        2 => (n.clone(), prop_oneof![Just(OnDependents::Refuse), Just(OnDependents::Detach), Just(OnDependents::Cascade)])
            .prop_map(|(name, mode)| Op::DeleteNode { name, mode }),
        4 => (n.clone(), 0..3usize, n.clone(), 0..4u8).prop_map(|(from, rel, to, weight)| Op::CreateEdge { from, rel, to, weight }),
        1 => (n.clone(), 0..3usize, n.clone(), 0..4u8, expect())
            .prop_map(|(from, rel, to, weight, expect)| Op::UpdateEdge { from, rel, to, weight, expect }),
        1 => (n.clone(), 0..3usize, n).prop_map(|(from, rel, to)| Op::DeleteEdge { from, rel, to }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => simple_op(),
        2 => (proptest::collection::vec(simple_op(), 1..8), proptest::bool::weighted(0.7), any::<bool>())
            .prop_map(|(ops, commit, deferred)| Op::Txn { ops, commit, deferred }),
    ]
}

/// A node as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MNode {
    deps: Vec<String>,
    version: u64,
    value: i64,
}

/// The plain model.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Model {
    nodes: BTreeMap<String, MNode>,
    edges: BTreeMap<(String, String, String), (f64, u64)>,
}

pub(super) type Outcome = Result<(), ErrorKind>;

impl Model {
    fn dependents(&self, name: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.deps.iter().any(|d| d == name))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn closure_of_dependents(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_owned()];
        while let Some(current) = todo.pop() {
            for d in self.dependents(&current) {
                if out.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        out
    }

    fn closure_of_dependencies(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_owned()];
        while let Some(current) = todo.pop() {
            for d in self
                .nodes
                .get(&current)
                .map(|n| n.deps.clone())
                .unwrap_or_default()
            {
                if out.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        out
    }

    fn has_cycle(&self) -> bool {
        self.nodes
            .keys()
            .any(|n| self.closure_of_dependencies(n).contains(n))
    }

    fn dangling(&self) -> bool {
        self.edges
            .keys()
            .any(|(f, _, t)| !self.nodes.contains_key(f) || !self.nodes.contains_key(t))
            || self
                .nodes
                .values()
                .any(|n| n.deps.iter().any(|d| !self.nodes.contains_key(d)))
    }

    fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
        self.edges.retain(|(f, _, t), _| f != name && t != name);
    }

    pub(super) fn apply(&mut self, op: &Op, deferred: bool) -> Outcome {
        match op {
            Op::CreateNode { name, deps } => {
                let name = NAMES[*name].to_owned();
                let deps: Vec<String> = deps.iter().map(|d| NAMES[*d].to_owned()).collect();
                if self.nodes.contains_key(&name) {
                    return Err(ErrorKind::AlreadyExists);
                }
                if deps.contains(&name) {
                    return Err(ErrorKind::DependencyCycle);
                }
                if !deferred && deps.iter().any(|d| !self.nodes.contains_key(d)) {
                    return Err(ErrorKind::NodeNotFound);
                }
                self.nodes.insert(
                    name,
                    MNode {
                        deps,
                        version: 1,
                        value: 0,
                    },
                );
                Ok(())
            }
            Op::CreateNodes { names } => {
                let names: Vec<String> = names.iter().map(|n| NAMES[*n].to_owned()).collect();
                let mut seen = BTreeSet::new();
                for name in &names {
                    if !seen.insert(name) || self.nodes.contains_key(name) {
                        return Err(ErrorKind::AlreadyExists);
                    }
                }
                for name in names {
                    self.nodes.insert(
                        name,
                        MNode {
                            deps: Vec::new(),
                            version: 1,
                            value: 0,
                        },
                    );
                }
                Ok(())
            }
            Op::UpdateNode {
                name,
                deps,
                value,
                expect,
            } => {
                let name = NAMES[*name].to_owned();
                let deps: Vec<String> = deps.iter().map(|d| NAMES[*d].to_owned()).collect();
                let Some(old) = self.nodes.get(&name).cloned() else {
                    return Err(ErrorKind::NodeNotFound);
                };
                if matches!(expect, Expect::Stale) {
                    return Err(ErrorKind::Conflict);
                }
                let added: Vec<&String> = deps.iter().filter(|d| !old.deps.contains(d)).collect();
                if !added.is_empty() {
                    if added.contains(&&name) {
                        return Err(ErrorKind::DependencyCycle);
                    }
                    if !deferred {
                        if added.iter().any(|d| !self.nodes.contains_key(*d)) {
                            return Err(ErrorKind::NodeNotFound);
                        }
                        if added
                            .iter()
                            .any(|d| self.closure_of_dependencies(d).contains(&name))
                        {
                            return Err(ErrorKind::DependencyCycle);
                        }
                    }
                }
                self.nodes.insert(
                    name,
                    MNode {
                        deps,
                        version: old.version + 1,
                        value: *value,
                    },
                );
                Ok(())
            }
            Op::DeleteNode { name, mode } => {
                let name = NAMES[*name].to_owned();
                if !self.nodes.contains_key(&name) {
                    return Err(ErrorKind::NodeNotFound);
                }
                let dependents = self.dependents(&name);
                match mode {
                    OnDependents::Refuse => {
                        if !dependents.is_empty() && !deferred {
                            return Err(ErrorKind::HasDependents);
                        }
                    }
                    OnDependents::Detach => {
                        for d in dependents {
                            if let Some(node) = self.nodes.get_mut(&d) {
                                node.deps.retain(|x| *x != name);
                                node.version += 1;
                            }
                        }
                    }
                    OnDependents::Cascade => {
                        for d in self.closure_of_dependents(&name) {
                            self.remove_node(&d);
                        }
                    }
                }
                self.remove_node(&name);
                Ok(())
            }
            Op::CreateEdge {
                from,
                rel,
                to,
                weight,
            } => {
                let key = (
                    NAMES[*from].to_owned(),
                    relation(*rel).to_string(),
                    NAMES[*to].to_owned(),
                );
                if self.edges.contains_key(&key) {
                    return Err(ErrorKind::AlreadyExists);
                }
                if !deferred
                    && (!self.nodes.contains_key(&key.0) || !self.nodes.contains_key(&key.2))
                {
                    return Err(ErrorKind::NodeNotFound);
                }
                self.edges.insert(key, (f64::from(*weight), 1));
                Ok(())
            }
            Op::UpdateEdge {
                from,
                rel,
                to,
                weight,
                expect,
            } => {
                let key = (
                    NAMES[*from].to_owned(),
                    relation(*rel).to_string(),
                    NAMES[*to].to_owned(),
                );
                let Some((_, version)) = self.edges.get(&key).copied() else {
                    return Err(ErrorKind::EdgeNotFound);
                };
                if matches!(expect, Expect::Stale) {
                    return Err(ErrorKind::Conflict);
                }
                self.edges.insert(key, (f64::from(*weight), version + 1));
                Ok(())
            }
            Op::DeleteEdge { from, rel, to } => {
                let key = (
                    NAMES[*from].to_owned(),
                    relation(*rel).to_string(),
                    NAMES[*to].to_owned(),
                );
                self.edges
                    .remove(&key)
                    .map(|_| ())
                    .ok_or(ErrorKind::EdgeNotFound)
            }
            Op::Txn {
                ops,
                commit,
                deferred,
            } => {
                let mut inner = self.clone();
                for op in ops {
                    let _ = inner.apply(op, *deferred);
                }
                if !commit {
                    return Err(ErrorKind::InvalidInput);
                }
                if *deferred {
                    if inner.dangling() {
                        return Err(ErrorKind::Validation);
                    }
                    if inner.has_cycle() {
                        return Err(ErrorKind::DependencyCycle);
                    }
                }
                *self = inner;
                Ok(())
            }
        }
    }

    /// The outcomes of the operations inside a transaction, for comparison.
    fn inner_outcomes(&self, ops: &[Op], deferred: bool) -> Vec<Outcome> {
        let mut inner = self.clone();
        ops.iter().map(|op| inner.apply(op, deferred)).collect()
    }
}

fn expected_version(tx: &WriteTx<'_>, name: &str, expect: Expect) -> Option<u64> {
    let current = tx
        .find_node(name)
        .ok()
        .flatten()
        .map_or(0, |n| n.metadata.version);
    match expect {
        Expect::Any => None,
        Expect::Current => Some(current),
        Expect::Stale => Some(current.wrapping_sub(1)),
    }
}

fn expected_edge_version(tx: &WriteTx<'_>, key: &EdgeKey, expect: Expect) -> Option<u64> {
    let current = tx
        .find_edge(key)
        .ok()
        .flatten()
        .map_or(0, |e| e.metadata.version);
    match expect {
        Expect::Any => None,
        Expect::Current => Some(current),
        Expect::Stale => Some(current.wrapping_sub(1)),
    }
}

/// Applies a simple operation inside a transaction.
pub(super) fn apply_in(tx: &mut WriteTx<'_>, op: &Op) -> Result<(), Error> {
    match op {
        Op::CreateNode { name, deps } => {
            let node = deps.iter().fold(Node::new(NAMES[*name], "thing")?, |n, d| {
                n.with_dependency(NAMES[*d])
            });
            tx.create_node(node).map(|_| ())
        }
        Op::CreateNodes { names } => {
            let nodes: Vec<Node> = names
                .iter()
                .map(|n| Node::new(NAMES[*n], "thing"))
                .collect::<Result<_, _>>()?;
            tx.create_nodes(nodes).map(|_| ())
        }
        Op::UpdateNode {
            name,
            deps,
            value,
            expect,
        } => {
            let node = deps
                .iter()
                .fold(Node::new(NAMES[*name], "thing")?, |n, d| {
                    n.with_dependency(NAMES[*d])
                })
                .with_attribute("value", json!(value));
            let expected = expected_version(tx, NAMES[*name], *expect);
            tx.update_node(node, expected).map(|_| ())
        }
        Op::DeleteNode { name, mode } => tx.delete_node(NAMES[*name], *mode).map(|_| ()),
        Op::CreateEdge {
            from,
            rel,
            to,
            weight,
        } => {
            let edge = Edge::new(NAMES[*from], relation(*rel), NAMES[*to])?
                .with_weight(f64::from(*weight));
            tx.create_edge(edge).map(|_| ())
        }
        Op::UpdateEdge {
            from,
            rel,
            to,
            weight,
            expect,
        } => {
            let edge = Edge::new(NAMES[*from], relation(*rel), NAMES[*to])?
                .with_weight(f64::from(*weight));
            let expected = expected_edge_version(tx, &edge.key(), *expect);
            tx.update_edge(edge, expected).map(|_| ())
        }
        Op::DeleteEdge { from, rel, to } => tx
            .delete_edge(&EdgeKey::new(NAMES[*from], relation(*rel), NAMES[*to]))
            .map(|_| ()),
        Op::Txn { .. } => Err(Error::invalid_input(
            "model operation",
            "transactions do not nest",
        )),
    }
}

/// Applies an operation to the store; the outcomes of a transaction's inner operations go to `inner`.
/// The end of a model transaction's body: `Ok` to commit it, or the error that
/// rolls it back on purpose.
pub(super) fn commit_or_roll_back(commit: bool) -> crate::Result<()> {
    if commit {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "model transaction",
            "rolled back on purpose",
        ))
    }
}

fn apply_to_store(store: &Store, op: &Op, inner: &mut Vec<Outcome>) -> Outcome {
    let outcome = match op {
        Op::Txn {
            ops,
            commit,
            deferred,
        } => store.write(|tx| {
            if *deferred {
                tx.defer_checks();
            }
            for op in ops {
                inner.push(apply_in(tx, op).map_err(|e| e.kind()));
            }
            commit_or_roll_back(*commit)
        }),
        other => store.write(|tx| apply_in(tx, other)),
    };
    outcome.map_err(|e| e.kind())
}

/// The store's state in the model's terms.
pub(super) fn observe(store: &Store) -> Model {
    let (nodes, edges, _) = dump(store);
    let mut model = Model::default();
    for node in nodes {
        let value = node
            .attributes
            .get("value")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        model.nodes.insert(
            node.name,
            MNode {
                deps: node.dependencies,
                version: node.metadata.version,
                value,
            },
        );
    }
    for edge in edges {
        model.edges.insert(
            (edge.from, edge.relation_type.to_string(), edge.to),
            (edge.metadata.weight, edge.metadata.version),
        );
    }
    model
}

/// Deletes everything, through the API, so each case starts empty.
pub(super) fn reset(store: &Store) -> Result<(), Error> {
    let (nodes, _, _) = dump(store);
    store.write(|tx| {
        for node in nodes {
            if tx.contains_node(&node.name)? {
                tx.delete_node(&node.name, OnDependents::Cascade)?;
            }
        }
        Ok(())
    })
}

fn run_case(store: &Store, ops: &[Op]) -> Result<(), TestCaseError> {
    reset(store).map_err(|e| TestCaseError::fail(format!("reset failed: {e}")))?;
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let expected_inner = match op {
            Op::Txn { ops, deferred, .. } => model.inner_outcomes(ops, *deferred),
            _ => Vec::new(),
        };
        let expected = model.apply(op, false);
        let mut inner = Vec::new();
        let got = apply_to_store(store, op, &mut inner);
        prop_assert_eq!(
            &inner,
            &expected_inner,
            "inner outcomes of step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(got, expected, "outcome of step {}: {:?}", step, op);
        let observed = observe(store);
        prop_assert_eq!(&observed, &model, "state after step {}: {:?}", step, op);
    }
    // The algorithms agree with the model's closures, and orders are valid.
    for name in model.nodes.keys() {
        let order = store
            .resolve_dependencies(name)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let set: BTreeSet<String> = order.iter().cloned().collect();
        prop_assert_eq!(&set, &model.closure_of_dependencies(name));
        for (i, n) in order.iter().enumerate() {
            for dep in &model.nodes[n].deps {
                prop_assert!(
                    order[..i].contains(dep),
                    "{} listed before its dependency {}",
                    n,
                    dep
                );
            }
        }
        let dependents: BTreeSet<String> = store
            .dependents(name)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .into_iter()
            .collect();
        prop_assert_eq!(&dependents, &model.closure_of_dependents(name));
    }
    let report = store
        .check()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(report.is_ok(), "check found {:?}", report.problems);
    Ok(())
}

/// How many random sequences the model check runs: `KGSTORE_MODEL_CASES`, default 48.
pub fn model_cases() -> u32 {
    std::env::var("KGSTORE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

pub fn model_check(f: Fixture) {
    run_model(
        &proptest::collection::vec(op(), 1..40),
        |ops| run_case(&f.store, &ops),
        "the store disagrees with the model",
    );
}

/// Runs a model check: [`model_cases`] random cases of `strategy`, each checked by `case`, with
/// no failure persistence (the suite runs inside every backend's crate); panics with `what` and
/// the minimal failing case when one disagrees.
pub fn run_model<S: Strategy>(
    strategy: &S,
    case: impl Fn(S::Value) -> Result<(), TestCaseError>,
    what: &str,
) {
    let config = Config {
        cases: model_cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(strategy, case) {
        panic!("{what}: {e}");
    }
}
