//! [`Name`]: a name as the memory backend's tables keep it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Names up to this many bytes are kept inline.
const INLINE: usize = 22;

/// A name as the name table, the ordered names and the edge lists keep it: the
/// bytes themselves when short, else a shared copy. Inline, comparing or
/// hashing a name reads the entry that holds it and follows no pointer, so a
/// lookup in a large table or the walk of a node's edges does not take one more
/// cache miss per name it looks at (on the peers workload, that miss was most
/// of listing a node's edges). Compares, hashes and borrows as the bytes of the
/// `str` it holds, so tables keyed by it are looked up by `name.as_bytes()`:
/// a lookup compares bytes and never checks an inline name's bytes as UTF-8
/// again (that check was a tenth of a lookup). Byte order is `str`'s order.
#[derive(Clone)]
pub(super) enum Name {
    /// Up to [`INLINE`] bytes, in place.
    Inline {
        /// How many of `bytes` are the name's.
        len: u8,
        /// The name's bytes, then zeros.
        bytes: [u8; INLINE],
    },
    /// A longer name.
    Shared(Arc<str>),
}

impl Name {
    /// `name`, copied when short, else `shared()` (a shared copy of it, asked
    /// for only then).
    pub(super) fn new(name: &str, shared: impl FnOnce() -> Arc<str>) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Shared(shared()),
        }
    }

    /// The name's bytes (UTF-8).
    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Shared(name) => name.as_bytes(),
        }
    }

    /// The name's first [`INLINE`] bytes, zeros after its end, as two big-endian
    /// numbers. Comparing two names' prefixes, and their bytes only when the
    /// prefixes are equal, orders them as their bytes do: a prefix differs first
    /// either where the names do or where the shorter one has ended, and there the
    /// longer holds a byte above zero, so it is the greater, as in byte order. A
    /// sort compares integers instead of calling `memcmp` on short names.
    #[inline]
    pub(super) fn prefix(&self) -> (u128, u64) {
        let mut head = [0u8; INLINE];
        let bytes: &[u8; INLINE] = match self {
            Self::Inline { bytes, .. } => bytes,
            Self::Shared(name) => {
                let name = name.as_bytes();
                let n = name.len().min(INLINE);
                head[..n].copy_from_slice(&name[..n]);
                &head
            }
        };
        let mut high = [0u8; 16];
        high.copy_from_slice(&bytes[..16]);
        let mut low = [0u8; 8];
        low[..INLINE - 16].copy_from_slice(&bytes[16..]);
        (u128::from_be_bytes(high), u64::from_be_bytes(low))
    }

    /// The name.
    #[inline]
    pub(super) fn as_str(&self) -> &str {
        match self {
            // Copied from a whole `&str` in `new`, so always UTF-8.
            Self::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Self::Shared(name) => name,
        }
    }
}

impl Deref for Name {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<[u8]> for Name {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// These agree with `Borrow<[u8]>` (and byte order is `str`'s order).
impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Name {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Inline up to 22 bytes, shared beyond; whole either way, and ordered,
    /// compared and hashed as the bytes of the `str` it holds.
    #[test]
    fn names_keep_every_name_whole_and_compare_as_str() {
        let texts = [
            "",
            "a",
            "ab",
            &"x".repeat(22),
            &"x".repeat(23),
            &"é".repeat(11),
            "ü€😀",
            "b",
        ];
        let names: Vec<Name> = texts
            .iter()
            .map(|t| Name::new(t, || Arc::from(*t)))
            .collect();
        let hash = |v: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v(&mut h);
            h.finish()
        };
        for (name, text) in names.iter().zip(texts) {
            assert_eq!(name.as_str(), text);
            assert_eq!(matches!(name, Name::Inline { .. }), text.len() <= INLINE);
            assert_eq!(hash(&|h| name.hash(h)), hash(&|h| text.as_bytes().hash(h)));
            let borrowed: &[u8] = name.borrow();
            assert_eq!(borrowed, text.as_bytes());
            for (other, other_text) in names.iter().zip(texts) {
                assert_eq!(name.cmp(other), text.cmp(other_text));
                assert_eq!(name == other, text == other_text);
            }
        }
    }
}
