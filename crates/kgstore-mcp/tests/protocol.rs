//! The protocol suite: every message the server sends validates against the
//! MCP specification's published JSON Schema of the session's revision, and
//! malformed, unknown, wrong and oversize requests get the right JSON-RPC errors
//! while the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Session, names, spec};
use kgstore::Store;
use kgstore_mcp::{RESOURCE_URI, Revision, Server, ServerOptions};
use serde_json::{Value, json};

fn extra() -> ServerOptions {
    ServerOptions {
        extra_tools: true,
        ..ServerOptions::default()
    }
}

/// A session that does everything the server offers, at one revision.
fn full_session(revision: Revision) -> Session {
    let mut s = Session::open(Store::memory(), extra(), revision);
    let tools = s.request("tools/list", json!({}));
    let listed: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 12, "{listed:?}");
    for tool in tools["result"]["tools"].as_array().unwrap() {
        let fields: Vec<&str> = tool
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for field in fields {
            let known = match field {
                "name" | "description" | "inputSchema" => true,
                "annotations" => revision.has_annotations(),
                "title" | "outputSchema" => revision.has_structured_output(),
                "execution" => revision == Revision::V2025_11_25,
                _ => false,
            };
            assert!(known, "{revision} does not define Tool.{field}");
        }
    }
    if revision.is_modern() {
        assert_eq!(tools["result"]["resultType"], "complete");
        assert!(tools["result"]["ttlMs"].is_u64());
    } else {
        assert!(tools["result"].get("resultType").is_none());
        let pong = s.request("ping", json!({}));
        assert_eq!(pong["result"], json!({}));
    }
    let discover = s.request("server/discover", json!({}));
    assert_eq!(discover["result"]["supportedVersions"][0], "2026-07-28");

    // Subscribe to the resource, the way the revision does it.
    let listen_id = if revision.is_modern() {
        let out = s.send(json!({"jsonrpc": "2.0", "id": "listen", "method": "subscriptions/listen",
            "params": {"_meta": Session::modern_meta(), "notifications": {"resourceSubscriptions": [RESOURCE_URI], "toolsListChanged": true}}}));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0]["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(
            out[0]["params"]["notifications"],
            json!({"resourceSubscriptions": [RESOURCE_URI]})
        );
        Some(json!("listen"))
    } else {
        assert_eq!(
            s.request("resources/subscribe", json!({"uri": RESOURCE_URI}))["result"],
            json!({})
        );
        None
    };

    s.ok(
        "create_entities",
        json!({"entities": [
            {"name": "Alice", "entityType": "person", "observations": ["likes tea"]},
            {"name": "Bob", "entityType": "Person", "observations": []},
            {"name": "Café Lumière", "entityType": "place", "observations": ["on the corner"]}
        ]}),
    );
    let updates = s
        .received
        .iter()
        .filter(|m| m["method"] == "notifications/resources/updated")
        .count();
    assert_eq!(updates, 1, "one update notification per change");
    if let Some(id) = &listen_id {
        let update = s
            .received
            .iter()
            .rev()
            .find(|m| m["method"] == "notifications/resources/updated")
            .unwrap();
        assert_eq!(
            &update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            id
        );
    }
    s.ok(
        "create_relations",
        json!({"relations": [
            {"from": "Alice", "to": "Bob", "relationType": "knows"},
            {"from": "Bob", "to": "Café Lumière", "relationType": "works at"}
        ]}),
    );
    s.ok(
        "add_observations",
        json!({"observations": [{"entityName": "Bob", "contents": ["drinks coffee"]}]}),
    );
    s.ok("read_graph", json!({}));
    s.ok("search_nodes", json!({"query": "tea"}));
    s.ok("open_nodes", json!({"names": ["Alice", "Nobody"]}));
    s.ok("traverse", json!({"name": "Alice", "depth": 2}));
    s.ok(
        "shortest_path",
        json!({"from": "Alice", "to": "Café Lumière"}),
    );
    s.ok("graph_stats", json!({}));
    s.ok(
        "delete_observations",
        json!({"deletions": [{"entityName": "Bob", "observations": ["drinks coffee"]}]}),
    );
    s.ok(
        "delete_relations",
        json!({"relations": [{"from": "Alice", "to": "Bob", "relationType": "knows"}]}),
    );
    s.ok("delete_entities", json!({"entityNames": ["Bob"]}));
    s.fails(
        "add_observations",
        json!({"observations": [{"entityName": "Nobody", "contents": ["x"]}]}),
    );
    s.fails("create_entities", json!({"entities": [{"name": "x"}]}));

    let resources = s.request("resources/list", json!({}));
    assert_eq!(resources["result"]["resources"][0]["uri"], RESOURCE_URI);
    let templates = s.request("resources/templates/list", json!({}));
    assert_eq!(templates["result"]["resourceTemplates"], json!([]));
    let read = s.request("resources/read", json!({"uri": RESOURCE_URI}));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let graph: Value = serde_json::from_str(text).unwrap();
    assert_eq!(names(&graph), ["Alice", "Café Lumière"]);
    let missing = s.request("resources/read", json!({"uri": "memory://other"}));
    assert_eq!(missing["error"]["code"], revision.resource_not_found_code());

    if !revision.is_modern() {
        s.request("resources/unsubscribe", json!({"uri": RESOURCE_URI}));
        let before = s.received.len();
        s.ok(
            "create_entities",
            json!({"entities": [{"name": "Dan", "entityType": "person", "observations": []}]}),
        );
        assert_eq!(
            s.received.len(),
            before + 1,
            "no notification after unsubscribing"
        );
    }
    // The end of the input answers open listens, which ends them.
    let closing = s.server.finish();
    s.check_all(&closing);
    match &listen_id {
        Some(id) => {
            assert_eq!(closing.len(), 1);
            assert_eq!(&closing[0]["id"], id);
            assert_eq!(
                &closing[0]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                id
            );
        }
        None => assert!(closing.is_empty()),
    }
    s
}

