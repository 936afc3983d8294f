//! Import, re-import and export on every backend that holds documents.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{BACKENDS, demo_sources, import_demo, open, snapshot};
use kgstore::{DocumentRead, GraphRead, Store};
use kgstore_screenplay::export::{resolve_scene, scene_text, script_text};
use kgstore_screenplay::query::{SceneQuery, scenes};
use kgstore_screenplay::{Change, ImportOptions, Source, import, names};

const SLUG: &str = "the-night-desk";

#[test]
fn the_demo_imports_into_the_model() {
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let s = &t.store;
        assert!(
            s.contains_node("series:the-night-desk").unwrap(),
            "{backend}"
        );
        let script = s
            .get_node("script:the-night-desk/S01E02 - The Tape.fountain")
            .unwrap();
        assert_eq!(script.attributes["season"], 1);
        assert_eq!(script.attributes["episode"], 2);
        assert_eq!(script.attributes["episode_title"], "The Tape");
        assert_eq!(script.attributes["scenes"], 4);
        let doc = s
            .stat_document("scripts/the-night-desk/S01E02 - The Tape.fountain")
            .unwrap();
        assert_eq!(doc.content_type, kgstore_screenplay::FOUNTAIN_CONTENT_TYPE);
        let scene = s
            .get_node("scene:the-night-desk/S01E02 - The Tape.fountain#3")
            .unwrap();
        assert_eq!(scene.attributes["location_key"], "LIGHTHOUSE");
        assert_eq!(scene.attributes["int_ext"], "EXT");
        let mara = s.get_node("character:the-night-desk/MARA").unwrap();
        assert_eq!(mara.attributes["speeches"], 13);
        assert!(
            s.contains_node("location:the-night-desk/HARBOUR WALL")
                .unwrap()
        );
        let stats = s.stats().unwrap();
        let by_type = |t: &str| stats.node_types.get(t).copied().unwrap_or(0);
        assert_eq!(by_type("scene"), 13, "{backend}");
        assert_eq!(by_type("character"), 5);
        assert_eq!(by_type("location"), 6);
        assert_eq!(by_type("script"), 3);
        assert_eq!(by_type("series"), 1);
        assert_eq!(s.count_documents().unwrap(), 3);
    }
}

#[test]
fn importing_the_same_files_twice_changes_nothing() {
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let before = snapshot(&t.store);
        let report = import(&t.store, &demo_sources(), &ImportOptions::default()).unwrap();
        assert!(report.is_unchanged(), "{backend}: {report:?}");
        for s in &report.scripts {
            assert_eq!(
                (s.script, s.document),
                (Change::Unchanged, Change::Unchanged)
            );
            assert_eq!(s.scenes_unchanged, s.scenes);
        }
        assert_eq!(snapshot(&t.store), before, "{backend}: a version moved");
    }
}

/// The demo's second episode with its third scene's dialogue edited, its
/// fourth scene removed and a new scene added at the end.
fn edited_episode_two() -> (String, String) {
    let file = "S01E02 - The Tape.fountain";
    let text = std::fs::read_to_string(common::demo_dir().join(file)).unwrap();
    let script = kgstore_fountain::parse(text.clone()).unwrap();
    let scenes = script.scenes();
    let third = scenes[2].text();
    let fourth = scenes[3].text();
    assert!(third.contains("NELL"), "the third scene has Nell speaking");
    let edited_third = third.replacen("NELL\n", "NELL\nA new first line for Nell.\n", 1);
    assert_ne!(edited_third, third);
    let mut edited = text
        .replacen(third, &edited_third, 1)
        .replacen(fourth, "", 1);
    edited.push_str("\nEXT. LIGHTHOUSE - DAWN #5#\n\nJUNE\nSomebody has to open up.\n");
    (file.to_owned(), edited)
}

