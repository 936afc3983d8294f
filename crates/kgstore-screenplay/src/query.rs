//! The questions a screenplay tool asks of the graph: scenes by character,
//! location, time of day, interior/exterior and episode; characters with their
//! counts; who appears with whom; dialogue search.
//!
//! Every query reads one snapshot (pass a [`kgstore_core::ReadTx`] or a
//! [`kgstore_core::Store`]) of one series.

use std::collections::{BTreeMap, HashMap};

use kgstore_core::{
    Direction, Error, GraphRead, Node, NodeFilter, PageRequest, RelationType, Result,
};
use kgstore_fountain::canonical;
use serde::Serialize;

use crate::import::all_nodes;
use crate::model::{
    CharacterAttrs, Placement, SceneAttrs, ScriptAttrs, SeriesAttrs, Speaker, attrs,
};
use crate::names;

/// Every series in the store, by slug.
pub fn series(reader: &impl GraphRead) -> Result<Vec<SeriesAttrs>> {
    all_nodes(reader, names::SERIES, "series:")?
        .iter()
        .map(attrs)
        .collect()
}

/// The slug of the series `name` names (its name or its slug); with `None`,
/// the store's only series. An error lists the series there are.
pub fn resolve_series(reader: &impl GraphRead, name: Option<&str>) -> Result<String> {
    let all = series(reader)?;
    let list = || {
        let names: Vec<String> = all
            .iter()
            .map(|s| format!("{} ({})", s.name, s.slug))
            .collect();
        if names.is_empty() {
            "the store holds no series; import scripts first".to_owned()
        } else {
            format!("the store holds: {}", names.join(", "))
        }
    };
    match name {
        Some(name) => {
            let slug = names::slug(name)?;
            if all.iter().any(|s| s.slug == slug) {
                Ok(slug)
            } else {
                Err(Error::invalid_input(
                    format!("series {name:?}"),
                    format!("no such series; {}", list()),
                ))
            }
        }
        None => match all.as_slice() {
            [one] => Ok(one.slug.clone()),
            _ => Err(Error::invalid_input(
                "series",
                format!("name one (--series); {}", list()),
            )),
        },
    }
}

/// Which scenes [`scenes`] returns; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneQuery {
    /// Characters who all speak in the scene (any spelling: compared canonically).
    pub characters: Vec<String>,
    /// The location (compared canonically: case and spacing do not matter).
    pub location: Option<String>,
    /// The time of day (`NIGHT`, compared canonically).
    pub time_of_day: Option<String>,
    /// `INT`, `EXT`, `INT/EXT` or `EST` (any case).
    pub int_ext: Option<String>,
    /// Seasons from–to, inclusive; scripts without a season do not match.
    pub seasons: Option<(u32, u32)>,
    /// Episodes from–to, inclusive; scripts without an episode do not match.
    pub episodes: Option<(u32, u32)>,
    /// Only this script (file name).
    pub file: Option<String>,
}

/// A scene as queries return it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SceneRow {
    /// The scene node's name (what `screenplay scene`, `similar` … take).
    pub scene: String,
    /// The script's file name.
    pub file: String,
    /// The script's season.
    pub season: Option<u32>,
    /// The script's episode.
    pub episode: Option<u32>,
    /// Its place in the script (1 for the first heading; 0 before it).
    pub ordinal: usize,
    /// The scene number written in the heading.
    pub number: Option<String>,
    /// The heading as written.
    pub heading: Option<String>,
    /// `INT`, `EXT`, `INT/EXT` or `EST`.
    pub int_ext: Option<String>,
    /// The canonical location.
    pub location: Option<String>,
    /// The canonical time of day.
    pub time_of_day: Option<String>,
    /// Who speaks, in order of first cue.
    pub speakers: Vec<String>,
    /// The content hash.
    pub sha256: String,
}

/// A series loaded for querying: its scripts and scenes, joined.
struct Catalog {
    scripts: BTreeMap<String, ScriptAttrs>,
    /// Scene node name → (attributes, placement), in no order.
    scenes: HashMap<String, (SceneAttrs, Placement)>,
}

