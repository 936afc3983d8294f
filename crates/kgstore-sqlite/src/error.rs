//! Turning rusqlite's errors into kgstore's, with the file and what was being done.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kgstore_core::Error;
use rusqlite::ErrorCode;

/// A SQLite failure kgstore has no more precise [`Error`] variant for, kept as
/// the source of [`Error::Backend`]: the file, what was being done, and
/// rusqlite's own error.
#[derive(Debug)]
pub struct SqliteError {
    path: PathBuf,
    doing: String,
    source: rusqlite::Error,
}

impl SqliteError {
    /// The database file concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was being done, e.g. `writing node 'a' into table nodes`.
    pub fn doing(&self) -> &str {
        &self.doing
    }

    /// rusqlite's error.
    pub fn sqlite(&self) -> &rusqlite::Error {
        &self.source
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}: {}",
            self.doing,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What every error message needs to know about the store it comes from.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// The database file.
    pub path: PathBuf,
    /// How long lock waits last, for `Locked` messages.
    pub lock_timeout: Duration,
    /// Whether the file has the documents' tables (format 2 and later; an older
    /// file opened read-only has none, and no documents).
    pub documents: bool,
    /// Whether the file's edge rows carry the names of their ends (format 9 and
    /// later; an older file opened read-only looks them up in `names`).
    pub edge_names: bool,
    /// Whether the file's edge rows keep column `flags` instead of `bidirectional`
    /// (format 12 and later), whose bit `schema::FLAG_PLAIN` marks the rows whose
    /// content is the default one.
    pub edge_flags: bool,
}

impl Ctx {
    /// Maps a rusqlite error met while `doing` something.
    pub fn error(&self, doing: impl FnOnce() -> String, e: rusqlite::Error) -> Error {
        let code = match &e {
            rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => self.locked(),
            Some(ErrorCode::NotADatabase) => Error::corrupt(
                &self.path,
                "not a SQLite database (the file's header is not SQLite's): not a kgstore store",
            ),
            Some(ErrorCode::DatabaseCorrupt) => {
                Error::corrupt(&self.path, format!("{}: {e}", doing()))
            }
            Some(
                code @ (ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::NoLargeFileSupport
                | ErrorCode::FileLockingProtocolFailed),
            ) => {
                let kind = match code {
                    ErrorCode::CannotOpen => io::ErrorKind::NotFound,
                    ErrorCode::DiskFull => io::ErrorKind::StorageFull,
                    ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                        io::ErrorKind::PermissionDenied
                    }
                    _ => io::ErrorKind::Other,
                };
                Error::io(
                    &self.path,
                    io::Error::new(kind, format!("{}: {e}", doing())),
                )
            }
            _ => Error::backend(
                "sqlite",
                SqliteError {
                    path: self.path.clone(),
                    doing: doing(),
                    source: e,
                },
            ),
        }
    }

    /// The error for a lock held longer than the timeout by someone else.
    pub fn locked(&self) -> Error {
        Error::Locked {
            resource: format!("SQLite database {}", self.path.display()),
            holder: Some(format!(
                "another connection or process (waited {} ms)",
                self.lock_timeout.as_millis()
            )),
        }
    }

    /// A [`Error::Corrupt`] about this file.
    pub fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(&self.path, detail)
    }
}

/// Adds context to rusqlite results: `.ctx(ctx, || "reading …".into())`.
pub(crate) trait SqlResult<T> {
    /// Maps the error with [`Ctx::error`].
    fn ctx(self, ctx: &Ctx, doing: impl FnOnce() -> String) -> kgstore_core::Result<T>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn ctx(self, ctx: &Ctx, doing: impl FnOnce() -> String) -> kgstore_core::Result<T> {
        self.map_err(|e| ctx.error(doing, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgstore_core::ErrorKind;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_never_surface_raw() {
        let ctx = Ctx {
            path: "/data/kg.db".into(),
            lock_timeout: Duration::from_millis(250),
            documents: true,
            edge_names: true,
            edge_flags: true,
        };
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let err = ctx.error(|| "beginning a write".into(), failure(code));
            assert_eq!(err.kind(), ErrorKind::Locked);
            let text = err.to_string();
            assert!(text.contains("/data/kg.db"), "{text}");
            assert!(text.contains("250 ms"), "{text}");
            assert!(!text.contains("database is locked"), "{text}");
        }
    }

    #[test]
    fn errors_map_to_kinds_with_context() {
        let ctx = Ctx {
            path: "/data/kg.db".into(),
            lock_timeout: Duration::from_secs(1),
            documents: true,
            edge_names: true,
            edge_flags: true,
        };
        let cases = [
            (rusqlite::ffi::SQLITE_NOTADB, ErrorKind::Corrupt),
            (rusqlite::ffi::SQLITE_CORRUPT, ErrorKind::Corrupt),
            (rusqlite::ffi::SQLITE_IOERR, ErrorKind::Io),
            (rusqlite::ffi::SQLITE_FULL, ErrorKind::Io),
            (rusqlite::ffi::SQLITE_CONSTRAINT, ErrorKind::Backend),
        ];
        for (code, kind) in cases {
            let err = ctx.error(|| "writing node 'a' into table nodes".into(), failure(code));
            assert_eq!(err.kind(), kind, "{err}");
            assert!(err.to_string().contains("/data/kg.db"), "{err}");
        }
        let err = ctx.error(
            || "writing node 'a'".into(),
            failure(rusqlite::ffi::SQLITE_MISUSE),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("sqlite backend error: writing node 'a' in /data/kg.db"),
            "{text}"
        );
    }
}
