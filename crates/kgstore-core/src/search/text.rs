//! Text analysis, the same for what is stored and what is asked: folding,
//! tokenising, and the text of a node that search sees.
//!
//! * **Folding** maps each character on its own: lower case, then its
//!   compatibility decomposition (NFKD) without combining marks, then lower case
//!   again, with the final sigma `ς` read as `σ`. `Café` and `CAFE` fold to
//!   `cafe`, `ﬁ` to `fi`, full-width `Ａ` to `a`. Because every character folds on
//!   its own, the fold of a piece of text is a piece of the fold of the whole,
//!   which is what lets an index of tokens answer for substring matches.
//! * **Tokens** are the Unicode words (UAX #29) of the folded text, cut again
//!   at every character that is not alphanumeric: `Alice_Smith` gives `alice`
//!   and `smith`, `e-mail` gives `e` and `mail`, `東京` gives `東` and `京`.
//!   A token longer than [`MAX_TOKEN_BYTES`] keeps its first bytes and ends in
//!   [`TRUNCATED`].

use std::borrow::Cow;

use serde_json::{Map, Value};
use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_segmentation::UnicodeSegmentation;

use crate::model::Node;

/// How many fields search sees: name, type, observations, attributes.
pub const FIELDS: usize = 4;

/// Tokens longer than this many bytes are cut (at a character boundary) and
/// marked with [`TRUNCATED`], so that no index holds unbounded terms.
pub const MAX_TOKEN_BYTES: usize = 200;

/// The last character of a cut token. It is not alphanumeric, so no whole
/// token contains it.
pub const TRUNCATED: char = '\u{10FFFF}';

/// Folds one character into `out`.
fn fold_char(c: char, out: &mut String) {
    for lower in c.to_lowercase() {
        decompose_compatible(lower, |part| {
            if !is_combining_mark(part) {
                for again in part.to_lowercase() {
                    out.push(if again == 'ς' { 'σ' } else { again });
                }
            }
        });
    }
}

/// The folded form of `text`: lower case, accents and other combining marks
/// removed, compatibility characters decomposed.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// The lower-case form the substring match compares (Unicode lower case of the
/// whole text, as `str::to_lowercase`).
pub fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// Cuts an over-long token and marks it.
fn bounded(token: &str) -> Cow<'_, str> {
    if token.len() <= MAX_TOKEN_BYTES {
        return Cow::Borrowed(token);
    }
    let mut end = MAX_TOKEN_BYTES;
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + TRUNCATED.len_utf8());
    cut.push_str(&token[..end]);
    cut.push(TRUNCATED);
    Cow::Owned(cut)
}

/// Calls `each(offset, token)` for every token of already folded text, with the
/// token's byte offset in it (tokens are not yet cut to [`MAX_TOKEN_BYTES`]).
fn for_each_token<'t>(folded: &'t str, mut each: impl FnMut(usize, &'t str)) {
    if folded.is_ascii() {
        // In ASCII text, word boundaries between two letters or digits never
        // fall, so tokens are exactly the runs of letters and digits.
        let bytes = folded.as_bytes();
        let mut start = None;
        for (i, b) in bytes.iter().enumerate() {
            match (b.is_ascii_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    each(s, &folded[s..i]);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            each(s, &folded[s..]);
        }
        return;
    }
    for (offset, word) in folded.unicode_word_indices() {
        for (start, piece) in split_alphanumeric(word) {
            each(offset + start, piece);
        }
    }
}

/// The runs of alphanumeric characters of `word`, with their byte offsets.
fn split_alphanumeric(word: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = word.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = rest.peek() {
            if c.is_alphanumeric() {
                break;
            }
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = word.len();
        while let Some(&(i, c)) = rest.peek() {
            if !c.is_alphanumeric() {
                end = i;
                break;
            }
            rest.next();
        }
        Some((start, &word[start..end]))
    })
}

/// The tokens of `text`, folded and bounded, in order.
///
/// ```
/// use kgstore_core::search::text::tokens;
///
/// assert_eq!(tokens("Alice_Smith drinks Café-au-lait"), ["alice", "smith", "drinks", "cafe", "au", "lait"]);
/// assert_eq!(tokens("ＡＢＣ ﬁnd Straße"), ["abc", "find", "straße"]);
/// ```
pub fn tokens(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut out = Vec::new();
    for_each_token(&folded, |_, t| out.push(bounded(t).into_owned()));
    out
}

