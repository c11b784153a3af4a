//! What the two tantivy indexes cost, by part (term dictionary, postings, positions, fast
//! fields, field norms, doc store, deletes) and by field, summed over their segments.

use crate::{Result, Store, StoreError};
use std::collections::BTreeMap;
use tantivy::space_usage::PerFieldSpaceUsage;

/// What one part of one field costs in one index (see [`Store::index_sizes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPartSize {
    /// `samples` or `values`.
    pub index: &'static str,
    /// `term dictionary`, `postings`, `positions`, `fast fields`, `field norms`, `doc store`
    /// or `deletes`.
    pub part: &'static str,
    /// The field, or empty for parts that are not per field (doc store, deletes).
    pub field: String,
    pub bytes: u64,
    /// Segments of the index (the same on every row of it).
    pub segments: usize,
}

impl Store {
    /// What each part of each field of the two indexes costs, largest first within an index.
    pub fn index_sizes(&self) -> Result<Vec<IndexPartSize>> {
        let mut rows = Vec::new();
        for (name, reader) in [("samples", &self.reader), ("values", &self.value_reader)] {
            // Merges finished since the last commit are in the index's meta, not yet in the
            // reader's segments.
            reader.reload()?;
            let usage = reader
                .searcher()
                .space_usage()
                .map_err(|e| StoreError::Index(e.into()))?;
            let segments = usage.segments().len();
            let mut sums: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
            for segment in usage.segments() {
                let per_field: [(&'static str, &PerFieldSpaceUsage); 5] = [
                    ("term dictionary", segment.termdict()),
                    ("postings", segment.postings()),
                    ("positions", segment.positions()),
                    ("fast fields", segment.fast_fields()),
                    ("field norms", segment.fieldnorms()),
                ];
                for (part, fields) in per_field {
                    for field in fields.fields() {
                        *sums
                            .entry((part, field.field_name().to_string()))
                            .or_default() += field.total().get_bytes();
                    }
                }
                *sums.entry(("doc store", String::new())).or_default() +=
                    segment.store().total().get_bytes();
                *sums.entry(("deletes", String::new())).or_default() +=
                    segment.deletes().get_bytes();
            }
            let mut index_rows: Vec<IndexPartSize> = sums
                .into_iter()
                .filter(|(_, bytes)| *bytes > 0)
                .map(|((part, field), bytes)| IndexPartSize {
                    index: name,
                    part,
                    field,
                    bytes,
                    segments,
                })
                .collect();
            index_rows.sort_by_key(|row| std::cmp::Reverse(row.bytes));
            rows.extend(index_rows);
        }
        Ok(rows)
    }
}
