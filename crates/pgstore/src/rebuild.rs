//! Each touched sample's searchable row, rebuilt from all its stored reports through the query
//! crate's `SampleDoc` (the view the embedded store indexes), for a whole batch at once: its
//! values per field (`search::fields`), its dates and Sigma counts.
//!
//! A sample new to the store gets its row in one `INSERT` (`insert_new_samples`); only a
//! sample that has one is locked and rebuilt with an `UPDATE`. Inserting an empty row and then
//! updating it cost a second row version, with its own entries in every index: about a tenth
//! more of the batch's time in PostgreSQL, almost all of it trigram index maintenance.

use crate::Result;
use crate::codec::Codec;
use crate::search::fields::{VALUE_SEPARATOR, all_columns, is_token_column, token_column};
use crate::write::decode_rows;
use postgres::Transaction;
use postgres::types::ToSql;
use sandscope_model::FileBehaviour;
use sandscope_query::{SampleDoc, TextField, TokenField};
use sandscope_store::NewReport;
use std::collections::{BTreeMap, BTreeSet};

/// The rows of the batch's samples the store does not have yet, inserted whole (from the
/// batch's reports: a sample's reports and its row are written in one transaction, so a sample
/// without a row has no stored report), in SHA-256 order; the samples whose row this
/// transaction inserted. A sample another batch inserts at the same time is not among them:
/// the insert waits for that batch to commit and then leaves the row to `lock_samples` and
/// `rebuild_samples`, which see that batch's reports.
pub(crate) fn insert_new_samples(
    txn: &mut Transaction<'_>,
    samples: &[&str],
    written: &[&NewReport],
) -> Result<BTreeSet<String>> {
    let existing: BTreeSet<String> = txn
        .query(
            "SELECT sha256 FROM samples WHERE sha256 = ANY($1)",
            &[&samples],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let fresh: Vec<&str> = samples
        .iter()
        .copied()
        .filter(|sha| !existing.contains(*sha))
        .collect();
    if fresh.is_empty() {
        return Ok(BTreeSet::new());
    }
    let docs = docs_of(&fresh, BTreeMap::new(), written);
    let rows = Rows::of(&docs);
    let names: Vec<&str> = all_columns().collect();
    // `DO NOTHING` (no conflict target): what a foreign partition accepts.
    let sql = format!(
        "INSERT INTO samples (sha256, first_seen, last_seen, sigma_critical, sigma_high, \
         sigma_medium, sigma_low, {}) \
         SELECT u.sha, u.fs, u.ls, u.c, u.h, u.m, u.l, {} FROM {} ORDER BY u.sha \
         ON CONFLICT DO NOTHING RETURNING sha256",
        names.join(", "),
        names
            .iter()
            .map(|c| column_value(c))
            .collect::<Vec<_>>()
            .join(", "),
        Rows::source(),
    );
    Ok(txn
        .query(&sql, &rows.params())?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Make sure every sample of `samples` has a row and lock those rows, in SHA-256 order (so two
/// batches touching the same samples cannot deadlock). A concurrent batch of the same sample
/// waits here until this one commits, then reads every report committed before it.
pub(crate) fn lock_samples(txn: &mut Transaction<'_>, samples: &[&str]) -> Result<()> {
    // `DO NOTHING` (no conflict target): what a foreign partition accepts.
    txn.execute(
        "INSERT INTO samples (sha256, sigma_critical, sigma_high, sigma_medium, sigma_low) \
         SELECT u, 0, 0, 0, 0 FROM unnest($1::text[]) AS u ORDER BY u ON CONFLICT DO NOTHING",
        &[&samples],
    )?;
    txn.query(
        "SELECT sha256 FROM samples WHERE sha256 = ANY($1) ORDER BY sha256 FOR UPDATE",
        &[&samples],
    )?;
    Ok(())
}

/// Rewrite the rows of `samples` (sorted, distinct) from their stored reports; `written` are
/// the batch's reports (not read back).
pub(crate) fn rebuild_samples(
    codec: &Codec,
    txn: &mut Transaction<'_>,
    samples: &[&str],
    written: &[&NewReport],
) -> Result<()> {
    let stored = stored_reports(codec, txn, samples, written)?;
    write_rows(txn, &docs_of(samples, stored, written))
}

/// The view of each of `samples` from its `stored` reports and the batch's.
fn docs_of(
    samples: &[&str],
    mut stored: BTreeMap<String, Vec<FileBehaviour>>,
    written: &[&NewReport],
) -> Vec<SampleDoc> {
    for r in written {
        stored
            .entry(r.behaviour.sha256().to_string())
            .or_default()
            .push(r.behaviour.clone());
    }
    samples
        .iter()
        .map(|sha| {
            let mut of_sample = stored.remove(*sha).unwrap_or_default();
            // The embedded store's order: by report id.
            of_sample.sort_by(|a, b| a.id.cmp(&b.id));
            SampleDoc::from_reports(sha, &of_sample)
        })
        .collect()
}

/// The samples' reports already stored before this batch (those the batch replaces left out).
fn stored_reports(
    codec: &Codec,
    txn: &mut Transaction<'_>,
    samples: &[&str],
    written: &[&NewReport],
) -> Result<BTreeMap<String, Vec<FileBehaviour>>> {
    let ids: Vec<&str> = written.iter().map(|r| r.behaviour.id.as_str()).collect();
    let rows = txn.query(
        "SELECT report_id, body, sha256 FROM reports \
         WHERE sha256 = ANY($1) AND NOT (report_id = ANY($2))",
        &[&samples, &ids],
    )?;
    let decoded = decode_rows(codec, txn, &rows)?;
    let mut out: BTreeMap<String, Vec<FileBehaviour>> = BTreeMap::new();
    for (row, report) in rows.iter().zip(decoded) {
        out.entry(row.get(2)).or_default().push(report);
    }
    Ok(out)
}

/// The sample's value columns, in `fields::all_columns` order: every distinct spelling of
/// every text value of a field, sorted, joined by the separator; a field's tokens the same way
/// (`write_rows` splits them into the column's array). `None` for a field without values.
fn columns(doc: &SampleDoc) -> Vec<Option<String>> {
    let sep = VALUE_SEPARATOR.to_string();
    let mut out = Vec::with_capacity(TextField::ALL.len() + TokenField::ALL.len());
    for field in TextField::ALL {
        let values: BTreeSet<&str> = doc
            .text(field)
            .iter()
            .flat_map(|v| v.variants.iter().map(String::as_str))
            .collect();
        out.push((!values.is_empty()).then(|| values.into_iter().collect::<Vec<_>>().join(&sep)));
    }
    // The SHA-256 token is the row's key (see `fields`).
    for field in TokenField::ALL
        .into_iter()
        .filter(|f| token_column(*f).is_some())
    {
        let tokens: BTreeSet<&str> = doc.tokens(field).iter().map(String::as_str).collect();
        out.push((!tokens.is_empty()).then(|| tokens.into_iter().collect::<Vec<_>>().join(&sep)));
    }
    out
}

/// The samples' rows as the statements' parameters, one array per column: `$1` SHA-256s,
/// `$2..$3` dates, `$4..$7` counts, then one text array per value column.
struct Rows<'a> {
    shas: Vec<&'a str>,
    first: Vec<Option<i64>>,
    last: Vec<Option<i64>>,
    sigma: [Vec<i64>; 4],
    values: Vec<Vec<Option<String>>>,
}

impl<'a> Rows<'a> {
    fn of(docs: &'a [SampleDoc]) -> Rows<'a> {
        let n = docs.len();
        let mut rows = Rows {
            shas: Vec::with_capacity(n),
            first: Vec::with_capacity(n),
            last: Vec::with_capacity(n),
            sigma: Default::default(),
            values: vec![Vec::with_capacity(n); all_columns().count()],
        };
        for doc in docs {
            rows.shas.push(doc.sha256.as_str());
            rows.first.push(doc.first_seen);
            rows.last.push(doc.last_seen);
            for (level, count) in rows.sigma.iter_mut().zip(doc.sigma) {
                level.push(i64::try_from(count).unwrap_or(i64::MAX));
            }
            for (column, value) in rows.values.iter_mut().zip(columns(doc)) {
                column.push(value);
            }
        }
        rows
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.shas,
            &self.first,
            &self.last,
            &self.sigma[0],
            &self.sigma[1],
            &self.sigma[2],
            &self.sigma[3],
        ];
        params.extend(self.values.iter().map(|v| v as &(dyn ToSql + Sync)));
        params
    }

    /// The parameters as a row source `u(sha, fs, ls, c, h, m, l, <columns>)`.
    fn source() -> String {
        let names: Vec<&str> = all_columns().collect();
        let arrays: Vec<String> = (0..names.len())
            .map(|i| format!("${}::text[]", i + 8))
            .collect();
        format!(
            "unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
             $6::bigint[], $7::bigint[], {}) AS u(sha, fs, ls, c, h, m, l, {})",
            arrays.join(", "),
            names.join(", ")
        )
    }
}

/// What column `c` is set to from the row source: a token column is an array, its joined
/// tokens (never empty, never holding the separator) split again.
fn column_value(c: &str) -> String {
    if is_token_column(c) {
        format!("string_to_array(u.{c}, E'\\n')")
    } else {
        format!("u.{c}")
    }
}

/// One `UPDATE` for the batch: each sample's dates, counts and value columns.
fn write_rows(txn: &mut Transaction<'_>, docs: &[SampleDoc]) -> Result<()> {
    let rows = Rows::of(docs);
    let set: Vec<String> = all_columns()
        .map(|c| format!("{c} = {}", column_value(c)))
        .collect();
    let sql = format!(
        "UPDATE samples AS s SET first_seen = u.fs, last_seen = u.ls, sigma_critical = u.c, \
         sigma_high = u.h, sigma_medium = u.m, sigma_low = u.l, {} \
         FROM {} WHERE s.sha256 = u.sha AND s.sha256 = ANY($1)",
        set.join(", "),
        Rows::source()
    );
    txn.execute(&sql, &rows.params())?;
    Ok(())
}
