//! The `tracing` subscriber of the command line (and of servers built on it, such
//! as `kgstore mcp`): human-readable lines on stderr, JSON lines in a file, never
//! anything on stdout, which belongs to the command's output (or to a protocol).
//!
//! Quiet by default: nothing is logged to stderr unless `-v` (`info`), `-vv`
//! (`debug`) or `-vvv` (`trace`) is given, or `KGSTORE_LOG` holds a filter in
//! `RUST_LOG` syntax (`kgstore=debug`, `kgstore_sqlite=trace,warn`, …). A log file
//! gets `info` when neither says otherwise: asking for a file asks for a log.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::Subscriber;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable holding a log filter in `RUST_LOG` syntax.
pub const LOG_ENV: &str = "KGSTORE_LOG";

/// Where log lines go. There is deliberately no stdout: a command's stdout is its
/// output, and a server's may be its protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogWriter {
    /// Human-readable lines on stderr (colours when it is a terminal).
    Stderr,
    /// JSON lines appended to this file, one event per line with its spans (the
    /// form `kgstore log-review` reads).
    JsonFile(PathBuf),
}

/// What to log and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// How many `-v` were given: 0 quiet, 1 `info`, 2 `debug`, 3 or more `trace`
    /// (for kgstore's own crates).
    pub verbosity: u8,
    /// A filter in `RUST_LOG` syntax (from `KGSTORE_LOG`), used unless `-v` was given.
    pub filter: Option<String>,
    /// The writers. Stderr without `-v` or a filter logs nothing.
    pub writers: Vec<LogWriter>,
}

impl LogConfig {
    /// The configuration of the command line: `-v` count, `--log-file`, and
    /// `KGSTORE_LOG` from the environment.
    pub fn from_cli(verbosity: u8, log_file: Option<PathBuf>) -> Self {
        let mut writers = vec![LogWriter::Stderr];
        writers.extend(log_file.map(LogWriter::JsonFile));
        Self {
            verbosity,
            filter: std::env::var(LOG_ENV).ok().filter(|f| !f.trim().is_empty()),
            writers,
        }
    }

    /// The filter for a writer: `-v` first, then `KGSTORE_LOG`, then the writer's default.
    fn filter_for(&self, writer: &LogWriter) -> Result<EnvFilter> {
        let directives = match (self.verbosity, &self.filter, writer) {
            (0, Some(filter), _) => filter.clone(),
            (0, None, LogWriter::Stderr) => "off".to_owned(),
            (0, None, LogWriter::JsonFile(_)) | (1, _, _) => "kgstore=info".to_owned(),
            (2, _, _) => "kgstore=debug".to_owned(),
            _ => "kgstore=trace".to_owned(),
        };
        EnvFilter::builder()
            .parse(&directives)
            .with_context(|| format!("{LOG_ENV}={directives:?} is not a log filter"))
    }

    /// What the user should hear about the configuration before the command runs:
    /// each target of `KGSTORE_LOG` (when it is in use) that names none of kgstore's
    /// crates. Only kgstore's crates log, so such a target matches nothing, and a
    /// typo (`kgstroe=debug`), or a word that is not a level (`verbose`), would
    /// leave the log silently empty.
    pub fn notes(&self) -> Vec<String> {
        let Some(filter) = self.filter.as_deref().filter(|_| self.verbosity == 0) else {
            return Vec::new();
        };
        filter
            .split(',')
            .filter_map(|directive| {
                let directive = directive.trim();
                let target = directive.split(['[', '=']).next().unwrap_or("").trim();
                let bare = !directive.contains(['[', '=']);
                let is_level = bare
                    && (target
                        .parse::<tracing::level_filters::LevelFilter>()
                        .is_ok());
                (!target.is_empty() && !is_level && !target.starts_with("kgstore")).then(|| {
                    format!(
                        "note: {LOG_ENV}: '{target}' names no kgstore crate, so it logs \
                         nothing (targets are kgstore's crates and modules: kgstore, \
                         kgstore_core, kgstore_sqlite, kgstore_core::observe, …; a level \
                         alone is error, warn, info, debug or trace)"
                    )
                })
            })
            .collect()
    }

    /// Whether anything would be logged at all.
    fn is_quiet(&self) -> bool {
        self.verbosity == 0
            && self.filter.is_none()
            && self.writers.iter().all(|w| *w == LogWriter::Stderr)
    }
}

/// Builds the subscriber `config` describes: one layer per writer, each with its filter.
pub fn subscriber(
    config: &LogConfig,
) -> Result<impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>> {
    type Boxed<S> = Box<dyn Layer<S> + Send + Sync>;
    let mut layers: Vec<Boxed<tracing_subscriber::Registry>> = Vec::new();
    for writer in &config.writers {
        let filter = config.filter_for(writer)?;
        match writer {
            LogWriter::Stderr => layers.push(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter)
                    .boxed(),
            ),
            LogWriter::JsonFile(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening the log file {}", path.display()))?;
                layers.push(
                    fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_span_list(true)
                        .with_writer(Mutex::new(file))
                        .with_filter(filter)
                        .boxed(),
                );
            }
        }
    }
    Ok(tracing_subscriber::registry().with(layers))
}

/// Keeps the subscriber installed by [`install`] for this thread, if it could not be
/// made the process's (one was already); dropping it ends that.
#[must_use = "the subscriber stays installed only while the guard lives"]
pub struct LogGuard {
    _thread: Option<tracing::dispatcher::DefaultGuard>,
}

/// Installs the subscriber `config` describes: for the whole process if none is
/// installed yet, else for this thread while the returned guard lives. Installs
/// nothing when nothing would be logged.
pub fn install(config: &LogConfig) -> Result<LogGuard> {
    if config.is_quiet() {
        return Ok(LogGuard { _thread: None });
    }
    let subscriber = subscriber(config)?;
    let dispatch = tracing::Dispatch::new(subscriber);
    let thread = match tracing::dispatcher::set_global_default(dispatch.clone()) {
        Ok(()) => None,
        Err(_) => Some(tracing::dispatcher::set_default(&dispatch)),
    };
    Ok(LogGuard { _thread: thread })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn directives(config: &LogConfig, writer: &LogWriter) -> String {
        config.filter_for(writer).unwrap().to_string()
    }

    #[test]
    fn quiet_by_default_and_verbosity_wins_over_the_environment() {
        let file = LogWriter::JsonFile("x.log".into());
        let mut config = LogConfig::default();
        assert_eq!(directives(&config, &LogWriter::Stderr), "off");
        assert_eq!(directives(&config, &file), "kgstore=info");
        config.filter = Some("kgstore_sqlite=trace".into());
        assert_eq!(
            directives(&config, &LogWriter::Stderr),
            "kgstore_sqlite=trace"
        );
        config.verbosity = 2;
        assert_eq!(directives(&config, &LogWriter::Stderr), "kgstore=debug");
        config.verbosity = 9;
        assert_eq!(directives(&config, &file), "kgstore=trace");
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_the_variable() {
        let config = LogConfig {
            filter: Some("kgstore=loud".into()),
            ..LogConfig::default()
        };
        let err = config.filter_for(&LogWriter::Stderr).unwrap_err();
        assert!(format!("{err:#}").contains(LOG_ENV), "{err:#}");
    }
}
