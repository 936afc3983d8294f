//! The MCP protocol revisions the server speaks, and what each one has.

use std::fmt;

/// A revision of the Model Context Protocol.
///
/// The four legacy revisions open with an `initialize` handshake; 2026-07-28 is
/// stateless (every request names its revision in `_meta`). The server serves
/// both eras in one process, as the 2026-07-28 revision allows a dual-era server to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Revision {
    /// 2024-11-05: the first published revision.
    V2024_11_05,
    /// 2025-03-26: tool annotations; JSON-RPC batches.
    V2025_03_26,
    /// 2025-06-18: titles, output schemas and structured tool results; no batches.
    V2025_06_18,
    /// 2025-11-25: tool execution hints (tasks); input validation errors as tool errors.
    V2025_11_25,
    /// 2026-07-28: stateless; `server/discover`, `resultType`, cache hints.
    V2026_07_28,
}

impl Revision {
    /// Every revision, oldest first.
    pub const ALL: [Revision; 5] = [
        Revision::V2024_11_05,
        Revision::V2025_03_26,
        Revision::V2025_06_18,
        Revision::V2025_11_25,
        Revision::V2026_07_28,
    ];

    /// The newest revision that opens with `initialize`: what an `initialize`
    /// asking for an unknown revision is answered with.
    pub const LATEST_LEGACY: Revision = Revision::V2025_11_25;

    /// The revision's date, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Revision::V2024_11_05 => "2024-11-05",
            Revision::V2025_03_26 => "2025-03-26",
            Revision::V2025_06_18 => "2025-06-18",
            Revision::V2025_11_25 => "2025-11-25",
            Revision::V2026_07_28 => "2026-07-28",
        }
    }

    /// The revision with this date, if the server speaks it.
    pub fn parse(text: &str) -> Option<Revision> {
        Revision::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether the revision is stateless (no `initialize`, `_meta` on every request).
    pub fn is_modern(self) -> bool {
        self >= Revision::V2026_07_28
    }

    /// Whether tools carry `annotations` (read-only, destructive, idempotent hints).
    pub fn has_annotations(self) -> bool {
        self >= Revision::V2025_03_26
    }

    /// Whether tools and implementations carry `title`, tools an `outputSchema` and
    /// tool results `structuredContent`.
    pub fn has_structured_output(self) -> bool {
        self >= Revision::V2025_06_18
    }

    /// Whether tools carry `execution.taskSupport` (only 2025-11-25: the next
    /// revision moved tasks into an extension).
    pub fn has_task_hints(self) -> bool {
        self == Revision::V2025_11_25
    }

    /// Whether a line may hold a JSON-RPC batch (an array of messages).
    pub fn allows_batches(self) -> bool {
        self == Revision::V2025_03_26
    }

    /// The error code for a resource that does not exist.
    pub fn resource_not_found_code(self) -> i64 {
        if self.is_modern() { -32602 } else { -32002 }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Revision;

    #[test]
    fn revisions_parse_back_and_are_ordered_by_date() {
        for r in Revision::ALL {
            assert_eq!(Revision::parse(r.as_str()), Some(r));
        }
        assert_eq!(Revision::parse("2024-10-07"), None);
        let mut dates: Vec<&str> = Revision::ALL.iter().map(|r| r.as_str()).collect();
        dates.sort_unstable();
        assert_eq!(dates, Revision::ALL.map(Revision::as_str));
        assert!(!Revision::LATEST_LEGACY.is_modern());
        assert!(Revision::V2026_07_28.is_modern());
    }
}
