//! The modifier table: every modifier Sandscope answers, its names, the kind of value it takes
//! and one line of help. The parser resolves names through it and the web UI's query help is
//! generated from it (served as JSON), so the help lists exactly what the parser accepts.
//!
//! Which report fields a `behaviour*` modifier covers is not here: the model's attribute table
//! names, for each attribute, the modifiers that cover it (checked against this table by this
//! crate's tests).

use crate::ast::{Modifier, ValueKind};
use serde::Serialize;

/// One modifier as the query language writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModifierSpec {
    #[serde(skip)]
    pub modifier: Modifier,
    /// The canonical (British) name.
    pub name: &'static str,
    /// Other accepted names (the American `behavior*` spellings are accepted for every
    /// `behaviour*` name without being listed).
    pub aliases: &'static [&'static str],
    pub kind: ValueKind,
    /// False for the one modifier never written (a bare SHA-256 is a lookup of the sample).
    pub written: bool,
    pub help: &'static str,
    pub example: &'static str,
}

const fn spec(
    modifier: Modifier,
    name: &'static str,
    kind: ValueKind,
    help: &'static str,
    example: &'static str,
) -> ModifierSpec {
    ModifierSpec {
        modifier,
        name,
        aliases: &[],
        kind,
        written: true,
        help,
        example,
    }
}

/// Every modifier, in the order the help lists them.
pub const MODIFIERS: &[ModifierSpec] = &[
    spec(
        Modifier::Behaviour,
        "behaviour",
        ValueKind::Text,
        "any text of any behaviour report (a bare word means the same)",
        "behaviour:vssadmin",
    ),
    spec(
        Modifier::Files,
        "behaviour_files",
        ValueKind::Text,
        "files opened, written, deleted, changed, dropped (path and SHA-256) or copied",
        "behaviour_files:@tutanota.com",
    ),
    spec(
        Modifier::Processes,
        "behaviour_processes",
        ValueKind::Text,
        "processes created, terminated, killed, injected, the process tree and command lines",
        "behaviour_processes:sihost32.exe",
    ),
    spec(
        Modifier::CreatedProcesses,
        "behaviour_created_processes",
        ValueKind::Text,
        "processes created",
        "behaviour_created_processes:powershell.exe",
    ),
    spec(
        Modifier::InjectedProcesses,
        "behaviour_injected_processes",
        ValueKind::Text,
        "processes injected into",
        "behaviour_injected_processes:explorer.exe",
    ),
    spec(
        Modifier::CommandExecutions,
        "behaviour_command_executions",
        ValueKind::Text,
        "command lines",
        "behaviour_command_executions:\"delete shadows\"",
    ),
    spec(
        Modifier::Network,
        "behaviour_network",
        ValueKind::Text,
        "DNS names and answers, contacted IPs (and ip:port), URLs",
        "behaviour_network:mail.tutanota.com",
    ),
    spec(
        Modifier::Registry,
        "behaviour_registry",
        ValueKind::Text,
        "registry keys opened, set (key and data) or deleted",
        "behaviour_registry:CurrentVersion\\Run",
    ),
    spec(
        Modifier::Services,
        "behaviour_services",
        ValueKind::Text,
        "services opened, created, started, stopped, deleted, and the binaries of created services",
        "behaviour_services:PSEXESVC",
    ),
    spec(
        Modifier::Signature,
        "behaviour_signature",
        ValueKind::Text,
        "sandbox signature names and descriptions",
        "behaviour_signature:\"antivm\"",
    ),
    ModifierSpec {
        aliases: &["behaviour_tag"],
        ..spec(
            Modifier::BehaviourTags,
            "behaviour_tags",
            ValueKind::Token,
            "behaviour tags (whole tag, `*` wildcard)",
            "behaviour_tags:detect_debug_environment",
        )
    },
    spec(
        Modifier::Behash,
        "behash",
        ValueKind::Token,
        "behaviour hash",
        "behash:9c0b9e5e1f6a8f3c2d7e4b1a0f9e8d7c",
    ),
    spec(
        Modifier::SandboxName,
        "sandbox_name",
        ValueKind::Token,
        "sandbox name as a slug or any one word of it",
        "sandbox_name:cape_sandbox",
    ),
    spec(
        Modifier::SigmaRule,
        "sigma_rule",
        ValueKind::Token,
        "id of a Sigma rule that matched",
        "sigma_rule:36e037c4-c228-4866-b6a3-48eb292b9955",
    ),
    spec(
        Modifier::AttackTechnique,
        "attack_technique",
        ValueKind::Token,
        "MITRE ATT&CK technique id",
        "attack_technique:T1490",
    ),
    spec(
        Modifier::AttackTactic,
        "attack_tactic",
        ValueKind::Token,
        "MITRE ATT&CK tactic id found in a technique's references",
        "attack_tactic:TA0005",
    ),
    spec(
        Modifier::Tag,
        "tag",
        ValueKind::Token,
        "the behaviour tags (file tags are not available)",
        "tag:persistence",
    ),
    ModifierSpec {
        written: false,
        ..spec(
            Modifier::Sha256,
            "sha256",
            ValueKind::Token,
            "a bare SHA-256 finds the sample itself",
            "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2",
        )
    },
    spec(
        Modifier::SigmaCritical,
        "sigma_critical",
        ValueKind::Count,
        "number of distinct critical Sigma rules matched (N, N+ at least, N- fewer than)",
        "sigma_critical:1+",
    ),
    spec(
        Modifier::SigmaHigh,
        "sigma_high",
        ValueKind::Count,
        "number of distinct high Sigma rules matched",
        "sigma_high:2+",
    ),
    spec(
        Modifier::SigmaMedium,
        "sigma_medium",
        ValueKind::Count,
        "number of distinct medium Sigma rules matched",
        "sigma_medium:1+",
    ),
    spec(
        Modifier::SigmaLow,
        "sigma_low",
        ValueKind::Count,
        "number of distinct low Sigma rules matched",
        "sigma_low:0",
    ),
    ModifierSpec {
        aliases: &["first_seen", "first_submission_date"],
        ..spec(
            Modifier::FirstSeen,
            "fs",
            ValueKind::Date,
            "earliest analysis date (YYYY-MM-DD, a timestamp or Nd; + at or after, - before)",
            "fs:2024-01-01+",
        )
    },
    ModifierSpec {
        aliases: &["last_seen", "last_submission_date"],
        ..spec(
            Modifier::LastSeen,
            "ls",
            ValueKind::Date,
            "latest analysis date",
            "ls:7d+",
        )
    },
];

