//! Hunting over behaviour: Livehunt rulesets that notify on every new report, in VirusTotal's
//! `hunting_ruleset` / `hunting_notification` shapes, with Sigma rules or Intelligence queries
//! instead of YARA.
//!
//! - `rules`: a ruleset's text to its compiled rules (Sigma via `sandscope-sigma`, detection and
//!   correlation rules; queries via `sandscope-query`, one per line), with every problem named
//!   by rule and line, and bounded work.
//! - `ruleset`, `notification`, `rate`: the records, their API shapes, the `limit` per 24 h.
//! - `livehunt`: the enabled rulesets, compiled, evaluated on each stored report; `merged`:
//!   their Sigma rules in one engine, so a report's events are evaluated once for all of them.
//! - `service`: create / PATCH / delete / list, shared by the API and the CLI.
//! - `webhook`: notifications POSTed to a ruleset's `webhook_url`, retried with back-off; each
//!   delivery queued in the store with its notification and made by any process sharing the
//!   store (a lease per attempt, so a killed process's are taken over); the outcomes counted in
//!   the ruleset's record, so every process sharing the store shows them.
//! - `retro`: Retrohunt, the scan of every stored detonation's raw log (CLI, API jobs, bench)
//!   and the API's background `retrohunt_jobs`.
//! - `stream`: one stream of events hunted by a Sigma engine, as `sandscope hunt` hunts a file.
//! - `seam`: the one thing hunting needs from a store ([`RecordStore`]: keyed records and a
//!   sample's searchable view), defined in `sandscope-store` so each store implements it.
//!
//! Sigma rulesets are evaluated exactly as a report's own Sigma results are
//! ([`sandscope_sigma::SigmaEngine::analyse`] over the sample's attributed events); query
//! rulesets exactly as the search verifies a hit ([`sandscope_query::Query::matches`] over the
//! sample's [`sandscope_query::SampleDoc`]).

mod error;
mod livehunt;
mod merged;
mod notification;
mod rate;
mod retro;
mod rules;
mod ruleset;
mod seam;
mod service;
mod store_io;
mod stream;
mod webhook;

pub use error::{HuntingError, Result};
pub use livehunt::{Finding, Livehunt};
pub use notification::{Notification, NotificationFilter};
pub use rate::RateWindow;
pub use retro::{
    DEFAULT_MAX_RUNNING, DetonationLog, DetonationLogs, JobStatus, MAX_JOBS, RANGES, RangeDispatch,
    RangeEnd, RangeProgress, RetrohuntJob, RetrohuntMatch, RetrohuntStore, Retrohunts, ScanEnd,
    ScanOptions, ScannedLog, ScannedPage, TimeRange, give_up_range, sample_of, scan, scan_range,
};
pub use rules::{CompiledRules, MAX_RULES, MAX_RULES_BYTES, RuleHit, RuleLanguage, RuleProblem};
pub use ruleset::{DEFAULT_LIMIT, MAX_LIMIT, Ruleset};
pub use seam::{RecordStore, RecordStoreError, RecordTable, RecordWrite};
pub use service::{Hunting, Page};
pub use store_io::MAX_RULESETS;
pub use stream::{HuntOutcome, hunt_stream};
pub use webhook::{WebhookStatus, Webhooks};

/// Now, in Unix seconds (the dates of rulesets and notifications).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
