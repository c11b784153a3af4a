//! [`SysmonEvent`] seen through the evaluator's `Event` trait, without copying it.
//!
//! Fields are the `EventData` names exactly as Sysmon writes them (so `SourceProcessGUID` in
//! event 10 and `SourceProcessGuid` in event 8 stay distinct, as the rules expect), plus the
//! `System` values rules refer to: `EventID`, `Channel`, `Computer`. Every value is a string,
//! whatever the input format was; the evaluator compares numbers numerically when a rule asks
//! for a number. A field the event lacks is absent, so a selection on it does not match.

use rsigma_eval::event::{Event, EventValue};
use sandscope_event::SysmonEvent;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The decimal text of an event id, without allocating for Sysmon's own ids (this runs once
/// per event on the hot path).
fn event_id_text(id: u16) -> Cow<'static, str> {
    const SYSMON_IDS: [&str; 30] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
    ];
    match SYSMON_IDS.get(usize::from(id)) {
        Some(text) => Cow::Borrowed(text),
        None if id == 255 => Cow::Borrowed("255"),
        None => Cow::Owned(id.to_string()),
    }
}

/// Names of the `System` values exposed next to the `EventData` fields.
const SYSTEM_FIELDS: [&str; 3] = ["EventID", "Channel", "Computer"];

pub(crate) struct SigmaEvent<'a> {
    event: &'a SysmonEvent,
    event_id: Cow<'static, str>,
}

impl<'a> SigmaEvent<'a> {
    pub(crate) fn new(event: &'a SysmonEvent) -> Self {
        Self {
            event,
            event_id: event_id_text(event.event_id),
        }
    }

    fn system_value(&self, name: &str) -> Option<&str> {
        match name {
            "EventID" => Some(&self.event_id),
            "Channel" => Some(&self.event.channel),
            "Computer" => Some(&self.event.computer),
            _ => None,
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<&str> {
        self.event.get(name).or_else(|| self.system_value(name))
    }
}

impl Event for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.lookup(path).map(|v| EventValue::Str(Cow::Borrowed(v)))
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.event.data.iter().any(|(_, v)| pred(v))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.event
            .data
            .iter()
            .map(|(_, v)| Cow::Borrowed(v))
            .collect()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for (_, v) in self.event.data.iter() {
            visit(v);
        }
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        for name in SYSTEM_FIELDS {
            if let Some(v) = self.system_value(name) {
                map.insert(name.to_string(), Value::String(v.to_string()));
            }
        }
        for (k, v) in self.event.data.iter() {
            map.entry(k.to_string())
                .or_insert_with(|| Value::String(v.to_string()));
        }
        Value::Object(map)
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        let mut keys: Vec<Cow<'_, str>> = self
            .event
            .data
            .iter()
            .map(|(k, _)| Cow::Borrowed(k))
            .collect();
        keys.extend(SYSTEM_FIELDS.iter().map(|k| Cow::Borrowed(*k)));
        keys
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        Some(self.field_keys())
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        for (k, _) in self.event.data.iter() {
            visit(k);
        }
        for k in SYSTEM_FIELDS {
            visit(k);
        }
        true
    }
}
