//! The Fountain parser and printer (`kgstore-fountain`).

use kgstore_fountain::{Element, ParseError, PrintError, normalize, parse, print};

use super::{Finding, Outcome};

const TARGET: &str = "fountain";

fn fail(message: String) -> Outcome {
    Err(Finding::new(TARGET, message))
}

/// Parses the bytes as a screenplay. Properties: bytes that are not UTF-8, or
/// hold NUL, are refused at the right offset and nothing else is refused; the
/// elements' spans tile the text on character boundaries, and so do the title
/// page, the prologue and the scenes; the lossless printer gives the bytes
/// back; the helpers answer; the canonical printer writes a text that reads
/// back as the normalized document and is a fixed point — or refuses with
/// `OpensComment` only (an inline comment taken out can leave a `/*` in a
/// text, which the syntax cannot spell).
pub fn fountain(data: &[u8]) -> Outcome {
    let script = match parse(data) {
        Ok(script) => script,
        Err(e) => return check_refusal(data, &e),
    };
    let text = match std::str::from_utf8(data) {
        Ok(text) if !text.contains('\0') => text,
        _ => return fail("parsed bytes that are not UTF-8 or hold NUL".into()),
    };
    if script.to_fountain() != text {
        return fail("to_fountain does not give the bytes back".into());
    }
    let mut at = if script.bom() { 3 } else { 0 };
    for (i, e) in script.elements().iter().enumerate() {
        let span = e.span;
        if span.start != at || span.end <= span.start || span.end > text.len() {
            return fail(format!(
                "element {i} has span {span}, expected to start at {at}"
            ));
        }
        if !text.is_char_boundary(span.start) || !text.is_char_boundary(span.end) {
            return fail(format!("element {i}'s span {span} splits a character"));
        }
        at = span.end;
    }
    if at != text.len() {
        return fail(format!("the elements end at {at} of {}", text.len()));
    }
    check_scenes(&script, text)?;
    check_printer(&script)
}

fn check_refusal(data: &[u8], error: &ParseError) -> Outcome {
    let offset = error.offset();
    match (error, std::str::from_utf8(data)) {
        (ParseError::InvalidUtf8 { .. }, Err(e)) if e.valid_up_to() == offset => Ok(()),
        (ParseError::Binary { .. }, Ok(text)) if text.find('\0') == Some(offset) => Ok(()),
        _ => fail(format!(
            "refused with {error}, which does not describe the bytes"
        )),
    }
}

fn check_scenes(script: &kgstore_fountain::Script, text: &str) -> Outcome {
    let mut at = if script.bom() { 3 } else { 0 };
    let mut parts = Vec::new();
    parts.extend(script.title_page_span());
    parts.extend(script.prologue().map(|p| p.span));
    let scenes = script.scenes();
    parts.extend(scenes.iter().map(|s| s.span));
    for span in parts {
        if span.start != at {
            return fail(format!(
                "title page, prologue and scenes do not tile: {span} after {at}"
            ));
        }
        at = span.end;
    }
    if !script.elements().is_empty() && at != text.len() {
        return fail(format!(
            "title page, prologue and scenes end at {at} of {}",
            text.len()
        ));
    }
    for scene in &scenes {
        let speeches = scene.speeches();
        for (i, speech) in speeches.iter().enumerate() {
            if !scene.span.contains(speech.span) || !scene.elements.contains(&speech.elements.start)
            {
                return fail(format!(
                    "speech {i} of scene {} lies outside it",
                    scene.ordinal
                ));
            }
            if let Some(partner) = speech.dual_with
                && speeches.get(partner).and_then(|p| p.dual_with) != Some(i)
            {
                return fail(format!(
                    "dual dialogue of scene {} is not a pair",
                    scene.ordinal
                ));
            }
        }
        let characters = scene.characters_from(&speeches);
        let counts = scene.counts_with(&characters);
        if counts.speeches != speeches.len() {
            return fail(format!(
                "scene {} counts {} cues, has {} speeches",
                scene.ordinal,
                counts.speeches,
                speeches.len()
            ));
        }
        let _ = scene.parts();
    }
    let summary = script.characters();
    let total: usize = summary.iter().map(|c| c.speeches).sum();
    let counted: usize = script
        .elements()
        .iter()
        .filter(|e| matches!(e.value, Element::Character(_)))
        .count();
    if total != counted {
        return fail(format!(
            "characters() counts {total} speeches of {counted} cues"
        ));
    }
    if summary.len() <= 64 {
        let _ = script.co_appearances();
    }
    Ok(())
}

fn check_printer(script: &kgstore_fountain::Script) -> Outcome {
    let doc = script.document();
    let normal = match normalize(&doc) {
        Ok(normal) => normal,
        Err(e) => return fail(format!("normalize refused a parsed document: {e}")),
    };
    match print(&doc) {
        Ok(printed) => {
            let back = match parse(printed.as_str()) {
                Ok(back) => back,
                Err(e) => return fail(format!("the printed text does not parse: {e}")),
            };
            if back.document() != normal {
                return fail("the printed text reads back as another document".into());
            }
            match print(&back.document()) {
                Ok(again) if again == printed => Ok(()),
                _ => fail("printing is not a fixed point".into()),
            }
        }
        Err(PrintError::OpensComment { .. }) if script.source().contains("/*") => Ok(()),
        Err(e) => fail(format!("print refused a parsed document: {e}")),
    }
}
