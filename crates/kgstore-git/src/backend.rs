//! The backend: the graph of the branch's commit in memory, refreshed when the branch
//! moves; readers on an immutable snapshot; one writer at a time across processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use gix::ObjectId;
use kgstore_core::{
    Backend, EntityKey, Error, GraphState, LogQuery, Problem, ReadTxn, Result, Revision, WriteTxn,
};

use crate::docs::{self, DocState, GitDocs};
use crate::history;
use crate::layout::{self, FileProblem};
use crate::lock::WriterLock;
use crate::objects::ObjectDir;
use crate::options::GitOptions;
use crate::refs::Branch;
use crate::tree;
use crate::write::GitWrite;

/// The git backend: a knowledge graph kept in a bare git repository, one commit per
/// write transaction on one branch.
///
/// ```
/// use kgstore_core::{GraphRead, LogQuery, Node, Store};
/// use kgstore_git::{GitBackend, GitOptions};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::new(GitBackend::open(dir.path().join("kg.git"), GitOptions::default())?);
/// store.write(|tx| {
///     tx.set_message("Add serde")?;
///     tx.create_node(Node::new("serde", "crate")?)?;
///     Ok(())
/// })?;
/// let log = store.log(&LogQuery::new())?;
/// assert_eq!(log[0].summary(), "Add serde");
/// assert_eq!(log.len(), 2); // and the commit that created the store
/// assert!(store.read_at(&log[1].id)?.find_node("serde")?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GitBackend {
    pub(crate) git_dir: PathBuf,
    pub(crate) options: GitOptions,
    pub(crate) repo: gix::ThreadSafeRepository,
    pub(crate) branch: Branch,
    pub(crate) objects: ObjectDir,
    pub(crate) lock: Option<WriterLock>,
    /// The snapshot of the branch's current commit.
    pub(crate) current: RwLock<Arc<Current>>,
    /// The last snapshot found sound (kgstore's commits, and others' once checked):
    /// others' commits are checked from here.
    pub(crate) verified: Mutex<Snapshot>,
    /// Serializes refreshes.
    refreshing: Mutex<()>,
}

/// The graph and the documents at one commit.
#[derive(Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) commit: Option<ObjectId>,
    pub(crate) tree: Option<ObjectId>,
    pub(crate) graph: GraphState,
    pub(crate) docs: DocState,
    /// Files outside `.kgstore/` that are not documents, and metadata files that do
    /// not parse (reported by `check`; they never stop writes: they are the user's).
    pub(crate) doc_problems: Arc<Vec<Problem>>,
}

/// The branch's current commit, and what is wrong with it.
#[derive(Clone, Default)]
pub(crate) struct Current {
    pub(crate) snapshot: Snapshot,
    /// Problems a commit made outside kgstore brought, located by commit and path;
    /// writes are refused while there are any.
    pub(crate) problems: Vec<Problem>,
}

impl std::fmt::Debug for GitBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitBackend")
            .field("git_dir", &self.git_dir)
            .field("branch", &self.branch.full_name)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The name of the file where the last commit found sound is remembered between
/// opens (a cache: an open starts from it and checks the difference; without it, the
/// whole graph once). One per repository: a commit's soundness is the same on every
/// branch (docs/git.md says what it costs the blame on another branch).
const VERIFIED_FILE: &str = "kgstore-verified";

