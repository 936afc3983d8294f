//! The queries, checked against the hand-counted answers in
//! examples/screenplay/expected.json, on every backend that holds documents.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::{BACKENDS, expected, import_demo, open};
use kgstore_screenplay::query::{
    self, SceneQuery, character_scenes, characters, co_appearances, scenes, search_dialogue,
};
use serde_json::Value;

const SLUG: &str = "the-night-desk";

/// The hand-counted scenes: (season, episode, ordinal) → the scene's record.
fn expected_scenes(e: &Value) -> Vec<(u64, u64, Value)> {
    let mut out = Vec::new();
    for ep in e["episodes"].as_array().unwrap() {
        for scene in ep["scenes"].as_array().unwrap() {
            out.push((
                ep["season"].as_u64().unwrap(),
                ep["episode"].as_u64().unwrap(),
                scene.clone(),
            ));
        }
    }
    out
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// (episode, ordinal) of each row.
fn keys(rows: &[query::SceneRow]) -> Vec<(u32, usize)> {
    rows.iter()
        .map(|r| (r.episode.unwrap(), r.ordinal))
        .collect()
}

#[test]
fn every_scene_as_counted_by_hand() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let rows = scenes(&t.store, SLUG, &SceneQuery::default()).unwrap();
        let want = expected_scenes(&e);
        assert_eq!(
            rows.len() as u64,
            e["scenes"].as_u64().unwrap(),
            "{backend}"
        );
        for (row, (season, episode, scene)) in rows.iter().zip(&want) {
            assert_eq!(row.season, Some(*season as u32));
            assert_eq!(row.episode, Some(*episode as u32));
            assert_eq!(row.ordinal as u64, scene["ordinal"].as_u64().unwrap());
            assert_eq!(row.number.as_deref(), scene["number"].as_str());
            assert_eq!(row.int_ext.as_deref(), scene["int_ext"].as_str());
            assert_eq!(row.location.as_deref(), scene["location"].as_str());
            assert_eq!(row.time_of_day.as_deref(), scene["time_of_day"].as_str());
            assert_eq!(row.speakers, strs(&scene["speakers"]), "{backend} {row:?}");
        }
    }
}

#[test]
fn scenes_by_location_time_and_int_ext_match_the_totals() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let count = |q: SceneQuery| scenes(&t.store, SLUG, &q).unwrap().len() as u64;
        for (location, n) in e["scenes_per_location"].as_object().unwrap() {
            // Written in lower case: locations compare canonically.
            let q = SceneQuery {
                location: Some(location.to_lowercase()),
                ..SceneQuery::default()
            };
            assert_eq!(count(q), n.as_u64().unwrap(), "{backend} {location}");
        }
        for (ie, n) in e["int_ext"].as_object().unwrap() {
            let q = SceneQuery {
                int_ext: Some(ie.clone()),
                ..SceneQuery::default()
            };
            assert_eq!(count(q), n.as_u64().unwrap(), "{backend} {ie}");
        }
        for (time, n) in e["time_of_day"].as_object().unwrap() {
            let q = SceneQuery {
                time_of_day: Some(time.clone()),
                ..SceneQuery::default()
            };
            assert_eq!(count(q), n.as_u64().unwrap(), "{backend} {time}");
        }
    }
}

