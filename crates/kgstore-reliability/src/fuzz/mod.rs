//! Fuzz targets: plain functions over bytes that must never panic whatever the
//! bytes, and check properties of what they exercise.
//!
//! Each target returns `Ok(())`, or a [`Finding`]: a property that did not hold,
//! described. A panic inside kgstore propagates as a panic. The libfuzzer
//! targets in `fuzz/` and the stable driver `tests/fuzz.rs` turn a finding into
//! a panic so that the fuzzer or the test reports it with its input.
//!
//! | target | exercises | properties |
//! |---|---|---|
//! | [`node_json`] | `Node` JSON decoding | decode → encode → decode gives the same node, compact and pretty |
//! | [`edge_json`] | `Edge` JSON decoding | the same for edges, and the key survives |
//! | [`backup_dir`] | backup manifest and JSONL reader: `verify`, `restore` | a backup that verifies restores, one that does not is refused, a restored store backs up into a backup that verifies and restores to the same content |
//! | [`mcp_import`] | the MCP memory importer | a failed import leaves nothing; an import passes `check`, and export → import → export is a fixed point |
//! | [`file_names`] | jsonfs key-to-file-name encoding | `decode(encode(k)) == k`, one path component, no `..`, separators, NUL, upper case, ≤ 255 bytes, device names escaped, distinct keys give distinct names |
//! | [`ops_vs_memory`] | every backend against the memory backend | the same result for every operation, the same content at the end, `check` clean |
//! | [`fountain`] | the Fountain parser and printer | only non-UTF-8 and NUL refused, at their offset; spans and scenes tile the text; byte-for-byte reprint; the canonical print reads back as the normalized document and is a fixed point |

mod backup;
mod fountain;
pub mod generate;
mod input;
mod json;
mod mcp;
mod names;
mod ops;

use std::fmt;
use std::path::PathBuf;

pub use backup::{
    DROP_SCHEMAS, EXTRA_FILE, FIX_MANIFEST, SEPARATOR, assemble_backup_input, backup_dir,
};
pub use fountain::fountain;
pub use input::Input;
pub use json::{edge_json, node_json};
pub use mcp::mcp_import;
pub use names::file_names;
pub use ops::ops_vs_memory;

/// A property that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The target that found it.
    pub target: &'static str,
    /// What went wrong.
    pub message: String,
}

impl Finding {
    /// A finding of `target`.
    pub fn new(target: &'static str, message: impl Into<String>) -> Self {
        Self {
            target,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fuzz target {}: {}", self.target, self.message)
    }
}

impl std::error::Error for Finding {}

/// What a target returns.
pub type Outcome = Result<(), Finding>;

/// A fuzz target.
pub type Target = fn(&[u8]) -> Outcome;

/// Every target by name, as `fuzz/` and `tests/fuzz.rs` know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("node_json", node_json),
    ("edge_json", edge_json),
    ("backup_dir", backup_dir),
    ("mcp_import", mcp_import),
    ("file_names", file_names),
    ("ops_vs_memory", ops_vs_memory),
    ("fountain", fountain),
];

/// Sets where targets that need files make them.
pub const DIR_VAR: &str = "KGSTORE_FUZZ_DIR";

/// A fresh temporary folder for one input: under `KGSTORE_FUZZ_DIR` if set,
/// else `/dev/shm` where writable (the targets test logic, not the disk), else
/// the system's temporary folder.
pub(crate) fn scratch(target: &'static str) -> Result<tempfile::TempDir, Finding> {
    let base = match std::env::var_os(DIR_VAR) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let shm = std::path::Path::new("/dev/shm");
            if shm
                .metadata()
                .is_ok_and(|m| m.is_dir() && !m.permissions().readonly())
            {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        }
    };
    tempfile::Builder::new()
        .prefix("kgstore-fuzz-")
        .tempdir_in(&base)
        .map_err(|e| {
            Finding::new(
                target,
                format!("cannot make a folder in {}: {e}", base.display()),
            )
        })
}

/// A result as text that compares across backends: the value as JSON without the
/// store-stamped timestamps, or the error's kind.
pub(crate) fn normalized<T: serde::Serialize>(result: &kgstore::Result<T>) -> String {
    match result {
        Ok(value) => match serde_json::to_value(value) {
            Ok(mut json) => {
                strip_timestamps(&mut json);
                format!("Ok({json})")
            }
            Err(e) => format!("Ok(<cannot encode: {e}>)"),
        },
        Err(e) => format!("Err({:?})", e.kind()),
    }
}

/// Removes `created_at` and `updated_at` from every `metadata` object inside `value`.
pub(crate) fn strip_timestamps(value: &mut serde_json::Value) {
    crate::snapshot::remove_timestamps(value);
    match value {
        serde_json::Value::Object(map) => map.values_mut().for_each(strip_timestamps),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_timestamps),
        _ => {}
    }
}
