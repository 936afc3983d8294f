//! Conformance: every case of Jouvence 0.4.2's test suite (Apache-2.0,
//! `tests/corpora/jouvence/`, converted to `cases.jsonl`; its README explains
//! the encoding).
//!
//! Jouvence's model differs from ours in ways that are not about the syntax,
//! and [`jouvence_view`] converts ours into its encoding, rule by rule:
//!
//! - Jouvence merges consecutive action paragraphs, and the blank lines
//!   between them, into one action whose text keeps the blank lines as `\n`;
//!   blank lines that no element consumes become (part of) an action. An
//!   element that needs a blank line before it (heading, cue, transition, page
//!   break, centred text, section, synopsis, lyrics, forced action) consumes
//!   one; a plain action does not; the text's start counts as one consumed blank
//!   line. We keep blank lines as [`Element::Blank`] and count them.
//! - Jouvence keeps a heading's scene number in its text, a cue's extensions in
//!   its name, and the white space after a forcing `>`; the view takes those from
//!   the element's source line.
//! - Jouvence has no notes; a note paragraph is action to it.
//!
//! A case whose expected output the Fountain 1.1 syntax page reads differently
//! is listed in [`EXCEPTIONS`] with the reason; the test fails if a listed case
//! passes (the list stays true) or an unlisted one fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use kgstore_fountain::{Element, Script, parse};
use serde_json::Value;

const CASES: &str = include_str!("corpora/jouvence/cases.jsonl");

/// `(file, case, why the syntax page reads it differently)`. Reviewed: none of
/// the 46 cases needs one (see `docs/screenplays.md`, "Jouvence").
const EXCEPTIONS: &[(&str, u64, &str)] = &[];

/// The first line of an element's source, without its line ending.
fn first_line(script: &Script, element: &kgstore_fountain::Spanned<Element>) -> String {
    let raw = script.slice(element.span);
    let line = raw.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line).to_owned()
}

/// The title page and the elements, in Jouvence's encoding.
fn jouvence_view(script: &Script) -> (BTreeMap<String, String>, Vec<String>) {
    let mut title = BTreeMap::new();
    let mut out: Vec<String> = Vec::new();
    // Whether the last paragraph of Jouvence's current scene is an action.
    let mut last_is_action = false;
    let mut blanks = 0usize;
    let flush = |blanks: usize, out: &mut Vec<String>, last_is_action: &mut bool| {
        if blanks == 0 {
            return;
        }
        if *last_is_action {
            out.last_mut().unwrap().push_str(&"\n".repeat(blanks));
        } else {
            out.push(format!("!{}", "\n".repeat(blanks - 1)));
            *last_is_action = true;
        }
    };
    for element in script.elements() {
        let consumes_blank = match &element.value {
            Element::Blank { lines } => {
                blanks += lines;
                continue;
            }
            Element::Boneyard { .. } => continue,
            Element::TitlePage(page) => {
                for field in &page.fields {
                    title.insert(field.key.to_lowercase(), field.value.clone());
                }
                continue;
            }
            Element::Action { forced: false, .. } | Element::Note { .. } => 0,
            Element::Parenthetical { .. } | Element::Dialogue { .. } => 0,
            _ => 1,
        };
        flush(
            blanks.saturating_sub(consumes_blank),
            &mut out,
            &mut last_is_action,
        );
        blanks = 0;
        let mut action = |text: &str, out: &mut Vec<String>| {
            if last_is_action {
                let last = out.last_mut().unwrap();
                last.push('\n');
                last.push_str(text);
            } else {
                out.push(format!("!{text}"));
            }
            last_is_action = true;
        };
        match &element.value {
            Element::Action { text, .. } => {
                action(text, &mut out);
                continue;
            }
            Element::Note { .. } => {
                let raw = script
                    .slice(element.span)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                action(&raw, &mut out);
                continue;
            }
            Element::SceneHeading(h) => {
                let line = first_line(script, element);
                let line = if h.forced { &line[1..] } else { &line[..] };
                out.push(format!(".{line}"));
            }
            Element::Character(cue) => {
                let line = first_line(script, element);
                let line = line.trim_start();
                let line = if cue.forced { &line[1..] } else { line };
                out.push(format!("@{line}"));
            }
            Element::Parenthetical { .. } => {
                out.push(format!("_{}", first_line(script, element).trim_start()));
            }
            Element::Dialogue { text } => out.push(format!("={text}")),
            Element::Transition { forced, .. } => {
                let line = first_line(script, element);
                let line = line.trim_start();
                let line = if *forced { &line[1..] } else { line };
                out.push(format!(">{line}"));
            }
            Element::Centered { text } => out.push(format!("!><{text}")),
            Element::Lyrics { text } => out.push(format!("~{text}")),
            Element::PageBreak => out.push("<pagebreak>".to_owned()),
            Element::Section { text, .. } => out.push(format!("#{text}")),
            Element::Synopsis { text } => out.push(format!("+{text}")),
            Element::TitlePage(_) | Element::Boneyard { .. } | Element::Blank { .. } => {}
        }
        last_is_action = false;
    }
    flush(blanks, &mut out, &mut last_is_action);
    (title, out)
}

#[test]
fn every_jouvence_case_passes_or_is_a_reviewed_exception() {
    let mut failures = Vec::new();
    let mut passed_exceptions = Vec::new();
    let mut count = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let file = case["file"].as_str().unwrap();
        let number = case["case"].as_u64().unwrap();
        let input = case["in"].as_str().unwrap();
        let expected: Vec<String> = case["out"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        count += 1;

        let script = parse(input).unwrap();
        assert_eq!(
            script.to_fountain(),
            input,
            "{file} #{number}: not byte for byte"
        );
        let (title, out) = jouvence_view(&script);
        let mut problems = Vec::new();
        if let Some(expected_title) = case["title"].as_object() {
            let expected_title: BTreeMap<String, String> = expected_title
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            if title != expected_title {
                problems.push(format!("title {title:?}, expected {expected_title:?}"));
            }
        }
        if out != expected {
            problems.push(format!("elements {out:?}, expected {expected:?}"));
        }
        let exception = EXCEPTIONS
            .iter()
            .find(|(f, n, _)| *f == file && *n == number);
        match (problems.is_empty(), exception) {
            (true, None) | (false, Some(_)) => {}
            (true, Some(_)) => passed_exceptions.push(format!("{file} #{number}")),
            (false, None) => failures.push(format!(
                "{file} #{number} {input:?}: {}",
                problems.join("; ")
            )),
        }
    }
    assert_eq!(count, 46, "the corpus has 46 cases");
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
    assert!(
        passed_exceptions.is_empty(),
        "listed as exceptions but passing (remove them from EXCEPTIONS): {passed_exceptions:?}"
    );
}

/// The view itself, on a text whose Jouvence reading was worked out by hand
/// from its parser's states: the title page leaves both blank lines after it
/// to the action ("\n" + "\n" before `A.`); one of the two blank lines before
/// the heading is the heading's; the cue takes the blank line before it; the
/// three at the end become an action of two line breaks.
#[test]
fn the_jouvence_view_counts_blank_lines_as_jouvence_does() {
    let script = parse("Title: X\n\n\nA.\n\nB.\n\n\nINT. HOUSE\n\nBOB\nHi.\n\n\n\n").unwrap();
    let (title, out) = jouvence_view(&script);
    assert_eq!(title.get("title").map(String::as_str), Some("X"));
    assert_eq!(
        out,
        ["!\n\nA.\n\nB.\n", ".INT. HOUSE", "@BOB", "=Hi.", "!\n\n"]
    );
}
