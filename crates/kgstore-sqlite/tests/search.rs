//! The SQLite search index: kept in the store's transactions, found out by
//! `check` when something wrote behind its back, rebuilt by `optimize`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{options, raw, store, temp_db};
use kgstore_core::suite::search::{check_against_reference, quality_corpus};
use kgstore_core::{ErrorKind, GraphRead, Node, SearchQuery};
use kgstore_sqlite::SqliteBackend;

fn names(s: &impl GraphRead, query: &str) -> Vec<String> {
    s.search(&SearchQuery::new(query).limit(50))
        .unwrap()
        .items
        .into_iter()
        .map(|h| h.name)
        .collect()
}

/// Brings the search index up to date for every node written (format 8 indexes
/// written nodes later): a write transaction's search does it first.
fn index_now(s: &kgstore_core::Store, path: &std::path::Path) {
    s.write(|tx| tx.search(&SearchQuery::new("a")).map(|_| ()))
        .unwrap();
    assert_eq!(listed(path), 0);
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    raw(path).query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_node_changed_behind_the_index_is_reported_and_optimize_rebuilds_it() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    quality_corpus(&s);
    assert!(s.check().unwrap().is_ok());
    index_now(&s, &path);
    // What a kgstore without search (format 1) would do to a migrated file:
    // change and add nodes without touching the index (the node counts by type
    // of format 10 are kept right, so that only the index is wrong).
    let conn = raw(&path);
    conn.execute_batch(
        "UPDATE nodes SET observations = '[\"Crossing the zebra\"]'
           WHERE id = (SELECT id FROM names WHERE name = 'Bob');
         INSERT INTO names(name) VALUES ('Ghost');
         INSERT INTO nodes(id, node_type, created_at, updated_at, version, observations,
                           attributes, tags, dependencies)
           SELECT id, 'thing', 0, 0, 1, '[\"a zebra too\"]', '{}', '[]', '[]'
           FROM names WHERE name = 'Ghost';
         INSERT INTO node_type_counts(node_type, nodes) VALUES ('thing', 1)
           ON CONFLICT(node_type) DO UPDATE SET nodes = nodes + 1;",
    )
    .unwrap();
    drop(conn);
    let report = s.check().unwrap();
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("node 'Ghost'") && p.contains("not in the search index")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("node 'Bob'") && p.contains("differs from its content")),
        "{problems:?}"
    );
    assert!(names(&s, "zebra").is_empty(), "the stale index cannot know");
    s.optimize().unwrap();
    assert!(
        s.check().unwrap().is_ok(),
        "{:?}",
        s.check().unwrap().problems
    );
    assert_eq!(names(&s, "zebra"), ["Bob", "Ghost"]);
    check_against_reference(&s, &SearchQuery::new("zebra tea").limit(3));
}

#[test]
fn optimize_drops_terms_nothing_holds_any_more() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_node(
        Node::new("a", "thing")
            .unwrap()
            .with_observation("xylophone"),
    )
    .unwrap();
    index_now(&s, &path);
    // (Recorded among the waiting terms first.)
    let held = "SELECT (SELECT count(*) FROM search_terms WHERE term = 'xylophone') \
                + (SELECT count(*) FROM search_terms_pending WHERE term = 'xylophone')";
    assert_eq!(count(&path, held), 1);
    s.update_node(Node::new("a", "thing").unwrap(), None)
        .unwrap();
    // Stale terms only cost a look when searching inside words…
    assert_eq!(count(&path, held), 1);
    assert!(names(&s, "lophone").is_empty());
    // …and optimize drops them.
    s.optimize().unwrap();
    assert_eq!(count(&path, held), 0);
    assert!(s.check().unwrap().is_ok());
}

