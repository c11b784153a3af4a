//! The `hunting_notification` record, its VirusTotal shapes (the notification object and the
//! `hunting_notification_files` file object with `context_attributes`) and the list filter.

use crate::error::{HuntingError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One rule of one ruleset matching one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: u64,
    /// Unix seconds.
    pub date: i64,
    pub ruleset_id: u64,
    pub ruleset_name: String,
    pub rule_name: String,
    pub rule_tags: Vec<String>,
    pub snippet: String,
    pub sha256: String,
}

impl Notification {
    /// VirusTotal's notification `tags`: the ruleset name, the rule name and the SHA-256.
    pub fn tags(&self) -> Vec<String> {
        vec![
            self.ruleset_name.to_lowercase(),
            self.rule_name.to_lowercase(),
            self.sha256.clone(),
        ]
    }

    /// The `hunting_notification` object.
    pub fn to_object(&self) -> Value {
        json!({
            "type": "hunting_notification",
            "id": self.id.to_string(),
            "attributes": {
                "date": self.date,
                "rule_name": self.rule_name,
                "rule_tags": self.rule_tags,
                "snippet": self.snippet,
                "tags": self.tags(),
                "match_in_subfile": false,
                "source_country": "",
                "source_key": "",
                "ruleset_id": self.ruleset_id.to_string(),
                "ruleset_name": self.ruleset_name,
                "sha256": self.sha256,
            },
        })
    }

    /// The matched sample as a `file` object with the notification as `context_attributes`.
    pub fn to_file_object(&self) -> Value {
        json!({
            "type": "file",
            "id": self.sha256,
            "attributes": { "sha256": self.sha256 },
            "context_attributes": {
                "notification_id": self.id.to_string(),
                "notification_date": self.date,
                "ruleset_id": self.ruleset_id.to_string(),
                "ruleset_name": self.ruleset_name,
                "rule_name": self.rule_name,
                "rule_tags": self.rule_tags,
                "notification_snippet": self.snippet,
                "notification_tags": self.tags(),
                "notification_source_key": "",
                "notification_source_country": "",
                "match_in_subfile": false,
            },
        })
    }
}

/// Which notifications a list or delete covers: every condition given must hold. Written
/// `key:value` words, as VirusTotal's `filter` parameter: `ruleset_id:`, `ruleset_name:`,
/// `rule_name:`, `tag:` (one of the notification's tags), `sha256:`, `date:N+` / `date:N-`
/// (Unix seconds: at or after / before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub ruleset_id: Option<u64>,
    pub ruleset_name: Option<String>,
    pub rule_name: Option<String>,
    pub tag: Option<String>,
    pub sha256: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
}

impl NotificationFilter {
    pub fn parse(text: &str) -> Result<NotificationFilter> {
        let mut filter = NotificationFilter::default();
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once(':') else {
                // A bare word is a tag, as VirusTotal's own `filter=<rule name>`.
                filter.tag = Some(word.to_lowercase());
                continue;
            };
            let bad = || HuntingError::Invalid(format!("filter: bad value in `{word}`"));
            match key {
                "ruleset_id" | "ruleset" => {
                    filter.ruleset_id = Some(value.parse().map_err(|_| bad())?)
                }
                "ruleset_name" => filter.ruleset_name = Some(value.to_lowercase()),
                "rule_name" | "rule" => filter.rule_name = Some(value.to_lowercase()),
                "tag" => filter.tag = Some(value.to_lowercase()),
                "sha256" => filter.sha256 = Some(value.to_lowercase()),
                "date" => {
                    if let Some(n) = value.strip_suffix('+') {
                        filter.since = Some(n.parse().map_err(|_| bad())?);
                    } else if let Some(n) = value.strip_suffix('-') {
                        filter.before = Some(n.parse().map_err(|_| bad())?);
                    } else {
                        return Err(bad());
                    }
                }
                _ => {
                    return Err(HuntingError::Invalid(format!(
                        "filter: unknown key `{}` (use ruleset_id, ruleset_name, rule_name, tag, sha256 or date)",
                        key.chars().take(50).collect::<String>()
                    )));
                }
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, n: &Notification) -> bool {
        self.ruleset_id.is_none_or(|id| id == n.ruleset_id)
            && self
                .ruleset_name
                .as_ref()
                .is_none_or(|v| n.ruleset_name.to_lowercase() == *v)
            && self
                .rule_name
                .as_ref()
                .is_none_or(|v| n.rule_name.to_lowercase() == *v)
            && self.tag.as_ref().is_none_or(|t| {
                n.tags().contains(t) || n.rule_tags.iter().any(|r| r.to_lowercase() == *t)
            })
            && self.sha256.as_ref().is_none_or(|s| n.sha256 == *s)
            && self.since.is_none_or(|t| n.date >= t)
            && self.before.is_none_or(|t| n.date < t)
    }
}
