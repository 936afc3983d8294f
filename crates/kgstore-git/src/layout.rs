//! Where things sit in the tree of a commit, and reading the graph out of a tree.
//!
//! ```text
//! .gitattributes                     LFS patterns (default `blobs/**`), from the first commit
//! .kgstore/kgstore-git.json          format marker: {"format": "kgstore-git", "version": 1}
//! .kgstore/nodes/3f/serde.json       one file per node, sharded as in the JSON-files backend
//! .kgstore/edges/a0/kgstore,depends_on,serde.json
//! .kgstore/schemas/node_type/crate.json
//! ```

use gix::ObjectId;
use gix::objs::Kind;
use kgstore_core::entity_file::{self, EntityFile};
use kgstore_core::{EntityKey, GraphState, Result, names};

use crate::objects::par_each;
use crate::tree::{self, Delta, Leaf};

/// A file of a tree to parse: its path, mode and blob.
type FileRef = (String, gix::objs::tree::EntryMode, ObjectId);

/// The folder of the store's own files at the root of the tree.
pub(crate) const DATA: &str = ".kgstore";
/// The format marker's path.
pub(crate) const MARKER: &str = ".kgstore/kgstore-git.json";
/// The format's name in the marker.
pub(crate) const FORMAT: &str = "kgstore-git";
/// The format's version.
pub(crate) const VERSION: u64 = 1;
/// The attributes file at the root of the tree.
pub(crate) const ATTRIBUTES: &str = ".gitattributes";

/// Something wrong with one file of a commit's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileProblem {
    /// The path in the tree.
    pub(crate) path: String,
    /// What is wrong.
    pub(crate) detail: String,
}

/// The path of an entity's file in the tree (for a document, its metadata file: where
/// its bytes sit depends on the other documents, see `docs`).
pub(crate) fn key_path(key: &EntityKey) -> String {
    let rel = match key {
        EntityKey::Node(name) => names::node_path(name),
        EntityKey::Edge(edge) => names::edge_path(edge),
        EntityKey::Schema(target) => names::schema_path(target),
        EntityKey::Document(key) => return crate::docs::meta_path(key),
    };
    format!("{DATA}/{rel}")
}

/// The key of a parsed entity.
fn key_of(entity: &EntityFile) -> EntityKey {
    match entity {
        EntityFile::Node(node) => EntityKey::Node(node.name.clone()),
        EntityFile::Edge(edge) => EntityKey::Edge(edge.key()),
        EntityFile::Schema(target, _) => EntityKey::Schema(target.clone()),
    }
}

/// Whether a path in the tree is one of the store's entity files.
fn is_data(path: &str) -> bool {
    path.starts_with(DATA)
        && path.as_bytes().get(DATA.len()) == Some(&b'/')
        && path != MARKER
        && !crate::docs::is_meta_path(path)
}

/// Parses the blob of an entity file.
fn parse_leaf(
    repo: &gix::Repository,
    path: &str,
    mode: gix::objs::tree::EntryMode,
    id: &ObjectId,
) -> Result<std::result::Result<EntityFile, String>> {
    if !mode.is_blob() {
        return Ok(Err(format!(
            "is a {}, not a file (kgstore writes plain files only)",
            mode.as_str()
        )));
    }
    let rel = &path[DATA.len() + 1..];
    if !(rel.starts_with(names::NODES)
        || rel.starts_with(names::EDGES)
        || rel.starts_with(names::SCHEMAS))
    {
        return Ok(Err(
            "is not a file kgstore writes (nodes/, edges/, schemas/)".to_owned(),
        ));
    }
    let data = tree::read_kind(repo, id, Kind::Blob)?;
    Ok(entity_file::parse(rel, &data))
}

/// Parses many leaves on several threads; results in the order given.
fn parse_all(
    repo: &gix::ThreadSafeRepository,
    leaves: &[FileRef],
) -> Result<Vec<std::result::Result<EntityFile, String>>> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let chunk = leaves.len().div_ceil(workers.max(1)).max(256);
    let chunks: Vec<(usize, &[FileRef])> = leaves.chunks(chunk).enumerate().collect();
    let results = std::sync::Mutex::new(Vec::with_capacity(chunks.len()));
    par_each(&chunks, workers, |(i, part)| {
        let local = repo.to_thread_local();
        let parsed = part
            .iter()
            .map(|(path, mode, id)| parse_leaf(&local, path, *mode, id))
            .collect::<Result<Vec<_>>>()?;
        results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((*i, parsed));
        Ok(())
    })?;
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().flat_map(|(_, r)| r).collect())
}

