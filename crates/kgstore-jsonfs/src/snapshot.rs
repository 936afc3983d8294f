//! The image snapshot: the graph a handle holds (nodes, edges, schemas) in one
//! checksummed binary file, with the status of every file of the graph's folders
//! that the image was read from or written to, so that an open builds its image
//! from one file instead of reading and parsing every file of the store.
//!
//! A snapshot is a cache, never the truth. An open uses it only if it reads whole
//! (magic, versions, SHA-256), was taken at the generation the store has published
//! with no transaction in flight, and every entry of the graph's folders is
//! exactly what the snapshot recorded: the same names, and for each the same
//! status (device, inode, size, mode, modification and change times to the
//! nanosecond). Anything else — another process's commit, an older build's, a hand
//! edit, a copied or restored folder, a damaged or foreign snapshot — makes the
//! open read every file, as it always did, and the next close writes the snapshot
//! again. See `docs/jsonfs.md`, "The image snapshot".

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imbl::OrdMap;
use kgstore_core::{
    Edge, EdgeFilter, EdgeMetadata, GraphState, Node, NodeFilter, NodeMetadata, ReadTxn,
    RelationType, Result, SchemaTarget, Timestamp,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::fault::Hooks;
use crate::files::{self, is_temp};
use crate::image::{Image, Key};
use crate::journal::JOURNAL_DIR;
use crate::log::{self, Generation, LOG_DIR};
use crate::names::{self, EDGES, NODES, SCHEMAS};
use crate::scan::{self, Scan};

/// The snapshot's file name, in `journal/log/` (which every build since format 3
/// ignores but for its records and the generation file, and `.gitignore` keeps
/// out of git).
pub const SNAPSHOT: &str = "snapshot";
/// The first bytes of a snapshot.
const MAGIC: &[u8; 24] = b"kgstore-jsonfs snapshot\n";
/// The version of the snapshot's own layout; another is ignored. Version 2
/// records the byte length of the nodes' part, so that the nodes and the edges
/// are decoded on two threads.
const SNAPSHOT_FORMAT: u32 = 2;
/// The bytes of one entry of the file table: the path's hash, the status digest.
const ENTRY_BYTES: usize = 16;
/// The fewest bytes a node or an edge takes in a snapshot (a bound on how many a
/// count may announce before the checksum has vouched for it).
const MIN_ENTITY_BYTES: usize = 16;
/// How recent a file's change may be for its status alone not to vouch for its
/// content: a file system stamps changes with a coarse clock (one tick is 1–10
/// ms on Linux), so an edit in the same tick as the status taken leaves the same
/// times. Files changed this recently are compared by content before a snapshot
/// is written.
const RACY_NS: i64 = 50_000_000;
/// How many recently changed files [`Stats`] lists before it drops those whose
/// change is no longer recent.
const RECENT_LIMIT: usize = 1024;

/// A file's status as a snapshot compares it: a digest of device, inode, size,
/// mode and both times, and the change time (nanoseconds since 1970).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStat {
    digest: u64,
    ctime: i64,
}

/// The starting state of [`fnv`].
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a: a stable hash (the same in every build and process).
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    fnv_on(FNV_OFFSET, bytes)
}

