//! The hunting crate's errors: what the caller got wrong (a 400) apart from what the store did.

use crate::rules::RuleProblem;

#[derive(Debug, thiserror::Error)]
pub enum HuntingError {
    /// An attribute of a ruleset or job is missing or wrong (the caller's to fix).
    #[error("{0}")]
    Invalid(String),
    /// The rules do not parse: every problem, each naming its rule and line.
    #[error("{}", problems_text(.0))]
    Rules(Vec<RuleProblem>),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The record store behind hunting failed (the embedded store, or another backend).
    #[error("record store: {0}")]
    Store(#[from] sandscope_store::RecordStoreError),
    #[error("stored {table} record {id} is unreadable: {source}")]
    Corrupt {
        table: &'static str,
        id: u64,
        source: serde_json::Error,
    },
}

impl HuntingError {
    /// Whether the caller is at fault (→ 400/404), not the machine.
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            HuntingError::Invalid(_) | HuntingError::Rules(_) | HuntingError::NotFound { .. }
        )
    }
}

impl From<sandscope_store::StoreError> for HuntingError {
    fn from(e: sandscope_store::StoreError) -> Self {
        HuntingError::Store(e.into())
    }
}

fn problems_text(problems: &[RuleProblem]) -> String {
    let shown: Vec<String> = problems.iter().take(20).map(|p| p.to_string()).collect();
    let more = problems.len().saturating_sub(shown.len());
    let mut text = shown.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more problem(s)"));
    }
    text
}

pub type Result<T> = std::result::Result<T, HuntingError>;
