//! Embeddings: stored by content hash, never rewritten when unchanged, and
//! `similar` checked against a brute-force reference.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{BACKENDS, import_demo, open, snapshot};
use kgstore::DocumentRead;
use kgstore_screenplay::embed::{
    DEFAULT_MODEL, Embedding, embedding_key, pending, read_jsonl, similar, store_embeddings,
};
use kgstore_screenplay::query::{SceneQuery, scenes};
use kgstore_screenplay::{ImportOptions, Source, import};

const SLUG: &str = "the-night-desk";

/// A deterministic pseudo-random vector for a hash (xorshift seeded by it).
fn vector_for(sha: &str, dim: usize) -> Vec<f32> {
    let mut x: u64 = u64::from_str_radix(&sha[..16], 16).unwrap() | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2001) as f32 - 1000.0) / 1000.0
        })
        .collect()
}

/// Cosine similarity written out separately from the library's, in f64.
fn reference_cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn similar_matches_a_brute_force_reference() {
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let todo = pending(&t.store, SLUG, DEFAULT_MODEL).unwrap();
        assert_eq!(todo.len(), 13, "every scene of the demo has its own text");
        let embeddings: Vec<Embedding> = todo
            .iter()
            .map(|p| Embedding {
                sha256: p.sha256.clone(),
                vector: vector_for(&p.sha256, 48),
            })
            .collect();
        // Through JSON Lines, as the CLI reads them.
        let jsonl: String = embeddings
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        let read = read_jsonl(jsonl.as_bytes()).unwrap();
        assert_eq!(read, embeddings);
        // The lines `embed --pending` prints, each with its vector added (`scene` and
        // `text` left in, as a script adding a field leaves them), read the same.
        let pending_lines: String = todo
            .iter()
            .zip(&embeddings)
            .map(|(p, e)| {
                let mut line = serde_json::to_value(p).unwrap();
                line["vector"] = serde_json::to_value(&e.vector).unwrap();
                line.to_string() + "\n"
            })
            .collect();
        assert_eq!(read_jsonl(pending_lines.as_bytes()).unwrap(), embeddings);
        let report = store_embeddings(&t.store, DEFAULT_MODEL, &read).unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.dimension),
            (13, 0, 48)
        );
        assert!(pending(&t.store, SLUG, DEFAULT_MODEL).unwrap().is_empty());
        let rows = scenes(&t.store, SLUG, &SceneQuery::default()).unwrap();
        for query in &rows {
            for top in [1, 5, 12, 50] {
                let got = similar(&t.store, SLUG, &query.scene, top, DEFAULT_MODEL).unwrap();
                let q = vector_for(&query.sha256, 48);
                let mut want: Vec<(f64, String)> = rows
                    .iter()
                    .filter(|r| r.scene != query.scene)
                    .map(|r| {
                        (
                            reference_cosine(&q, &vector_for(&r.sha256, 48)),
                            r.scene.clone(),
                        )
                    })
                    .collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0));
                want.truncate(top);
                assert_eq!(got.len(), want.len());
                for (g, (score, scene)) in got.iter().zip(&want) {
                    assert_eq!(&g.scene.scene, scene, "{backend}");
                    assert!((g.score - score).abs() < 1e-12, "{} vs {score}", g.score);
                }
            }
        }
    }
}

#[test]
fn unchanged_scenes_keep_their_embeddings() {
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let all: Vec<Embedding> = pending(&t.store, SLUG, "mini-lm")
            .unwrap()
            .iter()
            .map(|p| Embedding {
                sha256: p.sha256.clone(),
                vector: vector_for(&p.sha256, 8),
            })
            .collect();
        store_embeddings(&t.store, "mini-lm", &all).unwrap();
        // The same vectors again: nothing written, no version moves.
        let before = snapshot(&t.store);
        let again = store_embeddings(&t.store, "mini-lm", &all).unwrap();
        assert_eq!((again.written, again.unchanged), (0, 13));
        assert_eq!(snapshot(&t.store), before, "{backend}");
        // Edit one scene: only its new text is pending; the rest keep theirs.
        let file = "S01E01 - Dead Air.fountain";
        let text = std::fs::read_to_string(common::demo_dir().join(file)).unwrap();
        let edited = text.replacen("Twelve past two.", "Quarter past two.", 1);
        assert_ne!(edited, text);
        import(
            &t.store,
            &[Source::new(file, edited)],
            &ImportOptions::default(),
        )
        .unwrap();
        let todo = pending(&t.store, SLUG, "mini-lm").unwrap();
        assert_eq!(todo.len(), 1, "{backend}");
        assert!(todo[0].text.contains("Quarter past two."));
        assert!(todo[0].scene.ends_with("Dead Air.fountain#1"));
        let key = embedding_key("mini-lm", &todo[0].sha256);
        assert!(!t.store.document_exists(&key).unwrap());
        // Its old embedding is still stored (by hash), and other models are separate.
        assert_eq!(pending(&t.store, SLUG, "other").unwrap().len(), 13);
    }
}

