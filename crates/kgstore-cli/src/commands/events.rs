//! `kgstore events …` and `kgstore changefeed …`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use kgstore::events::{
    AckOutcome, Append, AppendOptions, Backoff, Compatibility, Delivery, DeliveryToken, EventPage,
    EventRead, ExpectedVersion, GroupOptions, GroupStatus, Nack, NewEvent, ReadOptions,
    RecordedEvent, RemovedRange, Retention, StartFrom, SubscriptionOptions, WaitSettings,
};
use kgstore::{Error, Store};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli_events::{
    AppendArgs, BatchCommand, ChangefeedArg, DlqCommand, EventSchemaCommand, EventsCommand,
    GroupCommand, GroupCreateArgs, NackArgs, ReadArgs, StartArg, TailArgs,
};
use crate::output::cell;
use crate::{EXIT_CONFLICT, EXIT_INTERNAL, Refused};

/// JSON text given as an argument, or `-` for stdin.
fn json_arg(text: &str, what: &str) -> Result<Value> {
    if text == "-" {
        return Ok(crate::input::json_from(Path::new("-"), what)?);
    }
    Ok(serde_json::from_str(text)
        .map_err(|e| Error::invalid_input(what.to_owned(), format!("is not JSON: {e}")))?)
}

/// A JSON file, or `-` for stdin.
fn json_file(path: &Path, what: &str) -> Result<Value> {
    if path.as_os_str() == "-" {
        return json_arg("-", what);
    }
    Ok(crate::input::json_from(
        path,
        &format!("{what} {}", path.display()),
    )?)
}

fn mode(text: Option<&str>) -> Result<Option<Compatibility>> {
    Ok(text.map(str::parse).transpose()?)
}

fn event_row(e: &RecordedEvent) -> Vec<String> {
    vec![
        e.position.to_string(),
        cell(&e.stream),
        e.version.to_string(),
        e.event_type.clone(),
        cell(&e.data.to_string()),
    ]
}

