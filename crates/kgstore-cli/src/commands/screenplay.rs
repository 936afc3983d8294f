//! `kgstore screenplay …`: Fountain scripts as a graph (kgstore-screenplay).

use std::io::{BufReader, Write};

use anyhow::{Context, Result};
use kgstore::{EntityKey, Error, LogQuery, ReadTx};
use kgstore_screenplay::embed::{self, read_jsonl, store_embeddings};
use kgstore_screenplay::export::{resolve_scene, scene_text, script_text};
use kgstore_screenplay::query::{self, SceneQuery, SceneRow};
use kgstore_screenplay::{ImportOptions, import, read_sources};
use serde_json::json;

use super::Ctx;
use crate::cli::{
    ScreenplayCommand, SpCharacterArgs, SpEmbedArgs, SpExportArgs, SpImportArgs, SpSceneArgs,
    SpScenesArgs, SpSearchArgs, SpSeriesArg, SpSimilarArgs, SpWithArgs,
};
use crate::output::cell;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: &ScreenplayCommand) -> Result<()> {
    match command {
        ScreenplayCommand::Import(args) => import_files(ctx, args),
        ScreenplayCommand::Export(args) => export(ctx, args),
        ScreenplayCommand::Scene(args) => scene(ctx, args),
        ScreenplayCommand::Series => series(ctx),
        ScreenplayCommand::Scenes(args) => scenes(ctx, args),
        ScreenplayCommand::Characters(args) => characters(ctx, args),
        ScreenplayCommand::Character(args) => character(ctx, args),
        ScreenplayCommand::With(args) => with(ctx, args),
        ScreenplayCommand::Search(args) => search(ctx, args),
        ScreenplayCommand::Embed(args) => embed_cmd(ctx, args),
        ScreenplayCommand::Similar(args) => similar(ctx, args),
    }
}

