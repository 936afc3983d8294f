//! Git LFS, as the real `git lfs` client reads it from a repository kgstore wrote.
//!
//! * **Pointers** ([`Pointer`]): the canonical three-line form of git-lfs's
//!   `docs/spec.md` (`version https://git-lfs.github.com/spec/v1`, `oid sha256:<64
//!   lowercase hex>`, `size <decimal>`, each line ending in `\n`, nothing else). Parsing
//!   accepts what git-lfs accepts and says whether the text is canonical (re-encoding
//!   gives the same bytes); kgstore writes only canonical pointers.
//! * **Objects** ([`LfsObjects`]) under `<repo>/lfs/objects/aa/bb/<oid>`: written to
//!   `lfs/tmp/` while hashing, synced, checked against the expected hash and size,
//!   renamed into place, folders synced. Every oid is validated (64 lowercase hex)
//!   before it becomes part of a path, and no symbolic link inside `lfs/` is followed
//!   (CVE-2025-26625 is this class of bug in git-lfs itself): each folder is checked
//!   with `symlink_metadata` before use, and object files are opened refusing links.
//!   Reads stream and check size and hash as they go; a missing or damaged object is
//!   an error naming its oid.
//! * **Patterns** ([`LfsPatterns`]): the `filter=lfs` lines of the root `.gitattributes`
//!   (default `blobs/**`), matched with gitattributes rules (gix's wildmatch).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kgstore_core::{Error, Problem, Result};
use sha2::{Digest, Sha256};

use crate::fsio;

/// The version line every pointer kgstore writes starts with.
pub const SPEC_V1: &str = "https://git-lfs.github.com/spec/v1";
/// Older version URLs git-lfs still reads.
const VERSION_ALIASES: [&str; 3] = [
    SPEC_V1,
    "https://hawser.github.com/spec/v1",
    "http://git-media.io/v/2",
];
/// Blobs this large or larger are never pointers (git-lfs's `blobSizeCutoff`).
pub const MAX_POINTER_SIZE: usize = 1024;

/// A Git LFS pointer: the SHA-256 and size of the content it stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pointer {
    /// The SHA-256 of the content, 64 lowercase hex digits.
    pub oid: String,
    /// The content's size in bytes.
    pub size: u64,
}

