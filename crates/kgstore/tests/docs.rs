//! The JSON examples in docs/model.md parse as what they claim to be and
//! serialize back to the same text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use kgstore::{Edge, Node, SchemaTarget, Violation};

/// The ```json blocks of a Markdown file with their tag (`json node` → `node`).
fn json_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```json")) {
            (None, Some(tag)) => current = Some((tag.trim().to_owned(), String::new())),
            (Some(_), _) if line == "```" => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

#[test]
fn model_examples_are_exact() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/model.md"))
        .unwrap();
    let blocks = json_blocks(&text);
    assert!(blocks.len() >= 5, "found {} blocks", blocks.len());
    for (tag, body) in blocks {
        let pretty = match tag.as_str() {
            "node" => {
                serde_json::to_string_pretty(&serde_json::from_str::<Node>(&body).unwrap()).unwrap()
            }
            "edge" => {
                serde_json::to_string_pretty(&serde_json::from_str::<Edge>(&body).unwrap()).unwrap()
            }
            "target" => {
                serde_json::to_string(&serde_json::from_str::<SchemaTarget>(&body).unwrap())
                    .unwrap()
            }
            "violations" => serde_json::to_string_pretty(
                &serde_json::from_str::<Vec<Violation>>(&body).unwrap(),
            )
            .unwrap(),
            other => panic!("untagged or unknown json block '{other}' in docs/model.md"),
        };
        let compact = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(
            compact(&pretty),
            compact(&body),
            "a {tag} example does not round-trip exactly"
        );
    }
}

#[test]
fn unknown_fields_are_refused() {
    let err = serde_json::from_str::<Node>(r#"{"name": "a", "node_type": "t", "atributes": {}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("atributes"), "{err}");
    let minimal: Node = serde_json::from_str(r#"{"name": "a", "node_type": "t"}"#).unwrap();
    assert_eq!(minimal.metadata.version, 0);
}
