//! The write transaction: validation, metadata, integrity and cycle checks.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::algo;
use crate::backend::{ReadTxn, WriteTxn};
use crate::error::{Error, Result, Violation};
use crate::filter::{Direction, EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, Node};
use crate::observe::Tally;
use crate::schema::{self, Compiled, SchemaCache, SchemaTarget};
use crate::store::read::{GraphRead, check_name};
use crate::timestamp::Timestamp;
use crate::validate;

/// A set of names checked within one call (hashed with a fast hasher, seeded
/// per process).
type NameSet<'a> = foldhash::HashSet<&'a str>;

/// What deleting a node does to the nodes that depend on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDependents {
    /// Refuse with [`Error::HasDependents`] if any node depends on it.
    #[default]
    Refuse,
    /// Remove it from each dependent's `dependencies` (their versions go up).
    Detach,
    /// Delete every node that depends on it, directly or not, with their edges.
    Cascade,
}

/// What a node deletion removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReport {
    /// The nodes deleted: the one asked for first, then any cascaded dependents.
    pub deleted: Vec<String>,
    /// How many edges were deleted with them.
    pub edges_removed: u64,
    /// Dependents whose dependency on a deleted node was removed.
    pub detached: Vec<String>,
}

/// References whose checks were deferred to commit.
#[derive(Default)]
struct Pending {
    nodes: BTreeSet<String>,
    edges: BTreeSet<EdgeKey>,
    deleted: BTreeSet<String>,
}

/// The compiled schemas a transaction has looked up (`None`: the target has
/// none), by node type and by relation type, so that validating an item looks
/// its type up without building a [`SchemaTarget`] (no allocation per item).
/// The tables are made by the first type remembered: a transaction on a store
/// without schemas (and most one-item transactions) carries one pointer, not
/// two empty hash maps to move and drop.
#[derive(Default)]
struct Validators {
    found: Option<Box<Found>>,
    /// `Some(true)` once the backend said it holds no schema at all
    /// ([`ReadTxn::has_schemas`]): then no type is looked up (or remembered).
    none_stored: Option<bool>,
}

/// The tables of [`Validators`].
#[derive(Default)]
struct Found {
    node_types: HashMap<String, Option<Compiled>>,
    relation_types: HashMap<crate::model::RelationType, Option<Compiled>>,
}

impl Validators {
    fn set(&mut self, target: SchemaTarget, compiled: Option<Compiled>) {
        // A schema written or removed in the transaction: look types up again.
        self.none_stored = Some(false);
        let found = self.found.get_or_insert_default();
        match target {
            SchemaTarget::NodeType(t) => found.node_types.insert(t, compiled),
            SchemaTarget::RelationType(r) => found.relation_types.insert(r, compiled),
        };
    }

    /// What the transaction found for node type `t`, if it looked it up.
    fn node_type(&self, t: &str) -> Option<Option<Compiled>> {
        self.found.as_ref()?.node_types.get(t).cloned()
    }

    /// What the transaction found for `relation`, if it looked it up.
    fn relation_type(&self, relation: &crate::model::RelationType) -> Option<Option<Compiled>> {
        self.found.as_ref()?.relation_types.get(relation).cloned()
    }
}

/// The backend's write transaction under a [`WriteTx`]: always the one
/// [`Backend::write_with`](crate::Backend::write_with) lends to the work of a
/// [`Store::write`](crate::Store::write), which `write_with` commits once the work
/// returns `Ok` and rolls back otherwise. That is the one commit of a write:
/// nothing here commits (a [`WriteTx`]'s own commit runs the deferred checks and
/// the change feed's appends, then leaves the transaction to `write_with`).
pub(crate) enum BackendTxn<'s> {
    /// The lent transaction itself.
    Lent(&'s mut (dyn WriteTxn + 's)),
    /// The lent transaction behind the change feed's recorder
    /// ([`changefeed::attach`](crate::events::changefeed::attach)), which records
    /// each change it passes on.
    Recorded(Box<dyn WriteTxn + 's>),
}

impl<'s> std::ops::Deref for BackendTxn<'s> {
    type Target = dyn WriteTxn + 's;

