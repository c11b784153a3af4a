//! Holding one detonation's Sysmon events in bounded memory.
//!
//! The report builder needs a detonation's events together (attribution looks back and
//! forward), so they are held — but a log can repeat one event millions of times (a 20 MB gzip
//! of identical file-creation lines expands to gigabytes). Events are de-duplicated as they
//! arrive: an event whose content (event id, time, computer, channel and every `EventData`
//! field) equals one already held adds nothing to the report and is only counted; the record
//! id and `TimeCreated` are not content (a log that logs the same thing again gives new ones).
//! What is held is measured against the ingest's memory budget; once spent, further events are
//! dropped and the ingest fails with [`IngestError::MemoryBudget`], never an out-of-memory kill.

use crate::IngestError;
use sandscope_event::SysmonEvent;
use sandscope_read::{EventSink, ReadWarning};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

/// Warnings kept per detonation; a damaged file can warn once per line.
const MAX_WARNINGS: usize = 1_000;

/// The events of a detonation, de-duplicated, within a memory budget.
pub(crate) struct EventCollector {
    pub events: Vec<SysmonEvent>,
    pub warnings: Vec<ReadWarning>,
    /// Warnings beyond [`MAX_WARNINGS`], counted.
    pub warnings_cut: u64,
    /// Events equal in content to one already held.
    pub duplicates: u64,
    /// Events that did not fit the budget.
    pub over_budget: u64,
    seen: HashSet<u128>,
    held_bytes: u64,
    budget: u64,
    hasher: (std::hash::RandomState, std::hash::RandomState),
}

impl EventCollector {
    pub fn new(budget: u64) -> Self {
        Self {
            events: Vec::new(),
            warnings: Vec::new(),
            warnings_cut: 0,
            duplicates: 0,
            over_budget: 0,
            seen: HashSet::new(),
            held_bytes: 0,
            budget,
            hasher: (std::hash::RandomState::new(), std::hash::RandomState::new()),
        }
    }

    /// The budget's verdict for `file` (named as the user knows it): an error when events
    /// were dropped for lack of room.
    pub fn check(&self, file: &str) -> Result<(), IngestError> {
        if self.over_budget == 0 {
            return Ok(());
        }
        Err(IngestError::MemoryBudget {
            file: file.to_string(),
            budget: self.budget,
            held: self.events.len() as u64,
        })
    }

    /// A note for the user when repeats were folded.
    pub fn duplicates_note(&self, file: &str) -> Option<String> {
        (self.duplicates > 0).then(|| {
            format!(
                "{file}: {} event(s) repeat an earlier event's content exactly and were counted once ({} distinct)",
                self.duplicates,
                self.events.len()
            )
        })
    }

    fn content_key(&self, event: &SysmonEvent) -> u128 {
        let half = |state: &std::hash::RandomState| {
            let mut h = state.build_hasher();
            event.event_id.hash(&mut h);
            event.time.hash(&mut h);
            event.computer.hash(&mut h);
            event.channel.hash(&mut h);
            for (name, value) in event.data.iter() {
                name.hash(&mut h);
                value.hash(&mut h);
            }
            h.finish()
        };
        (u128::from(half(&self.hasher.0)) << 64) | u128::from(half(&self.hasher.1))
    }
}

/// Bytes one held event costs: its text and field table, its de-duplication entry, and as
/// much again for what the report builder and Sigma derive from it (process table, attribution
/// marks, normalised values, raw spellings, matches) — measured at about 2.4 times the event's
/// own size on floods of distinct file creations.
pub(crate) fn event_cost(event: &SysmonEvent) -> u64 {
    let fields: usize = event.data.iter().map(|(n, v)| n.len() + v.len() + 16).sum();
    let own = std::mem::size_of::<SysmonEvent>()
        + event.computer.len()
        + event.channel.len()
        + fields
        // The de-duplication set's entry.
        + 32;
    (own * 5 / 2) as u64
}

impl EventSink for EventCollector {
    fn event(&mut self, event: SysmonEvent) {
        let key = self.content_key(&event);
        if self.seen.contains(&key) {
            self.duplicates += 1;
            return;
        }
        let cost = event_cost(&event);
        if self.held_bytes.saturating_add(cost) > self.budget {
            self.over_budget += 1;
            return;
        }
        self.seen.insert(key);
        self.held_bytes += cost;
        self.events.push(event);
    }

    /// Once an event did not fit, reading the rest is wasted work: the ingest fails.
    fn wants_more(&self) -> bool {
        self.over_budget == 0
    }

    fn warning(&mut self, warning: ReadWarning) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        } else {
            self.warnings_cut += 1;
        }
    }
}
