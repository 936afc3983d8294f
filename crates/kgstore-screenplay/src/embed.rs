//! Scene embeddings: vectors the caller computes (no model ships with kgstore),
//! stored as documents keyed by the scene's content hash, and exact cosine
//! similarity over them.
//!
//! An embedding is the document `blobs/embeddings/<model>/<sha256>.f32`: the
//! vector's f32 values, little-endian, nothing else. Keyed by content hash, a
//! scene whose text is unchanged keeps its embedding through every re-import
//! and two scenes with the same text share one; [`pending`] lists the hashes
//! that still need one, so a caller never embeds a scene twice. On `git://`
//! stores the `blobs/` folder is where large objects live (Git LFS).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use kgstore_core::{DocumentQuery, DocumentRead, Error, GraphRead, PageRequest, Result, Store};
use serde::{Deserialize, Serialize};

use crate::import::all_nodes;
use crate::model::{SceneAttrs, attrs};
use crate::names;
use crate::query::{SceneQuery, SceneRow, scenes};

/// The model name used when none is given.
pub const DEFAULT_MODEL: &str = "default";

/// One scene embedding: a content hash and its vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    /// The scene's content hash (64 lower-case hex digits).
    pub sha256: String,
    /// The vector.
    pub vector: Vec<f32>,
}

/// A line of embeddings as read: an [`Embedding`], or a [`Pending`] line with its
/// vector added (its `scene` and `text` are accepted and not used). Any other
/// field is refused, so a misspelt `vector` is an error rather than a lost line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingLine {
    sha256: String,
    vector: Vec<f32>,
    #[serde(default, rename = "scene")]
    _scene: Option<String>,
    #[serde(default, rename = "text")]
    _text: Option<String>,
}

/// Reads JSON Lines of `{"sha256": "…", "vector": [f32, …]}` (the lines of
/// [`pending`] with a `vector` added read too: their `scene` and `text` are
/// ignored); blank lines are skipped, anything else wrong is an error naming the
/// line.
pub fn read_jsonl(reader: impl BufRead) -> Result<Vec<Embedding>> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| {
            Error::invalid_input(format!("embeddings line {}", i + 1), e.to_string())
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let e: EmbeddingLine = serde_json::from_str(&line).map_err(|e| {
            Error::invalid_input(
                format!("embeddings line {}", i + 1),
                format!(
                    "{e} (expected {{\"sha256\": \"<64 hex digits>\", \"vector\": [numbers]}})"
                ),
            )
        })?;
        out.push(Embedding {
            sha256: e.sha256,
            vector: e.vector,
        });
    }
    Ok(out)
}

/// What [`store_embeddings`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmbedReport {
    /// Embeddings written (new hashes, or a new vector for a hash).
    pub written: u64,
    /// Embeddings already stored with the same vector: not written again.
    pub unchanged: u64,
    /// The vectors' dimension.
    pub dimension: usize,
}

/// The document key of an embedding.
pub fn embedding_key(model: &str, sha256: &str) -> String {
    names::embedding(model, sha256)
}

fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode(key: &str, bytes: &[u8]) -> Result<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return Err(Error::corrupt(
            format!("<document '{key}'>"),
            format!("{} bytes is not a vector of f32", bytes.len()),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The dimension of the model's stored embeddings, if it has any.
fn stored_dimension(reader: &impl DocumentRead, model: &str) -> Result<Option<usize>> {
    let prefix = format!("{}/{model}/", names::EMBEDDINGS_FOLDER);
    let page = reader.list_documents(&DocumentQuery::prefix(prefix).page(PageRequest::first(1)))?;
    Ok(page.documents.first().map(|m| (m.size / 4) as usize))
}

/// Stores embeddings for model `model`, in one transaction: every hash must be
/// the content hash of a scene in the store, every vector of the same
/// dimension as the model's others, finite and not all zero. A hash already
/// stored with the same vector is not written again (no version bump).
pub fn store_embeddings(
    store: &Store,
    model: &str,
    embeddings: &[Embedding],
) -> Result<EmbedReport> {
    names::check_model(model)?;
    store.write(|tx| {
        tx.set_message(format!("screenplay embed: {} vectors ({model})", embeddings.len()))?;
        let known: HashSet<String> = all_nodes(&*tx, names::SCENE, "scene:")?
            .iter()
            .map(|n| attrs::<SceneAttrs>(n).map(|a| a.sha256))
            .collect::<Result<_>>()?;
        let mut dimension = stored_dimension(&*tx, model)?;
        let mut batch: HashMap<&str, &[f32]> = HashMap::new();
        for (i, e) in embeddings.iter().enumerate() {
            let subject = || format!("embedding {} ({})", i + 1, kgstore_core::validate::shorten(&e.sha256));
            if !names::is_sha256_hex(&e.sha256) {
                return Err(Error::invalid_input(subject(), "sha256 must be 64 lower-case hex digits"));
            }
            if !known.contains(&e.sha256) {
                return Err(Error::invalid_input(
                    subject(),
                    "no scene in the store has this content hash (`screenplay embed --pending` lists them)",
                ));
            }
            if e.vector.is_empty() || e.vector.iter().any(|v| !v.is_finite()) {
                return Err(Error::invalid_input(subject(), "the vector must be non-empty and finite"));
            }
            if e.vector.iter().all(|v| *v == 0.0) {
                return Err(Error::invalid_input(subject(), "an all-zero vector has no direction to compare"));
            }
            match dimension {
                Some(d) if d != e.vector.len() => {
                    return Err(Error::invalid_input(
                        subject(),
                        format!("has {} dimensions, but model {model}'s vectors have {d}", e.vector.len()),
                    ));
                }
                _ => dimension = Some(e.vector.len()),
            }
            if let Some(other) = batch.insert(&e.sha256, &e.vector)
                && other != e.vector.as_slice()
            {
                return Err(Error::invalid_input(subject(), "the same hash is given twice with different vectors"));
            }
        }
        let mut report = EmbedReport {
            dimension: dimension.unwrap_or(0),
            ..EmbedReport::default()
        };
        let sorted: BTreeMap<&str, &[f32]> = batch.into_iter().collect();
        for (sha, vector) in sorted {
            let key = embedding_key(model, sha);
            let bytes = encode(vector);
            let same = tx.document_exists(&key)?
                && tx.stat_document(&key)?.sha256.to_hex() == names::sha256_hex(&bytes);
            if same {
                report.unchanged += 1;
            } else {
                tx.write_document(&key, &bytes)?;
                report.written += 1;
            }
        }
        Ok(report)
    })
}

/// A scene whose content hash has no embedding yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The content hash to embed.
    pub sha256: String,
    /// One scene with that text.
    pub scene: String,
    /// The text to embed.
    pub text: String,
}

/// The content hashes of series `slug` with no embedding under `model`, once
/// each, in story order, with their text: what a caller still has to embed.
pub fn pending<R: GraphRead + DocumentRead>(
    reader: &R,
    slug: &str,
    model: &str,
) -> Result<Vec<Pending>> {
    names::check_model(model)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for row in scenes(reader, slug, &SceneQuery::default())? {
        if !seen.insert(row.sha256.clone())
            || reader.document_exists(&embedding_key(model, &row.sha256))?
        {
            continue;
        }
        let text = crate::export::scene_text(reader, &row.scene)?;
        out.push(Pending {
            sha256: row.sha256,
            scene: row.scene,
            text,
        });
    }
    Ok(out)
}

/// A scene and how similar it is to the one asked about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Similar {
    /// Cosine similarity, -1 to 1.
    pub score: f64,
    /// The scene.
    pub scene: SceneRow,
}

/// The cosine similarity of two vectors of the same length (computed in f64).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// The `top` scenes of series `slug` most similar to `scene` by exact cosine
/// similarity of their embeddings under `model` (every stored vector is
/// compared; no index, no approximation). The scene itself is left out; scenes
/// without an embedding are skipped. Ties keep story order.
pub fn similar<R: GraphRead + DocumentRead>(
    reader: &R,
    slug: &str,
    scene: &str,
    top: usize,
    model: &str,
) -> Result<Vec<Similar>> {
    names::check_model(model)?;
    if top == 0 {
        return Err(Error::invalid_input("--top", "must be at least 1"));
    }
    let node = reader.get_node(scene)?;
    let target: SceneAttrs = attrs(&node)?;
    let key = embedding_key(model, &target.sha256);
    let query = match reader.find_document(&key)? {
        Some(doc) => decode(&key, &doc.content)?,
        None => {
            return Err(Error::invalid_input(
                format!("scene '{scene}'"),
                format!(
                    "has no embedding under model {model}: embed its content hash {} first",
                    target.sha256
                ),
            ));
        }
    };
    let mut vectors: HashMap<String, Option<Vec<f32>>> = HashMap::new();
    let mut scored = Vec::new();
    for row in scenes(reader, slug, &SceneQuery::default())? {
        if row.scene == scene {
            continue;
        }
        if !vectors.contains_key(&row.sha256) {
            let key = embedding_key(model, &row.sha256);
            let vector = match reader.find_document(&key)? {
                Some(doc) => Some(decode(&key, &doc.content)?),
                None => None,
            };
            vectors.insert(row.sha256.clone(), vector);
        }
        let Some(Some(vector)) = vectors.get(&row.sha256) else {
            continue;
        };
        if vector.len() != query.len() {
            return Err(Error::corrupt(
                format!("<document '{}'>", embedding_key(model, &row.sha256)),
                format!("{} dimensions, the query has {}", vector.len(), query.len()),
            ));
        }
        scored.push(Similar {
            score: cosine(&query, vector),
            scene: row,
        });
    }
    // A stable sort keeps story order among equal scores.
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    scored.truncate(top);
    Ok(scored)
}