impl Catalog {
    fn load(reader: &impl GraphRead, slug: &str) -> Result<Self> {
        let mut scripts = BTreeMap::new();
        let mut placements: HashMap<String, Placement> = HashMap::new();
        for node in all_nodes(reader, names::SCRIPT, &names::prefix("script", slug))? {
            let script: ScriptAttrs = attrs(&node)?;
            for edge in reader.edges_of(&node.name, Direction::Out, &[RelationType::Contains])? {
                if let Ok(p) =
                    serde_json::from_value::<Placement>(serde_json::Value::Object(edge.attributes))
                {
                    placements.insert(edge.to, p);
                }
            }
            scripts.insert(script.file.clone(), script);
        }
        let mut scenes = HashMap::new();
        for node in all_nodes(reader, names::SCENE, &names::prefix("scene", slug))? {
            let Some(placement) = placements.get(&node.name).copied() else {
                continue;
            };
            let scene: SceneAttrs = attrs(&node)?;
            scenes.insert(node.name, (scene, placement));
        }
        Ok(Self { scripts, scenes })
    }

    fn row(&self, name: &str) -> Option<SceneRow> {
        let (scene, placement) = self.scenes.get(name)?;
        let script = self.scripts.get(&scene.file)?;
        Some(SceneRow {
            scene: name.to_owned(),
            file: scene.file.clone(),
            season: script.season,
            episode: script.episode,
            ordinal: placement.ordinal,
            number: scene.number.clone(),
            heading: scene.heading.clone(),
            int_ext: scene.int_ext.clone(),
            location: scene.location_key.clone(),
            time_of_day: scene.time_key.clone(),
            speakers: scene.speakers.iter().map(|s| s.name.clone()).collect(),
            sha256: scene.sha256.clone(),
        })
    }

    fn matches(&self, name: &str, q: &Query) -> bool {
        let Some((scene, _)) = self.scenes.get(name) else {
            return false;
        };
        let Some(script) = self.scripts.get(&scene.file) else {
            return false;
        };
        let in_range = |value: Option<u32>, range: Option<(u32, u32)>| {
            range.is_none_or(|(lo, hi)| value.is_some_and(|v| lo <= v && v <= hi))
        };
        q.characters
            .iter()
            .all(|c| scene.speakers.iter().any(|s| &s.name == c))
            && q.location
                .as_ref()
                .is_none_or(|l| scene.location_key.as_ref() == Some(l))
            && q.time_of_day
                .as_ref()
                .is_none_or(|t| scene.time_key.as_ref() == Some(t))
            && q.int_ext
                .as_ref()
                .is_none_or(|i| scene.int_ext.as_ref() == Some(i))
            && q.file.as_ref().is_none_or(|f| &scene.file == f)
            && in_range(script.season, q.seasons)
            && in_range(script.episode, q.episodes)
    }

    /// The rows of the scenes matching `q`, in story order.
    fn select(&self, q: &Query) -> Vec<SceneRow> {
        let rows = self
            .scenes
            .keys()
            .filter(|name| self.matches(name, q))
            .filter_map(|name| self.row(name))
            .collect();
        self.sorted(rows)
    }

    /// Rows in story order: season, episode, file, ordinal.
    fn sorted(&self, mut rows: Vec<SceneRow>) -> Vec<SceneRow> {
        rows.sort_by(|a, b| {
            let key = |r: &SceneRow| {
                (
                    r.season.unwrap_or(u32::MAX),
                    r.episode.unwrap_or(u32::MAX),
                    r.file.clone(),
                    r.ordinal,
                )
            };
            key(a).cmp(&key(b))
        });
        rows
    }
}

/// A [`SceneQuery`] with its values made canonical.
struct Query {
    characters: Vec<String>,
    location: Option<String>,
    time_of_day: Option<String>,
    int_ext: Option<String>,
    seasons: Option<(u32, u32)>,
    episodes: Option<(u32, u32)>,
    file: Option<String>,
}

