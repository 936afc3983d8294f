//! The jsonfs key-to-file-name encoding.

use kgstore::jsonfs::names::{
    EXTENSION, decode_edge_stem, decode_name, decode_node_stem, edge_path, edge_stem, encode_name,
    is_entity_path, is_hashed, node_path, node_stem,
};
use kgstore::{EdgeKey, RelationType, validate};

use super::{Finding, Input, Outcome};

const TARGET: &str = "file_names";

/// Windows device names, which no file name may start with (before its first `.`).
const DEVICES: [&str; 4] = ["con", "prn", "aux", "nul"];

fn fail(message: String) -> Outcome {
    Err(Finding::new(TARGET, message))
}

/// What every encoded name and stem must be: one safe path component.
fn check_component(what: &str, key: &str, component: &str) -> Outcome {
    let bad = if component.is_empty() {
        Some("is empty")
    } else if component == "." || component == ".." || component.starts_with('.') {
        Some("starts with a dot")
    } else if component.contains(['/', '\\', ':', '\0']) {
        Some("holds a separator or NUL")
    } else if component
        .bytes()
        .any(|b| b.is_ascii_control() || !b.is_ascii())
    {
        Some("holds a control or non-ASCII byte")
    } else if component.bytes().any(|b| b.is_ascii_uppercase()) {
        Some("holds an upper-case letter (not case-fold-safe)")
    } else {
        None
    };
    match bad {
        Some(reason) => fail(format!("{what} {component:?} of {key:?} {reason}")),
        None => Ok(()),
    }
}

fn check_device(what: &str, key: &str, component: &str) -> Outcome {
    let base = component.split('.').next().unwrap_or(component);
    let device = DEVICES.contains(&base)
        || (base.len() == 4
            && (base.starts_with("com") || base.starts_with("lpt"))
            && base.as_bytes().get(3).is_some_and(u8::is_ascii_digit));
    if device {
        return fail(format!(
            "{what} {component:?} of {key:?} is a Windows device name"
        ));
    }
    Ok(())
}

/// A file name (stem and extension) fits common file systems.
fn check_file_name(what: &str, key: &str, stem: &str) -> Outcome {
    check_component(what, key, stem)?;
    check_device(what, key, stem)?;
    let file = format!("{stem}{EXTENSION}");
    if file.len() > 255 {
        return fail(format!("{what} of {key:?} is {} bytes long", file.len()));
    }
    Ok(())
}

fn check_path(what: &str, key: &str, path: &str) -> Outcome {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != 3 || !is_entity_path(path) {
        return fail(format!(
            "{what} {path:?} of {key:?} is not a recognised entity path"
        ));
    }
    for part in parts {
        check_component(what, key, part)?;
    }
    Ok(())
}

/// Checks one name: the encoding reverses, and the stems and paths are safe.
fn check_name(key: &str) -> Outcome {
    let encoded = encode_name(key);
    check_component("the encoding", key, &encoded)?;
    check_device("the encoding", key, &encoded)?;
    if decode_name(&encoded).as_deref() != Some(key) {
        return fail(format!(
            "decode(encode({key:?})) = {:?}, encoded {encoded:?}",
            decode_name(&encoded)
        ));
    }
    if validate::name(key).is_err() {
        return Ok(());
    }
    let stem = node_stem(key);
    check_file_name("the node stem", key, &stem)?;
    if !is_hashed(&stem) && decode_node_stem(&stem).as_deref() != Some(key) {
        return fail(format!("the node stem {stem:?} does not decode to {key:?}"));
    }
    check_path("the node path", key, &node_path(key))
}

fn check_edge(key: &EdgeKey) -> Outcome {
    let text = key.to_string();
    let stem = edge_stem(key);
    check_file_name("the edge stem", &text, &stem)?;
    if !is_hashed(&stem) && decode_edge_stem(&stem).as_ref() != Some(key) {
        return fail(format!("the edge stem {stem:?} does not decode to {text}"));
    }
    check_path("the edge path", &text, &edge_path(key))
}

/// Splits the bytes into keys and checks the encoding on each of them, on edges
/// between them, on any text as a would-be encoding (decoding it never panics and
/// only a canonical spelling decodes), and that distinct keys never share a file.
pub fn file_names(data: &[u8]) -> Outcome {
    // The raw bytes as a would-be encoded name.
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(name) = decode_name(text)
        && encode_name(&name) != text
    {
        return fail(format!(
            "{text:?} decodes to {name:?}, which encodes otherwise"
        ));
    }
    let mut input = Input::new(data);
    let relation = match input.byte() % 3 {
        0 => RelationType::DependsOn,
        1 => RelationType::parse("x_y").unwrap_or(RelationType::RelatesTo),
        _ => RelationType::RelatesTo,
    };
    let rest = input.rest();
    let keys: Vec<String> = rest
        .split(|b| *b == 0xff)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    for key in &keys {
        check_name(key)?;
    }
    let valid: Vec<&String> = keys.iter().filter(|k| validate::name(k).is_ok()).collect();
    for pair in valid.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        check_edge(&EdgeKey::new(a.clone(), relation.clone(), b.clone()))?;
        if a != b {
            for (what, left, right) in [
                ("node stem", node_stem(a), node_stem(b)),
                ("encoding", encode_name(a), encode_name(b)),
            ] {
                if left.to_lowercase() == right.to_lowercase() {
                    return fail(format!(
                        "{a:?} and {b:?} share the {what} {left:?} (up to case)"
                    ));
                }
            }
        }
    }
    Ok(())
}
