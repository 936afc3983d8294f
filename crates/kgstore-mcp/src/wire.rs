//! JSON-RPC on stdio: lines of bounded length, error objects, and a best-effort
//! look for the id of a request too large to parse.

use std::io::{self, BufRead};

use serde_json::{Map, Value, json};

/// JSON-RPC: the line is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the message is not a valid request.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the parameters are wrong.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: the server failed.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: the request's protocol revision is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error to answer a request with.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// One sentence.
    pub message: String,
    /// Details, if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds data.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Invalid parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// The whole error response; without an id when the request's is unknown
    /// (JSON-RPC asks for `null` there, but MCP's schema types an id as a string
    /// or an integer and, since 2025-11-25, lets an error response leave it out).
    pub fn response(&self, id: Option<&Value>) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        let mut message = Map::new();
        message.insert("jsonrpc".into(), json!("2.0"));
        if let Some(id) = id {
            message.insert("id".into(), id.clone());
        }
        message.insert("error".into(), Value::Object(error));
        Value::Object(message)
    }
}

/// A successful response.
pub fn result_response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// Whether a value may be a request id: a string or an integer.
pub fn is_valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// What the next line of input was.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A whole line (without its line ending), at most the limit long.
    Line(Vec<u8>),
    /// A line longer than the limit, read and dropped; its first and last bytes are kept.
    TooLong {
        /// The line's length in bytes.
        size: u64,
        /// Its first bytes.
        head: Vec<u8>,
        /// Its last bytes.
        tail: Vec<u8>,
    },
}

/// How many bytes of an overlong line are kept at each end to find its id in.
const KEPT: usize = 512;

/// Reads lines of at most `max` bytes with bounded memory: a longer line is
/// consumed up to its end and reported as [`Incoming::TooLong`].
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Lines from `inner`, each at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, max }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Incoming>> {
        let mut line = Vec::new();
        let mut size: u64 = 0;
        let mut head = Vec::new();
        let mut tail: Vec<u8> = Vec::new();
        let mut too_long = false;
        loop {
            let buffer = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buffer.is_empty() {
                if size == 0 {
                    return Ok(None);
                }
                break;
            }
            let (piece, used, ended) = match buffer.iter().position(|&b| b == b'\n') {
                Some(at) => (&buffer[..at], at + 1, true),
                None => (buffer, buffer.len(), false),
            };
            size += piece.len() as u64;
            if !too_long && line.len() + piece.len() > self.max {
                too_long = true;
                head = line[..line.len().min(KEPT)].to_vec();
                if head.len() < KEPT {
                    let more = (KEPT - head.len()).min(piece.len());
                    head.extend_from_slice(&piece[..more]);
                }
                tail = std::mem::take(&mut line);
            }
            if too_long {
                tail.extend_from_slice(piece);
                if tail.len() > KEPT {
                    tail.drain(..tail.len() - KEPT);
                }
            } else {
                line.extend_from_slice(piece);
            }
            self.inner.consume(used);
            if ended {
                break;
            }
        }
        if too_long {
            while tail.last() == Some(&b'\r') {
                tail.pop();
            }
            return Ok(Some(Incoming::TooLong { size, head, tail }));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(Incoming::Line(line)))
    }
}

/// The id of a request that is too large to parse, when its first or last bytes
/// show it at the top level: `{"jsonrpc":"2.0","id":7,…` (members before the
/// params, as Python clients write them) or `…,"id":7}` (the id last, as the
/// TypeScript SDK writes it). Only integers and strings without escapes are
/// recognised; anything else gives `None`.
pub fn id_of_truncated(head: &[u8], tail: &[u8]) -> Option<Value> {
    id_from_head(head).or_else(|| id_from_tail(tail))
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// A string without escapes starting at `at` (on its quote): its text and the index after it.
fn simple_string(bytes: &[u8], at: usize) -> Option<(String, usize)> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let end = at + 1 + bytes[at + 1..].iter().position(|&b| b == b'"')?;
    let text = &bytes[at + 1..end];
    if text.contains(&b'\\') {
        return None;
    }
    Some((String::from_utf8(text.to_vec()).ok()?, end + 1))
}