/// [`fnv`] continued from `hash`, the hash of what came before `bytes` (so a
/// folder's prefix is hashed once for all its files).
fn fnv_on(mut hash: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a over 64-bit words instead of bytes (a snapshot's status digest): each
/// step is a bijection of the state for a given word, so two lists of words
/// that differ in one word always have different digests.
#[cfg(unix)]
fn fnv_words(words: &[u64]) -> u64 {
    words.iter().fold(FNV_OFFSET, |hash, &w| {
        (hash ^ w).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The status of a file (not following a symbolic link); `None` where the
/// platform does not give what a snapshot needs.
#[cfg(unix)]
pub(crate) fn stat_of(meta: &Metadata) -> Option<FileStat> {
    use std::os::unix::fs::MetadataExt;
    let ctime = meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec();
    let fields = [
        meta.dev(),
        meta.ino(),
        meta.size(),
        u64::from(meta.mode()),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
        meta.ctime() as u64,
        meta.ctime_nsec() as u64,
    ];
    Some(FileStat {
        digest: fnv_words(&fields),
        ctime,
    })
}

/// See the Unix version: elsewhere no snapshot is written or used.
#[cfg(not(unix))]
pub(crate) fn stat_of(_meta: &Metadata) -> Option<FileStat> {
    None
}

/// The key of a file's entry: a hash of its path relative to the store.
fn path_hash(rel: &str) -> u64 {
    fnv(rel.bytes())
}

/// Whether `rel` is in the graph's folders (nodes, edges, schemas), whose files a
/// snapshot holds.
pub(crate) fn is_graph_path(rel: &str) -> bool {
    [NODES, EDGES, SCHEMAS].iter().any(|top| {
        rel.strip_prefix(top)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The time now, in nanoseconds since the Unix epoch (the unit of a status's times).
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The status of every entry of the graph's folders as the image has it: taken
/// before a file was read, or right after this handle renamed it into place.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    files: foldhash::HashMap<u64, FileStat>,
    /// Files whose status was taken within [`RACY_NS`] of their change.
    recent: Vec<String>,
    /// How long `recent` may grow before the old ones are dropped.
    recent_limit: usize,
    /// Whether the table covers the image: false once the image took a change
    /// whose file this handle did not see (another process's commit applied from
    /// the log, a transaction applied over the files at open).
    complete: bool,
    /// Whether the snapshot in the store holds this table and the image (loaded
    /// from it, or written since the last change).
    saved: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            files: foldhash::HashMap::default(),
            recent: Vec::new(),
            recent_limit: RECENT_LIMIT,
            complete: true,
            saved: false,
        }
    }
}

impl Stats {
    /// Records the status of the entry at `rel`, taken now.
    pub(crate) fn record(&mut self, rel: &str, meta: &Metadata) {
        self.record_taken(rel, meta, now_ns());
    }

    /// Records the status of the entry at `rel`, taken at `now` ([`now_ns`]): a
    /// change within [`RACY_NS`] before that is recent.
    pub(crate) fn record_taken(&mut self, rel: &str, meta: &Metadata, now: i64) {
        self.saved = false;
        match stat_of(meta) {
            Some(stat) => {
                if stat.ctime > now - RACY_NS {
                    self.recent.push(rel.to_owned());
                    // A handle that commits for days keeps only the recent ones.
                    if self.recent.len() >= self.recent_limit {
                        let files = &self.files;
                        self.recent.retain(|rel| {
                            files
                                .get(&path_hash(rel))
                                .is_some_and(|s| s.ctime > now - RACY_NS)
                        });
                        self.recent_limit = (2 * self.recent.len()).max(RECENT_LIMIT);
                    }
                }
                self.files.insert(path_hash(rel), stat);
            }
            None => self.complete = false,
        }
    }

    /// Forgets the entry at `rel` (its file was removed).
    pub(crate) fn forget(&mut self, rel: &str) {
        self.saved = false;
        self.files.remove(&path_hash(rel));
    }

    /// The image took a change whose file this handle did not see.
    pub(crate) fn spoil(&mut self) {
        self.saved = false;
        self.complete = false;
    }

    /// Adds the entries of `other` (another part of one scan).
    pub(crate) fn extend(&mut self, other: Stats) {
        self.files.extend(other.files);
        self.recent.extend(other.recent);
        self.complete &= other.complete;
        self.saved = false;
    }
}

// ----- encoding -----

/// A JSON value's compact text.
fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| kgstore_core::Error::backend("image snapshot", e))
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn strs(&mut self, list: &[String]) {
        self.len(list.len());
        for s in list {
            self.str(s);
        }
    }
    /// A JSON object as its compact text (empty: no text).
    fn object(&mut self, map: &Map<String, Value>) -> Result<()> {
        if map.is_empty() {
            self.str("");
            Ok(())
        } else {
            self.str(&json(map)?);
            Ok(())
        }
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(*self.bytes(1)?.first()?)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        // No count can exceed the bytes left (every item takes at least one).
        (n <= self.buf.len() - self.pos).then_some(n)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.len()?;
        (0..n).map(|_| self.string()).collect()
    }
    fn time(&mut self) -> Option<Timestamp> {
        Timestamp::from_micros(self.u64()? as i64).ok()
    }
    fn object(&mut self) -> Option<Map<String, Value>> {
        let text = self.str()?;
        if text.is_empty() {
            Some(Map::new())
        } else {
            serde_json::from_str(text).ok()
        }
    }
}

fn encode_node(e: &mut Enc, node: &Node) -> Result<()> {
    e.str(&node.name);
    e.str(&node.node_type);
    e.strs(&node.observations);
    e.object(&node.attributes)?;
    e.strs(&node.dependencies);
    let m = &node.metadata;
    e.u64(m.created_at.as_micros() as u64);
    e.u64(m.updated_at.as_micros() as u64);
    e.u64(m.version);
    e.opt_str(m.author.as_deref());
    e.opt_str(m.source.as_deref());
    e.strs(&m.tags);
    e.opt_str(m.status.as_deref());
    Ok(())
}

fn decode_node(d: &mut Dec<'_>) -> Option<Node> {
    Some(Node {
        name: d.string()?,
        node_type: d.string()?,
        observations: d.strings()?,
        attributes: d.object()?,
        dependencies: d.strings()?,
        metadata: NodeMetadata {
            created_at: d.time()?,
            updated_at: d.time()?,
            version: d.u64()?,
            author: d.opt_string()?,
            source: d.opt_string()?,
            tags: d.strings()?,
            status: d.opt_string()?,
        },
    })
}

fn encode_edge(e: &mut Enc, edge: &Edge) -> Result<()> {
    e.str(&edge.from);
    e.str(edge.relation_type.as_str());
    e.str(&edge.to);
    e.object(&edge.attributes)?;
    let m = &edge.metadata;
    e.u64(m.created_at.as_micros() as u64);
    e.u64(m.updated_at.as_micros() as u64);
    e.u64(m.version);
    e.u64(m.weight.to_bits());
    match m.confidence {
        Some(c) => {
            e.u8(1);
            e.u64(c.to_bits());
        }
        None => e.u8(0),
    }
    e.u8(u8::from(m.bidirectional));
    e.opt_str(m.source.as_deref());
    Ok(())
}

fn decode_edge(d: &mut Dec<'_>, last: &mut Option<RelationType>) -> Option<Edge> {
    let from = d.string()?;
    let relation = d.str()?;
    // Edges come by source and relation: one parse per run.
    let relation_type = match last {
        Some(r) if r.as_str() == relation => r.clone(),
        _ => {
            let r = RelationType::parse(relation).ok()?;
            *last = Some(r.clone());
            r
        }
    };
    Some(Edge {
        from,
        relation_type,
        to: d.string()?,
        attributes: d.object()?,
        metadata: EdgeMetadata {
            created_at: d.time()?,
            updated_at: d.time()?,
            version: d.u64()?,
            weight: f64::from_bits(d.u64()?),
            confidence: match d.u8()? {
                0 => None,
                1 => Some(f64::from_bits(d.u64()?)),
                _ => return None,
            },
            bidirectional: match d.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            source: d.opt_string()?,
        },
    })
}

/// The snapshot of `image` with the entries of `stats`.
fn encode(image: &Image, stats: &Stats) -> Result<Vec<u8>> {
    let graph = &image.graph;
    let mut e = Enc(Vec::with_capacity(64 << 20));
    e.0.extend_from_slice(MAGIC);
    e.u32(SNAPSHOT_FORMAT);
    e.u64(crate::layout::VERSION);
    e.u64(image.generation);
    e.len(stats.files.len());
    for (hash, stat) in &stats.files {
        e.u64(*hash);
        e.u64(stat.digest);
    }
    let nodes = graph.scan_nodes(&NodeFilter::default(), None, usize::MAX)?;
    // The nodes' part is preceded by its length, filled in once it is written.
    let length_at = e.0.len();
    e.u64(0);
    e.len(nodes.len());
    for node in &nodes {
        encode_node(&mut e, node)?;
    }
    drop(nodes);
    let length = (e.0.len() - length_at - 8) as u64;
    e.0[length_at..length_at + 8].copy_from_slice(&length.to_le_bytes());
    let edges = graph.scan_edges(&EdgeFilter::default(), None, usize::MAX)?;
    e.len(edges.len());
    for edge in &edges {
        encode_edge(&mut e, edge)?;
    }
    drop(edges);
    let schemas = graph.list_schemas()?;
    e.len(schemas.len());
    for (target, schema) in &schemas {
        match target {
            SchemaTarget::NodeType(name) => {
                e.u8(0);
                e.str(name);
            }
            SchemaTarget::RelationType(relation) => {
                e.u8(1);
                e.str(relation.as_str());
            }
        }
        e.str(&json(schema)?);
    }
    let digest = Sha256::digest(&e.0);
    e.0.extend_from_slice(&digest);
    Ok(e.0)
}

/// A snapshot's parts, found by their lengths before its checksum is checked
/// (which runs beside their decoding): the file table, the nodes' part, the rest
/// (edges and schemas), and what the checksum covers.
struct Sections<'a> {
    body: &'a [u8],
    digest: &'a [u8],
    table: &'a [u8],
    nodes: &'a [u8],
    rest: &'a [u8],
}

/// The parts of a snapshot's bytes at `generation`; `None` for anything but a
/// snapshot of this layout at that generation whose parts fit in it. Nothing in
/// the parts is trusted before [`Sections::checked`].
fn sections(bytes: &[u8], generation: u64) -> Option<Sections<'_>> {
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    let mut d = Dec { buf: body, pos: 0 };
    if d.bytes(MAGIC.len())? != MAGIC
        || d.u32()? != SNAPSHOT_FORMAT
        || d.u64()? != crate::layout::VERSION
        || d.u64()? != generation
    {
        return None;
    }
    let count = d.len()?;
    let table = d.bytes(count.checked_mul(ENTRY_BYTES)?)?;
    let length = d.len()?;
    let nodes = d.bytes(length)?;
    let rest = body.get(d.pos..)?;
    Some(Sections {
        body,
        digest,
        table,
        nodes,
        rest,
    })
}

impl Sections<'_> {
    /// Whether the snapshot's SHA-256 is right.
    fn checked(&self) -> bool {
        Sha256::digest(self.body).as_slice() == self.digest
    }
}

/// The file table: each path's hash and its status digest (the change time is
/// not kept: a table loaded from a snapshot is never racy).
fn decode_table(table: &[u8]) -> Option<foldhash::HashMap<u64, FileStat>> {
    let mut files = foldhash::HashMap::default();
    files.reserve(table.len() / ENTRY_BYTES);
    for entry in table.chunks_exact(ENTRY_BYTES) {
        let (hash, digest) = entry.split_at(8);
        let digest = u64::from_le_bytes(digest.try_into().ok()?);
        let ctime = i64::MIN;
        files.insert(
            u64::from_le_bytes(hash.try_into().ok()?),
            FileStat { digest, ctime },
        );
    }
    Some(files)
}

/// Room for `count` entities announced by a part of `left` bytes, bounded by
/// what those bytes can hold (a count is read before the checksum is checked).
fn room(count: usize, left: usize) -> usize {
    count.min(left / MIN_ENTITY_BYTES)
}

/// The nodes' part: every node, to its end.
fn decode_nodes(buf: &[u8]) -> Option<Vec<Node>> {
    let mut d = Dec { buf, pos: 0 };
    let count = d.len()?;
    let mut nodes = Vec::with_capacity(room(count, buf.len()));
    for _ in 0..count {
        nodes.push(decode_node(&mut d)?);
    }
    (d.pos == d.buf.len()).then_some(nodes)
}

/// The schemas as the graph takes them.
type Schemas = Vec<(SchemaTarget, Value)>;

/// The rest of a snapshot: edges and schemas, to its end.
fn decode_rest(buf: &[u8]) -> Option<(Vec<Edge>, Schemas)> {
    let mut d = Dec { buf, pos: 0 };
    let count = d.len()?;
    let mut edges = Vec::with_capacity(room(count, buf.len()));
    let mut last = None;
    for _ in 0..count {
        edges.push(decode_edge(&mut d, &mut last)?);
    }
    let count = d.len()?;
    let mut schemas = Vec::with_capacity(room(count, buf.len()));
    for _ in 0..count {
        let target = match d.u8()? {
            0 => SchemaTarget::NodeType(d.string()?),
            1 => SchemaTarget::RelationType(RelationType::parse(d.str()?).ok()?),
            _ => return None,
        };
        schemas.push((target, serde_json::from_str(d.str()?).ok()?));
    }
    (d.pos == d.buf.len()).then_some((edges, schemas))
}

/// The snapshot's path in the store at `root`.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(LOG_DIR).join(SNAPSHOT)
}

