//! Document keys: relative slash-separated paths, checked once for every backend.
//!
//! A key is 1–1024 bytes of UTF-8; its segments (between `/`) are 1–255 bytes;
//! no empty segment, no `.` or `..` segment, no leading or trailing `/`, no
//! control character (NUL included). The first segment `.kgstore` is reserved
//! for the store's own use. Keys are compared as exact bytes: NFC `Café`, NFD
//! `Café` and `café` are three different keys on every backend.

use crate::error::{Error, Result};
use crate::validate::shorten;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest segment of a key, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The first segment reserved for the store's own use.
pub const RESERVED_SEGMENT: &str = ".kgstore";

/// Why `key` is not a document key, naming the rule it breaks; `Ok` for a valid key.
pub fn key_rule(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("a key must not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "a key is at most {MAX_KEY_BYTES} bytes long; this one is {} bytes",
            key.len()
        ));
    }
    check_characters(key)?;
    if key.starts_with('/') {
        return Err("a key must not start with '/' (keys are relative paths)".into());
    }
    if key.ends_with('/') {
        return Err("a key must not end with '/' (a key names a document, not a folder)".into());
    }
    for (i, segment) in key.split('/').enumerate() {
        let n = i + 1;
        if segment.is_empty() {
            return Err(format!(
                "segment {n} is empty ('//'): a key has no empty segment"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!(
                "segment {n} is '{segment}': '.' and '..' segments are not allowed"
            ));
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(format!(
                "segment {n} is {} bytes long; a segment is at most {MAX_SEGMENT_BYTES} bytes",
                segment.len()
            ));
        }
        if i == 0 && segment == RESERVED_SEGMENT {
            return Err(format!(
                "'{RESERVED_SEGMENT}/' is reserved for the store's own use"
            ));
        }
    }
    Ok(())
}

fn check_characters(text: &str) -> std::result::Result<(), String> {
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(format!(
            "a key holds no control character; U+{:04X} is at byte {at}",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Refuses a key that breaks a rule with [`Error::InvalidInput`] naming the key and the rule.
pub fn check_key(key: &str) -> Result<()> {
    key_rule(key).map_err(|reason| Error::invalid_input(key_what(key), reason))
}

/// How a key is named in an `InvalidInput` error.
fn key_what(key: &str) -> String {
    format!("document key '{}'", shorten(key))
}

/// Refuses a listing prefix that no key could start with: longer than a key, or
/// holding a control character, a leading `/`, an empty, `.` or `..` segment (the
/// last segment may be partial or empty, as in `scripts/` or `scripts/pi`).
pub fn check_prefix(prefix: &str) -> Result<()> {
    let refuse = |reason: String| {
        Error::invalid_input(format!("document prefix '{}'", shorten(prefix)), reason)
    };
    if prefix.len() > MAX_KEY_BYTES {
        return Err(refuse(format!(
            "a prefix is at most {MAX_KEY_BYTES} bytes long; this one is {} bytes",
            prefix.len()
        )));
    }
    check_characters(prefix).map_err(refuse)?;
    if prefix.starts_with('/') {
        return Err(refuse("keys never start with '/'".into()));
    }
    let segments: Vec<&str> = prefix.split('/').collect();
    let complete = &segments[..segments.len().saturating_sub(1)];
    for (i, segment) in complete.iter().enumerate() {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(refuse(format!(
                "segment {} is '{segment}', which no key has",
                i + 1
            )));
        }
    }
    Ok(())
}

/// The folders of a key, shortest first: `a/b/c` → `a`, `a/b`.
pub fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/').map(move |(at, _)| &key[..at])
}

/// The smallest string after every key inside the folder `folder/` (which ends in
/// `/`): the keys of a folder are exactly those in `[folder, folder_end(folder))`.
pub fn folder_end(folder: &str) -> String {
    let mut end = folder.strip_suffix('/').unwrap_or(folder).to_owned();
    // '0' is the byte after '/'.
    end.push('0');
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys() {
        for key in [
            "a",
            "scripts/pilot.fountain",
            "Café",
            "a/.hidden",
            "...",
            "a/..b",
            ".kgstorex/a",
            "x/.kgstore/a",
            " spaced ",
            "back\\slash",
            "日本/語",
        ] {
            assert_eq!(key_rule(key), Ok(()), "{key}");
        }
        assert!(key_rule(&"a".repeat(255)).is_ok());
        let long = format!(
            "{}/{}/{}/{}",
            "a".repeat(255),
            "b".repeat(255),
            "c".repeat(255),
            "d".repeat(255)
        );
        assert_eq!(long.len(), 1023);
        assert!(key_rule(&long).is_ok());
    }

    #[test]
    fn invalid_keys_name_their_rule() {
        for (key, rule) in [
            ("", "empty"),
            ("/abs", "start with '/'"),
            ("a/", "end with '/'"),
            ("a//b", "empty ('//')"),
            ("./a", "'.'"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a\0b", "U+0000"),
            ("a\nb", "U+000A"),
            ("a\u{7f}", "U+007F"),
            ("a\u{85}", "U+0085"),
            (".kgstore/x", "reserved"),
            (".kgstore", "reserved"),
        ] {
            let reason = key_rule(key).unwrap_err();
            assert!(reason.contains(rule), "{key:?}: {reason}");
        }
        let reason = key_rule(&"a".repeat(1025)).unwrap_err();
        assert!(reason.contains("1025 bytes"), "{reason}");
        let reason = key_rule(&format!("x/{}", "s".repeat(256))).unwrap_err();
        assert!(reason.contains("segment 2 is 256 bytes"), "{reason}");
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "a/b", "scripts/pi", ".kgstore"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["/a", "a//", "../", "a/./b", "a\0"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ancestors_and_folder_ends() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
        assert_eq!(folder_end("a/"), "a0");
        assert!("a/zzz" < folder_end("a/").as_str());
        assert!("a/\u{10FFFF}" < folder_end("a/").as_str());
        assert!("a0" >= folder_end("a/").as_str());
    }
}