/// An integer starting at `at`: its value and the index after it.
fn integer(bytes: &[u8], at: usize) -> Option<(Value, usize)> {
    let mut end = at;
    if bytes.get(end) == Some(&b'-') {
        end += 1;
    }
    let digits = bytes[end..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    end += digits;
    let text = std::str::from_utf8(&bytes[at..end]).ok()?;
    let value: Value = serde_json::from_str(text).ok()?;
    matches!(&value, Value::Number(n) if n.is_i64() || n.is_u64()).then_some((value, end))
}

fn id_from_head(head: &[u8]) -> Option<Value> {
    let mut at = skip_ws(head, 0);
    if head.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_ws(head, at);
        let (key, after) = simple_string(head, at)?;
        at = skip_ws(head, after);
        if head.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(head, at + 1);
        let (value, after) = match simple_string(head, at) {
            Some((text, after)) => (Value::String(text), after),
            None => integer(head, at)?,
        };
        if key == "id" {
            return Some(value);
        }
        at = skip_ws(head, after);
        if head.get(at) != Some(&b',') {
            return None;
        }
        at += 1;
    }
}

fn id_from_tail(tail: &[u8]) -> Option<Value> {
    let mut end = tail.len();
    while end > 0 && tail[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if end == 0 || tail[end - 1] != b'}' {
        return None;
    }
    let mut at = end - 1;
    while at > 0 && tail[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    // The value just before the closing brace.
    let value_end = at;
    let value = if at > 0 && tail[at - 1] == b'"' {
        let open = tail[..at - 1].iter().rposition(|&b| b == b'"')?;
        let text = &tail[open + 1..at - 1];
        if text.contains(&b'\\') {
            return None;
        }
        at = open;
        Value::String(String::from_utf8(text.to_vec()).ok()?)
    } else {
        let start = tail[..at]
            .iter()
            .rposition(|b| !(b.is_ascii_digit() || *b == b'-'))
            .map_or(0, |p| p + 1);
        let (value, after) = integer(tail, start)?;
        if after != value_end {
            return None;
        }
        at = start;
        value
    };
    while at > 0 && tail[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    if at == 0 || tail[at - 1] != b':' {
        return None;
    }
    at -= 1;
    while at > 0 && tail[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    if at < 4 || &tail[at - 4..at] != b"\"id\"" {
        return None;
    }
    at -= 4;
    while at > 0 && tail[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    // The member must sit in the outermost object: the closing brace above ends the
    // line, so only a member separator or the object's opening brace may precede it.
    if at == 0 || !matches!(tail[at - 1], b',' | b'{') {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Incoming> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let got = lines(b"a\r\nbb\n\nccc", 2);
        assert_eq!(got[0], Incoming::Line(b"a".to_vec()));
        assert_eq!(got[1], Incoming::Line(b"bb".to_vec()));
        assert_eq!(got[2], Incoming::Line(Vec::new()));
        assert!(
            matches!(&got[3], Incoming::TooLong { size: 3, head, tail } if head == b"ccc" && tail == b"ccc")
        );
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn an_overlong_line_keeps_its_ends_only() {
        let mut input = b"{\"id\":1,".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend_from_slice(b"end}\nnext\n");
        let got = lines(&input, 100);
        let Incoming::TooLong { size, head, tail } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(*size, input.len() as u64 - 6);
        assert_eq!(head.len(), KEPT);
        assert!(head.starts_with(b"{\"id\":1,"));
        assert_eq!(tail.len(), KEPT);
        assert!(tail.ends_with(b"xend}"));
        assert_eq!(got[1], Incoming::Line(b"next".to_vec()));
    }

    #[test]
    fn ids_of_truncated_requests() {
        let found = |head: &str, tail: &str| id_of_truncated(head.as_bytes(), tail.as_bytes());
        assert_eq!(
            found(
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"#,
                ""
            ),
            Some(json!(7))
        );
        assert_eq!(
            found(r#"{ "jsonrpc" : "2.0" , "id" : "a-1" , "#, ""),
            Some(json!("a-1"))
        );
        assert_eq!(
            found("", r#"xx"}]}},"jsonrpc":"2.0","id":12}"#),
            Some(json!(12))
        );
        assert_eq!(found("", r#"x"}}, "id": "q" }"#), Some(json!("q")));
        // Nested ids are not taken for the request's.
        assert_eq!(found("", r#"{"a":{"id":5}}"#), None);
        assert_eq!(found(r#"{"params":{"id":5"#, ""), None);
        assert_eq!(found("", r#"xx"id":1.5}"#), None);
        assert_eq!(found("", r#"x "id":5}"#), None);
        assert_eq!(found("garbage", "garbage"), None);
    }

    #[test]
    fn ids_are_strings_or_integers() {
        assert!(is_valid_id(&json!(1)));
        assert!(is_valid_id(&json!(-1)));
        assert!(is_valid_id(&json!("x")));
        for bad in [json!(null), json!(1.5), json!([1]), json!({}), json!(true)] {
            assert!(!is_valid_id(&bad), "{bad}");
        }
    }
}
