//! The in-memory inverted index: kept by [`GraphState`](crate::GraphState) on
//! every put and delete, so the memory and JSON-files backends (and any backend
//! that keeps its state in a `GraphState`) search through it.
//!
//! It lives in persistent ordered maps like the rest of the state, so a
//! snapshot of it is a cheap structural copy: readers search their snapshot, a
//! write transaction searches its own writes, and a rollback drops them.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use imbl::{OrdMap, Vector};

use super::primitive::{DocKey, DocMatch, TermMatches};
use super::query::TermQuery;
use super::rank::CorpusStats;
use super::text::{DocTokens, FIELDS, TRUNCATED};
use crate::model::Node;

/// What every posting of one node shares.
#[derive(Debug, PartialEq, Eq)]
struct DocInfo {
    name: Arc<str>,
    node_type: Arc<str>,
    lengths: [u32; FIELDS],
}

/// One term in one node: the node's number, how often per field.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Posting {
    doc: u64,
    tf: [u32; FIELDS],
    info: Arc<DocInfo>,
}

/// An inverted index of nodes' tokens with the figures BM25F needs.
///
/// Each node gets a number when it is indexed, numbers only grow, and each
/// term's postings are a persistent vector in node-number order: indexing a
/// node appends to the vectors of its terms, removing it finds its posting by
/// binary search. Equality compares what is indexed, not the numbers.
#[derive(Clone, Debug, Default)]
pub struct SearchIndex {
    /// Every term with its postings (as many as nodes hold it), in order for
    /// prefixes and for words inside words. An ordered map rather than a hash
    /// map: a few string compares more per lookup, for less than half the
    /// memory and cheaper copies of a path when a snapshot shares it.
    terms: OrdMap<Arc<str>, Vector<Posting>>,
    /// Each node's number.
    docs: OrdMap<Arc<str>, u64>,
    next_doc: u64,
    corpus: CorpusStats,
    /// Every term in one text, built when a search first looks for a word
    /// inside words and shared by every copy of the index until a term comes or
    /// goes (then a new, empty one replaces it).
    joined: Arc<OnceLock<Joined>>,
}

/// The vocabulary as one text, so that finding a fragment inside any term is
/// one pass of a fast substring search.
#[derive(Debug)]
struct Joined {
    /// The terms, in order, each followed by a NUL (which no term holds).
    text: String,
    /// Where each term starts in `text`.
    starts: Vec<usize>,
    /// The terms, in the same order.
    terms: Vec<Arc<str>>,
}

impl Joined {
    fn of<V: Clone>(ordered: &OrdMap<Arc<str>, V>) -> Self {
        let mut joined = Self {
            text: String::new(),
            starts: Vec::with_capacity(ordered.len()),
            terms: Vec::with_capacity(ordered.len()),
        };
        for term in ordered.keys() {
            joined.starts.push(joined.text.len());
            joined.text.push_str(term);
            joined.text.push('\0');
            joined.terms.push(Arc::clone(term));
        }
        joined
    }

    /// The terms holding `fragment` after their first character, or cut.
    fn inside(&self, fragment: &str) -> Vec<&Arc<str>> {
        let mut found: Vec<usize> = Vec::new();
        if !fragment.is_empty() {
            for at in memchr::memmem::find_iter(self.text.as_bytes(), fragment.as_bytes()) {
                let i = self.starts.partition_point(|s| *s <= at).saturating_sub(1);
                let end = self
                    .starts
                    .get(i + 1)
                    .map_or(self.text.len(), |next| next - 1);
                if at > self.starts[i] && at + fragment.len() <= end && found.last() != Some(&i) {
                    found.push(i);
                }
            }
        }
        for (i, term) in self.terms.iter().enumerate() {
            if term.ends_with(TRUNCATED) {
                found.push(i);
            }
        }
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| &self.terms[i]).collect()
    }
}

impl PartialEq for SearchIndex {
    fn eq(&self, other: &Self) -> bool {
        type Entry = (Arc<str>, Arc<str>, [u32; FIELDS], Arc<str>, [u32; FIELDS]);
        let content = |index: &Self| {
            let mut all: Vec<Entry> = index
                .terms
                .iter()
                .flat_map(|(term, postings)| {
                    postings.iter().map(move |p| {
                        (
                            Arc::clone(term),
                            Arc::clone(&p.info.name),
                            p.tf,
                            Arc::clone(&p.info.node_type),
                            p.info.lengths,
                        )
                    })
                })
                .collect();
            all.sort();
            all
        };
        self.corpus == other.corpus
            && self.docs.len() == other.docs.len()
            && self.terms.keys().eq(other.terms.keys())
            && content(self) == content(other)
    }
}