#[test]
fn the_spec_schemas_are_the_published_ones() {
    for revision in Revision::ALL {
        // Loading checks the SHA-256 of the file against the registry package's manifest.
        assert!(spec(revision).defines("JSONRPCMessage"));
    }
}

#[test]
fn every_message_validates_against_its_revisions_schema() {
    for revision in Revision::ALL {
        let s = full_session(revision);
        assert!(s.checked.validated > 25, "{revision}: {:?}", s.checked);
        println!("{revision}: {} messages validated", s.checked.validated);
    }
}

#[test]
fn the_schema_check_itself_catches_a_broken_message() {
    // A 2026-07-28 result must carry resultType; a tools/call result needs content.
    let mut spec = spec(Revision::V2026_07_28);
    assert!(
        !spec
            .violations("CallToolResult", &json!({"content": []}))
            .is_empty()
    );
    assert!(
        spec.violations(
            "CallToolResult",
            &json!({"content": [], "resultType": "complete"})
        )
        .is_empty()
    );
    drop(spec);
    let mut old = common::spec(Revision::V2024_11_05);
    assert!(
        !old.violations("CallToolResult", &json!({"isError": true}))
            .is_empty()
    );
    assert!(
        !old.violations(
            "JSONRPCError",
            &json!({"jsonrpc": "2.0", "error": {"code": 1, "message": "x"}})
        )
        .is_empty()
    );
}

fn error_of(out: &[Value]) -> (Option<Value>, i64, String) {
    assert_eq!(out.len(), 1, "{out:?}");
    let error = &out[0]["error"];
    (
        out[0].get("id").cloned(),
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_owned(),
    )
}

/// The server still answers: a ping (or, statelessly, a tool list) and a tool call.
fn still_serving(s: &mut Session) {
    let list = s.request("tools/list", json!({}));
    assert!(list["result"]["tools"].is_array(), "{list}");
    let graph = s.ok("read_graph", json!({}));
    assert!(graph["entities"].is_array());
}

