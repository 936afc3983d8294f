//! Errors of the parser and the printer.

use crate::model::ElementKind;

/// Why a text could not be parsed. Only bytes that are not text are refused:
/// every UTF-8 text without NUL characters parses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not UTF-8.
    #[error(
        "not UTF-8 text: invalid byte sequence at byte offset {offset} (line {line}, column {column})"
    )]
    InvalidUtf8 {
        /// The offset of the first byte that is not part of valid UTF-8.
        offset: usize,
        /// Its line, from 1.
        line: usize,
        /// Its column in characters, from 1.
        column: usize,
    },
    /// The text holds a NUL character, which no text file does: binary data.
    #[error(
        "binary data, not a Fountain text: NUL byte at byte offset {offset} (line {line}, column {column})"
    )]
    Binary {
        /// The offset of the NUL byte.
        offset: usize,
        /// Its line, from 1.
        line: usize,
        /// Its column in characters, from 1.
        column: usize,
    },
}

impl ParseError {
    /// The byte offset the error is about.
    pub fn offset(&self) -> usize {
        match self {
            ParseError::InvalidUtf8 { offset, .. } | ParseError::Binary { offset, .. } => *offset,
        }
    }

    /// `make(offset, line, column)` for the position `offset` of `bytes`, whose
    /// bytes before `offset` are valid UTF-8.
    pub(crate) fn at(
        bytes: &[u8],
        offset: usize,
        make: fn(usize, usize, usize) -> ParseError,
    ) -> ParseError {
        let before = bytes.get(..offset).unwrap_or_default();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + std::str::from_utf8(before.get(line_start..).unwrap_or_default())
            .map_or(0, |s| s.chars().count());
        make(offset, line, column)
    }
}

/// Why a [`crate::Document`] could not be printed. The printer never writes a
/// text that reads back as something else: it refuses instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// An element stands where the syntax cannot have it.
    #[error("element {index} ({kind}): {reason}")]
    Misplaced {
        /// Its index in the document's elements.
        index: usize,
        /// Its kind.
        kind: ElementKind,
        /// What is wrong.
        reason: &'static str,
    },
    /// An element's text holds `/*` that a later `*/` would close into a
    /// boneyard comment: the syntax has no escape for it. (Parsing can leave
    /// such a text when taking out an inline comment joins a `/` and a `*`.)
    #[error("element {index} ({kind}) holds `/*`, which would start a boneyard comment")]
    OpensComment {
        /// Its index in the document's elements.
        index: usize,
        /// Its kind.
        kind: ElementKind,
    },
    /// An element's content has no spelling that reads back as the same
    /// element (dialogue of one line `(like this)`, action with an empty line,
    /// a heading that starts with punctuation …).
    #[error(
        "element {index} ({kind}) cannot be written so that it reads back the same: it would read back as {read_back}"
    )]
    Unrepresentable {
        /// Its index in the document's elements (or the nearest element's, for
        /// a blank line the printer added).
        index: usize,
        /// Its kind.
        kind: ElementKind,
        /// What the written text would be read as.
        read_back: String,
    },
}
