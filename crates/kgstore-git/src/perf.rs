//! The git backend's figures for `Store::metrics`: objects on disk, loose and packed.

use std::fs;
use std::path::Path;

use kgstore_core::BackendFigure;

/// Loose objects and packs in the repository's `objects` folder, counted now.
pub(crate) fn figures(objects: &Path) -> Vec<BackendFigure> {
    let mut loose = 0u64;
    if let Ok(entries) = fs::read_dir(objects) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                loose += fs::read_dir(entry.path()).map_or(0, |files| files.count() as u64);
            }
        }
    }
    let packs = fs::read_dir(objects.join("pack")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count() as u64
    });
    vec![
        BackendFigure::gauge(
            "loose_objects",
            loose,
            "objects stored one per file (git gc or kgstore optimize packs them)",
        ),
        BackendFigure::gauge("packs", packs, "pack files in the repository"),
    ]
}
