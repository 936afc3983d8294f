//! Structured random inputs for the targets, for the stable driver and for
//! seeding a fuzzer's corpus: mostly well-formed inputs that reach deep, some
//! of them mutated, and some plain random bytes.

use kgstore::backup::{self};
use kgstore::{Edge, Node, RelationType, Store};
use serde_json::{Value, json};

use crate::rng::Rng;

use super::backup::{DROP_SCHEMAS, EXTRA_FILE, FIX_MANIFEST, assemble_backup_input};

/// Characters names are made of: plain, escaped in file names, separators,
/// control characters, non-ASCII.
const ALPHABET: &[&str] = &[
    "a", "b", "z", "A", "Z", "0", "9", "-", "_", ".", "..", "/", "\\", ":", "%", "^", ",", "~",
    " ", "\u{0}", "\u{1}", "\u{7f}", "é", "e\u{301}", "日", "🦀", "\u{fffd}", "con", "CON", "aux",
    "com1", "lpt9", "nul", ".git", "$", "*", "?", "\"", "<", "|",
];

fn text(rng: &mut Rng, max_parts: u64) -> String {
    let parts = rng.below(max_parts + 1);
    (0..parts)
        .map(|_| ALPHABET[rng.index(ALPHABET.len())])
        .collect()
}

/// A name, usually valid, sometimes long enough to be hashed into a file name.
fn name(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "x".repeat(rng.index(600)),
        1 => "é".repeat(rng.index(300)),
        2 => String::new(),
        _ => {
            let t = text(rng, 6);
            if t.is_empty() { "n".into() } else { t }
        }
    }
}

/// A name that is valid but for one time in ten.
fn mostly_valid_name(rng: &mut Rng) -> String {
    if rng.chance(1, 10) {
        return name(rng);
    }
    let mut out = String::from(["n", "N", "é", "x.y", "con", "🦀"][rng.index(6)]);
    for _ in 0..rng.below(4) {
        let part = ALPHABET[rng.index(ALPHABET.len())];
        if !part.chars().any(char::is_control) {
            out.push_str(part);
        }
    }
    out
}

fn json_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(1, 2)),
        2 => json!(rng.next_u64() as i64),
        3 => json!(rng.next_u64()),
        4 => json!(
            f64::from_bits(rng.next_u64() & 0x7fef_ffff_ffff_ffff)
                * if rng.chance(1, 2) { -1.0 } else { 1.0 }
        ),
        5 => json!(text(rng, 4)),
        6 => Value::Array(
            (0..rng.below(3))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(3))
                .map(|_| (text(rng, 2), json_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

fn random_node(rng: &mut Rng) -> Node {
    let mut node = Node {
        name: name(rng),
        node_type: ["t", "crate", "x_1", "Bad"][rng.index(4)].to_owned(),
        observations: (0..rng.below(3)).map(|_| text(rng, 5)).collect(),
        attributes: serde_json::Map::new(),
        dependencies: (0..rng.below(3)).map(|_| name(rng)).collect(),
        metadata: Default::default(),
    };
    for _ in 0..rng.below(3) {
        node.attributes.insert(text(rng, 2), json_value(rng, 0));
    }
    node.metadata.version = rng.below(5);
    node.metadata.tags = (0..rng.below(3)).map(|_| text(rng, 2)).collect();
    if rng.chance(1, 3) {
        node.metadata.author = Some(text(rng, 3));
    }
    if rng.chance(1, 3) {
        node.metadata.status = Some(text(rng, 2));
    }
    node
}

fn random_edge(rng: &mut Rng) -> Edge {
    let relation = match rng.below(4) {
        0 => RelationType::DependsOn,
        1 => RelationType::Calls,
        2 => RelationType::Custom("x_y".into()),
        _ => RelationType::Custom("Bad Relation".into()),
    };
    let mut edge = Edge {
        from: name(rng),
        relation_type: relation,
        to: name(rng),
        attributes: serde_json::Map::new(),
        metadata: Default::default(),
    };
    if rng.chance(1, 2) {
        edge.attributes.insert(text(rng, 2), json_value(rng, 0));
    }
    edge.metadata.weight = [0.0, 1.0, 0.5, 1e300, 5e-324, -1.0][rng.index(6)];
    if rng.chance(1, 2) {
        edge.metadata.confidence = Some([0.0, 1.0, 0.3, 2.0][rng.index(4)]);
    }
    edge.metadata.bidirectional = rng.chance(1, 3);
    edge.metadata.version = rng.below(5);
    edge
}

/// Byte-level damage: flips, deletions, insertions of JSON-ish tokens, cuts.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"null",
        b"1e999",
        b"-0",
        b"\\u0000",
        b"\\ud800",
        b"\n",
        b"\"version\":18446744073709551615",
        b"\"weight\":-1",
        b"2026-13-40T25:61:61Z",
        b"\"metadata\":{}",
        b"\xff",
        b"\xc3",
    ];
    for _ in 0..1 + rng.below(4) {
        let at = rng.index(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let end = (at + 1 + rng.index(8)).min(data.len());
                data.drain(at.min(end)..end);
            }
            2 => data.truncate(at),
            _ => {
                let token = TOKENS[rng.index(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
        }
    }
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.index(max + 1)).map(|_| rng.byte()).collect()
}

fn maybe_mutated(rng: &mut Rng, mut data: Vec<u8>) -> Vec<u8> {
    if rng.chance(1, 3) {
        mutate(rng, &mut data);
    }
    data
}

fn node_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 10) {
        return random_bytes(rng, 200);
    }
    let node = random_node(rng);
    let bytes = if rng.chance(1, 2) {
        serde_json::to_vec(&node)
    } else {
        serde_json::to_vec_pretty(&node)
    };
    maybe_mutated(rng, bytes.unwrap_or_default())
}