/// Whether every entry of the graph's folders of the store at `root` (`folders`,
/// relative) has exactly the status `files` records, and no other entry is there.
fn unchanged(root: &Path, folders: &[String], files: &foldhash::HashMap<u64, FileStat>) -> bool {
    let seen = AtomicUsize::new(0);
    let differs = AtomicBool::new(false);
    let check = |rel_dir: &String| {
        if differs.load(Ordering::Relaxed) {
            return;
        }
        let Ok(entries) = fs::read_dir(root.join(rel_dir)) else {
            differs.store(true, Ordering::Relaxed);
            return;
        };
        // The hash of `<rel_dir>/`, continued over each name (no path is built).
        let prefix = fnv_on(fnv(rel_dir.bytes()), *b"/");
        let mut count = 0;
        for entry in entries {
            let same = entry.ok().is_some_and(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                !is_temp(&name)
                    && entry
                        .metadata()
                        .ok()
                        .and_then(|m| stat_of(&m))
                        .is_some_and(|stat| {
                            files
                                .get(&fnv_on(prefix, name.bytes()))
                                .is_some_and(|recorded| recorded.digest == stat.digest)
                        })
            });
            if !same {
                differs.store(true, Ordering::Relaxed);
                return;
            }
            count += 1;
        }
        seen.fetch_add(count, Ordering::Relaxed);
    };
    // Each worker takes the next folder when it is done with one
    // (`files::parallel_map`): edge folders hold five times the files.
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = files::workers_for(folders.len(), 8, 2 * parallelism.min(8));
    files::parallel_map(folders, workers, check);
    !differs.load(Ordering::Relaxed) && seen.load(Ordering::Relaxed) == files.len()
}

