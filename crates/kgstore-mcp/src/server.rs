//! The protocol: one JSON-RPC message per line in, answers out, strictly in order.

use std::io::{self, BufRead, Write};
use std::time::Instant;

use kgstore::{Error, Store};
use serde_json::{Map, Value, json};

use crate::revision::Revision;
use crate::tools::{Tools, for_revision};
use crate::wire::{
    INTERNAL_ERROR, INVALID_REQUEST, Incoming, LineReader, METHOD_NOT_FOUND, PARSE_ERROR, RpcError,
    UNSUPPORTED_PROTOCOL_VERSION, id_of_truncated, is_valid_id, notification, result_response,
};

/// The one resource: the whole graph, as `read_graph` gives it without paging.
pub const RESOURCE_URI: &str = "memory://knowledge-graph";

/// The server's name in `serverInfo`.
pub const SERVER_NAME: &str = "kgstore";

const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";

/// How long a client may cache what never changes while a server runs (tool and
/// resource lists, the discovery result): one hour.
const STATIC_TTL_MS: u64 = 3_600_000;

/// Free text a host may show the model: how to use the memory well.
const INSTRUCTIONS: &str = "A knowledge graph kept by kgstore: entities (a name, a type, \
observations) and relations between them, safe to use from several processes at once. Search \
(search_nodes) before creating entities, to extend what exists rather than duplicate it. \
search_nodes finds entities by their words in any order, case and accents, the last word also as \
a prefix, best match first, and always every entity holding the whole query. read_graph, search_nodes and open_nodes answer a page at a time: when an answer has a \
nextCursor, pass it back as cursor for the rest; limit sets the page size and namesOnly leaves \
the observations out.";

/// How a server behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Offer the extra tools (traverse, shortest_path, graph_stats) beside the nine.
    pub extra_tools: bool,
    /// The longest request line accepted, in bytes; longer ones are answered
    /// with an error and dropped without being held in memory.
    pub max_request_bytes: usize,
    /// How many entities `read_graph`, `search_nodes` and `open_nodes` answer
    /// with when the call does not say.
    pub default_limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            extra_tools: false,
            max_request_bytes: 8 * 1024 * 1024,
            default_limit: 200,
        }
    }
}

/// What one request gets sent back: notifications that must come first, the
/// response (none yet for an open `subscriptions/listen`), notifications after.
#[derive(Default)]
struct Reply {
    before: Vec<Value>,
    response: Option<Value>,
    after: Vec<Value>,
}

impl Reply {
    fn response(response: Value) -> Self {
        Self {
            response: Some(response),
            ..Self::default()
        }
    }
}

/// How a request is served: which revision, and whether statelessly (2026-07-28).
#[derive(Clone, Copy)]
struct Ctx {
    revision: Revision,
}

/// An MCP server over one kgstore store.
///
/// Drive it with [`Server::serve`] over any reader and writer (stdin and stdout
/// for `kgstore mcp`), or message by message with [`Server::handle_line`]. It
/// answers both eras of the protocol: an `initialize` handshake selects a
/// legacy revision (2024-11-05 to 2025-11-25) for the process; a request that
/// carries `_meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28"` is
/// served statelessly by that revision; `server/discover` is answered always.
pub struct Server {
    store: Store,
    options: ServerOptions,
    tools: Tools,
    /// The legacy revision `initialize` chose.
    legacy: Option<Revision>,
    /// Whether the client subscribed to the resource (legacy `resources/subscribe`).
    subscribed: bool,
    /// Open `subscriptions/listen` requests (2026-07-28): their ids, and whether
    /// they asked for the resource's updates.
    listens: Vec<(Value, bool)>,
}

impl ServerOptions {
    /// Refuses options no server can run with (a default page limit outside 1 to
    /// 10,000, a largest request of 0 bytes), naming the option: what
    /// [`Server::new`] checks, for a caller to check before it opens a store.
    pub fn check(&self) -> Result<(), Error> {
        if self.default_limit == 0 || self.default_limit as u64 > crate::tools::MAX_LIMIT {
            return Err(Error::invalid_input(
                "default page limit",
                format!("must be between 1 and {}", crate::tools::MAX_LIMIT),
            ));
        }
        if self.max_request_bytes == 0 {
            return Err(Error::invalid_input(
                "largest request",
                "must be at least one byte",
            ));
        }
        Ok(())
    }
}

