//! Property: whatever edits a script goes through, re-importing it leaves the
//! store answering every query as a fresh import of the final text does, and
//! the scenes whose text did not change keep their nodes untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use kgstore::{GraphRead, Store};
use kgstore_screenplay::query::{self, SceneQuery, SceneRow};
use kgstore_screenplay::{ImportOptions, Source, export, import};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Edit {
    Remove(usize),
    Duplicate(usize),
    Swap(usize, usize),
    AddLine(usize),
    NewScene(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..20usize).prop_map(Edit::Remove),
        (0..20usize).prop_map(Edit::Duplicate),
        (0..20usize, 0..20usize).prop_map(|(a, b)| Edit::Swap(a, b)),
        (0..20usize).prop_map(Edit::AddLine),
        (0..20usize).prop_map(Edit::NewScene),
    ]
}

/// The script as a head (title page and what precedes the first heading) and its scenes' texts.
fn split(text: &str) -> (String, Vec<String>) {
    let script = kgstore_fountain::parse(text.to_owned()).unwrap();
    // Each scene ends in a blank line, so that scenes can be moved around and
    // still read back as the same scenes.
    let scenes: Vec<String> = script
        .scenes()
        .iter()
        .map(|s| {
            let mut t = s.text().trim_end_matches('\n').to_owned();
            t.push_str("\n\n");
            t
        })
        .collect();
    let head_end = script.scenes().first().map_or(text.len(), |s| s.span.start);
    (text[..head_end].to_owned(), scenes)
}

fn apply(scenes: &mut Vec<String>, e: &Edit) {
    let n = scenes.len();
    match *e {
        Edit::Remove(i) if n > 0 => {
            scenes.remove(i % n);
        }
        Edit::Duplicate(i) if n > 0 => {
            let s = scenes[i % n].clone();
            scenes.insert(i % n, s);
        }
        Edit::Swap(a, b) if n > 0 => scenes.swap(a % n, b % n),
        Edit::AddLine(i) if n > 0 => {
            let s = &mut scenes[i % n];
            let end = s.trim_end_matches('\n').len();
            s.insert_str(end, "\n\nZED\nA line nobody wrote before.");
        }
        Edit::NewScene(i) => {
            let at = if n == 0 { 0 } else { i % (n + 1) };
            scenes.insert(
                at,
                format!("INT. ROOM {i} - NIGHT\n\nYANA\nNew scene {i}.\n\n"),
            );
        }
        _ => {}
    }
}

/// What the queries say, without scene node names (ids differ between an
/// edited history and a fresh import).
fn answers(store: &Store) -> String {
    let slug = "prop";
    let strip = |rows: Vec<SceneRow>| -> Vec<SceneRow> {
        rows.into_iter()
            .map(|mut r| {
                r.scene.clear();
                r
            })
            .collect()
    };
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        strip(query::scenes(store, slug, &SceneQuery::default()).unwrap()),
        query::characters(store, slug).unwrap(),
        query::co_appearances(store, slug, None).unwrap(),
        store.stats().unwrap().node_types,
    )
}

proptest! {
    // 24 cases in CI; PROPTEST_CASES for long runs.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]
    #[test]
    fn reimport_after_edits_equals_a_fresh_import(edits in proptest::collection::vec(proptest::collection::vec(edit(), 1..4), 1..4)) {
        let options = ImportOptions { series: Some("Prop".into()) };
        let generated = kgstore_fountain::synthetic::series(1, 6, 11).remove(0);
        let file = "S01E01.fountain";
        let (head, mut scenes) = split(&generated.text);
        let mut text = format!("{head}{}", scenes.concat());
        let store = Store::memory();
        import(&store, &[Source::new(file, text.clone())], &options).unwrap();
        for round in &edits {
            let before: Vec<(String, String)> = query::scenes(&store, "prop", &SceneQuery::default())
                .unwrap()
                .into_iter()
                .map(|r| {
                    let node = store.get_node(&r.scene).unwrap();
                    (r.sha256, serde_json::to_string(&node).unwrap())
                })
                .collect();
            for e in round {
                apply(&mut scenes, e);
            }
            text = format!("{head}{}", scenes.concat());
            prop_assert_eq!(&split(&text).1, &scenes, "the edit model reads back");
            import(&store, &[Source::new(file, text.clone())], &options).unwrap();
            // A scene whose text survived keeps a node exactly as it was.
            let after: Vec<String> = query::scenes(&store, "prop", &SceneQuery::default())
                .unwrap()
                .into_iter()
                .map(|r| serde_json::to_string(&store.get_node(&r.scene).unwrap()).unwrap())
                .collect();
            // (With several scenes of one text, as many of their nodes as remain.)
            let hash = |t: &String| kgstore_screenplay::names::sha256_hex(t.as_bytes());
            for (sha, _) in &before {
                let had: Vec<&String> = before.iter().filter(|(s, _)| s == sha).map(|(_, n)| n).collect();
                let now = scenes.iter().filter(|t| hash(t) == *sha).count();
                let kept = had.iter().filter(|n| after.contains(n)).count();
                prop_assert_eq!(kept, had.len().min(now), "an unchanged scene's node changed");
            }
            prop_assert!(store.check().unwrap().is_ok());
        }
        let fresh = Store::memory();
        import(&fresh, &[Source::new(file, text.clone())], &options).unwrap();
        prop_assert_eq!(answers(&store), answers(&fresh));
        prop_assert_eq!(export::script_text(&store, "prop", file).unwrap(), text.as_bytes());
        // And once more, nothing changes.
        prop_assert!(import(&store, &[Source::new(file, text)], &options).unwrap().is_unchanged());
    }
}
