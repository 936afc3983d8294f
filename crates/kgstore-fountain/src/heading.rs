//! Scene headings: the prefix that makes a line a heading, scene numbers, and
//! the parts a heading is queried by (interior/exterior, location, time of day).

use std::borrow::Cow;

use crate::text::strip_notes;

/// Interior or exterior, as a heading's prefix says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IntExt {
    /// `INT`.
    Interior,
    /// `EXT`.
    Exterior,
    /// `INT./EXT`, `INT/EXT`, `I/E`: both, or moving between.
    InteriorExterior,
    /// `EST`: an establishing shot (exterior by convention, kept apart).
    Establishing,
}

impl IntExt {
    /// `INT`, `EXT`, `INT/EXT` or `EST`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntExt::Interior => "INT",
            IntExt::Exterior => "EXT",
            IntExt::InteriorExterior => "INT/EXT",
            IntExt::Establishing => "EST",
        }
    }
}

/// What a scene heading says, split up: `INT. BRICK'S HOUSE - KITCHEN - NIGHT`
/// is interior, location `BRICK'S HOUSE - KITCHEN`, time of day `NIGHT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadingParts {
    /// From the prefix; `None` for a forced heading without one
    /// (`.SNIPER SCOPE POV`).
    pub int_ext: Option<IntExt>,
    /// The heading after the prefix and before the time of day, as written,
    /// trimmed (notes removed). [`crate::canonical`] makes it a key.
    pub location: String,
    /// The part after the last ` - ` when it names a time: a word such as DAY,
    /// NIGHT, MORNING, EVENING, DAWN, DUSK, CONTINUOUS, LATER (see
    /// [`TIME_WORDS`]), as written, trimmed.
    pub time_of_day: Option<String>,
}

/// The words that make the last dash-separated part of a heading its time of
/// day (compared in upper case, as whole words: `MOMENTS LATER`, `LATE NIGHT`
/// and `DAY (FLASHBACK)` are times of day; `KITCHEN` is not).
pub const TIME_WORDS: &[&str] = &[
    "DAY",
    "NIGHT",
    "MORNING",
    "AFTERNOON",
    "EVENING",
    "DAWN",
    "DUSK",
    "SUNRISE",
    "SUNSET",
    "NOON",
    "MIDNIGHT",
    "TWILIGHT",
    "DAYBREAK",
    "NIGHTFALL",
    "CONTINUOUS",
    "LATER",
    "SAME",
];

/// The prefixes of the Fountain 1.1 syntax, longest first so that `INT./EXT`
/// is not read as `INT`.
const PREFIXES: &[(&str, IntExt)] = &[
    ("int./ext", IntExt::InteriorExterior),
    ("int/ext", IntExt::InteriorExterior),
    ("i/e", IntExt::InteriorExterior),
    ("int", IntExt::Interior),
    ("ext", IntExt::Exterior),
    ("est", IntExt::Establishing),
];

/// The heading prefix `line` starts with, followed by a dot or white space
/// (any case), and the prefix's length in bytes.
pub(crate) fn prefix(line: &str) -> Option<(IntExt, usize)> {
    let bytes = line.as_bytes();
    PREFIXES.iter().find_map(|&(prefix, kind)| {
        let n = prefix.len();
        let head = bytes.get(..n)?;
        let next = *bytes.get(n)?;
        (head.eq_ignore_ascii_case(prefix.as_bytes()) && matches!(next, b'.' | b' ' | b'\t'))
            .then_some((kind, n))
    })
}

/// Splits a heading line into its text and scene number: `INT. HOUSE #1A#` →
/// (`INT. HOUSE`, `Some("1A")`). A number is letters, digits, `-` and `.`.
pub(crate) fn split_number(line: &str) -> (&str, Option<&str>) {
    let t = line.trim();
    let Some(body) = t.strip_suffix('#') else {
        return (t, None);
    };
    let Some(open) = body.rfind('#') else {
        return (t, None);
    };
    let number = &body[open + 1..];
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return (t, None);
    }
    (body[..open].trim_end(), Some(number))
}

/// The parts of a heading's text.
pub(crate) fn parts(text: &str) -> HeadingParts {
    let text: Cow<'_, str> = strip_notes(text);
    let (int_ext, rest) = match prefix(&text) {
        Some((kind, n)) => (
            Some(kind),
            text[n..].trim_start_matches(|c: char| c == '.' || c.is_whitespace()),
        ),
        None => (None, text.as_ref()),
    };
    let rest = rest.trim();
    match split_last_dash(rest) {
        Some((before, after)) if is_time_of_day(after) => HeadingParts {
            int_ext,
            location: before.to_owned(),
            time_of_day: Some(after.to_owned()),
        },
        _ => HeadingParts {
            int_ext,
            location: rest.to_owned(),
            time_of_day: None,
        },
    }
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '–' | '—')
}

/// Splits at the last run of dashes that has white space (or the start) before
/// it and white space after it: `A - B - C` → (`A - B`, `C`).
fn split_last_dash(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices().rev().peekable();
    let mut after_is_space = false;
    while let Some((i, c)) = chars.next() {
        if is_dash(c) && after_is_space {
            let end = i + c.len_utf8();
            let mut start = i;
            while let Some(&(j, d)) = chars.peek() {
                if !is_dash(d) {
                    break;
                }
                start = j;
                chars.next();
            }
            let before = &s[..start];
            if before.is_empty() || before.ends_with(char::is_whitespace) {
                return Some((before.trim_end(), s[end..].trim_start()));
            }
            after_is_space = false;
            continue;
        }
        after_is_space = c.is_whitespace();
    }
    None
}

/// True when `part` contains one of [`TIME_WORDS`] as a whole word.
pub fn is_time_of_day(part: &str) -> bool {
    part.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|w| TIME_WORDS.iter().any(|t| w.eq_ignore_ascii_case(t)))
}
