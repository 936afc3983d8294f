//! The seeded workload the crash harness runs: transaction `g` of seed `s` is
//! always the same operations on the same state, so the memory backend replaying
//! it is the model the crashed store is compared with.
//!
//! Transaction 0 registers a schema for counters, creates four counters holding
//! [`COUNTER_TOTAL`] between them and a `ledger` node. Every later transaction is
//! one of:
//! - a **group** (most): two to four nodes `g{g}-{i}` in a dependency chain with
//!   chained edges and an edge to the previous group, an update of the previous
//!   group's first node, an edge update in the group before it, the cascading
//!   deletion of groups at least [`LIFETIME`] transactions old, sometimes an edge
//!   deletion, the deletion of old solo nodes, and a counter transfer;
//! - a **solo** node `s{g}` alone (a one-entity commit);
//! - a **transfer** alone: two counters and the ledger, updated together;
//! - a **note**: one document `notes/n{g % 8}.txt` written (created or replaced)
//!   and nothing else — on a store without events (see [`apply_without_events`])
//!   the one-document commit of the JSON-files backend.
//!
//! Counters move together in one transaction, so their sum is [`COUNTER_TOTAL`]
//! in every committed state: a partly visible transaction shows at once.
//!
//! Documents go with the graph: a group writes `groups/g{g}/notes.md` (and now and
//! then a streamed blob of [`BLOB_SIZE`] bytes), replaces the previous group's
//! notes, and its old groups' documents are deleted with them; a solo transaction
//! writes `solo/s{g}.txt`. The crash check compares every document's bytes too.
//! On a backend that holds no documents (it answers `Unsupported`; every backend
//! kgstore ships holds them) the workload leaves them out and draws the same random numbers,
//! so its graph is the same.
//!
//! On a store that keeps events (see [`keeps_events`]; not the git backend), every
//! transaction also appends one event `w{g}` to the stream [`EVENTS`] (with the
//! lane's prefix before both),
//! expecting the stream's version to be `g` (so a lost or repeated commit is
//! refused on the spot), and transaction 0 turns the change feed on: from
//! transaction 1, every graph and document change is recorded in `$changes` in the
//! same commit.
//! Both streams keep their newest events only (retention), so the log's payloads
//! stay bounded while its positions keep running.

use std::io::{self, Read};

use kgstore::events::EventRead;
use kgstore::events::{CHANGES_STREAM, ExpectedVersion, NewEvent, Retention};
use kgstore::{
    DocumentRead, Edge, EdgeKey, Error, ErrorKind, GraphRead, Node, OnDependents, RelationType,
    Result, SchemaTarget, Store, WriteOptions, WriteTx,
};
use serde_json::{Value, json};

use crate::rng::Rng;

/// How many counters there are.
pub const COUNTERS: u64 = 4;
/// What the counters hold together, in every committed state.
pub const COUNTER_TOTAL: i64 = 1000;
/// A group is deleted this many transactions after it was written.
pub const LIFETIME: u64 = 4;
/// A solo node is deleted (by a later group) this many transactions after it was written.
pub const SOLO_LIFETIME: u64 = 8;
/// How many transactions back a group looks for leftovers to delete.
const CATCH_UP: u64 = 16;
/// The size of the occasional streamed blob (over SQLite's chunk size).
pub const BLOB_SIZE: usize = 300_000;

/// The key of group `g`'s notes.
pub fn notes_key(g: u64) -> String {
    Lane::SOLE.notes_key(g)
}

/// The key of group `g`'s blob, when it has one.
pub fn blob_key(g: u64) -> String {
    Lane::SOLE.blob_key(g)
}

/// The node every transfer updates.
pub const LEDGER: &str = "ledger";
/// The stream every transaction appends one event to.
pub const EVENTS: &str = "workload";

/// The name of counter `i`.
pub fn counter_name(i: u64) -> String {
    Lane::SOLE.counter(i)
}

/// The name of node `i` of group `g`.
pub fn group_node(g: u64, i: u64) -> String {
    Lane::SOLE.group_node(g, i)
}

/// A copy of the workload under its own names, so that several writers can run
/// it side by side on one store: every node name starts with the lane's prefix
/// (counters, ledger and groups included); the counters' schema is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lane(pub &'static str);

impl Lane {
    /// The lane of a writer alone: no prefix.
    pub const SOLE: Lane = Lane("");