    #[inline]
    fn deref(&self) -> &Self::Target {
        match self {
            Self::Recorded(txn) => &**txn,
            Self::Lent(txn) => &**txn,
        }
    }
}

impl std::ops::DerefMut for BackendTxn<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Recorded(txn) => &mut **txn,
            Self::Lent(txn) => &mut **txn,
        }
    }
}

/// The write transaction handed to [`Store::write`](crate::Store::write).
///
/// Reads through [`GraphRead`] see the transaction's own writes. Each operation
/// either applies completely or fails leaving the transaction as it was, so a
/// caller may handle an error and go on; returning `Err` from the closure rolls
/// everything back.
pub struct WriteTx<'s> {
    txn: BackendTxn<'s>,
    backend: &'s str,
    schemas: &'s SchemaCache,
    now: Timestamp,
    /// Deferred reference checks ([`WriteTx::defer_checks`]), behind a pointer:
    /// few transactions defer, and every one is moved whole a few times.
    pending: Option<Box<Pending>>,
    validators: Validators,
    failed: Option<String>,
    /// What the transaction did to the event store.
    pub(crate) events: crate::events::TxEvents,
    /// What the transaction wrote, by kind, for its log and the store's metrics.
    pub(crate) tally: Tally,
}

impl GraphRead for WriteTx<'_> {
    fn with_reader<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R>) -> Result<R> {
        f(&*self.txn)
    }
}

impl<'s> WriteTx<'s> {
    /// A transaction over `txn` (with the change feed on, wrapped to record
    /// changes: [`changefeed::attach`](crate::events::changefeed::attach), whose
    /// `feed` this takes). Infallible, so that the caller builds it in place
    /// rather than moving it out of a `Result`.
    #[inline]
    pub(crate) fn new(
        txn: BackendTxn<'s>,
        feed: Option<crate::events::changefeed::Recorded>,
        backend: &'s str,
        schemas: &'s SchemaCache,
    ) -> Self {
        Self {
            txn,
            backend,
            schemas,
            now: Timestamp::now(),
            pending: None,
            validators: Validators::default(),
            failed: None,
            events: crate::events::TxEvents {
                feed,
                ..Default::default()
            },
            tally: Tally::default(),
        }
    }