impl Query {
    fn of(q: &SceneQuery) -> Result<Self> {
        for (what, range) in [("season", q.seasons), ("episode", q.episodes)] {
            if let Some((lo, hi)) = range
                && lo > hi
            {
                return Err(Error::invalid_input(
                    format!("{what} range {lo}-{hi}"),
                    "its start is after its end",
                ));
            }
        }
        let int_ext = match q
            .int_ext
            .as_deref()
            .map(|s| s.trim().trim_end_matches('.').to_uppercase())
        {
            None => None,
            Some(v) => match v.as_str() {
                "INT" | "EXT" | "EST" => Some(v),
                "INT/EXT" | "INT./EXT" | "I/E" | "INT-EXT" => Some("INT/EXT".to_owned()),
                other => {
                    return Err(Error::invalid_input(
                        format!("INT/EXT {other:?}"),
                        "must be INT, EXT, INT/EXT or EST",
                    ));
                }
            },
        };
        Ok(Self {
            characters: q.characters.iter().map(|c| canonical(c)).collect(),
            location: q.location.as_deref().map(canonical),
            time_of_day: q.time_of_day.as_deref().map(canonical),
            int_ext,
            seasons: q.seasons,
            episodes: q.episodes,
            file: q.file.clone(),
        })
    }
}

/// The scenes of series `slug` that match `query`, in story order (season,
/// episode, file, ordinal).
pub fn scenes(reader: &impl GraphRead, slug: &str, query: &SceneQuery) -> Result<Vec<SceneRow>> {
    let q = Query::of(query)?;
    let catalog = Catalog::load(reader, slug)?;
    Ok(catalog.select(&q))
}

/// One scene of a character's, with what they say in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CharacterScene {
    /// The scene.
    #[serde(flatten)]
    pub scene: SceneRow,
    /// The character's counts in it.
    pub speeches: u64,
    /// Lines of dialogue.
    pub lines: u64,
}

/// A character's scenes across every script of the series, in story order,
/// with their counts in each.
pub fn character_scenes(
    reader: &impl GraphRead,
    slug: &str,
    character: &str,
) -> Result<Vec<CharacterScene>> {
    let name = canonical(character);
    let node = names::character(slug, &name);
    if !reader.contains_node(&node)? {
        return Err(Error::invalid_input(
            format!("character {character:?}"),
            format!("does not speak in series {slug}"),
        ));
    }
    let query = SceneQuery {
        characters: vec![name.clone()],
        ..SceneQuery::default()
    };
    let q = Query::of(&query)?;
    let catalog = Catalog::load(reader, slug)?;
    Ok(catalog
        .select(&q)
        .into_iter()
        .map(|row| {
            let counts = catalog
                .scenes
                .get(&row.scene)
                .and_then(|(s, _)| s.speakers.iter().find(|s| s.name == name).cloned())
                .unwrap_or_default();
            CharacterScene {
                scene: row,
                speeches: counts.speeches,
                lines: counts.lines,
            }
        })
        .collect())
}

/// A character with their totals over the series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CharacterRow {
    /// Counts over every scene (`speeches` is the screenplay tools' line count).
    #[serde(flatten)]
    pub totals: Speaker,
    /// Scenes they speak in.
    pub scenes: u64,
    /// Scripts they speak in.
    pub scripts: u64,
}

/// Every character of the series, most speeches first (then by name).
pub fn characters(reader: &impl GraphRead, slug: &str) -> Result<Vec<CharacterRow>> {
    let mut rows: Vec<CharacterRow> =
        all_nodes(reader, names::CHARACTER, &names::prefix("character", slug))?
            .iter()
            .map(|node| {
                let a: CharacterAttrs = attrs(node)?;
                Ok(CharacterRow {
                    totals: a.totals,
                    scenes: a.scenes,
                    scripts: a.scripts,
                })
            })
            .collect::<Result<_>>()?;
    rows.sort_by(|a, b| {
        b.totals
            .speeches
            .cmp(&a.totals.speeches)
            .then_with(|| a.totals.name.cmp(&b.totals.name))
    });
    Ok(rows)
}

/// Two characters who speak in the same scenes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// One (the smaller name, or the character asked about).
    pub a: String,
    /// The other.
    pub b: String,
    /// How many scenes both speak in.
    pub scenes: u64,
}

