//! Collectors: a page of samples in key order (any order, or newest first stopping early), and the
//! ids of matching shared values.

use super::*;

/// Collects the `limit` first documents after `after` in key order, and how many follow it.
pub(super) struct PageCollector {
    pub(super) order: Order,
    pub(super) limit: usize,
    pub(super) after: Option<Key>,
    pub(super) budget: Arc<Budget>,
}

pub(super) struct PageSegment {
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

/// Collects the ids of the matching (shared) values.
pub(super) struct VidCollector;

pub(super) struct VidSegment {
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

/// A page of documents in key order, with the count of matches.
pub(super) struct Collected {
    pub(super) page: Vec<(Key, DocAddress)>,
    /// Matching documents seen (all of them when `exact`; a lower bound otherwise).
    pub(super) total: u64,
    pub(super) exact: bool,
    /// More matches follow the page.
    pub(super) more: bool,
}

/// The newest-first page, reading matches in document order: the sample index is sorted
/// newest first, so in each segment the page is complete at the first match older than its
/// last entry. Counting goes on until `exact_count_limit` matches have been seen (over all
/// segments, which are read in parallel); past that the total is a lower bound, as a search
/// engine's "10,000+ hits".
pub(super) fn newest_first(
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
pub(super) struct PageLimits<'a> {
    pub(super) limit: usize,
    pub(super) after: Option<Key>,
    pub(super) exact_count_limit: u64,
    /// Matches counted so far in all segments.
    pub(super) counted: &'a AtomicU64,
    pub(super) budget: &'a Budget,
}

/// One segment's share of [`newest_first`]: its first `limit` matches after the cursor.
pub(super) fn newest_in_segment(
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