    /// The lane's prefix.
    pub fn prefix(self) -> &'static str {
        self.0
    }

    /// The name of counter `i`.
    pub fn counter(self, i: u64) -> String {
        format!("{}counter-{i}", self.0)
    }

    /// The name of node `i` of group `g`.
    pub fn group_node(self, g: u64, i: u64) -> String {
        format!("{}g{g}-{i}", self.0)
    }

    /// The node every transfer updates.
    pub fn ledger(self) -> String {
        format!("{}{LEDGER}", self.0)
    }

    /// The key of group `g`'s notes (documents' keys start with the prefix too).
    pub fn notes_key(self, g: u64) -> String {
        format!("{}groups/g{g}/notes.md", self.0)
    }

    /// The key of group `g`'s blob, when it has one.
    pub fn blob_key(self, g: u64) -> String {
        format!("{}groups/g{g}/blob.bin", self.0)
    }

    /// The key of the solo document of transaction `g`.
    pub fn solo_key(self, g: u64) -> String {
        format!("{}solo/s{g}.txt", self.0)
    }

    /// The key of the note transaction `g` writes (eight keys, written over and over).
    pub fn note_key(self, g: u64) -> String {
        format!("{}notes/n{}.txt", self.0, g % 8)
    }

    /// The name of the solo node of transaction `g`.
    pub fn solo(self, g: u64) -> String {
        format!("{}s{g}", self.0)
    }

    /// The stream every transaction of the lane appends one event to.
    pub fn events_stream(self) -> String {
        format!("{}{EVENTS}", self.0)
    }

    /// Applies transaction `g` of seed `seed` in `tx`, under this lane's names.
    pub fn apply(self, tx: &mut WriteTx<'_>, seed: u64, g: u64) -> Result<()> {
        apply_in(tx, seed, g, self)
    }
}

/// What kind of transaction `g` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Transaction 0: schema, counters, ledger and a first group.
    Setup,
    /// Several nodes and edges, an update, deletions and a transfer.
    Group,
    /// One new node alone.
    Solo,
    /// A counter transfer alone.
    Transfer,
    /// One document written alone.
    Note,
}

/// The kind of transaction `g` of seed `seed`.
pub fn kind(seed: u64, g: u64) -> Kind {
    if g == 0 {
        return Kind::Setup;
    }
    match Rng::derive(seed, g).below(8) {
        0 => Kind::Solo,
        1 => Kind::Transfer,
        2 => Kind::Note,
        _ => Kind::Group,
    }
}

const RELATIONS: [&str; 4] = ["calls", "contains", "relates_to", "moves"];

/// The relation of the edge from node `i` to node `i + 1` of group `g`.
fn chain_relation(seed: u64, g: u64, i: u64) -> Result<RelationType> {
    let pick = Rng::derive(seed ^ 0x5eed, g * 16 + i).index(RELATIONS.len());
    RelationType::parse(RELATIONS[pick])
}

/// How many nodes group `g` has.
fn group_size(seed: u64, g: u64) -> u64 {
    2 + Rng::derive(seed ^ 0x512e, g).below(3)
}

/// Whether `store`'s backend keeps events (the git backend does not).
pub fn keeps_events(store: &Store) -> Result<bool> {
    holds_events(store)
}

/// Whether the store `reader` reads keeps events: a backend without them answers
/// `Unsupported`.
fn holds_events(reader: &impl EventRead) -> Result<bool> {
    match reader.last_position() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(false),
        Err(e) => Err(e),
    }
}

/// Applies transaction `g` of seed `seed` in `tx`; on a store that keeps events,
/// its event too (and, in transaction 0, the change feed and retention).
pub fn apply(tx: &mut WriteTx<'_>, seed: u64, g: u64) -> Result<()> {
    apply_in(tx, seed, g, Lane::SOLE)
}

/// Applies transaction `g` of seed `seed` in `tx` without its event (and
/// transaction 0 without turning the change feed on), as on a store that keeps
/// none: a note is then one document written and nothing else.
pub fn apply_without_events(tx: &mut WriteTx<'_>, seed: u64, g: u64) -> Result<()> {
    apply_with(tx, seed, g, Lane::SOLE, false)
}

fn apply_in(tx: &mut WriteTx<'_>, seed: u64, g: u64, lane: Lane) -> Result<()> {
    let events = holds_events(tx)?;
    apply_with(tx, seed, g, lane, events)
}

