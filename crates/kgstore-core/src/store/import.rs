//! Bulk imports: many nodes and edges, timestamps and versions kept, into a store
//! that holds no graph yet, written a batch at a time.
//!
//! [`WriteTx::import_node`] checks each node's references against the store (or
//! defers them to commit, where each is a lookup). An import into an empty store
//! needs none of that: every name an edge or a dependency may name is one this
//! import wrote, so [`BulkImport`] keeps the names (and the dependencies) in
//! memory and checks references there, hands the backend whole batches
//! ([`WriteTxn::put_nodes`](crate::backend::WriteTxn::put_nodes)), and checks the
//! dependencies and cycles once, in [`BulkImport::finish`]. Every field and schema
//! is validated as by `import_node`.

use std::collections::HashMap;

use crate::algo;
use crate::error::{Error, Result};
use crate::model::{Edge, EdgeKey, Node};
use crate::store::write::{
    WriteTx, already_exists_edge, already_exists_node, missing_dependency, missing_endpoint,
    stamp_new,
};
use crate::timestamp::Timestamp;
use crate::validate;

/// A bulk import in progress, from [`WriteTx::bulk_import`]: nodes first, then
/// edges in key order, then [`finish`](Self::finish).
///
/// Dropping it unfinished makes the transaction fail at commit, so an import
/// whose dependencies were never checked is never committed.
pub struct BulkImport<'t, 's> {
    tx: &'t mut WriteTx<'s>,
    /// The names imported, hashed with a fast hasher (seeded per process, so
    /// names chosen to collide cannot be prepared in a backup).
    names: foldhash::HashSet<String>,
    dependencies: HashMap<String, Vec<String>>,
    last_edge: Option<EdgeKey>,
    finished: bool,
}

impl<'s> WriteTx<'s> {
    /// Starts a bulk import. The transaction must hold no node and no edge (an
    /// empty store, or one this transaction emptied); otherwise `InvalidInput`.
    pub fn bulk_import(&mut self) -> Result<BulkImport<'_, 's>> {
        let reader = self.reader();
        if reader.count_nodes()? > 0 || reader.count_edges()? > 0 {
            return Err(Error::invalid_input(
                "bulk import",
                "the store already holds nodes or edges; a bulk import starts from an empty graph",
            ));
        }
        self.raw(|t| t.bulk_load_begin())?;
        Ok(BulkImport {
            tx: self,
            names: foldhash::HashSet::default(),
            dependencies: HashMap::new(),
            last_edge: None,
            finished: false,
        })
    }
}

