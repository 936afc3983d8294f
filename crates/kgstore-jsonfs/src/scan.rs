//! Reading a whole store from its files, in parallel, and finding what is wrong.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use imbl::OrdMap;
use kgstore_core::entity_file::{self, EntityFile};
use kgstore_core::{EdgeKey, Error, GraphState, Problem, Result, algo};

use crate::events::EventFile;
use crate::files::{is_temp, workers_for};
use crate::image::{Image, Key};
use crate::journal::FileOp;
use crate::names::{self, EDGES, EXTENSION, NODE_TYPE, NODES, RELATION_TYPE, SCHEMAS};
use crate::snapshot::{self, Stats};

/// Something wrong with the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file or folder concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
    /// Whether data would be lost or misread if the store were used as it is.
    pub fatal: bool,
}

impl Finding {
    /// The finding as a [`Problem`] of a check.
    pub fn problem(&self) -> Problem {
        Problem::new(self.path.display().to_string(), self.detail.clone())
    }
}

/// What a scan found.
#[derive(Default)]
pub struct Scan {
    /// The graph the files hold (at generation 0: the caller knows the generation).
    pub state: Image,
    /// What is wrong.
    pub findings: Vec<Finding>,
    /// Temporary files left by a crash.
    pub temps: Vec<PathBuf>,
    /// Shard folders that exist (relative paths).
    pub dirs: HashSet<String>,
    /// Staged documents no committed transaction names, and temporary files of
    /// document metadata (see [`crate::docs::DocScan`]).
    pub doc_strays: Vec<PathBuf>,
    /// One-document commits of format version 2 that a crash cut short after their
    /// commit mark: (staged file, the document's path).
    pub doc_pending: Vec<(String, String)>,
    /// The status of every entry of the graph's folders, as read.
    pub stats: Stats,
}

/// A file of the store, parsed.
enum Parsed {
    /// A node, edge or schema file.
    Entity(EntityFile),
    /// An event-store file.
    Event(EventFile),
}

/// Parses a file found at `rel`, by the folder it is in.
fn parse(rel: &str, bytes: &[u8]) -> Result<Parsed, String> {
    if rel.starts_with(crate::events::EVENTS) {
        crate::events::parse(rel, bytes).map(Parsed::Event)
    } else {
        entity_file::parse(rel, bytes).map(Parsed::Entity)
    }
}

/// What reading one folder gave.
#[derive(Default)]
struct FolderScan {
    loaded: Vec<(String, Result<Parsed, String>)>,
    findings: Vec<Finding>,
    temps: Vec<PathBuf>,
    stats: Stats,
}

/// Reads the file at `path` (`rel` in the store), recording its status, taken
/// before the read, in `stats` if it is one of the graph's (so that any change
/// after it shows).
fn read_file(path: &Path, rel: &str, stats: Option<&mut Stats>) -> std::io::Result<Vec<u8>> {
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if let Some(stats) = stats {
        stats.record(rel, &meta);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_folder(root: &Path, rel_dir: &str, out: &mut FolderScan) {
    let dir = root.join(rel_dir);
    let graph = snapshot::is_graph_path(&format!("{rel_dir}/"));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            out.findings
                .push(finding(dir, format!("cannot be listed: {e}"), true));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.findings
                    .push(finding(dir.clone(), format!("cannot be listed: {e}"), true));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp(&name) {
            out.temps.push(path);
            continue;
        }
        let rel = format!("{rel_dir}/{name}");
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || !name.ends_with(EXTENSION) {
            if graph {
                match entry.metadata() {
                    Ok(meta) => out.stats.record(&rel, &meta),
                    Err(_) => out.stats.spoil(),
                }
            }
            out.findings.push(finding(
                path,
                "is not a file this store writes (stray)".into(),
                false,
            ));
            continue;
        }
        let parsed = match read_file(&path, &rel, graph.then_some(&mut out.stats)) {
            Ok(bytes) => parse(&rel, &bytes),
            Err(e) => Err(format!("cannot be read: {e}")),
        };
        out.loaded.push((rel, parsed));
    }
}

fn finding(path: PathBuf, detail: String, fatal: bool) -> Finding {
    Finding {
        path,
        detail,
        fatal,
    }
}

/// The folders holding entity files, relative to the root; stray entries of the data
/// folders go to `findings`, temporary files to `temps`.
pub(crate) fn folders(root: &Path, scan: &mut Scan) -> Result<Vec<String>> {
    // An interrupted creation may leave a temporary file beside the marker.
    let entries = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        if is_temp(&entry.file_name().to_string_lossy()) {
            scan.temps.push(entry.path());
        }
    }
    let mut folders = Vec::new();
    for top in [NODES, EDGES, SCHEMAS] {
        let dir = root.join(top);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Git keeps no empty folders: a missing data folder holds nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let expected = if top == SCHEMAS {
                name == NODE_TYPE || name == RELATION_TYPE
            } else {
                name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            };
            if is_temp(&name) && !is_dir {
                scan.temps.push(entry.path());
            } else if is_dir && expected {
                let rel = format!("{top}/{name}");
                scan.dirs.insert(rel.clone());
                folders.push(rel);
            } else {
                scan.findings.push(finding(
                    entry.path(),
                    "is not a file or folder this store writes (stray)".into(),
                    false,
                ));
            }
        }
    }
    event_folders(root, scan, &mut folders)?;
    folders.sort();
    Ok(folders)
}

