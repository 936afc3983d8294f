//! `kgstore neighbors | traverse | path | deps …`.

use anyhow::Result;
use kgstore::{GraphRead, PathOptions, TraverseOptions};
use serde_json::json;

use super::Ctx;
use crate::cli::{DepsCommand, NeighborsArgs, PathArgs, TraverseArgs};
use crate::input;
use crate::output::cell;

pub(crate) fn neighbors(ctx: &mut Ctx<'_>, args: &NeighborsArgs) -> Result<()> {
    let relations = input::relations(&args.relations)?;
    let edges =
        ctx.open_existing()?
            .edges_of(&args.name, input::direction(args.direction), &relations)?;
    let rows: Vec<serde_json::Value> = edges
        .iter()
        .map(|e| {
            let (direction, other) = if e.from == args.name { ("out", &e.to) } else { ("in", &e.from) };
            json!({"direction": direction, "relation_type": e.relation_type, "node": other, "weight": e.metadata.weight})
        })
        .collect();
    if ctx.out.json() {
        return ctx.out.value(&rows);
    }
    let table: Vec<Vec<String>> = edges
        .iter()
        .map(|e| {
            let (arrow, other) = if e.from == args.name {
                ("->", &e.to)
            } else {
                ("<-", &e.from)
            };
            vec![
                arrow.to_owned(),
                e.relation_type.to_string(),
                cell(other),
                e.metadata.weight.to_string(),
            ]
        })
        .collect();
    ctx.out
        .table(&["DIR", "RELATION", "NODE", "WEIGHT"], &table)?;
    ctx.out.line(&format!("({} edge(s))", table.len()))
}

pub(crate) fn traverse(ctx: &mut Ctx<'_>, args: &TraverseArgs) -> Result<()> {
    let options = TraverseOptions {
        direction: input::direction(args.direction),
        relations: input::relations(&args.relations)?,
        max_depth: args.depth,
    };
    let visits = ctx.open_existing()?.traverse(&args.name, &options)?;
    if ctx.out.json() {
        return ctx.out.value(&visits);
    }
    let rows: Vec<Vec<String>> = visits
        .iter()
        .map(|v| vec![v.depth.to_string(), cell(&v.name)])
        .collect();
    ctx.out.table(&["HOPS", "NODE"], &rows)?;
    ctx.out.line(&format!(
        "({} node(s) within {} hop(s) of '{}')",
        rows.len(),
        args.depth,
        args.name
    ))
}

pub(crate) fn path(ctx: &mut Ctx<'_>, args: &PathArgs) -> Result<()> {
    let options = PathOptions {
        direction: input::direction(args.direction),
        relations: input::relations(&args.relations)?,
        weighted: args.weighted,
        max_depth: args.max_depth,
    };
    let path = ctx
        .open_existing()?
        .shortest_path(&args.from, &args.to, &options)?;
    if ctx.out.json() {
        return ctx.out.value(&path);
    }
    match path {
        Some(p) => {
            let cost = if args.weighted {
                format!("total weight {}", p.cost)
            } else {
                format!("{} hop(s)", p.edges.len())
            };
            ctx.out.line(&format!(
                "{} ({cost})",
                p.nodes
                    .iter()
                    .map(|n| cell(n))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ))
        }
        None => ctx
            .out
            .line(&format!("no path from '{}' to '{}'", args.from, args.to)),
    }
}

pub(crate) fn deps(ctx: &mut Ctx<'_>, command: &DepsCommand) -> Result<()> {
    let store = ctx.open_existing()?;
    let (names, what) = match command {
        DepsCommand::Resolve { name } => (
            store.resolve_dependencies(name)?,
            (
                "dependency",
                "dependencies",
                format!("of '{name}', in build order"),
            ),
        ),
        DepsCommand::Dependents { name, direct: true } => (
            store.direct_dependents(name)?,
            (
                "direct dependent",
                "direct dependents",
                format!("of '{name}'"),
            ),
        ),
        DepsCommand::Dependents {
            name,
            direct: false,
        } => (
            store.dependents(name)?,
            (
                "dependent",
                "dependents",
                format!("of '{name}', in rebuild order"),
            ),
        ),
    };
    if ctx.out.json() {
        return ctx.out.value(&names);
    }
    for (i, name) in names.iter().enumerate() {
        ctx.out.line(&format!("{:>4}  {}", i + 1, cell(name)))?;
    }
    // "(1 dependency of …)", not "(1 dependencies of …)".
    let (one, many, of) = what;
    let noun = if names.len() == 1 { one } else { many };
    ctx.out.line(&format!("({} {noun} {of})", names.len()))
}
