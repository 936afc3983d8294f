//! Consumer groups: delivery, leases, fenced acks, nacks, backoff, the dead-letter
//! queue and its replay, counters, and batch tracking.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::{ev, ev_id, fill, quick_group};
use crate::events::{
    AckOutcome, Append, AppendOptions, Backoff, DeadLetterReason, Delivery, DeliveryToken,
    EventRead, ExpectedVersion, GroupOptions, Nack, StartFrom, WaitSettings,
};
use crate::suite::{Fixture, kind_of};
use crate::{ErrorKind, Store};

use ExpectedVersion::Any;

fn retry() -> Nack {
    Nack::Retry { after_ms: None }
}

fn poll(s: &Store, group: &str, max: usize) -> Vec<Delivery> {
    s.consumer(group, "c1").unwrap().poll(max).unwrap()
}

fn ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.event.position).collect()
}

pub fn events_group_create_list_status_delete(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 3);
    let status = s.create_group("billing", GroupOptions::default()).unwrap();
    assert_eq!((status.checkpoint, status.lag), (0, 3));
    assert_eq!(status.options.max_deliveries, 10, "a finite default");
    s.create_group("audit.v2", GroupOptions::default()).unwrap();
    let err = s
        .create_group("billing", GroupOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let names: Vec<String> = s
        .list_groups()
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["audit.v2", "billing"]);
    for d in poll(s, "billing", 10) {
        s.ack(&d.token).unwrap();
    }
    assert!(s.delete_group("billing").unwrap());
    assert!(!s.delete_group("billing").unwrap());
    assert_eq!(kind_of(s.group_status("billing")), ErrorKind::NotFound);
    // Created again, it starts afresh.
    s.create_group("billing", GroupOptions::default()).unwrap();
    assert_eq!(ids(&poll(s, "billing", 10)), [1, 2, 3]);
}

pub fn events_group_unknown_and_invalid_are_refused(f: Fixture) {
    let s = &f.store;
    assert_eq!(kind_of(s.group_status("nope")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.consumer("nope", "c")), ErrorKind::NotFound);
    let token = DeliveryToken {
        group: "nope".into(),
        position: 1,
        attempt: 1,
        replay: false,
    };
    let err = s.ack(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("consumer group 'nope'"), "{err}");
    assert_eq!(
        kind_of(s.dead_letters("nope", None, 10)),
        ErrorKind::NotFound
    );
    for name in ["", "has space", "-dash-first", "a/b", &"g".repeat(129)] {
        assert_eq!(
            kind_of(s.create_group(name, GroupOptions::default())),
            ErrorKind::InvalidInput,
            "{name:?}"
        );
    }
    let bad = [
        GroupOptions {
            max_deliveries: 0,
            ..GroupOptions::default()
        },
        GroupOptions {
            lease_ms: 0,
            ..GroupOptions::default()
        },
        GroupOptions {
            start: StartFrom::Position(0),
            ..GroupOptions::default()
        },
        GroupOptions {
            types: vec!["bad type".into()],
            ..GroupOptions::default()
        },
        GroupOptions {
            backoff: Backoff {
                initial_ms: 10,
                max_ms: 5,
                jitter: false,
            },
            ..GroupOptions::default()
        },
    ];
    for options in bad {
        assert_eq!(
            kind_of(s.create_group("g", options.clone())),
            ErrorKind::InvalidInput,
            "{options:?}"
        );
    }
    s.create_group("g", GroupOptions::default()).unwrap();
    assert_eq!(kind_of(s.consumer("g", "")), ErrorKind::InvalidInput);
    let c = s.consumer("g", "c").unwrap();
    assert_eq!(kind_of(c.poll(0)), ErrorKind::InvalidInput);
    assert!(
        s.list_groups().unwrap().len() == 1,
        "nothing else was created"
    );
}

pub fn events_group_delivers_each_event_once_and_acks(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 5);
    s.create_group("g", quick_group()).unwrap();
    let c = s.consumer("g", "worker").unwrap();
    let first = c.poll(3).unwrap();
    assert_eq!(ids(&first), [1, 2, 3]);
    assert!(first.iter().all(|d| d.attempt == 1 && !d.replay));
    assert_eq!(first[0].token.to_string(), "g/1/1");
    let second = c.poll(10).unwrap();
    assert_eq!(
        ids(&second),
        [4, 5],
        "leased events are not handed out twice"
    );
    assert!(c.poll(10).unwrap().is_empty());
    for d in first.iter().chain(&second) {
        assert_eq!(c.ack(d).unwrap(), AckOutcome::Acked);
    }
    // A second ack of the same delivery settles nothing.
    assert!(matches!(
        c.ack(&first[0]).unwrap(),
        AckOutcome::Stale { .. }
    ));
    let status = s.group_status("g").unwrap();
    assert_eq!((status.checkpoint, status.lag, status.in_flight), (5, 0, 0));
    assert_eq!(status.counters.delivered, 5);
    assert_eq!(status.counters.acked, 5);
    assert_eq!(status.counters.stale, 1);
}

