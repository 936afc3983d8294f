//! `kgstore mcp`: an MCP server with the official memory server's tools
//! (`@modelcontextprotocol/server-memory`) on any kgstore store.
//!
//! A client configured for the official server works unchanged: the same nine
//! tools (`create_entities`, `create_relations`, `add_observations`,
//! `delete_entities`, `delete_observations`, `delete_relations`, `read_graph`,
//! `search_nodes`, `open_nodes`) with the same names, schemas, annotations,
//! result shapes and text, and the `memory://knowledge-graph` resource. Unlike
//! the official server, every tool call is one kgstore transaction, so nothing
//! is lost when calls arrive without waiting or when several server processes
//! share a store; reading tools answer a page at a time.
//!
//! The server speaks JSON-RPC, one message per line, over any reader and writer,
//! so tests drive it in-process:
//!
//! ```
//! use kgstore_mcp::{Server, ServerOptions};
//!
//! let mut server = Server::new(kgstore::Store::memory(), ServerOptions::default())?;
//! let input = concat!(
//!     r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"doc","version":"1"}}}"#, "\n",
//!     r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"Alice","entityType":"person","observations":["likes tea"]}]}}}"#, "\n",
//!     r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_nodes","arguments":{"query":"TEA"}}}"#, "\n",
//! );
//! let mut output = Vec::new();
//! server.serve(input.as_bytes(), &mut output)?;
//! let answers: Vec<serde_json::Value> = output
//!     .split(|&b| b == b'\n')
//!     .filter(|l| !l.is_empty())
//!     .map(serde_json::from_slice)
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(answers[2]["result"]["structuredContent"]["entities"][0]["name"], "Alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod mapping;
mod revision;
mod server;
pub mod tools;
pub mod wire;

pub use revision::Revision;
pub use server::{RESOURCE_URI, SERVER_NAME, Server, ServerOptions};

/// Serves `store` on this process's stdin and stdout until stdin closes.
/// Nothing but protocol messages is written to stdout; the server's `tracing`
/// events go wherever the process's subscriber sends them (the library installs
/// none: `kgstore mcp` installs the command line's, which writes to stderr or a
/// file, never stdout).
pub fn serve_stdio(store: kgstore::Store, options: ServerOptions) -> Result<(), kgstore::Error> {
    let backend = store.backend_name().to_owned();
    let mut server = Server::new(store, options)?;
    tracing::info!(backend = %backend, "kgstore mcp: serving on stdio");
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let result = server.serve(stdin.lock(), stdout.lock());
    tracing::info!("kgstore mcp: input closed, stopping");
    result.map_err(|e| kgstore::Error::io("standard input/output", e))
}
