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
//!
//! A large commit (format 6) records each staged put without its content,
//! `stg journal/bulk-<pid>-<n> nodes/3f/serde.json 312`: the file staged at that
//! path in the staging folder, durable before the commit mark, holds it until it
//! moves into place; [`decode`] reads it from either.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

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

/// One file operation, borrowed: what [`encode_refs`] writes.
#[derive(Clone, Copy, Debug)]
pub struct OpRef<'a> {
    /// The path relative to the store's folder.
    pub rel: &'a str,
    /// The new content, if the operation writes one.
    pub content: Option<&'a [u8]>,
    /// The staged document moved to `rel`, if it is a move.
    pub from: Option<&'a str>,
    /// The identity of the staged document's file.
    pub id: crate::docs::FileId,
    /// A large commit's staging folder (`journal/bulk-<pid>-<n>`) holding the
    /// put's content at `rel`, durable before the commit mark: the journal then
    /// records the put without its content (`stg`, format 6).
    pub staged_in: Option<&'a str>,
}

impl<'a> From<&'a FileOp> for OpRef<'a> {
    fn from(op: &'a FileOp) -> Self {
        Self {
            rel: &op.rel,
            content: op.content.as_deref(),
            from: op.from.as_deref(),
            id: op.id,
            staged_in: None,
        }
    }
}

/// The journal's bytes for `ops`.
#[cfg(test)]
pub fn encode(ops: &[FileOp]) -> Vec<u8> {
    encode_refs(&ops.iter().map(OpRef::from).collect::<Vec<_>>())
}

/// The journal's bytes for `ops`, borrowed (no content is copied but into the
/// journal itself).
pub fn encode_refs(ops: &[OpRef<'_>]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|op| {
            let inline = op.content.filter(|_| op.staged_in.is_none());
            op.rel.len() + 48 + inline.map_or(0, <[u8]>::len)
        })
        .sum();
    let mut out = Vec::with_capacity(HEADER.len() + size + 90);
    out.extend_from_slice(HEADER.as_bytes());
    for op in ops {
        match (op.content, op.from, op.staged_in) {
            (Some(content), _, Some(folder)) => {
                let _ = writeln!(out, "stg {folder} {} {}", op.rel, content.len());
            }
            (Some(content), _, None) => {
                let _ = writeln!(out, "put {} {}", op.rel, content.len());
                out.extend_from_slice(content);
                out.push(b'\n');
            }
            (None, Some(from), _) => match op.id {
                Some((dev, ino)) => {
                    let _ = writeln!(out, "mv {from} {} {dev}:{ino}", op.rel);
                }
                None => {
                    let _ = writeln!(out, "mv {from} {}", op.rel);
                }
            },
            (None, None, _) => {
                let _ = writeln!(out, "del {}", op.rel);
            }
        }
    }
    let digest = hex(&Sha256::digest(&out));
    let mut end = String::new();
    let _ = writeln!(end, "end {} sha256:{digest}", ops.len());
    out.extend_from_slice(end.as_bytes());
    out
}

/// The operations of a journal of the store at `root`; the reason (with a byte
/// offset) if it is torn, damaged or names a path outside the store's data
/// folders. A put recorded without its content (`stg`, a large commit's, format 6)
/// gets it from its staged file, or, once that has moved into place, from the
/// store's file (see [`read_staged`]); the reason if neither is there with the
/// length the journal records.
pub fn decode(bytes: &[u8], root: &Path) -> Result<Vec<FileOp>, String> {
    decode_with(bytes, |folder, rel, len| {
        read_staged(root, folder, rel, len)
    })
}