#[test]
fn re_import_updates_exactly_the_changed_scenes() {
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let before = snapshot(&t.store);
        let (file, edited) = edited_episode_two();
        let report = import(
            &t.store,
            &[Source::new(&file, edited.clone())],
            &ImportOptions::default(),
        )
        .unwrap();
        let r = &report.scripts[0];
        assert_eq!(
            (
                r.scenes_added,
                r.scenes_changed,
                r.scenes_unchanged,
                r.scenes_removed
            ),
            (1, 1, 2, 1),
            "{backend}: {r:?}"
        );
        assert_eq!((r.script, r.document), (Change::Updated, Change::Updated));
        let after = snapshot(&t.store);
        let scene = |id: u64| format!("node {}", names::scene(SLUG, &file, id));
        let version = |snap: &std::collections::BTreeMap<String, String>, key: &str| {
            let v: serde_json::Value = serde_json::from_str(&snap[key]).unwrap();
            v["metadata"]["version"].as_u64().unwrap()
        };
        // Scenes 1 and 2 are untouched, 3 moved to version 2, 4 is gone, 5 is new.
        for id in [1, 2] {
            assert_eq!(
                after[&scene(id)],
                before[&scene(id)],
                "{backend}: scene {id}"
            );
        }
        assert_eq!(version(&after, &scene(3)), 2);
        assert!(!after.contains_key(&scene(4)));
        assert_eq!(version(&after, &scene(5)), 1);
        // Every scene of the other episodes, and their edges, are as they were.
        for (key, value) in &before {
            if key.starts_with("node scene:") && !key.contains(&file) {
                assert_eq!(after.get(key), Some(value), "{backend}: {key}");
            }
        }
        // The text is the new text, and exports byte for byte.
        assert_eq!(
            script_text(&t.store, SLUG, &file).unwrap(),
            edited.as_bytes()
        );
        // The new scene is in order after scene 3, and scene 3 is followed by it.
        let rows = scenes(
            &t.store,
            SLUG,
            &SceneQuery {
                file: Some(file.clone()),
                ..SceneQuery::default()
            },
        )
        .unwrap();
        let ids: Vec<u64> = rows
            .iter()
            .map(|r| names::scene_id(&r.scene).unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3, 5]);
        assert_eq!(rows[3].speakers, ["JUNE"]);
        // Totals follow: Nell has one more line, June one more speech; the
        // booth lost a scene.
        let nell = t.store.get_node("character:the-night-desk/NELL").unwrap();
        assert_eq!(nell.attributes["lines"], 9);
        let june = t.store.get_node("character:the-night-desk/JUNE").unwrap();
        assert_eq!(june.attributes["speeches"], 8);
        let booth = t
            .store
            .get_node("location:the-night-desk/RADIO STATION - BOOTH")
            .unwrap();
        assert_eq!(booth.attributes["scenes"], 3);
        // And importing the edited text again changes nothing.
        let again = import(
            &t.store,
            &[Source::new(&file, edited)],
            &ImportOptions::default(),
        )
        .unwrap();
        assert!(again.is_unchanged(), "{backend}: {again:?}");
        assert!(t.store.check().unwrap().is_ok());
    }
}

#[test]
fn vanished_characters_and_locations_are_removed() {
    let t = open("sqlite");
    let one =
        "Title: Tiny\n\nINT. A - DAY\n\nBOB\nHi.\n\nEXT. B - NIGHT\n\nANN\nYo.\n\nBOB\nHey.\n";
    import(
        &t.store,
        &[Source::new("x.fountain", one)],
        &ImportOptions::default(),
    )
    .unwrap();
    assert!(t.store.contains_node("character:tiny/ANN").unwrap());
    assert!(t.store.contains_node("location:tiny/B").unwrap());
    let two = "Title: Tiny\n\nINT. A - DAY\n\nBOB\nHi.\n";
    let report = import(
        &t.store,
        &[Source::new("x.fountain", two)],
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.scripts[0].scenes_removed, 1);
    assert!(!t.store.contains_node("character:tiny/ANN").unwrap());
    assert!(!t.store.contains_node("location:tiny/B").unwrap());
    let bob = t.store.get_node("character:tiny/BOB").unwrap();
    assert_eq!(bob.attributes["speeches"], 1);
    assert!(t.store.check().unwrap().is_ok());
}

#[test]
fn user_annotations_survive_a_re_import() {
    let t = open("memory");
    import_demo(&t.store);
    let name = "scene:the-night-desk/S01E01 - Dead Air.fountain#1";
    let mut node = t.store.get_node(name).unwrap();
    node.metadata.tags.push("favourite".into());
    t.store.update_node(node, None).unwrap();
    let (file, edited) = edited_episode_two();
    import(
        &t.store,
        &[Source::new(file, edited)],
        &ImportOptions::default(),
    )
    .unwrap();
    assert!(t.store.get_node(name).unwrap().has_tag("favourite"));
}

