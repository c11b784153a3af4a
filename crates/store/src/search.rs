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

use crate::budget::{Budget, SearchLimits};
use crate::index::{SampleFields, ValueFields};
use crate::phrase::{
    Matches, Ordered, OrderedFinder, TOO_BROAD, WordMatch, WordPhrase, word_matches,
};
use crate::values::{SAMPLE_SHAS, SAMPLE_VALUES, VALUES, ValueRecord};
use crate::vocabulary::Vocabulary;
use crate::{Result, Store, StoreError};
use sandscope_query::{Comparison, Modifier, Query, SampleDoc, Term as QTerm, TextPattern, Value};
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EmptyScorer, EnableScoring, Explanation, Occur,
    Query as TQuery, RangeQuery, RegexQuery, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyDocument, Term};

/// Result order. Default: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    FirstSeenDesc,
    FirstSeenAsc,
    LastSeenDesc,
    LastSeenAsc,
}

impl Order {
    /// `first_seen-` (newest first), `first_seen+`/`first_seen`, `last_seen-`, `last_seen+`;
    /// VirusTotal's `first_submission_date`/`last_submission_date` names are accepted too.
    pub fn parse(text: &str) -> Result<Order> {
        let t = text.trim();
        let (name, desc) = match t.strip_suffix('-') {
            Some(n) => (n, true),
            None => (t.strip_suffix('+').unwrap_or(t), false),
        };
        let first = match name {
            "first_seen" | "fs" | "first_submission_date" => true,
            "last_seen" | "ls" | "last_submission_date" => false,
            _ => return Err(StoreError::InvalidOrder(text.to_string())),
        };
        Ok(match (first, desc) {
            (true, true) => Order::FirstSeenDesc,
            (true, false) => Order::FirstSeenAsc,
            (false, true) => Order::LastSeenDesc,
            (false, false) => Order::LastSeenAsc,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::FirstSeenDesc => "first_seen-",
            Order::FirstSeenAsc => "first_seen+",
            Order::LastSeenDesc => "last_seen-",
            Order::LastSeenAsc => "last_seen+",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Order::FirstSeenDesc => "fd",
            Order::FirstSeenAsc => "fa",
            Order::LastSeenDesc => "ld",
            Order::LastSeenAsc => "la",
        }
    }

    fn desc(self) -> bool {
        matches!(self, Order::FirstSeenDesc | Order::LastSeenDesc)
    }

    fn first_seen(self) -> bool {
        matches!(self, Order::FirstSeenDesc | Order::FirstSeenAsc)
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    /// 1–300 (VirusTotal's bounds); default 10.
    pub limit: usize,
    pub cursor: Option<String>,
    pub order: Order,
    /// Unix seconds used for relative dates (`fs:3d+`).
    pub now: i64,
    /// Count matches exactly up to this many; past it `total_hits` is a lower bound (see
    /// [`SearchPage::total_hits_exact`]). Only the default order stops early.
    pub exact_count_limit: u64,
    /// Work, time and cancellation (default: [`crate::DEFAULT_MAX_WORK`], no deadline).
    pub limits: SearchLimits,
}

/// The default [`SearchRequest::exact_count_limit`], Elasticsearch's default too.
pub const EXACT_COUNT_LIMIT: u64 = 10_000;

impl SearchRequest {
    pub fn new(query: impl Into<String>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self {
            query: query.into(),
            limit: 10,
            cursor: None,
            order: Order::default(),
            now,
            exact_count_limit: EXACT_COUNT_LIMIT,
            limits: SearchLimits::default(),
        }
    }
}

/// One matching sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub sha256: String,
    pub sandboxes: Vec<String>,
    pub report_ids: Vec<String>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Reported values the query's text terms matched (at most 5).
    pub snippets: Vec<String>,
    /// Distinct matched Sigma rules: critical, high, medium, low.
    pub sigma: [u64; 4],
    pub tags: Vec<String>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Matching samples in total (all pages), or at least this many when
    /// `total_hits_exact` is false.
    pub total_hits: u64,
    /// Whether `total_hits` is the exact count (see [`SearchRequest::exact_count_limit`]).
    pub total_hits_exact: bool,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Work units the search spent (see [`SearchLimits::max_work`]).
    pub work: u64,
}

/// Sort key: smaller comes first. `(order value, sha hi, sha lo)`.
type Key = (i128, u64, u64);

fn sort_value(order: Order, t: Option<i64>) -> i128 {
    let t = i128::from(t.unwrap_or(i64::MIN));
    if order.desc() { -t } else { t }
}

fn encode_cursor(order: Order, key: Key) -> String {
    format!("{}.{}.{:016x}{:016x}", order.code(), key.0, key.1, key.2)
}

fn decode_cursor(order: Order, cursor: &str) -> Result<Key> {
    let mut parts = cursor.splitn(3, '.');
    let (Some(code), Some(value), Some(sha)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    if code != order.code() || sha.len() != 32 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::InvalidCursor);
    }
    let value: i128 = value.parse().map_err(|_| StoreError::InvalidCursor)?;
    let hi = u64::from_str_radix(&sha[..16], 16).map_err(|_| StoreError::InvalidCursor)?;
    let lo = u64::from_str_radix(&sha[16..], 16).map_err(|_| StoreError::InvalidCursor)?;
    Ok((value, hi, lo))
}