/// The content of a put a journal records as staged in `folder` (relative to the
/// store): the staged file while it is there, else the store's file at `rel` (a
/// rename moves it from one to the other at once, so one of them holds it unless
/// a later transaction replaced or removed it); the reason if neither has `len`
/// bytes.
pub fn read_staged(root: &Path, folder: &str, rel: &str, len: usize) -> Result<Vec<u8>, String> {
    for path in [root.join(folder).join(rel), root.join(rel)] {
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == len => return Ok(bytes),
            Ok(bytes) => {
                return Err(format!(
                    "stages {rel}, whose file holds {} bytes where the journal records {len}",
                    bytes.len()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("stages {rel}, which does not read: {e}")),
        }
    }
    Err(format!(
        "stages {rel} in {folder}, and neither that file nor the store's is there"
    ))
}

/// [`decode`], with the content of each staged put from `resolve(folder, rel,
/// len)`, asked once the journal's checksum has been checked.
pub fn decode_with(
    bytes: &[u8],
    resolve: impl Fn(&str, &str, usize) -> Result<Vec<u8>, String> + Sync,
) -> Result<Vec<FileOp>, String> {
    let mut at = HEADER.len();
    if bytes.get(..at) != Some(HEADER.as_bytes()) {
        return Err("does not start with the journal header".into());
    }
    let mut ops = Vec::new();
    // Staged puts: (index in `ops`, folder, length).
    let mut staged: Vec<(usize, &str, usize)> = Vec::new();
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
            ["stg", folder, rel, len] => {
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("bad length at byte {line_start}"))?;
                let bulk = folder
                    .strip_prefix(JOURNAL_DIR)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(crate::files::is_bulk_name);
                if !bulk {
                    return Err(format!(
                        "stages a file outside a staging folder at byte {line_start}"
                    ));
                }
                staged.push((ops.len(), folder, len));
                ops.push(FileOp {
                    rel: checked_path(rel, line_start)?,
                    content: None,
                    from: None,
                    id: None,
                });
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
                let workers = crate::files::workers_for(staged.len(), 256, 8);
                let contents = crate::files::parallel_map(&staged, workers, |(i, folder, len)| {
                    resolve(folder, &ops[*i].rel, *len)
                });
                for ((i, _, _), content) in staged.iter().zip(contents) {
                    ops[*i].content = Some(content?);
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
        assert_eq!(decode(&bytes, Path::new("/nonexistent")).unwrap(), ops());
        assert_eq!(decode(&encode(&[]), Path::new("/nonexistent")).unwrap(), []);
    }

    #[test]
    fn every_torn_prefix_is_refused() {
        let bytes = encode(&ops());
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len], Path::new("/nonexistent")).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = encode(&ops());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(
                decode(&damaged, Path::new("/nonexistent")).is_err(),
                "byte {i} flipped"
            );
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
            let err = decode(&bytes, Path::new("/nonexistent")).unwrap_err();
            assert!(err.contains("outside the data folders"), "{err}");
        }
    }

    /// A large commit's journal (format 6): its staged puts without their
    /// content, which decoding reads from the staged file, or, once that has
    /// moved into place, from the store's; refused if neither holds it.
    #[test]
    fn staged_puts_read_their_content_from_the_staged_file_or_the_store() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let folder = "journal/bulk-12-3";
        let (a, b) = ("nodes/3f/a.json", "nodes/4e/b.json");
        let (content_a, content_b) = (b"{\"a\": 1}\n".to_vec(), b"{\"b\": 22}\n".to_vec());
        let ops = [
            OpRef {
                rel: a,
                content: Some(&content_a),
                from: None,
                id: None,
                staged_in: Some(folder),
            },
            OpRef {
                rel: b,
                content: Some(&content_b),
                from: None,
                id: None,
                staged_in: Some(folder),
            },
            OpRef {
                rel: "edges/a0/a,calls,b.json",
                content: None,
                from: None,
                id: None,
                staged_in: None,
            },
        ];
        let bytes = encode_refs(&ops);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("stg journal/bulk-12-3 nodes/3f/a.json 9\n"),
            "{text}"
        );
        assert!(!text.contains("\"a\""), "no content in the journal: {text}");
        // Neither file there: refused.
        assert!(decode(&bytes, root).unwrap_err().contains("neither"));
        // `a` still staged, `b` moved into place.
        for (rel, content, base) in [
            (a, &content_a, format!("{folder}/")),
            (b, &content_b, String::new()),
        ] {
            let path = root.join(format!("{base}{rel}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let decoded = decode(&bytes, root).unwrap();
        assert_eq!(decoded[0].content.as_deref(), Some(content_a.as_slice()));
        assert_eq!(decoded[1].content.as_deref(), Some(content_b.as_slice()));
        assert_eq!(decoded[2].content, None);
        // A file of another length (a later transaction's) is not taken for it.
        std::fs::write(root.join(b), b"{}\n").unwrap();
        assert!(decode(&bytes, root).unwrap_err().contains("bytes"));
        // A staging folder must be one: no other folder of the store.
        for folder in ["nodes/3f", "journal/other-12-3", "journal"] {
            let bad = encode_refs(&[OpRef {
                staged_in: Some(folder),
                ..ops[0]
            }]);
            let err = decode(&bad, root).unwrap_err();
            assert!(err.contains("outside a staging folder"), "{folder}: {err}");
        }
    }
}
