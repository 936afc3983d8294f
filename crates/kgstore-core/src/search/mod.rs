//! Ranked full-text search over nodes, the same on every backend.
//!
//! [`GraphRead::search`](crate::GraphRead::search) takes a [`SearchQuery`]
//! (words, optional node types, a page size and a cursor) and returns a page
//! of [`SearchHit`]s: the nodes holding the query's words (folded for case and
//! accents, the last word also as a prefix), ranked by BM25F over name, type,
//! observations and attribute text; then every node holding the whole query as
//! a case-insensitive substring but none of its words, so that a search never
//! finds less than the MCP memory server's substring search would. The order is
//! total: score (highest first), then name.
//!
//! The semantics live here, once: [`text`] (folding and tokens), [`rank`] (the
//! formula and its weights), the query plan, the cursors and the engine that
//! ranks and pages. Backends answer three small questions
//! ([`ReadTxn::search_terms`](crate::ReadTxn::search_terms),
//! [`search_infix`](crate::ReadTxn::search_infix),
//! [`search_names`](crate::ReadTxn::search_names)) whose defaults read every
//! node; the in-memory [`SearchIndex`] and SQLite's FTS5 tables answer them
//! from an index. [`reference_search`] computes the same pages naively, and the
//! shared suite holds every backend to it. `docs/search.md` has the details.

mod cursor;
pub(crate) mod engine;
mod index;
mod primitive;
mod query;
pub mod rank;
mod reference;
pub mod text;

pub use index::SearchIndex;
pub use primitive::{DocKey, DocMatch, TermMatches, scan_infix, scan_terms, term_freqs};
pub use query::{
    DEFAULT_SEARCH_LIMIT, MAX_QUERY_BYTES, MAX_QUERY_TERMS, MatchKind, SearchField, SearchHit,
    SearchQuery, TermQuery,
};
pub use rank::{CorpusStats, TermFreq};
pub use reference::reference_search;
