//! The search contract computed the plain way: read every node, score every
//! node, check every node for the substring, sort everything. Slow and
//! obviously right; the shared suite demands that every backend's search
//! (through its index) returns exactly what this returns.

use std::cmp::Ordering;

use super::cursor::{SearchCursor, page_of};
use super::engine::{document_frequencies, substring_hit, term_fields};
use super::primitive::{for_each_node, term_freqs};
use super::query::{Infix, MatchKind, Plan, SearchHit, SearchQuery};
use super::rank::{CorpusStats, Scoring, TermFreq};
use super::text::{DocTokens, substring_fields};
use crate::backend::ReadTxn;
use crate::error::Result;
use crate::filter::{NodeFilter, Page};
use crate::model::Node;

/// One page of `query`'s hits, computed without any index from every node of `r`.
///
/// The executable specification of [`GraphRead::search`](crate::GraphRead::search).
pub fn reference_search<R: ReadTxn + ?Sized>(
    r: &R,
    query: &SearchQuery,
) -> Result<Page<SearchHit>> {
    query.check()?;
    let plan = Plan::new(query);
    let cursor = query
        .cursor
        .as_ref()
        .map(|c| SearchCursor::decode(c, plan.fingerprint, plan.terms.len()))
        .transpose()?;
    let mut nodes: Vec<(Node, DocTokens, Option<Vec<TermFreq>>)> = Vec::new();
    let mut corpus = CorpusStats::default();
    for_each_node(r, &NodeFilter::default(), None, |node| {
        let doc = DocTokens::of(&node);
        corpus.nodes += 1;
        for (total, len) in corpus.tokens.iter_mut().zip(doc.lengths()) {
            *total += u64::from(len);
        }
        let tf = if plan.terms.is_empty() {
            None
        } else {
            term_freqs(&doc, &plan.terms)
        };
        nodes.push((node, doc, tf));
        Ok(true)
    })?;
    let scoring = match &cursor {
        Some(c) => c.scoring.clone(),
        None => Scoring {
            df: document_frequencies(
                nodes.iter().filter_map(|(_, _, tf)| tf.as_deref()),
                plan.terms.len(),
            ),
            corpus,
        },
    };

    let mut hits: Vec<SearchHit> = Vec::new();
    for (node, doc, tf) in nodes {
        if !query.node_types.is_empty() && !query.node_types.contains(&node.node_type) {
            continue;
        }
        if plan.infix == Infix::MatchAll {
            hits.push(SearchHit {
                name: node.name,
                node_type: node.node_type,
                score: 0.0,
                kind: MatchKind::All,
                matched: Vec::new(),
            });
        } else if let Some(tf) = tf {
            hits.push(SearchHit {
                score: scoring.score(&doc.lengths(), &tf),
                matched: term_fields(&tf),
                name: node.name,
                node_type: node.node_type,
                kind: MatchKind::Terms,
            });
        } else {
            let fields = substring_fields(&node, &plan.needle);
            if !fields.is_empty() {
                hits.push(substring_hit(node, &fields));
            }
        }
    }
    // Term hits (positive scores) first, best first; then score-0 hits; ties by name.
    hits.sort_by(|a, b| match b.score.total_cmp(&a.score) {
        Ordering::Equal => a.name.cmp(&b.name),
        other => other,
    });
    if let Some(c) = &cursor {
        hits.retain(|h| super::engine::after_cursor(h.score, &h.name, c));
    }
    Ok(page_of(hits, query.limit, plan.fingerprint, || {
        if plan.infix == Infix::MatchAll || plan.terms.is_empty() {
            Scoring::unranked(plan.terms.len())
        } else {
            scoring
        }
    }))
}