/// Whether `oid` is a valid LFS object id: exactly 64 lowercase hex digits.
pub fn valid_oid(oid: &str) -> bool {
    oid.len() == 64 && oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Pointer {
    /// A pointer; refused unless `oid` is 64 lowercase hex digits.
    pub fn new(oid: impl Into<String>, size: u64) -> Result<Self> {
        let oid = oid.into();
        if !valid_oid(&oid) {
            return Err(Error::invalid_input(
                format!("LFS oid '{}'", oid.escape_debug()),
                "expected 64 lowercase hex digits (a SHA-256)",
            ));
        }
        Ok(Self { oid, size })
    }

    /// The pointer of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            oid: hex(&Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    /// The canonical text.
    ///
    /// ```
    /// use kgstore_git::lfs::Pointer;
    ///
    /// let p = Pointer::of(b"hello\n");
    /// assert_eq!(
    ///     p.encode(),
    ///     "version https://git-lfs.github.com/spec/v1\n\
    ///      oid sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n\
    ///      size 6\n"
    /// );
    /// assert_eq!(Pointer::parse(p.encode().as_bytes()).unwrap(), (p, true));
    /// ```
    pub fn encode(&self) -> String {
        format!(
            "version {SPEC_V1}\noid sha256:{}\nsize {}\n",
            self.oid, self.size
        )
    }

    /// Parses a pointer as git-lfs does; with whether the bytes are its canonical form.
    /// The error says why the bytes are not a pointer.
    pub fn parse(bytes: &[u8]) -> std::result::Result<(Self, bool), String> {
        if bytes.len() >= MAX_POINTER_SIZE {
            return Err(format!(
                "{} bytes: a pointer is smaller than 1024",
                bytes.len()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let mut version = None;
        let mut oid = None;
        let mut size = None;
        let mut keys = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| format!("line '{}' is not 'key value'", line.escape_debug()))?;
            if !key
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
            {
                return Err(format!(
                    "key '{}' has characters other than a-z 0-9 . -",
                    key.escape_debug()
                ));
            }
            keys.push(key.to_owned());
            match key {
                "version" => version = Some(value.trim().to_owned()),
                "oid" => oid = Some(value.trim().to_owned()),
                "size" => size = Some(value.trim().to_owned()),
                _ => {} // extensions (ext-0-…): kgstore writes none
            }
        }
        if keys.first().map(String::as_str) != Some("version") {
            return Err("the first key must be 'version'".to_owned());
        }
        let version = version.unwrap_or_default();
        if !VERSION_ALIASES.contains(&version.as_str()) {
            return Err(format!("unknown version '{}'", version.escape_debug()));
        }
        let oid = oid.ok_or("no 'oid' line")?;
        let hash = oid
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("oid '{}' is not sha256:…", oid.escape_debug()))?;
        if !valid_oid(hash) {
            return Err(format!(
                "oid '{}' is not 64 lowercase hex digits",
                hash.escape_debug()
            ));
        }
        let size_text = size.ok_or("no 'size' line")?;
        let size: u64 = size_text
            .parse()
            .map_err(|_| format!("size '{}' is not a whole number", size_text.escape_debug()))?;
        let pointer = Self {
            oid: hash.to_owned(),
            size,
        };
        let canonical = pointer.encode().as_bytes() == bytes;
        Ok((pointer, canonical))
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    kgstore_core::names::hex(bytes)
}

/// The LFS objects of a repository: `<git dir>/lfs/objects`.
#[derive(Clone, Debug)]
pub struct LfsObjects {
    lfs: PathBuf,
    sync: bool,
}

/// Refuses a path component that is a symbolic link (or not a folder).
fn real_dir(dir: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(Error::corrupt(
            dir,
            "expected a folder inside lfs/, found a symbolic link or a file: refused (never followed)",
        ));
    }
    Ok(())
}

/// Creates the folders of `rel` under `base` one by one, refusing symbolic links;
/// the folders that were created.
fn make_dirs(base: &Path, rel: &[&str]) -> Result<Vec<PathBuf>> {
    real_dir(base)?;
    let mut made = Vec::new();
    let mut dir = base.to_path_buf();
    for part in rel {
        dir.push(part);
        if fs::symlink_metadata(&dir).is_ok() {
            real_dir(&dir)?;
        } else if fsio::ensure_dir(&dir)? {
            made.push(dir.clone());
        }
        real_dir(&dir)?;
    }
    Ok(made)
}

impl LfsObjects {
    /// The LFS objects of the repository at `git_dir`; writes sync when `sync`.
    pub fn new(git_dir: &Path, sync: bool) -> Self {
        Self {
            lfs: git_dir.join("lfs"),
            sync,
        }
    }

    /// Where an object lives: `lfs/objects/aa/bb/<oid>`; refused for an invalid oid.
    pub fn path(&self, oid: &str) -> Result<PathBuf> {
        Pointer::new(oid, 0)?;
        Ok(self
            .lfs
            .join("objects")
            .join(&oid[..2])
            .join(&oid[2..4])
            .join(oid))
    }

    fn prepare(&self) -> Result<()> {
        if let Some(git_dir) = self.lfs.parent() {
            let made = make_dirs(git_dir, &["lfs", "objects"])?;
            make_dirs(git_dir, &["lfs", "tmp"])?;
            if self.sync && !made.is_empty() {
                fsio::sync_dir(git_dir)?;
                fsio::sync_dir(&self.lfs)?;
            }
        }
        Ok(())
    }

    /// Stores the content `reader` yields (streaming, with bounded memory) and returns
    /// its pointer. The object is written to `lfs/tmp`, hashed, synced, renamed into
    /// place; one already there is kept if it is sound, else replaced.
    pub fn put(&self, reader: &mut dyn Read) -> Result<Pointer> {
        self.prepare()?;
        let tmp_dir = self.lfs.join("tmp");
        let temp = fsio::temp_path(&tmp_dir);
        let written = (|| -> io::Result<Pointer> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])?;
                size += n as u64;
            }
            if self.sync {
                file.sync_all()?;
            }
            Ok(Pointer {
                oid: hex(&hasher.finalize()),
                size,
            })
        })();
        let pointer = match written {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(Error::io(&temp, e));
            }
        };
        let done = self.install(&temp, &pointer);
        if done.is_err() {
            let _ = fs::remove_file(&temp);
        }
        done.map(|()| pointer)
    }

    /// Moves a synced temporary file holding `pointer`'s content into place.
    fn install(&self, temp: &Path, pointer: &Pointer) -> Result<()> {
        // The hash was computed while writing; check the file once more as it lies on
        // disk before it takes the object's name.
        self.verify_file(temp, pointer)
            .map_err(|detail| Error::corrupt(temp, detail))?;
        let target = self.path(&pointer.oid)?;
        if self.verify(pointer).is_ok() {
            fs::remove_file(temp).map_err(|e| Error::io(temp, e))?;
            return Ok(());
        }
        let objects = self.lfs.join("objects");
        let made = make_dirs(&objects, &[&pointer.oid[..2], &pointer.oid[2..4]])?;
        fsio::rename(temp, &target)?;
        if self.sync {
            let mut dirs: Vec<PathBuf> =
                target.parent().map(Path::to_path_buf).into_iter().collect();
            for dir in &made {
                if let Some(parent) = dir.parent() {
                    dirs.push(parent.to_path_buf());
                }
            }
            dirs.sort();
            dirs.dedup();
            crate::objects::sync_dirs(&dirs)?;
        }
        Ok(())
    }

    /// Stores some bytes; their pointer.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Pointer> {
        self.put(&mut io::Cursor::new(bytes))
    }

    /// Opens an object for reading, refusing a symbolic link anywhere inside `lfs/`.
    fn open_file(&self, oid: &str) -> Result<(File, PathBuf)> {
        let path = self.path(oid)?;
        let objects = self.lfs.join("objects");
        for dir in [
            self.lfs.clone(),
            objects.clone(),
            objects.join(&oid[..2]),
            objects.join(&oid[..2]).join(&oid[2..4]),
        ] {
            match fs::symlink_metadata(&dir) {
                Ok(_) => real_dir(&dir)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(missing(oid, &path));
                }
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => {
                return Err(Error::corrupt(
                    &path,
                    format!("LFS object {oid} is a symbolic link or not a file: refused"),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(oid, &path)),
            Err(e) => return Err(Error::io(&path, e)),
        }
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok((file, path))
    }

    /// A reader of the object's content that fails (naming the oid) if the content
    /// turns out not to match the pointer's size and hash by its end.
    pub fn open(&self, pointer: &Pointer) -> Result<LfsReader> {
        let (file, path) = self.open_file(&pointer.oid)?;
        Ok(LfsReader {
            file,
            path,
            expected: pointer.clone(),
            hasher: Sha256::new(),
            read: 0,
            done: false,
        })
    }

    /// Reads a whole object, checked.
    pub fn read(&self, pointer: &Pointer) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(pointer.size).unwrap_or(0).min(1 << 30));
        self.open(pointer)?
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(self.lfs.join("objects"), e.to_string()))?;
        Ok(out)
    }

    /// Whether the object is present and matches the pointer; the reason if not.
    pub fn verify(&self, pointer: &Pointer) -> std::result::Result<(), String> {
        let (_, path) = self.open_file(&pointer.oid).map_err(|e| e.to_string())?;
        self.verify_file(&path, pointer)
    }

    fn verify_file(&self, path: &Path, pointer: &Pointer) -> std::result::Result<(), String> {
        let mut file = File::open(path).map_err(|e| format!("LFS object {}: {e}", pointer.oid))?;
        let mut hasher = Sha256::new();
        let size = io::copy(&mut file, &mut hasher)
            .map_err(|e| format!("LFS object {}: {e}", pointer.oid))?;
        let oid = hex(&hasher.finalize());
        if size != pointer.size || oid != pointer.oid {
            return Err(format!(
                "LFS object {} is damaged: its {size} bytes hash to {oid} (expected {} bytes)",
                pointer.oid, pointer.size
            ));
        }
        Ok(())
    }
}

