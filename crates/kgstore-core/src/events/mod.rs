//! The event store: streams of JSON events in one global log, appended in the same
//! transactions as graph changes, with durable idempotency, catch-up subscriptions,
//! consumer groups with a dead-letter queue, batch tracking, schemas per event type,
//! retention, and a change feed of the graph.
//!
//! Everything here is written once above two small backend traits
//! ([`EventLogRead`], [`EventLogWrite`]): an append-only log whose positions the
//! store assigns inside the write transaction, and a little keyed state. See
//! `docs/events.md` for the model, the guarantees per backend and the delivery
//! protocol.
//!
//! ```
//! use kgstore_core::events::{EventRead, ExpectedVersion, GroupOptions, NewEvent, ReadOptions};
//! use kgstore_core::Store;
//! use serde_json::json;
//!
//! let store = Store::memory();
//! store.append("orders", ExpectedVersion::NoStream, [
//!     NewEvent::new("order.placed", json!({"order": 1})).with_id("o1"),
//!     NewEvent::new("order.paid", json!({"order": 1})).with_id("o1-paid"),
//! ])?;
//! let page = store.read_stream("orders", &ReadOptions::forwards(10))?;
//! assert_eq!(page.events.len(), 2);
//!
//! // A consumer group: deliveries are leased, acked, retried, dead-lettered.
//! store.create_group("billing", GroupOptions::default())?;
//! let consumer = store.consumer("billing", "worker-1")?;
//! for delivery in consumer.poll(10)? {
//!     consumer.ack(&delivery)?;
//! }
//! assert_eq!(store.group_status("billing")?.counters.acked, 2);
//! # Ok::<(), kgstore_core::Error>(())
//! ```

mod append;
pub mod backend;
pub mod batch;
pub mod changefeed;
pub mod compat;
pub mod group;
pub mod import;
pub(crate) mod kv;
pub mod model;
pub mod read;
pub mod retention;
pub mod schema;
pub mod state;
pub mod subscribe;

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

pub use append::MAX_EVENT_DEPTH;
pub use backend::{
    EventLogRead, EventLogWrite, LogRecord, LogScan, NewRecord, RecordJson, RemoveWhere,
};
pub use batch::{BatchGroupStatus, BatchStatus};
pub use changefeed::{CHANGE_TYPES, ChangeFeedStatus};
pub use compat::{Compatibility, SchemaChange};
pub use group::{
    AckOutcome, Backoff, Consumer, DeadLetter, DeadLetterReason, Delivery, DeliveryToken,
    GroupCounters, GroupOptions, GroupStatus, Nack, PendingDelivery, StartFrom,
};
pub use model::{
    Append, AppendOptions, AppendResult, CHANGES_STREAM, EventMetadata, ExpectedVersion, NewEvent,
    RecordedEvent, Retention, StreamAppended, StreamInfo,
};
pub use read::{EventPage, EventRead, ReadOptions, RemovedRange};
pub use schema::{EventSchema, SchemaVersion};
pub use state::EventState;
pub use subscribe::{Subscription, SubscriptionOptions, WaitSettings};

use crate::error::{Error, Result};
use crate::store::{ReadTx, Store, WriteTx};
use crate::timestamp::Timestamp;

/// The error of a backend that keeps no events.
pub(crate) fn unsupported(backend: &str) -> Error {
    Error::unsupported("events (the event store)", backend)
}

/// Wakes in-process waiters when a commit appended events.
#[derive(Default)]
pub(crate) struct EventHub {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl EventHub {
    /// Tells every waiter that events were committed.
    pub(crate) fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    /// The current generation, to wait for a later one.
    pub(crate) fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the generation moves past `seen` or `timeout` passes; whether it moved.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (generation, _) = self
            .changed
            .wait_timeout_while(generation, timeout, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *generation != seen
    }
}

/// A write transaction's event-store state.
#[derive(Default)]
pub(crate) struct TxEvents {
    /// Whether the transaction appended events or settled deliveries: this
    /// process's waiters are woken after its commit.
    pub(crate) wake: bool,
    /// The position of its first appended event: the commit id of all of them.
    pub(crate) commit: Option<u64>,
    /// The graph changes recorded for the change feed, when it is on.
    pub(crate) feed: Option<changefeed::Recorded>,
    /// Event schemas loaded by this transaction, by type; made by the first one
    /// loaded, so that a transaction writing no event neither seeds nor frees a
    /// hash map.
    pub(crate) validators: Option<HashMap<String, Option<schema::Validator>>>,
}

impl EventRead for Store {
    fn with_events<R>(
        &self,
        f: impl FnOnce(&dyn EventLogRead, Timestamp) -> Result<R>,
    ) -> Result<R> {
        let txn = self.backend().begin_read()?;
        match txn.events() {
            Some(log) => f(log, Timestamp::now()),
            None => Err(unsupported(self.backend_name())),
        }
    }
}

impl EventRead for ReadTx<'_> {
    fn with_events<R>(
        &self,
        f: impl FnOnce(&dyn EventLogRead, Timestamp) -> Result<R>,
    ) -> Result<R> {
        match self.txn.events() {
            Some(log) => f(log, Timestamp::now()),
            None => Err(unsupported(self.backend)),
        }
    }
}

impl EventRead for WriteTx<'_> {
    fn with_events<R>(
        &self,
        f: impl FnOnce(&dyn EventLogRead, Timestamp) -> Result<R>,
    ) -> Result<R> {
        let now = self.now();
        let backend = self.backend_name();
        crate::store::GraphRead::with_reader(self, |r| match r.events() {
            Some(log) => f(log, now),
            None => Err(unsupported(backend)),
        })
    }
}

impl WriteTx<'_> {
    /// Runs raw event-store writes; a failure poisons the transaction (see
    /// [`WriteTx`]'s rules), so callers check what can be checked first.
    pub(crate) fn ev_write<R>(
        &mut self,
        f: impl FnOnce(&mut dyn EventLogWrite) -> Result<R>,
    ) -> Result<R> {
        let backend = self.backend_name();
        self.raw(|t| match t.events_mut() {
            Some(log) => f(log),
            None => Err(unsupported(backend)),
        })
    }
}

impl Store {
    /// Appends events to a stream in their own transaction; see [`WriteTx::append`].
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = NewEvent>,
    ) -> Result<AppendResult> {
        let events: Vec<NewEvent> = events.into_iter().collect();
        self.write(|tx| tx.append(stream, expected, events))
    }

    /// Appends events the caller keeps, in their own transaction; see
    /// [`WriteTx::append_borrowed`].
    pub fn append_borrowed(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        self.write(|tx| tx.append_borrowed(stream, expected, events))
    }

    /// Appends to several streams at once in their own transaction; see [`WriteTx::append_all`].
    pub fn append_all(
        &self,
        appends: Vec<Append>,
        options: &AppendOptions,
    ) -> Result<AppendResult> {
        self.write(|tx| tx.append_all(appends, options))
    }
}
