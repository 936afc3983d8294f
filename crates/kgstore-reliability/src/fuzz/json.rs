//! Node and edge JSON: decode → encode → decode must give the same thing.

use kgstore::{Edge, Node};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Finding, Outcome};

fn round_trip<T>(target: &'static str, data: &[u8]) -> Result<Option<T>, Finding>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(first) = serde_json::from_slice::<T>(data) else {
        return Ok(None);
    };
    for (style, encoded) in [
        ("compact", serde_json::to_vec(&first)),
        ("pretty", serde_json::to_vec_pretty(&first)),
    ] {
        let encoded = encoded.map_err(|e| {
            Finding::new(
                target,
                format!("a decoded value does not encode ({style}): {e}"),
            )
        })?;
        let second: T = serde_json::from_slice(&encoded).map_err(|e| {
            Finding::new(
                target,
                format!(
                    "the {style} encoding does not decode: {e}\n  encoding: {}",
                    String::from_utf8_lossy(&encoded)
                ),
            )
        })?;
        if second != first {
            return Err(Finding::new(
                target,
                format!(
                    "decode → encode ({style}) → decode changed the value:\n  first:  {first:?}\n  second: {second:?}"
                ),
            ));
        }
    }
    Ok(Some(first))
}

/// Decodes the bytes as a node; if they are one, encoding and decoding again
/// (compact and pretty, the jsonfs file form) must give the same node.
pub fn node_json(data: &[u8]) -> Outcome {
    round_trip::<Node>("node_json", data).map(|_| ())
}

/// Decodes the bytes as an edge; if they are one, encoding and decoding again
/// must give the same edge with the same key.
pub fn edge_json(data: &[u8]) -> Outcome {
    if let Some(edge) = round_trip::<Edge>("edge_json", data)? {
        let key = edge.key();
        let text = key.to_string();
        if !text.contains(edge.relation_type.as_str()) {
            return Err(Finding::new(
                "edge_json",
                format!("the key {text} lost its relation"),
            ));
        }
    }
    Ok(())
}
