//! What a search asks for and what it answers: the result order, the request, the page and its hits.

use super::*;

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

    pub(super) fn code(self) -> &'static str {
        match self {
            Order::FirstSeenDesc => "fd",
            Order::FirstSeenAsc => "fa",
            Order::LastSeenDesc => "ld",
            Order::LastSeenAsc => "la",
        }
    }

    pub(super) fn desc(self) -> bool {
        matches!(self, Order::FirstSeenDesc | Order::LastSeenDesc)
    }

    pub(super) fn first_seen(self) -> bool {
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

impl SearchHit {
    /// The hit for sample `sha256` with its `reports` (in id order), snippets from `query`.
    pub fn of_sample(
        query: &Query,
        sha256: &str,
        reports: &[sandscope_model::FileBehaviour],
    ) -> SearchHit {
        let doc = SampleDoc::for_query(sha256, reports, query);
        let mut tags: Vec<String> = Vec::new();
        for r in reports {
            for t in &r.attributes.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        SearchHit {
            snippets: query.snippets(&doc, 5),
            sandboxes: doc.sandboxes.clone(),
            report_ids: reports.iter().map(|r| r.id.clone()).collect(),
            first_seen: doc.first_seen,
            last_seen: doc.last_seen,
            sigma: doc.sigma,
            tags,
            sha256: doc.sha256,
        }
    }
}
