//! Creating a bare repository: built under a temporary name beside its place, every
//! file and folder synced, then renamed into place, so a crash never leaves half a
//! repository where a store is expected.

use std::fs;
use std::path::Path;

use kgstore_core::{Error, Result};

use crate::fsio;
use crate::options::GitOptions;

/// The lines of `.gitattributes` (and `info/attributes`) for the default LFS patterns.
pub(crate) const DEFAULT_ATTRIBUTES: &str = "blobs/** filter=lfs diff=lfs merge=lfs -text\n";

/// Creates an empty bare repository at `path`, whose `HEAD` names the store's branch.
/// If another process creates it first, theirs is kept.
pub(crate) fn init_bare(path: &Path, options: &GitOptions) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().map_err(|e| Error::io(path, e))?,
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".to_owned());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    let sync = options.durability == kgstore_core::Durability::Immediate;
    let built = (|| -> Result<()> {
        for dir in [
            "",
            "objects",
            "objects/info",
            "objects/pack",
            "refs",
            "refs/heads",
            "refs/tags",
            "info",
        ] {
            let d = partial.join(dir);
            fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        let files = [
            ("HEAD", format!("ref: refs/heads/{}\n", options.branch)),
            (
                "config",
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
                    .to_owned(),
            ),
            (
                "description",
                "A kgstore knowledge graph (https://github.com/kgstore/kgstore).\n".to_owned(),
            ),
            // For bare-repository `git lfs` commands, which read attributes only from here.
            ("info/attributes", DEFAULT_ATTRIBUTES.to_owned()),
        ];
        for (file, text) in files {
            let target = partial.join(file);
            let dir = target.parent().unwrap_or(&partial);
            let temp = fsio::write_temp(dir, text.as_bytes(), sync)?;
            fsio::rename(&temp, &target)?;
        }
        if sync {
            for dir in [
                "objects/info",
                "objects/pack",
                "objects",
                "refs/heads",
                "refs/tags",
                "refs",
                "info",
                "",
            ] {
                fsio::sync_dir(&partial.join(dir))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    if let Err(e) = fs::rename(&partial, path) {
        let _ = fs::remove_dir_all(&partial);
        if path.is_dir() {
            return Ok(()); // another process made it meanwhile
        }
        return Err(Error::io(path, e));
    }
    if sync {
        fsio::sync_dir(&parent)?;
    }
    Ok(())
}
