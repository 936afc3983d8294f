//! Listing with filters and keyset pagination.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Fixture, edge, kind_of, names_of, thing, things};
use crate::{
    Cursor, Edge, EdgeFilter, ErrorKind, GraphRead, Node, NodeFilter, PageRequest, RelationType,
    Store, Timestamp,
};

use RelationType::{Calls, Contains, References};

/// Crates and people with tags, statuses and attributes.
fn catalogue(s: &Store) {
    s.create_nodes([
        Node::new("serde", "crate")
            .unwrap()
            .with_attribute("lang", json!("rust"))
            .with_attribute("meta", json!({"stars": 9000, "license": "MIT"}))
            .with_tag("popular")
            .with_tag("serialization")
            .with_status("stable")
            .with_observation("Serialization framework for Rust"),
        Node::new("serde_json", "crate")
            .unwrap()
            .with_attribute("lang", json!("rust"))
            .with_tag("popular")
            .with_tag("json")
            .with_status("stable")
            .with_observation("A JSON serialization file format"),
        Node::new("simd-json", "crate")
            .unwrap()
            .with_attribute("lang", json!("rust"))
            .with_tag("json")
            .with_status("experimental")
            .with_observation("High performance JSON parser"),
        Node::new("json5", "library")
            .unwrap()
            .with_attribute("lang", json!("javascript"))
            .with_tag("json"),
        Node::new("ann", "person")
            .unwrap()
            .with_attribute("lang", json!(["rust", "go"])),
        Node::new("bob", "person")
            .unwrap()
            .with_status("stable")
            .with_observation("Maintains serde_JSON docs"),
    ])
    .unwrap();
}

fn names(s: &Store, filter: NodeFilter) -> Vec<String> {
    names_of(
        &s.list_nodes(&filter, &PageRequest::default())
            .unwrap()
            .items,
    )
}

pub fn list_nodes_by_type(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().of_type("crate")),
        ["serde", "serde_json", "simd-json"]
    );
    assert_eq!(
        names(
            s,
            NodeFilter::default().of_type("person").of_type("library")
        ),
        ["ann", "bob", "json5"]
    );
    assert!(names(s, NodeFilter::default().of_type("nothing")).is_empty());
    assert_eq!(names(s, NodeFilter::default()).len(), 6);
}

pub fn list_nodes_by_name_prefix(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().with_name_prefix("serde")),
        ["serde", "serde_json"]
    );
    assert_eq!(
        names(s, NodeFilter::default().with_name_prefix("serde_")),
        ["serde_json"]
    );
    assert!(
        names(s, NodeFilter::default().with_name_prefix("Serde")).is_empty(),
        "prefixes are case-sensitive"
    );
    assert_eq!(
        names(s, NodeFilter::default().with_name_prefix("")).len(),
        6
    );
    // Prefixes with LIKE/GLOB wildcards are literal.
    things(s, &["50%_off", "50x_off", "a*b", "a?b"]);
    assert_eq!(
        names(s, NodeFilter::default().with_name_prefix("50%")),
        ["50%_off"]
    );
    assert_eq!(
        names(s, NodeFilter::default().with_name_prefix("a*")),
        ["a*b"]
    );
}

pub fn list_nodes_by_tags(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().with_tag("json")),
        ["json5", "serde_json", "simd-json"]
    );
    assert_eq!(
        names(
            s,
            NodeFilter::default().with_tag("json").with_tag("popular")
        ),
        ["serde_json"]
    );
    assert!(
        names(s, NodeFilter::default().with_tag("jso")).is_empty(),
        "tags match whole"
    );
}

pub fn list_nodes_by_status(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().with_status("stable")),
        ["bob", "serde", "serde_json"]
    );
    assert_eq!(
        names(s, NodeFilter::default().with_status("experimental")),
        ["simd-json"]
    );
}

