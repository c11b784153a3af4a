//! Writing a batch of reports: the reports (deflated JSON), their raw logs (streamed in
//! chunks, never whole in memory) and each touched sample's searchable rows, rebuilt from all
//! its stored reports through the query crate's `SampleDoc`, in one transaction.

use crate::search::fields::{text_code, token_code};
use crate::{PgStore, PgStoreError, Result, codec};
use postgres::Transaction;
use postgres::error::SqlState;
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_query::{SampleDoc, TextField, TokenField};
use sandscope_store::{MAX_RAW_LOG_BYTES, NewReport, RawData};
use std::collections::BTreeSet;
use std::io::Read;

/// Raw logs are stored in chunks of this size, so neither side holds a whole log.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

impl PgStore {
    /// Store a batch of reports (replacing reports of the same id) in one transaction: on
    /// `Ok` the batch is committed and searchable; on error nothing of it is stored.
    /// Returns the report ids in batch order.
    pub fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut samples = BTreeSet::new();
        for r in &batch {
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
            ids.push(b.id.clone());
            samples.insert(sha.to_string());
        }
        let mut client = self.client()?;
        // A foreign partition's side of a transaction runs at REPEATABLE READ (postgres_fdw):
        // a batch meeting a concurrent batch of the same sample there fails where one server
        // would make it wait. The other batch has committed by then, so writing again lands.
        let mut attempt = 1;
        loop {
            match write_batch(&mut client, &batch, &samples) {
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
    client: &mut postgres::Client,
    batch: &[NewReport],
    samples: &BTreeSet<String>,
) -> Result<()> {
    let mut txn = client.transaction()?;
    for r in batch {
        write_report(&mut txn, r)?;
    }
    // In sorted order, so two batches touching the same samples cannot deadlock.
    for sha in samples {
        rebuild_sample(&mut txn, sha)?;
    }
    txn.commit()?;
    Ok(())
}

fn write_report(txn: &mut Transaction<'_>, report: &NewReport) -> Result<()> {
    let b = &report.behaviour;
    let sha = b.sha256();
    let body = codec::encode(b)?;
    // Delete, then insert: `ON CONFLICT DO UPDATE` cannot reach a foreign partition (`layout`).
    txn.execute(
        "DELETE FROM reports WHERE sha256 = $1 AND report_id = $2",
        &[&sha, &b.id],
    )?;
    txn.execute(
        "INSERT INTO reports (sha256, report_id, body) VALUES ($1, $2, $3)",
        &[&sha, &b.id, &body],
    )?;
    txn.execute(
        "DELETE FROM raw_log_chunks WHERE sha256 = $1 AND report_id = $2",
        &[&sha, &b.id],
    )?;
    txn.execute(
        "DELETE FROM raw_logs WHERE sha256 = $1 AND report_id = $2",
        &[&sha, &b.id],
    )?;
    let Some(log) = &report.raw_log else {
        return Ok(());
    };
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

/// Rewrite one sample's searchable rows from all its stored reports.
fn rebuild_sample(txn: &mut Transaction<'_>, sha: &str) -> Result<()> {
    // Lock the sample's row first: a concurrent batch of the same sample waits here, then
    // reads every report committed before it (each statement sees the latest commits).
    // `DO NOTHING` without a conflict target, then `FOR UPDATE`: both reach a foreign
    // partition, where `ON CONFLICT … DO UPDATE` cannot (`layout`).
    txn.execute(
        "INSERT INTO samples (sha256, sigma_critical, sigma_high, sigma_medium, sigma_low) \
         VALUES ($1, 0, 0, 0, 0) ON CONFLICT DO NOTHING",
        &[&sha],
    )?;
    txn.execute(
        "SELECT 1 FROM samples WHERE sha256 = $1 FOR UPDATE",
        &[&sha],
    )?;
    let reports = crate::read::sample_reports_in(txn, sha)?;
    let doc = SampleDoc::from_reports(sha, &reports);
    let sigma: Vec<i64> = doc
        .sigma
        .iter()
        .map(|&n| i64::try_from(n).unwrap_or(i64::MAX))
        .collect();
    txn.execute(
        "UPDATE samples SET first_seen = $2, last_seen = $3, sigma_critical = $4, \
         sigma_high = $5, sigma_medium = $6, sigma_low = $7 WHERE sha256 = $1",
        &[
            &sha,
            &doc.first_seen,
            &doc.last_seen,
            &sigma[0],
            &sigma[1],
            &sigma[2],
            &sigma[3],
        ],
    )?;
    txn.execute("DELETE FROM sample_values WHERE sha256 = $1", &[&sha])?;
    txn.execute("DELETE FROM sample_tokens WHERE sha256 = $1", &[&sha])?;
    let (fields, values) = value_rows(&doc);
    txn.execute(
        "INSERT INTO sample_values (sha256, field, value) \
         SELECT $1, f, v FROM unnest($2::smallint[], $3::text[]) AS t(f, v)",
        &[&sha, &fields, &values],
    )?;
    let (fields, tokens) = token_rows(&doc);
    txn.execute(
        "INSERT INTO sample_tokens (sha256, field, token) \
         SELECT $1, f, t FROM unnest($2::smallint[], $3::text[]) AS r(f, t)",
        &[&sha, &fields, &tokens],
    )?;
    Ok(())
}

/// Every distinct spelling of every text value, per field: what a text term is matched on.
fn value_rows(doc: &SampleDoc) -> (Vec<i16>, Vec<String>) {
    let mut rows = BTreeSet::new();
    for field in TextField::ALL {
        for value in doc.text(field) {
            for variant in &value.variants {
                rows.insert((text_code(field), variant.clone()));
            }
        }
    }
    rows.into_iter().unzip()
}

fn token_rows(doc: &SampleDoc) -> (Vec<i16>, Vec<String>) {
    let mut rows = BTreeSet::new();
    for field in TokenField::ALL {
        for token in doc.tokens(field) {
            rows.insert((token_code(field), token.clone()));
        }
    }
    rows.into_iter().unzip()
}

/// Reports decoded for a rebuild: shared with reading.
pub(crate) fn decode_rows(rows: &[postgres::Row]) -> Result<Vec<FileBehaviour>> {
    rows.iter()
        .map(|row| codec::decode(row.get(0), row.get(1)))
        .collect()
}
