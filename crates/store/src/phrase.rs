//! "This field's value contains this piece of text", over the word index (see `index`).
//!
//! A piece in normal form is a run of words. Its inner words must be indexed words exactly;
//! its first word may be the end of an indexed word and its last word the start of one, unless
//! the piece begins or ends with a separator. So `powershell.exe` is the phrase
//! (…`powershell`, `exe`…): a word ending in `powershell` followed by a word starting with
//! `exe`. A phrase of single words is tantivy's `PhraseQuery`; any other piece is matched here
//! (`PhraseScorer`), lazily in document order so that a page of a broad query reads only the
//! documents it needs: the positions' word sets are aligned on a document, then their
//! positions compared. `Ordered` does the same for the `*`-separated pieces of one value.

use crate::budget::{Budget, stopped};
use crate::index::SPELLING_MARK;
use crate::vocabulary::{Place, Vocabulary};
use sandscope_query::text::SEPARATOR;
use std::sync::Arc;
use tantivy::postings::{Postings, SegmentPostings, TermInfo};
use tantivy::query::{
    BitSetDocSet, EmptyScorer, EnableScoring, Explanation, PhraseQuery, Query as TQuery, Scorer,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, InvertedIndexReader, Score, SegmentReader, TERMINATED, Term};

/// Largest number of (document, position) pairs the rare words of one position may expand to
/// in one segment: bounds memory (8 bytes each) when the end is a very short word piece.
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
    pub budget: Arc<Budget>,
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
                    if !self.budget.charge(1) {
                        return Err(stopped());
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
                let list = self.vocabulary.words(reader, self.field, &self.budget)?;
                let ordinals = list.ordinals(n.as_bytes(), place);
                if !self.budget.charge(ordinals.len() as u64) {
                    return Err(stopped());
                }
                if ordinals.len() as u64 > (terms.num_terms() as u64 / 64).max(1024) {
                    // Many words: one walk of the dictionary beats a lookup each.
                    let mut wanted = ordinals.iter().copied().peekable();
                    let mut stream = terms.stream()?;
                    while stream.advance() {
                        let Some(&next) = wanted.peek() else {
                            break;
                        };
                        if !self.budget.charge(1) {
                            return Err(stopped());
                        }
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

    /// The slots of the phrase in one segment; `None` when some position has no word at all.
    /// Without `positions` (a one-word piece whose places nobody asks for) the slots hold
    /// documents only, which is much cheaper for a short piece matching millions of words.
    fn slots(&self, reader: &SegmentReader, positions: bool) -> tantivy::Result<Option<Vec<Slot>>> {
        let inverted = reader.inverted_index(self.field)?;
        let mut slots = Vec::with_capacity(self.words.len());
        for w in &self.words {
            let set = self.resolve(reader, &inverted, w)?;
            if set.infos.is_empty() {
                return Ok(None);
            }
            slots.push(Slot::open(
                &inverted,
                set,
                positions,
                reader.max_doc(),
                &self.budget,
            )?);
        }
        Ok(Some(slots))
    }
}

/// Up to this many of a set's words (its most frequent) are walked lazily, posting list by
/// posting list; the rest, rare words of a short prefix or infix, are loaded up front.
const LAZY_WORDS: usize = 64;

/// One position of the phrase: the documents and positions of its words, walked in document
/// order. Lazy, so a page of a broad query reads only the documents it needs.
struct Slot {
    /// The most frequent words' postings.
    postings: Vec<SegmentPostings>,
    /// The other words' (document, position) pairs, sorted; `at` is the cursor.
    loaded: Vec<(DocId, u32)>,
    at: usize,
    /// The other words' documents, when positions are not needed.
    loaded_docs: Option<BitSetDocSet>,
    doc: DocId,
    doc_freq: u64,
}

impl Slot {
    fn open(
        inverted: &InvertedIndexReader,
        mut set: WordSet,
        positions: bool,
        max_doc: DocId,
        budget: &Budget,
    ) -> tantivy::Result<Slot> {
        let doc_freq = set.doc_freq();
        set.infos
            .sort_unstable_by_key(|i| std::cmp::Reverse(i.doc_freq));
        let rare = set.infos.split_off(set.infos.len().min(LAZY_WORDS));
        let option = if positions {
            IndexRecordOption::WithFreqsAndPositions
        } else {
            IndexRecordOption::Basic
        };
        let mut postings = Vec::with_capacity(set.infos.len());
        for info in &set.infos {
            postings.push(inverted.read_postings_from_terminfo(info, option)?);
        }
        let mut loaded = Vec::new();
        let mut loaded_docs = None;
        if positions {
            let mut buffer = Vec::new();
            for info in &rare {
                let mut p = inverted.read_postings_from_terminfo(info, option)?;
                let mut doc = p.doc();
                while doc != TERMINATED {
                    buffer.clear();
                    p.positions(&mut buffer);
                    if !budget.charge(1 + buffer.len() as u64) {
                        return Err(stopped());
                    }
                    loaded.extend(buffer.iter().map(|pos| (doc, *pos)));
                    if loaded.len() > MAX_PAIRS {
                        return Err(tantivy::TantivyError::InvalidArgument(format!(
                            "{TOO_BROAD} (over {MAX_PAIRS} places in one index segment); make \
                             it longer"
                        )));
                    }
                    doc = p.advance();
                }
            }
            loaded.sort_unstable();
        } else if !rare.is_empty() {
            let mut docs = BitSet::with_max_value(max_doc);
            for info in &rare {
                let mut block =
                    inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
                while !block.docs().is_empty() {
                    if !budget.charge(block.docs().len() as u64) {
                        return Err(stopped());
                    }
                    for &doc in block.docs() {
                        if doc < max_doc {
                            docs.insert(doc);
                        }
                    }
                    block.advance();
                }
            }
            loaded_docs = Some(BitSetDocSet::from(docs));
        }
        let mut slot = Slot {
            postings,
            loaded,
            at: 0,
            loaded_docs,
            doc: 0,
            doc_freq,
        };
        slot.doc = slot.current();
        Ok(slot)
    }

    fn current(&self) -> DocId {
        let lazy = self.postings.iter().map(|p| p.doc()).min();
        let loaded = self.loaded.get(self.at).map(|p| p.0);
        let docs = self.loaded_docs.as_ref().map(|d| d.doc());
        lazy.into_iter()
            .chain(loaded)
            .chain(docs)
            .min()
            .unwrap_or(TERMINATED)
    }

    /// The sorted positions of the slot's words in its current document.
    fn positions(&mut self, out: &mut Vec<u32>, buffer: &mut Vec<u32>) {
        out.clear();
        let doc = self.doc;
        for p in &mut self.postings {
            if p.doc() == doc {
                buffer.clear();
                p.positions(buffer);
                out.extend_from_slice(buffer);
            }
        }
        if let Some(rest) = self.loaded.get(self.at..) {
            let n = rest.partition_point(|p| p.0 == doc);
            out.extend(rest[..n].iter().map(|p| p.1));
        }
        out.sort_unstable();
        out.dedup();
    }
}

impl DocSet for Slot {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.seek(self.doc + 1)
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for p in &mut self.postings {
            if p.doc() < target {
                p.seek(target);
            }
        }
        if let Some(rest) = self.loaded.get(self.at..) {
            self.at += rest.partition_point(|p| p.0 < target);
        }
        if let Some(docs) = &mut self.loaded_docs
            && docs.doc() < target
        {
            docs.seek(target);
        }
        self.doc = self.current();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        u32::try_from(self.doc_freq).unwrap_or(u32::MAX)
    }
}

/// A matcher that can find its first match at or after a document: with [`Matches`], a
/// tantivy scorer.
pub(crate) trait Find: Send + 'static {
    /// The first matching document at or after `target`; `TERMINATED` when there is none.
    fn find(&mut self, target: DocId) -> DocId;
    fn size_hint(&self) -> u32;
}