#[test]
fn bad_embeddings_are_refused_whole() {
    let t = open("sqlite");
    import_demo(&t.store);
    let good: Vec<Embedding> = pending(&t.store, SLUG, DEFAULT_MODEL)
        .unwrap()
        .iter()
        .map(|p| Embedding {
            sha256: p.sha256.clone(),
            vector: vector_for(&p.sha256, 4),
        })
        .collect();
    store_embeddings(&t.store, DEFAULT_MODEL, &good[..1]).unwrap();
    let before = snapshot(&t.store);
    let sha = good[1].sha256.clone();
    let bad = |vector: Vec<f32>, sha: &str| Embedding {
        sha256: sha.to_owned(),
        vector,
    };
    let cases: Vec<(Vec<Embedding>, &str)> = vec![
        (vec![bad(vec![1.0; 5], &sha)], "dimensions"),
        (vec![bad(vec![0.0; 4], &sha)], "all-zero"),
        (vec![bad(vec![f32::NAN, 1.0, 1.0, 1.0], &sha)], "finite"),
        (vec![bad(vec![], &sha)], "non-empty"),
        (vec![bad(vec![1.0; 4], &"0".repeat(64))], "no scene"),
        (vec![bad(vec![1.0; 4], "ABC")], "64 lower-case hex"),
        (
            vec![bad(vec![1.0; 4], &sha), bad(vec![2.0; 4], &sha)],
            "twice",
        ),
    ];
    for (batch, says) in cases {
        let mut all = good[2..].to_vec();
        all.extend(batch);
        let err = store_embeddings(&t.store, DEFAULT_MODEL, &all).unwrap_err();
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert_eq!(snapshot(&t.store), before);
    }
    assert!(store_embeddings(&t.store, "../x", &good).is_err());
    assert!(
        read_jsonl(&b"{\"sha256\": \"x\"}\n"[..])
            .unwrap_err()
            .to_string()
            .contains("line 1")
    );
    assert!(
        read_jsonl(&b"\n{\"sha256\": \"x\", \"vector\": [1], \"extra\": 1}\n"[..])
            .unwrap_err()
            .to_string()
            .contains("line 2")
    );
    let scene = scenes(&t.store, SLUG, &SceneQuery::default()).unwrap()[5]
        .scene
        .clone();
    assert!(
        similar(&t.store, SLUG, &scene, 3, DEFAULT_MODEL)
            .unwrap_err()
            .to_string()
            .contains("no embedding")
    );
    assert!(similar(&t.store, SLUG, &scene, 0, DEFAULT_MODEL).is_err());
}

/// Whether `git` and `git lfs` run; if not, says loudly that the test is skipped.
fn have_git_lfs(test: &str) -> bool {
    let runs = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = runs(&["--version"]) && runs(&["lfs", "version"]);
    if !ok {
        eprintln!(
            "\n!!!!! SKIPPED {test}: `git` or `git lfs` is not installed (.ci/run installs git and git-lfs with apt-get) !!!!!\n"
        );
    }
    ok
}

/// The real `git`, on the bare repository `repo`, with `home` as HOME and no
/// system configuration; its standard output, insisting on success.
fn git(home: &std::path::Path, repo: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn on_git_the_vectors_are_git_lfs_pointers_in_the_tree() {
    if !have_git_lfs("on_git_the_vectors_are_git_lfs_pointers_in_the_tree") {
        return;
    }
    let t = open("git");
    import_demo(&t.store);
    let embeddings: Vec<Embedding> = pending(&t.store, SLUG, DEFAULT_MODEL)
        .unwrap()
        .iter()
        .map(|p| Embedding {
            sha256: p.sha256.clone(),
            vector: vector_for(&p.sha256, 48),
        })
        .collect();
    store_embeddings(&t.store, DEFAULT_MODEL, &embeddings).unwrap();
    let repo = std::path::PathBuf::from(t.url.strip_prefix("git://").unwrap());
    let home = t._dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // A user's HOME after `git lfs install`: the LFS filters are set.
    git(&home, &repo, &["lfs", "install", "--skip-repo"]);
    let listed = String::from_utf8(git(&home, &repo, &["lfs", "ls-files", "-l", "HEAD"])).unwrap();
    for e in &embeddings {
        let key = embedding_key(DEFAULT_MODEL, &e.sha256);
        let bytes: Vec<u8> = e.vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        let oid = kgstore_screenplay::names::sha256_hex(&bytes);
        // The blob in the commit's tree is a pointer file, not the vector.
        let blob = git(&home, &repo, &["cat-file", "blob", &format!("HEAD:{key}")]);
        assert_eq!(
            String::from_utf8(blob).unwrap(),
            format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
                bytes.len()
            ),
            "{key}"
        );
        // git-lfs sees the object under the path, and kgstore reads the vector.
        assert!(
            listed.contains(&format!("{oid} - {key}")),
            "{key} in {listed}"
        );
        assert_eq!(t.store.read_document(&key).unwrap(), bytes);
    }
    let fsck = String::from_utf8(git(&home, &repo, &["lfs", "fsck", "HEAD"])).unwrap();
    assert!(fsck.contains("Git LFS fsck OK"), "{fsck}");
    // The scripts themselves are plain text in the tree, not pointers.
    for source in common::demo_sources() {
        let key = kgstore_screenplay::names::document(SLUG, &source.file);
        assert_eq!(
            git(&home, &repo, &["cat-file", "blob", &format!("HEAD:{key}")]),
            source.bytes,
            "{key}"
        );
        assert!(!listed.contains(&key), "{key} is not in LFS: {listed}");
    }
}
