//! Fountain screenplays as a kgstore knowledge graph (issue 15): series,
//! scripts, scenes, characters and locations as nodes, who speaks where and
//! who appears with whom as edges, each script's raw text as a document, and
//! scene embeddings as blobs keyed by content hash.
//!
//! - [`import()`] parses Fountain files ([`kgstore_fountain`]) and writes them in
//!   one transaction, touching only what changed: re-importing an edited
//!   script updates the scenes whose text changed and deletes vanished ones;
//!   importing the same file again writes nothing.
//! - [`export`] gives a script back byte for byte, or one scene's text.
//! - [`query`] answers scenes by character, location, time of day,
//!   interior/exterior and season/episode ranges; characters with counts; who
//!   appears with whom; a character's scenes in story order; dialogue search.
//! - [`embed`] stores caller-computed scene vectors and finds similar scenes
//!   by exact cosine similarity.
//!
//! `docs/screenplays.md` draws the graph model and lists the commands
//! (`kgstore screenplay …`).
//!
//! ```
//! use kgstore_core::Store;
//! use kgstore_screenplay::{ImportOptions, Source, import, query};
//!
//! let store = Store::memory();
//! let text = "Title: Pilot\n\nINT. HOUSE - NIGHT\n\nMARA\nHello.\n\nEXT. SEA - DAY\n\nTEO\nHi.\n";
//! let report = import(&store, &[Source::new("S01E01.fountain", text)], &ImportOptions::default())?;
//! assert_eq!(report.scripts[0].scenes_added, 2);
//! let night = query::SceneQuery { time_of_day: Some("night".into()), ..Default::default() };
//! let rows = query::scenes(&store, "pilot", &night)?;
//! assert_eq!(rows[0].speakers, ["MARA"]);
//! assert_eq!(kgstore_screenplay::export::script_text(&store, "pilot", "S01E01.fountain")?, text.as_bytes());
//! // Importing the same text again changes nothing.
//! assert!(import(&store, &[Source::new("S01E01.fountain", text)], &ImportOptions::default())?.is_unchanged());
//! # Ok::<(), kgstore_core::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod embed;
pub mod export;
mod import;
pub mod model;
pub mod names;
pub mod query;

pub use import::{
    Change, FOUNTAIN_CONTENT_TYPE, ImportOptions, ImportReport, ScriptReport, Source, import,
    is_story, read_sources,
};