/// The tokens of a query with where each starts in the folded query.
pub(crate) fn tokens_with_offsets(text: &str) -> Vec<(usize, String)> {
    let folded = fold(text);
    let mut out = Vec::new();
    for_each_token(&folded, |at, t| out.push((at, bounded(t).into_owned())));
    out
}

/// Appends the tokens of `text` to `out`.
fn push_tokens(text: &str, out: &mut Vec<String>) {
    let folded = fold(text);
    for_each_token(&folded, |_, t| out.push(bounded(t).into_owned()));
}

/// The texts of an attributes object that search sees: every string and every
/// number (as JSON writes it), at any depth, objects in key order and arrays in
/// order. Keys, booleans and nulls are not searched.
pub fn attribute_texts(attributes: &Map<String, Value>) -> Vec<Cow<'_, str>> {
    fn walk<'v>(value: &'v Value, out: &mut Vec<Cow<'v, str>>) {
        match value {
            Value::String(s) => out.push(Cow::Borrowed(s)),
            Value::Number(n) => out.push(Cow::Owned(n.to_string())),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = Vec::new();
    attributes.values().for_each(|v| walk(v, &mut out));
    out
}

/// Calls `each(field, text)` for every piece of text of a node that search
/// sees: its name, its type, each observation, each attribute text.
pub fn for_each_text(node: &Node, mut each: impl FnMut(usize, &str)) {
    each(0, &node.name);
    each(1, &node.node_type);
    for observation in &node.observations {
        each(2, observation);
    }
    for text in attribute_texts(&node.attributes) {
        each(3, &text);
    }
}

/// A node's tokens, field by field: what an index stores about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocTokens {
    /// The tokens of the name, the type, the observations and the attribute texts, in order.
    pub fields: [Vec<String>; FIELDS],
}

impl DocTokens {
    /// Analyses a node.
    pub fn of(node: &Node) -> Self {
        let mut doc = Self::default();
        for_each_text(node, |field, text| {
            push_tokens(text, &mut doc.fields[field])
        });
        doc
    }

    /// How many tokens each field has.
    pub fn lengths(&self) -> [u32; FIELDS] {
        self.fields
            .each_ref()
            .map(|f| u32::try_from(f.len()).unwrap_or(u32::MAX))
    }

    /// Every distinct token with how often it occurs in each field, by token.
    pub fn term_counts(&self) -> Vec<(&str, [u32; FIELDS])> {
        let mut all: Vec<(&str, usize)> = self
            .fields
            .iter()
            .enumerate()
            .flat_map(|(field, tokens)| tokens.iter().map(move |t| (t.as_str(), field)))
            .collect();
        all.sort_unstable();
        let mut out: Vec<(&str, [u32; FIELDS])> = Vec::new();
        for (term, field) in all {
            match out.last_mut() {
                Some((last, counts)) if *last == term => {
                    counts[field] = counts[field].saturating_add(1);
                }
                _ => {
                    let mut counts = [0; FIELDS];
                    counts[field] = 1;
                    out.push((term, counts));
                }
            }
        }
        out
    }

    /// A field's tokens separated by single spaces (what the SQLite backend hands to FTS5).
    pub fn joined(&self, field: usize) -> String {
        self.fields
            .get(field)
            .map(|f| f.join(" "))
            .unwrap_or_default()
    }
}

/// Whether some text of the node contains `needle` (already lower case) once
/// lower-cased; the fields where it does, in field order.
pub fn substring_fields(node: &Node, needle: &str) -> Vec<usize> {
    let mut fields = Vec::new();
    for_each_text(node, |field, text| {
        if fields.last() != Some(&field) && lowercase(text).contains(needle) {
            fields.push(field);
        }
    });
    fields
}

/// Whether `term` holds `fragment` anywhere but at its very start, or was cut
/// (and so may hold it in the part that was dropped).
pub fn holds_inside(term: &str, fragment: &str) -> bool {
    Inside::new(fragment).holds(term)
}

/// [`holds_inside`] for one fragment and many terms: the fragment's searcher
/// is built once.
pub struct Inside {
    finder: memchr::memmem::Finder<'static>,
}

impl Inside {
    /// A searcher for `fragment`.
    pub fn new(fragment: &str) -> Self {
        Self {
            finder: memchr::memmem::Finder::new(fragment.as_bytes()).into_owned(),
        }
    }

