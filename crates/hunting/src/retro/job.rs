//! The `retrohunt_job` record and its matches: what is stored, how a create body's attributes
//! make one, and their VirusTotal shapes. Dates are integers and absent until known (vt-py
//! turns every `*_date` into a datetime).

use super::scan::TimeRange;
use crate::error::{HuntingError, Result};
use crate::rules::{MAX_RULES_BYTES, RuleLanguage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A job's state, VirusTotal's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Starting,
    Running,
    Aborting,
    Aborted,
    Finished,
}

impl JobStatus {
    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Aborted | JobStatus::Finished)
    }
}

/// The prefix of a job's API id: vt-cli keeps only `\w+-\d+` job ids.
const ID_PREFIX: &str = "sandscope-";

/// A stored Retrohunt job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrohuntJob {
    pub id: u64,
    pub rules: String,
    pub rule_language: RuleLanguage,
    pub time_range: TimeRange,
    pub status: JobStatus,
    pub creation_date: i64,
    pub start_date: Option<i64>,
    pub finish_date: Option<i64>,
    /// Detonations stored when the job started (the progress denominator).
    pub total: u64,
    /// Detonations covered so far (hunted or out of range).
    pub scanned: u64,
    pub scanned_bytes: u64,
    /// Events evaluated.
    pub scanned_events: u64,
    pub num_matches: u64,
    /// Resume after this report id (the last complete page).
    pub checkpoint: Option<String>,
    /// Seconds this run (since the start or the last resume) has taken so far, and how many
    /// detonations were covered when it began: the pace the ETA is reckoned from.
    pub run_seconds: i64,
    pub run_from: u64,
    /// Why the job was aborted, when not by a client.
    pub error: Option<String>,
    /// Times the job was resumed after a server restart.
    pub resumed: u32,
    /// Ranges the job is split into for workers (see `ranges`); 0 for a job run in-process.
    #[serde(default)]
    pub ranges: u32,
    /// On a store several servers share: the process running the job, and when it last said
    /// so (Unix seconds; see `lease`).
    #[serde(default)]
    pub runner: Option<String>,
    #[serde(default)]
    pub heartbeat: i64,
}

impl RetrohuntJob {
    /// A new queued job from a create body's `attributes`: `rules` required; `rule_language`
    /// (`sigma`, default, or `query`) and `time_range {start, end}` optional.
    pub fn from_attributes(attributes: &Map<String, Value>, now: i64) -> Result<RetrohuntJob> {
        let rules = attributes
            .get("rules")
            .ok_or_else(|| HuntingError::Invalid("attribute `rules` is required".into()))?
            .as_str()
            .ok_or_else(|| HuntingError::Invalid("rules must be a string".into()))?;
        if rules.len() > MAX_RULES_BYTES {
            return Err(HuntingError::Invalid(format!(
                "rules: {} bytes, more than the limit of {MAX_RULES_BYTES}",
                rules.len()
            )));
        }
        let rule_language = match attributes.get("rule_language") {
            None | Some(Value::Null) => RuleLanguage::default(),
            Some(v) => v.as_str().and_then(RuleLanguage::parse).ok_or_else(|| {
                HuntingError::Invalid("rule_language must be \"sigma\" or \"query\"".into())
            })?,
        };
        let time_range = match attributes.get("time_range") {
            None | Some(Value::Null) => TimeRange::default(),
            Some(v) => time_range(v)?,
        };
        Ok(RetrohuntJob {
            id: 0,
            rules: rules.to_string(),
            rule_language,
            time_range,
            status: JobStatus::Queued,
            creation_date: now,
            start_date: None,
            finish_date: None,
            total: 0,
            scanned: 0,
            scanned_bytes: 0,
            scanned_events: 0,
            num_matches: 0,
            checkpoint: None,
            run_seconds: 0,
            run_from: 0,
            error: None,
            resumed: 0,
            ranges: 0,
            runner: None,
            heartbeat: 0,
        })
    }

