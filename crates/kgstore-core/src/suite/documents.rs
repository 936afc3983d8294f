//! Documents: keys, metadata, preconditions, listings, streaming, batches, and
//! documents in the same transactions as the graph.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Fixture, kind_of, thing};
use crate::documents::key::key_rule;
use crate::documents::{DEFAULT_CONTENT_TYPE, Sha256Digest};
use crate::{
    DocumentMeta, DocumentQuery, DocumentRead, DocumentWrite, Error, ErrorKind, GraphRead, Store,
    WriteOptions,
};

/// Keys that have broken file-based stores, and the cases the key rules name:
/// traversal, separators, reserved names, case and Unicode twins, control
/// characters, keys and segments one byte too long. Some are refused by the key
/// rules; every other one must round-trip byte for byte.
pub fn hostile_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "..",
        ".",
        "../",
        "../../etc/passwd",
        "/etc/passwd",
        "/",
        "/abs",
        "a/../b",
        "a//b",
        "a/",
        "./a",
        "a/./b",
        "a/b",
        "a\\b",
        "..\\..\\x",
        "C:\\Windows",
        "C:",
        "name:stream",
        ".git",
        ".GIT",
        ".git/config",
        ".gitignore",
        ".gitattributes",
        ".kgstore/x",
        ".kgstore",
        ".kgstorex",
        "LOCK",
        "nodes",
        "documents",
        "journal",
        "kgstore-jsonfs.json",
        ".tmp-1-1",
        "CON",
        "con",
        "Con",
        "nul.txt",
        "NUL",
        "COM1",
        "com1.json",
        "LPT9",
        "aux",
        "PRN.x",
        "a",
        "A",
        "straße",
        "STRASSE",
        "strasse",
        "Caf\u{e9}",
        "Cafe\u{301}",
        "caf\u{e9}",
        "CAF\u{c9}",
        "\u{e9}",
        "e\u{301}",
        "\u{c5}",
        "\u{212b}",
        "A\u{30a}",
        "\u{fb01}",
        "fi",
        "\u{130}",
        "i",
        "I",
        " leading",
        "trailing ",
        "trailing.",
        "trailing./x",
        "..hidden",
        "...",
        "%",
        "%2e",
        "%41",
        "^a",
        "~",
        "a,b,c",
        "x,calls,y",
        "*?<>|\"",
        "\u{202e}gnp.exe",
        "\u{200d}",
        "\u{feff}bom",
        "\u{ff23}\u{ff2f}\u{ff2e}",
        "日本語の名前",
        "🦀 crab",
        "scripts/pilot.fountain",
        "tab\tname",
        "new\nline",
        "nul\0byte",
        "bell\u{7}",
        "del\u{7f}",
        "esc\u{1b}[31m",
        "\u{85}next line",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push("x".repeat(255));
    keys.push("X".repeat(256));
    keys.push(format!("s/{}", "é".repeat(127)));
    keys.push(format!("s/{}", "é".repeat(128)));
    keys.push(format!("{}/{}", "é".repeat(127), "x".repeat(255)));
    keys.push(
        (0..4)
            .map(|i| char::from(b'a' + i).to_string().repeat(255))
            .collect::<Vec<_>>()
            .join("/"),
    );
    keys.push(format!("{}/{}", "k".repeat(255), "/".repeat(2)));
    keys.push((0..205).map(|_| "ab").collect::<Vec<_>>().join("/") + "/abcd");
    keys.push(format!("{}x", "a/".repeat(512)));
    keys
}

/// The 1,025-byte key of the issue's list, refused.
fn too_long_key() -> String {
    let key = format!(
        "{}/{}/{}/{}/x",
        "a".repeat(255),
        "b".repeat(255),
        "c".repeat(255),
        "d".repeat(255)
    );
    assert_eq!(key.len(), 1025);
    key
}

fn meta(s: &Store, key: &str) -> DocumentMeta {
    s.stat_document(key).unwrap()
}

fn keys_of(metas: &[DocumentMeta]) -> Vec<String> {
    metas.iter().map(|m| m.key.clone()).collect()
}

/// Every key in the store, by listing page after page.
pub fn all_document_keys(s: &impl DocumentRead) -> Vec<String> {
    let mut out = Vec::new();
    let mut query = DocumentQuery::prefix("").limit(97);
    loop {
        let page = s.list_documents(&query).unwrap();
        out.extend(keys_of(&page.documents));
        match page.next_cursor {
            Some(c) => query = query.after(Some(c)),
            None => return out,
        }
    }
}

/// Bytes that are not text: every byte value, NUL included, repeated.
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
}

/// A reader yielding `len` pseudo-random bytes in uneven pieces, never holding them all.
struct Generated {
    left: u64,
    state: u64,
    piece: usize,
}

