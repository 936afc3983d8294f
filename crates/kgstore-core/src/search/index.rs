//! The in-memory inverted index: kept by [`GraphState`](crate::GraphState) on
//! every put and delete, so the memory and JSON-files backends (and any backend
//! that keeps its state in a `GraphState`) search through it.
//!
//! It lives in persistent ordered maps like the rest of the state, so a
//! snapshot of it is a cheap structural copy: readers search their snapshot, a
//! write transaction searches its own writes, and a rollback drops them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

use super::primitive::{DocKey, DocMatch, TermMatches};
use super::query::TermQuery;
use super::rank::{CorpusStats, TermFreq};
use super::text::{DocTokens, FIELDS, holds_inside};
use crate::model::Node;

/// What every posting of one node shares.
#[derive(Debug, PartialEq, Eq)]
struct DocInfo {
    node_type: Arc<str>,
    lengths: [u32; FIELDS],
}

/// One term in one node: how often per field.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Posting {
    tf: [u32; FIELDS],
    doc: Arc<DocInfo>,
}

/// An inverted index of nodes' tokens with the figures BM25F needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchIndex {
    /// `(term, node name)` → the term's frequencies in the node.
    postings: OrdMap<(Arc<str>, Arc<str>), Posting>,
    /// Every term with how many nodes hold it (its `Arc` is shared by the postings).
    vocabulary: OrdMap<Arc<str>, u64>,
    corpus: CorpusStats,
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of these nodes.
    pub fn build<'n>(nodes: impl IntoIterator<Item = &'n Node>) -> Self {
        let mut index = Self::new();
        for node in nodes {
            index.insert(node);
        }
        index
    }

    /// The corpus figures.
    pub fn corpus(&self) -> &CorpusStats {
        &self.corpus
    }

    /// How many distinct terms there are.
    pub fn terms_count(&self) -> usize {
        self.vocabulary.len()
    }

    /// Adds a node (which must not be in the index).
    pub fn insert(&mut self, node: &Node) {
        let doc = DocTokens::of(node);
        let lengths = doc.lengths();
        self.corpus.nodes += 1;
        for (total, len) in self.corpus.tokens.iter_mut().zip(lengths) {
            *total += u64::from(len);
        }
        let info = Arc::new(DocInfo {
            node_type: Arc::from(node.node_type.as_str()),
            lengths,
        });
        let name: Arc<str> = Arc::from(node.name.as_str());
        for (term, tf) in doc.term_counts() {
            let term = match self.vocabulary.get_key_value(term) {
                Some((known, _)) => Arc::clone(known),
                None => Arc::from(term),
            };
            *self.vocabulary.entry(Arc::clone(&term)).or_insert(0) += 1;
            self.postings.insert(
                (term, Arc::clone(&name)),
                Posting {
                    tf,
                    doc: Arc::clone(&info),
                },
            );
        }
    }

    /// Removes a node (exactly as it was inserted).
    pub fn remove(&mut self, node: &Node) {
        let doc = DocTokens::of(node);
        self.corpus.nodes = self.corpus.nodes.saturating_sub(1);
        for (total, len) in self.corpus.tokens.iter_mut().zip(doc.lengths()) {
            *total = total.saturating_sub(u64::from(len));
        }
        let name: Arc<str> = Arc::from(node.name.as_str());
        for (term, _) in doc.term_counts() {
            let Some((known, count)) = self.vocabulary.get_key_value(term) else {
                continue;
            };
            let (known, count) = (Arc::clone(known), *count);
            self.postings
                .remove(&(Arc::clone(&known), Arc::clone(&name)));
            if count <= 1 {
                self.vocabulary.remove(term);
            } else {
                self.vocabulary.insert(known, count - 1);
            }
        }
    }

    /// Every node holding a term of `terms`, with the corpus figures.
    pub fn terms(&self, terms: &TermQuery) -> TermMatches<'_> {
        let mut docs: Vec<DocMatch<'_>> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        for (i, term) in terms.terms().iter().enumerate() {
            let prefix = terms.is_prefix(i);
            let start: (Arc<str>, Arc<str>) = (Arc::from(term.as_str()), Arc::from(""));
            let within = |t: &str| {
                if prefix {
                    t.starts_with(term.as_str())
                } else {
                    t == term
                }
            };
            for ((t, name), posting) in self
                .postings
                .range((Bound::Included(start), Bound::Unbounded))
                .take_while(|((t, _), _)| within(t))
            {
                let (name, exact): (&str, bool) = (name, **t == **term);
                let at = *slot.entry(name).or_insert_with(|| {
                    docs.push(DocMatch {
                        key: DocKey::Name(Cow::Borrowed(name)),
                        node_type: Arc::clone(&posting.doc.node_type),
                        lengths: posting.doc.lengths,
                        tf: vec![TermFreq::default(); terms.len() * FIELDS],
                    });
                    docs.len() - 1
                });
                for (f, count) in posting.tf.iter().enumerate() {
                    let freq = &mut docs[at].tf[i * FIELDS + f];
                    if exact {
                        freq.exact = freq.exact.saturating_add(*count);
                    } else {
                        freq.longer = freq.longer.saturating_add(*count);
                    }
                }
            }
        }
        TermMatches {
            corpus: self.corpus.clone(),
            docs,
        }
    }

    /// The names of nodes holding a term that contains `fragment` after its
    /// first character, or a cut term.
    pub fn infix(&self, fragment: &str) -> Vec<String> {
        let mut out = Vec::new();
        for term in self.vocabulary.keys() {
            if !holds_inside(term, fragment) {
                continue;
            }
            let start: (Arc<str>, Arc<str>) = (Arc::clone(term), Arc::from(""));
            out.extend(
                self.postings
                    .range((Bound::Included(start), Bound::Unbounded))
                    .take_while(|((t, _), _)| t == term)
                    .map(|((_, name), _)| name.to_string()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, observation: &str) -> Node {
        Node::new(name, "thing")
            .unwrap()
            .with_observation(observation)
    }

    #[test]
    fn insert_then_remove_leaves_nothing() {
        let a = node("Alice", "drinks tea, green tea");
        let b = node("Bob", "steams milk");
        let mut index = SearchIndex::build([&a, &b]);
        assert_eq!(index.corpus().nodes, 2);
        assert_eq!(index.corpus().tokens, [2, 2, 6, 0]);
        index.remove(&a);
        index.remove(&b);
        assert_eq!(index, SearchIndex::new());
    }

    #[test]
    fn terms_and_prefixes_find_their_nodes() {
        let a = node("Alice", "drinks tea, green tea");
        let b = node("Bob", "team lead");
        let index = SearchIndex::build([&a, &b]);
        let q = TermQuery::new(vec!["green".into(), "tea".into()]);
        let got = index.terms(&q);
        assert_eq!(got.docs.len(), 2);
        let alice = got
            .docs
            .iter()
            .find(|d| d.key == DocKey::Name("Alice".into()))
            .unwrap();
        assert_eq!(
            alice.tf[FIELDS + 2],
            TermFreq {
                exact: 2,
                longer: 0
            }
        );
        assert_eq!(
            alice.tf[2],
            TermFreq {
                exact: 1,
                longer: 0
            }
        );
        let bob = got
            .docs
            .iter()
            .find(|d| d.key == DocKey::Name("Bob".into()))
            .unwrap();
        assert_eq!(
            bob.tf[FIELDS + 2],
            TermFreq {
                exact: 0,
                longer: 1
            }
        );
        assert_eq!(index.infix("eam"), ["Bob"]);
        assert!(index.infix("tea").is_empty());
    }
}