#[test]
fn the_index_figures_follow_every_write_and_rollback() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    quality_corpus(&s);
    let totals = |path: &std::path::Path| {
        count(
            path,
            "SELECT nodes * 1000000 + name_len * 10000 + obs_len FROM search_totals",
        )
    };
    let before = totals(&path);
    let _ = s.write(|tx| {
        tx.create_node(Node::new("x y z", "thing")?.with_observation("one two three"))?;
        Err::<(), _>(kgstore_core::Error::invalid_input("test", "roll back"))
    });
    assert_eq!(totals(&path), before);
    index_now(&s, &path);
    let before = totals(&path);
    assert_eq!(count(&path, "SELECT count(*) FROM search_docs"), 10);
    s.create_node(
        Node::new("x y z", "thing")
            .unwrap()
            .with_observation("one two three"),
    )
    .unwrap();
    // (Listed for indexing, not indexed yet.)
    assert_eq!(totals(&path), before);
    index_now(&s, &path);
    assert_eq!(totals(&path), before + 1_000_000 + 3 * 10_000 + 3);
    s.delete_node("x y z", kgstore_core::OnDependents::Refuse)
        .unwrap();
    assert_eq!(totals(&path), before);
    assert!(s.check().unwrap().is_ok());
}

#[test]
fn a_read_only_handle_searches_the_index_too() {
    let (_dir, path) = temp_db();
    quality_corpus(&store(&path));
    let s =
        kgstore_core::Store::new(SqliteBackend::open(&path, options().read_only(true)).unwrap());
    assert_eq!(names(&s, "alice tea")[0], "Alice_Smith");
    check_against_reference(&s, &SearchQuery::new("tea").limit(2));
}

/// A pooled reader's FTS5 keeps the index structure it last read, and `PRAGMA
/// integrity_check` used it without looking for newer commits: `check` reported
/// "fts5: corruption found reading blob" on a healthy file after a few writes.
#[test]
fn regression_check_on_a_pooled_reader_sees_the_current_fts5_structure() {
    let (_dir, path) = temp_db();
    let s = kgstore_core::Store::new(
        SqliteBackend::open(&path, options().reader_pool_size(1)).unwrap(),
    );
    for step in 0..40 {
        let name = format!("n{}", step % 5);
        s.write(|tx| {
            if tx.contains_node(&name)? {
                tx.delete_node(&name, kgstore_core::OnDependents::Refuse)?;
            }
            tx.create_node(Node::new(&name, "thing")?.with_observation(format!("step {step}")))?;
            Ok(())
        })
        .unwrap();
        let report = s.check().unwrap();
        assert!(report.is_ok(), "step {step}: {:?}", report.problems);
    }
}

/// Format 6: terms new to the store wait in `search_terms_pending` until a
/// thousand have gathered (or a write brings that many), then move to
/// `search_terms` and its trigram index together; a word's inside is found
/// either way, and `optimize` moves the waiting ones.
#[test]
fn new_terms_wait_in_a_small_table_and_move_together() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    let node = |i: usize| {
        Node::new(format!("n{i}"), "thing")
            .unwrap()
            .with_observation(format!("zqx{i}word"))
    };
    for i in 0..20 {
        s.create_node(node(i)).unwrap();
    }
    index_now(&s, &path);
    let waiting = |sql: &str| count(&path, sql);
    assert!(waiting("SELECT count(*) FROM search_terms_pending WHERE term = 'zqx7word'") == 1);
    assert_eq!(
        waiting("SELECT count(*) FROM search_terms WHERE term = 'zqx7word'"),
        0
    );
    // Inside a waiting word, and inside a recorded one.
    assert_eq!(names(&s, "x7wor"), ["n7"]);
    assert!(s.check().unwrap().is_ok());

    // A write of more new terms than wait at most records them all at once.
    s.create_nodes((20..1_300).map(node)).unwrap();
    index_now(&s, &path);
    assert_eq!(waiting("SELECT count(*) FROM search_terms_pending"), 0);
    assert_eq!(
        waiting("SELECT count(*) FROM search_terms WHERE term IN ('zqx7word', 'zqx1299word')"),
        2
    );
    assert_eq!(names(&s, "x7wor"), ["n7"]);
    assert_eq!(names(&s, "x1299wor"), ["n1299"]);

    // Single writes gather again until a thousand wait, then move together.
    for i in 1_300..1_305 {
        s.create_node(node(i)).unwrap();
    }
    index_now(&s, &path);
    assert!(waiting("SELECT count(*) FROM search_terms_pending") >= 5);
    assert_eq!(names(&s, "x1303wor"), ["n1303"]);
    s.optimize().unwrap();
    assert_eq!(waiting("SELECT count(*) FROM search_terms_pending"), 0);
    assert_eq!(names(&s, "x1303wor"), ["n1303"]);
    assert!(s.check().unwrap().is_ok());
}

