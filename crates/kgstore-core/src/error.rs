//! The one error type of kgstore, with a [`ErrorKind`] for matching.
//!
//! Every message names the thing concerned: the node, the edge, the file, the
//! JSON pointer. Backend causes are kept as the `source` of the error.

use std::fmt;
use std::path::PathBuf;

use crate::model::EdgeKey;

/// A `Result` whose error is kgstore's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One rule broken by a value, located by a JSON pointer into that value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// What the violation is about: `node 'a'`, `edge a -[calls]-> b`, ….
    pub subject: String,
    /// JSON pointer (RFC 6901) into the subject's JSON form; `""` is the whole value.
    pub pointer: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Violation {
    /// A violation of `subject` at `pointer`.
    pub fn new(
        subject: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{} at {}: {}", self.subject, pointer, self.message)
    }
}

/// Everything that can go wrong in kgstore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node has this name.
    #[error("node '{name}' not found{}", context(referenced_by.as_deref()))]
    NodeNotFound {
        /// The name looked for.
        name: String,
        /// What referred to the missing node (an edge, a dependent node), if anything.
        referenced_by: Option<String>,
    },
    /// No edge has this key.
    #[error("edge {key} not found")]
    EdgeNotFound {
        /// The key looked for.
        key: EdgeKey,
    },
    /// No document is stored at this key (the seed's `NotFoundError`).
    #[error("document '{}' not found", crate::validate::shorten(key))]
    DocumentNotFound {
        /// The key looked for.
        key: String,
    },
    /// A document cannot be created because a key is never both a document and a
    /// folder of documents: one of its folders is a document, or it is the folder
    /// of a stored document. Its kind is [`ErrorKind::AlreadyExists`].
    #[error(
        "document '{}' cannot be created: '{}' is stored, and a key cannot be both a document and a folder of documents",
        crate::validate::shorten(key),
        crate::validate::shorten(existing)
    )]
    DocumentPathConflict {
        /// The key that was to be created.
        key: String,
        /// The stored key in the way.
        existing: String,
    },
    /// A create found the entity already there.
    #[error("{entity} already exists")]
    AlreadyExists {
        /// The entity, e.g. `node 'a'` or `edge a -[calls]-> b`.
        entity: String,
    },
    /// Input broke one or more rules; every violation is listed.
    #[error("{}", validation_message(violations))]
    Validation {
        /// Each broken rule, with a JSON pointer to where it is broken.
        violations: Vec<Violation>,
    },
    /// An update stated a version that is no longer current.
    #[error("{entity} has version {actual}, but version {expected} was expected")]
    Conflict {
        /// The entity updated.
        entity: String,
        /// The version the caller expected.
        expected: u64,
        /// The version that is stored.
        actual: u64,
    },
    /// A write would close a cycle in the dependency graph.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    DependencyCycle {
        /// The cycle, first node repeated at the end: `a -> b -> a`.
        cycle: Vec<String>,
    },
    /// A node cannot be deleted because other nodes depend on it.
    #[error(
        "node '{name}' cannot be deleted: {} depend{} on it (detach or cascade to delete anyway)",
        quoted_list(dependents), if dependents.len() == 1 { "s" } else { "" }
    )]
    HasDependents {
        /// The node that was to be deleted.
        name: String,
        /// The nodes that depend on it directly.
        dependents: Vec<String>,
    },
    /// An argument that is not part of an entity was malformed (a cursor, a limit, a URL, a schema).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was given.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store is held by another writer.
    #[error("{resource} is locked{}", context_holder(holder.as_deref()))]
    Locked {
        /// What is locked: a lock file's path, a database file.
        resource: String,
        /// Who holds it, where known: `pid 1234`.
        holder: Option<String>,
    },
    /// Stored data is damaged or not what kgstore wrote.
    #[error("corrupt data in {}: {detail}", path.display())]
    Corrupt {
        /// The file (or database) concerned.
        path: PathBuf,
        /// What is wrong and where inside it.
        detail: String,
    },
    /// An I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A backend failed in a way kgstore has no more precise variant for.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend's name (`sqlite`, `jsonfs`, …).
        backend: String,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An append's expected version did not match the stream's version.
    #[error("stream '{stream}' is at version {actual}, but {expected} was expected")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected, in words (`version 3`, `no stream`, `an existing stream`).
        expected: String,
        /// The stream's version (0: no events yet).
        actual: u64,
    },
    /// An event id was used before for another event, or an append mixed new and
    /// already appended events.
    #[error("event id '{id}' {detail}")]
    DuplicateEvent {
        /// The event id.
        id: String,
        /// What was found under it.
        detail: String,
    },
    /// A deleted (tombstoned) stream was read or appended to.
    #[error("stream '{stream}' was deleted; it can neither be read nor appended to again")]
    StreamDeleted {
        /// The stream.
        stream: String,
    },
    /// Something the event store was asked about does not exist: a consumer group, a
    /// batch, a dead letter, a schema version.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `consumer group 'billing'`.
        what: String,
    },
    /// The backend does not offer this operation.
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation asked for.
        operation: String,
        /// The backend's name.
        backend: String,
    },
}

