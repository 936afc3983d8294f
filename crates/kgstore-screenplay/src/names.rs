//! The names of the graph's nodes and the keys of its documents, derived from
//! the series' name, the script's file name, and the names scripts use.
//!
//! | node | name |
//! |---|---|
//! | series | `series:<series>` |
//! | script | `script:<series>/<file>` |
//! | scene | `scene:<series>/<file>#<id>` |
//! | character | `character:<series>/<NAME>` |
//! | location | `location:<series>/<LOCATION>` |
//!
//! `<series>` is the series' slug ([`slug`]), `<file>` the script's file name as
//! it is, `<NAME>` and `<LOCATION>` canonical (upper case, white space
//! collapsed). A scene's `<id>` is the ordinal it had when its script was first
//! imported; scenes added later get the script's next unused number, so an id
//! is never reused and never changes while the scene lives.

use kgstore_core::validate::MAX_NAME_BYTES;
use kgstore_core::{Error, Result};
use sha2::{Digest, Sha256};

/// Node type of a series.
pub const SERIES: &str = "series";
/// Node type of a script (one Fountain file).
pub const SCRIPT: &str = "script";
/// Node type of a scene.
pub const SCENE: &str = "scene";
/// Node type of a character (one per series).
pub const CHARACTER: &str = "character";
/// Node type of a location (one per series).
pub const LOCATION: &str = "location";

/// Relation from a character to a scene they speak in.
pub const SPEAKS_IN: &str = "speaks_in";
/// Relation from a scene to its location.
pub const SET_IN: &str = "set_in";
/// Relation between two characters who speak in the same scenes (bidirectional,
/// weighted by how many scenes).
pub const APPEARS_WITH: &str = "appears_with";
/// Relation from a scene to the next scene of its script.
pub const FOLLOWED_BY: &str = "followed_by";

/// The folder of the scripts' documents: `scripts/<series>/<file>`.
pub const SCRIPTS_FOLDER: &str = "scripts";
/// The folder of scene embeddings: `blobs/embeddings/<model>/<sha256>.f32`, an
/// LFS object on `git://` stores (the default LFS pattern is `blobs/**`).
pub const EMBEDDINGS_FOLDER: &str = "blobs/embeddings";

/// The longest slug a series may have, in bytes.
pub const MAX_SLUG_BYTES: usize = 128;

