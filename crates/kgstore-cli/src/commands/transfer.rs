//! `kgstore import | export | backup | verify | restore`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;

use anyhow::Result;
use kgstore::Error;
use kgstore::backup::{self, RestoreMode};
use kgstore::formats::{self, DotOptions, ImportOptions, Report};
use serde_json::json;

use super::Ctx;
use crate::cli::{BackupArgs, ExportArgs, FormatArg, ImportArgs, RestoreArgs, VerifyArgs};
use crate::progress::Bar;

fn summary(report: &Report) -> String {
    let mut text = format!("{} node(s), {} edge(s)", report.nodes, report.edges);
    if report.schemas > 0 {
        text.push_str(&format!(", {} schema(s)", report.schemas));
    }
    if report.merged > 0 {
        text.push_str(&format!(" ({} repeated line(s) merged)", report.merged));
    }
    text
}

fn report_json(report: &Report) -> serde_json::Value {
    json!({"nodes": report.nodes, "edges": report.edges, "schemas": report.schemas, "merged": report.merged})
}

pub(crate) fn import(ctx: &mut Ctx<'_>, args: &ImportArgs) -> Result<()> {
    let (reader, size): (Box<dyn Read>, u64) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), 0)
    } else {
        let file = File::open(&args.file).map_err(|e| Error::io(&args.file, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let input = BufReader::with_capacity(1 << 16, reader);
    let store = ctx.open_for_write()?;
    let options = ImportOptions {
        batch_size: args.batch_size,
    };
    let mut bar = Bar::new(ctx.progress, "import");
    let outcome = match args.format {
        FormatArg::Jsonl => formats::import_jsonl(&store, input, size, options, |p| bar.update(p)),
        FormatArg::Mcp => formats::import_mcp(&store, input, size, options, |p| bar.update(p)),
        FormatArg::Graphml | FormatArg::Dot => Err(Error::invalid_input(
            "import format",
            "GraphML and DOT can be exported, not imported; use jsonl or mcp",
        )),
    };
    bar.finish();
    let report = outcome.map_err(|e| with_file(e, &args.file))?;
    ctx.out.either(
        || format!("imported {} from {}", summary(&report), args.file.display()),
        &report_json(&report),
    )
}

/// Names the input file in an import error that lacks it.
fn with_file(error: Error, file: &std::path::Path) -> Error {
    match error {
        Error::InvalidInput { what, reason } if what.starts_with("line ") => Error::InvalidInput {
            what: format!("{what} of {}", file.display()),
            reason,
        },
        other => other,
    }
}

pub(crate) fn export(ctx: &mut Ctx<'_>, args: &ExportArgs) -> Result<()> {
    if (args.around.is_some() || args.depth.is_some()) && !matches!(args.format, FormatArg::Dot) {
        return Err(Error::invalid_input("--around/--depth", "only apply to --format dot").into());
    }
    if args.depth.is_some() && args.around.is_none() {
        return Err(Error::invalid_input(
            "--depth",
            "counts hops around a node: give --around NODE too (without it the whole graph is exported)",
        )
        .into());
    }
    let store = ctx.open_existing()?;
    let mut bar = Bar::new(ctx.progress && args.file.is_some(), "export");
    let dot = DotOptions {
        around: args.around.clone(),
        depth: args.depth,
    };
    let mut write = |out: &mut dyn std::io::Write| -> kgstore::Result<Report> {
        match args.format {
            FormatArg::Jsonl => formats::export_jsonl(&store, out, |p| bar.update(p)),
            FormatArg::Mcp => formats::export_mcp(&store, out, |p| bar.update(p)),
            FormatArg::Graphml => formats::export_graphml(&store, out, |p| bar.update(p)),
            FormatArg::Dot => formats::export_dot(&store, out, &dot, |p| bar.update(p)),
        }
    };
    match &args.file {
        Some(path) => {
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::AlreadyExists {
                            entity: format!("file {}", path.display()),
                        }
                    } else {
                        Error::io(path, e)
                    }
                })?;
            let mut out = BufWriter::new(file);
            let outcome = write(&mut out);
            bar.finish();
            let report = match outcome {
                Ok(report) => report,
                Err(e) => {
                    drop(out);
                    let _ = std::fs::remove_file(path);
                    return Err(e.into());
                }
            };
            out.into_inner()
                .map_err(|e| Error::io(path, e.into_error()))?
                .sync_all()
                .map_err(|e| Error::io(path, e))?;
            ctx.out.either(
                || format!("exported {} to {}", summary(&report), path.display()),
                &report_json(&report),
            )
        }
        None => {
            write(ctx.out.raw())?;
            Ok(())
        }
    }
}

