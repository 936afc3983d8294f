//! Printing results: aligned tables for people, stable JSON for scripts.

use std::io::{BufWriter, Stdout, Write};

use anyhow::{Context, Result};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// Where results go, and in which form.
pub(crate) struct Output {
    json: bool,
    out: BufWriter<Stdout>,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            out: BufWriter::new(std::io::stdout()),
        }
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Prints a value as pretty JSON (for `--json`).
    pub(crate) fn value(&mut self, value: &impl Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(value).context("encoding the output as JSON")?;
        writeln!(self.out, "{text}").context("writing to stdout")
    }

    /// Prints `human` for people, or `value` as JSON with `--json`.
    pub(crate) fn either(
        &mut self,
        human: impl FnOnce() -> String,
        value: &impl Serialize,
    ) -> Result<()> {
        if self.json {
            self.value(value)
        } else {
            self.line(&human())
        }
    }

    /// Prints a line (for people).
    pub(crate) fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}").context("writing to stdout")
    }

    /// Prints one page of a listing: its rows under headers, then how many were
    /// shown and the `--cursor` of the next page, or `end` when there is none.
    pub(crate) fn page(
        &mut self,
        headers: &[&str],
        rows: &[Vec<String>],
        next_cursor: Option<impl std::fmt::Display>,
        end: &str,
    ) -> Result<()> {
        self.table(headers, rows)?;
        match next_cursor {
            Some(cursor) => self.line(&format!(
                "({} shown; next page: --cursor {cursor})",
                rows.len()
            )),
            None => self.line(&format!("({} shown; {end})", rows.len())),
        }
    }

    /// Prints rows under headers, each column as wide as its widest cell, in the
    /// columns a terminal gives it (a CJK character takes two, a combining accent
    /// none).
    pub(crate) fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.width());
                }
            }
        }
        let render = |cells: &[String]| -> String {
            let last = cells.len().saturating_sub(1);
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                line.push_str(cell);
                if i < last {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(cell.width());
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line
        };
        let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        self.line(&render(&header))?;
        for row in rows {
            self.line(&render(row))?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        self.out.flush().context("writing to stdout")
    }

    /// The raw writer, for exports to stdout.
    pub(crate) fn raw(&mut self) -> &mut BufWriter<Stdout> {
        &mut self.out
    }
}

/// A single-line rendering of a text for table cells (newlines and tabs escaped, long text cut).
pub(crate) fn cell(text: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(|c| match c {
            '\n' => vec!['\\', 'n'],
            '\t' => vec!['\\', 't'],
            c if c.is_control() => vec!['\u{FFFD}'],
            c => vec![c],
        })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
