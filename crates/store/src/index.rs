//! The tantivy side: the two schemas, the word tokenizer, the documents.
//!
//! * The *sample* index has one document per sample (not per report), so that a query is
//!   answered across all the sample's reports, as VirusTotal does, and hits count samples. It
//!   holds dates, Sigma counts, tokens, the words of the values the sample *owns* and the ids
//!   of the values it *shares* (see `values`). Its documents are sorted newest first
//!   (`order_key`), so the first page of a broad query is found without visiting every match.
//! * The *value* index has one document per *shared* value: its spellings, so a query finds
//!   the value once and reaches every sample sharing it through their `vals` postings.
//!
//! Text is indexed as the spellings of a value in padded normal form (see
//! `sandscope_query::text`), separated by `\n`. The tokenizer emits the *words* of the normal
//! form (its alphanumeric runs) with their positions, each spelling opened by a mark token (so
//! no phrase spans two spellings or two values), so "value contains q" becomes a phrase over
//! q's words whose first word may be a suffix and whose last may be a prefix of an indexed word
//! (see `phrase`).
//!
//! Words, not character trigrams: a path's words (`appdata`, `local`, `temp`) recur across
//! millions of values and cost a position each, where its trigrams cost about one position per
//! character; the word index is about a third of the trigram index's size on the benchmark's
//! reports. Substrings inside a word are found through the segment's term dictionary instead
//! (see `vocabulary`).

use crate::values::ValueRecord;
use sandscope_query::{SampleDoc, TextField, TokenField};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{TantivyDocument, Term};

pub const WORD_TOKENIZER: &str = "sandscope_words";
/// Bumped whenever the schema or the text form changes; a mismatch triggers a rebuild.
pub const INDEX_FORMAT: u64 = 11;

/// The token that opens every spelling: not a word (words are alphanumeric), so no phrase
/// spans two spellings, and its positions tell a query with `*` where spellings begin.
pub const SPELLING_MARK: &str = "\u{1}";

/// Splits a value's indexed text (`\n`-separated spellings in padded normal form) into its
/// words, numbering positions 0, 1, 2, … with a [`SPELLING_MARK`] before each spelling.
#[derive(Clone, Default)]
pub struct Words;

pub struct WordStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream {
        let mut tokens = Vec::new();
        let mut position = 0;
        let mut offset = 0;
        for spelling in text.split('\n') {
            let mut word_offset = offset;
            let mut marked = false;
            for word in spelling.split(sandscope_query::text::SEPARATOR) {
                if !word.is_empty() {
                    if !marked {
                        tokens.push(Token {
                            offset_from: offset,
                            offset_to: offset,
                            position,
                            text: SPELLING_MARK.to_string(),
                            position_length: 1,
                        });
                        position += 1;
                        marked = true;
                    }
                    tokens.push(Token {
                        offset_from: word_offset,
                        offset_to: word_offset + word.len(),
                        position,
                        text: word.to_string(),
                        position_length: 1,
                    });
                    position += 1;
                }
                word_offset += word.len() + sandscope_query::text::SEPARATOR.len_utf8();
            }
            offset += spelling.len() + 1;
        }
        WordStream { tokens, next: 0 }
    }
}

impl TokenStream for WordStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words).build()
}

/// Field handles of the sample index: one document per sample.
#[derive(Clone)]
pub struct SampleFields {
    pub sha_hi: Field,
    pub sha_lo: Field,
    pub sample_no: Field,
    /// `first_seen`, or `i64::MIN` without one: the field the index is sorted on (descending).
    pub order_key: Field,
    pub first_seen: Field,
    pub last_seen: Field,
    pub sigma: [Field; 4],
    /// Ids of the values this sample shares with others (see `values`).
    pub vals: Field,
    /// Names of the text fields in which the sample reports anything (answers `modifier:*`).
    pub has_text: Field,
    pub tokens: [Field; 7],
    /// The words of the values the sample owns, one field per text field.
    pub texts: [Field; 10],
}

/// Field handles of the value index: one document per shared value.
#[derive(Clone)]
pub struct ValueFields {
    pub vid: Field,
    pub texts: [Field; 10],
}

/// Positions for phrases; no field norms: nothing is scored, and they would cost a byte per
/// document per field.
fn word_options() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORD_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    )
}

/// Whole tokens (a SHA-256, a field name), matched exactly; no field norms, as above.
fn token_options() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// A searchable number without a field norm (`INDEXED` would add one: a byte per document and
/// field, for scores nothing computes).
fn indexed() -> NumericOptions {
    NumericOptions::default().set_indexed()
}

/// [`indexed`] and a fast field.
fn indexed_fast() -> NumericOptions {
    indexed().set_fast()
}

/// The name of the sample index's sort field.
pub const ORDER_KEY: &str = "order_key";

