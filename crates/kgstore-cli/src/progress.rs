//! Progress bars on stderr for long commands, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kgstore::{Phase, Progress};

/// A progress bar that follows kgstore's progress reports, or nothing.
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
    phase: Option<Phase>,
}

impl Bar {
    /// A bar for `what`, drawn only if `enabled`.
    pub(crate) fn new(enabled: bool, what: &str) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>8} {msg:<7} [{bar:30}] {human_pos}/{human_len} {per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what.to_owned());
            bar
        });
        Self { bar, phase: None }
    }

    /// A bar counting bytes for `what`, drawn only if `enabled`.
    pub(crate) fn bytes(enabled: bool, what: &str) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what.to_owned());
            bar
        });
        Self {
            bar,
            phase: Some(Phase::Bytes),
        }
    }

    /// Takes a progress report.
    pub(crate) fn update(&mut self, progress: Progress) {
        let Some(bar) = &self.bar else { return };
        if self.phase != Some(progress.phase) {
            self.phase = Some(progress.phase);
            bar.set_message(match progress.phase {
                Phase::Nodes => "nodes",
                Phase::Edges => "edges",
                Phase::Schemas => "schemas",
                Phase::Bytes => "bytes",
                Phase::Documents => "documents",
                Phase::Events => "events",
            });
        }
        bar.set_length(progress.total.max(progress.done));
        bar.set_position(progress.done);
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