/// The documents a [`Find`] matches, in order; each scores 1 (nothing is ranked by score).
pub(crate) struct Matches<F> {
    pub(crate) finder: F,
    doc: DocId,
}

impl<F: Find> Matches<F> {
    fn new(mut finder: F) -> Matches<F> {
        let doc = finder.find(0);
        Matches { finder, doc }
    }
}

impl<F: Find> DocSet for Matches<F> {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.finder.find(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.finder.find(target);
        }
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.finder.size_hint()
    }
}

impl<F: Find> Scorer for Matches<F> {
    fn score(&mut self) -> Score {
        1.0
    }
}

/// The documents where every slot has a word, at consecutive positions when there are several.
struct PhraseFinder {
    slots: Vec<Slot>,
    budget: Arc<Budget>,
    /// Slot indexes, rarest first: the order in which they are aligned on a document.
    order: Vec<usize>,
    positions: Vec<Vec<u32>>,
    buffer: Vec<u32>,
}

impl PhraseFinder {
    fn new(slots: Vec<Slot>, budget: Arc<Budget>) -> PhraseFinder {
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by_key(|i| slots[*i].doc_freq);
        PhraseFinder {
            budget,
            positions: vec![Vec::new(); slots.len()],
            slots,
            order,
            buffer: Vec::new(),
        }
    }
}

