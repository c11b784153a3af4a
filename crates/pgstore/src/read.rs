//! Reading: reports, a sample's reports, raw logs (chunk by chunk) and counts.

use crate::codec::Codec;
use crate::write::decode_rows;
use crate::{PgStore, Result};
use postgres::GenericClient;
use sandscope_model::{FileBehaviour, split_behaviour_id};
use sandscope_store::{Graph, Indicator, StoreStats, StoredLog, pivot_indicators, sample_graph};
use std::io::Write;

/// Every report of a sample, in id order (the embedded store's order).
pub(crate) fn sample_reports_in(
    codec: &Codec,
    client: &mut impl GenericClient,
    sha: &str,
) -> Result<Vec<FileBehaviour>> {
    let rows = client.query(
        "SELECT report_id, body FROM reports WHERE sha256 = $1 ORDER BY report_id",
        &[&sha],
    )?;
    decode_rows(codec, client, &rows)
}

/// Every report of each of `shas`, in id order per sample, in one round trip (a page's
/// hits): the samples in the order given; one with no reports gets an empty list.
pub(crate) fn samples_reports_in(
    codec: &Codec,
    client: &mut impl GenericClient,
    shas: &[&str],
) -> Result<Vec<Vec<FileBehaviour>>> {
    let rows = client.query(
        "SELECT sha256, report_id, body FROM reports WHERE sha256 = ANY($1) \
         ORDER BY sha256, report_id",
        &[&shas],
    )?;
    let mut by_sha: std::collections::HashMap<String, Vec<FileBehaviour>> =
        std::collections::HashMap::with_capacity(shas.len());
    for row in &rows {
        let report = codec.decode(client, row.get(1), row.get(2))?;
        by_sha.entry(row.get(0)).or_default().push(report);
    }
    Ok(shas
        .iter()
        .map(|sha| by_sha.remove(*sha).unwrap_or_default())
        .collect())
}

impl PgStore {
    /// A report by id (`<sha256>_<sandbox name>`).
    pub fn report(&self, id: &str) -> Result<Option<FileBehaviour>> {
        let Some((sha, _)) = split_behaviour_id(id) else {
            return Ok(None);
        };
        let mut client = self.client()?;
        let row = client.query_opt(
            "SELECT report_id, body FROM reports WHERE sha256 = $1 AND report_id = $2",
            &[&sha, &id],
        )?;
        Ok(decode_rows(&self.codec, &mut client.client, row.as_slice())?.pop())
    }

