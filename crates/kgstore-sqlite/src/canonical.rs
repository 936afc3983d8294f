//! Whether a stored JSON column already holds the exact bytes `serde_json` would
//! write for the value it parses to, so that a writer of JSON lines (a backup)
//! may copy it instead of parsing and writing it again.
//!
//! The check is conservative: it accepts only a subset of JSON whose parse and
//! compact re-encoding are the identity — no whitespace; strings without escapes
//! or control characters (what `serde_json` writes for them is then the same
//! bytes between the same quotes); integers of at most 18 digits without a
//! leading zero or a minus zero (parsed as an `i64` or `u64` and written back
//! digit for digit); `true`, `false`, `null`; objects whose keys are strictly
//! increasing in byte order (a `serde_json::Map` is a `BTreeMap` here: it writes
//! its keys sorted, and a repeated key would collapse); lists. Anything else — a
//! fraction or exponent, an escape, a space, a key out of order, nesting deeper
//! than [`MAX_DEPTH`] — answers `false`, and the caller parses and writes the
//! column as before, which also reports every malformed text as it always did.

/// Nesting deeper than this is left to the parser (`serde_json` refuses 128 levels).
const MAX_DEPTH: usize = 64;

/// What a column must hold to be copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A list of strings (observations, tags, dependencies: `Vec<String>`).
    StringList,
    /// An object of any values (attributes: `Map<String, Value>`).
    Object,
}

/// Whether `text` parses as `shape` and `serde_json` writes that value back as
/// exactly `text` (the module's description).
pub(crate) fn is_canonical(text: &[u8], shape: Shape) -> bool {
    let mut at = 0;
    let ok = match shape {
        Shape::Object => text.first() == Some(&b'{') && object(text, &mut at, 0),
        Shape::StringList => string_list(text, &mut at),
    };
    ok && at == text.len()
}

/// A list of strings at `text[*at..]`, `*at` moved past it.
fn string_list(text: &[u8], at: &mut usize) -> bool {
    text.get(*at) == Some(&b'[') && members(text, at, b']', |at| string(text, at).is_some())
}

/// Any value at `text[*at..]`, `*at` moved past it.
fn value(text: &[u8], at: &mut usize, depth: usize) -> bool {
    match text.get(*at) {
        Some(b'"') => string(text, at).is_some(),
        Some(b'{') => object(text, at, depth + 1),
        Some(b'[') => list(text, at, depth + 1),
        Some(b't') => word(text, at, b"true"),
        Some(b'f') => word(text, at, b"false"),
        Some(b'n') => word(text, at, b"null"),
        Some(b'-' | b'0'..=b'9') => integer(text, at),
        _ => false,
    }
}

/// An object at `text[*at..]` (which starts with `{`), its keys strictly increasing.
fn object(text: &[u8], at: &mut usize, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let mut previous: Option<&[u8]> = None;
    members(text, at, b'}', |at| {
        let Some(key) = string(text, at) else {
            return false;
        };
        if previous.is_some_and(|p| p >= key) {
            return false;
        }
        previous = Some(key);
        if text.get(*at) != Some(&b':') {
            return false;
        }
        *at += 1;
        value(text, at, depth)
    })
}

/// A list of any values at `text[*at..]` (which starts with `[`).
fn list(text: &[u8], at: &mut usize, depth: usize) -> bool {
    depth <= MAX_DEPTH && members(text, at, b']', |at| value(text, at, depth))
}

/// The members of the object or list whose opening bracket is at `text[*at]`,
/// each read by `member` and separated by commas, up to `close`; `*at` moved past
/// it. Empty when `close` follows the opening bracket.
fn members(
    text: &[u8],
    at: &mut usize,
    close: u8,
    mut member: impl FnMut(&mut usize) -> bool,
) -> bool {
    *at += 1;
    if text.get(*at) == Some(&close) {
        *at += 1;
        return true;
    }
    loop {
        if !member(at) {
            return false;
        }
        match text.get(*at) {
            Some(b',') => *at += 1,
            Some(&c) if c == close => {
                *at += 1;
                return true;
            }
            _ => return false,
        }
    }
}

