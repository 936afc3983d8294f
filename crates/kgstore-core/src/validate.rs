//! The rules values must follow, each returning the reason a value breaks it.
//!
//! Entity-level checks ([`node`], [`edge`]) collect every violation with its JSON
//! pointer, so a caller sees all that is wrong at once.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::Violation;
use crate::model::{Edge, Node};

/// Longest node name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest identifier (node type, custom relation type), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 64;
/// Longest tag or status, in bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// Longest author or source, in bytes.
pub const MAX_TEXT_FIELD_BYTES: usize = 2048;
/// Longest single observation, in bytes.
pub const MAX_OBSERVATION_BYTES: usize = 16 * 1024 * 1024;
/// Deepest nesting of arrays and objects inside `attributes`.
pub const MAX_ATTRIBUTE_DEPTH: usize = 64;
/// Highest version an entity can reach: every backend can store it (SQLite's
/// integers are signed 64-bit), so a store moves between backends unchanged.
pub const MAX_VERSION: u64 = i64::MAX as u64;

type Rule = Result<(), String>;

/// A node name: 1 to 512 bytes of UTF-8 without control characters.
pub fn name(value: &str) -> Rule {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            value.len()
        ));
    }
    no_control_characters(value)
}

/// An identifier: `[a-z][a-z0-9_]*`, at most 64 bytes.
pub fn identifier(value: &str) -> Rule {
    let mut chars = value.chars();
    match chars.next() {
        None => return Err("must not be empty".into()),
        Some(c) if !c.is_ascii_lowercase() => {
            return Err(format!(
                "must start with a lowercase ASCII letter, not {c:?}"
            ));
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(format!("may hold only a-z, 0-9 and '_', not {c:?}"));
    }
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_IDENTIFIER_BYTES} are allowed",
            value.len()
        ));
    }
    Ok(())
}

/// A tag or status: 1 to 128 bytes without control characters.
pub fn label(value: &str) -> Rule {
    bounded_text(value, MAX_LABEL_BYTES)
}

/// An author or source: 1 to 2048 bytes without control characters.
pub fn text_field(value: &str) -> Rule {
    bounded_text(value, MAX_TEXT_FIELD_BYTES)
}

fn bounded_text(value: &str, max: usize) -> Rule {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!(
            "is {} bytes long; at most {max} are allowed",
            value.len()
        ));
    }
    no_control_characters(value)
}

/// Whether [`name`] accepts `value` without a closer look: 1 to [`MAX_NAME_BYTES`]
/// bytes, every one printable ASCII (0x20–0x7E), so no control character. The
/// common name's fast path (every lookup checks its name); [`name`] decides the rest.
#[inline]
pub(crate) fn is_printable_ascii_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes.iter().all(|&b| b.wrapping_sub(0x20) < 0x5f)
}

/// Refuses a control character (general category `Cc`: U+0000–U+001F and
/// U+007F–U+009F). Scans bytes, not decoded characters: in UTF-8 these are the
/// bytes below 0x20 and 0x7F, and the two-byte sequences 0xC2 0x80–0x9F (no
/// other character's encoding holds such a byte or such a pair), so a name is
/// checked without decoding it (every lookup and every write checks its names).
pub(crate) fn no_control_characters(value: &str) -> Rule {
    let bytes = value.as_bytes();
    let at = bytes.iter().enumerate().position(|(i, &b)| {
        b < 0x20
            || b == 0x7f
            || (b == 0xc2
                && bytes
                    .get(i + 1)
                    .is_some_and(|next| (0x80..=0x9f).contains(next)))
    });
    match at.and_then(|at| Some((at, value.get(at..)?.chars().next()?))) {
        Some((at, c)) => Err(format!("holds the control character {c:?} at byte {at}")),
        None => Ok(()),
    }
}

/// An edge weight: finite and not negative.
pub fn weight(value: f64) -> Rule {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("must be a finite number ≥ 0, not {value}"))
    }
}

/// A confidence: finite, between 0 and 1.
pub fn confidence(value: f64) -> Rule {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("must be between 0 and 1, not {value}"))
    }
}

/// An attributes object: nested at most 64 deep.
pub fn attributes(value: &Map<String, Value>) -> Rule {
    // Descends no further than the limit, so hostile nesting cannot exhaust the stack here.
    fn within(value: &Value, remaining: usize) -> bool {
        match value {
            Value::Array(items) => remaining > 0 && items.iter().all(|v| within(v, remaining - 1)),
            Value::Object(map) => remaining > 0 && map.values().all(|v| within(v, remaining - 1)),
            _ => true,
        }
    }
    if value
        .values()
        .all(|child| within(child, MAX_ATTRIBUTE_DEPTH - 1))
    {
        Ok(())
    } else {
        Err(format!("nest more than {MAX_ATTRIBUTE_DEPTH} levels deep"))
    }
}

