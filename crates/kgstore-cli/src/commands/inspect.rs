//! `kgstore check --without-opening`: a json:// store's files looked at without
//! opening the store ([`kgstore::jsonfs::inspect`]), so that a store an open
//! refuses for damaged files can have every one of them listed.

use std::path::Path;

use anyhow::Result;
use kgstore::Error;
use serde_json::json;

use super::Ctx;

/// Lists every damaged file of a json:// store with its reason, then the problems
/// that do not keep it from opening and the notes, without opening it (no lock,
/// no recovery, nothing written). Damage or problems exit 6, as `check` does;
/// notes alone exit 0.
pub(crate) fn check_without_opening(ctx: &mut Ctx<'_>) -> Result<()> {
    if let Some(at) = ctx.at {
        return Err(Error::invalid_input(
            format!("--at {at}"),
            "check --without-opening looks at the store's files as they are now",
        )
        .into());
    }
    let url = ctx.parse_url()?;
    if url.scheme != "json" {
        return Err(Error::invalid_input(
            format!("store {}", ctx.url),
            "--without-opening looks at json:// stores only (the check of other \
             backends opens the store read-only: drop --without-opening)",
        )
        .into());
    }
    let path = url.required_path()?;
    if !Path::new(path).exists() {
        return Err(Error::invalid_input(
            format!("store {}", ctx.url),
            "it does not exist; `kgstore init` (or any command that writes) creates it",
        )
        .into());
    }
    let found = kgstore::jsonfs::inspect(path)?;
    if ctx.out.json() {
        ctx.out.value(&json!({
            "store": ctx.url,
            "opens": found.opens(),
            "damaged": found.damaged,
            "problems": found.problems,
            "notes": found.notes,
        }))?;
    } else {
        for problem in &found.damaged {
            ctx.out.line(&format!("damaged: {problem}"))?;
        }
        for problem in &found.problems {
            ctx.out.line(&format!("problem: {problem}"))?;
        }
        for note in &found.notes {
            ctx.out.line(&format!("note: {note}"))?;
        }
        let summary = if !found.opens() {
            format!(
                "{} damaged file(s): the store is not opened until they are fixed or removed \
                 (or the store is restored from a backup)",
                found.damaged.len()
            )
        } else if !found.is_ok() {
            "no damaged files: the store opens (the problems above do not keep it from opening)"
                .to_owned()
        } else {
            "no damaged files: the store opens".to_owned()
        };
        let notes = match found.notes.len() {
            0 => String::new(),
            n => format!(" ({n} note(s): leftovers the next write recovers, not damage)"),
        };
        ctx.out.line(&format!(
            "looked at {path} without opening it: {summary}{notes}"
        ))?;
    }
    if found.is_ok() {
        Ok(())
    } else {
        Err(Error::corrupt(
            ctx.url,
            format!(
                "{} damaged file(s), {} other problem(s)",
                found.damaged.len(),
                found.problems.len()
            ),
        )
        .into())
    }
}