#[test]
fn combined_conditions_and_episode_ranges() {
    let e = expected();
    let want = expected_scenes(&e);
    let t = open("sqlite");
    import_demo(&t.store);
    // Every combination of character × time of day × INT/EXT × episode range,
    // against the hand-counted scene list filtered the same way.
    // No character (scene listings by attribute), each one (their
    // `speaks_in` edges), and pairs (both speak).
    let casts: [&[&str]; 8] = [
        &[],
        &["MARA"],
        &["TEO"],
        &["SAM"],
        &["NELL"],
        &["JUNE"],
        &["MARA", "TEO"],
        &["TEO", "NELL"],
    ];
    let times = [None, Some("NIGHT"), Some("DAY"), Some("DAWN")];
    let sides = [None, Some("INT"), Some("EXT")];
    let ranges = [None, Some((1, 1)), Some((2, 3)), Some((3, 9))];
    for cast in casts {
        for time in times {
            for side in sides {
                for range in ranges {
                    let q = SceneQuery {
                        characters: cast.iter().map(|n| n.to_lowercase()).collect(),
                        time_of_day: time.map(str::to_owned),
                        int_ext: side.map(str::to_owned),
                        episodes: range,
                        seasons: Some((1, 1)),
                        ..SceneQuery::default()
                    };
                    let got = keys(&scenes(&t.store, SLUG, &q).unwrap());
                    let expect: Vec<(u32, usize)> = want
                        .iter()
                        .filter(|(_, ep, s)| {
                            cast.iter()
                                .all(|name| strs(&s["speakers"]).iter().any(|n| n == name))
                                && time.is_none_or(|t| s["time_of_day"] == t)
                                && side.is_none_or(|i| s["int_ext"] == i)
                                && range.is_none_or(|(lo, hi)| {
                                    (u64::from(lo)..=u64::from(hi)).contains(ep)
                                })
                        })
                        .map(|(_, ep, s)| (*ep as u32, s["ordinal"].as_u64().unwrap() as usize))
                        .collect();
                    assert_eq!(got, expect, "{cast:?} {time:?} {side:?} {range:?}");
                }
            }
        }
    }
    // Two characters together, and a season that does not exist.
    let both = SceneQuery {
        characters: vec!["MARA".into(), "SAM".into()],
        ..SceneQuery::default()
    };
    assert_eq!(scenes(&t.store, SLUG, &both).unwrap().len(), 5);
    let none = SceneQuery {
        seasons: Some((2, 4)),
        ..SceneQuery::default()
    };
    assert!(scenes(&t.store, SLUG, &none).unwrap().is_empty());
    // A backwards range and a made-up INT/EXT are refused.
    let backwards = SceneQuery {
        episodes: Some((3, 1)),
        ..SceneQuery::default()
    };
    assert!(scenes(&t.store, SLUG, &backwards).is_err());
    let odd = SceneQuery {
        int_ext: Some("OUTSIDE".into()),
        ..SceneQuery::default()
    };
    assert!(scenes(&t.store, SLUG, &odd).is_err());
}

#[test]
fn characters_with_their_counts() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let rows = characters(&t.store, SLUG).unwrap();
        let want = e["characters"].as_object().unwrap();
        assert_eq!(rows.len(), want.len());
        for row in &rows {
            let w = &want[&row.totals.name];
            assert_eq!(
                row.totals.speeches,
                w["speeches"].as_u64().unwrap(),
                "{}",
                row.totals.name
            );
            assert_eq!(row.totals.lines, w["dialogue_lines"].as_u64().unwrap());
            assert_eq!(row.scenes, w["scenes"].as_u64().unwrap());
            assert_eq!(row.scripts, w["episodes"].as_array().unwrap().len() as u64);
            assert_eq!(row.totals.voice_over, w["voice_over"].as_u64().unwrap());
            assert_eq!(row.totals.off_screen, w["off_screen"].as_u64().unwrap());
        }
        // Most speeches first, then by name.
        let order: Vec<&str> = rows.iter().map(|r| r.totals.name.as_str()).collect();
        assert_eq!(order, ["MARA", "TEO", "SAM", "JUNE", "NELL"], "{backend}");
    }
}

#[test]
fn who_appears_with_whom() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        let got: Vec<(String, String, u64)> = co_appearances(&t.store, SLUG, None)
            .unwrap()
            .into_iter()
            .map(|p| (p.a, p.b, p.scenes))
            .collect();
        let want: Vec<(String, String, u64)> = e["co_appearances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["a"].as_str().unwrap().to_owned(),
                    p["b"].as_str().unwrap().to_owned(),
                    p["scenes"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{backend}");
        // One character's partners, most shared scenes first.
        let mara: Vec<(String, u64)> = co_appearances(&t.store, SLUG, Some("mara"))
            .unwrap()
            .into_iter()
            .map(|p| {
                assert_eq!(p.a, "MARA");
                (p.b, p.scenes)
            })
            .collect();
        let mut want_mara: Vec<(String, u64)> = want
            .iter()
            .filter_map(|(a, b, n)| match (a.as_str(), b.as_str()) {
                ("MARA", other) | (other, "MARA") => Some((other.to_owned(), *n)),
                _ => None,
            })
            .collect();
        want_mara.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        assert_eq!(mara, want_mara);
        assert!(co_appearances(&t.store, SLUG, Some("NOBODY")).is_err());
    }
}

