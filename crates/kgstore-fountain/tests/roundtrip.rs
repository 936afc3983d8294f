//! Round trips: `parse(print(x)) == x` for generated documents, and parse then
//! print gives any input back byte for byte.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256 per property).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore_fountain::{
    Cue, Document, Element, ElementKind, LineEnding, PrintError, SceneHeading, TitleField,
    TitlePage, normalize, parse, print,
};
use proptest::prelude::*;

// ---- generated documents ------------------------------------------------------

/// Pieces of text chosen to collide with the syntax: forcing markers, heading
/// prefixes, transitions, parentheses, notes, emphasis, title keys, non-ASCII.
const TOKENS: &[&str] = &[
    "a", "Bob", "BOB", "x", "X", "1", "é", "日本", " ", "  ", "\t", ".", "..", "!", "@", "~", ">",
    "<", "#", "=", "===", "(", ")", "^", "[[", "]]", ":", "*", "**", "_", "\\", "INT. ", "EXT ",
    "int.", "I/E ", "EST.", "TO:", "CUT TO:", "Title:", "V.O.", " - ", "DAY", "NIGHT", "'", "\"",
];

fn words(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), min..=max).prop_map(|t| t.concat())
}

/// A trimmed, non-empty single line.
fn trimmed_line() -> impl Strategy<Value = String> {
    words(1, 6).prop_filter_map("empty once trimmed", |s| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_owned())
    })
}

fn action() -> impl Strategy<Value = Element> {
    // Lines may be indented or all white space, but not empty (an empty line
    // ends the paragraph).
    (prop::collection::vec(words(1, 6), 1..4), any::<bool>()).prop_map(|(lines, forced)| {
        Element::Action {
            text: lines.join("\n"),
            forced,
        }
    })
}

fn heading() -> impl Strategy<Value = Element> {
    let start = prop::sample::select(
        &[
            "INT. ", "EXT. ", "int ", "I/E ", "EST.", "Kitchen", "1st", "é",
        ][..],
    );
    let rest = words(0, 4).prop_map(|s| s.replace('#', ""));
    let number = prop::option::of("[A-Z0-9][A-Z0-9.-]{0,3}");
    (start, rest, number, any::<bool>()).prop_filter_map(
        "empty",
        |(start, rest, number, forced)| {
            let text = format!("{start}{rest}").trim().to_owned();
            (!text.is_empty()).then_some(Element::SceneHeading(SceneHeading {
                text,
                number,
                forced,
            }))
        },
    )
}

fn cue() -> impl Strategy<Value = Cue> {
    let name = trimmed_line().prop_filter_map("ends like an extension or a dual mark", |n| {
        let n = n.replace(['(', ')', '^'], "").trim().to_owned();
        (!n.is_empty()).then_some(n)
    });
    let extension = prop::sample::select(&["V.O.", "O.S.", "CONT'D", "on the radio", "x (y)"][..]);
    (
        name,
        prop::collection::vec(extension, 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, extensions, dual, forced)| Cue {
            name,
            extensions: extensions.into_iter().map(str::to_owned).collect(),
            dual,
            forced,
        })
}

/// A dialogue line: no leading white space (it is not kept), not written like
/// a parenthetical; empty lines are kept (written as two spaces).
fn dialogue_line() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => words(1, 6).prop_map(|s| s.trim_start_matches(|c: char| c == '(' || c.is_whitespace()).to_owned()),
    ]
}

fn block() -> impl Strategy<Value = Vec<Element>> {
    let part = prop_oneof![
        trimmed_line().prop_map(|t| Element::Parenthetical {
            text: format!("({t})")
        }),
        prop::collection::vec(dialogue_line(), 1..3)
            .prop_map(|l| Element::Dialogue { text: l.join("\n") }),
    ];
    (cue(), prop::collection::vec(part, 0..4)).prop_map(|(cue, parts)| {
        let mut out = vec![Element::Character(cue)];
        for part in parts {
            // Two dialogue elements in a row would read back as one.
            let both_dialogue = matches!(
                (out.last(), &part),
                (Some(Element::Dialogue { .. }), Element::Dialogue { .. })
            );
            if !both_dialogue {
                out.push(part);
            }
        }
        out
    })
}

