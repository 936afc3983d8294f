//! kgstore's own invariants, checked over a whole snapshot.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::algo;
use crate::backend::{Problem, ReadTxn};
use crate::error::Result;
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::EdgeKey;
use crate::schema::{self, SchemaCache, SchemaTarget};
use crate::validate;

/// Page size of the scans.
const PAGE: usize = 1024;

/// What [`Store::check`](crate::Store::check) found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Whether the backend could check its own storage too.
    pub backend_checked: bool,
    /// Nodes examined.
    pub nodes: u64,
    /// Edges examined.
    pub edges: u64,
    /// Everything found: damage, and notes (leftovers the store recovers by itself);
    /// no damage in a healthy store.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing is wrong: no finding but notes.
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The findings that are damage.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.is_note())
    }

    /// The findings that are only notes.
    pub fn notes(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_note())
    }
}

/// Scans every node and edge of the snapshot and reports broken invariants.
pub(crate) fn invariants(txn: &dyn ReadTxn, cache: &SchemaCache) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut schemas = HashMap::new();
    for (target, document) in txn.list_schemas()? {
        match cache.compile(&target, &document) {
            Ok(compiled) => {
                schemas.insert(target, compiled);
            }
            Err(e) => report
                .problems
                .push(Problem::new(format!("schema for {target}"), e.to_string())),
        }
    }
    // Dependencies of every node, and how many edges touch each node.
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut degree: HashMap<String, usize> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = txn.scan_nodes(&NodeFilter::default(), after.as_deref(), PAGE)?;
        for node in &page {
            report.nodes += 1;
            let subject = validate::node_subject(&node.name);
            for v in validate::node(node) {
                report.problems.push(Problem::new(
                    subject.clone(),
                    format!("{}: {}", v.pointer, v.message),
                ));
            }
            if let Some(compiled) = schemas.get(&SchemaTarget::NodeType(node.node_type.clone())) {
                for v in schema::violations(compiled, &subject, &node.attributes) {
                    report.problems.push(Problem::new(
                        subject.clone(),
                        format!("{}: {}", v.pointer, v.message),
                    ));
                }
            }
            graph.insert(node.name.clone(), node.dependencies.clone());
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.name.clone()),
            _ => break,
        }
    }
    for (name, deps) in &graph {
        for dep in deps {
            if !graph.contains_key(dep) {
                report.problems.push(Problem::new(
                    validate::node_subject(name),
                    format!(
                        "depends on node '{}', which does not exist",
                        validate::shorten(dep)
                    ),
                ));
            } else if !txn.dependents_of(dep)?.contains(name) {
                report.problems.push(Problem::new(
                    validate::node_subject(dep),
                    format!("the dependents index misses '{}'", validate::shorten(name)),
                ));
            }
        }
    }
    let deps_of = |name: &str| Ok(graph.get(name).cloned());
    if let Some(cycle) = algo::first_cycle(&deps_of, graph.keys().cloned())? {
        report.problems.push(Problem::new(
            "dependencies",
            format!("cycle {}", cycle.join(" -> ")),
        ));
    }
    let mut after: Option<EdgeKey> = None;
    loop {
        let page = txn.scan_edges(&EdgeFilter::default(), after.as_ref(), PAGE)?;
        for edge in &page {
            report.edges += 1;
            let subject = format!("edge {}", edge.key());
            for v in validate::edge(edge) {
                report.problems.push(Problem::new(
                    subject.clone(),
                    format!("{}: {}", v.pointer, v.message),
                ));
            }
            if let Some(compiled) =
                schemas.get(&SchemaTarget::RelationType(edge.relation_type.clone()))
            {
                for v in schema::violations(compiled, &subject, &edge.attributes) {
                    report.problems.push(Problem::new(
                        subject.clone(),
                        format!("{}: {}", v.pointer, v.message),
                    ));
                }
            }
            for end in [&edge.from, &edge.to] {
                if !graph.contains_key(end) {
                    report.problems.push(Problem::new(
                        subject.clone(),
                        format!("node '{}' does not exist", validate::shorten(end)),
                    ));
                }
            }
            *degree.entry(edge.from.clone()).or_default() += 1;
            if edge.to != edge.from {
                *degree.entry(edge.to.clone()).or_default() += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.key()),
            _ => break,
        }
    }
    for name in graph.keys() {
        let indexed = txn.edges_of(name, Direction::Both, &[])?.len();
        let expected = degree.get(name).copied().unwrap_or(0);
        if indexed != expected {
            report.problems.push(Problem::new(
                validate::node_subject(name),
                format!("the edge index lists {indexed} edges, the edges name it {expected} times"),
            ));
        }
    }
    for (what, counted, scanned) in [
        ("nodes", txn.count_nodes()?, report.nodes),
        ("edges", txn.count_edges()?, report.edges),
    ] {
        if counted != scanned {
            report.problems.push(Problem::new(
                what,
                format!("the count says {counted}, a full scan finds {scanned}"),
            ));
        }
    }
    Ok(report)
}