/// Collects the `limit` first documents after `after` in key order, and how many follow it.
struct PageCollector {
    order: Order,
    limit: usize,
    after: Option<Key>,
    budget: Arc<Budget>,
}

struct PageSegment {
    order: Order,
    limit: usize,
    after: Option<Key>,
    segment: u32,
    date: Column<i64>,
    hi: Column<u64>,
    lo: Column<u64>,
    heap: BinaryHeap<(Key, DocAddress)>,
    after_count: u64,
    budget: Arc<Budget>,
}

impl Collector for PageCollector {
    type Fruit = (Vec<(Key, DocAddress)>, u64);
    type Child = PageSegment;

    fn for_segment(
        &self,
        segment_local_id: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<PageSegment> {
        let ff = reader.fast_fields();
        let date = ff.i64(if self.order.first_seen() {
            "first_seen"
        } else {
            "last_seen"
        })?;
        Ok(PageSegment {
            order: self.order,
            limit: self.limit,
            after: self.after,
            segment: segment_local_id,
            date,
            hi: ff.u64("sha_hi")?,
            lo: ff.u64("sha_lo")?,
            heap: BinaryHeap::new(),
            after_count: 0,
            budget: self.budget.clone(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(Vec<(Key, DocAddress)>, u64)>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(Key, DocAddress)> = Vec::new();
        let mut count = 0;
        for (items, n) in fruits {
            all.extend(items);
            count += n;
        }
        all.sort_by_key(|a| a.0);
        all.truncate(self.limit);
        Ok((all, count))
    }
}

impl SegmentCollector for PageSegment {
    type Fruit = (Vec<(Key, DocAddress)>, u64);

    fn collect(&mut self, doc: DocId, _score: Score) {
        if !self.budget.charge(1) {
            // The result is thrown away; only the matchers' own walk is left to finish.
            return;
        }
        let key = (
            sort_value(self.order, self.date.first(doc)),
            self.hi.first(doc).unwrap_or(0),
            self.lo.first(doc).unwrap_or(0),
        );
        if self.after.is_some_and(|a| key <= a) {
            return;
        }
        self.after_count += 1;
        if self.heap.len() < self.limit {
            self.heap.push((key, DocAddress::new(self.segment, doc)));
        } else if let Some(top) = self.heap.peek()
            && key < top.0
        {
            self.heap.pop();
            self.heap.push((key, DocAddress::new(self.segment, doc)));
        }
    }

    fn harvest(self) -> Self::Fruit {
        (self.heap.into_vec(), self.after_count)
    }
}

/// Turns a parsed query into a query over the sample index, running the value lookups of its
/// text terms on the way.
pub(crate) struct Translator<'a> {
    fields: &'a SampleFields,
    value_fields: &'a ValueFields,
    values: tantivy::Searcher,
    db: &'a Arc<crate::Db>,
    vocabulary: Arc<Vocabulary>,
    budget: Arc<Budget>,
    now: i64,
}

impl<'a> Translator<'a> {
    pub(crate) fn new(store: &'a Store, now: i64, budget: Arc<Budget>) -> Self {
        let values = store.value_reader.searcher();
        let live: Vec<_> = values
            .segment_readers()
            .iter()
            .chain(store.reader.searcher().segment_readers())
            .map(|r| r.segment_id())
            .collect();
        store.vocabulary.retain(&live);
        Translator {
            fields: &store.fields,
            value_fields: &store.value_fields,
            values,
            db: &store.db,
            vocabulary: store.vocabulary.clone(),
            budget,
            now,
        }
    }

    pub(crate) fn translate(&self, query: &Query) -> Result<Box<dyn TQuery>> {
        Ok(match query {
            Query::And(items) | Query::Or(items) => {
                let occur = if matches!(query, Query::And(_)) {
                    Occur::Must
                } else {
                    Occur::Should
                };
                let mut clauses = Vec::with_capacity(items.len());
                for q in items {
                    clauses.push((occur, self.translate(q)?));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            Query::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (
                    Occur::MustNot,
                    Box::new(SafeExclusion(self.translate(inner)?)),
                ),
            ])),
            Query::Term(term) => self.translate_term(term)?,
        })
    }

    fn translate_term(&self, term: &QTerm) -> Result<Box<dyn TQuery>> {
        let fields = self.fields;
        Ok(match &term.value {
            Value::Text(pattern) => self.text_term(term.modifier, pattern)?,
            Value::Token(pattern) => {
                let Some(tf) = term.modifier.token_field() else {
                    return Ok(Box::new(EmptyQuery));
                };
                let field = fields.tokens[tf as usize];
                if pattern.contains('*') {
                    let regex = pattern.replace('*', ".*");
                    match RegexQuery::from_pattern(&regex, field) {
                        Ok(q) => Box::new(q),
                        Err(_) => Box::new(EmptyQuery),
                    }
                } else {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, pattern),
                        IndexRecordOption::Basic,
                    ))
                }
            }
            Value::Count(c) => {
                let Some(level) = term.modifier.sigma_level() else {
                    return Ok(Box::new(EmptyQuery));
                };
                let field = fields.sigma[level as usize];
                match Comparison::bounds(*c) {
                    None => Box::new(EmptyQuery),
                    Some((lo, hi)) => Box::new(RangeQuery::new(
                        Bound::Included(Term::from_field_u64(field, lo)),
                        Bound::Included(Term::from_field_u64(field, hi)),
                    )),
                }
            }
            Value::Date(d) => {
                let field = if term.modifier == Modifier::FirstSeen {
                    fields.first_seen
                } else {
                    fields.last_seen
                };
                let (lo, hi) = d.bounds(self.now);
                let lo = lo.map_or(Bound::Unbounded, |v| {
                    Bound::Included(Term::from_field_i64(field, v))
                });
                let hi = hi.map_or(Bound::Unbounded, |v| {
                    Bound::Excluded(Term::from_field_i64(field, v))
                });
                Box::new(RangeQuery::new(lo, hi))
            }
        })
    }

    /// The samples reporting a value, in one of the modifier's fields, that matches `pattern`.
    fn text_term(&self, modifier: Modifier, pattern: &TextPattern) -> Result<Box<dyn TQuery>> {
        let covered = modifier.text_fields();
        // Pieces without a word (separators only) are left to verification: every stored
        // value is padded with separators.
        let pieces: Vec<Vec<WordMatch>> = pattern
            .segments
            .iter()
            .filter_map(|s| word_matches(s))
            .collect();
        if pieces.is_empty() {
            // `*`, an empty value or separators only: any value at all in the field (every
            // stored value is padded with separators).
            let clauses: Vec<(Occur, Box<dyn TQuery>)> = covered
                .iter()
                .map(|f| {
                    let q: Box<dyn TQuery> = Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.has_text, f.name()),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            return Ok(Box::new(BooleanQuery::new(clauses)));
        }
        let phrases = |fields: &[Field]| -> Box<dyn TQuery> {
            combine(
                fields
                    .iter()
                    .map(|f| (Occur::Should, self.all_pieces(*f, &pieces)))
                    .collect(),
            )
        };
        let verify = pattern.segments.len() > 1;
        // Values the samples own: the words of their own documents.
        let owned = if verify {
            combine(
                covered
                    .iter()
                    .map(|f| {
                        let q: Box<dyn TQuery> = Box::new(Verified {
                            budget: self.budget.clone(),
                            ordered: Ordered {
                                field: self.fields.texts[*f as usize],
                                pieces: pieces.clone(),
                                vocabulary: self.vocabulary.clone(),
                                budget: self.budget.clone(),
                                complete: pieces.len() == pattern.segments.len(),
                            },
                            field: *f,
                            segments: pattern.segments.clone(),
                            db: self.db.clone(),
                        });
                        (Occur::Should, q)
                    })
                    .collect(),
            )
        } else {
            phrases(
                &covered
                    .iter()
                    .map(|f| self.fields.texts[*f as usize])
                    .collect::<Vec<_>>(),
            )
        };
        // Values samples share: found once in the value index, then through `vals`.
        let value_query = phrases(
            &covered
                .iter()
                .map(|f| self.value_fields.texts[*f as usize])
                .collect::<Vec<_>>(),
        );
        let executor = executor_for(&self.budget, self.values.index());
        let searched = self.values.search_with_executor(
            &*value_query,
            &VidCollector,
            executor,
            EnableScoring::disabled_from_searcher(&self.values),
        );
        let mut shared = finish(&self.budget, searched)?;
        if verify && !shared.is_empty() {
            // The pieces all occur; keep the values where they occur in order in one spelling.
            let txn = self.db.begin_read()?;
            let table = txn.open_table(VALUES)?;
            let mut verified = Vec::new();
            for vid in shared {
                if !self.budget.charge(16) {
                    return Err(exhausted(&self.budget));
                }
                let Some(bytes) = table.get(vid)? else {
                    continue;
                };
                if ValueRecord::decode(vid, bytes.value())?.holds_in_order(&pattern.segments) {
                    verified.push(vid);
                }
            }
            shared = verified;
        }
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = vec![(Occur::Should, owned)];
        if !shared.is_empty() {
            clauses.push((Occur::Should, u64_set_query(self.fields.vals, shared)));
        }
        Ok(combine(clauses))
    }
}

