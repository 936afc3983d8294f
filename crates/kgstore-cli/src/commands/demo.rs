//! `kgstore demo`: a knowledge graph of a real dependency graph — this
//! workspace's own `cargo metadata` — and a tour of what kgstore does with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kgstore::backup::{self, RestoreMode};
use kgstore::formats::{self, DotOptions};
use kgstore::{
    Direction, DocumentQuery, DocumentRead, DocumentWrite, Edge, GraphRead, Node, NodeFilter,
    PageRequest, PathOptions, ReachOptions, RelationType, SearchQuery, Store, TraverseOptions,
};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::DemoArgs;

/// The workspace to read: `--manifest-path`, else the one this binary was built
/// from (when it is still there), else the current folder.
fn manifest_path(args: &DemoArgs) -> PathBuf {
    if let Some(path) = &args.manifest_path {
        return path.clone();
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    if built_from.exists() {
        built_from
    } else {
        PathBuf::from("Cargo.toml")
    }
}

/// Runs `cargo metadata`, offline first (everything needed is in the local cache
/// after a build), then online.
fn cargo_metadata(manifest: &Path) -> Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut last_error = String::new();
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(manifest);
        if offline {
            command.arg("--offline");
        }
        match command.output() {
            Ok(output) if output.status.success() => {
                return serde_json::from_slice(&output.stdout)
                    .context("cargo metadata printed something other than JSON");
            }
            Ok(output) => {
                last_error = String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_owned()
            }
            Err(e) => last_error = format!("cannot run cargo: {e}"),
        }
    }
    bail!(
        "`cargo metadata --manifest-path {}` failed: {last_error}",
        manifest.display()
    )
}

/// The crates and their dependency links, as kgstore nodes and edges.
struct CrateGraph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    members: Vec<String>,
    /// Each workspace crate's files to keep as documents: (document key, file), the
    /// key being the file's path in the workspace (`crates/kgstore-cli/Cargo.toml`).
    files: Vec<(String, PathBuf)>,
}

