//! Schemas per event type: numbered versions of a JSON Schema for the events' data,
//! a compatibility mode that decides which new versions are accepted, and
//! validation of every append against the latest version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, Violation};
use crate::events::backend::EventLogRead;
use crate::events::compat::{self, Compatibility, SchemaChange};
use crate::events::kv;
use crate::events::model::check_event_type;
use crate::events::read::EventRead;
use crate::store::{Store, WriteTx};
use crate::timestamp::Timestamp;

/// A compiled schema, shared by the transactions that validate against it.
pub type Validator = Arc<jsonschema::Validator>;

/// One registered version of an event type's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersion {
    /// 1 for the first version, then 2, 3, ….
    pub version: u32,
    /// The JSON Schema of the events' data.
    pub schema: Value,
    /// When it was registered.
    pub registered_at: Timestamp,
}

/// An event type's schemas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSchema {
    /// The event type.
    pub event_type: String,
    /// Which new versions are accepted.
    pub compatibility: Compatibility,
    /// Every version, oldest first; appends are validated against the last.
    pub versions: Vec<SchemaVersion>,
}

impl EventSchema {
    /// The version appends are validated against.
    pub fn latest(&self) -> Option<&SchemaVersion> {
        self.versions.last()
    }
}

/// What checking (or registering) a schema version found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaCheck {
    /// The event type.
    pub event_type: String,
    /// The mode it was checked under.
    pub compatibility: Compatibility,
    /// The version it would get (or got); the latest version's number when unchanged.
    pub version: u32,
    /// Whether it is the same as the latest version (nothing to register).
    pub unchanged: bool,
    /// Every difference from the latest version.
    pub changes: Vec<SchemaChange>,
    /// The differences the mode forbids, each with the version it breaks.
    pub refused: Vec<(u32, SchemaChange)>,
}

impl SchemaCheck {
    /// Whether the mode accepts the version.
    pub fn is_compatible(&self) -> bool {
        self.refused.is_empty()
    }
}

/// Compiled schemas by their text, for the process's lifetime.
fn cache() -> &'static Mutex<HashMap<String, Validator>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Validator>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compiles a schema, refusing what is not a valid JSON Schema (remote references
/// are never fetched).
pub fn compile(event_type: &str, schema: &Value) -> Result<Validator> {
    let text = schema.to_string();
    if let Some(found) = cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&text)
    {
        return Ok(Arc::clone(found));
    }
    let compiled = Arc::new(crate::schema::compile_document(
        || format!("JSON Schema for event type '{event_type}'"),
        schema,
    )?);
    let mut cache = cache().lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= 512 {
        cache.clear();
    }
    cache.insert(text, Arc::clone(&compiled));
    Ok(compiled)
}

/// Every violation of `validator` by an event's `data`, with pointers under `/data`.
pub fn violations(
    validator: &jsonschema::Validator,
    subject: &str,
    data: &Value,
) -> Vec<Violation> {
    validator
        .iter_errors(data)
        .map(|e| {
            Violation::new(
                subject,
                format!("/data{}", e.instance_path().as_str()),
                crate::schema::clip(&e.to_string()),
            )
        })
        .collect()
}

pub(crate) fn get(r: &dyn EventLogRead, event_type: &str) -> Result<Option<EventSchema>> {
    kv::get(r, kv::SCHEMAS, event_type)
}