impl Generated {
    fn new(len: u64) -> Self {
        Self {
            left: len,
            state: 0x9E37_79B9_7F4A_7C15,
            piece: 1,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.piece = self.piece * 7 % 65_521 + 1;
        let n = buf
            .len()
            .min(self.piece)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that fails after `ok` bytes.
struct Failing {
    ok: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("the source broke"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(b'z');
        self.ok -= n;
        Ok(n)
    }
}

fn sha_of_reader(mut r: impl Read) -> (u64, Sha256Digest) {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            return (n, Sha256Digest(hasher.finalize().into()));
        }
        hasher.update(&buf[..got]);
        n += got as u64;
    }
}

// ----- the section -----

/// Run by `test_suite!(ctor, skip: documents)` for a backend that holds no documents:
/// it must say so, naming documents and itself, and the skip is announced.
pub fn documents_section_skipped(f: Fixture) {
    let s = &f.store;
    let err = s.document_exists("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("documents") && text.contains(s.backend_name()),
        "{text}"
    );
    let err = s.write_document("a", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    eprintln!(
        "WARNING: the documents section of kgstore's shared suite is SKIPPED for the '{}' \
         backend, which holds no documents ({text})",
        s.backend_name()
    );
}

pub fn doc_write_and_read_round_trip(f: Fixture) {
    let s = &f.store;
    let written = s
        .write_document("scripts/pilot.fountain", "FADE IN:\n")
        .unwrap();
    assert_eq!(
        s.read_document("scripts/pilot.fountain").unwrap(),
        b"FADE IN:\n"
    );
    let doc = s.get_document("scripts/pilot.fountain").unwrap();
    assert_eq!(doc.meta, written);
    assert_eq!(doc.content, b"FADE IN:\n");
    assert_eq!(s.find_document("scripts/other").unwrap(), None);
}

pub fn doc_metadata_is_set_by_the_store(f: Fixture) {
    let s = &f.store;
    let m = s.write_document("notes/a.md", "# A").unwrap();
    assert_eq!(m.key, "notes/a.md");
    assert_eq!(m.size, 3);
    assert_eq!(m.sha256, Sha256Digest::of(b"# A"));
    assert_eq!(m.version, 1);
    assert_eq!(m.created_at, m.updated_at);
    assert_eq!(m.content_type, "text/markdown; charset=utf-8");
    assert_eq!(meta(s, "notes/a.md"), m);
    let blob = s.write_document("blobs/x", [0u8, 1, 2]).unwrap();
    assert_eq!(blob.content_type, DEFAULT_CONTENT_TYPE);
}

pub fn doc_replace_bumps_version_keeps_created_at(f: Fixture) {
    let s = &f.store;
    let first = s.write_document("a.txt", "one").unwrap();
    let second = s.write_document("a.txt", "two!").unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(second.size, 4);
    assert_eq!(s.read_document("a.txt").unwrap(), b"two!");
    assert_eq!(
        s.write_document("a.txt", "two!").unwrap().version,
        3,
        "an equal write is a write"
    );
}

pub fn doc_content_type_given_kept_and_refused(f: Fixture) {
    let s = &f.store;
    let typed = WriteOptions::new().content_type("application/x-scene; v=2");
    assert_eq!(
        s.write_document_with("s.bin", "x", &typed)
            .unwrap()
            .content_type,
        "application/x-scene; v=2"
    );
    // Replaced without a type: kept.
    assert_eq!(
        s.write_document("s.bin", "y").unwrap().content_type,
        "application/x-scene; v=2"
    );
    for bad in ["", "text", "text/", "a b/c", "text/plain\n"] {
        let err = s
            .write_document_with("s.bin", "z", &WriteOptions::new().content_type(bad))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(err.to_string().contains("content type"), "{err}");
    }
    assert_eq!(s.read_document("s.bin").unwrap(), b"y");
}

pub fn doc_missing_is_document_not_found(f: Fixture) {
    let s = &f.store;
    for err in [
        s.read_document("no/such.txt").unwrap_err(),
        s.get_document("no/such.txt").unwrap_err(),
        s.stat_document("no/such.txt").unwrap_err(),
        s.delete_document("no/such.txt").unwrap_err(),
        s.read_document_to("no/such.txt", &mut Vec::new())
            .unwrap_err(),
        s.read()
            .unwrap()
            .open_document("no/such.txt")
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::DocumentNotFound, "{err}");
        assert_eq!(err.to_string(), "document 'no/such.txt' not found");
    }
}

pub fn doc_exists(f: Fixture) {
    let s = &f.store;
    assert!(!s.document_exists("a").unwrap());
    s.write_document("a", "").unwrap();
    assert!(s.document_exists("a").unwrap());
    assert!(!s.document_exists("A").unwrap());
    s.delete_document("a").unwrap();
    assert!(!s.document_exists("a").unwrap());
}

pub fn doc_create_only_refuses_existing(f: Fixture) {
    let s = &f.store;
    let once = WriteOptions::new().create_only();
    s.write_document_with("a", "first", &once).unwrap();
    let err = s.write_document_with("a", "second", &once).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.to_string(), "document 'a' already exists");
    assert_eq!(s.read_document("a").unwrap(), b"first");
    assert_eq!(meta(s, "a").version, 1);
}

pub fn doc_expected_version_is_checked(f: Fixture) {
    let s = &f.store;
    let create = WriteOptions::new().expect_version(0);
    s.write_document_with("a", "v1", &create).unwrap();
    let err = s.write_document_with("a", "again", &create).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "document 'a' has version 1, but version 0 was expected"
    );
    s.write_document_with("a", "v2", &WriteOptions::new().expect_version(1))
        .unwrap();
    let err = s
        .write_document_with("a", "stale", &WriteOptions::new().expect_version(1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = s
        .write_document_with("missing", "x", &WriteOptions::new().expect_version(3))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(!s.document_exists("missing").unwrap());
    assert_eq!(s.read_document("a").unwrap(), b"v2");
}

pub fn doc_delete_returns_metadata(f: Fixture) {
    let s = &f.store;
    let m = s.write_document("a/b.txt", "bye").unwrap();
    assert_eq!(s.delete_document("a/b.txt").unwrap(), m);
    assert!(!s.document_exists("a/b.txt").unwrap());
    assert_eq!(
        kind_of(s.delete_document("a/b.txt")),
        ErrorKind::DocumentNotFound
    );
}

pub fn doc_remove_reports_whether_it_existed(f: Fixture) {
    let s = &f.store;
    s.write_document("a", "x").unwrap();
    assert!(s.remove_document("a").unwrap());
    assert!(!s.remove_document("a").unwrap());
    assert!(!s.remove_document("never").unwrap());
    assert_eq!(s.count_documents().unwrap(), 0);
}

pub fn doc_recreated_after_delete_starts_again(f: Fixture) {
    let s = &f.store;
    s.write_document("a", "1").unwrap();
    s.write_document("a", "2").unwrap();
    s.delete_document("a").unwrap();
    let again = s.write_document("a", "3").unwrap();
    assert_eq!(again.version, 1);
}

pub fn doc_empty_and_binary_content_round_trip(f: Fixture) {
    let s = &f.store;
    s.write_document("empty", "").unwrap();
    assert_eq!(s.read_document("empty").unwrap(), b"");
    assert_eq!(meta(s, "empty").size, 0);
    assert_eq!(meta(s, "empty").sha256, Sha256Digest::of(b""));
    let bytes = binary(70_000);
    s.write_document("bin", &bytes).unwrap();
    assert_eq!(s.read_document("bin").unwrap(), bytes);
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend((0..=255u8).rev());
    s.write_document("every-byte", &all).unwrap();
    assert_eq!(s.read_document("every-byte").unwrap(), all);
}

pub fn doc_forbidden_keys_are_refused_naming_the_rule(f: Fixture) {
    let s = &f.store;
    s.write_document("keep", "kept").unwrap();
    let mut refused = 0;
    let mut keys = hostile_keys();
    keys.push(too_long_key());
    for key in keys {
        let Err(rule) = key_rule(&key) else { continue };
        refused += 1;
        let outcomes = [
            s.write_document(&key, "x").map(|_| ()),
            s.write_documents([DocumentWrite::new(key.clone(), "x")])
                .map(|_| ()),
            s.write_document_from(&key, &b"x"[..], &WriteOptions::new())
                .map(|_| ()),
            s.read_document(&key).map(|_| ()),
            s.stat_document(&key).map(|_| ()),
            s.document_exists(&key).map(|_| ()),
            s.delete_document(&key).map(|_| ()),
            s.remove_document(&key).map(|_| ()),
        ];
        for outcome in outcomes {
            let err = outcome.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key:?}: {err}");
            assert!(err.to_string().contains(&rule), "{key:?}: {err}");
            assert!(err.to_string().contains("document key"), "{key:?}: {err}");
        }
    }
    assert!(refused >= 25, "{refused}");
    assert_eq!(all_document_keys(s), ["keep"]);
    assert_eq!(s.read_document("keep").unwrap(), b"kept");
}