fn edge_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 10) {
        return random_bytes(rng, 200);
    }
    let bytes = serde_json::to_vec(&random_edge(rng)).unwrap_or_default();
    maybe_mutated(rng, bytes)
}

const ENTITY_TYPES: &[&str] = &["person", "Person", "org unit", "", "9lives", "Org-Unit"];
const RELATION_TYPES: &[&str] = &["works_at", "works at", "Depends On", "depends_on", "", "🦀"];

fn mcp_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 10) {
        return random_bytes(rng, 200);
    }
    let names: Vec<String> = (0..1 + rng.below(4))
        .map(|_| mostly_valid_name(rng))
        .collect();
    let mut out = Vec::new();
    for i in 0..rng.below(10) {
        let pick = |rng: &mut Rng| names[rng.index(names.len())].clone();
        // Every name gets an entity line (in any order: imports check references
        // at the end); relations and repeated entities come in between.
        let entity = i < names.len() as u64 || rng.chance(1, 3);
        let mut line = if entity {
            json!({
                "type": "entity",
                "name": names.get(i as usize).cloned().unwrap_or_else(|| pick(rng)),
                "entityType": ENTITY_TYPES[rng.index(ENTITY_TYPES.len())],
                "observations": (0..rng.below(3)).map(|_| text(rng, 3)).collect::<Vec<_>>(),
            })
        } else {
            json!({
                "type": "relation",
                "from": pick(rng),
                "to": pick(rng),
                "relationType": RELATION_TYPES[rng.index(RELATION_TYPES.len())],
            })
        };
        if rng.chance(1, 5)
            && let Some(object) = line.as_object_mut()
        {
            object.insert(text(rng, 2), json_value(rng, 1));
        }
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    maybe_mutated(rng, out)
}

fn names_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 10) {
        return random_bytes(rng, 300);
    }
    let mut out = vec![rng.byte()];
    for i in 0..1 + rng.below(4) {
        if i > 0 {
            out.push(0xff);
        }
        out.extend_from_slice(name(rng).as_bytes());
    }
    out
}

