//! A search, run over a backend's primitives: rank the term hits, add the
//! substring-only hits after them, cut the page.
//!
//! The order is total and the same on every backend: hits holding query words
//! first, by score (highest first) and then name (byte order); then hits holding
//! only the whole query as a substring, by name. [`super::reference_search`] is
//! the same contract computed naively; the shared suite compares the two.

use std::collections::HashMap;

use super::cursor::{SearchCursor, page_of};
use super::primitive::{DocKey, DocMatch, TermMatches, for_each_node, term_freqs};
use super::query::{Infix, MatchKind, Plan, SearchField, SearchHit, SearchQuery};
use super::rank::Scoring;
use super::text::{DocTokens, FIELDS, substring_fields};
use crate::backend::ReadTxn;
use crate::error::{Error, Result};
use crate::filter::{NodeFilter, Page};
use crate::model::Node;

/// The fields a term hit holds some term in.
pub(crate) fn term_fields(tf: &[super::rank::TermFreq]) -> Vec<SearchField> {
    SearchField::ALL
        .into_iter()
        .enumerate()
        .filter(|(f, _)| tf.iter().skip(*f).step_by(FIELDS).any(|t| t.any()))
        .map(|(_, field)| field)
        .collect()
}

/// The hit for a node holding the whole query but no term.
pub(crate) fn substring_hit(node: Node, fields: &[usize]) -> SearchHit {
    SearchHit {
        matched: fields
            .iter()
            .filter_map(|f| SearchField::ALL.get(*f).copied())
            .collect(),
        name: node.name,
        node_type: node.node_type,
        score: 0.0,
        kind: MatchKind::Substring,
    }
}

/// How many nodes contain each term.
pub(crate) fn document_frequencies<'d>(
    docs: impl Iterator<Item = &'d [super::rank::TermFreq]>,
    terms: usize,
) -> Vec<u64> {
    let mut df = vec![0u64; terms];
    for tf in docs {
        for (i, count) in df.iter_mut().enumerate() {
            if tf[i * FIELDS..(i + 1) * FIELDS].iter().any(|t| t.any()) {
                *count += 1;
            }
        }
    }
    df
}

/// Whether a hit of score `score` and name `name` comes after the cursor's.
pub(crate) fn after_cursor(score: f64, name: &str, cursor: &SearchCursor) -> bool {
    score < cursor.score || (score == cursor.score && name > cursor.name.as_str())
}

/// Runs a search on a read transaction.
pub(crate) fn search(r: &dyn ReadTxn, query: &SearchQuery) -> Result<Page<SearchHit>> {
    query.check()?;
    let plan = Plan::new(query);
    let cursor = query
        .cursor
        .as_ref()
        .map(|c| SearchCursor::decode(c, plan.fingerprint, plan.terms.len()))
        .transpose()?;
    let want = query.limit + 1;
    let of_type = |t: &str| query.node_types.is_empty() || query.node_types.iter().any(|x| x == t);
    let mut hits: Vec<SearchHit> = Vec::new();
    let mut scoring = cursor.as_ref().map(|c| c.scoring.clone());

    if plan.infix == Infix::MatchAll {
        let filter = NodeFilter {
            node_types: query.node_types.clone(),
            ..NodeFilter::default()
        };
        let after = cursor.as_ref().map(|c| c.name.as_str());
        for node in r.scan_nodes(&filter, after, want)? {
            hits.push(SearchHit {
                name: node.name,
                node_type: node.node_type,
                score: 0.0,
                kind: MatchKind::All,
                matched: Vec::new(),
            });
        }
    } else {
        // Term hits, unless the cursor is past them (substring hits score 0).
        if !plan.terms.is_empty() && cursor.as_ref().is_none_or(|c| c.score > 0.0) {
            let matches = r.search_terms(&plan.terms)?;
            let scoring = scoring.get_or_insert_with(|| Scoring {
                corpus: matches.corpus.clone(),
                df: document_frequencies(
                    (0..matches.docs().len()).map(|i| matches.tf(i)),
                    plan.terms.len(),
                ),
            });
            hits = rank_terms(r, &matches, scoring, cursor.as_ref(), want, &of_type)?;
        }
        if hits.len() < want {
            let after = cursor
                .as_ref()
                .filter(|c| c.score == 0.0)
                .map(|c| c.name.as_str());
            substring_hits(
                r,
                &plan,
                after,
                want - hits.len(),
                &query.node_types,
                &mut hits,
            )?;
        }
    }

    Ok(page_of(hits, query.limit, plan.fingerprint, || {
        scoring.unwrap_or_else(|| Scoring::unranked(plan.terms.len()))
    }))
}

