//! A rule match explained for an analyst: which event, which selection, which values.

use crate::engine::RuleMatch;
use sandscope_event::SysmonEvent;
use serde::Serialize;
use std::sync::Arc;

/// One rule that matched one event, with what is needed to read it without the log.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Index of the rule in its [`crate::SigmaEngine`].
    #[serde(skip)]
    pub rule: usize,
    /// When the activity happened (RFC 3339, UTC).
    pub time: String,
    pub computer: String,
    pub file: Arc<str>,
    pub record_id: Option<u64>,
    pub event_id: u16,
    /// The named detections (selections) that matched.
    pub selections: Vec<String>,
    /// The event fields that made the selections match.
    pub matched: Vec<(String, String)>,
    /// The event's identifying fields for its event id (see [`key_fields`]).
    pub key_fields: Vec<(String, String)>,
}

impl Hit {
    pub fn new(event: &SysmonEvent, m: RuleMatch) -> Hit {
        let key_fields = key_fields(event.event_id)
            .iter()
            .filter_map(|name| Some((name.to_string(), event.value(name)?.to_string())))
            .collect();
        Hit {
            rule: m.rule,
            time: event.time.to_string(),
            computer: event.computer.clone(),
            file: event.source.file.clone(),
            record_id: event.source.record_id,
            event_id: event.event_id,
            selections: m.selections,
            matched: m.fields,
            key_fields,
        }
    }
}

/// The fields that identify what an event of this Sysmon id did.
pub fn key_fields(event_id: u16) -> &'static [&'static str] {
    match event_id {
        1 => &["Image", "CommandLine", "ParentImage", "User"],
        2 => &["Image", "TargetFilename", "CreationUtcTime"],
        3 => &[
            "Image",
            "Protocol",
            "DestinationIp",
            "DestinationPort",
            "DestinationHostname",
        ],
        4 => &["State", "Version"],
        5 => &["Image"],
        6 => &["ImageLoaded", "Signature"],
        7 => &["Image", "ImageLoaded", "Signature"],
        8 => &["SourceImage", "TargetImage", "StartModule", "StartFunction"],
        9 => &["Image", "Device"],
        10 => &["SourceImage", "TargetImage", "GrantedAccess"],
        11 => &["Image", "TargetFilename"],
        12..=14 => &["EventType", "Image", "TargetObject", "Details", "NewName"],
        15 => &["Image", "TargetFilename", "Hash"],
        16 => &["Configuration"],
        17 | 18 => &["EventType", "Image", "PipeName"],
        19..=21 => &[
            "EventType",
            "Operation",
            "Name",
            "Query",
            "Destination",
            "Consumer",
            "Filter",
        ],
        22 => &["Image", "QueryName", "QueryResults"],
        23 | 26 => &["Image", "TargetFilename"],
        24 => &["Image"],
        25 => &["Image", "Type"],
        _ => &["Image"],
    }
}
