//! Writing a batch of reports: the reports (compressed JSON, `codec`) and their raw logs (streamed in
//! chunks, never whole in memory), then each touched sample's searchable row (`rebuild`: a new
//! sample's inserted whole, a stored one's rebuilt), in one transaction.

use crate::codec::Codec;
use crate::{PgStore, PgStoreError, Result};
use postgres::error::SqlState;
use postgres::{GenericClient, Transaction};
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_store::{MAX_RAW_LOG_BYTES, NewReport, RawData, RawLog};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Raw logs are stored in chunks of this size, so neither side holds a whole log.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

impl PgStore {
    /// Store a batch of reports (replacing reports of the same id) in one transaction: on
    /// `Ok` the batch is committed and searchable; on error nothing of it is stored.
    /// Returns the report ids in batch order.
    ///
    /// Each table is written with one statement for the whole batch (arrays through
    /// `unnest`); a raw log adds one statement per 1 MiB chunk. Nothing on a large table uses
    /// `ON CONFLICT DO UPDATE` (a `postgres_fdw` foreign partition refuses it): a replaced
    /// report is deleted and inserted again, and every statement names its samples' SHA-256s.
    pub fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(batch.len());
        for r in &batch {
            validate(r)?;
            ids.push(r.behaviour.id.clone());
        }
        // A report given twice in one batch: the last one wins, as if written one by one.
        let mut latest: BTreeMap<&str, &NewReport> = BTreeMap::new();
        for r in &batch {
            latest.insert(&r.behaviour.id, r);
        }
        let reports: Vec<&NewReport> = latest.into_values().collect();
        let samples: BTreeSet<&str> = reports.iter().map(|r| r.behaviour.sha256()).collect();
        let samples: Vec<&str> = samples.into_iter().collect();
        let mut client = self.client()?;
        crate::dictionary::ensure(&self.codec, &self.training, &mut client.client, &reports)?;
        // A foreign partition's side of a transaction runs at REPEATABLE READ (postgres_fdw):
        // a batch meeting a concurrent batch of the same sample there fails where one server
        // would make it wait. The other batch has committed by then, so writing again lands.
        let mut attempt = 1;
        loop {
            match write_batch(&self.codec, &mut client, &samples, &reports) {
                Err(e) if is_serialization_failure(&e) && attempt < WRITE_ATTEMPTS => {
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(ids),
            }
        }
    }

    /// Store one report.
    pub fn put_report(&self, report: NewReport) -> Result<String> {
        let mut ids = self.put_reports(vec![report])?;
        ids.pop()
            .ok_or_else(|| PgStoreError::InvalidReport("empty batch".into()))
    }
}

/// Most times a batch is written when concurrent batches of its samples keep winning.
const WRITE_ATTEMPTS: u64 = 20;

fn is_serialization_failure(error: &PgStoreError) -> bool {
    matches!(error, PgStoreError::Sql(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE))
}

/// The batch in one transaction.
fn write_batch(
    codec: &Codec,
    client: &mut postgres::Client,
    samples: &[&str],
    reports: &[&NewReport],
) -> Result<()> {
    let mut txn = client.transaction()?;
    let inserted = crate::rebuild::insert_new_samples(&mut txn, samples, reports)?;
    let stored: Vec<&str> = samples
        .iter()
        .copied()
        .filter(|sha| !inserted.contains(*sha))
        .collect();
    if !stored.is_empty() {
        crate::rebuild::lock_samples(&mut txn, &stored)?;
    }
    write_reports(codec, &mut txn, samples, reports)?;
    for r in reports {
        if let Some(log) = &r.raw_log {
            write_raw_log(&mut txn, &r.behaviour, log)?;
        }
    }
    if !stored.is_empty() {
        crate::rebuild::rebuild_samples(codec, &mut txn, &stored, reports)?;
    }
    txn.commit()?;
    Ok(())
}