impl Find for PhraseFinder {
    fn find(&mut self, mut target: DocId) -> DocId {
        loop {
            target = align(&mut self.slots, &self.order, target, &self.budget);
            if target == TERMINATED || self.words_in_a_row() {
                return target;
            }
            target += 1;
        }
    }

    fn size_hint(&self) -> u32 {
        let least = self.slots.iter().map(|s| s.doc_freq).min().unwrap_or(0);
        u32::try_from(least).unwrap_or(u32::MAX)
    }
}

impl PhraseFinder {
    /// Whether the aligned slots' words stand at consecutive positions somewhere.
    fn words_in_a_row(&mut self) -> bool {
        if self.slots.len() == 1 {
            return true;
        }
        self.load_positions();
        let (first, rest) = self.positions.split_at(1);
        // A failed charge answers yes: the caller's next alignment fails too and ends the walk.
        self.budget.charge(first[0].len() as u64)
            && first[0].iter().any(|&start| in_a_row(start, rest))
    }

    fn load_positions(&mut self) {
        for (slot, out) in self.slots.iter_mut().zip(&mut self.positions) {
            slot.positions(out, &mut self.buffer);
        }
    }

    /// The positions where the phrase starts in the current document, ascending.
    fn starts(&mut self, out: &mut Vec<u32>) {
        self.load_positions();
        let (first, rest) = self.positions.split_at(1);
        out.clear();
        out.extend(first[0].iter().filter(|&&start| in_a_row(start, rest)));
    }
}

/// Moves every docset to the first document at or after `target` that all of them hold
/// (leapfrog, in `order`: rarest first); `TERMINATED` when there is none or the budget stops
/// the search (each candidate costs a unit).
fn align<D: DocSet>(sets: &mut [D], order: &[usize], mut target: DocId, budget: &Budget) -> DocId {
    let mut aligned = false;
    while !aligned {
        if !budget.charge(1) {
            return TERMINATED;
        }
        aligned = true;
        for &i in order {
            let doc = sets[i].seek(target);
            if doc == TERMINATED {
                return TERMINATED;
            }
            if doc > target {
                target = doc;
                aligned = false;
            }
        }
    }
    target
}

