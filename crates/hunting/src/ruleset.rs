//! The `hunting_ruleset` record: what is stored, how a create or PATCH body's attributes apply
//! to it, and its VirusTotal attributes (`rate_limited`, `rate_limited_ratio` included).

use crate::error::{HuntingError, Result};
use crate::rate::RateWindow;
use crate::rules::RuleLanguage;
use crate::webhook::WebhookStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Notifications per 24 h when a ruleset names no `limit`.
pub const DEFAULT_LIMIT: u64 = 100;
/// Highest `limit` accepted.
pub const MAX_LIMIT: u64 = 100_000;
const MAX_NAME_CHARS: usize = 256;
const MAX_LIST_ITEMS: usize = 100;
const MAX_ITEM_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;

/// A stored ruleset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    pub id: u64,
    pub name: String,
    pub rules: String,
    pub rule_language: RuleLanguage,
    pub enabled: bool,
    pub limit: u64,
    pub tags: Vec<String>,
    /// Stored and shown; no mail is sent.
    pub notification_emails: Vec<String>,
    pub webhook_url: Option<String>,
    /// Names of the rules, in order (filled when the rules compile).
    pub rule_names: Vec<String>,
    pub creation_date: i64,
    pub modification_date: i64,
    /// Notifications kept and dropped in the current 24-hour window. Kept in the ruleset's
    /// [`RulesetState`] record, not in this one (read here from records written before it).
    #[serde(default, skip_serializing)]
    pub window: RateWindow,
    /// How its webhook has fared since `webhook_url` was set (written by every process that
    /// delivers its notifications). Kept in its [`RulesetState`] record, as `window`.
    #[serde(default, skip_serializing)]
    pub webhook: WebhookStatus,
}

/// What changes about a ruleset with every notification and delivery, stored apart from its
/// definition (`RecordTable::HuntingRulesetStates`): Livehunt writes it on every notifying
/// ingest, and rewriting a ruleset's rules (kilobytes of YAML) each time cost more than
/// evaluating them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesetState {
    #[serde(default)]
    pub window: RateWindow,
    #[serde(default)]
    pub webhook: WebhookStatus,
}

impl Ruleset {
    pub fn state(&self) -> RulesetState {
        RulesetState {
            window: self.window,
            webhook: self.webhook.clone(),
        }
    }

    pub fn set_state(&mut self, state: RulesetState) {
        self.window = state.window;
        self.webhook = state.webhook;
    }
}

/// Attributes a client may not set; sent back unchanged (vt-py returns what it fetched), they
/// are ignored.
const READ_ONLY: &[&str] = &[
    "rule_names",
    "number_of_rules",
    "creation_date",
    "modification_date",
    "rate_limited",
    "rate_limited_ratio",
    "webhook_deliveries",
    "webhook_failures",
    "webhook_last_error",
];

impl Ruleset {
    /// A new ruleset from a create body's `attributes`: `name` and `rules` required.
    pub fn from_attributes(id: u64, attributes: &Map<String, Value>, now: i64) -> Result<Ruleset> {
        for required in ["name", "rules"] {
            if !attributes.contains_key(required) {
                return Err(HuntingError::Invalid(format!(
                    "attribute `{required}` is required"
                )));
            }
        }
        let mut ruleset = Ruleset {
            id,
            name: String::new(),
            rules: String::new(),
            rule_language: RuleLanguage::default(),
            enabled: true,
            limit: DEFAULT_LIMIT,
            tags: Vec::new(),
            notification_emails: Vec::new(),
            webhook_url: None,
            rule_names: Vec::new(),
            creation_date: now,
            modification_date: now,
            window: RateWindow::default(),
            webhook: WebhookStatus::default(),
        };
        ruleset.apply(attributes, now)?;
        Ok(ruleset)
    }