/// The event store's folders: `events/log/NNNNNNNNNNNN` and `events/state/SPACE/SHARD`.
fn event_folders(root: &Path, scan: &mut Scan, folders: &mut Vec<String>) -> Result<()> {
    use crate::events::{LOG, STATE};
    // Lists a folder's sub-folders whose names pass `expected`; strays are findings.
    let mut list = |rel: &str, expected: &dyn Fn(&str) -> bool| -> Result<Vec<String>> {
        let dir = root.join(rel);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_temp(&name) && !is_dir {
                scan.temps.push(entry.path());
            } else if is_dir && expected(&name) {
                out.push(format!("{rel}/{name}"));
            } else {
                scan.findings.push(finding(
                    entry.path(),
                    "is not a file or folder this store writes (stray)".into(),
                    false,
                ));
            }
        }
        Ok(out)
    };
    let digits = |name: &str| name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit());
    let word =
        |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let hex2 = |name: &str| {
        name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut found = list(LOG, &digits)?;
    for space in list(STATE, &word)? {
        found.extend(list(&space, &hex2)?);
        scan.dirs.insert(space);
    }
    for rel in found {
        scan.dirs.insert(rel.clone());
        folders.push(rel);
    }
    Ok(())
}

/// The folders that hold entity files (shard folders and schema folders), relative
/// to the store's folder.
pub fn data_folders(root: &Path) -> Result<Vec<String>> {
    folders(root, &mut Scan::default())
}

/// The files of a store as read, before any overlay and integrity check.
pub struct Files {
    loaded: BTreeMap<String, Result<Parsed, String>>,
    scan: Scan,
}

/// Reads every entity file under `root`, in parallel, without judging the whole.
pub fn read_files(root: &Path) -> Result<Files> {
    let mut scan = Scan::default();
    let folders = folders(root, &mut scan)?;
    read_folders(root, &folders, scan)
}

/// Reads every entity file of `folders` (relative to `root`), in parallel, into
/// what `scan` found so far.
pub(crate) fn read_folders(root: &Path, folders: &[String], mut scan: Scan) -> Result<Files> {
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = workers_for(folders.len(), 8, 2 * parallelism.min(8));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let work = || {
        let mut out = FolderScan::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(rel_dir) = folders.get(i) else { break };
            read_folder(root, rel_dir, &mut out);
        }
        results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(out);
    };
    if workers <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    let mut loaded: BTreeMap<String, Result<Parsed, String>> = BTreeMap::new();
    for part in results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        loaded.extend(part.loaded);
        scan.findings.extend(part.findings);
        scan.temps.extend(part.temps);
        scan.stats.extend(part.stats);
    }
    Ok(Files { loaded, scan })
}

/// Reads every entity file under `root`, with `overlay` (committed transactions
/// not, or not all, in the files yet) applied on top, and checks the result; see
/// [`finish`].
pub fn scan(root: &Path, overlay: &[FileOp]) -> Result<Scan> {
    finish(root, read_files(root)?, overlay)
}

/// Applies `overlay` over the files read, reads the documents' metadata (with
/// `overlay` applied too) and checks the result: files parse and sit where their
/// keys say, edges join existing nodes, dependencies exist and form
/// no cycle.
pub fn finish(root: &Path, files: Files, overlay: &[FileOp]) -> Result<Scan> {
    let Files {
        mut loaded,
        mut scan,
    } = files;
    for op in overlay {
        if crate::docs::is_doc_path(&op.rel) {
            // A document's metadata or bytes: the documents' scan applies it.
            continue;
        }
        if snapshot::is_graph_path(&op.rel) {
            // The file read may be older than the image: its status cannot vouch for it.
            scan.stats.spoil();
        }
        match &op.content {
            Some(bytes) => {
                loaded.insert(op.rel.clone(), parse(&op.rel, bytes));
            }
            None => {
                loaded.remove(&op.rel);
            }
        }
    }
    let mut paths_of_nodes: HashMap<String, String> = HashMap::new();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut edge_paths: Vec<(String, EdgeKey)> = Vec::new();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut schemas = Vec::new();
    let mut hashed = OrdMap::new();
    let mut events = Vec::new();
    for (rel, parsed) in loaded {
        match parsed {
            Ok(Parsed::Entity(EntityFile::Node(node))) => {
                Image::note_path(&mut hashed, &rel, &Key::Node(node.name.clone()));
                deps.insert(node.name.clone(), node.dependencies.clone());
                paths_of_nodes.insert(node.name.clone(), rel);
                nodes.push(node);
            }
            Ok(Parsed::Entity(EntityFile::Edge(edge))) => {
                Image::note_path(&mut hashed, &rel, &Key::Edge(edge.key()));
                edge_paths.push((rel, edge.key()));
                edges.push(edge);
            }
            Ok(Parsed::Entity(EntityFile::Schema(target, schema))) => {
                schemas.push((target, schema));
            }
            Ok(Parsed::Event(file)) => events.push((rel, file)),
            Err(detail) => scan.findings.push(finding(root.join(&rel), detail, true)),
        }
    }
    let graph = GraphState::build(nodes, edges, schemas);
    let mut scan = finish_events(root, scan, Image::new(0, graph, hashed), events, overlay)?;
    integrity(root, &mut scan, &paths_of_nodes, &deps, &edge_paths)?;
    scan.findings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
}

