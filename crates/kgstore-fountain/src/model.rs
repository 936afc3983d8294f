//! The element model: what a Fountain text is made of.

use std::fmt;
use std::ops::Range;

use crate::heading::{self, HeadingParts};

/// A byte range `start..end` of the parsed input. Offsets count from the input's
/// first byte, so a UTF-8 byte-order mark, when present, occupies `0..3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True when it covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As a `Range`, for slicing.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// True when `other` lies wholly inside this span.
    pub fn contains(&self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A value and where in the input it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The bytes it was read from: whole lines, including the line ending of
    /// the last one (when the input has one there).
    pub span: Span,
    /// The value.
    pub value: T,
}

/// The line ending a text uses. The first line ending of a parsed text decides
/// it; a text without any is [`LineEnding::Lf`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LineEnding {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n`.
    CrLf,
}

impl LineEnding {
    /// The bytes of the line ending.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// One element of a screenplay, as the Fountain 1.1 syntax defines them, plus
/// two layout elements ([`Element::Blank`] and [`Element::Boneyard`]) so that
/// the elements of a parsed text account for every one of its bytes.
///
/// Texts keep what the writer typed — emphasis markers (`*`, `**`, `_`),
/// backslash escapes and inline `[[notes]]` — with the syntax's own markers
/// removed (the forcing `!`, `.`, `@`, `>`, the `~` of lyrics, the `>`/`<` of
/// centred text). Lines inside a text are joined with `\n` whatever the input's
/// line ending. Boneyard comments (`/* … */`) are not part of any text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    /// The title page: `Key: value` lines at the very top of the text.
    TitlePage(TitlePage),
    /// A scene heading: `INT. HOUSE - DAY`, or forced with a leading `.`.
    SceneHeading(SceneHeading),
    /// Action (scene description): any paragraph that is nothing else, or one
    /// forced with `!`. Lines and indentation are kept as written.
    Action {
        /// The text, the forcing `!` removed.
        text: String,
        /// Written with a leading `!`.
        forced: bool,
    },
    /// A character cue: the line that names who speaks.
    Character(Cue),
    /// A parenthetical inside a dialogue block: `(beat)`, parentheses included.
    Parenthetical {
        /// The text, trimmed, with its parentheses.
        text: String,
    },
    /// Dialogue: the lines after a cue or a parenthetical, up to a blank line or
    /// the next parenthetical. Each line's leading white space is removed; a line
    /// of spaces (the syntax's way to keep an empty line) becomes an empty line.
    Dialogue {
        /// The lines, joined with `\n`.
        text: String,
    },
    /// Lyrics: a paragraph whose every line starts with `~`.
    Lyrics {
        /// The lines without their `~`, joined with `\n`.
        text: String,
    },
    /// A transition: an upper-case line ending in `TO:` between blank lines,
    /// or any line forced with `>`.
    Transition {
        /// The text, trimmed, the forcing `>` removed.
        text: String,
        /// Written with a leading `>`.
        forced: bool,
    },
    /// Centred text: lines written `> text <`.
    Centered {
        /// The lines without their `>` and `<`, each trimmed, joined with `\n`.
        text: String,
    },
    /// A page break: a line of three or more `=`.
    PageBreak,
    /// A section heading (outline, not printed): `#`, `##`, `###` …
    Section {
        /// How many `#`.
        level: usize,
        /// The text after them, trimmed.
        text: String,
    },
    /// A synopsis (outline, not printed): a line starting with a single `=`.
    Synopsis {
        /// The text after the `=`, trimmed.
        text: String,
    },
    /// A paragraph that is one note, `[[ … ]]`. Notes inside other elements stay
    /// in their text.
    Note {
        /// What is between `[[` and `]]`, lines joined with `\n`.
        text: String,
    },
    /// Lines that hold nothing but boneyard comments (`/* … */`), standing
    /// between two elements. Comments inside an element are not elements:
    /// [`crate::Script::boneyards`] lists every comment.
    Boneyard {
        /// The lines as written, without the last one's line ending.
        raw: String,
    },
    /// A run of empty lines.
    Blank {
        /// How many (at least one).
        lines: usize,
    },
}

