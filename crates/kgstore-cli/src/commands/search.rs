//! `kgstore search`.

use anyhow::Result;
use kgstore::{GraphRead, SearchQuery};

use super::Ctx;
use crate::cli::SearchArgs;
use crate::output::cell;

/// Runs a ranked search and prints one page of hits.
pub(crate) fn run(ctx: &mut Ctx<'_>, args: &SearchArgs) -> Result<()> {
    let query = SearchQuery {
        text: args.query.clone(),
        node_types: args.types.clone(),
        limit: args.limit,
        cursor: args.cursor.as_deref().map(str::parse).transpose()?,
    };
    let page = ctx.open_existing()?.search(&query)?;
    if ctx.out.json() {
        return ctx.out.value(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|hit| {
            let fields: Vec<&str> = hit.matched.iter().map(|f| f.as_str()).collect();
            vec![
                cell(&hit.name),
                hit.node_type.clone(),
                format!("{:.3}", hit.score),
                hit.kind.as_str().to_owned(),
                fields.join(","),
            ]
        })
        .collect();
    ctx.out.page(
        &["NAME", "TYPE", "SCORE", "MATCH", "FIELDS"],
        &rows,
        page.next_cursor,
        "no more hits",
    )
}