/// The keys of the entities among `nodes` and `edges` whose file names are
/// hashed, by path (see [`Image`]).
fn hashed_paths(nodes: &[Node], edges: &[Edge]) -> OrdMap<String, Key> {
    // An encoded byte takes at most three: a shorter key is never hashed.
    let short = |len: usize| len * 3 + 8 <= names::MAX_STEM;
    let mut hashed = OrdMap::new();
    for node in nodes.iter().filter(|n| !short(n.name.len())) {
        Image::note_path(
            &mut hashed,
            &names::node_path(&node.name),
            &Key::Node(node.name.clone()),
        );
    }
    for edge in edges {
        let len = edge.from.len() + edge.to.len() + edge.relation_type.as_str().len() + 2;
        if !short(len) {
            let key = edge.key();
            Image::note_path(&mut hashed, &names::edge_path(&key), &Key::Edge(key));
        }
    }
    hashed
}

/// The store read through its snapshot: the image (generation set), and what an
/// open needs of a scan; `None` if there is no snapshot this open may use (then
/// the store is read whole).
pub(crate) fn load(root: &Path, generation: &Generation) -> Option<Scan> {
    let before = generation.read().ok()?.generation()?;
    // A transaction whose record is still in `journal/` may be putting its files
    // in place: the full read applies it from its record.
    if log::in_journal(root, before) {
        return None;
    }
    let started = Instant::now();
    let bytes = fs::read(path(root)).ok()?;
    let Some(parts) = sections(&bytes, before) else {
        tracing::debug!(store = %root.display(), "the image snapshot is stale, damaged or of another version: every file is read");
        return None;
    };
    let mut scan = Scan::default();
    let folders = scan::folders(root, &mut scan).ok()?;
    if !scan.temps.is_empty() {
        return None;
    }
    let (graph_folders, other_folders): (Vec<String>, Vec<String>) = folders
        .into_iter()
        .partition(|rel| is_graph_path(&format!("{rel}/")));
    // At once: the checksum, the files compared with the table (the kernel's
    // work, mostly), the nodes decoded, the edges decoded; then the image is
    // built. Nothing decoded is used unless the checksum is right.
    let read = started.elapsed();
    let (checked, files, built) = std::thread::scope(|s| {
        let checked = s.spawn(|| parts.checked());
        let files = s.spawn(|| {
            let files = decode_table(parts.table)?;
            let same = unchanged(root, &graph_folders, &files);
            Some((files, started.elapsed())).filter(|_| same)
        });
        let nodes = s.spawn(|| decode_nodes(parts.nodes));
        let rest = decode_rest(parts.rest);
        let built = match (nodes.join().ok().flatten(), rest) {
            (Some(nodes), Some((edges, schemas))) => {
                let hashed = hashed_paths(&nodes, &edges);
                Some((GraphState::build(nodes, edges, schemas), hashed))
            }
            _ => None,
        };
        let built_at = started.elapsed();
        (
            checked.join().unwrap_or(false),
            files.join().ok().flatten(),
            built.map(|b| (b, built_at)),
        )
    });
    drop(bytes);
    if !checked {
        tracing::debug!(store = %root.display(), "the image snapshot is damaged: every file is read");
        return None;
    }
    let Some((files, compared_at)) = files else {
        tracing::debug!(store = %root.display(), "files changed since the image snapshot: every file is read");
        return None;
    };
    let ((graph, hashed), built_at) = built?;
    tracing::debug!(
        store = %root.display(),
        read_ms = read.as_millis(),
        compared_ms = compared_at.as_millis(),
        built_ms = built_at.as_millis(),
        "image built from the snapshot"
    );
    // The event store's and the documents' files are read as at every open.
    let files_read = scan::read_folders(root, &other_folders, scan).ok()?;
    let mut scan = scan::finish_over(root, files_read, Image::new(before, graph, hashed)).ok()?;
    if generation.read().ok()?.generation()? != before {
        return None;
    }
    scan.stats = Stats {
        files,
        recent: Vec::new(),
        recent_limit: RECENT_LIMIT,
        complete: true,
        saved: true,
    };
    scan.state.generation = before;
    Some(scan)
}

