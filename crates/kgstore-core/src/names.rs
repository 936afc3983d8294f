//! File names derived from keys, shared by the backends that keep one file per
//! entity (the JSON-files backend, and the git backend under `.kgstore/`).
//!
//! A name is encoded byte by byte into a small ASCII alphabet that every common
//! file system stores as given:
//!
//! | input byte                         | written as                   |
//! |------------------------------------|------------------------------|
//! | `a`–`z`, `0`–`9`, `-`, `_`         | itself                       |
//! | `.` (not as the first byte)        | itself                       |
//! | `A`–`Z`                            | `^` and the lowercase letter |
//! | anything else (and a leading `.`)  | `%` and two lowercase hex digits |
//!
//! The output holds no uppercase letter, so a file system that folds case
//! cannot make two encodings collide, and it is pure ASCII, so Unicode
//! normalization (macOS) cannot either. It holds no `/`, `\`, `:`, NUL or
//! control character and never starts with `.` (no `..`, no `.git`, no hidden
//! file). An encoded name whose part before the first `.` is a Windows device
//! name (`con`, `prn`, `aux`, `nul`, `com0`–`com9`, `lpt0`–`lpt9`) has its first
//! byte escaped (`con` → `%63on`). The empty name is written `%`.
//!
//! Encoding is injective and [`decode_name`] reverses it. A file stem is one
//! encoded name (nodes), three joined by `,` (edges: from, relation, to), which
//! the encoding never produces itself. A stem longer than [`MAX_STEM`] bytes is
//! cut to a readable prefix of at most [`HASHED_PREFIX`] bytes followed by `~`
//! and the SHA-256 of the full stem in hex; such a file is found by the key it
//! carries inside (every node and edge file holds its whole key).
//!
//! Files are sharded into 256 folders named by the first byte of the SHA-256 of
//! their stem, in hex.

use std::fmt::Write as _;

use crate::{EdgeKey, RelationType, SchemaTarget};
use sha2::{Digest, Sha256};

/// Longest stem written as is; longer ones are hashed.
pub const MAX_STEM: usize = 200;
/// Longest readable prefix kept in front of a hashed stem.
pub const HASHED_PREFIX: usize = 150;
/// Separates the three parts of an edge stem.
const EDGE_SEPARATOR: char = ',';
/// Marks a hashed stem.
const HASH_MARK: char = '~';
/// The file extension of every entity file.
pub const EXTENSION: &str = ".json";

/// Folder of the node files.
pub const NODES: &str = "nodes";
/// Folder of the edge files.
pub const EDGES: &str = "edges";
/// Folder of the schema files.
pub const SCHEMAS: &str = "schemas";
/// Sub-folder of [`SCHEMAS`] for node-type schemas.
pub const NODE_TYPE: &str = "node_type";
/// Sub-folder of [`SCHEMAS`] for relation-type schemas.
pub const RELATION_TYPE: &str = "relation_type";

/// Encodes a name into a file-name-safe, case-fold-safe, reversible form.
///
/// ```
/// use kgstore_core::names::{decode_name, encode_name};
///
/// assert_eq!(encode_name("serde_json"), "serde_json");
/// assert_eq!(encode_name("MyType"), "^my^type");
/// assert_eq!(encode_name("../etc/passwd"), "%2e.%2fetc%2fpasswd");
/// assert_eq!(encode_name("CON"), "^c^o^n");
/// assert_eq!(encode_name("con.txt"), "%63on.txt");
/// assert_eq!(encode_name("é"), "%c3%a9");
/// assert_eq!(decode_name("%2e.%2fetc%2fpasswd").as_deref(), Some("../etc/passwd"));
/// ```
pub fn encode_name(name: &str) -> String {
    if name.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, byte) in name.bytes().enumerate() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => out.push(char::from(byte)),
            b'.' if i > 0 => out.push('.'),
            b'A'..=b'Z' => {
                out.push('^');
                out.push(char::from(byte.to_ascii_lowercase()));
            }
            _ => push_escape(&mut out, byte),
        }
    }
    if is_device_name(&out) {
        // The first byte is a plain lowercase letter here: escape it.
        let first = out.as_bytes()[0];
        let mut escaped = String::with_capacity(out.len() + 2);
        push_escape(&mut escaped, first);
        escaped.push_str(&out[1..]);
        out = escaped;
    }
    out
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xf)]));
}

