//! What a backend's full-text index answers, and the scanning answers every
//! backend gets by default.
//!
//! A backend with an index (the in-memory [`SearchIndex`](super::SearchIndex),
//! SQLite's FTS5 tables) overrides [`ReadTxn::search_terms`],
//! [`ReadTxn::search_infix`] and, if its answers name nodes by row,
//! [`ReadTxn::search_names`]. Everything else — scores, order, pages, the
//! substring guarantee — happens once, above, in [`super::engine`]. The
//! defaults here read every node through the plain reads, so a custom backend
//! searches correctly without writing anything.

use std::borrow::Cow;
use std::sync::Arc;

use super::query::TermQuery;
use super::rank::{CorpusStats, TermFreq};
use super::text::{DocTokens, FIELDS, Inside};
use crate::backend::ReadTxn;
use crate::error::Result;
use crate::filter::NodeFilter;
use crate::model::Node;

/// Nodes read per step when scanning.
const SCAN_PAGE: usize = 1024;

/// How a backend names a node in its answers: by name, or by a row number it
/// turns into a name later ([`ReadTxn::search_names`]), so that it needs to look
/// up only the names of the hits that make a page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DocKey<'a> {
    /// The node's name.
    Name(Cow<'a, str>),
    /// A backend-specific row number.
    Row(i64),
}

/// One node holding at least one of the query's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct DocMatch<'a> {
    /// Which node.
    pub key: DocKey<'a>,
    /// Its type: borrowed from an index that holds it shared, or a shared copy
    /// (a backend reading rows shares one copy between the many nodes of a type
    /// instead of allocating one per node).
    pub node_type: Cow<'a, Arc<str>>,
    /// Its tokens per field (see [`DocTokens::lengths`]).
    pub lengths: [u32; FIELDS],
}

/// A backend's answer for a [`TermQuery`]: the corpus figures and every node
/// (of any type) holding at least one term, in any order, with how often each
/// term occurs in each of its fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TermMatches<'a> {
    /// Figures over every node.
    pub corpus: CorpusStats,
    width: usize,
    docs: Vec<DocMatch<'a>>,
    freqs: Vec<TermFreq>,
}

impl<'a> TermMatches<'a> {
    /// No matches yet, for a query of `terms` terms.
    pub fn new(corpus: CorpusStats, terms: usize) -> Self {
        Self {
            corpus,
            width: terms * FIELDS,
            docs: Vec::new(),
            freqs: Vec::new(),
        }
    }

    /// Adds a node (with every frequency 0); its index.
    pub fn push(&mut self, doc: DocMatch<'a>) -> usize {
        self.docs.push(doc);
        self.freqs
            .resize(self.freqs.len() + self.width, TermFreq::default());
        self.docs.len() - 1
    }

    /// How often term `term` occurs in field `field` of node `doc`.
    pub fn freq_mut(&mut self, doc: usize, term: usize, field: usize) -> Option<&mut TermFreq> {
        self.freqs.get_mut(doc * self.width + term * FIELDS + field)
    }

    /// The matching nodes.
    pub fn docs(&self) -> &[DocMatch<'a>] {
        &self.docs
    }

    /// The matching nodes, to complete what is known about them.
    pub fn docs_mut(&mut self) -> &mut [DocMatch<'a>] {
        &mut self.docs
    }

    /// Node `doc`'s frequencies, term-major: `[term * FIELDS + field]`.
    pub fn tf(&self, doc: usize) -> &[TermFreq] {
        self.freqs
            .get(doc * self.width..(doc + 1) * self.width)
            .unwrap_or(&[])
    }
}

/// How often each term of `terms` occurs in each field of `doc`; `None` if none does.
pub fn term_freqs(doc: &DocTokens, terms: &TermQuery) -> Option<Vec<TermFreq>> {
    let mut tf = vec![TermFreq::default(); terms.len() * FIELDS];
    let mut any = false;
    for (field, tokens) in doc.fields.iter().enumerate() {
        for token in tokens {
            for i in 0..terms.len() {
                if let Some(exact) = terms.freq_of(i, token) {
                    let slot = &mut tf[i * FIELDS + field];
                    if exact {
                        slot.exact = slot.exact.saturating_add(1);
                    } else {
                        slot.longer = slot.longer.saturating_add(1);
                    }
                    any = true;
                }
            }
        }
    }
    any.then_some(tf)
}

/// Calls `each` with every node matching `filter` whose name sorts after
/// `after`, by name, reading a page at a time, until `each` says `false`.
pub(crate) fn for_each_node<R: ReadTxn + ?Sized>(
    r: &R,
    filter: &NodeFilter,
    after: Option<&str>,
    mut each: impl FnMut(Node) -> Result<bool>,
) -> Result<()> {
    let mut after: Option<String> = after.map(str::to_owned);
    loop {
        let page = r.scan_nodes(filter, after.as_deref(), SCAN_PAGE)?;
        let full = page.len() == SCAN_PAGE;
        after = page.last().map(|n| n.name.clone());
        for node in page {
            if !each(node)? {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// [`ReadTxn::search_terms`] by reading and analysing every node.
pub fn scan_terms<R: ReadTxn + ?Sized>(r: &R, terms: &TermQuery) -> Result<TermMatches<'static>> {
    let mut out = TermMatches::new(CorpusStats::default(), terms.len());
    for_each_node(r, &NodeFilter::default(), None, |node| {
        let doc = DocTokens::of(&node);
        let lengths = doc.lengths();
        out.corpus.nodes += 1;
        for (total, len) in out.corpus.tokens.iter_mut().zip(lengths) {
            *total += u64::from(len);
        }
        if let Some(tf) = term_freqs(&doc, terms) {
            let at = out.push(DocMatch {
                key: DocKey::Name(Cow::Owned(node.name)),
                node_type: Cow::Owned(Arc::from(node.node_type)),
                lengths,
            });
            for (i, freq) in tf.into_iter().enumerate() {
                if let Some(slot) = out.freq_mut(at, i / FIELDS, i % FIELDS) {
                    *slot = freq;
                }
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// [`ReadTxn::search_infix`] by reading and analysing every node.
pub fn scan_infix<R: ReadTxn + ?Sized>(r: &R, fragment: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let inside = Inside::new(fragment);
    for_each_node(r, &NodeFilter::default(), None, |node| {
        let doc = DocTokens::of(&node);
        if doc.fields.iter().flatten().any(|token| inside.holds(token)) {
            out.push(node.name);
        }
        Ok(true)
    })?;
    Ok(out)
}