impl Server {
    /// A server over `store`.
    pub fn new(store: Store, options: ServerOptions) -> Result<Self, Error> {
        options.check()?;
        let tools = Tools::new(options.extra_tools, options.default_limit)?;
        Ok(Self {
            store,
            options,
            tools,
            legacy: None,
            subscribed: false,
            listens: Vec::new(),
        })
    }

    /// The store served.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves requests from `input` until it ends, writing every answer to
    /// `output` as one line and flushing after each request's answers. Requests
    /// are handled strictly in the order they arrive, each tool call in its own
    /// transaction. At the end of the input, open `subscriptions/listen`
    /// requests are answered (the subscription ends) before returning.
    pub fn serve(&mut self, input: impl BufRead, mut output: impl Write) -> io::Result<()> {
        let mut reader = LineReader::new(input, self.options.max_request_bytes);
        while let Some(incoming) = reader.next_line()? {
            let messages = match incoming {
                Incoming::Line(line) => self.handle_line(&line),
                Incoming::TooLong { size, head, tail } => self.handle_too_long(size, &head, &tail),
            };
            write_messages(&mut output, &messages)?;
        }
        let closing = self.finish();
        write_messages(&mut output, &closing)
    }

    /// Handles one line of input, giving the messages to send in order.
    pub fn handle_line(&mut self, line: &[u8]) -> Vec<Value> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Vec::new();
        }
        let message: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(bytes = line.len(), "a line that is not JSON: {e}");
                return vec![
                    RpcError::new(PARSE_ERROR, format!("Parse error: {e}")).response(None),
                ];
            }
        };
        let mut out = Vec::new();
        match message {
            Value::Array(items) => self.handle_batch(items, &mut out),
            Value::Object(object) => {
                let reply = self.handle_object(object);
                out.extend(reply.before);
                out.extend(reply.response);
                out.extend(reply.after);
            }
            _ => out.push(
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid Request: a message must be a JSON object",
                )
                .response(None),
            ),
        }
        out
    }

    /// Answers a request line longer than the limit, which was read and dropped.
    pub fn handle_too_long(&mut self, size: u64, head: &[u8], tail: &[u8]) -> Vec<Value> {
        let id = id_of_truncated(head, tail);
        tracing::warn!(
            size,
            limit = self.options.max_request_bytes,
            "a request over the size limit"
        );
        vec![
            RpcError::new(
                INVALID_REQUEST,
                format!(
                    "Invalid Request: the request is {size} bytes long; this server takes at most {} (kgstore mcp --max-request-bytes)",
                    self.options.max_request_bytes
                ),
            )
            .with_data(json!({"size": size, "limit": self.options.max_request_bytes}))
            .response(id.as_ref()),
        ]
    }

    /// The messages to send when the input ends: each open `subscriptions/listen`
    /// request is answered, which ends its subscription.
    pub fn finish(&mut self) -> Vec<Value> {
        let ctx = Ctx {
            revision: Revision::V2026_07_28,
        };
        std::mem::take(&mut self.listens)
            .into_iter()
            .map(|(id, _)| {
                let result = json!({"_meta": {SUBSCRIPTION_ID_KEY: id}});
                result_response(&id, self.modern_result(ctx, result))
            })
            .collect()
    }

    fn handle_batch(&mut self, items: Vec<Value>, out: &mut Vec<Value>) {
        let revision = self.legacy.unwrap_or(Revision::LATEST_LEGACY);
        if items.is_empty() || !revision.allows_batches() {
            let why = if items.is_empty() {
                "an empty batch".to_owned()
            } else {
                format!("JSON-RPC batches are not part of MCP {revision} (only of 2025-03-26)")
            };
            out.push(
                RpcError::new(INVALID_REQUEST, format!("Invalid Request: {why}")).response(None),
            );
            return;
        }
        let mut responses = Vec::new();
        let mut after = Vec::new();
        for item in items {
            match item {
                Value::Object(object) if object.get("method") == Some(&json!("initialize")) => {
                    let id = object.get("id").filter(|id| is_valid_id(id));
                    responses.push(
                        RpcError::new(
                            INVALID_REQUEST,
                            "Invalid Request: initialize must not be part of a batch",
                        )
                        .response(id),
                    );
                }
                Value::Object(object) => {
                    let reply = self.handle_object(object);
                    out.extend(reply.before);
                    responses.extend(reply.response);
                    after.extend(reply.after);
                }
                _ => responses.push(
                    RpcError::new(
                        INVALID_REQUEST,
                        "Invalid Request: a message must be a JSON object",
                    )
                    .response(None),
                ),
            }
        }
        if !responses.is_empty() {
            out.push(Value::Array(responses));
        }
        out.extend(after);
    }

    fn handle_object(&mut self, object: Map<String, Value>) -> Reply {
        let id = object.get("id").cloned();
        if let Some(id) = &id
            && !is_valid_id(id)
        {
            return Reply::response(
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid Request: an id must be a string or an integer",
                )
                .response(None),
            );
        }
        let invalid = |message: &str| {
            Reply::response(
                RpcError::new(INVALID_REQUEST, format!("Invalid Request: {message}"))
                    .response(id.as_ref()),
            )
        };
        if object.get("jsonrpc") != Some(&json!("2.0")) {
            return invalid("jsonrpc must be \"2.0\"");
        }
        let method = match object.get("method") {
            Some(Value::String(method)) => method.clone(),
            Some(_) => return invalid("method must be a string"),
            None if object.contains_key("result") || object.contains_key("error") => {
                // A response: this server sends no requests, so there is nothing to match it to.
                tracing::debug!("ignored a response from the client");
                return Reply::default();
            }
            None => return invalid("a request needs a method"),
        };
        let params = match object.get("params") {
            None => Map::new(),
            Some(Value::Object(params)) => params.clone(),
            Some(_) => {
                return match &id {
                    Some(id) => Reply::response(
                        RpcError::invalid_params("Invalid params: params must be an object")
                            .response(Some(id)),
                    ),
                    None => Reply::default(),
                };
            }
        };
        match id {
            None => {
                self.notification(&method);
                Reply::default()
            }
            Some(id) => self.request(&id, &method, &params),
        }
    }

    fn notification(&mut self, method: &str) {
        // `notifications/initialized` needs nothing; `notifications/cancelled` comes
        // too late to stop anything, since each request is answered before the
        // next line is read; others are ignored as JSON-RPC asks.
        tracing::debug!(method, "notification");
    }

    fn request(&mut self, id: &Value, method: &str, params: &Map<String, Value>) -> Reply {
        let started = Instant::now();
        let ctx = match self.context(params) {
            Ok(ctx) => ctx,
            Err(e) => return Reply::response(e.response(Some(id))),
        };
        let mut reply = Reply::default();
        let result = match method {
            "initialize" => self.initialize(params),
            "ping" if !ctx.revision.is_modern() => Ok(Some(json!({}))),
            "server/discover" => Ok(Some(self.discover())),
            "tools/list" => self.tools_list(ctx, params),
            "tools/call" => self.tools_call(ctx, params, &mut reply.after),
            "resources/list" => Ok(Some(self.resources_list(ctx))),
            "resources/templates/list" => Ok(Some(self.cacheable(
                ctx,
                json!({"resourceTemplates": []}),
                STATIC_TTL_MS,
                "public",
            ))),
            "resources/read" => self.resources_read(ctx, params),
            "resources/subscribe" | "resources/unsubscribe" if !ctx.revision.is_modern() => {
                self.subscribe(ctx, params, method == "resources/subscribe")
            }
            "subscriptions/listen" if ctx.revision.is_modern() => {
                self.listen(id, params, &mut reply.before)
            }
            _ => Err(RpcError::new(METHOD_NOT_FOUND, "Method not found")),
        };
        tracing::debug!(
            method,
            ok = result.is_ok(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        reply.response = match result {
            Ok(Some(result)) => {
                // `server/discover` belongs to 2026-07-28 whoever asks: its result
                // has that revision's shape even for a client that has not said
                // which revision it speaks (the dual-era probe).
                let result = if ctx.revision.is_modern() || method == "server/discover" {
                    self.modern_result(ctx, result)
                } else {
                    result
                };
                Some(result_response(id, result))
            }
            Ok(None) => None,
            Err(e) => {
                reply.after.clear();
                Some(e.response(Some(id)))
            }
        };
        reply
    }

    /// The revision a request is served by: the one its `_meta` names (2026-07-28
    /// statelessly; a legacy one as that revision), else the one `initialize`
    /// chose, else the newest legacy one (a client that skips the handshake is
    /// served, as the official server serves it).
    fn context(&self, params: &Map<String, Value>) -> Result<Ctx, RpcError> {
        let meta = params.get("_meta").and_then(Value::as_object);
        let Some(version) = meta.and_then(|m| m.get(PROTOCOL_VERSION_KEY)) else {
            return Ok(Ctx {
                revision: self.legacy.unwrap_or(Revision::LATEST_LEGACY),
            });
        };
        let Some(version) = version.as_str() else {
            return Err(RpcError::invalid_params(format!(
                "Invalid params: _meta {PROTOCOL_VERSION_KEY} must be a string"
            )));
        };
        let Some(revision) = Revision::parse(version) else {
            return Err(RpcError::new(
                UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
            )
            .with_data(json!({"supported": supported_versions(), "requested": version})));
        };
        if revision.is_modern()
            && !meta
                .and_then(|m| m.get(CLIENT_CAPABILITIES_KEY))
                .is_some_and(Value::is_object)
        {
            return Err(RpcError::invalid_params(format!(
                "Invalid params: _meta {CLIENT_CAPABILITIES_KEY} is required (an object) in protocol version {revision}"
            )));
        }
        Ok(Ctx { revision })
    }

    fn server_info(&self, revision: Revision) -> Value {
        let mut info = json!({"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")});
        if revision.has_structured_output() {
            info["title"] = json!("kgstore memory server");
        }
        info
    }

    fn capabilities() -> Value {
        json!({
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": false}
        })
    }

    /// Adds what every 2026-07-28 result carries: `resultType` and the server's identity.
    fn modern_result(&self, ctx: Ctx, mut result: Value) -> Value {
        result["resultType"] = json!("complete");
        let info = self.server_info(ctx.revision);
        match result.get_mut("_meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.insert(SERVER_INFO_KEY.into(), info);
            }
            None => result["_meta"] = json!({SERVER_INFO_KEY: info}),
        }
        result
    }

    /// Adds the 2026-07-28 cache hints to a list or read result.
    fn cacheable(&self, ctx: Ctx, mut result: Value, ttl_ms: u64, scope: &str) -> Value {
        if ctx.revision.is_modern() {
            result["ttlMs"] = json!(ttl_ms);
            result["cacheScope"] = json!(scope);
        }
        result
    }

    fn initialize(&mut self, params: &Map<String, Value>) -> Result<Option<Value>, RpcError> {
        let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                "Invalid params: initialize needs protocolVersion (a string)",
            ));
        };
        let revision = Revision::parse(requested)
            .filter(|r| !r.is_modern())
            .unwrap_or(Revision::LATEST_LEGACY);
        self.legacy = Some(revision);
        tracing::info!(requested, answered = %revision, "initialize");
        Ok(Some(json!({
            "protocolVersion": revision.as_str(),
            "capabilities": Self::capabilities(),
            "serverInfo": self.server_info(revision),
            "instructions": INSTRUCTIONS,
        })))
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": supported_versions(),
            "capabilities": Self::capabilities(),
            "instructions": INSTRUCTIONS,
            "ttlMs": STATIC_TTL_MS,
            "cacheScope": "public",
        })
    }

    fn tools_list(&self, ctx: Ctx, params: &Map<String, Value>) -> Result<Option<Value>, RpcError> {
        if params.get("cursor").is_some_and(|c| !c.is_null()) {
            return Err(RpcError::invalid_params(
                "Invalid params: the tool list has one page; this cursor is not from this server",
            ));
        }
        let tools: Vec<Value> = self
            .tools
            .definitions()
            .map(|t| for_revision(t, ctx.revision))
            .collect();
        Ok(Some(self.cacheable(
            ctx,
            json!({"tools": tools}),
            STATIC_TTL_MS,
            "public",
        )))
    }

    fn tools_call(
        &mut self,
        ctx: Ctx,
        params: &Map<String, Value>,
        after: &mut Vec<Value>,
    ) -> Result<Option<Value>, RpcError> {
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                "Invalid params: tools/call needs name (a string)",
            ));
        };
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(args @ Value::Object(_)) => args.clone(),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid params: arguments must be an object",
                ));
            }
        };
        if !self.tools.has(name) {
            return Err(RpcError::invalid_params(format!("Unknown tool: {name}")));
        }
        let outcome = self.tools.call(&self.store, name, &arguments);
        if outcome.is_error {
            tracing::info!(tool = name, "tool call failed");
            tracing::debug!(tool = name, error = %outcome.text, "tool call failed");
        }
        if outcome.changed {
            after.extend(self.updated_notifications());
        }
        Ok(Some(
            outcome.to_result(ctx.revision.has_structured_output()),
        ))
    }

    /// `notifications/resources/updated` for whoever asked for them.
    fn updated_notifications(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if self.subscribed {
            out.push(notification(
                "notifications/resources/updated",
                json!({"uri": RESOURCE_URI}),
            ));
        }
        for (id, wants) in &self.listens {
            if *wants {
                out.push(notification(
                    "notifications/resources/updated",
                    json!({"uri": RESOURCE_URI, "_meta": {SUBSCRIPTION_ID_KEY: id}}),
                ));
            }
        }
        out
    }

    fn resources_list(&self, ctx: Ctx) -> Value {
        let mut resource = json!({
            "uri": RESOURCE_URI,
            "name": "knowledge-graph",
            "description": "The full knowledge graph with all entities and relations",
            "mimeType": "application/json",
        });
        if ctx.revision.has_structured_output() {
            resource["title"] = json!("Knowledge Graph");
        }
        self.cacheable(
            ctx,
            json!({"resources": [resource]}),
            STATIC_TTL_MS,
            "public",
        )
    }

    fn resource_uri(ctx: Ctx, params: &Map<String, Value>) -> Result<&str, RpcError> {
        let Some(uri) = params.get("uri").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                "Invalid params: uri (a string) is required",
            ));
        };
        if uri != RESOURCE_URI {
            return Err(RpcError::new(
                ctx.revision.resource_not_found_code(),
                format!("Resource {uri} not found"),
            )
            .with_data(json!({"uri": uri})));
        }
        Ok(uri)
    }

    fn resources_read(
        &self,
        ctx: Ctx,
        params: &Map<String, Value>,
    ) -> Result<Option<Value>, RpcError> {
        let uri = Self::resource_uri(ctx, params)?;
        let text = crate::tools::whole_graph(&self.store)
            .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("Internal error: {e}")))?;
        let result =
            json!({"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]});
        // The graph is the user's data and changes with every write.
        Ok(Some(self.cacheable(ctx, result, 0, "private")))
    }

    fn subscribe(
        &mut self,
        ctx: Ctx,
        params: &Map<String, Value>,
        on: bool,
    ) -> Result<Option<Value>, RpcError> {
        Self::resource_uri(ctx, params)?;
        self.subscribed = on;
        Ok(Some(json!({})))
    }

    fn listen(
        &mut self,
        id: &Value,
        params: &Map<String, Value>,
        before: &mut Vec<Value>,
    ) -> Result<Option<Value>, RpcError> {
        let Some(filter) = params.get("notifications").and_then(Value::as_object) else {
            return Err(RpcError::invalid_params(
                "Invalid params: subscriptions/listen needs notifications (an object)",
            ));
        };
        let wants = filter
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .is_some_and(|uris| uris.iter().any(|u| u == RESOURCE_URI));
        // Only what this server can send is acknowledged: the graph's updates.
        let honoured = if wants {
            json!({"resourceSubscriptions": [RESOURCE_URI]})
        } else {
            json!({})
        };
        before.push(notification(
            "notifications/subscriptions/acknowledged",
            json!({"notifications": honoured, "_meta": {SUBSCRIPTION_ID_KEY: id}}),
        ));
        self.listens.push((id.clone(), wants));
        Ok(None)
    }
}

/// Every revision the server speaks, newest first.
fn supported_versions() -> Vec<&'static str> {
    Revision::ALL.iter().rev().map(|r| r.as_str()).collect()
}

/// Writes each message as one line, all of them with one `write_all`: stdout is
/// line-buffered with a 1 KiB buffer, so serializing into it directly cut a
/// 60 KB answer into some 60 pipe writes (each waking the client).
fn write_messages(output: &mut impl Write, messages: &[Value]) -> io::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::new();
    for message in messages {
        serde_json::to_writer(&mut lines, message)?;
        lines.push(b'\n');
    }
    output.write_all(&lines)?;
    output.flush()
}