/// A report's id must be `<lower-case sha256>_<sandbox name>`.
fn validate(r: &NewReport) -> Result<()> {
    let b = &r.behaviour;
    let sha = b.sha256();
    if !is_sha256(sha) || sha.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(PgStoreError::InvalidReport(format!(
            "report id `{}` does not start with a lower-case SHA-256",
            b.id
        )));
    }
    if b.attributes.sandbox_name.is_empty()
        || b.id != sandscope_model::behaviour_id(sha, &b.attributes.sandbox_name)
    {
        return Err(PgStoreError::InvalidReport(format!(
            "report id `{}` is not `<sha256>_<sandbox_name>`",
            b.id
        )));
    }
    Ok(())
}

/// Replace the reports (and drop their old raw logs): one statement per table.
fn write_reports(
    codec: &Codec,
    txn: &mut Transaction<'_>,
    samples: &[&str],
    reports: &[&NewReport],
) -> Result<()> {
    let mut shas = Vec::with_capacity(reports.len());
    let mut ids = Vec::with_capacity(reports.len());
    let mut bodies = Vec::with_capacity(reports.len());
    let mut encoder = codec.encoder()?;
    for r in reports {
        shas.push(r.behaviour.sha256());
        ids.push(r.behaviour.id.as_str());
        bodies.push(encoder.encode(&r.behaviour)?);
    }
    for table in ["reports", "raw_log_chunks", "raw_logs"] {
        // `table` is one of three fixed names; the values are parameters.
        txn.execute(
            &format!("DELETE FROM {table} WHERE sha256 = ANY($1) AND report_id = ANY($2)"),
            &[&samples, &ids],
        )?;
    }
    txn.execute(
        "INSERT INTO reports (sha256, report_id, body) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])",
        &[&shas, &ids, &bodies],
    )?;
    Ok(())
}

/// Write a report's raw log chunk by chunk, then its row.
fn write_raw_log(txn: &mut Transaction<'_>, b: &FileBehaviour, log: &RawLog) -> Result<()> {
    let sha = b.sha256();
    let size = match &log.data {
        RawData::Bytes(bytes) => write_chunks(txn, sha, &b.id, &mut bytes.as_slice())?,
        RawData::File(path) => {
            let io = |source| PgStoreError::Io {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::open(path).map_err(io)?;
            write_chunks(txn, sha, &b.id, &mut file).map_err(|e| match e {
                PgStoreError::Io { source, .. } => io(source),
                other => other,
            })?
        }
    };
    txn.execute(
        "INSERT INTO raw_logs (sha256, report_id, file_name, size) VALUES ($1, $2, $3, $4)",
        &[&sha, &b.id, &log.file_name, &size],
    )?;
    Ok(())
}

/// Copy `source` into chunk rows; the log's size.
fn write_chunks(
    txn: &mut Transaction<'_>,
    sha: &str,
    id: &str,
    source: &mut dyn Read,
) -> Result<i64> {
    let statement = txn.prepare(
        "INSERT INTO raw_log_chunks (sha256, report_id, seq, data) VALUES ($1, $2, $3, $4)",
    )?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut total: u64 = 0;
    let mut seq: i32 = 0;
    loop {
        let n = read_full(source, &mut chunk).map_err(|source| PgStoreError::Io {
            path: id.into(),
            source,
        })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_RAW_LOG_BYTES {
            return Err(PgStoreError::LogTooLarge(id.to_string()));
        }
        txn.execute(&statement, &[&sha, &id, &seq, &&chunk[..n]])?;
        seq += 1;
    }
    // At most MAX_RAW_LOG_BYTES (2 GiB), so it fits.
    Ok(i64::try_from(total).unwrap_or(i64::MAX))
}

/// Fill `buf` as far as the source goes.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reports decoded for a rebuild: shared with reading.
pub(crate) fn decode_rows(
    codec: &Codec,
    client: &mut impl GenericClient,
    rows: &[postgres::Row],
) -> Result<Vec<FileBehaviour>> {
    rows.iter()
        .map(|row| codec.decode(client, row.get(0), row.get(1)))
        .collect()
}
