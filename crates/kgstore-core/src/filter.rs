//! Filters, pagination and directions for queries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{Edge, EdgeKey, Node, RelationType};
use crate::timestamp::Timestamp;
use crate::validate;

/// Largest page a listing returns.
pub const MAX_PAGE_LIMIT: usize = 100_000;
/// Page size used when none is given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Equality of the value at a JSON pointer inside `attributes` with a given value.
///
/// The pointer is relative to the attributes object: `/lang` matches
/// `{"lang": "rust"}`; `/owner/team` reaches into nested objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrEq {
    /// JSON pointer (RFC 6901) into the attributes object.
    pub pointer: String,
    /// The value it must equal (JSON equality; `1` and `1.0` differ).
    pub value: Value,
}

impl AttrEq {
    /// `pointer` must lead to `value`.
    pub fn new(pointer: impl Into<String>, value: Value) -> Self {
        Self {
            pointer: pointer.into(),
            value,
        }
    }

    /// Whether the attributes hold `value` at `pointer`.
    pub fn matches(&self, attributes: &Map<String, Value>) -> bool {
        lookup(attributes, &self.pointer) == Some(&self.value)
    }
}

/// The value at a JSON pointer inside an attributes object.
pub fn lookup<'a>(attributes: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let (first, tail) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let key = first.replace("~1", "/").replace("~0", "~");
    let value = attributes.get(&key)?;
    if tail.is_empty() {
        Some(value)
    } else {
        value.pointer(tail)
    }
}

/// Which nodes a listing returns. Every field that is set must match.
///
/// ```
/// use kgstore_core::NodeFilter;
/// use serde_json::json;
///
/// let filter = NodeFilter::default().of_type("crate").with_tag("popular").where_eq("/lang", json!("rust"));
/// assert_eq!(filter.node_types, ["crate"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeFilter {
    /// The node's type is one of these (any type if empty).
    pub node_types: Vec<String>,
    /// The node's name starts with this.
    pub name_prefix: Option<String>,
    /// The node has every one of these tags.
    pub tags: Vec<String>,
    /// The node's status is this.
    pub status: Option<String>,
    /// Every one of these attribute equalities holds.
    pub attributes: Vec<AttrEq>,
    /// The node was written at or after this time.
    pub updated_since: Option<Timestamp>,
    /// The name or an observation contains this text, ignoring case.
    pub text: Option<String>,
}

impl NodeFilter {
    /// Adds a node type to the accepted ones.
    pub fn of_type(mut self, node_type: impl Into<String>) -> Self {
        self.node_types.push(node_type.into());
        self
    }

    /// Requires a name prefix.
    pub fn with_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Requires a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Requires a status.
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Requires an attribute equality.
    pub fn where_eq(mut self, pointer: impl Into<String>, value: Value) -> Self {
        self.attributes.push(AttrEq::new(pointer, value));
        self
    }

    /// Requires the node to have been written at or after `since`.
    pub fn updated_since(mut self, since: Timestamp) -> Self {
        self.updated_since = Some(since);
        self
    }

    /// Requires the text in the name or an observation, ignoring case.
    pub fn containing(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Refuses malformed filters (bad type identifiers, bad JSON pointers).
    pub fn check(&self) -> Result<()> {
        for node_type in &self.node_types {
            validate::identifier(node_type).map_err(|reason| {
                Error::invalid_input(
                    format!("node type filter '{}'", validate::shorten(node_type)),
                    reason,
                )
            })?;
        }
        check_pointers(&self.attributes)
    }

    /// Whether a node passes the filter. This is the reference semantics every
    /// backend must agree with; backends may use it to finish filtering in memory.
    pub fn matches(&self, node: &Node) -> bool {
        (self.node_types.is_empty() || self.node_types.contains(&node.node_type))
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| node.name.starts_with(p.as_str()))
            && self.tags.iter().all(|t| node.has_tag(t))
            && self
                .status
                .as_ref()
                .is_none_or(|s| node.metadata.status.as_ref() == Some(s))
            && self.attributes.iter().all(|a| a.matches(&node.attributes))
            && self
                .updated_since
                .is_none_or(|since| node.metadata.updated_at >= since)
            && self.text.as_ref().is_none_or(|text| {
                let needle = text.to_lowercase();
                node.name.to_lowercase().contains(&needle)
                    || node
                        .observations
                        .iter()
                        .any(|o| o.to_lowercase().contains(&needle))
            })
    }
}

