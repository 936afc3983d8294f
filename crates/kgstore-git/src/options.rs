//! How a git store is opened.

use std::time::Duration;

use kgstore_core::{Error, Result};

pub use kgstore_core::Durability;

/// A name and e-mail address for commits (`Name <email>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

impl Identity {
    /// An identity; refused if either part holds `<`, `>` or a control character
    /// (git could not store it), or the name is empty.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Result<Self> {
        let (name, email) = (name.into(), email.into());
        let bad = |s: &str| s.chars().any(|c| c == '<' || c == '>' || c.is_control());
        if name.trim().is_empty() || bad(&name) || bad(&email) {
            return Err(Error::invalid_input(
                format!("commit identity '{name} <{email}>'"),
                "the name must not be empty, and neither part may hold '<', '>' or a control character",
            ));
        }
        Ok(Self {
            name: name.trim().to_owned(),
            email: email.trim().to_owned(),
        })
    }

    /// Parses `Name <email>` (as URL parameters `author=` and `committer=` give it).
    ///
    /// ```
    /// use kgstore_git::Identity;
    ///
    /// let who = Identity::parse("Ada Lovelace <ada@example.org>")?;
    /// assert_eq!((who.name.as_str(), who.email.as_str()), ("Ada Lovelace", "ada@example.org"));
    /// assert!(Identity::parse("no email").is_err());
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let refuse = || {
            Error::invalid_input(
                format!("commit identity '{text}'"),
                "expected 'Name <email>'",
            )
        };
        let (name, rest) = text.split_once('<').ok_or_else(refuse)?;
        let email = rest.strip_suffix('>').ok_or_else(refuse)?;
        Self::new(name, email)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// How [`GitBackend::open`](crate::GitBackend::open) opens a store.
///
/// The defaults: a writable store on branch `main`, created if missing, with
/// [`Durability::Immediate`], waiting up to 5 s for another writer (as SQLite's busy
/// timeout does), commits by `kgstore <kgstore@localhost>`, documents under `blobs/`
/// or of 10 MiB and more in Git LFS.
///
/// ```
/// use std::time::Duration;
/// use kgstore_git::{GitOptions, Identity};
///
/// let options = GitOptions::default()
///     .branch("kg")?
///     .author(Identity::new("Ada", "ada@example.org")?)
///     .lock_timeout(Duration::from_secs(1));
/// assert_eq!(options.branch, "kg");
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GitOptions {
    /// How durable a commit is when it returns (URL parameter `durability=relaxed`).
    pub durability: Durability,
    /// Open for reading only: nothing is ever written (URL parameter `read_only=true`).
    pub read_only: bool,
    /// Create the repository if there is none (URL parameter `create=false` refuses).
    pub create_if_missing: bool,
    /// How long a writer waits for another one (URL parameter `lock_timeout_ms`).
    pub lock_timeout: Duration,
    /// The branch the store lives on (URL parameter `branch`).
    pub branch: String,
    /// Who is named as the author of commits (URL parameter `author=Name <email>`).
    pub author: Identity,
    /// Who is named as the committer; the author when `None` (URL parameter `committer`).
    pub committer: Option<Identity>,
    /// Documents of this many bytes or more are stored in Git LFS whatever their key
    /// (URL parameter `lfs_threshold`).
    pub lfs_threshold: u64,
    /// A transaction writing more new objects than this writes one pack file instead
    /// of loose objects (fewer files to sync; what `git fast-import` does).
    pub pack_threshold: usize,
    #[cfg(feature = "fault-injection")]
    pub(crate) fault: Option<crate::fault::Fault>,
}

impl Default for GitOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            read_only: false,
            create_if_missing: true,
            lock_timeout: Duration::from_secs(5),
            branch: "main".to_owned(),
            author: Identity {
                name: "kgstore".to_owned(),
                email: "kgstore@localhost".to_owned(),
            },
            committer: None,
            lfs_threshold: 10 * 1024 * 1024,
            pack_threshold: 512,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }
}

impl GitOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens read-only (or not).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Creates a missing repository (or refuses to).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Waits up to `timeout` for another writer.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Keeps the store on `branch`: a name git accepts for a branch (`main`, `kg/data`).
    pub fn branch(mut self, branch: impl Into<String>) -> Result<Self> {
        let branch = branch.into();
        gix::validate::reference::name_partial(branch.as_str().into())
            .map_err(|e| Error::invalid_input(format!("branch name '{branch}'"), e.to_string()))?;
        if branch.starts_with('-') || branch.contains("..") || branch.ends_with(".lock") {
            return Err(Error::invalid_input(
                format!("branch name '{branch}'"),
                "git does not accept it as a branch",
            ));
        }
        self.branch = branch;
        Ok(self)
    }

    /// Names `author` as the author of commits (and as committer unless one is set).
    pub fn author(mut self, author: Identity) -> Self {
        self.author = author;
        self
    }

    /// Names `committer` as the committer of commits.
    pub fn committer(mut self, committer: Identity) -> Self {
        self.committer = Some(committer);
        self
    }

    /// Stores documents of `bytes` or more in Git LFS whatever their key.
    pub fn lfs_threshold(mut self, bytes: u64) -> Self {
        self.lfs_threshold = bytes;
        self
    }

    /// Writes a pack instead of loose objects above `objects` new objects per commit.
    pub fn pack_threshold(mut self, objects: usize) -> Self {
        self.pack_threshold = objects;
        self
    }

    /// Sets a test fault (builds with the `fault-injection` feature only).
    #[cfg(feature = "fault-injection")]
    pub fn with_fault(mut self, fault: crate::fault::Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// The committer in force.
    pub(crate) fn committer_or_author(&self) -> &Identity {
        self.committer.as_ref().unwrap_or(&self.author)
    }
}