fn one_line_no_comment() -> impl Strategy<Value = String> {
    words(0, 5).prop_map(|s| s.replace(['\n', '\r'], ""))
}

fn element() -> impl Strategy<Value = Vec<Element>> {
    prop_oneof![
        4 => action().prop_map(|e| vec![e]),
        3 => heading().prop_map(|e| vec![e]),
        4 => block(),
        1 => prop::collection::vec(one_line_no_comment(), 1..3)
            .prop_map(|l| vec![Element::Lyrics { text: l.join("\n") }]),
        2 => (trimmed_line(), any::<bool>()).prop_map(|(text, forced)| {
            // `>` + a text ending in `<` is centred text: no spelling for it.
            let text = text.trim_end_matches(|c: char| c == '<' || c.is_whitespace()).to_owned();
            let text = if text.is_empty() { "FADE".to_owned() } else { text };
            vec![Element::Transition { text, forced }]
        }),
        1 => Just(vec![Element::Transition { text: "SMASH CUT TO:".into(), forced: false }]),
        1 => prop::collection::vec(one_line_no_comment().prop_map(|s| s.trim().to_owned()), 1..3)
            .prop_map(|l| vec![Element::Centered { text: l.join("\n") }]),
        1 => Just(vec![Element::PageBreak]),
        1 => (1usize..4, one_line_no_comment()).prop_map(|(level, t)| {
            vec![Element::Section { level, text: t.trim().trim_start_matches('#').trim().to_owned() }]
        }),
        1 => one_line_no_comment().prop_map(|t| vec![Element::Synopsis { text: t.trim().to_owned() }]),
        1 => prop::collection::vec(words(1, 4).prop_map(|s| s.replace("]]", "")), 1..3)
            .prop_filter("empty note line", |l| l.iter().all(|x| !x.is_empty()))
            .prop_map(|l| vec![Element::Note { text: l.join("\n") }]),
        1 => one_line_no_comment().prop_map(|t| vec![Element::Boneyard { raw: format!("/*{t}*/") }]),
        1 => (1usize..4).prop_map(|lines| vec![Element::Blank { lines }]),
    ]
}

fn title_page() -> impl Strategy<Value = Element> {
    let key = prop::sample::select(&["Title", "Author", "Draft date", "Season", "X-Custom_1"][..]);
    let value_line = words(0, 4).prop_map(|s| s.trim().to_owned());
    let field =
        (key, prop::collection::vec(value_line, 0..3)).prop_map(|(key, lines)| TitleField {
            key: key.to_owned(),
            value: lines.join("\n"),
        });
    prop::collection::vec(field, 1..4).prop_map(|mut fields| {
        // One key with an empty value is not a title page (it is `CUT TO:`).
        if fields.len() == 1 && fields[0].value.is_empty() {
            fields[0].value = "Untitled".into();
        }
        Element::TitlePage(TitlePage { fields })
    })
}

fn document() -> impl Strategy<Value = Document> {
    (
        prop::option::of(title_page()),
        prop::collection::vec(element(), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(title, parts, crlf, bom)| {
            let mut elements: Vec<Element> = title.into_iter().collect();
            elements.extend(parts.into_iter().flatten());
            Document {
                elements,
                line_ending: if crlf {
                    LineEnding::CrLf
                } else {
                    LineEnding::Lf
                },
                bom,
            }
        })
}

proptest! {
    /// The property the issue asks for: what the printer writes parses back to
    /// the document, in its normal form (blank lines and forcing markers added).
    #[test]
    fn parse_of_print_is_the_document(doc in document()) {
        let normal = normalize(&doc).unwrap();
        prop_assert_eq!(normalize(&normal).unwrap(), normal.clone(), "normalize is idempotent");
        let text = print(&normal).unwrap();
        prop_assert_eq!(print(&doc).unwrap(), text.clone());
        let script = parse(text.as_str()).unwrap();
        prop_assert_eq!(script.document(), normal);
        prop_assert_eq!(script.to_fountain(), text);
    }

    /// Any text at all: parse then print gives it back byte for byte, the spans
    /// tile it, and the canonical printer reads back what it parsed.
    #[test]
    fn any_text_comes_back_byte_for_byte(text in any::<String>()) {
        check_text(&text)?;
    }

    /// The same for texts built from the syntax's own pieces, with both line
    /// endings, comments and notes that cross lines.
    #[test]
    fn fountain_like_text_comes_back_byte_for_byte(
        parts in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(TOKENS).prop_map(str::to_owned),
                3 => Just("\n".to_owned()),
                1 => Just("\r\n".to_owned()),
                1 => Just("\n\n".to_owned()),
                1 => Just("/*".to_owned()),
                1 => Just("*/".to_owned()),
                1 => Just("\u{feff}".to_owned()),
            ],
            0..60,
        )
    ) {
        check_text(&parts.concat())?;
    }
}

