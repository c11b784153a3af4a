//! The parsed query.

use serde::Serialize;

/// A parsed query: a boolean tree of terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Query {
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Term(Term),
}

/// One `modifier:value` (or a bare word, which is `behaviour:` over all text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    pub modifier: Modifier,
    pub value: Value,
    /// 1-based character column where the term starts in the query text.
    pub column: usize,
}

/// Every modifier Sandscope answers, after alias resolution (`behavior_*` = `behaviour_*`,
/// `behaviour_tag` = `behaviour_tags`); names, value kinds and help are in
/// [`crate::MODIFIERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Modifier {
    // text ("contains", separator-insensitive)
    Behaviour,
    Files,
    Processes,
    CreatedProcesses,
    InjectedProcesses,
    CommandExecutions,
    Network,
    Registry,
    Services,
    Signature,
    // tokens (case-insensitive equality, `*` wildcard)
    BehaviourTags,
    Behash,
    SandboxName,
    SigmaRule,
    AttackTechnique,
    AttackTactic,
    Tag,
    /// A bare SHA-256: the sample itself.
    Sha256,
    // counts
    SigmaCritical,
    SigmaHigh,
    SigmaMedium,
    SigmaLow,
    // dates
    FirstSeen,
    LastSeen,
}

/// What kind of value a modifier takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    Text,
    Token,
    Count,
    Date,
}

/// A modifier's value, already decoded for its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Value {
    Text(TextPattern),
    /// A token pattern in [`crate::text::token`] form; `*` is a wildcard.
    Token(String),
    Count(Comparison),
    Date(DateComparison),
}

/// A text value in normal form, split on `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextPattern {
    /// The value as decoded from the query (escapes resolved), for display.
    pub literal: String,
    /// The pieces between wildcards, each in normal form; anchored patterns carry their
    /// boundary separators inside the first/last piece. Never contains an empty piece unless
    /// the whole pattern is empty (which matches any value).
    pub segments: Vec<String>,
    /// True when the value was wrapped in escaped quotes (`"\"…\""`).
    pub anchored: bool,
}

/// `N`, `N+` (at least N) or `N-` (fewer than N, as VirusTotal's reference doc says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    Equal(u64),
    AtLeast(u64),
    Below(u64),
}

impl Comparison {
    pub fn matches(self, n: u64) -> bool {
        match self {
            Comparison::Equal(v) => n == v,
            Comparison::AtLeast(v) => n >= v,
            Comparison::Below(v) => n < v,
        }
    }

    /// Inclusive bounds.
    pub fn bounds(self) -> Option<(u64, u64)> {
        match self {
            Comparison::Equal(v) => Some((v, v)),
            Comparison::AtLeast(v) => Some((v, u64::MAX)),
            Comparison::Below(0) => None,
            Comparison::Below(v) => Some((0, v - 1)),
        }
    }
}

/// A date value: an instant or a day, or "N days ago", with `+` (at or after), `-` (before) or
/// nothing (within that day / that second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DateComparison {
    pub point: DatePoint,
    pub direction: DateDirection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DatePoint {
    /// Unix seconds `[start, end)`: a day is 86,400 s wide, a full timestamp 1 s.
    Absolute { start: i64, end: i64 },
    /// `Nd`: `now - N days`.
    DaysAgo(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DateDirection {
    Within,
    AtOrAfter,
    Before,
}

impl DateComparison {
    /// Unix-second bounds `[lo, hi)` given the current time; `None` means unbounded.
    pub fn bounds(self, now: i64) -> (Option<i64>, Option<i64>) {
        let (start, end) = match self.point {
            DatePoint::Absolute { start, end } => (start, end),
            DatePoint::DaysAgo(n) => {
                let t = now.saturating_sub(i64::from(n) * 86_400);
                (t, t.saturating_add(86_400))
            }
        };
        match self.direction {
            DateDirection::Within => (Some(start), Some(end)),
            DateDirection::AtOrAfter => (Some(start), None),
            DateDirection::Before => (None, Some(start)),
        }
    }

    pub fn matches(self, time: i64, now: i64) -> bool {
        let (lo, hi) = self.bounds(now);
        lo.is_none_or(|lo| time >= lo) && hi.is_none_or(|hi| time < hi)
    }
}
