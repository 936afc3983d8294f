//! Catch-up subscriptions: read from a position, then wait for what is appended
//! next — by this process or another — without spinning.
//!
//! **How waiting works.** A commit of this process that appends events wakes every
//! waiter of the same [`Store`] at once (a condition variable). Commits of other
//! processes cannot do that, so an idle waiter also checks the log's head (one
//! cheap read) at an interval that starts at [`WaitSettings::min_interval`] and
//! doubles while nothing happens, up to [`WaitSettings::max_interval`]: another
//! process's append is seen within `max_interval` (50 ms by default) when the
//! subscriber has been idle, and within a few milliseconds when events keep coming.
//! An idle subscriber costs about `1 / max_interval` reads per second.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::events::model::check_stream;
use crate::events::read::{EventPage, EventRead, ReadOptions};
use crate::store::Store;

/// How an idle waiter looks for other processes' commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSettings {
    /// The first interval between checks, after the last activity.
    pub min_interval: Duration,
    /// The longest interval between checks.
    pub max_interval: Duration,
}

impl Default for WaitSettings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(50),
        }
    }
}

/// What a subscription reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// One stream (positions are then the stream's versions), or every stream.
    pub stream: Option<String>,
    /// The first position (or version) to deliver; 1 from the beginning.
    pub from: u64,
    /// Only events of these types (any if empty).
    pub types: Vec<String>,
    /// Only streams whose names start with this (every-stream subscriptions).
    pub stream_prefix: Option<String>,
    /// Most events per page.
    pub page_size: usize,
    /// How idle waits look for other processes' commits.
    pub wait: WaitSettings,
}

impl SubscriptionOptions {
    /// Every event of the log, from the beginning.
    pub fn all() -> Self {
        Self {
            stream: None,
            from: 1,
            types: Vec::new(),
            stream_prefix: None,
            page_size: 100,
            wait: WaitSettings::default(),
        }
    }

    /// One stream's events, from its first.
    pub fn stream(stream: impl Into<String>) -> Self {
        Self {
            stream: Some(stream.into()),
            ..Self::all()
        }
    }

    /// Starts after a checkpoint: the last position (or version) already handled.
    pub fn after(mut self, checkpoint: u64) -> Self {
        self.from = checkpoint + 1;
        self
    }

    /// Only events of this type (repeat for several).
    pub fn of_type(mut self, event_type: impl Into<String>) -> Self {
        self.types.push(event_type.into());
        self
    }

    /// Only streams whose names start with `prefix`.
    pub fn with_stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size;
        self
    }

    /// Sets how idle waits look for other processes' commits.
    pub fn wait(mut self, wait: WaitSettings) -> Self {
        self.wait = wait;
        self
    }
}

/// A catch-up subscription: pages of events in order, never skipping one — what
/// retention removed is reported in [`EventPage::removed`], never passed silently.
pub struct Subscription {
    store: Store,
    options: SubscriptionOptions,
    next: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("options", &self.options)
            .field("next", &self.next)
            .finish()
    }
}

impl Subscription {
    /// The next position (or version) the subscription reads: one past the last one
    /// delivered or passed over. Persist `position() - 1` as a checkpoint.
    pub fn position(&self) -> u64 {
        self.next
    }

    fn read(&self) -> Result<EventPage> {
        let options = ReadOptions {
            from: Some(self.next),
            backwards: false,
            limit: self.options.page_size,
            types: self.options.types.clone(),
            stream_prefix: self.options.stream_prefix.clone(),
        };
        match &self.options.stream {
            Some(stream) => self.store.read_stream(stream, &options),
            None => self.store.read_all(&options),
        }
    }

    /// The head the subscription reads up to: the log's last position, or the stream's version.
    fn head(&self) -> Result<u64> {
        match &self.options.stream {
            Some(stream) => Ok(self.store.stream_info(stream)?.map_or(0, |i| i.version)),
            None => self.store.last_position(),
        }
    }

    /// The next page: events (or removed ranges) after the last page, waiting up to
    /// `timeout` for some to be appended. An empty page means the timeout passed.
    pub fn next_page(&mut self, timeout: Duration) -> Result<EventPage> {
        let deadline = Instant::now() + timeout;
        let hub = self.store.hub();
        let wait = self.options.wait;
        let mut interval = wait.min_interval;
        loop {
            let generation = hub.generation();
            let page = self.read()?;
            self.next = page.next;
            if !page.events.is_empty() || !page.removed.is_empty() {
                return Ok(page);
            }
            if !page.at_end {
                continue;
            }
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(page);
                }
                if hub.wait(generation, interval.min(deadline - now)) {
                    interval = wait.min_interval;
                    break;
                }
                interval = (interval * 2).min(wait.max_interval);
                if self.head()? >= self.next {
                    interval = wait.min_interval;
                    break;
                }
            }
        }
    }
}

impl Store {
    /// A catch-up subscription; see [`Subscription`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use kgstore_core::events::{ExpectedVersion, NewEvent, SubscriptionOptions};
    /// use kgstore_core::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::memory();
    /// let mut sub = store.subscribe(SubscriptionOptions::all())?;
    /// let writer = store.clone();
    /// let t = std::thread::spawn(move || {
    ///     writer.append("s", ExpectedVersion::Any, [NewEvent::new("tick", json!(1))])
    /// });
    /// let page = sub.next_page(Duration::from_secs(10))?;
    /// assert_eq!(page.events[0].event_type, "tick");
    /// t.join().unwrap()?;
    /// # Ok::<(), kgstore_core::Error>(())
    /// ```
    pub fn subscribe(&self, options: SubscriptionOptions) -> Result<Subscription> {
        if let Some(stream) = &options.stream {
            check_stream(stream)?;
        }
        let probe = ReadOptions {
            limit: options.page_size,
            types: options.types.clone(),
            stream_prefix: options.stream_prefix.clone(),
            ..ReadOptions::default()
        };
        probe.check()?;
        // Fails at once with Unsupported on a backend without events.
        self.last_position()?;
        Ok(Subscription {
            store: self.clone(),
            next: options.from.max(1),
            options,
        })
    }
}
