//! An in-memory ordered index of documents, cheap to snapshot, shared by the
//! memory backend (which keeps the bytes in it) and backends that keep only the
//! metadata in memory and the bytes elsewhere (the JSON-files backend: a handle
//! on the file).

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

use super::meta::DocumentMeta;

/// Documents by key, each with its metadata and a backend's handle `H` on its bytes.
/// Cloning is cheap (structure is shared), as for [`GraphState`](crate::GraphState).
#[derive(Clone)]
pub struct DocIndex<H: Clone> {
    docs: OrdMap<String, Arc<(DocumentMeta, H)>>,
}

impl<H: Clone> Default for DocIndex<H> {
    fn default() -> Self {
        Self {
            docs: OrdMap::new(),
        }
    }
}

impl<H: Clone> DocIndex<H> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&(DocumentMeta, H)> {
        self.docs.get(key).map(|e| &**e)
    }

    /// Whether `key` is stored.
    pub fn contains(&self, key: &str) -> bool {
        self.docs.contains_key(key)
    }

    /// How many documents there are.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Inserts or replaces an entry; the one replaced.
    pub fn insert(&mut self, meta: DocumentMeta, handle: H) -> Option<Arc<(DocumentMeta, H)>> {
        self.docs.insert(meta.key.clone(), Arc::new((meta, handle)))
    }

    /// Removes an entry; the one removed.
    pub fn remove(&mut self, key: &str) -> Option<Arc<(DocumentMeta, H)>> {
        self.docs.remove(key)
    }

    /// Up to `limit` entries whose keys start with `prefix` and lie after `from`, by key.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a str,
        from: Bound<&str>,
        limit: usize,
    ) -> impl Iterator<Item = &'a (DocumentMeta, H)> + 'a {
        let start = match from {
            Bound::Included(k) if k > prefix => Bound::Included(k.to_owned()),
            Bound::Excluded(k) if k >= prefix => Bound::Excluded(k.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        self.docs
            .range((start, Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(_, entry)| &**entry)
    }

    /// The metadata at `key` (what [`DocRead::doc_meta`](super::DocRead::doc_meta) answers).
    pub fn meta(&self, key: &str) -> Option<DocumentMeta> {
        self.get(key).map(|(meta, _)| meta.clone())
    }

    /// The metadata of up to `limit` entries whose keys start with `prefix` and lie
    /// after `from` (what [`DocRead::scan_docs`](super::DocRead::scan_docs) answers).
    pub fn scan_meta(&self, prefix: &str, from: Bound<&str>, limit: usize) -> Vec<DocumentMeta> {
        self.scan(prefix, from, limit)
            .map(|(meta, _)| meta.clone())
            .collect()
    }

    /// Every entry, by key.
    pub fn iter(&self) -> impl Iterator<Item = &(DocumentMeta, H)> {
        self.docs.values().map(|e| &**e)
    }
}
