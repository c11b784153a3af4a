//! The words of each index segment, for the pieces of a query that lie *inside* a word.
//!
//! Both indexes hold words (see `index`), so "ends with `powershell`" or "contains
//! `lsass`" must first be turned into the indexed words that qualify. A term dictionary can
//! answer a prefix cheaply, but a suffix or an infix only by visiting every term. Visiting the
//! dictionary with an automaton costs a trie step per character of every word; scanning the
//! same words laid end to end with `memmem` costs a fraction of a nanosecond per byte, so each
//! (segment, field) keeps its words in one buffer, built once from the segment's term
//! dictionary the first time a query needs it. Segments never change, so neither does a list;
//! lists of segments that merges removed are dropped on the next search.
//!
//! Memory: about one byte per indexed character of each distinct word plus four per word, per
//! segment in which the word occurs.

use crate::budget::{Budget, stopped};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tantivy::SegmentReader;
use tantivy::index::SegmentId;
use tantivy::schema::Field;

/// A segment's distinct words in one field, in term order, each followed by `\n` (a byte no
/// word contains), after a leading `\n`.
pub(crate) struct WordList {
    text: Vec<u8>,
    /// Offset in `text` of the start of each word; the index is the word's term ordinal.
    starts: Vec<u32>,
}

/// Where a needle must sit in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Anywhere,
    End,
}

impl WordList {
    /// The list of one segment's words, each charged to `budget` (a stopped build is not kept).
    fn build(reader: &SegmentReader, field: Field, budget: &Budget) -> tantivy::Result<WordList> {
        let inverted = reader.inverted_index(field)?;
        let mut stream = inverted.terms().stream()?;
        let mut text = vec![b'\n'];
        let mut starts = Vec::new();
        while stream.advance() {
            if !budget.charge(1) {
                return Err(stopped());
            }
            // Offsets are u32 to keep the list small; a segment would need over 4 GiB of
            // distinct words (hundreds of millions) to overflow them.
            let start = u32::try_from(text.len()).map_err(|_| {
                tantivy::TantivyError::InvalidArgument(format!(
                    "the words of index segment {} exceed 4 GiB",
                    reader.segment_id()
                ))
            })?;
            starts.push(start);
            text.extend_from_slice(stream.key());
            text.push(b'\n');
        }
        Ok(WordList { text, starts })
    }

    /// Term ordinals of the words containing `needle` at `place`, ascending.
    pub(crate) fn ordinals(&self, needle: &[u8], place: Place) -> Vec<u64> {
        let mut pattern = needle.to_vec();
        if place == Place::End {
            pattern.push(b'\n');
        }
        let mut out: Vec<u64> = Vec::new();
        for at in memchr::memmem::find_iter(&self.text, &pattern) {
            let Ok(at) = u32::try_from(at) else {
                break;
            };
            // The word holding the match is the last one starting at or before it.
            let ordinal = self.starts.partition_point(|s| *s <= at).saturating_sub(1) as u64;
            if out.last() != Some(&ordinal) {
                out.push(ordinal);
            }
        }
        out
    }

    pub(crate) fn word(&self, ordinal: u64) -> Option<&[u8]> {
        let i = usize::try_from(ordinal).ok()?;
        let start = *self.starts.get(i)? as usize;
        let end = self.text[start..].iter().position(|b| *b == b'\n')? + start;
        self.text.get(start..end)
    }
}

/// The word lists of the segments searched so far.
#[derive(Default)]
pub(crate) struct Vocabulary {
    lists: Mutex<HashMap<(SegmentId, Field), Arc<WordList>>>,
}

impl Vocabulary {
    /// The word list of `field` in the segment, built on first use.
    pub(crate) fn words(
        &self,
        reader: &SegmentReader,
        field: Field,
        budget: &Budget,
    ) -> tantivy::Result<Arc<WordList>> {
        let key = (reader.segment_id(), field);
        if let Some(list) = self.lock().get(&key) {
            return Ok(list.clone());
        }
        // Built outside the lock: two threads may both build a list the first time; one wins.
        let list = Arc::new(WordList::build(reader, field, budget)?);
        self.lock().insert(key, list.clone());
        Ok(list)
    }

    /// Drop the lists of segments not in `live` (merged away).
    pub(crate) fn retain(&self, live: &[SegmentId]) {
        self.lock().retain(|(segment, _), _| live.contains(segment));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SegmentId, Field), Arc<WordList>>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(words: &[&str]) -> WordList {
        let mut text = vec![b'\n'];
        let mut starts = Vec::new();
        for w in words {
            starts.push(text.len() as u32);
            text.extend_from_slice(w.as_bytes());
            text.push(b'\n');
        }
        WordList { text, starts }
    }

    #[test]
    fn finds_words_by_infix_and_suffix() {
        let l = list(&["appdata", "lsass", "lsassdump", "localappdata", "xlsass"]);
        assert_eq!(l.ordinals(b"lsass", Place::Anywhere), vec![1, 2, 4]);
        assert_eq!(l.ordinals(b"lsass", Place::End), vec![1, 4]);
        assert_eq!(l.ordinals(b"appdata", Place::End), vec![0, 3]);
        // A word matching twice is listed once.
        let l = list(&["aaaa"]);
        assert_eq!(l.ordinals(b"a", Place::Anywhere), vec![0]);
        assert_eq!(l.word(0), Some(&b"aaaa"[..]));
        assert_eq!(l.word(1), None);
        assert!(list(&[]).ordinals(b"x", Place::Anywhere).is_empty());
    }
}
