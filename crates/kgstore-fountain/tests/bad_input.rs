//! Bad and extreme inputs: a clear error or a script, never a panic, and work
//! that grows linearly with the input.
//!
//! The large inputs are CI-sized by default (2 MiB; 512 KiB for each pathological shape); `KGSTORE_FOUNTAIN_BIG_MIB`
//! sets their size in MiB (`KGSTORE_FOUNTAIN_BIG_MIB=100` for the issue's
//! 100 MiB single line; run it with `--release`). A quadratic step would make
//! even the default size take minutes; no wall-clock time is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore_fountain::{Element, ParseError, parse, print};

fn big_len() -> usize {
    let mib = std::env::var("KGSTORE_FOUNTAIN_BIG_MIB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(2);
    mib << 20
}

#[test]
fn invalid_utf8_is_an_error_with_its_offset() {
    let mut bytes = b"Title: X\n\nINT. CAF".to_vec();
    bytes.push(0xc3); // a lone lead byte
    bytes.extend_from_slice(b" - DAY\n");
    let err = parse(bytes).unwrap_err();
    assert_eq!(
        err,
        ParseError::InvalidUtf8 {
            offset: 18,
            line: 3,
            column: 9
        }
    );
    assert_eq!(err.offset(), 18);
    assert_eq!(
        err.to_string(),
        "not UTF-8 text: invalid byte sequence at byte offset 18 (line 3, column 9)"
    );
    // Columns count characters, not bytes.
    let err = parse(&b"\xc3\xa9t\xc3\xa9 \xff"[..]).unwrap_err();
    assert_eq!(
        err,
        ParseError::InvalidUtf8 {
            offset: 6,
            line: 1,
            column: 5
        }
    );
    // Truncated at the end of the input.
    let err = parse(&b"abc\xe6\x97"[..]).unwrap_err();
    assert_eq!(err.offset(), 3);
    // A UTF-16 file is not UTF-8.
    let utf16: Vec<u8> = "\u{feff}INT. A"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(matches!(
        parse(utf16).unwrap_err(),
        ParseError::InvalidUtf8 { offset: 0, .. }
    ));
}

#[test]
fn binary_data_is_an_error() {
    // A PNG header: not UTF-8.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    assert!(matches!(
        parse(png).unwrap_err(),
        ParseError::InvalidUtf8 { offset: 0, .. }
    ));
    // Valid UTF-8 holding NUL: binary too.
    let err = parse("INT. A\n\nSome\0thing\n").unwrap_err();
    assert_eq!(
        err,
        ParseError::Binary {
            offset: 12,
            line: 3,
            column: 5
        }
    );
    assert!(
        err.to_string().contains("NUL byte at byte offset 12"),
        "{err}"
    );
    // Random bytes never panic: they parse or are refused with an offset
    // inside the input.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..2000 {
        let len = round % 300;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        match parse(bytes.clone()) {
            Ok(script) => assert_eq!(script.to_fountain().as_bytes(), &bytes[..]),
            Err(e) => assert!(e.offset() < bytes.len().max(1)),
        }
    }
}

#[test]
fn an_empty_file_is_an_empty_script() {
    let script = parse("").unwrap();
    assert!(script.elements().is_empty());
    assert!(script.scenes().is_empty());
    assert!(script.prologue().is_none());
    assert!(script.title_page().is_none());
    assert_eq!(print(&script.document()).unwrap(), "");
}

#[test]
fn a_title_page_only_file_has_no_scenes() {
    let script = parse("Title: Nothing Yet\nAuthor: Someone\nDraft date: today\n").unwrap();
    assert_eq!(script.elements().len(), 1);
    assert_eq!(script.title_page().unwrap().fields.len(), 3);
    assert!(script.scenes().is_empty());
    assert!(script.prologue().is_none());
    assert!(script.characters().is_empty());
}

#[test]
fn a_very_long_single_line_is_one_action() {
    let len = big_len();
    let mut text = String::with_capacity(len + 1);
    let unit = "He walks, *slowly*, [[note]] past the (window) - again ";
    while text.len() + unit.len() <= len {
        text.push_str(unit);
    }
    let script = parse(text.as_str()).unwrap();
    assert_eq!(script.elements().len(), 1);
    assert!(
        matches!(&script.elements()[0].value, Element::Action { text: t, .. } if t.len() == text.len())
    );
    assert_eq!(script.to_fountain().len(), text.len());
    let printed = print(&script.document()).unwrap();
    assert_eq!(printed.len(), text.len() + 1);
}

/// Inputs shaped to trip a careless parser into quadratic work: each is large
/// and must parse, print back byte for byte, and give its scenes and
/// characters.
#[test]
fn pathological_inputs_parse_in_linear_time() {
    let len = big_len() / 4;
    let repeat = |unit: &str| unit.repeat((len / unit.len()).max(1));
    let cases: Vec<(&str, String)> = vec![
        ("many short lines", repeat("a\n")),
        ("many paragraphs", repeat("a\n\n")),
        ("unclosed comments", repeat("/* ")),
        ("comments everywhere", repeat("x /* y */\n")),
        ("unclosed notes", repeat("[[ ")),
        (
            "nested parentheses on one cue",
            format!("BOB {}\nHi.\n", "(".repeat(len / 2) + &")".repeat(len / 2)),
        ),
        (
            "unbalanced parentheses on one cue",
            format!("BOB {}\nHi.\n", "(a)".repeat(len / 3) + ")"),
        ),
        (
            "one-line elements without blank lines",
            repeat("# a\n= b\n.C\n>D\n===\n"),
        ),
        (
            "one huge dialogue block",
            format!("BOB\n{}", repeat("Line.\n(beat)\n")),
        ),
        ("many scenes", repeat("INT. A - DAY\n\nBOB\nHi.\n\n")),
        ("many dual cues", repeat("A ^\nx\n\n")),
        ("lyrics then not", format!("{}x\n", repeat("~la\n"))),
        (
            "a long first paragraph of title keys",
            repeat("Key: value\n"),
        ),
        (
            "many distinct characters",
            (0..len / 16).map(|i| format!("C{i}\nx\n\n")).collect(),
        ),
        ("carriage returns", repeat("a\r\n\r\n")),
    ];
    for (name, text) in cases {
        let started = std::time::Instant::now();
        let script = parse(text.as_str()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(script.to_fountain(), text, "{name}");
        let scenes = script.scenes();
        let _ = scenes.iter().map(|s| s.characters().len()).sum::<usize>();
        let _ = script.characters();
        let _ = script.prologue().map(|p| p.counts());
        if let Err(e) = print(&script.document()) {
            panic!("{name}: {e}");
        }
        eprintln!("{name}: {} bytes in {:?}", text.len(), started.elapsed());
    }
}
