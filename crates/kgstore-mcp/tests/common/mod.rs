//! A test client for the server: drives it in-process, message by message, and
//! checks every message the server sends against the MCP specification's
//! published JSON Schema of the session's revision (`tests/spec/`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use kgstore::Store;
use kgstore_mcp::{Revision, Server, ServerOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The digests `tests/spec/README.md` lists, from the registry package's manifest.
pub const DIGESTS: [(&str, &str); 5] = [
    (
        "2024-11-05",
        "56d9e706cc8b0daf690a483960aa4ba62217c863d36ff1d7f8bbb83ab049903d",
    ),
    (
        "2025-03-26",
        "dd1619bf96fcd8c50fe46f0dd05b4b9bb9356010040ae985fa595fee226ff4ed",
    ),
    (
        "2025-06-18",
        "05020a692319467847cdb1794b1306567f52860353b5ff2f2bc2b0140819305b",
    ),
    (
        "2025-11-25",
        "1ffe4c5577974012f5fa02af14ea88df4b7146679df1abaaad497c8d9230ca8a",
    ),
    (
        "2026-07-28",
        "ef70b61f99b6d2e5e3b46863822eab08dff6a45bedc7a08914e0e5b133f40203",
    ),
];

/// One revision's schema, with compiled validators per definition.
pub struct Spec {
    revision: Revision,
    root: Value,
    validators: HashMap<String, Arc<jsonschema::Validator>>,
}

impl Spec {
    fn load(revision: Revision) -> Spec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/spec")
            .join(revision.as_str())
            .join("schema.json");
        let bytes = std::fs::read(&path).unwrap();
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let expected = DIGESTS
            .iter()
            .find(|(r, _)| *r == revision.as_str())
            .unwrap()
            .1;
        assert_eq!(
            digest,
            expected,
            "{} is not the published schema",
            path.display()
        );
        Spec {
            revision,
            root: serde_json::from_slice(&bytes).unwrap(),
            validators: HashMap::new(),
        }
    }

    fn defs_key(&self) -> &'static str {
        if self.root.get("$defs").is_some() {
            "$defs"
        } else {
            "definitions"
        }
    }

    /// Whether the revision's schema defines this type.
    pub fn defines(&self, name: &str) -> bool {
        self.root[self.defs_key()].get(name).is_some()
    }

    /// Every violation of `value` against the definition `name`.
    pub fn violations(&mut self, name: &str, value: &Value) -> Vec<String> {
        assert!(self.defines(name), "{} defines no {name}", self.revision);
        let key = self.defs_key();
        let validator = self
            .validators
            .entry(name.to_owned())
            .or_insert_with(|| {
                let schema = json!({
                    "$schema": self.root["$schema"],
                    "$ref": format!("#/{key}/{name}"),
                    key: self.root[key],
                });
                Arc::new(jsonschema::validator_for(&schema).unwrap())
            })
            .clone();
        validator
            .iter_errors(value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }
}

/// The specs, loaded once per test binary.
pub fn spec(revision: Revision) -> std::sync::MutexGuard<'static, Spec> {
    static SPECS: OnceLock<Vec<Mutex<Spec>>> = OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        Revision::ALL
            .iter()
            .map(|r| Mutex::new(Spec::load(*r)))
            .collect()
    });
    let index = Revision::ALL.iter().position(|r| *r == revision).unwrap();
    specs[index].lock().unwrap_or_else(|e| e.into_inner())
}

/// The result type of a method, as the schema names it.
fn result_type(method: &str) -> &'static str {
    match method {
        "initialize" => "InitializeResult",
        "ping" | "resources/subscribe" | "resources/unsubscribe" => "EmptyResult",
        "tools/list" => "ListToolsResult",
        "tools/call" => "CallToolResult",
        "resources/list" => "ListResourcesResult",
        "resources/templates/list" => "ListResourceTemplatesResult",
        "resources/read" => "ReadResourceResult",
        "server/discover" => "DiscoverResult",
        "subscriptions/listen" => "SubscriptionsListenResult",
        other => panic!("the server answered {other}, which it should not"),
    }
}

/// What was checked, for tests that want to see it.
#[derive(Default, Debug)]
pub struct Checked {
    /// Messages validated against their own revision's schema.
    pub validated: usize,
    /// Error responses without an id in revisions whose schema requires one
    /// (before 2025-11-25): validated against 2025-11-25's `JSONRPCErrorResponse`,
    /// the first revision to model them.
    pub id_less_errors_checked_with_2025_11_25: usize,
}

