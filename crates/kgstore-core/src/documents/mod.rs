//! Documents: bytes under path-like keys, beside the graph and in the same
//! transactions (the second seed's `read` / `write` / `delete` / `exists` /
//! `list`).
//!
//! The semantics live here once, above the backends: the key rules
//! ([`key`]), the metadata the store keeps (size, SHA-256, content type,
//! timestamps, version), preconditions (create only, expected version), the
//! file-tree rule (a key is never both a document and a folder of documents),
//! listings with keyset pages and a `/` delimiter, and streaming in both
//! directions. Backends implement the small [`DocRead`] / [`DocWrite`] traits.
//! `docs/documents.md` describes the contract.

mod backend;
mod index;
pub mod key;
mod memory;
mod meta;
mod ops;
mod read;
mod write;

pub use backend::{DocInput, DocRead, DocWrite, for_each_chunk, input_error};
pub use index::DocIndex;
pub use memory::MemoryDocs;
pub use meta::{
    DEFAULT_CONTENT_TYPE, Document, DocumentMeta, Sha256Digest, content_type_rule,
    guess_content_type,
};
pub use ops::{DocumentPage, DocumentQuery, DocumentWrite, Precondition, WriteOptions};
pub use read::{DocumentRead, DocumentReader};
