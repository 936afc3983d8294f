//! Random operation sequences on every backend, compared with the memory backend.

use kgstore::{
    Direction, Edge, EdgeFilter, EdgeKey, GraphRead, Node, NodeFilter, OnDependents, PageRequest,
    PathOptions, RelationType, SchemaTarget, Store, TraverseOptions, WriteTx,
};
use serde_json::json;

use crate::snapshot::Snapshot;

use super::{Finding, Input, Outcome, normalized};

const TARGET: &str = "ops_vs_memory";

/// The bytes each step reads (every store reads the same ones).
const STEP_BYTES: usize = 64;

/// Names the operations use: few, so that they collide; some need escaping in
/// file names; the last are invalid.
/// Names the operations use: few, so that they collide; some need escaping in
/// file names, differ only by case, hold LIKE wildcards or are long enough to
/// be hashed into a file name; the last two are invalid.
const NAMES: [&str; 14] = [
    "a", "b", "Ab", "ab", "a_b", "a%", "c.d", "ü", "Ü", "con", "e f", LONG, "", "x\u{1}",
];
/// Longer than a file name may be once encoded.
const LONG: &str = "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé";
/// Attribute values whose JSON forms are easy to get wrong.
fn value(input: &mut Input<'_>) -> serde_json::Value {
    match input.below(12) {
        0 => json!(1),
        1 => json!(1.0),
        2 => json!(u64::MAX),
        3 => json!(i64::MIN),
        4 => json!(0.1),
        5 => json!(1e300),
        6 => json!(-0.0),
        7 => json!("1"),
        8 => json!({"b": 1, "a": [true, null]}),
        9 => json!([]),
        10 => json!(null),
        _ => json!(input.below(3)),
    }
}
const TYPES: [&str; 3] = ["t", "u", "Not A Type"];
const TAGS: [&str; 2] = ["red", "blue"];
const RELATIONS: [&str; 4] = ["calls", "depends_on", "x_y", "Bad"];
const WEIGHTS: [f64; 4] = [1.0, 0.5, 2.25, -1.0];

/// The stores under test, the memory store first.
struct Stores {
    labels: Vec<String>,
    stores: Vec<Store>,
    urls: Vec<Option<String>>,
}

impl Stores {
    fn open(dir: &std::path::Path) -> Result<Self, Finding> {
        let urls = vec![
            None,
            Some(format!(
                "sqlite://{}/kg.db?durability=relaxed",
                dir.display()
            )),
            Some(format!("json://{}/kg?durability=relaxed", dir.display())),
        ];
        let mut stores = Vec::new();
        let mut labels = Vec::new();
        for url in &urls {
            let store = match url {
                None => Store::memory(),
                Some(url) => kgstore::open(url)
                    .map_err(|e| Finding::new(TARGET, format!("cannot open {url}: {e}")))?,
            };
            labels.push(store.backend_name().to_owned());
            stores.push(store);
        }
        Ok(Self {
            labels,
            stores,
            urls,
        })
    }

    /// Closes and reopens every persistent store.
    fn reopen(&mut self) -> Result<(), Finding> {
        for (store, url) in self.stores.iter_mut().zip(&self.urls) {
            if let Some(url) = url {
                // The old handle must be gone before the new one takes the lock.
                *store = Store::memory();
                *store = kgstore::open(url)
                    .map_err(|e| Finding::new(TARGET, format!("cannot reopen {url}: {e}")))?;
            }
        }
        Ok(())
    }
}

fn name(input: &mut Input<'_>) -> String {
    // Mostly valid names.
    // Half the time one of the first few, so that operations meet.
    let index = if input.bool() {
        input.below(4)
    } else {
        input.below(NAMES.len())
    };
    // Invalid names now and then only.
    let index = if index >= NAMES.len() - 2 && !input.byte().is_multiple_of(4) {
        index - 4
    } else {
        index
    };
    NAMES.get(index).copied().unwrap_or("a").to_owned()
}