/// What kind an [`Element`] is, without its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // each variant is named after the element it stands for
pub enum ElementKind {
    TitlePage,
    SceneHeading,
    Action,
    Character,
    Parenthetical,
    Dialogue,
    Lyrics,
    Transition,
    Centered,
    PageBreak,
    Section,
    Synopsis,
    Note,
    Boneyard,
    Blank,
}

impl ElementKind {
    /// A short lower-case name: `scene_heading`, `action`, …
    pub fn name(self) -> &'static str {
        match self {
            ElementKind::TitlePage => "title_page",
            ElementKind::SceneHeading => "scene_heading",
            ElementKind::Action => "action",
            ElementKind::Character => "character",
            ElementKind::Parenthetical => "parenthetical",
            ElementKind::Dialogue => "dialogue",
            ElementKind::Lyrics => "lyrics",
            ElementKind::Transition => "transition",
            ElementKind::Centered => "centered",
            ElementKind::PageBreak => "page_break",
            ElementKind::Section => "section",
            ElementKind::Synopsis => "synopsis",
            ElementKind::Note => "note",
            ElementKind::Boneyard => "boneyard",
            ElementKind::Blank => "blank",
        }
    }
}

impl fmt::Display for ElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Element {
    /// Its kind.
    pub fn kind(&self) -> ElementKind {
        match self {
            Element::TitlePage(_) => ElementKind::TitlePage,
            Element::SceneHeading(_) => ElementKind::SceneHeading,
            Element::Action { .. } => ElementKind::Action,
            Element::Character(_) => ElementKind::Character,
            Element::Parenthetical { .. } => ElementKind::Parenthetical,
            Element::Dialogue { .. } => ElementKind::Dialogue,
            Element::Lyrics { .. } => ElementKind::Lyrics,
            Element::Transition { .. } => ElementKind::Transition,
            Element::Centered { .. } => ElementKind::Centered,
            Element::PageBreak => ElementKind::PageBreak,
            Element::Section { .. } => ElementKind::Section,
            Element::Synopsis { .. } => ElementKind::Synopsis,
            Element::Note { .. } => ElementKind::Note,
            Element::Boneyard { .. } => ElementKind::Boneyard,
            Element::Blank { .. } => ElementKind::Blank,
        }
    }

    /// True for the layout elements, [`Element::Blank`] and [`Element::Boneyard`],
    /// which carry no screenplay content.
    pub fn is_layout(&self) -> bool {
        matches!(self, Element::Blank { .. } | Element::Boneyard { .. })
    }

    /// The element's text, for the kinds that have one (a scene heading's text
    /// without its number, a cue's name).
    pub fn text(&self) -> Option<&str> {
        match self {
            Element::SceneHeading(h) => Some(&h.text),
            Element::Character(c) => Some(&c.name),
            Element::Action { text, .. }
            | Element::Parenthetical { text }
            | Element::Dialogue { text }
            | Element::Lyrics { text }
            | Element::Transition { text, .. }
            | Element::Centered { text }
            | Element::Section { text, .. }
            | Element::Synopsis { text }
            | Element::Note { text } => Some(text),
            Element::Boneyard { raw } => Some(raw),
            Element::TitlePage(_) | Element::PageBreak | Element::Blank { .. } => None,
        }
    }
}

/// The title page: its fields in the order written, unknown keys included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TitlePage {
    /// The fields.
    pub fields: Vec<TitleField>,
}

impl TitlePage {
    /// The value of the first field whose key equals `key`, ignoring case and
    /// surrounding white space (`"draft date"` finds `Draft Date`).
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.trim();
        self.fields
            .iter()
            .find(|f| f.key.trim().to_lowercase() == key.to_lowercase())
            .map(|f| f.value.as_str())
    }
}

/// One `Key: value` field of the title page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TitleField {
    /// The key as written, without its colon and trailing white space.
    pub key: String,
    /// The value: the rest of the key's line (when not empty) and each
    /// continuation line, trimmed, joined with `\n`.
    pub value: String,
}

/// A scene heading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneHeading {
    /// The heading, trimmed, without the forcing `.` and the scene number:
    /// `EXT. BRICK'S POOL - DAY`.
    pub text: String,
    /// The scene number written at the end between `#`: `1A` for `#1A#`.
    pub number: Option<String>,
    /// Written with a leading `.`.
    pub forced: bool,
}

