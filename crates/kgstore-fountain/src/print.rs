//! The canonical printer: a [`Document`] to Fountain text.
//!
//! [`normalize`] puts a document in the form the printer writes: a blank line
//! between paragraphs (only a cue's parentheticals and dialogue follow it
//! without one), runs of blank lines merged, and the forcing marker (`!`, `.`,
//! `@`, `>`) on every action, heading, cue and transition that would otherwise
//! read as something else. [`print`] writes that form and then parses what it
//! wrote: if any element would read back differently, it returns an error
//! naming the element instead of a text that changes meaning.
//!
//! To give a parsed text back byte for byte, use [`crate::Script::to_fountain`];
//! this printer writes canonical text (and leaves out the boneyard comments that
//! stand inside an element, which the element model does not hold).

use crate::error::PrintError;
use crate::lines;
use crate::model::{Cue, Document, Element, ElementKind, LineEnding, SceneHeading};
use crate::parse::Parser;

/// Writes `doc` as Fountain text, so that [`crate::parse`] reads back
/// [`normalize`]`(doc)`: the same elements, with blank lines and forcing
/// markers where the syntax needs them. Fails, naming the element, when an
/// element's content cannot be written so that it reads back the same.
pub fn print(doc: &Document) -> Result<String, PrintError> {
    let (normal, origin) = normalize_with_origin(doc)?;
    let (text, ends) = render_with_ends(&normal);
    // A comment opened inside an element's text (no escape can stop it).
    for comment in lines::boneyards(&text, 0) {
        let owner = ends.partition_point(|&end| end <= comment.start);
        if !matches!(
            normal.elements.get(owner),
            Some(Element::Boneyard { .. }) | None
        ) {
            return Err(PrintError::OpensComment {
                index: nearest_origin(&origin, owner),
                kind: normal
                    .elements
                    .get(owner)
                    .map_or(ElementKind::Blank, Element::kind),
            });
        }
    }
    let back = read_back(&text, true);
    if let Some(i) =
        (0..normal.elements.len().max(back.len())).find(|&i| normal.elements.get(i) != back.get(i))
    {
        let kind = normal
            .elements
            .get(i)
            .map_or(ElementKind::Blank, Element::kind);
        let read_back = match back.get(i) {
            Some(e) => format!("{e:?}"),
            None => "nothing".to_owned(),
        };
        return Err(PrintError::Unrepresentable {
            index: nearest_origin(&origin, i),
            kind,
            read_back,
        });
    }
    Ok(text)
}

/// The document [`print`] writes: blank lines added between paragraphs that
/// lack one, runs of blank lines merged, boneyard elements next to each other
/// merged, empty runs and an empty title page dropped, forcing markers set where an element would otherwise read as
/// another. Fails on elements the syntax cannot place (a title page after other
/// content, dialogue without a cue, two dialogue elements in a row).
pub fn normalize(doc: &Document) -> Result<Document, PrintError> {
    normalize_with_origin(doc).map(|(normal, _)| normal)
}

fn nearest_origin(origin: &[Option<usize>], i: usize) -> usize {
    origin
        .iter()
        .skip(i)
        .chain(origin.iter().take(i).rev())
        .find_map(|o| *o)
        .unwrap_or(0)
}

