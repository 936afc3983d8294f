//! One or more cases for every rule of the syntax (fountain.io/syntax, Fountain
//! 1.1), written for this project, with the spans checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore_fountain::{
    Cue, Element, ExtensionKind, IntExt, LineEnding, SceneHeading, Script, Span, TitleField, parse,
};

/// Parses `text`, checks the spans tile it, and returns the elements that are
/// not layout.
fn elements(text: &str) -> Vec<Element> {
    all(text).into_iter().filter(|e| !e.is_layout()).collect()
}

/// Parses `text`, checks the spans tile it, and returns every element.
fn all(text: &str) -> Vec<Element> {
    let script = parse(text).unwrap();
    check_tiling(&script);
    script.elements().iter().map(|e| e.value.clone()).collect()
}

fn check_tiling(script: &Script) {
    let mut at = if script.bom() { 3 } else { 0 };
    for e in script.elements() {
        assert_eq!(
            e.span.start, at,
            "{:?} does not start where the last ended",
            e.value
        );
        assert!(e.span.end > e.span.start, "{:?} is empty", e.value);
        at = e.span.end;
    }
    assert_eq!(
        at,
        script.source().len(),
        "the elements do not reach the end"
    );
    assert_eq!(script.to_fountain(), script.source());
}

fn action(text: &str) -> Element {
    Element::Action {
        text: text.into(),
        forced: false,
    }
}

fn heading(text: &str) -> Element {
    Element::SceneHeading(SceneHeading {
        text: text.into(),
        number: None,
        forced: false,
    })
}

fn cue(name: &str) -> Element {
    Element::Character(Cue {
        name: name.into(),
        extensions: vec![],
        dual: false,
        forced: false,
    })
}

fn dialogue(text: &str) -> Element {
    Element::Dialogue { text: text.into() }
}

// ---- title page -------------------------------------------------------------

#[test]
fn title_page_keeps_every_key_in_order_unknown_ones_too() {
    let text = "Title: Night Desk\nCredit: Written by\nAuthor: A. Writer\nSeason: 1\nEpisode: 2\nX-Custom_Key: kept\n\nINT. ARCHIVE - NIGHT\n";
    let script = parse(text).unwrap();
    let page = script.title_page().unwrap();
    let keys: Vec<&str> = page.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Title",
            "Credit",
            "Author",
            "Season",
            "Episode",
            "X-Custom_Key"
        ]
    );
    assert_eq!(page.get("x-custom_key"), Some("kept"));
    assert_eq!(page.get("AUTHOR"), Some("A. Writer"));
    assert_eq!(
        script.elements()[0].span,
        Span::new(0, text.find("\n\n").unwrap() + 1)
    );
}