/// Checks one message the server sent in a session of `revision`; `method` is
/// the method of the request it answers, if it answers one.
pub fn check_message(
    revision: Revision,
    message: &Value,
    method: Option<&str>,
    checked: &mut Checked,
) {
    let mut problems = Vec::new();
    let mut spec_of = |r: Revision, def: &str, value: &Value| {
        let mut spec = spec(r);
        for v in spec.violations(def, value) {
            problems.push(format!("{r} {def}: {v}"));
        }
    };
    if message.is_array() {
        panic!("check_message takes one message; Session::check_all takes batches apart");
    } else if message.get("method").is_some() {
        let method = message["method"].as_str().unwrap();
        let def = match method {
            "notifications/resources/updated" => "ResourceUpdatedNotification",
            "notifications/subscriptions/acknowledged" => "SubscriptionsAcknowledgedNotification",
            other => panic!("unexpected notification {other}"),
        };
        spec_of(revision, def, message);
        spec_of(revision, "JSONRPCNotification", message);
        spec_of(revision, "JSONRPCMessage", message);
    } else if message.get("error").is_some() {
        let id_less = message.get("id").is_none();
        if id_less && revision < Revision::V2025_11_25 {
            spec_of(Revision::V2025_11_25, "JSONRPCErrorResponse", message);
            spec_of(Revision::V2025_11_25, "JSONRPCMessage", message);
            checked.id_less_errors_checked_with_2025_11_25 += 1;
        } else {
            let envelope = if revision >= Revision::V2025_11_25 {
                "JSONRPCErrorResponse"
            } else {
                "JSONRPCError"
            };
            spec_of(revision, envelope, message);
            spec_of(revision, "JSONRPCMessage", message);
            if revision >= Revision::V2026_07_28 && message["error"]["code"] == -32022 {
                spec_of(revision, "UnsupportedProtocolVersionError", message);
            }
        }
    } else if method == Some("server/discover") {
        // The dual-era probe: answered in 2026-07-28's shape in every session.
        spec_of(Revision::V2026_07_28, "DiscoverResultResponse", message);
        spec_of(Revision::V2026_07_28, "JSONRPCMessage", message);
    } else {
        let method = method.expect("a result answers a request");
        let result_def = result_type(method);
        spec_of(revision, result_def, &message["result"]);
        spec_of(revision, "ServerResult", &message["result"]);
        let envelope = if revision >= Revision::V2025_11_25 {
            "JSONRPCResultResponse"
        } else {
            "JSONRPCResponse"
        };
        spec_of(revision, envelope, message);
        let specific = format!("{}Response", result_def);
        if spec(revision).defines(&specific) {
            spec_of(revision, &specific, message);
        }
        spec_of(revision, "JSONRPCMessage", message);
    }
    assert!(
        problems.is_empty(),
        "{message}\nbreaks the {revision} schema:\n{}",
        problems.join("\n")
    );
    checked.validated += 1;
}

/// A session with an in-process server; every message it sends is checked.
pub struct Session {
    pub server: Server,
    pub revision: Revision,
    methods: HashMap<String, String>,
    next_id: i64,
    /// Every message the server sent, in order.
    pub received: Vec<Value>,
    pub checked: Checked,
    output_schemas: HashMap<String, Arc<jsonschema::Validator>>,
}

impl Session {
    /// A session at `revision`: legacy revisions open with `initialize` and
    /// `notifications/initialized`; 2026-07-28 needs no handshake.
    pub fn open(store: Store, options: ServerOptions, revision: Revision) -> Session {
        let mut session = Session {
            server: Server::new(store, options).unwrap(),
            revision,
            methods: HashMap::new(),
            next_id: 0,
            received: Vec::new(),
            checked: Checked::default(),
            output_schemas: HashMap::new(),
        };
        if !revision.is_modern() {
            let answer = session.request(
                "initialize",
                json!({"protocolVersion": revision.as_str(), "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            );
            assert_eq!(answer["result"]["protocolVersion"], revision.as_str());
            assert!(
                session
                    .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                    .is_empty()
            );
        }
        session
    }

    /// A memory store's session with default options.
    pub fn memory(revision: Revision) -> Session {
        Session::open(Store::memory(), ServerOptions::default(), revision)
    }

    /// The `_meta` a 2026-07-28 request carries.
    pub fn modern_meta() -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
        })
    }