/// The outcome of a tantivy search under `budget`: a stopped budget wins over whatever the
/// search answered (its matchers stopped early, so the answer is incomplete).
fn finish<T>(budget: &Budget, result: tantivy::Result<T>) -> Result<T> {
    if let Some(why) = budget.exhausted() {
        return Err(StoreError::Exhausted(why));
    }
    result.map_err(too_broad)
}

/// The error of a search whose budget stopped it.
fn exhausted(budget: &Budget) -> StoreError {
    match budget.exhausted() {
        Some(why) => StoreError::Exhausted(why),
        None => StoreError::Exhausted(crate::Exhausted::Cancelled),
    }
}

/// The executor a search runs its segments on: the index's pool, or the calling thread for a
/// search that must not hold the pool (see [`SearchLimits::parallel`]).
fn executor_for<'i>(budget: &Budget, index: &'i tantivy::Index) -> &'i tantivy::Executor {
    static SINGLE: std::sync::LazyLock<tantivy::Executor> =
        std::sync::LazyLock::new(tantivy::Executor::single_thread);
    if budget.parallel() {
        index.search_executor()
    } else {
        &SINGLE
    }
}

/// A too-broad query piece is the caller's error, not the index's.
fn too_broad(e: tantivy::TantivyError) -> StoreError {
    match e {
        tantivy::TantivyError::InvalidArgument(m) if m.starts_with(TOO_BROAD) => {
            StoreError::TooBroad(m)
        }
        e => StoreError::Index(e),
    }
}