#[test]
fn title_page_values_continue_on_indented_lines() {
    let page = match &elements(
        "Title:\n    _**BRICK**_\n\t*STEEL*\nContact: Somebody\n   123 Street\n",
    )[0]
    {
        Element::TitlePage(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        page.fields,
        [
            TitleField {
                key: "Title".into(),
                value: "_**BRICK**_\n*STEEL*".into()
            },
            TitleField {
                key: "Contact".into(),
                value: "Somebody\n123 Street".into()
            },
        ]
    );
}

#[test]
fn a_lone_key_without_value_is_not_a_title_page() {
    // `FADE IN:` at the top is a transition-like line, not a title page.
    assert_eq!(
        elements("FADE IN:\n\nINT. HOUSE - DAY\n"),
        [action("FADE IN:"), heading("INT. HOUSE - DAY")]
    );
    assert_eq!(
        elements("CUT TO:\n\nEXT. SEA\n"),
        [
            Element::Transition {
                text: "CUT TO:".into(),
                forced: false
            },
            heading("EXT. SEA")
        ]
    );
}

#[test]
fn a_title_page_only_at_the_very_start() {
    assert!(parse("\nTitle: X\n").unwrap().title_page().is_none());
    assert!(
        parse("INT. A\n\nTitle: X\n")
            .unwrap()
            .title_page()
            .is_none()
    );
    // A byte-order mark and boneyard lines before it are fine.
    assert!(
        parse("\u{feff}/* draft */\nTitle: X\n")
            .unwrap()
            .title_page()
            .is_some()
    );
}

#[test]
fn a_title_page_only_file() {
    let script = parse("Title: Only a title\nAuthor: Me").unwrap();
    check_tiling(&script);
    assert_eq!(script.elements().len(), 1);
    assert!(script.scenes().is_empty());
    assert!(script.prologue().is_none());
}

// ---- scene headings ---------------------------------------------------------

#[test]
fn scene_headings_by_every_prefix_in_any_case() {
    for line in [
        "INT. HOUSE - DAY",
        "EXT. HOUSE - DAY",
        "EST. CITY - DAWN",
        "INT./EXT. CAR - NIGHT",
        "INT/EXT CAR - NIGHT",
        "I/E CAR - NIGHT",
        "int. house - day",
        "Ext house",
        "INT.HOUSE",
    ] {
        assert_eq!(
            elements(&format!("{line}\n\nAction.\n")),
            [heading(line), action("Action.")],
            "{line}"
        );
    }
}

#[test]
fn not_scene_headings() {
    // A prefix must be followed by a dot or white space.
    assert_eq!(
        elements("INTERIOR DESIGN\n\nx\n")[0],
        action("INTERIOR DESIGN")
    );
    assert_eq!(elements("EXTRA\n\nx\n")[0], action("EXTRA"));
    // A heading needs a blank line after it; then it is a cue (all upper case).
    assert_eq!(
        elements("INT. HOUSE - DAY\nHe walks in.\n")[0],
        cue("INT. HOUSE - DAY")
    );
    // Two periods, or one followed by punctuation or space, do not force.
    assert_eq!(elements("...and then\n")[0], action("...and then"));
    assert_eq!(elements(". Not forced\n")[0], action(". Not forced"));
}

#[test]
fn forced_scene_headings_and_numbers() {
    assert_eq!(
        elements(".SNIPER SCOPE POV\n\nx\n")[0],
        Element::SceneHeading(SceneHeading {
            text: "SNIPER SCOPE POV".into(),
            number: None,
            forced: true
        })
    );
    for (line, text, number) in [
        ("INT. HOUSE - DAY #1#", "INT. HOUSE - DAY", "1"),
        ("INT. HOUSE - DAY #1A#", "INT. HOUSE - DAY", "1A"),
        ("EXT. ROAD #I-1-A#", "EXT. ROAD", "I-1-A"),
        ("EXT. ROAD#110A#", "EXT. ROAD", "110A"),
        ("EXT. ROAD #1.#  ", "EXT. ROAD", "1."),
        (".flashback #7#", "flashback", "7"),
    ] {
        let Element::SceneHeading(h) = &elements(&format!("{line}\n\nx\n"))[0] else {
            panic!("{line}")
        };
        assert_eq!(
            (h.text.as_str(), h.number.as_deref()),
            (text, Some(number)),
            "{line}"
        );
    }
    // Not a number: empty, or with other characters.
    let Element::SceneHeading(h) = &elements("INT. A ## \n\nx\n")[0] else {
        panic!()
    };
    assert_eq!(h.number, None);
    let Element::SceneHeading(h) = &elements("INT. A #1 2#\n\nx\n")[0] else {
        panic!()
    };
    assert_eq!(h.number, None);
}

#[test]
fn heading_parts() {
    use IntExt::{Establishing, Exterior, Interior, InteriorExterior};
    let cases: &[(&str, Option<IntExt>, &str, Option<&str>)] = &[
        ("INT. HOUSE - DAY", Some(Interior), "HOUSE", Some("DAY")),
        (
            "INT. BRICK'S HOUSE - KITCHEN - NIGHT #4#",
            Some(Interior),
            "BRICK'S HOUSE - KITCHEN",
            Some("NIGHT"),
        ),
        (
            "EXT. HOUSE - KITCHEN",
            Some(Exterior),
            "HOUSE - KITCHEN",
            None,
        ),
        (
            "INT./EXT. CAR – MOMENTS LATER",
            Some(InteriorExterior),
            "CAR",
            Some("MOMENTS LATER"),
        ),
        (
            "I/E CAR -- DAY (FLASHBACK)",
            Some(InteriorExterior),
            "CAR",
            Some("DAY (FLASHBACK)"),
        ),
        (
            "EST. NIGHT MARKET",
            Some(Establishing),
            "NIGHT MARKET",
            None,
        ),
        (".SNIPER SCOPE POV", None, "SNIPER SCOPE POV", None),
        (
            "int. x-ray room - day",
            Some(Interior),
            "x-ray room",
            Some("day"),
        ),
        (
            "INT. ROOM [[check]] - NIGHT",
            Some(Interior),
            "ROOM",
            Some("NIGHT"),
        ),
    ];
    for &(line, int_ext, location, time) in cases {
        let Element::SceneHeading(h) = &elements(&format!("{line}\n\nx\n"))[0] else {
            panic!("{line}")
        };
        let p = h.parts();
        assert_eq!(
            (p.int_ext, p.location.as_str(), p.time_of_day.as_deref()),
            (int_ext, location, time),
            "{line}"
        );
    }
}

// ---- action -----------------------------------------------------------------

#[test]
fn action_keeps_lines_indentation_and_emphasis() {
    let text = "He *runs*.\n    Indented, **bold**, _underlined_, \\*escaped\\*.\n  \nStill the same paragraph.\n";
    assert_eq!(
        elements(text),
        [action(
            "He *runs*.\n    Indented, **bold**, _underlined_, \\*escaped\\*.\n  \nStill the same paragraph."
        )]
    );
}

#[test]
fn forced_action() {
    assert_eq!(
        elements("!EXT. NOT A HEADING\n\n!SHOUTING\nNot dialogue.\n"),
        [
            Element::Action {
                text: "EXT. NOT A HEADING".into(),
                forced: true
            },
            Element::Action {
                text: "SHOUTING\nNot dialogue.".into(),
                forced: true
            },
        ]
    );
    // Exactly one `!` is the marker.
    assert_eq!(
        elements("!!wow\n")[0],
        Element::Action {
            text: "!wow".into(),
            forced: true
        }
    );
}

// ---- characters and dialogue ------------------------------------------------

#[test]
fn character_cues_with_extensions() {
    let els = elements(
        "MOM (O. S.)\nLuke!\n\nHANS (on the radio) (CONT'D)\nWhat?\n\nR2D2\nBeep.\n\n   BOB\n   Indented.\n",
    );
    let cues: Vec<&Cue> = els
        .iter()
        .filter_map(|e| match e {
            Element::Character(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(cues.len(), 4);
    assert_eq!(
        (cues[0].name.as_str(), cues[0].extensions.clone()),
        ("MOM", vec!["O. S.".to_owned()])
    );
    assert!(cues[0].is_off_screen() && !cues[0].is_voice_over());
    assert_eq!(cues[1].extensions, ["on the radio", "CONT'D"]);
    assert!(cues[1].is_continued());
    assert_eq!(cues[2].name, "R2D2");
    assert_eq!(cues[3].name, "BOB");
    // The dual mark may stand before, between or after the extensions.
    for line in [
        "ANA ^ (V.O.) (O.S.)",
        "ANA (V.O.) ^ (O.S.)",
        "ANA (V.O.)(O.S.)^",
    ] {
        let cue = Cue::parse(line).unwrap();
        assert_eq!(
            (cue.name.as_str(), cue.extensions.len(), cue.dual),
            ("ANA", 2, true),
            "{line}"
        );
    }
    assert_eq!(els.last(), Some(&dialogue("Indented.")));
}

#[test]
fn not_character_cues() {
    // No letter; lower case; no dialogue after it.
    assert_eq!(elements("23\nskidoo\n")[0], action("23\nskidoo"));
    assert_eq!(elements("Bob\nHello\n")[0], action("Bob\nHello"));
    assert_eq!(elements("BOB\n\nHello\n"), [action("BOB"), action("Hello")]);
}

#[test]
fn forced_cues_in_any_case() {
    let els = elements("@McCLANE (V.O.)\nYippee.\n");
    assert_eq!(
        els[0],
        Element::Character(Cue {
            name: "McCLANE".into(),
            extensions: vec!["V.O.".into()],
            dual: false,
            forced: true
        })
    );
    let Element::Character(c) = &els[0] else {
        panic!()
    };
    assert_eq!(c.canonical_name(), "MCCLANE");
    assert!(c.is_voice_over());
    // A forced cue with no dialogue is still a cue.
    assert_eq!(
        elements("@Someone\n\nAction.\n")[0],
        Element::Character(Cue {
            name: "Someone".into(),
            extensions: vec![],
            dual: false,
            forced: true
        })
    );
}

#[test]
fn dialogue_and_parentheticals() {
    assert_eq!(
        elements(
            "STEEL\n(starting the engine)\nSo much for retirement!\nReally.\n  \nMore after a kept blank.\n  (pause)\nDone.\n"
        ),
        [
            cue("STEEL"),
            Element::Parenthetical {
                text: "(starting the engine)".into()
            },
            dialogue("So much for retirement!\nReally.\n\nMore after a kept blank."),
            Element::Parenthetical {
                text: "(pause)".into()
            },
            dialogue("Done."),
        ]
    );
}

#[test]
fn dual_dialogue() {
    let script = parse("INT. X\n\nBRICK\nScrew retirement.\n\nSTEEL ^\nScrew retirement.\n\nBOB^\n(aside)\nMe too.\n").unwrap();
    let scene = &script.scenes()[0];
    let speeches = scene.speeches();
    assert_eq!(speeches.len(), 3);
    assert_eq!(
        (speeches[0].dual_with, speeches[1].dual_with),
        (Some(1), Some(0))
    );
    assert!(speeches[1].cue.dual && speeches[2].cue.dual);
    // BOB's `^` follows STEEL, who is already paired: BOB has no partner.
    assert_eq!(speeches[2].dual_with, None);
    assert_eq!(speeches[2].cue.name, "BOB");
    let people = scene.characters();
    assert_eq!(people.iter().map(|c| c.dual).collect::<Vec<_>>(), [1, 1, 0]);
}

#[test]
fn extensions_are_classified() {
    for (text, kind) in [
        ("V.O.", ExtensionKind::VoiceOver),
        ("v.o.", ExtensionKind::VoiceOver),
        ("VO", ExtensionKind::VoiceOver),
        ("O.S.", ExtensionKind::OffScreen),
        ("O. S.", ExtensionKind::OffScreen),
        ("O.C.", ExtensionKind::OffScreen),
        ("off screen", ExtensionKind::OffScreen),
        ("CONT'D", ExtensionKind::Continued),
        ("cont’d", ExtensionKind::Continued),
        ("on the radio", ExtensionKind::Other),
    ] {
        assert_eq!(ExtensionKind::of(text), kind, "{text}");
    }
}

// ---- lyrics, transitions, centred, page breaks --------------------------------

#[test]
fn lyrics() {
    assert_eq!(
        elements("~Willy Wonka! Willy Wonka!\n~The amazing chocolatier!\n"),
        [Element::Lyrics {
            text: "Willy Wonka! Willy Wonka!\nThe amazing chocolatier!".into()
        }]
    );
}

#[test]
fn transitions() {
    assert_eq!(
        elements("x\n\nCUT TO:\n\ny\n\n>Burn to White.\n\nz\n\n  SMASH CUT TO:\n\nw\n")
            .into_iter()
            .filter(|e| matches!(e, Element::Transition { .. }))
            .collect::<Vec<_>>(),
        [
            Element::Transition {
                text: "CUT TO:".into(),
                forced: false
            },
            Element::Transition {
                text: "Burn to White.".into(),
                forced: true
            },
            Element::Transition {
                text: "SMASH CUT TO:".into(),
                forced: false
            },
        ]
    );
    // Lower case, spaces after the colon, or no blank line after: not a transition.
    assert_eq!(elements("x\n\nCut to:\n\ny\n")[1], action("Cut to:"));
    assert_eq!(elements("x\n\nCUT TO:  \n\ny\n")[1], action("CUT TO:  "));
}

#[test]
fn centered_text() {
    assert_eq!(
        elements("> THE END <\n>*and after*<\n"),
        [Element::Centered {
            text: "THE END\n*and after*".into()
        }]
    );
    // A centred line inside a paragraph of other lines leaves it action.
    assert_eq!(elements(">A<\nB\n")[0], action(">A<\nB"));
}

#[test]
fn page_breaks() {
    assert_eq!(elements("a\n\n===\n\nb\n")[1], Element::PageBreak);
    assert_eq!(elements("a\n\n==========\n\nb\n")[1], Element::PageBreak);
    assert_eq!(elements("a\n\n== \n\nb\n")[1], action("== "));
}

// ---- outline: sections, synopses, notes, boneyard -----------------------------

#[test]
fn sections_and_synopses() {
    assert_eq!(
        elements("# ACT I\n\n## Sequence\n= The setup.\n\n### Deeper\n"),
        [
            Element::Section {
                level: 1,
                text: "ACT I".into()
            },
            Element::Section {
                level: 2,
                text: "Sequence".into()
            },
            Element::Synopsis {
                text: "The setup.".into()
            },
            Element::Section {
                level: 3,
                text: "Deeper".into()
            },
        ]
    );
}

#[test]
fn notes() {
    assert_eq!(
        elements("[[A standalone note,\nover two lines.]]\n\nHe sits.[[inline note]] He stands.\n"),
        [
            Element::Note {
                text: "A standalone note,\nover two lines.".into()
            },
            action("He sits.[[inline note]] He stands."),
        ]
    );
    // Two notes in a paragraph are not one note.
    assert_eq!(elements("[[a]] and [[b]]\n")[0], action("[[a]] and [[b]]"));
}

#[test]
fn boneyard_is_looked_through_and_kept() {
    let text =
        "This is something.\n/*\nnope\n*/\nOK, he says /* not */ loudly.\n\n/* meta */\n\nINT. A\n";
    let script = parse(text).unwrap();
    check_tiling(&script);
    let values: Vec<&Element> = script.elements().iter().map(|e| &e.value).collect();
    assert_eq!(
        values,
        [
            &action("This is something.\nOK, he says  loudly."),
            &Element::Blank { lines: 1 },
            &Element::Boneyard {
                raw: "/* meta */".into()
            },
            &Element::Blank { lines: 1 },
            &heading("INT. A"),
        ]
    );
    let comments: Vec<&str> = script.boneyards().map(|(_, inner)| inner).collect();
    assert_eq!(comments, ["\nnope\n", " not ", " meta "]);
    // A comment spanning the line ending joins the lines around it.
    assert_eq!(
        elements("BOB /* a\nb */\nHi.\n"),
        [cue("BOB"), dialogue("Hi.")]
    );
    // Taking a comment out can join a `/` and a `*`: the text holds `/*`.
    assert_eq!(elements("a//* x */*b\n")[0], action("a/*b"));
    // An unclosed `/*` is text.
    assert_eq!(elements("a /* b\n")[0], action("a /* b"));
}

#[test]
fn boneyard_between_a_cue_and_its_dialogue() {
    let els = all("BOB\n/* x */\nHi.\n");
    assert_eq!(
        els,
        [
            cue("BOB"),
            Element::Boneyard {
                raw: "/* x */".into()
            },
            dialogue("Hi.")
        ]
    );
}

// ---- encodings and line endings ---------------------------------------------

#[test]
fn bom_and_crlf() {
    let text = "\u{feff}Title: T\r\n\r\nINT. A - DAY\r\n\r\nBOB\r\nHi.\r\nThere.\r\n";
    let script = parse(text).unwrap();
    check_tiling(&script);
    assert!(script.bom());
    assert_eq!(script.line_ending(), LineEnding::CrLf);
    assert_eq!(script.elements()[0].span.start, 3);
    let values: Vec<Element> = script
        .elements()
        .iter()
        .map(|e| e.value.clone())
        .filter(|e| !e.is_layout())
        .collect();
    assert_eq!(values[1], heading("INT. A - DAY"));
    assert_eq!(values[3], dialogue("Hi.\nThere."));
}

#[test]
fn a_lone_carriage_return_is_text_but_not_at_the_end_of_a_line() {
    assert_eq!(elements("a\rb\n")[0], action("a\rb"));
    // At the end of a line it belongs to the line ending: the last line of a
    // file cut inside `\r\n`, extra ones before `\n`, one before a comment.
    assert_eq!(elements("INT. A\n\nab\r")[1], action("ab"));
    assert_eq!(elements("ab\r\r\ncd\n")[0], action("ab\ncd"));
    assert_eq!(elements("ab\r/* x */\ncd\n")[0], action("ab\ncd"));
    assert_eq!(all("\r\r\n\r"), [Element::Blank { lines: 2 }]);
}

#[test]
fn empty_and_blank_inputs() {
    assert!(all("").is_empty());
    assert_eq!(all("\n\n"), [Element::Blank { lines: 2 }]);
    assert!(all("\u{feff}").is_empty());
    assert_eq!(
        all("/* only */"),
        [Element::Boneyard {
            raw: "/* only */".into()
        }]
    );
}

#[test]
fn spans_point_at_the_source() {
    let text = "INT. A\n\nBOB\n(beat)\nHi.\n";
    let script = parse(text).unwrap();
    let spans: Vec<(Span, &str)> = script
        .elements()
        .iter()
        .map(|e| (e.span, script.slice(e.span)))
        .collect();
    assert_eq!(
        spans,
        [
            (Span::new(0, 7), "INT. A\n"),
            (Span::new(7, 8), "\n"),
            (Span::new(8, 12), "BOB\n"),
            (Span::new(12, 19), "(beat)\n"),
            (Span::new(19, 23), "Hi.\n"),
        ]
    );
}

// ---- helpers ----------------------------------------------------------------

#[test]
fn scenes_tile_the_text_and_count_what_they_hold() {
    let text = "Title: T\n\n# ACT I\n\nINT. A - DAY #1#\n\nAda waits.\n\nADA\nHi.\nStill me.\n\nBEN (O.S.)\nHey.\n\nCUT TO:\n\nEXT. B - NIGHT\n\nADA (V.O.)\n(far)\nBye.\n";
    let script = parse(text).unwrap();
    let title = script.title_page_span().unwrap();
    let prologue = script.prologue().unwrap();
    let scenes = script.scenes();
    assert_eq!(title.end, prologue.span.start);
    assert_eq!(prologue.span.end, scenes[0].span.start);
    assert_eq!(scenes[0].span.end, scenes[1].span.start);
    assert_eq!(scenes[1].span.end, text.len());
    assert!(prologue.has_content());
    assert_eq!(prologue.ordinal, 0);
    assert_eq!(
        scenes[0].text(),
        "INT. A - DAY #1#\n\nAda waits.\n\nADA\nHi.\nStill me.\n\nBEN (O.S.)\nHey.\n\nCUT TO:\n\n"
    );

    let counts = scenes[0].counts();
    assert_eq!(
        (
            counts.actions,
            counts.speeches,
            counts.dialogue_lines,
            counts.transitions,
            counts.characters
        ),
        (1, 2, 3, 1, 2)
    );
    let people = scenes[0].characters();
    assert_eq!(people[0].name, "ADA");
    assert_eq!((people[0].speeches, people[0].lines), (1, 2));
    assert_eq!((people[1].name.as_str(), people[1].off_screen), ("BEN", 1));

    let summary = script.characters();
    assert_eq!(summary[0].name, "ADA");
    assert_eq!(
        (summary[0].speeches, summary[0].lines, summary[0].voice_over),
        (2, 3, 1)
    );
    assert_eq!(summary[0].scenes, [1, 2]);
    let pairs = script.co_appearances();
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        (
            pairs[0].a.as_str(),
            pairs[0].b.as_str(),
            pairs[0].scenes.clone()
        ),
        ("ADA", "BEN", vec![1])
    );
}

#[test]
fn canonical_character_names() {
    assert_eq!(
        kgstore_fountain::character_name("@McCLANE (V.O.) ^").as_deref(),
        Some("MCCLANE")
    );
    assert_eq!(
        kgstore_fountain::character_name("  DR.  BENNET (CONT'D)").as_deref(),
        Some("DR. BENNET")
    );
    assert_eq!(kgstore_fountain::character_name("Nobody here"), None);
    assert_eq!(kgstore_fountain::canonical("  Café   Noir "), "CAFÉ NOIR");
}

#[test]
fn season_and_episode() {
    use kgstore_fountain::SeasonEpisode;
    let se = |season, episode| Some(SeasonEpisode { season, episode });
    for (name, expected) in [
        ("S01E02 - Pilot.fountain", se(1, 2)),
        ("show_s2e10.fountain", se(2, 10)),
        ("Show 1x05.fountain", se(1, 5)),
        ("Boxes 3x4.fountain", se(3, 4)),
        ("Pilot.fountain", None),
        ("ASIDES01E02", None),
        ("1x05x", None),
    ] {
        assert_eq!(SeasonEpisode::from_file_name(name), expected, "{name}");
    }
    let script = parse("Title: X\nSeason: 2\nEpisode: Episode 7\n").unwrap();
    assert_eq!(
        SeasonEpisode::from_title_page(script.title_page().unwrap()),
        se(2, 7)
    );
}
