//! History: the revisions of a store that keeps them (the git backend), reading at a
//! revision, and the difference between two snapshots.
//!
//! A backend with history implements [`Backend::read_at`](crate::Backend::read_at) and
//! [`Backend::log`](crate::Backend::log); the others refuse both with
//! [`Error::Unsupported`](crate::Error::Unsupported). The difference of two snapshots
//! is computed here, once, from two read transactions, so it means the same on
//! every backend that can read a past revision.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::ops::Bound;

use crate::backend::ReadTxn;
use crate::documents::DocumentMeta;
use crate::error::Result;
use crate::filter::{EdgeFilter, NodeFilter};
use crate::model::{Edge, EdgeKey, Node};
use crate::schema::SchemaTarget;

/// The key of one stored entity: what a log can be narrowed to and a check can point at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKey {
    /// A node, by name.
    Node(String),
    /// An edge, by key.
    Edge(EdgeKey),
    /// A schema, by target.
    Schema(SchemaTarget),
    /// A document, by key.
    Document(String),
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(name) => write!(f, "node '{}'", crate::validate::shorten(name)),
            Self::Edge(key) => write!(f, "edge {key}"),
            Self::Schema(target) => write!(f, "the schema for {target}"),
            Self::Document(key) => write!(f, "document '{}'", crate::validate::shorten(key)),
        }
    }
}

/// Who made a revision, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The time zone's offset from UTC, in seconds.
    pub offset_seconds: i32,
}

/// One revision of a store: a commit, on the git backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The revision's full id (a commit id in hex).
    pub id: String,
    /// The ids of its parents, first parent first.
    pub parents: Vec<String>,
    /// Who wrote the change.
    pub author: Signature,
    /// Who committed it.
    pub committer: Signature,
    /// The whole message.
    pub message: String,
}

impl Revision {
    /// The message's first line.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// Which revisions a log lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogQuery {
    /// Only the revisions that changed this entity (on the first-parent line).
    pub key: Option<EntityKey>,
    /// At most this many revisions.
    pub limit: Option<usize>,
    /// Start from this revision instead of the store's current one.
    pub from: Option<String>,
}

impl LogQuery {
    /// Every revision, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the revisions that changed `key`.
    pub fn key(mut self, key: EntityKey) -> Self {
        self.key = Some(key);
        self
    }

    /// At most `limit` revisions.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Starting from revision `from` (any revision expression the backend understands).
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }
}

/// How one entity differs between two snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change<T> {
    /// In the second snapshot only.
    Added {
        /// The entity in the second snapshot.
        new: T,
    },
    /// In both, with different content.
    Changed {
        /// The entity in the first snapshot.
        old: T,
        /// The entity in the second snapshot.
        new: T,
    },
    /// In the first snapshot only.
    Removed {
        /// The entity in the first snapshot.
        old: T,
    },
}

/// The difference between two snapshots, in key order within each kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Nodes added, changed, removed.
    pub nodes: Vec<Change<Node>>,
    /// Edges added, changed, removed.
    pub edges: Vec<Change<Edge>>,
    /// Schemas added, changed, removed, each with its target.
    pub schemas: Vec<Change<(SchemaTarget, Value)>>,
    /// Documents added, changed, removed, by their metadata (a change of the bytes is
    /// a change of the size or SHA-256; a replace with the same bytes, of the version).
    #[serde(default)]
    pub documents: Vec<Change<DocumentMeta>>,
}

impl Diff {
    /// Whether the two snapshots hold the same data.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.edges.is_empty()
            && self.schemas.is_empty()
            && self.documents.is_empty()
    }
}

/// Page size of the scans that compare snapshots.
const PAGE: usize = 1024;

/// Pairs two key-ordered sequences and records where they differ.
fn merge_changes<T: PartialEq, K: Ord>(
    mut a: impl Iterator<Item = Result<T>>,
    mut b: impl Iterator<Item = Result<T>>,
    key: impl Fn(&T) -> K,
) -> Result<Vec<Change<T>>> {
    let mut out = Vec::new();
    let (mut x, mut y) = (a.next().transpose()?, b.next().transpose()?);
    loop {
        let order = match (&x, &y) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(l), Some(r)) => key(l).cmp(&key(r)),
        };
        match order {
            Ordering::Less => {
                if let Some(old) = x.take() {
                    out.push(Change::Removed { old });
                }
                x = a.next().transpose()?;
            }
            Ordering::Greater => {
                if let Some(new) = y.take() {
                    out.push(Change::Added { new });
                }
                y = b.next().transpose()?;
            }
            Ordering::Equal => {
                if let (Some(old), Some(new)) = (x.take(), y.take())
                    && old != new
                {
                    out.push(Change::Changed { old, new });
                }
                x = a.next().transpose()?;
                y = b.next().transpose()?;
            }
        }
    }
    Ok(out)
}