/// The kind of an [`Error`], for matching without caring about its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NodeNotFound`].
    NodeNotFound,
    /// See [`Error::EdgeNotFound`].
    EdgeNotFound,
    /// See [`Error::DocumentNotFound`].
    DocumentNotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::Validation`].
    Validation,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::DependencyCycle`].
    DependencyCycle,
    /// See [`Error::HasDependents`].
    HasDependents,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Locked`].
    Locked,
    /// See [`Error::Corrupt`].
    Corrupt,
    /// See [`Error::Io`].
    Io,
    /// See [`Error::Backend`].
    Backend,
    /// See [`Error::Unsupported`].
    Unsupported,
    /// See [`Error::StreamDeleted`].
    StreamDeleted,
    /// See [`Error::NotFound`].
    NotFound,
}

impl ErrorKind {
    /// The kind's name in snake_case, as printed by the CLI's `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeNotFound => "node_not_found",
            Self::EdgeNotFound => "edge_not_found",
            Self::DocumentNotFound => "document_not_found",
            Self::AlreadyExists => "already_exists",
            Self::Validation => "validation",
            Self::Conflict => "conflict",
            Self::DependencyCycle => "dependency_cycle",
            Self::HasDependents => "has_dependents",
            Self::InvalidInput => "invalid_input",
            Self::Locked => "locked",
            Self::Corrupt => "corrupt",
            Self::Io => "io",
            Self::Backend => "backend",
            Self::Unsupported => "unsupported",
            Self::StreamDeleted => "stream_deleted",
            Self::NotFound => "not_found",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NodeNotFound { .. } => ErrorKind::NodeNotFound,
            Self::EdgeNotFound { .. } => ErrorKind::EdgeNotFound,
            Self::DocumentNotFound { .. } => ErrorKind::DocumentNotFound,
            Self::DocumentPathConflict { .. } => ErrorKind::AlreadyExists,
            Self::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Self::Validation { .. } => ErrorKind::Validation,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::DependencyCycle { .. } => ErrorKind::DependencyCycle,
            Self::HasDependents { .. } => ErrorKind::HasDependents,
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Locked { .. } => ErrorKind::Locked,
            Self::Corrupt { .. } => ErrorKind::Corrupt,
            Self::Io { .. } => ErrorKind::Io,
            Self::Backend { .. } => ErrorKind::Backend,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::WrongExpectedVersion { .. } | Self::DuplicateEvent { .. } => ErrorKind::Conflict,
            Self::StreamDeleted { .. } => ErrorKind::StreamDeleted,
            Self::NotFound { .. } => ErrorKind::NotFound,
        }
    }

    /// A [`Error::NodeNotFound`] with no referrer.
    pub fn node_not_found(name: impl Into<String>) -> Self {
        Self::NodeNotFound {
            name: name.into(),
            referenced_by: None,
        }
    }

    /// A [`Error::DocumentNotFound`].
    pub fn document_not_found(key: impl Into<String>) -> Self {
        Self::DocumentNotFound { key: key.into() }
    }

    /// A [`Error::Validation`] with a single violation.
    pub fn validation(
        subject: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation {
            violations: vec![Violation::new(subject, pointer, message)],
        }
    }

    /// An [`Error::InvalidInput`].
    pub fn invalid_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Io`] about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Corrupt`] about `path`.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// An [`Error::Backend`] wrapping a backend's own error.
    pub fn backend(
        backend: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            backend: backend.into(),
            source: source.into(),
        }
    }

    /// An [`Error::NotFound`] about `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// An [`Error::Unsupported`].
    pub fn unsupported(operation: impl Into<String>, backend: impl Into<String>) -> Self {
        Self::Unsupported {
            operation: operation.into(),
            backend: backend.into(),
        }
    }
}

fn context(referenced_by: Option<&str>) -> String {
    referenced_by
        .map(|r| format!(" (referenced by {r})"))
        .unwrap_or_default()
}

fn context_holder(holder: Option<&str>) -> String {
    holder.map(|h| format!(" by {h}")).unwrap_or_default()
}

fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{n}'")).collect();
    if names.len() > SHOWN {
        out.push(format!("and {} more", names.len() - SHOWN));
    }
    out.join(", ")
}

fn validation_message(violations: &[Violation]) -> String {
    const SHOWN: usize = 10;
    match violations {
        [] => "validation failed".to_owned(),
        [one] => format!("invalid {one}"),
        many => {
            let mut out = format!("{} violations: ", many.len());
            let listed: Vec<String> = many.iter().take(SHOWN).map(ToString::to_string).collect();
            out.push_str(&listed.join("; "));
            if many.len() > SHOWN {
                out.push_str(&format!("; and {} more", many.len() - SHOWN));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_thing() {
        let e = Error::NodeNotFound {
            name: "b".into(),
            referenced_by: Some("node 'a'".into()),
        };
        assert_eq!(e.to_string(), "node 'b' not found (referenced by node 'a')");
        let e = Error::validation("node 'a'", "/name", "must not be empty");
        assert_eq!(
            e.to_string(),
            "invalid node 'a' at /name: must not be empty"
        );
        let e = Error::DependencyCycle {
            cycle: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(e.to_string(), "dependency cycle: a -> b -> a");
        let e = Error::HasDependents {
            name: "a".into(),
            dependents: vec!["b".into()],
        };
        assert!(e.to_string().contains("'b' depends on it"), "{e}");
        assert_eq!(e.kind().as_str(), "has_dependents");
    }

    #[test]
    fn long_lists_are_shortened_in_messages_but_kept_in_fields() {
        let violations: Vec<Violation> = (0..25)
            .map(|i| Violation::new(format!("node 'n{i}'"), "", "bad"))
            .collect();
        let e = Error::Validation { violations };
        let text = e.to_string();
        assert!(text.starts_with("25 violations"), "{text}");
        assert!(text.ends_with("and 15 more"), "{text}");
    }
}
