//! `kgstore edge …`.

use anyhow::Result;
use kgstore::{Edge, EdgeFilter, EdgeKey, GraphRead};

use super::Ctx;
use super::node::page;
use crate::cli::{EdgeCommand, EdgeCreateArgs, EdgeKeyArgs, EdgeListArgs};
use crate::input;
use crate::output::{Output, cell};

fn key(args: &EdgeKeyArgs) -> Result<EdgeKey> {
    Ok(EdgeKey::new(
        args.from.clone(),
        input::relation(&args.relation)?,
        args.to.clone(),
    ))
}

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &EdgeCommand) -> Result<()> {
    match command {
        EdgeCommand::Create(args) => create(ctx, args),
        EdgeCommand::Get(args) => {
            let edge = ctx.open_existing()?.get_edge(&key(args)?)?;
            show(ctx.out, &edge)
        }
        EdgeCommand::Delete(args) => {
            let removed = ctx.open_for_write()?.delete_edge(&key(args)?)?;
            ctx.out
                .either(|| format!("deleted edge {}", removed.key()), &removed)
        }
        EdgeCommand::List(args) => list(ctx, args),
    }
}

fn create(ctx: &mut Ctx<'_>, args: &EdgeCreateArgs) -> Result<()> {
    let k = key(&args.key)?;
    let mut edge = Edge::new(k.from, k.relation_type, k.to)?;
    edge.attributes = input::attributes(&args.attrs, Default::default())?;
    if let Some(weight) = args.weight {
        edge.metadata.weight = weight;
    }
    edge.metadata.confidence = args.confidence;
    edge.metadata.bidirectional = args.bidirectional;
    edge.metadata.source = args.source.clone();
    let created = ctx.open_for_write()?.create_edge(edge)?;
    ctx.out
        .either(|| format!("created edge {}", created.key()), &created)
}

fn list(ctx: &mut Ctx<'_>, args: &EdgeListArgs) -> Result<()> {
    let filter = EdgeFilter {
        from: args.from.clone(),
        to: args.to.clone(),
        relation_types: input::relations(&args.relations)?,
        min_weight: args.min_weight,
        attributes: args
            .wheres
            .iter()
            .map(|w| input::where_clause(w))
            .collect::<kgstore::Result<_>>()?,
    };
    let page = ctx
        .open_existing()?
        .list_edges(&filter, &page(&args.page)?)?;
    if ctx.out.json() {
        return ctx.out.value(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|e| {
            vec![
                cell(&e.from),
                e.relation_type.to_string(),
                cell(&e.to),
                e.metadata.weight.to_string(),
            ]
        })
        .collect();
    ctx.out.page(
        &["FROM", "RELATION", "TO", "WEIGHT"],
        &rows,
        page.next_cursor,
        "end of list",
    )
}

/// Shows one edge.
pub(crate) fn show(out: &mut Output, edge: &Edge) -> Result<()> {
    if out.json() {
        return out.value(edge);
    }
    let meta = &edge.metadata;
    out.line(&format!("edge         {}", edge.key()))?;
    out.line(&format!("version      {}", meta.version))?;
    out.line(&format!("created      {}", meta.created_at))?;
    out.line(&format!("updated      {}", meta.updated_at))?;
    out.line(&format!("weight       {}", meta.weight))?;
    if let Some(c) = meta.confidence {
        out.line(&format!("confidence   {c}"))?;
    }
    if meta.bidirectional {
        out.line("direction    both ways")?;
    }
    if let Some(source) = &meta.source {
        out.line(&format!("source       {}", cell(source)))?;
    }
    if !edge.attributes.is_empty() {
        out.line(&format!(
            "attributes   {}",
            serde_json::Value::Object(edge.attributes.clone())
        ))?;
    }
    Ok(())
}
