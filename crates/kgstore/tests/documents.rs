//! Documents through the facade: every built-in backend by URL, a CI-sized large
//! document streamed in and out (its SHA-256 compared), and the async API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::io::{self, Read};

use kgstore::documents::Sha256Digest;
use kgstore::{
    AsyncStore, DocumentQuery, DocumentRead, DocumentWrite, ErrorKind, Node, Store, WriteOptions,
};
use sha2::{Digest as _, Sha256};

/// A deterministic pseudo-random stream of `len` bytes, produced piece by piece.
struct Stream {
    left: u64,
    state: u64,
}

impl Stream {
    fn new(len: u64) -> Self {
        Self {
            left: len,
            state: 0x2545_F491_4F6C_DD1D,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            .min(100_003);
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = (self.state >> 24) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes what is written to it, keeping nothing.
#[derive(Default)]
struct HashSink {
    hasher: Sha256,
    len: u64,
}

impl io::Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn expected(len: u64) -> (u64, Sha256Digest) {
    let mut sink = HashSink::default();
    io::copy(&mut Stream::new(len), &mut sink).unwrap();
    (sink.len, Sha256Digest(sink.hasher.finalize().into()))
}

/// How large the CI-sized document is: 32 MiB, or `KGSTORE_BIG_DOC_MIB`.
fn big_len() -> u64 {
    std::env::var("KGSTORE_BIG_DOC_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
        * 1024
        * 1024
}

#[test]
fn a_large_document_streams_in_and_out_on_every_persistent_backend() {
    let dir = tempfile::tempdir().unwrap();
    let len = big_len();
    let (want_len, want_sha) = expected(len);
    for url in [
        format!("sqlite://{}", dir.path().join("kg.db").display()),
        format!("json://{}", dir.path().join("kg").display()),
    ] {
        let store = kgstore::open(&url).unwrap();
        let meta = store
            .write(|tx| {
                tx.create_node(Node::new("scene-1", "scene")?)?;
                tx.write_document_from("blobs/scene-1.bin", Stream::new(len), &WriteOptions::new())
            })
            .unwrap();
        assert_eq!((meta.size, meta.sha256), (want_len, want_sha), "{url}");
        drop(store);
        let store = kgstore::open(&url).unwrap();
        let mut sink = HashSink::default();
        let read = store
            .read_document_to("blobs/scene-1.bin", &mut sink)
            .unwrap();
        assert_eq!(read, meta, "{url}");
        assert_eq!(
            (sink.len, Sha256Digest(sink.hasher.finalize().into())),
            (want_len, want_sha),
            "{url}"
        );
        // And through a `Read` on a snapshot.
        let snapshot = store.read().unwrap();
        let mut reader = snapshot.open_document("blobs/scene-1.bin").unwrap();
        let mut sink = HashSink::default();
        io::copy(&mut reader, &mut sink).unwrap();
        assert_eq!(
            Sha256Digest(sink.hasher.finalize().into()),
            want_sha,
            "{url}"
        );
        assert!(store.check().unwrap().is_ok(), "{url}");
    }
}

#[test]
fn every_scheme_holds_documents_in_graph_transactions() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "memory://".to_owned(),
        format!("sqlite://{}", dir.path().join("kg.db").display()),
        format!("json://{}", dir.path().join("kg").display()),
    ] {
        let store: Store = kgstore::open(&url).unwrap();
        store
            .write(|tx| {
                tx.create_node(Node::new("pilot", "script")?)?;
                tx.write_documents([
                    DocumentWrite::new("scripts/pilot.fountain", "FADE IN:"),
                    DocumentWrite::new("scripts/bible.md", "# Bible"),
                ])?;
                Ok(())
            })
            .unwrap();
        let page = store
            .list_documents(&DocumentQuery::prefix("scripts/"))
            .unwrap();
        assert_eq!(page.documents.len(), 2, "{url}");
        let err = store.read_document("scripts/none").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DocumentNotFound, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_api_mirrors_documents() {
    let store = AsyncStore::open("memory://").await.unwrap();
    let meta = store.write_document("a/b.txt", "hello").await.unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(store.read_document("a/b.txt").await.unwrap(), b"hello");
    assert!(store.document_exists("a/b.txt").await.unwrap());
    assert_eq!(store.stat_document("a/b.txt").await.unwrap(), meta);
    let streamed = store
        .write_document_from("big", Stream::new(3_000_000), WriteOptions::new())
        .await
        .unwrap();
    let (sink, read) = store
        .read_document_to("big", HashSink::default())
        .await
        .unwrap();
    assert_eq!(read, streamed);
    assert_eq!(Sha256Digest(sink.hasher.finalize().into()), streamed.sha256);
    let page = store
        .list_documents(DocumentQuery::prefix("").folders())
        .await
        .unwrap();
    assert_eq!(page.folders, ["a/"]);
    let got = store
        .read_documents(vec!["big".into(), "none".into()])
        .await
        .unwrap();
    assert!(got[0].is_some() && got[1].is_none());
    store
        .write_documents(vec![DocumentWrite::new("c", "1")])
        .await
        .unwrap();
    assert_eq!(store.count_documents().await.unwrap(), 3);
    assert!(store.remove_document("c").await.unwrap());
    store.delete_document("a/b.txt").await.unwrap();
    let err = store.get_document("a/b.txt").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DocumentNotFound);
    let err = store
        .write_document_with("big", "x", WriteOptions::new().create_only())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(store.find_document("big").await.unwrap().is_some());
}
