//! The codes the dictionary's `field` column stores: a text field's position in the query
//! crate's list, a token field's position plus [`TOKEN_BASE`]. A code is also the bit a sample
//! sets in `samples.present` when it has a value of that field, so every code is below 31.

use sandscope_query::{TextField, TokenField};

/// Where token field codes start (the text fields take the codes below it).
const TOKEN_BASE: i16 = 16;

pub(crate) fn text_code(field: TextField) -> i16 {
    position(TextField::ALL.iter().position(|f| *f == field))
}

pub(crate) fn token_code(field: TokenField) -> i16 {
    TOKEN_BASE + position(TokenField::ALL.iter().position(|f| *f == field))
}

/// The `samples.present` bits of `codes`.
pub(crate) fn present_mask(codes: impl IntoIterator<Item = i16>) -> i32 {
    codes.into_iter().fold(0, |mask, code| mask | (1 << code))
}

fn position(at: Option<usize>) -> i16 {
    // Both lists are short constants that contain every variant (10 and 7 fields).
    at.and_then(|p| i16::try_from(p).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_bits_of_an_integer() {
        let mut codes: Vec<i16> = TextField::ALL.iter().map(|f| text_code(*f)).collect();
        codes.extend(TokenField::ALL.iter().map(|f| token_code(*f)));
        let mask = present_mask(codes.iter().copied());
        assert_eq!(mask.count_ones() as usize, codes.len());
        assert!(codes.iter().all(|c| (0..31).contains(c)));
    }
}