pub fn events_group_checkpoint_moves_only_past_settled_events(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 4);
    s.create_group("g", quick_group()).unwrap();
    let d = poll(s, "g", 4);
    s.ack(&d[1].token).unwrap();
    s.ack(&d[3].token).unwrap();
    assert_eq!(s.group_status("g").unwrap().checkpoint, 0);
    s.ack(&d[0].token).unwrap();
    assert_eq!(s.group_status("g").unwrap().checkpoint, 2);
    s.nack(&d[2].token, &Nack::Skip, "not mine").unwrap();
    let status = s.group_status("g").unwrap();
    assert_eq!(status.checkpoint, 4);
    assert_eq!(status.counters.skipped, 1);
}

pub fn events_group_start_end_and_position(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 3);
    s.create_group(
        "from-end",
        GroupOptions {
            start: StartFrom::End,
            ..quick_group()
        },
    )
    .unwrap();
    s.create_group(
        "from-2",
        GroupOptions {
            start: StartFrom::Position(2),
            ..quick_group()
        },
    )
    .unwrap();
    assert!(poll(s, "from-end", 10).is_empty());
    assert_eq!(s.group_status("from-end").unwrap().checkpoint, 3);
    assert_eq!(ids(&poll(s, "from-2", 10)), [2, 3]);
    fill(s, "t", 1);
    assert_eq!(ids(&poll(s, "from-end", 10)), [4]);
}

pub fn events_group_filters_streams_and_types(f: Fixture) {
    let s = &f.store;
    s.append(
        "order-1",
        Any,
        [ev("placed", json!(1)), ev("paid", json!(1))],
    )
    .unwrap();
    s.append("orders", Any, [ev("placed", json!(2))]).unwrap();
    s.append("user-1", Any, [ev("placed", json!(3))]).unwrap();
    s.create_group(
        "placed",
        GroupOptions {
            stream_prefix: Some("order-".into()),
            types: vec!["placed".into()],
            ..quick_group()
        },
    )
    .unwrap();
    s.create_group(
        "exact",
        GroupOptions {
            stream: Some("orders".into()),
            ..quick_group()
        },
    )
    .unwrap();
    assert_eq!(ids(&poll(s, "placed", 10)), [1]);
    assert_eq!(
        ids(&poll(s, "exact", 10)),
        [3],
        "not order-1 although it shares the prefix"
    );
    let status = s.group_status("placed").unwrap();
    assert_eq!(status.cursor, 4, "events it does not want are passed over");
}

pub fn events_group_nack_retries_after_the_backoff(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    s.create_group(
        "slow",
        GroupOptions {
            backoff: Backoff {
                initial_ms: 3_600_000,
                max_ms: 3_600_000,
                jitter: true,
            },
            ..quick_group()
        },
    )
    .unwrap();
    let d = poll(s, "slow", 1);
    let AckOutcome::Retrying { not_before } = s.nack(&d[0].token, &retry(), "boom").unwrap() else {
        panic!("expected a retry")
    };
    let wait = not_before.as_micros() - crate::Timestamp::now().as_micros();
    assert!(
        (1_700_000_000..=3_600_000_000).contains(&wait),
        "an hour with jitter (between half and all of it): {wait} µs"
    );
    assert!(poll(s, "slow", 1).is_empty(), "not before the backoff");
    let pending = s.pending_deliveries("slow").unwrap();
    assert_eq!(pending.len(), 1);
    assert!(!pending[0].leased);
    assert_eq!(pending[0].failures, 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("boom"));
    // Without a backoff the retry is due at once, as a new attempt.
    s.create_group("fast", quick_group()).unwrap();
    let d = poll(s, "fast", 1);
    s.nack(&d[0].token, &retry(), "boom").unwrap();
    let again = poll(s, "fast", 1);
    assert_eq!(ids(&again), [1]);
    assert_eq!(again[0].attempt, 2);
    // A retry_after longer than the backoff wins.
    let r = s
        .nack(
            &again[0].token,
            &Nack::Retry {
                after_ms: Some(3_600_000),
            },
            "later",
        )
        .unwrap();
    assert!(matches!(r, AckOutcome::Retrying { .. }));
    assert!(poll(s, "fast", 1).is_empty());
    assert_eq!(s.group_status("fast").unwrap().counters.retried, 2);
}

