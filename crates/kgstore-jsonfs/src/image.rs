//! The in-memory image of a store: what its files hold, at a generation of the
//! commit log, kept current by applying the log's records.
//!
//! A record is a list of file operations (write this file with this content,
//! remove that file). Applying one is interpreting each path by the folder it is
//! in: `nodes/`, `edges/`, `schemas/`, `events/` for the event store, and
//! `docmeta/` for documents, whose bytes stay in their files (a record's `mv` names
//! the file's identity, which readers check when they open it).

use imbl::OrdMap;
use kgstore_core::entity_file::{self, EntityFile};
use kgstore_core::{EdgeKey, GraphState, SchemaTarget};

use crate::docs::{self, DocFile, Docs};
use crate::journal::FileOp;
use crate::names;

/// The key of one stored entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// A node, by name.
    Node(String),
    /// An edge.
    Edge(EdgeKey),
    /// A schema.
    Schema(SchemaTarget),
    /// The event at a position.
    Event(u64),
    /// An entry of the event store's keyed state: space and key.
    State(String, String),
}

impl Key {
    /// The file that holds the entity, relative to the store's folder.
    pub(crate) fn path(&self) -> String {
        match self {
            Self::Node(name) => names::node_path(name),
            Self::Edge(key) => names::edge_path(key),
            Self::Schema(target) => names::schema_path(target),
            Self::Event(position) => crate::events::event_path(*position),
            Self::State(space, key) => crate::events::state_path(space, key),
        }
    }
}

/// What a store holds, as of a generation. Cloning is cheap (structure is shared).
#[derive(Clone, Default)]
pub(crate) struct Image {
    /// The generation of the last transaction applied (0: none, or not known).
    pub(crate) generation: u64,
    /// The graph.
    pub(crate) graph: GraphState,
    /// The keys of the entities whose file names are hashed (long keys: a hashed
    /// name cannot be decoded), by path, so that a record's removal of such a file
    /// finds what it removes.
    hashed: OrdMap<String, Key>,
    /// The documents.
    pub(crate) docs: Docs,
    /// The key of every document by its metadata file's path (a hashed name cannot
    /// be decoded), so that a record's removal of one finds what it removes.
    doc_keys: OrdMap<String, String>,
}

/// The key whose file is at `rel`, if its name can be decoded.
fn decode(rel: &str) -> Option<Key> {
    let (dir, file) = rel.rsplit_once('/')?;
    let stem = file.strip_suffix(names::EXTENSION)?;
    let top = dir.split('/').next()?;
    match top {
        names::NODES => names::decode_node_stem(stem).map(Key::Node),
        names::EDGES => names::decode_edge_stem(stem).map(Key::Edge),
        names::SCHEMAS => {
            let kind = dir.split('/').nth(1)?;
            names::decode_schema_path(kind, file).map(Key::Schema)
        }
        crate::events::EVENTS => crate::events::decode_path(rel),
        _ => None,
    }
}

impl Image {
    /// An image of `graph` at `generation`, with the hashed file names of `hashed`.
    pub(crate) fn new(generation: u64, graph: GraphState, hashed: OrdMap<String, Key>) -> Self {
        Self {
            generation,
            graph,
            hashed,
            docs: Docs::default(),
            doc_keys: OrdMap::new(),
        }
    }

    /// Sets the documents (read from the files).
    pub(crate) fn set_docs(&mut self, index: Docs) {
        self.doc_keys = index
            .iter()
            .map(|(meta, _)| (docs::docmeta_path(&meta.key), meta.key.clone()))
            .collect();
        self.docs = index;
    }

    /// Records the documents after the writer's own transaction, which wrote
    /// (`true`) or deleted (`false`) the keys of `changed`.
    pub(crate) fn wrote_docs<'k>(
        &mut self,
        index: Docs,
        changed: impl IntoIterator<Item = (&'k String, bool)>,
    ) {
        for (key, exists) in changed {
            if exists {
                self.doc_keys.insert(docs::docmeta_path(key), key.clone());
            } else {
                self.doc_keys.remove(&docs::docmeta_path(key));
            }
        }
        self.docs = index;
    }