/// Writes each of `keys` the key rules allow, one document per key with the key's
/// bytes as content, skipping those the file-tree rule keeps out (a folder relation
/// with one written before); the keys written, in order.
pub fn write_allowed_keys(store: &Store, keys: &[String]) -> Vec<String> {
    let mut written = Vec::new();
    for key in keys.iter().filter(|k| key_rule(k).is_ok()) {
        match store.write_document(key, key.as_bytes()) {
            Ok(_) => written.push(key.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{key:?}: {e}"),
        }
    }
    written
}

pub fn doc_hostile_allowed_keys_round_trip(f: Fixture) {
    let s = &f.store;
    let allowed: Vec<String> = hostile_keys()
        .into_iter()
        .filter(|k| key_rule(k).is_ok())
        .collect();
    assert!(allowed.len() >= 40, "{}", allowed.len());
    // Keys in a folder relation cannot be stored together: two rounds.
    let mut rounds: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for key in &allowed {
        let clash = |other: &String| {
            other.starts_with(&format!("{key}/")) || key.starts_with(&format!("{other}/"))
        };
        let round = usize::from(rounds[0].iter().any(clash));
        assert!(!rounds[round].iter().any(clash), "{key}");
        rounds[round].push(key.clone());
    }
    for round in rounds {
        s.write(|tx| {
            for key in &round {
                tx.write_document(key, format!("content of {key:?}"))?;
            }
            Ok(())
        })
        .unwrap();
        let expected: BTreeSet<String> = round.iter().cloned().collect();
        let listed = all_document_keys(s);
        assert_eq!(listed, expected.iter().cloned().collect::<Vec<_>>());
        for key in &round {
            let doc = s.get_document(key).unwrap();
            assert_eq!(doc.meta.key, *key);
            assert_eq!(
                doc.content,
                format!("content of {key:?}").into_bytes(),
                "{key:?}"
            );
        }
        s.write(|tx| {
            for key in &round {
                tx.delete_document(key)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(s.count_documents().unwrap(), 0);
    }
}

pub fn doc_case_and_normalisation_variants_are_distinct(f: Fixture) {
    let s = &f.store;
    let variants = [
        "Caf\u{e9}",
        "Cafe\u{301}",
        "caf\u{e9}",
        "CAF\u{c9}",
        "cafe\u{301}",
        "CAFE\u{301}",
    ];
    for (i, key) in variants.iter().enumerate() {
        s.write_document(key, i.to_string()).unwrap();
    }
    assert_eq!(s.count_documents().unwrap(), variants.len() as u64);
    for (i, key) in variants.iter().enumerate() {
        assert_eq!(
            s.read_document(key).unwrap(),
            i.to_string().into_bytes(),
            "{key:?}"
        );
        assert_eq!(meta(s, key).version, 1);
    }
    let mut sorted: Vec<String> = variants.iter().map(|v| v.to_string()).collect();
    sorted.sort();
    assert_eq!(all_document_keys(s), sorted);
}

pub fn doc_key_length_limits(f: Fixture) {
    let s = &f.store;
    let longest_segment = "s".repeat(255);
    s.write_document(&longest_segment, "ok").unwrap();
    let longest = format!(
        "{}/{}/{}/{}",
        "a".repeat(255),
        "b".repeat(255),
        "c".repeat(255),
        "d".repeat(254)
    );
    let longest = format!("{longest}/e");
    assert_eq!(longest.len(), 1024);
    s.write_document(&longest, "ok").unwrap();
    assert_eq!(s.read_document(&longest).unwrap(), b"ok");
    let err = s.write_document(&too_long_key(), "no").unwrap_err();
    assert!(err.to_string().contains("at most 1024 bytes"), "{err}");
    let err = s
        .write_document(&format!("x/{}", "s".repeat(256)), "no")
        .unwrap_err();
    assert!(err.to_string().contains("segment 2 is 256 bytes"), "{err}");
    assert_eq!(s.count_documents().unwrap(), 2);
}

pub fn doc_reserved_prefix_is_refused(f: Fixture) {
    let s = &f.store;
    for key in [".kgstore/config", ".kgstore", ".kgstore/a/b"] {
        let err = s.write_document(key, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    s.write_document("x/.kgstore/ok", "fine below the top")
        .unwrap();
    s.write_document(".kgstorex", "a different name").unwrap();
}

pub fn doc_tree_rule_a_document_is_not_a_folder(f: Fixture) {
    let s = &f.store;
    s.write_document("scripts", "a document").unwrap();
    let err = s.write_document("scripts/pilot.fountain", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(
        matches!(&err, Error::DocumentPathConflict { existing, .. } if existing == "scripts"),
        "{err}"
    );
    let err = s.write_document("scripts/a/b/c", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(all_document_keys(s), ["scripts"]);
    // Once the document is gone, the folder may be used.
    s.delete_document("scripts").unwrap();
    s.write_document("scripts/pilot.fountain", "x").unwrap();
}

pub fn doc_tree_rule_a_folder_is_not_a_document(f: Fixture) {
    let s = &f.store;
    s.write_document("a/b/c.txt", "x").unwrap();
    for key in ["a", "a/b"] {
        let err = s.write_document(key, "y").unwrap_err();
        assert!(
            matches!(&err, Error::DocumentPathConflict { existing, .. } if existing == "a/b/c.txt"),
            "{key}: {err}"
        );
    }
    // Neighbours that only share a prefix are not folders.
    s.write_document("a/b.txt", "ok").unwrap();
    s.write_document("a/bc", "ok").unwrap();
    s.write_document("ab", "ok").unwrap();
    assert_eq!(all_document_keys(s), ["a/b.txt", "a/b/c.txt", "a/bc", "ab"]);
}

pub fn doc_tree_rule_holds_inside_a_batch_and_a_transaction(f: Fixture) {
    let s = &f.store;
    let err = s
        .write_documents([DocumentWrite::new("a", "x"), DocumentWrite::new("a/b", "y")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = s
        .write_documents([
            DocumentWrite::new("p/q/r", "x"),
            DocumentWrite::new("p", "y"),
        ])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(s.count_documents().unwrap(), 0);
    let err = s
        .write(|tx| {
            tx.write_document("t/u", "x")?;
            tx.write_document("t", "y")
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(s.count_documents().unwrap(), 0);
    // Deleting and creating in one transaction turns a folder into a document.
    s.write_document("t/u", "x").unwrap();
    s.write(|tx| {
        tx.delete_document("t/u")?;
        tx.write_document("t", "now a document")
    })
    .unwrap();
    assert_eq!(all_document_keys(s), ["t"]);
}

fn sample(s: &Store) -> Vec<&'static str> {
    let keys = vec![
        "a.txt",
        "b/1",
        "b/2",
        "b/c/3",
        "b/c/4",
        "b/d/5",
        "b0",
        "b~",
        "c",
        "scripts/e1.fountain",
        "scripts/e2.fountain",
        "scripts/s1/e1.fountain",
        "\u{e9}",
        "日本/語",
    ];
    s.write_documents(keys.iter().map(|k| DocumentWrite::new(*k, k.as_bytes())))
        .unwrap();
    keys
}

pub fn doc_list_by_prefix_in_byte_order(f: Fixture) {
    let s = &f.store;
    let keys = sample(s);
    let page = s.list_documents(&DocumentQuery::prefix("b")).unwrap();
    assert_eq!(
        keys_of(&page.documents),
        ["b/1", "b/2", "b/c/3", "b/c/4", "b/d/5", "b0", "b~"]
    );
    assert!(page.folders.is_empty());
    assert_eq!(page.next_cursor, None);
    let page = s.list_documents(&DocumentQuery::prefix("b/c/")).unwrap();
    assert_eq!(keys_of(&page.documents), ["b/c/3", "b/c/4"]);
    assert_eq!(page.documents[0], meta(s, "b/c/3"));
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(all_document_keys(s), sorted, "byte order");
    assert!(
        s.list_documents(&DocumentQuery::prefix("zzz"))
            .unwrap()
            .documents
            .is_empty()
    );
    assert!(
        s.list_documents(&DocumentQuery::prefix("scripts/e1.fountain/"))
            .unwrap()
            .documents
            .is_empty()
    );
}

pub fn doc_list_prefix_is_literal(f: Fixture) {
    let s = &f.store;
    for key in ["100%/a", "1000/a", "a_b", "axb", "a*", "a?", "a[1]"] {
        s.write_document(key, "x").unwrap();
    }
    assert_eq!(
        keys_of(
            &s.list_documents(&DocumentQuery::prefix("100%"))
                .unwrap()
                .documents
        ),
        ["100%/a"]
    );
    assert_eq!(
        keys_of(
            &s.list_documents(&DocumentQuery::prefix("a_"))
                .unwrap()
                .documents
        ),
        ["a_b"]
    );
    assert_eq!(
        keys_of(
            &s.list_documents(&DocumentQuery::prefix("a*"))
                .unwrap()
                .documents
        ),
        ["a*"]
    );
    assert_eq!(
        keys_of(
            &s.list_documents(&DocumentQuery::prefix("a["))
                .unwrap()
                .documents
        ),
        ["a[1]"]
    );
}

pub fn doc_list_pages_without_skips_or_repeats(f: Fixture) {
    let s = &f.store;
    let keys = sample(s);
    for limit in [1, 2, 3, 5, 100] {
        let mut seen = Vec::new();
        let mut query = DocumentQuery::prefix("").limit(limit);
        loop {
            let page = s.list_documents(&query).unwrap();
            assert!(page.documents.len() <= limit);
            seen.extend(keys_of(&page.documents));
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(page.documents.len(), limit, "only full pages have a cursor");
                    query = query.after(Some(c));
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), keys.len(), "limit {limit}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), keys.len());
    }
}

pub fn doc_list_pages_are_stable_under_writes(f: Fixture) {
    let s = &f.store;
    s.write_documents((0..20).map(|i| DocumentWrite::new(format!("k{i:02}"), "x")))
        .unwrap();
    let first = s
        .list_documents(&DocumentQuery::prefix("k").limit(7))
        .unwrap();
    assert_eq!(keys_of(&first.documents).last().unwrap(), "k06");
    // Inserted before and after the cursor, and deleted after it.
    s.write_document("k00a", "x").unwrap();
    s.write_document("k10a", "x").unwrap();
    s.delete_document("k08").unwrap();
    s.delete_document("k06").unwrap(); // the cursor's own key
    let mut rest = Vec::new();
    let mut query = DocumentQuery::prefix("k").limit(7).after(first.next_cursor);
    loop {
        let page = s.list_documents(&query).unwrap();
        rest.extend(keys_of(&page.documents));
        match page.next_cursor {
            Some(c) => query = query.after(Some(c)),
            None => break,
        }
    }
    let expected: Vec<String> = [
        "k07", "k09", "k10", "k10a", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    assert_eq!(rest, expected);
}

pub fn doc_list_with_delimiter_gives_folders(f: Fixture) {
    let s = &f.store;
    sample(s);
    let page = s
        .list_documents(&DocumentQuery::prefix("").folders())
        .unwrap();
    assert_eq!(
        keys_of(&page.documents),
        ["a.txt", "b0", "b~", "c", "\u{e9}"]
    );
    assert_eq!(page.folders, ["b/", "scripts/", "日本/"]);
    let page = s
        .list_documents(&DocumentQuery::prefix("b/").folders())
        .unwrap();
    assert_eq!(keys_of(&page.documents), ["b/1", "b/2"]);
    assert_eq!(page.folders, ["b/c/", "b/d/"]);
    // A prefix that is not a whole folder name: common prefixes go up to the next '/'.
    let page = s
        .list_documents(&DocumentQuery::prefix("scripts/e").folders())
        .unwrap();
    assert_eq!(
        keys_of(&page.documents),
        ["scripts/e1.fountain", "scripts/e2.fountain"]
    );
    assert!(page.folders.is_empty());
    let page = s
        .list_documents(&DocumentQuery::prefix("scripts/s").folders())
        .unwrap();
    assert_eq!(page.folders, ["scripts/s1/"]);
}

pub fn doc_list_delimiter_pages_count_folders(f: Fixture) {
    let s = &f.store;
    sample(s);
    let mut entries: Vec<String> = Vec::new();
    let mut query = DocumentQuery::prefix("").folders().limit(2);
    let mut pages = 0;
    loop {
        let page = s.list_documents(&query).unwrap();
        pages += 1;
        assert!(page.documents.len() + page.folders.len() <= 2);
        let mut here: Vec<String> = keys_of(&page.documents);
        here.extend(page.folders.iter().cloned());
        here.sort();
        entries.extend(here);
        match page.next_cursor {
            Some(c) => query = query.after(Some(c)),
            None => break,
        }
    }
    assert_eq!(
        entries,
        [
            "a.txt", "b/", "b0", "b~", "c", "scripts/", "\u{e9}", "日本/"
        ]
    );
    assert_eq!(pages, 4);
}

pub fn doc_list_invalid_requests_are_refused(f: Fixture) {
    let s = &f.store;
    s.write_document("a", "x").unwrap();
    let bad_cursor = crate::filter::Cursor::after_node("a");
    for query in [
        DocumentQuery::prefix("").limit(0),
        DocumentQuery::prefix("").limit(1_000_000),
        DocumentQuery::prefix("/abs"),
        DocumentQuery::prefix("a//"),
        DocumentQuery::prefix("x\0"),
        DocumentQuery::prefix("").after(Some(bad_cursor)),
        DocumentQuery::prefix("").after(Some("zz".parse().unwrap())),
        DocumentQuery {
            delimiter: Some(':'),
            ..DocumentQuery::prefix("")
        },
    ] {
        let err = s.list_documents(&query).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{query:?}: {err}");
    }
}

pub fn doc_batch_read_in_order_with_gaps(f: Fixture) {
    let s = &f.store;
    s.write_documents([DocumentWrite::new("x", "1"), DocumentWrite::new("y", "2")])
        .unwrap();
    let got = s.read_documents(&["y", "missing", "x", "y"]).unwrap();
    let contents: Vec<Option<Vec<u8>>> = got.into_iter().map(|d| d.map(|d| d.content)).collect();
    assert_eq!(
        contents,
        [
            Some(b"2".to_vec()),
            None,
            Some(b"1".to_vec()),
            Some(b"2".to_vec())
        ]
    );
    assert_eq!(
        kind_of(s.read_documents(&["x", "/bad"])),
        ErrorKind::InvalidInput
    );
}

/// Batches among many stored keys, and batches whose keys span them: a backend may
/// answer a batch by scanning its key range (SQLite does, up to a cap) or key by
/// key, and both must find every stored document, folder and document inside.
pub fn doc_batch_checks_hold_among_many_stored_keys(f: Fixture) {
    let s = &f.store;
    let stored: Vec<DocumentWrite> = (0..300)
        .map(|i| DocumentWrite::new(format!("d/{i:03}/x"), format!("{i}")))
        .collect();
    s.write_documents(stored).unwrap();
    // Spanning every stored key: updates found (their versions move on), new keys made.
    let metas = s
        .write_documents([
            DocumentWrite::new("d/000/x", "first"),
            DocumentWrite::new("d/150/y", "new"),
            DocumentWrite::new("d/299/x", "last"),
        ])
        .unwrap();
    assert_eq!(
        metas.iter().map(|m| m.version).collect::<Vec<_>>(),
        [2, 1, 2]
    );
    // A key that is a folder of a stored document, in a wide batch and in a narrow one.
    for batch in [
        vec![
            DocumentWrite::new("d/000/z", "a"),
            DocumentWrite::new("d/150", "b"),
            DocumentWrite::new("d/299/z", "c"),
        ],
        vec![
            DocumentWrite::new("d/150", "b"),
            DocumentWrite::new("d/151/z", "c"),
        ],
    ] {
        let err = s.write_documents(batch).unwrap_err();
        assert!(
            matches!(&err, Error::DocumentPathConflict { key, existing } if key == "d/150" && existing.starts_with("d/150/")),
            "{err}"
        );
    }
    // A key inside a stored document, in a wide batch.
    let err = s
        .write_documents([
            DocumentWrite::new("d/000/w", "a"),
            DocumentWrite::new("d/200/x/deeper", "b"),
            DocumentWrite::new("d/299/w", "c"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::DocumentPathConflict { existing, .. } if existing == "d/200/x"),
        "{err}"
    );
    // A create-only write of a stored key far inside a wide batch is refused.
    let err = s
        .write_documents([
            DocumentWrite::new("d/000/v", "a"),
            DocumentWrite::new("d/123/x", "b").with_options(WriteOptions::new().create_only()),
            DocumentWrite::new("d/299/v", "c"),
        ])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(s.count_documents().unwrap(), 301);
    assert_eq!(s.read_document("d/123/x").unwrap(), b"123");
}

pub fn doc_batch_write_is_all_or_nothing(f: Fixture) {
    let s = &f.store;
    s.write_document("exists", "old").unwrap();
    let metas = s
        .write_documents([
            DocumentWrite::new("n1.json", "{}"),
            DocumentWrite::new("exists", "new"),
            DocumentWrite::new("n2", "2").with_options(WriteOptions::new().content_type("text/x")),
        ])
        .unwrap();
    assert_eq!(keys_of(&metas), ["n1.json", "exists", "n2"]);
    assert_eq!(metas[0].content_type, "application/json");
    assert_eq!(metas[1].version, 2);
    assert_eq!(metas[2].content_type, "text/x");
    let before = all_document_keys(s);
    for bad in [
        vec![
            DocumentWrite::new("fresh", "x"),
            DocumentWrite::new("a//b", "x"),
        ],
        vec![
            DocumentWrite::new("fresh", "x"),
            DocumentWrite::new("fresh", "y"),
        ],
        vec![
            DocumentWrite::new("fresh", "x"),
            DocumentWrite::new("exists", "y").with_options(WriteOptions::new().create_only()),
        ],
        vec![
            DocumentWrite::new("fresh", "x"),
            DocumentWrite::new("n2", "y").with_options(WriteOptions::new().expect_version(7)),
        ],
        vec![
            DocumentWrite::new("fresh", "x"),
            DocumentWrite::new("t", "y").with_options(WriteOptions::new().content_type("bad")),
        ],
    ] {
        assert!(s.write_documents(bad).is_err());
        assert_eq!(all_document_keys(s), before);
        assert_eq!(s.read_document("exists").unwrap(), b"new");
    }
}

pub fn doc_streaming_write_and_read_with_bounded_pieces(f: Fixture) {
    let s = &f.store;
    let len = 3 * 1024 * 1024 + 12_345;
    let (expect_len, expect_sha) = sha_of_reader(Generated::new(len));
    let m = s
        .write_document_from("blobs/big.bin", Generated::new(len), &WriteOptions::new())
        .unwrap();
    assert_eq!((m.size, m.sha256), (expect_len, expect_sha));
    assert_eq!(m.content_type, "application/octet-stream");
    let read = s.read().unwrap();
    let reader = read.open_document("blobs/big.bin").unwrap();
    assert_eq!(reader.meta(), &m);
    assert_eq!(sha_of_reader(reader), (expect_len, expect_sha));
    // Reading into a writer, and whole.
    let mut out = Vec::new();
    assert_eq!(s.read_document_to("blobs/big.bin", &mut out).unwrap(), m);
    assert_eq!(Sha256Digest::of(&out), expect_sha);
    assert_eq!(s.read_document("blobs/big.bin").unwrap(), out);
    // Replacing a big document by a small one and back.
    s.write_document("blobs/big.bin", "small").unwrap();
    assert_eq!(s.read_document("blobs/big.bin").unwrap(), b"small");
    let again = s
        .write_document_from("blobs/big.bin", Generated::new(len), &WriteOptions::new())
        .unwrap();
    assert_eq!((again.sha256, again.version), (expect_sha, 3));
}

pub fn doc_streaming_source_failure_writes_nothing(f: Fixture) {
    let s = &f.store;
    s.write_document("a", "before").unwrap();
    s.write(|tx| {
        let err = tx
            .write_document_from("a", Failing { ok: 700_000 }, &WriteOptions::new())
            .unwrap_err();
        assert!(err.to_string().contains("the source broke"), "{err}");
        let err = tx
            .write_document_from("new", Failing { ok: 10 }, &WriteOptions::new())
            .unwrap_err();
        assert!(err.to_string().contains("the source broke"), "{err}");
        // The transaction goes on, and sees the documents as they were.
        assert_eq!(tx.read_document("a")?, b"before");
        assert!(!tx.document_exists("new")?);
        tx.write_document("b", "after")?;
        tx.create_node(thing("n"))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(s.read_document("a").unwrap(), b"before");
    assert_eq!(meta(s, "a").version, 1);
    assert_eq!(all_document_keys(s), ["a", "b"]);
    assert!(s.contains_node("n").unwrap());
}

pub fn doc_import_keeps_metadata_and_checks_content(f: Fixture) {
    let s = &f.store;
    let original = Store::memory().write_document("kept.txt", "abc").unwrap();
    let mut wanted = original.clone();
    wanted.version = 7;
    wanted.content_type = "text/x-kept".into();
    let stored = s
        .write(|tx| tx.import_document(wanted.clone(), &b"abc"[..]))
        .unwrap();
    assert_eq!(stored, wanted);
    assert_eq!(meta(s, "kept.txt"), wanted);
    // Content other than stated is refused, and the transaction goes on.
    let mut other = wanted.clone();
    other.key = "other.txt".into();
    s.write(|tx| {
        let err = tx.import_document(other.clone(), &b"abd"[..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        let err = tx.import_document(other.clone(), &b"abcd"[..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(!tx.document_exists("other.txt")?);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        kind_of(s.write(|tx| tx.import_document(wanted.clone(), &b"abc"[..]))),
        ErrorKind::AlreadyExists
    );
    let mut bad = wanted.clone();
    bad.key = "v0".into();
    bad.version = 0;
    assert_eq!(
        kind_of(s.write(|tx| tx.import_document(bad.clone(), &b"abc"[..]))),
        ErrorKind::Validation
    );
}

pub fn doc_graph_and_documents_commit_together(f: Fixture) {
    let s = &f.store;
    s.write(|tx| {
        tx.create_node(thing("pilot"))?;
        tx.write_document("scripts/pilot.fountain", "INT. HOUSE - DAY")?;
        tx.create_node(thing("scene-1").with_dependency("pilot"))?;
        tx.write_document("blobs/scene-1.npy", [1u8, 2, 3])?;
        Ok(())
    })
    .unwrap();
    assert_eq!(s.count_nodes().unwrap(), 2);
    assert_eq!(
        all_document_keys(s),
        ["blobs/scene-1.npy", "scripts/pilot.fountain"]
    );
    let n = s.get_node("pilot").unwrap();
    let d = meta(s, "scripts/pilot.fountain");
    assert_eq!(
        n.metadata.created_at, d.created_at,
        "one time per transaction"
    );
}

pub fn doc_rollback_on_err_discards_documents_and_graph(f: Fixture) {
    let s = &f.store;
    s.write_document("keep", "v1").unwrap();
    let err = s
        .write(|tx| {
            tx.create_node(thing("n"))?;
            tx.write_document("keep", "v2")?;
            tx.write_document("new", "x")?;
            tx.write_document_from("big", Generated::new(600_000), &WriteOptions::new())?;
            tx.delete_document("keep")?;
            Err::<(), _>(Error::invalid_input("test", "roll back"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(s.count_nodes().unwrap(), 0);
    assert_eq!(all_document_keys(s), ["keep"]);
    assert_eq!(s.read_document("keep").unwrap(), b"v1");
    assert_eq!(meta(s, "keep").version, 1);
    // A failing graph operation rolls documents back too.
    let err = s
        .write(|tx| {
            tx.write_document("new", "x")?;
            tx.create_node(thing("dup"))?;
            tx.create_node(thing("dup"))?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(!s.document_exists("new").unwrap());
}

pub fn doc_rollback_on_panic(f: Fixture) {
    let s = &f.store;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        s.write(|tx| {
            tx.write_document("doomed", "x")?;
            panic!("the application failed half-way");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(outcome.is_err());
    assert!(!s.document_exists("doomed").unwrap());
    s.write_document("after", "x").unwrap();
    assert_eq!(all_document_keys(s), ["after"]);
}

pub fn doc_txn_sees_its_own_writes(f: Fixture) {
    let s = &f.store;
    s.write_documents([
        DocumentWrite::new("d/old", "o"),
        DocumentWrite::new("gone", "g"),
    ])
    .unwrap();
    s.write(|tx| {
        tx.write_document("d/new", "n")?;
        tx.write_document("d/old", "o2")?;
        tx.delete_document("gone")?;
        assert_eq!(tx.read_document("d/new")?, b"n");
        assert_eq!(tx.stat_document("d/old")?.version, 2);
        assert!(!tx.document_exists("gone")?);
        assert_eq!(tx.count_documents()?, 2);
        let page = tx.list_documents(&DocumentQuery::prefix("d/"))?;
        assert_eq!(keys_of(&page.documents), ["d/new", "d/old"]);
        let mut piece = String::new();
        tx.open_document("d/old")?
            .read_to_string(&mut piece)
            .unwrap();
        assert_eq!(piece, "o2");
        // Nothing is visible outside before commit.
        assert!(!s.document_exists("d/new")?);
        Ok(())
    })
    .unwrap();
    assert!(s.document_exists("d/new").unwrap());
    assert!(!s.document_exists("gone").unwrap());
}

pub fn doc_snapshot_does_not_see_later_commits(f: Fixture) {
    let s = &f.store;
    s.write_document("a", "v1").unwrap();
    s.write_document("b", "b").unwrap();
    let snapshot = s.read().unwrap();
    let opened = snapshot.open_document("a").unwrap();
    s.write_document("a", "v2-longer").unwrap();
    s.write_document("c", "new").unwrap();
    s.delete_document("b").unwrap();
    assert_eq!(
        sha_of_reader(opened).1,
        Sha256Digest::of(b"v1"),
        "an open reader keeps its snapshot"
    );
    assert_eq!(snapshot.stat_document("a").unwrap().version, 1);
    assert!(!snapshot.document_exists("c").unwrap());
    assert!(snapshot.document_exists("b").unwrap());
    assert_eq!(
        keys_of(
            &snapshot
                .list_documents(&DocumentQuery::default())
                .unwrap()
                .documents
        ),
        ["a", "b"]
    );
    // Reading bytes replaced after the snapshot: the snapshot's bytes, or a
    // `Conflict` where a backend cannot keep them (never the newer bytes).
    match snapshot.read_document("a") {
        Ok(bytes) => assert_eq!(bytes, b"v1"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
    }
    drop(snapshot);
    assert_eq!(s.read_document("a").unwrap(), b"v2-longer");
}

pub fn doc_count(f: Fixture) {
    let s = &f.store;
    assert_eq!(s.count_documents().unwrap(), 0);
    s.write_documents((0..10).map(|i| DocumentWrite::new(format!("c/{i}"), "x")))
        .unwrap();
    assert_eq!(s.count_documents().unwrap(), 10);
    s.delete_document("c/3").unwrap();
    assert_eq!(s.count_documents().unwrap(), 9);
}

pub fn doc_many_in_one_transaction(f: Fixture) {
    let s = &f.store;
    let n = 1500;
    s.write(|tx| {
        for i in 0..n {
            tx.write_document(
                &format!("many/{:04}/{i}.txt", i % 37),
                format!("document {i}"),
            )?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(s.count_documents().unwrap(), n as u64);
    let keys = all_document_keys(s);
    assert_eq!(keys.len(), n);
    let folders = s
        .list_documents(&DocumentQuery::prefix("many/").folders().limit(1000))
        .unwrap();
    assert_eq!(folders.folders.len(), 37);
    assert!(folders.documents.is_empty());
    assert_eq!(s.read_document("many/0005/42.txt").unwrap(), b"document 42");
}

pub fn doc_keys_are_apart_from_node_names(f: Fixture) {
    let s = &f.store;
    s.write(|tx| {
        tx.create_node(thing("same"))?;
        tx.write_document("same", "a document")?;
        Ok(())
    })
    .unwrap();
    s.delete_node("same", crate::OnDependents::Refuse).unwrap();
    assert_eq!(s.read_document("same").unwrap(), b"a document");
    s.delete_document("same").unwrap();
    assert!(s.find_node("same").unwrap().is_none());
}

pub fn doc_concurrent_expected_version_writes_are_exact(f: Fixture) {
    let s = &f.store;
    s.write_document("counter", "0").unwrap();
    std::thread::scope(|scope| {
        for _ in 0..3 {
            let store = s.clone();
            scope.spawn(move || {
                for _ in 0..10 {
                    loop {
                        let doc = store.get_document("counter").unwrap();
                        let n: u64 = String::from_utf8(doc.content).unwrap().parse().unwrap();
                        let options = WriteOptions::new().expect_version(doc.meta.version);
                        match store.write_document_with("counter", (n + 1).to_string(), &options) {
                            Ok(_) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => {}
                            Err(e) => panic!("only conflicts may happen, got: {e}"),
                        }
                    }
                }
            });
        }
    });
    assert_eq!(s.read_document("counter").unwrap(), b"30");
    assert_eq!(meta(s, "counter").version, 31);
}

/// Regression: on JSON files a one-call read whose snapshot lost the document's
/// file to a concurrent commit failed with `Conflict` ("read it again"); a one-call
/// read has no snapshot to keep, so it reads again on a fresh one. And a snapshot
/// taken between a commit's publication and the move of its files into place read
/// the old file and failed.
pub fn doc_one_call_reads_succeed_while_another_thread_replaces_the_document(f: Fixture) {
    let s = &f.store;
    s.write_document("hot", "0").unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = s.clone();
        let done = &done;
        scope.spawn(move || {
            for i in 1..=60 {
                writer.write_document("hot", i.to_string()).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut last = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let doc = s.get_document("hot").unwrap();
            let n: u64 = String::from_utf8(doc.content).unwrap().parse().unwrap();
            assert!(n >= last, "read {n} after {last}");
            assert_eq!(doc.meta.version, n + 1);
            // A streaming read is tried again only while it has passed nothing on:
            // it gives one whole version, or (JSON files, whose bytes are checked
            // against their digest at the end) `Conflict`, never repeated bytes.
            let mut out = Vec::new();
            match s.read_document_to("hot", &mut out) {
                Ok(_) => {
                    let streamed: u64 = String::from_utf8(out).unwrap().parse().unwrap();
                    assert!((n..=60).contains(&streamed), "{streamed} after {n}");
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
            }
            last = n;
            // A snapshot may lose the file only to a commit after it (JSON files):
            // never to the one it already shows, whose files are still being moved.
            let snapshot = s.read().unwrap();
            let seen = snapshot.stat_document("hot").unwrap().version;
            match snapshot.read_document("hot") {
                Ok(bytes) => assert_eq!(bytes, (seen - 1).to_string().as_bytes()),
                Err(crate::Error::Conflict {
                    expected, actual, ..
                }) => assert!(expected == seen && actual > seen, "{expected} {actual}"),
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(s.read_document("hot").unwrap(), b"60");
}

/// `store.read_document` of a document larger than a SQLite row keeps (stored in
/// chunks: several statements, where a small one is read by a single one) while
/// another thread replaces it again and again: every read is one whole version,
/// never chunks of two.
pub fn doc_one_call_reads_of_a_large_document_being_replaced_are_whole(f: Fixture) {
    let s = &f.store;
    let version = |i: u8| vec![i; 600_000 + usize::from(i) * 1_000];
    s.write_document("big", version(0)).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = s.clone();
        let done = &done;
        scope.spawn(move || {
            for i in 1..=12 {
                writer.write_document("big", version(i)).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
            let bytes = s.read_document("big").unwrap();
            let first = bytes[0];
            assert!(
                bytes == version(first),
                "read {} bytes starting with {first}: not one whole version",
                bytes.len()
            );
            reads += 1;
        }
    });
    assert_eq!(s.read_document("big").unwrap(), version(12));
}

pub fn doc_check_is_clean_with_documents(f: Fixture) {
    let s = &f.store;
    sample(s);
    s.write_document_from("big", Generated::new(1_200_000), &WriteOptions::new())
        .unwrap();
    let report = s.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

pub fn doc_reopen_keeps_documents(mut f: Fixture) {
    if !f.is_persistent() {
        eprintln!("doc_reopen_keeps_documents: skipped, the backend is not persistent");
        return;
    }
    let s = f.store.clone();
    let keys = sample(&s);
    let big = s
        .write_document_from("blobs/big", Generated::new(2_000_000), &WriteOptions::new())
        .unwrap();
    let typed = s
        .write_document_with("typed", "t", &WriteOptions::new().content_type("text/x-t"))
        .unwrap();
    s.write_document("typed", "t2").unwrap();
    drop(s);
    assert!(f.reopen());
    let s = &f.store;
    assert_eq!(s.count_documents().unwrap(), keys.len() as u64 + 2);
    for key in &keys {
        assert_eq!(s.read_document(key).unwrap(), key.as_bytes(), "{key}");
    }
    assert_eq!(meta(s, "blobs/big"), big);
    assert_eq!(
        Sha256Digest::of(&s.read_document("blobs/big").unwrap()),
        big.sha256
    );
    let t = meta(s, "typed");
    assert_eq!(
        (t.version, t.content_type.as_str(), t.created_at),
        (2, "text/x-t", typed.created_at)
    );
    s.write_document("after-reopen", "x").unwrap();
    assert!(s.check().unwrap().is_ok());
}

pub fn doc_reads_and_writes_are_counted_in_metrics(f: Fixture) {
    let s = &f.store;
    s.write(|tx| tx.write_document("notes/a.md", "alpha").map(drop))
        .unwrap();
    s.reset_metrics();
    s.write(|tx| {
        tx.write_document("notes/b.md", "beta")?;
        tx.write_document("notes/c.md", "gamma")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(s.read_document("notes/a.md").unwrap(), b"alpha");
    assert!(s.document_exists("notes/b.md").unwrap());
    assert_eq!(
        kind_of(s.read_document("notes/zz.md")),
        ErrorKind::DocumentNotFound
    );
    assert_eq!(
        kind_of(s.write(|tx| tx.delete_document("notes/zz.md").map(drop))),
        ErrorKind::DocumentNotFound
    );
    let snapshot = s.read().unwrap();
    snapshot.stat_document("notes/c.md").unwrap();
    let m = s.metrics();
    assert_eq!(m.write_transactions.count, 2, "{m:?}");
    assert_eq!(m.write_transactions.errors, 1);
    assert_eq!(m.commits.count, 1);
    // Every document read on the store or a snapshot is a read, like a graph query
    // (one that finds nothing succeeded; the failed delete is counted by kind).
    assert_eq!(m.reads.count, 4, "{m:?}");
    assert_eq!(m.reads.errors, 0);
    assert_eq!(m.errors_by_kind.get("document_not_found"), Some(&1));
}