pub fn events_group_max_deliveries_dead_letters_with_the_story(f: Fixture) {
    let s = &f.store;
    s.append(
        "s",
        Any,
        [ev_id("poison", "t", json!(1)), ev_id("fine", "t", json!(2))],
    )
    .unwrap();
    s.create_group(
        "g",
        GroupOptions {
            max_deliveries: 3,
            ..quick_group()
        },
    )
    .unwrap();
    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        let d = poll(s, "g", 10);
        let poison = d.iter().find(|d| d.event.id == "poison").unwrap();
        assert_eq!(poison.attempt, attempt);
        for other in d.iter().filter(|d| d.event.id != "poison") {
            s.ack(&other.token).unwrap();
        }
        outcomes.push(
            s.nack(&poison.token, &retry(), &format!("failure {attempt}"))
                .unwrap(),
        );
    }
    assert!(matches!(outcomes[0], AckOutcome::Retrying { .. }));
    assert_eq!(
        outcomes[2],
        AckOutcome::DeadLettered {
            reason: DeadLetterReason::MaxDeliveries
        }
    );
    assert!(
        poll(s, "g", 10).is_empty(),
        "no redelivery after the last attempt"
    );
    let dlq = s.dead_letters("g", None, 10).unwrap();
    assert_eq!(dlq.len(), 1);
    let letter = &dlq[0];
    assert_eq!((letter.position, letter.event_id.as_str()), (1, "poison"));
    assert_eq!(letter.reason, DeadLetterReason::MaxDeliveries);
    assert_eq!(letter.error.as_deref(), Some("failure 3"));
    assert_eq!(letter.attempts, 3);
    assert!(letter.first_failure_at.unwrap() <= letter.last_failure_at);
    assert_eq!(letter.stream, "s");
    let status = s.group_status("g").unwrap();
    assert_eq!(
        status.checkpoint, 2,
        "a dead letter is settled for the checkpoint"
    );
    assert_eq!((status.dead_letters, status.counters.dead_lettered), (1, 1));
}

pub fn events_group_park_and_skip(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 2);
    s.create_group("g", quick_group()).unwrap();
    let d = poll(s, "g", 2);
    assert_eq!(
        s.nack(&d[0].token, &Nack::Park, "needs a human").unwrap(),
        AckOutcome::DeadLettered {
            reason: DeadLetterReason::Parked
        }
    );
    assert_eq!(
        s.nack(&d[1].token, &Nack::Skip, "").unwrap(),
        AckOutcome::Skipped
    );
    let dlq = s.dead_letters("g", None, 10).unwrap();
    assert_eq!(dlq[0].reason, DeadLetterReason::Parked);
    assert_eq!(dlq[0].error.as_deref(), Some("needs a human"));
    assert_eq!(dlq[0].attempts, 1);
    let c = s.group_status("g").unwrap().counters;
    assert_eq!(
        (c.parked, c.dead_lettered, c.skipped, c.acked),
        (1, 1, 1, 0)
    );
}

pub fn events_group_expired_lease_redelivers_and_fences_the_late_ack(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    let short = GroupOptions {
        lease_ms: 30,
        ..quick_group()
    };
    s.create_group("g", short.clone()).unwrap();
    let slow = s.consumer("g", "slow").unwrap();
    let fast = s.consumer("g", "fast").unwrap();
    let d1 = slow.poll(1).unwrap();
    thread::sleep(Duration::from_millis(80));
    // The late ack of the expired lease does nothing.
    let late = slow.ack(&d1[0]).unwrap();
    assert!(
        matches!(&late, AckOutcome::Stale { reason } if reason.contains("expired")),
        "{late:?}"
    );
    // Leases long enough for any disk from here on: the redelivery is the next attempt.
    s.update_group("g", quick_group()).unwrap();
    let d2 = fast.poll(1).unwrap();
    assert_eq!(ids(&d2), [1]);
    assert_eq!(d2[0].attempt, 2);
    // The first attempt's token stays stale after the redelivery too.
    assert!(matches!(
        slow.ack(&d1[0]).unwrap(),
        AckOutcome::Stale { .. }
    ));
    assert_eq!(fast.ack(&d2[0]).unwrap(), AckOutcome::Acked);
    let status = s.group_status("g").unwrap();
    assert_eq!(status.counters.lease_expired, 1);
    assert_eq!(status.counters.acked, 1);
    assert_eq!(status.counters.stale, 2);
    assert_eq!(status.counters.redelivered, 1);
    assert_eq!(status.checkpoint, 1);
    // What may not change about a group is refused.
    let other = GroupOptions {
        types: vec!["x".into()],
        ..quick_group()
    };
    assert_eq!(kind_of(s.update_group("g", other)), ErrorKind::InvalidInput);
    assert_eq!(kind_of(s.update_group("nope", short)), ErrorKind::NotFound);
}