pub fn schema() -> (Schema, SampleFields) {
    let mut b = Schema::builder();
    // No stored fields: a hit's SHA-256 is its `sample_no` looked up in redb, and
    // `tok_sha256` is the SHA-256's indexed form.
    let sha_hi = b.add_u64_field("sha_hi", FAST);
    let sha_lo = b.add_u64_field("sha_lo", FAST);
    // Read per hit, never searched: a fast field only (indexing it would add a term per sample).
    let sample_no = b.add_u64_field("sample_no", FAST);
    let order_key = b.add_i64_field(ORDER_KEY, FAST);
    // Dates and Sigma counts are only compared: tantivy answers a range over a fast field from
    // the column, so an inverted index of them would never be read.
    let first_seen = b.add_i64_field("first_seen", FAST);
    let last_seen = b.add_i64_field("last_seen", FAST);
    let sigma = ["sigma_critical", "sigma_high", "sigma_medium", "sigma_low"]
        .map(|n| b.add_u64_field(n, FAST));
    let vals = b.add_u64_field("vals", indexed());
    let has_text = b.add_text_field("has_text", token_options());
    let tokens = TokenField::ALL.map(|f| b.add_text_field(f.name(), token_options()));
    let texts = TextField::ALL.map(|f| b.add_text_field(f.name(), word_options()));
    (
        b.build(),
        SampleFields {
            sha_hi,
            sha_lo,
            sample_no,
            order_key,
            first_seen,
            last_seen,
            sigma,
            vals,
            has_text,
            tokens,
            texts,
        },
    )
}

pub fn value_schema() -> (Schema, ValueFields) {
    let mut b = Schema::builder();
    let vid = b.add_u64_field("vid", indexed_fast());
    let texts = TextField::ALL.map(|f| b.add_text_field(f.name(), word_options()));
    (b.build(), ValueFields { vid, texts })
}

/// The 128-bit order key of a SHA-256 (its first and last 16 hex digits), for stable
/// tie-breaking between samples with the same date.
pub fn sha_key(sha256: &str) -> (u64, u64) {
    let hi = sha256
        .get(0..16)
        .and_then(|s| u64::from_str_radix(s, 16).ok());
    let lo = sha256
        .get(48..64)
        .and_then(|s| u64::from_str_radix(s, 16).ok());
    (hi.unwrap_or(0), lo.unwrap_or(0))
}

/// The sample document. `vals` are the value ids the sample shares; `owned` the values it
/// owns, whose words the document holds.
pub fn document(
    fields: &SampleFields,
    doc: &SampleDoc,
    sample_no: u64,
    vals: &[u64],
    owned: &[ValueRecord],
) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    let (hi, lo) = sha_key(&doc.sha256);
    d.add_u64(fields.sha_hi, hi);
    d.add_u64(fields.sha_lo, lo);
    d.add_u64(fields.sample_no, sample_no);
    d.add_i64(fields.order_key, doc.first_seen.unwrap_or(i64::MIN));
    if let Some(t) = doc.first_seen {
        d.add_i64(fields.first_seen, t);
    }
    if let Some(t) = doc.last_seen {
        d.add_i64(fields.last_seen, t);
    }
    for (i, f) in fields.sigma.iter().enumerate() {
        d.add_u64(*f, doc.sigma[i]);
    }
    for v in vals {
        d.add_u64(fields.vals, *v);
    }
    for field in TextField::ALL {
        if !doc.text(field).is_empty() {
            d.add_text(fields.has_text, field.name());
        }
    }
    for record in owned {
        // Each value is its own text, each spelling opened by a mark: no phrase spans two.
        d.add_text(fields.texts[record.field as usize], &record.text);
    }
    for (i, field) in TokenField::ALL.iter().enumerate() {
        for t in doc.tokens(*field) {
            d.add_text(fields.tokens[i], t);
        }
    }
    d
}

/// The document of one shared value.
pub fn value_document(fields: &ValueFields, vid: u64, record: &ValueRecord) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_u64(fields.vid, vid);
    d.add_text(fields.texts[record.field as usize], &record.text);
    d
}

pub fn sha_term(fields: &SampleFields, sha256: &str) -> Term {
    Term::from_field_text(fields.tokens[TokenField::Sha256 as usize], sha256)
}

pub fn vid_term(fields: &ValueFields, vid: u64) -> Term {
    Term::from_field_u64(fields.vid, vid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, usize)> {
        let mut stream = Words.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            if t.text != SPELLING_MARK {
                assert_eq!(&text[t.offset_from..t.offset_to], t.text);
            }
            out.push((t.text.clone(), t.position));
        }
        out
    }

    #[test]
    fn words_keep_positions_and_mark_each_spelling() {
        let text = "\n temp a exe \n userprofile appdata local temp a exe \n";
        let got = words(text);
        let m = SPELLING_MARK;
        let expect = [
            (m, 0),
            ("temp", 1),
            ("a", 2),
            ("exe", 3),
            (m, 4),
            ("userprofile", 5),
            ("appdata", 6),
            ("local", 7),
            ("temp", 8),
            ("a", 9),
            ("exe", 10),
        ];
        assert_eq!(
            got,
            expect
                .iter()
                .map(|(w, p)| (w.to_string(), *p))
                .collect::<Vec<_>>()
        );
        assert!(words("\n  \n").is_empty());
    }
}