/// A term missing from both `search_terms` and the waiting ones is reported.
#[test]
fn a_term_lost_from_the_waiting_ones_is_reported() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_node(Node::new("a", "thing").unwrap().with_observation("plover"))
        .unwrap();
    index_now(&s, &path);
    raw(&path)
        .execute_batch("DELETE FROM search_terms_pending WHERE term = 'plover'")
        .unwrap();
    let problems: Vec<String> = s
        .check()
        .unwrap()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("'plover'")
            && p.contains("missing from tables search_terms and search_terms_pending")),
        "{problems:?}"
    );
    s.optimize().unwrap();
    assert!(s.check().unwrap().is_ok());
    assert_eq!(names(&s, "love"), ["a"]);
}

#[test]
fn a_hit_whose_figures_are_gone_is_corruption_and_optimize_rebuilds_them() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    for name in ["one", "two", "three"] {
        s.create_node(
            Node::new(name, "thing")
                .unwrap()
                .with_observation("a walrus here"),
        )
        .unwrap();
    }
    index_now(&s, &path);
    assert_eq!(names(&s, "walrus").len(), 3);
    // The index's figures of one hit lost behind kgstore's back.
    raw(&path)
        .execute(
            "DELETE FROM search_docs WHERE id = (SELECT id FROM names WHERE name = 'two')",
            [],
        )
        .unwrap();
    let err = s.search(&SearchQuery::new("walrus")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("kgstore optimize"), "{err}");
    s.optimize().unwrap();
    assert_eq!(names(&s, "walrus").len(), 3);
}

/// The nodes waiting to be indexed: the rows of `search_stale` and the nodes
/// `search_stale_from` covers (format 11).
fn listed(path: &std::path::Path) -> i64 {
    count(path, LISTED)
}

const LISTED: &str = "SELECT (SELECT count(*) FROM search_stale) + (SELECT count(*) FROM nodes \
     WHERE id >= (SELECT first FROM search_stale_from))";

/// `search_stale_from`'s id (format 11) and the rows of `search_stale`.
fn marks(path: &std::path::Path) -> (Option<i64>, i64) {
    let conn = raw(path);
    let from = conn
        .query_row("SELECT first FROM search_stale_from", [], |r| r.get(0))
        .ok();
    let rows = conn
        .query_row("SELECT count(*) FROM search_stale", [], |r| r.get(0))
        .unwrap();
    (from, rows)
}

fn name_id(path: &std::path::Path, name: &str) -> i64 {
    raw(path)
        .query_row("SELECT id FROM names WHERE name = ?1", [name], |r| r.get(0))
        .unwrap()
}