pub fn events_group_expired_leases_count_toward_max_deliveries(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    s.create_group(
        "g",
        GroupOptions {
            lease_ms: 20,
            max_deliveries: 2,
            ..quick_group()
        },
    )
    .unwrap();
    for _ in 0..2 {
        assert_eq!(poll(s, "g", 1).len(), 1);
        thread::sleep(Duration::from_millis(50));
    }
    assert!(poll(s, "g", 1).is_empty());
    let dlq = s.dead_letters("g", None, 10).unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].reason, DeadLetterReason::MaxDeliveries);
    assert!(
        dlq[0].error.as_deref().unwrap().contains("expired"),
        "{dlq:?}"
    );
}

pub fn events_group_renewal_extends_the_lease(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    s.create_group(
        "g",
        GroupOptions {
            lease_ms: 1_500,
            ..quick_group()
        },
    )
    .unwrap();
    let c = s.consumer("g", "c").unwrap();
    let d = c.poll(1).unwrap();
    let first = d[0].lease_expires_at;
    let mut last = first;
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(600));
        let renewed = c.renew(&d[0]).unwrap();
        let AckOutcome::Renewed { lease_expires_at } = renewed else {
            panic!("{renewed:?}")
        };
        assert!(lease_expires_at > last);
        last = lease_expires_at;
    }
    // 1.8 s after the poll, longer than the first lease: still ours.
    assert!(crate::Timestamp::now() > first);
    assert!(c.poll(1).unwrap().is_empty());
    assert_eq!(c.ack(&d[0]).unwrap(), AckOutcome::Acked);
}

pub fn events_group_tokens_of_superseded_attempts_do_nothing(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    s.create_group("g", quick_group()).unwrap();
    let d1 = poll(s, "g", 1);
    s.nack(&d1[0].token, &retry(), "x").unwrap();
    let d2 = poll(s, "g", 1);
    for outcome in [
        s.ack(&d1[0].token).unwrap(),
        s.nack(&d1[0].token, &Nack::Park, "late").unwrap(),
        s.renew(&d1[0].token).unwrap(),
    ] {
        assert!(
            matches!(&outcome, AckOutcome::Stale { reason } if reason.contains("superseded")),
            "{outcome:?}"
        );
    }
    assert!(
        s.dead_letters("g", None, 10).unwrap().is_empty(),
        "the late park did nothing"
    );
    // Tokens for events never delivered, or forged attempts, settle nothing either.
    let forged = DeliveryToken {
        attempt: 9,
        ..d2[0].token.clone()
    };
    assert!(matches!(s.ack(&forged).unwrap(), AckOutcome::Stale { .. }));
    let never = DeliveryToken {
        position: 77,
        ..d2[0].token.clone()
    };
    assert!(matches!(s.ack(&never).unwrap(), AckOutcome::Stale { .. }));
    assert_eq!(s.ack(&d2[0].token).unwrap(), AckOutcome::Acked);
    assert!("g/1".parse::<DeliveryToken>().is_err());
}

pub fn events_group_max_in_flight_limits_deliveries(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 10);
    s.create_group(
        "g",
        GroupOptions {
            max_in_flight: 3,
            ..quick_group()
        },
    )
    .unwrap();
    let d = poll(s, "g", 10);
    assert_eq!(ids(&d), [1, 2, 3]);
    assert!(poll(s, "g", 10).is_empty());
    s.ack(&d[0].token).unwrap();
    assert_eq!(ids(&poll(s, "g", 10)), [4]);
}

