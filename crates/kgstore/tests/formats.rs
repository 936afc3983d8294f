//! Import and export round trips: native JSON Lines, MCP memory files, GraphML, DOT.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::collections::BTreeSet;

use kgstore::formats::{self, DotOptions, ImportOptions};
use kgstore::{Edge, ErrorKind, GraphRead, Node, RelationType, SchemaTarget, Store};
use kgstore_core::suite::{dump, scrambled_graph};
use serde_json::{Value, json};

fn memory() -> Store {
    kgstore::open("memory://").unwrap()
}

fn rich_store() -> Store {
    let s = memory();
    s.set_schema(
        SchemaTarget::NodeType("crate".into()),
        json!({"type": "object"}),
    )
    .unwrap();
    s.write(|tx| {
        tx.create_node(
            Node::new("serde", "crate")?
                .with_attribute("v", json!("1.0"))
                .with_tag("x"),
        )?;
        tx.create_node(
            Node::new("odd \"name\" <&> \\ 😀", "crate")?
                .with_observation("nul \0, newline \n, tab \t, U+FFFE \u{FFFE}")
                .with_dependency("serde"),
        )?;
        tx.create_edge(
            Edge::new("odd \"name\" <&> \\ 😀", RelationType::DependsOn, "serde")?
                .with_weight(0.5)
                .bidirectional(),
        )?;
        Ok(())
    })
    .unwrap();
    scrambled_graph(&s, 30);
    s
}

fn export_jsonl(s: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    formats::export_jsonl(s, &mut out, |_| {}).unwrap();
    out
}