/// Whether Windows would take a file whose name starts with `encoded` for a device.
fn is_device_name(encoded: &str) -> bool {
    let base = encoded.split('.').next().unwrap_or(encoded);
    match base.len() {
        3 => matches!(base, "con" | "prn" | "aux" | "nul"),
        4 => {
            (base.starts_with("com") || base.starts_with("lpt"))
                && base.as_bytes()[3].is_ascii_digit()
        }
        _ => false,
    }
}

/// Reverses [`encode_name`]; `None` for text that is not exactly what it writes.
pub fn decode_name(encoded: &str) -> Option<String> {
    if encoded == "%" {
        return Some(String::new());
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => bytes.push(byte),
            b'^' => match input.next() {
                Some(letter @ b'a'..=b'z') => bytes.push(letter.to_ascii_uppercase()),
                _ => return None,
            },
            b'%' => {
                let high = hex_digit(input.next()?)?;
                let low = hex_digit(input.next()?)?;
                bytes.push(high << 4 | low);
            }
            _ => return None,
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    // Only the canonical spelling decodes, so that one key has one file name.
    (encode_name(&name) == encoded).then_some(name)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Keeps a stem within [`MAX_STEM`] bytes by hashing a long one.
pub fn fit(full: String) -> String {
    if full.len() <= MAX_STEM {
        return full;
    }
    // Cut at an escape boundary so the prefix stays readable.
    let bytes = full.as_bytes();
    let mut cut = 0;
    while cut < bytes.len() {
        let step = match bytes[cut] {
            b'%' => 3,
            b'^' => 2,
            _ => 1,
        };
        if cut + step > HASHED_PREFIX {
            break;
        }
        cut += step;
    }
    let digest = Sha256::digest(full.as_bytes());
    format!("{}{HASH_MARK}{}", &full[..cut], hex(&digest))
}

/// One path segment of a document key as a file name: [`encode_name`], a trailing
/// `.` escaped too (some systems drop it), long ones hashed like long stems. Used by
/// the JSON-files backend for every segment and by the git backend for segments it
/// cannot keep as they are.
///
/// ```
/// use kgstore_core::names::encode_segment;
///
/// assert_eq!(encode_segment("Pilot.fountain"), "^pilot.fountain");
/// assert_eq!(encode_segment("end."), "end%2e");
/// ```
pub fn encode_segment(segment: &str) -> String {
    let mut out = encode_name(segment);
    if out.ends_with('.') {
        out.pop();
        out.push_str("%2e");
    }
    fit(out)
}

/// Whether a stem was hashed (so its key is only inside the file).
pub fn is_hashed(stem: &str) -> bool {
    stem.contains(HASH_MARK)
}

/// The shard folder of a stem: the first byte of its SHA-256, in hex.
pub fn shard(stem: &str) -> String {
    let digest = Sha256::digest(stem.as_bytes());
    hex(&digest[..1])
}

/// The stem of a node's file.
pub fn node_stem(name: &str) -> String {
    fit(encode_name(name))
}

/// The stem of an edge's file.
pub fn edge_stem(key: &EdgeKey) -> String {
    fit(format!(
        "{}{EDGE_SEPARATOR}{}{EDGE_SEPARATOR}{}",
        encode_name(&key.from),
        encode_name(key.relation_type.as_str()),
        encode_name(&key.to)
    ))
}

/// The node name a stem spells, unless it was hashed or is not canonical.
pub fn decode_node_stem(stem: &str) -> Option<String> {
    decode_name(stem)
}

/// The edge key a stem spells, unless it was hashed or is not canonical.
pub fn decode_edge_stem(stem: &str) -> Option<EdgeKey> {
    let mut parts = stem.split(EDGE_SEPARATOR);
    let (from, relation, to) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let relation = RelationType::parse(&decode_name(relation)?).ok()?;
    Some(EdgeKey::new(decode_name(from)?, relation, decode_name(to)?))
}

/// The path of a node's file, relative to the store's folder, with `/` separators.
pub fn node_path(name: &str) -> String {
    let stem = node_stem(name);
    format!("{NODES}/{}/{stem}{EXTENSION}", shard(&stem))
}

/// The path of an edge's file, relative to the store's folder.
pub fn edge_path(key: &EdgeKey) -> String {
    let stem = edge_stem(key);
    format!("{EDGES}/{}/{stem}{EXTENSION}", shard(&stem))
}

/// The path of a schema's file, relative to the store's folder.
pub fn schema_path(target: &SchemaTarget) -> String {
    match target {
        SchemaTarget::NodeType(name) => {
            format!("{SCHEMAS}/{NODE_TYPE}/{}{EXTENSION}", encode_name(name))
        }
        SchemaTarget::RelationType(rel) => format!(
            "{SCHEMAS}/{RELATION_TYPE}/{}{EXTENSION}",
            encode_name(rel.as_str())
        ),
    }
}

/// The schema target a schema file's path names (`schemas/node_type/crate.json`).
pub fn decode_schema_path(kind: &str, file: &str) -> Option<SchemaTarget> {
    let name = decode_name(file.strip_suffix(EXTENSION)?)?;
    let target = match kind {
        NODE_TYPE => SchemaTarget::NodeType(name),
        RELATION_TYPE => SchemaTarget::RelationType(RelationType::parse(&name).ok()?),
        _ => return None,
    };
    target.check().ok()?;
    Some(target)
}

/// Whether a relative path is one this backend could have written: a data folder,
/// then components of the encoding's alphabet that do not start with `.`, ending in
/// `.json`. Journal replay refuses any other path, so a forged journal cannot write
/// outside the store.
pub fn is_entity_path(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let shape_ok = match parts.as_slice() {
        [NODES | EDGES, shard, _] => shard.len() == 2,
        [SCHEMAS, NODE_TYPE | RELATION_TYPE, _] => true,
        _ => false,
    };
    shape_ok
        && rel.ends_with(EXTENSION)
        && parts.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.len() <= MAX_STEM + HASHED_PREFIX
                && part.bytes().all(|b| {
                    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'^' | b'%' | b',' | b'~')
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(encode_name("serde"), "serde");
        assert_eq!(encode_name("a.b-c_d"), "a.b-c_d");
        assert_eq!(node_stem("serde"), "serde");
        let key = EdgeKey::new("kgstore", RelationType::DependsOn, "serde");
        assert_eq!(edge_stem(&key), "kgstore,depends_on,serde");
        assert_eq!(decode_edge_stem("kgstore,depends_on,serde"), Some(key));
    }

    #[test]
    fn device_names_are_escaped_whatever_follows() {
        for (name, encoded) in [
            ("con", "%63on"),
            ("nul.json", "%6eul.json"),
            ("com1", "%63om1"),
            ("lpt9.x.y", "%6cpt9.x.y"),
            ("aux", "%61ux"),
            ("prn", "%70rn"),
            ("com", "com"),
            ("console", "console"),
        ] {
            assert_eq!(encode_name(name), encoded);
            assert_eq!(decode_name(encoded).as_deref(), Some(name));
        }
    }

    #[test]
    fn non_canonical_spellings_do_not_decode() {
        for text in [
            "%41", "%2E", "A", "^", "^1", "%", "%zz", "%6", "con", "a/b", "%2e.%2F",
        ] {
            if text == "%" {
                assert_eq!(decode_name(text).as_deref(), Some(""));
            } else {
                assert_eq!(decode_name(text), None, "{text}");
            }
        }
        // A leading dot must be escaped, so a literal one is not canonical.
        assert_eq!(decode_name(".git"), None);
        assert_eq!(decode_name("%2egit").as_deref(), Some(".git"));
    }

    #[test]
    fn long_names_are_hashed_with_a_readable_prefix() {
        let name = "é".repeat(256);
        let stem = node_stem(&name);
        assert!(is_hashed(&stem));
        assert!(stem.len() <= HASHED_PREFIX + 65, "{}", stem.len());
        assert!(stem.starts_with("%c3%a9"));
        assert_eq!(decode_node_stem(&stem), None);
        assert_ne!(node_stem(&"é".repeat(255)), stem);
    }

    #[test]
    fn entity_paths_are_recognised_and_nothing_else() {
        assert!(is_entity_path(&node_path("../x")));
        assert!(is_entity_path(&edge_path(&EdgeKey::new(
            "a",
            RelationType::Calls,
            "b"
        ))));
        assert!(is_entity_path("schemas/node_type/crate.json"));
        for bad in [
            "../x.json",
            "nodes/../../x.json",
            "nodes/ab/.x.json",
            "/etc/passwd",
            "nodes/ab/x.txt",
            "journal/1.commit",
            "nodes/abc/x.json",
            "nodes/ab/x/y.json",
            "nodes/ab/X.json",
        ] {
            assert!(!is_entity_path(bad), "{bad}");
        }
    }
}
