//! A parser and printer for [Fountain](https://fountain.io/syntax) 1.1, the
//! plain-text screenplay format, written for kgstore's screenplay import.
//!
//! - [`parse`] reads any UTF-8 text (a byte-order mark and `\r\n` included)
//!   into a [`Script`]: every [`Element`] of the syntax with the byte
//!   [`Span`] it was read from. The spans tile the text, so
//!   [`Script::to_fountain`] gives it back byte for byte, and so does each
//!   scene's [`Scene::text`]. Bytes that are not UTF-8, and binary data, are a
//!   [`ParseError`] with the offending offset. No input makes it panic, and it
//!   runs in linear time.
//! - [`print`] writes a [`Document`] (elements without positions) as canonical
//!   Fountain, adding blank lines and forcing markers where needed, and refuses
//!   a document it cannot write so that it reads back the same.
//! - [`Script::scenes`], [`Scene::speeches`], [`Scene::characters`],
//!   [`Script::characters`] and [`Script::co_appearances`] give what an import
//!   stores: scene ordinals, numbers, heading parts (interior/exterior,
//!   location, time of day), spans, counts; speeches with canonical character
//!   names, extensions (`V.O.`, `O.S.`), dual dialogue and line counts.
//!
//! ```
//! use kgstore_fountain::{Element, IntExt, parse};
//!
//! let text = "\
//! Title: The Night Desk
//! Author: kgstore
//!
//! INT. ARCHIVE - NIGHT #1#
//!
//! Rows of shelves. A lamp hums.
//!
//! MARA (V.O.)
//! (quietly)
//! Nobody files anything at night.
//!
//! TEO ^
//! Somebody does.
//!
//! CUT TO:
//! ";
//! let script = parse(text)?;
//! assert_eq!(script.to_fountain(), text); // byte for byte
//! assert_eq!(script.title_page().and_then(|t| t.get("title")), Some("The Night Desk"));
//!
//! let scenes = script.scenes();
//! let scene = &scenes[0];
//! let parts = scene.parts().unwrap();
//! assert_eq!(parts.int_ext, Some(IntExt::Interior));
//! assert_eq!((parts.location.as_str(), parts.time_of_day.as_deref()), ("ARCHIVE", Some("NIGHT")));
//! assert_eq!(scene.heading.and_then(|h| h.number.as_deref()), Some("1"));
//!
//! let speeches = scene.speeches();
//! assert_eq!(speeches[0].character, "MARA");
//! assert!(speeches[0].cue.is_voice_over());
//! assert_eq!(speeches[1].dual_with, Some(0)); // TEO speaks at the same time
//! assert!(matches!(scene.elements().last().map(|e| &e.value), Some(Element::Transition { .. })));
//!
//! // The canonical printer reads back what it writes.
//! let printed = kgstore_fountain::print(&script.document())?;
//! assert_eq!(parse(printed)?.document(), script.document());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `docs/screenplays.md` in the repository describes the rules, the element
//! model, and where this parser reads a text differently from Jouvence.
#![forbid(unsafe_code)]

mod episode;
mod error;
mod heading;
mod lines;
mod model;
mod parse;
mod print;
mod scenes;
mod script;
pub mod synthetic;
mod text;

pub use episode::SeasonEpisode;
pub use error::{ParseError, PrintError};
pub use heading::{HeadingParts, IntExt, TIME_WORDS, is_time_of_day};
pub use model::{
    Cue, Document, Element, ElementKind, ExtensionKind, LineEnding, SceneHeading, Span, Spanned,
    TitleField, TitlePage, canonical,
};
pub use print::{normalize, print};
pub use scenes::{CharacterStats, CoAppearance, Scene, SceneCounts, Speech, character_name};
pub use script::{Script, parse};