/// A JSON pointer (RFC 6901): empty, or `/`-separated tokens with `~0`/`~1` escapes only.
pub fn json_pointer(value: &str) -> Rule {
    if value.is_empty() {
        return Ok(());
    }
    if !value.starts_with('/') {
        return Err("must be empty or start with '/'".into());
    }
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("'~' must be followed by '0' or '1'".into());
        }
    }
    Ok(())
}

/// A value shortened and escaped for an error message.
pub fn shorten(value: &str) -> String {
    const SHOWN: usize = 80;
    let mut out: String = value
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > SHOWN {
        out.push('…');
    }
    out
}

/// How a node is named in messages: `node 'a'`.
pub fn node_subject(name: &str) -> String {
    format!("node '{}'", shorten(name))
}

/// The violations of one entity, each naming the entity as `subject` makes it:
/// nothing is formatted or allocated while every rule holds.
struct Violations<S: Fn() -> String> {
    subject: S,
    out: Vec<Violation>,
}

impl<S: Fn() -> String> Violations<S> {
    fn new(subject: S) -> Self {
        Self {
            subject,
            out: Vec::new(),
        }
    }

    /// Records `rule`'s violation at `pointer`.
    #[inline]
    fn check(&mut self, pointer: &str, rule: Rule) {
        if let Err(message) = rule {
            self.out
                .push(Violation::new((self.subject)(), pointer, message));
        }
    }

    /// Records `rule`'s violation at item `i` of the list at `pointer`.
    #[inline]
    fn check_item(&mut self, pointer: &str, i: usize, rule: Rule) {
        if let Err(message) = rule {
            self.out.push(Violation::new(
                (self.subject)(),
                format!("{pointer}/{i}"),
                message,
            ));
        }
    }
}

/// Every violation of the rules in a node's own fields (not its references).
pub fn node(node: &Node) -> Vec<Violation> {
    let mut found = Violations::new(|| node_subject(&node.name));
    found.check("/name", name(&node.name));
    found.check("/node_type", identifier(&node.node_type));
    for (i, text) in node.observations.iter().enumerate() {
        if text.len() > MAX_OBSERVATION_BYTES {
            found.check_item(
                "/observations",
                i,
                Err(format!(
                    "is {} bytes long; at most {MAX_OBSERVATION_BYTES} are allowed",
                    text.len()
                )),
            );
        }
    }
    found.check("/attributes", attributes(&node.attributes));
    if !node.dependencies.is_empty() {
        // Seeding a hash set costs a thread-local read: only when there is something to see.
        let mut seen = HashSet::new();
        for (i, dep) in node.dependencies.iter().enumerate() {
            found.check_item("/dependencies", i, name(dep));
            if !seen.insert(dep.as_str()) {
                found.check_item(
                    "/dependencies",
                    i,
                    Err(format!("names '{}' twice", shorten(dep))),
                );
            }
        }
    }
    let meta = &node.metadata;
    if let Some(author) = &meta.author {
        found.check("/metadata/author", text_field(author));
    }
    if let Some(source) = &meta.source {
        found.check("/metadata/source", text_field(source));
    }
    if let Some(status) = &meta.status {
        found.check("/metadata/status", label(status));
    }
    for (i, tag) in meta.tags.iter().enumerate() {
        found.check_item("/metadata/tags", i, label(tag));
    }
    found.out
}

/// Every violation of the rules in the metadata an import or a restore keeps as given:
/// the version (at most [`MAX_VERSION`]) and `updated_at` not earlier than `created_at`.
/// A version of 0 means "new" and is stamped afresh, so its timestamps are not checked.
pub fn kept_metadata(
    subject: &str,
    version: u64,
    created_at: crate::Timestamp,
    updated_at: crate::Timestamp,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if version > MAX_VERSION {
        out.push(Violation::new(
            subject,
            "/metadata/version",
            format!("is {version}; at most {MAX_VERSION} is allowed"),
        ));
    }
    if version != 0 && updated_at < created_at {
        out.push(Violation::new(
            subject,
            "/metadata/updated_at",
            "is earlier than created_at",
        ));
    }
    out
}

