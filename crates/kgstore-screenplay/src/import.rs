//! Importing Fountain files: parse every file first, then write the graph and
//! the documents in one transaction, touching only what changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use kgstore_core::documents::WriteOptions;
use kgstore_core::{
    Direction, DocumentRead, Edge, EdgeKey, Error, GraphRead, Node, NodeFilter, OnDependents,
    PageRequest, RelationType, Result, Store, WriteTx,
};
use kgstore_fountain::{Element, SeasonEpisode, canonical};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{
    CharacterAttrs, Field, LocationAttrs, Placement, SceneAttrs, ScriptAttrs, SeriesAttrs, Speaker,
    attrs, to_map,
};
use crate::names;

/// The content type of a script's document, whatever its file is called.
pub const FOUNTAIN_CONTENT_TYPE: &str = "text/vnd.fountain; charset=utf-8";

/// One file to import: its name (the last part of its path) and its bytes.
#[derive(Clone, Debug)]
pub struct Source {
    /// Where it was read from, for messages.
    pub origin: PathBuf,
    /// The file name it is stored under.
    pub file: String,
    /// Its bytes, as read.
    pub bytes: Vec<u8>,
}

impl Source {
    /// A source from bytes in memory, named `file`.
    pub fn new(file: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        let file = file.into();
        Self {
            origin: PathBuf::from(&file),
            file,
            bytes: bytes.into(),
        }
    }
}

/// Reads the files named by `paths`: a file is taken as it is, a folder gives
/// its `.fountain` files (any case, not recursing), by name. Two files with the
/// same name are refused, since they would be the same script.
pub fn read_sources(paths: &[impl AsRef<Path>]) -> Result<Vec<Source>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
                let entry = entry.map_err(|e| Error::io(path, e))?;
                let p = entry.path();
                let is_fountain = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("fountain"));
                if !is_fountain {
                    continue;
                }
                // A script that cannot be read (a link to a file that is gone) fails
                // the import, as a named one does, rather than being left out
                // without a word; a folder is not searched.
                match std::fs::metadata(&p) {
                    Ok(meta) if meta.is_file() => found.push(p),
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::invalid_input(
                            format!("file {}", p.display()),
                            "is not a regular file (a pipe, a device)",
                        ));
                    }
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.to_path_buf());
        }
    }
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::invalid_input(
                    format!("file {}", path.display()),
                    "its name is not UTF-8 text, and it names the script",
                )
            })?
            .to_owned();
        if let Some(other) = seen.insert(file.clone(), path.clone()) {
            return Err(Error::invalid_input(
                format!("file {}", path.display()),
                format!(
                    "has the same name as {}: both would be script {file:?}",
                    other.display()
                ),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        sources.push(Source {
            origin: path,
            file,
            bytes,
        });
    }
    Ok(sources)
}

/// How an import names the series of its scripts.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The series every script belongs to; without it, each script's title
    /// page `Title` names its series.
    pub series: Option<String>,
}

/// What happened to one node, edge or document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It was new.
    Created,
    /// It was there and changed (its version went up).
    Updated,
    /// It was there, the same.
    Unchanged,
}

/// What the import did to one script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScriptReport {
    /// The series' slug.
    pub series: String,
    /// The file name.
    pub file: String,
    /// The script node.
    pub script: Change,
    /// The document holding the text.
    pub document: Change,
    /// Scenes now in the script.
    pub scenes: usize,
    /// Scenes that are new.
    pub scenes_added: usize,
    /// Scenes whose text changed.
    pub scenes_changed: usize,
    /// Scenes whose text is the same.
    pub scenes_unchanged: usize,
    /// Scenes no longer in the script, deleted.
    pub scenes_removed: usize,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// One entry per script, in the order given.
    pub scripts: Vec<ScriptReport>,
    /// Nodes created, updated and deleted (all kinds).
    pub nodes_created: u64,
    /// Nodes whose content changed.
    pub nodes_updated: u64,
    /// Nodes deleted (vanished scenes, characters and locations left without a scene).
    pub nodes_deleted: u64,
    /// Edges created.
    pub edges_created: u64,
    /// Edges whose content changed.
    pub edges_updated: u64,
    /// Edges deleted.
    pub edges_deleted: u64,
    /// Documents written.
    pub documents_written: u64,
}

