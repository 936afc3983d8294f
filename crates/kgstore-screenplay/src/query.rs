//! The questions a screenplay tool asks of the graph: scenes by character,
//! location, time of day, interior/exterior and episode; characters with their
//! counts; who appears with whom; dialogue search.
//!
//! Every query reads one snapshot (pass a [`kgstore_core::ReadTx`] or a
//! [`kgstore_core::Store`]) of one series.

use std::collections::{BTreeMap, HashMap};

use kgstore_core::filter::MAX_PAGE_LIMIT;
use kgstore_core::search::{self, TermQuery};
use kgstore_core::{
    Direction, Error, GraphRead, Node, NodeFilter, RelationType, Result, SearchQuery,
};
use kgstore_fountain::canonical;
use serde::Serialize;

use crate::import::{all_nodes, list_all};
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

/// The scripts of a series, and the placements of their scenes as they are
/// needed: what turns a scene node into a [`SceneRow`]. Scripts are few (one
/// per episode); scenes are read only when a query selects them.
struct Scripts<'r, R: GraphRead> {
    reader: &'r R,
    slug: String,
    /// File name → the script's attributes.
    by_file: BTreeMap<String, ScriptAttrs>,
    /// File name → (scene node name → its placement), read per script on first use.
    placements: HashMap<String, HashMap<String, Placement>>,
}

impl<'r, R: GraphRead> Scripts<'r, R> {
    fn load(reader: &'r R, slug: &str) -> Result<Self> {
        let mut by_file = BTreeMap::new();
        for node in all_nodes(reader, names::SCRIPT, &names::prefix("script", slug))? {
            let script: ScriptAttrs = attrs(&node)?;
            by_file.insert(script.file.clone(), script);
        }
        Ok(Self {
            reader,
            slug: slug.to_owned(),
            by_file,
            placements: HashMap::new(),
        })
    }

    /// Where the scenes of `file` stand: its script's `contains` edges.
    fn placements(&mut self, file: &str) -> Result<&HashMap<String, Placement>> {
        if !self.placements.contains_key(file) {
            let mut map = HashMap::new();
            let script = names::script(&self.slug, file);
            for edge in self
                .reader
                .edges_of(&script, Direction::Out, &[RelationType::Contains])?
            {
                if let Ok(p) =
                    serde_json::from_value::<Placement>(serde_json::Value::Object(edge.attributes))
                {
                    map.insert(edge.to, p);
                }
            }
            self.placements.insert(file.to_owned(), map);
        }
        Ok(self.placements.entry(file.to_owned()).or_default())
    }

    /// The row of a scene node, with its attributes; `None` for a scene no
    /// script of the series places (not one the import wrote).
    fn row(&mut self, node: &Node) -> Result<Option<(SceneRow, SceneAttrs)>> {
        let scene: SceneAttrs = attrs(node)?;
        let Some(placement) = self.placements(&scene.file)?.get(&node.name).copied() else {
            return Ok(None);
        };
        let Some(script) = self.by_file.get(&scene.file) else {
            return Ok(None);
        };
        let row = SceneRow {
            scene: node.name.clone(),
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
        };
        Ok(Some((row, scene)))
    }

    /// The files of the scripts whose season, episode and name `q` accepts.
    fn selected(&self, q: &Query) -> Vec<String> {
        let in_range = |value: Option<u32>, range: Option<(u32, u32)>| {
            range.is_none_or(|(lo, hi)| value.is_some_and(|v| lo <= v && v <= hi))
        };
        self.by_file
            .values()
            .filter(|s| {
                q.file.as_ref().is_none_or(|f| &s.file == f)
                    && in_range(s.season, q.seasons)
                    && in_range(s.episode, q.episodes)
            })
            .map(|s| s.file.clone())
            .collect()
    }