/// Which edges a listing returns. Every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeFilter {
    /// The edge starts at this node.
    pub from: Option<String>,
    /// The edge ends at this node.
    pub to: Option<String>,
    /// The edge's relation is one of these (any relation if empty).
    pub relation_types: Vec<RelationType>,
    /// The edge's weight is at least this.
    pub min_weight: Option<f64>,
    /// Every one of these attribute equalities holds.
    pub attributes: Vec<AttrEq>,
}

impl EdgeFilter {
    /// Requires the source node.
    pub fn from_node(mut self, name: impl Into<String>) -> Self {
        self.from = Some(name.into());
        self
    }

    /// Requires the target node.
    pub fn to_node(mut self, name: impl Into<String>) -> Self {
        self.to = Some(name.into());
        self
    }

    /// Adds a relation type to the accepted ones.
    pub fn of_relation(mut self, relation: RelationType) -> Self {
        self.relation_types.push(relation);
        self
    }

    /// Requires a minimum weight.
    pub fn with_min_weight(mut self, weight: f64) -> Self {
        self.min_weight = Some(weight);
        self
    }

    /// Requires an attribute equality.
    pub fn where_eq(mut self, pointer: impl Into<String>, value: Value) -> Self {
        self.attributes.push(AttrEq::new(pointer, value));
        self
    }

    /// Refuses malformed filters (bad relation names, a non-finite weight, bad JSON pointers).
    pub fn check(&self) -> Result<()> {
        for rel in &self.relation_types {
            rel.check().map_err(|reason| {
                Error::invalid_input(format!("relation filter '{rel}'"), reason)
            })?;
        }
        if let Some(w) = self.min_weight
            && !w.is_finite()
        {
            return Err(Error::invalid_input(
                "minimum weight",
                format!("{w} is not finite"),
            ));
        }
        check_pointers(&self.attributes)
    }

    /// Whether an edge passes the filter (the reference semantics, as for [`NodeFilter::matches`]).
    pub fn matches(&self, edge: &Edge) -> bool {
        self.from.as_ref().is_none_or(|f| *f == edge.from)
            && self.to.as_ref().is_none_or(|t| *t == edge.to)
            && (self.relation_types.is_empty() || self.relation_types.contains(&edge.relation_type))
            && self.min_weight.is_none_or(|w| edge.metadata.weight >= w)
            && self.attributes.iter().all(|a| a.matches(&edge.attributes))
    }
}

fn check_pointers(attributes: &[AttrEq]) -> Result<()> {
    for attr in attributes {
        validate::json_pointer(&attr.pointer)
            .and_then(|()| {
                if attr.pointer.is_empty() {
                    Err("must name an attribute, not the whole object".to_owned())
                } else {
                    Ok(())
                }
            })
            .map_err(|reason| {
                Error::invalid_input(
                    format!("attribute pointer '{}'", validate::shorten(&attr.pointer)),
                    reason,
                )
            })?;
    }
    Ok(())
}

/// Which way edges are followed from a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Edges leaving the node (and bidirectional edges arriving, in traversals).
    #[default]
    Out,
    /// Edges arriving at the node (and bidirectional edges leaving, in traversals).
    In,
    /// Both.
    Both,
}

impl FromStr for Direction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "out" => Ok(Self::Out),
            "in" => Ok(Self::In),
            "both" => Ok(Self::Both),
            _ => Err(Error::invalid_input(
                format!("direction '{}'", validate::shorten(s)),
                "expected out, in or both",
            )),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Out => "out",
            Self::In => "in",
            Self::Both => "both",
        })
    }
}

