//! `*` patterns whose pieces meet inside one word: the sample's values in redb decide.

use super::*;

/// The samples owning a value of `field` in which the `*`-separated `segments` occur in order
/// within one spelling. The index proves most matches (see [`Ordered`]); where a piece ends and
/// the next begins inside one word it cannot, and the sample's values in redb decide.
#[derive(Clone)]
pub(super) struct Verified {
    pub(super) ordered: Ordered,
    pub(super) budget: Arc<Budget>,
    pub(super) field: sandscope_query::TextField,
    pub(super) segments: Vec<String>,
    pub(super) db: Arc<crate::Db>,
    pub(super) codec: Arc<RwLock<Arc<ReportCodec>>>,
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

pub(super) fn db_error(e: impl std::fmt::Display) -> tantivy::TantivyError {
    tantivy::TantivyError::SystemError(format!("report store: {e}"))
}

impl Weight for Verified {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let Some(inner) = self.ordered.scorer(reader)? else {
            return Ok(Box::new(EmptyScorer));
        };
        let txn = self.db.begin_read().map_err(db_error)?;
        // Taken after the transaction began: it has every dictionary the values need.
        let codec = self
            .codec
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut scorer = VerifiedScorer {
            inner,
            sample_no: reader.fast_fields().u64("sample_no")?,
            sample_values: txn.open_table(SAMPLE_VALUES).map_err(db_error)?,
            values: ValueReader::new(txn.open_table(VALUE_BLOCKS).map_err(db_error)?, codec),
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

pub(super) struct VerifiedScorer {
    inner: Matches<OrderedFinder>,
    sample_no: Column<u64>,
    sample_values: redb::ReadOnlyTable<u64, &'static [u8]>,
    values: ValueReader<redb::ReadOnlyTable<u32, &'static [u8]>>,
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
            let Some(ids) = self.sample_values.get(no)? else {
                return Ok(false);
            };
            for vid in crate::values::decode_ids(ids.value()) {
                if !self.query.budget.charge(4) {
                    return Ok(false);
                }
                // Shared values are matched through `vals`, not here: skip them before
                // decompressing their text.
                if self.values.header(vid)?.is_none_or(|h| h.owner != no) {
                    continue;
                }
                if let Some(record) = self.values.record(vid)?
                    && record.field == self.query.field
                    && record.holds_in_order(&self.query.segments)
                {
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