/// Every violation of the rules in an edge's own fields (not its endpoints' existence).
pub fn edge(edge: &Edge) -> Vec<Violation> {
    let mut found = Violations::new(|| format!("edge {}", edge.key()));
    found.check("/from", name(&edge.from));
    found.check("/to", name(&edge.to));
    found.check("/relation_type", edge.relation_type.check());
    found.check("/attributes", attributes(&edge.attributes));
    let meta = &edge.metadata;
    found.check("/metadata/weight", weight(meta.weight));
    if let Some(c) = meta.confidence {
        found.check("/metadata/confidence", confidence(c));
    }
    if let Some(source) = &meta.source {
        found.check("/metadata/source", text_field(source));
    }
    found.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("a").is_ok());
        assert!(name(&"é".repeat(256)).is_ok()); // 512 bytes
        assert!(name(&"é".repeat(257)).is_err());
        assert!(name("").is_err());
        assert!(name("a\nb").unwrap_err().contains("byte 1"));
        assert!(name("a\u{0}b").is_err());
        assert!(name("a\u{85}b").is_err()); // C1 control
        assert!(name("../etc/passwd").is_ok()); // names are data, not paths
    }

    /// The fast path lets through only names the whole check accepts, and every
    /// printable ASCII name of an allowed length.
    #[test]
    fn printable_ascii_names_pass_the_fast_path_and_only_good_names_do() {
        let mut samples: Vec<String> = (0..=0x7f_u8).map(|b| format!("a{}b", b as char)).collect();
        samples
            .extend(["", "n12345", " ", "~", "a\u{80}", "a\u{85}b", "é", "späť"].map(String::from));
        samples.extend([
            "x".repeat(511),
            "x".repeat(512),
            "x".repeat(513),
            "é".repeat(256),
        ]);
        samples.push((0x20..0x7f_u8).map(char::from).collect());
        for sample in &samples {
            let fast = is_printable_ascii_name(sample);
            if fast {
                assert!(name(sample).is_ok(), "{sample:?}");
            }
            let plain = !sample.is_empty()
                && sample.len() <= MAX_NAME_BYTES
                && sample.bytes().all(|b| (b' '..=b'~').contains(&b));
            assert_eq!(fast, plain, "{sample:?}");
        }
        assert!(!is_printable_ascii_name("a\u{7f}b") && name("a\u{7f}b").is_err());
        assert!(!is_printable_ascii_name("späť") && name("späť").is_ok());
    }

    /// The byte scan refuses exactly the characters `char::is_control` names, at
    /// their byte, among neighbours of every width.
    #[test]
    fn control_characters_are_found_by_bytes_as_by_chars() {
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            let text = format!("é{c}€");
            let found = no_control_characters(&text);
            if c.is_control() {
                let expected = format!("holds the control character {c:?} at byte 2");
                assert_eq!(found, Err(expected), "{c:?}");
            } else {
                assert_eq!(found, Ok(()), "{c:?}");
            }
        }
    }

    #[test]
    fn identifiers() {
        assert!(identifier("crate").is_ok());
        assert!(identifier("a_1").is_ok());
        for bad in ["", "_a", "1a", "A", "aB", "a-b", "a b", "ä"] {
            assert!(identifier(bad).is_err(), "{bad:?}");
        }
        assert!(identifier(&"a".repeat(64)).is_ok());
        assert!(identifier(&"a".repeat(65)).is_err());
    }

    #[test]
    fn numbers() {
        assert!(weight(0.0).is_ok());
        assert!(weight(-0.5).is_err());
        assert!(weight(f64::NAN).is_err());
        assert!(weight(f64::INFINITY).is_err());
        assert!(confidence(1.0).is_ok());
        assert!(confidence(1.5).is_err());
    }

    #[test]
    fn pointers() {
        assert!(json_pointer("").is_ok());
        assert!(json_pointer("/a/b~0~1").is_ok());
        assert!(json_pointer("a").is_err());
        assert!(json_pointer("/a~2").is_err());
    }

    #[test]
    fn deep_attributes_are_refused() {
        let mut value = Value::Null;
        for _ in 0..70 {
            value = Value::Array(vec![value]);
        }
        let mut map = Map::new();
        map.insert("deep".into(), value);
        assert!(attributes(&map).is_err());
    }

    #[test]
    fn shorten_escapes_and_cuts() {
        assert_eq!(shorten("a\nb"), "a\\nb");
        assert!(shorten(&"x".repeat(200)).ends_with('…'));
    }
}