pub fn events_groups_are_independent(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 3);
    s.create_group("a", quick_group()).unwrap();
    s.create_group("b", quick_group()).unwrap();
    let da = poll(s, "a", 10);
    let db = poll(s, "b", 10);
    assert_eq!(ids(&da), ids(&db));
    for d in &da {
        s.ack(&d.token).unwrap();
    }
    assert_eq!(s.group_status("a").unwrap().checkpoint, 3);
    assert_eq!(s.group_status("b").unwrap().checkpoint, 0);
    // A token of one group does not settle the other's delivery.
    let cross = DeliveryToken {
        group: "b".into(),
        ..da[0].token.clone()
    };
    assert_eq!(
        s.ack(&cross).unwrap(),
        AckOutcome::Acked,
        "b's own attempt 1 of position 1"
    );
    assert_eq!(s.group_status("b").unwrap().counters.acked, 1);
}

pub fn events_group_poll_wait_wakes_on_append(f: Fixture) {
    let s = &f.store;
    s.create_group("g", quick_group()).unwrap();
    let c = s
        .consumer("g", "waiter")
        .unwrap()
        .with_wait(WaitSettings::default());
    assert!(
        c.poll_wait(5, Duration::from_millis(30))
            .unwrap()
            .is_empty()
    );
    let writer = s.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        fill(&writer, "s", 2);
    });
    let mut got = c.poll_wait(5, Duration::from_secs(20)).unwrap();
    t.join().unwrap();
    if got.len() < 2 {
        got.extend(c.poll_wait(5, Duration::from_secs(20)).unwrap());
    }
    assert_eq!(ids(&got), [1, 2]);
}

pub fn events_dlq_inspect_and_purge(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 5);
    s.create_group("g", quick_group()).unwrap();
    for d in poll(s, "g", 5) {
        s.nack(&d.token, &Nack::Park, &format!("bad {}", d.event.position))
            .unwrap();
    }
    let page = s.dead_letters("g", None, 2).unwrap();
    assert_eq!(page.iter().map(|l| l.position).collect::<Vec<_>>(), [1, 2]);
    let page = s.dead_letters("g", Some(2), 10).unwrap();
    assert_eq!(
        page.iter().map(|l| l.position).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(s.purge_dead_letters("g", 2, 3).unwrap(), 2);
    let left: Vec<u64> = s
        .dead_letters("g", None, 10)
        .unwrap()
        .iter()
        .map(|l| l.position)
        .collect();
    assert_eq!(left, [1, 4, 5]);
    assert_eq!(s.purge_dead_letters("g", 0, u64::MAX).unwrap(), 3);
    let status = s.group_status("g").unwrap();
    assert_eq!((status.dead_letters, status.counters.purged), (0, 5));
    assert_eq!(status.checkpoint, 5);
}

pub fn events_dlq_replay_in_chunks_never_moves_the_checkpoint(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 10);
    s.create_group("g", quick_group()).unwrap();
    for d in poll(s, "g", 10) {
        if d.event.position % 2 == 0 {
            s.nack(&d.token, &Nack::Park, "even").unwrap();
        } else {
            s.ack(&d.token).unwrap();
        }
    }
    fill(s, "s", 2);
    let before = s.group_status("g").unwrap();
    assert_eq!(before.checkpoint, 10);
    // One event.
    assert_eq!(
        s.write(|tx| tx.replay_dead_letters("g", 4, 4, 100))
            .unwrap(),
        1
    );
    // A range, three per transaction: every parked event once.
    assert_eq!(s.replay_dead_letters("g", 1, 10, 3).unwrap(), 4);
    assert_eq!(
        s.replay_dead_letters("g", 1, 10, 3).unwrap(),
        0,
        "already queued"
    );
    let status = s.group_status("g").unwrap();
    assert_eq!(
        status.checkpoint, before.checkpoint,
        "replays do not move the checkpoint"
    );
    assert_eq!(status.replaying, 5);
    let d = poll(s, "g", 20);
    // Replays come in the order they were queued (position 4 first, then the range).
    let replays: Vec<u64> = d
        .iter()
        .filter(|d| d.replay)
        .map(|d| d.event.position)
        .collect();
    let fresh: Vec<u64> = d
        .iter()
        .filter(|d| !d.replay)
        .map(|d| d.event.position)
        .collect();
    assert_eq!(replays, [4, 2, 6, 8, 10]);
    assert_eq!(fresh, [11, 12]);
    assert!(
        d.iter()
            .filter(|d| d.replay)
            .all(|d| d.token.replay && d.attempt == 1)
    );
    for delivery in &d {
        s.ack(&delivery.token).unwrap();
    }
    let status = s.group_status("g").unwrap();
    assert_eq!(status.checkpoint, 12);
    assert_eq!((status.dead_letters, status.replaying), (0, 0));
    assert_eq!(status.counters.replay_acked, 5);
    assert_eq!(status.counters.acked, 7);
    assert!(s.dead_letters("g", None, 10).unwrap().is_empty());
    assert!(
        poll(s, "g", 20).is_empty(),
        "each parked event was delivered once"
    );
}

