//! Turning command-line text into kgstore values, with clear errors.

use std::io::Read;
use std::path::Path;

use kgstore::{AttrEq, Direction, Error, RelationType, Result};
use serde_json::{Map, Value};

use crate::cli::{AttrArgs, DirectionArg};

/// A value written on the command line: JSON if it parses as JSON, else text.
/// `5` is a number, `true` a boolean, `"5"` and `rust` are strings.
pub(crate) fn loose_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// JSON read from the file at `path`, or from stdin for `-`. Text that is not UTF-8
/// or not JSON is bad input (exit 2) naming `subject`, as JSON given as an argument
/// is; only a file or stdin that cannot be read is an I/O error (exit 1).
pub(crate) fn json_from(path: &Path, subject: &str) -> Result<Value> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("<stdin>", e))?;
        bytes
    } else {
        std::fs::read(path).map_err(|e| Error::io(path, e))?
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Error::invalid_input(
            subject.to_owned(),
            format!(
                "is not UTF-8 (byte {} is not), and JSON text must be",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str(text)
        .map_err(|e| Error::invalid_input(subject.to_owned(), format!("is not JSON: {e}")))
}

/// `KEY=VALUE`, split at the first `=`.
fn key_value<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(Error::invalid_input(
            format!("{what} '{text}'"),
            "expected KEY=VALUE",
        )),
    }
}

/// The attributes `--attrs JSON` and `--attr KEY=VALUE` give, on top of `base`.
pub(crate) fn attributes(args: &AttrArgs, base: Map<String, Value>) -> Result<Map<String, Value>> {
    let mut attributes = match &args.attrs {
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::invalid_input(
                    "--attrs",
                    "must be a JSON object, e.g. {\"lang\": \"rust\"}",
                ));
            }
            Err(e) => {
                return Err(Error::invalid_input(
                    "--attrs",
                    format!("is not valid JSON: {e}"),
                ));
            }
        },
        None => base,
    };
    for pair in &args.attr {
        let (key, value) = key_value(pair, "--attr")?;
        attributes.insert(key.to_owned(), loose_value(value));
    }
    Ok(attributes)
}

/// `--where POINTER=VALUE`; the pointer may start with `/attributes` or be relative to it.
pub(crate) fn where_clause(text: &str) -> Result<AttrEq> {
    let (pointer, value) = key_value(text, "--where")?;
    if !pointer.starts_with('/') {
        return Err(Error::invalid_input(
            format!("--where '{text}'"),
            "the pointer must start with /attributes/ (or /), e.g. /attributes/lang=rust",
        ));
    }
    let pointer = match pointer.strip_prefix("/attributes") {
        Some(rest) if rest.starts_with('/') => rest,
        _ => pointer,
    };
    Ok(AttrEq::new(pointer, loose_value(value)))
}

/// A relation name.
pub(crate) fn relation(text: &str) -> Result<RelationType> {
    RelationType::parse(text)
}

/// Relation names.
pub(crate) fn relations(texts: &[String]) -> Result<Vec<RelationType>> {
    texts.iter().map(|t| relation(t)).collect()
}

/// The library's direction for the command line's.
pub(crate) fn direction(arg: DirectionArg) -> Direction {
    match arg {
        DirectionArg::Out => Direction::Out,
        DirectionArg::In => Direction::In,
        DirectionArg::Both => Direction::Both,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_values() {
        assert_eq!(loose_value("5"), json!(5));
        assert_eq!(loose_value("rust"), json!("rust"));
        assert_eq!(loose_value("\"5\""), json!("5"));
        assert_eq!(loose_value("[1, 2]"), json!([1, 2]));
        assert_eq!(loose_value(""), json!(""));
    }

    #[test]
    fn where_clauses() {
        assert_eq!(
            where_clause("/attributes/lang=rust").unwrap(),
            AttrEq::new("/lang", json!("rust"))
        );
        assert_eq!(
            where_clause("/lang=rust").unwrap(),
            AttrEq::new("/lang", json!("rust"))
        );
        assert_eq!(
            where_clause("/a/b=1").unwrap(),
            AttrEq::new("/a/b", json!(1))
        );
        assert!(where_clause("lang=rust").is_err());
        assert!(where_clause("/lang").is_err());
        assert!(where_clause("=x").is_err());
    }

    #[test]
    fn attribute_flags() {
        let args = AttrArgs {
            attr: vec!["n=1".into(), "s=x=y".into()],
            attrs: Some("{\"a\": true}".into()),
        };
        let attrs = attributes(&args, Map::new()).unwrap();
        assert_eq!(Value::Object(attrs), json!({"a": true, "n": 1, "s": "x=y"}));
        let bad = AttrArgs {
            attr: vec![],
            attrs: Some("[1]".into()),
        };
        assert!(attributes(&bad, Map::new()).is_err());
        let bad = AttrArgs {
            attr: vec!["novalue".into()],
            attrs: None,
        };
        assert!(attributes(&bad, Map::new()).is_err());
    }
}