pub fn list_nodes_by_attribute(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().where_eq("/lang", json!("rust"))),
        ["serde", "serde_json", "simd-json"]
    );
    assert_eq!(
        names(
            s,
            NodeFilter::default().where_eq("/meta/stars", json!(9000))
        ),
        ["serde"]
    );
    assert_eq!(
        names(
            s,
            NodeFilter::default().where_eq("/meta/license", json!("MIT"))
        ),
        ["serde"]
    );
    assert_eq!(
        names(
            s,
            NodeFilter::default().where_eq("/lang", json!(["rust", "go"]))
        ),
        ["ann"]
    );
    assert_eq!(
        names(s, NodeFilter::default().where_eq("/lang/0", json!("rust"))),
        ["ann"]
    );
    assert!(
        names(
            s,
            NodeFilter::default().where_eq("/meta/stars", json!("9000"))
        )
        .is_empty(),
        "types matter"
    );
    assert!(names(s, NodeFilter::default().where_eq("/missing", json!(null))).is_empty());
}

pub fn list_nodes_updated_since(f: Fixture) {
    let s = &f.store;
    things(s, &["a", "b"]);
    let cut = s.get_node("b").unwrap().metadata.updated_at;
    let later = Timestamp::from_micros(cut.as_micros() + 1).unwrap();
    // Make sure the clock has moved past the cut before writing again.
    while Timestamp::now() <= later {
        std::thread::yield_now();
    }
    let a = s.get_node("a").unwrap();
    s.update_node(a.with_observation("touched"), None).unwrap();
    s.create_node(thing("c")).unwrap();
    assert_eq!(
        names(s, NodeFilter::default().updated_since(later)),
        ["a", "c"]
    );
    assert_eq!(
        names(s, NodeFilter::default().updated_since(cut)),
        ["a", "b", "c"]
    );
}

pub fn list_nodes_by_text(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    assert_eq!(
        names(s, NodeFilter::default().containing("json")),
        ["bob", "json5", "serde_json", "simd-json"]
    );
    assert_eq!(
        names(s, NodeFilter::default().containing("FRAMEWORK")),
        ["serde"]
    );
    assert_eq!(
        names(s, NodeFilter::default().containing("rde_j")),
        ["bob", "serde_json"]
    );
    assert!(
        names(s, NodeFilter::default().containing("%")).is_empty(),
        "wildcards are literal"
    );
}

pub fn list_nodes_with_combined_filters(f: Fixture) {
    let s = &f.store;
    catalogue(s);
    let filter = NodeFilter::default()
        .of_type("crate")
        .with_tag("json")
        .with_status("stable")
        .where_eq("/lang", json!("rust"))
        .containing("format");
    assert_eq!(names(s, filter), ["serde_json"]);
    let filter = NodeFilter::default()
        .of_type("crate")
        .with_name_prefix("s")
        .with_tag("popular");
    assert_eq!(names(s, filter), ["serde", "serde_json"]);
}

/// Every node through pages of `limit`, checking the cursors as it goes.
fn all_pages(s: &Store, filter: &NodeFilter, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = s.list_nodes(filter, &request).unwrap();
        assert!(page.items.len() <= limit);
        out.extend(names_of(&page.items));
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    limit,
                    "only full pages have a next cursor"
                );
                request = request.after(Some(cursor));
            }
            None => return out,
        }
    }
    panic!("pagination did not end");
}

pub fn list_nodes_pages_without_skips_or_repeats(f: Fixture) {
    let s = &f.store;
    let names: Vec<String> = (0..53).map(|i| format!("n{i:03}")).collect();
    s.create_nodes(
        names
            .iter()
            .map(|n| Node::new(n, if n.ends_with('0') { "ten" } else { "other" }).unwrap()),
    )
    .unwrap();
    for limit in [1, 7, 10, 53, 54, 100] {
        assert_eq!(
            all_pages(s, &NodeFilter::default(), limit),
            names,
            "limit {limit}"
        );
    }
    let tens: Vec<String> = names.iter().filter(|n| n.ends_with('0')).cloned().collect();
    assert_eq!(all_pages(s, &NodeFilter::default().of_type("ten"), 2), tens);
}