/// One query of the clauses: nothing matches none, one stands for itself.
fn combine(mut clauses: Vec<(Occur, Box<dyn TQuery>)>) -> Box<dyn TQuery> {
    match clauses.len() {
        0 => Box::new(EmptyQuery),
        1 => clauses
            .pop()
            .map(|(_, q)| q)
            .unwrap_or_else(|| Box::new(EmptyQuery)),
        _ => Box::new(BooleanQuery::new(clauses)),
    }
}

/// Collects the ids of the matching (shared) values.
struct VidCollector;

struct VidSegment {
    vid: Column<u64>,
    vids: Vec<u64>,
}

impl Collector for VidCollector {
    type Fruit = Vec<u64>;
    type Child = VidSegment;

    fn for_segment(&self, _: u32, reader: &SegmentReader) -> tantivy::Result<VidSegment> {
        Ok(VidSegment {
            vid: reader.fast_fields().u64("vid")?,
            vids: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for VidSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(vid) = self.vid.first(doc) {
            self.vids.push(vid);
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.vids
    }
}

/// The samples owning a value of `field` in which the `*`-separated `segments` occur in order
/// within one spelling. The index proves most matches (see [`Ordered`]); where a piece ends and
/// the next begins inside one word it cannot, and the sample's values in redb decide.
#[derive(Clone)]
struct Verified {
    ordered: Ordered,
    budget: Arc<Budget>,
    field: sandscope_query::TextField,
    segments: Vec<String>,
    db: Arc<crate::Db>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("field", &self.field)
            .field("segments", &self.segments)
            .finish()
    }
}

impl TQuery for Verified {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

fn db_error(e: impl std::fmt::Display) -> tantivy::TantivyError {
    tantivy::TantivyError::SystemError(format!("report store: {e}"))
}

impl Weight for Verified {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let Some(inner) = self.ordered.scorer(reader)? else {
            return Ok(Box::new(EmptyScorer));
        };
        let txn = self.db.begin_read().map_err(db_error)?;
        let mut scorer = VerifiedScorer {
            inner,
            sample_no: reader.fast_fields().u64("sample_no")?,
            shas: txn.open_table(SAMPLE_SHAS).map_err(db_error)?,
            sample_values: txn.open_table(SAMPLE_VALUES).map_err(db_error)?,
            values: txn.open_table(VALUES).map_err(db_error)?,
            query: self.clone(),
        };
        scorer.settle();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("a value holds the pieces in order", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(
                "document does not match".into(),
            ))
        }
    }
}

struct VerifiedScorer {
    inner: Matches<OrderedFinder>,
    sample_no: Column<u64>,
    shas: redb::ReadOnlyTable<u64, &'static str>,
    sample_values: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    values: redb::ReadOnlyTable<u64, &'static [u8]>,
    query: Verified,
}

impl VerifiedScorer {
    /// Whether the sample owns a value of the field that holds the pieces in order. A read
    /// error counts as no: the search then misses that sample rather than failing whole.
    fn owns_match(&self, doc: DocId) -> bool {
        let check = || -> Result<bool> {
            let Some(no) = self.sample_no.first(doc) else {
                return Ok(false);
            };
            let Some(sha) = self.shas.get(no)?.map(|v| v.value().to_string()) else {
                return Ok(false);
            };
            let Some(ids) = self.sample_values.get(sha.as_str())? else {
                return Ok(false);
            };
            for vid in crate::values::decode_ids(ids.value()) {
                if !self.query.budget.charge(4) {
                    return Ok(false);
                }
                let Some(bytes) = self.values.get(vid)? else {
                    continue;
                };
                // Shared values are matched through `vals`, not here: skip them before copying
                // their text.
                if ValueRecord::decode_owner(vid, bytes.value())?.0 != no {
                    continue;
                }
                let record = ValueRecord::decode(vid, bytes.value())?;
                if record.field == self.query.field && record.holds_in_order(&self.query.segments) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        check().unwrap_or(false)
    }

    /// Moves forward to the first matching document from the current one.
    fn settle(&mut self) -> DocId {
        let mut doc = self.inner.doc();
        while doc != TERMINATED && !(self.inner.finder.certain() || self.owns_match(doc)) {
            doc = self.inner.advance();
        }
        doc
    }
}

impl tantivy::DocSet for VerifiedScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance();
        self.settle()
    }
    fn seek(&mut self, target: DocId) -> DocId {
        if self.inner.doc() < target {
            self.inner.seek(target);
        }
        self.settle()
    }
    fn doc(&self) -> DocId {
        self.inner.doc()
    }
    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

impl Scorer for VerifiedScorer {
    fn score(&mut self) -> Score {
        1.0
    }
}

/// Up to this many terms a set is a union of term queries; beyond, one term-set automaton.
const SMALL_SET: usize = 64;

/// Documents whose u64 `field` holds one of `numbers` (value ids in `vals`, sample numbers).
fn u64_set_query(field: Field, mut numbers: Vec<u64>) -> Box<dyn TQuery> {
    numbers.sort_unstable();
    numbers.dedup();
    let terms = numbers.into_iter().map(|v| Term::from_field_u64(field, v));
    if terms.len() <= SMALL_SET {
        Box::new(BooleanQuery::new(
            terms
                .map(|t| {
                    let q: Box<dyn TQuery> = Box::new(TermQuery::new(t, IndexRecordOption::Basic));
                    (Occur::Should, q)
                })
                .collect(),
        ))
    } else {
        Box::new(TermSetQuery::new(terms))
    }
}

impl Translator<'_> {
    /// Documents whose `field` holds every piece (their order is verified afterwards).
    fn all_pieces(&self, field: Field, pieces: &[Vec<WordMatch>]) -> Box<dyn TQuery> {
        combine(
            pieces
                .iter()
                .map(|words| {
                    let q: Box<dyn TQuery> = Box::new(WordPhrase {
                        field,
                        words: words.clone(),
                        vocabulary: self.vocabulary.clone(),
                        budget: self.budget.clone(),
                    });
                    (Occur::Must, q)
                })
                .collect(),
        )
    }
}

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
            let doc = SampleDoc::from_reports(&sha, &reports);
            let mut tags: Vec<String> = Vec::new();
            for r in &reports {
                for t in &r.attributes.tags {
                    if !tags.contains(t) {
                        tags.push(t.clone());
                    }
                }
            }
            hits.push(SearchHit {
                snippets: query.snippets(&doc, 5),
                sandboxes: doc.sandboxes.clone(),
                report_ids: reports.iter().map(|r| r.id.clone()).collect(),
                first_seen: doc.first_seen,
                last_seen: doc.last_seen,
                sigma: doc.sigma,
                tags,
                sha256: sha,
            });
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