/// Every node of a snapshot in name order, a page at a time.
fn all_nodes(txn: &dyn ReadTxn) -> impl Iterator<Item = Result<Node>> + '_ {
    paged(move |after: Option<&Node>| {
        txn.scan_nodes(&NodeFilter::default(), after.map(|n| n.name.as_str()), PAGE)
    })
}

/// Every edge of a snapshot in key order, a page at a time.
fn all_edges(txn: &dyn ReadTxn) -> impl Iterator<Item = Result<Edge>> + '_ {
    paged(move |after: Option<&Edge>| {
        txn.scan_edges(&EdgeFilter::default(), after.map(Edge::key).as_ref(), PAGE)
    })
}

/// Every document of a snapshot in key order, a page at a time (none when the
/// backend holds no documents).
fn all_documents(txn: &dyn ReadTxn) -> impl Iterator<Item = Result<DocumentMeta>> + '_ {
    paged(move |after: Option<&DocumentMeta>| match txn.documents() {
        Some(docs) => docs.scan_docs(
            "",
            after.map_or(Bound::Unbounded, |m| Bound::Excluded(m.key.as_str())),
            PAGE,
        ),
        None => Ok(Vec::new()),
    })
}

/// An iterator over pages fetched by `fetch(last item of the previous page)`.
fn paged<'a, T: Clone + 'a>(
    fetch: impl Fn(Option<&T>) -> Result<Vec<T>> + 'a,
) -> impl Iterator<Item = Result<T>> + 'a {
    let mut page: std::vec::IntoIter<T> = Vec::new().into_iter();
    let mut last: Option<T> = None;
    let mut done = false;
    std::iter::from_fn(move || {
        if let Some(item) = page.next() {
            last = Some(item.clone());
            return Some(Ok(item));
        }
        if done {
            return None;
        }
        match fetch(last.as_ref()) {
            Ok(items) => {
                done = items.len() < PAGE;
                page = items.into_iter();
                let item = page.next()?;
                last = Some(item.clone());
                Some(Ok(item))
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

/// The difference from snapshot `a` to snapshot `b`: what `b` added, changed and
/// removed, comparing whole entities (metadata included).
pub fn diff(a: &dyn ReadTxn, b: &dyn ReadTxn) -> Result<Diff> {
    let nodes = merge_changes(all_nodes(a), all_nodes(b), |n: &Node| n.name.clone())?;
    let edges = merge_changes(all_edges(a), all_edges(b), Edge::key)?;
    let schemas = merge_changes(
        a.list_schemas()?.into_iter().map(Ok),
        b.list_schemas()?.into_iter().map(Ok),
        |(target, _): &(SchemaTarget, Value)| target.clone(),
    )?;
    let documents = merge_changes(all_documents(a), all_documents(b), |m: &DocumentMeta| {
        m.key.clone()
    })?;
    Ok(Diff {
        nodes,
        edges,
        schemas,
        documents,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::GraphState;

    #[test]
    fn diff_lists_added_changed_and_removed_in_key_order() {
        let mut a = GraphState::new();
        let mut b = GraphState::new();
        for i in 0..2500usize {
            let node = Node::new(format!("n{i:05}"), "thing").unwrap();
            if !i.is_multiple_of(3) {
                a.put_node(node.clone());
            }
            if i.is_multiple_of(5) {
                b.put_node(node.with_observation("changed"));
            } else if i % 3 != 1 {
                b.put_node(node);
            }
        }
        let d = diff(&a, &b).unwrap();
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let mut names = Vec::new();
        for change in &d.nodes {
            let name = match change {
                Change::Added { new } => {
                    added += 1;
                    &new.name
                }
                Change::Changed { new, .. } => {
                    changed += 1;
                    &new.name
                }
                Change::Removed { old } => {
                    removed += 1;
                    &old.name
                }
            };
            names.push(name.clone());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let expect = |f: &dyn Fn(usize) -> bool| (0..2500).filter(|i| f(*i)).count();
        let in_a = |i: usize| !i.is_multiple_of(3);
        let in_b = |i: usize| i.is_multiple_of(5) || i % 3 != 1;
        assert_eq!(added, expect(&|i| !in_a(i) && in_b(i)));
        assert_eq!(removed, expect(&|i| in_a(i) && !in_b(i)));
        assert_eq!(changed, expect(&|i| in_a(i) && i.is_multiple_of(5)));
        assert!(diff(&a, &a).unwrap().is_empty());
    }
}
