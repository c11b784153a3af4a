//! What every reader fills in, and the one place that turns it into a [`SysmonEvent`]: channel
//! filtering, the canonical value rendering and the choice of `time`.

use crate::{EventSink, Location, ReadStats, ReadWarning};
use jiff::Timestamp;
use sandscope_event::{
    EventSource, Fields, LINUX_SYSMON_CHANNEL, SYSMON_CHANNEL, SysmonEvent, canonical_value,
    is_sysmon_channel, parse_time, truncate_to_micros,
};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// One event as a reader found it, before channel filtering.
#[derive(Debug, Default)]
pub(crate) struct EventBuilder {
    pub record_id: Option<u64>,
    pub event_id: Option<String>,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub computer: Option<String>,
    pub time_created: Option<String>,
    /// For readers whose records carry a time outside the event (the EVTX record header).
    pub fallback_time: Option<Timestamp>,
    pub data: Fields,
    /// Damage the reader recovered from (a truncated event): the event is delivered and this
    /// becomes a warning.
    pub damage: Option<String>,
}

/// What became of one record.
pub(crate) enum Outcome {
    Event(SysmonEvent),
    /// Another channel's event, counted and skipped.
    Skipped(String),
    /// A Sysmon record that lacks what an event needs.
    Invalid(String),
}

impl EventBuilder {
    /// Add an `EventData` field, value in canonical form.
    pub fn field(&mut self, name: &str, value: &str) {
        let name = name.trim();
        let value = canonical_value(name, value);
        self.data.push_str(name, &value);
    }

    /// The channel, or the Sysmon channel its provider implies when an export dropped it.
    fn effective_channel(&self) -> Option<String> {
        if let Some(c) = self
            .channel
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            return Some(c.to_string());
        }
        match self.provider.as_deref().map(str::trim) {
            Some(p) if p.eq_ignore_ascii_case("Microsoft-Windows-Sysmon") => {
                Some(SYSMON_CHANNEL.to_string())
            }
            Some(p) if p.eq_ignore_ascii_case("Linux-Sysmon") => {
                Some(LINUX_SYSMON_CHANNEL.to_string())
            }
            _ => None,
        }
    }

    /// `Some(Skipped)` when the channel already says this is not a Sysmon event, so the rest
    /// need not be decoded (the same outcome [`Self::finish`] would give).
    pub fn skipped_outcome(&self) -> Option<Outcome> {
        match self.effective_channel() {
            None => Some(Outcome::Skipped(String::from("(no channel)"))),
            Some(c) if !is_sysmon_channel(&c) => Some(Outcome::Skipped(c)),
            Some(_) => None,
        }
    }

    pub fn finish(self, file: &Arc<str>) -> Outcome {
        let Some(channel) = self.effective_channel() else {
            return Outcome::Skipped(String::from("(no channel)"));
        };
        if !is_sysmon_channel(&channel) {
            return Outcome::Skipped(channel);
        }
        let Some(event_id) = self
            .event_id
            .as_deref()
            .and_then(|e| e.trim().parse::<u16>().ok())
        else {
            return Outcome::Invalid(format!(
                "Sysmon record without a valid EventID ({:?})",
                self.event_id.unwrap_or_default()
            ));
        };
        let time_created = self
            .time_created
            .as_deref()
            .and_then(parse_time)
            .or(self.fallback_time)
            .map(truncate_to_micros);
        let Some(time) = self
            .data
            .get("UtcTime")
            .and_then(parse_time)
            .or(time_created)
        else {
            return Outcome::Invalid("Sysmon record without UtcTime or TimeCreated".into());
        };
        Outcome::Event(SysmonEvent {
            source: EventSource {
                file: file.clone(),
                record_id: self.record_id,
            },
            event_id,
            time,
            time_created,
            computer: self.computer.unwrap_or_default(),
            channel,
            data: self.data,
        })
    }
}

/// The state of one read: where events and warnings go, and the counts so far.
pub(crate) struct Ctx<'s> {
    /// The name events carry as their source (`-` for standard input, `a.zip!b.evtx` inside
    /// an archive).
    pub file: Arc<str>,
    /// The name warnings carry.
    pub path: PathBuf,
    pub sink: &'s mut dyn EventSink,
    pub stats: ReadStats,
    /// Readable records seen, of any channel (an input with none is not an event log, or is
    /// entirely damaged). Damaged records are warnings, not records.
    pub records: u64,
    /// An input of a format that may hold no record and no damage (an empty EVTX log).
    pub empty_ok: bool,
    /// Set once the sink wants no more events; streamed input stops at its next buffer.
    pub stop: Rc<Cell<bool>>,
}

impl<'s> Ctx<'s> {
    pub fn new(file: Arc<str>, path: PathBuf, sink: &'s mut dyn EventSink) -> Self {
        Ctx {
            file,
            path,
            sink,
            stats: ReadStats::default(),
            records: 0,
            empty_ok: false,
            stop: Rc::new(Cell::new(false)),
        }
    }

    pub fn warn(&mut self, location: Location, message: impl Into<String>) {
        self.stats.warnings += 1;
        self.sink.warning(ReadWarning {
            file: self.path.clone(),
            location,
            message: message.into(),
        });
    }

    pub fn event(&mut self, event: SysmonEvent) {
        self.records += 1;
        self.stats.sysmon_events += 1;
        self.sink.event(event);
        if !self.sink.wants_more() {
            self.stop.set(true);
        }
    }

    pub fn skipped(&mut self, channel: String) {
        self.records += 1;
        *self.stats.skipped_by_channel.entry(channel).or_default() += 1;
    }

    pub fn outcome(&mut self, outcome: Outcome, location: impl FnOnce() -> Location) {
        match outcome {
            Outcome::Event(e) => self.event(e),
            Outcome::Skipped(c) => self.skipped(c),
            Outcome::Invalid(reason) => self.warn(location(), reason),
        }
    }

    pub fn builder_outcome(&mut self, mut b: EventBuilder, location: impl FnOnce() -> Location) {
        let damage = b.damage.take();
        let outcome = b.finish(&self.file);
        match damage {
            Some(damage) => {
                let location = location();
                self.warn(location.clone(), damage);
                self.outcome(outcome, || location);
            }
            None => self.outcome(outcome, location),
        }
    }
}
