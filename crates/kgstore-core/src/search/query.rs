//! What a search asks and what it answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::{self, FIELDS};
use crate::error::{Error, Result};
use crate::filter::{Cursor, MAX_PAGE_LIMIT};
use crate::validate;

/// Hits a search returns when no limit is given.
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

/// The longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8192;

/// At most this many distinct query words take part in ranking (the last word
/// always does); the substring match always uses the whole query.
pub const MAX_QUERY_TERMS: usize = 64;

/// A ranked full-text search: its text, which node types, and which page.
///
/// ```
/// use kgstore_core::{GraphRead, Node, SearchQuery, Store};
///
/// let store = Store::memory();
/// store.create_node(Node::new("Alice_Smith", "person")?.with_observation("Drinks green tea"))?;
/// store.create_node(Node::new("Café Lumière", "place")?)?;
///
/// let page = store.search(&SearchQuery::new("alice tea"))?;
/// assert_eq!(page.items[0].name, "Alice_Smith");
/// let page = store.search(&SearchQuery::new("cafe").of_type("place"))?;
/// assert_eq!(page.items[0].name, "Café Lumière");
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchQuery {
    /// The query: words, in any order and case, with or without accents; the
    /// last word also matches as a prefix. Surrounding white space is ignored;
    /// an empty query matches every node.
    pub text: String,
    /// Only nodes of one of these types (any type if empty).
    pub node_types: Vec<String>,
    /// At most this many hits (1 to [`MAX_PAGE_LIMIT`]).
    pub limit: usize,
    /// Resume after this position (from [`Page::next_cursor`](crate::Page)).
    pub cursor: Option<Cursor>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            text: String::new(),
            node_types: Vec::new(),
            limit: DEFAULT_SEARCH_LIMIT,
            cursor: None,
        }
    }
}

impl SearchQuery {
    /// A search for `text`, first page, [`DEFAULT_SEARCH_LIMIT`] hits.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// Adds a node type to the accepted ones.
    pub fn of_type(mut self, node_type: impl Into<String>) -> Self {
        self.node_types.push(node_type.into());
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Resumes after `cursor` (the first page if `None`).
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Refuses an over-long query, malformed types and a zero or too large limit.
    pub fn check(&self) -> Result<()> {
        if self.text.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid_input(
                "search query",
                format!(
                    "{} bytes is longer than the {MAX_QUERY_BYTES} allowed",
                    self.text.len()
                ),
            ));
        }
        for node_type in &self.node_types {
            validate::identifier(node_type).map_err(|reason| {
                Error::invalid_input(
                    format!("node type filter '{}'", validate::shorten(node_type)),
                    reason,
                )
            })?;
        }
        if self.limit == 0 || self.limit > MAX_PAGE_LIMIT {
            return Err(Error::invalid_input(
                "search limit",
                format!("{} is not between 1 and {MAX_PAGE_LIMIT}", self.limit),
            ));
        }
        Ok(())
    }
}

/// A field of a node that search looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchField {
    /// The node's name.
    Name,
    /// The node's type.
    Type,
    /// Its observations.
    Observations,
    /// The strings and numbers in its attributes.
    Attributes,
}

impl SearchField {
    /// Every field, in field order.
    pub const ALL: [SearchField; FIELDS] = [
        SearchField::Name,
        SearchField::Type,
        SearchField::Observations,
        SearchField::Attributes,
    ];

    /// The field's name in output.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchField::Name => "name",
            SearchField::Type => "type",
            SearchField::Observations => "observations",
            SearchField::Attributes => "attributes",
        }
    }
}

impl fmt::Display for SearchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a node is a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// It holds query words (ranked by BM25).
    Terms,
    /// It holds no query word, but the whole query as a substring (score 0, after every `Terms` hit).
    Substring,
    /// The query is empty: every node matches (score 0, by name).
    All,
}

impl MatchKind {
    /// The kind's name in output: `terms`, `substring`, `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Terms => "terms",
            MatchKind::Substring => "substring",
            MatchKind::All => "all",
        }
    }
}

/// One node a search found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The node's name.
    pub name: String,
    /// The node's type.
    pub node_type: String,
    /// Its BM25F score (0 for substring-only hits and for an empty query).
    pub score: f64,
    /// Why it matched.
    pub kind: MatchKind,
    /// The fields that hold a query word (for `Terms`) or the whole query (for
    /// `Substring`), in field order.
    pub matched: Vec<SearchField>,
}

/// The words a backend's index is asked about: every one but the last is
/// matched whole, the last also as a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermQuery {
    terms: Vec<String>,
}

impl TermQuery {
    /// A query for these folded tokens (the last one as a prefix); empty if there are none.
    pub fn new(terms: Vec<String>) -> Self {
        Self { terms }
    }

    /// The terms, the prefix term last.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// How many terms there are.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether term `i` is matched as a prefix (the last one).
    pub fn is_prefix(&self, i: usize) -> bool {
        i + 1 == self.terms.len()
    }

