//! The `kgstore` command line. `main` only calls [`main_entry`]; everything else
//! lives here so that tests can reach it.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cli_events;
mod commands;
mod input;
pub mod log_review;
pub mod logging;
mod output;
pub mod perf_record;
mod progress;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::{CommandFactory, FromArgMatches};
use kgstore::{Error, ErrorKind};

pub use cli::Cli;
use output::Output;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: an internal, I/O or backend error.
pub const EXIT_INTERNAL: i32 = 1;
/// Exit code: invalid input (arguments, JSON, names, schemas, cycles).
pub const EXIT_INVALID: i32 = 2;
/// Exit code: a node, edge, consumer group, batch or other thing that does not exist.
pub const EXIT_NOT_FOUND: i32 = 3;
/// Exit code: a conflict (already exists, stale version, has dependents).
pub const EXIT_CONFLICT: i32 = 4;
/// Exit code: the store is locked by another process.
pub const EXIT_LOCKED: i32 = 5;
/// Exit code: damaged data (a corrupt store or backup).
pub const EXIT_CORRUPT: i32 = 6;

/// A refusal that is the CLI's own rather than the library's: a stale delivery
/// token (nothing was done; exit 4 like other conflicts) or a wait that timed out
/// (exit 1). Its `kind` is what `--json` errors report.
#[derive(Debug)]
pub struct Refused {
    /// The `kind` of a `--json` error.
    pub kind: &'static str,
    /// The exit code.
    pub code: i32,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The exit code for an error.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if let Some(refused) = error.downcast_ref::<Refused>() {
        return refused.code;
    }
    match error.downcast_ref::<Error>().map(Error::kind) {
        Some(
            ErrorKind::NodeNotFound
            | ErrorKind::EdgeNotFound
            | ErrorKind::DocumentNotFound
            | ErrorKind::NotFound,
        ) => EXIT_NOT_FOUND,
        Some(
            ErrorKind::InvalidInput
            | ErrorKind::Validation
            | ErrorKind::DependencyCycle
            | ErrorKind::Unsupported,
        ) => EXIT_INVALID,
        Some(
            ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::HasDependents
            | ErrorKind::StreamDeleted,
        ) => EXIT_CONFLICT,
        Some(ErrorKind::Locked) => EXIT_LOCKED,
        Some(ErrorKind::Corrupt) => EXIT_CORRUPT,
        _ => EXIT_INTERNAL,
    }
}

/// Runs the binary: parses the process's arguments, runs the command, prints any
/// error as one line on stderr and returns the exit code. A panic is reported as
/// an internal error, never as a backtrace.
pub fn main_entry() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error (a bug in kgstore, please report it): {what}"
        );
    }));
    let args: Vec<OsString> = std::env::args_os().collect();
    std::panic::catch_unwind(move || run(args)).unwrap_or(EXIT_INTERNAL)
}

/// Parses `args` (the first is the program name), runs the command and returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    // From `args`, as given: `std::env::args()` panics on an argument that is not
    // UTF-8, which is exactly what clap refuses.
    let json = args.iter().any(|a| a == "--json");
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| {
            let mut cli = Cli::from_arg_matches(&matches)?;
            cli.store_from_env =
                matches.value_source("store") == Some(clap::parser::ValueSource::EnvVariable);
            Ok(cli)
        });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    EXIT_OK
                }
                _ => {
                    let message = usage_error_line(&e.to_string());
                    let mut stderr = std::io::stderr().lock();
                    let _ = if json {
                        let line = serde_json::json!({"error": {"kind": "invalid_input", "message": message, "exit_code": EXIT_INVALID}});
                        writeln!(stderr, "{line}")
                    } else {
                        writeln!(stderr, "error: {message}")
                    };
                    EXIT_INVALID
                }
            };
        }
    };
    let logging = match &cli.command {
        cli::Command::Mcp(args) => {
            commands::mcp_log_config(cli.verbose, cli.log_file.clone(), args)
        }
        _ => logging::LogConfig::from_cli(cli.verbose, cli.log_file.clone()),
    };
    for note in logging.notes() {
        let _ = writeln!(std::io::stderr(), "{note}");
    }
    let _logging = match logging::install(&logging) {
        Ok(guard) => guard,
        Err(e) => {
            let e = e.context("setting up the log");
            report_error(&e, cli.json, EXIT_INVALID);
            return EXIT_INVALID;
        }
    };
    let mut out = Output::new(cli.json);
    let show_progress = std::io::stderr().is_terminal();
    match commands::execute(&cli, &mut out, show_progress) {
        Ok(()) => {
            let _ = out.flush();
            EXIT_OK
        }
        Err(e) if is_broken_pipe(&e) => {
            // The reader went away (`kgstore export | head`): nothing more to say.
            EXIT_OK
        }
        Err(e) if e.downcast_ref::<commands::Quiet>().is_some() => {
            let _ = out.flush();
            e.downcast_ref::<commands::Quiet>()
                .map_or(EXIT_INTERNAL, |quiet| quiet.0)
        }
        Err(e) => {
            let _ = out.flush();
            let code = exit_code(&e);
            report_error(&e, cli.json, code);
            code
        }
    }
}

/// Whether an error comes from writing into a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|layer| {
        layer
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Condenses clap's multi-line usage error into one line: the error and its tips,
/// then where to read more (the usage block is left to `--help`). The arguments
/// clap lists under "were not provided:" join that sentence, comma-separated.
fn usage_error_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut listing = false;
    let mut more = String::from("see --help");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("error: ") {
            listing = rest.ends_with(':');
            parts.push(rest.to_owned());
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            listing = false;
            parts.push(tip.to_owned());
        } else if let Some(usage) = line.strip_prefix("Usage: ") {
            listing = false;
            // The command's words, up to its first argument or option: the usage
            // of `node create` starts with its required `--type <NODE_TYPE>`.
            let command: Vec<&str> = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect();
            more = format!("see {} --help", command.join(" "));
        } else if line.starts_with("For more information") {
            listing = false;
        } else if let (true, Some(last)) = (listing, parts.last_mut()) {
            if !last.ends_with(':') {
                last.push(',');
            }
            last.push(' ');
            last.push_str(line);
        } else {
            parts.push(line.to_owned());
        }
    }
    parts.push(more);
    parts.join("; ")
}

/// Prints an error as one line on stderr (JSON with `--json`).
fn report_error(error: &anyhow::Error, json: bool, code: i32) {
    // Each layer once: a source whose text the layer above already quotes is skipped.
    let mut message = String::new();
    for layer in error.chain().map(ToString::to_string) {
        if !message.contains(&layer) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&layer);
        }
    }
    let mut message = message.replace('\n', " ");
    if error
        .downcast_ref::<Error>()
        .is_some_and(|e| e.kind() == ErrorKind::Locked)
    {
        // The transaction that waited was not written (an import in batches may
        // have committed earlier batches); the holder is usually a long write (an
        // import, a restore) that ends by itself.
        message.push_str(
            "; the transaction that waited was not written: retry when it is done, \
             or wait longer with ?lock_timeout_ms=N in the store URL",
        );
    }
    let kind = match (
        error.downcast_ref::<Error>(),
        error.downcast_ref::<Refused>(),
    ) {
        (Some(e), _) => e.kind().as_str(),
        (None, Some(refused)) => refused.kind,
        (None, None) => "internal",
    };
    let mut stderr = std::io::stderr().lock();
    if json {
        let line =
            serde_json::json!({"error": {"kind": kind, "message": message, "exit_code": code}});
        let _ = writeln!(stderr, "{line}");
    } else {
        let _ = writeln!(stderr, "error: {message}");
    }
}
