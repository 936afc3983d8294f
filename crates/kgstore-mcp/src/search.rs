//! How `search_nodes` finds its entities: this one function.
//!
//! Today it has the official memory server's semantics — an entity matches if
//! the whole query, ignoring case, is a substring of its name, its entity type
//! (as the client spelled it) or one of its observations. That is the store's
//! text filter ([`NodeFilter::containing`]: name and observations, Unicode
//! lower case) extended to the entity type; the test
//! `the_matcher_agrees_with_the_stores_text_filter` holds the two to the same
//! answers. Every backend evaluates the text filter by reading each node (none
//! can answer a substring query from an index), so this function reads the
//! nodes a chunk at a time and tests each once, lower-casing ASCII text into a
//! reused buffer instead of allocating per node and field.
//!
//! Ranked full-text search (tokenised, accent-folded, BM25) replaces the body
//! of [`search`] when the library offers it; the tools, their pagination and
//! their answers stay as they are.

use kgstore::formats::entity_type_of;
use kgstore::{Cursor, GraphRead, Node, NodeFilter, Page, PageRequest, Result};

/// How many nodes one read of the scan asks the store for.
const SCAN_CHUNK: usize = 1024;

/// The match test: [`NodeFilter::containing`]'s semantics (Unicode lower case,
/// as `str::to_lowercase`), extended to the entity type as spelled, without an
/// allocation per node: ASCII text is lower-cased into one reused buffer.
struct Matcher {
    needle: String,
    buffer: String,
}

impl Matcher {
    fn new(query: &str) -> Self {
        Self {
            needle: query.to_lowercase(),
            buffer: String::new(),
        }
    }

    /// Whether `text`, lower-cased, contains the query.
    fn contains(&mut self, text: &str) -> bool {
        if text.is_ascii() {
            // An ASCII text lower-cases to ASCII, which a non-ASCII needle cannot be in.
            if !self.needle.is_ascii() {
                return self.needle.is_empty();
            }
            self.buffer.clear();
            self.buffer
                .extend(text.chars().map(|c| c.to_ascii_lowercase()));
            self.buffer.contains(self.needle.as_str())
        } else {
            text.to_lowercase().contains(self.needle.as_str())
        }
    }

    fn matches(&mut self, node: &Node) -> bool {
        self.contains(&node.name)
            || node.observations.iter().any(|o| self.contains(o))
            || self.contains(entity_type_of(node))
    }
}

/// The entities matching `query`, a page at a time, in name order. The page's
/// cursor is a kgstore node cursor: the next page starts after its last entity.
pub fn search<R: GraphRead>(reader: &R, query: &str, page: &PageRequest) -> Result<Page<Node>> {
    page.check()?;
    let mut matcher = Matcher::new(query);
    let everything = NodeFilter::default();
    let mut scan = PageRequest::first(SCAN_CHUNK).after(page.cursor.clone());
    let mut items = Vec::new();
    loop {
        let chunk = reader.list_nodes(&everything, &scan)?;
        for node in chunk.items {
            if !matcher.matches(&node) {
                continue;
            }
            if items.len() == page.limit {
                let next_cursor = items.last().map(|n: &Node| Cursor::after_node(&n.name));
                return Ok(Page { items, next_cursor });
            }
            items.push(node);
        }
        match chunk.next_cursor {
            Some(cursor) => scan = scan.after(Some(cursor)),
            None => {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::search;
    use kgstore::formats::entity_node;
    use kgstore::{PageRequest, Store};

    fn names(page: &kgstore::Page<kgstore::Node>) -> Vec<&str> {
        page.items.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn matches_name_observations_and_the_spelled_type_ignoring_case() {
        let store = Store::memory();
        store
            .write(|tx| {
                tx.create_node(entity_node(
                    "Alice",
                    "person",
                    vec!["Likes TEA".into()],
                    Default::default(),
                )?)?;
                tx.create_node(entity_node(
                    "Bob",
                    "Big Company",
                    vec![],
                    Default::default(),
                )?)?;
                tx.create_node(entity_node("Carol", "person", vec![], Default::default())?)?;
                Ok(())
            })
            .unwrap();
        let all = PageRequest::first(10);
        let found = |q: &str| names(&search(&store, q, &all).unwrap()).join(",");
        assert_eq!(found("tea"), "Alice");
        assert_eq!(found("ALI"), "Alice");
        assert_eq!(found("PERSON"), "Alice,Carol");
        // The type as spelled, not only its identifier (big_company).
        assert_eq!(found("g c"), "Bob");
        assert_eq!(found("big_company"), "");
        assert_eq!(found(""), "Alice,Bob,Carol");
        assert_eq!(found("Alice tea"), "");
    }

    #[test]
    fn the_matcher_agrees_with_the_stores_text_filter() {
        // Strings where ASCII and Unicode lower-casing part ways: the Kelvin sign
        // lower-cases to 'k', 'İ' to "i̇", final sigma by context, 'ß' stays.
        let texts = [
            "",
            "Alice",
            "ALICE smith",
            "\u{212A}elvin",
            "İstanbul",
            "ΟΔΟΣ",
            "Straße",
            "café",
            "CAFÉ",
            "tab\tin",
            "日本語テキスト",
            "x\u{0}y",
        ];
        let queries = [
            "", "a", "alice", "LICE S", "kelvin", "k", "i", "i\u{307}", "οδος", "ς", "ss", "ß",
            "CAFÉ", "é", "\t", "本語", "\u{0}",
        ];
        for text in texts {
            let node = kgstore::Node {
                observations: vec![text.to_owned()],
                ..kgstore::Node::new("n", "t").unwrap()
            };
            for query in queries {
                let reference = kgstore::NodeFilter::default()
                    .containing(query)
                    .matches(&node);
                assert_eq!(
                    super::Matcher::new(query).matches(&node),
                    reference || "t".contains(&query.to_lowercase()),
                    "{text:?} / {query:?}"
                );
            }
        }
    }

    #[test]
    fn pages_resume_after_their_cursor_without_skips_or_repeats() {
        let store = Store::memory();
        store
            .write(|tx| {
                for i in 0..2500 {
                    let kind = if i % 3 == 0 { "hit" } else { "miss" };
                    tx.create_node(entity_node(
                        format!("n{i:04}"),
                        kind,
                        vec![],
                        Default::default(),
                    )?)?;
                }
                Ok(())
            })
            .unwrap();
        let mut page = PageRequest::first(100);
        let mut seen = Vec::new();
        loop {
            let got = search(&store, "HIT", &page).unwrap();
            assert!(got.items.len() <= 100);
            seen.extend(got.items.into_iter().map(|n| n.name));
            match got.next_cursor {
                Some(c) => page = page.after(Some(c)),
                None => break,
            }
        }
        let expected: Vec<String> = (0..2500)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("n{i:04}"))
            .collect();
        assert_eq!(seen, expected);
    }
}