    /// Notes the file of `key` if its name is hashed.
    pub(crate) fn note_path(hashed: &mut OrdMap<String, Key>, rel: &str, key: &Key) {
        let hashed_name = rel
            .rsplit_once('/')
            .is_some_and(|(_, file)| names::is_hashed(file.trim_end_matches(names::EXTENSION)));
        if hashed_name {
            hashed.insert(rel.to_owned(), key.clone());
        }
    }

    /// Notes the file of `key` in this image if its name is hashed.
    pub(crate) fn note_hashed(&mut self, rel: &str, key: &Key) {
        Self::note_path(&mut self.hashed, rel, key);
    }

    /// The content the file at `rel` has if it holds what this image holds
    /// (rendered as it is written); `None` if `rel` names no entity of the image.
    pub(crate) fn rendered(&self, rel: &str) -> kgstore_core::Result<Option<Vec<u8>>> {
        use crate::files::Content;
        use kgstore_core::ReadTxn;
        let key = match self.hashed.get(rel) {
            Some(key) => Some(key.clone()),
            None => decode(rel),
        };
        let content = match key {
            Some(Key::Node(name)) => self.graph.get_node(&name)?.map(Content::node),
            Some(Key::Edge(key)) => self.graph.get_edge(&key)?.map(Content::edge),
            Some(Key::Schema(target)) => self.graph.get_schema(&target)?.map(Content::schema),
            Some(Key::Event(_) | Key::State(..)) | None => None,
        };
        content.map(|c| c.render()).transpose()
    }