    fn sha_of(&self, searcher: &tantivy::Searcher, addr: DocAddress) -> Result<String> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        Ok(doc
            .get_first(self.fields.sha256)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string())
    }
}

/// A page of documents in key order, with the count of matches.
struct Collected {
    page: Vec<(Key, DocAddress)>,
    /// Matching documents seen (all of them when `exact`; a lower bound otherwise).
    total: u64,
    exact: bool,
    /// More matches follow the page.
    more: bool,
}

/// The newest-first page, reading matches in document order: the sample index is sorted
/// newest first, so in each segment the page is complete at the first match older than its
/// last entry. Counting goes on until `exact_count_limit` matches have been seen (over all
/// segments, which are read in parallel); past that the total is a lower bound, as a search
/// engine's "10,000+ hits".
fn newest_first(
    searcher: &tantivy::Searcher,
    query: &dyn TQuery,
    limit: usize,
    after: Option<Key>,
    exact_count_limit: u64,
    budget: &Budget,
) -> tantivy::Result<Collected> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let counted = AtomicU64::new(0);
    let segments = searcher.segment_readers().iter().enumerate();
    let pages = executor_for(budget, searcher.index()).map(
        |(segment, reader)| {
            let segment = u32::try_from(segment).unwrap_or(u32::MAX);
            let limits = PageLimits {
                limit,
                after,
                exact_count_limit,
                counted: &counted,
                budget,
            };
            newest_in_segment(&*weight, segment, reader, &limits)
        },
        segments,
    )?;
    let mut all = Collected {
        page: Vec::new(),
        total: 0,
        exact: true,
        more: false,
    };
    for page in pages {
        all.page.extend(page.page);
        all.total += page.total;
        all.exact &= page.exact;
        all.more |= page.more;
    }
    all.page.sort_by_key(|a| a.0);
    if all.page.len() > limit {
        all.more = true;
        all.page.truncate(limit);
    }
    Ok(all)
}

