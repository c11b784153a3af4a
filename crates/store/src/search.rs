//! Query → tantivy query, result ordering with a stable cursor, snippets.
//!
//! A text term is answered in two steps. First the *value* index finds the distinct values
//! that match: per covered field, a phrase over the words of each `*`-separated piece (see
//! `phrase`: its first word may end, its last word may begin an indexed word); a value with a
//! `*` between two pieces is then checked against its text in the value dictionary (the index
//! can only say both pieces occur, not in which order). Then the matching values become a query over the *sample*
//! index: the samples owning them (a bitset over sample numbers) or sharing them (their
//! `vals` postings); see `values` for why that is exact. Booleans, tokens, counts and dates
//! are plain tantivy queries over the sample index.

use crate::index::{Fields, ValueFields};
use crate::phrase::{TOO_BROAD, WordMatch, WordPhrase, word_matches};
use crate::values::{NO_OWNER, VALUES, ValueRecord};
use crate::vocabulary::Vocabulary;
use crate::{Result, Store, StoreError};
use redb::ReadableDatabase;
use sandscope_query::{Comparison, Modifier, Query, SampleDoc, Term as QTerm, TextPattern, Value};
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::Arc;
use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, ConstScorer, EmptyQuery, EnableScoring, Explanation,
    Occur, Query as TQuery, RangeQuery, RegexQuery, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DocAddress, DocId, Score, SegmentReader, TantivyDocument, Term};

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
}

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
    /// Matching samples in total (all pages).
    pub total_hits: u64,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
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
    fields: &'a Fields,
    value_fields: &'a ValueFields,
    values: tantivy::Searcher,
    db: &'a redb::Database,
    vocabulary: Arc<Vocabulary>,
    now: i64,
}

