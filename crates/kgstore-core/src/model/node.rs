//! Nodes: named, typed entities with observations, attributes and dependencies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use crate::validate;

/// A node of the graph, identified by its unique `name`.
///
/// Build one with [`Node::new`] and the `with_*` methods; the store sets the
/// timestamps and the version when it writes it. A node whose `metadata.version`
/// is 0 has never been stored.
///
/// ```
/// use kgstore_core::Node;
/// use serde_json::json;
///
/// let node = Node::new("serde", "crate")?
///     .with_observation("A serialization framework")
///     .with_attribute("license", json!("MIT OR Apache-2.0"))
///     .with_dependency("serde_derive")
///     .with_tag("popular");
/// assert_eq!(node.metadata.version, 0);
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The node's identity: 1–512 bytes of UTF-8, no control characters.
    pub name: String,
    /// The node's type: an identifier `[a-z][a-z0-9_]*` of at most 64 bytes.
    pub node_type: String,
    /// Free-text facts about the node, in order.
    #[serde(default)]
    pub observations: Vec<String>,
    /// Structured properties; validated against the node type's JSON Schema, if any.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Names of the nodes this one depends on; they must exist and form no cycle.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Timestamps, version and descriptive metadata.
    #[serde(default)]
    pub metadata: NodeMetadata,
}

/// A node's metadata. The store owns `created_at`, `updated_at` and `version`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeMetadata {
    /// When the node was created (set by the store).
    #[serde(default)]
    pub created_at: Timestamp,
    /// When the node was last written (set by the store).
    #[serde(default)]
    pub updated_at: Timestamp,
    /// 1 on create, +1 on every update (set by the store); 0 means never stored.
    #[serde(default)]
    pub version: u64,
    /// Who wrote the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Where the node's content came from (a file, a URL, a tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Labels; the store keeps them sorted and without duplicates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A free status label such as `active` or `deprecated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Node {
    /// A new node; the name and type are checked at once.
    pub fn new(name: impl Into<String>, node_type: impl Into<String>) -> Result<Self> {
        let node = Node {
            name: name.into(),
            node_type: node_type.into(),
            observations: Vec::new(),
            attributes: Map::new(),
            dependencies: Vec::new(),
            metadata: NodeMetadata::default(),
        };
        let subject = validate::node_subject(&node.name);
        let mut violations = Vec::new();
        if let Err(message) = validate::name(&node.name) {
            violations.push(crate::Violation::new(subject.clone(), "/name", message));
        }
        if let Err(message) = validate::identifier(&node.node_type) {
            violations.push(crate::Violation::new(subject, "/node_type", message));
        }
        if violations.is_empty() {
            Ok(node)
        } else {
            Err(Error::Validation { violations })
        }
    }

    /// Adds an observation.
    pub fn with_observation(mut self, text: impl Into<String>) -> Self {
        self.observations.push(text.into());
        self
    }

    /// Sets an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: Value) -> Self {
        self.attributes.insert(key.into(), value);
        self
    }

    /// Replaces all attributes.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    /// Adds a dependency on the node named `name`.
    pub fn with_dependency(mut self, name: impl Into<String>) -> Self {
        self.dependencies.push(name.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.metadata.tags.push(tag.into());
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.metadata.status = Some(status.into());
        self
    }

    /// Sets the author.
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.metadata.author = Some(author.into());
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.metadata.source = Some(source.into());
        self
    }

    /// Whether the node has the tag.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.metadata.tags.iter().any(|t| t == tag)
    }
}