/// What bounds a newest-first page in each segment.
struct PageLimits<'a> {
    limit: usize,
    after: Option<Key>,
    exact_count_limit: u64,
    /// Matches counted so far in all segments.
    counted: &'a AtomicU64,
    budget: &'a Budget,
}

/// One segment's share of [`newest_first`]: its first `limit` matches after the cursor.
fn newest_in_segment(
    weight: &dyn Weight,
    segment: u32,
    reader: &SegmentReader,
    limits: &PageLimits<'_>,
) -> tantivy::Result<Collected> {
    let order = Order::FirstSeenDesc;
    let mut scorer = weight.scorer(reader, 1.0)?;
    let alive = reader.alive_bitset();
    let ff = reader.fast_fields();
    let date = ff.i64("first_seen")?;
    let hi = ff.u64("sha_hi")?;
    let lo = ff.u64("sha_lo")?;
    // Max-heap on the key: the page's last entry is on top.
    let mut heap: BinaryHeap<(Key, DocAddress)> = BinaryHeap::new();
    let mut total = 0u64;
    let mut exact = true;
    let mut more = false;
    let mut doc = scorer.doc();
    while doc != TERMINATED {
        if !limits.budget.charge(1) {
            break;
        }
        if alive.is_none_or(|a| a.is_alive(doc)) {
            let key = (
                sort_value(order, date.first(doc)),
                hi.first(doc).unwrap_or(0),
                lo.first(doc).unwrap_or(0),
            );
            let page_full =
                heap.len() >= limits.limit && heap.peek().is_some_and(|(last, _)| key.0 > last.0);
            if page_full && limits.counted.load(AtomicOrdering::Relaxed) >= limits.exact_count_limit
            {
                // Everything further in this segment sorts after the page.
                exact = false;
                more = true;
                break;
            }
            total += 1;
            limits.counted.fetch_add(1, AtomicOrdering::Relaxed);
            if limits.after.is_none_or(|a| key > a) {
                let addr = DocAddress::new(segment, doc);
                if heap.len() < limits.limit {
                    heap.push((key, addr));
                } else if let Some(last) = heap.peek() {
                    more = true;
                    if key < last.0 {
                        heap.pop();
                        heap.push((key, addr));
                    }
                }
            }
        }
        doc = scorer.advance();
    }
    Ok(Collected {
        page: heap.into_vec(),
        total,
        exact,
        more,
    })
}

