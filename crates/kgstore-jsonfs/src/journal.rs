//! The journal that makes a transaction of many files atomic.
//!
//! A journal file lists every file operation of one transaction with the full
//! new content, and ends with a line holding the SHA-256 of everything before it:
//!
//! ```text
//! kgstore-jsonfs journal 1
//! put nodes/3f/serde.json 312
//! <312 bytes of the file>
//! del edges/a0/serde,calls,gone.json
//! end 2 sha256:<64 hex digits>
//! ```
//!
//! It is written under a temporary name, synced, and renamed to `<seq>.commit` in
//! the `journal` folder, which is then synced: that rename is the commit mark.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::names::{hex, is_entity_path};

/// The journal's first line.
const HEADER: &str = "kgstore-jsonfs journal 1\n";
/// The extension of a committed journal.
pub const COMMITTED: &str = ".commit";
/// The journal folder's name.
pub const JOURNAL_DIR: &str = "journal";

/// One file operation: write `content` at `rel`, move the file `from` to `rel`
/// (a staged document), or remove `rel` if neither.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOp {
    /// The path relative to the store's folder, with `/` separators.
    pub rel: String,
    /// The new content; `None` removes the file (unless `from` is set).
    pub content: Option<Vec<u8>>,
    /// A staged file (relative path in `journal/`) that becomes `rel`.
    pub from: Option<String>,
    /// The identity (device, inode) of the staged file that `from` moves, which
    /// the rename keeps: a reader in another process opens the document's bytes
    /// only from the file with this identity.
    pub id: crate::docs::FileId,
}

/// The journal's bytes for `ops`.
pub fn encode(ops: &[FileOp]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|op| op.rel.len() + 32 + op.content.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(HEADER.len() + size + 90);
    out.extend_from_slice(HEADER.as_bytes());
    for op in ops {
        match (&op.content, &op.from) {
            (Some(content), _) => {
                out.extend_from_slice(format!("put {} {}\n", op.rel, content.len()).as_bytes());
                out.extend_from_slice(content);
                out.push(b'\n');
            }
            (None, Some(from)) => match op.id {
                Some((dev, ino)) => {
                    out.extend_from_slice(format!("mv {from} {} {dev}:{ino}\n", op.rel).as_bytes())
                }
                None => out.extend_from_slice(format!("mv {from} {}\n", op.rel).as_bytes()),
            },
            (None, None) => out.extend_from_slice(format!("del {}\n", op.rel).as_bytes()),
        }
    }
    let digest = hex(&Sha256::digest(&out));
    let mut end = String::new();
    let _ = writeln!(end, "end {} sha256:{digest}", ops.len());
    out.extend_from_slice(end.as_bytes());
    out
}

/// The operations of a journal; the reason (with a byte offset) if it is torn,
/// damaged or names a path outside the store's data folders.
pub fn decode(bytes: &[u8]) -> Result<Vec<FileOp>, String> {
    let mut at = HEADER.len();
    if bytes.get(..at) != Some(HEADER.as_bytes()) {
        return Err("does not start with the journal header".into());
    }
    let mut ops = Vec::new();
    loop {
        let line_start = at;
        let line = next_line(bytes, &mut at)
            .ok_or_else(|| format!("ends at byte {line_start} without its end line (torn)"))?;
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["put", rel, len] => {
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("bad length at byte {line_start}"))?;
                let end = at
                    .checked_add(len)
                    .filter(|end| *end < bytes.len() && bytes[*end] == b'\n')
                    .ok_or_else(|| format!("content at byte {at} is cut short (torn)"))?;
                ops.push(FileOp {
                    rel: checked_path(rel, line_start)?,
                    content: Some(bytes[at..end].to_vec()),
                    from: None,
                    id: None,
                });
                at = end + 1;
            }
            ["mv", from, rel, rest @ ..] if rest.len() <= 1 => {
                let id = match rest {
                    [id] => Some(
                        parse_id(id)
                            .ok_or_else(|| format!("bad file identity at byte {line_start}"))?,
                    ),
                    _ => None,
                };
                if !crate::docs::is_staged_path(from) || !rel.starts_with(crate::docs::DOCUMENTS) {
                    return Err(format!(
                        "moves something other than a staged document at byte {line_start}"
                    ));
                }
                ops.push(FileOp {
                    rel: checked_path(rel, line_start)?,
                    content: None,
                    from: Some((*from).to_owned()),
                    id,
                });
            }
            ["del", rel] => ops.push(FileOp {
                rel: checked_path(rel, line_start)?,
                content: None,
                from: None,
                id: None,
            }),
            ["end", count, sum] => {
                let expected = format!("sha256:{}", hex(&Sha256::digest(&bytes[..line_start])));
                if *sum != expected {
                    return Err(format!(
                        "checksum at byte {line_start} does not match its content"
                    ));
                }
                if count.parse::<usize>().ok() != Some(ops.len()) {
                    return Err(format!(
                        "end line at byte {line_start} counts {count} operations, the journal has {}",
                        ops.len()
                    ));
                }
                if at != bytes.len() {
                    return Err(format!("has {} bytes after its end line", bytes.len() - at));
                }
                return Ok(ops);
            }
            _ => return Err(format!("unreadable line at byte {line_start}")),
        }
    }
}

/// A file identity written as `<device>:<inode>`.
fn parse_id(text: &str) -> Option<(u64, u64)> {
    let (dev, ino) = text.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

fn checked_path(rel: &str, offset: usize) -> Result<String, String> {
    if is_entity_path(rel) || crate::events::is_event_path(rel) || crate::docs::is_doc_path(rel) {
        Ok(rel.to_owned())
    } else {
        Err(format!(
            "names a path outside the data folders at byte {offset}: {rel:?}"
        ))
    }
}

/// The next `\n`-terminated line as text, moving `at` past it.
fn next_line<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let rest = bytes.get(*at..)?;
    let len = rest.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&rest[..len]).ok()?;
    *at += len + 1;
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<FileOp> {
        vec![
            FileOp {
                rel: "nodes/3f/serde.json".into(),
                content: Some(b"{\n  \"x\": 1\n}\n".to_vec()),
                from: None,
                id: None,
            },
            FileOp {
                rel: "edges/a0/a,calls,b.json".into(),
                content: None,
                from: None,
                id: None,
            },
            FileOp {
                rel: "schemas/node_type/crate.json".into(),
                content: Some(Vec::new()),
                from: None,
                id: None,
            },
            FileOp {
                rel: "documents/scripts/pilot.fountain".into(),
                content: None,
                from: Some("journal/12-3.staged".into()),
                id: Some((2049, 77)),
            },
            FileOp {
                rel: "docmeta/ab/scripts%2fpilot.fountain.json".into(),
                content: Some(b"{}".to_vec()),
                from: None,
                id: None,
            },
        ]
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&ops());
        assert_eq!(decode(&bytes).unwrap(), ops());
        assert_eq!(decode(&encode(&[])).unwrap(), []);
    }

    #[test]
    fn every_torn_prefix_is_refused() {
        let bytes = encode(&ops());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = encode(&ops());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(decode(&damaged).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn paths_outside_the_data_folders_are_refused() {
        for rel in [
            "../../etc/passwd",
            "/etc/passwd",
            "LOCK",
            "nodes/ab/.x.json",
            "documents/../x",
            "documents/.git/config",
            "documents",
        ] {
            let bytes = encode(&[FileOp {
                rel: rel.into(),
                content: None,
                from: None,
                id: None,
            }]);
            let err = decode(&bytes).unwrap_err();
            assert!(err.contains("outside the data folders"), "{err}");
        }
    }
}