/// Writes the snapshot of `image` (at the generation the store has published, no
/// transaction in flight) with `stats`, if `stats` covers it and it is not in
/// the store already; whether it was written. A file changed too recently for its
/// status to vouch for it is compared with the image by content first; any
/// difference (an edit made while the store was open) and no snapshot is written.
pub(crate) fn save(root: &Path, image: &Image, stats: &mut Stats, hooks: &Hooks) -> Result<bool> {
    if stats.saved || !stats.complete {
        return Ok(false);
    }
    let published = Generation::new(root).read()?.generation().unwrap_or(0);
    if published != image.generation || log::in_journal(root, published) {
        return Ok(false);
    }
    // Files changed within a clock tick of their status: wait until any later
    // change must show in the times, then compare what they hold.
    let newest = now_ns();
    let racy: Vec<String> = std::mem::take(&mut stats.recent)
        .into_iter()
        .filter(|rel| {
            stats
                .files
                .get(&path_hash(rel))
                .is_some_and(|s| s.ctime > newest - RACY_NS)
        })
        .collect();
    if !racy.is_empty() {
        std::thread::sleep(Duration::from_nanos(2 * RACY_NS as u64));
        for rel in &racy {
            let Some(recorded) = stats.files.get(&path_hash(rel)).copied() else {
                continue;
            };
            let same = match image.rendered(rel)? {
                Some(expected) => fs::read(root.join(rel)).is_ok_and(|bytes| bytes == expected),
                // Not an entity's file (a stray): its content is not the image's.
                None => true,
            };
            let still = fs::symlink_metadata(root.join(rel))
                .ok()
                .and_then(|m| stat_of(&m))
                .is_some_and(|s| s.digest == recorded.digest);
            if !(same && still) {
                stats.complete = false;
                return Ok(false);
            }
        }
    }
    let bytes = encode(image, stats)?;
    let journal = root.join(JOURNAL_DIR);
    let temp = journal.join(files::temp_name(".snapshot"));
    let written = crate::fsio::create_new(&temp, hooks)
        .and_then(|mut file| crate::fsio::write_all(&mut file, &temp, &bytes, hooks))
        .map_err(|e| kgstore_core::Error::io(&temp, e))
        .and_then(|()| files::rename(&temp, &path(root), hooks));
    if let Err(e) = written {
        let _ = files::remove(&temp, hooks);
        return Err(e);
    }
    stats.saved = true;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Files changed recently are listed for the content comparison before a
    /// snapshot; a handle that commits for a long time keeps only recent ones.
    #[cfg(unix)]
    #[test]
    fn only_recently_changed_files_stay_listed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "a").unwrap();
        let mut stats = Stats::default();
        let meta = fs::symlink_metadata(&a).unwrap();
        for i in 0..2000 {
            stats.record(&format!("nodes/00/a{i}.json"), &meta);
        }
        assert!(!stats.recent.is_empty(), "changed just now");
        std::thread::sleep(Duration::from_nanos(2 * RACY_NS as u64));
        fs::write(&b, "b").unwrap();
        let meta = fs::symlink_metadata(&b).unwrap();
        for i in 0..2000 {
            stats.record(&format!("nodes/00/b{i}.json"), &meta);
        }
        assert!(
            stats.recent.iter().all(|rel| rel.contains("/b")),
            "old ones dropped"
        );
        assert!(stats.recent.len() <= 2000);
        assert_eq!(stats.files.len(), 4000);
        // A file's status taken long after its change is not listed.
        let old = fs::symlink_metadata(&a).unwrap();
        let before = stats.recent.len();
        stats.record("nodes/00/old.json", &old);
        assert_eq!(stats.recent.len(), before);
    }

    /// A status that differs in any one field (a time by a nanosecond, the
    /// inode, the size) has another digest.
    #[cfg(unix)]
    #[test]
    fn a_status_that_differs_in_one_field_has_another_digest() {
        let base = [
            7_u64,
            1234,
            312,
            0o100644,
            1_765_000_000,
            5,
            1_765_000_000,
            9,
        ];
        let digest = fnv_words(&base);
        for i in 0..base.len() {
            for delta in [1_u64, 1 << 32, u64::MAX] {
                let mut other = base;
                other[i] = other[i].wrapping_add(delta);
                assert_ne!(fnv_words(&other), digest, "field {i} + {delta}");
            }
        }
        // Two fields swapped is another status too.
        let mut swapped = base;
        swapped.swap(4, 6);
        swapped.swap(5, 7);
        assert_ne!(fnv_words(&swapped), digest);
    }

    #[test]
    fn entities_read_back_from_a_snapshot_as_they_were_written() {
        let node = Node::new("a é", "thing")
            .unwrap()
            .with_observation("seen")
            .with_attribute(
                "n",
                serde_json::json!({"x": [1, 2.5, null, "s"], "big": u64::MAX}),
            )
            .with_dependency("b");
        let mut edge = Edge::new("a é", RelationType::parse("my_rel").unwrap(), "b")
            .unwrap()
            .with_weight(0.1)
            .with_attribute("k", serde_json::json!(-3))
            .bidirectional();
        edge.metadata.confidence = Some(f64::MIN_POSITIVE);
        edge.metadata.source = Some("src".into());
        let mut e = Enc(Vec::new());
        encode_node(&mut e, &node).unwrap();
        encode_edge(&mut e, &edge).unwrap();
        encode_edge(&mut e, &Edge::new("b", RelationType::Calls, "c").unwrap()).unwrap();
        let mut d = Dec { buf: &e.0, pos: 0 };
        assert_eq!(decode_node(&mut d).unwrap(), node);
        let mut last = None;
        assert_eq!(decode_edge(&mut d, &mut last).unwrap(), edge);
        let plain = decode_edge(&mut d, &mut last).unwrap();
        assert_eq!(plain, Edge::new("b", RelationType::Calls, "c").unwrap());
        assert_eq!(d.pos, e.0.len());
        // Cut anywhere, it does not decode (and does not panic).
        for cut in 0..e.0.len() {
            let mut d = Dec {
                buf: &e.0[..cut],
                pos: 0,
            };
            let whole = decode_node(&mut d).is_some()
                && decode_edge(&mut d, &mut None).is_some()
                && decode_edge(&mut d, &mut None).is_some();
            assert!(!whole, "cut at {cut}");
        }
    }
}
