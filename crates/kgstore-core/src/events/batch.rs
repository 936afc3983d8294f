//! Batch tracking: events appended under a batch id, and each consumer group's
//! progress through them, readable and waitable.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::backend::{EventLogRead, EventLogWrite, NewRecord};
use crate::events::group;
use crate::events::kv;
use crate::events::model::check_id;
use crate::events::read::EventRead;
use crate::events::subscribe::WaitSettings;
use crate::store::Store;
use crate::timestamp::Timestamp;
use crate::validate;

/// How many events of a batch went to one stream with one type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchPart {
    stream: String,
    event_type: String,
    count: u64,
}

/// A batch as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRecord {
    batch: String,
    total: u64,
    first_position: u64,
    last_position: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
    parts: Vec<BatchPart>,
}

/// A batch's progress in one group, as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BatchCounts {
    pub delivered: u64,
    pub acked: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub skipped: u64,
}

/// A batch's progress in one consumer group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchGroupStatus {
    /// The group.
    pub group: String,
    /// The batch's events this group receives (its filters applied).
    pub total: u64,
    /// Events delivered at least once.
    pub delivered: u64,
    /// Events acked.
    pub acked: u64,
    /// Events with at least one failed delivery.
    pub failed: u64,
    /// Events now in the dead-letter queue.
    pub dead_lettered: u64,
    /// Events skipped.
    pub skipped: u64,
    /// Whether every event is settled: acked, skipped or dead-lettered, or passed
    /// by the group's checkpoint (so are events removed by retention or a stream's
    /// deletion before the group received them, once it has polled past them).
    pub complete: bool,
}

/// A batch: how many events, where, and each group's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStatus {
    /// The batch id.
    pub batch: String,
    /// Its events.
    pub total: u64,
    /// The position of its first event.
    pub first_position: u64,
    /// The position of its last event.
    pub last_position: u64,
    /// When its first events were appended.
    pub created_at: Timestamp,
    /// When its last events were appended.
    pub updated_at: Timestamp,
    /// Progress per consumer group, by group name.
    pub groups: Vec<BatchGroupStatus>,
}

impl BatchStatus {
    /// Whether every group has settled every event of the batch it receives (or,
    /// with `group`, that group has).
    pub fn complete(&self, group: Option<&str>) -> bool {
        self.groups
            .iter()
            .filter(|g| group.is_none_or(|name| g.group == name))
            .all(|g| g.complete)
    }
}

/// Why a value is not a batch record kgstore writes, if it is not.
pub(crate) fn record_problem(value: &serde_json::Value) -> Option<String> {
    serde_json::from_value::<BatchRecord>(value.clone())
        .err()
        .map(|e| e.to_string())
}

/// Why a value is not a batch's counts in a group, if it is not.
pub(crate) fn counts_problem(value: &serde_json::Value) -> Option<String> {
    serde_json::from_value::<BatchCounts>(value.clone())
        .err()
        .map(|e| e.to_string())
}

/// Notes appended events under their batch.
pub(crate) fn record_append(
    w: &mut dyn EventLogWrite,
    batch: &str,
    records: &[NewRecord<'_>],
    now: Timestamp,
) -> Result<()> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let mut record: BatchRecord = kv::get(w, kv::BATCHES, batch)?.unwrap_or(BatchRecord {
        batch: batch.to_owned(),
        total: 0,
        first_position: first.position,
        last_position: last.position,
        created_at: now,
        updated_at: now,
        parts: Vec::new(),
    });
    for r in records {
        match record
            .parts
            .iter_mut()
            .find(|p| p.stream == r.stream && p.event_type == r.event_type)
        {
            Some(part) => part.count += 1,
            None => record.parts.push(BatchPart {
                stream: r.stream.to_owned(),
                event_type: r.event_type.to_owned(),
                count: 1,
            }),
        }
    }
    record.total += records.len() as u64;
    record.last_position = last.position;
    record.updated_at = now;
    kv::put(w, kv::BATCHES, batch, &record)
}

/// Changes a batch's counts in a group.
pub(crate) fn bump(
    w: &mut dyn EventLogWrite,
    group: &str,
    batch: &str,
    f: impl FnOnce(&mut BatchCounts),
) -> Result<()> {
    let key = format!("{group}/{batch}");
    let mut counts: BatchCounts = kv::get(w, kv::BATCH_GROUPS, &key)?.unwrap_or_default();
    f(&mut counts);
    kv::put(w, kv::BATCH_GROUPS, &key, &counts)
}

pub(crate) fn status(r: &dyn EventLogRead, batch: &str) -> Result<BatchStatus> {
    check_id("batch id", batch)?;
    let record: BatchRecord = kv::get(r, kv::BATCHES, batch)?
        .ok_or_else(|| Error::not_found(format!("batch '{}'", validate::shorten(batch))))?;
    let mut groups = Vec::new();
    for (name, options, start, checkpoint) in group::all_options(r)? {
        // A group that starts after the batch receives none of it.
        let total = if start > record.last_position {
            0
        } else {
            record
                .parts
                .iter()
                .filter(|p| options.matches(&p.stream, &p.event_type))
                .map(|p| p.count)
                .sum()
        };
        let counts: BatchCounts =
            kv::get(r, kv::BATCH_GROUPS, &format!("{name}/{batch}"))?.unwrap_or_default();
        let settled = counts.acked + counts.dead_lettered + counts.skipped;
        groups.push(BatchGroupStatus {
            group: name,
            total,
            delivered: counts.delivered,
            acked: counts.acked,
            failed: counts.failed,
            dead_lettered: counts.dead_lettered,
            skipped: counts.skipped,
            // Every event at or below the checkpoint is settled for the group,
            // those it never received (removed before delivery) too: the wait ends.
            complete: settled >= total || checkpoint >= record.last_position,
        });
    }
    Ok(BatchStatus {
        batch: record.batch,
        total: record.total,
        first_position: record.first_position,
        last_position: record.last_position,
        created_at: record.created_at,
        updated_at: record.updated_at,
        groups,
    })
}

impl Store {
    /// Waits up to `timeout` until a batch is settled by every group (or by `group`),
    /// and returns its status either way (check [`BatchStatus::complete`]).
    pub fn wait_batch(
        &self,
        batch: &str,
        group: Option<&str>,
        timeout: Duration,
        wait: WaitSettings,
    ) -> Result<BatchStatus> {
        if let Some(name) = group {
            self.group_status(name)?;
        }
        let deadline = Instant::now() + timeout;
        let mut interval = wait.min_interval;
        loop {
            let generation = self.hub().generation();
            let status = self.batch_status(batch)?;
            let now = Instant::now();
            if status.complete(group) || now >= deadline {
                return Ok(status);
            }
            // Settling is a write of this process (which wakes the hub) or of another
            // (seen at the next poll).
            if self.hub().wait(generation, interval.min(deadline - now)) {
                interval = wait.min_interval;
            } else {
                interval = (interval * 2).min(wait.max_interval);
            }
        }
    }
}