pub fn events_dlq_failed_replay_returns_to_the_queue(f: Fixture) {
    let s = &f.store;
    fill(s, "s", 1);
    s.create_group(
        "g",
        GroupOptions {
            max_deliveries: 2,
            ..quick_group()
        },
    )
    .unwrap();
    let d = poll(s, "g", 1);
    s.nack(&d[0].token, &Nack::Park, "first").unwrap();
    s.replay_dead_letters("g", 1, 1, 10).unwrap();
    let r = poll(s, "g", 1);
    assert!(r[0].replay);
    s.nack(&r[0].token, &retry(), "again").unwrap();
    let r = poll(s, "g", 1);
    assert_eq!(r[0].attempt, 2);
    assert_eq!(
        s.nack(&r[0].token, &retry(), "still").unwrap(),
        AckOutcome::DeadLettered {
            reason: DeadLetterReason::MaxDeliveries
        }
    );
    let dlq = s.dead_letters("g", None, 10).unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].replays, 1);
    assert!(!dlq[0].replaying);
    assert_eq!(dlq[0].attempts, 3);
    assert_eq!(dlq[0].error.as_deref(), Some("still"));
    let status = s.group_status("g").unwrap();
    assert_eq!((status.dead_letters, status.replaying), (1, 0));
    assert!(poll(s, "g", 1).is_empty());
}

pub fn events_group_counters_are_exact_after_reopen(mut f: Fixture) {
    fill(&f.store, "s", 6);
    f.store.create_group("g", quick_group()).unwrap();
    let d = poll(&f.store, "g", 6);
    f.store.ack(&d[0].token).unwrap();
    f.store.ack(&d[1].token).unwrap();
    f.store.nack(&d[2].token, &Nack::Park, "p").unwrap();
    f.store.nack(&d[3].token, &Nack::Skip, "s").unwrap();
    f.store.nack(&d[4].token, &retry(), "r").unwrap();
    let before = f.store.group_status("g").unwrap();
    let pending_before = f.store.pending_deliveries("g").unwrap();
    f.reopen();
    let after = f.store.group_status("g").unwrap();
    assert_eq!(after, before);
    assert_eq!(f.store.pending_deliveries("g").unwrap(), pending_before);
    // The leased delivery survives the reopen and can still be acked with its token.
    assert_eq!(f.store.ack(&d[5].token).unwrap(), AckOutcome::Acked);
    let again = poll(&f.store, "g", 6);
    assert_eq!(ids(&again), [5]);
    f.store.ack(&again[0].token).unwrap();
    let c = f.store.group_status("g").unwrap().counters;
    assert_eq!(
        (c.delivered, c.acked, c.parked, c.skipped, c.retried),
        (7, 4, 1, 1, 1)
    );
    assert_eq!(f.store.group_status("g").unwrap().checkpoint, 6);
}

