//! History: revisions, the log of the store and of one entity, the graph at a revision.

use gix::ObjectId;
use gix::objs::{CommitRef, Kind};
use kgstore_core::{EntityKey, Error, GraphState, LogQuery, Result, Revision, Signature};

use crate::backend::GitBackend;
use crate::docs::DocState;
use crate::layout;
use crate::tree;

/// How far back problems are traced to the commit that brought them, when no sound
/// commit is known to stop at.
const TRACE_LIMIT: usize = 1000;

fn signature(sig: gix::actor::SignatureRef<'_>) -> Signature {
    let time = sig.time().unwrap_or_default();
    Signature {
        name: String::from_utf8_lossy(sig.name).trim().to_owned(),
        email: String::from_utf8_lossy(sig.email).trim().to_owned(),
        time: time.seconds,
        offset_seconds: time.offset,
    }
}

/// A commit as a [`Revision`].
pub(crate) fn revision(repo: &gix::Repository, id: &ObjectId) -> Result<Revision> {
    let data = tree::read_kind(repo, id, Kind::Commit)?;
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::corrupt(repo.git_dir(), format!("commit {id} does not parse: {e}"))
    };
    let commit = CommitRef::from_bytes(&data, gix::hash::Kind::Sha1).map_err(|e| corrupt(&e))?;
    Ok(Revision {
        id: id.to_hex().to_string(),
        parents: commit.parents().map(|p| p.to_hex().to_string()).collect(),
        author: signature(commit.author().map_err(|e| corrupt(&e))?),
        committer: signature(commit.committer().map_err(|e| corrupt(&e))?),
        message: String::from_utf8_lossy(commit.message).into_owned(),
    })
}

/// The commit a revision expression names (`main`, `HEAD~2`, an abbreviated id, a tag).
pub(crate) fn resolve(backend: &GitBackend, expression: &str) -> Result<ObjectId> {
    let refuse = |reason: String| Error::invalid_input(format!("revision '{expression}'"), reason);
    if expression.is_empty() || expression.contains('\0') {
        return Err(refuse("must not be empty".to_owned()));
    }
    let repo = backend.local();
    let id = repo.rev_parse_single(expression).map_err(|e| {
        // gix's text is kept when it says something a user can act on (an
        // abbreviated id that two objects share, a damaged repository), and left
        // out when it names its parser's internals
        // ("delegate.traverse(NthAncestor(3)) failed, input=\"~3\"").
        let detail = e.to_string();
        let detail = if detail.contains("delegate") || detail.contains("input=") {
            String::new()
        } else {
            format!(" ({detail})")
        };
        refuse(format!(
            "not found in {}: no branch, tag or commit id of that name, or fewer \
                 commits before it than asked for (`log` lists the revisions){detail}",
            backend.git_dir.display()
        ))
    })?;
    let commit = id
        .object()
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| refuse(format!("does not name a commit: {e}")))?;
    Ok(commit.id)
}

/// The graph and the documents at a revision: the current graph with the difference
/// to that commit applied, so the work is proportional to what changed since (files
/// that do not parse there are left out), and the documents of that commit.
pub(crate) fn snapshot_at(
    backend: &GitBackend,
    expression: &str,
) -> Result<(GraphState, DocState)> {
    let target = resolve(backend, expression)?;
    let current = backend.refresh()?;
    if current.snapshot.commit == Some(target) && current.problems.is_empty() {
        return Ok((
            current.snapshot.graph.clone(),
            current.snapshot.docs.clone(),
        ));
    }
    let repo = backend.local();
    let (tree, _) = tree::commit_tree(&repo, &target)?;
    let mut deltas = Vec::new();
    tree::diff(
        &repo,
        current.snapshot.tree.as_ref(),
        Some(&tree),
        "",
        &mut deltas,
    )?;
    let mut graph = current.snapshot.graph.clone();
    if current.problems.is_empty() {
        layout::apply(&backend.repo, &mut graph, &deltas)?;
    } else {
        // The current graph lacks what did not parse: read the revision whole.
        graph = layout::load(&backend.repo, Some(&tree))?.0;
    }
    let docs = if deltas
        .iter()
        .any(|d| crate::docs::touches_documents(&d.path))
    {
        crate::docs::load(&repo, Some(&target), Some(&tree))?.0
    } else {
        current.snapshot.docs.clone()
    };
    Ok((graph, docs))
}

/// The entry at `path` in a commit's tree.
fn entry_in(
    repo: &gix::Repository,
    commit: &ObjectId,
    path: &str,
) -> Result<Option<(gix::objs::tree::EntryMode, ObjectId)>> {
    let (tree, _) = tree::commit_tree(repo, commit)?;
    tree::entry_at(repo, &tree, path)
}

/// Walks the first-parent line from `start`, newest first, calling `visit` with each
/// commit and its first parent until it returns `false` or the line ends at `stop`.
fn walk(
    repo: &gix::Repository,
    start: ObjectId,
    stop: Option<&ObjectId>,
    mut visit: impl FnMut(&ObjectId, Option<&ObjectId>) -> Result<bool>,
) -> Result<()> {
    let mut next = Some(start);
    while let Some(id) = next {
        if Some(&id) == stop {
            break;
        }
        let (_, parents) = tree::commit_tree(repo, &id)?;
        let parent = parents.first().copied();
        if !visit(&id, parent.as_ref())? {
            break;
        }
        next = parent;
    }
    Ok(())
}

/// Whether the commit changed any of `paths` compared with its first parent.
fn changes(
    repo: &gix::Repository,
    commit: &ObjectId,
    parent: Option<&ObjectId>,
    paths: &[String],
) -> Result<bool> {
    for path in paths {
        let now = entry_in(repo, commit, path)?;
        let before = match parent {
            Some(parent) => entry_in(repo, parent, path)?,
            None => None,
        };
        if now != before {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The newest commit on the first-parent line from `tip` (back to, not including,
/// `since`) that changed `path`.
pub(crate) fn last_change(
    repo: &gix::Repository,
    tip: &ObjectId,
    since: Option<&ObjectId>,
    path: &str,
) -> Result<Option<Revision>> {
    let mut found = None;
    let mut seen = 0;
    walk(repo, *tip, since, |id, parent| {
        seen += 1;
        if changes(repo, id, parent, &[path.to_owned()])? {
            found = Some(*id);
            return Ok(false);
        }
        Ok(seen < TRACE_LIMIT)
    })?;
    found.map(|id| revision(repo, &id)).transpose()
}

/// The log: revisions newest first on the first-parent line.
pub(crate) fn log(backend: &GitBackend, query: &LogQuery) -> Result<Vec<Revision>> {
    let repo = backend.local();
    let start = match &query.from {
        Some(expression) => Some(resolve(backend, expression)?),
        None => backend.refresh()?.snapshot.commit,
    };
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let limit = query.limit.unwrap_or(usize::MAX);
    // A document's history: its file (an edit with plain git changes only that) and
    // its metadata file (a replace with the same bytes changes only that).
    let paths = match &query.key {
        Some(key @ EntityKey::Document(doc)) => Some(vec![
            backend.refresh()?.snapshot.docs.path_for(doc)?,
            layout::key_path(key),
        ]),
        Some(key) => Some(vec![layout::key_path(key)]),
        None => None,
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    walk(&repo, start, None, |id, parent| {
        let wanted = match &paths {
            Some(paths) => changes(&repo, id, parent, paths)?,
            None => true,
        };
        if wanted {
            out.push(revision(&repo, id)?);
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}