    /// Sends one raw line; returns (and checks) what the server sends back.
    pub fn send_line(&mut self, line: &[u8]) -> Vec<Value> {
        let out = self.server.handle_line(line);
        self.check_all(&out);
        out
    }

    /// Sends a message (requests are remembered by id, to check their answers).
    pub fn send(&mut self, message: Value) -> Vec<Value> {
        self.remember(&message);
        let line = serde_json::to_vec(&message).unwrap();
        self.send_line(&line)
    }

    fn remember(&mut self, message: &Value) {
        match message {
            Value::Array(items) => items.iter().for_each(|m| self.remember(m)),
            Value::Object(_) => {
                if let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) {
                    self.methods.insert(id.to_string(), method.to_owned());
                }
            }
            _ => {}
        }
    }

    pub fn check_all(&mut self, out: &[Value]) {
        for message in out {
            let method = message
                .get("id")
                .and_then(|id| self.methods.get(&id.to_string()))
                .cloned();
            if let Value::Array(items) = message {
                assert_eq!(
                    self.revision,
                    Revision::V2025_03_26,
                    "a batch answer outside 2025-03-26"
                );
                // 2025-03-26 requires an id on every answer in a batch; an item that
                // was not even an object has none (JSON-RPC gives it null), so such
                // a batch is checked item by item (those with the 2025-11-25 rule).
                if items.iter().all(|i| i.get("id").is_some()) {
                    let problems = spec(self.revision).violations("JSONRPCBatchResponse", message);
                    assert!(problems.is_empty(), "{message}: {problems:?}");
                }
                for item in items {
                    let method = item
                        .get("id")
                        .and_then(|id| self.methods.get(&id.to_string()))
                        .cloned();
                    check_message(self.revision, item, method.as_deref(), &mut self.checked);
                }
            } else {
                check_message(self.revision, message, method.as_deref(), &mut self.checked);
            }
            self.received.push(message.clone());
        }
    }

    /// Sends a request with a fresh id (and, at 2026-07-28, the `_meta` it needs);
    /// returns its response and keeps any notifications in `received`.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut params = params;
        if self.revision.is_modern() {
            params["_meta"] = Session::modern_meta();
        }
        let out =
            self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut responses = out.into_iter().filter(|m| m.get("id") == Some(&json!(id)));
        let response = responses
            .next()
            .unwrap_or_else(|| panic!("no answer to {method}"));
        assert!(responses.next().is_none(), "two answers to {method}");
        response
    }

    /// Calls a tool; returns the `CallToolResult`. From 2025-06-18 on, a
    /// successful result's `structuredContent` is checked against the tool's
    /// `outputSchema` (as the TypeScript SDK's client does) and its text against
    /// the structured content.
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = response["result"].clone();
        assert!(result.is_object(), "tools/call {tool} failed: {response}");
        if self.revision.has_structured_output() && result.get("isError").is_none() {
            let validator = self.output_schema(tool);
            let problems: Vec<String> = validator
                .iter_errors(&result["structuredContent"])
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                problems.is_empty(),
                "{tool}: {result} breaks its outputSchema: {problems:?}"
            );
        }
        result
    }

    fn output_schema(&mut self, tool: &str) -> Arc<jsonschema::Validator> {
        if !self.output_schemas.contains_key(tool) {
            let list = self.request("tools/list", json!({}));
            for t in list["result"]["tools"].as_array().unwrap() {
                let validator = jsonschema::validator_for(&t["outputSchema"]).unwrap();
                self.output_schemas
                    .insert(t["name"].as_str().unwrap().to_owned(), Arc::new(validator));
            }
        }
        self.output_schemas[tool].clone()
    }

    /// Calls a tool that must succeed; returns its structured content.
    pub fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments);
        assert_eq!(result.get("isError"), None, "{tool} failed: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        match &result["structuredContent"] {
            Value::Null => serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
            structured => structured.clone(),
        }
    }

    /// Calls a tool that must fail; returns its error text.
    pub fn fails(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments);
        assert_eq!(
            result["isError"], true,
            "{tool} should have failed: {result}"
        );
        result["content"][0]["text"].as_str().unwrap().to_owned()
    }

    /// The whole graph as sorted (entity, relation) lists, through `read_graph`.
    pub fn graph(&mut self) -> Value {
        self.ok("read_graph", json!({"limit": 10000}))
    }
}

/// The names of a graph answer's entities.
pub fn names(graph: &Value) -> Vec<String> {
    graph["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}
