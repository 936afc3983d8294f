//! How `search_nodes` finds its entities: this one function.
//!
//! Today it has the official memory server's semantics — an entity matches if
//! the whole query, ignoring case, is a substring of its name, its entity type
//! (as the client spelled it) or one of its observations — built on the
//! store's text filter: [`NodeFilter::containing`] gives the name and
//! observation part with kgstore's reference matching, and the entity type is
//! added here. Every backend finishes the text filter in memory after reading
//! each node (none can answer a substring query from an index), so one pass
//! over the nodes with both tests costs what the text filter alone costs.
//!
//! Ranked full-text search (tokenised, accent-folded, BM25) replaces the body
//! of [`search`] when the library offers it; the tools, their pagination and
//! their answers stay as they are.

use kgstore::formats::entity_type_of;
use kgstore::{Cursor, GraphRead, Node, NodeFilter, Page, PageRequest, Result};

/// How many nodes one read of the scan asks the store for.
const SCAN_CHUNK: usize = 1024;

/// The entities matching `query`, a page at a time, in name order. The page's
/// cursor is a kgstore node cursor: the next page starts after its last entity.
pub fn search<R: GraphRead>(reader: &R, query: &str, page: &PageRequest) -> Result<Page<Node>> {
    page.check()?;
    let text = NodeFilter::default().containing(query);
    let needle = query.to_lowercase();
    let matches =
        |node: &Node| text.matches(node) || entity_type_of(node).to_lowercase().contains(&needle);
    let everything = NodeFilter::default();
    let mut scan = PageRequest::first(SCAN_CHUNK).after(page.cursor.clone());
    let mut items = Vec::new();
    loop {
        let chunk = reader.list_nodes(&everything, &scan)?;
        for node in chunk.items {
            if !matches(&node) {
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
