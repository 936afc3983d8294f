//! History commands (stores that keep it: git://): log and diff.

use anyhow::Result;
use kgstore::{Change, EntityKey, LogQuery};
use serde_json::json;

use super::Ctx;
use crate::cli::{DiffArgs, LogArgs};

/// `kgstore log [--node N] [--limit N]`.
pub(crate) fn log(ctx: &mut Ctx<'_>, args: &LogArgs) -> Result<()> {
    let store = ctx.open_history()?;
    let mut query = LogQuery::new();
    if let Some(name) = &args.node {
        query = query.key(EntityKey::Node(name.clone()));
    }
    if let Some(limit) = args.limit {
        query = query.limit(limit);
    }
    let revisions = store.log(&query)?;
    if ctx.out.json() {
        return ctx.out.value(&revisions);
    }
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            vec![
                r.id[..12.min(r.id.len())].to_owned(),
                kgstore::Timestamp::from_micros(r.committer.time.saturating_mul(1_000_000))
                    .map_or_else(|_| r.committer.time.to_string(), |t| t.to_string()),
                r.author.name.clone(),
                r.summary().to_owned(),
            ]
        })
        .collect();
    ctx.out
        .table(&["revision", "time", "author", "summary"], &rows)
}

/// `kgstore diff FROM TO`.
pub(crate) fn diff(ctx: &mut Ctx<'_>, args: &DiffArgs) -> Result<()> {
    let store = ctx.open_history()?;
    let diff = store.diff(&args.from, &args.to)?;
    if ctx.out.json() {
        return ctx.out.value(&diff);
    }
    fn mark<T>(change: &Change<T>) -> (&'static str, &T) {
        match change {
            Change::Added { new } => ("+", new),
            Change::Changed { new, .. } => ("~", new),
            Change::Removed { old } => ("-", old),
        }
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for change in &diff.nodes {
        let (sign, node) = mark(change);
        rows.push(vec![sign.into(), "node".into(), node.name.clone()]);
    }
    for change in &diff.edges {
        let (sign, edge) = mark(change);
        rows.push(vec![sign.into(), "edge".into(), edge.key().to_string()]);
    }
    for change in &diff.schemas {
        let (sign, (target, _)) = mark(change);
        rows.push(vec![sign.into(), "schema".into(), target.to_string()]);
    }
    if rows.is_empty() {
        return ctx.out.either(|| "no difference".to_owned(), &json!({}));
    }
    ctx.out.table(&["", "kind", "key"], &rows)
}