impl ImportReport {
    /// Whether the import changed nothing at all.
    pub fn is_unchanged(&self) -> bool {
        self.nodes_created == 0
            && self.nodes_updated == 0
            && self.nodes_deleted == 0
            && self.edges_created == 0
            && self.edges_updated == 0
            && self.edges_deleted == 0
            && self.documents_written == 0
    }
}

/// A scene ready to write, before it has an id.
struct PlannedScene {
    placement: Placement,
    attrs: SceneAttrs,
    dialogue: Vec<String>,
}

/// A parsed script ready to write.
struct PlannedScript {
    series_name: String,
    slug: String,
    file: String,
    text: String,
    attrs: ScriptAttrs,
    scenes: Vec<PlannedScene>,
}

/// Imports `sources` in one transaction: everything or, on any error, nothing.
/// Every file is parsed and checked before the store is touched.
///
/// Re-importing a script matches its new scenes to the stored ones (same text
/// first, then same heading): unchanged scenes are left as
/// they are, changed ones are updated in place (their versions go up),
/// vanished ones are deleted and new ones get fresh ids. Importing the same
/// files again writes nothing.
pub fn import(store: &Store, sources: &[Source], options: &ImportOptions) -> Result<ImportReport> {
    let planned = plan(sources, options)?;
    store.write(|tx| {
        tx.set_message(message(&planned))?;
        let mut w = Writer {
            tx,
            report: ImportReport::default(),
        };
        let mut by_series: BTreeMap<&str, Vec<&PlannedScript>> = BTreeMap::new();
        for script in &planned {
            by_series.entry(&script.slug).or_default().push(script);
        }
        let mut reports: Vec<(usize, ScriptReport)> = Vec::new();
        for (slug, scripts) in by_series {
            w.ensure_series(slug, &scripts)?;
            let mut placed = Vec::new();
            for script in scripts {
                let (report, scenes) = w.write_script(script)?;
                let index = planned
                    .iter()
                    .position(|p| std::ptr::eq(p, script))
                    .unwrap_or(usize::MAX);
                reports.push((index, report));
                placed.push((script, scenes));
            }
            w.refresh_series(slug)?;
            for (script, scenes) in placed {
                w.write_scene_edges(script, &scenes)?;
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        w.report.scripts = reports.into_iter().map(|(_, r)| r).collect();
        Ok(w.report)
    })
}

fn message(planned: &[PlannedScript]) -> String {
    match planned {
        [one] => format!("screenplay import: {} ({})", one.file, one.series_name),
        many => format!("screenplay import: {} scripts", many.len()),
    }
}

/// Parses and checks every source; nothing is written.
fn plan(sources: &[Source], options: &ImportOptions) -> Result<Vec<PlannedScript>> {
    let mut out: Vec<PlannedScript> = Vec::with_capacity(sources.len());
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for source in sources {
        names::check_file_name(&source.file)?;
        let subject = || format!("script {}", source.origin.display());
        let script = kgstore_fountain::parse(source.bytes.clone())
            .map_err(|e| Error::invalid_input(subject(), e.to_string()))?;
        let title_page = script.title_page();
        let get = |key: &str| title_page.and_then(|t| t.get(key)).map(str::to_owned);
        let title = get("title");
        let series_name = match (&options.series, &title) {
            (Some(series), _) => series.clone(),
            (None, Some(title)) if !title.trim().is_empty() => title.trim().to_owned(),
            _ => {
                return Err(Error::invalid_input(
                    subject(),
                    "has no Title on a title page to name its series by; name the series (--series)",
                ));
            }
        };
        let slug = names::slug(&series_name)?;
        if !seen.insert((slug.clone(), source.file.clone())) {
            return Err(Error::invalid_input(
                subject(),
                format!("script {:?} of series {slug} is given twice", source.file),
            ));
        }
        let season_episode = title_page
            .and_then(SeasonEpisode::from_title_page)
            .or_else(|| SeasonEpisode::from_file_name(&source.file));
        let mut scenes = Vec::new();
        for scene in script
            .prologue()
            .filter(is_story)
            .into_iter()
            .chain(script.scenes())
        {
            let text = scene.text();
            let speeches = scene.speeches();
            let characters = scene.characters_from(&speeches);
            let counts = scene.counts_with(&characters);
            let parts = scene.parts();
            let speakers = characters
                .iter()
                .map(|c| {
                    let mut aliases = c.aliases.clone();
                    aliases.sort();
                    aliases.dedup();
                    Speaker {
                        name: c.name.clone(),
                        aliases,
                        speeches: c.speeches as u64,
                        lines: c.lines as u64,
                        words: c.words as u64,
                        voice_over: c.voice_over as u64,
                        off_screen: c.off_screen as u64,
                        dual: c.dual as u64,
                    }
                })
                .collect();
            let location = parts
                .as_ref()
                .map(|p| p.location.clone())
                .filter(|l| !l.trim().is_empty());
            let time_of_day = parts.as_ref().and_then(|p| p.time_of_day.clone());
            let attrs = SceneAttrs {
                series: slug.clone(),
                file: source.file.clone(),
                id: 0,
                heading: scene.heading.map(|h| h.text.clone()),
                number: scene.heading.and_then(|h| h.number.clone()),
                int_ext: parts
                    .as_ref()
                    .and_then(|p| p.int_ext)
                    .map(|i| i.as_str().to_owned()),
                location_key: location.as_deref().map(canonical),
                location,
                time_key: time_of_day.as_deref().map(canonical),
                time_of_day,
                sha256: names::sha256_hex(text.as_bytes()),
                size: text.len() as u64,
                counts: counts_map(&counts),
                speakers,
            };
            let dialogue = speeches
                .iter()
                .map(|s| format!("{}: {}", s.character, s.dialogue))
                .collect();
            scenes.push(PlannedScene {
                placement: Placement {
                    ordinal: scene.ordinal,
                    start: scene.span.start,
                    end: scene.span.end,
                },
                attrs,
                dialogue,
            });
        }
        let fields: Vec<Field> = title_page
            .map(|t| {
                t.fields
                    .iter()
                    .map(|f| Field {
                        key: f.key.clone(),
                        value: f.value.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let episode_title = get("episode title");
        let text = script.into_source();
        let attrs = ScriptAttrs {
            series: slug.clone(),
            file: source.file.clone(),
            document: names::document(&slug, &source.file),
            sha256: names::sha256_hex(text.as_bytes()),
            size: text.len() as u64,
            title,
            episode_title,
            season: season_episode.map(|s| s.season),
            episode: season_episode.map(|s| s.episode),
            title_page: fields,
            scenes: scenes.len(),
            next_scene_id: 0,
        };
        kgstore_core::documents::key::check_key(&attrs.document)?;
        out.push(PlannedScript {
            series_name,
            slug,
            file: source.file.clone(),
            text,
            attrs,
            scenes,
        });
    }
    Ok(out)
}

/// Whether text before the first heading is a scene of its own (a cold open):
/// it holds action, a cue, lyrics or centred text. Sections, synopses, notes,
/// transitions (`FADE IN:`) and page breaks there are not a scene; they stay in
/// the script's text, which export gives back whole.
pub fn is_story(prologue: &kgstore_fountain::Scene<'_>) -> bool {
    prologue.elements().iter().any(|e| {
        matches!(
            e.value,
            Element::Action { .. }
                | Element::Character(_)
                | Element::Lyrics { .. }
                | Element::Centered { .. }
        )
    })
}

fn counts_map(c: &kgstore_fountain::SceneCounts) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in [
        ("actions", c.actions),
        ("action_words", c.action_words),
        ("speeches", c.speeches),
        ("dialogue_lines", c.dialogue_lines),
        ("dialogue_words", c.dialogue_words),
        ("parentheticals", c.parentheticals),
        ("lyrics", c.lyrics),
        ("transitions", c.transitions),
        ("centered", c.centered),
        ("notes", c.notes),
        ("sections", c.sections),
        ("synopses", c.synopses),
        ("page_breaks", c.page_breaks),
        ("characters", c.characters),
    ] {
        map.insert(key.to_owned(), Value::from(value as u64));
    }
    map
}

/// A stored scene of a script being re-imported.
struct OldScene {
    name: String,
    id: u64,
    sha256: String,
    heading: Option<String>,
    ordinal: usize,
    used: bool,
}

/// Writes through a transaction, only what differs, counting what it does.
struct Writer<'t, 's> {
    tx: &'t mut WriteTx<'s>,
    report: ImportReport,
}

impl Writer<'_, '_> {
    /// Creates the node, or replaces its observations and attributes when they
    /// differ (its tags, status, dependencies and the rest are the user's, kept).
    fn put_node(&mut self, node: Node) -> Result<Change> {
        match self.tx.find_node(&node.name)? {
            None => {
                self.tx.create_node(node)?;
                self.report.nodes_created += 1;
                Ok(Change::Created)
            }
            Some(old)
                if old.node_type == node.node_type
                    && old.attributes == node.attributes
                    && old.observations == node.observations =>
            {
                Ok(Change::Unchanged)
            }
            Some(mut old) => {
                old.node_type = node.node_type;
                old.attributes = node.attributes;
                old.observations = node.observations;
                self.tx.update_node(old, None)?;
                self.report.nodes_updated += 1;
                Ok(Change::Updated)
            }
        }
    }

    /// Creates the edge, or replaces its attributes, weight and direction when
    /// they differ.
    fn put_edge(&mut self, edge: Edge) -> Result<Change> {
        match self.tx.find_edge(&edge.key())? {
            None => {
                self.tx.create_edge(edge)?;
                self.report.edges_created += 1;
                Ok(Change::Created)
            }
            Some(old)
                if old.attributes == edge.attributes
                    && old.metadata.weight == edge.metadata.weight
                    && old.metadata.bidirectional == edge.metadata.bidirectional =>
            {
                Ok(Change::Unchanged)
            }
            Some(mut old) => {
                old.attributes = edge.attributes;
                old.metadata.weight = edge.metadata.weight;
                old.metadata.bidirectional = edge.metadata.bidirectional;
                self.tx.update_edge(old, None)?;
                self.report.edges_updated += 1;
                Ok(Change::Updated)
            }
        }
    }

    fn delete_node(&mut self, name: &str) -> Result<()> {
        let report = self.tx.delete_node(name, OnDependents::Detach)?;
        self.report.nodes_deleted += report.deleted.len() as u64;
        self.report.edges_deleted += report.edges_removed;
        Ok(())
    }

    fn delete_edge(&mut self, key: &EdgeKey) -> Result<()> {
        self.tx.delete_edge(key)?;
        self.report.edges_deleted += 1;
        Ok(())
    }

    /// Every node of a type whose name starts with `prefix`.
    fn nodes(&self, node_type: &str, prefix: &str) -> Result<Vec<Node>> {
        all_nodes(&*self.tx, node_type, prefix)
    }

    fn ensure_series(&mut self, slug: &str, scripts: &[&PlannedScript]) -> Result<()> {
        let name = names::series(slug);
        if self.tx.contains_node(&name)? {
            return Ok(());
        }
        let series_name = scripts
            .first()
            .map_or_else(|| slug.to_owned(), |s| s.series_name.clone());
        let attrs = SeriesAttrs {
            name: series_name,
            slug: slug.to_owned(),
        };
        self.put_node(Node::new(name, names::SERIES)?.with_attributes(to_map(&attrs)?))?;
        Ok(())
    }

    /// Writes a script's document, its node and its scene nodes (deleting the
    /// scenes that vanished); the scene names in order, with their placements.
    fn write_script(
        &mut self,
        script: &PlannedScript,
    ) -> Result<(ScriptReport, Vec<(String, Placement)>)> {
        let slug = &script.slug;
        let script_name = names::script(slug, &script.file);
        let old_attrs: Option<ScriptAttrs> = match self.tx.find_node(&script_name)? {
            Some(node) => Some(attrs(&node)?),
            None => None,
        };
        let mut old = self.old_scenes(&script_name)?;
        // Match new scenes to stored ones: the same text first, then the same
        // heading (in order). A scene whose heading and text both changed is new.
        let mut ids: Vec<Option<u64>> = vec![None; script.scenes.len()];
        let rules: [fn(&PlannedScene, &OldScene) -> bool; 2] = [
            |new, old| new.attrs.sha256 == old.sha256,
            |new, old| new.attrs.heading == old.heading,
        ];
        for rule in rules {
            for (i, new) in script.scenes.iter().enumerate() {
                if ids[i].is_some() {
                    continue;
                }
                if let Some(o) = old.iter_mut().find(|o| !o.used && rule(new, o)) {
                    o.used = true;
                    ids[i] = Some(o.id);
                }
            }
        }
        let mut next_id = match &old_attrs {
            Some(a) => a.next_scene_id,
            None => script
                .scenes
                .iter()
                .map(|s| s.placement.ordinal as u64 + 1)
                .max()
                .unwrap_or(1),
        };
        let mut report = ScriptReport {
            series: slug.clone(),
            file: script.file.clone(),
            script: Change::Unchanged,
            document: Change::Unchanged,
            scenes: script.scenes.len(),
            scenes_added: 0,
            scenes_changed: 0,
            scenes_unchanged: 0,
            scenes_removed: 0,
        };
        // The document.
        let doc_key = &script.attrs.document;
        let stored = self.tx.find_document_meta(doc_key)?;
        if stored.as_ref().map(|m| m.sha256.to_hex()) != Some(script.attrs.sha256.clone()) {
            self.tx.write_document_with(
                doc_key,
                script.text.as_bytes(),
                &WriteOptions::new().content_type(FOUNTAIN_CONTENT_TYPE),
            )?;
            self.report.documents_written += 1;
            report.document = if stored.is_some() {
                Change::Updated
            } else {
                Change::Created
            };
        }
        // Vanished scenes go first, so nothing refers to them.
        for o in old.iter().filter(|o| !o.used) {
            self.delete_node(&o.name)?;
            report.scenes_removed += 1;
        }
        // Scene nodes.
        let mut placed = Vec::with_capacity(script.scenes.len());
        for (i, scene) in script.scenes.iter().enumerate() {
            let id = match ids[i] {
                Some(id) => id,
                None if old_attrs.is_none() => scene.placement.ordinal as u64,
                None => {
                    next_id += 1;
                    next_id - 1
                }
            };
            let name = names::scene(slug, &script.file, id);
            let mut attrs = scene.attrs.clone();
            attrs.id = id;
            let mut node = Node::new(&name, names::SCENE)?.with_attributes(to_map(&attrs)?);
            node.observations.clone_from(&scene.dialogue);
            match self.put_node(node)? {
                Change::Created => report.scenes_added += 1,
                Change::Updated => report.scenes_changed += 1,
                Change::Unchanged => report.scenes_unchanged += 1,
            }
            placed.push((name, scene.placement));
        }
        // The script node and its place in the series.
        let mut attrs = script.attrs.clone();
        attrs.next_scene_id = next_id;
        let node = Node::new(&script_name, names::SCRIPT)?.with_attributes(to_map(&attrs)?);
        report.script = self.put_node(node)?;
        let mut edge_attrs = Map::new();
        if let Some(s) = attrs.season {
            edge_attrs.insert("season".into(), Value::from(s));
        }
        if let Some(e) = attrs.episode {
            edge_attrs.insert("episode".into(), Value::from(e));
        }
        self.put_edge(
            Edge::new(names::series(slug), RelationType::Contains, &script_name)?
                .with_attributes(edge_attrs),
        )?;
        Ok((report, placed))
    }

    /// The scenes a script holds now, by its `contains` edges.
    fn old_scenes(&self, script_name: &str) -> Result<Vec<OldScene>> {
        if !self.tx.contains_node(script_name)? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for edge in self
            .tx
            .edges_of(script_name, Direction::Out, &[RelationType::Contains])?
        {
            let Some(node) = self.tx.find_node(&edge.to)? else {
                continue;
            };
            if node.node_type != names::SCENE {
                continue;
            }
            let scene: SceneAttrs = attrs(&node)?;
            let placement: Placement =
                serde_json::from_value(Value::Object(edge.attributes.clone())).map_err(|e| {
                    Error::invalid_input(
                        format!("edge {} contains {}", edge.from, edge.to),
                        format!("not a screenplay placement: {e}"),
                    )
                })?;
            out.push(OldScene {
                name: node.name,
                id: scene.id,
                sha256: scene.sha256,
                heading: scene.heading,
                ordinal: placement.ordinal,
                used: false,
            });
        }
        out.sort_by_key(|o| o.ordinal);
        Ok(out)
    }

    /// Makes the series' nodes of `kind` exactly `wanted` (name, attributes):
    /// writes those that differ, deletes the others.
    fn replace_kind(
        &mut self,
        slug: &str,
        kind: &str,
        wanted: Vec<(String, impl Serialize)>,
    ) -> Result<()> {
        let mut names_wanted: BTreeSet<String> = BTreeSet::new();
        for (name, attrs) in wanted {
            self.put_node(Node::new(&name, kind)?.with_attributes(to_map(&attrs)?))?;
            names_wanted.insert(name);
        }
        for node in self.nodes(kind, &names::prefix(kind, slug))? {
            if !names_wanted.contains(&node.name) {
                self.delete_node(&node.name)?;
            }
        }
        Ok(())
    }

    /// Recomputes the series' characters, locations and who appears with whom
    /// from its scene nodes; writes what differs, deletes what no scene needs.
    fn refresh_series(&mut self, slug: &str) -> Result<()> {
        let scenes = self.nodes(names::SCENE, &names::prefix("scene", slug))?;
        let mut characters: BTreeMap<String, (Speaker, u64, BTreeSet<String>)> = BTreeMap::new();
        let mut locations: BTreeMap<String, (BTreeSet<String>, u64)> = BTreeMap::new();
        let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
        for node in &scenes {
            let scene: SceneAttrs = attrs(node)?;
            for s in &scene.speakers {
                let entry = characters.entry(s.name.clone()).or_insert_with(|| {
                    (
                        Speaker {
                            name: s.name.clone(),
                            ..Speaker::default()
                        },
                        0,
                        BTreeSet::new(),
                    )
                });
                entry.0.add(s);
                entry.1 += 1;
                entry.2.insert(scene.file.clone());
            }
            if let (Some(key), Some(spelling)) = (&scene.location_key, &scene.location) {
                let entry = locations.entry(key.clone()).or_default();
                entry.0.insert(spelling.clone());
                entry.1 += 1;
            }
            let mut speakers: Vec<&str> = scene.speakers.iter().map(|s| s.name.as_str()).collect();
            speakers.sort_unstable();
            speakers.dedup();
            for (i, a) in speakers.iter().enumerate() {
                for b in speakers.iter().skip(i + 1) {
                    *pairs.entry(((*a).to_owned(), (*b).to_owned())).or_default() += 1;
                }
            }
        }
        // Characters and locations.
        let characters: Vec<(String, CharacterAttrs)> = characters
            .into_iter()
            .map(|(name, (totals, scenes, scripts))| {
                let attrs = CharacterAttrs {
                    series: slug.to_owned(),
                    totals,
                    scenes,
                    scripts: scripts.len() as u64,
                };
                (names::character(slug, &name), attrs)
            })
            .collect();
        self.replace_kind(slug, names::CHARACTER, characters)?;
        let locations: Vec<(String, LocationAttrs)> = locations
            .into_iter()
            .map(|(key, (spellings, scenes))| {
                let name = names::location(slug, &key);
                let attrs = LocationAttrs {
                    series: slug.to_owned(),
                    name: key,
                    spellings: spellings.into_iter().collect(),
                    scenes,
                };
                (name, attrs)
            })
            .collect();
        self.replace_kind(slug, names::LOCATION, locations)?;
        // Who appears with whom: one bidirectional edge per pair, weighted by scenes.
        let relation = RelationType::parse(names::APPEARS_WITH)?;
        let mut wanted: BTreeSet<EdgeKey> = BTreeSet::new();
        for ((a, b), scenes) in pairs {
            let edge = Edge::new(
                names::character(slug, &a),
                relation.clone(),
                names::character(slug, &b),
            )?
            .bidirectional()
            .with_weight(scenes as f64)
            .with_attribute("scenes", Value::from(scenes));
            wanted.insert(edge.key());
            self.put_edge(edge)?;
        }
        let characters = self.nodes(names::CHARACTER, &names::prefix("character", slug))?;
        for node in characters {
            for edge in
                self.tx
                    .edges_of(&node.name, Direction::Out, std::slice::from_ref(&relation))?
            {
                let key = edge.key();
                if !wanted.contains(&key) {
                    self.delete_edge(&key)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the edges of a script's scenes: the script contains each (with
    /// its placement), each is followed by the next, set in its location, and
    /// spoken in by its characters. Stale ones are deleted.
    fn write_scene_edges(
        &mut self,
        script: &PlannedScript,
        placed: &[(String, Placement)],
    ) -> Result<()> {
        let slug = &script.slug;
        let script_name = names::script(slug, &script.file);
        let followed_by = RelationType::parse(names::FOLLOWED_BY)?;
        let set_in = RelationType::parse(names::SET_IN)?;
        let speaks_in = RelationType::parse(names::SPEAKS_IN)?;
        let mut wanted: Vec<Edge> = Vec::new();
        for (i, ((name, placement), scene)) in placed.iter().zip(&script.scenes).enumerate() {
            wanted.push(
                Edge::new(&script_name, RelationType::Contains, name)?
                    .with_attributes(to_map(placement)?),
            );
            if let Some((next, _)) = placed.get(i + 1) {
                wanted.push(Edge::new(name, followed_by.clone(), next)?);
            }
            if let Some(key) = &scene.attrs.location_key {
                wanted.push(Edge::new(name, set_in.clone(), names::location(slug, key))?);
            }
            for s in &scene.attrs.speakers {
                wanted.push(
                    Edge::new(names::character(slug, &s.name), speaks_in.clone(), name)?
                        .with_weight(s.speeches as f64)
                        .with_attributes(s.edge_attributes()),
                );
            }
        }
        let keys: BTreeSet<EdgeKey> = wanted.iter().map(Edge::key).collect();
        let relations = [RelationType::Contains, followed_by, set_in, speaks_in];
        let mut stale: BTreeSet<EdgeKey> = BTreeSet::new();
        for (name, _) in placed {
            for edge in self.tx.edges_of(name, Direction::Both, &relations)? {
                let key = edge.key();
                if !keys.contains(&key) {
                    stale.insert(key);
                }
            }
        }
        for key in &stale {
            self.delete_edge(key)?;
        }
        for edge in wanted {
            self.put_edge(edge)?;
        }
        Ok(())
    }
}

/// Every node of a type whose name starts with `prefix`, by name.
pub(crate) fn all_nodes(
    reader: &impl GraphRead,
    node_type: &str,
    prefix: &str,
) -> Result<Vec<Node>> {
    list_all(
        reader,
        &NodeFilter::default()
            .of_type(node_type)
            .with_name_prefix(prefix),
    )
}

/// Every node `filter` lists, page by page.
pub(crate) fn list_all(reader: &impl GraphRead, filter: &NodeFilter) -> Result<Vec<Node>> {
    let mut page = PageRequest::first(10_000);
    let mut out = Vec::new();
    loop {
        let got = reader.list_nodes(filter, &page)?;
        out.extend(got.items);
        match got.next_cursor {
            Some(cursor) => page = page.after(Some(cursor)),
            None => return Ok(out),
        }
    }
}

/// The stored metadata of a document, if any, for the transaction's reads.
trait FindMeta {
    fn find_document_meta(
        &self,
        key: &str,
    ) -> Result<Option<kgstore_core::documents::DocumentMeta>>;
}

impl<T: DocumentRead> FindMeta for T {
    fn find_document_meta(
        &self,
        key: &str,
    ) -> Result<Option<kgstore_core::documents::DocumentMeta>> {
        if self.document_exists(key)? {
            self.stat_document(key).map(Some)
        } else {
            Ok(None)
        }
    }
}
