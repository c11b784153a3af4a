//! Stored detonations for Retrohunt: the `DetonationLogs` seam (defined in `sandscope-store`,
//! beside `RecordStore`) over `reports`, `raw_logs` and `raw_log_chunks`. Report ids come a
//! page at a time after a cursor, in the embedded store's order (byte-wise, which is also
//! `sha256` order, since every id starts with its sample's SHA-256); a raw log is read one
//! 1 MiB chunk per fetch, so only the chunk being read is in memory, whatever the log's size.
//!
//! Every statement names `sha256` (the distribution column under Citus): the id page is a
//! range over it, so each shard answers from its own index; a log or a date is one sample's.

use crate::{PgStore, Result, connect};
use sandscope_model::split_behaviour_id;
use sandscope_store::{DetonationLog, DetonationLogs, RecordStoreError};
use std::io::Read;

impl PgStore {
    /// Report ids after `after` (exclusive), in id order, at most `limit` (1 to 10,000).
    pub fn detonation_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let after = after.unwrap_or("");
        // Ids start with their sample's SHA-256, so every later id's sample sorts at or after
        // the cursor's: the range on `sha256` is exact, and lets each shard use its key.
        let sample = split_behaviour_id(after).map_or(after, |(sha, _)| sha);
        let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000);
        let rows = self.client()?.query(
            "SELECT report_id FROM reports WHERE sha256 >= $1 AND report_id > $2 \
             ORDER BY sha256, report_id LIMIT $3",
            &[&sample, &after, &limit],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The raw log of report `id`, opened to be read chunk by chunk; `None` when none is kept.
    pub fn detonation_log(&self, id: &str) -> Result<Option<DetonationLog>> {
        let Some((sha, _)) = split_behaviour_id(id) else {
            return Ok(None);
        };
        let row = self.client()?.query_opt(
            "SELECT file_name, size FROM raw_logs WHERE sha256 = $1 AND report_id = $2",
            &[&sha, &id],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let size = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
        Ok(Some(DetonationLog {
            file_name: row.get(0),
            size,
            reader: Box::new(ChunkReader {
                pool: self.pool.clone(),
                sha256: sha.to_string(),
                report_id: id.to_string(),
                size,
                next_seq: 0,
                chunk: Vec::new(),
                at: 0,
                read: 0,
            }),
        }))
    }

    /// The analysis date of report `id` (Unix seconds), as the embedded store reads it.
    pub fn detonation_date(&self, id: &str) -> Result<Option<i64>> {
        Ok(self.report(id)?.and_then(|r| r.attributes.analysis_date))
    }
}

/// One raw log, fetched a chunk (one row of `raw_log_chunks`) at a time as it is read.
struct ChunkReader {
    pool: connect::Pool,
    sha256: String,
    report_id: String,
    /// The size `raw_logs` gives: a log rewritten while it is read no longer adds up to it.
    size: u64,
    next_seq: i32,
    chunk: Vec<u8>,
    at: usize,
    read: u64,
}

impl ChunkReader {
    /// Fetch the next chunk; false past the last.
    fn fetch(&mut self) -> Result<bool> {
        let row = self.pool.get()?.query_opt(
            "SELECT data FROM raw_log_chunks WHERE sha256 = $1 AND report_id = $2 AND seq = $3",
            &[&self.sha256, &self.report_id, &self.next_seq],
        )?;
        let Some(row) = row else {
            return Ok(false);
        };
        self.chunk = row.get(0);
        self.at = 0;
        self.next_seq = self.next_seq.saturating_add(1);
        Ok(true)
    }

    fn changed(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the raw log of report {} changed while it was read ({} of {} bytes); retry",
                self.report_id, self.read, self.size
            ),
        )
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            let more = self.fetch().map_err(std::io::Error::other)?;
            if !more {
                return if self.read == self.size {
                    Ok(0)
                } else {
                    Err(self.changed())
                };
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        self.read += n as u64;
        if self.read > self.size {
            return Err(self.changed());
        }
        Ok(n)
    }
}

impl DetonationLogs for PgStore {
    fn detonation_ids(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, RecordStoreError> {
        Ok(PgStore::detonation_ids(self, after, limit)?)
    }

    fn detonation_count(&self) -> Result<u64, RecordStoreError> {
        Ok(self.stats()?.reports)
    }

    fn detonation_log(&self, report_id: &str) -> Result<Option<DetonationLog>, RecordStoreError> {
        Ok(PgStore::detonation_log(self, report_id)?)
    }

    fn detonation_date(&self, report_id: &str) -> Result<Option<i64>, RecordStoreError> {
        Ok(PgStore::detonation_date(self, report_id)?)
    }
}