fn relation(input: &mut Input<'_>) -> RelationType {
    let text = input.pick(&RELATIONS, "calls");
    RelationType::parse(text).unwrap_or_else(|_| RelationType::Custom(text.into()))
}

/// A node type, now and then an invalid one.
fn node_type(input: &mut Input<'_>) -> String {
    match input.below(8) {
        0..=3 => "t",
        4..=6 => "u",
        _ => TYPES[2],
    }
    .to_owned()
}

fn node(input: &mut Input<'_>) -> Node {
    let mut node = Node {
        name: name(input),
        node_type: node_type(input),
        observations: Vec::new(),
        attributes: serde_json::Map::new(),
        dependencies: Vec::new(),
        metadata: Default::default(),
    };
    if input.bool() {
        node.attributes.insert("k".into(), value(input));
    }
    if input.byte().is_multiple_of(4) {
        node.attributes.insert("k".into(), json!("text"));
    }
    for _ in 0..input.below(8).saturating_sub(5) {
        node.dependencies.push(name(input));
    }
    for _ in 0..input.below(3) {
        let text = input.pick(&["o0", "o1", "o2", "\u{0}", "", "e\u{301}", "O1"], "o1");
        node.observations.push(text.to_owned());
    }
    if input.below(8) == 0 {
        // Keys a JSON pointer must escape, and the empty key.
        let key = input.pick(&["", "a/b", "~", "k~1"], "");
        node.attributes.insert(key.to_owned(), value(input));
    }
    if input.below(8) == 0 {
        node.metadata.author = Some(input.pick(&["\u{0}", "me", ""], "me").to_owned());
    }
    if input.bool() {
        node.metadata
            .tags
            .push(input.pick(&TAGS[..], "red").to_owned());
    }
    if input.byte().is_multiple_of(4) {
        node.metadata.status = Some("active".into());
    }
    node
}

fn edge(input: &mut Input<'_>) -> Edge {
    let mut edge = Edge {
        from: name(input),
        relation_type: relation(input),
        to: name(input),
        attributes: serde_json::Map::new(),
        metadata: Default::default(),
    };
    edge.metadata.weight = input.pick(&WEIGHTS[..], 1.0);
    if input.bool() {
        edge.attributes.insert("w".into(), value(input));
    }
    if input.byte().is_multiple_of(4) {
        edge.metadata.confidence = Some(input.pick(&[0.0, 0.3, 1.0, 1.5], 0.3));
    }
    if input.byte().is_multiple_of(4) {
        edge.metadata.bidirectional = true;
    }
    edge
}

fn key(input: &mut Input<'_>) -> EdgeKey {
    EdgeKey::new(name(input), relation(input), name(input))
}

fn direction(input: &mut Input<'_>) -> Direction {
    input.pick(
        &[Direction::Out, Direction::In, Direction::Both],
        Direction::Out,
    )
}

fn on_dependents(input: &mut Input<'_>) -> OnDependents {
    input.pick(
        &[
            OnDependents::Refuse,
            OnDependents::Detach,
            OnDependents::Cascade,
        ],
        OnDependents::Refuse,
    )
}

fn expected_version(input: &mut Input<'_>) -> Option<u64> {
    match input.below(4) {
        0 => None,
        n => Some(n as u64 - 1),
    }
}