    /// How `token` matches term `i`: as itself, as a longer token, or not.
    pub fn freq_of(&self, i: usize, token: &str) -> Option<bool> {
        let term = self.terms.get(i)?;
        if token == term {
            Some(true)
        } else if self.is_prefix(i) && token.starts_with(term.as_str()) {
            Some(false)
        } else {
            None
        }
    }
}

/// A query analysed once: its terms, its substring, and whether substring-only
/// hits are possible.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The trimmed query, lower-cased: the substring every hit of the official
    /// MCP memory server's search holds.
    pub needle: String,
    /// The ranked terms.
    pub terms: TermQuery,
    /// How a node can hold the needle without holding a term; see [`Infix`].
    pub infix: Infix,
    /// The fingerprint cursors of this query carry.
    pub fingerprint: u64,
}

/// Where substring-only hits can come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Infix {
    /// Nowhere: every node holding the needle also holds the last term as a
    /// token prefix. That is the case when the last token does not start the
    /// folded query: the character before it (a separator, or a word boundary
    /// that depends only on the two characters beside it) starts a token in any
    /// text that holds the needle, because folding maps characters one by one.
    None,
    /// From tokens holding this one (the query's only token, which starts it)
    /// after their first character.
    Inside(String),
    /// From anywhere: the query has no token.
    Anywhere,
    /// The query is empty: every node matches.
    MatchAll,
}

impl Plan {
    pub fn new(query: &SearchQuery) -> Self {
        let trimmed = query.text.trim();
        let tokens = text::tokens_with_offsets(trimmed);
        let infix = match tokens.as_slice() {
            _ if trimmed.is_empty() => Infix::MatchAll,
            [] => Infix::Anywhere,
            [(0, only)] => Infix::Inside(only.clone()),
            _ => Infix::None,
        };
        let mut terms: Vec<String> = Vec::new();
        if let Some((_, last)) = tokens.last() {
            for (_, token) in &tokens[..tokens.len() - 1] {
                if terms.len() + 1 >= MAX_QUERY_TERMS {
                    break;
                }
                if token != last && !terms.contains(token) {
                    terms.push(token.clone());
                }
            }
            terms.push(last.clone());
        }
        let mut types = query.node_types.clone();
        types.sort();
        types.dedup();
        let mut fingerprint = Fnv::default();
        fingerprint.write(trimmed.as_bytes());
        for t in &types {
            fingerprint.write(&[0]);
            fingerprint.write(t.as_bytes());
        }
        Self {
            needle: text::lowercase(trimmed),
            terms: TermQuery::new(terms),
            infix,
            fingerprint: fingerprint.0,
        }
    }
}

/// FNV-1a, 64 bits: a stable hash for cursor fingerprints.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        Plan::new(&SearchQuery::new(text))
    }

    #[test]
    fn the_last_word_is_the_prefix_term_and_words_are_distinct() {
        assert_eq!(plan("Alice tea").terms.terms(), ["alice", "tea"]);
        assert_eq!(plan("tea alice TEA").terms.terms(), ["alice", "tea"]);
        assert_eq!(plan("b a b c").terms.terms(), ["b", "a", "c"]);
        let q = plan("x y");
        assert_eq!(q.terms.freq_of(1, "y"), Some(true));
        assert_eq!(q.terms.freq_of(1, "yes"), Some(false));
        assert_eq!(q.terms.freq_of(0, "xx"), None);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        let terms = plan(&many).terms;
        assert_eq!(terms.len(), MAX_QUERY_TERMS);
        assert_eq!(terms.terms().last().map(String::as_str), Some("w99"));
    }

    #[test]
    fn infix_hits_are_looked_for_only_when_possible() {
        assert_eq!(plan("").infix, Infix::MatchAll);
        assert_eq!(plan("   ").infix, Infix::MatchAll);
        assert_eq!(plan("!!").infix, Infix::Anywhere);
        assert_eq!(plan("Tea").infix, Infix::Inside("tea".into()));
        assert_eq!(plan("  tea ").infix, Infix::Inside("tea".into()));
        assert_eq!(plan("-tea").infix, Infix::None);
        assert_eq!(plan("alice tea").infix, Infix::None);
        assert_eq!(plan("東京").infix, Infix::None);
        assert_eq!(plan("  Tea ").needle, "tea");
    }

    #[test]
    fn fingerprints_tell_queries_apart() {
        let a = Plan::new(&SearchQuery::new("tea").of_type("x").of_type("y"));
        let b = Plan::new(&SearchQuery::new(" tea").of_type("y").of_type("x"));
        let c = Plan::new(&SearchQuery::new("tea"));
        let d = Plan::new(&SearchQuery::new("teas").of_type("x").of_type("y"));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(a.fingerprint, d.fingerprint);
    }

    #[test]
    fn bad_queries_are_refused() {
        assert!(
            SearchQuery::new("x".repeat(MAX_QUERY_BYTES + 1))
                .check()
                .is_err()
        );
        assert!(SearchQuery::new("x").of_type("Not A Type").check().is_err());
        assert!(SearchQuery::new("x").limit(0).check().is_err());
        assert!(
            SearchQuery::new("x")
                .limit(MAX_PAGE_LIMIT + 1)
                .check()
                .is_err()
        );
        assert!(SearchQuery::new("").check().is_ok());
    }
}
