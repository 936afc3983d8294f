//! What the store records about a document beside its bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use crate::validate::shorten;

/// A SHA-256 digest, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest from 32 bytes (as a backend stores it); `None` for another length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = Error;

    /// Parses exactly 64 lower-case hex digits.
    fn from_str(s: &str) -> Result<Self> {
        let refuse = || {
            Error::invalid_input(
                format!("SHA-256 '{}'", shorten(s)),
                "a SHA-256 is 64 lower-case hex digits",
            )
        };
        if s.len() != 64 {
            return Err(refuse());
        }
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            out[i] =
                (digit(pair[0]).ok_or_else(refuse)? << 4) | digit(pair[1]).ok_or_else(refuse)?;
        }
        Ok(Self(out))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What the store knows about a stored document: everything but its bytes.
///
/// `size` and `sha256` describe the bytes; `created_at`, `updated_at` and
/// `version` are set by the store (version 1 on create, +1 on every replace),
/// as for nodes and edges. In JSON (`docs/documents.md`) the fields come in this
/// order, timestamps as RFC 3339 and the digest as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentMeta {
    /// The document's key.
    pub key: String,
    /// Its media type, e.g. `text/plain; charset=utf-8`.
    pub content_type: String,
    /// Its length in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes.
    pub sha256: Sha256Digest,
    /// When it was first written.
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// 1 when created, +1 on every replace.
    pub version: u64,
}

/// A document: its metadata and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Document {
    /// What the store records about it.
    pub meta: DocumentMeta,
    /// Its bytes.
    pub content: Vec<u8>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("meta", &self.meta)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

/// The content type given to a document written without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Content types by lower-cased file extension. Kept in kgstore rather than taken
/// from a crate, because a guessed type is stored data: an upgrade must not
/// change what the same write stores.
const BY_EXTENSION: &[(&str, &str)] = &[
    ("bin", "application/octet-stream"),
    ("bmp", "image/bmp"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("fdx", "application/xml"),
    ("fountain", "text/vnd.fountain; charset=utf-8"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("jsonl", "application/jsonl"),
    ("md", "text/markdown; charset=utf-8"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("npy", "application/x-npy"),
    ("ogg", "audio/ogg"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("rs", "text/x-rust; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("toml", "application/toml"),
    ("tsv", "text/tab-separated-values; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("wav", "audio/wav"),
    ("webp", "image/webp"),
    ("xml", "application/xml"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
];

/// The content type guessed from a key's extension (case-insensitive), or
/// [`DEFAULT_CONTENT_TYPE`].
///
/// ```
/// use kgstore_core::documents::guess_content_type;
/// assert_eq!(guess_content_type("scripts/pilot.fountain"), "text/vnd.fountain; charset=utf-8");
/// assert_eq!(guess_content_type("README.MD"), "text/markdown; charset=utf-8");
/// assert_eq!(guess_content_type("blobs/scene-1"), "application/octet-stream");
/// ```
pub fn guess_content_type(key: &str) -> &'static str {
    let file = key.rsplit('/').next().unwrap_or(key);
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return DEFAULT_CONTENT_TYPE;
    };
    if stem.is_empty() {
        return DEFAULT_CONTENT_TYPE;
    }
    let ext = ext.to_ascii_lowercase();
    BY_EXTENSION
        .binary_search_by(|(e, _)| (*e).cmp(ext.as_str()))
        .map_or(DEFAULT_CONTENT_TYPE, |i| BY_EXTENSION[i].1)
}

/// Why a content type is refused; `Ok` for `type/subtype` with optional
/// `; parameters`, at most 255 bytes, without control characters.
pub fn content_type_rule(value: &str) -> std::result::Result<(), String> {
    if value.len() > 255 {
        return Err(format!(
            "is {} bytes long; at most 255 are allowed",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "holds the control character U+{:04X}",
            u32::from(c)
        ));
    }
    let essence = value.split(';').next().unwrap_or("").trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(()),
        _ => Err(
            "must be a media type such as 'text/plain' or 'application/json; charset=utf-8'".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_table_is_sorted_for_binary_search() {
        assert!(BY_EXTENSION.windows(2).all(|w| w[0].0 < w[1].0));
        for (_, t) in BY_EXTENSION {
            assert_eq!(content_type_rule(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn guesses() {
        assert_eq!(guess_content_type("a.json"), "application/json");
        assert_eq!(guess_content_type(".json"), DEFAULT_CONTENT_TYPE);
        assert_eq!(guess_content_type("a.json/b"), DEFAULT_CONTENT_TYPE);
        assert_eq!(guess_content_type("a.PNG"), "image/png");
        assert_eq!(guess_content_type("a.unknown"), DEFAULT_CONTENT_TYPE);
    }

    #[test]
    fn content_types() {
        for ok in [
            "text/plain",
            "application/vnd.api+json; charset=utf-8",
            "x/y;a=b",
        ] {
            assert_eq!(content_type_rule(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "te xt/plain",
            "text/plain\n",
            "ü/x",
        ] {
            assert!(content_type_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_round_trip_as_hex() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_hex().parse::<Sha256Digest>().unwrap(), d);
        assert!(
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
                .parse::<Sha256Digest>()
                .is_err()
        );
        assert!("abc".parse::<Sha256Digest>().is_err());
    }
}