/// A write, decided by the bytes, applied in `tx`; its result as text.
fn write_op(input: &mut Input<'_>, tx: &mut WriteTx<'_>) -> String {
    match input.below(15) {
        0..=3 => normalized(&tx.create_node(node(input))),
        4 | 5 => {
            let n = node(input);
            normalized(&tx.update_node(n, expected_version(input)))
        }
        6 => normalized(&tx.upsert_node(node(input))),
        7 => {
            let n = name(input);
            normalized(&tx.delete_node(&n, on_dependents(input)))
        }
        8..=10 => normalized(&tx.create_edge(edge(input))),
        11 => {
            let e = edge(input);
            normalized(&tx.update_edge(e, expected_version(input)))
        }
        12 => normalized(&tx.upsert_edge(edge(input))),
        13 => normalized(&tx.delete_edge(&key(input))),
        _ => {
            let (target, key) = if input.bool() {
                (
                    SchemaTarget::NodeType(input.pick(&TYPES[..], "t").to_owned()),
                    "k",
                )
            } else {
                (SchemaTarget::RelationType(relation(input)), "w")
            };
            if input.bool() {
                normalized(&tx.remove_schema(&target))
            } else {
                let kind = input.pick(&["integer", "number", "string"], "integer");
                let schema = json!({
                    "type": "object",
                    "properties": {key: {"type": kind}}
                });
                normalized(&tx.set_schema(target, schema))
            }
        }
    }
}

/// A query, decided by the bytes; its result as text.
fn read_op(input: &mut Input<'_>, reader: &impl GraphRead) -> String {
    match input.below(10) {
        0 => normalized(&reader.find_node(&name(input))),
        1 => normalized(&reader.find_edge(&key(input))),
        2 => {
            let mut filter = NodeFilter::default();
            if input.bool() {
                filter = filter.of_type(input.pick(&TYPES[..], "t"));
            }
            if input.bool() {
                filter = filter.with_name_prefix(input.pick(
                    &["a", "A", "c", "", "a_", "a%", "_", "%", "é", "\u{e9}\u{e9}"],
                    "a",
                ));
            }
            if input.bool() {
                filter = filter.with_tag(input.pick(&TAGS[..], "red"));
            }
            if input.byte().is_multiple_of(3) {
                filter = filter.where_eq(
                    input.pick(&["/k", "/k/a", "/k/0", "", "/a~1b", "/~0", "/"], "/k"),
                    value(input),
                );
            }
            if input.byte().is_multiple_of(3) {
                filter =
                    filter.containing(input.pick(&["o1", "b", "B", "ü", "Ü", "_", "%", "O"], "o1"));
            }
            if input.byte().is_multiple_of(4) {
                filter = filter.with_status("active");
            }
            let limit = 1 + input.below(3);
            let mut out = Vec::new();
            let mut page = PageRequest::first(limit);
            loop {
                let got = reader.list_nodes(&filter, &page);
                let next = got.as_ref().ok().and_then(|p| p.next_cursor.clone());
                out.push(normalized(&got.map(|p| p.items)));
                match next {
                    Some(cursor) if out.len() < 20 => page = page.after(Some(cursor)),
                    _ => break,
                }
            }
            out.join(";")
        }
        3 => {
            let mut filter = EdgeFilter::default();
            if input.bool() {
                filter = filter.from_node(name(input));
            }
            if input.bool() {
                filter = filter.to_node(name(input));
            }
            if input.bool() {
                filter = filter.of_relation(relation(input));
            }
            if input.bool() {
                filter = filter.with_min_weight(input.pick(&WEIGHTS[..], 1.0));
            }
            if input.byte().is_multiple_of(3) {
                filter = filter.where_eq("/w", value(input));
            }
            let page = PageRequest::first(1 + input.below(4));
            normalized(
                &reader
                    .list_edges(&filter, &page)
                    .map(|p| (p.items, p.next_cursor.map(|c| c.as_str().to_owned()))),
            )
        }
        4 => {
            let n = name(input);
            let relations = if input.bool() {
                vec![relation(input)]
            } else {
                Vec::new()
            };
            normalized(&reader.edges_of(&n, direction(input), &relations))
        }
        5 => normalized(&reader.resolve_dependencies(&name(input))),
        6 => normalized(&reader.dependents(&name(input))),
        7 => {
            let start = name(input);
            let options = TraverseOptions {
                direction: direction(input),
                relations: Vec::new(),
                max_depth: input.below(4),
            };
            normalized(&reader.traverse(&start, &options))
        }
        8 => {
            let (from, to) = (name(input), name(input));
            let options = PathOptions {
                direction: direction(input),
                weighted: input.bool(),
                ..PathOptions::default()
            };
            normalized(&reader.shortest_path(&from, &to, &options))
        }
        _ => normalized(&reader.stats()),
    }
}

