//! Schema compatibility: a structural difference of two JSON Schemas in which each
//! change is classified by what it does to the set of documents accepted, and the
//! modes that decide which changes a new version may make.
//!
//! A change **widens** when the new schema accepts something the old one refused
//! (a type added, a bound relaxed, a required property dropped): data written under
//! the new version may not be readable by the old one, which breaks *forward*
//! compatibility. It **narrows** when the new schema refuses something the old one
//! accepted (a required property added, an enum value removed): old data may not be
//! readable by the new version, which breaks *backward* compatibility. A change whose
//! effect kgstore cannot decide (a `pattern` rewritten, a `$ref`, `not`, `if`) counts
//! as both. Cosmetic keywords (`title`, `description`, `examples`, `$comment`) never
//! count.
//!
//! The content-model rules follow the Confluent schema registry's, the reference
//! users know: adding a typed property to an *open* object (no
//! `additionalProperties: false`) narrows, because old data could hold that name
//! with any value; adding an optional property to a *closed* object widens. A
//! required property added together with a `default` is accepted in every mode, as
//! there.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Which changes a new schema version may make, compared with earlier versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    /// The new version reads data of the previous one: no narrowing change.
    #[default]
    Backward,
    /// Backward against every earlier version.
    BackwardTransitive,
    /// The previous version reads data of the new one: no widening change.
    Forward,
    /// Forward against every earlier version.
    ForwardTransitive,
    /// Both backward and forward against the previous version.
    Full,
    /// Full against every earlier version.
    FullTransitive,
    /// Any change.
    None,
}

impl Compatibility {
    /// Every mode.
    pub const ALL: [Compatibility; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    /// The mode's name, as in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "backward",
            Self::BackwardTransitive => "backward_transitive",
            Self::Forward => "forward",
            Self::ForwardTransitive => "forward_transitive",
            Self::Full => "full",
            Self::FullTransitive => "full_transitive",
            Self::None => "none",
        }
    }

    /// Whether every earlier version is compared, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// Whether the mode forbids a change with this effect.
    pub fn forbids(self, effect: Effect) -> bool {
        let (no_narrowing, no_widening) = match self {
            Self::Backward | Self::BackwardTransitive => (true, false),
            Self::Forward | Self::ForwardTransitive => (false, true),
            Self::Full | Self::FullTransitive => (true, true),
            Self::None => (false, false),
        };
        match effect {
            Effect::Neutral => false,
            Effect::Widens => no_widening,
            Effect::Narrows => no_narrowing,
            Effect::Both => no_widening || no_narrowing,
        }
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compatibility {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.replace('-', "_"))
            .ok_or_else(|| {
                Error::invalid_input(
                    format!("compatibility mode '{s}'"),
                    "expected backward, backward_transitive, forward, forward_transitive, \
                     full, full_transitive or none",
                )
            })
    }
}

/// What a change does to the set of accepted documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Accepts the same documents as far as compatibility goes.
    Neutral,
    /// Accepts more.
    Widens,
    /// Accepts fewer.
    Narrows,
    /// Accepts some more and some fewer, or kgstore cannot tell.
    Both,
}

/// One difference between two schema versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// JSON pointer into the schema document where the change is.
    pub pointer: String,
    /// What changed, in words.
    pub change: String,
    /// What it does to the accepted documents.
    pub effect: Effect,
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        let effect = match self.effect {
            Effect::Neutral => "neutral",
            Effect::Widens => "widens",
            Effect::Narrows => "narrows",
            Effect::Both => "widens and narrows",
        };
        write!(f, "{} at {pointer} ({effect})", self.change)
    }
}

/// Keywords that never change which documents are accepted.
const COSMETIC: [&str; 11] = [
    "title",
    "description",
    "examples",
    "$comment",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$id",
    "$schema",
    "$anchor",
];

/// Lower bounds (raising one narrows) and upper bounds (raising one widens).
const LOWER: [&str; 6] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "minContains",
];
const UPPER: [&str; 6] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "maxContains",
];