/// A string without escapes or control characters at `text[*at..]`: its bytes
/// between the quotes.
fn string<'t>(text: &'t [u8], at: &mut usize) -> Option<&'t [u8]> {
    if text.get(*at) != Some(&b'"') {
        return None;
    }
    let start = *at + 1;
    let rest = text.get(start..)?;
    let len = first_special(rest)?;
    if rest[len] != b'"' {
        return None;
    }
    *at = start + len + 1;
    Some(&rest[..len])
}

/// Where the first byte of `text` that a JSON string cannot hold as it is — `"`,
/// `\` or a control character below 0x20, what `serde_json` escapes — is, if any;
/// eight bytes at a time.
pub(crate) fn first_special(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    /// The high bit of each byte of `word` that is zero (exact up to the first
    /// such byte, the lowest: a borrow only marks bytes above it).
    fn zero_bytes(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGHS
    }
    let mut chunks = text.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        // Bytes below 0x20, exact up to the first (the same borrow argument).
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let found = below_space
            | zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|at| offset + at)
}

/// `expected` at `text[*at..]`.
fn word(text: &[u8], at: &mut usize, expected: &[u8]) -> bool {
    if text.get(*at..*at + expected.len()) == Some(expected) {
        *at += expected.len();
        true
    } else {
        false
    }
}