pub(crate) fn backup(ctx: &mut Ctx<'_>, args: &BackupArgs) -> Result<()> {
    let store = ctx.open_existing()?;
    refuse_backup_inside_store(&ctx.parse_url()?, &args.dir)?;
    let mut bar = Bar::new(ctx.progress, "backup");
    let outcome = backup::backup_with(&store, &args.dir, |p| bar.update(p));
    bar.finish();
    let manifest = outcome?;
    let c = manifest.counts;
    ctx.out.either(
        || {
            format!(
                "backed up {} node(s), {} edge(s), {} schema(s), {} document(s) to {}",
                c.nodes,
                c.edges,
                c.schemas,
                c.documents,
                args.dir.display()
            )
        },
        &manifest,
    )
}

/// Refuses a backup into the folder of the store it backs up (a `json://` or
/// `git://` store is a folder): a copy kept there is lost, or replaced, with the
/// store it is meant to outlive, and its files sit among the store's own.
fn refuse_backup_inside_store(url: &kgstore::StoreUrl, dest: &Path) -> Result<()> {
    if !matches!(url.scheme.as_str(), "json" | "git") || url.path.is_empty() {
        return Ok(());
    }
    let Ok(store) = std::fs::canonicalize(&url.path) else {
        return Ok(());
    };
    // The destination does not exist yet: resolve its nearest existing folder.
    let mut existing = if dest.is_absolute() {
        dest.to_path_buf()
    } else {
        std::env::current_dir()?.join(dest)
    };
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(path) = std::fs::canonicalize(&existing) {
            break Some(path);
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break None,
        }
    };
    let Some(mut resolved) = resolved else {
        return Ok(());
    };
    resolved.extend(rest.iter().rev());
    if resolved.starts_with(&store) {
        return Err(Error::invalid_input(
            format!("backup folder {}", dest.display()),
            format!(
                "is inside the store's own folder {}: a backup kept there is lost or \
                 replaced with the store; back up to a folder outside it",
                url.path
            ),
        )
        .into());
    }
    Ok(())
}

pub(crate) fn verify(ctx: &mut Ctx<'_>, args: &VerifyArgs) -> Result<()> {
    let mut bar = Bar::new(ctx.progress, "verify");
    let outcome = backup::verify_with(&args.dir, |p| bar.update(p));
    bar.finish();
    let report = outcome?;
    if ctx.out.json() {
        ctx.out.value(&json!({
            "ok": report.is_ok(),
            "counts": report.counts,
            "problems": report.problems,
        }))?;
    } else if report.is_ok() {
        let c = report.counts;
        ctx.out.line(&format!(
            "backup {} is sound: {} node(s), {} edge(s), {} schema(s), {} document(s); every hash, line and reference checks out",
            args.dir.display(),
            c.nodes,
            c.edges,
            c.schemas,
            c.documents
        ))?;
    } else {
        for problem in &report.problems {
            ctx.out.line(&format!("problem: {problem}"))?;
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::corrupt(
            &args.dir,
            format!("the backup does not verify: {}", report.summary()),
        )
        .into())
    }
}

pub(crate) fn restore(ctx: &mut Ctx<'_>, args: &RestoreArgs) -> Result<()> {
    // A mistyped folder, or one that holds no backup, creates no empty store to
    // restore into.
    backup::check_restorable(&args.dir)?;
    let store = ctx.open_for_write()?;
    let mode = if args.replace {
        RestoreMode::Replace
    } else {
        RestoreMode::Empty
    };
    let mut bar = Bar::new(ctx.progress, "restore");
    let outcome = backup::restore_with(&args.dir, &store, mode, |p| bar.update(p));
    bar.finish();
    let report = outcome?;
    ctx.out.either(
        || {
            format!(
                "restored {} node(s), {} edge(s), {} schema(s), {} document(s) from {}",
                report.nodes,
                report.edges,
                report.schemas,
                report.documents,
                args.dir.display()
            )
        },
        &json!({"nodes": report.nodes, "edges": report.edges, "schemas": report.schemas, "documents": report.documents}),
    )
}
