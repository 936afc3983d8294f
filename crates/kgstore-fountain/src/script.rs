//! A parsed text: its source and its elements with their spans.

use crate::error::ParseError;
use crate::lines;
use crate::model::{Document, Element, LineEnding, Span, Spanned, TitlePage};
use crate::parse::Parser;

const BOM: &str = "\u{feff}";

/// Parses a Fountain text.
///
/// Accepts any UTF-8 text without NUL characters (a byte-order mark and `\r\n`
/// line endings included) and never panics; refuses bytes that are not UTF-8
/// and binary data with the offset of the first offending byte. Takes anything
/// that becomes a `Vec<u8>` (`&[u8]`, `&str`, `String`, `Vec<u8>`); an owned
/// input is kept without a copy.
///
/// Runs in time linear in the input's length.
pub fn parse(input: impl Into<Vec<u8>>) -> Result<Script, ParseError> {
    let bytes = input.into();
    let source = match String::from_utf8(bytes) {
        Ok(source) => source,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            return Err(ParseError::at(
                e.as_bytes(),
                offset,
                |offset, line, column| ParseError::InvalidUtf8 {
                    offset,
                    line,
                    column,
                },
            ));
        }
    };
    if let Some(offset) = source.bytes().position(|b| b == 0) {
        return Err(ParseError::at(
            source.as_bytes(),
            offset,
            |offset, line, column| ParseError::Binary {
                offset,
                line,
                column,
            },
        ));
    }
    Ok(Script::from_source(source))
}

/// A parsed Fountain text: the source as given and its elements, each with the
/// span of the source it was read from.
///
/// The spans tile the source: after the byte-order mark (if any), each element
/// starts where the one before it ends, and the last ends at the end of the
/// source. So the source can always be given back byte for byte
/// ([`Script::to_fountain`]), and so can any run of elements, such as a scene
/// ([`crate::Scene::text`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    source: String,
    bom: bool,
    line_ending: LineEnding,
    elements: Vec<Spanned<Element>>,
    boneyards: Vec<Span>,
}

impl Script {
    fn from_source(source: String) -> Self {
        let bom = source.starts_with(BOM);
        let from = if bom { BOM.len() } else { 0 };
        let boneyards = lines::boneyards(&source, from);
        let elements = Parser::new(&source, from, &boneyards).run(true);
        let line_ending = match source.find('\n') {
            Some(i) if i > 0 && source.as_bytes().get(i - 1) == Some(&b'\r') => LineEnding::CrLf,
            _ => LineEnding::Lf,
        };
        Self {
            source,
            bom,
            line_ending,
            elements,
            boneyards,
        }
    }

    /// The source, exactly as given (byte-order mark included).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The source, given up.
    pub fn into_source(self) -> String {
        self.source
    }

    /// Whether the source starts with a UTF-8 byte-order mark.
    pub fn bom(&self) -> bool {
        self.bom
    }

    /// The source's line ending (its first one; `\n` when it has none).
    pub fn line_ending(&self) -> LineEnding {
        self.line_ending
    }

    /// The elements in order, with their spans.
    pub fn elements(&self) -> &[Spanned<Element>] {
        &self.elements
    }

    /// The source's text in `span` (empty if the span is not in the source or
    /// does not fall on character boundaries).
    pub fn slice(&self, span: Span) -> &str {
        self.source.get(span.range()).unwrap_or("")
    }

    /// The title page, if the text starts with one.
    pub fn title_page(&self) -> Option<&TitlePage> {
        self.elements.iter().find_map(|e| match &e.value {
            Element::TitlePage(t) => Some(t),
            _ => None,
        })
    }

    /// Every boneyard comment (`/* … */`), wherever it is — between elements or
    /// inside one — with its span and the text between `/*` and `*/`.
    pub fn boneyards(&self) -> impl Iterator<Item = (Span, &str)> {
        self.boneyards.iter().map(|&span| {
            let inner = self
                .source
                .get(span.start + 2..span.end.saturating_sub(2))
                .unwrap_or("");
            (span, inner)
        })
    }

    /// The text again, byte for byte: the byte-order mark and each element's
    /// source, concatenated. Always equal to [`Script::source`]; this is the
    /// lossless printer, which export relies on.
    pub fn to_fountain(&self) -> String {
        let mut out = String::with_capacity(self.source.len());
        if self.bom {
            out.push_str(BOM);
        }
        for element in &self.elements {
            out.push_str(self.slice(element.span));
        }
        out
    }

    /// The elements without their spans, with the source's line ending and
    /// byte-order mark: what [`crate::print`] writes in canonical form.
    pub fn document(&self) -> Document {
        Document {
            elements: self.elements.iter().map(|e| e.value.clone()).collect(),
            line_ending: self.line_ending,
            bom: self.bom,
        }
    }

    /// Where the source's content starts: after the byte-order mark.
    pub(crate) fn content_start(&self) -> usize {
        if self.bom { BOM.len() } else { 0 }
    }
}
