//! "This field's value contains this piece of text", over the word index (see `index`).
//!
//! A piece in normal form is a run of words. Its inner words must be indexed words exactly;
//! its first word may be the end of an indexed word and its last word the start of one, unless
//! the piece begins or ends with a separator. So `powershell.exe` is the phrase
//! (…`powershell`, `exe`…): a word ending in `powershell` followed by a word starting with
//! `exe`. A one-word piece is a plain union of the qualifying words' documents; a phrase of
//! single words is tantivy's `PhraseQuery`; a phrase with a set of words at an end is matched
//! here: candidate documents are those holding some word of every position, then their
//! positions are compared.

use crate::vocabulary::{Place, Vocabulary};
use sandscope_query::text::SEPARATOR;
use std::sync::Arc;
use tantivy::postings::{Postings, TermInfo};
use tantivy::query::{
    BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, Explanation, PhraseQuery,
    Query as TQuery, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, InvertedIndexReader, Score, SegmentReader, TERMINATED, Term};

/// Largest number of (document, position) pairs one end of a phrase may expand to in one
/// segment: bounds memory (8 bytes each) when the end is a very short word piece.
const MAX_PAIRS: usize = 1 << 25;

/// How one query word must match an indexed word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WordMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Infix(String),
}

/// The words of a piece in normal form; `None` when it has none (separators only).
pub(crate) fn word_matches(piece: &str) -> Option<Vec<WordMatch>> {
    let open_left = !piece.starts_with(SEPARATOR);
    let open_right = !piece.ends_with(SEPARATOR);
    let words: Vec<&str> = piece.split(SEPARATOR).filter(|w| !w.is_empty()).collect();
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let w = (*w).to_string();
                match (i == 0 && open_left, i == last && open_right) {
                    (false, false) => WordMatch::Exact(w),
                    (false, true) => WordMatch::Prefix(w),
                    (true, false) => WordMatch::Suffix(w),
                    (true, true) => WordMatch::Infix(w),
                }
            })
            .collect(),
    )
}

/// Documents whose `field` holds the words in order, at consecutive positions.
#[derive(Clone)]
pub(crate) struct WordPhrase {
    pub field: Field,
    pub words: Vec<WordMatch>,
    pub vocabulary: Arc<Vocabulary>,
}

impl std::fmt::Debug for WordPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPhrase")
            .field("field", &self.field)
            .field("words", &self.words)
            .finish()
    }
}

impl TQuery for WordPhrase {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

/// What a too-broad piece's error message starts with (see `MAX_PAIRS`).
pub(crate) const TOO_BROAD: &str = "a piece of the query matches too many words";

/// The indexed words one query word stands for in a segment.
struct WordSet {
    infos: Vec<TermInfo>,
}

impl WordSet {
    fn doc_freq(&self) -> u64 {
        self.infos.iter().map(|i| u64::from(i.doc_freq)).sum()
    }
}

impl WordPhrase {
    fn resolve(
        &self,
        reader: &SegmentReader,
        inverted: &InvertedIndexReader,
        word: &WordMatch,
    ) -> tantivy::Result<WordSet> {
        let mut set = WordSet { infos: Vec::new() };
        let terms = inverted.terms();
        match word {
            WordMatch::Exact(w) => {
                if let Some(info) = inverted.get_term_info(&Term::from_field_text(self.field, w))? {
                    set.infos.push(info);
                }
            }
            WordMatch::Prefix(p) => {
                let mut stream = terms.range().ge(p.as_bytes()).into_stream()?;
                while stream.advance() {
                    if !stream.key().starts_with(p.as_bytes()) {
                        break;
                    }
                    set.infos.push(stream.value().clone());
                }
            }
            WordMatch::Suffix(n) | WordMatch::Infix(n) => {
                let place = if matches!(word, WordMatch::Suffix(_)) {
                    Place::End
                } else {
                    Place::Anywhere
                };
                let list = self.vocabulary.words(reader, self.field)?;
                let ordinals = list.ordinals(n.as_bytes(), place);
                if ordinals.len() as u64 > (terms.num_terms() as u64 / 64).max(1024) {
                    // Many words: one walk of the dictionary beats a lookup each.
                    let mut wanted = ordinals.iter().copied().peekable();
                    let mut stream = terms.stream()?;
                    while stream.advance() {
                        let Some(&next) = wanted.peek() else {
                            break;
                        };
                        if stream.term_ord() == next {
                            wanted.next();
                            set.infos.push(stream.value().clone());
                        }
                    }
                } else {
                    for ordinal in ordinals {
                        if let Some(info) = list
                            .word(ordinal)
                            .map(|w| terms.get(w))
                            .transpose()?
                            .flatten()
                        {
                            set.infos.push(info);
                        }
                    }
                }
            }
        }
        Ok(set)
    }

