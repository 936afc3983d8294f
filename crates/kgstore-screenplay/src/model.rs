//! The attributes the import writes on each kind of node, as typed structures
//! (the import serializes them; the queries read them back).

use kgstore_core::{Error, Node, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A series node's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesAttrs {
    /// The series' name as given (`The Night Desk`).
    pub name: String,
    /// Its slug, the part of every node name and document key it owns.
    pub slug: String,
}

/// One title-page field, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The key (`Title`, `Episode title`, …).
    pub key: String,
    /// The value (lines joined with `\n`).
    pub value: String,
}

/// A script node's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptAttrs {
    /// The series' slug.
    pub series: String,
    /// The file name, as imported.
    pub file: String,
    /// The document holding the text (`scripts/<series>/<file>`).
    pub document: String,
    /// The SHA-256 of the text.
    pub sha256: String,
    /// The text's length in bytes.
    pub size: u64,
    /// The title page's `Title`, if any.
    pub title: Option<String>,
    /// The title page's `Episode title`, if any.
    pub episode_title: Option<String>,
    /// The season, from the title page or else the file name.
    pub season: Option<u32>,
    /// The episode, from the title page or else the file name.
    pub episode: Option<u32>,
    /// Every title-page field in order, unknown keys included.
    pub title_page: Vec<Field>,
    /// How many scenes it has now.
    pub scenes: usize,
    /// The id the next new scene of this script gets (ids are never reused).
    pub next_scene_id: u64,
}

/// One character's counts in one scene (or, summed, in a series).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speaker {
    /// Canonical name (upper case, no extensions).
    pub name: String,
    /// The names as written in cues (`McCLANE`, `Mcclane`), sorted.
    pub aliases: Vec<String>,
    /// Cues: the "line count" of screenplay tools.
    pub speeches: u64,
    /// Lines of dialogue as written.
    pub lines: u64,
    /// Words of dialogue.
    pub words: u64,
    /// Speeches marked `V.O.`.
    pub voice_over: u64,
    /// Speeches marked `O.S.` / `O.C.`.
    pub off_screen: u64,
    /// Speeches in dual dialogue.
    pub dual: u64,
}

impl Speaker {
    /// The edge attributes of `speaks_in` (the counts without the names).
    pub(crate) fn edge_attributes(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (key, value) in [
            ("speeches", self.speeches),
            ("lines", self.lines),
            ("words", self.words),
            ("voice_over", self.voice_over),
            ("off_screen", self.off_screen),
            ("dual", self.dual),
        ] {
            map.insert(key.to_owned(), Value::from(value));
        }
        map
    }

    /// Adds another's counts and aliases.
    pub(crate) fn add(&mut self, other: &Speaker) {
        self.speeches += other.speeches;
        self.lines += other.lines;
        self.words += other.words;
        self.voice_over += other.voice_over;
        self.off_screen += other.off_screen;
        self.dual += other.dual;
        for alias in &other.aliases {
            if let Err(at) = self.aliases.binary_search(alias) {
                self.aliases.insert(at, alias.clone());
            }
        }
    }
}

/// A scene node's attributes: only what its own text decides, so that a scene
/// whose text is unchanged is never rewritten. Where it stands in its script
/// (ordinal, byte span) is on the script's `contains` edge to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneAttrs {
    /// The series' slug.
    pub series: String,
    /// The script's file name.
    pub file: String,
    /// The scene's id within its script (stable while the scene lives).
    pub id: u64,
    /// The heading as written (without its scene number); `None` for text
    /// before the first heading.
    pub heading: Option<String>,
    /// The scene number written in the heading (`#1A#` → `1A`).
    pub number: Option<String>,
    /// `INT`, `EXT`, `INT/EXT` or `EST`.
    pub int_ext: Option<String>,
    /// The location as written.
    pub location: Option<String>,
    /// The canonical location (upper case, white space collapsed).
    pub location_key: Option<String>,
    /// The time of day as written.
    pub time_of_day: Option<String>,
    /// The canonical time of day.
    pub time_key: Option<String>,
    /// The SHA-256 of the scene's text: its content hash, the key of its embeddings.
    pub sha256: String,
    /// The text's length in bytes.
    pub size: u64,
    /// Element counts (actions, speeches, dialogue lines, …).
    pub counts: Map<String, Value>,
    /// Who speaks, in order of first cue, with their counts.
    pub speakers: Vec<Speaker>,
}

/// Where a scene stands in its script: the `contains` edge's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// 1 for the first heading, 2 for the second …; 0 for text before the first heading.
    pub ordinal: usize,
    /// Byte offset of the scene's first byte in the script's text.
    pub start: usize,
    /// Byte offset just past its last byte.
    pub end: usize,
}

/// A character node's attributes: totals over the series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterAttrs {
    /// The series' slug.
    pub series: String,
    /// Counts summed over every scene.
    #[serde(flatten)]
    pub totals: Speaker,
    /// Scenes the character speaks in.
    pub scenes: u64,
    /// Scripts the character speaks in.
    pub scripts: u64,
}

/// A location node's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationAttrs {
    /// The series' slug.
    pub series: String,
    /// The canonical location.
    pub name: String,
    /// The spellings used in headings, sorted.
    pub spellings: Vec<String>,
    /// Scenes set there.
    pub scenes: u64,
}

/// Serializes attributes into the map a node or an edge holds.
pub(crate) fn to_map(value: &impl Serialize) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::invalid_input(
            "screenplay attributes",
            "not an object",
        )),
        Err(e) => Err(Error::invalid_input("screenplay attributes", e.to_string())),
    }
}

/// Reads a node's attributes back; a node the import did not write in this
/// shape is reported as not a screenplay node.
pub(crate) fn attrs<T: DeserializeOwned>(node: &Node) -> Result<T> {
    serde_json::from_value(Value::Object(node.attributes.clone())).map_err(|e| {
        Error::invalid_input(
            format!("node '{}'", kgstore_core::validate::shorten(&node.name)),
            format!(
                "its attributes are not those of a screenplay {}: {e}",
                node.node_type
            ),
        )
    })
}