    /// The scene nodes matching `q`, asked of the store: a character's
    /// `speaks_in` edges name their scenes (intersected for several
    /// characters, each then read by name); otherwise one listing per
    /// selected script (or one for the whole series) with the attribute
    /// conditions as the listing's filter.
    fn matching(&self, q: &Query) -> Result<Vec<Node>> {
        let files = self.selected(q);
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = NodeFilter::default().of_type(names::SCENE);
        for (pointer, value) in [
            ("/location_key", &q.location),
            ("/time_key", &q.time_of_day),
            ("/int_ext", &q.int_ext),
        ] {
            if let Some(value) = value {
                filter = filter.where_eq(pointer, serde_json::Value::from(value.as_str()));
            }
        }
        if let Some((first, rest)) = q.characters.split_first() {
            let mut names = self.speaks_in(first)?;
            for other in rest {
                let theirs = self.speaks_in(other)?;
                names.retain(|n| theirs.contains(n));
            }
            let wanted: std::collections::BTreeSet<&str> =
                files.iter().map(String::as_str).collect();
            let scene_prefix = names::prefix("scene", &self.slug);
            let mut out = Vec::new();
            for name in names {
                // The file is in the name (scene ids hold no `#`): scenes of
                // other scripts are not read.
                let file = name
                    .strip_prefix(&scene_prefix)
                    .and_then(|rest| rest.rsplit_once('#'))
                    .map(|(file, _)| file);
                if !file.is_some_and(|f| wanted.contains(f)) {
                    continue;
                }
                if let Some(node) = self.reader.find_node(&name)?
                    && filter.matches(&node)
                {
                    out.push(node);
                }
            }
            return Ok(out);
        }
        if files.len() == self.by_file.len() {
            return list_all(
                self.reader,
                &filter.with_name_prefix(names::prefix("scene", &self.slug)),
            );
        }
        let mut out = Vec::new();
        for file in &files {
            let by_script = filter
                .clone()
                .with_name_prefix(names::scene_prefix(&self.slug, file))
                .where_eq("/file", serde_json::Value::from(file.as_str()));
            out.extend(list_all(self.reader, &by_script)?);
        }
        Ok(out)
    }

    /// The scene names a character's `speaks_in` edges lead to (none for a
    /// name that does not speak in the series).
    fn speaks_in(&self, character: &str) -> Result<std::collections::BTreeSet<String>> {
        let node = names::character(&self.slug, character);
        if !self.reader.contains_node(&node)? {
            return Ok(Default::default());
        }
        let relation = RelationType::parse(names::SPEAKS_IN)?;
        Ok(self
            .reader
            .edges_of(&node, Direction::Out, std::slice::from_ref(&relation))?
            .into_iter()
            .map(|e| e.to)
            .collect())
    }

    /// The rows of the scenes matching `q`, in story order.
    fn select(&mut self, q: &Query) -> Result<Vec<(SceneRow, SceneAttrs)>> {
        let mut rows = Vec::new();
        for node in self.matching(q)? {
            if let Some(row) = self.row(&node)? {
                rows.push(row);
            }
        }
        rows.sort_by(|(a, _), (b, _)| story_order(a).cmp(&story_order(b)));
        Ok(rows)
    }
}