/// The best `want` term hits after the cursor, in order.
fn rank_terms(
    r: &dyn ReadTxn,
    matches: &TermMatches<'_>,
    scoring: &Scoring,
    cursor: Option<&SearchCursor>,
    want: usize,
    of_type: &dyn Fn(&str) -> bool,
) -> Result<Vec<SearchHit>> {
    let docs = matches.docs();
    let mut names = Names::default();
    let mut ranked: Vec<(f64, usize)> = Vec::with_capacity(docs.len());
    let mut ties: Vec<(f64, usize)> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if !of_type(&doc.node_type) {
            continue;
        }
        let score = scoring.score(&doc.lengths, matches.tf(i));
        match cursor {
            Some(c) if score > c.score => {}
            Some(c) if score == c.score => ties.push((score, i)),
            _ => ranked.push((score, i)),
        }
    }
    if let Some(c) = cursor {
        // Hits scoring what the cursor's did come after it only by name.
        names.resolve(r, docs, ties.iter().map(|(_, i)| *i))?;
        for (score, i) in ties {
            if names.get(docs, i)? > c.name.as_str() {
                ranked.push((score, i));
            }
        }
    }
    if ranked.len() > want {
        // Keep the `want` best scores and everything tied with the last of them.
        ranked.select_nth_unstable_by(want - 1, |a, b| b.0.total_cmp(&a.0));
        let cutoff = ranked[want - 1].0;
        let mut kept = ranked[..want].to_vec();
        kept.extend(ranked[want..].iter().filter(|(s, _)| *s == cutoff));
        ranked = kept;
    }
    names.resolve(r, docs, ranked.iter().map(|(_, i)| *i))?;
    let mut keyed: Vec<(f64, &str, usize)> = ranked
        .iter()
        .map(|(s, i)| Ok((*s, names.get(docs, *i)?, *i)))
        .collect::<Result<_>>()?;
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    keyed.truncate(want);
    Ok(keyed
        .into_iter()
        .map(|(score, name, i)| SearchHit {
            name: name.to_owned(),
            node_type: docs[i].node_type.to_string(),
            score,
            kind: MatchKind::Terms,
            matched: term_fields(matches.tf(i)),
        })
        .collect())
}

/// Names of documents a backend reported by row, looked up as needed.
#[derive(Default)]
struct Names {
    by_row: HashMap<i64, String>,
}

impl Names {
    fn resolve(
        &mut self,
        r: &dyn ReadTxn,
        docs: &[DocMatch<'_>],
        which: impl Iterator<Item = usize>,
    ) -> Result<()> {
        let rows: Vec<i64> = which
            .filter_map(|i| match docs[i].key {
                DocKey::Row(row) if !self.by_row.contains_key(&row) => Some(row),
                _ => None,
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let names = r.search_names(&rows)?;
        if names.len() != rows.len() {
            return Err(Error::backend(
                "search",
                format!(
                    "asked for the names of {} rows, got {}",
                    rows.len(),
                    names.len()
                ),
            ));
        }
        self.by_row.extend(rows.into_iter().zip(names));
        Ok(())
    }

    fn get<'d>(&'d self, docs: &'d [DocMatch<'_>], i: usize) -> Result<&'d str> {
        match &docs[i].key {
            DocKey::Name(name) => Ok(name),
            DocKey::Row(row) => self
                .by_row
                .get(row)
                .map(String::as_str)
                .ok_or_else(|| Error::backend("search", format!("row {row} has no name"))),
        }
    }
}

/// Appends up to `need` nodes holding the needle but no term, by name, after `after`.
fn substring_hits(
    r: &dyn ReadTxn,
    plan: &Plan,
    after: Option<&str>,
    need: usize,
    types: &[String],
    hits: &mut Vec<SearchHit>,
) -> Result<()> {
    let of_type = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let target = hits.len() + need;
    match &plan.infix {
        Infix::None | Infix::MatchAll => {}
        Infix::Anywhere => {
            // No term: any node holding the needle is a hit; read them in order.
            let filter = NodeFilter {
                node_types: types.to_vec(),
                ..NodeFilter::default()
            };
            for_each_node(r, &filter, after, |node| {
                let fields = substring_fields(&node, &plan.needle);
                if !fields.is_empty() {
                    hits.push(substring_hit(node, &fields));
                }
                Ok(hits.len() < target)
            })?;
        }
        Infix::Inside(fragment) => {
            let mut candidates = r.search_infix(fragment)?;
            candidates.sort_unstable();
            candidates.dedup();
            let start = after.map_or(0, |a| candidates.partition_point(|n| n.as_str() <= a));
            for name in &candidates[start..] {
                if hits.len() >= target {
                    break;
                }
                let Some(node) = r.get_node(name)? else {
                    continue;
                };
                if !of_type(&node.node_type)
                    || term_freqs(&DocTokens::of(&node), &plan.terms).is_some()
                {
                    continue;
                }
                let fields = substring_fields(&node, &plan.needle);
                if !fields.is_empty() {
                    hits.push(substring_hit(node, &fields));
                }
            }
        }
    }
    Ok(())
}