fn apply_with(tx: &mut WriteTx<'_>, seed: u64, g: u64, lane: Lane, events: bool) -> Result<()> {
    let docs = holds_documents(tx)?;
    let mut rng = Rng::derive(seed, g);
    if events {
        tx.append(
            &lane.events_stream(),
            ExpectedVersion::Exact(g),
            [NewEvent::new(
                "workload.committed",
                json!({"g": g, "kind": format!("{:?}", kind(seed, g))}),
            )
            .with_id(format!("{}w{g}", lane.prefix()))],
        )?;
    }
    match kind(seed, g) {
        Kind::Setup => {
            if events {
                tx.set_change_feed(true)?;
                // Retention keeps the log's payloads bounded (removed events stay as
                // identities: positions must still run without a gap).
                for (stream, keep) in [(CHANGES_STREAM.to_owned(), 64), (lane.events_stream(), 16)]
                {
                    tx.set_retention(
                        &stream,
                        Retention {
                            max_count: Some(keep),
                            ..Retention::default()
                        },
                    )?;
                }
            }
            tx.set_schema(
                SchemaTarget::NodeType("counter".into()),
                json!({
                    "type": "object",
                    "properties": {"value": {"type": "integer", "minimum": 0}},
                    "required": ["value"]
                }),
            )?;
            let each = COUNTER_TOTAL / COUNTERS as i64;
            for i in 0..COUNTERS {
                tx.create_node(
                    Node::new(lane.counter(i), "counter")?.with_attribute("value", json!(each)),
                )?;
            }
            tx.create_node(
                Node::new(lane.ledger(), "ledger")?
                    .with_attribute("last", json!(0))
                    .with_attribute("transfers", json!(0)),
            )?;
            group(tx, seed, g, &mut rng, lane, docs)
        }
        Kind::Group => {
            group(tx, seed, g, &mut rng, lane, docs)?;
            transfer(tx, g, &mut rng, lane)
        }
        Kind::Solo => {
            let pad = "s".repeat(rng.index(300));
            tx.create_node(
                Node::new(lane.solo(g), "solo")?
                    .with_attribute("g", json!(g))
                    .with_observation(pad.clone()),
            )?;
            if docs {
                tx.write_document(&lane.solo_key(g), pad)?;
            }
            Ok(())
        }
        Kind::Transfer => transfer(tx, g, &mut rng, lane),
        Kind::Note => {
            let text = format!("note {g}\n{}", "n".repeat(rng.index(2000)));
            if docs {
                tx.write_document(&lane.note_key(g), text)?;
            }
            Ok(())
        }
    }
}

