//! The native backup: a complete jsonfs store folder written from one snapshot.

use std::path::{Path, PathBuf};

use kgstore_core::{EdgeFilter, Error, GraphState, NodeFilter, ReadTxn, Result};

use crate::docs::Docs;
use crate::fault::Hooks;
use crate::files::{self, Content, ensure_dir, parallel_map, sync_dir, workers_for};
use crate::{fsio, layout};

/// Writes `state` as a new store at `dest` (which must not exist): built in a
/// temporary folder beside it, every file and folder synced, then renamed into place.
pub fn write_copy(
    state: &GraphState,
    docs: &Docs,
    source: &Path,
    dest: &Path,
    hooks: &Hooks,
) -> Result<()> {
    if dest.exists() {
        return Err(Error::invalid_input(
            format!("backup destination {}", dest.display()),
            "already exists",
        ));
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::invalid_input(
                format!("backup destination {}", dest.display()),
                "has no folder name",
            )
        })?;
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if files::exists(&partial) != Some(false) {
        // This process's own earlier attempt, whose clean-up failed.
        fsio::remove_dir_all(&partial, hooks).map_err(|e| Error::io(&partial, e))?;
    }
    let outcome = fill(state, docs, source, &partial, hooks)
        .and_then(|()| files::rename(&partial, dest, hooks));
    if let Err(e) = outcome {
        let _ = fsio::remove_dir_all(&partial, hooks);
        return Err(e);
    }
    if let Err(e) = sync_dir(&parent, hooks) {
        // Complete, but its name is not known to be durable (and a failed sync is not
        // retried): a failed backup leaves nothing at `dest`.
        let _ = fsio::remove_dir_all(dest, hooks);
        return Err(e);
    }
    Ok(())
}

fn fill(state: &GraphState, docs: &Docs, source: &Path, root: &Path, hooks: &Hooks) -> Result<()> {
    fsio::create_dir(root, hooks).map_err(|e| Error::io(root, e))?;
    layout::create(root, hooks)?;
    let mut items: Vec<(String, Content)> = Vec::new();
    for node in state.scan_nodes(&NodeFilter::default(), None, usize::MAX)? {
        items.push((crate::names::node_path(&node.name), Content::node(node)));
    }
    for edge in state.scan_edges(&EdgeFilter::default(), None, usize::MAX)? {
        items.push((crate::names::edge_path(&edge.key()), Content::edge(edge)));
    }
    for (target, schema) in state.list_schemas()? {
        items.push((crate::names::schema_path(&target), Content::schema(schema)));
    }
    let events = state.event_state();
    for record in events.records() {
        items.push((
            crate::events::event_path(record.position),
            Content::event(record.clone()),
        ));
    }
    for (space, key, value) in events.state_entries() {
        items.push((
            crate::events::state_path(space, key),
            Content::state(space, key, value.clone()),
        ));
    }
    let mut dirs: Vec<PathBuf> = items
        .iter()
        .filter_map(|(rel, _)| root.join(rel).parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        ensure_dir(dir, hooks)?;
    }
    let written = parallel_map(
        &items,
        if hooks.serial() {
            1
        } else {
            workers_for(items.len(), 16, 16)
        },
        |(rel, content)| {
            let path = root.join(rel);
            let bytes = content.render()?;
            fsio::create_new(&path, hooks)
                .and_then(|mut file| {
                    fsio::write_all(&mut file, &path, &bytes, hooks)?;
                    fsio::sync_file(&file, &path, hooks)
                })
                .map_err(|e| Error::io(&path, e))
        },
    );
    written.into_iter().collect::<Result<()>>()?;
    dirs.extend(crate::docs::copy_into(docs, source, root, hooks)?);
    for top in layout::FOLDERS {
        dirs.push(root.join(top));
    }
    dirs.push(root.to_path_buf());
    let workers = if hooks.serial() {
        1
    } else {
        workers_for(dirs.len(), 8, 16)
    };
    parallel_map(&dirs, workers, |dir| sync_dir(dir, hooks))
        .into_iter()
        .collect()
}
