//! History commands (stores that keep it: git://): log, diff and show.

use anyhow::Result;
use kgstore::{Change, EntityKey, LogQuery};
use serde_json::json;

use super::Ctx;
use crate::cli::{DiffArgs, DocGetArgs, LogArgs, ShowArgs};

/// `kgstore log [--node N | --key K] [--limit N]`.
pub(crate) fn log(ctx: &mut Ctx<'_>, args: &LogArgs) -> Result<()> {
    let store = ctx.open_history()?;
    let mut query = LogQuery::new();
    if let Some(name) = &args.node {
        query = query.key(EntityKey::Node(name.clone()));
    }
    if let Some(key) = &args.key {
        query = query.key(EntityKey::Document(key.clone()));
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
    for change in &diff.documents {
        let (sign, meta) = mark(change);
        rows.push(vec![sign.into(), "document".into(), meta.key.clone()]);
    }
    if rows.is_empty() {
        return ctx.out.either(|| "no difference".to_owned(), &json!({}));
    }
    ctx.out.table(&["", "kind", "key"], &rows)
}

/// `kgstore show REV:KEY [--out FILE]`: a document's bytes at a revision.
pub(crate) fn show(ctx: &mut Ctx<'_>, args: &ShowArgs) -> Result<()> {
    let Some((revision, key)) = args.spec.split_once(':') else {
        return Err(kgstore::Error::invalid_input(
            format!("'{}'", args.spec),
            "expected REVISION:KEY, such as main~1:scripts/pilot.fountain",
        )
        .into());
    };
    if ctx.at.is_some() {
        return Err(
            kgstore::Error::invalid_input("--at", "show takes its revision in REV:KEY").into(),
        );
    }
    let get = DocGetArgs {
        key: key.to_owned(),
        out: args.out.clone(),
    };
    super::doc::get_at(ctx, &get, Some(revision))
}