/// The next step, decided by the bytes, on every store; the results must agree.
fn step(chunk: &[u8], stores: &mut Stores, index: usize) -> Outcome {
    let mut input = Input::new(chunk);
    let choice = input.below(16);
    let input = &input;
    if choice == 15 {
        return stores.reopen();
    }
    let results: Vec<String> = stores
        .stores
        .iter()
        .map(|store| {
            // Every store sees the same bytes.
            let mut mine = input.clone();
            match choice {
                0..=9 => store
                    .write(|tx| Ok(write_op(&mut mine, tx)))
                    .unwrap_or_else(|e| format!("commit Err({:?})", e.kind())),
                10..=12 => {
                    // A transaction of several writes and reads, committed or rolled back.
                    let count = 1 + mine.below(5);
                    let commit = !mine.byte().is_multiple_of(4);
                    let mut seen = Vec::new();
                    let outcome = store.write(|tx| {
                        for _ in 0..count {
                            if mine.bool() {
                                seen.push(write_op(&mut mine, tx));
                            } else {
                                seen.push(read_op(&mut mine, tx));
                            }
                        }
                        if commit {
                            Ok(())
                        } else {
                            Err(kgstore::Error::invalid_input(
                                "fuzz",
                                "rolled back on purpose",
                            ))
                        }
                    });
                    seen.push(normalized(&outcome));
                    seen.join(" | ")
                }
                13 => match store.read() {
                    Ok(read) => {
                        let first = read_op(&mut mine, &read);
                        let second = read_op(&mut mine, &read);
                        format!("{first} | {second}")
                    }
                    Err(e) => format!("read Err({:?})", e.kind()),
                },
                _ => read_op(&mut mine, store),
            }
        })
        .collect();
    for (label, result) in stores.labels.iter().zip(&results).skip(1) {
        if result != &results[0] {
            return Err(Finding::new(
                TARGET,
                format!(
                    "step {index}: {label} gave {result}\n  but memory gave {}",
                    results[0]
                ),
            ));
        }
    }
    Ok(())
}

/// Applies an operation sequence decided by the bytes (writes, transactions that
/// commit or roll back, reads, queries, reopening) to the memory backend and to
/// each persistent backend (sqlite and jsonfs, relaxed durability); every result
/// must be the same (values without timestamps, errors by kind), and at the end
/// every store must hold the same content and pass `check`.
pub fn ops_vs_memory(data: &[u8]) -> Outcome {
    let scratch = super::scratch(TARGET)?;
    let mut stores = Stores::open(scratch.path())?;
    let mut input = Input::new(data);
    let mut index = 0;
    while !input.is_empty() && index < 200 {
        step(input.take(STEP_BYTES), &mut stores, index)?;
        index += 1;
    }
    stores.reopen()?;
    let mut snapshots = Vec::new();
    for (label, store) in stores.labels.iter().zip(&stores.stores) {
        match store.check() {
            Ok(check) if check.is_ok() => {}
            other => {
                return Err(Finding::new(
                    TARGET,
                    format!("{label} does not check: {other:?}"),
                ));
            }
        }
        let snapshot = Snapshot::of(store)
            .map_err(|e| Finding::new(TARGET, format!("cannot read {label}: {e}")))?;
        snapshots.push(snapshot);
    }
    for (label, snapshot) in stores.labels.iter().zip(&snapshots).skip(1) {
        if snapshot != &snapshots[0] {
            return Err(Finding::new(
                TARGET,
                format!(
                    "after {index} steps {label} holds other content than memory (left: {label}):\n  {}",
                    snapshot.diff(&snapshots[0])
                ),
            ));
        }
    }
    Ok(())
}