/// Runs `f` on a read snapshot with the series resolved.
fn reading<T>(
    ctx: &Ctx<'_>,
    series: &SpSeriesArg,
    f: impl FnOnce(&ReadTx<'_>, &str) -> kgstore::Result<T>,
) -> Result<T> {
    let store = ctx.open_existing_store()?;
    let snapshot = ctx.snapshot(&store)?;
    let slug = query::resolve_series(&snapshot, series.series.as_deref())?;
    Ok(f(&snapshot, &slug)?)
}

fn import_files(ctx: &mut Ctx<'_>, args: &SpImportArgs) -> Result<()> {
    let sources = read_sources(&args.paths)?;
    if sources.is_empty() {
        return Err(Error::invalid_input(
            "screenplay import",
            "no Fountain file found (folders are searched for *.fountain)",
        )
        .into());
    }
    let store = ctx.open_for_write()?;
    let options = ImportOptions {
        series: args.series.clone(),
    };
    let report = import(&store, &sources, &options)?;
    if ctx.out.json() {
        return ctx.out.value(&report);
    }
    let rows: Vec<Vec<String>> = report
        .scripts
        .iter()
        .map(|s| {
            vec![
                s.series.clone(),
                cell(&s.file),
                s.scenes.to_string(),
                s.scenes_added.to_string(),
                s.scenes_changed.to_string(),
                s.scenes_unchanged.to_string(),
                s.scenes_removed.to_string(),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "SERIES", "FILE", "SCENES", "ADDED", "CHANGED", "SAME", "REMOVED",
        ],
        &rows,
    )?;
    ctx.out.line(&if report.is_unchanged() {
        "nothing changed".to_owned()
    } else {
        format!(
            "nodes: {} created, {} updated, {} deleted; edges: {} created, {} updated, {} deleted; documents: {} written",
            report.nodes_created,
            report.nodes_updated,
            report.nodes_deleted,
            report.edges_created,
            report.edges_updated,
            report.edges_deleted,
            report.documents_written
        )
    })
}

fn export(ctx: &mut Ctx<'_>, args: &SpExportArgs) -> Result<()> {
    let bytes = reading(ctx, &args.series, |r, slug| {
        script_text(r, slug, &args.file)
    })?;
    match &args.out {
        Some(path) => {
            let mut tmp = super::temp_beside(path)?;
            tmp.write_all(&bytes).map_err(|e| Error::io(path, e))?;
            tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
            if ctx.out.json() {
                ctx.out
                    .value(&json!({"file": args.file, "out": path, "size": bytes.len()}))?;
            }
            // Nothing on stdout for people: the text went to the file.
            Ok(())
        }
        None => ctx.out.raw().write_all(&bytes).context("writing to stdout"),
    }
}

fn scene(ctx: &mut Ctx<'_>, args: &SpSceneArgs) -> Result<()> {
    let (name, text) = reading(ctx, &args.series, |r, slug| {
        let name = resolve_scene(r, slug, &args.scene)?;
        let text = scene_text(r, &name)?;
        Ok((name, text))
    })?;
    if ctx.out.json() {
        return ctx.out.value(&json!({"scene": name, "text": text}));
    }
    ctx.out
        .raw()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

fn series(ctx: &mut Ctx<'_>) -> Result<()> {
    let store = ctx.open_existing_store()?;
    let all = query::series(&ctx.snapshot(&store)?)?;
    if ctx.out.json() {
        return ctx.out.value(&all);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| vec![s.slug.clone(), cell(&s.name)])
        .collect();
    ctx.out.table(&["SLUG", "NAME"], &rows)
}

fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `1x02`, or what the title page gave of it: `1x-`, `-x02`, or `-` for neither.
fn episode_label(season: Option<impl ToString>, episode: Option<u32>) -> String {
    match (season, episode) {
        (None, None) => "-".to_owned(),
        (season, episode) => format!(
            "{}x{}",
            opt(season),
            episode.map_or_else(|| "-".to_owned(), |e| format!("{e:02}"))
        ),
    }
}

fn scene_cells(r: &SceneRow) -> Vec<String> {
    vec![
        episode_label(r.season, r.episode),
        r.ordinal.to_string(),
        opt(r.int_ext.as_deref()),
        cell(&opt(r.location.as_deref())),
        opt(r.time_of_day.as_deref()),
        cell(&r.speakers.join(", ")),
    ]
}

const SCENE_HEADERS: [&str; 6] = ["EP", "#", "SIDE", "LOCATION", "TIME", "SPEAKERS"];

fn scenes(ctx: &mut Ctx<'_>, args: &SpScenesArgs) -> Result<()> {
    let q = SceneQuery {
        characters: args.characters.clone(),
        location: args.location.clone(),
        time_of_day: args.time_of_day.clone(),
        int_ext: args.int_ext.clone(),
        seasons: args.season,
        episodes: args.episode,
        file: args.file.clone(),
    };
    let rows = reading(ctx, &args.series, |r, slug| query::scenes(r, slug, &q))?;
    if ctx.out.json() {
        return ctx.out.value(&rows);
    }
    let cells: Vec<Vec<String>> = rows.iter().map(scene_cells).collect();
    ctx.out.table(&SCENE_HEADERS, &cells)?;
    ctx.out.line(&format!("{} scenes", rows.len()))
}

fn characters(ctx: &mut Ctx<'_>, args: &SpSeriesArg) -> Result<()> {
    let rows = reading(ctx, args, |r, slug| query::characters(r, slug))?;
    if ctx.out.json() {
        return ctx.out.value(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                cell(&c.totals.name),
                c.totals.speeches.to_string(),
                c.totals.lines.to_string(),
                c.totals.words.to_string(),
                c.scenes.to_string(),
                c.scripts.to_string(),
                c.totals.voice_over.to_string(),
                c.totals.off_screen.to_string(),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "CHARACTER",
            "SPEECHES",
            "LINES",
            "WORDS",
            "SCENES",
            "SCRIPTS",
            "V.O.",
            "O.S.",
        ],
        &cells,
    )
}

fn character(ctx: &mut Ctx<'_>, args: &SpCharacterArgs) -> Result<()> {
    let rows = reading(ctx, &args.series, |r, slug| {
        query::character_scenes(r, slug, &args.name)
    })?;
    if ctx.out.json() {
        return ctx.out.value(&rows);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let mut row = scene_cells(&c.scene);
            row.pop();
            row.push(c.speeches.to_string());
            row.push(c.lines.to_string());
            row
        })
        .collect();
    ctx.out.table(
        &["EP", "#", "SIDE", "LOCATION", "TIME", "SPEECHES", "LINES"],
        &cells,
    )
}

fn with(ctx: &mut Ctx<'_>, args: &SpWithArgs) -> Result<()> {
    let pairs = reading(ctx, &args.series, |r, slug| {
        query::co_appearances(r, slug, args.name.as_deref())
    })?;
    if ctx.out.json() {
        return ctx.out.value(&pairs);
    }
    let cells: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| vec![cell(&p.a), cell(&p.b), p.scenes.to_string()])
        .collect();
    ctx.out.table(&["CHARACTER", "WITH", "SCENES"], &cells)
}

fn search(ctx: &mut Ctx<'_>, args: &SpSearchArgs) -> Result<()> {
    let hits = reading(ctx, &args.series, |r, slug| {
        query::search_dialogue(r, slug, &args.text, args.character.as_deref())
    })?;
    if ctx.out.json() {
        return ctx.out.value(&hits);
    }
    let cells: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            let s = &h.scene;
            vec![
                h.words.to_string(),
                format!("{:.4}", h.score),
                episode_label(s.season, s.episode),
                s.ordinal.to_string(),
                cell(&h.character),
                cell(&h.dialogue),
            ]
        })
        .collect();
    ctx.out.table(
        &["WORDS", "SCORE", "EP", "#", "CHARACTER", "DIALOGUE"],
        &cells,
    )?;
    ctx.out.line(&format!("{} speeches", hits.len()))
}

