//! Screenplay import and query timings (issue 15): a generated series of 1,000
//! scenes imported into kgstore (scenes/s) beside, in the same run, parsing
//! alone and a lean hand-written rusqlite import of the same data (the tables a
//! user would write: scripts with their text, scenes, characters, who speaks
//! where); then re-imports (unchanged, one scene edited) and the queries, each
//! beside the SQL a user would write against those tables.
//!
//! ```text
//! cargo run --release -p kgstore-bench --bin kgstore-bench-screenplay -- --scenes 1000 --rounds 3
//! ```
//!
//! Figures of a run are in `docs/benchmarks.md`. Times are the best of the
//! rounds; every row checks its answer against kgstore's (the checksum).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kgstore::Store;
use kgstore_fountain::synthetic;
use kgstore_screenplay::query::{self, SceneQuery};
use kgstore_screenplay::{ImportOptions, Source, import};
use rusqlite::{Connection, params};

struct Options {
    scenes: usize,
    rounds: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        scenes: 1000,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--scenes", Some(v)) => o.scenes = v,
            ("--rounds", Some(v)) => o.rounds = v,
            _ => bail!("usage: kgstore-bench-screenplay [--scenes N] [--rounds R]"),
        }
    }
    Ok(o)
}

/// The best time of `rounds` runs of `f`, and its last answer.
fn best<T>(rounds: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, T)> {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let out = black_box(f()?);
        best = best.min(started.elapsed());
        last = Some(out);
    }
    Ok((best, last.context("no round ran")?))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A fresh store of a kind in `dir`.
fn open(kind: &str, dir: &std::path::Path) -> Result<Store> {
    let url = match kind {
        "memory" => "memory://".to_owned(),
        "sqlite" => format!("sqlite://{}/kg.db", dir.display()),
        "sqlite-relaxed" => format!("sqlite://{}/kg.db?durability=relaxed", dir.display()),
        "json" => format!("json://{}/kg", dir.display()),
        other => bail!("no store kind {other}"),
    };
    Ok(kgstore::open(&url)?)
}

