//! `kgstore node …`.

use anyhow::Result;
use kgstore::{GraphRead, Node, NodeFilter, OnDependents, PageRequest, Timestamp};
use serde_json::json;

use super::Ctx;
use crate::cli::{
    NodeCommand, NodeCreateArgs, NodeDeleteArgs, NodeListArgs, NodeUpdateArgs, PageArgs,
};
use crate::input;
use crate::output::{Output, cell};

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Create(args) => create(ctx, args),
        NodeCommand::Get { name } => {
            let node = ctx.open_existing()?.get_node(name)?;
            show(ctx.out, &node)
        }
        NodeCommand::Update(args) => update(ctx, args),
        NodeCommand::Delete(args) => delete(ctx, args),
        NodeCommand::List(args) => list(ctx, args),
    }
}

fn create(ctx: &mut Ctx<'_>, args: &NodeCreateArgs) -> Result<()> {
    let mut node = Node::new(args.name.clone(), args.node_type.clone())?;
    node.observations = args.observations.clone();
    node.attributes = input::attributes(&args.attrs, Default::default())?;
    node.dependencies = args.deps.clone();
    node.metadata.tags = args.tags.clone();
    node.metadata.status = args.status.clone();
    node.metadata.author = args.author.clone();
    node.metadata.source = args.source.clone();
    let created = ctx.open_for_write()?.create_node(node)?;
    ctx.out.either(
        || format!("created node '{}' (version 1)", created.name),
        &created,
    )
}

fn update(ctx: &mut Ctx<'_>, args: &NodeUpdateArgs) -> Result<()> {
    let store = ctx.open_for_write()?;
    let updated = store.write(|tx| {
        let mut node = tx.get_node(&args.name)?;
        if let Some(node_type) = &args.node_type {
            node.node_type = node_type.clone();
        }
        if args.clear_observations {
            node.observations.clear();
        }
        node.observations
            .extend(args.add_observations.iter().cloned());
        let mut attributes = input::attributes(&args.attrs, std::mem::take(&mut node.attributes))?;
        for key in &args.unset_attr {
            attributes.remove(key);
        }
        node.attributes = attributes;
        node.dependencies.retain(|d| !args.remove_deps.contains(d));
        for dep in &args.add_deps {
            if !node.dependencies.contains(dep) {
                node.dependencies.push(dep.clone());
            }
        }
        node.metadata.tags.retain(|t| !args.remove_tags.contains(t));
        node.metadata.tags.extend(args.add_tags.iter().cloned());
        if let Some(status) = &args.status {
            node.metadata.status = Some(status.clone());
        }
        tx.update_node(node, args.expect_version)
    })?;
    ctx.out.either(
        || {
            format!(
                "updated node '{}' to version {}",
                updated.name, updated.metadata.version
            )
        },
        &updated,
    )
}

fn delete(ctx: &mut Ctx<'_>, args: &NodeDeleteArgs) -> Result<()> {
    let mode = if args.cascade {
        OnDependents::Cascade
    } else if args.detach {
        OnDependents::Detach
    } else {
        OnDependents::Refuse
    };
    let report = ctx.open_for_write()?.delete_node(&args.name, mode)?;
    ctx.out.either(
        || {
            let mut text = format!(
                "deleted node '{}' and {} edge(s)",
                args.name, report.edges_removed
            );
            if report.deleted.len() > 1 {
                text.push_str(&format!(
                    "; also deleted its dependents: {}",
                    report.deleted[1..].join(", ")
                ));
            }
            if !report.detached.is_empty() {
                text.push_str(&format!("; detached from: {}", report.detached.join(", ")));
            }
            text
        },
        &report,
    )
}

/// Turns the pagination flags into a page request.
pub(crate) fn page(args: &PageArgs) -> Result<PageRequest> {
    let cursor = args.cursor.as_deref().map(str::parse).transpose()?;
    Ok(PageRequest::first(args.limit).after(cursor))
}

fn list(ctx: &mut Ctx<'_>, args: &NodeListArgs) -> Result<()> {
    let filter = NodeFilter {
        node_types: args.types.clone(),
        name_prefix: args.prefix.clone(),
        tags: args.tags.clone(),
        status: args.status.clone(),
        attributes: args
            .wheres
            .iter()
            .map(|w| input::where_clause(w))
            .collect::<kgstore::Result<_>>()?,
        updated_since: args.since.as_deref().map(Timestamp::parse).transpose()?,
        text: args.text.clone(),
    };
    let page = ctx
        .open_existing()?
        .list_nodes(&filter, &page(&args.page)?)?;
    if ctx.out.json() {
        return ctx.out.value(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|n| {
            vec![
                cell(&n.name),
                n.node_type.clone(),
                n.metadata.version.to_string(),
                n.metadata.updated_at.to_string(),
                cell(&n.metadata.tags.join(",")),
            ]
        })
        .collect();
    ctx.out.page(
        &["NAME", "TYPE", "VERSION", "UPDATED", "TAGS"],
        &rows,
        page.next_cursor,
        "end of list",
    )
}

/// Shows one node.
pub(crate) fn show(out: &mut Output, node: &Node) -> Result<()> {
    if out.json() {
        return out.value(node);
    }
    let meta = &node.metadata;
    let mut rows = vec![
        vec!["name".to_owned(), cell(&node.name)],
        vec!["type".to_owned(), node.node_type.clone()],
        vec!["version".to_owned(), meta.version.to_string()],
        vec!["created".to_owned(), meta.created_at.to_string()],
        vec!["updated".to_owned(), meta.updated_at.to_string()],
    ];
    let mut optional = |key: &str, value: Option<&String>| {
        if let Some(v) = value {
            rows.push(vec![key.to_owned(), cell(v)]);
        }
    };
    optional("status", meta.status.as_ref());
    optional("author", meta.author.as_ref());
    optional("source", meta.source.as_ref());
    if !meta.tags.is_empty() {
        rows.push(vec!["tags".to_owned(), cell(&meta.tags.join(", "))]);
    }
    if !node.dependencies.is_empty() {
        rows.push(vec![
            "depends on".to_owned(),
            cell(&node.dependencies.join(", ")),
        ]);
    }
    for (i, observation) in node.observations.iter().enumerate() {
        rows.push(vec![
            if i == 0 {
                "observations".to_owned()
            } else {
                String::new()
            },
            format!("- {}", cell(observation)),
        ]);
    }
    if !node.attributes.is_empty() {
        rows.push(vec![
            "attributes".to_owned(),
            json!(node.attributes).to_string(),
        ]);
    }
    for row in rows {
        out.line(&format!("{:<13}{}", row[0], row[1]))?;
    }
    Ok(())
}