fn group(
    tx: &mut WriteTx<'_>,
    seed: u64,
    g: u64,
    rng: &mut Rng,
    lane: Lane,
    docs: bool,
) -> Result<()> {
    let size = group_size(seed, g);
    for i in 0..size {
        let mut node = Node::new(lane.group_node(g, i), "member")?
            .with_attribute("g", json!(g))
            .with_attribute("i", json!(i))
            .with_attribute("pad", json!("p".repeat(rng.index(200))));
        for o in 0..rng.below(3) {
            node = node.with_observation(format!("observation {o} of {g}-{i}"));
        }
        if i > 0 {
            node = node.with_dependency(lane.group_node(g, i - 1));
        }
        if rng.chance(1, 3) {
            node = node.with_tag(format!("t{}", rng.below(4)));
        }
        tx.create_node(node)?;
    }
    // Drawn whether or not the backend holds documents, so the graph is the same.
    let notes = format!("# group {g}\n{}", "n".repeat(rng.index(2000)));
    let blob = rng.chance(1, 6);
    if docs {
        tx.write_document(&lane.notes_key(g), notes)?;
        if blob {
            let byte = (g % 251) as u8;
            tx.write_document_from(
                &lane.blob_key(g),
                io::repeat(byte).take(BLOB_SIZE as u64),
                &WriteOptions::new(),
            )?;
        }
        if g >= 1 && tx.document_exists(&lane.notes_key(g - 1))? {
            tx.write_document(
                &lane.notes_key(g - 1),
                format!("# group {}\nseen by {g}\n", g - 1),
            )?;
        }
    }
    for i in 0..size - 1 {
        let edge = Edge::new(
            lane.group_node(g, i),
            chain_relation(seed, g, i)?,
            lane.group_node(g, i + 1),
        )?
        .with_weight(rng.below(100) as f64 / 8.0)
        .with_attribute("g", json!(g));
        tx.create_edge(edge)?;
    }
    if g >= 1 {
        let previous = lane.group_node(g - 1, 0);
        if tx.contains_node(&previous)? {
            tx.create_edge(Edge::new(
                lane.group_node(g, 0),
                RelationType::RelatesTo,
                previous.clone(),
            )?)?;
            // Update the previous group's first node, stating the version it has.
            let mut node = tx.get_node(&previous)?;
            let version = node.metadata.version;
            node.observations.push(format!("seen by {g}"));
            node.attributes.insert("seen".into(), json!(g));
            tx.update_node(node, Some(version))?;
        }
    }
    if g >= 2 {
        let key = EdgeKey::new(
            lane.group_node(g - 2, 0),
            chain_relation(seed, g - 2, 0)?,
            lane.group_node(g - 2, 1),
        );
        if let Some(mut edge) = tx.find_edge(&key)? {
            edge.metadata.weight = rng.below(50) as f64 / 4.0;
            edge.attributes.insert("touched".into(), json!(g));
            tx.update_edge(edge, None)?;
        }
        // Sometimes drop the link between the two groups before.
        let link = EdgeKey::new(
            lane.group_node(g - 1, 0),
            RelationType::RelatesTo,
            lane.group_node(g - 2, 0),
        );
        if rng.chance(1, 3) && tx.find_edge(&link)?.is_some() {
            tx.delete_edge(&link)?;
        }
    }
    // Groups and solo nodes past their lifetime go (also those a run of other
    // transactions skipped), so the store's size stays bounded.
    if g >= LIFETIME {
        for old in g.saturating_sub(LIFETIME + CATCH_UP)..=g - LIFETIME {
            let first = lane.group_node(old, 0);
            if tx.contains_node(&first)? {
                // The rest of the group depends on its first node: a cascade takes all.
                tx.delete_node(&first, OnDependents::Cascade)?;
            }
            if docs {
                tx.remove_document(&lane.notes_key(old))?;
                tx.remove_document(&lane.blob_key(old))?;
            }
        }
    }
    if g >= SOLO_LIFETIME {
        for old in g.saturating_sub(SOLO_LIFETIME + CATCH_UP)..=g - SOLO_LIFETIME {
            let solo = lane.solo(old);
            if tx.contains_node(&solo)? {
                tx.delete_node(&solo, OnDependents::Refuse)?;
            }
            if docs {
                tx.remove_document(&lane.solo_key(old))?;
            }
        }
    }
    Ok(())
}

/// Whether the store `reader` reads holds documents: a backend without them answers
/// `Unsupported`.
pub fn holds_documents(reader: &(impl DocumentRead + ?Sized)) -> Result<bool> {
    match reader.count_documents() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(false),
        Err(e) => Err(e),
    }
}

fn counter_value(node: &Node) -> Result<i64> {
    node.attributes
        .get("value")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            Error::invalid_input(format!("counter {}", node.name), "has no integer value")
        })
}

fn transfer(tx: &mut WriteTx<'_>, g: u64, rng: &mut Rng, lane: Lane) -> Result<()> {
    let from = rng.below(COUNTERS);
    let to = (from + 1 + rng.below(COUNTERS - 1)) % COUNTERS;
    let mut source = tx.get_node(&lane.counter(from))?;
    let mut target = tx.get_node(&lane.counter(to))?;
    let available = counter_value(&source)?;
    let amount = i64::try_from(rng.below(u64::try_from(available).unwrap_or(0) + 1)).unwrap_or(0);
    source
        .attributes
        .insert("value".into(), json!(available - amount));
    let received = counter_value(&target)? + amount;
    target.attributes.insert("value".into(), json!(received));
    tx.update_node(source, None)?;
    tx.update_node(target, None)?;
    let mut ledger = tx.get_node(&lane.ledger())?;
    let transfers = ledger
        .attributes
        .get("transfers")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    ledger.attributes.insert("last".into(), json!(g));
    ledger
        .attributes
        .insert("transfers".into(), json!(transfers + 1));
    tx.update_node(ledger, None)?;
    Ok(())
}