impl<'a> Translator<'a> {
    pub(crate) fn new(store: &'a Store, now: i64) -> Self {
        let values = store.value_reader.searcher();
        let live: Vec<_> = values
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        store.vocabulary.retain(&live);
        Translator {
            fields: &store.fields,
            value_fields: &store.value_fields,
            values,
            db: &store.db,
            vocabulary: store.vocabulary.clone(),
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
        let value_query = BooleanQuery::new(
            covered
                .iter()
                .map(|f| {
                    (
                        Occur::Should,
                        all_pieces(
                            self.value_fields.texts[*f as usize],
                            &pieces,
                            &self.vocabulary,
                        ),
                    )
                })
                .collect(),
        );
        let verify = pattern.segments.len() > 1;
        let mut hits = self
            .values
            .search(&value_query, &ValueCollector { keep: verify })
            .map_err(|e| match e {
                tantivy::TantivyError::InvalidArgument(m) if m.starts_with(TOO_BROAD) => {
                    StoreError::TooBroad(m)
                }
                e => StoreError::Index(e),
            })?;
        if verify {
            // The pieces all occur; keep the values where they occur in order in one spelling.
            let txn = self.db.begin_read()?;
            let table = txn.open_table(VALUES)?;
            let mut verified = ValueHits::default();
            for m in std::mem::take(&mut hits.candidates) {
                let Some(bytes) = table.get(m.vid)? else {
                    continue;
                };
                let record = ValueRecord::decode(m.vid, bytes.value())?;
                if record
                    .spellings()
                    .any(|s| sandscope_query::text::contains_segments(s, &pattern.segments))
                {
                    verified.add(m);
                }
            }
            hits = verified;
        }
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
        if let Some(q) = sample_set_query(self.fields, hits.owners) {
            clauses.push((Occur::Should, q));
        }
        if !hits.shared.is_empty() {
            clauses.push((Occur::Should, u64_set_query(self.fields.vals, hits.shared)));
        }
        Ok(combine(clauses))
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

/// A matching value of the value index.
#[derive(Debug, Clone, Copy)]
struct ValueMatch {
    vid: u64,
    owner: u64,
    shared: bool,
}

/// What the matching values lead to, in memory bounded by the number of samples (owners are a
/// bitset over sample numbers) plus the shared values: a one-letter query matching every value
/// must not allocate per value.
#[derive(Debug, Default)]
struct ValueHits {
    /// Bit n set: sample number n owns a matching value.
    owners: Vec<u64>,
    /// Matching values resolved through the sharing samples' postings.
    shared: Vec<u64>,
    /// Every match, kept only when it still has to be verified.
    candidates: Vec<ValueMatch>,
}

impl ValueHits {
    fn add(&mut self, m: ValueMatch) {
        if m.owner != NO_OWNER {
            set_bit(&mut self.owners, m.owner);
        }
        if m.shared {
            self.shared.push(m.vid);
        }
    }

    fn merge(&mut self, other: ValueHits) {
        if self.owners.len() < other.owners.len() {
            self.owners.resize(other.owners.len(), 0);
        }
        for (word, theirs) in self.owners.iter_mut().zip(other.owners) {
            *word |= theirs;
        }
        self.shared.extend(other.shared);
        self.candidates.extend(other.candidates);
    }
}

fn set_bit(bits: &mut Vec<u64>, n: u64) {
    let Ok(word) = usize::try_from(n / 64) else {
        return;
    };
    if word >= bits.len() {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (n % 64);
}

/// Collects what the matching values lead to (see [`ValueHits`]), from fast fields.
struct ValueCollector {
    /// Keep every match as a candidate to verify instead of resolving it.
    keep: bool,
}

struct ValueSegment {
    keep: bool,
    vid: Column<u64>,
    owner: Column<u64>,
    shared: Column<u64>,
    hits: ValueHits,
}

impl Collector for ValueCollector {
    type Fruit = ValueHits;
    type Child = ValueSegment;

    fn for_segment(&self, _: u32, reader: &SegmentReader) -> tantivy::Result<ValueSegment> {
        let ff = reader.fast_fields();
        Ok(ValueSegment {
            keep: self.keep,
            vid: ff.u64("vid")?,
            owner: ff.u64("owner")?,
            shared: ff.u64("shared")?,
            hits: ValueHits::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<ValueHits>) -> tantivy::Result<ValueHits> {
        let mut all = ValueHits::default();
        for f in fruits {
            all.merge(f);
        }
        Ok(all)
    }
}

impl SegmentCollector for ValueSegment {
    type Fruit = ValueHits;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(vid) = self.vid.first(doc) else {
            return;
        };
        let m = ValueMatch {
            vid,
            owner: self.owner.first(doc).unwrap_or(NO_OWNER),
            shared: self.shared.first(doc).unwrap_or(1) != 0,
        };
        if self.keep {
            self.hits.candidates.push(m);
        } else {
            self.hits.add(m);
        }
    }

    fn harvest(self) -> ValueHits {
        self.hits
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

/// Samples whose number is set in the bitset; `None` when none is.
fn sample_set_query(fields: &Fields, bits: Vec<u64>) -> Option<Box<dyn TQuery>> {
    let count: u32 = bits.iter().map(|w| w.count_ones()).sum();
    if count == 0 {
        return None;
    }
    if count as usize <= SMALL_SET {
        let numbers = bits
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                (0..64u64)
                    .filter(move |b| w & (1 << b) != 0)
                    .map(move |b| i as u64 * 64 + b)
            })
            .collect();
        return Some(u64_set_query(fields.sample_no, numbers));
    }
    Some(Box::new(SampleNumbers(Arc::new(bits))))
}

/// Matches the sample documents whose `sample_no` is set in a bitset: one pass over the
/// segment's fast field, which beats a term lookup per number once the set is large (a broad
/// query owns hundreds of thousands of samples).
#[derive(Debug, Clone)]
struct SampleNumbers(Arc<Vec<u64>>);

impl SampleNumbers {
    fn contains(bits: &[u64], n: u64) -> bool {
        usize::try_from(n / 64)
            .ok()
            .and_then(|w| bits.get(w))
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }
}

impl TQuery for SampleNumbers {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(SampleNumbersWeight(self.0.clone())))
    }
}

struct SampleNumbersWeight(Arc<Vec<u64>>);

impl Weight for SampleNumbersWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let column = reader.fast_fields().u64("sample_no")?;
        let max_doc = reader.max_doc();
        let mut docs = tantivy::BitSet::with_max_value(max_doc);
        for doc in 0..max_doc {
            if column
                .first(doc)
                .is_some_and(|no| SampleNumbers::contains(&self.0, no))
            {
                docs.insert(doc);
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let column = reader.fast_fields().u64("sample_no")?;
        if column
            .first(doc)
            .is_some_and(|no| SampleNumbers::contains(&self.0, no))
        {
            Ok(Explanation::new("sample number in set", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(
                "document does not match".into(),
            ))
        }
    }
}

/// Values of one field of the value index holding every piece (each exactly; their order is
/// verified afterwards).
fn all_pieces(
    field: Field,
    pieces: &[Vec<WordMatch>],
    vocabulary: &Arc<Vocabulary>,
) -> Box<dyn TQuery> {
    combine(
        pieces
            .iter()
            .map(|words| {
                let q: Box<dyn TQuery> = Box::new(WordPhrase {
                    field,
                    words: words.clone(),
                    vocabulary: vocabulary.clone(),
                });
                (Occur::Must, q)
            })
            .collect(),
    )
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
        let tq = Translator::new(self, request.now).translate(query)?;
        let searcher = self.reader.searcher();
        let collector = PageCollector {
            order: request.order,
            limit,
            after,
        };
        let ((page, after_count), total) = searcher.search(&*tq, &(collector, Count))?;
        let mut hits = Vec::with_capacity(page.len());
        let mut last_key = None;
        for (key, addr) in page {
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
            Some(k) if after_count > hits.len() as u64 => Some(encode_cursor(request.order, k)),
            _ => None,
        };
        Ok(SearchPage {
            hits,
            total_hits: total as u64,
            next_cursor,
        })
    }

    /// Number of samples matching a parsed query.
    pub fn count(&self, query: &Query, now: i64) -> Result<u64> {
        let tq = Translator::new(self, now).translate(query)?;
        Ok(self.reader.searcher().search(&*tq, &Count)? as u64)
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
