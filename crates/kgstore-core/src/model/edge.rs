//! Edges: typed, directed relations between two nodes.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::RelationType;
use crate::timestamp::Timestamp;
use crate::validate;

/// An edge's identity: `from -[relation_type]-> to`.
///
/// Keys order by `from`, then relation name, then `to` (byte order), which is
/// the order edges are listed and paginated in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeKey {
    /// The source node's name.
    pub from: String,
    /// The relation.
    pub relation_type: RelationType,
    /// The target node's name.
    pub to: String,
}

impl EdgeKey {
    /// A key from its parts.
    pub fn new(
        from: impl Into<String>,
        relation_type: RelationType,
        to: impl Into<String>,
    ) -> Self {
        Self {
            from: from.into(),
            relation_type,
            to: to.into(),
        }
    }
}

impl fmt::Display for EdgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -[{}]-> {}",
            validate::shorten(&self.from),
            self.relation_type,
            validate::shorten(&self.to)
        )
    }
}

/// A directed, typed edge between two existing nodes.
///
/// ```
/// use kgstore_core::{Edge, RelationType};
///
/// let edge = Edge::new("kgstore", RelationType::DependsOn, "serde")?.with_weight(2.0);
/// assert_eq!(edge.key().to_string(), "kgstore -[depends_on]-> serde");
/// # Ok::<(), kgstore_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// The source node's name.
    pub from: String,
    /// The relation.
    pub relation_type: RelationType,
    /// The target node's name.
    pub to: String,
    /// Structured properties; validated against the relation type's JSON Schema, if any.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Timestamps, version, weight and descriptive metadata.
    #[serde(default)]
    pub metadata: EdgeMetadata,
}

/// An edge's metadata. The store owns `created_at`, `updated_at` and `version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeMetadata {
    /// When the edge was created (set by the store).
    #[serde(default)]
    pub created_at: Timestamp,
    /// When the edge was last written (set by the store).
    #[serde(default)]
    pub updated_at: Timestamp,
    /// 1 on create, +1 on every update (set by the store); 0 means never stored.
    #[serde(default)]
    pub version: u64,
    /// The edge's weight for weighted paths: finite, ≥ 0; 1.0 unless set.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// How sure the source is of the relation, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Whether the relation also holds from `to` to `from` (traversals follow it both ways).
    #[serde(default)]
    pub bidirectional: bool,
    /// Where the relation came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn default_weight() -> f64 {
    1.0
}

impl Default for EdgeMetadata {
    fn default() -> Self {
        Self {
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            weight: default_weight(),
            confidence: None,
            bidirectional: false,
            source: None,
        }
    }
}

impl Edge {
    /// A new edge; the endpoint names are checked at once (their existence is checked on write).
    pub fn new(
        from: impl Into<String>,
        relation_type: RelationType,
        to: impl Into<String>,
    ) -> Result<Self> {
        let edge = Edge {
            from: from.into(),
            relation_type,
            to: to.into(),
            attributes: Map::new(),
            metadata: EdgeMetadata::default(),
        };
        let violations = validate::edge(&edge);
        if violations.is_empty() {
            Ok(edge)
        } else {
            Err(Error::Validation { violations })
        }
    }

    /// The edge's identity.
    pub fn key(&self) -> EdgeKey {
        EdgeKey {
            from: self.from.clone(),
            relation_type: self.relation_type.clone(),
            to: self.to.clone(),
        }
    }

    /// Whether this edge has the given key.
    pub fn has_key(&self, key: &EdgeKey) -> bool {
        self.from == key.from && self.relation_type == key.relation_type && self.to == key.to
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

    /// Sets the weight.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.metadata.weight = weight;
        self
    }

    /// Sets the confidence.
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.metadata.confidence = Some(confidence);
        self
    }

    /// Marks the relation as holding both ways.
    pub fn bidirectional(mut self) -> Self {
        self.metadata.bidirectional = true;
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.metadata.source = Some(source.into());
        self
    }
}
