//! Each touched sample's searchable row, rebuilt from all its stored reports through the query
//! crate's `SampleDoc` (the view the embedded store indexes), for a whole batch at once: its
//! values per field (`search::fields`), its dates and Sigma counts.

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

/// Make sure every sample of the batch has a row and lock those rows, in SHA-256 order (so two
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
    let mut reports = stored_reports(codec, txn, samples, written)?;
    for r in written {
        reports
            .entry(r.behaviour.sha256().to_string())
            .or_default()
            .push(r.behaviour.clone());
    }
    let docs: Vec<SampleDoc> = samples
        .iter()
        .map(|sha| {
            let mut of_sample = reports.remove(*sha).unwrap_or_default();
            // The embedded store's order: by report id.
            of_sample.sort_by(|a, b| a.id.cmp(&b.id));
            SampleDoc::from_reports(sha, &of_sample)
        })
        .collect();
    write_rows(txn, &docs)
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

/// One `UPDATE` for the batch: each sample's dates, counts and value columns.
fn write_rows(txn: &mut Transaction<'_>, docs: &[SampleDoc]) -> Result<()> {
    let n = docs.len();
    let mut shas = Vec::with_capacity(n);
    let (mut first, mut last) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut sigma: [Vec<i64>; 4] = Default::default();
    let names: Vec<&str> = all_columns().collect();
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n); names.len()];
    for doc in docs {
        shas.push(doc.sha256.as_str());
        first.push(doc.first_seen);
        last.push(doc.last_seen);
        for (level, count) in sigma.iter_mut().zip(doc.sigma) {
            level.push(i64::try_from(count).unwrap_or(i64::MAX));
        }
        for (column, value) in values.iter_mut().zip(columns(doc)) {
            column.push(value);
        }
    }
    // Parameters: $1 SHA-256s, $2..$3 dates, $4..$7 counts, then one text array per column.
    // A token column is an array: its joined tokens (never empty, never holding the
    // separator) split again.
    let set: Vec<String> = names
        .iter()
        .map(|c| {
            if is_token_column(c) {
                format!("{c} = string_to_array(u.{c}, E'\\n')")
            } else {
                format!("{c} = u.{c}")
            }
        })
        .collect();
    let arrays: Vec<String> = (0..names.len())
        .map(|i| format!("${}::text[]", i + 8))
        .collect();
    let sql = format!(
        "UPDATE samples AS s SET first_seen = u.fs, last_seen = u.ls, sigma_critical = u.c, \
         sigma_high = u.h, sigma_medium = u.m, sigma_low = u.l, {} \
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
                     $6::bigint[], $7::bigint[], {}) AS u(sha, fs, ls, c, h, m, l, {}) \
         WHERE s.sha256 = u.sha AND s.sha256 = ANY($1)",
        set.join(", "),
        arrays.join(", "),
        names.join(", ")
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &shas, &first, &last, &sigma[0], &sigma[1], &sigma[2], &sigma[3],
    ];
    params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
    txn.execute(&sql, &params)?;
    Ok(())
}
