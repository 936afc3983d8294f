//! `kgstore doc …`: documents, bytes under path-like keys beside the graph.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use kgstore::documents::key::check_key;
use kgstore::{
    DocumentMeta, DocumentQuery, DocumentRead, Error, PageRequest, Phase, Progress, ReadTx,
    WriteOptions,
};
use serde_json::json;

use super::{Ctx, Quiet};
use crate::EXIT_NOT_FOUND;
use crate::cli::{DocCommand, DocGetArgs, DocLsArgs, DocPutArgs, DocRmArgs};
use crate::output::{Output, cell};
use crate::progress::Bar;

/// Values at least this large get a progress bar (on a terminal).
const LARGE_VALUE: u64 = 8 << 20;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &DocCommand) -> Result<()> {
    match command {
        DocCommand::Put(args) => put(ctx, args),
        DocCommand::Get(args) => get(ctx, args),
        DocCommand::Rm(args) => rm(ctx, args),
        DocCommand::Exists { key } => exists(ctx, key),
        DocCommand::Stat { key } => {
            let store = ctx.open_existing_store()?;
            let meta = ctx.snapshot(&store)?.stat_document(key)?;
            show(ctx.out, &meta)
        }
        DocCommand::Ls(args) => ls(ctx, args),
    }
}

/// Counts the bytes that pass through a reader or writer into a progress bar.
struct Counted<T> {
    inner: T,
    done: u64,
    total: u64,
    bar: Bar,
}