/// [`normalize`], and for each element of the result the index of the element
/// of `doc` it comes from (`None` for an added blank line).
fn normalize_with_origin(doc: &Document) -> Result<(Document, Vec<Option<usize>>), PrintError> {
    let mut out: Vec<Element> = Vec::with_capacity(doc.elements.len());
    let mut origin: Vec<Option<usize>> = Vec::with_capacity(doc.elements.len());
    // The last non-layout element, and whether a blank line came after it.
    let mut previous: Option<ElementKind> = None;
    let mut blank_since = false;
    for (index, element) in doc.elements.iter().enumerate() {
        let kind = element.kind();
        let misplaced = |reason| PrintError::Misplaced {
            index,
            kind,
            reason,
        };
        match element {
            Element::Blank { lines: 0 } => continue,
            Element::Blank { lines } => {
                if let Some(Element::Blank { lines: before }) = out.last_mut() {
                    *before += lines;
                } else {
                    out.push(element.clone());
                    origin.push(Some(index));
                }
                blank_since = true;
                continue;
            }
            Element::Boneyard { raw } => {
                // Boneyard lines next to each other read back as one element.
                if let Some(Element::Boneyard { raw: before }) = out.last_mut() {
                    before.push_str(doc.line_ending.as_str());
                    before.push_str(raw);
                } else {
                    out.push(element.clone());
                    origin.push(Some(index));
                }
                continue;
            }
            Element::TitlePage(page) => {
                if previous.is_some() || blank_since {
                    return Err(misplaced("a title page can only start the text"));
                }
                if page.fields.is_empty() {
                    continue;
                }
            }
            Element::Parenthetical { .. } | Element::Dialogue { .. } => {
                let in_block = matches!(
                    previous,
                    Some(
                        ElementKind::Character | ElementKind::Parenthetical | ElementKind::Dialogue
                    )
                ) && !blank_since;
                if !in_block {
                    return Err(misplaced(
                        "parentheticals and dialogue must follow a cue, a parenthetical or dialogue without a blank line",
                    ));
                }
                if previous == Some(ElementKind::Dialogue) && kind == ElementKind::Dialogue {
                    return Err(misplaced(
                        "two dialogue elements in a row read back as one; join their texts",
                    ));
                }
            }
            _ => {
                if previous.is_some() && !blank_since {
                    out.push(Element::Blank { lines: 1 });
                    origin.push(None);
                }
            }
        }
        out.push(element.clone());
        origin.push(Some(index));
        previous = Some(kind);
        blank_since = false;
    }
    force_where_needed(&mut out);
    let line_ending = if out.is_empty() {
        LineEnding::Lf
    } else {
        doc.line_ending
    };
    Ok((
        Document {
            elements: out,
            line_ending,
            bom: doc.bom,
        },
        origin,
    ))
}

/// Sets the forcing marker of every action, heading, transition and cue that
/// would read back as something else without it. Each is tried alone, as the
/// paragraph it is in a normalized document (a cue with its block), at the
/// start of the text when it is first.
fn force_where_needed(elements: &mut [Element]) {
    let first_content = elements
        .iter()
        .position(|e| !matches!(e, Element::Boneyard { .. }));
    for i in 0..elements.len() {
        let at_start = first_content == Some(i);
        let block_end = if matches!(elements.get(i), Some(Element::Character(_))) {
            elements
                .iter()
                .skip(i + 1)
                .position(|e| {
                    !matches!(
                        e,
                        Element::Parenthetical { .. }
                            | Element::Dialogue { .. }
                            | Element::Boneyard { .. }
                    )
                })
                .map_or(elements.len(), |n| i + 1 + n)
        } else {
            i + 1
        };
        let Some(paragraph) = elements.get(i..block_end) else {
            continue;
        };
        let needs_force = match paragraph.first() {
            Some(
                Element::Action { forced: false, .. }
                | Element::SceneHeading(SceneHeading { forced: false, .. })
                | Element::Transition { forced: false, .. }
                | Element::Character(Cue { forced: false, .. }),
            ) => {
                let snippet = render(&Document::new(paragraph.to_vec()));
                read_back(&snippet, at_start) != paragraph
            }
            _ => false,
        };
        if needs_force
            && let Some(
                Element::Action { forced, .. }
                | Element::SceneHeading(SceneHeading { forced, .. })
                | Element::Transition { forced, .. }
                | Element::Character(Cue { forced, .. }),
            ) = elements.get_mut(i)
        {
            *forced = true;
        }
    }
}