/// Every Fountain text the tests know: the demo, the Jouvence corpus, generated
/// series, and odd shapes (CRLF, a byte-order mark, no final newline).
fn every_fountain_text() -> Vec<(String, String)> {
    let mut texts: Vec<(String, String)> = demo_sources()
        .into_iter()
        .map(|s| (s.file, String::from_utf8(s.bytes).unwrap()))
        .collect();
    let corpus = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../kgstore-fountain/tests/corpora/jouvence/cases.jsonl"),
    )
    .unwrap();
    for (i, line) in corpus.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = case["in"].as_str().unwrap().to_owned();
        texts.push((format!("jouvence-{i:03}.fountain"), text));
    }
    for g in kgstore_fountain::synthetic::series(3, 20, 7) {
        texts.push((g.file_name, g.text));
    }
    texts.push((
        "crlf.fountain".into(),
        "Title: X\r\n\r\nINT. A - DAY\r\n\r\nBOB\r\nHi.\r\n".into(),
    ));
    texts.push((
        "bom.fountain".into(),
        "\u{feff}INT. A - DAY\n\nBOB\nHi.".into(),
    ));
    texts
}

#[test]
fn export_gives_back_every_imported_text_byte_for_byte() {
    let texts = every_fountain_text();
    for backend in BACKENDS {
        let t = open(backend);
        let sources: Vec<Source> = texts
            .iter()
            .map(|(file, text)| Source::new(file, text.clone()))
            .collect();
        let options = ImportOptions {
            series: Some("Every Text".into()),
        };
        import(&t.store, &sources, &options).unwrap();
        for (file, text) in &texts {
            let back = script_text(&t.store, "every-text", file).unwrap();
            assert_eq!(back, text.as_bytes(), "{backend}: {file}");
            // Each scene's text is its slice of the script, and the scenes
            // (with the title page and what no scene holds) lie in order.
            let script = kgstore_fountain::parse(text.clone()).unwrap();
            let rows = scenes(
                &t.store,
                "every-text",
                &SceneQuery {
                    file: Some(file.clone()),
                    ..SceneQuery::default()
                },
            )
            .unwrap();
            let expected: Vec<&str> = script
                .prologue()
                .filter(kgstore_screenplay::is_story)
                .into_iter()
                .chain(script.scenes())
                .map(|s| s.text())
                .collect();
            let got: Vec<String> = rows
                .iter()
                .map(|r| scene_text(&t.store, &r.scene).unwrap())
                .collect();
            assert_eq!(got, expected, "{backend}: {file}");
        }
    }
}

#[test]
fn one_scene_by_its_short_name() {
    let t = open("sqlite");
    import_demo(&t.store);
    let name = resolve_scene(&t.store, SLUG, "S01E03 - Three Short, One Long.fountain#1").unwrap();
    let text = scene_text(&t.store, &name).unwrap();
    assert!(text.starts_with("EXT. HARBOUR WALL - DAWN"), "{text}");
    assert!(resolve_scene(&t.store, SLUG, "nope").is_err());
    assert!(resolve_scene(&t.store, SLUG, "S01E03 - Three Short, One Long.fountain#99").is_err());
    assert!(resolve_scene(&t.store, SLUG, "series:the-night-desk").is_err());
}

#[test]
fn a_changed_document_is_reported_not_exported() {
    let t = open("memory");
    import_demo(&t.store);
    t.store
        .write(|tx| {
            tx.write_document(
                "scripts/the-night-desk/S01E01 - Dead Air.fountain",
                "tampered",
            )
            .map(|_| ())
        })
        .unwrap();
    let err = script_text(&t.store, SLUG, "S01E01 - Dead Air.fountain").unwrap_err();
    assert_eq!(err.kind(), kgstore::ErrorKind::Corrupt, "{err}");
}

/// A store's entire content, to prove a failed import left it as it was.
fn assert_untouched(store: &Store, before: &std::collections::BTreeMap<String, String>) {
    assert_eq!(&snapshot(store), before);
}