fn removed_note(ranges: &[RemovedRange]) -> Option<String> {
    if ranges.is_empty() {
        return None;
    }
    let listed: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}–{} ({} events)", r.first, r.last, r.count))
        .collect();
    Some(format!("removed by retention: {}", listed.join(", ")))
}

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &EventsCommand) -> Result<()> {
    match command {
        EventsCommand::Append(args) => append(ctx, args),
        EventsCommand::Read(args) => read(ctx, args),
        EventsCommand::Tail(args) => tail(ctx, args),
        EventsCommand::Streams(args) => {
            let streams = ctx
                .open_existing()?
                .list_streams(&args.prefix, None, args.limit)?;
            if ctx.out.json() {
                return ctx.out.value(&streams);
            }
            let rows: Vec<Vec<String>> = streams
                .iter()
                .map(|s| {
                    vec![
                        cell(&s.stream),
                        s.version.to_string(),
                        s.last_position.to_string(),
                        if s.deleted { "deleted" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            ctx.out
                .table(&["STREAM", "VERSION", "LAST POSITION", ""], &rows)
        }
        EventsCommand::Retention(args) => {
            let retention = Retention {
                max_age_secs: args.max_age,
                max_count: args.max_count,
                truncate_before: args.truncate_before,
            };
            let info = ctx
                .open_for_write()?
                .set_retention(&args.stream, retention)?;
            ctx.out.either(
                || {
                    let removed = if info.removed_before > 1 {
                        format!("versions below {} are removed", info.removed_before)
                    } else {
                        "nothing is removed yet".to_owned()
                    };
                    format!(
                        "stream '{}' keeps {}; {removed}",
                        info.stream,
                        serde_json::to_string(&info.retention).unwrap_or_default(),
                    )
                },
                &info,
            )
        }
        EventsCommand::DeleteStream(args) => {
            let expected: ExpectedVersion = args.expect.parse()?;
            let info = ctx
                .open_for_write()?
                .delete_stream(&args.stream, expected)?;
            ctx.out.either(
                || {
                    format!(
                        "deleted stream '{}' (it had {} events)",
                        info.stream, info.version
                    )
                },
                &info,
            )
        }
        EventsCommand::Group(command) => group(ctx, command),
        EventsCommand::Poll(args) => {
            let store = ctx.open_for_write()?;
            let deliveries = store
                .consumer(&args.group, &args.consumer)?
                .poll(args.max)?;
            print_deliveries(ctx, &deliveries)
        }
        EventsCommand::Ack(args) => {
            let token: DeliveryToken = args.token.parse()?;
            let outcome = ctx.open_for_write()?.ack(&token)?;
            print_outcome(ctx, &token, &outcome)
        }
        EventsCommand::Nack(args) => nack(ctx, args),
        EventsCommand::Dlq(command) => dlq(ctx, command),
        EventsCommand::Batch(BatchCommand::Status(args)) => {
            let store = ctx.open_existing()?;
            let status = if args.wait {
                let timeout = Duration::try_from_secs_f64(args.timeout).map_err(|_| {
                    Error::invalid_input("--timeout", "must be a number of seconds ≥ 0")
                })?;
                store.wait_batch(
                    &args.id,
                    args.group.as_deref(),
                    timeout,
                    WaitSettings::default(),
                )?
            } else {
                store.batch_status(&args.id)?
            };
            if ctx.out.json() {
                ctx.out.value(&status)?;
            } else {
                ctx.out.line(&format!(
                    "batch '{}': {} events at positions {}–{}",
                    status.batch, status.total, status.first_position, status.last_position
                ))?;
                let rows: Vec<Vec<String>> = status
                    .groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.group.clone(),
                            g.total.to_string(),
                            g.delivered.to_string(),
                            g.acked.to_string(),
                            g.failed.to_string(),
                            g.dead_lettered.to_string(),
                            g.skipped.to_string(),
                            if g.complete { "yes" } else { "no" }.to_owned(),
                        ]
                    })
                    .collect();
                ctx.out.table(
                    &[
                        "GROUP",
                        "EVENTS",
                        "DELIVERED",
                        "ACKED",
                        "FAILED",
                        "DEAD",
                        "SKIPPED",
                        "COMPLETE",
                    ],
                    &rows,
                )?;
            }
            if args.wait && !status.complete(args.group.as_deref()) {
                return Err(Refused {
                    kind: "timed_out",
                    code: EXIT_INTERNAL,
                    message: format!(
                        "batch '{}' was not settled within {} s",
                        args.id, args.timeout
                    ),
                }
                .into());
            }
            Ok(())
        }
        EventsCommand::Schema(command) => schema(ctx, command),
    }
}

fn append(ctx: &mut Ctx<'_>, args: &AppendArgs) -> Result<()> {
    let data = json_arg(&args.data, "event data")?;
    let expected: ExpectedVersion = args.expect.parse()?;
    let mut event = NewEvent::new(&args.event_type, data);
    event.id = args.id.clone();
    event.metadata.correlation_id = args.correlation_id.clone();
    event.metadata.causation_id = args.causation_id.clone();
    if let Some(text) = &args.metadata {
        match json_arg(text, "--metadata")? {
            Value::Object(map) => event.metadata.extra = map,
            _ => {
                return Err(Error::invalid_input("--metadata", "must be a JSON object").into());
            }
        }
    }
    let result = ctx.open_for_write()?.append_all(
        vec![Append::new(&args.stream, expected, [event])],
        &AppendOptions {
            batch: args.batch.clone(),
        },
    )?;
    ctx.out.either(
        || {
            let s = &result.streams[0];
            if result.duplicate {
                format!(
                    "already appended (a retry): '{}' version {} at position {}",
                    s.stream, s.last_version, s.last_position
                )
            } else {
                format!(
                    "appended to '{}': version {} at position {}",
                    s.stream, s.last_version, s.last_position
                )
            }
        },
        &result,
    )
}

fn print_page(ctx: &mut Ctx<'_>, page: &EventPage) -> Result<()> {
    if ctx.out.json() {
        return ctx.out.value(page);
    }
    let rows: Vec<Vec<String>> = page.events.iter().map(event_row).collect();
    ctx.out
        .table(&["POSITION", "STREAM", "VERSION", "TYPE", "DATA"], &rows)?;
    if let Some(note) = removed_note(&page.removed) {
        ctx.out.line(&note)?;
    }
    if !page.at_end {
        ctx.out.line(&format!("more: --from {}", page.next))?;
    }
    Ok(())
}

fn read(ctx: &mut Ctx<'_>, args: &ReadArgs) -> Result<()> {
    let options = ReadOptions {
        from: args.from,
        backwards: args.backwards,
        limit: args.limit,
        types: args.types.clone(),
        stream_prefix: args.prefix.clone(),
    };
    let store = ctx.open_existing()?;
    let page = match (&args.stream, args.all) {
        (Some(stream), false) => store.read_stream(stream, &options)?,
        _ => store.read_all(&options)?,
    };
    print_page(ctx, &page)
}

/// Prints one event (JSON Lines with `--json`) and flushes, for tails.
fn print_event(ctx: &mut Ctx<'_>, event: &RecordedEvent) -> Result<()> {
    if ctx.out.json() {
        ctx.out.line(&serde_json::to_string(event)?)?;
    } else {
        ctx.out.line(&format!(
            "{}  {}  v{}  {}  {}",
            event.position,
            cell(&event.stream),
            event.version,
            event.event_type,
            cell(&event.data.to_string())
        ))?;
    }
    ctx.out.flush()
}

fn tail(ctx: &mut Ctx<'_>, args: &TailArgs) -> Result<()> {
    let idle = args
        .idle
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|_| Error::invalid_input("--idle", "must be a number of seconds ≥ 0"))?;
    let step = Duration::from_secs(1);
    let mut printed = 0u64;
    let done = |printed: u64| args.max.is_some_and(|max| printed >= max);
    if let Some(group) = &args.group {
        let store = ctx.open_for_write()?;
        let consumer = store.consumer(group, &args.consumer)?;
        let mut quiet_since = Instant::now();
        while !done(printed) {
            let want = args.max.map_or(100, |max| (max - printed).min(100)) as usize;
            let deliveries = consumer.poll_wait(want, step)?;
            if deliveries.is_empty() {
                if idle.is_some_and(|i| quiet_since.elapsed() >= i) {
                    break;
                }
                continue;
            }
            quiet_since = Instant::now();
            for d in &deliveries {
                print_event(ctx, &d.event)?;
                // Printed, then acked: at least once.
                consumer.ack(d)?;
                printed += 1;
            }
        }
        return Ok(());
    }
    let store = ctx.open_existing()?;
    let from = match (args.from, &args.stream) {
        (Some(from), _) => from,
        (None, Some(stream)) => store.stream_info(stream)?.map_or(0, |i| i.version) + 1,
        (None, None) => store.last_position()? + 1,
    };
    let mut options = match &args.stream {
        Some(stream) => SubscriptionOptions::stream(stream.clone()),
        None => SubscriptionOptions::all(),
    };
    options.from = from;
    options.types = args.types.clone();
    let mut sub = store.subscribe(options)?;
    let mut quiet_since = Instant::now();
    while !done(printed) {
        let page = sub.next_page(step)?;
        if page.events.is_empty() && page.removed.is_empty() {
            if idle.is_some_and(|i| quiet_since.elapsed() >= i) {
                break;
            }
            continue;
        }
        quiet_since = Instant::now();
        if let Some(note) = removed_note(&page.removed) {
            if ctx.out.json() {
                ctx.out
                    .line(&json!({"removed_by_retention": page.removed}).to_string())?;
            } else {
                ctx.out.line(&note)?;
            }
        }
        for event in &page.events {
            if done(printed) {
                break;
            }
            print_event(ctx, event)?;
            printed += 1;
        }
    }
    Ok(())
}

