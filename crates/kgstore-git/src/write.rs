//! The write transaction and the commit protocol.
//!
//! 1. `begin`: take the writer lock (waiting up to the lock timeout), read the branch
//!    (picking up and checking commits made by others), refuse if the branch holds
//!    problems; the transaction works on a private copy of the graph.
//! 2. `commit`: render each changed entity's file; blobs, then the changed trees
//!    (gix's tree editor over the base commit's tree), then the commit object, all
//!    collected in memory; write them durably (loose or one pack, see `objects`);
//!    move the branch from the base commit to the new one by a strict
//!    compare-and-swap (see `refs`); install the new snapshot; release the lock.
//!
//! An empty transaction writes no commit.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use gix::ObjectId;
use gix::objs::tree::{Editor, EntryKind};
use gix::objs::{Commit, Kind, Tree};
use kgstore_core::entity_file;
use kgstore_core::{
    Edge, EdgeKey, EntityKey, Error, GraphState, Node, ReadTxn, Result, SchemaTarget, WriteTxn,
};
use serde_json::Value;

use crate::backend::{GitBackend, Snapshot};
use crate::docs::{self, Content, GitDocs, Handle};
use crate::fault::{self, FaultPoint};
use crate::init::DEFAULT_ATTRIBUTES;
use crate::layout::{self, ATTRIBUTES, MARKER};
use crate::lock::Held;
use crate::objects::{self, Pending, git_error};
use crate::options::Identity;
use crate::refs::Refused;
use crate::tree;

/// The write transaction.
pub(crate) struct GitWrite<'a> {
    backend: &'a GitBackend,
    /// Held until the transaction ends: one writer at a time.
    _held: Held<'a>,
    base: Snapshot,
    state: GraphState,
    changed: BTreeSet<EntityKey>,
    docs: GitDocs<'a>,
    message: Option<String>,
}