    /// The backend's name, for errors.
    pub(crate) fn backend_name(&self) -> &'s str {
        self.backend
    }

    /// Defers reference checks (edge endpoints, dependencies, dependents of deleted
    /// nodes, cycles) to commit, so that the order of operations does not matter:
    /// an import may name a node before creating it. The commit then fails with
    /// one [`Error::Validation`] listing every dangling reference, or with
    /// [`Error::DependencyCycle`].
    pub fn defer_checks(&mut self) {
        if self.pending.is_none() {
            self.pending = Some(Box::default());
        }
    }

    /// Describes the transaction for the store's history: the commit message on the git
    /// backend (which otherwise writes a summary of the changes). Backends without
    /// history ignore it. An empty message, or one with NUL, is refused.
    pub fn set_message(&mut self, message: impl Into<String>) -> Result<()> {
        let message = message.into();
        if message.trim().is_empty() || message.contains('\0') {
            return Err(Error::invalid_input(
                "transaction message",
                "must hold some text and no NUL character",
            ));
        }
        self.txn.set_message(&message)
    }

    /// The time stamped on everything this transaction writes.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    // ----- nodes -----

    /// Creates a node; [`Error::AlreadyExists`] if the name is taken.
    pub fn create_node(&mut self, mut node: Node) -> Result<Node> {
        self.create_node_in(&mut node)?;
        Ok(node)
    }

    /// [`WriteTx::create_node`] on a node the caller keeps (normalised and
    /// stamped in place): [`Store::create_node`](crate::Store::create_node) then
    /// moves the node once, to return it, not into and out of the transaction.
    pub(crate) fn create_node_in(&mut self, node: &mut Node) -> Result<()> {
        self.prepare_node(node)?;
        if self.txn.contains_node(&node.name)? {
            return Err(already_exists_node(&node.name));
        }
        self.check_new_references(node, None)?;
        stamp_new(
            &mut node.metadata.created_at,
            &mut node.metadata.updated_at,
            &mut node.metadata.version,
            self.now,
        );
        self.raw(|t| t.put_node(node))?;
        self.tally.nodes_written += 1;
        Ok(())
    }

    /// Creates many nodes at once. They may depend on each other in any order;
    /// nothing is written unless all are valid.
    pub fn create_nodes(&mut self, nodes: impl IntoIterator<Item = Node>) -> Result<usize> {
        let mut nodes: Vec<Node> = nodes.into_iter().collect();
        let mut violations = Vec::new();
        for node in &mut nodes {
            match self.prepare_node(node) {
                Ok(()) => {}
                Err(Error::Validation { violations: found }) => violations.extend(found),
                Err(other) => return Err(other),
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        // Names already stored, asked a batch at a time (one query on SQLite).
        for chunk in nodes.chunks(EXISTENCE_BATCH) {
            let names: Vec<&str> = chunk.iter().map(|n| n.name.as_str()).collect();
            if let Some(i) = self.txn.first_existing_node(&names)? {
                return Err(already_exists_node(names[i]));
            }
        }
        let mut batch = NameSet::with_capacity_and_hasher(nodes.len(), Default::default());
        for node in &nodes {
            if !batch.insert(node.name.as_str()) {
                return Err(already_exists_node(&node.name));
            }
        }
        for node in &nodes {
            self.check_new_references(node, Some(&batch))?;
        }
        if self.pending.is_none() && nodes.iter().any(|n| !n.dependencies.is_empty()) {
            // New nodes can only close cycles among themselves (and only if some
            // of them have dependencies).
            let graph: HashMap<&str, &Vec<String>> = nodes
                .iter()
                .map(|n| (n.name.as_str(), &n.dependencies))
                .collect();
            let deps_of = |name: &str| Ok(graph.get(name).map(|deps| (*deps).clone()));
            // Every node on a cycle has a dependency: start only from those.
            let starts = nodes
                .iter()
                .filter(|n| !n.dependencies.is_empty())
                .map(|n| n.name.clone());
            if let Some(cycle) = algo::first_cycle(&deps_of, starts)? {
                return Err(Error::DependencyCycle { cycle });
            }
        }
        for node in &mut nodes {
            let meta = &mut node.metadata;
            stamp_new(
                &mut meta.created_at,
                &mut meta.updated_at,
                &mut meta.version,
                self.now,
            );
        }
        // Only the count is returned: the backend may take the nodes without a copy.
        let count = nodes.len();
        self.raw(|t| t.put_owned_nodes(nodes))?;
        self.tally.nodes_written += count as u64;
        Ok(count)
    }

    /// Replaces a node's content (not its name), keeping `created_at` and raising
    /// the version. With `expected_version`, fails with [`Error::Conflict`] unless
    /// the stored version is that one.
    pub fn update_node(&mut self, mut node: Node, expected_version: Option<u64>) -> Result<Node> {
        self.prepare_node(&mut node)?;
        let old = self
            .txn
            .get_node(&node.name)?
            .ok_or_else(|| Error::node_not_found(&node.name))?;
        if let Some(expected) = expected_version
            && expected != old.metadata.version
        {
            return Err(Error::Conflict {
                entity: validate::node_subject(&node.name),
                expected,
                actual: old.metadata.version,
            });
        }
        self.check_changed_references(&node, &old)?;
        let meta = &mut node.metadata;
        meta.created_at = old.metadata.created_at;
        meta.updated_at = self.now.max(old.metadata.updated_at);
        meta.version = next_version(old.metadata.version, &node.name)?;
        self.raw(|t| t.put_node(&node))?;
        self.tally.nodes_written += 1;
        Ok(node)
    }

    /// Creates the node, or updates it if the name exists.
    pub fn upsert_node(&mut self, node: Node) -> Result<Node> {
        if validate::name(&node.name).is_ok() && self.txn.contains_node(&node.name)? {
            self.update_node(node, None)
        } else {
            self.create_node(node)
        }
    }

    /// Writes a node exactly as given, timestamps and version included (for imports
    /// and restores). A node of version 0 is created as new.
    pub fn import_node(&mut self, mut node: Node) -> Result<Node> {
        if node.metadata.version == 0 {
            return self.create_node(node);
        }
        self.prepare_node(&mut node)?;
        let meta = &node.metadata;
        let violations = validate::kept_metadata(
            &validate::node_subject(&node.name),
            meta.version,
            meta.created_at,
            meta.updated_at,
        );
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        if self.txn.contains_node(&node.name)? {
            return Err(already_exists_node(&node.name));
        }
        self.check_new_references(&node, None)?;
        self.raw(|t| t.put_node(&node))?;
        self.tally.nodes_written += 1;
        Ok(node)
    }

    /// Deletes a node and its edges; what happens to its dependents is `on_dependents`.
    pub fn delete_node(&mut self, name: &str, on_dependents: OnDependents) -> Result<DeleteReport> {
        check_name(name)?;
        if !self.txn.contains_node(name)? {
            return Err(Error::node_not_found(name));
        }
        let dependents = self.txn.dependents_of(name)?;
        let mut report = DeleteReport::default();
        let mut doomed = vec![name.to_owned()];
        match on_dependents {
            OnDependents::Refuse if !dependents.is_empty() => {
                if let Some(pending) = &mut self.pending {
                    pending.deleted.insert(name.to_owned());
                } else {
                    return Err(Error::HasDependents {
                        name: name.to_owned(),
                        dependents,
                    });
                }
            }
            OnDependents::Refuse => {}
            OnDependents::Detach => {
                let mut updated = Vec::with_capacity(dependents.len());
                for dependent in &dependents {
                    if let Some(mut node) = self.txn.get_node(dependent)? {
                        node.dependencies.retain(|d| d != name);
                        node.metadata.updated_at = self.now.max(node.metadata.updated_at);
                        node.metadata.version = next_version(node.metadata.version, dependent)?;
                        updated.push(node);
                    }
                }
                self.raw(|t| t.put_nodes(&updated))?;
                self.tally.nodes_written += updated.len() as u64;
                report.detached = dependents;
            }
            OnDependents::Cascade => {
                // Every transitive dependent, found without ordering them (a deferred
                // transaction may hold a cycle that its commit will refuse anyway).
                let mut found: BTreeSet<String> = BTreeSet::new();
                let mut queue = dependents;
                while let Some(next) = queue.pop() {
                    if next != name && found.insert(next.clone()) {
                        queue.extend(self.txn.dependents_of(&next)?);
                    }
                }
                doomed.extend(found);
            }
        }
        for victim in &doomed {
            let edges = self.txn.edges_of(victim, Direction::Both, &[])?;
            report.edges_removed += edges.len() as u64;
            self.raw(|t| {
                for edge in &edges {
                    t.delete_edge(&edge.key())?;
                }
                t.delete_node(victim).map(|_| ())
            })?;
            self.tally.nodes_deleted += 1;
            self.tally.edges_deleted += edges.len() as u64;
            if let Some(pending) = &mut self.pending {
                pending.nodes.remove(victim);
            }
        }
        report.deleted = doomed;
        Ok(report)
    }

    // ----- edges -----

    /// Creates an edge between existing nodes; [`Error::AlreadyExists`] if its key is taken.
    pub fn create_edge(&mut self, mut edge: Edge) -> Result<Edge> {
        self.prepare_edge(&edge)?;
        if self.txn.contains_edge(&edge.key())? {
            return Err(already_exists_edge(&edge.key()));
        }
        self.check_endpoints(&edge)?;
        let meta = &mut edge.metadata;
        stamp_new(
            &mut meta.created_at,
            &mut meta.updated_at,
            &mut meta.version,
            self.now,
        );
        self.raw(|t| t.put_edge(&edge))?;
        self.tally.edges_written += 1;
        Ok(edge)
    }

    /// Creates many edges at once; nothing is written unless all are valid.
    pub fn create_edges(&mut self, edges: impl IntoIterator<Item = Edge>) -> Result<usize> {
        let mut edges: Vec<Edge> = edges.into_iter().collect();
        let mut violations = Vec::new();
        for edge in &edges {
            match self.prepare_edge(edge) {
                Ok(()) => {}
                Err(Error::Validation { violations: found }) => violations.extend(found),
                Err(other) => return Err(other),
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        // The first edge that is stored already or repeats an earlier one, in order:
        // repeats by a set of borrowed keys (no key is copied, and foldhash hashes a
        // bulk load's hundreds of thousands of them at a fraction of SipHash's cost),
        // stored keys a batch at a time (one query on SQLite) up to the first repeat.
        let mut keys: foldhash::HashSet<(&str, &str, &str)> =
            foldhash::HashSet::with_capacity_and_hasher(edges.len(), Default::default());
        let repeat = edges
            .iter()
            .position(|e| !keys.insert((e.from.as_str(), e.relation_type.as_str(), e.to.as_str())));
        drop(keys);
        let probed = &edges[..repeat.unwrap_or(edges.len())];
        for chunk in probed.chunks(EXISTENCE_BATCH) {
            if let Some(i) = self.txn.first_existing_edge(chunk)? {
                return Err(already_exists_edge(&chunk[i].key()));
            }
        }
        if let Some(i) = repeat {
            return Err(already_exists_edge(&edges[i].key()));
        }
        if self.pending.is_none() {
            // Each endpoint once, in the order edges name them: the first missing one
            // is reported with the first edge naming it.
            let mut seen = NameSet::default();
            let mut ends: Vec<(&str, usize)> = Vec::new();
            for (i, edge) in edges.iter().enumerate() {
                for end in [edge.from.as_str(), edge.to.as_str()] {
                    if seen.insert(end) {
                        ends.push((end, i));
                    }
                }
            }
            for chunk in ends.chunks(EXISTENCE_BATCH) {
                let names: Vec<&str> = chunk.iter().map(|(name, _)| *name).collect();
                if let Some(i) = self.txn.first_missing_node(&names)? {
                    let (end, edge) = chunk[i];
                    return Err(missing_endpoint(end, &edges[edge].key()));
                }
            }
        }
        for edge in &mut edges {
            let meta = &mut edge.metadata;
            stamp_new(
                &mut meta.created_at,
                &mut meta.updated_at,
                &mut meta.version,
                self.now,
            );
        }
        if let Some(pending) = &mut self.pending {
            pending.edges.extend(edges.iter().map(Edge::key));
        }
        self.raw(|t| t.put_edges(&edges))?;
        self.tally.edges_written += edges.len() as u64;
        Ok(edges.len())
    }

    /// Replaces an edge's content (not its key), keeping `created_at` and raising the
    /// version; with `expected_version`, [`Error::Conflict`] unless it matches.
    pub fn update_edge(&mut self, mut edge: Edge, expected_version: Option<u64>) -> Result<Edge> {
        self.prepare_edge(&edge)?;
        let key = edge.key();
        let old = self
            .txn
            .get_edge(&key)?
            .ok_or_else(|| Error::EdgeNotFound { key: key.clone() })?;
        if let Some(expected) = expected_version
            && expected != old.metadata.version
        {
            return Err(Error::Conflict {
                entity: format!("edge {key}"),
                expected,
                actual: old.metadata.version,
            });
        }
        let meta = &mut edge.metadata;
        meta.created_at = old.metadata.created_at;
        meta.updated_at = self.now.max(old.metadata.updated_at);
        meta.version = next_version(old.metadata.version, &key.to_string())?;
        self.raw(|t| t.put_edge(&edge))?;
        self.tally.edges_written += 1;
        Ok(edge)
    }

    /// Creates the edge, or updates it if its key exists.
    pub fn upsert_edge(&mut self, edge: Edge) -> Result<Edge> {
        if self.txn.contains_edge(&edge.key())? {
            self.update_edge(edge, None)
        } else {
            self.create_edge(edge)
        }
    }

    /// Writes an edge exactly as given, timestamps and version included (imports and
    /// restores). An edge of version 0 is created as new.
    pub fn import_edge(&mut self, edge: Edge) -> Result<Edge> {
        if edge.metadata.version == 0 {
            return self.create_edge(edge);
        }
        self.prepare_edge(&edge)?;
        let key = edge.key();
        let meta = &edge.metadata;
        let violations = validate::kept_metadata(
            &format!("edge {key}"),
            meta.version,
            meta.created_at,
            meta.updated_at,
        );
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        if self.txn.contains_edge(&key)? {
            return Err(already_exists_edge(&key));
        }
        self.check_endpoints(&edge)?;
        self.raw(|t| t.put_edge(&edge))?;
        self.tally.edges_written += 1;
        Ok(edge)
    }

    /// Deletes an edge and returns it; [`Error::EdgeNotFound`] if there is none.
    pub fn delete_edge(&mut self, key: &EdgeKey) -> Result<Edge> {
        let edge = self
            .find_edge(key)?
            .ok_or_else(|| Error::EdgeNotFound { key: key.clone() })?;
        self.raw(|t| t.delete_edge(key).map(|_| ()))?;
        self.tally.edges_deleted += 1;
        Ok(edge)
    }

    // ----- schemas -----

    /// Registers (or replaces) the JSON Schema for a node type's or relation type's
    /// attributes. Refused, listing every offender, if stored data violates it.
    pub fn set_schema(&mut self, target: SchemaTarget, schema: Value) -> Result<()> {
        target.check()?;
        let compiled = self.schemas.compile(&target, &schema)?;
        let mut violations = Vec::new();
        match &target {
            SchemaTarget::NodeType(node_type) => {
                let filter = NodeFilter::default().of_type(node_type.clone());
                let mut after: Option<String> = None;
                loop {
                    let page = self.txn.scan_nodes(&filter, after.as_deref(), SCAN_PAGE)?;
                    for node in &page {
                        let subject = validate::node_subject(&node.name);
                        violations.extend(schema::violations(
                            &compiled,
                            &subject,
                            &node.attributes,
                        ));
                    }
                    match page.last() {
                        Some(last) if page.len() == SCAN_PAGE => after = Some(last.name.clone()),
                        _ => break,
                    }
                }
            }
            SchemaTarget::RelationType(relation) => {
                let filter = EdgeFilter::default().of_relation(relation.clone());
                let mut after: Option<EdgeKey> = None;
                loop {
                    let page = self.txn.scan_edges(&filter, after.as_ref(), SCAN_PAGE)?;
                    for edge in &page {
                        let subject = format!("edge {}", edge.key());
                        violations.extend(schema::violations(
                            &compiled,
                            &subject,
                            &edge.attributes,
                        ));
                    }
                    match page.last() {
                        Some(last) if page.len() == SCAN_PAGE => after = Some(last.key()),
                        _ => break,
                    }
                }
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        self.raw(|t| t.put_schema(&target, &schema))?;
        self.tally.schemas_changed += 1;
        self.validators.set(target, Some(compiled));
        Ok(())
    }

    /// Removes a schema; whether there was one.
    pub fn remove_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        target.check()?;
        let removed = self.raw(|t| t.delete_schema(target))?;
        self.tally.schemas_changed += u64::from(removed);
        self.validators.set(target.clone(), None);
        Ok(removed)
    }

    // ----- commit -----

    /// Runs the deferred checks and appends the change feed's events; whether event
    /// waiters should be woken (events appended, deliveries settled). It commits
    /// nothing: the backend's transaction is lent by
    /// [`Backend::write_with`](crate::Backend::write_with), which commits it once
    /// the work (this included) returns `Ok`, and rolls it back if this fails.
    #[inline]
    pub(crate) fn commit(mut self) -> Result<bool> {
        if let Some(reason) = self.failed.take() {
            return Err(Error::backend(
                self.backend,
                format!("the transaction was rolled back because a write in it failed: {reason}"),
            ));
        }
        if let Some(pending) = self.pending.take() {
            self.verify_pending(&pending)?;
        }
        crate::events::changefeed::flush(&mut self)?;
        Ok(self.events.wake)
    }

    fn verify_pending(&self, pending: &Pending) -> Result<()> {
        let txn = &*self.txn;
        let mut violations = Vec::new();
        for key in &pending.edges {
            if !txn.contains_edge(key)? {
                continue;
            }
            for (pointer, end) in [("/from", &key.from), ("/to", &key.to)] {
                if !txn.contains_node(end)? {
                    violations.push(Violation::new(
                        format!("edge {key}"),
                        pointer,
                        format!("node '{}' does not exist", validate::shorten(end)),
                    ));
                }
            }
        }
        let mut referrers: BTreeSet<&str> = pending.nodes.iter().map(String::as_str).collect();
        let dependents_of_deleted: Vec<String> = pending
            .deleted
            .iter()
            .map(|gone| txn.dependents_of(gone))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        referrers.extend(dependents_of_deleted.iter().map(String::as_str));
        for name in referrers {
            let Some(node) = txn.get_node(name)? else {
                continue;
            };
            for (i, dep) in node.dependencies.iter().enumerate() {
                if !txn.contains_node(dep)? {
                    violations.push(Violation::new(
                        validate::node_subject(name),
                        format!("/dependencies/{i}"),
                        format!("node '{}' does not exist", validate::shorten(dep)),
                    ));
                }
            }
        }
        if !violations.is_empty() {
            return Err(Error::Validation { violations });
        }
        let deps_of = |name: &str| Ok(txn.get_node(name)?.map(|n| n.dependencies));
        if let Some(cycle) = algo::first_cycle(&deps_of, pending.nodes.iter().cloned())? {
            return Err(Error::DependencyCycle { cycle });
        }
        Ok(())
    }

    // ----- helpers -----

    /// Runs a raw backend write; a failure poisons the transaction so it cannot commit
    /// half-applied.
    pub(crate) fn raw<R>(&mut self, f: impl FnOnce(&mut dyn WriteTxn) -> Result<R>) -> Result<R> {
        self.raw_with(f, |_| true)
    }

    /// Makes the transaction fail at commit with `reason` (a bulk import left unfinished).
    pub(super) fn poison(&mut self, reason: String) {
        if self.failed.is_none() {
            self.failed = Some(reason);
        }
    }

    /// The backend transaction's reads (seeing its writes).
    pub(crate) fn reader(&self) -> &dyn ReadTxn {
        &*self.txn
    }

    /// [`raw`](Self::raw), where a failure poisons the transaction only if `poisons`
    /// says so (a failure the backend is known to have undone does not).
    pub(crate) fn raw_with<R>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteTxn) -> Result<R>,
        poisons: impl FnOnce(&Error) -> bool,
    ) -> Result<R> {
        if let Some(reason) = &self.failed {
            return Err(Error::backend(
                self.backend,
                format!("the transaction cannot go on after a failed write: {reason}"),
            ));
        }
        let outcome = f(&mut *self.txn);
        if let Err(e) = &outcome
            && poisons(e)
        {
            self.failed = Some(e.to_string());
        }
        outcome
    }

    /// The compiled schema for a target, loaded once per transaction (`known`:
    /// what the transaction found before, looked up without building a target).
    fn validator(
        &mut self,
        known: Option<Option<Compiled>>,
        target: impl FnOnce() -> SchemaTarget,
    ) -> Result<Option<Compiled>> {
        if let Some(found) = known {
            return Ok(found);
        }
        if self.validators.none_stored.is_none() {
            self.validators.none_stored = Some(!self.txn.has_schemas()?);
        }
        if self.validators.none_stored == Some(true) {
            return Ok(None);
        }
        let target = target();
        let compiled = match self.txn.get_schema(&target)? {
            Some(schema) => Some(self.schemas.compile(&target, &schema)?),
            None => None,
        };
        self.validators.set(target, compiled.clone());
        Ok(compiled)
    }

    /// Normalises a node (tags sorted, deduplicated) and checks its fields and schema.
    pub(super) fn prepare_node(&mut self, node: &mut Node) -> Result<()> {
        node.metadata.tags.sort();
        node.metadata.tags.dedup();
        let mut violations = validate::node(node);
        // No violation: the type is a valid identifier (`validate::node` checked it).
        if (violations.is_empty() || validate::identifier(&node.node_type).is_ok())
            && let Some(schema) = self
                .validator(self.validators.node_type(&node.node_type), || {
                    SchemaTarget::NodeType(node.node_type.clone())
                })?
        {
            violations.extend(schema::violations(
                &schema,
                &validate::node_subject(&node.name),
                &node.attributes,
            ));
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation { violations })
        }
    }

    /// Checks an edge's fields and schema.
    pub(super) fn prepare_edge(&mut self, edge: &Edge) -> Result<()> {
        let mut violations = validate::edge(edge);
        if edge.relation_type.check().is_ok()
            && let Some(schema) = self
                .validator(self.validators.relation_type(&edge.relation_type), || {
                    SchemaTarget::RelationType(edge.relation_type.clone())
                })?
        {
            violations.extend(schema::violations(
                &schema,
                &format!("edge {}", edge.key()),
                &edge.attributes,
            ));
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation { violations })
        }
    }

    /// For a node about to be created: no self-dependency, and (unless deferred)
    /// every dependency exists already or in `batch` (the nodes created with it).
    fn check_new_references(&mut self, node: &Node, batch: Option<&NameSet<'_>>) -> Result<()> {
        if node.dependencies.contains(&node.name) {
            return Err(Error::DependencyCycle {
                cycle: vec![node.name.clone(), node.name.clone()],
            });
        }
        if let Some(pending) = &mut self.pending {
            pending.nodes.insert(node.name.clone());
            return Ok(());
        }
        for dep in &node.dependencies {
            if !batch.is_some_and(|b| b.contains(dep.as_str())) && !self.txn.contains_node(dep)? {
                return Err(missing_dependency(dep, &node.name));
            }
        }
        Ok(())
    }

    /// For a node about to replace `old`: new dependencies exist and close no cycle.
    fn check_changed_references(&mut self, node: &Node, old: &Node) -> Result<()> {
        let added: Vec<&String> = node
            .dependencies
            .iter()
            .filter(|d| !old.dependencies.contains(d))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        if added.iter().any(|d| **d == node.name) {
            return Err(Error::DependencyCycle {
                cycle: vec![node.name.clone(), node.name.clone()],
            });
        }
        if let Some(pending) = &mut self.pending {
            pending.nodes.insert(node.name.clone());
            return Ok(());
        }
        for dep in &added {
            if !self.txn.contains_node(dep)? {
                return Err(missing_dependency(dep, &node.name));
            }
        }
        for dep in added {
            if let Some(path) = algo::dependency_path(&*self.txn, dep, &node.name)? {
                let mut cycle = vec![node.name.clone()];
                cycle.extend(path);
                return Err(Error::DependencyCycle { cycle });
            }
        }
        Ok(())
    }

    /// Both endpoints exist (or, deferred, the edge is noted for commit).
    fn check_endpoints(&mut self, edge: &Edge) -> Result<()> {
        if let Some(pending) = &mut self.pending {
            pending.edges.insert(edge.key());
            return Ok(());
        }
        for end in [&edge.from, &edge.to] {
            if !self.txn.contains_node(end)? {
                return Err(missing_endpoint(end, &edge.key()));
            }
        }
        Ok(())
    }
}