    /// The API id, `sandscope-<n>`.
    pub fn api_id(&self) -> String {
        format!("{ID_PREFIX}{}", self.id)
    }

    /// A job id from the API (`sandscope-<n>`, or the bare number).
    pub fn parse_api_id(text: &str) -> Option<u64> {
        text.strip_prefix(ID_PREFIX).unwrap_or(text).parse().ok()
    }

    /// Percent done.
    pub fn progress(&self) -> f64 {
        match self.status {
            JobStatus::Finished => 100.0,
            _ if self.total == 0 => 0.0,
            _ => (self.scanned as f64 * 100.0 / self.total as f64).min(100.0),
        }
    }

    /// Seconds left at the pace so far; `None` before any progress.
    pub fn eta_seconds(&self) -> Option<i64> {
        let done = self.scanned.saturating_sub(self.run_from);
        if self.status != JobStatus::Running || done == 0 {
            return None;
        }
        let left = self.total.saturating_sub(self.scanned);
        Some((self.run_seconds.max(0) as f64 * left as f64 / done as f64).ceil() as i64)
    }

    pub fn to_object(&self) -> Value {
        let mut attributes = json!({
            "rules": self.rules,
            "rule_language": self.rule_language.as_str(),
            "status": self.status,
            "progress": self.progress(),
            "scanned_bytes": self.scanned_bytes,
            "scanned_detonations": self.scanned,
            "scanned_events": self.scanned_events,
            "num_matches": self.num_matches,
            "num_matches_outside_time_range": 0,
            "corpus": "main",
            "creation_date": self.creation_date,
            "resumed": self.resumed,
        });
        if let Some(map) = attributes.as_object_mut() {
            let optional = [
                ("start_date", self.start_date.map(Value::from)),
                ("finish_date", self.finish_date.map(Value::from)),
                ("eta_seconds", self.eta_seconds().map(Value::from)),
                ("error", self.error.clone().map(Value::from)),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    map.insert(key.into(), value);
                }
            }
            if !self.time_range.is_all() {
                map.insert("time_range".into(), json!(self.time_range));
            }
        }
        json!({ "type": "retrohunt_job", "id": self.api_id(), "attributes": attributes })
    }
}

fn time_range(value: &Value) -> Result<TimeRange> {
    let object = value.as_object().ok_or_else(|| {
        HuntingError::Invalid("time_range must be {\"start\": …, \"end\": …}".into())
    })?;
    let bound = |key: &str| -> Result<Option<i64>> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                HuntingError::Invalid(format!("time_range.{key} must be Unix seconds"))
            }),
        }
    };
    let range = TimeRange {
        start: bound("start")?,
        end: bound("end")?,
    };
    if let (Some(s), Some(e)) = (range.start, range.end)
        && s > e
    {
        return Err(HuntingError::Invalid(
            "time_range: start is after end".into(),
        ));
    }
    Ok(range)
}

/// One rule that matched one detonation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrohuntMatch {
    pub sha256: String,
    /// The report whose log (Sigma) or the sample (query) matched.
    pub report_id: String,
    pub rule_name: String,
    pub rule_tags: Vec<String>,
    /// Events that matched the rule in the log (1 for a query).
    pub hits: u64,
    pub snippet: String,
    pub date: i64,
}

impl RetrohuntMatch {
    /// A `file` object with the match in `context_attributes`.
    pub fn to_file_object(&self, job: &RetrohuntJob) -> Value {
        json!({
            "type": "file",
            "id": self.sha256,
            "attributes": { "sha256": self.sha256 },
            "context_attributes": {
                "retrohunt_job_id": job.api_id(),
                "rule_name": self.rule_name,
                "rule_tags": self.rule_tags,
                "match_snippet": self.snippet,
                "match_date": self.date,
                "behaviour_id": self.report_id,
                "hits": self.hits,
                "match_in_subfile": false,
            },
        })
    }
}