pub fn list_nodes_pagination_is_stable_under_inserts(f: Fixture) {
    let s = &f.store;
    let originals: Vec<String> = (0..40).map(|i| format!("m{:02}", i * 2)).collect();
    s.create_nodes(originals.iter().map(|n| thing(n))).unwrap();
    let mut seen = Vec::new();
    let mut request = PageRequest::first(6);
    let mut round = 0;
    loop {
        let page = s.list_nodes(&NodeFilter::default(), &request).unwrap();
        seen.extend(names_of(&page.items));
        // Between pages, others insert before and after the cursor and delete behind it.
        s.create_node(thing(&format!("m{:02}", round * 2 + 1)))
            .unwrap();
        s.create_node(thing(&format!("a{round:02}"))).unwrap();
        s.create_node(thing(&format!("z{round:02}"))).unwrap();
        round += 1;
        match page.next_cursor {
            Some(c) => request = request.after(Some(c)),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats");
    for name in &originals {
        assert!(seen.contains(name), "{name} skipped");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in key order");
}

pub fn list_invalid_page_requests_are_refused(f: Fixture) {
    let s = &f.store;
    things(s, &["a"]);
    let all = NodeFilter::default();
    assert_eq!(
        kind_of(s.list_nodes(&all, &PageRequest::first(0))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_nodes(&all, &PageRequest::first(crate::filter::MAX_PAGE_LIMIT + 1))),
        ErrorKind::InvalidInput
    );
    for garbage in ["", "zzz", "n4", "nzz", "e61.62"] {
        let request = PageRequest::first(5).after(Some(garbage.parse::<Cursor>().unwrap()));
        let err = s.list_nodes(&all, &request).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{garbage}");
        assert!(err.to_string().contains("cursor"), "{err}");
    }
    // A node cursor is not an edge cursor.
    let node_cursor = PageRequest::first(1).after(Some(Cursor::after_node("a")));
    assert_eq!(
        kind_of(s.list_edges(&EdgeFilter::default(), &node_cursor)),
        ErrorKind::InvalidInput
    );
}

fn edge_graph(s: &Store) {
    things(s, &["a", "b", "c", "d"]);
    s.create_edges([
        edge("a", Calls, "b")
            .with_weight(1.0)
            .with_attribute("via", json!("http")),
        edge("a", Calls, "c").with_weight(5.0),
        edge("a", Contains, "d").with_weight(0.5),
        edge("b", Calls, "c")
            .with_weight(2.0)
            .with_attribute("via", json!("grpc")),
        edge("c", References, "a")
            .with_weight(3.0)
            .with_attribute("via", json!("http")),
        edge("d", Calls, "c"),
    ])
    .unwrap();
}

fn edge_keys(s: &Store, filter: EdgeFilter) -> Vec<String> {
    s.list_edges(&filter, &PageRequest::default())
        .unwrap()
        .items
        .iter()
        .map(|e| e.key().to_string())
        .collect()
}

pub fn list_edges_by_filters(f: Fixture) {
    let s = &f.store;
    edge_graph(s);
    assert_eq!(edge_keys(s, EdgeFilter::default()).len(), 6);
    assert_eq!(
        edge_keys(s, EdgeFilter::default().from_node("a")),
        ["a -[calls]-> b", "a -[calls]-> c", "a -[contains]-> d"]
    );
    assert_eq!(
        edge_keys(s, EdgeFilter::default().to_node("c")),
        ["a -[calls]-> c", "b -[calls]-> c", "d -[calls]-> c"]
    );
    assert_eq!(
        edge_keys(s, EdgeFilter::default().from_node("a").to_node("c")),
        ["a -[calls]-> c"]
    );
    assert_eq!(
        edge_keys(
            s,
            EdgeFilter::default()
                .of_relation(Contains)
                .of_relation(References)
        ),
        ["a -[contains]-> d", "c -[references]-> a"]
    );
    assert_eq!(
        edge_keys(s, EdgeFilter::default().with_min_weight(2.0)),
        ["a -[calls]-> c", "b -[calls]-> c", "c -[references]-> a"]
    );
    assert_eq!(
        edge_keys(s, EdgeFilter::default().where_eq("/via", json!("http"))),
        ["a -[calls]-> b", "c -[references]-> a"]
    );
    assert_eq!(
        edge_keys(
            s,
            EdgeFilter::default()
                .of_relation(Calls)
                .where_eq("/via", json!("grpc"))
                .with_min_weight(1.0)
        ),
        ["b -[calls]-> c"]
    );
    assert!(edge_keys(s, EdgeFilter::default().from_node("ghost")).is_empty());
}

pub fn list_edges_pages_without_skips_or_repeats(f: Fixture) {
    let s = &f.store;
    let names: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    s.create_nodes(names.iter().map(|n| thing(n))).unwrap();
    let mut all = Vec::new();
    for from in &names {
        for to in &names {
            for rel in [Calls, References] {
                all.push(edge(from, rel, to));
            }
        }
    }
    s.create_edges(all.clone()).unwrap();
    let mut expected: Vec<String> = all
        .iter()
        .map(|e| e.key())
        .collect::<BTreeSet<_>>()
        .iter()
        .map(ToString::to_string)
        .collect();
    expected.dedup();
    for (filter, limit) in [
        (EdgeFilter::default(), 9),
        (EdgeFilter::default().from_node("v3"), 4),
        (EdgeFilter::default().to_node("v5"), 3),
    ] {
        let mut got = Vec::new();
        let mut request = PageRequest::first(limit);
        loop {
            let page = s.list_edges(&filter, &request).unwrap();
            got.extend(page.items.iter().map(|e| e.key().to_string()));
            match page.next_cursor {
                Some(c) => request = request.after(Some(c)),
                None => break,
            }
        }
        let want: Vec<String> = all
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.key())
            .collect::<BTreeSet<_>>()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, want);
    }
    assert_eq!(expected.len(), 128);
}

pub fn list_invalid_filters_are_refused(f: Fixture) {
    let s = &f.store;
    let page = PageRequest::default();
    assert_eq!(
        kind_of(s.list_nodes(&NodeFilter::default().of_type("Not A Type"), &page)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_nodes(&NodeFilter::default().where_eq("lang", json!(1)), &page)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_nodes(&NodeFilter::default().where_eq("", json!(1)), &page)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_nodes(&NodeFilter::default().where_eq("/a~2", json!(1)), &page)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind_of(s.list_edges(&EdgeFilter::default().with_min_weight(f64::NAN), &page)),
        ErrorKind::InvalidInput
    );
    let bad_rel = EdgeFilter::default().of_relation(RelationType::Custom("NOPE".into()));
    assert_eq!(
        kind_of(s.list_edges(&bad_rel, &page)),
        ErrorKind::InvalidInput
    );
}

/// `each_node` and `each_edge` (one ordered scan where a backend has one) give
/// exactly what listing every page gives, across more than one default page,
/// with names whose order differs from their creation order; an error of the
/// callback ends the scan and comes back.
pub fn whole_scans_list_what_pages_list(f: Fixture) {
    let s = &f.store;
    // Created in numeric order, listed in byte order (n10 before n2).
    let names: Vec<String> = (0..1_050).rev().map(|i| format!("n{i}")).collect();
    s.create_nodes(names.iter().map(|n| thing(n).with_attribute("i", json!(n))))
        .unwrap();
    let mut edges = Vec::new();
    for (i, from) in names.iter().enumerate().take(525) {
        for step in [1, 7] {
            let to = &names[(i * 31 + step) % names.len()];
            if to != from {
                edges.push(edge(from, if step == 1 { Calls } else { References }, to));
            }
        }
    }
    s.create_edges(edges).unwrap();

    let mut paged_nodes = Vec::new();
    let mut request = PageRequest::first(100);
    loop {
        let page = s.list_nodes(&NodeFilter::default(), &request).unwrap();
        paged_nodes.extend(page.items);
        match page.next_cursor {
            Some(c) => request = request.after(Some(c)),
            None => break,
        }
    }
    let mut scanned_nodes = Vec::new();
    s.each_node(|n| {
        scanned_nodes.push(n.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(scanned_nodes.len(), 1_050);
    assert_eq!(scanned_nodes, paged_nodes);

    let mut paged_edges = Vec::new();
    let mut request = PageRequest::first(100);
    loop {
        let page = s.list_edges(&EdgeFilter::default(), &request).unwrap();
        paged_edges.extend(page.items);
        match page.next_cursor {
            Some(c) => request = request.after(Some(c)),
            None => break,
        }
    }
    let mut scanned_edges = Vec::new();
    let snapshot = s.read().unwrap();
    snapshot
        .each_edge(|e| {
            scanned_edges.push(e.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(scanned_edges.len(), 1_050);
    assert_eq!(scanned_edges, paged_edges);

    let mut seen = 0;
    let stopped = s.each_node(|_| {
        seen += 1;
        if seen == 3 {
            Err(crate::Error::invalid_input("the test", "stops the scan"))
        } else {
            Ok(())
        }
    });
    assert_eq!(kind_of(stopped), ErrorKind::InvalidInput);
    assert_eq!(seen, 3);
}

/// `each_node_json` and `each_edge_json` (written straight from the rows where a
/// backend can) give, byte for byte, what `serde_json` gives for each node and
/// edge of `each_node` and `each_edge`: every optional field set and unset, names
/// and texts that need escaping or are not ASCII, nested attributes, weights and
/// confidences of every shape of float. A backup's lines are these bytes.
pub fn json_scans_encode_what_scans_give(f: Fixture) {
    let s = &f.store;
    let odd = "q\"uote\\back/slash é 漢字 🦀";
    let ctl = "tab\there, line\nbreak, \u{1}";
    s.create_nodes([
        thing("a"),
        thing(odd)
            .with_observation(ctl)
            .with_attribute("ctl", json!(ctl))
            .with_observation(odd)
            .with_attribute("z", json!(null))
            .with_attribute(
                "a",
                json!({"nested": [1, -2, 3.5, 1e-7, 2.5e20, true, "x\"y"]}),
            )
            .with_attribute("é", json!(0.1))
            .with_tag("t2")
            .with_tag(odd)
            .with_status("stable")
            .with_author(odd)
            .with_source("src"),
        thing("b")
            .with_dependency("a")
            .with_dependency(odd)
            .with_author("me"),
        Node::new("c", "other")
            .unwrap()
            .with_attribute("big", json!(u64::MAX)),
    ])
    .unwrap();
    let custom = RelationType::parse("made_of").unwrap();
    s.create_edges([
        edge("a", Calls, "b"),
        edge("a", References, odd)
            .with_weight(0.1)
            .with_confidence(1.0 / 3.0)
            .with_source(odd)
            .with_attribute("k", json!([odd, 1, {"b": 2, "a": 1}]))
            .bidirectional(),
        edge(odd, Calls, "a").with_weight(123_456_789.125),
        edge("b", custom, "c").with_weight(0.0).with_confidence(0.0),
        edge("c", Contains, "a")
            .with_weight(2.5e20)
            .with_attribute("n", json!(-0.0)),
    ])
    .unwrap();
    // An update gives versions and times that differ from the creation's.
    let mut later = s.get_node(odd).unwrap();
    later.observations.push("later".into());
    s.update_node(later, None).unwrap();

    let snapshot = s.read().unwrap();
    lines_are_serde_s(&snapshot, Scan::Nodes, 4);
    lines_are_serde_s(&snapshot, Scan::Edges, 5);

    // An error of the callback ends the scan and comes back.
    let mut seen = 0;
    let stopped = snapshot.each_edge_json(|_| {
        seen += 1;
        Err(crate::Error::invalid_input("the test", "stops the scan"))
    });
    assert_eq!(kind_of(stopped), ErrorKind::InvalidInput);
    assert_eq!(seen, 1);
}

/// `each_edge_json` hands edges over in key order — by `to` name in byte order
/// within each source and relation — whatever order they and their nodes were
/// created in (a backend may read a source's edges in another order and sort
/// them itself): names whose escaped JSON sorts otherwise than their bytes
/// (`a"` before `a#`, but `"a\""` after `"a#"`), numbers that sort as text, and
/// one source with 700 edges of one relation, more than a backend handles in
/// one batch. The lines are those of `each_edge`, in its order.
pub fn json_edge_scans_come_in_key_order(f: Fixture) {
    let s = &f.store;
    let mut targets: Vec<String> = ["a#", "a\"", "a!", "é", "z", "t10", "t9", "t1"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    targets.extend((0..700).map(|i| format!("n{i}")));
    // Created in reverse order, so creation order is not name order.
    s.create_nodes(
        targets
            .iter()
            .rev()
            .map(|n| thing(n))
            .chain([thing("src"), thing("b")]),
    )
    .unwrap();
    let custom = RelationType::parse("made_of").unwrap();
    let mut edges = Vec::new();
    for (i, to) in targets.iter().enumerate().rev() {
        edges.push(edge("src", References, to));
        if i < 8 {
            edges.push(edge("src", Calls, to));
            edges.push(edge("src", custom.clone(), to));
            edges.push(edge(to, Contains, "src"));
            edges.push(edge("b", Calls, to));
        }
    }
    s.create_edges(edges).unwrap();

    let snapshot = s.read().unwrap();
    let mut expected = Vec::new();
    snapshot
        .each_edge(|e| {
            expected.push(serde_json::to_vec(e).unwrap());
            Ok(())
        })
        .unwrap();
    let mut keys = Vec::new();
    let mut written = Vec::new();
    snapshot
        .each_edge_json(|line| {
            let edge: crate::Edge = serde_json::from_slice(line).unwrap();
            keys.push(edge.key());
            written.push(line.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!(keys.len(), 708 + 8 * 4);
    for pair in keys.windows(2) {
        assert!(
            (
                pair[0].from.as_bytes(),
                pair[0].relation_type.as_str(),
                pair[0].to.as_bytes()
            ) < (
                pair[1].from.as_bytes(),
                pair[1].relation_type.as_str(),
                pair[1].to.as_bytes()
            ),
            "{:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
    assert_eq!(written, expected);
}

/// `each_edge_json` writes the few edges that are not plain among many plain ones
/// (a confidence, a source, attributes, bidirectional, an update's version and
/// time) as `serde_json` writes them, in `each_edge`'s order: fewer than one edge
/// in sixteen is not plain here (the case a scan specialised for plain edges, such
/// as session 16's lean statement on branch `s16-backup`, would have to get right).
pub fn json_edge_scans_write_rare_rich_edges_among_plain_ones(f: Fixture) {
    let s = &f.store;
    let odd = "q\"uote é 🦀";
    let names: Vec<String> = (0..70).map(|i| format!("n{i:02}")).collect();
    s.create_nodes(
        names
            .iter()
            .map(|n| thing(n))
            .chain([thing("hub"), thing(odd)]),
    )
    .unwrap();
    let mut edges: Vec<Edge> = names
        .iter()
        .map(|n| edge("hub", References, n).with_weight(0.5))
        .collect();
    edges.push(
        edge("hub", Calls, "n03")
            .with_confidence(1.0 / 3.0)
            .with_source(odd)
            .with_attribute("k", json!([odd, 1, {"b": 2, "a": 1}])),
    );
    edges.push(edge("n05", References, "hub").bidirectional());
    edges.push(edge("n07", Contains, odd).with_weight(2.5e20));
    s.create_edges(edges).unwrap();
    let mut later = s.get_edge(&edge("n07", Contains, odd).key()).unwrap();
    later.metadata.weight = 3.0;
    s.update_edge(later, None).unwrap();

    let snapshot = s.read().unwrap();
    lines_are_serde_s(&snapshot, Scan::Edges, 73);
}

/// Which whole scan [`lines_are_serde_s`] compares.
#[derive(Clone, Copy)]
enum Scan {
    Nodes,
    Edges,
}

/// `each_node_json` (or `each_edge_json`) writes, line for line, what `serde_json`
/// writes of the nodes `each_node` (the edges `each_edge`) gives, and there are
/// `count` of them.
fn lines_are_serde_s(snapshot: &impl GraphRead, scan: Scan, count: usize) {
    fn serde_line<T: serde::Serialize>(
        out: &mut Vec<Vec<u8>>,
    ) -> impl FnMut(&T) -> crate::Result<()> + '_ {
        |item| {
            out.push(serde_json::to_vec(item).unwrap());
            Ok(())
        }
    }
    let mut expected = Vec::new();
    let mut written = Vec::new();
    let line = |line: &[u8]| {
        written.push(line.to_vec());
        Ok(())
    };
    match scan {
        Scan::Nodes => {
            snapshot.each_node(serde_line(&mut expected)).unwrap();
            snapshot.each_node_json(line).unwrap();
        }
        Scan::Edges => {
            snapshot.each_edge(serde_line(&mut expected)).unwrap();
            snapshot.each_edge_json(line).unwrap();
        }
    }
    assert_eq!(expected.len(), count);
    for (w, e) in written.iter().zip(&expected) {
        assert_eq!(String::from_utf8_lossy(w), String::from_utf8_lossy(e));
    }
    assert_eq!(written, expected);
}
