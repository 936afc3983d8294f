//! The grammar of `kgstore events …` and `kgstore changefeed …`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Event commands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Append an event to a stream: its data as JSON, or - to read it from stdin.
    Append(AppendArgs),
    /// Read a stream's events, or the whole log's (--all), a page at a time.
    Read(ReadArgs),
    /// Print events as they are appended, until interrupted (or --max / --idle).
    Tail(TailArgs),
    /// List streams with their versions.
    Streams(StreamsArgs),
    /// Set a stream's retention limits (which apply at once).
    Retention(RetentionArgs),
    /// Delete a stream for good (a tombstone).
    DeleteStream(DeleteStreamArgs),
    /// Consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Take up to --max deliveries of a group (each with the token that settles it).
    Poll(PollArgs),
    /// Ack a delivery by its token (GROUP/POSITION/ATTEMPT).
    Ack(AckArgs),
    /// Nack a delivery by its token: retry (after the backoff), --park or --skip.
    Nack(NackArgs),
    /// A group's dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Batches of events.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// JSON Schemas for event types, with compatibility modes.
    #[command(subcommand)]
    Schema(EventSchemaCommand),
}

/// What an append expects of the stream.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The stream.
    pub stream: String,
    /// The event's data as JSON, or - to read it from stdin.
    pub data: String,
    /// The event's type.
    #[arg(long = "type", short = 't', default_value = "event")]
    pub event_type: String,
    /// The event's id (a retried append with the same id returns the original position).
    #[arg(long)]
    pub id: Option<String>,
    /// What the stream's version must be: any, none, exists, or a version number.
    #[arg(long, default_value = "any")]
    pub expect: String,
    /// The batch the event belongs to.
    #[arg(long)]
    pub batch: Option<String>,
    /// The correlation id.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The causation id.
    #[arg(long)]
    pub causation_id: Option<String>,
    /// Further metadata, as one JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
}

/// `events read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The stream (or --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub stream: Option<String>,
    /// Read every stream: the whole log, by position.
    #[arg(long)]
    pub all: bool,
    /// The first position (or version, in a stream) to read, inclusive.
    #[arg(long)]
    pub from: Option<u64>,
    /// Newest first.
    #[arg(long)]
    pub backwards: bool,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Only events of this type (repeatable).
    #[arg(long = "type", short = 't')]
    pub types: Vec<String>,
    /// Only streams whose names start with this (with --all).
    #[arg(long)]
    pub prefix: Option<String>,
}

/// `events tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The stream (every stream if not given).
    #[arg(conflicts_with = "all")]
    pub stream: Option<String>,
    /// Every stream (the default).
    #[arg(long)]
    pub all: bool,
    /// Consume as a member of this consumer group: each event printed is acked.
    #[arg(long, conflicts_with_all = ["stream", "from"])]
    pub group: Option<String>,
    /// The consumer's id in the group.
    #[arg(long, default_value = "cli")]
    pub consumer: String,
    /// Start at this position (or version); the default is after the current end.
    #[arg(long)]
    pub from: Option<u64>,
    /// Only events of this type (repeatable).
    #[arg(long = "type", short = 't')]
    pub types: Vec<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop after this many seconds without an event.
    #[arg(long)]
    pub idle: Option<f64>,
}

/// `events streams`.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    /// Only streams whose names start with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `events retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// The stream.
    pub stream: String,
    /// Remove events older than this many seconds.
    #[arg(long)]
    pub max_age: Option<u64>,
    /// Keep only the newest this many events.
    #[arg(long)]
    pub max_count: Option<u64>,
    /// Remove events of versions below this one.
    #[arg(long)]
    pub truncate_before: Option<u64>,
}

/// `events delete-stream`.
#[derive(Debug, Args)]
pub struct DeleteStreamArgs {
    /// The stream.
    pub stream: String,
    /// What the stream's version must be: any, none, exists, or a version number.
    #[arg(long, default_value = "any")]
    pub expect: String,
}

/// Where a new group starts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StartArg {
    /// At the first event.
    Beginning,
    /// After the last event there is now.
    End,
}

/// Consumer-group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a consumer group.
    Create(GroupCreateArgs),
    /// List the consumer groups.
    List,
    /// A group's position, counters and dead letters.
    Status {
        /// The group.
        name: String,
    },
    /// Delete a group with its deliveries and dead letters.
    Delete {
        /// The group.
        name: String,
    },
}