/// Whether position `start + 1 + i` is in `rest[i]` for every i.
fn in_a_row(start: u32, rest: &[Vec<u32>]) -> bool {
    rest.iter()
        .enumerate()
        .all(|(i, list)| list.binary_search(&(start + i as u32 + 1)).is_ok())
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
        Ok(match self.slots(reader, self.words.len() > 1)? {
            Some(slots) => Box::new(Matches::new(PhraseFinder::new(slots, self.budget.clone()))),
            None => Box::new(EmptyScorer),
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

/// How a document holds `*`-separated pieces (see [`OrderedFinder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// In order within one spelling, each piece in words of its own.
    Certain,
    /// Only if a piece ends and the next begins inside one word: the index cannot tell their
    /// order there, the text must.
    Maybe,
    No,
}

/// Documents whose `field` holds every piece, in order, within one spelling (the pieces of a
/// value with `*`: `readme*.txt`). Each piece is a phrase; the spelling marks bound the
/// spellings.
#[derive(Clone)]
pub(crate) struct Ordered {
    pub field: Field,
    pub pieces: Vec<Vec<WordMatch>>,
    pub vocabulary: Arc<Vocabulary>,
    pub budget: Arc<Budget>,
    /// Every piece of the value has a word: no separator-only piece was left out, so a
    /// document in the `Certain` case needs no check against the text.
    pub complete: bool,
}

impl Ordered {
    pub(crate) fn scorer(
        &self,
        reader: &SegmentReader,
    ) -> tantivy::Result<Option<Matches<OrderedFinder>>> {
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for words in &self.pieces {
            let phrase = WordPhrase {
                field: self.field,
                words: words.clone(),
                vocabulary: self.vocabulary.clone(),
                budget: self.budget.clone(),
            };
            let Some(slots) = phrase.slots(reader, true)? else {
                return Ok(None);
            };
            pieces.push(Matches::new(PhraseFinder::new(slots, self.budget.clone())));
        }
        let mark = WordPhrase {
            field: self.field,
            words: vec![WordMatch::Exact(SPELLING_MARK.to_string())],
            vocabulary: self.vocabulary.clone(),
            budget: self.budget.clone(),
        };
        let Some(mut marks) = mark.slots(reader, true)? else {
            return Ok(None);
        };
        let Some(marks) = marks.pop() else {
            return Ok(None);
        };
        Ok(Some(Matches::new(OrderedFinder {
            lens: self.pieces.iter().map(|p| p.len() as u32).collect(),
            starts: vec![Vec::new(); pieces.len()],
            order: (0..pieces.len()).collect(),
            pieces,
            marks,
            mark_positions: Vec::new(),
            buffer: Vec::new(),
            verdict: Verdict::No,
            complete: self.complete,
            budget: self.budget.clone(),
        })))
    }
}

/// Walks the documents holding every piece where the pieces could stand in order within one
/// spelling; [`OrderedFinder::certain`] says whether the index alone proves it.
pub(crate) struct OrderedFinder {
    pieces: Vec<Matches<PhraseFinder>>,
    /// The order in which the pieces are aligned on a document (as written).
    order: Vec<usize>,
    lens: Vec<u32>,
    marks: Slot,
    starts: Vec<Vec<u32>>,
    mark_positions: Vec<u32>,
    buffer: Vec<u32>,
    verdict: Verdict,
    complete: bool,
    budget: Arc<Budget>,
}

impl OrderedFinder {
    /// The index alone proves the current document matches.
    pub(crate) fn certain(&self) -> bool {
        self.verdict == Verdict::Certain && self.complete
    }

    fn verdict_here(&mut self) -> Verdict {
        for (piece, out) in self.pieces.iter_mut().zip(&mut self.starts) {
            piece.finder.starts(out);
        }
        self.marks
            .positions(&mut self.mark_positions, &mut self.buffer);
        let read = self.starts.iter().map(Vec::len).sum::<usize>() + self.mark_positions.len();
        if !self.budget.charge(read as u64) {
            return Verdict::No;
        }
        let mut verdict = Verdict::No;
        for (r, &mark) in self.mark_positions.iter().enumerate() {
            let end = self.mark_positions.get(r + 1).copied().unwrap_or(u32::MAX);
            if self.chain(mark + 1, end, 0) {
                return Verdict::Certain;
            }
            if verdict == Verdict::No && self.chain(mark + 1, end, 1) {
                verdict = Verdict::Maybe;
            }
        }
        verdict
    }

    /// Whether the pieces stand in order within positions `from..end`, earliest first; with
    /// `overlap` 1 a piece may begin in the word where the previous one ends.
    fn chain(&self, from: u32, end: u32, overlap: u32) -> bool {
        let mut from = from;
        for (starts, &len) in self.starts.iter().zip(&self.lens) {
            let at = starts.partition_point(|&s| s < from);
            match starts.get(at) {
                Some(&s) if s + len <= end => from = s + len - overlap,
                _ => return false,
            }
        }
        true
    }
}

impl Find for OrderedFinder {
    fn find(&mut self, mut target: DocId) -> DocId {
        loop {
            target = align(&mut self.pieces, &self.order, target, &self.budget);
            if target == TERMINATED {
                return TERMINATED;
            }
            if self.marks.seek(target) != target {
                // Every indexed spelling is marked; a document with words but no mark is an
                // index of another format. Let the text decide.
                self.verdict = Verdict::Maybe;
                return target;
            }
            self.verdict = self.verdict_here();
            if self.verdict != Verdict::No {
                return target;
            }
            target += 1;
        }
    }

    fn size_hint(&self) -> u32 {
        self.pieces.iter().map(|p| p.size_hint()).min().unwrap_or(0)
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
