//! Search cursors: the last hit's position and the figures its page ranked with.
//!
//! A cursor holds the score and name of the last hit returned, and the corpus
//! figures and document frequencies the first page ranked with. Later pages
//! rank with those same figures, so the score of a node that did not change
//! stays what it was, and resuming after `(score, name)` neither skips nor
//! repeats such nodes, whatever is written in between. (With live figures,
//! every write would move every score.)

use super::query::SearchHit;
use super::rank::{CorpusStats, Scoring};
use crate::error::{Error, Result};
use crate::filter::{Cursor, Page};
use crate::validate;

/// Where a search resumes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SearchCursor {
    /// The fingerprint of the query (text and types) the cursor belongs to.
    pub fingerprint: u64,
    /// The figures every page of the search ranks with.
    pub scoring: Scoring,
    /// The last hit's score.
    pub score: f64,
    /// The last hit's name.
    pub name: String,
}

/// The page `hits` make (one more than `limit` of them when more follow): cut to
/// `limit`, with a cursor after its last hit for a search of `fingerprint` whose
/// later pages rank with `scoring`.
pub(crate) fn page_of(
    mut hits: Vec<SearchHit>,
    limit: usize,
    fingerprint: u64,
    scoring: impl FnOnce() -> Scoring,
) -> Page<SearchHit> {
    let next_cursor = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(|last| {
            SearchCursor {
                fingerprint,
                scoring: scoring(),
                score: last.score,
                name: last.name.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Page {
        items: hits,
        next_cursor,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

impl SearchCursor {
    /// The cursor as the opaque text callers pass back.
    pub fn encode(&self) -> Cursor {
        let c = &self.scoring.corpus;
        let df: Vec<String> = self.scoring.df.iter().map(|d| format!("{d:x}")).collect();
        let text = format!(
            "s{:x}.{:x}.{:x}.{:x}.{:x}.{:x}.{}.{:x}.{}",
            self.fingerprint,
            c.nodes,
            c.tokens[0],
            c.tokens[1],
            c.tokens[2],
            c.tokens[3],
            df.join("-"),
            self.score.to_bits(),
            hex(self.name.as_bytes()),
        );
        Cursor::from_text(text)
    }

    /// Reads a cursor back, refusing one that is malformed or belongs to another search.
    pub fn decode(cursor: &Cursor, fingerprint: u64, terms: usize) -> Result<Self> {
        let refused = |reason: &str| {
            Error::invalid_input(
                format!("search cursor '{}'", validate::shorten(cursor.as_str())),
                reason,
            )
        };
        let parts: Vec<&str> = cursor
            .as_str()
            .strip_prefix('s')
            .ok_or_else(|| refused("not a search cursor"))?
            .split('.')
            .collect();
        let [fp, nodes, t0, t1, t2, t3, df, score, name] = parts.as_slice() else {
            return Err(refused("not a search cursor"));
        };
        let malformed = || refused("malformed search cursor");
        let fp = number(fp).ok_or_else(malformed)?;
        if fp != fingerprint {
            return Err(refused(
                "it belongs to another search (other words or node types)",
            ));
        }
        let mut tokens = [0; 4];
        for (slot, text) in tokens.iter_mut().zip([t0, t1, t2, t3]) {
            *slot = number(text).ok_or_else(malformed)?;
        }
        let df: Vec<u64> = if df.is_empty() {
            Vec::new()
        } else {
            df.split('-')
                .map(number)
                .collect::<Option<_>>()
                .ok_or_else(malformed)?
        };
        if df.len() != terms {
            return Err(malformed());
        }
        let score = f64::from_bits(number(score).ok_or_else(malformed)?);
        if !score.is_finite() || score < 0.0 {
            return Err(malformed());
        }
        let name = unhex(name)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|n| !n.is_empty())
            .ok_or_else(malformed)?;
        Ok(Self {
            fingerprint: fp,
            scoring: Scoring {
                corpus: CorpusStats {
                    nodes: number(nodes).ok_or_else(malformed)?,
                    tokens,
                },
                df,
            },
            score,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sample() -> SearchCursor {
        SearchCursor {
            fingerprint: 0xdead_beef,
            scoring: Scoring {
                corpus: CorpusStats {
                    nodes: 12,
                    tokens: [1, 2, 3, 0],
                },
                df: vec![4, 0, 7],
            },
            score: 3.25,
            name: "a.b/ü\u{0}".into(),
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = sample();
        assert_eq!(
            SearchCursor::decode(&c.encode(), 0xdead_beef, 3).unwrap(),
            c
        );
        let empty = SearchCursor {
            scoring: Scoring {
                df: vec![],
                ..c.scoring.clone()
            },
            score: 0.0,
            ..c
        };
        assert_eq!(
            SearchCursor::decode(&empty.encode(), 0xdead_beef, 0).unwrap(),
            empty
        );
    }

    #[test]
    fn foreign_and_garbage_cursors_are_refused() {
        let c = sample().encode();
        let err = SearchCursor::decode(&c, 1, 3).unwrap_err();
        assert!(err.to_string().contains("another search"), "{err}");
        assert!(SearchCursor::decode(&c, 0xdead_beef, 2).is_err());
        for bad in [
            "",
            "s",
            "n6162",
            "s1.2.3",
            "sz.1.1.1.1.1..0.61",
            "s1.1.1.1.1.1..7ff8000000000000.61",
            "s1.1.1.1.1.1..0.",
            "s1.1.1.1.1.1..0.6",
        ] {
            let bad = Cursor::from_str(bad).unwrap();
            assert!(SearchCursor::decode(&bad, 1, 0).is_err(), "{bad}");
        }
    }
}
