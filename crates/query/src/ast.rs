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
/// `behaviour_tag` = `behaviour_tags`).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Token,
    Count,
    Date,
}

impl Modifier {
    /// Resolve a modifier name as written (any case; British or American spelling).
    pub fn from_name(name: &str) -> Option<Modifier> {
        let lower = name.to_ascii_lowercase();
        let name = match lower.strip_prefix("behavior") {
            Some(rest) => format!("behaviour{rest}"),
            None => lower,
        };
        Some(match name.as_str() {
            "behaviour" => Modifier::Behaviour,
            "behaviour_files" => Modifier::Files,
            "behaviour_processes" => Modifier::Processes,
            "behaviour_created_processes" => Modifier::CreatedProcesses,
            "behaviour_injected_processes" => Modifier::InjectedProcesses,
            "behaviour_command_executions" => Modifier::CommandExecutions,
            "behaviour_network" => Modifier::Network,
            "behaviour_registry" => Modifier::Registry,
            "behaviour_services" => Modifier::Services,
            "behaviour_signature" => Modifier::Signature,
            "behaviour_tags" | "behaviour_tag" => Modifier::BehaviourTags,
            "behash" => Modifier::Behash,
            "sandbox_name" => Modifier::SandboxName,
            "sigma_rule" => Modifier::SigmaRule,
            "attack_technique" => Modifier::AttackTechnique,
            "attack_tactic" => Modifier::AttackTactic,
            "tag" => Modifier::Tag,
            "sigma_critical" => Modifier::SigmaCritical,
            "sigma_high" => Modifier::SigmaHigh,
            "sigma_medium" => Modifier::SigmaMedium,
            "sigma_low" => Modifier::SigmaLow,
            "fs" | "first_seen" | "first_submission_date" => Modifier::FirstSeen,
            "ls" | "last_seen" | "last_submission_date" => Modifier::LastSeen,
            _ => return None,
        })
    }

    /// The canonical (British) name.
    pub fn name(self) -> &'static str {
        match self {
            Modifier::Behaviour => "behaviour",
            Modifier::Files => "behaviour_files",
            Modifier::Processes => "behaviour_processes",
            Modifier::CreatedProcesses => "behaviour_created_processes",
            Modifier::InjectedProcesses => "behaviour_injected_processes",
            Modifier::CommandExecutions => "behaviour_command_executions",
            Modifier::Network => "behaviour_network",
            Modifier::Registry => "behaviour_registry",
            Modifier::Services => "behaviour_services",
            Modifier::Signature => "behaviour_signature",
            Modifier::BehaviourTags => "behaviour_tags",
            Modifier::Behash => "behash",
            Modifier::SandboxName => "sandbox_name",
            Modifier::SigmaRule => "sigma_rule",
            Modifier::AttackTechnique => "attack_technique",
            Modifier::AttackTactic => "attack_tactic",
            Modifier::Tag => "tag",
            Modifier::Sha256 => "sha256",
            Modifier::SigmaCritical => "sigma_critical",
            Modifier::SigmaHigh => "sigma_high",
            Modifier::SigmaMedium => "sigma_medium",
            Modifier::SigmaLow => "sigma_low",
            Modifier::FirstSeen => "fs",
            Modifier::LastSeen => "ls",
        }
    }

    pub fn kind(self) -> ValueKind {
        use Modifier::*;
        match self {
            Behaviour | Files | Processes | CreatedProcesses | InjectedProcesses
            | CommandExecutions | Network | Registry | Services | Signature => ValueKind::Text,
            BehaviourTags | Behash | SandboxName | SigmaRule | AttackTechnique | AttackTactic
            | Tag | Sha256 => ValueKind::Token,
            SigmaCritical | SigmaHigh | SigmaMedium | SigmaLow => ValueKind::Count,
            FirstSeen | LastSeen => ValueKind::Date,
        }
    }
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

    pub fn matches(self, t: i64, now: i64) -> bool {
        let (lo, hi) = self.bounds(now);
        lo.is_none_or(|lo| t >= lo) && hi.is_none_or(|hi| t < hi)
    }
}