/// Format 11: a load's new nodes wait to be indexed under one row of
/// `search_stale_from` (the first of their ids); nodes below it, updated by the
/// load or written later, are listed one row each; later writes of nodes at or
/// above it list nothing; searches, `check` and the catch-up read both.
#[test]
fn a_load_lists_its_new_nodes_with_one_row() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    // Indexed small writes first, so that the store holds nodes below the load's.
    for i in 0..256 {
        s.create_node(numbered(i)).unwrap();
    }
    assert_eq!((listed(&path), indexed(&path)), (0, 256));
    // A load, and two of the older nodes updated in its transaction.
    s.write(|tx| {
        tx.create_nodes((256..1_256).map(numbered))?;
        for name in ["n00003", "n00007"] {
            tx.update_node(
                Node::new(name, "thing")?.with_observation("changed with the load"),
                None,
            )?;
        }
        Ok(())
    })
    .unwrap();
    let first = name_id(&path, "n00256");
    assert_eq!(marks(&path), (Some(first), 2), "one row for 1,000 nodes");
    assert_eq!(listed(&path), 1_002);
    // Later writes: a new node and an update of a loaded one list nothing more;
    // an update of an older one lists it.
    s.create_node(numbered(1_256)).unwrap();
    s.update_node(
        Node::new("n00500", "thing")
            .unwrap()
            .with_observation("rewritten"),
        None,
    )
    .unwrap();
    s.update_node(
        Node::new("n00010", "thing")
            .unwrap()
            .with_observation("rewritten"),
        None,
    )
    .unwrap();
    assert_eq!(marks(&path), (Some(first), 3));
    // A deleted loaded node is neither searched nor counted.
    s.delete_node("n00600", kgstore_core::OnDependents::Refuse)
        .unwrap();
    assert_eq!(listed(&path), 1_003);
    let ro =
        kgstore_core::Store::new(SqliteBackend::open(&path, options().read_only(true)).unwrap());
    for q in [
        "changed",
        "rewritten",
        "word600",
        "word1256 shared",
        "ord12",
    ] {
        check_against_reference(&ro, &SearchQuery::new(q).limit(40));
    }
    assert!(names(&ro, "word3").iter().all(|n| n != "n00003"));
    assert!(names(&ro, "changed").contains(&"n00003".to_owned()));
    assert!(ro.check().unwrap().is_ok());
    drop(ro);
    // A second load keeps the smaller id.
    s.create_nodes((2_000..2_300).map(numbered)).unwrap();
    assert_eq!(marks(&path), (Some(first), 3));
    assert_eq!(listed(&path), 1_303);
    check_against_reference(&s, &SearchQuery::new("shared word2100").limit(40));
    index_now(&s, &path);
    assert_eq!(marks(&path), (None, 0));
    assert_eq!(indexed(&path), 1_556);
    for q in [
        "changed",
        "rewritten",
        "word600",
        "word2299 shared",
        "ord12",
    ] {
        check_against_reference(&s, &SearchQuery::new(q).limit(40));
    }
    assert!(s.check().unwrap().is_ok());
}

/// A load whose transaction rolls back leaves nothing waiting; one that commits
/// after a catch-up inside it records only what it wrote after.
#[test]
fn a_rolled_back_load_leaves_no_marks() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    let err = s
        .write(|tx| {
            tx.create_nodes((0..500).map(numbered))?;
            Err::<(), _>(kgstore_core::Error::backend(
                "test",
                "rolled back".to_owned(),
            ))
        })
        .unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(marks(&path), (None, 0));
    s.write(|tx| {
        tx.create_nodes((0..300).map(numbered))?;
        tx.search(&SearchQuery::new("shared"))?;
        tx.create_nodes((300..600).map(numbered))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(marks(&path), (Some(name_id(&path, "n00300")), 0));
    assert_eq!((listed(&path), indexed(&path)), (300, 300));
    check_against_reference(&s, &SearchQuery::new("shared word450").limit(40));
    assert!(s.check().unwrap().is_ok());
}

/// `check` finds a node listed in `search_stale` that `search_stale_from` covers
/// too (a search would count it twice in the corpus figures).
#[test]
fn check_finds_a_node_both_listed_and_covered() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_nodes((0..300).map(numbered)).unwrap();
    assert!(s.check().unwrap().is_ok());
    let id = name_id(&path, "n00100");
    raw(&path)
        .execute("INSERT INTO search_stale(id) VALUES (?1)", [id])
        .unwrap();
    let report = s.check().unwrap();
    assert!(
        report.problems.iter().any(|p| p
            .to_string()
            .contains("also covered by table search_stale_from")),
        "{report:?}"
    );
}