#[test]
fn malformed_json_is_a_parse_error_and_the_server_keeps_serving() {
    for revision in Revision::ALL {
        let mut s = Session::memory(revision);
        for line in [
            &b"{"[..],
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
            b"not json",
            b"{\"a\":1}}",
            b"\xff\xfe{}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"method\":}",
        ] {
            let (id, code, message) = error_of(&s.send_line(line));
            assert_eq!(
                (id, code),
                (None, -32700),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert!(message.starts_with("Parse error"), "{message}");
            still_serving(&mut s);
        }
        // Blank lines are no messages.
        assert!(s.send_line(b"   ").is_empty());
        assert!(s.send_line(b"").is_empty());
        println!("{revision}: {:?}", s.checked);
    }
}

#[test]
fn invalid_requests_are_refused_and_the_server_keeps_serving() {
    for revision in Revision::ALL {
        let mut s = Session::memory(revision);
        let cases = [
            (json!([1, 2]), None),
            (json!("ping"), None),
            (json!(42), None),
            (
                json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
                None,
            ),
            (json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}), None),
            (
                json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}),
                None,
            ),
            (json!({"id": 7, "method": "ping"}), Some(json!(7))),
            (
                json!({"jsonrpc": "1.0", "id": 8, "method": "ping"}),
                Some(json!(8)),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 9, "method": 5}),
                Some(json!(9)),
            ),
            (json!({"jsonrpc": "2.0", "id": "x"}), Some(json!("x"))),
        ];
        for (message, id) in cases {
            let out = s.send(message.clone());
            if revision == Revision::V2025_03_26 && message == json!([1, 2]) {
                // A batch in the revision that had them: each item is invalid.
                assert_eq!(out.len(), 1);
                let items = out[0].as_array().unwrap();
                assert_eq!(items.len(), 2);
                assert!(items.iter().all(|i| i["error"]["code"] == -32600));
                continue;
            }
            let (got, code, _) = error_of(&out);
            assert_eq!((got, code), (id, -32600), "{message}");
            still_serving(&mut s);
        }
        // A response from the client (this server asks nothing) and notifications get no answer.
        assert!(
            s.send(json!({"jsonrpc": "2.0", "id": 99, "result": {}}))
                .is_empty()
        );
        assert!(s.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})).is_empty());
        assert!(
            s.send(json!({"jsonrpc": "2.0", "method": "no/such/notification"}))
                .is_empty()
        );
        assert!(
            s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": 3}))
                .is_empty()
        );
    }
}

#[test]
fn unknown_methods_are_method_not_found_and_the_server_keeps_serving() {
    for revision in Revision::ALL {
        let mut s = Session::memory(revision);
        let mut unknown = vec![
            "no/such/method",
            "prompts/list",
            "logging/setLevel",
            "completion/complete",
            "tasks/list",
        ];
        if revision.is_modern() {
            // Removed by 2026-07-28.
            unknown.extend(["ping", "resources/subscribe", "resources/unsubscribe"]);
        } else {
            unknown.push("subscriptions/listen");
        }
        for method in unknown {
            let answer = s.request(method, json!({"uri": RESOURCE_URI, "level": "info"}));
            assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
            assert_eq!(answer["error"]["message"], "Method not found");
            still_serving(&mut s);
        }
    }
}

#[test]
fn wrong_params_are_invalid_params_and_the_server_keeps_serving() {
    for revision in Revision::ALL {
        let mut s = Session::memory(revision);
        let meta = if revision.is_modern() {
            Some(Session::modern_meta())
        } else {
            None
        };
        let with_meta = |mut params: Value| {
            if let Some(meta) = &meta {
                params["_meta"] = meta.clone();
            }
            params
        };
        let cases = [
            ("tools/call", with_meta(json!({}))),
            ("tools/call", with_meta(json!({"name": 3}))),
            (
                "tools/call",
                with_meta(json!({"name": "no_such_tool", "arguments": {}})),
            ),
            (
                "tools/call",
                with_meta(json!({"name": "read_graph", "arguments": [1]})),
            ),
            ("tools/list", with_meta(json!({"cursor": "somewhere"}))),
            ("resources/read", with_meta(json!({}))),
            ("resources/read", with_meta(json!({"uri": 5}))),
        ];
        for (i, (method, params)) in cases.into_iter().enumerate() {
            let id = 1000 + i as i64;
            let out =
                s.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
            let (got, code, message) = error_of(&out);
            assert_eq!(
                (got, code),
                (Some(json!(id)), -32602),
                "{method}: {message}"
            );
            still_serving(&mut s);
        }
        // params that are not an object.
        let out =
            s.send(json!({"jsonrpc": "2.0", "id": 77, "method": "tools/list", "params": [1]}));
        assert_eq!(error_of(&out).1, -32602);
        // Tool arguments against the input schema are a tool error (isError), as
        // the official server and 2025-11-25 (SEP-1303) have it.
        for (tool, args) in [
            (
                "create_entities",
                json!({"entities": [{"name": "a", "entityType": 1, "observations": []}]}),
            ),
            ("create_entities", json!({})),
            ("search_nodes", json!({"query": "x".repeat(2049)})),
            ("read_graph", json!({"limit": 0})),
            ("read_graph", json!({"limit": "ten"})),
            ("open_nodes", json!({"names": "Alice"})),
        ] {
            let text = s.fails(tool, args);
            assert!(
                text.starts_with("Input validation error: Invalid arguments for tool"),
                "{text}"
            );
        }
        let text = s.fails("read_graph", json!({"cursor": "garbage"}));
        assert!(text.contains("cursor"), "{text}");
        still_serving(&mut s);
    }
}

