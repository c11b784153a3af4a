//! The codes the `field` columns store: a field's position in the query crate's list.

use sandscope_query::{TextField, TokenField};

pub(crate) fn text_code(field: TextField) -> i16 {
    position(TextField::ALL.iter().position(|f| *f == field))
}

pub(crate) fn token_code(field: TokenField) -> i16 {
    position(TokenField::ALL.iter().position(|f| *f == field))
}

fn position(at: Option<usize>) -> i16 {
    // Both lists are short constants that contain every variant.
    at.and_then(|p| i16::try_from(p).ok()).unwrap_or(i16::MAX)
}