/// An opaque position in a listing: pass it back to get the next page.
///
/// A cursor holds the last key returned, so a listing resumed from it neither
/// skips nor repeats entities that existed throughout, whatever is inserted or
/// deleted in between.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor after a node.
    pub fn after_node(name: &str) -> Self {
        Cursor(format!("n{}", hex(name)))
    }

    /// The cursor after an edge.
    pub fn after_edge(key: &EdgeKey) -> Self {
        Cursor(format!(
            "e{}.{}.{}",
            hex(&key.from),
            hex(key.relation_type.as_str()),
            hex(&key.to)
        ))
    }

    /// The node name this cursor resumes after.
    pub fn node_name(&self) -> Result<String> {
        self.0
            .strip_prefix('n')
            .and_then(unhex)
            .ok_or_else(|| self.refused("not a node cursor"))
    }

    /// The edge key this cursor resumes after.
    pub fn edge_key(&self) -> Result<EdgeKey> {
        let parts: Option<Vec<String>> = self
            .0
            .strip_prefix('e')
            .and_then(|rest| rest.split('.').map(unhex).collect::<Option<_>>());
        match parts.as_deref() {
            Some([from, rel, to]) => {
                let relation_type =
                    RelationType::parse(rel).map_err(|_| self.refused("not an edge cursor"))?;
                Ok(EdgeKey {
                    from: from.clone(),
                    relation_type,
                    to: to.clone(),
                })
            }
            _ => Err(self.refused("not an edge cursor")),
        }
    }

    /// A cursor with this text (other kinds of listings make their own).
    pub(crate) fn from_text(text: String) -> Self {
        Cursor(text)
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn refused(&self, reason: &str) -> Error {
        Error::invalid_input(format!("cursor '{}'", validate::shorten(&self.0)), reason)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(Cursor(s.to_owned()))
    }
}

pub(crate) fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// How much of a listing to return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// At most this many items (1 to [`MAX_PAGE_LIMIT`]).
    pub limit: usize,
    /// Resume after this position; the first page if `None`.
    pub cursor: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    /// Resumes after `cursor` (keeping the limit).
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Refuses a zero or too large limit.
    pub fn check(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_PAGE_LIMIT {
            return Err(Error::invalid_input(
                "page limit",
                format!("{} is not between 1 and {MAX_PAGE_LIMIT}", self.limit),
            ));
        }
        Ok(())
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in key order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this is the last page.
    pub next_cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let name = "a.b\u{0}/ü";
        assert_eq!(Cursor::after_node(name).node_name().unwrap(), name);
        let key = EdgeKey::new("x.y", RelationType::Calls, "z");
        assert_eq!(Cursor::after_edge(&key).edge_key().unwrap(), key);
        for bad in ["", "n0", "nzz", "e00", "x61", "nff"] {
            assert!(Cursor(bad.into()).node_name().is_err(), "{bad}");
        }
        assert!(Cursor::after_node("a").edge_key().is_err());
        assert!(Cursor::after_edge(&key).node_name().is_err());
    }

    #[test]
    fn attribute_lookup_follows_pointers() {
        let attrs = json!({"a": {"b": [1, 2]}, "x/y": 1, "t~": 2});
        let attrs = attrs.as_object().unwrap();
        assert_eq!(lookup(attrs, "/a/b/1"), Some(&json!(2)));
        assert_eq!(lookup(attrs, "/x~1y"), Some(&json!(1)));
        assert_eq!(lookup(attrs, "/t~0"), Some(&json!(2)));
        assert_eq!(lookup(attrs, "/missing"), None);
        assert_eq!(lookup(attrs, ""), None);
    }

    #[test]
    fn text_filter_ignores_case() {
        let node = Node::new("Serde", "crate")
            .unwrap()
            .with_observation("Fast JSON");
        assert!(NodeFilter::default().containing("json").matches(&node));
        assert!(NodeFilter::default().containing("SERDE").matches(&node));
        assert!(!NodeFilter::default().containing("yaml").matches(&node));
    }
}