fn missing(oid: &str, path: &Path) -> Error {
    Error::corrupt(
        path,
        format!("LFS object {oid} is missing (no file {})", path.display()),
    )
}

/// A streaming, checked reader of an LFS object.
#[derive(Debug)]
pub struct LfsReader {
    file: File,
    path: PathBuf,
    expected: Pointer,
    hasher: Sha256,
    read: u64,
    done: bool,
}

impl Read for LfsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.expected.size || (n == 0 && self.read != self.expected.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "LFS object {} at {} is damaged: {} bytes, expected {}",
                    self.expected.oid,
                    self.path.display(),
                    self.read,
                    self.expected.size
                ),
            ));
        }
        if n == 0 {
            self.done = true;
            let oid = hex(&std::mem::take(&mut self.hasher).finalize());
            if oid != self.expected.oid {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "LFS object {} at {} is damaged: its content hashes to {oid}",
                        self.expected.oid,
                        self.path.display()
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// The LFS patterns of a `.gitattributes` file.
#[derive(Clone, Debug, Default)]
pub struct LfsPatterns {
    /// Each line's pattern and whether it sets `filter=lfs` (`true`) or sets another
    /// filter or unsets it (`false`); the last matching line wins, as in git.
    rules: Vec<(gix::glob::Pattern, bool)>,
}

impl LfsPatterns {
    /// Reads the `filter` attribute of each line of a `.gitattributes` text.
    ///
    /// ```
    /// use kgstore_git::lfs::LfsPatterns;
    ///
    /// let p = LfsPatterns::parse("blobs/** filter=lfs diff=lfs merge=lfs -text\n*.psd filter=lfs\nblobs/keep.txt -filter\n");
    /// assert!(p.matches("blobs/a/b.bin"));
    /// assert!(p.matches("art/cover.psd"));
    /// assert!(!p.matches("blobs/keep.txt"));
    /// assert!(!p.matches("scripts/pilot.fountain"));
    /// ```
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("[attr]") {
                continue;
            }
            let (pattern, attrs) = split_pattern(line);
            let mut effect = None;
            for attr in attrs.split_whitespace() {
                match attr {
                    "filter=lfs" => effect = Some(true),
                    "-filter" | "!filter" => effect = Some(false),
                    a if a.starts_with("filter=") => effect = Some(false),
                    _ => {}
                }
            }
            if let (Some(effect), Some(pattern)) =
                (effect, gix::glob::Pattern::from_bytes(pattern.as_bytes()))
            {
                rules.push((pattern, effect));
            }
        }
        Self { rules }
    }

    /// Whether a path (relative to the root, `/`-separated) is under an LFS pattern.
    pub fn matches(&self, path: &str) -> bool {
        let base = path.rfind('/').map(|i| i + 1);
        self.rules
            .iter()
            .rev()
            .find(|(pattern, _)| {
                pattern.matches_repo_relative_path(
                    path.into(),
                    base,
                    Some(false),
                    gix::glob::pattern::Case::Sensitive,
                    gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
                )
            })
            .is_some_and(|(_, lfs)| *lfs)
    }

    /// Whether there are no LFS rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Splits a gitattributes line into its pattern (C-quoted or not) and the rest.
fn split_pattern(line: &str) -> (String, &str) {
    if let Some(rest) = line.strip_prefix('"') {
        let mut pattern = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (pattern, &rest[i + 1..]),
                '\\' => match chars.next() {
                    Some((_, 'n')) => pattern.push('\n'),
                    Some((_, 't')) => pattern.push('\t'),
                    Some((_, other)) => pattern.push(other),
                    None => break,
                },
                c => pattern.push(c),
            }
        }
        return (pattern, "");
    }
    match line.split_once(char::is_whitespace) {
        Some((pattern, rest)) => (pattern.to_owned(), rest),
        None => (line.to_owned(), ""),
    }
}

