//! The arguments and answers of document operations.

use serde::{Deserialize, Serialize};

use super::meta::DocumentMeta;
use crate::error::{Error, Result};
use crate::filter::{Cursor, PageRequest, hex, unhex};
use crate::validate::shorten;

/// What a write requires of the document already stored at its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// Nothing: create the document or replace it.
    #[default]
    None,
    /// The key must be free: [`Error::AlreadyExists`] otherwise.
    CreateOnly,
    /// The stored version must be this one ([`Error::Conflict`] otherwise); `0`
    /// means that no document may be stored (version 0 is "never stored").
    Version(u64),
}

/// How to write a document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// The media type; guessed from the key's extension when `None`
    /// ([`guess_content_type`](super::guess_content_type)), and kept from the stored
    /// document when it is replaced without one.
    pub content_type: Option<String>,
    /// What must hold of the stored document.
    pub precondition: Precondition,
}

impl WriteOptions {
    /// Create or replace, with a guessed (or kept) content type.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Only create: fail with [`Error::AlreadyExists`] if the key is taken.
    pub fn create_only(mut self) -> Self {
        self.precondition = Precondition::CreateOnly;
        self
    }

    /// Only write over version `version` (`0`: only if absent), else [`Error::Conflict`].
    pub fn expect_version(mut self, version: u64) -> Self {
        self.precondition = Precondition::Version(version);
        self
    }
}

/// One document of a batch write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentWrite {
    /// Its key.
    pub key: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// How to write it.
    pub options: WriteOptions,
}

impl DocumentWrite {
    /// Create or replace `key` with `content`.
    pub fn new(key: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            content: content.into(),
            options: WriteOptions::default(),
        }
    }

    /// With these options.
    pub fn with_options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }
}

/// A listing of documents: those whose keys start with `prefix`, in byte order,
/// a page at a time; with a `/` delimiter, the keys directly in the "folder"
/// `prefix` and the sub-folders (common prefixes up to the next `/`) instead of
/// everything below.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentQuery {
    /// Keys start with this (empty: every key).
    pub prefix: String,
    /// `Some('/')` for a folder-like listing; no other delimiter is offered.
    pub delimiter: Option<char>,
    /// Limit (documents and folders together) and cursor.
    pub page: PageRequest,
}

impl DocumentQuery {
    /// Every document whose key starts with `prefix`, in pages of the default size.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// A folder-like listing: documents directly under `prefix`, and sub-folders.
    pub fn folders(mut self) -> Self {
        self.delimiter = Some('/');
        self
    }

    /// With this page request.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// Pages of at most `limit` entries.
    pub fn limit(mut self, limit: usize) -> Self {
        self.page.limit = limit;
        self
    }

    /// Resumes after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.page.cursor = cursor;
        self
    }
}

/// One page of a document listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPage {
    /// The documents, by key.
    pub documents: Vec<DocumentMeta>,
    /// With a delimiter: the sub-folders (common prefixes, each ending in `/`), in
    /// byte order; they and the documents together are the page's entries in order.
    pub folders: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Where a document listing resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DocPosition {
    /// After this document.
    Document(String),
    /// After everything in this folder (which ends in `/`).
    Folder(String),
}

impl DocPosition {
    pub(crate) fn cursor(&self) -> Cursor {
        let text = match self {
            Self::Document(key) => format!("d{}", hex(key)),
            Self::Folder(folder) => format!("f{}", hex(folder)),
        };
        Cursor::from_text(text)
    }

    pub(crate) fn parse(cursor: &Cursor) -> Result<Self> {
        let text = cursor.as_str();
        let refuse = || {
            Error::invalid_input(
                format!("cursor '{}'", shorten(text)),
                "not a document-listing cursor",
            )
        };
        let (tag, rest) = text.split_at_checked(1).ok_or_else(refuse)?;
        let value = unhex(rest).ok_or_else(refuse)?;
        match tag {
            "d" => Ok(Self::Document(value)),
            "f" if value.ends_with('/') => Ok(Self::Folder(value)),
            _ => Err(refuse()),
        }
    }
}