kgstore_core::delegate_read_txn!(GitWrite<'_>, state, documents: docs);

impl<'a> GitWrite<'a> {
    pub(crate) fn begin(backend: &'a GitBackend) -> Result<Self> {
        let Some(lock) = &backend.lock else {
            return Err(Error::unsupported(
                format!(
                    "writing to {} (opened read-only)",
                    backend.git_dir.display()
                ),
                "git",
            ));
        };
        let held = lock.acquire(backend.options.lock_timeout)?;
        if held.unclean && backend.branch.remove_stale_lock()? {
            // The last writer died inside a transaction: a branch lock it left is stale.
            kgstore_core::observe::recovery(
                "stale_lock_removed",
                &backend.git_dir.join(&backend.branch.full_name),
            );
        }
        let current = backend.refresh()?;
        if !current.problems.is_empty() {
            return Err(backend.refuse_broken(&current.problems));
        }
        let base = current.snapshot.clone();
        Ok(Self {
            backend,
            _held: held,
            docs: GitDocs::new(backend, base.docs.clone()),
            state: base.graph.clone(),
            base,
            changed: BTreeSet::new(),
            message: None,
        })
    }

    /// The file changes of the transaction: path and new bytes (`None`: removed).
    fn file_changes(&self) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut out = Vec::with_capacity(self.changed.len());
        for key in &self.changed {
            let (now, before) = match key {
                EntityKey::Node(name) => (
                    self.state
                        .get_node(name)?
                        .map(|n| entity_file::render_node(&n))
                        .transpose()?,
                    self.base.graph.contains_node(name)?,
                ),
                EntityKey::Edge(edge) => (
                    self.state
                        .get_edge(edge)?
                        .map(|e| entity_file::render_edge(&e))
                        .transpose()?,
                    self.base.graph.contains_edge(edge)?,
                ),
                EntityKey::Schema(target) => (
                    self.state
                        .get_schema(target)?
                        .map(|s| entity_file::render_schema(&s))
                        .transpose()?,
                    self.base.graph.get_schema(target)?.is_some(),
                ),
                // Documents are tracked apart (`document_changes`).
                EntityKey::Document(_) => continue,
            };
            if now.is_some() || before {
                out.push((layout::key_path(key), now));
            }
        }
        Ok(out)
    }

    /// The file changes of the documents written and deleted (removals of files
    /// first), and the blob of each document written.
    fn document_changes(
        &self,
        changes: &mut Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<Vec<(String, ObjectId)>> {
        let mut written = Vec::new();
        for key in &self.docs.changed {
            let now = self.docs.state.index.get(key);
            let before = self.base.docs.index.get(key);
            if let Some((_, old)) = before
                && now.is_none_or(|(_, handle)| handle.path != old.path)
            {
                changes.push((old.path.to_string(), None));
            }
            match now {
                Some((meta, handle)) => {
                    let Content::New(bytes) = &handle.content else {
                        continue;
                    };
                    let blob = objects::hash(Kind::Blob, bytes)?;
                    changes.push((handle.path.to_string(), Some(bytes.as_ref().clone())));
                    changes.push((
                        docs::meta_path(key),
                        Some(docs::render_meta(meta, &handle.path, &blob)?),
                    ));
                    written.push((key.clone(), blob));
                }
                None if before.is_some() => changes.push((docs::meta_path(key), None)),
                None => {}
            }
        }
        if self.docs.attributes_changed {
            changes.push((
                ATTRIBUTES.to_owned(),
                Some(self.docs.state.attributes.text.clone().into_bytes()),
            ));
        }
        Ok(written)
    }

    /// A summary of the changes, for the default commit message.
    fn summary(&self) -> Result<String> {
        // [nodes, edges, schemas, documents] × [created, updated, deleted]
        let mut counts = [[0usize; 3]; 4];
        for key in &self.changed {
            let (kind, before, after) = match key {
                EntityKey::Node(n) => (
                    0,
                    self.base.graph.contains_node(n)?,
                    self.state.contains_node(n)?,
                ),
                EntityKey::Edge(e) => (
                    1,
                    self.base.graph.contains_edge(e)?,
                    self.state.contains_edge(e)?,
                ),
                EntityKey::Schema(t) => (
                    2,
                    self.base.graph.get_schema(t)?.is_some(),
                    self.state.get_schema(t)?.is_some(),
                ),
                EntityKey::Document(_) => continue,
            };
            count(&mut counts[kind], before, after);
        }
        for key in &self.docs.changed {
            count(
                &mut counts[3],
                self.base.docs.index.contains(key),
                self.docs.state.index.contains(key),
            );
        }
        let mut parts = Vec::new();
        for (kind, (one, many)) in [
            ("node", "nodes"),
            ("edge", "edges"),
            ("schema", "schemas"),
            ("document", "documents"),
        ]
        .iter()
        .enumerate()
        {
            let [created, updated, deleted] = counts[kind];
            let total = created + updated + deleted;
            if total == 0 {
                continue;
            }
            let verbs: Vec<String> = [
                (created, if kind == 2 { "set" } else { "created" }),
                (updated, "updated"),
                (deleted, "deleted"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, verb)| format!("{n} {verb}"))
            .collect();
            parts.push(format!(
                "{} ({})",
                if total == 1 { one } else { many },
                verbs.join(", ")
            ));
        }
        Ok(if parts.is_empty() {
            "kgstore: no change".to_owned()
        } else {
            format!("kgstore: {}", parts.join("; "))
        })
    }
}

/// Counts one change as created, updated or deleted.
fn count(counts: &mut [usize; 3], before: bool, after: bool) {
    match (before, after) {
        (false, true) => counts[0] += 1,
        (true, true) => counts[1] += 1,
        (true, false) => counts[2] += 1,
        (false, false) => {}
    }
}

fn signature(who: &Identity) -> gix::actor::Signature {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    gix::actor::Signature {
        name: who.name.as_str().into(),
        email: who.email.as_str().into(),
        time: gix::date::Time { seconds, offset: 0 },
    }
}

/// Writes a commit on the branch with `changes` (path, new bytes or removal) on top of
/// `base`, adding the format marker and attributes if the tree lacks them; the new
/// snapshot's commit and tree, or `None` if the tree did not change.
pub(crate) fn commit_changes(
    backend: &GitBackend,
    base: &Snapshot,
    changes: &[(String, Option<Vec<u8>>)],
    message: &str,
) -> Result<Option<(ObjectId, ObjectId)>> {
    let repo = backend.local();
    let root = match &base.tree {
        Some(id) => Tree::from(
            gix::objs::TreeRef::from_bytes(
                &tree::read_kind(&repo, id, Kind::Tree)?,
                gix::hash::Kind::Sha1,
            )
            .map_err(|e| {
                Error::corrupt(&backend.git_dir, format!("tree {id} does not parse: {e}"))
            })?,
        ),
        None => Tree::empty(),
    };
    let mut editor = Editor::new(root, &repo.objects, gix::hash::Kind::Sha1);
    let mut pending = Pending::default();
    let edit_error =
        |path: &str, e: gix::Error| git_error(&format!("editing the tree at {path}"), e);
    if editor.get(MARKER.split('/')).is_none() {
        let id = pending.add(Kind::Blob, layout::marker()?)?;
        editor
            .upsert(MARKER.split('/'), EntryKind::Blob, id)
            .map_err(|e| edit_error(MARKER, e))?;
        if editor.get([ATTRIBUTES]).is_none() {
            let id = pending.add(Kind::Blob, DEFAULT_ATTRIBUTES.as_bytes().to_vec())?;
            editor
                .upsert([ATTRIBUTES], EntryKind::Blob, id)
                .map_err(|e| edit_error(ATTRIBUTES, e))?;
        }
    }
    // Removals first: a document `a/b` removed and `a` created in one transaction.
    // (`remove_leaf`: a path that is not there is no error, and never a folder.)
    for (path, _) in changes.iter().filter(|(_, bytes)| bytes.is_none()) {
        editor
            .remove_leaf(path.split('/'))
            .map_err(|e| edit_error(path, e))?;
    }
    for (path, bytes) in changes {
        if let Some(bytes) = bytes {
            let id = pending.add(Kind::Blob, bytes.clone())?;
            editor
                .upsert(path.split('/'), EntryKind::Blob, id)
                .map_err(|e| edit_error(path, e))?;
        }
    }
    let tree_id = editor.write(|tree| pending.add_object(tree))?;
    if Some(tree_id) == base.tree {
        return Ok(None);
    }
    let options = &backend.options;
    let mut commit = Commit {
        tree: tree_id,
        parents: Default::default(),
        author: signature(&options.author),
        committer: signature(options.committer_or_author()),
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    if let Some(parent) = base.commit {
        commit.parents.push(parent);
    }
    let commit_id = pending.add_object(&commit)?;
    pending.persist(&backend.objects, options.durability, options.pack_threshold)?;
    fault::point(options, FaultPoint::ObjectsWritten)
        .map_err(|e| Error::io(&backend.objects.dir, e))?;
    match backend
        .branch
        .compare_and_swap(base.commit, commit_id, options)
    {
        Ok(()) => Ok(Some((commit_id, tree_id))),
        Err(Refused::Moved { actual }) => {
            tracing::warn!(
                expected = base.commit.map(|c| c.to_hex().to_string()),
                actual = actual.map(|c| c.to_hex().to_string()),
                "compare-and-swap refused: another git process moved the branch"
            );
            Err(Error::Locked {
                resource: format!(
                    "{} in {}",
                    backend.branch.full_name,
                    backend.git_dir.display()
                ),
                holder: Some(format!(
                    "another git process moved the branch to {} during the transaction, which was \
                 not committed (retry it)",
                    actual.map_or_else(
                        || "nothing (deleted)".to_owned(),
                        |id| id.to_hex().to_string()
                    )
                )),
            })
        }
        Err(Refused::Failed(e)) => Err(e),
    }
}

/// The first commit of a new store: the format marker and `.gitattributes`.
pub(crate) fn initial_commit(backend: &GitBackend) -> Result<()> {
    let Some(lock) = &backend.lock else {
        return Ok(());
    };
    let _held = lock.acquire(backend.options.lock_timeout)?;
    if backend.branch.read()?.is_some() {
        return Ok(()); // another process made it meanwhile
    }
    let base = Snapshot::default();
    if let Some((commit, tree)) = commit_changes(backend, &base, &[], "kgstore: create the store")?
    {
        let (docs, doc_problems) = docs::load(&backend.local(), Some(&commit), Some(&tree))?;
        backend.committed(Snapshot {
            commit: Some(commit),
            tree: Some(tree),
            graph: GraphState::new(),
            docs,
            doc_problems: std::sync::Arc::new(doc_problems),
        });
    }
    Ok(())
}

impl WriteTxn for GitWrite<'_> {
    fn put_node(&mut self, node: &Node) -> Result<()> {
        self.state.put_node(node.clone());
        self.changed.insert(EntityKey::Node(node.name.clone()));
        Ok(())
    }

    fn delete_node(&mut self, name: &str) -> Result<bool> {
        let existed = self.state.delete_node(name).is_some();
        if existed {
            self.changed.insert(EntityKey::Node(name.to_owned()));
        }
        Ok(existed)
    }

    fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        self.state.put_edge(edge.clone());
        self.changed.insert(EntityKey::Edge(edge.key()));
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        let existed = self.state.delete_edge(key).is_some();
        if existed {
            self.changed.insert(EntityKey::Edge(key.clone()));
        }
        Ok(existed)
    }

    fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        self.state.put_schema(target.clone(), schema.clone());
        self.changed.insert(EntityKey::Schema(target.clone()));
        Ok(())
    }

    fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        let existed = self.state.delete_schema(target).is_some();
        if existed {
            self.changed.insert(EntityKey::Schema(target.clone()));
        }
        Ok(existed)
    }

    fn documents_mut(&mut self) -> Option<&mut dyn kgstore_core::documents::DocWrite> {
        Some(&mut self.docs)
    }

    fn set_message(&mut self, message: &str) -> Result<()> {
        self.message = Some(message.to_owned());
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let mut this = *self;
        let mut changes = this.file_changes()?;
        let written = this.document_changes(&mut changes)?;
        if changes.is_empty() {
            return Ok(());
        }
        let message = match &this.message {
            Some(message) => message.clone(),
            None => this.summary()?,
        };
        match commit_changes(this.backend, &this.base, &changes, &message) {
            Ok(Some((commit, tree))) => {
                let mut docs = std::mem::take(&mut this.docs.state);
                for (key, blob) in written {
                    if let Some((meta, handle)) = docs.index.get(&key).cloned() {
                        docs.index.insert(
                            meta,
                            Handle {
                                content: Content::Blob(blob),
                                ..handle
                            },
                        );
                    }
                }
                if this.docs.attributes_changed {
                    this.backend.mirror_attributes(&docs.attributes.text);
                }
                this.backend.committed(Snapshot {
                    commit: Some(commit),
                    tree: Some(tree),
                    graph: std::mem::take(&mut this.state),
                    docs,
                    doc_problems: std::sync::Arc::clone(&this.base.doc_problems),
                });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