impl GitBackend {
    /// Opens (or, unless told not to, creates) the bare repository at `path` and the
    /// store on its branch.
    ///
    /// A new repository gets a first commit holding the format marker and the
    /// `.gitattributes` of the LFS patterns. An existing repository must be bare
    /// (kgstore never writes to a work tree). The branch's graph is read into memory;
    /// what is wrong with it (files that do not parse, broken references) does not stop
    /// the open: reads see what parses, [`Backend::check`] lists each problem with the
    /// commit and path, and writes are refused until a commit fixes them.
    ///
    /// Errors: [`Error::InvalidInput`] for a path that is not a bare repository;
    /// [`Error::Io`] for a missing repository when creating is not allowed.
    pub fn open(path: impl AsRef<Path>, options: GitOptions) -> Result<Self> {
        let git_dir = path.as_ref().to_path_buf();
        let exists = git_dir.exists();
        if !exists {
            if options.read_only || !options.create_if_missing {
                let why = if options.read_only {
                    "no git repository here (a read-only open creates nothing)"
                } else {
                    "no git repository here (and creating one was not asked for)"
                };
                return Err(Error::io(
                    &git_dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, why),
                ));
            }
            crate::init::init_bare(&git_dir, &options)?;
        }
        let open_options = gix::open::Options::isolated();
        let repo = gix::ThreadSafeRepository::open_opts(&git_dir, open_options).map_err(|e| {
            Error::invalid_input(
                format!("git store {}", git_dir.display()),
                format!("not a git repository: {e}"),
            )
        })?;
        if repo.to_thread_local().workdir().is_some() {
            return Err(Error::invalid_input(
                format!("git store {}", git_dir.display()),
                "is a repository with a work tree; kgstore writes to bare repositories only \
                 (make one with `git clone --bare`)",
            ));
        }
        let git_dir = repo.to_thread_local().git_dir().to_path_buf();
        let lock = if options.read_only {
            None
        } else {
            Some(WriterLock::open(&git_dir)?)
        };
        let backend = Self {
            branch: Branch::new(&git_dir, &options.branch),
            objects: ObjectDir {
                dir: git_dir.join("objects"),
            },
            git_dir,
            options,
            repo,
            lock,
            current: RwLock::new(Arc::new(Current::default())),
            verified: Mutex::new(Snapshot::default()),
            refreshing: Mutex::new(()),
        };
        backend.load_initial()?;
        if backend.branch.read()?.is_none() && !backend.options.read_only {
            crate::write::initial_commit(&backend)?;
        }
        Ok(backend)
    }

    /// The repository's folder.
    pub fn path(&self) -> &Path {
        &self.git_dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &GitOptions {
        &self.options
    }

    /// The commit the store's snapshot is at (`None` before the first commit).
    pub fn head(&self) -> Result<Option<String>> {
        Ok(self
            .refresh()?
            .snapshot
            .commit
            .map(|id| id.to_hex().to_string()))
    }

    pub(crate) fn local(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    /// Reads the whole graph of the branch at open, checking it once unless the commit
    /// is the one remembered as sound.
    ///
    /// When the branch moved past the remembered sound commit (a `git push`), the store
    /// starts from that commit and checks the difference, as a handle open throughout
    /// does: a problem is then traced to the commit since that brought it (the one that
    /// removed a node others refer to, say), not to the commits that made the files the
    /// problem shows in.
    fn load_initial(&self) -> Result<()> {
        let local = self.local();
        let Some(commit) = self.branch.read()? else {
            return Ok(());
        };
        let remembered = crate::fsio::read_optional(&self.git_dir.join(VERIFIED_FILE))
            .ok()
            .flatten()
            .and_then(|b| ObjectId::from_hex(String::from_utf8_lossy(&b).trim().as_bytes()).ok());
        // Best effort: a remembered commit that cannot be read (pruned, say) or does
        // not parse any more leaves the whole check below.
        if let Some(sound) = remembered.filter(|sound| *sound != commit)
            && let Ok((snapshot, file_problems, _)) = self.load_commit(&local, sound)
            && file_problems.is_empty()
        {
            *lock(&self.verified) = snapshot.clone();
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Current {
                snapshot,
                problems: Vec::new(),
            });
            self.refresh()?;
            return Ok(());
        }
        let (snapshot, file_problems, keys) = self.load_commit(&local, commit)?;
        let entity_problems = if file_problems.is_empty() && remembered == Some(commit) {
            Vec::new()
        } else {
            kgstore_core::check_changes(&snapshot.graph, &keys)?
        };
        let problems = self.locate(&local, None, &commit, file_problems, entity_problems)?;
        if problems.is_empty() {
            *lock(&self.verified) = snapshot.clone();
            self.remember_verified(&commit);
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(Current { snapshot, problems });
        Ok(())
    }

    /// The graph and the documents of a commit, read whole; with the graph files that
    /// do not parse and the keys of every entity read.
    fn load_commit(
        &self,
        local: &gix::Repository,
        commit: ObjectId,
    ) -> Result<(Snapshot, Vec<FileProblem>, Vec<EntityKey>)> {
        let (tree, _) = tree::commit_tree(local, &commit)?;
        let (graph, mut file_problems, keys) = layout::load(&self.repo, Some(&tree))?;
        file_problems.extend(layout::tree_problems(local, None, &tree)?);
        let (docs, doc_problems) = docs::load(local, Some(&commit), Some(&tree))?;
        let snapshot = Snapshot {
            commit: Some(commit),
            tree: Some(tree),
            graph,
            docs,
            doc_problems: Arc::new(doc_problems),
        };
        Ok((snapshot, file_problems, keys))
    }

    /// Notes (best effort, unsynced: it only saves work) the last commit found sound.
    pub(crate) fn remember_verified(&self, commit: &ObjectId) {
        if self.options.read_only {
            return;
        }
        let path = self.git_dir.join(VERIFIED_FILE);
        let bytes = format!("{}\n", commit.to_hex());
        if let Ok(temp) = crate::fsio::write_temp(&self.git_dir, bytes.as_bytes(), false)
            && std::fs::rename(&temp, &path).is_err()
        {
            let _ = std::fs::remove_file(&temp);
        }
    }

    /// Copies the root `.gitattributes` into `info/attributes`, where bare-repository
    /// `git lfs` commands read attributes (best effort: the tree's file is what counts).
    pub(crate) fn mirror_attributes(&self, text: &str) {
        let info = self.git_dir.join("info");
        let written = crate::fsio::write_temp(&info, text.as_bytes(), false)
            .and_then(|temp| crate::fsio::rename(&temp, &info.join("attributes")));
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not mirror .gitattributes into info/attributes");
        }
    }

    /// Turns problems found at `tip` into problems naming the commit that brought
    /// them (the newest commit after `since` that changed the file) and the path.
    fn locate(
        &self,
        repo: &gix::Repository,
        since: Option<&ObjectId>,
        tip: &ObjectId,
        files: Vec<FileProblem>,
        entities: Vec<(EntityKey, String)>,
    ) -> Result<Vec<Problem>> {
        let mut located: Vec<(String, String)> =
            files.into_iter().map(|f| (f.path, f.detail)).collect();
        located.extend(
            entities
                .into_iter()
                .map(|(key, detail)| (layout::key_path(&key), format!("{key}: {detail}"))),
        );
        let mut problems = Vec::with_capacity(located.len());
        for (path, detail) in located {
            let commit = history::last_change(repo, tip, since, &path)?;
            let at = match commit {
                Some(revision) => format!(
                    "commit {} by {} (\"{}\")",
                    &revision.id[..12.min(revision.id.len())],
                    revision.author.name,
                    revision.summary()
                ),
                None => format!("commit {}", tip.to_hex_with_len(12)),
            };
            problems.push(Problem::new(format!("{at}: {path}"), detail));
        }
        Ok(problems)
    }

    /// The snapshot of the branch as it is now: if the branch moved (a commit by another
    /// process or by git), the change is read from the last sound snapshot and checked.
    pub(crate) fn refresh(&self) -> Result<Arc<Current>> {
        let tip = self.branch.read()?;
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        if current.snapshot.commit == tip {
            return Ok(current);
        }
        let _one = lock(&self.refreshing);
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        if current.snapshot.commit == tip {
            return Ok(current);
        }
        let Some(tip) = tip else {
            return Err(Error::corrupt(
                &self.git_dir,
                format!("the branch {} was deleted", self.branch.full_name),
            ));
        };
        let local = self.local();
        let (tree, _) = tree::commit_tree(&local, &tip)?;
        let base = lock(&self.verified).clone();
        let mut deltas = Vec::new();
        tree::diff(&local, base.tree.as_ref(), Some(&tree), "", &mut deltas)?;
        let mut graph = base.graph.clone();
        let (touched, mut file_problems) = layout::apply(&self.repo, &mut graph, &deltas)?;
        file_problems.extend(layout::tree_problems(&local, base.tree.as_ref(), &tree)?);
        let (docs, doc_problems) = if deltas.iter().any(|d| docs::touches_documents(&d.path)) {
            // Documents are read again whole (see docs/git.md).
            let (docs, problems) = docs::load(&local, Some(&tip), Some(&tree))?;
            (docs, Arc::new(problems))
        } else {
            (base.docs.clone(), Arc::clone(&base.doc_problems))
        };
        let entity_problems = kgstore_core::check_changes(&graph, &touched)?;
        let problems = self.locate(
            &local,
            base.commit.as_ref(),
            &tip,
            file_problems,
            entity_problems,
        )?;
        let level = if problems.is_empty() {
            tracing::Level::INFO
        } else {
            tracing::Level::WARN
        };
        kgstore_core::event_at!(
            level,
            from = base.commit.map(|c| c.to_hex().to_string()),
            to = %tip.to_hex(),
            entities = touched.len(),
            problems = problems.len(),
            "checked commits made by another handle or git"
        );
        let snapshot = Snapshot {
            commit: Some(tip),
            tree: Some(tree),
            graph,
            docs,
            doc_problems,
        };
        if problems.is_empty() {
            *lock(&self.verified) = snapshot.clone();
            self.remember_verified(&tip);
        }
        let fresh = Arc::new(Current { snapshot, problems });
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Installs the snapshot of a commit this handle just made.
    pub(crate) fn committed(&self, snapshot: Snapshot) {
        if let Some(commit) = &snapshot.commit {
            self.remember_verified(commit);
        }
        *lock(&self.verified) = snapshot.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Current {
            snapshot,
            problems: Vec::new(),
        });
    }

    /// The refusal of a write while the branch holds problems.
    pub(crate) fn refuse_broken(&self, problems: &[Problem]) -> Error {
        const SHOWN: usize = 10;
        let mut listed: Vec<String> = problems
            .iter()
            .take(SHOWN)
            .map(ToString::to_string)
            .collect();
        if problems.len() > SHOWN {
            listed.push(format!("and {} more", problems.len() - SHOWN));
        }
        Error::corrupt(
            &self.git_dir,
            format!(
                "writes are refused until a commit on {} fixes {} problem{} brought by commits \
                 made outside kgstore (kgstore check lists them): {}",
                self.branch.full_name,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                listed.join("; ")
            ),
        )
    }
}

