//! Query tree → tantivy query over the sample index, with the value lookups of text terms.

use super::*;

/// Turns a parsed query into a query over the sample index, running the value lookups of its
/// text terms on the way.
pub(crate) struct Translator<'a> {
    fields: &'a SampleFields,
    value_fields: &'a ValueFields,
    values: tantivy::Searcher,
    db: &'a Arc<crate::Db>,
    codec: &'a Arc<RwLock<Arc<ReportCodec>>>,
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
            codec: &store.codec,
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
                            codec: self.codec.clone(),
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
            // Taken after the transaction began: it has every dictionary the values need.
            let codec = self
                .codec
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let table = ValueReader::new(txn.open_table(VALUE_BLOCKS)?, codec);
            let mut verified = Vec::new();
            for vid in shared {
                if !self.budget.charge(16) {
                    return Err(exhausted(&self.budget));
                }
                if table
                    .record(vid)?
                    .is_some_and(|r| r.holds_in_order(&pattern.segments))
                {
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
pub(super) fn finish<T>(budget: &Budget, result: tantivy::Result<T>) -> Result<T> {
    if let Some(why) = budget.exhausted() {
        return Err(StoreError::Exhausted(why));
    }
    result.map_err(too_broad)
}

/// The error of a search whose budget stopped it.
pub(super) fn exhausted(budget: &Budget) -> StoreError {
    match budget.exhausted() {
        Some(why) => StoreError::Exhausted(why),
        None => StoreError::Exhausted(crate::Exhausted::Cancelled),
    }
}

/// The executor a search runs its segments on: the index's pool, or the calling thread for a
/// search that must not hold the pool (see [`SearchLimits::parallel`]).
pub(super) fn executor_for<'i>(
    budget: &Budget,
    index: &'i tantivy::Index,
) -> &'i tantivy::Executor {
    static SINGLE: std::sync::LazyLock<tantivy::Executor> =
        std::sync::LazyLock::new(tantivy::Executor::single_thread);
    if budget.parallel() {
        index.search_executor()
    } else {
        &SINGLE
    }
}

/// A too-broad query piece is the caller's error, not the index's.
pub(super) fn too_broad(e: tantivy::TantivyError) -> StoreError {
    match e {
        tantivy::TantivyError::InvalidArgument(m) if m.starts_with(TOO_BROAD) => {
            StoreError::TooBroad(m)
        }
        e => StoreError::Index(e),
    }
}

/// One query of the clauses: nothing matches none, one stands for itself.
pub(super) fn combine(mut clauses: Vec<(Occur, Box<dyn TQuery>)>) -> Box<dyn TQuery> {
    match clauses.len() {
        0 => Box::new(EmptyQuery),
        1 => clauses
            .pop()
            .map(|(_, q)| q)
            .unwrap_or_else(|| Box::new(EmptyQuery)),
        _ => Box::new(BooleanQuery::new(clauses)),
    }
}

/// Up to this many terms a set is a union of term queries; beyond, one term-set automaton.
pub(super) const SMALL_SET: usize = 64;

/// Documents whose u64 `field` holds one of `numbers` (value ids in `vals`, sample numbers).
pub(super) fn u64_set_query(field: Field, mut numbers: Vec<u64>) -> Box<dyn TQuery> {
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
