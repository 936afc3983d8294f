//! Line-level rules of the syntax, shared by the parser and the printer, and
//! small text helpers.

use std::borrow::Cow;

use crate::model::Cue;

/// `s` without its `[[notes]]` (an unclosed `[[` is kept as written).
pub(crate) fn strip_notes(s: &str) -> Cow<'_, str> {
    if !s.contains("[[") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("[[") {
        let Some(close) = rest[open + 2..].find("]]") else {
            break;
        };
        out.push_str(&rest[..open]);
        rest = &rest[open + 2 + close + 2..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A line of three or more `=` and nothing else.
pub(crate) fn is_page_break(line: &str) -> bool {
    line.len() >= 3 && line.bytes().all(|b| b == b'=')
}

/// The inside of a centred line `> text <`, trimmed.
pub(crate) fn centered_inner(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('>')?.strip_suffix('<')?;
    Some(inner.trim())
}

/// A line that is a parenthetical inside a dialogue block: `(beat)`.
pub(crate) fn is_parenthetical(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 2 && t.starts_with('(') && t.ends_with(')')
}

/// An upper-case line ending in `TO:` (nothing after it, not even spaces).
pub(crate) fn is_natural_transition(line: &str) -> bool {
    line.ends_with("TO:") && line.trim_start().len() > 3 && !line.chars().any(char::is_lowercase)
}

/// A line forcing a scene heading: a `.` followed by a letter or digit (so
/// `...` and `. x` are not headings).
pub(crate) fn forced_heading(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('.')?;
    rest.chars()
        .next()
        .is_some_and(char::is_alphanumeric)
        .then_some(rest)
}

/// A section line: its level (how many `#`) and text.
pub(crate) fn section(line: &str) -> Option<(usize, &str)> {
    let rest = line.trim_start_matches('#');
    let level = line.len() - rest.len();
    (level > 0).then(|| (level, rest.trim()))
}

/// A synopsis line: `=` followed by anything but another `=`.
pub(crate) fn synopsis(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('=')?;
    (!rest.is_empty() && !rest.starts_with('=')).then(|| rest.trim())
}

/// A title-page key line `Key: value`: the key (letters, digits, spaces, `-`
/// and `_`, starting with a letter or digit) and the value, both trimmed.
pub(crate) fn title_key(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let key = &line[..colon];
    let first = key.chars().next()?;
    let valid = first.is_alphanumeric()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '\t' | '-' | '_'));
    valid.then(|| (key.trim_end(), line[colon + 1..].trim()))
}

impl Cue {
    /// Reads a cue line: `MOM (O. S.)`, `@McCLANE`, `STEEL ^`, `BOB (V.O.) (CONT'D)`.
    ///
    /// A line starting with `@` is a forced cue and may be in any case; any other
    /// line is a cue when its name (the part before the extensions) is not empty,
    /// holds a letter and no lower-case letter. Whether the next line makes it a
    /// cue (dialogue must follow) is the parser's business, not this function's.
    pub fn parse(line: &str) -> Option<Cue> {
        let (body, forced) = match line.strip_prefix('@') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let mut rest = body.trim();
        let mut dual = false;
        let mut extensions = Vec::new();
        // From the end: extensions, and one `^` before, after or between them.
        loop {
            if rest.ends_with(')')
                && let Some(open) = matching_open(rest)
            {
                extensions.push(rest[open + 1..rest.len() - 1].trim().to_owned());
                rest = rest[..open].trim_end();
            } else if !dual && let Some(r) = rest.strip_suffix('^') {
                dual = true;
                rest = r.trim_end();
            } else {
                break;
            }
        }
        extensions.reverse();
        let name = rest;
        let valid = !name.is_empty()
            && (forced
                || (name.chars().any(char::is_alphabetic)
                    && !name.chars().any(char::is_lowercase)));
        valid.then(|| Cue {
            name: name.to_owned(),
            extensions,
            dual,
            forced,
        })
    }
}

/// The index of the `(` matching the `)` that ends `s`.
fn matching_open(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// How many words `text` has (runs of characters between white space).
pub(crate) fn words(text: &str) -> usize {
    if !text.is_ascii() {
        return text.split_whitespace().count();
    }
    let mut count = 0;
    let mut in_word = false;
    for &b in text.as_bytes() {
        let space = b.is_ascii_whitespace() || b == 0x0b;
        count += usize::from(!space && !in_word);
        in_word = !space;
    }
    count
}
