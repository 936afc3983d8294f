//! The parser: logical lines to elements, in one forward pass.
//!
//! Paragraphs are runs of content lines between blank lines (void lines, which
//! hold only boneyard comments, are looked through). The first line of a
//! paragraph decides what it is; a few elements are one line long and let the
//! paragraph's next line start afresh (forced headings and transitions,
//! sections, synopses, page breaks, and a cue's block of parentheticals and
//! dialogue). See `docs/screenplays.md` for the rules and where they come from.

use crate::heading;
use crate::lines::{Class, Cursor, Line};
use crate::model::{Cue, Element, SceneHeading, Span, Spanned, TitleField, TitlePage};
use crate::text;

/// Where the parser stands between elements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a paragraph.
    Start,
    /// Inside a cue's block: the next content line is a parenthetical or dialogue.
    Dialogue,
}

pub(crate) struct Parser<'a> {
    cursor: Cursor<'a>,
    out: Vec<Spanned<Element>>,
    /// Void lines read but not yet given to an element.
    pending_void: Option<Span>,
    src: &'a str,
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, from: usize, bones: &'a [Span]) -> Self {
        Self {
            cursor: Cursor::new(src, from, bones),
            out: Vec::new(),
            pending_void: None,
            src,
        }
    }

    /// Parses everything. `title_page` allows a title page at the start.
    pub fn run(mut self, title_page: bool) -> Vec<Spanned<Element>> {
        let mut state = State::Start;
        let mut first = title_page;
        while let Some(line) = self.next_non_void() {
            match line.class {
                Class::Blank => {
                    state = State::Start;
                    self.blank_run(line);
                }
                Class::Content => {
                    state = match state {
                        State::Start => self.paragraph(line, first),
                        State::Dialogue => self.dialogue(line),
                    };
                }
                // next_non_void never returns a void line.
                Class::Void => {}
            }
            first = false;
        }
        self.flush_void();
        self.out
    }

    /// The next line that is not void; void lines on the way become pending.
    fn next_non_void(&mut self) -> Option<Line<'a>> {
        loop {
            let line = self.cursor.next_line()?;
            if line.class != Class::Void {
                return Some(line);
            }
            self.pending_void = Some(match self.pending_void {
                Some(span) => Span::new(span.start, line.end),
                None => line.span(),
            });
        }
    }

    /// The next content line of the current paragraph (looking through void
    /// lines), and the cursor after it; `None` at a blank line or the end.
    fn peek_content(&self) -> Option<(Line<'a>, Cursor<'a>)> {
        let mut cursor = self.cursor.clone();
        loop {
            let line = cursor.next_line()?;
            match line.class {
                Class::Void => continue,
                Class::Blank => return None,
                Class::Content => return Some((line, cursor)),
            }
        }
    }

    fn flush_void(&mut self) {
        if let Some(span) = self.pending_void.take() {
            let raw = self.src.get(span.range()).unwrap_or("");
            // Without the last line's line ending (carriage returns included).
            let raw = raw.strip_suffix('\n').unwrap_or(raw).trim_end_matches('\r');
            self.out.push(Spanned {
                span,
                value: Element::Boneyard {
                    raw: raw.to_owned(),
                },
            });
        }
    }

    fn emit(&mut self, span: Span, value: Element) {
        self.flush_void();
        self.out.push(Spanned { span, value });
    }

    /// A run of blank lines. Void lines end it (they become a boneyard element
    /// between two runs), so that `print` can write them back.
    fn blank_run(&mut self, first: Line<'a>) {
        let mut lines = 1;
        let mut end = first.end;
        loop {
            let mut ahead = self.cursor.clone();
            match ahead.next_line() {
                Some(line) if line.class == Class::Blank => {
                    lines += 1;
                    end = line.end;
                    self.cursor = ahead;
                }
                _ => break,
            }
        }
        self.emit(Span::new(first.start, end), Element::Blank { lines });
    }

    /// The paragraph's remaining lines after `first`, without consuming them:
    /// `first_text` and each line's text through `map`, joined with `\n`; where
    /// the last line ends; the cursor after it.
    fn collect(
        &self,
        first: &Line<'a>,
        first_text: &str,
        map: impl Fn(&str) -> &str,
    ) -> (String, usize, Cursor<'a>) {
        let mut text = String::from(first_text);
        let mut end = first.end;
        let mut cursor = self.cursor.clone();
        let mut ahead = cursor.clone();
        while let Some(line) = ahead.next_line() {
            match line.class {
                Class::Void => continue,
                Class::Blank => break,
                Class::Content => {
                    text.push('\n');
                    text.push_str(map(&line.text));
                    end = line.end;
                    cursor = ahead.clone();
                }
            }
        }
        (text, end, cursor)
    }

    /// Emits the rest of the paragraph from `first` as one element made by `make`.
    fn whole(
        &mut self,
        first: &Line<'a>,
        first_text: &str,
        map: impl Fn(&str) -> &str,
        make: impl FnOnce(String) -> Element,
    ) -> State {
        let (text, end, cursor) = self.collect(first, first_text, map);
        self.cursor = cursor;
        self.emit(Span::new(first.start, end), make(text));
        State::Start
    }

    /// True when every remaining line of the paragraph (from the cursor) passes
    /// `test`; consumes nothing.
    fn rest_all(&self, test: impl Fn(&str) -> bool) -> bool {
        let mut cursor = self.cursor.clone();
        while let Some(line) = cursor.next_line() {
            match line.class {
                Class::Void => {}
                Class::Blank => return true,
                Class::Content if test(&line.text) => {}
                Class::Content => return false,
            }
        }
        true
    }

    fn action(&mut self, first: &Line<'a>, forced: bool) -> State {
        let first_text = if forced {
            first.text.get(1..).unwrap_or("")
        } else {
            &first.text
        };
        self.whole(
            first,
            first_text,
            |l| l,
            |text| Element::Action { text, forced },
        )
    }

    fn heading(&mut self, line: &Line<'a>, body: &str, forced: bool) -> State {
        let (text, number) = heading::split_number(body);
        let value = Element::SceneHeading(SceneHeading {
            text: text.to_owned(),
            number: number.map(str::to_owned),
            forced,
        });
        self.emit(line.span(), value);
        State::Start
    }

    fn one_line(&mut self, line: &Line<'a>, value: Element) -> State {
        self.emit(line.span(), value);
        State::Start
    }

    /// A paragraph starting at `line`.
    fn paragraph(&mut self, line: Line<'a>, first_of_text: bool) -> State {
        if first_of_text && let Some(state) = self.title_page(&line) {
            return state;
        }
        let t: &str = &line.text;
        match t.as_bytes().first() {
            Some(b'!') => return self.action(&line, true),
            Some(b'.') => {
                if let Some(body) = text::forced_heading(t) {
                    return self.heading(&line, body, true);
                }
            }
            Some(b'@') => {
                if let Some(cue) = Cue::parse(t) {
                    self.emit(line.span(), Element::Character(cue));
                    return State::Dialogue;
                }
            }
            Some(b'~') => {
                if self.rest_all(|l| l.starts_with('~')) {
                    return self.whole(&line, after_first(t), after_first, |text| {
                        Element::Lyrics { text }
                    });
                }
                return self.action(&line, false);
            }
            _ => {}
        }
        if text::centered_inner(t).is_some() {
            if self.rest_all(|l| text::centered_inner(l).is_some() || l.trim().is_empty()) {
                return self.whole(&line, centered(t), centered, |text| Element::Centered {
                    text,
                });
            }
            return self.action(&line, false);
        }
        if let Some(rest) = t.strip_prefix('>') {
            let rest = rest.trim();
            if !rest.is_empty() {
                let value = Element::Transition {
                    text: rest.to_owned(),
                    forced: true,
                };
                return self.one_line(&line, value);
            }
        }
        if text::is_page_break(t) {
            return self.one_line(&line, Element::PageBreak);
        }
        if let Some((level, rest)) = text::section(t) {
            let value = Element::Section {
                level,
                text: rest.to_owned(),
            };
            return self.one_line(&line, value);
        }
        if let Some(rest) = text::synopsis(t) {
            let value = Element::Synopsis {
                text: rest.to_owned(),
            };
            return self.one_line(&line, value);
        }
        if t.trim_start().starts_with("[[") {
            let (joined, end, cursor) = self.collect(&line, t, |l| l);
            if let Some(inner) = whole_note(&joined) {
                let value = Element::Note {
                    text: inner.to_owned(),
                };
                self.cursor = cursor;
                self.emit(Span::new(line.start, end), value);
                return State::Start;
            }
        }
        let alone = self.peek_content().is_none();
        if alone && heading::prefix(t).is_some() {
            return self.heading(&line, t, false);
        }
        if alone && text::is_natural_transition(t) {
            let value = Element::Transition {
                text: t.trim().to_owned(),
                forced: false,
            };
            return self.one_line(&line, value);
        }
        if !alone && let Some(cue) = Cue::parse(t) {
            self.emit(line.span(), Element::Character(cue));
            return State::Dialogue;
        }
        self.action(&line, false)
    }

    /// A title page at the start of the text, if the first paragraph is one: its
    /// first line is a `Key: value` line, and it is not a lone key with nothing
    /// after it (`CUT TO:`, `FADE IN:`), which is read as what it looks like.
    fn title_page(&mut self, first: &Line<'a>) -> Option<State> {
        let (key, value) = text::title_key(&first.text)?;
        let mut fields = vec![(key.to_owned(), value_lines(value))];
        let mut end = first.end;
        let mut after_last = self.cursor.clone();
        let mut ahead = after_last.clone();
        while let Some(line) = ahead.next_line() {
            match line.class {
                Class::Void => continue,
                Class::Blank => break,
                Class::Content => {}
            }
            match text::title_key(&line.text) {
                Some((key, value)) => fields.push((key.to_owned(), value_lines(value))),
                None => {
                    if let Some((_, lines)) = fields.last_mut() {
                        lines.push(line.text.trim().to_owned());
                    }
                }
            }
            end = line.end;
            after_last = ahead.clone();
        }
        let fields: Vec<TitleField> = fields
            .into_iter()
            .map(|(key, lines)| TitleField {
                key,
                value: lines.join("\n"),
            })
            .collect();
        if fields.len() == 1 && fields.iter().all(|f| f.value.is_empty()) {
            return None;
        }
        self.cursor = after_last;
        self.emit(
            Span::new(first.start, end),
            Element::TitlePage(TitlePage { fields }),
        );
        Some(State::Start)
    }

    /// A line inside a cue's block.
    fn dialogue(&mut self, first: Line<'a>) -> State {
        if text::is_parenthetical(&first.text) {
            let value = Element::Parenthetical {
                text: first.text.trim().to_owned(),
            };
            self.emit(first.span(), value);
            return State::Dialogue;
        }
        let mut text = String::from(first.text.trim_start());
        let mut end = first.end;
        while let Some((line, after)) = self.peek_content() {
            if text::is_parenthetical(&line.text) {
                break;
            }
            text.push('\n');
            text.push_str(line.text.trim_start());
            end = line.end;
            self.cursor = after;
        }
        self.emit(Span::new(first.start, end), Element::Dialogue { text });
        State::Dialogue
    }
}

/// A line without its first byte (the `~` of lyrics).
fn after_first(line: &str) -> &str {
    line.get(1..).unwrap_or("")
}

/// A centred line's inside; a line of spaces inside centred text is an empty line.
fn centered(line: &str) -> &str {
    text::centered_inner(line).unwrap_or("")
}

/// The first line of a title-page value: nothing when empty.
fn value_lines(value: &str) -> Vec<String> {
    if value.is_empty() {
        Vec::new()
    } else {
        vec![value.to_owned()]
    }
}

/// The inside of a paragraph that is one note: it starts with `[[` and its first
/// `]]` ends it.
fn whole_note(paragraph: &str) -> Option<&str> {
    let t = paragraph.trim();
    let body = t.strip_prefix("[[")?;
    let close = body.find("]]")?;
    (close + 2 == body.len()).then(|| &body[..close])
}