/// Checks every blob under an LFS pattern at commit `tip`: it must be a canonical
/// pointer (or empty) whose object is present and sound.
pub(crate) fn check_tree_pointers(
    backend: &crate::GitBackend,
    tip: &gix::ObjectId,
) -> Result<Vec<Problem>> {
    use crate::tree;
    let repo = backend.local();
    let (root, _) = tree::commit_tree(&repo, tip)?;
    let patterns = match tree::entry_at(&repo, &root, crate::layout::ATTRIBUTES)? {
        Some((mode, id)) if !mode.is_tree() => LfsPatterns::parse(&String::from_utf8_lossy(
            &tree::read_kind(&repo, &id, gix::objs::Kind::Blob)?,
        )),
        _ => LfsPatterns::default(),
    };
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let objects = LfsObjects::new(&backend.git_dir, false);
    let mut leaves = Vec::new();
    tree::leaves(&repo, &root, "", &mut leaves)?;
    let at = format!("commit {}", tip.to_hex_with_len(12));
    let mut problems = Vec::new();
    for leaf in leaves {
        if !leaf.mode.is_blob() || !patterns.matches(&leaf.path) {
            continue;
        }
        let data = tree::read_kind(&repo, &leaf.id, gix::objs::Kind::Blob)?;
        if data.is_empty() {
            continue; // the pointer of an empty file is the empty file
        }
        let place = format!("{at}: {}", leaf.path);
        match Pointer::parse(&data) {
            Err(why) => problems.push(Problem::new(
                place,
                format!("matches an LFS pattern of .gitattributes but is not a pointer ({why})"),
            )),
            Ok((_, false)) => {
                problems.push(Problem::new(place, "the LFS pointer is not canonical"))
            }
            Ok((pointer, true)) => {
                if let Err(why) = objects.verify(&pointer) {
                    problems.push(Problem::new(place, why));
                }
            }
        }
    }
    Ok(problems)
}