    /// Applies one transaction's file operations; the reason if a file's content
    /// does not read as what its path says (a damaged record).
    pub(crate) fn apply(&mut self, ops: &[FileOp]) -> Result<(), String> {
        // Where each document's bytes come from: the staged file its `mv` names.
        let moves: std::collections::HashMap<&str, (&String, docs::FileId)> = ops
            .iter()
            .filter_map(|op| Some((op.rel.as_str(), (op.from.as_ref()?, op.id))))
            .collect();
        for op in ops {
            if crate::events::is_event_path(&op.rel) {
                self.apply_event_file(op)?;
                continue;
            }
            if op.rel.starts_with(docs::DOCMETA)
                && op.rel.as_bytes().get(docs::DOCMETA.len()) == Some(&b'/')
            {
                self.apply_docmeta(op, &moves)?;
                continue;
            }
            if op.from.is_some() || docs::is_doc_path(&op.rel) {
                // A document's bytes: what a reader needs is in its metadata's operation.
                continue;
            }
            match &op.content {
                Some(bytes) => match entity_file::parse(&op.rel, bytes)? {
                    EntityFile::Node(node) => {
                        Self::note_path(&mut self.hashed, &op.rel, &Key::Node(node.name.clone()));
                        self.graph.put_node(node);
                    }
                    EntityFile::Edge(edge) => {
                        Self::note_path(&mut self.hashed, &op.rel, &Key::Edge(edge.key()));
                        self.graph.put_edge(edge);
                    }
                    EntityFile::Schema(target, schema) => self.graph.put_schema(target, schema),
                },
                None => {
                    let key = match self.hashed.remove(&op.rel) {
                        Some(key) => Some(key),
                        None => decode(&op.rel),
                    };
                    match key {
                        Some(Key::Node(name)) => drop(self.graph.delete_node(&name)),
                        Some(Key::Edge(key)) => drop(self.graph.delete_edge(&key)),
                        Some(Key::Schema(target)) => drop(self.graph.delete_schema(&target)),
                        // Event-store files are applied above; a file this image never
                        // held: nothing to remove.
                        Some(Key::Event(_) | Key::State(..)) | None => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the operation on an event-store file: an event or a state entry.
    fn apply_event_file(&mut self, op: &FileOp) -> Result<(), String> {
        let events = self.graph.event_state_mut();
        match &op.content {
            Some(bytes) => {
                let file = crate::events::parse(&op.rel, bytes)
                    .map_err(|detail| format!("{}: {detail}", op.rel))?;
                if let crate::events::EventFile::State(entry) = &file {
                    let key = Key::State(entry.space.clone(), entry.key.clone());
                    Self::note_path(&mut self.hashed, &op.rel, &key);
                }
                crate::events::load(events, file).map_err(|e| format!("{}: {e}", op.rel))
            }
            None => {
                let key = match self.hashed.remove(&op.rel) {
                    Some(key) => Some(key),
                    None => decode(&op.rel),
                };
                match key {
                    Some(Key::Event(position)) => events.remove_record(position),
                    Some(Key::State(space, key)) => {
                        kgstore_core::events::EventLogWrite::state_delete(events, &space, &key)
                            .map_err(|e| format!("{}: {e}", op.rel))?;
                    }
                    // A file this image never held: nothing to remove.
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// Applies the operation on a document's metadata file.
    fn apply_docmeta(
        &mut self,
        op: &FileOp,
        moves: &std::collections::HashMap<&str, (&String, docs::FileId)>,
    ) -> Result<(), String> {
        match &op.content {
            Some(bytes) => {
                let meta: kgstore_core::DocumentMeta = serde_json::from_slice(bytes)
                    .map_err(|e| format!("{}: not a document's metadata: {e}", op.rel))?;
                if docs::docmeta_path(&meta.key) != op.rel {
                    return Err(format!(
                        "{}: a file must sit where its key says (document metadata)",
                        op.rel
                    ));
                }
                let file = match moves.get(docs::doc_path(&meta.key).as_str()) {
                    Some((from, id)) => DocFile::Staged((*from).clone(), *id),
                    None => {
                        return Err(format!(
                            "{}: a document's metadata without its bytes",
                            op.rel
                        ));
                    }
                };
                self.doc_keys.insert(op.rel.clone(), meta.key.clone());
                self.docs.insert(meta, file);
            }
            None => {
                if let Some(key) = self.doc_keys.remove(&op.rel) {
                    self.docs.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// Records that the writer's own transaction wrote or removed the file of `key`.
    pub(crate) fn wrote(&mut self, key: &Key, exists: bool) {
        let rel = key.path();
        if exists {
            Self::note_path(&mut self.hashed, &rel, key);
        } else {
            self.hashed.remove(&rel);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kgstore_core::{Edge, Node, ReadTxn, RelationType};

    use crate::files::Content;

    fn put(key: &Key, content: Content) -> FileOp {
        FileOp {
            rel: key.path(),
            content: Some(content.render().unwrap()),
            from: None,
            id: None,
        }
    }

    #[test]
    fn records_apply_puts_and_removals_also_of_hashed_names() {
        let long = "n".repeat(400);
        let short = Key::Node("a".into());
        let hashed = Key::Node(long.clone());
        assert!(names::is_hashed(&names::node_stem(&long)));
        let edge = Edge::new("a", RelationType::Calls, long.clone()).unwrap();
        let edge_key = Key::Edge(edge.key());
        let mut image = Image::default();
        image
            .apply(&[
                put(&short, Content::node(Node::new("a", "t").unwrap())),
                put(
                    &hashed,
                    Content::node(Node::new(long.clone(), "t").unwrap()),
                ),
                put(&edge_key, Content::edge(edge.clone())),
            ])
            .unwrap();
        assert_eq!(image.graph.count_nodes().unwrap(), 2);
        assert_eq!(image.graph.count_edges().unwrap(), 1);
        let removals: Vec<FileOp> = [&edge_key, &hashed]
            .into_iter()
            .map(|k| FileOp {
                rel: k.path(),
                content: None,
                from: None,
                id: None,
            })
            .collect();
        image.apply(&removals).unwrap();
        assert!(image.graph.get_node(&long).unwrap().is_none());
        assert!(image.graph.get_node("a").unwrap().is_some());
        assert_eq!(image.graph.count_edges().unwrap(), 0);
        // Removing what is not there is nothing.
        image.apply(&removals).unwrap();
    }

    #[test]
    fn a_record_whose_content_is_not_what_its_path_says_is_damaged() {
        let op = FileOp {
            rel: Key::Node("a".into()).path(),
            content: Some(
                Content::node(Node::new("b", "t").unwrap())
                    .render()
                    .unwrap(),
            ),
            from: None,
            id: None,
        };
        let err = Image::default().apply(&[op]).unwrap_err();
        assert!(err.contains("must sit where its key says"), "{err}");
    }
}