fn print_status(ctx: &mut Ctx<'_>, status: &GroupStatus) -> Result<()> {
    if ctx.out.json() {
        return ctx.out.value(status);
    }
    let c = &status.counters;
    let lines = [
        format!("group '{}'", status.name),
        format!(
            "checkpoint {} (cursor {}), lag {}, in flight {}, dead letters {}, replaying {}",
            status.checkpoint,
            status.cursor,
            status.lag,
            status.in_flight,
            status.dead_letters,
            status.replaying
        ),
        format!(
            "delivered {} (redelivered {}), acked {}, retried {}, dead-lettered {} (parked {}), \
             skipped {}, leases expired {}, stale acks {}, replayed {} (acked {}), purged {}, \
             removed by retention before delivery {}",
            c.delivered,
            c.redelivered,
            c.acked,
            c.retried,
            c.dead_lettered,
            c.parked,
            c.skipped,
            c.lease_expired,
            c.stale,
            c.replay_queued,
            c.replay_acked,
            c.purged,
            c.removed_by_retention
        ),
        format!(
            "max deliveries {}, lease {} ms, backoff {}–{} ms{}",
            status.options.max_deliveries,
            status.options.lease_ms,
            status.options.backoff.initial_ms,
            status.options.backoff.max_ms,
            if status.options.backoff.jitter {
                " with jitter"
            } else {
                ""
            }
        ),
    ];
    for line in lines {
        ctx.out.line(&line)?;
    }
    if let Some(note) = removed_note(&status.retention_gaps) {
        ctx.out.line(&note)?;
    }
    Ok(())
}

