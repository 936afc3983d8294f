//! Maintenance: `check` (every object reachable from the branch present, sound and
//! parsable; problems brought by others' commits; LFS objects), `optimize` (packing
//! loose objects), and the native backup (a copy of the repository).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use gix::ObjectId;
use gix::objs::{Find, Kind};
use kgstore_core::{Error, Problem, Result};

use crate::backend::GitBackend;
use crate::fsio;
use crate::objects::{git_error, hash};
use crate::tree;

/// Reads an object and checks that its content hashes to its id.
fn sound(repo: &gix::Repository, id: &ObjectId) -> std::result::Result<(Kind, Vec<u8>), String> {
    let mut buf = Vec::new();
    let found = repo
        .objects
        .try_find(id, &mut buf)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let Some(data) = found else {
        return Err("is missing".to_owned());
    };
    let kind = data.kind;
    match hash(kind, &buf) {
        Ok(actual) if actual == *id => Ok((kind, buf)),
        Ok(actual) => Err(format!("is damaged: its content hashes to {actual}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Every problem of the store: others' commits' problems, and every object reachable
/// from the branch that is missing, damaged or does not parse.
pub(crate) fn check(backend: &GitBackend) -> Result<Vec<Problem>> {
    let current = backend.refresh()?;
    let mut problems = current.problems.clone();
    problems.extend(current.snapshot.doc_problems.iter().cloned());
    let Some(tip) = current.snapshot.commit else {
        return Ok(problems);
    };
    let repo = backend.local();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut commits = vec![tip];
    while let Some(id) = commits.pop() {
        if !seen.insert(id) {
            continue;
        }
        let at = format!("commit {}", id.to_hex_with_len(12));
        let data = match sound(&repo, &id) {
            Ok((Kind::Commit, data)) => data,
            Ok((kind, _)) => {
                problems.push(Problem::new(at, format!("is a {kind}, not a commit")));
                continue;
            }
            Err(detail) => {
                problems.push(Problem::new(at, detail));
                continue;
            }
        };
        match gix::objs::CommitRef::from_bytes(&data, gix::hash::Kind::Sha1) {
            Ok(commit) => {
                commits.extend(commit.parents());
                check_tree(&repo, &commit.tree(), &at, "", &mut seen, &mut problems);
            }
            Err(e) => problems.push(Problem::new(at, format!("does not parse: {e}"))),
        }
    }
    match crate::lfs::check_tree_pointers(backend, &tip) {
        Ok(found) => problems.extend(found),
        // The objects that could not be read are reported above.
        Err(e) => problems.push(Problem::new(
            format!("commit {}", tip.to_hex_with_len(12)),
            format!("LFS pointers could not be checked: {e}"),
        )),
    }
    Ok(problems)
}

fn check_tree(
    repo: &gix::Repository,
    id: &ObjectId,
    at: &str,
    prefix: &str,
    seen: &mut HashSet<ObjectId>,
    problems: &mut Vec<Problem>,
) {
    if !seen.insert(*id) {
        return;
    }
    let place = |path: &str| {
        if path.is_empty() {
            format!("{at}: the root tree {id}")
        } else {
            format!("{at}: {path} ({id})")
        }
    };
    if let Err(detail) = sound(repo, id) {
        problems.push(Problem::new(place(prefix), detail));
        return;
    }
    let entries = match tree::entries_as_stored(repo, id) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::new(place(prefix), e.to_string()));
            return;
        }
    };
    let firsts = tree::first_of_name(&entries);
    for (entry, first) in entries.into_iter().zip(firsts) {
        let name = String::from_utf8_lossy(&entry.name);
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if !first {
            problems.push(Problem::new(
                format!("{at}: {path} ({})", entry.id),
                "is a second entry of that name in its tree (git fsck: duplicateEntries); \
                 kgstore reads the first"
                    .to_owned(),
            ));
        }
        if entry.mode.is_tree() {
            check_tree(repo, &entry.id, at, &path, seen, problems);
        } else if entry.mode.is_commit() {
            // A submodule's commit lives in another repository.
        } else if seen.insert(entry.id)
            && let Err(detail) = sound(repo, &entry.id)
        {
            problems.push(Problem::new(format!("{at}: {path} ({})", entry.id), detail));
        }
    }
}

/// Whether a `git` program can be run.
pub(crate) fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Packs loose objects: with `git repack -a -d` (deltas, one pack) when git is
/// installed, else kgstore's own pack writer (every loose object into one pack,
/// whole). Holds the writer lock meanwhile; readers are not disturbed.
pub(crate) fn optimize(backend: &GitBackend) -> Result<()> {
    let Some(lock) = &backend.lock else {
        return Err(Error::unsupported("optimize (opened read-only)", "git"));
    };
    let _held = lock.acquire(backend.options.lock_timeout)?;
    if git_available() {
        for args in [vec!["repack", "-a", "-d", "-q"], vec!["prune-packed", "-q"]] {
            let output = Command::new("git")
                .arg("-c")
                .arg("core.fsync=all")
                .arg("-C")
                .arg(&backend.git_dir)
                .args(&args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .map_err(|e| Error::io(&backend.git_dir, e))?;
            if !output.status.success() {
                return Err(git_error(
                    &format!("git {}", args.join(" ")),
                    String::from_utf8_lossy(&output.stderr).trim(),
                ));
            }
        }
        return Ok(());
    }
    pack_loose(backend)
}

/// Moves every loose object into one new pack, then removes the loose files.
fn pack_loose(backend: &GitBackend) -> Result<()> {
    let store = gix::odb::loose::Store::at(&backend.objects.dir, gix::hash::Kind::Sha1);
    let mut objects = Vec::new();
    let mut files = Vec::new();
    for id in store.iter() {
        let id = id.map_err(|e| git_error("listing loose objects", e))?;
        let mut buf = Vec::new();
        let data = store
            .try_find(&id, &mut buf)
            .map_err(|e| git_error(&format!("reading loose object {id}"), e))?;
        if let Some(data) = data
            && hash(data.kind, data.data).is_ok_and(|h| h == id)
        {
            objects.push((id, data.kind, data.data.to_vec()));
            files.push(backend.objects.loose_path(&id));
        }
        // A damaged loose object is left for `check` to report.
    }
    if objects.is_empty() {
        return Ok(());
    }
    crate::pack::write_pack(&backend.objects.dir.join("pack"), &objects, true)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in files {
        fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
        if let Some(dir) = file.parent() {
            dirs.push(dir.to_path_buf());
        }
    }
    dirs.sort();
    dirs.dedup();
    crate::objects::sync_dirs(&dirs)
}

/// Copies the repository to `dest` (which must not exist): refs, objects and LFS
/// objects, while holding the writer lock so no kgstore commit lands meanwhile. Built
/// under a temporary name beside `dest`, synced, renamed into place.
pub(crate) fn backup(backend: &GitBackend, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Err(Error::invalid_input(
            format!("backup destination {}", dest.display()),
            "already exists",
        ));
    }
    let _held = match &backend.lock {
        Some(lock) => Some(lock.acquire(backend.options.lock_timeout)?),
        None => None,
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let name = dest
        .file_name()
        .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let copied = (|| {
        fs::create_dir(&partial).map_err(|e| Error::io(&partial, e))?;
        for item in [
            "HEAD",
            "config",
            "description",
            "packed-refs",
            "info",
            "refs",
            "objects",
            "lfs/objects",
        ] {
            let from = backend.git_dir.join(item);
            if from.exists() {
                copy_tree(&from, &partial.join(item))?;
            }
        }
        fsio::sync_dir(&partial)?;
        fsio::rename(&partial, dest)?;
        fsio::sync_dir(&parent)
    })();
    if copied.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    copied
}

/// Copies a file or folder (never following symlinks), syncing what it writes; skips
/// lock and temporary files.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).map_err(|e| Error::io(from, e))?;
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
        for entry in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
            let entry = entry.map_err(|e| Error::io(from, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || name.starts_with("tmp_") {
                continue;
            }
            copy_tree(&entry.path(), &to.join(&name))?;
        }
        fsio::sync_dir(to)
    } else if meta.is_file() {
        fs::copy(from, to).map_err(|e| Error::io(to, e))?;
        fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(to, e))
    } else {
        Ok(())
    }
}
