//! Ranked full-text search: quality on a fixed corpus, pagination, isolation,
//! and exact agreement with the naive reference (and with the memory backend)
//! on random graphs, inside write transactions and after rollbacks.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::{Fixture, kind_of};
use crate::search::reference_search;
use crate::{
    Cursor, Error, ErrorKind, GraphRead, MatchKind, Node, OnDependents, Page, SearchField,
    SearchHit, SearchQuery, Store,
};

/// Every hit of a search, page by page, with the cursors between.
pub fn all_pages(r: &impl GraphRead, query: &SearchQuery) -> Vec<Page<SearchHit>> {
    let mut pages = Vec::new();
    let mut q = query.clone();
    loop {
        let page = r.search(&q).unwrap();
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(c) => q.cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "pagination does not end");
    }
}

/// The names of every hit, in order.
pub fn hit_names(r: &impl GraphRead, query: &SearchQuery) -> Vec<String> {
    all_pages(r, query)
        .into_iter()
        .flat_map(|p| p.items)
        .map(|h| h.name)
        .collect()
}

/// What the MCP memory server's `search_nodes` finds: nodes whose name, type or
/// an observation holds the whole query, ignoring case.
pub fn official_substring_hits(store: &Store, query: &str) -> BTreeSet<String> {
    let needle = query.to_lowercase();
    super::dump(store)
        .0
        .into_iter()
        .filter(|n| {
            n.name.to_lowercase().contains(&needle)
                || n.node_type.to_lowercase().contains(&needle)
                || n.observations
                    .iter()
                    .any(|o| o.to_lowercase().contains(&needle))
        })
        .map(|n| n.name)
        .collect()
}

/// A small knowledge graph of the kind agents keep.
pub fn quality_corpus(s: &Store) {
    let node = |name: &str, ty: &str, obs: &[&str]| {
        obs.iter()
            .fold(Node::new(name, ty).unwrap(), |n, o| n.with_observation(*o))
    };
    s.create_nodes([
        node(
            "Alice_Smith",
            "person",
            &["Drinks green tea every morning", "Works at Anthropic"],
        ),
        node("Alice Cooper", "person", &["Rock singer from Detroit"]),
        node("Bob", "person", &["Likes Alice's parties", "Drinks coffee"]),
        node("Tea", "beverage", &["A hot drink made from leaves"]),
        node("Teapot Dome", "event", &["A scandal in the 1920s"]),
        node("Steam Engine", "machine", &["Uses steam to do work"]),
        node(
            "Café Lumière",
            "place",
            &["Serves tea and crêpes", "Open every day"],
        ),
        node("Σοφία", "person", &["Φιλόσοφος from Athens"]),
        node("Anthropic", "organisation", &["Makes Claude"]),
        node("Mr. Bean", "character", &["Played by Rowan Atkinson"]),
    ])
    .unwrap();
    s.update_node(
        node("Bob", "person", &["Likes Alice's parties", "Drinks coffee"])
            .with_attribute("employer", json!("Initech"))
            .with_attribute("phone", json!(5551234)),
        None,
    )
    .unwrap();
}