    /// Apply a PATCH (or create) body's `attributes`: each one named replaces the stored value.
    /// Returns whether `rules` or `rule_language` changed (then the rules must compile again).
    pub fn apply(&mut self, attributes: &Map<String, Value>, now: i64) -> Result<bool> {
        let mut rules_changed = false;
        for (key, value) in attributes {
            match key.as_str() {
                "name" => self.name = text(key, value, MAX_NAME_CHARS, false)?,
                "rules" => {
                    self.rules = string(key, value)?;
                    rules_changed = true;
                }
                "rule_language" => {
                    self.rule_language =
                        RuleLanguage::parse(&string(key, value)?).ok_or_else(|| {
                            HuntingError::Invalid(
                                "rule_language must be \"sigma\" or \"query\"".into(),
                            )
                        })?;
                    rules_changed = true;
                }
                "enabled" => {
                    self.enabled = value.as_bool().ok_or_else(|| {
                        HuntingError::Invalid("enabled must be true or false".into())
                    })?
                }
                "limit" => {
                    self.limit = value
                        .as_u64()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            HuntingError::Invalid(format!(
                                "limit must be an integer from 1 to {MAX_LIMIT}"
                            ))
                        })?
                }
                "tags" => self.tags = list(key, value)?,
                "notification_emails" => self.notification_emails = list(key, value)?,
                "webhook_url" => {
                    let url = match value {
                        Value::Null => None,
                        _ => {
                            let url = text(key, value, MAX_URL_CHARS, true)?;
                            if url.is_empty() {
                                None
                            } else if url.starts_with("http://") || url.starts_with("https://") {
                                Some(url)
                            } else {
                                return Err(HuntingError::Invalid(
                                    "webhook_url must be an http:// or https:// URL".into(),
                                ));
                            }
                        }
                    };
                    // Another receiver: its deliveries are counted from scratch.
                    if url != self.webhook_url {
                        self.webhook = WebhookStatus::default();
                    }
                    self.webhook_url = url;
                }
                "match_object_type" => {
                    if value.as_str() != Some("file") {
                        return Err(HuntingError::Invalid(
                            "match_object_type: only \"file\" is supported".into(),
                        ));
                    }
                }
                k if READ_ONLY.contains(&k) => {}
                other => {
                    return Err(HuntingError::Invalid(format!(
                        "unknown attribute `{}`",
                        other.chars().take(100).collect::<String>()
                    )));
                }
            }
        }
        if self.name.trim().is_empty() {
            return Err(HuntingError::Invalid("name must not be empty".into()));
        }
        self.modification_date = now;
        Ok(rules_changed)
    }

    /// The `hunting_ruleset` object as the API and `rulesets show` give it, with its
    /// webhook's deliveries when it has one (`webhook_failures`, `webhook_last_error`).
    pub fn to_object(&self, now: i64) -> Value {
        let mut attributes = json!({
            "name": self.name,
            "rules": self.rules,
            "rule_language": self.rule_language.as_str(),
            "enabled": self.enabled,
            "limit": self.limit,
            "tags": self.tags,
            "notification_emails": self.notification_emails,
            "rule_names": self.rule_names,
            "number_of_rules": self.rule_names.len(),
            "match_object_type": "file",
            "creation_date": self.creation_date,
            "modification_date": self.modification_date,
            "rate_limited": self.window.rate_limited(now),
            "rate_limited_ratio": self.window.rate_limited_ratio(now),
        });
        if let (Some(url), Some(map)) = (&self.webhook_url, attributes.as_object_mut()) {
            map.insert("webhook_url".into(), json!(url));
            let status = &self.webhook;
            map.insert("webhook_deliveries".into(), json!(status.delivered));
            map.insert("webhook_failures".into(), json!(status.failures));
            if let Some(error) = &status.last_error {
                map.insert("webhook_last_error".into(), json!(error));
            }
        }
        json!({ "type": "hunting_ruleset", "id": self.id.to_string(), "attributes": attributes })
    }
}

fn string(key: &str, value: &Value) -> Result<String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| HuntingError::Invalid(format!("{key} must be a string")))
}

fn text(key: &str, value: &Value, max: usize, allow_empty: bool) -> Result<String> {
    let s = string(key, value)?;
    if s.chars().count() > max {
        return Err(HuntingError::Invalid(format!(
            "{key} longer than {max} characters"
        )));
    }
    if !allow_empty && s.trim().is_empty() {
        return Err(HuntingError::Invalid(format!("{key} must not be empty")));
    }
    Ok(s)
}

fn list(key: &str, value: &Value) -> Result<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| HuntingError::Invalid(format!("{key} must be a list of strings")))?;
    if items.len() > MAX_LIST_ITEMS {
        return Err(HuntingError::Invalid(format!(
            "{key}: more than {MAX_LIST_ITEMS} items"
        )));
    }
    items
        .iter()
        .map(|item| text(key, item, MAX_ITEM_CHARS, false))
        .collect()
}
