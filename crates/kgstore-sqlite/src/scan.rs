//! Whole scans written as JSON on two threads: the calling thread steps the
//! statement (it owns the connection and its snapshot) and copies each row's
//! cells into a batch; a helper thread writes each batch's rows as JSON lines and
//! hands the lines back, in order, to the calling thread, which gives them to the
//! scan's caller. SQLite's stepping and the JSON writing (UTF-8 checks,
//! escaping, timestamps, JSON columns parsed and written again) then use two
//! cores, and the caller's own work on the lines (a backup hashes and writes
//! them) runs beside the helper's.
//!
//! A handful of batches circulate between the two threads (at most
//! [`IN_FLIGHT`]), so memory stays bounded however large the table is; the
//! calling thread waits for the helper only when all of them are on its side.

use std::sync::mpsc;

use kgstore_core::{Error, Result};
use rusqlite::Row;
use rusqlite::types::ValueRef;

use crate::codec::Cellular;

/// Rows per batch.
const BATCH_ROWS: usize = 512;
/// Batches (with their lines) circulating between the two threads at most.
const IN_FLIGHT: usize = 4;

/// One cell copied out of a row: the value, or where its bytes are in the batch.
#[derive(Clone, Copy)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(usize, usize),
    Blob(usize, usize),
}

/// Which cells of a row the calling thread copies when not all of them are
/// needed: a row whose integer cell `flag` has a bit of `bit` set has only the
/// cells of `kept` (bit `i` for column `i`; `flag` itself always) copied, the
/// others left `NULL` without being read — SQLite's per-cell calls are most of
/// the calling thread's work. The helper's line writer, seeing the same flag,
/// must not read the cells left out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sparse {
    /// The column of the flag.
    pub(crate) flag: usize,
    /// The flag's bits that mark a row as needing only `kept`.
    pub(crate) bit: i64,
    /// The columns copied of a marked row, one bit each.
    pub(crate) kept: u64,
}

/// Rows copied out of a statement, each of the same number of cells.
pub(crate) struct RowBatch {
    columns: usize,
    cells: Vec<Cell>,
    bytes: Vec<u8>,
    /// Whether the scan ends with this batch.
    last: bool,
}

impl RowBatch {
    fn new() -> Self {
        Self {
            columns: 0,
            cells: Vec::new(),
            bytes: Vec::with_capacity(256 * BATCH_ROWS),
            last: false,
        }
    }

    fn rows(&self) -> usize {
        self.cells.len() / self.columns.max(1)
    }

    fn clear(&mut self) {
        self.cells.clear();
        self.bytes.clear();
        self.last = false;
    }

    /// Copies the cells of `row` (a row's error comes back as `rusqlite`'s): all
    /// of them, or with `sparse` only those it keeps of a row its flag marks.
    fn push(&mut self, row: &Row<'_>, sparse: Option<Sparse>) -> rusqlite::Result<()> {
        if self.columns == 0 {
            self.columns = row.as_ref().column_count();
            self.cells.reserve(self.columns * BATCH_ROWS);
        }
        let Some(sparse) = sparse.filter(|s| s.flag < self.columns) else {
            for index in 0..self.columns {
                let cell = self.copy(row.get_ref(index)?);
                self.cells.push(cell);
            }
            return Ok(());
        };
        let flag = row.get_ref(sparse.flag)?;
        let kept = match flag {
            ValueRef::Integer(bits) if bits & sparse.bit != 0 => sparse.kept,
            _ => u64::MAX,
        };
        for index in 0..self.columns {
            let cell = if index == sparse.flag {
                self.copy(flag)
            } else if index < 64 && kept & (1 << index) == 0 {
                Cell::Null
            } else {
                self.copy(row.get_ref(index)?)
            };
            self.cells.push(cell);
        }
        Ok(())
    }

    /// One cell, its bytes (if any) copied into the batch.
    #[inline]
    fn copy(&mut self, value: ValueRef<'_>) -> Cell {
        match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Integer(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(bytes) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(bytes);
                Cell::Text(start, self.bytes.len())
            }
            ValueRef::Blob(bytes) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(bytes);
                Cell::Blob(start, self.bytes.len())
            }
        }
    }

    fn row(&self, at: usize, texts_are_utf8: bool) -> BatchRow<'_> {
        BatchRow {
            batch: self,
            at,
            texts_are_utf8,
        }
    }

    /// Whether every text cell is UTF-8, checked at once for the whole batch: its
    /// bytes are UTF-8 as a whole and every text cell starts and ends on a
    /// character boundary (so that no cell holds part of a character whose rest
    /// is in its neighbour). `false` when either fails, and the cells are then
    /// checked one by one as they are read, failing as they always did.
    fn texts_are_utf8(&self) -> bool {
        let Ok(text) = std::str::from_utf8(&self.bytes) else {
            return false;
        };
        self.cells.iter().all(|cell| match *cell {
            Cell::Text(start, end) => text.is_char_boundary(start) && text.is_char_boundary(end),
            _ => true,
        })
    }
}

/// One row of a [`RowBatch`], read as the statement's row would be.
pub(crate) struct BatchRow<'b> {
    batch: &'b RowBatch,
    at: usize,
    /// [`RowBatch::texts_are_utf8`] of its batch.
    texts_are_utf8: bool,
}