/// Parses `text` and gives its elements without spans.
fn read_back(text: &str, title_page: bool) -> Vec<Element> {
    let from = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let bones = lines::boneyards(text, from);
    Parser::new(text, from, &bones)
        .run(title_page)
        .into_iter()
        .map(|e| e.value)
        .collect()
}

/// Writes the elements as they are, each line ended by the line ending.
fn render(doc: &Document) -> String {
    render_with_ends(doc).0
}

/// [`render`], and where in the text each element ends.
fn render_with_ends(doc: &Document) -> (String, Vec<usize>) {
    let mut ends = Vec::with_capacity(doc.elements.len());
    let nl = doc.line_ending.as_str();
    let mut out = String::new();
    if doc.bom {
        out.push('\u{feff}');
    }
    let line = |out: &mut String, parts: &[&str]| {
        for part in parts {
            out.push_str(part);
        }
        out.push_str(nl);
    };
    for element in &doc.elements {
        match element {
            Element::TitlePage(page) => {
                for field in &page.fields {
                    if field.value.contains('\n') {
                        line(&mut out, &[&field.key, ":"]);
                        for value in field.value.split('\n') {
                            line(&mut out, &["    ", value]);
                        }
                    } else if field.value.is_empty() {
                        line(&mut out, &[&field.key, ":"]);
                    } else {
                        line(&mut out, &[&field.key, ": ", &field.value]);
                    }
                }
            }
            Element::SceneHeading(h) => {
                let marker = if h.forced { "." } else { "" };
                match &h.number {
                    Some(n) => line(&mut out, &[marker, &h.text, " #", n, "#"]),
                    None => line(&mut out, &[marker, &h.text]),
                }
            }
            Element::Action { text, forced } => {
                for (i, l) in text.split('\n').enumerate() {
                    let marker = if *forced && i == 0 { "!" } else { "" };
                    line(&mut out, &[marker, l]);
                }
            }
            Element::Character(cue) => {
                let mut cue_line = String::new();
                if cue.forced {
                    cue_line.push('@');
                }
                cue_line.push_str(&cue.name);
                for extension in &cue.extensions {
                    cue_line.push_str(" (");
                    cue_line.push_str(extension);
                    cue_line.push(')');
                }
                if cue.dual {
                    cue_line.push_str(" ^");
                }
                line(&mut out, &[&cue_line]);
            }
            Element::Parenthetical { text } => line(&mut out, &[text]),
            Element::Dialogue { text } => {
                for l in text.split('\n') {
                    // A line of two spaces keeps an empty line inside dialogue.
                    line(&mut out, &[if l.is_empty() { "  " } else { l }]);
                }
            }
            Element::Lyrics { text } => {
                for l in text.split('\n') {
                    line(&mut out, &["~", l]);
                }
            }
            Element::Transition { text, forced } => {
                line(&mut out, &[if *forced { ">" } else { "" }, text]);
            }
            Element::Centered { text } => {
                for l in text.split('\n') {
                    line(&mut out, &["> ", l, " <"]);
                }
            }
            Element::PageBreak => line(&mut out, &["==="]),
            Element::Section { level, text } => {
                let hashes = "#".repeat(*level);
                let space = if text.is_empty() { "" } else { " " };
                line(&mut out, &[&hashes, space, text]);
            }
            Element::Synopsis { text } => line(&mut out, &["= ", text]),
            Element::Note { text } => {
                let mut lines = text.split('\n').peekable();
                let mut open = "[[";
                while let Some(l) = lines.next() {
                    let close = if lines.peek().is_none() { "]]" } else { "" };
                    line(&mut out, &[open, l, close]);
                    open = "";
                }
            }
            Element::Boneyard { raw } => line(&mut out, &[raw]),
            Element::Blank { lines } => {
                for _ in 0..*lines {
                    line(&mut out, &[]);
                }
            }
        }
        ends.push(out.len());
    }
    (out, ends)
}
