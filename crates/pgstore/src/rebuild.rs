//! Each touched sample's searchable row, rebuilt from all its stored reports through the query
//! crate's `SampleDoc` (the view the embedded store indexes), for a whole batch at once: the
//! dictionary ids of its values (`dictionary`), its dates and Sigma counts.

use crate::dictionary::{self, Entry};
use crate::search::fields::{present_mask, text_code, token_code};
use crate::write::decode_rows;
use crate::{PgStoreError, Result};
use postgres::Transaction;
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
    txn: &mut Transaction<'_>,
    samples: &[&str],
    written: &[&NewReport],
) -> Result<()> {
    let mut reports = stored_reports(txn, samples, written)?;
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
    let entries: Vec<Vec<Entry>> = docs.iter().map(entries).collect();
    let ids = dictionary::ids(txn, entries.iter().flatten())?;
    write_rows(txn, &docs, &entries, &ids)
}

/// The samples' reports already stored before this batch (those the batch replaces left out).
fn stored_reports(
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
    let decoded = decode_rows(&rows)?;
    let mut out: BTreeMap<String, Vec<FileBehaviour>> = BTreeMap::new();
    for (row, report) in rows.iter().zip(decoded) {
        out.entry(row.get(2)).or_default().push(report);
    }
    Ok(out)
}

/// Every distinct spelling of every text value and every token of a sample, per field code.
fn entries(doc: &SampleDoc) -> Vec<Entry> {
    let mut rows = BTreeSet::new();
    for field in TextField::ALL {
        for value in doc.text(field) {
            for variant in &value.variants {
                rows.insert((text_code(field), variant.clone()));
            }
        }
    }
    for field in TokenField::ALL {
        for token in doc.tokens(field) {
            rows.insert((token_code(field), token.clone()));
        }
    }
    rows.into_iter().collect()
}

/// One `UPDATE` for the batch: each sample's dates, counts, field bits and value ids (all the
/// ids in one flat array, each sample's a slice of it).
fn write_rows(
    txn: &mut Transaction<'_>,
    docs: &[SampleDoc],
    entries: &[Vec<Entry>],
    ids: &BTreeMap<&Entry, i32>,
) -> Result<()> {
    let n = docs.len();
    let mut shas = Vec::with_capacity(n);
    let (mut first, mut last) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut sigma: [Vec<i64>; 4] = Default::default();
    let (mut present, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
    let mut flat: Vec<i32> = Vec::new();
    for (doc, entries) in docs.iter().zip(entries) {
        shas.push(doc.sha256.as_str());
        first.push(doc.first_seen);
        last.push(doc.last_seen);
        for (level, count) in sigma.iter_mut().zip(doc.sigma) {
            level.push(i64::try_from(count).unwrap_or(i64::MAX));
        }
        present.push(present_mask(entries.iter().map(|(code, _)| *code)));
        let mut own: Vec<i32> = entries
            .iter()
            .map(|e| {
                ids.get(e).copied().ok_or_else(|| {
                    PgStoreError::InvalidReport(format!(
                        "sample {}: value `{}` found no dictionary id",
                        doc.sha256, e.1
                    ))
                })
            })
            .collect::<Result<_>>()?;
        own.sort_unstable();
        own.dedup();
        // Array slices are 1-based and inclusive: `[lo:lo-1]` is empty.
        lo.push(slice_bound(flat.len() + 1)?);
        flat.extend(own);
        hi.push(slice_bound(flat.len())?);
    }
    txn.execute(
        "UPDATE samples AS s SET first_seen = u.fs, last_seen = u.ls, sigma_critical = u.c, \
         sigma_high = u.h, sigma_medium = u.m, sigma_low = u.l, present = u.p, \
         ids = ($9::integer[])[u.lo:u.hi] \
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
                     $6::bigint[], $7::bigint[], $8::integer[], $10::integer[], $11::integer[]) \
              AS u(sha, fs, ls, c, h, m, l, p, lo, hi) \
         WHERE s.sha256 = u.sha AND s.sha256 = ANY($1)",
        &[
            &shas, &first, &last, &sigma[0], &sigma[1], &sigma[2], &sigma[3], &present, &flat, &lo,
            &hi,
        ],
    )?;
    Ok(())
}

fn slice_bound(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| PgStoreError::InvalidReport("batch has too many values".into()))
}