/// Wraps an excluded (`MustNot`) query so its scorer answers `seek_danger` with the safe
/// default implementation. tantivy 0.27's `Exclude` probes the exclusion set with doc ids below
/// the one a freshly created `PhraseScorer` already sits on, which trips that scorer's
/// `seek_danger` contract (a debug assertion; an unchecked seek backwards in release builds).
/// The default implementation treats "already past the target" as "target absent", which is
/// correct because docsets only move forward from their first match.
#[derive(Debug)]
struct SafeExclusion(Box<dyn TQuery>);

impl Clone for SafeExclusion {
    fn clone(&self) -> Self {
        SafeExclusion(self.0.box_clone())
    }
}

impl TQuery for SafeExclusion {
    fn weight(
        &self,
        enable_scoring: tantivy::query::EnableScoring<'_>,
    ) -> tantivy::Result<Box<dyn tantivy::query::Weight>> {
        Ok(Box::new(SafeExclusionWeight(
            self.0.weight(enable_scoring)?,
        )))
    }
}

struct SafeExclusionWeight(Box<dyn tantivy::query::Weight>);

impl tantivy::query::Weight for SafeExclusionWeight {
    fn scorer(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<Box<dyn tantivy::query::Scorer>> {
        Ok(Box::new(SafeExclusionScorer(self.0.scorer(reader, boost)?)))
    }

    fn explain(
        &self,
        reader: &SegmentReader,
        doc: DocId,
    ) -> tantivy::Result<tantivy::query::Explanation> {
        self.0.explain(reader, doc)
    }
}

struct SafeExclusionScorer(Box<dyn tantivy::query::Scorer>);

impl tantivy::DocSet for SafeExclusionScorer {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }
    fn seek(&mut self, target: DocId) -> DocId {
        self.0.seek(target)
    }
    fn doc(&self) -> DocId {
        self.0.doc()
    }
    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }
}

impl tantivy::query::Scorer for SafeExclusionScorer {
    fn score(&mut self) -> Score {
        self.0.score()
    }
}
