//! The VirusTotal Intelligence search language as Sandscope answers it: a hand-written
//! recursive-descent parser with column-accurate errors ([`parse`]), the query tree ([`Query`]),
//! and the matching semantics ([`Query::matches`] over a [`SampleDoc`]).
//!
//! Semantics (decided in issue 5, see `shared/docs/query-language.md`):
//! * text modifiers match case-insensitively and separator-insensitively: stored values and
//!   query values are lower-cased and every run of non-alphanumeric characters becomes one
//!   separator; the query must then occur as a substring of one value
//!   ([`text::normalise`]). Value boundaries count as separators.
//! * a value wrapped in escaped quotes (`"\"…\""`) is the same match anchored at separator
//!   boundaries on both ends;
//! * `*` is a wildcard in every text and token value;
//! * token modifiers are case-insensitive equality (with `*`) on slugs ([`text::token`]);
//! * `N+` is "at least N", `N-` is "fewer than N".
//! * a text value with no letters or digits (`💣`, `%00`, a lone `-`: its normal form is empty)
//!   is a parse error naming its column; `*` alone means "any value in the field".
//! * a query's cost is bounded before it runs: at most [`MAX_TERMS`] terms,
//!   [`MAX_WILDCARDS`] `*` per value and [`MAX_VALUE_WORDS`] words per text value, each a parse
//!   error naming the limit.
//!
//! The table of what each `behaviour_*` modifier covers is in [`doc`].
//!
//! This crate depends only on the report model; the store builds its index from [`SampleDoc`]
//! so that index and semantics cannot drift apart.

mod ast;
pub mod doc;
mod modifiers;
mod parse;
pub mod text;

pub use ast::*;
pub use doc::{MAX_RAW_FORMS_MATCHED, SampleDoc, SigmaLevel, TextField, TextValue, TokenField};
pub use modifiers::{MODIFIERS, ModifierSpec};
pub use parse::{
    MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, MAX_VALUE_WORDS, MAX_WILDCARDS, ParseError, parse,
    text_pattern,
};