#[test]
fn a_characters_scenes_across_episodes_in_order() {
    let e = expected();
    let want = expected_scenes(&e);
    let t = open("json");
    import_demo(&t.store);
    for name in ["MARA", "TEO", "SAM", "NELL", "JUNE"] {
        let got = character_scenes(&t.store, SLUG, &name.to_lowercase()).unwrap();
        let order: Vec<(u32, usize)> = got
            .iter()
            .map(|c| (c.scene.episode.unwrap(), c.scene.ordinal))
            .collect();
        let expect: Vec<(u32, usize)> = want
            .iter()
            .filter(|(_, _, s)| strs(&s["speakers"]).iter().any(|n| n == name))
            .map(|(_, ep, s)| (*ep as u32, s["ordinal"].as_u64().unwrap() as usize))
            .collect();
        assert_eq!(order, expect, "{name}");
        let speeches: u64 = got.iter().map(|c| c.speeches).sum();
        let lines: u64 = got.iter().map(|c| c.lines).sum();
        assert_eq!(
            speeches,
            e["characters"][name]["speeches"].as_u64().unwrap()
        );
        assert_eq!(
            lines,
            e["characters"][name]["dialogue_lines"].as_u64().unwrap()
        );
    }
    assert!(character_scenes(&t.store, SLUG, "NOBODY").is_err());
}

#[test]
fn dialogue_search_finds_each_line_where_it_is_spoken() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        // Every speech of the demo, searched for by a piece of its own text,
        // is found in its scene, spoken by its character.
        let texts: BTreeMap<String, Vec<u8>> = common::demo_sources()
            .into_iter()
            .map(|s| (s.file, s.bytes))
            .collect();
        let mut speeches = 0u64;
        for (file, bytes) in &texts {
            let script = kgstore_fountain::parse(bytes.clone()).unwrap();
            for scene in script.scenes() {
                for speech in scene.speeches() {
                    speeches += 1;
                    let needle: String = speech.dialogue.chars().take(24).collect();
                    let hits = search_dialogue(
                        &t.store,
                        SLUG,
                        &needle.to_uppercase(),
                        Some(&speech.character),
                    )
                    .unwrap();
                    assert!(
                        hits.iter().any(|h| h.scene.file == *file
                            && h.scene.ordinal == scene.ordinal
                            && h.character == speech.character
                            && h.dialogue == speech.dialogue),
                        "{backend}: {needle:?} in {file} #{}",
                        scene.ordinal
                    );
                }
            }
        }
        let total: u64 = e["characters"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["speeches"].as_u64().unwrap())
            .sum();
        assert_eq!(speeches, total);
        // A word in the series' name (and so in every scene's node name) only
        // finds the dialogue that holds it; nothing finds nothing.
        for hit in search_dialogue(&t.store, SLUG, "night", None).unwrap() {
            assert!(hit.dialogue.to_lowercase().contains("night"), "{hit:?}");
        }
        assert!(
            search_dialogue(&t.store, SLUG, "zebra crossing", None)
                .unwrap()
                .is_empty()
        );
        assert!(search_dialogue(&t.store, SLUG, "  ", None).is_err());
    }
}

/// (episode, ordinal, character) of hits, in order.
fn spoken(hits: &[query::DialogueHit]) -> Vec<(u64, u64, String)> {
    hits.iter()
        .map(|h| {
            (
                u64::from(h.scene.episode.unwrap()),
                h.scene.ordinal as u64,
                h.character.clone(),
            )
        })
        .collect()
}

