//! The tools' behaviour: the official server's semantics and text, kgstore's
//! rules where they differ (each documented in docs/mcp.md), the mapping shared
//! with the memory-file importer, paging, and the extra tools. Every message is
//! also checked against the protocol schema (see `common`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Session, names};
use kgstore::formats::{ImportOptions, export_mcp, import_mcp};
use kgstore::{GraphRead, Node, OnDependents, Store};
use kgstore_mcp::{Revision, ServerOptions};
use serde_json::{Value, json};

const REV: Revision = Revision::V2025_11_25;

fn entity(name: &str, kind: &str, observations: &[&str]) -> Value {
    json!({"name": name, "entityType": kind, "observations": observations})
}

fn relation(from: &str, to: &str, kind: &str) -> Value {
    json!({"from": from, "to": to, "relationType": kind})
}

fn relations(graph: &Value) -> Vec<(String, String, String)> {
    graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap().to_owned(),
                r["relationType"].as_str().unwrap().to_owned(),
                r["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every page `tool` answers for `args`, following `nextCursor` to the end.
fn pages(s: &mut Session, tool: &str, mut args: Value) -> Vec<Value> {
    let mut pages = Vec::new();
    loop {
        let page = s.ok(tool, args.clone());
        let next = page.get("nextCursor").cloned();
        pages.push(page);
        match next {
            Some(cursor) => args["cursor"] = cursor,
            None => return pages,
        }
    }
}

/// The entity names of every page, in order.
fn paged_names(s: &mut Session, tool: &str, args: Value) -> Vec<String> {
    pages(s, tool, args).iter().flat_map(names).collect()
}

fn people(s: &mut Session) {
    s.ok(
        "create_entities",
        json!({"entities": [
            entity("Alice_Smith", "person", &["likes tea", "works at Anthropic"]),
            entity("Bob", "Person", &["drinks coffee"]),
            entity("Café Lumière", "Coffee Shop", &["on the corner"]),
        ]}),
    );
    s.ok(
        "create_relations",
        json!({"relations": [
            relation("Alice_Smith", "Bob", "knows"),
            relation("Bob", "Café Lumière", "works at"),
        ]}),
    );
}

#[test]
fn answers_are_rendered_like_the_official_server() {
    let mut s = Session::memory(REV);
    let result = s.call(
        "create_entities",
        json!({"entities": [entity("Alice", "person", &["likes tea"])]}),
    );
    // What `@modelcontextprotocol/server-memory` sends, byte for byte (JSON.stringify(x, null, 2)).
    assert_eq!(
        result["content"][0]["text"],
        "[\n  {\n    \"name\": \"Alice\",\n    \"entityType\": \"person\",\n    \"observations\": [\n      \"likes tea\"\n    ]\n  }\n]"
    );
    assert_eq!(
        result["structuredContent"],
        json!({"entities": [{"name": "Alice", "entityType": "person", "observations": ["likes tea"]}]})
    );
    let result = s.call("read_graph", json!({}));
    assert_eq!(
        result["content"][0]["text"],
        "{\n  \"entities\": [\n    {\n      \"name\": \"Alice\",\n      \"entityType\": \"person\",\n      \"observations\": [\n        \"likes tea\"\n      ]\n    }\n  ],\n  \"relations\": []\n}"
    );
    let result = s.call("delete_entities", json!({"entityNames": ["Alice"]}));
    assert_eq!(
        result["content"][0]["text"],
        "Entities deleted successfully"
    );
    assert_eq!(
        result["structuredContent"],
        json!({"success": true, "message": "Entities deleted successfully"})
    );
    // Before 2025-06-18 there is no structured content; the text is the same.
    let mut old = Session::memory(Revision::V2025_03_26);
    let result = old.call(
        "create_entities",
        json!({"entities": [entity("A\u{1}\"x", "t", &[])]}),
    );
    assert!(result.get("structuredContent").is_none());
    assert_eq!(
        result["isError"], true,
        "control characters are not allowed in names"
    );
    let result = old.call(
        "create_entities",
        json!({"entities": [entity("A \"x\" \\ é", "t", &["\u{7}\n"])]}),
    );
    assert_eq!(
        result["content"][0]["text"],
        "[\n  {\n    \"name\": \"A \\\"x\\\" \\\\ é\",\n    \"entityType\": \"t\",\n    \"observations\": [\n      \"\\u0007\\n\"\n    ]\n  }\n]"
    );
}

#[test]
fn create_entities_skips_what_exists_and_repeats_in_one_call() {
    let mut s = Session::memory(REV);
    let first = s.ok("create_entities", json!({"entities": [entity("A", "t", &["1"]), entity("A", "u", &["2"]), entity("B", "t", &[])]}));
    assert_eq!(names(&first), ["A", "B"]);
    assert_eq!(first["entities"][0]["entityType"], "t");
    let second = s.ok(
        "create_entities",
        json!({"entities": [entity("B", "t", &["new"]), entity("C", "t", &[])]}),
    );
    assert_eq!(names(&second), ["C"]);
    let graph = s.graph();
    assert_eq!(names(&graph), ["A", "B", "C"]);
    assert_eq!(
        graph["entities"][1]["observations"],
        json!([]),
        "an existing entity is left alone"
    );
}

#[test]
fn names_outside_kgstores_rules_fail_with_the_reason_and_change_nothing() {
    let mut s = Session::memory(REV);
    for (bad, reason) in [
        (String::new(), "must not be empty"),
        ("x".repeat(513), "at most 512"),
        ("tab\there".to_owned(), "control character"),
    ] {
        let text = s.fails(
            "create_entities",
            json!({"entities": [entity("fine", "t", &[]), entity(&bad, "t", &[])]}),
        );
        assert!(text.contains(reason), "{text}");
        // The call is one transaction: the valid entity was not created either.
        assert!(names(&s.graph()).is_empty());
    }
    // The next call works.
    s.ok(
        "create_entities",
        json!({"entities": [entity("fine", "t", &[])]}),
    );
    assert_eq!(names(&s.graph()), ["fine"]);
    // Such names cannot exist, so reading them finds nothing rather than failing.
    assert!(names(&s.ok("open_nodes", json!({"names": ["", "tab\there"]}))).is_empty());
    let text = s.fails(
        "add_observations",
        json!({"observations": [{"entityName": "", "contents": ["x"]}]}),
    );
    assert_eq!(text, "Entity with name  not found");
}

#[test]
fn relations_need_both_entities_and_the_call_is_all_or_nothing() {
    let mut s = Session::memory(REV);
    people(&mut s);
    let text = s.fails(
        "create_relations",
        json!({"relations": [relation("Bob", "Alice_Smith", "knows"), relation("Bob", "Nobody", "knows")]}),
    );
    assert_eq!(text, "Entity with name Nobody not found");
    let graph = s.graph();
    assert_eq!(
        relations(&graph).len(),
        2,
        "the first relation was not created either"
    );
    // Repeats (stored or within the call) are skipped; spellings come back verbatim.
    let created = s.ok(
        "create_relations",
        json!({"relations": [
            relation("Alice_Smith", "Bob", "knows"),
            relation("Bob", "Alice_Smith", "Is Friend Of"),
            relation("Bob", "Alice_Smith", "Is Friend Of"),
            relation("Alice_Smith", "Café Lumière", "Depends On"),
        ]}),
    );
    assert_eq!(
        relations(&created),
        [
            ("Bob".into(), "Is Friend Of".into(), "Alice_Smith".into()),
            (
                "Alice_Smith".into(),
                "Depends On".into(),
                "Café Lumière".into()
            )
        ]
    );
    let stored = s.server.store().get_edge(&kgstore::EdgeKey::new(
        "Alice_Smith",
        kgstore::RelationType::DependsOn,
        "Café Lumière",
    ));
    assert!(
        stored.is_ok(),
        "a spelling of a built-in relation is that relation"
    );
}

#[test]
fn two_spellings_of_one_relation_type_are_refused_with_the_reason() {
    let mut s = Session::memory(REV);
    people(&mut s);
    let text = s.fails(
        "create_relations",
        json!({"relations": [relation("Bob", "Café Lumière", "works_at")]}),
    );
    assert!(
        text.contains("'works at'") && text.contains("works_at"),
        "{text}"
    );
    let text = s.fails(
        "create_relations",
        json!({"relations": [relation("Alice_Smith", "Bob", "likes"), relation("Alice_Smith", "Bob", "Likes")]}),
    );
    assert!(text.contains("identifier 'likes'"), "{text}");
    assert_eq!(relations(&s.graph()).len(), 2);
    // Deleting needs the spelling the relation was created with.
    let message = s.ok(
        "delete_relations",
        json!({"relations": [relation("Bob", "Café Lumière", "works_at")]}),
    );
    assert_eq!(
        message["message"],
        "Deleted 0 of 1 relations. The rest matched nothing."
    );
    let message = s.ok(
        "delete_relations",
        json!({"relations": [relation("Bob", "Café Lumière", "works at")]}),
    );
    assert_eq!(message["message"], "Relations deleted successfully");
}

#[test]
fn add_observations_adds_only_new_ones_and_fails_whole_on_a_missing_entity() {
    let mut s = Session::memory(REV);
    people(&mut s);
    let added = s.ok(
        "add_observations",
        json!({"observations": [
            {"entityName": "Bob", "contents": ["drinks coffee", "plays chess", "plays chess"]},
            {"entityName": "Bob", "contents": ["plays chess", "reads"]},
        ]}),
    );
    assert_eq!(
        added,
        json!({"results": [
            {"entityName": "Bob", "addedObservations": ["plays chess"]},
            {"entityName": "Bob", "addedObservations": ["reads"]}
        ]})
    );
    let text = s.fails(
        "add_observations",
        json!({"observations": [{"entityName": "Bob", "contents": ["sings"]}, {"entityName": "Nobody", "contents": ["x"]}]}),
    );
    assert_eq!(text, "Entity with name Nobody not found");
    let bob = s.ok("open_nodes", json!({"names": ["Bob"]}));
    assert_eq!(
        bob["entities"][0]["observations"],
        json!(["drinks coffee", "plays chess", "reads"])
    );
}

#[test]
fn deletions_report_what_they_did_not_find() {
    let mut s = Session::memory(REV);
    people(&mut s);
    let message = s.ok(
        "delete_observations",
        json!({"deletions": [
            {"entityName": "Bob", "observations": ["drinks coffee", "never said"]},
            {"entityName": "Nobody", "observations": ["x"]}
        ]}),
    );
    assert_eq!(
        message["message"],
        "Deleted 1 of 3 observations. Entities not found: Nobody"
    );
    let message = s.ok(
        "delete_observations",
        json!({"deletions": [{"entityName": "Alice_Smith", "observations": ["likes tea"]}]}),
    );
    assert_eq!(message["message"], "Observations deleted successfully");
    let message = s.ok(
        "delete_entities",
        json!({"entityNames": ["Bob", "Nobody", "Bob"]}),
    );
    assert_eq!(
        message["message"],
        "Deleted 2 of 3 entities. Not found: Nobody"
    );
    // The relations touching Bob went with him.
    let graph = s.graph();
    assert_eq!(names(&graph), ["Alice_Smith", "Café Lumière"]);
    assert!(relations(&graph).is_empty());
}

/// An observation stored twice (the official server and `create_entities` keep
/// repeats) and asked for once is one requested observation found: the message
/// counted the stored copies removed ("Deleted 2 of 1 observations.").
#[test]
fn deleting_an_observation_stored_twice_counts_what_was_asked() {
    let mut s = Session::memory(REV);
    s.ok(
        "create_entities",
        json!({"entities": [entity("Echo", "person", &["hello", "hello", "bye"])]}),
    );
    let message = s.ok(
        "delete_observations",
        json!({"deletions": [{"entityName": "Echo", "observations": ["hello"]}]}),
    );
    assert_eq!(message["message"], "Observations deleted successfully");
    let message = s.ok(
        "delete_observations",
        json!({"deletions": [{"entityName": "Echo", "observations": ["bye", "gone"]}]}),
    );
    assert_eq!(message["message"], "Deleted 1 of 2 observations.");
    let graph = s.graph();
    assert_eq!(graph["entities"][0]["observations"], json!([]));
}

#[test]
fn deleting_an_entity_others_depend_on_detaches_them() {
    // A node given dependents through kgstore's own API (not the MCP tools).
    let store = Store::memory();
    store
        .create_node(Node::new("base", "lib").unwrap())
        .unwrap();
    store
        .create_node(Node::new("app", "bin").unwrap().with_dependency("base"))
        .unwrap();
    let mut s = Session::open(store.clone(), ServerOptions::default(), REV);
    s.ok("delete_entities", json!({"entityNames": ["base"]}));
    assert!(store.get_node("app").unwrap().dependencies.is_empty());
    // The library's default policy would have refused.
    store
        .create_node(Node::new("base2", "lib").unwrap())
        .unwrap();
    store
        .create_node(Node::new("app2", "bin").unwrap().with_dependency("base2"))
        .unwrap();
    assert!(store.delete_node("base2", OnDependents::Refuse).is_err());
}

#[test]
fn search_finds_words_in_any_order_case_and_accents_best_first() {
    let mut s = Session::memory(REV);
    people(&mut s);
    let found = |s: &mut Session, q: &str| names(&s.ok("search_nodes", json!({"query": q})));
    // What the official server's substring search finds, kgstore finds too.
    assert_eq!(found(&mut s, "tea"), ["Alice_Smith"]);
    // Bob's type spelled "Person" is kept as attribute text too (docs/mcp.md), so he ranks first.
    assert_eq!(found(&mut s, "PERSON"), ["Bob", "Alice_Smith"]);
    assert_eq!(found(&mut s, "CAFÉ"), ["Café Lumière"]);
    assert_eq!(found(&mut s, ""), ["Alice_Smith", "Bob", "Café Lumière"]);
    // Inside a word: "ffee" in "coffee" (an observation) and in "Coffee Shop" (the type as spelled).
    assert_eq!(found(&mut s, "ffee"), ["Bob", "Café Lumière"]);
    // The type as spelled ranks the shop first; Bob drinks coffee, so he follows.
    assert_eq!(found(&mut s, "coffee shop"), ["Café Lumière", "Bob"]);
    // What the substring search misses: words apart, in any order, without accents, typed so far.
    assert_eq!(found(&mut s, "Alice tea"), ["Alice_Smith"]);
    assert_eq!(found(&mut s, "tea ALICE"), ["Alice_Smith"]);
    assert_eq!(found(&mut s, "cafe"), ["Café Lumière"]);
    assert_eq!(found(&mut s, "lumiere corner"), ["Café Lumière"]);
    assert_eq!(found(&mut s, "anthro"), ["Alice_Smith"]);
    assert!(found(&mut s, "tiger").is_empty());
    // Relations with at least one end among the entities found, as before.
    let graph = s.ok("search_nodes", json!({"query": "Alice tea"}));
    assert_eq!(
        relations(&graph),
        [("Alice_Smith".into(), "knows".into(), "Bob".into())]
    );
    let graph = s.ok("open_nodes", json!({"names": ["Bob", "Nobody"]}));
    assert_eq!(names(&graph), ["Bob"]);
    assert_eq!(relations(&graph).len(), 2);
}

#[test]
fn search_answers_in_rank_order_with_substring_only_hits_last() {
    let mut s = Session::memory(REV);
    s.ok(
        "create_entities",
        json!({"entities": [
            entity("Steam_Engine", "machine", &["runs on coal"]),
            entity("Alice", "person", &["likes tea", "has a team"]),
            entity("Tea", "drink", &[]),
            entity("Zed", "person", &["tea, tea and more tea"]),
        ]}),
    );
    let answer = s.call("search_nodes", json!({"query": "tea"}));
    let graph = &answer["structuredContent"];
    // The entity named by the query first; then by how much tea they hold; the
    // substring-only hit ("tea" inside "steam") last.
    assert_eq!(names(graph), ["Tea", "Zed", "Alice", "Steam_Engine"]);
    // The text block is the structured answer rendered as the official server does.
    let text: Value = serde_json::from_str(answer["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, graph);
    // Pages of one continue the same order, each entity once.
    let seen = paged_names(&mut s, "search_nodes", json!({"query": "tea", "limit": 1}));
    assert_eq!(seen, names(graph));
    // A cursor of another query, or of read_graph, is refused and changes nothing.
    let first = s.ok("search_nodes", json!({"query": "tea", "limit": 1}));
    let error = s.fails(
        "search_nodes",
        json!({"query": "coal", "cursor": first["nextCursor"]}),
    );
    assert!(error.contains("cursor"), "{error}");
    let listing = s.ok("read_graph", json!({"limit": 1}));
    assert!(
        s.fails(
            "search_nodes",
            json!({"query": "tea", "cursor": listing["nextCursor"]})
        )
        .contains("cursor")
    );
    assert_eq!(
        names(&s.ok("search_nodes", json!({"query": "coal"}))),
        ["Steam_Engine"]
    );
}

/// The official server's `searchNodes`: the whole query, lower-cased, in the
/// name, the entity type or an observation, lower-cased.
fn official_hits(corpus: &[(String, String, Vec<String>)], query: &str) -> Vec<String> {
    let q = query.to_lowercase();
    corpus
        .iter()
        .filter(|(name, kind, observations)| {
            name.to_lowercase().contains(&q)
                || kind.to_lowercase().contains(&q)
                || observations.iter().any(|o| o.to_lowercase().contains(&q))
        })
        .map(|(name, ..)| name.clone())
        .collect()
}

#[test]
fn search_answers_hold_every_entity_the_official_substring_search_finds() {
    let words = [
        "tea",
        "Team",
        "steam",
        "café",
        "CAFE",
        "naïve",
        "Zoë",
        "x-ray",
        "e-mail",
        "don't",
        "Straße",
        "東京",
        "🍵",
        "42",
        "v1.2",
        "alice_smith",
        "O'Brien",
    ];
    let mut corpus = Vec::new();
    for i in 0..60usize {
        let pick = |k: usize| words[(i * 7 + k * 5) % words.len()];
        corpus.push((
            format!("{}_{i}", pick(0)),
            format!("{} kind", pick(1)),
            vec![
                format!("{} and {}", pick(2), pick(3)),
                format!("{}{}", pick(4), pick(5)),
            ],
        ));
    }
    let mut s = Session::memory(REV);
    let entities: Vec<Value> = corpus
        .iter()
        .map(|(n, k, o)| json!({"name": n, "entityType": k, "observations": o}))
        .collect();
    s.ok("create_entities", json!({"entities": entities}));
    let mut queries: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    queries.extend(
        [
            "ea", "a", "e", "and", "TEA AND", "d tea", "kind", "_1", "1", "-", " ", "'", ".2",
            "afé an", "mail", "京", "zoe", "naive", "strasse", "x", "ray and",
        ]
        .map(str::to_owned),
    );
    for query in &queries {
        let expected = official_hits(&corpus, query);
        // Every page, followed to the end, with a small page size.
        let all = paged_names(&mut s, "search_nodes", json!({"query": query, "limit": 7}));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{query:?}: an entity twice");
        for name in &expected {
            assert!(all.contains(name), "{query:?} misses {name}");
        }
        // With the default page (200) a client that never pages gets them all too.
        let first = names(&s.ok("search_nodes", json!({"query": query})));
        assert_eq!(first, all, "{query:?}");
    }
}

#[test]
fn reading_tools_answer_a_page_at_a_time() {
    let options = ServerOptions {
        default_limit: 7,
        ..ServerOptions::default()
    };
    let mut s = Session::open(Store::memory(), options, REV);
    let entities: Vec<Value> = (0..30)
        .map(|i| entity(&format!("e{i:02}"), "item", &[&format!("obs {i}")]))
        .collect();
    s.ok("create_entities", json!({"entities": entities}));
    let chain: Vec<Value> = (0..29)
        .map(|i| relation(&format!("e{i:02}"), &format!("e{:02}", i + 1), "next"))
        .collect();
    s.ok("create_relations", json!({"relations": chain}));

    // read_graph: every entity once and every relation once over all pages.
    let graph = pages(&mut s, "read_graph", json!({}));
    assert!(
        graph.iter().all(|page| names(page).len() <= 7),
        "the default limit bounds the page"
    );
    let seen: Vec<String> = graph.iter().flat_map(names).collect();
    let rels: Vec<_> = graph.iter().flat_map(relations).collect();
    assert_eq!(seen.len(), 30);
    assert_eq!(rels.len(), 29);
    let mut unique = rels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 29);

    // search_nodes pages the same way, in rank order: "obs 1" holds the word
    // "obs" everywhere and "1" exactly in e01, as a prefix in e10-e19.
    let search = pages(
        &mut s,
        "search_nodes",
        json!({"query": "OBS 1", "limit": 5}),
    );
    assert!(search.iter().all(|page| names(page).len() <= 5));
    let found: Vec<String> = search.iter().flat_map(names).collect();
    let mut expected = vec!["e01".to_owned()];
    expected.extend((10..20).map(|i| format!("e{i}")));
    expected.extend(
        (0..30)
            .filter(|i| *i != 1 && !(10..20).contains(i))
            .map(|i| format!("e{i:02}")),
    );
    assert_eq!(found, expected);
    let wanted = json!(["e29", "e03", "nope", "e03", "e17"]);
    let open = s.ok("open_nodes", json!({"names": wanted, "limit": 2}));
    assert_eq!(names(&open), ["e03", "e17"]);
    let open = s.ok(
        "open_nodes",
        json!({"names": wanted, "limit": 2, "cursor": open["nextCursor"]}),
    );
    assert_eq!(names(&open), ["e29"]);
    assert!(open.get("nextCursor").is_none());

    // Names only: no observations; the rest as usual.
    let slim = s.ok("read_graph", json!({"namesOnly": true, "limit": 3}));
    assert_eq!(
        slim["entities"][0],
        json!({"name": "e00", "entityType": "item"})
    );
    assert!(slim["nextCursor"].is_string());
    let text =
        s.call("search_nodes", json!({"query": "e2", "namesOnly": true}))["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(!text.contains("observations"), "{text}");
}

#[test]
fn the_server_and_the_memory_file_importer_map_alike() {
    // A memory file as the official server writes it, imported with the CLI's importer…
    let file = [
        r#"{"type":"entity","name":"John_Smith","entityType":"Person","observations":["Speaks Spanish"]}"#,
        r#"{"type":"entity","name":"Anthropic","entityType":"organization","observations":[]}"#,
        r#"{"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works at"}"#,
        r#"{"type":"relation","from":"Anthropic","to":"John_Smith","relationType":"Depends On"}"#,
    ]
    .join("\n");
    let imported = Store::memory();
    import_mcp(
        &imported,
        file.as_bytes(),
        file.len() as u64,
        ImportOptions::default(),
        |_| {},
    )
    .unwrap();
    // …reads back through the server with every spelling as it was.
    let mut s = Session::open(imported.clone(), ServerOptions::default(), REV);
    let graph = s.graph();
    assert_eq!(
        graph["entities"][1],
        json!({"name": "John_Smith", "entityType": "Person", "observations": ["Speaks Spanish"]})
    );
    let mut rels = relations(&graph);
    rels.sort();
    assert_eq!(
        rels,
        [
            ("Anthropic".into(), "Depends On".into(), "John_Smith".into()),
            ("John_Smith".into(), "works at".into(), "Anthropic".into())
        ]
    );
    // The same calls on an empty store make the same store: identical exports.
    let served = Store::memory();
    let mut s = Session::open(served.clone(), ServerOptions::default(), REV);
    s.ok("create_entities", json!({"entities": [entity("John_Smith", "Person", &["Speaks Spanish"]), entity("Anthropic", "organization", &[])]}));
    s.ok("create_relations", json!({"relations": [relation("John_Smith", "Anthropic", "works at"), relation("Anthropic", "John_Smith", "Depends On")]}));
    let export = |store: &Store| {
        let mut out = Vec::new();
        export_mcp(store, &mut out, |_| {}).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(export(&imported), export(&served));
    let node = served.get_node("John_Smith").unwrap();
    assert_eq!(node.node_type, "person");
    assert_eq!(node.attributes["mcp"], json!({"entityType": "Person"}));
}

#[test]
fn extra_tools_are_offered_only_when_asked_for() {
    let mut plain = Session::memory(REV);
    let answer = plain.request(
        "tools/call",
        json!({"name": "traverse", "arguments": {"name": "x"}}),
    );
    assert_eq!(answer["error"]["code"], -32602);
    assert_eq!(answer["error"]["message"], "Unknown tool: traverse");

    let options = ServerOptions {
        extra_tools: true,
        ..ServerOptions::default()
    };
    let mut s = Session::open(Store::memory(), options, REV);
    people(&mut s);
    s.ok(
        "create_entities",
        json!({"entities": [entity("Dan", "person", &[])]}),
    );
    s.ok(
        "create_relations",
        json!({"relations": [relation("Dan", "Alice_Smith", "knows")]}),
    );
    let reached = s.ok("traverse", json!({"name": "Alice_Smith", "depth": 2}));
    assert_eq!(
        reached["entities"],
        json!([
            {"name": "Bob", "entityType": "Person", "depth": 1},
            {"name": "Dan", "entityType": "person", "depth": 1},
            {"name": "Café Lumière", "entityType": "Coffee Shop", "depth": 2}
        ])
    );
    assert_eq!(relations(&reached).len(), 3);
    assert_eq!(reached["truncated"], false);
    let out = s.ok(
        "traverse",
        json!({"name": "Alice_Smith", "direction": "out", "relationTypes": ["works at"]}),
    );
    assert_eq!(out["entities"], json!([]));
    let limited = s.ok(
        "traverse",
        json!({"name": "Alice_Smith", "depth": 2, "limit": 1}),
    );
    assert_eq!(limited["truncated"], true);
    assert_eq!(
        s.fails("traverse", json!({"name": "Nobody"})),
        "Entity with name Nobody not found"
    );

    let path = s.ok(
        "shortest_path",
        json!({"from": "Dan", "to": "Café Lumière"}),
    );
    assert_eq!(
        path["path"],
        json!(["Dan", "Alice_Smith", "Bob", "Café Lumière"])
    );
    assert_eq!(
        relations(&path)[2],
        ("Bob".into(), "works at".into(), "Café Lumière".into())
    );
    let none = s.ok(
        "shortest_path",
        json!({"from": "Café Lumière", "to": "Dan", "direction": "out"}),
    );
    assert_eq!(none, json!({"found": false, "path": [], "relations": []}));

    let stats = s.ok("graph_stats", json!({}));
    assert_eq!(stats["entities"], 4);
    assert_eq!(stats["relations"], 3);
    assert_eq!(stats["entityTypes"], json!({"coffee_shop": 1, "person": 3}));
    assert_eq!(stats["relationTypes"], json!({"knows": 2, "works_at": 1}));
}

#[test]
fn a_sqlite_store_keeps_what_the_tools_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kg.db", dir.path().display());
    {
        let mut s = Session::open(kgstore::open(&url).unwrap(), ServerOptions::default(), REV);
        people(&mut s);
        s.fails(
            "create_relations",
            json!({"relations": [relation("Bob", "Nobody", "x")]}),
        );
    }
    let mut s = Session::open(kgstore::open(&url).unwrap(), ServerOptions::default(), REV);
    let graph = s.graph();
    assert_eq!(names(&graph), ["Alice_Smith", "Bob", "Café Lumière"]);
    assert_eq!(relations(&graph).len(), 2);
}