impl SceneHeading {
    /// Interior/exterior, location and time of day, read from the text.
    pub fn parts(&self) -> HeadingParts {
        heading::parts(&self.text)
    }
}

/// A character cue: `MOM (O. S.)`, `@McCLANE`, `STEEL ^`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    /// The name as written, without the `@`, the extensions and the `^`.
    pub name: String,
    /// The extensions in parentheses after the name, in order, without their
    /// parentheses, trimmed: `["V.O."]`, `["O. S."]`, `["on the radio"]`.
    pub extensions: Vec<String>,
    /// The second speaker of dual dialogue (`^` at the end of the cue): speaks at
    /// the same time as the dialogue block just before.
    pub dual: bool,
    /// Written with a leading `@`.
    pub forced: bool,
}

impl Cue {
    /// The name that identifies the character across cues: upper case, white
    /// space collapsed, extensions left out (`@McCLANE (V.O.)` → `MCCLANE`).
    pub fn canonical_name(&self) -> String {
        canonical(&self.name)
    }

    /// True when an extension says the character is heard but not there: `V.O.`.
    pub fn is_voice_over(&self) -> bool {
        self.has(ExtensionKind::VoiceOver)
    }

    /// True when an extension says the character is off screen: `O.S.`, `O.C.`.
    pub fn is_off_screen(&self) -> bool {
        self.has(ExtensionKind::OffScreen)
    }

    /// True when an extension says the speech continues one interrupted: `CONT'D`.
    pub fn is_continued(&self) -> bool {
        self.has(ExtensionKind::Continued)
    }

    fn has(&self, kind: ExtensionKind) -> bool {
        self.extensions.iter().any(|e| ExtensionKind::of(e) == kind)
    }
}

/// What a character extension means, as far as queries care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtensionKind {
    /// `V.O.`, `VO`, `VOICE OVER`.
    VoiceOver,
    /// `O.S.`, `O. S.`, `O.C.`, `OFF`, `OFF SCREEN`, `OFF CAMERA`.
    OffScreen,
    /// `CONT'D`, `CONT’D`, `CONT`, `CONTINUED`, `CONTINUING`.
    Continued,
    /// Anything else: `on the radio`, `PRELAP`, `INTO PHONE`, …
    Other,
}

impl ExtensionKind {
    /// Classifies one extension's text (without its parentheses), ignoring case,
    /// white space, dots and apostrophes.
    pub fn of(extension: &str) -> Self {
        let key: String = extension
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '\'' | '’' | '-'))
            .flat_map(char::to_uppercase)
            .collect();
        match key.as_str() {
            "VO" | "VOICEOVER" => ExtensionKind::VoiceOver,
            "OS" | "OC" | "OFF" | "OFFSCREEN" | "OFFCAMERA" => ExtensionKind::OffScreen,
            "CONTD" | "CONT" | "CONTINUED" | "CONTINUING" => ExtensionKind::Continued,
            _ => ExtensionKind::Other,
        }
    }
}

/// The canonical form of a name or a location: upper case, runs of white space
/// made one space, trimmed. Two cues name the same character when their names'
/// canonical forms are equal.
pub fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_uppercase));
    }
    out
}

/// A screenplay as elements, without positions: what the printer writes
/// ([`crate::print`]) and what [`crate::Script::document`] gives of a parsed
/// text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// The elements in order. A [`Element::TitlePage`] may only come first
    /// (after boneyard comments).
    pub elements: Vec<Element>,
    /// The line ending to write.
    pub line_ending: LineEnding,
    /// Whether the text starts with a UTF-8 byte-order mark.
    pub bom: bool,
}

impl Document {
    /// A document of these elements, with `\n` line endings and no byte-order mark.
    pub fn new(elements: Vec<Element>) -> Self {
        Self {
            elements,
            ..Self::default()
        }
    }

    /// The title page, if the document has one.
    pub fn title_page(&self) -> Option<&TitlePage> {
        self.elements.iter().find_map(|e| match e {
            Element::TitlePage(t) => Some(t),
            _ => None,
        })
    }
}
