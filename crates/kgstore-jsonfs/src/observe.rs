//! What the JSON-files backend reports to `tracing` and to `Store::metrics`: the
//! recovery of what an interrupted writer left, and the figures of its recoveries.

use kgstore_core::BackendFigure;
use kgstore_core::observe;

use crate::layout::RecoveryReport;

/// Reports each action of a recovery (one `info` event and one count each).
pub(crate) fn report_recovery(report: &RecoveryReport) {
    for (action, paths) in [
        ("journal_replayed", &report.rolled_forward),
        ("transaction_completed", &report.completed),
        ("journal_discarded", &report.discarded),
        ("temp_removed", &report.temps_removed),
        ("left_for_writer", &report.left_in_place),
    ] {
        for path in paths {
            observe::recovery(action, path);
        }
    }
    if !report.is_clean() {
        tracing::warn!(
            journals_replayed = report.rolled_forward.len(),
            transactions_completed = report.completed.len(),
            journals_discarded = report.discarded.len(),
            temps_removed = report.temps_removed.len(),
            left_in_place = report.left_in_place.len(),
            "recovered what an interrupted writer left"
        );
    }
}

/// The figures of the recoveries this handle made.
pub(crate) fn figures(report: &RecoveryReport) -> Vec<BackendFigure> {
    let count = |paths: &Vec<std::path::PathBuf>| paths.len() as u64;
    vec![
        BackendFigure::counter(
            "journal_replays",
            count(&report.rolled_forward),
            "committed journals of interrupted transactions rolled forward",
        ),
        BackendFigure::counter(
            "transactions_completed",
            count(&report.completed),
            "one-file transactions that had committed as their writer stopped, logged",
        ),
        BackendFigure::counter(
            "journals_discarded",
            count(&report.discarded),
            "journals of transactions that had not committed, removed",
        ),
        BackendFigure::counter(
            "temps_removed",
            count(&report.temps_removed),
            "temporary files of interrupted writes removed",
        ),
    ]
}