fn embed_cmd(ctx: &mut Ctx<'_>, args: &SpEmbedArgs) -> Result<()> {
    if args.pending {
        let todo = reading(ctx, &args.series, |r, slug| {
            embed::pending(r, slug, &args.model)
        })?;
        // JSON Lines either way: the input of whatever computes the vectors.
        let out = ctx.out.raw();
        for p in &todo {
            serde_json::to_writer(&mut *out, p).context("writing to stdout")?;
            out.write_all(b"\n").context("writing to stdout")?;
        }
        return Ok(());
    }
    let Some(from) = &args.from else {
        return Err(Error::invalid_input(
            "screenplay embed",
            "give --from FILE.jsonl or --pending",
        )
        .into());
    };
    let embeddings = if from.as_os_str() == "-" {
        read_jsonl(std::io::stdin().lock())?
    } else {
        let file = std::fs::File::open(from).map_err(|e| Error::io(from, e))?;
        read_jsonl(BufReader::new(file))?
    };
    let store = ctx.open_for_write()?;
    let report = store_embeddings(&store, &args.model, &embeddings)?;
    ctx.out.either(
        || {
            format!(
                "{} embeddings written, {} unchanged ({} dimensions, model {})",
                report.written, report.unchanged, report.dimension, args.model
            )
        },
        &report,
    )
}

fn similar(ctx: &mut Ctx<'_>, args: &SpSimilarArgs) -> Result<()> {
    let found = reading(ctx, &args.series, |r, slug| {
        let name = resolve_scene(r, slug, &args.scene)?;
        embed::similar(r, slug, &name, args.top, &args.model)
    })?;
    if ctx.out.json() {
        return ctx.out.value(&found);
    }
    let cells: Vec<Vec<String>> = found
        .iter()
        .map(|s| {
            let mut row = vec![format!("{:.4}", s.score)];
            row.extend(scene_cells(&s.scene));
            row
        })
        .collect();
    ctx.out.table(
        &["SCORE", "EP", "#", "SIDE", "LOCATION", "TIME", "SPEAKERS"],
        &cells,
    )
}

/// The demo screenplay, built into the binary so the demo runs from anywhere.
const DEMO_SCRIPTS: [(&str, &str); 3] = [
    (
        "S01E01 - Dead Air.fountain",
        include_str!("../../../../examples/screenplay/S01E01 - Dead Air.fountain"),
    ),
    (
        "S01E02 - The Tape.fountain",
        include_str!("../../../../examples/screenplay/S01E02 - The Tape.fountain"),
    ),
    (
        "S01E03 - Three Short, One Long.fountain",
        include_str!("../../../../examples/screenplay/S01E03 - Three Short, One Long.fountain"),
    ),
];

/// What the demo's screenplay step found, for `demo --json`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct DemoSummary {
    /// The store it used.
    pub(crate) store: String,
    /// Scenes imported.
    pub(crate) scenes: usize,
    /// Whether the second import changed nothing.
    pub(crate) reimport_unchanged: bool,
    /// Whether every export equals its file.
    pub(crate) exports_identical: bool,
}

