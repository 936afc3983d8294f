//! Looking at a store's folder without opening it ([`inspect`]): every damaged
//! file with what is wrong with it, where an open that refuses the store lists
//! only the first few.

use std::path::Path;

use kgstore_core::{Error, Problem, Result};
use serde::Serialize;

use crate::backend::{LOAD_ATTEMPTS, load_once, scan_notes};
use crate::layout::{self, Marker};
use crate::log::Generation;
use crate::recovery::{Kind, Plan};

/// What [`inspect`] found in a store's folder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// Every damaged file (or folder), with what is wrong with it: a file that
    /// does not parse, sits where its key does not say, or breaks integrity (an
    /// edge to a missing node, a missing or cyclic dependency), and a committed
    /// journal that does not decode. An open refuses the store while there is
    /// one. Sorted by path.
    pub damaged: Vec<Problem>,
    /// What is wrong but does not keep the store from opening (a file or folder
    /// the store does not write, a stray): `check` reports these as problems too.
    /// Sorted by path.
    pub problems: Vec<Problem>,
    /// Not damage: the leftovers of an interrupted write that the next writable
    /// open recovers, and what it will do with them.
    pub notes: Vec<Problem>,
}

impl Inspection {
    /// Whether an open would take the store (nothing is damaged).
    pub fn opens(&self) -> bool {
        self.damaged.is_empty()
    }

    /// Whether nothing at all is wrong (notes aside).
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty() && self.problems.is_empty()
    }
}

/// Reads the store in the folder `path` as an open does, without opening it, and
/// says what is wrong with it: every damaged file with its reason (an open that
/// refuses the store lists the first 20), the problems that do not keep it from
/// opening, and notes on the leftovers a writable open would recover.
///
/// Read-only through and through: it writes, creates, renames and removes
/// nothing, repairs and recovers nothing, and takes no lock (neither the writers'
/// nor any other), so it works on a read-only folder and neither waits for nor
/// holds up a writer at work. What a writer commits meanwhile is applied from
/// the commit log, as an open's read does.
///
/// Errors, by [`ErrorKind`](kgstore_core::ErrorKind): `InvalidInput` for a folder
/// that holds no store, or a file where the folder should be; `Io` for a folder
/// that does not exist or cannot be read; `Corrupt` (or `Unsupported`) for a format marker
/// that does not read as one this version knows; `Locked` when writers commit
/// faster than the log keeps their records throughout (try again).
///
/// ```
/// use kgstore_core::{Node, Store};
/// use kgstore_jsonfs::{JsonFsBackend, JsonFsOptions};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::new(JsonFsBackend::open(dir.path(), JsonFsOptions::default())?);
/// store.create_node(Node::new("serde", "crate")?)?;
/// drop(store);
/// let found = kgstore_jsonfs::inspect(dir.path())?;
/// assert!(found.opens() && found.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection> {
    let root = path.as_ref();
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::invalid_input(
                format!("jsonfs store folder {}", root.display()),
                "is a file, not a folder",
            ));
        }
        Err(e) => return Err(Error::io(root, e)),
    }
    if layout::read_marker(root)? == Marker::Missing {
        return Err(layout::no_store(root));
    }
    let generation = Generation::new(root);
    let mut found = Inspection::default();
    // `journal/`: a committed journal that does not decode is damage; a stray
    // file, a problem (an open does not refuse the store for it); what a crash
    // left there, notes.
    let plan = Plan::of(root, &generation)?;
    for (kind, problem) in plan.kinded_findings() {
        match kind {
            Kind::Note => found.notes.push(problem),
            Kind::Stray => found.problems.push(problem),
            Kind::Damaged => found.damaged.push(problem),
        }
    }
    let Some(scan) = (0..LOAD_ATTEMPTS)
        .find_map(|_| load_once(root, &generation).transpose())
        .transpose()?
    else {
        return Err(Error::Locked {
            resource: format!("{} (inspection)", root.display()),
            holder: Some("writers committing faster than the log keeps records".into()),
        });
    };
    for finding in &scan.findings {
        if finding.fatal {
            found.damaged.push(finding.problem());
        } else {
            found.problems.push(finding.problem());
        }
    }
    scan_notes(&scan, &mut found.notes);
    for list in [&mut found.damaged, &mut found.problems] {
        list.sort_by(|a, b| (&a.location, &a.detail).cmp(&(&b.location, &b.detail)));
    }
    Ok(found)
}