/// A series' slug: its name in lower case, each run of characters that are not
/// letters or digits made one `-`, trimmed of `-` (`The Night Desk` →
/// `the-night-desk`, `Amélie's Café` → `amélie-s-café`). Names with the same
/// slug name the same series.
pub fn slug(series: &str) -> Result<String> {
    let mut out = String::with_capacity(series.len());
    let mut dash = false;
    for c in series.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    if out.is_empty() {
        return Err(Error::invalid_input(
            format!("series name {series:?}"),
            "has no letter or digit to name it by",
        ));
    }
    if out.len() > MAX_SLUG_BYTES {
        return Err(Error::invalid_input(
            format!("series name {:?}", kgstore_core::validate::shorten(series)),
            format!("is too long: its slug may have at most {MAX_SLUG_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// Checks a script's file name: it becomes a segment of a document key and part
/// of node names, so 1–255 bytes, no `/`, no control character, not `.` or `..`.
pub fn check_file_name(file: &str) -> Result<()> {
    let reason = if file.is_empty() || file.len() > 255 {
        Some("must be 1 to 255 bytes long".to_owned())
    } else if file == "." || file == ".." {
        Some("cannot be `.` or `..`".to_owned())
    } else if file.contains('/') {
        Some("cannot hold `/`".to_owned())
    } else {
        file.chars()
            .find(|c| c.is_control())
            .map(|c| format!("holds the control character {c:?}"))
    };
    match reason {
        Some(reason) => Err(Error::invalid_input(
            format!("script file name {file:?}"),
            reason,
        )),
        None => Ok(()),
    }
}

/// The series node's name.
pub fn series(slug: &str) -> String {
    format!("series:{slug}")
}

/// The script node's name.
pub fn script(slug: &str, file: &str) -> String {
    format!("script:{slug}/{file}")
}

/// A scene node's name.
pub fn scene(slug: &str, file: &str, id: u64) -> String {
    format!("{}{id}", scene_prefix(slug, file))
}

/// The prefix of the node names of a script's scenes (`scene:<slug>/<file>#`).
/// A longer file name may share it (`a#b.fountain`): match `file` too.
pub fn scene_prefix(slug: &str, file: &str) -> String {
    format!("scene:{slug}/{file}#")
}

/// A character node's name (`canonical` is the canonical name).
pub fn character(slug: &str, canonical: &str) -> String {
    fit(format!("character:{slug}/{}", clean(canonical)))
}

/// A location node's name (`canonical` is the canonical location).
pub fn location(slug: &str, canonical: &str) -> String {
    fit(format!("location:{slug}/{}", clean(canonical)))
}

/// The document key of a script's text.
pub fn document(slug: &str, file: &str) -> String {
    format!("{SCRIPTS_FOLDER}/{slug}/{file}")
}

/// The prefix every node name of a kind in a series starts with.
pub fn prefix(kind: &str, slug: &str) -> String {
    format!("{kind}:{slug}/")
}

/// The scene id at the end of a scene node's name.
pub fn scene_id(name: &str) -> Option<u64> {
    name.rsplit_once('#').and_then(|(_, id)| id.parse().ok())
}

/// The script node's name a scene node's name belongs to.
pub fn script_of_scene(name: &str) -> Option<String> {
    let rest = name.strip_prefix("scene:")?;
    let (script, _) = rest.rsplit_once('#')?;
    Some(format!("script:{script}"))
}

/// What follows `<kind>:<slug>/` in a name (a file, a character or a location).
pub fn tail<'a>(name: &'a str, kind: &str, slug: &str) -> &'a str {
    name.strip_prefix(&prefix(kind, slug)).unwrap_or(name)
}

/// The document key of a scene embedding.
pub fn embedding(model: &str, sha256: &str) -> String {
    format!("{EMBEDDINGS_FOLDER}/{model}/{sha256}.f32")
}

/// Checks an embedding model's name: it becomes a document key segment, so
/// 1–64 bytes of ASCII letters, digits, `.`, `_` and `-`, not `.` or `..`.
pub fn check_model(model: &str) -> Result<()> {
    let ok = !model.is_empty()
        && model.len() <= 64
        && model != "."
        && model != ".."
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            format!("embedding model {model:?}"),
            "must be 1 to 64 ASCII letters, digits, '.', '_' or '-' (and not . or ..)",
        ))
    }
}

/// Control characters (a text may hold any) replaced, for names.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// A name cut to kgstore's limit: a longer one keeps its first bytes and ends in
/// `~` and 16 hex digits of the SHA-256 of the whole, so it stays unique.
fn fit(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let mut cut = MAX_NAME_BYTES - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = name[..cut].to_owned();
    out.push('~');
    for b in digest.iter().take(8) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The SHA-256 of some bytes, as 64 lower-case hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` is 64 lower-case hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("The Night Desk").unwrap(), "the-night-desk");
        assert_eq!(slug("  Amélie's  Café!! ").unwrap(), "amélie-s-café");
        assert_eq!(slug("AC/DC").unwrap(), "ac-dc");
        assert_eq!(slug("24").unwrap(), "24");
        assert!(slug("!!!").is_err());
        assert!(slug(&"x".repeat(129)).is_err());
        assert_eq!(slug(&"x".repeat(128)).unwrap().len(), 128);
    }

    #[test]
    fn file_names() {
        assert!(check_file_name("S01E01 - Pilot #1.fountain").is_ok());
        for bad in ["", ".", "..", "a/b", "a\nb", &"x".repeat(256)] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_and_odd_names_fit() {
        let long = "A".repeat(2000);
        let a = character("s", &long);
        let b = character("s", &format!("{long}B"));
        assert!(a.len() <= MAX_NAME_BYTES && b.len() <= MAX_NAME_BYTES);
        assert_ne!(a, b);
        assert!(kgstore_core::validate::name(&a).is_ok());
        let multibyte = "É".repeat(400);
        assert!(kgstore_core::validate::name(&location("s", &multibyte)).is_ok());
        assert!(kgstore_core::validate::name(&location("s", "A\u{7}B")).is_ok());
    }

    #[test]
    fn scene_names_parse_back() {
        let name = scene("night", "a#b.fountain", 12);
        assert_eq!(scene_id(&name), Some(12));
        assert_eq!(
            script_of_scene(&name).unwrap(),
            script("night", "a#b.fountain")
        );
    }
}