/// The demo's screenplay step: import *The Night Desk* into a `git://` store in
/// `dir`, re-import it, ask a few questions, edit one scene, and export byte
/// for byte.
pub(crate) fn demo_step(
    dir: &std::path::Path,
    say: &mut dyn FnMut(String) -> Result<()>,
) -> Result<DemoSummary> {
    let repo = dir.join("screenplay.git");
    if repo.exists() {
        std::fs::remove_dir_all(&repo).with_context(|| format!("removing {}", repo.display()))?;
    }
    let url = format!("git://{}", repo.display());
    let store = kgstore::open(&url)?;
    let sources: Vec<kgstore_screenplay::Source> = DEMO_SCRIPTS
        .iter()
        .map(|(file, text)| kgstore_screenplay::Source::new(*file, *text))
        .collect();
    let options = ImportOptions::default();
    let first = import(&store, &sources, &options)?;
    let scenes: usize = first.scripts.iter().map(|s| s.scenes).sum();
    say(format!(
        "   Imported the three episodes of \"The Night Desk\" (examples/screenplay) into {url}\n   \
         in one transaction: {} nodes (series, scripts, {scenes} scenes, characters, locations), \
         {} edges, {} documents (the raw text).",
        first.nodes_created, first.edges_created, first.documents_written
    ))?;
    say(
        "   (Each transaction is one git commit: the scripts are plain Fountain files at \
         scripts/<series>/ in its tree, the graph's JSON files under .kgstore/.)"
            .into(),
    )?;
    let again = import(&store, &sources, &options)?;
    say(format!(
        "   Importing the same files again: {}.",
        if again.is_unchanged() {
            "nothing changed, no version moved"
        } else {
            "CHANGED (a bug)"
        }
    ))?;
    let snapshot = store.read()?;
    let slug = query::resolve_series(&snapshot, None)?;
    let q = SceneQuery {
        characters: vec!["MARA".into()],
        time_of_day: Some("NIGHT".into()),
        episodes: Some((2, 3)),
        ..SceneQuery::default()
    };
    let rows = query::scenes(&snapshot, &slug, &q)?;
    say(format!(
        "   Mara's night scenes in episodes 2–3 ({}):",
        rows.len()
    ))?;
    for r in &rows {
        say(format!(
            "     1x{:02} #{}  {}",
            r.episode.unwrap_or(0),
            r.ordinal,
            r.heading.as_deref().unwrap_or("")
        ))?;
    }
    let cast: Vec<String> = query::characters(&snapshot, &slug)?
        .iter()
        .map(|c| format!("{} {}/{}", c.totals.name, c.totals.speeches, c.scenes))
        .collect();
    say(format!(
        "   Characters (speeches/scenes): {}",
        cast.join(", ")
    ))?;
    let partners: Vec<String> = query::co_appearances(&snapshot, &slug, Some("MARA"))?
        .iter()
        .map(|p| format!("{} {}", p.b, p.scenes))
        .collect();
    say(format!(
        "   Who appears with Mara (scenes): {}",
        partners.join(", ")
    ))?;
    let hits = query::search_dialogue(&snapshot, &slug, "Holm ferry", None)?;
    say(format!(
        "   Ranked dialogue search for \"Holm ferry\": {} speeches, the best first:",
        hits.len()
    ))?;
    for h in hits.iter().take(3) {
        say(format!(
            "     1x{:02} #{} {} ({} of 2 words): {}",
            h.scene.episode.unwrap_or(0),
            h.scene.ordinal,
            h.character,
            h.words,
            cell(&h.dialogue)
        ))?;
    }
    drop(snapshot);
    let (file, text) = DEMO_SCRIPTS[0];
    let edited = text.replacen("Twelve past two.", "Quarter past two.", 1);
    let report = import(
        &store,
        &[kgstore_screenplay::Source::new(file, edited.clone())],
        &options,
    )?;
    let r = report
        .scripts
        .first()
        .context("the edit imported no script")?;
    say(format!(
        "   An edited line in episode 1, re-imported: {} scene changed, {} unchanged.",
        r.scenes_changed, r.scenes_unchanged
    ))?;
    let snapshot = store.read()?;
    let mut identical = script_text(&snapshot, &slug, file)? == edited.as_bytes();
    for (file, text) in &DEMO_SCRIPTS[1..] {
        identical &= script_text(&snapshot, &slug, file)? == text.as_bytes();
    }
    say(format!(
        "   Exported scripts are byte-identical to what was imported: {identical}.\n   Try: kgstore --store {url} screenplay scenes --character teo --int-ext ext"
    ))?;
    if !identical {
        return Err(Error::invalid_input("demo", "an export differs from its import").into());
    }
    // The repository's log: one commit per import that changed something (the
    // unchanged re-import made none).
    let log = store.log(&LogQuery::new())?;
    say(format!("   The repository's log ({} commits):", log.len()))?;
    for revision in &log {
        say(format!(
            "     {} {}",
            revision.id.get(..12).unwrap_or(&revision.id),
            revision.summary()
        ))?;
    }
    let key = kgstore_screenplay::names::document(&slug, file);
    let touched = store.log(&LogQuery::new().key(EntityKey::Document(key.clone())))?;
    say(format!(
        "   Commits that changed {key}: {}; git itself shows the same: git --git-dir {} log --oneline",
        touched.len(),
        repo.display()
    ))?;
    Ok(DemoSummary {
        store: url,
        scenes,
        reimport_unchanged: again.is_unchanged(),
        exports_identical: identical,
    })
}
