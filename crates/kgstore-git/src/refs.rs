//! The branch: read it, and move it by a strict compare-and-swap with git's own lock
//! protocol (`refs/heads/<branch>.lock`, created exclusively), synced.
//!
//! gix's reference transaction neither syncs the lock file before renaming it nor the
//! folder after, so a power cut could leave an empty ref. Moving the branch here is
//! git's protocol with the syncs added: create the lock file (failing if it exists,
//! which is how git and kgstore exclude each other), read the current value *under
//! the lock* (loose file, else `packed-refs`), refuse unless it is the expected one,
//! write and `fsync` the new id, rename over the ref, `fsync` the folder.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::ObjectId;
use kgstore_core::{Error, Result, observe};

use crate::fault::{self, FaultPoint};
use crate::fsio;
use crate::options::GitOptions;

/// A branch of a repository.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub(crate) git_dir: PathBuf,
    /// `refs/heads/<name>`.
    pub(crate) full_name: String,
}

/// Why a compare-and-swap did not happen.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The branch is not at the expected commit.
    Moved { actual: Option<ObjectId> },
    /// Something else failed.
    Failed(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// How long to wait for a branch lock another git process holds.
const FOREIGN_LOCK_WAIT: Duration = Duration::from_secs(2);

impl Branch {
    pub(crate) fn new(git_dir: &Path, branch: &str) -> Self {
        Self {
            git_dir: git_dir.to_path_buf(),
            full_name: format!("refs/heads/{branch}"),
        }
    }

    fn loose_path(&self) -> PathBuf {
        self.git_dir.join(&self.full_name)
    }

    fn lock_path(&self) -> PathBuf {
        self.git_dir.join(format!("{}.lock", self.full_name))
    }

    /// The commit the branch points at, if it exists.
    pub(crate) fn read(&self) -> Result<Option<ObjectId>> {
        let path = self.loose_path();
        if let Some(bytes) = fsio::read_optional(&path)? {
            return parse_id(&bytes)
                .map(Some)
                .ok_or_else(|| Error::corrupt(&path, "the branch file does not hold a commit id"));
        }
        let packed = self.git_dir.join("packed-refs");
        let Some(bytes) = fsio::read_optional(&packed)? else {
            return Ok(None);
        };
        for line in bytes.split(|b| *b == b'\n') {
            if line.starts_with(b"#") || line.starts_with(b"^") {
                continue;
            }
            if let Some(space) = line.iter().position(|b| *b == b' ')
                && &line[space + 1..] == self.full_name.as_bytes()
            {
                return parse_id(&line[..space]).map(Some).ok_or_else(|| {
                    Error::corrupt(&packed, format!("bad id for {}", self.full_name))
                });
            }
        }
        Ok(None)
    }

    /// Removes a branch lock left by a writer that died inside its transaction.
    pub(crate) fn remove_stale_lock(&self) -> Result<bool> {
        let lock = self.lock_path();
        match fs::remove_file(&lock) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&lock, e)),
        }
    }

    /// Moves the branch from `expected` (`None`: it must not exist) to `new`.
    pub(crate) fn compare_and_swap(
        &self,
        expected: Option<ObjectId>,
        new: ObjectId,
        options: &GitOptions,
    ) -> std::result::Result<(), Refused> {
        let sync = options.durability == kgstore_core::Durability::Immediate;
        let lock = self.lock_path();
        let dir = lock.parent().unwrap_or(&self.git_dir).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let start = Instant::now();
        let mut attempts = 0u32;
        let mut file = loop {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(file) => {
                    if attempts > 0 {
                        let holder = "another git process";
                        observe::lock_wait(&lock.display(), Some(holder), start.elapsed(), true);
                    }
                    break file;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Another git process is moving the branch (a push): wait a little.
                    attempts += 1;
                    if attempts == 1 {
                        observe::retry(
                            "taking the branch lock",
                            attempts,
                            "held by another git process",
                        );
                    }
                    if start.elapsed() >= FOREIGN_LOCK_WAIT {
                        let holder = "another git process";
                        observe::lock_wait(&lock.display(), Some(holder), start.elapsed(), false);
                        return Err(Refused::Failed(Error::Locked {
                            resource: lock.display().to_string(),
                            holder: Some(
                                "another git process (remove the file if none is running)".into(),
                            ),
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Refused::Failed(Error::io(&lock, e))),
            }
        };
        let outcome = (|| -> std::result::Result<(), Refused> {
            let actual = self.read()?;
            if actual != expected {
                return Err(Refused::Moved { actual });
            }
            file.write_all(format!("{}\n", new.to_hex()).as_bytes())
                .map_err(|e| Error::io(&lock, e))?;
            if sync {
                file.sync_all().map_err(|e| Error::io(&lock, e))?;
            }
            fault::point(options, FaultPoint::RefLocked).map_err(|e| Error::io(&lock, e))?;
            Ok(())
        })();
        drop(file);
        if let Err(e) = outcome {
            let _ = fs::remove_file(&lock);
            return Err(e);
        }
        let target = self.loose_path();
        fs::rename(&lock, &target).map_err(|e| {
            let _ = fs::remove_file(&lock);
            Error::io(&target, e)
        })?;
        fault::point(options, FaultPoint::RefMoved).map_err(|e| Error::io(&target, e))?;
        if sync {
            fsio::sync_dir(&dir)?;
        }
        Ok(())
    }
}

/// A 40-hex-digit id, optionally followed by a newline.
fn parse_id(bytes: &[u8]) -> Option<ObjectId> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end();
    if text.len() != 40 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    ObjectId::from_hex(text.as_bytes()).ok()
}
