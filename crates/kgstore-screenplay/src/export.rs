//! Giving the text back: a script byte for byte as imported, or one scene.

use kgstore_core::{Direction, DocumentRead, Error, GraphRead, RelationType, Result};

use crate::model::{Placement, SceneAttrs, ScriptAttrs, attrs};
use crate::names;

/// The text of script `file` of series `slug`, byte for byte as imported
/// (checked against the SHA-256 the script node records).
pub fn script_text<R: GraphRead + DocumentRead>(
    reader: &R,
    slug: &str,
    file: &str,
) -> Result<Vec<u8>> {
    let node = reader.get_node(&names::script(slug, file))?;
    let script: ScriptAttrs = attrs(&node)?;
    let bytes = reader.read_document(&script.document)?;
    check_hash(&script.document, &bytes, &script.sha256)?;
    Ok(bytes)
}

/// The scene node named by `spec`: its full name (`scene:<series>/<file>#<id>`)
/// or `<file>#<id>` within series `slug`.
pub fn resolve_scene(reader: &impl GraphRead, slug: &str, spec: &str) -> Result<String> {
    let name = if spec.starts_with("scene:") {
        spec.to_owned()
    } else {
        let Some((file, id)) = spec.rsplit_once('#') else {
            return Err(Error::invalid_input(
                format!("scene {spec:?}"),
                "name it by its node name (scene:<series>/<file>#<id>) or as <file>#<id>",
            ));
        };
        let id: u64 = id.parse().map_err(|_| {
            Error::invalid_input(
                format!("scene {spec:?}"),
                "the part after # must be the scene's id, a number",
            )
        })?;
        names::scene(slug, file, id)
    };
    match reader.find_node(&name)? {
        Some(node) if node.node_type == names::SCENE => Ok(name),
        Some(_) => Err(Error::invalid_input(
            format!("node '{name}'"),
            "is not a scene",
        )),
        None => Err(Error::node_not_found(name)),
    }
}

/// One scene's text, byte for byte as it stands in its script.
pub fn scene_text<R: GraphRead + DocumentRead>(reader: &R, scene: &str) -> Result<String> {
    let node = reader.get_node(scene)?;
    let attrs_: SceneAttrs = attrs(&node)?;
    let script_name = names::script(&attrs_.series, &attrs_.file);
    let edge = reader
        .edges_of(scene, Direction::In, &[RelationType::Contains])?
        .into_iter()
        .find(|e| e.from == script_name)
        .ok_or_else(|| Error::invalid_input(format!("scene '{scene}'"), "no script contains it"))?;
    let placement: Placement = serde_json::from_value(serde_json::Value::Object(edge.attributes))
        .map_err(|e| {
        Error::invalid_input(
            format!("scene '{scene}'"),
            format!("its placement is unreadable: {e}"),
        )
    })?;
    let bytes = script_text(reader, &attrs_.series, &attrs_.file)?;
    let key = names::document(&attrs_.series, &attrs_.file);
    let slice = bytes.get(placement.start..placement.end).ok_or_else(|| {
        Error::corrupt(
            format!("<document '{key}'>"),
            format!("scene '{scene}' lies outside it"),
        )
    })?;
    check_hash(&key, slice, &attrs_.sha256)?;
    String::from_utf8(slice.to_vec()).map_err(|_| {
        Error::corrupt(
            format!("<document '{key}'>"),
            format!("scene '{scene}' is not UTF-8"),
        )
    })
}

fn check_hash(key: &str, bytes: &[u8], expected: &str) -> Result<()> {
    let got = names::sha256_hex(bytes);
    if got == expected {
        Ok(())
    } else {
        Err(Error::corrupt(
            format!("<document '{key}'>"),
            format!(
                "its SHA-256 is {got}, but the graph recorded {expected}: it was changed outside a screenplay import"
            ),
        ))
    }
}