fn group_options(args: &GroupCreateArgs) -> GroupOptions {
    GroupOptions {
        stream: args.stream.clone(),
        stream_prefix: args.prefix.clone(),
        types: args.types.clone(),
        start: match (args.from, args.start) {
            (Some(p), _) => StartFrom::Position(p),
            (None, StartArg::Beginning) => StartFrom::Beginning,
            (None, StartArg::End) => StartFrom::End,
        },
        max_deliveries: args.max_deliveries,
        lease_ms: args.lease_ms,
        backoff: Backoff {
            initial_ms: args.backoff_ms,
            max_ms: args.backoff_max_ms,
            jitter: !args.no_jitter,
        },
        max_in_flight: args.max_in_flight,
    }
}

fn group(ctx: &mut Ctx<'_>, command: &GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create(args) => {
            let status = ctx
                .open_for_write()?
                .create_group(&args.name, group_options(args))?;
            print_status(ctx, &status)
        }
        GroupCommand::List => {
            let groups = ctx.open_existing()?.list_groups()?;
            if ctx.out.json() {
                return ctx.out.value(&groups);
            }
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| {
                    vec![
                        g.name.clone(),
                        g.checkpoint.to_string(),
                        g.lag.to_string(),
                        g.in_flight.to_string(),
                        g.dead_letters.to_string(),
                        g.counters.acked.to_string(),
                    ]
                })
                .collect();
            ctx.out.table(
                &[
                    "GROUP",
                    "CHECKPOINT",
                    "LAG",
                    "IN FLIGHT",
                    "DEAD LETTERS",
                    "ACKED",
                ],
                &rows,
            )
        }
        GroupCommand::Status { name } => {
            let status = ctx.open_existing()?.group_status(name)?;
            print_status(ctx, &status)
        }
        GroupCommand::Delete { name } => {
            if !ctx.open_for_write()?.delete_group(name)? {
                return Err(Error::not_found(format!("consumer group '{name}'")).into());
            }
            ctx.out.either(
                || format!("deleted consumer group '{name}'"),
                &json!({"group": name, "deleted": true}),
            )
        }
    }
}

/// Prints deliveries; with `--json` each token is the text `ack` and `nack` take.
fn print_deliveries(ctx: &mut Ctx<'_>, deliveries: &[Delivery]) -> Result<()> {
    if ctx.out.json() {
        let mut listed = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let mut value = serde_json::to_value(d)?;
            value["token"] = Value::String(d.token.to_string());
            listed.push(value);
        }
        return ctx.out.value(&listed);
    }
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.token.to_string(),
                cell(&d.event.stream),
                d.event.event_type.clone(),
                d.attempt.to_string(),
                d.lease_expires_at.to_string(),
                cell(&d.event.data.to_string()),
            ]
        })
        .collect();
    ctx.out.table(
        &["TOKEN", "STREAM", "TYPE", "ATTEMPT", "LEASE UNTIL", "DATA"],
        &rows,
    )
}

/// Prints what an ack or nack did; a stale token (its lease expired, or a later
/// attempt is out) did nothing and fails with exit code 4.
fn print_outcome(ctx: &mut Ctx<'_>, token: &DeliveryToken, outcome: &AckOutcome) -> Result<()> {
    let text = match outcome {
        AckOutcome::Acked => format!("acked {token}"),
        AckOutcome::Retrying { not_before } => {
            format!("{token} will be delivered again, not before {not_before}")
        }
        AckOutcome::DeadLettered { reason } => {
            format!("{token} moved to the dead-letter queue ({reason})")
        }
        AckOutcome::Skipped => format!("skipped {token}"),
        AckOutcome::Renewed { lease_expires_at } => {
            format!("{token} is leased until {lease_expires_at}")
        }
        AckOutcome::Stale { reason } => {
            return Err(Refused {
                kind: "stale_delivery",
                code: EXIT_CONFLICT,
                message: format!("delivery {token} did nothing: {reason}"),
            }
            .into());
        }
    };
    ctx.out.either(
        || text,
        &json!({"token": token.to_string(), "result": outcome}),
    )
}

fn nack(ctx: &mut Ctx<'_>, args: &NackArgs) -> Result<()> {
    let token: DeliveryToken = args.token.parse()?;
    let nack = if args.park {
        Nack::Park
    } else if args.skip {
        Nack::Skip
    } else {
        Nack::Retry {
            after_ms: args.retry_after,
        }
    };
    let outcome = ctx.open_for_write()?.nack(&token, &nack, &args.error)?;
    print_outcome(ctx, &token, &outcome)
}

