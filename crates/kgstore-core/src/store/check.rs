//! kgstore's own invariants, checked over a whole snapshot.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::algo;
use crate::backend::{Problem, ReadTxn};
use crate::error::Result;
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::history::EntityKey;
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

/// kgstore's invariants around the entities a change made outside kgstore touched (a
/// commit pushed into a git store, say), found without scanning the whole snapshot:
/// each named entity that exists must be valid (fields, its schema, the nodes it
/// refers to), each that does not exist must leave nothing referring to it, no
/// dependency cycle may pass through a named node, and a named schema must compile
/// and hold for every entity of its type. Each problem comes with the entity it is
/// about. `txn` is the snapshot after the change.
pub fn check_changes(txn: &dyn ReadTxn, changed: &[EntityKey]) -> Result<Vec<(EntityKey, String)>> {
    let cache = SchemaCache::default();
    let mut problems = Vec::new();
    let mut schemas: HashMap<SchemaTarget, Option<schema::Compiled>> = HashMap::new();
    let mut compiled = |target: SchemaTarget| -> Result<Option<schema::Compiled>> {
        if let Some(found) = schemas.get(&target) {
            return Ok(found.clone());
        }
        // A schema that does not compile is reported under its own key.
        let found = match txn.get_schema(&target)? {
            Some(document) => cache.compile(&target, &document).ok(),
            None => None,
        };
        schemas.insert(target, found.clone());
        Ok(found)
    };
    let mut present_nodes = Vec::new();
    for key in changed {
        match key {
            EntityKey::Node(name) => match txn.get_node(name)? {
                Some(node) => {
                    let subject = validate::node_subject(&node.name);
                    for v in validate::node(&node) {
                        problems.push((key.clone(), format!("{}: {}", v.pointer, v.message)));
                    }
                    if let Some(c) = compiled(SchemaTarget::NodeType(node.node_type.clone()))? {
                        for v in schema::violations(&c, &subject, &node.attributes) {
                            problems.push((key.clone(), format!("{}: {}", v.pointer, v.message)));
                        }
                    }
                    for dep in &node.dependencies {
                        if !txn.contains_node(dep)? {
                            problems.push((
                                key.clone(),
                                format!(
                                    "depends on node '{}', which does not exist",
                                    validate::shorten(dep)
                                ),
                            ));
                        }
                    }
                    present_nodes.push(node.name.clone());
                }
                // Reported under the removed node, so that the change that removed it
                // is the one named.
                None => {
                    for edge in txn.edges_of(name, Direction::Both, &[])? {
                        problems.push((
                            key.clone(),
                            format!("is gone, but edge {} still refers to it", edge.key()),
                        ));
                    }
                    for dependent in txn.dependents_of(name)? {
                        problems.push((
                            key.clone(),
                            format!(
                                "is gone, but node '{}' still depends on it",
                                validate::shorten(&dependent)
                            ),
                        ));
                    }
                }
            },
            EntityKey::Edge(edge_key) => {
                let Some(edge) = txn.get_edge(edge_key)? else {
                    continue;
                };
                let subject = format!("edge {edge_key}");
                for v in validate::edge(&edge) {
                    problems.push((key.clone(), format!("{}: {}", v.pointer, v.message)));
                }
                if let Some(c) = compiled(SchemaTarget::RelationType(edge.relation_type.clone()))? {
                    for v in schema::violations(&c, &subject, &edge.attributes) {
                        problems.push((key.clone(), format!("{}: {}", v.pointer, v.message)));
                    }
                }
                for end in [&edge.from, &edge.to] {
                    if !txn.contains_node(end)? {
                        problems.push((
                            key.clone(),
                            format!("node '{}' does not exist", validate::shorten(end)),
                        ));
                    }
                }
            }
            // A document's rules are its key's and its metadata's, checked as it is read.
            EntityKey::Document(_) => {}
            EntityKey::Schema(target) => {
                let Some(document) = txn.get_schema(target)? else {
                    continue;
                };
                let c = match cache.compile(target, &document) {
                    Ok(c) => c,
                    Err(e) => {
                        problems.push((key.clone(), e.to_string()));
                        continue;
                    }
                };
                match target {
                    SchemaTarget::NodeType(node_type) => {
                        let filter = NodeFilter::default().of_type(node_type.clone());
                        let mut after: Option<String> = None;
                        loop {
                            let page = txn.scan_nodes(&filter, after.as_deref(), PAGE)?;
                            for node in &page {
                                let subject = validate::node_subject(&node.name);
                                for v in schema::violations(&c, &subject, &node.attributes) {
                                    problems.push((
                                        EntityKey::Node(node.name.clone()),
                                        format!(
                                            "{}: {} (schema for {target})",
                                            v.pointer, v.message
                                        ),
                                    ));
                                }
                            }
                            match page.last() {
                                Some(last) if page.len() == PAGE => after = Some(last.name.clone()),
                                _ => break,
                            }
                        }
                    }
                    SchemaTarget::RelationType(relation) => {
                        let filter = EdgeFilter {
                            relation_types: vec![relation.clone()],
                            ..EdgeFilter::default()
                        };
                        let mut after: Option<EdgeKey> = None;
                        loop {
                            let page = txn.scan_edges(&filter, after.as_ref(), PAGE)?;
                            for edge in &page {
                                let subject = format!("edge {}", edge.key());
                                for v in schema::violations(&c, &subject, &edge.attributes) {
                                    problems.push((
                                        EntityKey::Edge(edge.key()),
                                        format!(
                                            "{}: {} (schema for {target})",
                                            v.pointer, v.message
                                        ),
                                    ));
                                }
                            }
                            match page.last() {
                                Some(last) if page.len() == PAGE => after = Some(last.key()),
                                _ => break,
                            }
                        }
                    }
                }
            }
        }
    }
    let deps_of = |name: &str| Ok(txn.get_node(name)?.map(|n| n.dependencies));
    if let Some(cycle) = algo::first_cycle(&deps_of, present_nodes)? {
        let first = cycle.first().cloned().unwrap_or_default();
        problems.push((
            EntityKey::Node(first),
            format!("dependency cycle {}", cycle.join(" -> ")),
        ));
    }
    Ok(problems)
}