/// `events group create`.
#[derive(Debug, Args)]
pub struct GroupCreateArgs {
    /// The group's name.
    pub name: String,
    /// Only events of this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Only events of streams whose names start with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only events of this type (repeatable).
    #[arg(long = "type", short = 't')]
    pub types: Vec<String>,
    /// Where it starts.
    #[arg(long, value_enum, default_value = "beginning", conflicts_with = "from")]
    pub start: StartArg,
    /// Start at this position instead.
    #[arg(long)]
    pub from: Option<u64>,
    /// Deliveries of one event before it is dead-lettered.
    #[arg(long, default_value_t = 10)]
    pub max_deliveries: u32,
    /// How long a delivery's lease lasts, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub lease_ms: u64,
    /// The first retry's backoff, in milliseconds (doubling on each failure).
    #[arg(long, default_value_t = 1_000)]
    pub backoff_ms: u64,
    /// The longest backoff, in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    pub backoff_max_ms: u64,
    /// Backoffs exactly as computed, without random jitter.
    #[arg(long)]
    pub no_jitter: bool,
    /// Most deliveries leased at once.
    #[arg(long, default_value_t = 1_000)]
    pub max_in_flight: u32,
}

/// `events poll`.
#[derive(Debug, Args)]
pub struct PollArgs {
    /// The group.
    pub group: String,
    /// The consumer's id.
    #[arg(long, default_value = "cli")]
    pub consumer: String,
    /// At most this many deliveries.
    #[arg(long, default_value_t = 10)]
    pub max: usize,
}

/// `events ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The delivery's token, as `poll` printed it.
    pub token: String,
}

/// `events nack`.
#[derive(Debug, Args)]
pub struct NackArgs {
    /// The delivery's token, as `poll` printed it.
    pub token: String,
    /// Retry no sooner than this many milliseconds from now (the group's backoff
    /// applies when it is longer).
    #[arg(long, conflicts_with_all = ["park", "skip"])]
    pub retry_after: Option<u64>,
    /// Move it to the dead-letter queue now.
    #[arg(long, conflicts_with = "skip")]
    pub park: bool,
    /// Settle it without handling it.
    #[arg(long)]
    pub skip: bool,
    /// What went wrong.
    #[arg(long, default_value = "")]
    pub error: String,
}

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a group's dead letters.
    List {
        /// The group.
        group: String,
        /// Only those after this position.
        #[arg(long)]
        after: Option<u64>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver dead letters again (one, with --from P --to P, or a range), a chunk
    /// per transaction; the group's checkpoint does not move.
    Replay(DlqRangeArgs),
    /// Remove dead letters.
    Purge(DlqRangeArgs),
}

/// A range of a group's dead letters.
#[derive(Debug, Args)]
pub struct DlqRangeArgs {
    /// The group.
    pub group: String,
    /// The first position (default: all).
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// The last position (default: all).
    #[arg(long, default_value_t = u64::MAX)]
    pub to: u64,
    /// Dead letters per transaction (replay).
    #[arg(long, default_value_t = 500)]
    pub chunk: usize,
}

/// Batch commands.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// A batch's progress in every group.
    Status(BatchStatusArgs),
}

/// `events batch status`.
#[derive(Debug, Args)]
pub struct BatchStatusArgs {
    /// The batch id.
    pub id: String,
    /// Wait until every group (or --group) has settled the batch.
    #[arg(long)]
    pub wait: bool,
    /// Only this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Give up waiting after this many seconds (exit 1 if still not settled).
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
}

/// Event-schema commands.
#[derive(Debug, Subcommand)]
pub enum EventSchemaCommand {
    /// Register the next version of a type's schema (refused if its mode forbids the change).
    Set {
        /// The event type.
        event_type: String,
        /// The JSON Schema file, or - for stdin.
        file: PathBuf,
        /// The compatibility mode (kept for later versions).
        #[arg(long)]
        mode: Option<String>,
    },
    /// Show a type's schema versions.
    Get {
        /// The event type.
        event_type: String,
    },
    /// Say whether a schema would be accepted as the next version, and what changed.
    Check {
        /// The event type.
        event_type: String,
        /// The JSON Schema file, or - for stdin.
        file: PathBuf,
        /// Check under this mode instead of the type's.
        #[arg(long)]
        mode: Option<String>,
    },
}

/// `changefeed on|off|status`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ChangefeedArg {
    /// Record every graph change in `$changes`, from the next transaction on.
    On,
    /// Stop recording.
    Off,
    /// Whether it is on, and how many changes it holds.
    Status,
}
