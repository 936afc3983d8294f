//! A short tour of kgstore: builds a small knowledge graph and shows what the
//! store does with it. Run with `cargo run --release -p kgstore --example quickstart`.

use kgstore::{
    Direction, Edge, EdgeFilter, GraphRead, Node, NodeFilter, OnDependents, PageRequest,
    PathOptions, RelationType, SchemaTarget, TraverseOptions,
};
use serde_json::json;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), kgstore::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    println!("Opening {url}");
    let store = kgstore::open(&url)?;
    // The tour builds its graph from nothing: a store that already holds one (a
    // second run on the same file) would refuse the first node as a duplicate.
    let held = store.count_nodes()?;
    if held > 0 {
        return Err(kgstore::Error::invalid_input(
            format!("store {url}"),
            format!("holds {held} node(s); the tour needs an empty store: give a new path"),
        ));
    }

    println!("\n1. A schema for the attributes of every `service` node.");
    store.set_schema(
        SchemaTarget::NodeType("service".into()),
        json!({
            "type": "object",
            "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}, "lang": {"type": "string"}},
            "required": ["port"]
        }),
    )?;

    println!("2. One transaction: services, their dependencies and calls between them.");
    store.write(|tx| {
        for (name, lang, port, deps) in [
            ("database", "c", 5432, vec![]),
            ("cache", "c", 6379, vec![]),
            ("auth", "rust", 8001, vec!["database"]),
            ("catalogue", "go", 8002, vec!["database", "cache"]),
            ("orders", "rust", 8003, vec!["auth", "catalogue"]),
            ("gateway", "rust", 8000, vec!["auth", "orders", "catalogue"]),
        ] {
            let node = deps
                .into_iter()
                .fold(Node::new(name, "service")?, |n, d| n.with_dependency(d))
                .with_attribute("lang", json!(lang))
                .with_attribute("port", json!(port))
                .with_observation(format!("{name} listens on port {port}"));
            tx.create_node(node)?;
        }
        for (from, to, latency_ms) in [
            ("gateway", "auth", 3.0),
            ("gateway", "orders", 12.0),
            ("gateway", "catalogue", 20.0),
            ("orders", "catalogue", 4.0),
            ("orders", "auth", 2.0),
            ("catalogue", "cache", 1.0),
        ] {
            tx.create_edge(Edge::new(from, RelationType::Calls, to)?.with_weight(latency_ms))?;
        }
        Ok(())
    })?;
    let stats = store.stats()?;
    println!(
        "   The store holds {} nodes and {} edges.",
        stats.nodes, stats.edges
    );

    println!("\n3. Bad input is refused, with every violation named, and nothing is written:");
    let bad = Node::new("billing", "service")?
        .with_attribute("port", json!(70000))
        .with_dependency("ledger");
    match store.create_node(bad) {
        Err(e) => println!("   {e}"),
        Ok(_) => println!("   (unexpectedly accepted)"),
    }
    let cycle = store.get_node("database")?.with_dependency("gateway");
    match store.update_node(cycle, None) {
        Err(e) => println!("   {e}"),
        Ok(_) => println!("   (unexpectedly accepted)"),
    }

    println!("\n4. Start-up order of the gateway (its dependencies, dependencies first):");
    println!("   {}", store.resolve_dependencies("gateway")?.join(" → "));
    println!(
        "   Who must restart if the database changes: {}",
        store.dependents("database")?.join(", ")
    );

    println!("\n5. Queries:");
    let rust = store.list_nodes(
        &NodeFilter::default().where_eq("/lang", json!("rust")),
        &PageRequest::default(),
    )?;
    let names: Vec<&str> = rust.items.iter().map(|n| n.name.as_str()).collect();
    println!("   services written in Rust: {}", names.join(", "));
    let slow = store.list_edges(
        &EdgeFilter::default().with_min_weight(10.0),
        &PageRequest::default(),
    )?;
    for edge in slow.items {
        println!("   slow call: {} ({} ms)", edge.key(), edge.metadata.weight);
    }
    let reach = store.traverse(
        "orders",
        &TraverseOptions::depth(2).direction(Direction::Out),
    )?;
    let reach: Vec<String> = reach
        .iter()
        .map(|v| format!("{} (hop {})", v.name, v.depth))
        .collect();
    println!("   reached from orders in two calls: {}", reach.join(", "));
    if let Some(path) = store.shortest_path("gateway", "cache", &PathOptions::weighted())? {
        println!(
            "   fastest call path gateway → cache: {} ({} ms)",
            path.nodes.join(" → "),
            path.cost
        );
    }

    println!("\n6. Deleting a node others depend on needs a policy:");
    match store.delete_node("cache", OnDependents::Refuse) {
        Err(e) => println!("   refused: {e}"),
        Ok(_) => println!("   (unexpectedly deleted)"),
    }
    let report = store.delete_node("cache", OnDependents::Detach)?;
    println!(
        "   detached from {} and deleted with {} edge(s); catalogue is now at version {}",
        report.detached.join(", "),
        report.edges_removed,
        store.get_node("catalogue")?.metadata.version
    );

    let check = store.check()?;
    println!(
        "\n7. Integrity check: {} nodes, {} edges, {} problem(s).",
        check.nodes,
        check.edges,
        check.problems.len()
    );
    Ok(())
}
