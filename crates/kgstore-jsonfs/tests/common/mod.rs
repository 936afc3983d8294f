//! Helpers shared by the integration tests: child processes, file walks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use kgstore_core::suite::dump;
use kgstore_core::{DocumentRead, Edge, Node, SchemaTarget, Store, Timestamp};
use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions, TEMP_PREFIX};

/// The environment variable that makes a test binary's `child` test act.
pub const CHILD_ENV: &str = "KGSTORE_JSONFS_CHILD";

/// Opens a store with default options.
pub fn open(path: &Path) -> Store {
    Store::new(JsonFsBackend::open(path, JsonFsOptions::default()).unwrap())
}

/// Runs this test binary's test named `child` in a new process, with `CHILD_ENV` set
/// to `mode` and the extra environment `vars`; stdout is piped, stdin too.
pub fn spawn_child(mode: &str, vars: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in vars {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// The child's mode if this process is a child, else `None`.
pub fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A variable of the child's environment.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The child's stdout lines, read on a thread, as they come.
pub fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line equal to `wanted`, failing after a generous timeout.
pub fn wait_for(rx: &Receiver<String>, wanted: &str) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == wanted => return,
            Ok(_) => {}
            Err(e) => panic!("the child never printed {wanted:?}: {e}"),
        }
    }
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The temporary files and journal files under a store's folder, and a large
/// commit's staging folders (`journal/bulk-*`, empty or not).
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = all_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
                || p.parent().is_some_and(|d| d.ends_with("journal"))
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("journal")) {
        out.extend(entries.map(|e| e.unwrap().path()).filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("bulk-"))
        }));
    }
    out.sort();
    out
}

/// A small deterministic random number generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A seed from the clock, or from `KGSTORE_CRASH_SEED`.
    pub fn seed() -> u64 {
        std::env::var("KGSTORE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
    }

    /// The next number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

/// Everything a store holds, as `kgstore_core::suite::dump` lists it.
pub type Dump = (
    Vec<Node>,
    Vec<Edge>,
    Vec<(SchemaTarget, serde_json::Value)>,
    Vec<(String, String, u64, Vec<u8>)>,
);

/// A store's dump with the commit times blanked: the copy that computes the expected
/// state commits at another moment than the store under test.
/// What [`state`] records for a document whose file a failed commit already replaced.
pub const REPLACED: &[u8] = b"<replaced after this handle's snapshot>";

/// Whether `live` (a handle's state) is `expected` but for documents whose files
/// were already replaced (see [`REPLACED`]).
pub fn same_but_replaced(live: &Dump, expected: &Dump) -> bool {
    let docs_agree = live.3.len() == expected.3.len()
        && live.3.iter().zip(&expected.3).all(|(a, b)| {
            a.0 == b.0 && a.1 == b.1 && a.2 == b.2 && (a.3 == b.3 || a.3 == REPLACED)
        });
    live.0 == expected.0 && live.1 == expected.1 && live.2 == expected.2 && docs_agree
}

pub fn state(store: &Store) -> Dump {
    let (mut nodes, mut edges, schemas) = dump(store);
    for node in &mut nodes {
        node.metadata.created_at = Timestamp::EPOCH;
        node.metadata.updated_at = Timestamp::EPOCH;
    }
    for edge in &mut edges {
        edge.metadata.created_at = Timestamp::EPOCH;
        edge.metadata.updated_at = Timestamp::EPOCH;
    }
    let docs = kgstore_core::suite::all_document_keys(store)
        .into_iter()
        .map(|key| {
            let meta = store.stat_document(&key).unwrap();
            let content = match store.read_document(&key) {
                Ok(content) => content,
                // A handle whose commit failed past its commit mark keeps the state
                // before, but the file may hold the new bytes: it says so, never
                // handing out bytes of another version.
                Err(e) if e.kind() == kgstore_core::ErrorKind::Conflict => REPLACED.to_vec(),
                Err(e) => panic!("{key}: {e}"),
            };
            (key, meta.content_type, meta.version, content)
        })
        .collect();
    (nodes, edges, schemas, docs)
}

/// A temporary folder on a RAM file system when there is one (`/dev/shm`), where
/// a test that commits thousands of transactions does not wait on a disk's fsync.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && !shm.metadata().unwrap().permissions().readonly()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}