    /// Whether `term` holds the fragment after its first character, or was cut.
    pub fn holds(&self, term: &str) -> bool {
        let first = term.chars().next().map_or(0, char::len_utf8);
        term.len() > first && self.finder.find(&term.as_bytes()[first..]).is_some()
            || term.ends_with(TRUNCATED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folding_removes_case_accents_and_compatibility_forms() {
        assert_eq!(fold("Café Lumière"), "cafe lumiere");
        assert_eq!(fold("ÅNGSTRÖM"), "angstrom");
        assert_eq!(fold("ﬁ ＡＢ ²"), "fi ab 2");
        assert_eq!(fold("ΟΔΟΣ οδος"), "οδοσ οδοσ");
        assert_eq!(fold("İstanbul"), "istanbul");
        assert_eq!(fold("ℌello"), "hello");
    }

    #[test]
    fn folding_is_character_by_character() {
        // The fold of a concatenation is the concatenation of the folds, so a
        // substring of the text folds to a substring of the folded text.
        let samples = [
            "Σ", "ΑΣ", "e\u{301}", "\u{301}", "İ", "ﬃ", "Straße", "東京", "ǅ", "ς",
        ];
        for a in samples {
            for b in samples {
                assert_eq!(fold(&format!("{a}{b}")), format!("{}{}", fold(a), fold(b)));
                assert_eq!(
                    fold(&lowercase(&format!("{a}{b}"))),
                    fold(&format!("{a}{b}"))
                );
            }
        }
    }

    #[test]
    fn tokens_split_words_underscores_and_punctuation() {
        assert_eq!(tokens("Alice_Smith"), ["alice", "smith"]);
        assert_eq!(
            tokens("don't e-mail me@example.com"),
            ["don", "t", "e", "mail", "me", "example", "com"]
        );
        assert_eq!(tokens("v1.2.3 + 42"), ["v1", "2", "3", "42"]);
        assert_eq!(tokens("東京タワー"), ["東", "京", "タワー"]);
        assert_eq!(tokens("¡Hola, señor!"), ["hola", "senor"]);
        assert!(tokens("  -- !! ").is_empty());
        assert!(tokens("").is_empty());
    }

    #[test]
    fn long_tokens_are_cut_and_marked() {
        let long = "x".repeat(500);
        let got = tokens(&long);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_TOKEN_BYTES + TRUNCATED.len_utf8());
        assert!(got[0].ends_with(TRUNCATED));
        // Cut at a character boundary: after "a", two-byte letters end at odd offsets.
        let wide = format!("a{}", "ж".repeat(150));
        let got = tokens(&wide);
        assert!(got[0].ends_with(TRUNCATED));
        assert_eq!(got[0].len(), MAX_TOKEN_BYTES - 1 + TRUNCATED.len_utf8());
    }

    #[test]
    fn attribute_texts_are_strings_and_numbers() {
        let attrs = json!({"b": {"x": "Deep", "n": [1, 2.5, true, null]}, "a": "top", "k": false});
        let texts: Vec<String> = attribute_texts(attrs.as_object().unwrap())
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        assert_eq!(texts, ["top", "1", "2.5", "Deep"]);
    }

    #[test]
    fn documents_count_terms_per_field() {
        let node = Node::new("Tea_Party", "event")
            .unwrap()
            .with_observation("Alice pours tea")
            .with_observation("tea, more TEA")
            .with_attribute("host", json!("Hatter"));
        let doc = DocTokens::of(&node);
        assert_eq!(doc.lengths(), [2, 1, 6, 1]);
        let counts = doc.term_counts();
        assert!(counts.contains(&("tea", [1, 0, 3, 0])));
        assert!(counts.contains(&("hatter", [0, 0, 0, 1])));
        assert_eq!(doc.joined(2), "alice pours tea tea more tea");
        assert_eq!(substring_fields(&node, "tea"), [0, 2]);
        assert_eq!(substring_fields(&node, "hat"), [3]);
        assert!(substring_fields(&node, "coffee").is_empty());
    }

    #[test]
    fn inside_means_after_the_first_character() {
        assert!(holds_inside("steam", "tea"));
        assert!(!holds_inside("teapot", "tea"));
        assert!(holds_inside("teatea", "tea"));
        assert!(holds_inside("ab\u{10FFFF}", "zz"));
        assert!(!holds_inside("é", "é"));
    }
}