fn check_text(text: &str) -> Result<(), TestCaseError> {
    let script = match parse(text) {
        Ok(script) => script,
        Err(e) => {
            prop_assert!(text.contains('\0'), "refused a text without NUL: {e}");
            return Ok(());
        }
    };
    prop_assert_eq!(script.to_fountain(), text);
    let mut at = if script.bom() { 3 } else { 0 };
    for e in script.elements() {
        prop_assert_eq!(e.span.start, at);
        prop_assert!(e.span.end > e.span.start);
        prop_assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        at = e.span.end;
    }
    prop_assert_eq!(at, text.len());
    // Canonical printing of what was parsed reads back as the same elements,
    // unless taking an inline comment out joined a `/` and a `*` into a `/*`
    // that a later `*/` would close (no spelling: the printer must refuse).
    let doc = script.document();
    match print(&doc) {
        Ok(printed) => {
            prop_assert_eq!(
                parse(printed.as_str()).unwrap().document(),
                normalize(&doc).unwrap()
            );
        }
        Err(PrintError::OpensComment { .. }) => {
            prop_assert!(text.contains("/*"), "{:?}", text);
        }
        Err(e) => prop_assert!(false, "{} for {:?}", e, text),
    }
    Ok(())
}

// ---- byte for byte --------------------------------------------------------------