/// The sort key of story order: season, episode, file, ordinal (scripts
/// without a season or episode last).
fn story_order(r: &SceneRow) -> (u32, u32, &str, usize) {
    (
        r.season.unwrap_or(u32::MAX),
        r.episode.unwrap_or(u32::MAX),
        r.file.as_str(),
        r.ordinal,
    )
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
/// episode, file, ordinal). The store is asked for the matching scene nodes
/// (a character's `speaks_in` edges, attribute filters, the selected scripts'
/// scene names); no other scene is read.
pub fn scenes(reader: &impl GraphRead, slug: &str, query: &SceneQuery) -> Result<Vec<SceneRow>> {
    let q = Query::of(query)?;
    let mut scripts = Scripts::load(reader, slug)?;
    Ok(scripts
        .select(&q)?
        .into_iter()
        .map(|(row, _)| row)
        .collect())
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
    if !reader.contains_node(&names::character(slug, &name))? {
        return Err(Error::invalid_input(
            format!("character {character:?}"),
            format!("does not speak in series {slug}"),
        ));
    }
    let query = SceneQuery {
        characters: vec![name.clone()],
        ..SceneQuery::default()
    };
    let mut scripts = Scripts::load(reader, slug)?;
    Ok(scripts
        .select(&Query::of(&query)?)?
        .into_iter()
        .map(|(row, scene)| {
            let counts = scene
                .speakers
                .into_iter()
                .find(|s| s.name == name)
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

/// A speech that matched a dialogue search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DialogueHit {
    /// The scene it is spoken in.
    pub scene: SceneRow,
    /// Who speaks it.
    pub character: String,
    /// What they say (the speech's dialogue, lines joined with `\n`).
    pub dialogue: String,
    /// How many of the query's distinct words the dialogue holds (the last
    /// word also as a prefix, as the store's search matches it); 0 when it
    /// holds the query only as a substring.
    pub words: usize,
    /// The scene's score in the store's ranked search (BM25F over the scene
    /// node's text: its dialogue, heading, location and names).
    pub score: f64,
}

/// Speeches whose dialogue holds a word of `text` or `text` itself
/// (case-insensitive), optionally only `character`'s, most relevant first.
///
/// This is the store's ranked search ([`GraphRead::search`], `docs/search.md`)
/// over the series' scene nodes, which hold their speeches as observations
/// (`NAME: dialogue`); each scene it finds is then cut into the speeches that
/// match. Order: speeches holding more of the query's words first, then by
/// their scene's score, then in story order. Every speech whose dialogue holds
/// `text` as a substring is among the hits (the search's substring guarantee
/// finds its scene).
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
    let who = character.map(canonical);
    let words = QueryWords::new(text);
    let prefix = names::prefix("scene", slug);
    let mut scripts = Scripts::load(reader, slug)?;
    let mut query = SearchQuery::new(text)
        .of_type(names::SCENE)
        .limit(MAX_PAGE_LIMIT);
    let mut hits: Vec<(usize, DialogueHit)> = Vec::new();
    loop {
        let page = reader.search(&query)?;
        for found in &page.items {
            if !found.name.starts_with(&prefix) {
                continue;
            }
            let Some(node) = reader.find_node(&found.name)? else {
                continue;
            };
            let Some((row, _)) = scripts.row(&node)? else {
                continue;
            };
            for (i, observation) in node.observations.iter().enumerate() {
                let Some((speaker, dialogue)) = observation.split_once(": ") else {
                    continue;
                };
                if who.as_ref().is_some_and(|w| w != speaker) {
                    continue;
                }
                let Some(held) = words.held_by(dialogue) else {
                    continue;
                };
                hits.push((
                    i,
                    DialogueHit {
                        scene: row.clone(),
                        character: speaker.to_owned(),
                        dialogue: dialogue.to_owned(),
                        words: held,
                        score: found.score,
                    },
                ));
            }
        }
        match page.next_cursor {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    hits.sort_by(|(i, a), (j, b)| {
        b.words
            .cmp(&a.words)
            .then_with(|| b.score.total_cmp(&a.score))
            .then_with(|| story_order(&a.scene).cmp(&story_order(&b.scene)))
            .then_with(|| i.cmp(j))
    });
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}

/// A dialogue query's words, matched as the store's search matches them.
struct QueryWords {
    /// The distinct folded words, the last one matched also as a prefix.
    terms: TermQuery,
    /// The trimmed query in lower case: the substring every hit holds.
    needle: String,
}

impl QueryWords {
    fn new(text: &str) -> Self {
        let trimmed = text.trim();
        let mut tokens = search::text::tokens(trimmed);
        // Repeated words count once; the last token keeps its place (it is
        // the one matched as a prefix).
        let last = tokens.pop();
        let mut terms: Vec<String> = Vec::new();
        for token in tokens {
            if !terms.contains(&token) && last.as_ref() != Some(&token) {
                terms.push(token);
            }
        }
        terms.extend(last);
        Self {
            terms: TermQuery::new(terms),
            needle: search::text::lowercase(trimmed),
        }
    }

    /// How many of the words `dialogue` holds, if it holds one or holds the
    /// whole query as a substring.
    fn held_by(&self, dialogue: &str) -> Option<usize> {
        let tokens = search::text::tokens(dialogue);
        let held = (0..self.terms.len())
            .filter(|&i| tokens.iter().any(|t| self.terms.freq_of(i, t).is_some()))
            .count();
        (held > 0 || search::text::lowercase(dialogue).contains(&self.needle)).then_some(held)
    }
}
