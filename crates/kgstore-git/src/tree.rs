//! Reading commits and trees: entries, the blobs under a folder, and the blobs that
//! differ between two trees (descending only into subtrees whose ids differ, so the
//! work is proportional to the change, not to the store).

use std::collections::BTreeMap;

use gix::ObjectId;
use gix::objs::{CommitRef, Find, Kind, TreeRefIter, tree::EntryMode};
use kgstore_core::{Error, Result};

use crate::objects::git_error;

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) mode: EntryMode,
    pub(crate) id: ObjectId,
}

/// A blob (or other non-tree entry) found under a folder, by its full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// The path, with bytes that are not UTF-8 replaced (see `utf8`).
    pub(crate) path: String,
    pub(crate) mode: EntryMode,
    pub(crate) id: ObjectId,
    /// Whether the path's bytes were UTF-8 (else `path` is not its name: two such
    /// names can even share a `path`).
    pub(crate) utf8: bool,
}

/// A path whose entry differs between two trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    pub(crate) path: String,
    pub(crate) old: Option<(EntryMode, ObjectId)>,
    pub(crate) new: Option<(EntryMode, ObjectId)>,
}

/// Reads an object's kind and bytes; `Corrupt` if it is missing.
pub(crate) fn read(repo: &gix::Repository, id: &ObjectId) -> Result<(Kind, Vec<u8>)> {
    let mut buf = Vec::new();
    let found = repo
        .objects
        .try_find(id, &mut buf)
        .map_err(|e| git_error(&format!("reading object {id}"), e))?;
    match found {
        Some(data) => {
            let kind = data.kind;
            Ok((kind, buf))
        }
        None => Err(Error::corrupt(
            repo.git_dir(),
            format!("object {id} is missing from the repository"),
        )),
    }
}

/// Reads an object that must be of `kind`.
pub(crate) fn read_kind(repo: &gix::Repository, id: &ObjectId, kind: Kind) -> Result<Vec<u8>> {
    let (found, data) = read(repo, id)?;
    if found != kind {
        return Err(Error::corrupt(
            repo.git_dir(),
            format!("object {id} is a {found}, expected a {kind}"),
        ));
    }
    Ok(data)
}

/// A commit's tree and parents.
pub(crate) fn commit_tree(
    repo: &gix::Repository,
    id: &ObjectId,
) -> Result<(ObjectId, Vec<ObjectId>)> {
    let data = read_kind(repo, id, Kind::Commit)?;
    let commit = CommitRef::from_bytes(&data, gix::hash::Kind::Sha1)
        .map_err(|e| Error::corrupt(repo.git_dir(), format!("commit {id} does not parse: {e}")))?;
    Ok((commit.tree(), commit.parents().collect()))
}

/// The entries of a tree. Of entries sharing a name (a malformed tree, git fsck's
/// `duplicateEntries`, which `git mktree` makes and a push does not refuse) only the
/// first, so that every reader — a whole load, a refresh's diff, a lookup by path —
/// sees the same tree; `check` reports the others ([`entries_as_stored`]).
pub(crate) fn entries(repo: &gix::Repository, id: &ObjectId) -> Result<Vec<Entry>> {
    let all = entries_as_stored(repo, id)?;
    let firsts = first_of_name(&all);
    if firsts.iter().all(|first| *first) {
        return Ok(all);
    }
    Ok(all
        .into_iter()
        .zip(firsts)
        .filter_map(|(entry, first)| first.then_some(entry))
        .collect())
}

/// For each entry of a tree as stored, whether it is the first of its name (an
/// entry named again is git fsck's `duplicateEntries`): the one test every reader
/// of such a tree goes by ([`entries`], [`twice_named`], `check`).
pub(crate) fn first_of_name(entries: &[Entry]) -> Vec<bool> {
    let mut names = std::collections::HashSet::with_capacity(entries.len());
    entries
        .iter()
        .map(|e| names.insert(e.name.as_slice()))
        .collect()
}

/// The entries of a tree as stored, a name given twice included.
pub(crate) fn entries_as_stored(repo: &gix::Repository, id: &ObjectId) -> Result<Vec<Entry>> {
    if *id == ObjectId::empty_tree(gix::hash::Kind::Sha1) {
        return Ok(Vec::new());
    }
    let data = read_kind(repo, id, Kind::Tree)?;
    TreeRefIter::from_bytes(&data, gix::hash::Kind::Sha1)
        .map(|entry| {
            entry
                .map(|e| Entry {
                    name: e.filename.to_vec(),
                    mode: e.mode,
                    id: e.oid.to_owned(),
                })
                .map_err(|e| {
                    Error::corrupt(repo.git_dir(), format!("tree {id} does not parse: {e}"))
                })
        })
        .collect()
}

