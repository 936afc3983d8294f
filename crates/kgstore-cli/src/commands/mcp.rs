//! `kgstore mcp`: the store as an MCP memory server on stdin/stdout.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use kgstore::Store;
use kgstore_mcp::{Server, ServerOptions};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::{LogLevelArg, McpArgs};
use crate::logging::{LogConfig, LogWriter};

/// The server's log (installed by `run` in the crate root, through the command
/// line's one subscriber function): at `--log-level` (unless `-v` or `KGSTORE_LOG`
/// say otherwise) to stderr, or, with `--log-file`, to that file instead.
pub(crate) fn log_config(verbosity: u8, log_file: Option<PathBuf>, args: &McpArgs) -> LogConfig {
    let level = match args.log_level {
        LogLevelArg::Error => "error",
        LogLevelArg::Warn => "warn",
        LogLevelArg::Info => "info",
        LogLevelArg::Debug => "debug",
        LogLevelArg::Trace => "trace",
    };
    let mut config = LogConfig::from_cli(verbosity, None);
    config.filter.get_or_insert_with(|| level.to_owned());
    config.writers = vec![log_file.map_or(LogWriter::Stderr, LogWriter::JsonFile)];
    config
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &McpArgs) -> Result<()> {
    let options = ServerOptions {
        extra_tools: args.extra_tools,
        max_request_bytes: args.max_request_bytes,
        default_limit: args.default_limit,
    };
    // Bad flags are refused before the store is opened (and perhaps created).
    options.check()?;
    let store = ctx.open_for_write()?;
    if let Some(hint) = terminal_hint(std::io::stdin().is_terminal(), ctx.url) {
        // One line on stderr, and the server goes on: stdout is the protocol's.
        let _ = writeln!(std::io::stderr(), "{hint}");
    }
    kgstore_mcp::serve_stdio(store, options)?;
    Ok(())
}

/// What `kgstore mcp` says when its stdin is a terminal: someone started it by
/// hand, and it would otherwise wait there silently for protocol messages.
pub(crate) fn terminal_hint(stdin_is_terminal: bool, url: &str) -> Option<String> {
    stdin_is_terminal.then(|| {
        format!(
            "kgstore mcp: serving {url} to an MCP client (an AI agent) that talks JSON-RPC on \
             stdin/stdout; configure the client to start `kgstore mcp` (docs/mcp.md), \
             Ctrl-D stops it"
        )
    })
}

/// The demo's MCP step: a few tool calls against the demo's store, in-process,
/// as an agent would send them over stdio. Returns the lines to print and how
/// many calls were made.
pub(crate) fn demo_calls(store: &Store, url: &str, about: &str) -> Result<(Vec<String>, usize)> {
    let mut server = Server::new(store.clone(), ServerOptions::default())?;
    let mut lines = Vec::new();
    let mut send = |id: u64, method: &str, params: Value| -> Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answers = server.handle_line(request.to_string().as_bytes());
        answers
            .into_iter()
            .find(|a| a["id"] == id)
            .with_context(|| format!("the MCP server did not answer {method}"))
    };
    let init = send(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "demo", "version": "1"}}),
    )?;
    lines.push(format!(
        "   initialize → protocol {}, server {}",
        init["result"]["protocolVersion"], init["result"]["serverInfo"]["name"]
    ));
    let calls = [
        (
            "search_nodes",
            json!({"query": "serde_j", "limit": 3, "namesOnly": true}),
        ),
        (
            "create_entities",
            json!({"entities": [{"name": "demo note", "entityType": "Note", "observations": ["written by the demo through MCP"]}]}),
        ),
        (
            "create_relations",
            json!({"relations": [{"from": "demo note", "to": about, "relationType": "describes"}]}),
        ),
        ("open_nodes", json!({"names": ["demo note"]})),
        (
            "create_relations",
            json!({"relations": [{"from": "demo note", "to": "no such crate", "relationType": "describes"}]}),
        ),
    ];
    for (i, (tool, arguments)) in calls.iter().enumerate() {
        let answer = send(
            i as u64 + 1,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )?;
        let result = &answer["result"];
        let shown = if result["isError"] == true {
            format!(
                "isError: {}",
                result["content"][0]["text"].as_str().unwrap_or_default()
            )
        } else {
            let structured = &result["structuredContent"];
            let text = structured.to_string();
            match (
                structured["entities"].as_array(),
                structured["relations"].as_array(),
            ) {
                (Some(entities), Some(relations)) if text.len() > 200 => format!(
                    "{} entities ({}), {} relations",
                    entities.len(),
                    entities
                        .iter()
                        .filter_map(|e| e["name"].as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    relations.len()
                ),
                _ => text,
            }
        };
        lines.push(format!("   {tool} {arguments}"));
        lines.push(format!("     → {shown}"));
    }
    lines.push(format!(
        "   Serve it to an agent: kgstore --store {url} mcp   (client configuration: docs/mcp.md)"
    ));
    Ok((lines, calls.len() + 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::terminal_hint;

    #[test]
    fn a_terminal_on_stdin_gets_one_line_naming_the_docs_and_a_pipe_nothing() {
        let hint = terminal_hint(true, "sqlite://./data/kgstore.db").unwrap();
        assert!(!hint.contains('\n'), "{hint}");
        assert!(
            hint.contains("MCP client") && hint.contains("docs/mcp.md"),
            "{hint}"
        );
        assert!(hint.contains("sqlite://./data/kgstore.db"), "{hint}");
        assert_eq!(terminal_hint(false, "memory://"), None);
    }
}
