//! Relation types: the seed vocabulary plus custom identifiers.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::validate;

macro_rules! relation_types {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// The type of an edge: one of the seed vocabulary or a custom identifier.
        ///
        /// Serialized as its snake_case name (`"depends_on"`, or the custom
        /// identifier itself). Equality, ordering and hashing go by that name, so
        /// `Custom("calls")` equals `Calls`; [`RelationType::parse`] always gives the
        /// built-in variant for a built-in name.
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub enum RelationType {
            $($(#[$doc])* $variant,)*
            /// Any other relation, named by an identifier `[a-z][a-z0-9_]*` of at most 64 bytes.
            ///
            /// The name is shared: cloning a custom relation type (as a backend does
            /// for every edge it hands out) increments a reference count and copies
            /// no bytes. Build one with `RelationType::Custom("owned_by".into())` (from
            /// a `&str` or a `String`), or better with [`RelationType::parse`], which
            /// also checks the name.
            Custom(Arc<str>),
        }

        impl RelationType {
            /// Every built-in relation type, in declaration order.
            pub const BUILT_IN: &'static [RelationType] = &[$(RelationType::$variant,)*];

            /// The relation's name, as serialized.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Custom(name) => name,
                }
            }

            fn built_in(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

relation_types! {
    /// `imports`: a module imports another.
    Imports => "imports",
    /// `inherits_from`: a type inherits from another.
    InheritsFrom => "inherits_from",
    /// `calls`: a function calls another.
    Calls => "calls",
    /// `implements`: a type implements an interface.
    Implements => "implements",
    /// `depends_on`: something needs another thing to work or to build.
    DependsOn => "depends_on",
    /// `tested_by`: code is tested by a test.
    TestedBy => "tested_by",
    /// `interacts_with`: two things interact.
    InteractsWith => "interacts_with",
    /// `generates`: something produces another.
    Generates => "generates",
    /// `consumes`: something uses up another.
    Consumes => "consumes",
    /// `balances`: something offsets another.
    Balances => "balances",
    /// `counters`: something works against another.
    Counters => "counters",
    /// `extends`: something builds upon another.
    Extends => "extends",
    /// `composed_of`: a whole is made of a part.
    ComposedOf => "composed_of",
    /// `connects_to`: a link between two things.
    ConnectsTo => "connects_to",
    /// `provides`: something offers another.
    Provides => "provides",
    /// `requires`: something needs another.
    Requires => "requires",
    /// `constrains`: something limits another.
    Constrains => "constrains",
    /// `validates`: something checks another.
    Validates => "validates",
    /// `derived_from`: something comes from another.
    DerivedFrom => "derived_from",
    /// `correlates_with`: two things vary together.
    CorrelatesWith => "correlates_with",
    /// `supports`: evidence for a claim.
    Supports => "supports",
    /// `contradicts`: evidence against a claim.
    Contradicts => "contradicts",
    /// `confirms`: a confirmation of a claim.
    Confirms => "confirms",
    /// `sources`: where something comes from.
    Sources => "sources",
    /// `references`: a mention of another thing.
    References => "references",
    /// `describes`: a description of another thing.
    Describes => "describes",
    /// `exemplifies`: an example of another thing.
    Exemplifies => "exemplifies",
    /// `supersedes`: a replacement of another thing.
    Supersedes => "supersedes",
    /// `relates_to`: a relation without more precise meaning.
    RelatesTo => "relates_to",
    /// `contains`: a container holds another thing.
    Contains => "contains",
}

impl RelationType {
    /// Parses a relation name: a built-in name gives its variant, any other valid
    /// identifier gives [`RelationType::Custom`]; anything else is refused.
    pub fn parse(name: &str) -> Result<Self> {
        if let Some(known) = Self::built_in(name) {
            return Ok(known);
        }
        validate::identifier(name).map_err(|reason| {
            Error::invalid_input(
                format!("relation type '{}'", validate::shorten(name)),
                reason,
            )
        })?;
        Ok(Self::Custom(Arc::from(name)))
    }

    /// Whether this is one of the seed vocabulary's relation types.
    pub fn is_built_in(&self) -> bool {
        Self::built_in(self.as_str()).is_some()
    }

    /// Checks a [`RelationType::Custom`] name (built-in variants are always valid).
    pub fn check(&self) -> std::result::Result<(), String> {
        match self {
            Self::Custom(name) => validate::identifier(name),
            _ => Ok(()),
        }
    }
}

impl PartialEq for RelationType {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RelationType {}

impl PartialOrd for RelationType {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RelationType {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for RelationType {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for RelationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RelationType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for RelationType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RelationType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        RelationType::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_round_trips_by_name() {
        assert_eq!(RelationType::BUILT_IN.len(), 30);
        for rel in RelationType::BUILT_IN {
            let parsed = RelationType::parse(rel.as_str()).unwrap();
            assert_eq!(&parsed, rel);
            assert!(!matches!(parsed, RelationType::Custom(_)));
            let json = serde_json::to_string(rel).unwrap();
            assert_eq!(json, format!("\"{}\"", rel.as_str()));
        }
    }

    #[test]
    fn custom_names_are_identifiers_and_equal_built_ins_by_name() {
        let custom = RelationType::parse("owned_by").unwrap();
        assert_eq!(custom, RelationType::Custom("owned_by".into()));
        assert_eq!(RelationType::Custom("calls".into()), RelationType::Calls);
        for bad in ["", "Calls", "1x", "a-b", "a b", &"a".repeat(65)] {
            let err = RelationType::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(serde_json::from_str::<RelationType>("\"DROP TABLE\"").is_err());
    }

    #[test]
    fn a_custom_relation_copy_and_one_made_from_a_string_equal_the_parsed_one() {
        let custom = RelationType::parse("owned_by").unwrap();
        let copy = custom.clone();
        assert_eq!(copy.as_str(), "owned_by");
        let from_string = RelationType::Custom(String::from("owned_by").into());
        assert_eq!(from_string, custom);
    }

    #[test]
    fn orders_by_name() {
        assert!(RelationType::Calls < RelationType::Contains);
        assert!(RelationType::Custom("aaa".into()) < RelationType::Balances);
    }
}
