//! A workaround for tantivy 0.27's `Exclude` seeking a phrase scorer backwards.

use super::*;

/// Wraps an excluded (`MustNot`) query so its scorer answers `seek_danger` with the safe
/// default implementation. tantivy 0.27's `Exclude` probes the exclusion set with doc ids below
/// the one a freshly created `PhraseScorer` already sits on, which trips that scorer's
/// `seek_danger` contract (a debug assertion; an unchecked seek backwards in release builds).
/// The default implementation treats "already past the target" as "target absent", which is
/// correct because docsets only move forward from their first match.
#[derive(Debug)]
pub(super) struct SafeExclusion(pub(super) Box<dyn TQuery>);

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

pub(super) struct SafeExclusionWeight(Box<dyn tantivy::query::Weight>);

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

pub(super) struct SafeExclusionScorer(Box<dyn tantivy::query::Scorer>);

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