/// Page size for scans inside a transaction.
const SCAN_PAGE: usize = 1024;

/// How many names a bulk create asks the backend about at once.
const EXISTENCE_BATCH: usize = 4096;

pub(super) fn stamp_new(
    created: &mut Timestamp,
    updated: &mut Timestamp,
    version: &mut u64,
    now: Timestamp,
) {
    *created = now;
    *updated = now;
    *version = 1;
}

fn next_version(version: u64, subject: &str) -> Result<u64> {
    version
        .checked_add(1)
        .filter(|v| *v <= validate::MAX_VERSION)
        .ok_or_else(|| {
            Error::invalid_input(
                format!("update of {}", validate::shorten(subject)),
                "the version counter is exhausted",
            )
        })
}

pub(super) fn already_exists_node(name: &str) -> Error {
    Error::AlreadyExists {
        entity: validate::node_subject(name),
    }
}

pub(super) fn already_exists_edge(key: &EdgeKey) -> Error {
    Error::AlreadyExists {
        entity: format!("edge {key}"),
    }
}

pub(super) fn missing_dependency(dep: &str, of: &str) -> Error {
    Error::NodeNotFound {
        name: dep.to_owned(),
        referenced_by: Some(format!(
            "the dependencies of {}",
            validate::node_subject(of)
        )),
    }
}

pub(super) fn missing_endpoint(end: &str, key: &EdgeKey) -> Error {
    Error::NodeNotFound {
        name: end.to_owned(),
        referenced_by: Some(format!("edge {key}")),
    }
}