pub fn search_quality_beats_substring(f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    // Queries the substring search answers with nothing find the right node first.
    for (query, first) in [
        ("Alice tea", "Alice_Smith"),
        ("alice smith", "Alice_Smith"),
        ("smith alice", "Alice_Smith"),
        ("green teas", "Alice_Smith"),
        ("works anthropic", "Alice_Smith"),
        ("cafe", "Café Lumière"),
        ("CAFE lumiere", "Café Lumière"),
        ("lumière café", "Café Lumière"),
        ("crepes", "Café Lumière"),
        ("ΣΟΦΙΑ", "Σοφία"),
        ("initech", "Bob"),
        ("5551234", "Bob"),
        ("tea", "Tea"),
        ("anthropic", "Anthropic"),
        ("mr bean", "Mr. Bean"),
        ("Alic", "Alice Cooper"),
    ] {
        let hits = s.search(&SearchQuery::new(query)).unwrap().items;
        assert_eq!(
            hits.first().map(|h| h.name.as_str()),
            Some(first),
            "{query}: {hits:#?}"
        );
    }
    // Every node the substring search finds is found too.
    for query in [
        "tea", "Tea", "ice", "PERSON", "e", "alice", "'s", "ea", "works at", "n", "  tea  ", "-",
        "1920s", "from", "steam to", "S PAR", "é",
    ] {
        let found: BTreeSet<String> = hit_names(s, &SearchQuery::new(query).limit(3))
            .into_iter()
            .collect();
        let official = official_substring_hits(s, query.trim());
        assert!(
            official.is_subset(&found),
            "{query}: missing {:?}",
            official.difference(&found).collect::<Vec<_>>()
        );
    }
    // Substring-only hits come after the ranked ones, and say so.
    let hits = hit_names(s, &SearchQuery::new("tea"));
    assert_eq!(hits[0], "Tea");
    let all = all_pages(s, &SearchQuery::new("tea").limit(100));
    let items = &all[0].items;
    let steam = items.iter().find(|h| h.name == "Steam Engine").unwrap();
    assert_eq!(steam.kind, MatchKind::Substring);
    assert_eq!(steam.score, 0.0);
    assert_eq!(
        steam.matched,
        [SearchField::Name, SearchField::Observations]
    );
    let last_ranked = items
        .iter()
        .rposition(|h| h.kind == MatchKind::Terms)
        .unwrap();
    let first_substring = items
        .iter()
        .position(|h| h.kind == MatchKind::Substring)
        .unwrap();
    assert!(last_ranked < first_substring);
    let alice = items.iter().find(|h| h.name == "Alice_Smith").unwrap();
    assert_eq!(alice.kind, MatchKind::Terms);
    assert_eq!(alice.matched, [SearchField::Observations]);
    assert!(alice.score > 0.0);
}