pub fn events_batch_status_per_group(f: Fixture) {
    let s = &f.store;
    let options = AppendOptions {
        batch: Some("import-7".into()),
    };
    s.append_all(
        vec![
            Append::new("a", Any, [ev("x", json!(1)), ev("y", json!(2))]),
            Append::new("b", Any, [ev("x", json!(3))]),
        ],
        &options,
    )
    .unwrap();
    s.append_all(vec![Append::new("a", Any, [ev("x", json!(4))])], &options)
        .unwrap();
    fill(s, "unbatched", 1);
    s.create_group("all", quick_group()).unwrap();
    s.create_group(
        "only-x",
        GroupOptions {
            types: vec!["x".into()],
            ..quick_group()
        },
    )
    .unwrap();
    let status = s.batch_status("import-7").unwrap();
    assert_eq!(
        (status.total, status.first_position, status.last_position),
        (4, 1, 4)
    );
    let totals: BTreeMap<String, u64> = status
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.total))
        .collect();
    assert_eq!(
        totals,
        BTreeMap::from([("all".into(), 4), ("only-x".into(), 3)])
    );
    assert!(!status.complete(None));
    let d = poll(s, "all", 10);
    s.ack(&d[0].token).unwrap();
    s.nack(&d[1].token, &retry(), "x").unwrap();
    s.nack(&d[2].token, &Nack::Park, "y").unwrap();
    s.nack(&d[3].token, &Nack::Skip, "z").unwrap();
    let all = s.batch_status("import-7").unwrap();
    let g = all.groups.iter().find(|g| g.group == "all").unwrap();
    assert_eq!(
        (
            g.delivered,
            g.acked,
            g.failed,
            g.dead_lettered,
            g.skipped,
            g.complete
        ),
        (4, 1, 2, 1, 1, false)
    );
    let again = poll(s, "all", 10);
    let retried = again.iter().find(|d| d.event.position == 2).unwrap();
    s.ack(&retried.token).unwrap();
    for d in again.iter().filter(|d| d.event.position != 2) {
        s.ack(&d.token).unwrap();
    }
    let all = s.batch_status("import-7").unwrap();
    assert!(all.complete(Some("all")));
    assert!(!all.complete(Some("only-x")));
    assert_eq!(kind_of(s.batch_status("nope")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.batch_status("")), ErrorKind::InvalidInput);
}

pub fn events_batch_can_be_waited_for(f: Fixture) {
    let s = &f.store;
    s.create_group("g", quick_group()).unwrap();
    let options = AppendOptions {
        batch: Some("b".into()),
    };
    s.append_all(
        vec![Append::new(
            "s",
            Any,
            [ev("t", json!(1)), ev("t", json!(2))],
        )],
        &options,
    )
    .unwrap();
    let waiting = s
        .wait_batch(
            "b",
            Some("g"),
            Duration::from_millis(20),
            WaitSettings::default(),
        )
        .unwrap();
    assert!(
        !waiting.complete(Some("g")),
        "nothing settled yet: the wait times out"
    );
    let worker = s.clone();
    let t = thread::spawn(move || {
        let c = worker.consumer("g", "w").unwrap();
        let mut settled = BTreeSet::new();
        while settled.len() < 2 {
            for d in c.poll_wait(10, Duration::from_secs(20)).unwrap() {
                c.ack(&d).unwrap();
                settled.insert(d.event.position);
            }
        }
    });
    let done = s
        .wait_batch(
            "b",
            Some("g"),
            Duration::from_secs(20),
            WaitSettings::default(),
        )
        .unwrap();
    t.join().unwrap();
    assert!(done.complete(Some("g")), "{done:?}");
    assert_eq!(
        kind_of(s.wait_batch("b", Some("nope"), Duration::ZERO, WaitSettings::default())),
        ErrorKind::NotFound
    );
}

/// A batch whose events were removed (a deleted stream, retention) before a group
/// received them is settled for the group once it has polled past them: its
/// checkpoint passed the batch, so a wait ends at once instead of sitting out
/// its timeout (`kgstore events batch status --wait` sat its 600 s).
pub fn events_batch_removed_before_delivery_is_settled_once_the_group_passes_it(f: Fixture) {
    let s = &f.store;
    // Appends events numbered `values` to `stream` under `batch`.
    let append = |stream: &str, values: &[i64], batch: &str| {
        let events: Vec<_> = values.iter().map(|v| ev("t", json!(v))).collect();
        s.append_all(
            vec![Append::new(stream, Any, events)],
            &AppendOptions {
                batch: Some(batch.into()),
            },
        )
        .unwrap();
    };
    s.create_group("g", quick_group()).unwrap();
    append("gone", &[1, 2], "deleted");
    append("kept", &[3, 4], "truncated");
    append("kept", &[5], "whole");
    s.delete_stream("gone", ExpectedVersion::Exact(2)).unwrap();
    s.truncate_stream("kept", 3).unwrap();
    // The group receives the one event left and acks it.
    let d = poll(s, "g", 10);
    assert_eq!(ids(&d), vec![5]);
    s.ack(&d[0].token).unwrap();
    assert_eq!(s.group_status("g").unwrap().checkpoint, 5);
    for id in ["deleted", "truncated", "whole"] {
        let status = s.batch_status(id).unwrap();
        let g = &status.groups[0];
        assert!(g.complete && status.complete(None), "{id}: {status:?}");
        let waited = s
            .wait_batch(id, Some("g"), Duration::ZERO, WaitSettings::default())
            .unwrap();
        assert!(waited.complete(Some("g")), "{id}: {waited:?}");
    }
    // Counts stay what happened: nothing of the removed batches was delivered.
    let deleted = s.batch_status("deleted").unwrap();
    assert_eq!(
        (deleted.groups[0].total, deleted.groups[0].delivered),
        (2, 0)
    );
    // A batch the group has not passed is not settled by it.
    append("kept", &[6], "new");
    assert!(!s.batch_status("new").unwrap().complete(None));
}

