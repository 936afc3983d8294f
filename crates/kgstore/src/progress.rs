//! Progress of long operations (backup, verify, restore, import, export), for
//! callers that draw progress bars.

/// Which part of a long operation is under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Writing, checking or loading nodes.
    Nodes,
    /// Writing, checking or loading edges.
    Edges,
    /// Writing, checking or loading schemas.
    Schemas,
    /// Reading or hashing bytes of files.
    Bytes,
    /// Writing, checking or loading events.
    Events,
    /// Writing, checking or loading documents.
    Documents,
}

/// How far a long operation has come: `done` of `total` items (or bytes) of a
/// phase. `total` is 0 when it is not known in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Items (or bytes, for [`Phase::Bytes`]) done.
    pub done: u64,
    /// Items (or bytes) in all; 0 if unknown.
    pub total: u64,
}