/// Who appears with whom: every pair of the series by name, or with
/// `character`, that character's partners, most shared scenes first.
pub fn co_appearances(
    reader: &impl GraphRead,
    slug: &str,
    character: Option<&str>,
) -> Result<Vec<Pair>> {
    let relation = RelationType::parse(names::APPEARS_WITH)?;
    let strip = |name: &str| names::tail(name, "character", slug).to_owned();
    let mut pairs = Vec::new();
    for node in all_nodes(reader, names::CHARACTER, &names::prefix("character", slug))? {
        for edge in reader.edges_of(&node.name, Direction::Out, std::slice::from_ref(&relation))? {
            let scenes = edge
                .attributes
                .get("scenes")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            pairs.push(Pair {
                a: strip(&edge.from),
                b: strip(&edge.to),
                scenes,
            });
        }
    }
    let Some(character) = character else {
        pairs.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
        return Ok(pairs);
    };
    let name = canonical(character);
    if !reader.contains_node(&names::character(slug, &name))? {
        return Err(Error::invalid_input(
            format!("character {character:?}"),
            format!("does not speak in series {slug}"),
        ));
    }
    let mut mine: Vec<Pair> = pairs
        .into_iter()
        .filter_map(|p| match (p.a == name, p.b == name) {
            (true, _) => Some(p),
            (_, true) => Some(Pair {
                a: p.b,
                b: p.a,
                scenes: p.scenes,
            }),
            _ => None,
        })
        .collect();
    mine.sort_by(|x, y| y.scenes.cmp(&x.scenes).then_with(|| x.b.cmp(&y.b)));
    Ok(mine)
}

/// A line of dialogue that matched a search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DialogueHit {
    /// The scene it is spoken in.
    pub scene: SceneRow,
    /// Who speaks it.
    pub character: String,
    /// What they say (the speech's dialogue, lines joined with `\n`).
    pub dialogue: String,
}

/// Speeches whose dialogue holds `text` (case-insensitive), optionally only
/// `character`'s, in story order. This narrows scenes with the store's text
/// filter (each scene holds its speeches as observations, `NAME: dialogue`)
/// and then matches each speech: a substring match, not a ranked search.
pub fn search_dialogue(
    reader: &impl GraphRead,
    slug: &str,
    text: &str,
    character: Option<&str>,
) -> Result<Vec<DialogueHit>> {
    if text.trim().is_empty() {
        return Err(Error::invalid_input(
            "dialogue search",
            "give some text to look for",
        ));
    }
    let needle = text.to_lowercase();
    let who = character.map(canonical);
    let catalog = Catalog::load(reader, slug)?;
    let filter = NodeFilter::default()
        .of_type(names::SCENE)
        .with_name_prefix(names::prefix("scene", slug))
        .containing(text);
    let mut page = PageRequest::first(10_000);
    let mut found: Vec<Node> = Vec::new();
    loop {
        let got = reader.list_nodes(&filter, &page)?;
        found.extend(got.items);
        match got.next_cursor {
            Some(cursor) => page = page.after(Some(cursor)),
            None => break,
        }
    }
    let mut hits: Vec<(SceneRow, usize, DialogueHit)> = Vec::new();
    for node in found {
        let Some(row) = catalog.row(&node.name) else {
            continue;
        };
        for (i, observation) in node.observations.iter().enumerate() {
            let Some((speaker, dialogue)) = observation.split_once(": ") else {
                continue;
            };
            if who.as_ref().is_some_and(|w| w != speaker)
                || !dialogue.to_lowercase().contains(&needle)
            {
                continue;
            }
            hits.push((
                row.clone(),
                i,
                DialogueHit {
                    scene: row.clone(),
                    character: speaker.to_owned(),
                    dialogue: dialogue.to_owned(),
                },
            ));
        }
    }
    let order: Vec<SceneRow> = catalog.sorted(hits.iter().map(|(r, _, _)| r.clone()).collect());
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, r)| (r.scene.as_str(), i))
        .collect();
    hits.sort_by_key(|(r, i, _)| {
        (
            rank.get(r.scene.as_str()).copied().unwrap_or(usize::MAX),
            *i,
        )
    });
    Ok(hits.into_iter().map(|(_, _, h)| h).collect())
}