pub(crate) fn list(r: &dyn EventLogRead) -> Result<Vec<EventSchema>> {
    Ok(kv::all(r, kv::SCHEMAS, "")?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// The compiled latest schema of an event type, if it has one.
pub(crate) fn latest_validator(
    r: &dyn EventLogRead,
    event_type: &str,
) -> Result<Option<Validator>> {
    match get(r, event_type)?.as_ref().and_then(EventSchema::latest) {
        Some(latest) => compile(event_type, &latest.schema).map(Some),
        None => Ok(None),
    }
}

/// Checks `schema` as the next version of `event_type` under `mode` (the stored
/// mode when `None`).
fn check(
    existing: Option<&EventSchema>,
    event_type: &str,
    schema: &Value,
    mode: Option<Compatibility>,
) -> Result<SchemaCheck> {
    check_event_type(event_type)?;
    compile(event_type, schema)?;
    let compatibility = mode
        .or(existing.map(|e| e.compatibility))
        .unwrap_or_default();
    let versions: Vec<Value> = existing
        .map(|e| e.versions.iter().map(|v| v.schema.clone()).collect())
        .unwrap_or_default();
    let latest = existing.and_then(EventSchema::latest);
    let unchanged = latest.is_some_and(|l| l.schema == *schema);
    let changes = latest.map_or_else(Vec::new, |l| compat::diff(&l.schema, schema));
    let refused = if unchanged {
        Vec::new()
    } else {
        compat::refusals(compatibility, &versions, schema)
            .into_iter()
            .map(|(v, c)| (u32::try_from(v).unwrap_or(u32::MAX), c))
            .collect()
    };
    let latest_version = latest.map_or(0, |l| l.version);
    Ok(SchemaCheck {
        event_type: event_type.to_owned(),
        compatibility,
        version: if unchanged {
            latest_version
        } else {
            latest_version + 1
        },
        unchanged,
        changes,
        refused,
    })
}

/// The error refusing an incompatible version: every forbidden change with its pointer.
fn refusal(check: &SchemaCheck) -> Error {
    Error::Validation {
        violations: check
            .refused
            .iter()
            .map(|(version, change)| {
                Violation::new(
                    format!(
                        "schema version {} of event type '{}'",
                        check.version, check.event_type
                    ),
                    change.pointer.clone(),
                    format!(
                        "{} is not {} compatible with version {version}",
                        change.change, check.compatibility
                    ),
                )
            })
            .collect(),
    }
}

impl WriteTx<'_> {
    /// Registers `schema` as the next version of `event_type`'s schema, refused with
    /// [`Error::Validation`] naming each forbidden change and its JSON pointer if the
    /// type's compatibility mode does not allow it. `mode` sets the mode (kept for
    /// later versions); `None` keeps the stored one (`backward` for a new type).
    /// Registering the latest version again changes nothing.
    pub fn set_event_schema(
        &mut self,
        event_type: &str,
        schema: Value,
        mode: Option<Compatibility>,
    ) -> Result<SchemaCheck> {
        let existing = self.with_events(|r, _| get(r, event_type))?;
        let result = check(existing.as_ref(), event_type, &schema, mode)?;
        if !result.is_compatible() {
            return Err(refusal(&result));
        }
        let mut record = existing.unwrap_or_else(|| EventSchema {
            event_type: event_type.to_owned(),
            compatibility: result.compatibility,
            versions: Vec::new(),
        });
        record.compatibility = result.compatibility;
        if !result.unchanged {
            record.versions.push(SchemaVersion {
                version: result.version,
                schema,
                registered_at: self.now(),
            });
        }
        self.ev_write(|w| kv::put(w, kv::SCHEMAS, event_type, &record))?;
        if let Some(validators) = &mut self.events.validators {
            validators.remove(event_type);
        }
        Ok(result)
    }

    /// Removes every schema version of an event type; whether there were any. Its
    /// events are no longer validated.
    pub fn remove_event_schema(&mut self, event_type: &str) -> Result<bool> {
        check_event_type(event_type)?;
        let existed = self.with_events(|r, _| get(r, event_type))?.is_some();
        if existed {
            self.ev_write(|w| w.state_delete(kv::SCHEMAS, event_type))?;
            if let Some(validators) = &mut self.events.validators {
                validators.remove(event_type);
            }
        }
        Ok(existed)
    }
}

impl Store {
    /// Registers a schema version in its own transaction; see [`WriteTx::set_event_schema`].
    pub fn set_event_schema(
        &self,
        event_type: &str,
        schema: Value,
        mode: Option<Compatibility>,
    ) -> Result<SchemaCheck> {
        self.write(|tx| tx.set_event_schema(event_type, schema, mode))
    }

    /// Removes an event type's schemas in its own transaction.
    pub fn remove_event_schema(&self, event_type: &str) -> Result<bool> {
        self.write(|tx| tx.remove_event_schema(event_type))
    }

    /// Checks whether `schema` would be accepted as the next version of
    /// `event_type`'s schema, without registering it.
    pub fn check_event_schema(
        &self,
        event_type: &str,
        schema: &Value,
        mode: Option<Compatibility>,
    ) -> Result<SchemaCheck> {
        check_event_type(event_type)?;
        let existing = self.event_schema(event_type)?;
        check(existing.as_ref(), event_type, schema, mode)
    }
}
