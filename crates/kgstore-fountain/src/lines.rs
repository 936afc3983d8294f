//! Logical lines: the input's lines with boneyard comments taken out.
//!
//! A boneyard comment `/* … */` may start and end anywhere, also on different
//! lines; the lines it joins make one logical line, whose text is what is left
//! outside the comment, without the carriage returns that end it. A logical line is *blank* when it is empty (no
//! characters before its line ending) and holds no comment, *void* when it holds
//! a comment and nothing but white space besides (the parser looks through
//! void lines as if they were not there), and *content* otherwise.

use std::borrow::Cow;

use crate::model::Span;

/// Every boneyard comment of `src` from `from` on: a `/*` up to the first `*/`
/// after it. A `/*` without a `*/` after it is text, and so is every `/*` after
/// it (none of them can be closed either), which keeps the scan linear.
pub(crate) fn boneyards(src: &str, from: usize) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = from;
    while let Some(open) = src.get(pos..).and_then(|s| s.find("/*")) {
        let start = pos + open;
        let Some(close) = src.get(start + 2..).and_then(|s| s.find("*/")) else {
            break;
        };
        let end = start + 2 + close + 2;
        out.push(Span::new(start, end));
        pos = end;
    }
    out
}

/// What a logical line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Blank,
    Void,
    Content,
}

/// One logical line.
#[derive(Clone, Debug)]
pub(crate) struct Line<'a> {
    /// The first byte of its first physical line.
    pub start: usize,
    /// One past the line ending of its last physical line (or the end of input).
    pub end: usize,
    /// The text outside comments, without the line ending.
    pub text: Cow<'a, str>,
    pub class: Class,
}

impl Line<'_> {
    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// Reads logical lines; cheap to clone, so the parser can look ahead and come back.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    bones: &'a [Span],
    next_bone: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str, from: usize, bones: &'a [Span]) -> Self {
        Self {
            src,
            pos: from,
            bones,
            next_bone: 0,
        }
    }

    pub fn next_line(&mut self) -> Option<Line<'a>> {
        let src = self.src;
        if self.pos >= src.len() {
            return None;
        }
        let start = self.pos;
        let mut cursor = start;
        let mut owned: Option<String> = None;
        loop {
            let newline = src
                .get(cursor..)
                .and_then(|s| s.find('\n'))
                .map(|i| cursor + i);
            let content_end = newline.unwrap_or(src.len());
            if let Some(bone) = self.bones.get(self.next_bone)
                && bone.start < content_end
            {
                // A comment starts on this line: keep what precedes it and go on
                // after it, on whichever line it ends.
                owned
                    .get_or_insert_with(String::new)
                    .push_str(src.get(cursor..bone.start).unwrap_or(""));
                cursor = bone.end;
                self.next_bone += 1;
                continue;
            }
            let (text_end, end) = match newline {
                Some(i) => (i, i + 1),
                None => (src.len(), src.len()),
            };
            self.pos = end;
            let tail = src.get(cursor..text_end).unwrap_or("");
            // Carriage returns that end a line belong to its line ending
            // (`\r\n`, or a last line ending in `\r`), never to its text.
            let (text, had_comment) = match owned {
                Some(mut s) => {
                    s.push_str(tail);
                    s.truncate(s.trim_end_matches('\r').len());
                    (Cow::Owned(s), true)
                }
                None => {
                    let text = src.get(start..text_end).unwrap_or("");
                    (Cow::Borrowed(text.trim_end_matches('\r')), false)
                }
            };
            let class = if had_comment {
                if text.trim().is_empty() {
                    Class::Void
                } else {
                    Class::Content
                }
            } else if text.is_empty() {
                Class::Blank
            } else {
                Class::Content
            };
            return Some(Line {
                start,
                end,
                text,
                class,
            });
        }
    }
}