    /// The documents holding any word of the set (positions ignored).
    fn union_docs(
        inverted: &InvertedIndexReader,
        set: &WordSet,
        max_doc: DocId,
        keep: Option<&BitSet>,
    ) -> tantivy::Result<BitSet> {
        let mut docs = BitSet::with_max_value(max_doc);
        for info in &set.infos {
            let mut block =
                inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
            loop {
                let chunk = block.docs();
                if chunk.is_empty() {
                    break;
                }
                for &doc in chunk {
                    if doc < max_doc && keep.is_none_or(|k| k.contains(doc)) {
                        docs.insert(doc);
                    }
                }
                block.advance();
            }
        }
        Ok(docs)
    }

    fn matching_docs(&self, reader: &SegmentReader) -> tantivy::Result<Option<BitSet>> {
        let inverted = reader.inverted_index(self.field)?;
        let max_doc = reader.max_doc();
        let mut sets = Vec::with_capacity(self.words.len());
        for w in &self.words {
            let set = self.resolve(reader, &inverted, w)?;
            if set.infos.is_empty() {
                return Ok(None);
            }
            sets.push(set);
        }
        // Candidates: documents holding a word of every position, rarest position first.
        let mut order: Vec<usize> = (0..sets.len()).collect();
        order.sort_by_key(|i| sets[*i].doc_freq());
        let mut candidates: Option<BitSet> = None;
        for i in order {
            let docs = Self::union_docs(&inverted, &sets[i], max_doc, candidates.as_ref())?;
            if docs.len() == 0 {
                return Ok(None);
            }
            candidates = Some(docs);
        }
        let Some(candidates) = candidates else {
            return Ok(None);
        };
        if sets.len() == 1 {
            return Ok(Some(candidates));
        }
        // Positions, relative to the phrase start, of every position's words in each candidate.
        let mut relative: Vec<Vec<(DocId, u32)>> = Vec::with_capacity(sets.len());
        let mut buffer = Vec::new();
        for (offset, set) in sets.iter().enumerate() {
            let offset = offset as u32;
            let mut pairs = Vec::new();
            for info in &set.infos {
                let mut postings = inverted
                    .read_postings_from_terminfo(info, IndexRecordOption::WithFreqsAndPositions)?;
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    if candidates.contains(doc) {
                        buffer.clear();
                        postings.positions(&mut buffer);
                        pairs.extend(
                            buffer
                                .iter()
                                .filter(|p| **p >= offset)
                                .map(|p| (doc, p - offset)),
                        );
                        if pairs.len() > MAX_PAIRS {
                            return Err(tantivy::TantivyError::InvalidArgument(format!(
                                "{TOO_BROAD} (over {MAX_PAIRS} places in one index \
                                 segment); make it longer"
                            )));
                        }
                    }
                    doc = postings.advance();
                }
            }
            if set.infos.len() > 1 {
                pairs.sort_unstable();
                pairs.dedup();
            }
            relative.push(pairs);
        }
        // A phrase starts where every position has a word at the same relative position.
        let mut matching = BitSet::with_max_value(max_doc);
        let (first, rest) = relative
            .split_first()
            .map_or((&[][..], &[][..]), |(f, r)| (&f[..], r));
        for pair in first {
            if rest.iter().all(|list| list.binary_search(pair).is_ok()) {
                matching.insert(pair.0);
            }
        }
        Ok(Some(matching))
    }
}

impl Weight for WordPhrase {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let exact: Option<Vec<&String>> = self
            .words
            .iter()
            .map(|w| match w {
                WordMatch::Exact(w) => Some(w),
                _ => None,
            })
            .collect();
        if let Some(exact) = exact
            && exact.len() > 1
        {
            // Every word is exact: tantivy's own phrase matching.
            let terms = exact
                .iter()
                .map(|w| Term::from_field_text(self.field, w))
                .collect();
            let schema = reader.schema();
            return PhraseQuery::new(terms)
                .weight(EnableScoring::disabled_from_schema(schema))?
                .scorer(reader, boost);
        }
        Ok(match self.matching_docs(reader)? {
            Some(docs) if docs.len() > 0 => {
                Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost))
            }
            _ => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("value contains the words", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(
                "document does not match".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_become_word_matches() {
        use WordMatch::*;
        let s = |x: &str| x.to_string();
        assert_eq!(
            word_matches("powershell exe"),
            Some(vec![Suffix(s("powershell")), Prefix(s("exe"))])
        );
        assert_eq!(
            word_matches(" tutanota com"),
            Some(vec![Exact(s("tutanota")), Prefix(s("com"))])
        );
        assert_eq!(word_matches("lsass"), Some(vec![Infix(s("lsass"))]));
        assert_eq!(word_matches(" ps1"), Some(vec![Prefix(s("ps1"))]));
        assert_eq!(word_matches("exe "), Some(vec![Suffix(s("exe"))]));
        assert_eq!(
            word_matches(" appdata local temp "),
            Some(vec![
                Exact(s("appdata")),
                Exact(s("local")),
                Exact(s("temp"))
            ])
        );
        assert_eq!(word_matches(" "), None);
        assert_eq!(word_matches(""), None);
    }
}