impl Eq for SearchIndex {}

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
        self.terms.len()
    }

    /// Adds a node (which must not be in the index).
    pub fn insert(&mut self, node: &Node) {
        let doc = DocTokens::of(node);
        let lengths = doc.lengths();
        self.corpus.nodes += 1;
        for (total, len) in self.corpus.tokens.iter_mut().zip(lengths) {
            *total += u64::from(len);
        }
        let name: Arc<str> = Arc::from(node.name.as_str());
        let number = self.next_doc;
        self.next_doc += 1;
        self.docs.insert(Arc::clone(&name), number);
        let info = Arc::new(DocInfo {
            name,
            node_type: Arc::from(node.node_type.as_str()),
            lengths,
        });
        for (term, tf) in doc.term_counts() {
            let posting = Posting {
                doc: number,
                tf,
                info: Arc::clone(&info),
            };
            match self.terms.get_mut(term) {
                Some(postings) => postings.push_back(posting),
                None => {
                    let term: Arc<str> = Arc::from(term);
                    self.terms.insert(term, Vector::unit(posting));
                    self.joined = Arc::default();
                }
            }
        }
    }

    /// Removes a node (exactly as it was inserted).
    pub fn remove(&mut self, node: &Node) {
        let Some(number) = self.docs.remove(node.name.as_str()) else {
            return;
        };
        let doc = DocTokens::of(node);
        self.corpus.nodes = self.corpus.nodes.saturating_sub(1);
        for (total, len) in self.corpus.tokens.iter_mut().zip(doc.lengths()) {
            *total = total.saturating_sub(u64::from(len));
        }
        for (term, _) in doc.term_counts() {
            let Some(postings) = self.terms.get_mut(term) else {
                continue;
            };
            if let Ok(at) = postings.binary_search_by_key(&number, |p| p.doc) {
                postings.remove(at);
            }
            if postings.is_empty() {
                self.terms.remove(term);
                self.joined = Arc::default();
            }
        }
    }

    /// Every node holding a term of `terms`, with the corpus figures.
    ///
    /// Each matching term's postings are in node-number order, so the lists are
    /// merged by node number: a node's postings arrive one after the other and
    /// no hash map is needed to gather them.
    pub fn terms(&self, terms: &TermQuery) -> TermMatches<'_> {
        let mut out = TermMatches::new(self.corpus.clone(), terms.len());
        // (term index, exact?, postings) for every term that matches.
        let mut lists: Vec<(usize, bool, &Vector<Posting>)> = Vec::new();
        for (i, term) in terms.terms().iter().enumerate() {
            if terms.is_prefix(i) {
                lists.extend(
                    self.terms
                        .range::<_, str>((Bound::Included(term.as_str()), Bound::Unbounded))
                        .take_while(|(t, _)| t.starts_with(term.as_str()))
                        .map(|(t, postings)| (i, **t == **term, postings)),
                );
            } else if let Some(postings) = self.terms.get(term.as_str()) {
                lists.push((i, true, postings));
            }
        }
        let mut cursors: Vec<_> = lists.iter().map(|(_, _, p)| p.iter().peekable()).collect();
        let mut heads: BinaryHeap<Reverse<(u64, usize)>> = cursors
            .iter_mut()
            .enumerate()
            .filter_map(|(k, c)| Some(Reverse((c.peek()?.doc, k))))
            .collect();
        let mut current: Option<(u64, usize)> = None;
        while let Some(Reverse((doc, k))) = heads.pop() {
            let Some(posting) = cursors[k].next() else {
                continue;
            };
            if let Some(next) = cursors[k].peek() {
                heads.push(Reverse((next.doc, k)));
            }
            let at = match current {
                Some((number, at)) if number == doc => at,
                _ => {
                    let at = out.push(DocMatch {
                        key: DocKey::Name(Cow::Borrowed(&posting.info.name)),
                        node_type: Cow::Borrowed(&posting.info.node_type),
                        lengths: posting.info.lengths,
                    });
                    current = Some((doc, at));
                    at
                }
            };
            let (term, exact, _) = lists[k];
            for (f, count) in posting.tf.iter().enumerate() {
                if let Some(freq) = out.freq_mut(at, term, f) {
                    if exact {
                        freq.exact = freq.exact.saturating_add(*count);
                    } else {
                        freq.longer = freq.longer.saturating_add(*count);
                    }
                }
            }
        }
        out
    }

    /// The names of nodes holding a term that contains `fragment` after its
    /// first character, or a cut term.
    pub fn infix(&self, fragment: &str) -> Vec<String> {
        let joined = self.joined.get_or_init(|| Joined::of(&self.terms));
        let mut out = Vec::new();
        for term in joined.inside(fragment) {
            if let Some(postings) = self.terms.get(&**term) {
                out.extend(postings.iter().map(|p| p.info.name.to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::rank::TermFreq;

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
        assert_eq!(got.docs().len(), 2);
        let find = |name: &str| {
            got.docs()
                .iter()
                .position(|d| d.key == DocKey::Name(name.into()))
                .unwrap()
        };
        let tf = |exact, longer| TermFreq { exact, longer };
        let alice = got.tf(find("Alice"));
        assert_eq!(alice[FIELDS + 2], tf(2, 0));
        assert_eq!(alice[2], tf(1, 0));
        let bob = got.tf(find("Bob"));
        assert_eq!(bob[FIELDS + 2], tf(0, 1));
        assert_eq!(index.infix("eam"), ["Bob"]);
        assert!(index.infix("tea").is_empty());
    }
}