/// An integer that `serde_json` reads as an `i64` or `u64` and writes back
/// unchanged: `0`, or an optional minus and 1 to 18 digits, the first not zero;
/// not followed by a fraction or exponent.
fn integer(text: &[u8], at: &mut usize) -> bool {
    let mut i = *at;
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    let digits = text.get(i..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    });
    let negative = i > *at;
    let ok = match digits {
        0 => false,
        1 if text[i] == b'0' => !negative,
        n => n <= 18 && text[i] != b'0',
    };
    let end = i + digits;
    if !ok || matches!(text.get(end), Some(b'.' | b'e' | b'E')) {
        return false;
    }
    *at = end;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// What the slow path writes for `text` as `shape`, if it parses.
    fn rewritten(text: &str, shape: Shape) -> Option<String> {
        match shape {
            Shape::Object => serde_json::from_str::<Map<String, Value>>(text)
                .ok()
                .map(|m| serde_json::to_string(&m).unwrap_or_default()),
            Shape::StringList => serde_json::from_str::<Vec<String>>(text)
                .ok()
                .map(|l| serde_json::to_string(&l).unwrap_or_default()),
        }
    }

    /// Accepting a text means the parser and writer give it back unchanged.
    fn check(text: &str, shape: Shape, expect: bool) {
        let accepted = is_canonical(text.as_bytes(), shape);
        assert_eq!(accepted, expect, "{text} as {shape:?}");
        if accepted {
            assert_eq!(rewritten(text, shape).as_deref(), Some(text), "{text}");
        }
    }

    #[test]
    fn copies_what_serde_json_writes_back_unchanged() {
        for text in [
            "{}",
            r#"{"a":1}"#,
            r#"{"active":true,"index":5,"label":"item 5","score":123}"#,
            r#"{"a":null,"b":false,"c":[1,-2,"x",[],{}],"d":{"x":{"y":[0]}}}"#,
            r#"{"A":1,"B":2,"a":3,"é":"漢字 🦀","é2":-123456789012345678}"#,
            r#"{"k":"q/slash"}"#,
        ] {
            check(text, Shape::Object, true);
        }
        for text in [
            "[]",
            r#"["a"]"#,
            r#"["Observation 1, written by the benchmark.","x y z"]"#,
            r#"["é 漢字 🦀",""]"#,
        ] {
            check(text, Shape::StringList, true);
        }
    }

    /// Every text the check cannot vouch for goes to the parser: a rewrite that
    /// changes it, or a text that does not parse at all.
    #[test]
    fn leaves_everything_else_to_the_parser() {
        for text in [
            "",
            "{",
            "[]",
            "null",
            r#"{"a":1,}"#,
            r#"{"a" :1}"#,
            r#"{ "a":1}"#,
            r#"{"a":1} "#,
            r#"{"a":1}x"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1.0}"#,
            r#"{"a":1e5}"#,
            r#"{"a":1E5}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":18446744073709551615}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":tru}"#,
            r#"{"a":[1 ,2]}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":"unterminated}"#,
        ] {
            check(text, Shape::Object, false);
        }
        for text in [
            "{}",
            "[1]",
            "[null]",
            r#"["a",1]"#,
            r#"["a" ]"#,
            r#"["a","b",]"#,
            r#"["a\nb"]"#,
            r#"["a"]["b"]"#,
            "[",
        ] {
            check(text, Shape::StringList, false);
        }
    }

    #[test]
    fn first_special_finds_the_first_byte_to_escape() {
        let naive = |t: &[u8]| t.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let text: Vec<u8> = "é plain text, 漢字 🦀 and more plain text ~\x7f"
            .bytes()
            .collect();
        assert_eq!(first_special(&text), None);
        for special in [0u8, 0x1f, b'"', b'\\', b'\n'] {
            for at in 0..text.len() {
                let mut t = text.clone();
                t[at] = special;
                // A second one later never hides the first.
                if at + 3 < t.len() {
                    t[at + 3] = b'"';
                }
                assert_eq!(first_special(&t), naive(&t), "{at} {special}");
                assert_eq!(first_special(&t), Some(at));
            }
        }
        // Bytes next to the special ones, every suffix.
        let near = [
            0x20, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff, 0x7f, 0x20, 0x21, 0x23, 0xa2, 0xdc,
        ];
        for n in 0..near.len() {
            assert_eq!(first_special(&near[n..]), None);
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_goes_to_the_parser() {
        let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        check(&deep(10), Shape::Object, true);
        check(&deep(MAX_DEPTH + 1), Shape::Object, false);
    }

    /// A pseudo-random number below `n` (xorshift).
    fn next_below(state: &mut u64, n: u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % n
    }

    /// A random value: mostly canonical JSON, with now and then a piece that is
    /// not (a fraction, an escape, a space, keys out of order or repeated).
    fn generate(state: &mut u64, depth: usize, out: &mut String) {
        let keys = ["a", "b", "c", "é", "A", "ab"];
        match next_below(state, if depth > 3 { 9 } else { 11 }) {
            0 => out.push_str("true"),
            1 => out.push_str("null"),
            2 => out.push_str(
                ["0", "-7", "42", "1.5", "-0", "1e3", "007"][next_below(state, 7) as usize],
            ),
            3 | 4 => out.push_str(
                ["\"x\"", "\"\"", "\"é 漢\"", "\"q\\\"\"", "\"\\u0041\""]
                    [next_below(state, 5) as usize],
            ),
            5 => out.push_str(" 1"),
            6..=8 => out.push_str(["1", "\"s\"", "false"][next_below(state, 3) as usize]),
            9 => {
                out.push('[');
                for i in 0..next_below(state, 4) {
                    if i > 0 {
                        out.push(',');
                    }
                    generate(state, depth + 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                let mut start = next_below(state, 3) as usize;
                for i in 0..next_below(state, 4) {
                    if i > 0 {
                        out.push(',');
                    }
                    // Mostly increasing keys; sometimes a step back.
                    start = (start + [1, 1, 1, 0, 5][next_below(state, 5) as usize]) % keys.len();
                    out.push('"');
                    out.push_str(keys[start]);
                    out.push_str("\":");
                    generate(state, depth + 1, out);
                }
                out.push('}');
            }
        }
    }

    /// Generated texts: whatever the check accepts, parsing and writing again
    /// gives back byte for byte; and it accepts a good share of them.
    #[test]
    fn generated_texts_accepted_only_when_unchanged() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let mut text = String::from("{\"k\":");
            generate(&mut state, 0, &mut text);
            text.push('}');
            if is_canonical(text.as_bytes(), Shape::Object) {
                accepted += 1;
                assert_eq!(
                    rewritten(&text, Shape::Object).as_deref(),
                    Some(text.as_str())
                );
            } else {
                refused += 1;
            }
        }
        assert!(
            accepted > 5_000 && refused > 5_000,
            "{accepted} / {refused}"
        );
    }
}