impl BulkImport<'_, '_> {
    /// Writes a batch of nodes exactly as given (a node of version 0 is stamped as
    /// new). Each is validated as by [`WriteTx::import_node`]; a name already
    /// imported is `AlreadyExists`; dependencies are checked in
    /// [`finish`](Self::finish). On error nothing of the batch is written.
    pub fn nodes(&mut self, mut nodes: Vec<Node>) -> Result<usize> {
        self.check_open()?;
        if self.last_edge.is_some() {
            return Err(Error::invalid_input(
                "bulk import",
                "nodes come before edges (an edge's endpoints must be imported first)",
            ));
        }
        let mut violations = Vec::new();
        for node in &mut nodes {
            match self.tx.prepare_node(node) {
                Ok(()) => {}
                Err(Error::Validation { violations: found }) => violations.extend(found),
                Err(other) => return Err(other),
            }
            let meta = &mut node.metadata;
            if meta.version == 0 {
                let now = self.tx.now();
                stamp_new(
                    &mut meta.created_at,
                    &mut meta.updated_at,
                    &mut meta.version,
                    now,
                );
            } else if !kept_metadata_ok(meta.version, meta.created_at, meta.updated_at) {
                violations.extend(validate::kept_metadata(
                    &validate::node_subject(&node.name),
                    meta.version,
                    meta.created_at,
                    meta.updated_at,
                ));
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        let mut added = 0;
        let mut outcome = Ok(());
        for node in &nodes {
            if node.dependencies.contains(&node.name) {
                outcome = Err(Error::DependencyCycle {
                    cycle: vec![node.name.clone(), node.name.clone()],
                });
                break;
            }
            if !self.names.insert(node.name.clone()) {
                outcome = Err(already_exists_node(&node.name));
                break;
            }
            added += 1;
        }
        if let Err(e) = outcome {
            // Leave the names as before the batch.
            for node in &nodes[..added] {
                self.names.remove(&node.name);
            }
            return Err(e);
        }
        for node in &nodes {
            if !node.dependencies.is_empty() {
                self.dependencies
                    .insert(node.name.clone(), node.dependencies.clone());
            }
        }
        self.tx.raw(|t| t.put_owned_nodes(nodes))?;
        self.tx.tally.nodes_written += added as u64;
        Ok(added)
    }

    /// Writes a batch of edges exactly as given (version 0 is stamped as new), in
    /// strictly increasing key order across batches (`InvalidInput` otherwise; a
    /// repeated key is `AlreadyExists`). Each is validated as by
    /// [`WriteTx::import_edge`], and both endpoints must be imported nodes. On
    /// error nothing of the batch is written.
    pub fn edges(&mut self, mut edges: Vec<Edge>) -> Result<usize> {
        self.check_open()?;
        // Order, repeats and endpoints first, comparing keys in place.
        let mut previous = self
            .last_edge
            .as_ref()
            .map(|k| (k.from.as_str(), &k.relation_type, k.to.as_str()));
        for edge in &edges {
            let key = (edge.from.as_str(), &edge.relation_type, edge.to.as_str());
            if let Some(before) = previous {
                if before == key {
                    return Err(already_exists_edge(&edge.key()));
                }
                if before > key {
                    return Err(Error::invalid_input(
                        format!("edge {}", edge.key()),
                        "a bulk import takes edges in key order (from, relation, to)",
                    ));
                }
            }
            // Edges come by source: a source just checked is not looked up again.
            let from_known = previous.is_some_and(|(from, _, _)| from == edge.from);
            let from_missing = !from_known && !self.names.contains(edge.from.as_str());
            for (end, missing) in [
                (&edge.from, from_missing),
                (&edge.to, !self.names.contains(edge.to.as_str())),
            ] {
                if missing {
                    return Err(missing_endpoint(end, &edge.key()));
                }
            }
            previous = Some(key);
        }
        let mut violations = Vec::new();
        for edge in &mut edges {
            match self.tx.prepare_edge(edge) {
                Ok(()) => {}
                Err(Error::Validation { violations: found }) => violations.extend(found),
                Err(other) => return Err(other),
            }
            let (version, created, updated) = {
                let m = &edge.metadata;
                (m.version, m.created_at, m.updated_at)
            };
            if version == 0 {
                let now = self.tx.now();
                let meta = &mut edge.metadata;
                stamp_new(
                    &mut meta.created_at,
                    &mut meta.updated_at,
                    &mut meta.version,
                    now,
                );
            } else if !kept_metadata_ok(version, created, updated) {
                violations.extend(validate::kept_metadata(
                    &format!("edge {}", edge.key()),
                    version,
                    created,
                    updated,
                ));
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        let (count, last) = (edges.len(), edges.last().map(Edge::key));
        self.tx.raw(|t| t.put_owned_edges(edges))?;
        self.last_edge = last.or(self.last_edge.take());
        self.tx.tally.edges_written += count as u64;
        Ok(count)
    }

    /// Checks that every dependency names an imported node and that they form no
    /// cycle, ending the import. Until it returns `Ok`, the transaction cannot commit.
    pub fn finish(mut self) -> Result<()> {
        self.check_open()?;
        for (name, deps) in &self.dependencies {
            if let Some(dep) = deps.iter().find(|d| !self.names.contains(d.as_str())) {
                return Err(missing_dependency(dep, name));
            }
        }
        let graph = &self.dependencies;
        let deps_of = |name: &str| Ok(Some(graph.get(name).cloned().unwrap_or_default()));
        let mut starts: Vec<String> = graph.keys().cloned().collect();
        starts.sort();
        if let Some(cycle) = algo::first_cycle(&deps_of, starts)? {
            return Err(Error::DependencyCycle { cycle });
        }
        self.tx.raw(|t| t.bulk_load_end())?;
        self.finished = true;
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.finished {
            return Err(Error::invalid_input(
                "bulk import",
                "it is finished; start another transaction to write more",
            ));
        }
        Ok(())
    }
}

/// Whether kept metadata breaks no rule, without naming the subject (which costs a
/// string per item; it is named only for the error).
fn kept_metadata_ok(version: u64, created_at: Timestamp, updated_at: Timestamp) -> bool {
    validate::kept_metadata("", version, created_at, updated_at).is_empty()
}

impl Drop for BulkImport<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.tx.poison(
                "a bulk import was not finished, so its dependencies were never checked".to_owned(),
            );
        }
    }
}