/// The "under fire" scenario at suite size: three consumer threads, random nacks,
/// parks and abandoned leases; every event ends acked exactly once or dead-lettered.
pub fn events_group_under_fire_with_threads(f: Fixture) {
    let s = &f.store;
    let n: u64 = 300;
    for chunk in (1..=n).collect::<Vec<_>>().chunks(50) {
        let events: Vec<_> = chunk
            .iter()
            .map(|i| ev_id(&format!("e{i}"), "t", json!(i)))
            .collect();
        s.append("fire", Any, events).unwrap();
    }
    s.create_group(
        "g",
        GroupOptions {
            lease_ms: 1_000,
            max_deliveries: 4,
            ..quick_group()
        },
    )
    .unwrap();
    let acks: Vec<Vec<u64>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let store = s.clone();
                scope.spawn(move || {
                    let c = store.consumer("g", &format!("w{w}")).unwrap();
                    let mut rng = fastrand::Rng::with_seed(w);
                    let mut acked = Vec::new();
                    let mut idle = 0;
                    while idle < 3 {
                        let batch = c.poll_wait(5, Duration::from_millis(300)).unwrap();
                        if batch.is_empty() {
                            idle += 1;
                            continue;
                        }
                        idle = 0;
                        for d in batch {
                            match rng.u32(0..100) {
                                0..=9 => {
                                    c.nack(&d, &retry(), "random failure").unwrap();
                                }
                                10..=11 => {
                                    c.nack(&d, &Nack::Park, "random park").unwrap();
                                }
                                12..=15 => {} // abandoned: the lease expires
                                _ => {
                                    if c.ack(&d).unwrap() == AckOutcome::Acked {
                                        acked.push(d.event.position);
                                    }
                                }
                            }
                        }
                    }
                    acked
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    // Drain what the abandoned leases left, then check every event.
    let c = s.consumer("g", "drain").unwrap();
    let mut acked: Vec<u64> = acks.concat();
    loop {
        let d = c.poll_wait(5, Duration::from_millis(1_500)).unwrap();
        if d.is_empty() && s.group_status("g").unwrap().in_flight == 0 {
            break;
        }
        for d in d {
            if c.ack(&d).unwrap() == AckOutcome::Acked {
                acked.push(d.event.position);
            }
        }
    }
    let dead: BTreeSet<u64> = s
        .dead_letters("g", None, 10_000)
        .unwrap()
        .iter()
        .map(|l| l.position)
        .collect();
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for p in &acked {
        *counts.entry(*p).or_default() += 1;
    }
    for p in 1..=n {
        let times = counts.get(&p).copied().unwrap_or(0);
        match (times, dead.contains(&p)) {
            (1, false) | (0, true) => {}
            other => panic!(
                "event {p}: acked {} times, dead-lettered {}",
                other.0, other.1
            ),
        }
    }
    let status = s.group_status("g").unwrap();
    assert_eq!(status.checkpoint, n);
    assert_eq!(status.counters.acked, acked.len() as u64);
    assert_eq!(status.dead_letters, dead.len() as u64);
    assert!(dead.iter().all(|p| *p >= 1));
    let letters = s.dead_letters("g", None, 10_000).unwrap();
    assert!(
        letters.iter().all(|l| l.error.is_some()),
        "every dead letter says why"
    );
    // Replaying the dead-letter queue delivers each parked event once.
    s.replay_dead_letters("g", 1, n, 16).unwrap();
    let mut replayed = Vec::new();
    loop {
        let d = c.poll(5).unwrap();
        if d.is_empty() {
            break;
        }
        for d in d {
            assert!(d.replay);
            assert_eq!(d.attempt, 1, "delivered once");
            assert_eq!(c.ack(&d).unwrap(), AckOutcome::Acked);
            replayed.push(d.event.position);
        }
    }
    assert_eq!(replayed.iter().copied().collect::<BTreeSet<u64>>(), dead);
    assert_eq!(replayed.len(), dead.len());
    assert_eq!(s.group_status("g").unwrap().dead_letters, 0);
}