/// [`finish`] over an image of the graph built already (from a snapshot), with
/// the files read (the event store's) and no overlay: its graph's integrity was
/// checked when it was read from the files.
pub(crate) fn finish_over(root: &Path, files: Files, image: Image) -> Result<Scan> {
    let Files { loaded, mut scan } = files;
    let mut events = Vec::new();
    for (rel, parsed) in loaded {
        match parsed {
            Ok(Parsed::Event(file)) => events.push((rel, file)),
            Ok(Parsed::Entity(_)) => scan.findings.push(finding(
                root.join(&rel),
                "an entity file outside the graph's folders".into(),
                true,
            )),
            Err(detail) => scan.findings.push(finding(root.join(&rel), detail, true)),
        }
    }
    let mut scan = finish_events(root, scan, image, events, &[])?;
    scan.findings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
}

/// Loads the event store's files into `image`, reads the documents' metadata
/// (with `overlay` applied), and makes `image` the scan's.
fn finish_events(
    root: &Path,
    mut scan: Scan,
    mut image: Image,
    events: Vec<(String, EventFile)>,
    overlay: &[FileOp],
) -> Result<Scan> {
    for (rel, file) in events {
        if let EventFile::State(entry) = &file {
            let key = Key::State(entry.space.clone(), entry.key.clone());
            image.note_hashed(&rel, &key);
        }
        crate::events::load(image.graph.event_state_mut(), file)?
    }
    for detail in crate::events::integrity(image.graph.event_state()) {
        scan.findings
            .push(finding(root.join(crate::events::LOG), detail, true));
    }
    scan.state = image;
    let documents = crate::docs::scan(root, overlay)?;
    scan.findings.extend(documents.findings);
    scan.dirs.extend(documents.dirs);
    scan.doc_strays = documents.strays;
    scan.doc_pending = documents.pending;
    scan.state.set_docs(documents.index);
    scan.temps.sort();
    Ok(scan)
}

/// Edges must join existing nodes; dependencies must exist and form no cycle.
fn integrity(
    root: &Path,
    scan: &mut Scan,
    paths_of_nodes: &HashMap<String, String>,
    deps: &BTreeMap<String, Vec<String>>,
    edges: &[(String, EdgeKey)],
) -> Result<()> {
    use kgstore_core::validate::shorten;
    for (rel, key) in edges {
        for (end, name) in [("from", &key.from), ("to", &key.to)] {
            if !paths_of_nodes.contains_key(name) {
                scan.findings.push(finding(
                    root.join(rel),
                    format!(
                        "edge {key}: its '{end}' node '{}' does not exist (no file {})",
                        shorten(name),
                        names::node_path(name)
                    ),
                    true,
                ));
            }
        }
    }
    for (name, node_deps) in deps {
        let rel = paths_of_nodes.get(name).map_or("", String::as_str);
        for dep in node_deps {
            if !paths_of_nodes.contains_key(dep) {
                scan.findings.push(finding(
                    root.join(rel),
                    format!(
                        "node '{}' depends on node '{}', which does not exist (no file {})",
                        shorten(name),
                        shorten(dep),
                        names::node_path(dep)
                    ),
                    true,
                ));
            }
        }
    }
    let deps_of = |name: &str| Ok(deps.get(name).cloned());
    if let Some(cycle) = algo::first_cycle(&deps_of, deps.keys().cloned())? {
        let first = cycle.first().and_then(|n| paths_of_nodes.get(n));
        scan.findings.push(finding(
            first.map_or_else(|| root.join(NODES), |rel| root.join(rel)),
            format!("dependency cycle {}", cycle.join(" -> ")),
            true,
        ));
    }
    Ok(())
}