/// A small store's backup, as the files' bytes: manifest, nodes, edges, schemas.
fn backup_files(rng: &mut Rng) -> Option<[Vec<u8>; 4]> {
    let store = Store::memory();
    let _ = store.write(|tx| {
        tx.defer_checks();
        let names: Vec<String> = (0..1 + rng.below(4)).map(|i| format!("n{i}")).collect();
        for n in &names {
            let mut node = Node::new(n.clone(), "t")?.with_attribute("k", json!(rng.below(3)));
            if rng.chance(1, 2) {
                node = node.with_observation(text(rng, 3));
            }
            tx.create_node(node)?;
        }
        for _ in 0..rng.below(4) {
            let from = names[rng.index(names.len())].clone();
            let to = names[rng.index(names.len())].clone();
            let _ = tx.create_edge(Edge::new(from, RelationType::Calls, to)?);
        }
        if rng.chance(1, 2) {
            tx.set_schema(
                kgstore::SchemaTarget::NodeType("t".into()),
                json!({"type": "object", "properties": {"k": {"type": "integer"}}}),
            )?;
        }
        Ok(())
    });
    let dir = super::scratch("backup_dir").ok()?;
    let path = dir.path().join("b");
    backup::backup(&store, &path).ok()?;
    let read = |file: &str| std::fs::read(path.join(file)).ok();
    Some([
        read(backup::MANIFEST_FILE)?,
        read(backup::NODES_FILE)?,
        read(backup::EDGES_FILE)?,
        read(backup::SCHEMAS_FILE)?,
    ])
}

/// Changes one line of a JSON Lines file in a way a careless edit or a bug
/// could: a field set to a surprising value, a line repeated, dropped or moved.
fn mutate_lines(rng: &mut Rng, file: &mut Vec<u8>, other: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(file).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return;
    }
    let at = rng.index(lines.len());
    match rng.below(6) {
        0 => {
            let copy = lines[at].clone();
            lines.insert(rng.index(lines.len() + 1), copy);
        }
        1 => {
            lines.remove(at);
        }
        2 => {
            // Into the other file (a node among edges, an edge among nodes).
            let moved = lines.remove(at);
            other.extend_from_slice(moved.as_bytes());
            other.push(b'\n');
        }
        _ => {
            if let Ok(mut value) = serde_json::from_str::<Value>(&lines[at]) {
                const POINTERS: &[&str] = &[
                    "/dependencies",
                    "/metadata/version",
                    "/metadata/weight",
                    "/metadata/confidence",
                    "/metadata/tags",
                    "/metadata/created_at",
                    "/metadata/updated_at",
                    "/name",
                    "/from",
                    "/to",
                    "/node_type",
                    "/relation_type",
                    "/attributes",
                    "/attributes/k",
                    "/observations",
                ];
                const VALUES: &[&str] = &[
                    "[\"n0\"]",
                    "[\"n0\",\"n0\"]",
                    "[\"missing\"]",
                    "0",
                    "-1",
                    "1e308",
                    "18446744073709551615",
                    "9223372036854775808",
                    "2",
                    "0.5",
                    "null",
                    "[\"b\",\"a\",\"a\"]",
                    "\"1970-01-01T00:00:00.000000Z\"",
                    "\"9999-12-31T23:59:59.999999Z\"",
                    "\"n1\"",
                    "\"\"",
                    "\"Bad Type\"",
                    "\"calls\"",
                    "{}",
                    "[]",
                    "\"x\"",
                    "{\"k\":\"text\"}",
                ];
                let pointer = POINTERS[rng.index(POINTERS.len())];
                let replacement: Value =
                    serde_json::from_str(VALUES[rng.index(VALUES.len())]).unwrap_or(Value::Null);
                if let Some(slot) = value.pointer_mut(pointer) {
                    *slot = replacement;
                } else if let Some((parent, key)) = pointer.rsplit_once('/')
                    && let Some(Value::Object(map)) = value.pointer_mut(parent)
                {
                    map.insert(key.to_owned(), replacement);
                }
                lines[at] = value.to_string();
            }
        }
    }
    let mut out = lines.join("\n").into_bytes();
    if !out.is_empty() {
        out.push(b'\n');
    }
    *file = out;
}

fn backup_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 10) {
        return random_bytes(rng, 300);
    }
    let Some(mut files) = backup_files(rng) else {
        return Vec::new();
    };
    let mut flags = 0;
    if rng.chance(1, 2) {
        // A plausible edit of a line, with a manifest that matches it.
        for _ in 0..1 + rng.below(2) {
            let [_, nodes, edges, _] = &mut files;
            if rng.chance(1, 2) {
                mutate_lines(rng, nodes, edges);
            } else {
                mutate_lines(rng, edges, nodes);
            }
        }
        flags |= FIX_MANIFEST;
    } else if rng.chance(1, 2) {
        // Damage a data file, and mostly make the manifest match it so that
        // the damage reaches the parser rather than the hash check.
        let which = 1 + rng.index(3);
        mutate(rng, &mut files[which]);
        if rng.chance(3, 4) {
            flags |= FIX_MANIFEST;
        }
    } else if rng.chance(1, 3) {
        mutate(rng, &mut files[0]);
    }
    if rng.chance(1, 20) {
        flags |= DROP_SCHEMAS;
    }
    if rng.chance(1, 20) {
        flags |= EXTRA_FILE;
    }
    assemble_backup_input(flags, &files[0], &files[1], &files[2], &files[3])
}

