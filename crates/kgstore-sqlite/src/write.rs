//! Every write, as SQL on the writer connection inside its open transaction.

use std::collections::HashSet;

use kgstore_core::{Edge, EdgeKey, Error, Node, Result, SchemaTarget};
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::codec::{node_subject, to_json, version_to_sql};
use crate::error::{Ctx, SqlResult};
use crate::read::Q;

const INSERT_NAME: &str = "INSERT INTO names(name) VALUES (?1) ON CONFLICT(name) DO NOTHING";

const UPSERT_NODE: &str = "INSERT INTO nodes(id, node_type, status, author, source, created_at, \
     updated_at, version, observations, attributes, tags, dependencies) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT(id) DO UPDATE SET node_type = excluded.node_type, status = excluded.status, \
     author = excluded.author, source = excluded.source, created_at = excluded.created_at, \
     updated_at = excluded.updated_at, version = excluded.version, \
     observations = excluded.observations, attributes = excluded.attributes, \
     tags = excluded.tags, dependencies = excluded.dependencies";

const UPSERT_EDGE: &str = "INSERT INTO edges(from_id, rel, to_id, weight, confidence, \
     bidirectional, source, created_at, updated_at, version, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
     ON CONFLICT(from_id, rel, to_id) DO UPDATE SET weight = excluded.weight, \
     confidence = excluded.confidence, bidirectional = excluded.bidirectional, \
     source = excluded.source, created_at = excluded.created_at, \
     updated_at = excluded.updated_at, version = excluded.version, \
     attributes = excluded.attributes";

/// Deletes a name nothing refers to any more.
const SWEEP_NAME: &str = "DELETE FROM names WHERE id = ?1 \
     AND NOT EXISTS (SELECT 1 FROM nodes WHERE id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM edges WHERE from_id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM edges WHERE to_id = ?1) \
     AND NOT EXISTS (SELECT 1 FROM node_deps WHERE dep_id = ?1)";

/// Writes on the writer connection; `orphans` collects the ids of names that a
/// write may have left unreferenced, swept at commit.
pub(crate) struct W<'a> {
    pub conn: &'a Connection,
    pub ctx: &'a Ctx,
    pub orphans: &'a mut HashSet<i64>,
}

