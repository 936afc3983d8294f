//! The ranking formula: BM25F over four weighted fields, written once.
//!
//! For a node `d` and the query's terms `t`:
//!
//! ```text
//! score(d)  = Σ_t idf(t) · tf~(t, d) · (k1 + 1) / (tf~(t, d) + k1)
//! tf~(t, d) = Σ_f w_f · tf_f(t, d) / (1 − b_f + b_f · len_f(d) / avglen_f)
//! idf(t)    = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! ```
//!
//! `N` is the number of nodes, `df(t)` how many contain `t` in any field,
//! `len_f(d)` the tokens of field `f` of `d` and `avglen_f` their mean over all
//! nodes (a field no node has any token in is not normalised). For the last
//! term, matched as a prefix, `tf_f` counts a token equal to it as 1 and a
//! longer token starting with it as [`PREFIX_WEIGHT`]. Every input is an
//! integer and every operation happens in one fixed order, so every backend
//! computes bit-for-bit the same score for the same data.

use serde::{Deserialize, Serialize};

use super::text::FIELDS;

/// BM25's term-frequency saturation.
pub const K1: f64 = 1.2;

/// Field weights: name, type, observations, attributes.
pub const WEIGHTS: [f64; FIELDS] = [5.0, 2.0, 1.0, 1.0];

/// Length normalisation per field (types are one or two tokens: none).
pub const LENGTH_NORM: [f64; FIELDS] = [0.75, 0.0, 0.75, 0.75];

/// What a token that merely starts with the last query word counts for.
pub const PREFIX_WEIGHT: f64 = 0.5;

/// How often a term occurs in one field of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermFreq {
    /// Tokens equal to the term.
    pub exact: u32,
    /// Tokens longer than the term that start with it (only for the prefix term).
    pub longer: u32,
}

impl TermFreq {
    /// Whether the term occurs at all.
    pub fn any(self) -> bool {
        self.exact > 0 || self.longer > 0
    }

    fn weight(self) -> f64 {
        f64::from(self.exact) + PREFIX_WEIGHT * f64::from(self.longer)
    }
}

/// The collection-wide figures a score depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusStats {
    /// How many nodes there are.
    pub nodes: u64,
    /// How many tokens all nodes have, per field.
    // (A path: serde's derive defines its own `FIELDS` inside the impl.)
    pub tokens: [u64; super::text::FIELDS],
}

/// Everything a score depends on besides the node itself: the corpus figures
/// and each term's document frequency. A search cursor carries it, so that the
/// pages of one search all rank with the same figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoring {
    /// The corpus figures.
    pub corpus: CorpusStats,
    /// How many nodes contain each query term, in term order.
    pub df: Vec<u64>,
}

impl Scoring {
    /// The figures of a search that ranks nothing (no terms looked up): an
    /// empty corpus, no term in any node.
    pub(crate) fn unranked(terms: usize) -> Self {
        Scoring {
            corpus: CorpusStats::default(),
            df: vec![0; terms],
        }
    }

    /// The inverse document frequency of term `i`.
    fn idf(&self, i: usize) -> f64 {
        let n = self.corpus.nodes as f64;
        let df = self.df.get(i).copied().unwrap_or(0) as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The BM25F score of a node with field lengths `lengths` whose term
    /// frequencies are `tf` (term-major: `tf[term * FIELDS + field]`).
    pub fn score(&self, lengths: &[u32; FIELDS], tf: &[TermFreq]) -> f64 {
        let mut norms = [1.0; FIELDS];
        for (f, norm) in norms.iter_mut().enumerate() {
            let total = self.corpus.tokens[f];
            if total > 0 && self.corpus.nodes > 0 {
                let avg = total as f64 / self.corpus.nodes as f64;
                *norm = 1.0 - LENGTH_NORM[f] + LENGTH_NORM[f] * f64::from(lengths[f]) / avg;
            }
        }
        let mut score = 0.0;
        for (i, fields) in tf.chunks_exact(FIELDS).enumerate() {
            let mut weighted = 0.0;
            for (f, freq) in fields.iter().enumerate() {
                if freq.any() {
                    weighted += WEIGHTS[f] * freq.weight() / norms[f];
                }
            }
            if weighted > 0.0 {
                score += self.idf(i) * weighted * (K1 + 1.0) / (weighted + K1);
            }
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tf(exact: u32) -> TermFreq {
        TermFreq { exact, longer: 0 }
    }

    fn scoring() -> Scoring {
        Scoring {
            corpus: CorpusStats {
                nodes: 100,
                tokens: [200, 100, 1000, 300],
            },
            df: vec![5, 50],
        }
    }

    #[test]
    fn rarer_terms_and_name_matches_score_higher() {
        let s = scoring();
        let none = TermFreq::default();
        let in_name = s.score(
            &[2, 1, 10, 3],
            &[tf(1), none, none, none, none, none, none, none],
        );
        let in_obs = s.score(
            &[2, 1, 10, 3],
            &[none, none, tf(1), none, none, none, none, none],
        );
        let common = s.score(
            &[2, 1, 10, 3],
            &[none, none, none, none, tf(1), none, none, none],
        );
        assert!(in_name > in_obs && in_obs > 0.0, "{in_name} {in_obs}");
        assert!(common < in_name);
        assert_eq!(s.score(&[2, 1, 10, 3], &[none; 8]), 0.0);
    }

    #[test]
    fn shorter_fields_and_exact_prefixes_score_higher() {
        let s = scoring();
        let none = TermFreq::default();
        let short = s.score(&[1, 1, 10, 3], &[tf(1), none, none, none]);
        let long = s.score(&[6, 1, 10, 3], &[tf(1), none, none, none]);
        assert!(short > long);
        let exact = s.score(&[2, 1, 10, 3], &[tf(1), none, none, none]);
        let longer = s.score(
            &[2, 1, 10, 3],
            &[
                TermFreq {
                    exact: 0,
                    longer: 1,
                },
                none,
                none,
                none,
            ],
        );
        assert!(exact > longer && longer > 0.0);
    }

    #[test]
    fn idf_stays_positive_for_terms_everywhere() {
        let s = Scoring {
            corpus: CorpusStats {
                nodes: 3,
                tokens: [3, 3, 0, 0],
            },
            df: vec![3],
        };
        assert!(
            s.score(
                &[1, 1, 0, 0],
                &[
                    tf(1),
                    TermFreq::default(),
                    TermFreq::default(),
                    TermFreq::default()
                ]
            ) > 0.0
        );
    }
}