#[test]
fn bad_input_is_refused_and_nothing_is_half_imported() {
    let big_mib: usize = std::env::var("KGSTORE_SCREENPLAY_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let before = snapshot(&t.store);
        let good = Source::new(
            "good.fountain",
            "Title: The Night Desk\n\nINT. NEW - DAY\n\nBOB\nHi.\n",
        );
        let cases: Vec<(&str, Source, &str)> = vec![
            (
                "binary",
                Source::new("bin.fountain", b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec()),
                "NUL",
            ),
            (
                "invalid UTF-8",
                Source::new(
                    "bad.fountain",
                    b"Title: X\n\nINT. A - DAY\n\n\xff\xfe oops".to_vec(),
                ),
                "byte offset 24",
            ),
            (
                "no series",
                Source::new("untitled.fountain", "INT. A - DAY\n"),
                "--series",
            ),
            (
                "a bad file name",
                Source::new("a/b.fountain", "x"),
                "cannot hold `/`",
            ),
        ];
        for (what, bad, says) in cases {
            let err =
                import(&t.store, &[good.clone(), bad], &ImportOptions::default()).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(says), "{backend} {what}: {message}");
            assert_untouched(&t.store, &before);
        }
        // Empty scripts: an empty file, and a title page only.
        let empty = ImportOptions {
            series: Some("Empties".into()),
        };
        for (file, text) in [
            ("empty.fountain", ""),
            ("title.fountain", "Title: Only\nAuthor: Someone\n"),
            ("blank.fountain", "\n\n\n"),
        ] {
            let r = import(&t.store, &[Source::new(file, text)], &empty).unwrap();
            assert_eq!(r.scripts[0].scenes, 0, "{backend} {file}");
            assert_eq!(
                script_text(&t.store, "empties", file).unwrap(),
                text.as_bytes()
            );
        }
        // One long line: a script with one (heading-less) scene of action.
        let mut long = "x".repeat(big_mib << 20);
        long.push('\n');
        let r = import(
            &t.store,
            &[Source::new("long.fountain", long.clone())],
            &empty,
        )
        .unwrap();
        assert_eq!(r.scripts[0].scenes, 1);
        assert_eq!(
            script_text(&t.store, "empties", "long.fountain")
                .unwrap()
                .len(),
            long.len()
        );
        assert!(t.store.check().unwrap().is_ok(), "{backend}");
    }
}

#[test]
fn files_and_folders_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.fountain"), "Title: F\n\nINT. A - DAY\n").unwrap();
    std::fs::write(dir.path().join("B.FOUNTAIN"), "Title: F\n\nINT. B - DAY\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a script").unwrap();
    let single = dir.path().join("single.txt");
    std::fs::write(&single, "Title: F\n\nINT. C - DAY\n").unwrap();
    let sources = kgstore_screenplay::read_sources(&[dir.path().to_path_buf(), single]).unwrap();
    let files: Vec<&str> = sources.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files, ["B.FOUNTAIN", "a.fountain", "single.txt"]);
    // The same name twice is refused.
    let twice = kgstore_screenplay::read_sources(&[
        dir.path().join("a.fountain"),
        dir.path().to_path_buf(),
    ]);
    assert!(twice.unwrap_err().to_string().contains("same name"));
    let missing = kgstore_screenplay::read_sources(&[dir.path().join("missing")]);
    assert_eq!(missing.unwrap_err().kind(), kgstore::ErrorKind::Io);
}

/// A `*.fountain` entry of a folder that cannot be read — a link to a file that is
/// gone (a script moved away) — fails the import naming it, as a named file that
/// cannot be read does; it was skipped without a word, so the import said it had
/// read the folder while a script was left out. A folder named `*.fountain` is
/// still not a script (folders are not searched).
#[cfg(unix)]
#[test]
fn a_script_in_a_folder_that_cannot_be_read_fails_the_import() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.fountain"), "Title: F\n\nINT. A - DAY\n").unwrap();
    std::fs::create_dir(dir.path().join("drafts.fountain")).unwrap();
    let sources = kgstore_screenplay::read_sources(&[dir.path()]).unwrap();
    assert_eq!(sources.len(), 1);
    std::os::unix::fs::symlink(
        dir.path().join("moved-away.fountain"),
        dir.path().join("b.fountain"),
    )
    .unwrap();
    let err = kgstore_screenplay::read_sources(&[dir.path()]).unwrap_err();
    assert_eq!(err.kind(), kgstore::ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("b.fountain"), "{err}");
}