impl<T> Counted<T> {
    /// `inner`, with a bar shown if `enabled` and the value is large (or of unknown size).
    fn new(inner: T, enabled: bool, what: &str, total: Option<u64>) -> Self {
        let large = total.is_none_or(|t| t >= LARGE_VALUE);
        Self {
            inner,
            done: 0,
            total: total.unwrap_or(0),
            bar: Bar::bytes(enabled && large, what),
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n as u64;
        self.bar.update(Progress {
            phase: Phase::Bytes,
            done: self.done,
            total: self.total,
        });
    }

    fn finish(self) -> T {
        self.bar.finish();
        self.inner
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.advance(n);
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.advance(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put(ctx: &mut Ctx<'_>, args: &DocPutArgs) -> Result<()> {
    // Before anything is opened (or created): a refused key changes nothing.
    check_key(&args.key)?;
    let mut options = WriteOptions::new();
    if let Some(content_type) = &args.content_type {
        options = options.content_type(content_type.clone());
    }
    if args.create_only {
        options = options.create_only();
    }
    if let Some(version) = args.expect_version {
        options = options.expect_version(version);
    }
    if args.file.is_none() && io::stdin().is_terminal() {
        // Reading a terminal nobody knows is being read would wait silently,
        // inside the write transaction.
        return Err(Error::invalid_input(
            "doc put",
            "no FILE was given and stdin is a terminal: give the file to read, pipe \
             the bytes in, or give - to type them (end with Ctrl-D)",
        )
        .into());
    }
    let file = args.file.as_deref().filter(|f| f.as_os_str() != "-");
    let (reader, size, from): (Box<dyn Read>, Option<u64>, String) = match file {
        Some(path) => {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(Error::invalid_input(
                    path.display().to_string(),
                    "is a folder, not a file",
                )
                .into());
            }
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size, path.display().to_string())
        }
        None => (Box::new(io::stdin().lock()), None, "stdin".to_owned()),
    };
    let store = ctx.open_for_write()?;
    let mut input = Counted::new(
        BufReader::with_capacity(1 << 16, reader),
        ctx.progress,
        "put",
        size,
    );
    let written = store.write_document_from(&args.key, &mut input, &options);
    input.finish();
    let meta = written?;
    ctx.out.either(
        || {
            format!(
                "wrote document '{}' (version {}, {} bytes) from {from}",
                meta.key, meta.version, meta.size
            )
        },
        &meta,
    )
}

fn get(ctx: &mut Ctx<'_>, args: &DocGetArgs) -> Result<()> {
    let at = ctx.at;
    get_at(ctx, args, at)
}

/// `doc get` at a revision (`--at`, or `kgstore show REV:KEY`), or at the current one.
pub(crate) fn get_at(ctx: &mut Ctx<'_>, args: &DocGetArgs, at: Option<&str>) -> Result<()> {
    let key = args.key.as_str();
    let progress = ctx.progress;
    let store = ctx.open_existing_store()?;
    let snapshot = match at {
        Some(revision) => store.read_at(revision)?,
        None => store.read()?,
    };
    match &args.out {
        Some(path) => {
            let meta = write_to_file(&snapshot, key, path, progress)?;
            if ctx.out.json() {
                return ctx.out.value(&meta);
            }
            // Nothing on stdout for people: the bytes went to the file, as with `curl -o`.
            Ok(())
        }
        None if ctx.out.json() => {
            let document = snapshot.get_document(key)?;
            let mut value = serde_json::to_value(&document.meta)?;
            let content = match String::from_utf8(document.content) {
                Ok(text) => json!({"content": text}),
                Err(e) => json!({"content_base64":
                    base64::engine::general_purpose::STANDARD.encode(e.as_bytes())}),
            };
            if let (Some(object), Some(extra)) = (value.as_object_mut(), content.as_object()) {
                object.extend(extra.clone());
            }
            ctx.out.value(&value)
        }
        None => {
            let size = snapshot.stat_document(key)?.size;
            let mut counted = Counted::new(ctx.out.raw(), progress, "get", Some(size));
            let read = snapshot.read_document_to(key, &mut counted);
            counted.finish();
            read?;
            Ok(())
        }
    }
}

/// Streams the document into a temporary file beside `path`, then renames it over
/// `path`: a failed read never leaves a partial file or clobbers what was there.
fn write_to_file(
    snapshot: &ReadTx<'_>,
    key: &str,
    path: &Path,
    progress: bool,
) -> Result<DocumentMeta> {
    let meta = snapshot.stat_document(key)?;
    let temp = super::temp_beside(path)?;
    let mut counted = Counted::new(
        io::BufWriter::with_capacity(1 << 16, temp),
        progress,
        "get",
        Some(meta.size),
    );
    let read = snapshot.read_document_to(key, &mut counted);
    let writer = counted.finish();
    let meta = read?;
    let temp = writer
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(meta)
}

fn rm(ctx: &mut Ctx<'_>, args: &DocRmArgs) -> Result<()> {
    check_key(&args.key)?;
    let store = ctx.open_for_write()?;
    if args.force {
        let existed = store.remove_document(&args.key)?;
        return ctx.out.either(
            || {
                if existed {
                    format!("deleted document '{}'", args.key)
                } else {
                    format!("no document '{}' (nothing to delete)", args.key)
                }
            },
            &json!({"key": args.key, "deleted": existed}),
        );
    }
    let meta = store.delete_document(&args.key)?;
    ctx.out.either(
        || format!("deleted document '{}' (version {})", meta.key, meta.version),
        &meta,
    )
}

fn exists(ctx: &mut Ctx<'_>, key: &str) -> Result<()> {
    let store = ctx.open_existing_store()?;
    let found = ctx.snapshot(&store)?.document_exists(key)?;
    ctx.out.either(
        || {
            if found {
                format!("document '{key}' exists")
            } else {
                format!("no document '{key}'")
            }
        },
        &json!({"key": key, "exists": found}),
    )?;
    if found {
        Ok(())
    } else {
        Err(Quiet(EXIT_NOT_FOUND).into())
    }
}

fn ls(ctx: &mut Ctx<'_>, args: &DocLsArgs) -> Result<()> {
    let cursor = args.page.cursor.as_deref().map(str::parse).transpose()?;
    let query = DocumentQuery {
        prefix: args.prefix.clone(),
        delimiter: args.delimiter,
        page: PageRequest::first(args.page.limit).after(cursor),
    };
    let store = ctx.open_existing_store()?;
    let page = ctx.snapshot(&store)?.list_documents(&query)?;
    if ctx.out.json() {
        return ctx.out.value(&page);
    }
    // Documents and folders together, in key order, as the listing counts them.
    let mut rows: Vec<(String, Vec<String>)> = page
        .documents
        .iter()
        .map(|d| {
            let row = vec![
                cell(&d.key),
                d.size.to_string(),
                d.version.to_string(),
                d.updated_at.to_string(),
                cell(&d.content_type),
            ];
            (d.key.clone(), row)
        })
        .collect();
    rows.extend(page.folders.iter().map(|f| {
        let row = vec![cell(f), "-".into(), "-".into(), "-".into(), "folder".into()];
        (f.clone(), row)
    }));
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, row)| row).collect();
    ctx.out.page(
        &["KEY", "SIZE", "VERSION", "UPDATED", "CONTENT TYPE"],
        &rows,
        page.next_cursor,
        "end of list",
    )
}

/// Shows one document's metadata.
fn show(out: &mut Output, meta: &DocumentMeta) -> Result<()> {
    if out.json() {
        return out.value(meta);
    }
    let rows = [
        ("key", cell(&meta.key)),
        ("size", format!("{} bytes", meta.size)),
        ("sha256", meta.sha256.to_hex()),
        ("type", cell(&meta.content_type)),
        ("version", meta.version.to_string()),
        ("created", meta.created_at.to_string()),
        ("updated", meta.updated_at.to_string()),
    ];
    for (name, value) in rows {
        out.line(&format!("{name:<9}{value}"))
            .context("writing to stdout")?;
    }
    Ok(())
}
