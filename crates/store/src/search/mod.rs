//! Query → tantivy query, result ordering with a stable cursor, snippets.
//!
//! A text term matches a sample in one of two ways (see `values` for why that is exact):
//! * a value the sample *owns*: its words are in the sample's document, so the term is a
//!   phrase per `*`-separated piece (see `phrase`: its first word may end, its last word may
//!   begin an indexed word) over the sample index, evaluated lazily in document order;
//! * a value it *shares*: the value index finds the matching shared values first, then the
//!   samples listing their ids in `vals`.
//!
//! With a `*` between pieces, their order within one spelling is checked from positions and
//! spelling marks (`phrase::Ordered`), and against the value's text in redb only when two
//! pieces meet inside one word. Booleans, tokens, counts and dates are plain tantivy queries
//! over the sample index.
//!
//! The sample index is sorted newest first, so a newest-first page stops reading matches once
//! it is complete and [`EXACT_COUNT_LIMIT`] matches were counted; `total_hits` is then a lower
//! bound. Other orders, and [`Store::count`], visit every match.
//!
//! Every search spends from a [`Budget`] (`budget`): the matchers here and in `phrase` and
//! `vocabulary` charge it, and a search that runs out answers
//! [`StoreError::Exhausted`](crate::StoreError::Exhausted), never a partial page.

mod collect;
mod cursor;
mod exclusion;
mod request;
mod translate;
mod verify;

use collect::*;
use cursor::*;
use exclusion::*;
pub use request::{EXACT_COUNT_LIMIT, Order, SearchHit, SearchPage, SearchRequest};
pub(crate) use translate::Translator;
use translate::*;
use verify::*;

use crate::budget::{Budget, SearchLimits};
use crate::codec::ReportCodec;
use crate::index::{SampleFields, ValueFields};
use crate::phrase::{
    Matches, Ordered, OrderedFinder, TOO_BROAD, WordMatch, WordPhrase, word_matches,
};
use crate::value_blocks::{VALUE_BLOCKS, ValueReader};
use crate::values::{SAMPLE_SHAS, SAMPLE_VALUES};
use crate::vocabulary::Vocabulary;
use crate::{Result, Store, StoreError};
use sandscope_query::{Comparison, Modifier, Query, SampleDoc, Term as QTerm, TextPattern, Value};
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, PoisonError, RwLock};
use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EmptyScorer, EnableScoring, Explanation, Occur,
    Query as TQuery, RangeQuery, RegexQuery, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

impl Store {
    /// Run a search: matching samples in the requested order, one page at a time.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchPage> {
        let query = sandscope_query::parse(&request.query)?;
        self.search_parsed(&query, request)
    }

    /// [`Store::search`] for an already parsed query.
    pub fn search_parsed(&self, query: &Query, request: &SearchRequest) -> Result<SearchPage> {
        let limit = request.limit.clamp(1, 300);
        let after = match &request.cursor {
            Some(c) if !c.is_empty() => Some(decode_cursor(request.order, c)?),
            _ => None,
        };
        let budget = Budget::new(&request.limits);
        let tq = Translator::new(self, request.now, budget.clone()).translate(query)?;
        if !budget.check() {
            return Err(exhausted(&budget));
        }
        let searcher = self.reader.searcher();
        let collected = if request.order == Order::FirstSeenDesc {
            let found = newest_first(
                &searcher,
                &*tq,
                limit,
                after,
                request.exact_count_limit,
                &budget,
            );
            finish(&budget, found)?
        } else {
            let collector = PageCollector {
                order: request.order,
                limit,
                after,
                budget: budget.clone(),
            };
            let found = searcher.search_with_executor(
                &*tq,
                &(collector, Count),
                executor_for(&budget, searcher.index()),
                EnableScoring::disabled_from_searcher(&searcher),
            );
            let ((page, after_count), total) = finish(&budget, found)?;
            Collected {
                more: after_count > page.len() as u64,
                page,
                total: total as u64,
                exact: true,
            }
        };
        let mut hits = Vec::with_capacity(collected.page.len());
        let mut last_key = None;
        for (key, addr) in collected.page {
            if !budget.check() {
                return Err(exhausted(&budget));
            }
            let sha = self.sha_of(&searcher, addr)?;
            let reports = self.sample_reports(&sha)?;
            hits.push(SearchHit::of_sample(query, &sha, &reports));
            last_key = Some(key);
        }
        let next_cursor = match last_key {
            Some(k) if collected.more => Some(encode_cursor(request.order, k)),
            _ => None,
        };
        Ok(SearchPage {
            hits,
            total_hits: collected.total,
            total_hits_exact: collected.exact,
            next_cursor,
            work: budget.used(),
        })
    }

    /// Number of samples matching a parsed query, within the default [`SearchLimits`].
    pub fn count(&self, query: &Query, now: i64) -> Result<u64> {
        let budget = Budget::new(&SearchLimits::default());
        let tq = Translator::new(self, now, budget.clone()).translate(query)?;
        let counted = self.reader.searcher().search(&*tq, &Count);
        Ok(finish(&budget, counted)? as u64)
    }

    /// The SHA-256 of the sample at `addr`: its sample number in the index, its SHA-256 in
    /// redb (numbers are stable until a rebuild, which replaces the index too).
    fn sha_of(&self, searcher: &tantivy::Searcher, addr: DocAddress) -> Result<String> {
        let reader = searcher.segment_reader(addr.segment_ord);
        let Some(no) = reader.fast_fields().u64("sample_no")?.first(addr.doc_id) else {
            return Ok(String::new());
        };
        let txn = self.db.begin_read()?;
        let sha = txn.open_table(SAMPLE_SHAS)?.get(no)?;
        Ok(sha
            .map(|v| crate::values::sha_hex(v.value()))
            .unwrap_or_default())
    }
}
