//! The value dictionary (`value_dict`, schema version 3): each distinct (field code, value) once,
//! with an integer id; samples hold the ids of their values. Entries are only ever added (a
//! value no sample holds any more matches nothing), so a writer never rewrites another's rows.

use crate::{PgStoreError, Result};
use postgres::Transaction;
use std::collections::{BTreeMap, BTreeSet};

/// A field code (`search::fields`) and a value in the query crate's normal form.
pub(crate) type Entry = (i16, String);

/// The id of every entry, adding the missing ones: two statements for any number of entries.
pub(crate) fn ids<'a>(
    txn: &mut Transaction<'_>,
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Result<BTreeMap<&'a Entry, i32>> {
    let distinct: BTreeSet<&Entry> = entries.into_iter().collect();
    let fields: Vec<i16> = distinct.iter().map(|e| e.0).collect();
    let values: Vec<&str> = distinct.iter().map(|e| e.1.as_str()).collect();
    // New entries only (an existing one would spend a sequence number for nothing), in the
    // unique key's order, so two writers adding the same entries wait for each other instead
    // of deadlocking. `ON CONFLICT DO NOTHING`: another writer added it first.
    txn.execute(
        "INSERT INTO value_dict (field, value) \
         SELECT u.f, u.v FROM unnest($1::smallint[], $2::text[]) AS u(f, v) \
         WHERE NOT EXISTS (SELECT 1 FROM value_dict d WHERE d.field = u.f \
                           AND md5(d.value)::uuid = md5(u.v)::uuid AND d.value = u.v) \
         ORDER BY u.f, md5(u.v)::uuid ON CONFLICT DO NOTHING",
        &[&fields, &values],
    )?;
    let rows = txn.query(
        "SELECT u.n, d.id FROM unnest($1::smallint[], $2::text[]) WITH ORDINALITY AS u(f, v, n) \
         JOIN value_dict d ON d.field = u.f AND md5(d.value)::uuid = md5(u.v)::uuid \
                           AND d.value = u.v",
        &[&fields, &values],
    )?;
    let by_position: Vec<&Entry> = distinct.into_iter().collect();
    let mut out = BTreeMap::new();
    for row in rows {
        let n: i64 = row.get(0);
        let entry = usize::try_from(n - 1)
            .ok()
            .and_then(|i| by_position.get(i))
            .ok_or_else(|| PgStoreError::InvalidReport(format!("dictionary row {n}")))?;
        out.insert(*entry, row.get(1));
    }
    // An entry left without an id shares its key's MD5 with another value of its field.
    if let Some(missing) = by_position.iter().find(|e| !out.contains_key(**e)) {
        return Err(PgStoreError::InvalidReport(format!(
            "value `{}` collides with a stored value's MD5 and cannot be indexed",
            missing.1
        )));
    }
    Ok(out)
}