pub fn search_filters_by_type_and_lists_on_empty_query(f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    assert_eq!(
        hit_names(s, &SearchQuery::new("alice").of_type("person")),
        ["Alice Cooper", "Alice_Smith", "Bob"]
    );
    assert_eq!(
        hit_names(
            s,
            &SearchQuery::new("alice").of_type("person").of_type("place")
        ),
        ["Alice Cooper", "Alice_Smith", "Bob"]
    );
    assert!(hit_names(s, &SearchQuery::new("alice").of_type("machine")).is_empty());
    // An empty query lists every node (of the types asked), by name.
    let everything = hit_names(s, &SearchQuery::new("  ").limit(3));
    assert_eq!(everything.len(), 10);
    assert!(everything.windows(2).all(|w| w[0] < w[1]));
    let people = all_pages(s, &SearchQuery::new("").of_type("person"));
    assert!(
        people
            .iter()
            .flat_map(|p| &p.items)
            .all(|h| h.kind == MatchKind::All)
    );
    assert_eq!(people[0].items.len(), 4);
    // A query without words finds its substring.
    let dashes = s.search(&SearchQuery::new("'")).unwrap().items;
    assert_eq!(dashes.len(), 1);
    assert_eq!(dashes[0].name, "Bob");
    assert_eq!(dashes[0].kind, MatchKind::Substring);
    // Nothing matches: an empty page without a cursor.
    let none = s.search(&SearchQuery::new("zebra")).unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

pub fn search_refuses_bad_queries_and_cursors(f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    let err = |q: SearchQuery| kind_of(s.search(&q));
    assert_eq!(err(SearchQuery::new("x").limit(0)), ErrorKind::InvalidInput);
    assert_eq!(
        err(SearchQuery::new("x").of_type("Bad Type")),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        err(SearchQuery::new(
            "x".repeat(crate::search::MAX_QUERY_BYTES + 1)
        )),
        ErrorKind::InvalidInput
    );
    let page = s.search(&SearchQuery::new("alice").limit(1)).unwrap();
    let cursor = page.next_cursor.unwrap();
    // A cursor of another search, of a listing, or garbage.
    let foreign = s.search(&SearchQuery::new("tea").after(Some(cursor.clone())));
    assert!(foreign.unwrap_err().to_string().contains("another search"));
    assert_eq!(
        err(SearchQuery::new("alice")
            .of_type("person")
            .after(Some(cursor))),
        ErrorKind::InvalidInput
    );
    for bad in ["", "n61", "sffff", "s0.0.0.0.0.0..0.zz"] {
        let bad: Cursor = bad.parse().unwrap();
        assert_eq!(
            err(SearchQuery::new("alice").after(Some(bad))),
            ErrorKind::InvalidInput
        );
    }
}

pub fn search_hostile_queries_are_just_text(f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    s.create_node(
        Node::new("quotes \"NEAR\" *", "thing")
            .unwrap()
            .with_observation("a OR b AND NOT c; DROP TABLE nodes; -- ^x* \u{0}nul"),
    )
    .unwrap();
    for query in [
        "\"",
        "\"\"",
        "*",
        "tea*",
        "^tea",
        "NEAR(tea alice)",
        "a OR b",
        "NOT c",
        "-tea",
        "tea:",
        "name:tea",
        "'; DROP TABLE nodes; --",
        "%",
        "_",
        "\\",
        "\u{0}nul",
        "\u{10FFFF}",
        "\u{301}",
        "🍵",
        "e\u{301}",
        "(",
        ")",
        "{tea}",
        "[t]ea",
    ] {
        for limit in [1, 50] {
            check_against_reference(s, &SearchQuery::new(query).limit(limit));
        }
        let found: BTreeSet<String> = hit_names(s, &SearchQuery::new(query)).into_iter().collect();
        let official = official_substring_hits(s, query.trim());
        assert!(official.is_subset(&found), "{query:?}");
    }
    assert_eq!(
        hit_names(s, &SearchQuery::new("DROP TABLE")),
        ["quotes \"NEAR\" *"]
    );
    assert_eq!(s.count_nodes().unwrap(), 11);
}

pub fn search_pages_are_stable_under_writes(f: Fixture) {
    let s = &f.store;
    s.create_nodes((0..30).map(|i| {
        Node::new(format!("n{i:02}"), "thing")
            .unwrap()
            .with_observation(format!("tea {}", "leaf ".repeat(i % 7)))
    }))
    .unwrap();
    let query = SearchQuery::new("tea leaf").limit(4);
    let whole = hit_names(s, &query.clone().limit(100));
    assert_eq!(whole.len(), 30);
    let mut paged = Vec::new();
    for page in all_pages(s, &query) {
        assert!(page.items.len() <= 4);
        paged.extend(page.items.into_iter().map(|h| h.name));
    }
    assert_eq!(paged, whole, "pages join up to the whole result");

    // Writes between pages: nodes that stay unchanged are neither skipped nor repeated.
    let mut seen = Vec::new();
    let mut q = query.clone();
    let mut round = 0;
    loop {
        let page = s.search(&q).unwrap();
        seen.extend(page.items.iter().map(|h| h.name.clone()));
        round += 1;
        s.write(|tx| {
            for i in 0..3 {
                let name = format!("new{round}-{i}");
                tx.create_node(Node::new(name, "thing")?.with_observation("tea leaf leaf tea"))?;
            }
            tx.delete_node(&format!("n{:02}", 29 - round), OnDependents::Refuse)?;
            Ok(())
        })
        .unwrap();
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let unchanged: Vec<&String> = whole
        .iter()
        .filter(|n| {
            let i: usize = n[1..].parse().unwrap();
            i + round < 29 || i > 28
        })
        .collect();
    for name in unchanged {
        assert_eq!(
            seen.iter().filter(|s| *s == name).count(),
            1,
            "{name} skipped or repeated: {seen:?}"
        );
    }
}

pub fn search_sees_own_writes_and_rollbacks(f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    let before = all_pages(s, &SearchQuery::new("tea").limit(3));
    let err = s
        .write(|tx| {
            tx.create_node(Node::new("Oolong", "beverage")?.with_observation("A tea from Taiwan"))?;
            tx.delete_node("Tea", OnDependents::Refuse)?;
            let mut alice = tx.get_node("Alice_Smith")?;
            alice.observations = vec!["Quit caffeine".into()];
            tx.update_node(alice, None)?;
            let inside = hit_names(tx, &SearchQuery::new("tea"));
            assert!(inside.contains(&"Oolong".to_string()), "{inside:?}");
            assert!(!inside.contains(&"Tea".to_string()));
            assert!(!inside.contains(&"Alice_Smith".to_string()));
            assert_eq!(
                hit_names(tx, &SearchQuery::new("caffeine")),
                ["Alice_Smith"]
            );
            // A reader outside sees none of it.
            assert_eq!(all_pages(s, &SearchQuery::new("tea").limit(3)), before);
            check_against_reference(tx, &SearchQuery::new("tea").limit(2));
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(all_pages(s, &SearchQuery::new("tea").limit(3)), before);
    assert!(hit_names(s, &SearchQuery::new("oolong")).is_empty());
    // Committed, the same changes are seen by everyone.
    s.write(|tx| {
        tx.create_node(Node::new("Oolong", "beverage")?.with_observation("A tea from Taiwan"))?;
        tx.delete_node("Tea", OnDependents::Refuse)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(hit_names(s, &SearchQuery::new("oolong")), ["Oolong"]);
    assert!(!hit_names(s, &SearchQuery::new("tea")).contains(&"Tea".to_string()));
    check_against_reference(s, &SearchQuery::new("tea").limit(2));
}

/// Nodes written in one load, more than a backend might index at once (SQLite
/// indexes written nodes later, 256 at a time: `search_stale`, format 8).
const LOADED: usize = 300;

fn loaded_node(i: usize) -> Node {
    Node::new(
        format!("load{i:04}"),
        if i.is_multiple_of(3) { "part" } else { "item" },
    )
    .unwrap()
    .with_observation(format!("loadword{i} common ware"))
    .with_attribute("size", json!(i % 7))
}

/// A search right after a large load, without `optimize`, sees every node:
/// on a snapshot taken right after it, inside the loading transaction, on the
/// store, after updates and deletions of loaded nodes, and after a reopen; with
/// the reference's pages and scores each time.
pub fn search_sees_every_node_right_after_a_large_load(mut f: Fixture) {
    let s = &f.store;
    quality_corpus(s);
    s.create_nodes((0..LOADED).map(loaded_node)).unwrap();
    // A snapshot taken before any search.
    let r = s.read().unwrap();
    assert_eq!(
        hit_names(&r, &SearchQuery::new("loadword234")),
        ["load0234"]
    );
    assert_eq!(
        hit_names(&r, &SearchQuery::new("common").limit(128)).len(),
        LOADED
    );
    check_against_reference(&r, &SearchQuery::new("common ware").limit(128));
    check_against_reference(&r, &SearchQuery::new("tea").limit(3));
    drop(r);
    // More loaded, updated and deleted inside one transaction that searches its
    // own writes.
    s.write(|tx| {
        tx.create_nodes((LOADED..2 * LOADED).map(loaded_node))?;
        let mut changed = tx.get_node("load0007")?;
        changed.observations = vec!["Now a zebra".into()];
        tx.update_node(changed, None)?;
        tx.delete_node("load0008", OnDependents::Refuse)?;
        assert_eq!(
            hit_names(tx, &SearchQuery::new("loadword599")),
            ["load0599"]
        );
        assert_eq!(hit_names(tx, &SearchQuery::new("zebra")), ["load0007"]);
        // (Also a prefix of loadword70…79 and 700…799: those nodes are hits.)
        let seven = hit_names(tx, &SearchQuery::new("loadword7"));
        assert!(seven.contains(&"load0070".to_string()), "{seven:?}");
        assert!(!seven.contains(&"load0007".to_string()), "{seven:?}");
        let eight = hit_names(tx, &SearchQuery::new("loadword8"));
        assert!(eight.contains(&"load0080".to_string()), "{eight:?}");
        assert!(!eight.contains(&"load0008".to_string()), "{eight:?}");
        check_against_reference(tx, &SearchQuery::new("common").limit(256));
        Ok(())
    })
    .unwrap();
    assert_eq!(hit_names(s, &SearchQuery::new("zebra")), ["load0007"]);
    // Single writes after another load: updates and deletions of loaded nodes.
    s.create_nodes((2 * LOADED..3 * LOADED).map(loaded_node))
        .unwrap();
    let mut changed = s.get_node("load0601").unwrap();
    changed.observations = vec!["A zebra as well".into()];
    s.update_node(changed, None).unwrap();
    s.delete_node("load0602", OnDependents::Refuse).unwrap();
    s.delete_node("load0009", OnDependents::Refuse).unwrap();
    assert_eq!(
        hit_names(s, &SearchQuery::new("zebra")),
        ["load0007", "load0601"]
    );
    assert!(hit_names(s, &SearchQuery::new("loadword602")).is_empty());
    assert_eq!(hit_names(s, &SearchQuery::new("loadword899")), ["load0899"]);
    // Inside words (the substring guarantee).
    assert_eq!(hit_names(s, &SearchQuery::new("oadword898")), ["load0898"]);
    check_against_reference(s, &SearchQuery::new("ebra"));
    check_against_reference(s, &SearchQuery::new("common").limit(512));
    let before = all_pages(s, &SearchQuery::new("common ware zebra").limit(256));
    if f.reopen() {
        let s = &f.store;
        assert_eq!(
            all_pages(s, &SearchQuery::new("common ware zebra").limit(256)),
            before
        );
        check_against_reference(s, &SearchQuery::new("loadword32").limit(5));
    }
}

pub fn search_survives_reopen(mut f: Fixture) {
    quality_corpus(&f.store);
    let query = SearchQuery::new("alice tea").limit(2);
    let before = all_pages(&f.store, &query);
    if !f.reopen() {
        return;
    }
    assert_eq!(all_pages(&f.store, &query), before);
    check_against_reference(&f.store, &query);
    f.store
        .create_node(
            Node::new("Late", "thing")
                .unwrap()
                .with_observation("alice"),
        )
        .unwrap();
    check_against_reference(&f.store, &query);
}

/// Every page of `query` on `r` equals the reference's, cursors included.
pub fn check_against_reference(r: &impl GraphRead, query: &SearchQuery) {
    let mut q = query.clone();
    loop {
        let got = r.search(&q).unwrap();
        let want = r.with_reader(|t| reference_search(t, &q)).unwrap();
        assert_eq!(got, want, "search {q:?}");
        match got.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return,
        }
    }
}

// ----- random graphs -----

const WORDS: [&str; 20] = [
    "tea",
    "Tea",
    "team",
    "steam",
    "teapot",
    "alice",
    "Alice",
    "Café",
    "cafe",
    "CAFÉ",
    "green",
    "σοφία",
    "ΣΟΦΙΑ",
    "東京",
    "naïve",
    "ﬁsh",
    "x",
    "x1",
    "42",
    "e",
];
const SEPARATORS: [&str; 6] = [" ", "_", "-", ", ", "", "'"];
const TYPES: [&str; 3] = ["person", "place", "tea_kind"];

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec((0..WORDS.len(), 0..SEPARATORS.len()), 1..5).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(w, s)| format!("{}{}", WORDS[w], SEPARATORS[s]))
            .collect()
    })
}

/// A random node: name `k{key} <text>` so that names stay distinct per key.
#[derive(Clone, Debug)]
pub struct RandomNode {
    key: usize,
    ty: usize,
    name: String,
    observations: Vec<String>,
    attribute: Option<String>,
}

impl RandomNode {
    fn node(&self) -> Node {
        let mut node = Node::new(format!("k{} {}", self.key, self.name), TYPES[self.ty]).unwrap();
        node.observations = self.observations.clone();
        if let Some(a) = &self.attribute {
            node = node.with_attribute("a", json!({"text": a, "n": self.key}));
        }
        node
    }
}

fn random_node() -> impl Strategy<Value = RandomNode> {
    (
        0..12usize,
        0..TYPES.len(),
        text(),
        proptest::collection::vec(text(), 0..3),
        proptest::option::of(text()),
    )
        .prop_map(|(key, ty, name, observations, attribute)| RandomNode {
            key,
            ty,
            name,
            observations,
            attribute,
        })
}

/// One step of a random history.
#[derive(Clone, Debug)]
pub enum SearchOp {
    /// Creates or replaces the node of a key.
    Put(RandomNode),
    /// Deletes the node of a key.
    Delete(usize),
    /// Several steps in one transaction, committed or rolled back; searches
    /// inside it must agree with the reference too.
    Txn(Vec<SearchOp>, bool),
}

fn simple_search_op() -> impl Strategy<Value = SearchOp> {
    prop_oneof![
        4 => random_node().prop_map(SearchOp::Put),
        1 => (0..12usize).prop_map(SearchOp::Delete),
    ]
}

fn search_op() -> impl Strategy<Value = SearchOp> {
    prop_oneof![
        6 => simple_search_op(),
        2 => (proptest::collection::vec(simple_search_op(), 1..6), proptest::bool::weighted(0.6))
            .prop_map(|(ops, commit)| SearchOp::Txn(ops, commit)),
    ]
}

/// A random query: words or pieces of words, maybe a type, a small page.
fn random_query() -> impl Strategy<Value = SearchQuery> {
    let piece = (0..WORDS.len(), 0..4usize, 0..SEPARATORS.len()).prop_map(|(w, cut, s)| {
        let word: Vec<char> = WORDS[w].chars().collect();
        let piece: String = match cut {
            0 => word.iter().collect(),
            1 => word[..word.len().div_ceil(2)].iter().collect(),
            2 => word[word.len() / 2..].iter().collect(),
            _ => word[1.min(word.len() - 1)..].iter().collect(),
        };
        format!("{piece}{}", SEPARATORS[s])
    });
    (
        proptest::collection::vec(piece, 0..4),
        proptest::option::of(0..TYPES.len()),
        1..5usize,
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(pieces, ty, limit, leading)| {
            let mut text: String = pieces.concat();
            if leading {
                text.insert(0, '-');
            }
            let mut q = SearchQuery::new(text).limit(limit);
            if let Some(t) = ty {
                q = q.of_type(TYPES[t]);
            }
            q
        })
}

fn put(w: &mut crate::WriteTx<'_>, n: &RandomNode) -> Result<(), Error> {
    let node = n.node();
    // One node per key: replace whatever the key held.
    let prefix = format!("k{} ", n.key);
    let held: Vec<String> = hit_names(w, &SearchQuery::new(""))
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect();
    for name in held {
        if name != node.name {
            w.delete_node(&name, OnDependents::Refuse)?;
        }
    }
    w.upsert_node(node).map(|_| ())
}

fn delete(w: &mut crate::WriteTx<'_>, key: usize) -> Result<(), Error> {
    let prefix = format!("k{key} ");
    for name in hit_names(w, &SearchQuery::new("")) {
        if name.starts_with(&prefix) {
            w.delete_node(&name, OnDependents::Refuse)?;
        }
    }
    Ok(())
}

fn apply(w: &mut crate::WriteTx<'_>, op: &SearchOp, queries: &[SearchQuery]) -> Result<(), Error> {
    match op {
        SearchOp::Put(n) => put(w, n),
        SearchOp::Delete(k) => delete(w, *k),
        SearchOp::Txn(ops, _) => {
            for op in ops {
                apply(w, op, queries)?;
            }
            for q in queries {
                check_against_reference(w, q);
            }
            Ok(())
        }
    }
}

fn run_history(s: &Store, mirror: &Store, ops: &[SearchOp], queries: &[SearchQuery]) {
    for store in [s, mirror] {
        store
            .write(|w| {
                for name in hit_names(w, &SearchQuery::new("")) {
                    w.delete_node(&name, OnDependents::Refuse)?;
                }
                Ok(())
            })
            .unwrap();
    }
    for op in ops {
        let commit = !matches!(op, SearchOp::Txn(_, false));
        for store in [s, mirror] {
            let outcome = store.write(|w| {
                apply(w, op, queries)?;
                if commit {
                    Ok(())
                } else {
                    Err(Error::invalid_input("history", "rolled back on purpose"))
                }
            });
            assert_eq!(outcome.is_ok(), commit, "{op:?}: {outcome:?}");
        }
        for q in queries {
            check_against_reference(s, q);
            assert_eq!(
                all_pages(s, q),
                all_pages(mirror, q),
                "backend and memory differ: {q:?}"
            );
        }
    }
}

/// How many random histories the search agreement runs: `KGSTORE_SEARCH_CASES`, default 24.
pub fn search_cases() -> u32 {
    std::env::var("KGSTORE_SEARCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

pub fn search_agrees_with_reference_and_memory(f: Fixture) {
    let mirror = Store::memory();
    let config = Config {
        cases: search_cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (
        proptest::collection::vec(search_op(), 1..12),
        proptest::collection::vec(random_query(), 1..5),
    );
    let outcome = runner.run(&strategy, |(ops, queries)| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_history(&f.store, &mirror, &ops, &queries)
        }))
        .map_err(|e| {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            TestCaseError::fail(why)
        })
    });
    if let Err(e) = outcome {
        panic!("search disagrees: {e}");
    }
    let report = f.store.check().unwrap();
    assert!(report.is_ok(), "check found {:?}", report.problems);
}
