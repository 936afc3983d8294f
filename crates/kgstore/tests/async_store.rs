//! The async API from many concurrent tasks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use kgstore::{AsyncStore, ErrorKind, Node, NodeFilter, PageRequest};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_store() {
    let store = AsyncStore::open("memory://").await.unwrap();
    store
        .create_node(
            Node::new("counter", "thing")
                .unwrap()
                .with_attribute("n", json!(0)),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                store
                    .create_node(Node::new(format!("t{t}-{i}"), "item").unwrap())
                    .await
                    .unwrap();
                // An optimistic increment, retried on conflict.
                loop {
                    let mut node = store.get_node("counter").await.unwrap();
                    let n = node.attributes["n"].as_u64().unwrap();
                    let version = node.metadata.version;
                    node.attributes.insert("n".into(), json!(n + 1));
                    match store.update_node(node, Some(version)).await {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::Conflict => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.count_nodes().await.unwrap(), 161);
    assert_eq!(
        store.get_node("counter").await.unwrap().attributes["n"],
        json!(160)
    );
    let items = store
        .list_nodes(
            NodeFilter::default().of_type("item"),
            PageRequest::first(1000),
        )
        .await
        .unwrap();
    assert_eq!(items.items.len(), 160);
    let snapshot_count = store
        .read(|r| {
            use kgstore::GraphRead;
            r.count_nodes()
        })
        .await
        .unwrap();
    assert_eq!(snapshot_count, 161);
}

#[tokio::test]
async fn errors_and_transactions_behave_as_in_the_blocking_api() {
    let store = AsyncStore::open("memory://").await.unwrap();
    let err = store.get_node("ghost").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NodeNotFound);
    let err = store
        .write(|tx| {
            tx.create_node(Node::new("a", "thing")?)?;
            tx.create_node(Node::new("a", "thing")?)?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(store.count_nodes().await.unwrap(), 0);
    let dir = tempfile::tempdir().unwrap();
    store
        .create_node(Node::new("a", "thing").unwrap())
        .await
        .unwrap();
    store
        .create_node(
            Node::new("Alice_Smith", "person")
                .unwrap()
                .with_observation("Drinks tea"),
        )
        .await
        .unwrap();
    let hits = store
        .search(kgstore::SearchQuery::new("alice tea"))
        .await
        .unwrap();
    assert_eq!(hits.items[0].name, "Alice_Smith");
    store.backup(dir.path().join("b")).await.unwrap();
    assert!(
        AsyncStore::verify(dir.path().join("b"))
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
#[should_panic(expected = "the application failed")]
async fn a_panic_in_a_transaction_reaches_the_caller() {
    let store = AsyncStore::open("memory://").await.unwrap();
    let _ = store
        .write(|tx| -> kgstore::Result<()> {
            tx.create_node(Node::new("a", "thing")?)?;
            panic!("the application failed");
        })
        .await;
}
