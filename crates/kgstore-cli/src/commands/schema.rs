//! `kgstore schema …`.

use anyhow::Result;
use kgstore::{Error, GraphRead, SchemaTarget};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::{SchemaCommand, SchemaTargetArgs};
use crate::input;

fn target(args: &SchemaTargetArgs) -> Result<SchemaTarget> {
    let target = match (&args.node_type, &args.relation) {
        (Some(t), None) => SchemaTarget::NodeType(t.clone()),
        (None, Some(r)) => SchemaTarget::RelationType(input::relation(r)?),
        _ => {
            return Err(Error::invalid_input(
                "schema target",
                "give exactly one of --node-type or --relation",
            )
            .into());
        }
    };
    target.check()?;
    Ok(target)
}

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &SchemaCommand) -> Result<()> {
    match command {
        SchemaCommand::Set { target: t, file } => {
            let target = target(t)?;
            let schema = crate::input::json_from(file, &format!("schema file {}", file.display()))?;
            ctx.open_for_write()?
                .set_schema(target.clone(), schema)
                .map_err(|e| {
                    let refused_by_data = e.kind() == kgstore::ErrorKind::Validation;
                    let e = anyhow::Error::from(e);
                    if refused_by_data {
                        e.context(format!(
                            "the schema for {target} was not registered: stored data violates it \
                             (change the data or the schema)"
                        ))
                    } else {
                        e
                    }
                })?;
            ctx.out.either(
                || format!("registered the schema for {target}"),
                &json!({"target": target, "registered": true}),
            )
        }
        SchemaCommand::Get { target: t } => {
            let target = target(t)?;
            let schema = ctx
                .open_existing()?
                .get_schema(&target)?
                .ok_or_else(|| Error::invalid_input(target.to_string(), "has no schema"))?;
            if ctx.out.json() {
                ctx.out.value(&schema)
            } else {
                ctx.out.line(&serde_json::to_string_pretty(&schema)?)
            }
        }
        SchemaCommand::List => {
            let schemas = ctx.open_existing()?.list_schemas()?;
            if ctx.out.json() {
                let entries: Vec<Value> = schemas
                    .iter()
                    .map(|(t, s)| json!({"target": t, "schema": s}))
                    .collect();
                return ctx.out.value(&entries);
            }
            let rows: Vec<Vec<String>> = schemas
                .iter()
                .map(|(t, s)| vec![t.to_string(), s.to_string().chars().take(60).collect()])
                .collect();
            ctx.out.table(&["TARGET", "SCHEMA"], &rows)
        }
        SchemaCommand::Remove { target: t } => {
            let target = target(t)?;
            if !ctx.open_for_write()?.remove_schema(&target)? {
                return Err(
                    Error::invalid_input(target.to_string(), "has no schema to remove").into(),
                );
            }
            ctx.out.either(
                || format!("removed the schema for {target}"),
                &json!({"target": target, "removed": true}),
            )
        }
    }
}