fn catch_ups(s: &kgstore_core::Store) -> u64 {
    s.metrics().backend_figure("search_catch_ups").unwrap()
}

fn numbered(i: usize) -> Node {
    Node::new(format!("n{i:05}"), "thing")
        .unwrap()
        .with_observation(format!("word{i} shared"))
}

/// Format 8: a load is not indexed at its commit, nor by the small writes after
/// it; a read-only handle searches it from the nodes' rows (and cannot index it);
/// the first search of a writable handle indexes it, in a transaction of its own.
#[test]
fn a_load_is_indexed_by_the_first_search_of_a_writable_handle() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.create_nodes((0..1_000).map(numbered)).unwrap();
    assert_eq!(listed(&path), 1_000);
    assert_eq!(indexed(&path), 0, "a load writes no search rows");
    for i in 1_000..1_010 {
        s.create_node(numbered(i)).unwrap();
    }
    assert_eq!(
        listed(&path),
        1_010,
        "a small write does not pay for the load"
    );
    drop(s);

    let ro =
        kgstore_core::Store::new(SqliteBackend::open(&path, options().read_only(true)).unwrap());
    assert_eq!(names(&ro, "word1005"), ["n01005"]);
    check_against_reference(&ro, &SearchQuery::new("shared word77").limit(40));
    check_against_reference(&ro, &SearchQuery::new("ord99").limit(40));
    assert_eq!(catch_ups(&ro), 0);
    assert_eq!(listed(&path), 1_010, "a read-only handle cannot index them");
    drop(ro);

    // The open finds the long list; the first search indexes it.
    let s = store(&path);
    assert_eq!(names(&s, "word1005"), ["n01005"]);
    assert_eq!(catch_ups(&s), 1);
    assert_eq!((listed(&path), indexed(&path)), (0, 1_010));
    check_against_reference(&s, &SearchQuery::new("shared word77").limit(40));
    assert!(s.check().unwrap().is_ok());
    assert_eq!(catch_ups(&s), 1, "nothing more to index");
}

/// Small writes are indexed 256 at a time, by the commit that lists the 256th;
/// searches in between score the listed ones from their rows.
#[test]
fn small_writes_are_indexed_in_batches() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    for i in 0..255 {
        s.create_node(numbered(i)).unwrap();
    }
    assert_eq!((listed(&path), indexed(&path)), (255, 0));
    assert_eq!(names(&s, "word254"), ["n00254"]);
    check_against_reference(&s, &SearchQuery::new("shared").limit(100));
    assert_eq!(catch_ups(&s), 0, "a short list is searched as it is");
    s.create_node(numbered(255)).unwrap();
    assert_eq!((listed(&path), indexed(&path)), (0, 256));
    // An update lists the node again; its old entry is ignored until then.
    s.update_node(
        Node::new("n00003", "thing")
            .unwrap()
            .with_observation("now different"),
        None,
    )
    .unwrap();
    assert_eq!(listed(&path), 1);
    assert!(names(&s, "word3").iter().all(|n| n != "n00003"));
    assert_eq!(names(&s, "different"), ["n00003"]);
    check_against_reference(&s, &SearchQuery::new("word3 different").limit(7));
    assert!(s.check().unwrap().is_ok());
}

fn indexed(path: &std::path::Path) -> i64 {
    count(path, "SELECT count(*) FROM search_docs")
}