fn triples(v: &Value) -> Vec<(u64, u64, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t[0].as_u64().unwrap(),
                t[1].as_u64().unwrap(),
                t[2].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn dialogue_search_is_ranked_as_read_by_hand() {
    let e = expected();
    for backend in BACKENDS {
        let t = open(backend);
        import_demo(&t.store);
        for (text, want) in e["dialogue_search"]["queries"].as_object().unwrap() {
            let hits = search_dialogue(&t.store, SLUG, text, None).unwrap();
            let words = text.split_whitespace().count();
            // The three groups in this order; within a group, any order the
            // scenes' scores give.
            let mut rest = hits.as_slice();
            for (group, held) in [
                ("all_words", Some(words)),
                ("some_words", None),
                ("inside_a_word", Some(0)),
            ] {
                let mut want = triples(&want[group]);
                let n = want.len();
                assert!(rest.len() >= n, "{backend} {text:?}: {hits:#?}");
                let (these, after) = rest.split_at(n);
                let mut got = spoken(these);
                got.sort();
                want.sort();
                assert_eq!(got, want, "{backend} {text:?} {group}");
                for h in these {
                    match held {
                        Some(k) => assert_eq!(h.words, k, "{backend} {text:?} {h:?}"),
                        None => assert!(0 < h.words && h.words < words, "{h:?}"),
                    }
                }
                rest = after;
            }
            assert!(rest.is_empty(), "{backend} {text:?}: more hits {rest:#?}");
            // Within the same number of words, by the scene's score, then in
            // story order; the score is the store's own for the scene node.
            for pair in hits.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                assert!(
                    a.words > b.words
                        || a.words == b.words
                            && (a.score > b.score
                                || a.score == b.score
                                    && (a.scene.episode, a.scene.ordinal)
                                        <= (b.scene.episode, b.scene.ordinal)),
                    "{backend} {text:?}: {a:?} before {b:?}"
                );
            }
            let ranked = kgstore::GraphRead::search(
                &t.store,
                &kgstore::SearchQuery::new(text.as_str())
                    .of_type("scene")
                    .limit(1000),
            )
            .unwrap();
            for h in &hits {
                let found = ranked
                    .items
                    .iter()
                    .find(|f| f.name == h.scene.scene)
                    .unwrap();
                assert_eq!(found.score, h.score, "{backend} {text:?}");
            }
        }
        // Only one character's speeches.
        let june = search_dialogue(&t.store, SLUG, "ferry", Some("june")).unwrap();
        let mut got = spoken(&june);
        got.sort();
        assert_eq!(
            got,
            [(3, 2, "JUNE".to_owned()), (3, 4, "JUNE".to_owned())],
            "{backend}"
        );
        // Whatever a substring match of the dialogue finds is found, for
        // pieces of words, whole words, phrases and punctuation.
        let mut all = Vec::new();
        for source in common::demo_sources() {
            let script = kgstore_fountain::parse(source.bytes.clone()).unwrap();
            for scene in script.scenes() {
                for speech in scene.speeches() {
                    all.push((
                        source.file.clone(),
                        scene.ordinal,
                        speech.character,
                        speech.dialogue,
                    ));
                }
            }
        }
        for needle in [
            "ight",
            "ferry",
            "HOLM",
            "that's captain",
            "'s",
            "go",
            "n. H",
            "?",
        ] {
            let hits = search_dialogue(&t.store, SLUG, needle, None).unwrap();
            let lower = needle.to_lowercase();
            for (file, ordinal, character, dialogue) in &all {
                if dialogue.to_lowercase().contains(&lower) {
                    assert!(
                        hits.iter().any(|h| h.scene.file == *file
                            && h.scene.ordinal == *ordinal
                            && h.character == *character
                            && h.dialogue == *dialogue),
                        "{backend} {needle:?}: missing {character}: {dialogue:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn series_are_named_or_the_only_one() {
    let t = open("memory");
    assert!(query::resolve_series(&t.store, None).is_err());
    import_demo(&t.store);
    assert_eq!(query::resolve_series(&t.store, None).unwrap(), SLUG);
    assert_eq!(
        query::resolve_series(&t.store, Some("The Night Desk")).unwrap(),
        SLUG
    );
    let err = query::resolve_series(&t.store, Some("Other")).unwrap_err();
    assert!(
        err.to_string().contains("The Night Desk (the-night-desk)"),
        "{err}"
    );
}

#[test]
fn a_file_filter_does_not_take_a_file_whose_name_extends_it() {
    // Scene names are `scene:<series>/<file>#<id>`, so the scenes of
    // `Ep.fountain#2.fountain` share the name prefix of `Ep.fountain`'s.
    let t = open("sqlite");
    let one = "INT. HOUSE - NIGHT\n\nMARA\nHello.\n";
    let two = "EXT. SEA - DAY\n\nTEO\nHi.\n\nINT. HOUSE - NIGHT\n\nTEO\nBack.\n";
    kgstore_screenplay::import(
        &t.store,
        &[
            kgstore_screenplay::Source::new("Ep.fountain", one),
            kgstore_screenplay::Source::new("Ep.fountain#2.fountain", two),
        ],
        &kgstore_screenplay::ImportOptions {
            series: Some("Hash".into()),
        },
    )
    .unwrap();
    let by_file = |file: &str, time: Option<&str>| {
        let q = SceneQuery {
            file: Some(file.into()),
            time_of_day: time.map(str::to_owned),
            ..SceneQuery::default()
        };
        scenes(&t.store, "hash", &q)
            .unwrap()
            .into_iter()
            .map(|r| (r.file, r.ordinal))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by_file("Ep.fountain", None),
        [("Ep.fountain".to_owned(), 1)]
    );
    assert_eq!(
        by_file("Ep.fountain#2.fountain", Some("night")),
        [("Ep.fountain#2.fountain".to_owned(), 2)]
    );
    assert!(by_file("Ep", None).is_empty());
    // A name that speaks nowhere finds nothing (and is not an error here).
    let nobody = SceneQuery {
        characters: vec!["NOBODY".into()],
        ..SceneQuery::default()
    };
    assert!(scenes(&t.store, "hash", &nobody).unwrap().is_empty());
}