impl Cellular for BatchRow<'_> {
    #[inline]
    fn cell(&self, index: usize) -> rusqlite::Result<ValueRef<'_>> {
        if index >= self.batch.columns {
            return Err(rusqlite::Error::InvalidColumnIndex(index));
        }
        let bytes = &self.batch.bytes;
        Ok(
            match self.batch.cells[self.at * self.batch.columns + index] {
                Cell::Null => ValueRef::Null,
                Cell::Integer(i) => ValueRef::Integer(i),
                Cell::Real(f) => ValueRef::Real(f),
                Cell::Text(start, end) => ValueRef::Text(&bytes[start..end]),
                Cell::Blob(start, end) => ValueRef::Blob(&bytes[start..end]),
            },
        )
    }

    #[inline]
    fn texts_are_utf8(&self) -> bool {
        self.texts_are_utf8
    }
}

/// JSON lines, one after the other, with where each ends.
#[derive(Default)]
pub(crate) struct Lines {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Lines {
    /// Adds one line.
    pub(crate) fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    /// Writes one line with `write`, which appends it to the buffer it is given.
    pub(crate) fn write(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        let start = self.bytes.len();
        match write(&mut self.bytes) {
            Ok(()) => {
                self.ends.push(self.bytes.len());
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    fn hand_over(&mut self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut start = 0;
        for &end in &self.ends {
            each(&self.bytes[start..end])?;
            start = end;
        }
        self.bytes.clear();
        self.ends.clear();
        Ok(())
    }
}

/// What the helper thread does with the rows: writes each row's line or lines
/// (possibly holding some back, to hand them over in another order), and at the
/// end of the scan whatever it still holds.
pub(crate) trait LineWriter: Send {
    /// Writes what `row` gives into `lines`.
    fn row(&mut self, row: &BatchRow<'_>, lines: &mut Lines) -> Result<()>;
    /// Writes what is still held at the end of the scan.
    fn finish(&mut self, lines: &mut Lines) -> Result<()>;
}

/// A batch and the lines written from it, travelling together.
type Pair = (RowBatch, Lines);

/// Runs a whole scan on two threads (the module's description): `scan` calls the
/// function it is given on each row of the statement in turn, on the calling
/// thread; `writer` writes their lines on a helper thread; `each` gets every line
/// in order on the calling thread; `sparse` says which cells of a row need not
/// be copied ([`Sparse`]). The first error of any of them ends the scan
/// and comes back; lines written before it have been handed over.
pub(crate) fn two_thread_json_scan(
    scan: impl FnOnce(&mut dyn FnMut(&Row<'_>) -> Result<()>) -> Result<()>,
    row_error: impl Fn(rusqlite::Error) -> Error,
    sparse: Option<Sparse>,
    mut writer: impl LineWriter,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|s| {
        let (to_helper, helper_rx) = mpsc::channel::<Pair>();
        let (to_caller, caller_rx) = mpsc::channel::<Result<Pair>>();
        s.spawn(move || {
            while let Ok((mut batch, mut lines)) = helper_rx.recv() {
                let written = write_batch(&mut writer, &batch, &mut lines);
                batch.clear();
                let stop = written.is_err();
                if to_caller.send(written.map(|()| (batch, lines))).is_err() || stop {
                    return;
                }
            }
        });
        let mut pipe = Pipe {
            free: (1..IN_FLIGHT)
                .map(|_| (RowBatch::new(), Lines::default()))
                .collect(),
            filling: (RowBatch::new(), Lines::default()),
            in_flight: 0,
            to_helper,
            from_helper: caller_rx,
        };
        scan(&mut |row| {
            pipe.filling.0.push(row, sparse).map_err(&row_error)?;
            if pipe.filling.0.rows() >= BATCH_ROWS {
                pipe.send(each)?;
            }
            Ok(())
        })?;
        pipe.filling.0.last = true;
        pipe.send(each)?;
        while pipe.in_flight > 0 {
            pipe.receive(each)?;
        }
        Ok(())
    })
}

/// The helper's work on one batch.
fn write_batch(writer: &mut impl LineWriter, batch: &RowBatch, lines: &mut Lines) -> Result<()> {
    let utf8 = batch.texts_are_utf8();
    for at in 0..batch.rows() {
        writer.row(&batch.row(at, utf8), lines)?;
    }
    if batch.last {
        writer.finish(lines)?;
    }
    Ok(())
}

/// The calling thread's side of the two threads.
struct Pipe {
    /// Batches (and lines) back from the helper, ready to be filled.
    free: Vec<Pair>,
    /// The batch being filled.
    filling: Pair,
    /// Batches with the helper.
    in_flight: usize,
    to_helper: mpsc::Sender<Pair>,
    from_helper: mpsc::Receiver<Result<Pair>>,
}

impl Pipe {
    /// Sends the batch being filled to the helper and takes a free one, handing
    /// over the lines of every batch the helper has finished meanwhile (and
    /// waiting for one when none is free).
    fn send(&mut self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while let Ok(done) = self.from_helper.try_recv() {
            self.in_flight -= 1;
            self.hand_over(done, each)?;
        }
        if self.free.is_empty() {
            self.receive(each)?;
        }
        let next = self.free.pop().ok_or_else(helper_stopped)?;
        let full = std::mem::replace(&mut self.filling, next);
        if self.to_helper.send(full).is_err() {
            // The helper stopped at an error it sent back: that error is the answer.
            while self.in_flight > 0 {
                self.receive(each)?;
            }
            return Err(helper_stopped());
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for the helper's next batch and hands its lines over.
    fn receive(&mut self, each: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let done = self.from_helper.recv().map_err(|_| helper_stopped())?;
        self.in_flight -= 1;
        self.hand_over(done, each)
    }

    fn hand_over(
        &mut self,
        done: Result<Pair>,
        each: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let (batch, mut lines) = done?;
        lines.hand_over(each)?;
        self.free.push((batch, lines));
        Ok(())
    }
}

fn helper_stopped() -> Error {
    Error::backend("sqlite", "the thread writing a scan's JSON lines stopped")
}