/// Keywords handled by dedicated rules below.
const HANDLED: [&str; 12] = [
    "type",
    "enum",
    "const",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "uniqueItems",
    "anyOf",
    "oneOf",
    "allOf",
    "format",
];

/// Appends a token to a JSON pointer, escaped.
fn join(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn as_object(schema: &Value) -> Map<String, Value> {
    match schema {
        Value::Object(map) => map.clone(),
        // `true` accepts everything, like `{}`; `false` nothing, like `{"not": {}}`.
        Value::Bool(false) => [("not".to_owned(), Value::Object(Map::new()))]
            .into_iter()
            .collect(),
        _ => Map::new(),
    }
}

/// Whether a schema accepts everything (`true`, `{}`, or only cosmetic keywords).
fn accepts_all(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.keys().all(|k| COSMETIC.contains(&k.as_str())),
        _ => false,
    }
}

fn type_set(map: &Map<String, Value>) -> Option<BTreeSet<String>> {
    let mut set: BTreeSet<String> = match map.get("type")? {
        Value::String(t) => [t.clone()].into_iter().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    if set.contains("number") {
        set.remove("integer");
    }
    Some(set)
}

fn value_set(value: Option<&Value>) -> Option<Vec<&Value>> {
    match value? {
        Value::Array(items) => Some(items.iter().collect()),
        _ => None,
    }
}

struct Diff {
    changes: Vec<SchemaChange>,
}

impl Diff {
    fn push(&mut self, pointer: String, change: String, effect: Effect) {
        self.changes.push(SchemaChange {
            pointer,
            change,
            effect,
        });
    }

    /// Compares the schema `old` with `new`, both at `pointer`.
    fn node(&mut self, old: &Value, new: &Value, pointer: &str) {
        if old == new {
            return;
        }
        match (accepts_all(old), accepts_all(new)) {
            (true, true) => return,
            (true, false) if *new == Value::Bool(false) => {
                return self.push(
                    pointer.into(),
                    "schema changed to accept nothing".into(),
                    Effect::Narrows,
                );
            }
            (false, true) if *old == Value::Bool(false) => {
                return self.push(
                    pointer.into(),
                    "schema changed to accept anything".into(),
                    Effect::Widens,
                );
            }
            _ => {}
        }
        let (old, new) = (as_object(old), as_object(new));
        self.types(&old, &new, pointer);
        self.enums(&old, &new, pointer);
        self.bounds(&old, &new, pointer);
        self.required(&old, &new, pointer);
        self.properties(&old, &new, pointer);
        self.sub_schema(&old, &new, pointer, "additionalProperties");
        self.items(&old, &new, pointer);
        self.flags(&old, &new, pointer);
        self.alternatives(&old, &new, pointer);
        self.opaque(&old, &new, pointer);
    }

    fn types(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let at = join(pointer, "type");
        match (type_set(old), type_set(new)) {
            (Some(a), Some(b)) if a != b => {
                let added: Vec<&String> = b.difference(&a).collect();
                let removed: Vec<&String> = a.difference(&b).collect();
                // `integer` inside a kept `number` is not a change.
                let removed: Vec<&String> = removed
                    .into_iter()
                    .filter(|t| !(t.as_str() == "integer" && b.contains("number")))
                    .collect();
                if !added.is_empty() {
                    self.push(
                        at.clone(),
                        format!("type extended with {}", list(&added)),
                        Effect::Widens,
                    );
                }
                if !removed.is_empty() {
                    self.push(
                        at,
                        format!("type {} removed", list(&removed)),
                        Effect::Narrows,
                    );
                }
            }
            (None, Some(b)) => self.push(
                at,
                format!("type restricted to {}", list(&b)),
                Effect::Narrows,
            ),
            (Some(a), None) => self.push(
                at,
                format!("type restriction {} removed", list(&a)),
                Effect::Widens,
            ),
            _ => {}
        }
    }

    fn enums(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let at = join(pointer, "enum");
        match (value_set(old.get("enum")), value_set(new.get("enum"))) {
            (Some(a), Some(b)) => {
                if b.iter().any(|v| !a.contains(v)) {
                    self.push(at.clone(), "enum extended".into(), Effect::Widens);
                }
                if a.iter().any(|v| !b.contains(v)) {
                    self.push(at, "enum value removed".into(), Effect::Narrows);
                }
            }
            (None, Some(_)) => self.push(at, "enum added".into(), Effect::Narrows),
            (Some(_), None) => self.push(at, "enum removed".into(), Effect::Widens),
            (None, None) => {}
        }
        let at = join(pointer, "const");
        match (old.get("const"), new.get("const")) {
            (Some(a), Some(b)) if a != b => {
                self.push(at, "const value changed".into(), Effect::Both)
            }
            (None, Some(_)) => self.push(at, "const added".into(), Effect::Narrows),
            (Some(_), None) => self.push(at, "const removed".into(), Effect::Widens),
            _ => {}
        }
    }

    fn bounds(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        for (keywords, lower) in [(&LOWER, true), (&UPPER, false)] {
            for keyword in keywords.iter() {
                let at = join(pointer, keyword);
                let (a, b) = (
                    old.get(*keyword).and_then(Value::as_f64),
                    new.get(*keyword).and_then(Value::as_f64),
                );
                let effect = match (a, b) {
                    (Some(a), Some(b)) if a == b => continue,
                    (Some(a), Some(b)) => {
                        if (b > a) == lower {
                            Effect::Narrows
                        } else {
                            Effect::Widens
                        }
                    }
                    (None, Some(_)) => Effect::Narrows,
                    (Some(_), None) => Effect::Widens,
                    (None, None) => continue,
                };
                let what = match (a, b) {
                    (Some(a), Some(b)) => format!(
                        "{keyword} {} from {a} to {b}",
                        if b > a { "increased" } else { "decreased" }
                    ),
                    (None, Some(b)) => format!("{keyword} {b} added"),
                    _ => format!("{keyword} removed"),
                };
                self.push(at, what, effect);
            }
        }
        for keyword in ["multipleOf", "pattern", "format"] {
            let at = join(pointer, keyword);
            match (old.get(keyword), new.get(keyword)) {
                (Some(a), Some(b)) if a != b => {
                    self.push(at, format!("{keyword} changed"), Effect::Both)
                }
                (None, Some(_)) => self.push(at, format!("{keyword} added"), Effect::Narrows),
                (Some(_), None) => self.push(at, format!("{keyword} removed"), Effect::Widens),
                _ => {}
            }
        }
    }

    fn required(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let names = |m: &Map<String, Value>| -> BTreeSet<String> {
            value_set(m.get("required"))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let (a, b) = (names(old), names(new));
        let at = join(pointer, "required");
        for added in b.difference(&a) {
            let has_default = new
                .get("properties")
                .and_then(|p| p.get(added))
                .and_then(|p| p.get("default"))
                .is_some();
            if has_default {
                self.push(
                    at.clone(),
                    format!("required property '{added}' with a default added"),
                    Effect::Neutral,
                );
            } else {
                self.push(
                    at.clone(),
                    format!("required property '{added}' added"),
                    Effect::Narrows,
                );
            }
        }
        for removed in a.difference(&b) {
            self.push(
                at.clone(),
                format!("property '{removed}' no longer required"),
                Effect::Widens,
            );
        }
    }

    /// What an object accepts for a property it does not list: its
    /// `additionalProperties` (absent: anything).
    fn extra_schema(map: &Map<String, Value>) -> Value {
        map.get("additionalProperties")
            .cloned()
            .unwrap_or(Value::Bool(true))
    }

    fn properties(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let empty = Map::new();
        let props = |m: &Map<String, Value>| -> Map<String, Value> {
            m.get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty)
                .clone()
        };
        let (a, b) = (props(old), props(new));
        let base = join(pointer, "properties");
        for (name, new_schema) in &b {
            let at = join(&base, name);
            match a.get(name) {
                Some(old_schema) => self.node(old_schema, new_schema, &at),
                None => {
                    let before = Self::extra_schema(old);
                    if before == Value::Bool(false) {
                        self.push(
                            at,
                            format!("property '{name}' added to a closed content model"),
                            Effect::Widens,
                        );
                    } else if accepts_all(&before) && accepts_all(new_schema) {
                        // An empty schema added to an open model accepts what it did.
                    } else if accepts_all(&before) {
                        self.push(
                            at,
                            format!(
                                "property '{name}' added to an open content model (earlier \
                                 data may hold '{name}' with any value)"
                            ),
                            Effect::Narrows,
                        );
                    } else {
                        self.node(&before, new_schema, &at);
                    }
                }
            }
        }
        for (name, old_schema) in &a {
            if b.contains_key(name) {
                continue;
            }
            let at = join(&base, name);
            let after = Self::extra_schema(new);
            if after == Value::Bool(false) {
                self.push(
                    at,
                    format!("property '{name}' removed from a closed content model"),
                    Effect::Narrows,
                );
            } else {
                self.node(old_schema, &after, &at);
            }
        }
    }

    fn sub_schema(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        pointer: &str,
        keyword: &str,
    ) {
        let absent = Value::Bool(true);
        let (a, b) = (
            old.get(keyword).unwrap_or(&absent),
            new.get(keyword).unwrap_or(&absent),
        );
        let at = join(pointer, keyword);
        match (a, b) {
            _ if a == b => {}
            (Value::Bool(true), Value::Bool(false)) => {
                self.push(at, format!("{keyword} closed"), Effect::Narrows)
            }
            (Value::Bool(false), Value::Bool(true)) => {
                self.push(at, format!("{keyword} opened"), Effect::Widens)
            }
            _ => self.node(a, b, &at),
        }
    }

    fn items(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        match (old.get("items"), new.get("items")) {
            (a, b) if a == b => {}
            (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => self.push(
                join(pointer, "items"),
                "tuple items changed".into(),
                Effect::Both,
            ),
            _ => self.sub_schema(old, new, pointer, "items"),
        }
    }

    fn flags(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let on = |m: &Map<String, Value>| m.get("uniqueItems") == Some(&Value::Bool(true));
        match (on(old), on(new)) {
            (false, true) => self.push(
                join(pointer, "uniqueItems"),
                "uniqueItems required".into(),
                Effect::Narrows,
            ),
            (true, false) => self.push(
                join(pointer, "uniqueItems"),
                "uniqueItems no longer required".into(),
                Effect::Widens,
            ),
            _ => {}
        }
    }

    fn alternatives(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        // More alternatives accept more; more conjuncts accept fewer.
        for (keyword, more) in [
            ("anyOf", Effect::Widens),
            ("oneOf", Effect::Widens),
            ("allOf", Effect::Narrows),
        ] {
            let fewer = if more == Effect::Widens {
                Effect::Narrows
            } else {
                Effect::Widens
            };
            let at = join(pointer, keyword);
            match (value_set(old.get(keyword)), value_set(new.get(keyword))) {
                (Some(a), Some(b)) => {
                    if b.iter().any(|v| !a.contains(v)) {
                        self.push(at.clone(), format!("{keyword} alternative added"), more);
                    }
                    if a.iter().any(|v| !b.contains(v)) {
                        self.push(at, format!("{keyword} alternative removed"), fewer);
                    }
                }
                (None, Some(_)) => self.push(at, format!("{keyword} added"), Effect::Both),
                (Some(_), None) => self.push(at, format!("{keyword} removed"), Effect::Both),
                (None, None) => {}
            }
        }
    }

    /// Every other keyword: a change kgstore cannot classify counts both ways.
    fn opaque(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, pointer: &str) {
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            let k = key.as_str();
            if COSMETIC.contains(&k)
                || LOWER.contains(&k)
                || UPPER.contains(&k)
                || HANDLED.contains(&k)
                || matches!(k, "multipleOf" | "pattern")
            {
                continue;
            }
            if old.get(k) != new.get(k) {
                self.push(
                    join(pointer, k),
                    format!("'{k}' changed (kgstore cannot prove such a change compatible)"),
                    Effect::Both,
                );
            }
        }
    }
}

fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every difference between two schemas, with pointers into them.
pub fn diff(old: &Value, new: &Value) -> Vec<SchemaChange> {
    let mut diff = Diff {
        changes: Vec::new(),
    };
    diff.node(old, new, "");
    diff.changes
}

/// The changes `mode` forbids when `new` follows `earlier` (oldest first), each with
/// the version it is compared with (1-based).
pub fn refusals(mode: Compatibility, earlier: &[Value], new: &Value) -> Vec<(usize, SchemaChange)> {
    if mode == Compatibility::None || earlier.is_empty() {
        return Vec::new();
    }
    let compared: Vec<(usize, &Value)> = if mode.transitive() {
        earlier
            .iter()
            .enumerate()
            .map(|(i, v)| (i + 1, v))
            .collect()
    } else {
        vec![(earlier.len(), &earlier[earlier.len() - 1])]
    };
    compared
        .into_iter()
        .flat_map(|(version, old)| {
            diff(old, new)
                .into_iter()
                .filter(|c| mode.forbids(c.effect))
                .map(move |c| (version, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn effects(old: Value, new: Value) -> Vec<(String, Effect)> {
        diff(&old, &new)
            .into_iter()
            .map(|c| (c.pointer, c.effect))
            .collect()
    }

    #[test]
    fn classic_changes_are_classified() {
        let base =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        let mut v = base.clone();
        v["required"] = json!(["a", "b"]);
        v["properties"]["b"] = json!({"type": "integer"});
        let found = effects(base.clone(), v);
        assert!(
            found.contains(&("/required".into(), Effect::Narrows)),
            "{found:?}"
        );
        assert!(
            found.contains(&("/properties/b".into(), Effect::Narrows)),
            "{found:?}"
        );
        let mut v = base.clone();
        v["properties"]["a"]["type"] = json!(["string", "null"]);
        assert_eq!(
            effects(base.clone(), v),
            [("/properties/a/type".into(), Effect::Widens)]
        );
        let mut v = base.clone();
        v["description"] = json!("cosmetic");
        assert!(diff(&base, &v).is_empty());
    }

    #[test]
    fn content_models_follow_the_registry_rules() {
        let closed = json!({"type": "object", "properties": {}, "additionalProperties": false});
        let mut added = closed.clone();
        added["properties"]["x"] = json!({"type": "string"});
        assert_eq!(
            effects(closed, added),
            [("/properties/x".into(), Effect::Widens)]
        );
        let open = json!({"type": "object"});
        let empty = json!({"type": "object", "properties": {"x": {}}});
        assert!(diff(&open, &empty).is_empty());
        let typed = json!({"type": "object", "properties": {"x": {"type": "string"}}});
        assert_eq!(
            effects(open.clone(), typed.clone()),
            [("/properties/x".into(), Effect::Narrows)]
        );
        assert_eq!(
            effects(typed, open),
            [("/properties/x/type".into(), Effect::Widens)]
        );
    }

    #[test]
    fn modes_forbid_the_right_directions() {
        use Compatibility::*;
        assert!(Backward.forbids(Effect::Narrows) && !Backward.forbids(Effect::Widens));
        assert!(Forward.forbids(Effect::Widens) && !Forward.forbids(Effect::Narrows));
        assert!(Full.forbids(Effect::Widens) && Full.forbids(Effect::Narrows));
        assert!(!None.forbids(Effect::Both));
        assert!(!FullTransitive.forbids(Effect::Neutral));
        for mode in Compatibility::ALL {
            assert_eq!(mode.as_str().parse::<Compatibility>().unwrap(), mode);
        }
    }

    #[test]
    fn transitive_modes_compare_every_version() {
        let v1 =
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 10}}});
        let v2 =
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 20}}});
        let v3 =
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 15}}});
        // v3 narrows v2 but widens v1.
        assert_eq!(
            refusals(Compatibility::Forward, &[v1.clone(), v2.clone()], &v3).len(),
            0
        );
        let found = refusals(Compatibility::ForwardTransitive, &[v1, v2], &v3);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 1);
        assert_eq!(found[0].1.pointer, "/properties/a/maxLength");
    }
}