/// The entry at a slash-separated path inside a tree, if any.
pub(crate) fn entry_at(
    repo: &gix::Repository,
    tree: &ObjectId,
    path: &str,
) -> Result<Option<(EntryMode, ObjectId)>> {
    let mut current = *tree;
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let found = entries(repo, &current)?
            .into_iter()
            .find(|e| e.name == part.as_bytes());
        match found {
            None => return Ok(None),
            Some(entry) if parts.peek().is_none() => return Ok(Some((entry.mode, entry.id))),
            Some(entry) if entry.mode.is_tree() => current = entry.id,
            Some(_) => return Ok(None),
        }
    }
    Ok(None)
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Every non-tree entry under tree `id`, with paths starting with `prefix`.
pub(crate) fn leaves(
    repo: &gix::Repository,
    id: &ObjectId,
    prefix: &str,
    out: &mut Vec<Leaf>,
) -> Result<()> {
    leaves_under(repo, id, prefix, true, out)
}

/// [`leaves`] under a prefix whose bytes were UTF-8 or not (`prefix_utf8`).
pub(crate) fn leaves_under(
    repo: &gix::Repository,
    id: &ObjectId,
    prefix: &str,
    prefix_utf8: bool,
    out: &mut Vec<Leaf>,
) -> Result<()> {
    for entry in entries(repo, id)? {
        let path = join(prefix, &entry.name);
        let utf8 = prefix_utf8 && std::str::from_utf8(&entry.name).is_ok();
        if entry.mode.is_tree() {
            leaves_under(repo, &entry.id, &path, utf8, out)?;
        } else {
            out.push(Leaf {
                path,
                mode: entry.mode,
                id: entry.id,
                utf8,
            });
        }
    }
    Ok(())
}

/// The non-tree entries that differ between trees `a` and `b` (either may be absent),
/// with paths starting with `prefix`, in path order.
pub(crate) fn diff(
    repo: &gix::Repository,
    a: Option<&ObjectId>,
    b: Option<&ObjectId>,
    prefix: &str,
    out: &mut Vec<Delta>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let index = |tree: Option<&ObjectId>| -> Result<BTreeMap<Vec<u8>, (EntryMode, ObjectId)>> {
        Ok(match tree {
            Some(id) => entries(repo, id)?
                .into_iter()
                .map(|e| (e.name, (e.mode, e.id)))
                .collect(),
            None => BTreeMap::new(),
        })
    };
    let (left, right) = (index(a)?, index(b)?);
    let mut names: Vec<&Vec<u8>> = left.keys().chain(right.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (old, new) = (left.get(name).copied(), right.get(name).copied());
        if old == new {
            continue;
        }
        let path = join(prefix, name);
        let tree_of =
            |e: Option<(EntryMode, ObjectId)>| e.filter(|(m, _)| m.is_tree()).map(|(_, id)| id);
        let leaf_of = |e: Option<(EntryMode, ObjectId)>| e.filter(|(m, _)| !m.is_tree());
        let (old_tree, new_tree) = (tree_of(old), tree_of(new));
        if old_tree.is_some() || new_tree.is_some() {
            diff(repo, old_tree.as_ref(), new_tree.as_ref(), &path, out)?;
        }
        let (old_leaf, new_leaf) = (leaf_of(old), leaf_of(new));
        if old_leaf != new_leaf {
            out.push(Delta {
                path,
                old: old_leaf,
                new: new_leaf,
            });
        }
    }
    Ok(())
}

/// The paths of the entries a tree names a second time (see [`entries`]), in the trees
/// of `b` that are not in `a` at the same path: with `a` absent, every tree of `b`; with
/// `a` a tree without any (a sound one), every one `b` has, reading only the trees that
/// differ.
pub(crate) fn twice_named(
    repo: &gix::Repository,
    a: Option<&ObjectId>,
    b: &ObjectId,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<()> {
    if a == Some(b) {
        return Ok(());
    }
    let old: BTreeMap<Vec<u8>, (EntryMode, ObjectId)> = match a {
        Some(id) => entries(repo, id)?
            .into_iter()
            .map(|e| (e.name, (e.mode, e.id)))
            .collect(),
        None => BTreeMap::new(),
    };
    let stored = entries_as_stored(repo, b)?;
    let firsts = first_of_name(&stored);
    for (entry, first) in stored.into_iter().zip(firsts) {
        let path = join(prefix, &entry.name);
        if !first {
            out.push(path);
            continue;
        }
        if entry.mode.is_tree() {
            let before = old
                .get(&entry.name)
                .filter(|(mode, _)| mode.is_tree())
                .map(|(_, id)| *id);
            twice_named(repo, before.as_ref(), &entry.id, &path, out)?;
        }
    }
    Ok(())
}