#[test]
fn texts_come_back_byte_for_byte() {
    let texts = [
        "",
        "\n",
        "\u{feff}",
        "\u{feff}Title: T\r\n\r\nINT. A\r\n",
        "no final newline",
        "INT. A - DAY\n\nBOB\nHi.",
        "mixed\r\nline\nendings\r\n\r\n\n",
        "a\rb\r\rc",
        "\t\tindented\n   \n\t\n",
        "/* open\n\n\nclose */ text /* two */ /* three\n*/\n",
        "/* never closed\n\nINT. A\n",
        "[[note\nacross]] lines\n\n[[",
        "===\n#\n=\n~\n>\n<\n@\n!\n.\n",
        "日本語のト書き。\n\n@ジョン\nこんにちは。\n",
    ];
    for text in texts {
        let script = parse(text).unwrap();
        assert_eq!(script.to_fountain(), text, "{text:?}");
        assert_eq!(script.source(), text);
        let printed = print(&script.document()).unwrap();
        assert_eq!(
            parse(printed.as_str()).unwrap().document(),
            normalize(&script.document()).unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn a_generated_series_comes_back_byte_for_byte() {
    for episode in kgstore_fountain::synthetic::series(3, 40, 7) {
        let script = parse(episode.text.as_str()).unwrap();
        assert_eq!(script.to_fountain(), episode.text);
        assert_eq!(script.scenes().len(), episode.scenes);
        // Scenes and what is before them tile the text too.
        let mut joined = String::new();
        joined.push_str(script.slice(script.title_page_span().unwrap()));
        if let Some(prologue) = script.prologue() {
            joined.push_str(prologue.text());
        }
        for scene in script.scenes() {
            joined.push_str(scene.text());
        }
        assert_eq!(joined, episode.text);
    }
}

// ---- the printer ------------------------------------------------------------------

fn printed(elements: Vec<Element>) -> String {
    print(&Document::new(elements)).unwrap()
}

#[test]
fn the_printer_forces_what_would_read_as_something_else() {
    let plain = |t: &str| Element::Action {
        text: t.into(),
        forced: false,
    };
    assert_eq!(
        printed(vec![plain("INT. HOUSE - DAY")]),
        "!INT. HOUSE - DAY\n"
    );
    assert_eq!(printed(vec![plain("BOB\nHello")]), "!BOB\nHello\n");
    assert_eq!(
        printed(vec![plain("Title: not a title page")]),
        "!Title: not a title page\n"
    );
    assert_eq!(
        printed(vec![plain("a"), plain("Title: fine here")]),
        "a\n\nTitle: fine here\n"
    );
    assert_eq!(printed(vec![plain("He waits.")]), "He waits.\n");
    let heading = |t: &str| {
        Element::SceneHeading(SceneHeading {
            text: t.into(),
            number: Some("4B".into()),
            forced: false,
        })
    };
    assert_eq!(printed(vec![heading("Kitchen")]), ".Kitchen #4B#\n");
    assert_eq!(printed(vec![heading("EXT. ROAD")]), "EXT. ROAD #4B#\n");
    let transition = |t: &str| Element::Transition {
        text: t.into(),
        forced: false,
    };
    assert_eq!(printed(vec![transition("Fade out.")]), ">Fade out.\n");
    assert_eq!(printed(vec![transition("DISSOLVE TO:")]), "DISSOLVE TO:\n");
    let cue = |name: &str| {
        Element::Character(Cue {
            name: name.into(),
            extensions: vec!["V.O.".into()],
            dual: true,
            forced: false,
        })
    };
    let line = Element::Dialogue {
        text: "Hi.\n\nAgain.".into(),
    };
    assert_eq!(
        printed(vec![cue("McCLANE"), line.clone()]),
        "@McCLANE (V.O.) ^\nHi.\n  \nAgain.\n"
    );
    assert_eq!(
        printed(vec![cue("BOB"), line]),
        "BOB (V.O.) ^\nHi.\n  \nAgain.\n"
    );
    // A cue without dialogue is only a cue when forced.
    assert_eq!(printed(vec![cue("BOB")]), "@BOB (V.O.) ^\n");
}

#[test]
fn the_printer_adds_blank_lines_between_paragraphs() {
    let doc = Document {
        elements: vec![
            Element::TitlePage(TitlePage {
                fields: vec![
                    TitleField {
                        key: "Title".into(),
                        value: "Two\nLines".into(),
                    },
                    TitleField {
                        key: "Author".into(),
                        value: "Me".into(),
                    },
                ],
            }),
            Element::Section {
                level: 2,
                text: "Part".into(),
            },
            Element::Synopsis {
                text: "What happens.".into(),
            },
            Element::SceneHeading(SceneHeading {
                text: "INT. A".into(),
                number: None,
                forced: false,
            }),
            Element::Boneyard {
                raw: "/* kept */".into(),
            },
            Element::Action {
                text: "Things.".into(),
                forced: false,
            },
            Element::Blank { lines: 2 },
            Element::Blank { lines: 1 },
            Element::Centered {
                text: "THE END".into(),
            },
        ],
        line_ending: LineEnding::CrLf,
        bom: true,
    };
    let text = print(&doc).unwrap();
    assert_eq!(
        text,
        "\u{feff}Title:\r\n    Two\r\n    Lines\r\nAuthor: Me\r\n\r\n## Part\r\n\r\n= What happens.\r\n\r\nINT. A\r\n/* kept */\r\n\r\nThings.\r\n\r\n\r\n\r\n> THE END <\r\n"
    );
    let normal = normalize(&doc).unwrap();
    assert_eq!(parse(text.as_str()).unwrap().document(), normal);
    assert_eq!(
        normal
            .elements
            .iter()
            .filter(|e| matches!(e, Element::Blank { .. }))
            .count(),
        5
    );
}

#[test]
fn the_printer_refuses_what_it_cannot_write() {
    let err = |elements: Vec<Element>| print(&Document::new(elements)).unwrap_err();
    let dialogue = |t: &str| Element::Dialogue { text: t.into() };
    let bob = Element::Character(Cue {
        name: "BOB".into(),
        extensions: vec![],
        dual: false,
        forced: false,
    });

    assert!(matches!(
        err(vec![dialogue("Hi.")]),
        PrintError::Misplaced {
            index: 0,
            kind: ElementKind::Dialogue,
            ..
        }
    ));
    assert!(matches!(
        err(vec![bob.clone(), dialogue("a"), dialogue("b")]),
        PrintError::Misplaced { index: 2, .. }
    ));
    assert!(matches!(
        err(vec![
            Element::PageBreak,
            Element::TitlePage(TitlePage {
                fields: vec![TitleField {
                    key: "Title".into(),
                    value: "X".into()
                }]
            })
        ]),
        PrintError::Misplaced {
            index: 1,
            kind: ElementKind::TitlePage,
            ..
        }
    ));
    // Content with no spelling that reads back the same.
    let e = err(vec![bob, dialogue("(an aside)")]);
    assert!(
        matches!(
            e,
            PrintError::Unrepresentable {
                index: 1,
                kind: ElementKind::Dialogue,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("Parenthetical"), "{e}");
    let e = err(vec![Element::Action {
        text: "one\n\ntwo".into(),
        forced: false,
    }]);
    assert!(
        matches!(e, PrintError::Unrepresentable { index: 0, .. }),
        "{e}"
    );
    let e = err(vec![Element::SceneHeading(SceneHeading {
        text: "(flashback)".into(),
        number: None,
        forced: false,
    })]);
    assert!(
        matches!(
            e,
            PrintError::Unrepresentable {
                index: 0,
                kind: ElementKind::SceneHeading,
                ..
            }
        ),
        "{e}"
    );
    let e = err(vec![Element::Action {
        text: "a /* b */ c".into(),
        forced: false,
    }]);
    assert!(
        matches!(
            e,
            PrintError::OpensComment {
                index: 0,
                kind: ElementKind::Action
            }
        ),
        "{e}"
    );
    let e = err(vec![
        Element::Synopsis {
            text: "opens /* here".into(),
        },
        Element::Boneyard {
            raw: "/* closes */".into(),
        },
    ]);
    assert!(
        matches!(
            e,
            PrintError::OpensComment {
                index: 0,
                kind: ElementKind::Synopsis
            }
        ),
        "{e}"
    );
    // Alone, with no `*/` after it, a `/*` is text and prints.
    assert_eq!(
        printed(vec![Element::Synopsis {
            text: "opens /* here".into()
        }]),
        "= opens /* here\n"
    );
    let e = err(vec![Element::TitlePage(TitlePage {
        fields: vec![TitleField {
            key: "Title".into(),
            value: " padded".into(),
        }],
    })]);
    assert!(matches!(e, PrintError::Unrepresentable { .. }), "{e}");
}

// ---- regressions found by the fuzz target ------------------------------------------

/// The canonical print of `text` parses back as its normalized document.
fn prints_back(text: &str) {
    let doc = parse(text).unwrap().document();
    let printed = print(&doc).unwrap_or_else(|e| panic!("{e} for {text:?}"));
    assert_eq!(
        parse(printed.as_str()).unwrap().document(),
        normalize(&doc).unwrap()
    );
}

#[test]
fn regression_a_last_line_ending_in_a_carriage_return_prints() {
    // The `\r` stayed in the action's text, and no printed line can end in one.
    prints_back(">>INT. X\n!\nINT./EXT. BobTO:    \r");
}

#[test]
fn regression_boneyard_lines_ending_in_a_carriage_return_print() {
    prints_back("x\n/*1 CUT TO:**\r/* meta */\r");
}

#[test]
fn regression_a_dual_mark_between_extensions_prints() {
    // `(V.O.)` stayed in the name, where a printed cue reads it as an extension.
    prints_back(".(V.O.)^(O.S.)\r\nCUT TO:..\n");
}