#[test]
fn the_2026_revision_checks_its_meta() {
    let mut s = Session::memory(Revision::V2026_07_28);
    let send = |s: &mut Session, id: i64, meta: Value| {
        s.send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {"_meta": meta}}),
        )
    };
    // An unknown revision: -32022 naming what is supported.
    let out = send(
        &mut s,
        1,
        json!({"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}),
    );
    assert_eq!(out[0]["error"]["code"], -32022);
    assert_eq!(out[0]["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(out[0]["error"]["data"]["supported"][0], "2026-07-28");
    // clientCapabilities is required.
    let out = send(
        &mut s,
        2,
        json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"}),
    );
    assert_eq!(out[0]["error"]["code"], -32602);
    let out = send(
        &mut s,
        3,
        json!({"io.modelcontextprotocol/protocolVersion": 2026}),
    );
    assert_eq!(out[0]["error"]["code"], -32602);
    // A complete one is served statelessly: resultType and serverInfo on every result.
    let out = send(&mut s, 4, Session::modern_meta());
    assert_eq!(out[0]["result"]["resultType"], "complete");
    assert_eq!(
        out[0]["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "kgstore"
    );
    assert_eq!(out[0]["result"]["cacheScope"], "public");
    let read = s.request("resources/read", json!({"uri": RESOURCE_URI}));
    assert_eq!(read["result"]["cacheScope"], "private");
    assert_eq!(read["result"]["ttlMs"], 0);
}

#[test]
fn initialize_negotiates_a_legacy_revision() {
    for (asked, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-10-07", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
        ("later", "2025-11-25"),
    ] {
        let mut server = Server::new(Store::memory(), ServerOptions::default()).unwrap();
        let out = server.handle_line(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(out[0]["result"]["protocolVersion"], answered, "{asked}");
        assert_eq!(out[0]["result"]["serverInfo"]["name"], "kgstore");
        assert!(
            out[0]["result"]["instructions"]
                .as_str()
                .unwrap()
                .contains("search_nodes")
        );
        let mut checked = common::Checked::default();
        common::check_message(
            Revision::parse(answered).unwrap(),
            &out[0],
            Some("initialize"),
            &mut checked,
        );
    }
    let mut s = Session::memory(Revision::V2025_11_25);
    let out = s.request("initialize", json!({"capabilities": {}}));
    assert_eq!(out["error"]["code"], -32602);
}

#[test]
fn a_client_that_skips_the_handshake_is_served() {
    // As the official server does: tools/list before initialize.
    let mut server = Server::new(Store::memory(), ServerOptions::default()).unwrap();
    let out = server.handle_line(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(out[0]["result"]["tools"].as_array().unwrap().len(), 9);
}

#[test]
fn oversize_requests_are_refused_without_being_held_and_the_server_keeps_serving() {
    let options = ServerOptions {
        max_request_bytes: 4096,
        ..ServerOptions::default()
    };
    let big = "x".repeat(100_000);
    let python_style = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "create_entities",
        "arguments": {"entities": [{"name": "big", "entityType": "t", "observations": [big]}]}}});
    let typescript_style = format!(
        r#"{{"method":"tools/call","params":{{"name":"create_entities","arguments":{{"entities":[{{"name":"big","entityType":"t","observations":["{big}"]}}]}}}},"jsonrpc":"2.0","id":"ts-6"}}"#
    );
    let unknowable = format!(r#"{{"method":"x","params":{{"a":"{big}"}},"id":7,"jsonrpc":"2.0"}}"#);
    let mut input = Vec::new();
    for line in [python_style.to_string(), typescript_style, unknowable] {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"read_graph","arguments":{}}}"#);
    input.push(b'\n');
    let mut server = Server::new(Store::memory(), options).unwrap();
    let mut output = Vec::new();
    server.serve(&input[..], &mut output).unwrap();
    let answers: Vec<Value> = output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 4, "{answers:?}");
    for (answer, id) in answers[..3]
        .iter()
        .zip([Some(json!(5)), Some(json!("ts-6")), None])
    {
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        assert_eq!(answer.get("id").cloned(), id);
        assert_eq!(answer["error"]["data"]["limit"], 4096);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-request-bytes")
        );
        let mut checked = common::Checked::default();
        common::check_message(Revision::V2025_11_25, answer, None, &mut checked);
    }
    // Nothing of the refused request was written; the next request is served.
    assert_eq!(answers[3]["id"], 8);
    assert_eq!(
        answers[3]["result"]["structuredContent"]["entities"],
        json!([])
    );
}

#[test]
fn batches_are_served_in_2025_03_26_only() {
    let mut s = Session::memory(Revision::V2025_03_26);
    let out = s.send(json!([
        {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "create_entities", "arguments": {"entities": [{"name": "A", "entityType": "t", "observations": []}]}}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "zzz"}},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": {"name": "read_graph", "arguments": {}}},
        {"jsonrpc": "2.0", "id": "c", "method": "initialize", "params": {"protocolVersion": "2025-03-26"}},
        {"jsonrpc": "2.0", "id": "d", "method": "nope"}
    ]));
    assert_eq!(out.len(), 1);
    let items = out[0].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["id"], "a");
    assert_eq!(items[1]["id"], "b");
    assert!(
        items[1]["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"A\"")
    );
    assert_eq!(items[2]["error"]["code"], -32600);
    assert_eq!(items[3]["error"]["code"], -32601);
    let (_, code, _) = error_of(&s.send(json!([])));
    assert_eq!(code, -32600);

    for revision in [
        Revision::V2024_11_05,
        Revision::V2025_06_18,
        Revision::V2025_11_25,
    ] {
        let mut s = Session::memory(revision);
        let (id, code, message) =
            error_of(&s.send(json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])));
        assert_eq!((id, code), (None, -32600));
        assert!(message.contains("batches"), "{message}");
        still_serving(&mut s);
    }
}

#[test]
fn a_hundred_pipelined_creates_keep_a_hundred_entities() {
    // Sent without waiting, as one burst of lines: each is its own transaction,
    // answered in order (the official 2026.8.31 release keeps 1 of 100).
    let mut input = String::new();
    input.push_str(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
    input.push('\n');
    for i in 1..=100 {
        input.push_str(
            &json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "create_entities",
                "arguments": {"entities": [{"name": format!("entity-{i:03}"), "entityType": "thing", "observations": [format!("number {i}")]}]}}})
            .to_string(),
        );
        input.push('\n');
    }
    input.push_str(r#"{"jsonrpc":"2.0","id":101,"method":"tools/call","params":{"name":"read_graph","arguments":{"limit":1000}}}"#);
    input.push('\n');
    let mut server = Server::new(Store::memory(), ServerOptions::default()).unwrap();
    let mut output = Vec::new();
    server.serve(input.as_bytes(), &mut output).unwrap();
    let answers: Vec<Value> = output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 102);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["id"], i, "answered in order");
    }
    let graph = &answers[101]["result"]["structuredContent"];
    assert_eq!(graph["entities"].as_array().unwrap().len(), 100);
    assert_eq!(names(graph)[99], "entity-100");
}