/// A workspace crate's `Cargo.toml` and README (where it has one), as (key, file):
/// each key is the file's path relative to the workspace root, so the documents
/// mirror the files.
fn crate_files(package: &Value, root: &Path) -> Vec<(String, PathBuf)> {
    let Some(manifest) = package["manifest_path"].as_str().map(PathBuf::from) else {
        return Vec::new();
    };
    let mut files = vec![manifest.clone()];
    if let (Some(readme), Some(dir)) = (package["readme"].as_str(), manifest.parent()) {
        files.push(dir.join(readme));
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    files
        .into_iter()
        .filter_map(|file| {
            let file = file.canonicalize().ok()?;
            let key = file.strip_prefix(&root).ok()?.to_str()?.replace('\\', "/");
            Some((key, file))
        })
        .collect()
}

fn crate_graph(metadata: &Value) -> Result<CrateGraph> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?;
    let mut versions: HashMap<&str, usize> = HashMap::new();
    for p in packages {
        *versions
            .entry(p["name"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    // A crate is named by its name, or name@version where several versions are in the graph.
    let mut names: HashMap<&str, String> = HashMap::new();
    for p in packages {
        let (id, name, version) = (
            p["id"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or(""),
            p["version"].as_str().unwrap_or(""),
        );
        let node_name = if versions.get(name).copied().unwrap_or(0) > 1 {
            format!("{name}@{version}")
        } else {
            name.to_owned()
        };
        names.insert(id, node_name);
    }
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap_or("."));
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut dependencies: HashMap<&str, Vec<String>> = HashMap::new();
    let mut edges = Vec::new();
    for entry in metadata["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata has no resolve graph")?
    {
        let id = entry["id"].as_str().unwrap_or("");
        let from = names.get(id).context("resolve names an unknown package")?;
        for dep in entry["deps"].as_array().into_iter().flatten() {
            let to = names
                .get(dep["pkg"].as_str().unwrap_or(""))
                .context("a dependency names an unknown package")?;
            let kinds: BTreeSet<String> = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                .collect();
            // Dev-dependencies may form cycles (a crate's tests using a crate that uses it):
            // they are edges only; normal and build dependencies are also node dependencies.
            if kinds.iter().any(|k| k != "dev") {
                dependencies.entry(id).or_default().push(to.clone());
            }
            edges.push(
                Edge::new(from.clone(), RelationType::DependsOn, to.clone())?
                    .with_attribute("kinds", json!(kinds)),
            );
        }
    }
    let mut nodes = Vec::new();
    let mut files = Vec::new();
    for p in packages {
        let id = p["id"].as_str().unwrap_or("");
        let name = names.get(id).context("a package without a name")?;
        let mut node = Node::new(name.clone(), "crate")?
            .with_attribute("version", p["version"].clone())
            .with_attribute("license", p["license"].clone())
            .with_attribute("edition", p["edition"].clone())
            .with_source(if p["source"].is_null() {
                "path".to_owned()
            } else {
                p["source"].as_str().unwrap_or("").to_owned()
            });
        if let Some(description) = p["description"].as_str() {
            node = node.with_observation(description.trim());
        }
        if members.contains(id) {
            node = node.with_tag("workspace");
            let mine = crate_files(p, &root);
            if !mine.is_empty() {
                let keys: Vec<&str> = mine.iter().map(|(k, _)| k.as_str()).collect();
                node = node.with_attribute("documents", json!(keys));
            }
            files.extend(mine);
        }
        let mut deps = dependencies.remove(id).unwrap_or_default();
        deps.sort();
        deps.dedup();
        node.dependencies = deps;
        nodes.push(node);
    }
    let members = members
        .iter()
        .filter_map(|id| names.get(id).cloned())
        .collect();
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    Ok(CrateGraph {
        nodes,
        edges,
        members,
        files,
    })
}

/// Removes a demo output from an earlier run, if it is one (never anything else).
fn clear_previous(path: &Path, marker: Option<&str>) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if path.is_dir() {
        let ours = marker.is_some_and(|m| path.join(m).exists())
            || path
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !ours {
            bail!(
                "{} exists and was not made by the demo; move it away or pass another --dir",
                path.display()
            );
        }
        std::fs::remove_dir_all(path)
            .with_context(|| format!("removing the previous {}", path.display()))
    } else {
        std::fs::remove_file(path)
            .with_context(|| format!("removing the previous {}", path.display()))
    }
}

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let out = &mut *ctx.out;
    let human = !out.json();
    let mut say = |text: String| -> Result<()> { if human { out.line(&text) } else { Ok(()) } };
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;

    let manifest = manifest_path(args);
    say(format!(
        "kgstore demo: a knowledge graph of the crates in {}\n",
        manifest.display()
    ))?;
    say("1. Reading the real dependency graph with `cargo metadata`.".into())?;
    let metadata = cargo_metadata(&manifest)?;
    let graph = crate_graph(&metadata)?;
    say(format!(
        "   {} crates ({} in this workspace) and {} dependency links.\n",
        graph.nodes.len(),
        graph.members.len(),
        graph.edges.len()
    ))?;

    let db = args.dir.join("demo.db");
    for suffix in ["", "-wal", "-shm"] {
        clear_previous(&PathBuf::from(format!("{}{suffix}", db.display())), None)?;
    }
    let url = format!("sqlite://{}", db.display());
    let intro = format!(
        "2. Storing them in {url}: one node of type `crate` per package (version, license and \
         edition as attributes) and one `depends_on` edge per dependency (its kinds as an \
         attribute), and each workspace crate's Cargo.toml and README as documents, all in \
         one transaction."
    );
    for (i, line) in wrap(&intro, 90).into_iter().enumerate() {
        say(if i == 0 { line } else { format!("   {line}") })?;
    }
    let store = kgstore::open(&url)?;
    let (node_count, edge_count) = (graph.nodes.len(), graph.edges.len());
    let mut documents = Vec::with_capacity(graph.files.len());
    for (key, file) in &graph.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        documents.push(DocumentWrite::new(key.clone(), bytes));
    }
    store.write(|tx| {
        tx.defer_checks();
        tx.create_nodes(graph.nodes)?;
        tx.create_edges(graph.edges)?;
        tx.write_documents(documents)?;
        Ok(())
    })?;
    let stats = store.stats()?;
    say(format!(
        "   Stored {} nodes and {} edges; {} of them are build or normal dependencies, also kept",
        stats.nodes, stats.edges, stats.dependencies
    ))?;
    say("   as node dependencies (dev-only ones stay edges: they may form cycles).\n".into())?;
    debug_assert_eq!(
        (stats.nodes, stats.edges),
        (node_count as u64, edge_count as u64)
    );
    let docs = documents_step(&store, &graph.files, &db, &mut say)?;

    let cli = if store.contains_node("kgstore-cli")? {
        "kgstore-cli".to_owned()
    } else {
        graph.members.first().cloned().unwrap_or_default()
    };
    let mut order = store.resolve_dependencies(&cli)?;
    order.push(cli.clone());
    say(format!(
        "4. Build order of {cli}: its {} dependencies, each after everything it needs",
        order.len() - 1
    ))?;
    say(format!(
        "   (`kgstore --store sqlite://{} deps resolve {cli}` prints all of it):",
        db.display()
    ))?;
    const ENDS: usize = 12;
    let shown = if order.len() > 2 * ENDS + 1 {
        let mut shown: Vec<String> = order[..ENDS].to_vec();
        shown.push(format!("… {} more …", order.len() - 2 * ENDS));
        shown.extend_from_slice(&order[order.len() - ENDS..]);
        shown
    } else {
        order.clone()
    };
    for line in wrap(&shown.join(" → "), 90) {
        say(format!("   {line}"))?;
    }
    say(String::new())?;

    let serde = ["serde", "serde_core"]
        .into_iter()
        .find(|n| store.contains_node(n).unwrap_or(false))
        .unwrap_or("serde");
    if store.contains_node(serde)? {
        let direct = store.direct_dependents(serde)?;
        let all = store.dependents(serde)?;
        say(format!(
            "5. Who depends on {serde}: {} crates directly, {} in all (in rebuild order):",
            direct.len(),
            all.len()
        ))?;
        for line in wrap(&all.join(", "), 90) {
            say(format!("   {line}"))?;
        }
        say(String::new())?;
    }

    let deepest = store
        .traverse(
            &cli,
            &TraverseOptions::depth(64).relation(RelationType::DependsOn),
        )?
        .into_iter()
        .max_by(|a, b| a.depth.cmp(&b.depth).then_with(|| b.name.cmp(&a.name)));
    if let Some(far) = deepest
        && let Some(path) = store.shortest_path(&cli, &far.name, &PathOptions::hops())?
    {
        say(format!(
            "6. The crate farthest from {cli} is {}, {} hops away; a shortest path:",
            far.name,
            path.edges.len()
        ))?;
        for line in wrap(&path.nodes.join(" → "), 90) {
            say(format!("   {line}"))?;
        }
        // The common questions without decoding whole edges or visits.
        let deps = [RelationType::DependsOn];
        let direct = store.neighbour_names(&cli, Direction::Out, &deps)?;
        let within = ReachOptions::within(2).relation(RelationType::DependsOn);
        say(format!(
            "   {cli} names {} crates directly (names only), {} within 2 hops (a count)",
            direct.len(),
            store.reach_count(&cli, &within)?
        ))?;
        say(String::new())?;
    }

    let license = most_common_license(&store)?;
    let filter = NodeFilter::default()
        .of_type("crate")
        .where_eq("/license", json!(license));
    let first = store.list_nodes(&filter, &PageRequest::first(5))?;
    say(format!(
        "7. A filtered page: crates licensed \"{license}\", 5 at a time (keyset pagination):"
    ))?;
    say(format!(
        "   {}",
        first
            .items
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    if let Some(cursor) = &first.next_cursor {
        let second =
            store.list_nodes(&filter, &PageRequest::first(5).after(Some(cursor.clone())))?;
        say(format!("   next page (--cursor {cursor}):"))?;
        say(format!(
            "   {}",
            second
                .items
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    say(String::new())?;

    let query = SearchQuery::new("Serialization JSON").limit(5);
    let substring = store
        .list_nodes(
            &NodeFilter::default().containing(query.text.clone()),
            &PageRequest::first(5),
        )?
        .items
        .len();
    let ranked = store.search(&query)?;
    say(format!(
        "8. Ranked search for \"{}\": words in any order and case, accents folded, the",
        query.text
    ))?;
    say(
        "   last word also a prefix, BM25 over names, descriptions and attributes. A substring"
            .into(),
    )?;
    say(format!(
        "   match finds {substring} crate(s); `kgstore search` ranks these first:"
    ))?;
    for hit in &ranked.items {
        let fields: Vec<&str> = hit.matched.iter().map(|f| f.as_str()).collect();
        say(format!(
            "   {:>6.2}  {:<28} {}",
            hit.score,
            hit.name,
            fields.join(", ")
        ))?;
    }
    say(String::new())?;

    let center = if store.contains_node("kgstore")? {
        "kgstore".to_owned()
    } else {
        cli.clone()
    };
    let dot_path = args.dir.join(format!("demo-{center}.dot"));
    let mut dot = Vec::new();
    let drawn = formats::export_dot(
        &store,
        &mut dot,
        &DotOptions {
            around: Some(center.clone()),
            depth: Some(1),
        },
        |_| {},
    )?;
    std::fs::write(&dot_path, &dot).with_context(|| format!("writing {}", dot_path.display()))?;
    say(format!(
        "9. The neighbourhood of {center} ({} crates, {} edges) as Graphviz DOT: {}",
        drawn.nodes,
        drawn.edges,
        dot_path.display()
    ))?;
    let png = dot_path.with_extension("png");
    match Command::new("dot")
        .arg("-Tpng")
        .arg("-o")
        .arg(&png)
        .arg(&dot_path)
        .output()
    {
        Ok(o) if o.status.success() => say(format!("   and as a picture: {}\n", png.display()))?,
        _ => say("   (install Graphviz's `dot` to get a PNG picture as well)\n".into())?,
    }

    let backup_dir = args.dir.join("demo-backup");
    clear_previous(&backup_dir, Some(backup::MANIFEST_FILE))?;
    let manifest = backup::backup(&store, &backup_dir)?;
    say("10. Backup → verify → restore into another backend, then compare:".into())?;
    say(format!(
        "   backed up {} nodes, {} edges and {} documents to {}",
        manifest.counts.nodes,
        manifest.counts.edges,
        manifest.counts.documents,
        backup_dir.display()
    ))?;
    let verified = backup::verify(&backup_dir)?;
    if !verified.is_ok() {
        bail!("the demo's backup does not verify: {}", verified.summary());
    }
    say("   verified: every file hash, line, edge endpoint and dependency checks out".into())?;
    let json_dir = args.dir.join("demo-json");
    clear_previous(&json_dir, Some("kgstore-jsonfs.json"))?;
    let json_url = format!("json://{}", json_dir.display());
    let json_store = kgstore::open(&json_url)?;
    let restored = backup::restore_into(&backup_dir, &json_store, RestoreMode::Empty)?;
    say(format!(
        "   restored {} nodes, {} edges and {} documents into {json_url} (one JSON file per \
         node and edge)",
        restored.nodes, restored.edges, restored.documents
    ))?;
    let (a, b) = (export(&store)?, export(&json_store)?);
    if a != b {
        bail!("the SQLite and JSON stores export differently after the restore");
    }
    if all_documents(&store)? != all_documents(&json_store)? {
        bail!("the SQLite and JSON stores hold different documents after the restore");
    }
    say(format!(
        "   both stores export byte for byte the same {} KiB of JSON Lines, timestamps and versions included,",
        a.len() / 1024
    ))?;
    say(format!(
        "   and hold the same {} documents (bytes, SHA-256, versions, times); in the JSON store they are",
        restored.documents
    ))?;
    say(format!(
        "   ordinary files: {},",
        json_dir.join("documents").join(&docs.example).display()
    ))?;
    if json_store.search(&query)? != ranked {
        bail!("the SQLite and JSON stores rank the demo's search differently");
    }
    say(
        "   and rank the search of step 8 identically (FTS5 there, an in-memory index here).\n"
            .into(),
    )?;

    let check = json_store.check()?;
    say(format!(
        "11. Integrity check of the restored store: {} nodes, {} edges, {} problem(s).",
        check.nodes,
        check.edges,
        check.problems.len()
    ))?;
    let git = history_in_git(&backup_dir, &store, &docs.example, &args.dir, &mut say)?;

    say("\n13. The same store as an MCP memory server for AI agents: tool calls as an agent sends them \
         over stdio, here in-process (every call one transaction; the last one fails and changes nothing):"
        .to_owned())?;
    let (mcp_lines, mcp_calls) = super::mcp::demo_calls(&store, &url, &center)?;
    for line in mcp_lines {
        say(line)?;
    }

    let metrics = store.metrics();
    say(
        "\n14. What the SQLite store measured meanwhile (Store::metrics; `kgstore stats --perf` \
         adds up every run on a store):"
            .to_owned(),
    )?;
    for line in super::perf::metrics_summary(&metrics) {
        say(format!("   {line}"))?;
    }

    let (processes, seen) = several_processes(&json_url, &json_store)?;
    say(format!(
        "\n15. Several processes on the JSON-files store: {processes} `kgstore node create` processes \
         wrote at once, taking turns one transaction each, while this process kept the store \
         open; its handle saw all {seen} new nodes at its next read, applying what the others \
         committed from the store's commit log."
    ))?;

    let events = events_step(&store, &mut say)?;

    say("\n17. Screenplays: Fountain scripts as a graph of series, scripts, scenes, characters and locations."
        .to_owned())?;
    let screenplay = super::screenplay::demo_step(&args.dir, &mut say)?;

    let me = how_to_call_me();
    say(format!(
        "\nDone in {:.1} s. Try: {me} --store {url} node get {cli}",
        started.elapsed().as_secs_f64()
    ))?;
    say(format!(
        "                or: {me} --store {url} export --format dot --around serde --depth 1"
    ))?;
    if !human {
        ctx.out.value(&json!({
            "store": url,
            "nodes": stats.nodes,
            "edges": stats.edges,
            "build_order": order,
            "dot": dot_path,
            "backup": backup_dir,
            "json_store": json_url,
            "documents": docs.count,
            "document_bytes": docs.bytes,
            "exports_identical": true,
            "search": ranked,
            "problems": check.problems.len(),
            "git_store": git,
            "mcp_calls": mcp_calls,
            "events": events,
            "metrics": metrics,
            "screenplay": screenplay,
        }))?;
    }
    Ok(())
}

/// Step 16: the event store on the demo's own store — the change feed on, graph changes,
/// documents and events in one transaction, an idempotent retry, a read, and a consumer
/// group over `$changes` that parks one event in the dead-letter queue and replays it.
/// Returns a summary for `--json`.
fn events_step(store: &Store, say: &mut impl FnMut(String) -> Result<()>) -> Result<Value> {
    use kgstore::events::{
        AppendOptions, CHANGES_STREAM, EventRead, ExpectedVersion, GroupOptions, Nack, NewEvent,
        ReadOptions,
    };

    say(
        "\n16. Events: the change feed on, then graph changes, documents and events in one \
         transaction:"
            .to_owned(),
    )?;
    store.set_change_feed(true)?;
    let group = "demo-indexer";
    store.create_group(
        group,
        GroupOptions {
            stream: Some(CHANGES_STREAM.to_owned()),
            start: kgstore::events::StartFrom::End,
            ..GroupOptions::default()
        },
    )?;
    let reviewed = ["serde", "rusqlite", "clap"]
        .into_iter()
        .filter(|name| store.contains_node(name).unwrap_or(false))
        .collect::<Vec<_>>();
    let review = |name: &str| {
        NewEvent::new("crate.reviewed", json!({"crate": name, "verdict": "keep"}))
            .with_id(format!("demo-review-{name}"))
            .with_correlation_id("demo-review")
    };
    let appended = store.write(|tx| {
        let mut events = Vec::new();
        for name in &reviewed {
            let node = tx.get_node(name)?.with_tag("reviewed");
            tx.update_node(node, None)?;
            tx.write_document(
                &format!("reviews/{name}.md"),
                format!("# Review of {name}\n\nVerdict: keep.\n"),
            )?;
            events.push(review(name));
        }
        tx.append_all(
            vec![kgstore::events::Append::new(
                "reviews",
                ExpectedVersion::Any,
                events,
            )],
            &AppendOptions {
                batch: Some("demo-review".to_owned()),
            },
        )
    })?;
    say(format!(
        "    tagged {} crate(s) `reviewed`, wrote reviews/<crate>.md for each and appended {} \
         `crate.reviewed` event(s) to 'reviews' at positions {:?}; the change feed added their \
         node.updated and document.created events to {CHANGES_STREAM}, in the same commit.",
        reviewed.len(),
        appended.positions.len(),
        appended.positions
    ))?;
    let retry = store.append_all(
        vec![kgstore::events::Append::new(
            "reviews",
            ExpectedVersion::NoStream,
            reviewed.iter().map(|n| review(n)),
        )],
        &AppendOptions {
            batch: Some("demo-review".to_owned()),
        },
    )?;
    say(format!(
        "    The same append retried (same event ids): duplicate = {}, positions {:?} — nothing \
         written twice.",
        retry.duplicate, retry.positions
    ))?;
    let page = store.read_stream("reviews", &ReadOptions::backwards(3))?;
    say("    kgstore events read reviews --backwards --limit 3:".to_owned())?;
    for e in &page.events {
        say(format!(
            "      {:>5}  v{}  {}  {}",
            e.position, e.version, e.event_type, e.data
        ))?;
    }

    let consumer = store.consumer(group, "worker-1")?;
    let deliveries = consumer.poll(100)?;
    let mut parked = None;
    for (i, d) in deliveries.iter().enumerate() {
        if i == 0 {
            consumer.nack(
                d,
                &Nack::Park,
                "demo: the indexer could not handle this one",
            )?;
            parked = Some(d.event.position);
        } else {
            consumer.ack(d)?;
        }
    }
    say(format!(
        "    Consumer group '{group}' on {CHANGES_STREAM}: {} delivery(ies); acked {}, parked 1 in \
         the dead-letter queue:",
        deliveries.len(),
        deliveries.len().saturating_sub(1)
    ))?;
    for letter in store.dead_letters(group, None, 10)? {
        say(format!(
            "      position {} ({}, version {} of '{}'): {}, {} attempt(s), error \"{}\"",
            letter.position,
            letter.event_type,
            letter.version,
            letter.stream,
            letter.reason,
            letter.attempts,
            letter.error.as_deref().unwrap_or("")
        ))?;
    }
    let position = parked.context("the change feed recorded nothing")?;
    let queued = store.replay_dead_letters(group, position, position, 100)?;
    let replayed = consumer.poll(10)?;
    for d in &replayed {
        consumer.ack(d)?;
    }
    let status = store.group_status(group)?;
    say(format!(
        "    Replayed {queued} dead letter(s), delivered {} and acked: the group's checkpoint \
         is {} (it did not move back), dead letters {}, acked {} + {} replayed.",
        replayed.len(),
        status.checkpoint,
        status.dead_letters,
        status.counters.acked,
        status.counters.replay_acked
    ))?;
    Ok(json!({
        "appended": appended.positions,
        "retry_duplicate": retry.duplicate,
        "group": group,
        "delivered": deliveries.len(),
        "parked": position,
        "replayed": replayed.len(),
        "checkpoint": status.checkpoint,
        "dead_letters": status.dead_letters,
    }))
}

/// Step 15: starts four `kgstore node create` processes on the JSON-files store at once,
/// while `open` (a handle of this process) keeps it open; returns how many
/// processes ran and how many of their nodes `open` then sees.
fn several_processes(url: &str, open: &Store) -> Result<(usize, u64)> {
    const PROCESSES: usize = 4;
    let me = std::env::current_exe().context("finding the kgstore binary")?;
    let before = open.count_nodes()?;
    let children = (0..PROCESSES)
        .map(|i| {
            Command::new(&me)
                .args(["--store", url, "node", "create"])
                .arg(format!("demo-process-{i}"))
                .args(["-t", "process"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", me.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    for child in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "a writer process failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let seen = open.count_nodes()? - before;
    if seen != PROCESSES as u64 {
        bail!("the open handle sees {seen} of the {PROCESSES} nodes written by other processes");
    }
    Ok((PROCESSES, seen))
}

/// Step 12: the backup restored into a git:// store in one commit (graph and
/// documents, each document a file at its own key), three more commits, then the log,
/// one node's and one document's history, a diff of two revisions and a document at
/// an old revision. Returns the store's URL.
fn history_in_git(
    backup_dir: &Path,
    original: &Store,
    example: &str,
    dir: &Path,
    say: &mut impl FnMut(String) -> Result<()>,
) -> Result<String> {
    use kgstore::{Change, DocumentRead, EntityKey, GraphRead, LogQuery};

    let git_dir = dir.join("demo.git");
    clear_previous(&git_dir, Some("kgstore.lock"))?;
    let url = format!("git://{}", git_dir.display());
    let store = kgstore::open(&url)?;
    let restored = backup::restore_into(backup_dir, &store, RestoreMode::Empty)?;
    if all_documents(original)? != all_documents(&store)? {
        bail!("the SQLite and git stores hold different documents after the restore");
    }
    let intro = format!(
        "12. History: restored the backup into {url} ({} nodes, {} edges, {} documents, one \
         commit; `git clone` shows each document as a file at its own key), then:",
        restored.nodes, restored.edges, restored.documents
    );
    say(String::new())?;
    for (i, line) in wrap(&intro, 90).into_iter().enumerate() {
        say(if i == 0 { line } else { format!("    {line}") })?;
    }
    store.write(|tx| {
        tx.set_message("Note why serde matters")?;
        let node = tx
            .get_node("serde")?
            .with_observation("Every crate here serializes through serde.");
        tx.update_node(node, None)?;
        Ok(())
    })?;
    store.write(|tx| {
        tx.set_message("Tag the workspace's own crates")?;
        let mine = tx.list_nodes(
            &kgstore::NodeFilter {
                name_prefix: Some("kgstore".into()),
                ..kgstore::NodeFilter::default()
            },
            &kgstore::PageRequest::first(100),
        )?;
        for node in mine.items {
            tx.update_node(node.with_tag("workspace"), None)?;
        }
        Ok(())
    })?;
    store.write(|tx| {
        tx.set_message(format!("Review {example}"))?;
        let mut bytes = tx.read_document(example)?;
        bytes.extend_from_slice(b"\n(reviewed in the demo)\n");
        tx.write_document(example, &bytes)?;
        Ok(())
    })?;
    let log = store.log(&LogQuery::new())?;
    say("    kgstore log:".into())?;
    for revision in &log {
        say(format!(
            "      {} {:<24} {}",
            &revision.id[..12],
            revision.author.name,
            revision.summary()
        ))?;
    }
    let serde_log = store.log(&LogQuery::new().key(EntityKey::Node("serde".into())))?;
    say(format!(
        "    kgstore log --node serde: {} commit(s): {}",
        serde_log.len(),
        serde_log
            .iter()
            .map(|r| format!("\"{}\"", r.summary()))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let doc_log = store.log(&LogQuery::new().key(EntityKey::Document(example.to_owned())))?;
    say(format!(
        "    kgstore log --key {example}: {} commit(s): {}",
        doc_log.len(),
        doc_log
            .iter()
            .map(|r| format!("\"{}\"", r.summary()))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let before = &log[log.len().saturating_sub(2)].id;
    let diff = store.diff(before, "main")?;
    let changed: Vec<String> = diff
        .nodes
        .iter()
        .filter_map(|c| match c {
            Change::Changed { new, .. } => Some(new.name.clone()),
            _ => None,
        })
        .collect();
    say(format!(
        "    kgstore diff {} main: {} node(s) changed ({}), {} edge(s), {} schema(s), {} document(s)",
        &before[..12],
        changed.len(),
        changed.join(", "),
        diff.edges.len(),
        diff.schemas.len(),
        diff.documents.len()
    ))?;
    let old = store.read_at(before)?.get_node("serde")?;
    say(format!(
        "    kgstore --at {} node get serde: {} observation(s) then, {} now",
        &before[..12],
        old.observations.len(),
        store.get_node("serde")?.observations.len()
    ))?;
    say(format!(
        "    kgstore show {}:{example}: {} bytes then, {} now",
        &before[..12],
        store.read_at(before)?.stat_document(example)?.size,
        store.stat_document(example)?.size
    ))?;
    Ok(url)
}

/// What the documents step showed.
struct DocsShown {
    count: u64,
    bytes: u64,
    /// A document's key, to show where it lives in the JSON store.
    example: String,
}

/// Step 3: the documents stored with the nodes, listed like folders and read back.
fn documents_step(
    store: &Store,
    files: &[(String, PathBuf)],
    db: &Path,
    say: &mut impl FnMut(String) -> Result<()>,
) -> Result<DocsShown> {
    // A paragraph: its first line as it is, the others indented under it.
    let paragraph = |text: String, say: &mut dyn FnMut(String) -> Result<()>| {
        let indent = if text.starts_with("   ") { "   " } else { "" };
        wrap(text.trim_start(), 87)
            .into_iter()
            .enumerate()
            .try_for_each(|(i, line)| {
                say(if i == 0 {
                    format!("{indent}{line}")
                } else {
                    format!("   {line}")
                })
            })
    };
    let count = store.count_documents()?;
    paragraph(
        format!(
            "3. Documents beside the graph: {count} files (each workspace crate's Cargo.toml, and \
             its README where it has one) went in with their nodes, under their paths in the \
             workspace; each node lists its keys in the attribute `documents`."
        ),
        say,
    )?;
    let top = store.list_documents(&DocumentQuery::prefix("").folders())?;
    let mut entries: Vec<String> = top.folders.clone();
    entries.extend(top.documents.iter().map(|d| d.key.clone()));
    entries.sort();
    paragraph(
        format!(
            "   `doc ls --delimiter /` lists them like folders: {}",
            entries.join(", ")
        ),
        say,
    )?;
    let crates = store.list_documents(&DocumentQuery::prefix("crates/").folders().limit(4))?;
    let more = if crates.next_cursor.is_some() {
        ", …"
    } else {
        ""
    };
    paragraph(
        format!(
            "   `doc ls crates/ --delimiter / --limit 4`: {}{more}",
            crates.folders.join(", ")
        ),
        say,
    )?;
    // Every document read back and compared with its file, byte for byte.
    let mut bytes = 0;
    for (key, file) in files {
        let stored = store.read_document(key)?;
        let on_disk = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if stored != on_disk {
            bail!("the document {key} differs from {}", file.display());
        }
        bytes += stored.len() as u64;
    }
    let example = files
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| *k == "crates/kgstore-cli/Cargo.toml")
        .or_else(|| files.first().map(|(k, _)| k.as_str()))
        .unwrap_or("")
        .to_owned();
    if !example.is_empty() {
        let meta = store.stat_document(&example)?;
        paragraph(
            format!(
                "   Read back all {count} ({} KiB), each equal to its file. `doc stat {example}`: \
                 {} bytes, {}, version {}, sha256 {}…",
                bytes / 1024,
                meta.size,
                meta.content_type,
                meta.version,
                &meta.sha256.to_hex()[..16]
            ),
            say,
        )?;
        say(format!(
            "   (`kgstore --store sqlite://{} doc get {example}` prints it)\n",
            db.display()
        ))?;
    }
    Ok(DocsShown {
        count,
        bytes,
        example,
    })
}

/// Every document of a store with its metadata and bytes, in key order.
fn all_documents(store: &Store) -> Result<Vec<(kgstore::DocumentMeta, Vec<u8>)>> {
    let snapshot = store.read()?;
    let mut out = Vec::new();
    let mut query = DocumentQuery::prefix("").limit(1000);
    loop {
        let page = snapshot.list_documents(&query)?;
        for meta in page.documents {
            let bytes = snapshot.read_document(&meta.key)?;
            out.push((meta, bytes));
        }
        match page.next_cursor {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    Ok(out)
}

fn export(store: &Store) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    formats::export_jsonl(store, &mut out, |_| {})?;
    Ok(out)
}

fn most_common_license(store: &Store) -> Result<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store.list_nodes(&NodeFilter::default().of_type("crate"), &page)?;
        for node in &got.items {
            if let Some(license) = node.attributes.get("license").and_then(Value::as_str) {
                *counts.entry(license.to_owned()).or_default() += 1;
            }
        }
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    Ok(counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(l, _)| l)
        .unwrap_or_default())
}

/// Splits a long line at spaces.
/// How the user can run this binary again: its path relative to the current folder
/// when it lies below it (as after `cargo run`), else `kgstore` (installed on PATH).
fn how_to_call_me() -> String {
    let exe = std::env::current_exe().ok();
    let here = std::env::current_dir().ok();
    match (exe, here) {
        (Some(exe), Some(here)) => match exe.strip_prefix(&here) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => "kgstore".to_owned(),
        },
        _ => "kgstore".to_owned(),
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().map(|l| l.chars().count()).unwrap_or(0);
        if last > 0 && last + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        if let Some(line) = lines.last_mut() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}