/// After a load, a handle's commits stop reading the list of waiting nodes (it
/// knows it is long); a catch-up by another handle, by a search of its own, or
/// by a search in one of its write transactions makes it read the list again,
/// so that the commit that lists the 256th small write still indexes them.
#[test]
fn small_writes_after_a_catch_up_elsewhere_are_indexed_in_batches_again() {
    let (_dir, path) = temp_db();
    let a = store(&path);
    let mut next = 0;
    let load = |s: &kgstore_core::Store, next: &mut usize| {
        s.create_nodes((*next..*next + 300).map(numbered)).unwrap();
        *next += 300;
        // Two small commits: the second one knows the list is long.
        for _ in 0..2 {
            s.create_node(numbered(*next)).unwrap();
            *next += 1;
        }
    };
    let small_writes = |s: &kgstore_core::Store, next: &mut usize, path: &std::path::Path| {
        for i in 0..256 {
            assert_eq!(listed(path), i, "listed before small write {i}");
            s.create_node(numbered(*next)).unwrap();
            *next += 1;
        }
        assert_eq!(listed(path), 0, "the 256th small write indexed the list");
    };

    // Another handle (another connection, as another process) catches up.
    load(&a, &mut next);
    assert_eq!(listed(&path), 302);
    let b = store(&path);
    assert_eq!(names(&b, "word301"), ["n00301"]);
    assert_eq!((catch_ups(&b), listed(&path)), (1, 0));
    small_writes(&a, &mut next, &path);

    // This handle's own search catches up (on its writer connection).
    load(&a, &mut next);
    let before = catch_ups(&a);
    assert_eq!(names(&a, "word600"), ["n00600"]);
    assert_eq!((catch_ups(&a), listed(&path)), (before + 1, 0));
    small_writes(&a, &mut next, &path);

    // A search inside one of its write transactions catches up, which commits.
    load(&a, &mut next);
    index_now(&a, &path);
    small_writes(&a, &mut next, &path);

    // And one that rolls back leaves the list as it was: still long.
    load(&a, &mut next);
    let listed_now = listed(&path);
    let _ = a.write(|tx| {
        tx.search(&SearchQuery::new("a"))?;
        Err::<(), _>(kgstore_core::Error::backend(
            "test",
            "rolled back".to_owned(),
        ))
    });
    assert_eq!(listed(&path), listed_now);
    a.create_node(numbered(next)).unwrap();
    assert_eq!(
        listed(&path),
        listed_now + 1,
        "a small write does not pay for the load"
    );
    check_against_reference(&a, &SearchQuery::new("shared word1200").limit(40));
    assert!(a.check().unwrap().is_ok());
}

/// A batch of `create_nodes` holding a name already in `names` (named by a
/// dependency earlier in the transaction) goes in row by row: the names after it
/// took ids one lower than their places. Every node is stored under its own
/// name with its own content, the load still waits under one row, and the node
/// named before the batch is listed on its own.
#[test]
fn a_batch_with_a_name_taken_before_stores_every_node_under_its_own_id() {
    let (_dir, path) = temp_db();
    let s = store(&path);
    s.write(|tx| {
        tx.defer_checks();
        tx.create_node(Node::new("a", "thing")?.with_dependency("n00010"))?;
        tx.create_nodes((0..300).map(numbered))?;
        Ok(())
    })
    .unwrap();
    for i in [0, 9, 10, 11, 31, 32, 299] {
        let node = s.get_node(&format!("n{i:05}")).unwrap();
        assert_eq!(node.observations, [format!("word{i} shared")]);
    }
    assert_eq!(s.count_nodes().unwrap(), 301);
    assert_eq!(s.resolve_dependencies("a").unwrap(), ["n00010".to_owned()]);
    let (from, rows) = marks(&path);
    assert!(from.is_some_and(|f| f > name_id(&path, "n00010")));
    assert_eq!(rows, 2, "a and n00010, named before the load's ids");
    assert_eq!(listed(&path), 301);
    check_against_reference(&s, &SearchQuery::new("word10 shared").limit(40));
    assert!(s.check().unwrap().is_ok());
}