#[test]
fn native_jsonl_round_trips_exactly() {
    let source = rich_store();
    let text = export_jsonl(&source);
    let target = memory();
    let report = formats::import_jsonl(
        &target,
        &text[..],
        text.len() as u64,
        ImportOptions::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(report.nodes, source.count_nodes().unwrap());
    assert_eq!(report.edges, source.count_edges().unwrap());
    assert_eq!(report.schemas, 1);
    assert_eq!(dump(&target), dump(&source));
    assert_eq!(export_jsonl(&target), text);
    // With batches, the result is the same.
    let batched = memory();
    formats::import_jsonl(
        &batched,
        &text[..],
        0,
        ImportOptions {
            batch_size: Some(7),
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(dump(&batched), dump(&source));
}

#[test]
fn native_jsonl_malformed_lines_name_their_number_and_leave_nothing() {
    let cases = [
        (
            "{\"name\":\"a\",\"node_type\":\"t\"}\n\n{\"name\":\"b\",\"node_type\":\"t\"\n",
            "line 3",
            ErrorKind::InvalidInput,
        ),
        (
            "{\"name\":\"a\",\"node_type\":\"t\"}\n[1,2]\n",
            "line 2",
            ErrorKind::InvalidInput,
        ),
        (
            "{\"name\":\"a\",\"node_type\":\"t\",\"atributes\":{}}\n",
            "atributes",
            ErrorKind::InvalidInput,
        ),
        (
            "{\"name\":\"a\",\"node_type\":\"t\"}\n{\"what\":1}\n",
            "neither",
            ErrorKind::InvalidInput,
        ),
        (
            "{\"name\":\"a\",\"node_type\":\"Bad Type\"}\n",
            "(line 1)",
            ErrorKind::Validation,
        ),
        (
            "{\"from\":\"a\",\"relation_type\":\"calls\",\"to\":\"b\"}\n{\"name\":\"a\",\"node_type\":\"t\"}\n",
            "node 'b' does not exist",
            ErrorKind::Validation,
        ),
        (
            "{\"name\":\"a\",\"node_type\":\"t\"}\n{\"name\":\"a\",\"node_type\":\"t\"}\n",
            "already exists",
            ErrorKind::AlreadyExists,
        ),
        ("\u{FEFF}garbage\n", "line 1", ErrorKind::InvalidInput),
    ];
    for (input, expected, kind) in cases {
        let s = memory();
        let err = formats::import_jsonl(&s, input.as_bytes(), 0, ImportOptions::default(), |_| {})
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{input:?}: {err}");
        assert!(err.to_string().contains(expected), "{input:?}: {err}");
        assert_eq!(
            s.count_nodes().unwrap(),
            0,
            "{input:?}: a failed import left data behind"
        );
    }
    // Invalid UTF-8 is named too.
    let err = formats::import_jsonl(
        &memory(),
        &b"{\"name\":\"\xff\"}\n"[..],
        0,
        ImportOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    // With batches, the batches before the bad line stay.
    let s = memory();
    let input =
        "{\"name\":\"a\",\"node_type\":\"t\"}\n{\"name\":\"b\",\"node_type\":\"t\"}\nnot json\n";
    formats::import_jsonl(
        &s,
        input.as_bytes(),
        0,
        ImportOptions {
            batch_size: Some(2),
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(s.count_nodes().unwrap(), 2);
    assert_eq!(
        formats::import_jsonl(
            &s,
            &b""[..],
            0,
            ImportOptions {
                batch_size: Some(0)
            },
            |_| {}
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidInput
    );
}

const MCP_FILE: &str = r#"{"type":"entity","name":"John_Smith","entityType":"person","observations":["Speaks fluent Spanish"]}
{"type":"entity","name":"Anthropic","entityType":"Organization","observations":["AI safety company"],"importance":9}
{"type":"entity","name":"John_Smith","entityType":"person","observations":["Speaks fluent Spanish","Prefers mornings"]}
{"type":"entity","name":"kgstore","entityType":"software project","observations":[]}
{"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works_at"}
{"type":"relation","from":"John_Smith","to":"Anthropic","relationType":"works_at"}
{"type":"relation","from":"kgstore","to":"Anthropic","relationType":"depends_on"}
{"type":"relation","from":"Anthropic","to":"kgstore","relationType":"is interested in","since":"2026"}
"#;

fn export_mcp(s: &Store) -> String {
    let mut out = Vec::new();
    formats::export_mcp(s, &mut out, |_| {}).unwrap();
    String::from_utf8(out).unwrap()
}

fn lines_as_values(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect()
}

#[test]
fn mcp_memory_files_import_and_export_back() {
    let s = memory();
    let report =
        formats::import_mcp(&s, MCP_FILE.as_bytes(), 0, ImportOptions::default(), |_| {}).unwrap();
    assert_eq!((report.nodes, report.edges, report.merged), (3, 3, 2));
    let john = s.get_node("John_Smith").unwrap();
    assert_eq!(john.node_type, "person");
    assert_eq!(
        john.observations,
        ["Speaks fluent Spanish", "Prefers mornings"]
    );
    let anthropic = s.get_node("Anthropic").unwrap();
    assert_eq!(anthropic.node_type, "organization");
    assert_eq!(
        anthropic.attributes["mcp"],
        json!({"entityType": "Organization", "extra": {"importance": 9}})
    );
    assert_eq!(s.get_node("kgstore").unwrap().node_type, "software_project");
    let uses = s
        .get_edge(&kgstore::EdgeKey::new(
            "kgstore",
            RelationType::DependsOn,
            "Anthropic",
        ))
        .unwrap();
    assert!(
        uses.attributes.is_empty(),
        "a vocabulary relation needs no note"
    );
    let interest = s
        .edges_of("Anthropic", kgstore::Direction::Out, &[])
        .unwrap();
    assert_eq!(
        interest[0].relation_type,
        RelationType::Custom("is_interested_in".into())
    );

    // Exporting gives the file's content back (merged, in key order), and is stable.
    let exported = export_mcp(&s);
    let mut expected = lines_as_values(MCP_FILE);
    expected.remove(
        &serde_json::from_str::<Value>(MCP_FILE.lines().next().unwrap())
            .unwrap()
            .to_string(),
    );
    assert_eq!(lines_as_values(&exported), expected);
    let again = memory();
    formats::import_mcp(
        &again,
        exported.as_bytes(),
        0,
        ImportOptions::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(export_mcp(&again), exported);
    assert!(
        exported.starts_with(
            "{\"type\":\"entity\",\"name\":\"Anthropic\",\"entityType\":\"Organization\""
        ),
        "{exported}"
    );
}

#[test]
fn mcp_bad_files_are_refused_whole() {
    let cases = [
        (
            r#"{"type":"entity","name":"a","entityType":"t"}
{"type":"relation","from":"a","to":"ghost","relationType":"knows"}
{"type":"relation","from":"phantom","to":"a","relationType":"knows"}"#,
            "ghost",
        ),
        (r#"{"type":"entity","name":"a"}"#, "entityType"),
        (
            r#"{"type":"thing","name":"a"}"#,
            "expected entity or relation",
        ),
        (
            r#"{"type":"entity","name":"a","entityType":"t","observations":"one"}"#,
            "observations",
        ),
        (
            r#"{"type":"entity","name":"bad\nname","entityType":"t"}"#,
            "control character",
        ),
        (
            r#"{"type":"entity","name":"a","entityType":"t"}
{"type":"entity","name":"a","entityType":"other"}"#,
            "another entityType",
        ),
    ];
    for (input, expected) in cases {
        let s = memory();
        let err = formats::import_mcp(&s, input.as_bytes(), 0, ImportOptions::default(), |_| {})
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{input}: {err}");
        assert_eq!(s.count_nodes().unwrap(), 0);
    }
    // Every dangling relation is listed at once.
    let err = formats::import_mcp(
        &memory(),
        cases[0].0.as_bytes(),
        0,
        ImportOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("phantom"), "{err}");
}

#[test]
fn an_import_of_what_the_store_holds_names_the_line() {
    // The same file twice: the second import is refused at the line of the first
    // entity the store already holds, and changes nothing.
    let file = "{\"type\":\"entity\",\"name\":\"new\",\"entityType\":\"t\"}\n\
                {\"type\":\"entity\",\"name\":\"Alice\",\"entityType\":\"t\"}\n";
    let s = memory();
    s.create_node(Node::new("Alice", "t").unwrap()).unwrap();
    let err =
        formats::import_mcp(&s, file.as_bytes(), 0, ImportOptions::default(), |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("'Alice' (line 2)"), "{err}");
    assert_eq!(s.count_nodes().unwrap(), 1);
    let native = "{\"name\":\"Alice\",\"node_type\":\"t\"}\n";
    let err = formats::import_jsonl(&s, native.as_bytes(), 0, ImportOptions::default(), |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("(line 1)"), "{err}");
}

#[test]
fn a_relation_to_a_missing_node_is_refused_naming_its_line() {
    // A long file whose one bad relation is found only at commit (references are
    // checked there, so lines may come in any order): the error names its line.
    // Relations to nodes later in the file, or held by the store, are no matter.
    let mut mcp = String::new();
    let mut native = String::new();
    for i in 0..500 {
        mcp.push_str(&format!(
            "{{\"type\":\"entity\",\"name\":\"n{i}\",\"entityType\":\"t\"}}\n"
        ));
        native.push_str(&format!("{{\"name\":\"n{i}\",\"node_type\":\"t\"}}\n"));
    }
    for i in 0..499 {
        let to = if i == 300 {
            "ghost".to_owned()
        } else {
            format!("n{}", i + 1)
        };
        mcp.push_str(&format!(
            "{{\"type\":\"relation\",\"from\":\"n{i}\",\"to\":\"{to}\",\"relationType\":\"knows\"}}\n"
        ));
        native.push_str(&format!(
            "{{\"from\":\"n{i}\",\"relation_type\":\"knows\",\"to\":\"{to}\"}}\n"
        ));
    }
    // Line 801 is the relation n300 -> ghost; a forward one and one to a held node come last.
    let tail_mcp = "{\"type\":\"relation\",\"from\":\"late\",\"to\":\"n0\",\"relationType\":\"knows\"}\n\
                    {\"type\":\"relation\",\"from\":\"n0\",\"to\":\"held\",\"relationType\":\"knows\"}\n\
                    {\"type\":\"entity\",\"name\":\"late\",\"entityType\":\"t\"}\n";
    let tail_native = "{\"from\":\"late\",\"relation_type\":\"knows\",\"to\":\"n0\"}\n\
                       {\"from\":\"n0\",\"relation_type\":\"knows\",\"to\":\"held\"}\n\
                       {\"name\":\"late\",\"node_type\":\"t\"}\n";
    mcp.push_str(tail_mcp);
    native.push_str(tail_native);
    let store_holding_held = || {
        let s = memory();
        s.create_node(Node::new("held", "t").unwrap()).unwrap();
        s
    };
    for batch_size in [None, Some(2000), Some(100)] {
        let options = ImportOptions { batch_size };
        for (format, input) in [("mcp", &mcp), ("jsonl", &native)] {
            let s = store_holding_held();
            let err = match format {
                "mcp" => formats::import_mcp(&s, input.as_bytes(), 0, options, |_| {}),
                _ => formats::import_jsonl(&s, input.as_bytes(), 0, options, |_| {}),
            }
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Validation, "{format}: {err}");
            assert!(
                err.to_string().contains(
                    "edge n300 -[knows]-> ghost (line 801) at /to: node 'ghost' does not exist"
                ),
                "{format}, batches of {batch_size:?}: {err}"
            );
            // The file without its bad line imports whole; in batches of 100 (each
            // standing alone) the forward relation on line 1000 is refused, by its line.
            let fixed = input.replace("\"ghost\"", "\"n301\"");
            let s = store_holding_held();
            let outcome = match format {
                "mcp" => formats::import_mcp(&s, fixed.as_bytes(), 0, options, |_| {}),
                _ => formats::import_jsonl(&s, fixed.as_bytes(), 0, options, |_| {}),
            };
            if batch_size == Some(100) {
                let err = outcome.unwrap_err();
                assert!(
                    err.to_string()
                        .contains("edge late -[knows]-> n0 (line 1000) at /from"),
                    "{format}: {err}"
                );
            } else {
                let report = outcome.unwrap();
                assert_eq!((report.nodes, report.edges), (501, 501), "{format}");
            }
        }
    }
}

#[test]
fn graphml_parses_back_with_every_value() {
    let source = rich_store();
    let mut out = Vec::new();
    let report = formats::export_graphml(&source, &mut out, |_| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let graph = doc.descendants().find(|n| n.has_tag_name("graph")).unwrap();
    assert_eq!(graph.attribute("edgedefault"), Some("directed"));
    let data = |node: roxmltree::Node, key: &str| -> Option<String> {
        node.children()
            .find(|c| c.attribute("key") == Some(key))
            .map(|c| c.text().unwrap_or("").to_owned())
    };
    let nodes: Vec<roxmltree::Node> = graph
        .children()
        .filter(|n| n.has_tag_name("node"))
        .collect();
    let edges: Vec<roxmltree::Node> = graph
        .children()
        .filter(|n| n.has_tag_name("edge"))
        .collect();
    assert_eq!(nodes.len() as u64, report.nodes);
    assert_eq!(edges.len() as u64, source.count_edges().unwrap());
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.attribute("id").unwrap()).collect();
    for node in &nodes {
        let name = data(*node, "label").unwrap();
        let stored = source.get_node(&name).unwrap();
        assert_eq!(node.attribute("id"), Some(name.as_str()));
        let observations: Vec<String> =
            serde_json::from_str(&data(*node, "observations").unwrap()).unwrap();
        assert_eq!(
            observations, stored.observations,
            "observations are exact, NUL and U+FFFE included"
        );
        let attributes: Value = serde_json::from_str(&data(*node, "attributes").unwrap()).unwrap();
        assert_eq!(attributes, Value::Object(stored.attributes.clone()));
        assert_eq!(
            data(*node, "version").unwrap(),
            stored.metadata.version.to_string()
        );
    }
    for edge in &edges {
        assert!(ids.contains(edge.attribute("source").unwrap()));
        assert!(ids.contains(edge.attribute("target").unwrap()));
        let key = kgstore::EdgeKey::new(
            edge.attribute("source").unwrap(),
            RelationType::parse(&data(*edge, "relation_type").unwrap()).unwrap(),
            edge.attribute("target").unwrap(),
        );
        let stored = source.get_edge(&key).unwrap();
        assert_eq!(
            data(*edge, "weight").unwrap().parse::<f64>().unwrap(),
            stored.metadata.weight
        );
    }
}

#[test]
fn graphml_survives_names_xml_cannot_hold() {
    let s = memory();
    s.create_node(Node::new("bad \u{FFFF} name", "t").unwrap())
        .unwrap();
    s.create_node(Node::new("good", "t").unwrap()).unwrap();
    s.create_edge(Edge::new("bad \u{FFFF} name", RelationType::Calls, "good").unwrap())
        .unwrap();
    let mut out = Vec::new();
    formats::export_graphml(&s, &mut out, |_| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let edge = doc.descendants().find(|n| n.has_tag_name("edge")).unwrap();
    assert_eq!(edge.attribute("source"), Some("kgstore-node-0"));
    assert!(text.contains("bad \u{FFFD} name"));
}

#[test]
fn dot_exports_the_graph_or_a_neighbourhood() {
    let s = memory();
    s.create_nodes(["a", "b", "c", "d", "say \"hi\""].map(|n| Node::new(n, "t").unwrap()))
        .unwrap();
    s.create_edges([
        Edge::new("a", RelationType::Calls, "b").unwrap(),
        Edge::new("b", RelationType::Calls, "c").unwrap(),
        Edge::new("c", RelationType::Calls, "d").unwrap(),
        Edge::new("say \"hi\"", RelationType::References, "a")
            .unwrap()
            .bidirectional(),
    ])
    .unwrap();
    let mut out = Vec::new();
    let report = formats::export_dot(&s, &mut out, &DotOptions::default(), |_| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("digraph kgstore {"));
    assert!(text.trim_end().ends_with('}'));
    assert_eq!((report.nodes, report.edges), (5, 4));
    assert!(
        text.contains("\"say \\\"hi\\\"\" -> \"a\" [label=\"references\", dir=both];"),
        "{text}"
    );

    let mut out = Vec::new();
    let around = DotOptions {
        around: Some("b".into()),
        depth: Some(1),
    };
    let report = formats::export_dot(&s, &mut out, &around, |_| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!((report.nodes, report.edges), (3, 2), "{text}");
    assert!(
        text.contains("\"b\" [label=\"b\\n(t)\", style=bold];"),
        "{text}"
    );
    assert!(!text.contains("\"d\""), "{text}");
    let missing = DotOptions {
        around: Some("ghost".into()),
        depth: None,
    };
    assert_eq!(
        formats::export_dot(&s, Vec::new(), &missing, |_| {})
            .unwrap_err()
            .kind(),
        ErrorKind::NodeNotFound
    );
}