/// What is wrong with the trees of `tip` that are not in `base` (all of them without a
/// base) themselves: an entry named twice. kgstore reads the first (see
/// `tree::entries`), but would keep both in its next commit, so it builds nothing on
/// such a tree.
pub(crate) fn tree_problems(
    repo: &gix::Repository,
    base: Option<&ObjectId>,
    tip: &ObjectId,
) -> Result<Vec<FileProblem>> {
    let mut paths = Vec::new();
    tree::twice_named(repo, base, tip, "", &mut paths)?;
    Ok(paths
        .into_iter()
        .map(|path| FileProblem {
            path,
            detail: "is named twice in its tree (git fsck: duplicateEntries)".to_owned(),
        })
        .collect())
}

/// The graph a whole tree holds, what is wrong with its files, and every key loaded.
pub(crate) fn load(
    repo: &gix::ThreadSafeRepository,
    tree: Option<&ObjectId>,
) -> Result<(GraphState, Vec<FileProblem>, Vec<EntityKey>)> {
    let mut graph = GraphState::new();
    let mut problems = Vec::new();
    let mut keys = Vec::new();
    let Some(tree) = tree else {
        return Ok((graph, problems, keys));
    };
    let local = repo.to_thread_local();
    let Some((mode, data_tree)) = tree::entry_at(&local, tree, DATA)? else {
        return Ok((graph, problems, keys));
    };
    if !mode.is_tree() {
        problems.push(FileProblem {
            path: DATA.to_owned(),
            detail: "must be a folder".to_owned(),
        });
        return Ok((graph, problems, keys));
    }
    let mut found: Vec<Leaf> = Vec::new();
    tree::leaves(&local, &data_tree, DATA, &mut found)?;
    let leaves: Vec<FileRef> = found
        .into_iter()
        .filter(|l| is_data(&l.path))
        .map(|l| (l.path, l.mode, l.id))
        .collect();
    for ((path, _, _), parsed) in leaves.iter().zip(parse_all(repo, &leaves)?) {
        match parsed {
            Ok(entity) => {
                keys.push(key_of(&entity));
                put(&mut graph, entity);
            }
            Err(detail) => problems.push(FileProblem {
                path: path.clone(),
                detail,
            }),
        }
    }
    Ok((graph, problems, keys))
}

fn put(graph: &mut GraphState, entity: EntityFile) {
    match entity {
        EntityFile::Node(node) => graph.put_node(node),
        EntityFile::Edge(edge) => graph.put_edge(edge),
        EntityFile::Schema(target, schema) => graph.put_schema(target, schema),
    }
}

fn remove(graph: &mut GraphState, key: &EntityKey) {
    match key {
        EntityKey::Node(name) => {
            graph.delete_node(name);
        }
        EntityKey::Edge(edge) => {
            graph.delete_edge(edge);
        }
        EntityKey::Schema(target) => {
            graph.delete_schema(target);
        }
        EntityKey::Document(_) => {}
    }
}

/// Applies the differences between two trees to `graph` (the graph of the first):
/// the keys touched, and what is wrong with the new files.
pub(crate) fn apply(
    repo: &gix::ThreadSafeRepository,
    graph: &mut GraphState,
    deltas: &[Delta],
) -> Result<(Vec<EntityKey>, Vec<FileProblem>)> {
    let data: Vec<&Delta> = deltas.iter().filter(|d| is_data(&d.path)).collect();
    let olds: Vec<FileRef> = data
        .iter()
        .filter_map(|d| d.old.map(|(m, id)| (d.path.clone(), m, id)))
        .collect();
    let news: Vec<FileRef> = data
        .iter()
        .filter_map(|d| d.new.map(|(m, id)| (d.path.clone(), m, id)))
        .collect();
    let mut touched = Vec::new();
    // What the old files held goes first (a file that did not parse held nothing).
    for parsed in parse_all(repo, &olds)?.into_iter().flatten() {
        let key = key_of(&parsed);
        remove(graph, &key);
        touched.push(key);
    }
    let mut problems = Vec::new();
    // The data folder itself made something else (a file, a link, a submodule): its
    // files show up as deleted, and the entry at `DATA` is no entity file; the whole
    // load (`load`) refuses such a tree, and so must a refresh.
    for delta in deltas.iter().filter(|d| d.path == DATA) {
        if delta.new.is_some_and(|(mode, _)| !mode.is_tree()) {
            problems.push(FileProblem {
                path: DATA.to_owned(),
                detail: "must be a folder".to_owned(),
            });
        }
    }
    for ((path, _, _), parsed) in news.iter().zip(parse_all(repo, &news)?) {
        match parsed {
            Ok(entity) => {
                touched.push(key_of(&entity));
                put(graph, entity);
            }
            Err(detail) => problems.push(FileProblem {
                path: path.clone(),
                detail,
            }),
        }
    }
    touched.sort();
    touched.dedup();
    Ok((touched, problems))
}

/// The marker file's bytes.
pub(crate) fn marker() -> Result<Vec<u8>> {
    entity_file::render(&serde_json::json!({ "format": FORMAT, "version": VERSION }))
}