/// A read transaction: a snapshot of the graph and the documents at one commit.
pub(crate) struct GitRead<'a> {
    pub(crate) state: GraphState,
    pub(crate) docs: GitDocs<'a>,
}

kgstore_core::delegate_read_txn!(GitRead<'_>, state, documents: docs);

impl Backend for GitBackend {
    fn name(&self) -> &str {
        "git"
    }

    fn begin_read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let current = self.refresh()?;
        Ok(Box::new(GitRead {
            state: current.snapshot.graph.clone(),
            docs: GitDocs::new(self, current.snapshot.docs.clone()),
        }))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(GitWrite::begin(self)?))
    }

    fn check(&self) -> Result<Vec<Problem>> {
        crate::maintenance::check(self)
    }

    fn optimize(&self) -> Result<()> {
        crate::maintenance::optimize(self)
    }

    fn backup_native(&self, dest: &Path) -> Result<()> {
        crate::maintenance::backup(self, dest)
    }

    fn read_at(&self, revision: &str) -> Result<Box<dyn ReadTxn + '_>> {
        let (state, docs) = history::snapshot_at(self, revision)?;
        Ok(Box::new(GitRead {
            state,
            docs: GitDocs::new(self, docs),
        }))
    }

    fn durability(&self) -> Option<kgstore_core::Durability> {
        Some(self.options.durability)
    }

    /// Loose objects and packs in the repository.
    fn figures(&self) -> Result<Vec<kgstore_core::BackendFigure>> {
        Ok(crate::perf::figures(&self.objects.dir))
    }

    fn log(&self, query: &LogQuery) -> Result<Vec<Revision>> {
        history::log(self, query)
    }
}
