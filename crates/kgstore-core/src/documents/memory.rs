//! Documents in memory: the memory backend's, and the reference the others are
//! compared with.

use std::io::Read;
use std::ops::Bound;
use std::sync::Arc;

use super::backend::{DocInput, DocRead, DocWrite, input_error};
use super::index::DocIndex;
use super::meta::DocumentMeta;
use crate::error::Result;

/// Documents with their bytes, in an index that snapshots cheaply.
pub type MemoryDocs = DocIndex<Arc<Vec<u8>>>;

impl DocRead for MemoryDocs {
    fn doc_meta(&self, key: &str) -> Result<Option<DocumentMeta>> {
        Ok(self.meta(key))
    }

    fn scan_docs(
        &self,
        prefix: &str,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentMeta>> {
        Ok(self.scan_meta(prefix, from, limit))
    }

    fn open_doc(&self, meta: &DocumentMeta) -> Result<Box<dyn Read + '_>> {
        let bytes: &[u8] = self.get(&meta.key).map_or(&[], |(_, b)| b.as_slice());
        Ok(Box::new(bytes))
    }

    fn read_doc(&self, meta: &DocumentMeta) -> Result<Vec<u8>> {
        Ok(self
            .get(&meta.key)
            .map(|(_, b)| b.as_ref().clone())
            .unwrap_or_default())
    }

    fn contains_doc(&self, key: &str) -> Result<bool> {
        Ok(self.contains(key))
    }

    fn count_docs(&self) -> Result<u64> {
        Ok(self.len() as u64)
    }
}

impl DocWrite for MemoryDocs {
    fn put_doc(&mut self, input: &mut DocInput<'_>) -> Result<()> {
        let bytes = match input.as_bytes() {
            Some(bytes) => bytes.to_vec(),
            None => {
                let mut bytes = Vec::new();
                input
                    .read_to_end(&mut bytes)
                    .map_err(|e| input_error(input, e))?;
                bytes
            }
        };
        let meta = input.finish()?.clone();
        self.insert(meta, Arc::new(bytes));
        Ok(())
    }

    fn delete_doc(&mut self, key: &str) -> Result<bool> {
        Ok(self.remove(key).is_some())
    }
}