fn ops_input(rng: &mut Rng) -> Vec<u8> {
    let steps = 1 + rng.below(48);
    random_bytes_exact(rng, steps as usize * 64)
}

fn random_bytes_exact(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.byte()).collect()
}

/// Pieces of Fountain that steer the parser: forcing markers, heading
/// prefixes, cues with extensions and dual marks, transitions, notes and
/// comments (closed, unclosed, across lines), line endings, a byte-order mark,
/// and the odd NUL or invalid byte.
const FOUNTAIN_TOKENS: &[&[u8]] = &[
    b"\n",
    b"\n",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b"  ",
    b"\t",
    b"    ",
    b"a",
    b"Bob",
    b"BOB",
    b"MARA",
    b"x y",
    b"1",
    b"\xc3\xa9",
    b"\xe6\x97\xa5",
    b"INT. ",
    b"EXT. ",
    b"int ",
    b"I/E ",
    b"INT./EXT. ",
    b"EST. ",
    b" - DAY",
    b" - NIGHT",
    b" #1A#",
    b"#",
    b"##",
    b"=",
    b"===",
    b"~",
    b"!",
    b".",
    b"..",
    b"@",
    b"^",
    b" ^",
    b">",
    b"<",
    b"> THE END <",
    b"(",
    b")",
    b"(V.O.)",
    b"(O.S.)",
    b"(beat)",
    b"CUT TO:",
    b"TO:",
    b"Title: ",
    b"Author:",
    b"Season: 2",
    b":",
    b"[[",
    b"]]",
    b"[[note]]",
    b"/*",
    b"*/",
    b"/* meta */",
    b"*",
    b"**",
    b"_",
    b"\\",
    b"\xef\xbb\xbf",
];

fn fountain_tokens(rng: &mut Rng, max: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(max + 1) {
        out.extend_from_slice(FOUNTAIN_TOKENS[rng.index(FOUNTAIN_TOKENS.len())]);
    }
    out
}

/// A Fountain text: a generated episode with damage, a soup of the syntax's
/// pieces, or random bytes; now and then an invalid byte or a NUL inside.
fn fountain_input(rng: &mut Rng) -> Vec<u8> {
    let mut data = match rng.below(10) {
        0 => random_bytes(rng, 300),
        1..=3 => {
            let scenes = 1 + rng.index(3);
            let episode = kgstore_fountain::synthetic::series(1, scenes, rng.next_u64());
            let mut text = episode
                .into_iter()
                .next()
                .map(|e| e.text)
                .unwrap_or_default()
                .into_bytes();
            for _ in 0..rng.below(6) {
                let at = rng.index(text.len() + 1);
                if rng.chance(1, 2) {
                    let end = (at + 1 + rng.index(40)).min(text.len());
                    text.drain(at.min(end)..end);
                } else {
                    let token = fountain_tokens(rng, 4);
                    text.splice(at..at, token);
                }
            }
            text
        }
        _ => fountain_tokens(rng, 60),
    };
    if rng.chance(1, 20) {
        let at = rng.index(data.len() + 1);
        data.insert(at, if rng.chance(1, 2) { 0xff } else { 0 });
    }
    data
}

/// An input for the target `name` (one of [`TARGETS`](super::TARGETS)); empty
/// for an unknown name.
pub fn input_for(target: &str, rng: &mut Rng) -> Vec<u8> {
    match target {
        "node_json" => node_input(rng),
        "edge_json" => edge_input(rng),
        "backup_dir" => backup_input(rng),
        "mcp_import" => mcp_input(rng),
        "file_names" => names_input(rng),
        "ops_vs_memory" => ops_input(rng),
        "fountain" => fountain_input(rng),
        _ => Vec::new(),
    }
}