const SCHEMA: &str = "
CREATE TABLE script (id INTEGER PRIMARY KEY, file TEXT UNIQUE NOT NULL, season INT, episode INT, text BLOB NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE scene (id INTEGER PRIMARY KEY, script INT NOT NULL REFERENCES script(id), ordinal INT NOT NULL, heading TEXT, int_ext TEXT, location TEXT, time TEXT, start INT, end INT, sha256 TEXT NOT NULL);
CREATE TABLE character (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE speaks (character INT NOT NULL REFERENCES character(id), scene INT NOT NULL REFERENCES scene(id), speeches INT, lines INT, PRIMARY KEY (character, scene));
CREATE TABLE speech (scene INT NOT NULL REFERENCES scene(id), character TEXT NOT NULL, dialogue TEXT NOT NULL);
CREATE INDEX scene_by_script ON scene(script);
CREATE INDEX speaks_by_scene ON speaks(scene);
";

/// The hand-written import: parse, then one rusqlite transaction of plain inserts.
fn rusqlite_import(path: &std::path::Path, sources: &[Source]) -> Result<Connection> {
    let _ = std::fs::remove_file(path);
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.transaction()?;
    {
        let mut script_stmt = tx.prepare(
            "INSERT INTO script (file, season, episode, text, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut scene_stmt = tx.prepare(
            "INSERT INTO scene (script, ordinal, heading, int_ext, location, time, start, end, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut char_stmt = tx.prepare("INSERT OR IGNORE INTO character (name) VALUES (?1)")?;
        let mut char_id = tx.prepare("SELECT id FROM character WHERE name = ?1")?;
        let mut speaks_stmt = tx.prepare(
            "INSERT INTO speaks (character, scene, speeches, lines) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut speech_stmt =
            tx.prepare("INSERT INTO speech (scene, character, dialogue) VALUES (?1, ?2, ?3)")?;
        for source in sources {
            let script = kgstore_fountain::parse(source.bytes.clone())?;
            let se = script
                .title_page()
                .and_then(kgstore_fountain::SeasonEpisode::from_title_page)
                .or_else(|| kgstore_fountain::SeasonEpisode::from_file_name(&source.file));
            script_stmt.execute(params![
                source.file,
                se.map(|s| s.season),
                se.map(|s| s.episode),
                source.bytes,
                kgstore_screenplay::names::sha256_hex(&source.bytes)
            ])?;
            let script_id = tx.last_insert_rowid();
            for scene in script.scenes() {
                let parts = scene.parts();
                scene_stmt.execute(params![
                    script_id,
                    scene.ordinal as i64,
                    scene.heading.map(|h| h.text.clone()),
                    parts.as_ref().and_then(|p| p.int_ext).map(|i| i.as_str()),
                    parts
                        .as_ref()
                        .map(|p| kgstore_fountain::canonical(&p.location)),
                    parts
                        .as_ref()
                        .and_then(|p| p.time_of_day.as_deref().map(kgstore_fountain::canonical)),
                    scene.span.start as i64,
                    scene.span.end as i64,
                    kgstore_screenplay::names::sha256_hex(scene.text().as_bytes())
                ])?;
                let scene_id = tx.last_insert_rowid();
                let speeches = scene.speeches();
                for c in scene.characters_from(&speeches) {
                    char_stmt.execute(params![c.name])?;
                    let id: i64 = char_id.query_row(params![c.name], |r| r.get(0))?;
                    speaks_stmt.execute(params![
                        id,
                        scene_id,
                        c.speeches as i64,
                        c.lines as i64
                    ])?;
                }
                for s in &speeches {
                    speech_stmt.execute(params![scene_id, s.character, s.dialogue])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(conn)
}

fn main() -> Result<()> {
    let o = options()?;
    let episodes = 10;
    let generated = synthetic::series(episodes, o.scenes.div_ceil(episodes), 20261206);
    let sources: Vec<Source> = generated
        .iter()
        .map(|g| Source::new(&g.file_name, g.text.clone()))
        .collect();
    let scenes: usize = generated.iter().map(|g| g.scenes).sum();
    let bytes: usize = generated.iter().map(|g| g.text.len()).sum();
    println!(
        "series: {episodes} episodes, {scenes} scenes, {bytes} bytes; best of {} rounds",
        o.rounds
    );
    let options = ImportOptions {
        series: Some("Bench".into()),
    };
    let per_s = |d: Duration| scenes as f64 / d.as_secs_f64();

    // Baselines.
    let (parse_time, _) = best(o.rounds, || {
        let mut n = 0;
        for s in &sources {
            let script = kgstore_fountain::parse(s.bytes.clone())?;
            for scene in script.scenes() {
                let speeches = scene.speeches();
                n += scene.characters_from(&speeches).len() + usize::from(scene.parts().is_some());
                n += scene.text().len();
            }
        }
        Ok(n)
    })?;
    let dir = tempfile::tempdir()?;
    let sql_path = dir.path().join("hand.db");
    let (sql_time, _) = best(o.rounds, || {
        rusqlite_import(&sql_path, &sources).map(|_| ())
    })?;
    println!("\nimport of {scenes} scenes          time ms   scenes/s   × rusqlite");
    println!(
        "  parse + scene data (no store)  {:8.1}  {:9.0}   {:.2}",
        ms(parse_time),
        per_s(parse_time),
        sql_time.as_secs_f64() / parse_time.as_secs_f64()
    );
    println!(
        "  hand-written rusqlite import   {:8.1}  {:9.0}   1.00",
        ms(sql_time),
        per_s(sql_time)
    );

    // kgstore on each backend: first import, unchanged re-import, one edit.
    let edited: Vec<Source> = {
        let mut e = sources.clone();
        let first = &mut e[0];
        let text = String::from_utf8(first.bytes.clone())?;
        let script = kgstore_fountain::parse(text.clone())?;
        let scene_text = script
            .scenes()
            .get(1)
            .context("a second scene")?
            .text()
            .to_owned();
        let changed = scene_text.replacen('\n', "\n\nAn edited line of action.\n", 1);
        first.bytes = text.replacen(&scene_text, &changed, 1).into_bytes();
        vec![e.swap_remove(0)]
    };
    let mut stores: BTreeMap<&str, Store> = BTreeMap::new();
    // The stores' folders, kept until the queries are done.
    let mut dirs = Vec::new();
    let mut rows = Vec::new();
    for kind in ["sqlite", "sqlite-relaxed", "memory", "json"] {
        let mut times = Vec::new();
        let mut store = None;
        for _ in 0..o.rounds.max(1) {
            let round = tempfile::tempdir()?;
            let s = open(kind, round.path())?;
            let started = Instant::now();
            let report = import(&s, &sources, &options)?;
            times.push(started.elapsed());
            ensure!(report.scripts.iter().map(|r| r.scenes).sum::<usize>() == scenes);
            store = Some((s, round));
        }
        let (s, round) = store.context("no round")?;
        let first = times.into_iter().min().context("no time")?;
        let (again, report) = best(o.rounds, || Ok(import(&s, &sources, &options)?))?;
        ensure!(report.is_unchanged(), "an unchanged re-import wrote");
        let started = Instant::now();
        let report = import(&s, &edited, &options)?;
        let edit = started.elapsed();
        ensure!(report.scripts[0].scenes_changed == 1, "{report:?}");
        rows.push((kind, first, again, edit));
        stores.insert(kind, s);
        dirs.push(round);
    }
    println!(
        "\nkgstore import                 first ms   scenes/s   × rusqlite   unchanged re-import ms   one scene edited ms"
    );
    for (kind, first, again, edit) in &rows {
        println!(
            "  {kind:<28} {:8.1}  {:9.0}   {:9.2}   {:22.1}   {:19.1}",
            ms(*first),
            per_s(*first),
            first.as_secs_f64() / sql_time.as_secs_f64(),
            ms(*again),
            ms(*edit)
        );
    }

    // Queries on the SQLite store, beside SQL on the hand-written tables.
    let conn = rusqlite_import(&sql_path, &sources)?;
    let store = stores.get("sqlite").context("sqlite store")?;
    let slug = "bench";
    let top = query::characters(store, slug)?;
    let who = top.first().context("a character")?.totals.name.clone();
    let night = SceneQuery {
        characters: vec![who.clone()],
        time_of_day: Some("NIGHT".into()),
        episodes: Some((2, 5)),
        ..SceneQuery::default()
    };
    type Q<'a> = (
        &'a str,
        Box<dyn Fn() -> Result<usize> + 'a>,
        Box<dyn Fn() -> Result<usize> + 'a>,
    );
    let queries: Vec<Q<'_>> = vec![
        (
            "scenes: character + NIGHT + episodes 2-5",
            Box::new(|| Ok(query::scenes(store, slug, &night)?.len())),
            Box::new(|| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM scene s JOIN script p ON p.id = s.script
                     JOIN speaks k ON k.scene = s.id JOIN character c ON c.id = k.character
                     WHERE c.name = ?1 AND s.time = 'NIGHT' AND p.episode BETWEEN 2 AND 5",
                    params![who],
                    |r| r.get::<_, i64>(0),
                )? as usize)
            }),
        ),
        (
            "characters with counts",
            Box::new(|| Ok(query::characters(store, slug)?.len())),
            Box::new(|| {
                let mut stmt = conn.prepare(
                    "SELECT c.name, sum(k.speeches), sum(k.lines), count(*) FROM character c
                     JOIN speaks k ON k.character = c.id GROUP BY c.id ORDER BY 2 DESC, 1",
                )?;
                Ok(stmt.query_map([], |r| r.get::<_, String>(0))?.count())
            }),
        ),
        (
            "who appears with whom",
            Box::new(|| Ok(query::co_appearances(store, slug, None)?.len())),
            Box::new(|| {
                let mut stmt = conn.prepare(
                    "SELECT a.character, b.character, count(*) FROM speaks a
                     JOIN speaks b ON a.scene = b.scene AND a.character < b.character
                     GROUP BY 1, 2",
                )?;
                Ok(stmt.query_map([], |r| r.get::<_, i64>(2))?.count())
            }),
        ),
        (
            "a character's scenes in order",
            Box::new(|| Ok(query::character_scenes(store, slug, &who)?.len())),
            Box::new(|| {
                let mut stmt = conn.prepare(
                    "SELECT s.id FROM scene s JOIN script p ON p.id = s.script
                     JOIN speaks k ON k.scene = s.id JOIN character c ON c.id = k.character
                     WHERE c.name = ?1 ORDER BY p.season, p.episode, p.file, s.ordinal",
                )?;
                Ok(stmt
                    .query_map(params![who], |r| r.get::<_, i64>(0))?
                    .count())
            }),
        ),
        (
            "dialogue search (ranked; SQL: substring)",
            Box::new(|| Ok(query::search_dialogue(store, slug, "slowly", None)?.len())),
            Box::new(|| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM speech WHERE instr(lower(dialogue), 'slowly') > 0",
                    [],
                    |r| r.get::<_, i64>(0),
                )? as usize)
            }),
        ),
    ];
    println!(
        "\nquery (SQLite store)                        kgstore ms   rusqlite ms   ratio   rows"
    );
    for (name, ours, theirs) in &queries {
        let (a, n) = best(o.rounds, ours)?;
        let (b, m) = best(o.rounds, theirs)?;
        ensure!(n == m, "{name}: kgstore found {n}, SQL found {m}");
        println!(
            "  {name:<42} {:9.2}   {:11.3}   {:5.0}   {n}",
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
    Ok(())
}
