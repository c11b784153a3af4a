//! The `samples` columns that hold a sample's values: one per text field (`text_<n>`, the
//! field's position in the query crate's list) and one per token field (`token_<n>`).
//!
//! A text column holds the sample's values of that field (every spelling, in the query crate's
//! padded normal form: letters, digits and spaces only) joined by [`VALUE_SEPARATOR`], which
//! no such value contains, so a `LIKE '%piece%'` whose piece has no separator matches inside
//! one value, exactly as the embedded store's per-value match; each has a `pg_trgm` GIN index.
//! A token column (schema version 4; version 3 joined them like text) is a `text[]` of the
//! field's tokens (letters, digits, `_` and `*` only) with a plain GIN index: a token is
//! matched whole (`@>`), so trigrams bought nothing there but size. A column is NULL when the
//! sample has no value there.
//!
//! The sample's own SHA-256 (`TokenField::Sha256`, its only token) has no column: it is the
//! row's key, `sha256`, already (schema version 4 dropped version 3's `token_6`).

use sandscope_query::{TextField, TokenField};

/// Between two values in a column.
pub(crate) const VALUE_SEPARATOR: char = '\n';

const TEXT_COLUMNS: [&str; 10] = [
    "text_0", "text_1", "text_2", "text_3", "text_4", "text_5", "text_6", "text_7", "text_8",
    "text_9",
];
const TOKEN_COLUMNS: [&str; 6] = [
    "token_0", "token_1", "token_2", "token_3", "token_4", "token_5",
];

/// The text columns in the order a condition tests them: by their average size on the bench's
/// reports (synthesised from the corpus; bytes of normal form per sample, 200,000 samples):
/// signatures 0, injected processes 6, services 59, network 95, other 112, created processes
/// 128 and registry 127 (about equal), command lines 473, other processes 630, files 1,561. A
/// trigram index's candidates are all tested again, and a test of `a OR b OR …` stops at the
/// first column that matches, each test decompressing its column: small (often NULL) columns
/// first spend little on the way to the one that matches, and files last are decompressed only
/// when nothing smaller matched (`behaviour:lsass` at 200,000 samples: 50 ms with files tested
/// first, 29 ms last).
const TEXT_TEST_ORDER: [&str; 10] = [
    "text_8", "text_2", "text_7", "text_5", "text_9", "text_1", "text_6", "text_4", "text_3",
    "text_0",
];

/// Where a text column comes in [`TEXT_TEST_ORDER`].
pub(crate) fn test_rank(column: &str) -> usize {
    TEXT_TEST_ORDER
        .iter()
        .position(|c| *c == column)
        .unwrap_or(TEXT_TEST_ORDER.len())
}

/// Version 3's column of `TokenField::Sha256` (for its upgrade, which version 4 drops).
pub(crate) const V3_SHA256_COLUMN: &str = "token_6";

/// Every value column, text fields first (the schema's and the writer's order).
pub(crate) fn all_columns() -> impl Iterator<Item = &'static str> {
    TEXT_COLUMNS.into_iter().chain(TOKEN_COLUMNS)
}

/// Whether `column` (one of [`all_columns`]) holds tokens (`text[]`) rather than text.
pub(crate) fn is_token_column(column: &str) -> bool {
    TOKEN_COLUMNS.contains(&column)
}

pub(crate) fn text_column(field: TextField) -> &'static str {
    let at = TextField::ALL.iter().position(|f| *f == field);
    // The list holds every variant, and there is one column per entry.
    TEXT_COLUMNS[at.unwrap_or(0).min(TEXT_COLUMNS.len() - 1)]
}

/// The field's column; `None` for the sample's SHA-256, which is the row's key.
pub(crate) fn token_column(field: TokenField) -> Option<&'static str> {
    let at = TokenField::ALL.iter().position(|f| *f == field)?;
    TOKEN_COLUMNS.get(at).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_own_column() {
        let mut columns: Vec<&str> = TextField::ALL.iter().map(|f| text_column(*f)).collect();
        columns.extend(TokenField::ALL.iter().filter_map(|f| token_column(*f)));
        assert_eq!(token_column(TokenField::Sha256), None);
        let mut distinct = columns.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), columns.len());
        assert_eq!(all_columns().count(), columns.len());
    }
}