impl W<'_> {
    fn q(&self) -> Q<'_> {
        Q {
            conn: self.conn,
            ctx: self.ctx,
        }
    }

    fn exec(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        doing: impl Fn() -> String + Copy,
    ) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .ctx(self.ctx, doing)
    }

    fn ids(&self, sql: &str, id: i64, doing: impl Fn() -> String + Copy) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(sql).ctx(self.ctx, doing)?;
        let rows = stmt
            .query_map([id], |row| row.get::<_, i64>(0))
            .ctx(self.ctx, doing)?;
        rows.collect::<rusqlite::Result<Vec<i64>>>()
            .ctx(self.ctx, doing)
    }

    /// The id of a name, adding it to `names` if needed; whether it was added.
    /// `likely_new` tries the insert first (one statement for a new name).
    fn intern(&self, name: &str, likely_new: bool) -> Result<(i64, bool)> {
        let doing = || {
            format!(
                "recording the name of {} in table names",
                node_subject(name)
            )
        };
        if !likely_new && let Some(id) = self.q().name_id(name)? {
            return Ok((id, false));
        }
        if self.exec(INSERT_NAME, [name], doing)? == 1 {
            return Ok((self.conn.last_insert_rowid(), true));
        }
        let id = self.q().name_id(name)?.ok_or_else(|| {
            Error::backend(
                "sqlite",
                format!(
                    "{} in {}: the name was neither inserted nor found",
                    doing(),
                    self.ctx.path.display()
                ),
            )
        })?;
        Ok((id, false))
    }

    pub fn put_node(&mut self, node: &Node) -> Result<()> {
        let subject = node_subject(&node.name);
        let doing = || format!("writing {subject} into table nodes");
        let (id, fresh) = self.intern(&node.name, true)?;
        if !fresh {
            // An update (or a name so far known only as a reference): clear the
            // node's index rows; its old dependencies may now be unreferenced.
            let old = self.ids("SELECT dep_id FROM node_deps WHERE node_id = ?1", id, doing)?;
            self.orphans.extend(old);
            self.exec("DELETE FROM node_tags WHERE node_id = ?1", [id], doing)?;
            self.exec("DELETE FROM node_deps WHERE node_id = ?1", [id], doing)?;
        }
        let meta = &node.metadata;
        self.exec(
            UPSERT_NODE,
            params![
                id,
                node.node_type,
                meta.status,
                meta.author,
                meta.source,
                meta.created_at.as_micros(),
                meta.updated_at.as_micros(),
                version_to_sql(meta.version, &subject)?,
                to_json(&node.observations, &subject)?,
                to_json(&node.attributes, &subject)?,
                to_json(&meta.tags, &subject)?,
                to_json(&node.dependencies, &subject)?,
            ],
            doing,
        )?;
        for tag in &meta.tags {
            self.exec(
                "INSERT OR IGNORE INTO node_tags(node_id, tag) VALUES (?1, ?2)",
                params![id, tag],
                doing,
            )?;
        }
        for dep in &node.dependencies {
            let (dep_id, _) = self.intern(dep, false)?;
            self.exec(
                "INSERT OR IGNORE INTO node_deps(node_id, dep_id) VALUES (?1, ?2)",
                params![id, dep_id],
                doing,
            )?;
        }
        Ok(())
    }

    pub fn delete_node(&mut self, name: &str) -> Result<bool> {
        let doing = || format!("deleting {} from table nodes", node_subject(name));
        let Some(id) = self.q().node_id(name)? else {
            return Ok(false);
        };
        let deps = self.ids("SELECT dep_id FROM node_deps WHERE node_id = ?1", id, doing)?;
        self.orphans.extend(deps);
        self.orphans.insert(id);
        self.exec("DELETE FROM node_tags WHERE node_id = ?1", [id], doing)?;
        self.exec("DELETE FROM node_deps WHERE node_id = ?1", [id], doing)?;
        self.exec("DELETE FROM nodes WHERE id = ?1", [id], doing)?;
        Ok(true)
    }

    pub fn put_edge(&mut self, edge: &Edge) -> Result<()> {
        let subject = format!("edge {}", edge.key());
        let doing = || format!("writing {subject} into table edges");
        let (from, _) = self.intern(&edge.from, false)?;
        let (to, _) = self.intern(&edge.to, false)?;
        let meta = &edge.metadata;
        self.exec(
            UPSERT_EDGE,
            params![
                from,
                edge.relation_type.as_str(),
                to,
                meta.weight,
                meta.confidence,
                meta.bidirectional,
                meta.source,
                meta.created_at.as_micros(),
                meta.updated_at.as_micros(),
                version_to_sql(meta.version, &subject)?,
                to_json(&edge.attributes, &subject)?,
            ],
            doing,
        )?;
        Ok(())
    }

    pub fn delete_edge(&mut self, key: &EdgeKey) -> Result<bool> {
        let doing = || format!("deleting edge {key} from table edges");
        let mut stmt = self
            .conn
            .prepare_cached(
                "DELETE FROM edges WHERE from_id = (SELECT id FROM names WHERE name = ?1) \
                 AND rel = ?2 AND to_id = (SELECT id FROM names WHERE name = ?3) \
                 RETURNING from_id, to_id",
            )
            .ctx(self.ctx, doing)?;
        let ends: Vec<(i64, i64)> = stmt
            .query_map(
                [
                    key.from.as_str(),
                    key.relation_type.as_str(),
                    key.to.as_str(),
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .and_then(|rows| rows.collect())
            .ctx(self.ctx, doing)?;
        for (from, to) in &ends {
            self.orphans.insert(*from);
            self.orphans.insert(*to);
        }
        Ok(!ends.is_empty())
    }

    pub fn put_schema(&mut self, target: &SchemaTarget, schema: &Value) -> Result<()> {
        let doing = || format!("writing the schema for {target} into table schemas");
        self.exec(
            "INSERT INTO schemas(target, document) VALUES (?1, ?2) \
             ON CONFLICT(target) DO UPDATE SET document = excluded.document",
            params![
                target.key(),
                to_json(schema, &format!("schema for {target}"))?
            ],
            doing,
        )?;
        Ok(())
    }

    pub fn delete_schema(&mut self, target: &SchemaTarget) -> Result<bool> {
        let doing = || format!("deleting the schema for {target} from table schemas");
        Ok(self.exec(
            "DELETE FROM schemas WHERE target = ?1",
            [target.key()],
            doing,
        )? > 0)
    }

    /// Deletes the names nothing refers to any more.
    pub fn sweep(&mut self) -> Result<()> {
        let doing = || "removing unreferenced names from table names".to_owned();
        for id in std::mem::take(self.orphans) {
            self.exec(SWEEP_NAME, [id], doing)?;
        }
        Ok(())
    }
}