    /// Bytes the store's tables and their indexes (and TOAST) take, on every server of the
    /// sharded layout.
    pub fn size_bytes(&self) -> Result<u64> {
        let mut client = self.client()?;
        // Each table, or its local partitions (foreign ones keep their bytes on their server).
        let local: i64 = client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid) \
                 WHERE c.relkind = 'r' AND root.relname = ANY($1)",
                &[&crate::schema::TABLES.as_slice()],
            )?
            .get(0);
        let mut total = local;
        for remote in crate::layout::remote_shards(&mut client.client, &self.target)? {
            // Asked on that server, of its partition's tables (fixed names).
            let sizes: Vec<String> = remote
                .tables
                .iter()
                .map(|t| format!("pg_total_relation_size('{t}')"))
                .collect();
            let there: i64 = client
                .query_one(
                    "SELECT bytes FROM dblink($1, $2) AS t(bytes bigint)",
                    &[
                        &remote.server,
                        &format!("SELECT ({})::bigint", sizes.join(" + ")),
                    ],
                )?
                .get(0);
            total += there;
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Whether report `id` is stored.
    pub fn has_report(&self, id: &str) -> Result<bool> {
        let Some((sha, _)) = split_behaviour_id(id) else {
            return Ok(false);
        };
        let row = self.client()?.query_opt(
            "SELECT 1 FROM reports WHERE sha256 = $1 AND report_id = $2",
            &[&sha, &id],
        )?;
        Ok(row.is_some())
    }

    /// Every report id, in order, a page at a time (`cursor` = the previous page's last id),
    /// as the embedded store's `list_report_ids` pages them.
    pub fn list_report_ids(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let limit = limit.clamp(1, 10_000);
        // One row more than asked says whether another page follows.
        let rows = self.client()?.query(
            "SELECT report_id FROM reports WHERE report_id > $1 ORDER BY report_id LIMIT $2",
            &[&cursor.unwrap_or(""), &(limit as i64 + 1)],
        )?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next = more.then(|| ids.last().cloned()).flatten();
        Ok((ids, next))
    }

    /// Every report of a sample (all sandboxes), in id order.
    pub fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>> {
        sample_reports_in(&self.codec, &mut self.client()?.client, sha256)
    }

    /// Copy the raw log of report `id` into `out`, one chunk at a time; its file name, or
    /// `None` when no log was kept.
    pub fn copy_raw_log(&self, id: &str, out: &mut dyn Write) -> Result<Option<String>> {
        let Some((sha, _)) = split_behaviour_id(id) else {
            return Ok(None);
        };
        let mut client = self.client()?;
        let mut txn = client.transaction()?;
        let Some(info) = txn.query_opt(
            "SELECT file_name FROM raw_logs WHERE sha256 = $1 AND report_id = $2",
            &[&sha, &id],
        )?
        else {
            return Ok(None);
        };
        // A portal fetches a few rows at a time: one chunk in memory, whatever the log's size.
        let portal = txn.bind(
            "SELECT data FROM raw_log_chunks WHERE sha256 = $1 AND report_id = $2 ORDER BY seq",
            &[&sha, &id],
        )?;
        loop {
            let rows = txn.query_portal(&portal, 1)?;
            let Some(row) = rows.first() else { break };
            out.write_all(row.get::<_, &[u8]>(0))
                .map_err(|source| crate::PgStoreError::Io {
                    path: id.into(),
                    source,
                })?;
        }
        txn.commit()?;
        Ok(Some(info.get(0)))
    }

    /// The raw log a report was built from, whole (the API serves it in one response).
    pub fn raw_log(&self, id: &str) -> Result<Option<StoredLog>> {
        let mut bytes = Vec::new();
        Ok(self
            .copy_raw_log(id, &mut bytes)?
            .map(|file_name| StoredLog { file_name, bytes }))
    }

    /// The sample's indicators, each with how many other samples share it (exact counts) and
    /// the query that finds them: the embedded store's pivot (`pivot_indicators`) on this store.
    pub fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>> {
        let sha = sha256.trim().to_ascii_lowercase();
        if !sandscope_model::is_sha256(&sha) {
            return Err(crate::PgStoreError::InvalidSha256(sha256.to_string()));
        }
        let reports = self.sample_reports(&sha)?;
        let now = sandscope_store::SearchRequest::new("").now;
        pivot_indicators(&sha, &reports, |query| self.count(query, now))
    }

    /// The relationship graph around a sample, built exactly as the embedded store's
    /// (`sample_graph`): at most `max_nodes` nodes, `depth` hops out.
    pub fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph> {
        let sha = sha256.trim().to_ascii_lowercase();
        if !sandscope_model::is_sha256(&sha) {
            return Err(crate::PgStoreError::InvalidSha256(sha256.to_string()));
        }
        sample_graph(
            &sha,
            depth,
            max_nodes,
            |sha| self.sample_reports(sha),
            |query, request| self.search_parsed(query, request),
        )
    }

    /// Numbers of reports, samples and raw logs.
    pub fn stats(&self) -> Result<StoreStats> {
        let mut client = self.client()?;
        let row = client.query_one(
            "SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM samples), \
             (SELECT count(*) FROM raw_logs)",
            &[],
        )?;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(StoreStats {
            reports: n(0),
            samples: n(1),
            raw_logs: n(2),
        })
    }
}
