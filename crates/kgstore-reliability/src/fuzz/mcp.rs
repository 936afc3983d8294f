//! The MCP memory importer.

use kgstore::formats::{ImportOptions, export_mcp, import_mcp};
use kgstore::{GraphRead, Store};

use super::{Finding, Outcome};

const TARGET: &str = "mcp_import";

fn fail(message: String) -> Outcome {
    Err(Finding::new(TARGET, message))
}

fn export(store: &Store) -> Result<Vec<u8>, Finding> {
    let mut out = Vec::new();
    export_mcp(store, &mut out, |_| {})
        .map_err(|e| Finding::new(TARGET, format!("export of an imported store failed: {e}")))?;
    Ok(out)
}

/// Imports the bytes as an MCP memory file into a memory store. A failed import
/// must leave the store empty; a successful one must pass `check`, report what
/// the store holds, and export into a file that imports into the same content
/// and exports into the same bytes.
pub fn mcp_import(data: &[u8]) -> Outcome {
    let store = Store::memory();
    let imported = import_mcp(
        &store,
        data,
        data.len() as u64,
        ImportOptions::default(),
        |_| {},
    );
    let counts = (store.count_nodes(), store.count_edges());
    let (Ok(nodes), Ok(edges)) = counts else {
        return fail(format!("cannot count after an import: {counts:?}"));
    };
    let report = match imported {
        Err(_) => {
            if nodes != 0 || edges != 0 {
                return fail(format!(
                    "a failed import left {nodes} nodes and {edges} edges"
                ));
            }
            return Ok(());
        }
        Ok(report) => report,
    };
    if report.nodes != nodes || report.edges != edges {
        return fail(format!(
            "the import reported {report:?} but the store holds {nodes} nodes and {edges} edges"
        ));
    }
    match store.check() {
        Ok(check) if check.is_ok() => {}
        other => return fail(format!("an imported store does not check: {other:?}")),
    }
    let first = export(&store)?;
    let again = Store::memory();
    import_mcp(
        &again,
        first.as_slice(),
        first.len() as u64,
        ImportOptions::default(),
        |_| {},
    )
    .map_err(|e| {
        Finding::new(
            TARGET,
            format!(
                "the export of an import does not import: {e}\n  export: {}",
                String::from_utf8_lossy(&first)
            ),
        )
    })?;
    let second = export(&again)?;
    if first != second {
        return fail(format!(
            "export → import → export changed the file:\n  first:  {}\n  second: {}",
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second)
        ));
    }
    match (again.count_nodes(), again.count_edges()) {
        (Ok(n), Ok(e)) if n == nodes && e == edges => Ok(()),
        other => fail(format!(
            "re-importing the export gave {other:?}, not {nodes} nodes and {edges} edges"
        )),
    }
}
