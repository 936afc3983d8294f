//! `kgstore init | stats | check | optimize`.

use anyhow::Result;
use kgstore::{Error, GraphRead};
use serde_json::json;

use super::Ctx;

pub(crate) fn init(ctx: &mut Ctx<'_>) -> Result<()> {
    let store = ctx.open_for_write()?;
    let stats = store.stats()?;
    ctx.out.either(
        || format!("store {} is ready ({} backend): {} node(s), {} edge(s)", ctx.url, store.backend_name(), stats.nodes, stats.edges),
        &json!({"store": ctx.url, "backend": store.backend_name(), "nodes": stats.nodes, "edges": stats.edges}),
    )
}

pub(crate) fn stats(ctx: &mut Ctx<'_>) -> Result<()> {
    let stats = ctx.open_existing()?.stats()?;
    if ctx.out.json() {
        return ctx.out.value(&stats);
    }
    ctx.out.line(&format!(
        "{} node(s), {} edge(s), {} schema(s), {} dependency link(s)",
        stats.nodes, stats.edges, stats.schemas, stats.dependencies
    ))?;
    if !stats.node_types.is_empty() {
        let rows: Vec<Vec<String>> = stats
            .node_types
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        ctx.out.table(&["NODE TYPE", "NODES"], &rows)?;
    }
    if !stats.relation_types.is_empty() {
        let rows: Vec<Vec<String>> = stats
            .relation_types
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        ctx.out.table(&["RELATION", "EDGES"], &rows)?;
    }
    Ok(())
}

/// `kgstore check`: damage exits 6; notes (leftovers of an interrupted write that
/// the next write recovers, with what it will do) are printed and exit 0.
pub(crate) fn check(ctx: &mut Ctx<'_>) -> Result<()> {
    let report = ctx.open_existing()?.check()?;
    let errors = report.errors().count();
    let notes = report.notes().count();
    if ctx.out.json() {
        ctx.out.value(&report)?;
    } else {
        for problem in report.errors() {
            ctx.out.line(&format!("problem: {problem}"))?;
        }
        for note in report.notes() {
            ctx.out.line(&format!("note: {note}"))?;
        }
        if report.is_ok() {
            let storage = if report.backend_checked {
                " and the backend's storage"
            } else {
                ""
            };
            let notes = match notes {
                0 => String::new(),
                n => format!(" ({n} note(s): leftovers the next write recovers, not damage)"),
            };
            ctx.out.line(&format!(
                "checked {} node(s), {} edge(s){storage}: no problems{notes}",
                report.nodes, report.edges
            ))?;
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::corrupt(ctx.url, format!("the check found {errors} problem(s)")).into())
    }
}

pub(crate) fn optimize(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.open_for_write()?.optimize()?;
    ctx.out
        .either(|| "optimized".to_owned(), &json!({"optimized": true}))
}