fn dlq(ctx: &mut Ctx<'_>, command: &DlqCommand) -> Result<()> {
    match command {
        DlqCommand::List {
            group,
            after,
            limit,
        } => {
            let letters = ctx.open_existing()?.dead_letters(group, *after, *limit)?;
            if ctx.out.json() {
                return ctx.out.value(&letters);
            }
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|l| {
                    vec![
                        l.position.to_string(),
                        cell(&l.stream),
                        l.event_type.clone(),
                        l.reason.to_string(),
                        l.attempts.to_string(),
                        l.last_failure_at.to_string(),
                        cell(l.error.as_deref().unwrap_or("")),
                    ]
                })
                .collect();
            ctx.out.table(
                &[
                    "POSITION",
                    "STREAM",
                    "TYPE",
                    "REASON",
                    "ATTEMPTS",
                    "LAST FAILURE",
                    "ERROR",
                ],
                &rows,
            )
        }
        DlqCommand::Replay(args) => {
            let n = ctx.open_for_write()?.replay_dead_letters(
                &args.group,
                args.from,
                args.to,
                args.chunk,
            )?;
            ctx.out.either(
                || format!("queued {n} dead letters of '{}' for replay", args.group),
                &json!({"group": args.group, "queued": n}),
            )
        }
        DlqCommand::Purge(args) => {
            let n = ctx
                .open_for_write()?
                .purge_dead_letters(&args.group, args.from, args.to)?;
            ctx.out.either(
                || format!("purged {n} dead letters of '{}'", args.group),
                &json!({"group": args.group, "purged": n}),
            )
        }
    }
}

fn schema(ctx: &mut Ctx<'_>, command: &EventSchemaCommand) -> Result<()> {
    match command {
        EventSchemaCommand::Set {
            event_type,
            file,
            mode: m,
        } => {
            let schema = json_file(file, "schema file")?;
            let result =
                ctx.open_for_write()?
                    .set_event_schema(event_type, schema, mode(m.as_deref())?)?;
            ctx.out.either(
                || {
                    if result.unchanged {
                        format!("'{event_type}' already has this schema (version {})", result.version)
                    } else {
                        format!(
                            "registered version {} of the schema of '{event_type}' ({} mode, {} changes)",
                            result.version,
                            result.compatibility,
                            result.changes.len()
                        )
                    }
                },
                &result,
            )
        }
        EventSchemaCommand::Get { event_type } => {
            let schema = ctx
                .open_existing()?
                .event_schema(event_type)?
                .ok_or_else(|| Error::not_found(format!("schema of event type '{event_type}'")))?;
            if ctx.out.json() {
                return ctx.out.value(&schema);
            }
            ctx.out.line(&format!(
                "event type '{}', {} mode, {} versions; the latest:",
                schema.event_type,
                schema.compatibility,
                schema.versions.len()
            ))?;
            let latest = schema.latest().map_or(Value::Null, |v| v.schema.clone());
            ctx.out.line(&serde_json::to_string_pretty(&latest)?)
        }
        EventSchemaCommand::Check {
            event_type,
            file,
            mode: m,
        } => {
            let schema = json_file(file, "schema file")?;
            let store: Store = ctx.open_existing()?;
            let result = store.check_event_schema(event_type, &schema, mode(m.as_deref())?)?;
            if ctx.out.json() {
                ctx.out.value(&result)?;
            } else {
                for change in &result.changes {
                    ctx.out.line(&format!("change: {change}"))?;
                }
                for (version, change) in &result.refused {
                    ctx.out.line(&format!(
                        "refused under {} (against version {version}): {change}",
                        result.compatibility
                    ))?;
                }
                if result.is_compatible() {
                    ctx.out.line(&format!(
                        "compatible: it would be version {}",
                        result.version
                    ))?;
                }
            }
            if !result.is_compatible() {
                return Err(Error::invalid_input(
                    format!("schema {} for event type '{event_type}'", file.display()),
                    format!(
                        "{} change(s) the {} mode forbids",
                        result.refused.len(),
                        result.compatibility
                    ),
                )
                .into());
            }
            Ok(())
        }
    }
}

pub(crate) fn changefeed(ctx: &mut Ctx<'_>, action: ChangefeedArg) -> Result<()> {
    let store = match action {
        ChangefeedArg::Status => ctx.open_existing()?,
        ChangefeedArg::On | ChangefeedArg::Off => {
            let store = ctx.open_for_write()?;
            store.set_change_feed(matches!(action, ChangefeedArg::On))?;
            store
        }
    };
    let status = store.change_feed_status()?;
    ctx.out.either(
        || {
            format!(
                "the change feed is {}: {} changes in $changes (last at position {})",
                if status.enabled { "on" } else { "off" },
                status.events,
                status.last_position
            )
        },
        &status,
    )
}