impl Modifier {
    /// This modifier's row of [`MODIFIERS`].
    pub fn spec(self) -> &'static ModifierSpec {
        // Every variant has a row (tested), so the fallback is never taken.
        MODIFIERS
            .iter()
            .find(|s| s.modifier == self)
            .unwrap_or(&MODIFIERS[0])
    }

    /// Resolve a modifier name as written (any case; British or American spelling).
    pub fn from_name(name: &str) -> Option<Modifier> {
        let lower = name.to_ascii_lowercase();
        let name = match lower.strip_prefix("behavior") {
            Some(rest) => format!("behaviour{rest}"),
            None => lower,
        };
        MODIFIERS
            .iter()
            .filter(|s| s.written)
            .find(|s| s.name == name || s.aliases.contains(&name.as_str()))
            .map(|s| s.modifier)
    }

    /// The canonical (British) name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn kind(self) -> ValueKind {
        self.spec().kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_modifier_has_one_row_and_names_are_unique() {
        let modifiers: HashSet<Modifier> = MODIFIERS.iter().map(|s| s.modifier).collect();
        assert_eq!(modifiers.len(), MODIFIERS.len(), "one row per modifier");
        let mut names = HashSet::new();
        for spec in MODIFIERS {
            assert_eq!(spec.modifier.spec(), spec);
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(names.insert(*name), "{name} twice");
            }
        }
    }

    #[test]
    fn every_written_name_and_alias_parses_back_and_examples_parse() {
        for spec in MODIFIERS.iter().filter(|s| s.written) {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert_eq!(Modifier::from_name(name), Some(spec.modifier), "{name}");
                let american = name.replace("behaviour", "behavior");
                assert_eq!(Modifier::from_name(&american), Some(spec.modifier));
            }
        }
        assert_eq!(Modifier::from_name("sha256"), None);
        for spec in MODIFIERS {
            let query =
                crate::parse(spec.example).unwrap_or_else(|e| panic!("{}: {e}", spec.example));
            let crate::Query::Term(term) = query else {
                panic!("{} is one term", spec.example)
            };
            assert_eq!(term.modifier, spec.modifier, "{}", spec.example);
        }
    }
}
