//! Behaviour reports from Sysmon logs: which events belong to the sample (attribution), the
//! VirusTotal-shaped `file_behaviour` built from them, path and registry normalisation, behash,
//! and the terminal rendering.
//!
//! Input is the event stream of `sandscope-read`; output is `sandscope-model` types. This crate
//! never reads files, never runs Sigma and never touches storage.

use sandscope_event::{SysmonEvent, event_id};
use sandscope_model::{BehaviourAttributes, FileBehaviour, SYSINTERNALS_SANDBOX};

/// How the sample is chosen among the log's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SampleSelector {
    /// Detect the sample (and say which was chosen in [`BuiltReport::notes`]).
    #[default]
    Auto,
    /// A process whose image contains this name or path fragment (case-insensitive).
    Image(String),
    /// A process whose process-create `Hashes` carry this SHA-256.
    Sha256(String),
    /// The process with this ProcessGuid (any spelling).
    RootGuid(String),
    /// Report everything in the log (for trimmed single-technique logs).
    Everything,
}

/// What the builder needs besides the events.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub sample: SampleSelector,
    /// The sample's SHA-256 when known (`--sha256`); else taken from the root's `Hashes`.
    pub sha256: Option<String>,
    /// Events of a clean run of the same sandbox image; what they show is background.
    pub baseline: Vec<SysmonEvent>,
}

/// A built report and what the builder decided on the way.
#[derive(Debug, Clone)]
pub struct BuiltReport {
    pub behaviour: FileBehaviour,
    /// Human-readable decisions: which sample was chosen and why, which id was used.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no Sysmon events to build a report from")]
    NoEvents,
    #[error("no process matches the sample selector {0:?}")]
    SampleNotFound(SampleSelector),
}

/// Build the behaviour report of one detonation from its Sysmon events (in log order).
pub fn build_report(
    events: &[SysmonEvent],
    options: &ReportOptions,
) -> Result<BuiltReport, ReportError> {
    if events.is_empty() {
        return Err(ReportError::NoEvents);
    }
    let mut attributes = BehaviourAttributes {
        sandbox_name: SYSINTERNALS_SANDBOX.to_string(),
        has_evtx: true,
        ..Default::default()
    };
    attributes.analysis_date = events.iter().map(|e| e.time.as_second()).min();
    for event in events {
        if event.event_id == event_id::PROCESS_CREATE {
            if let Some(image) = event.image() {
                push_unique(&mut attributes.processes_created, image);
            }
            if let Some(cmd) = event.command_line() {
                push_unique(&mut attributes.command_executions, cmd);
            }
        }
    }
    let sha256 = options.sha256.clone().unwrap_or_else(|| "0".repeat(64));
    Ok(BuiltReport {
        behaviour: FileBehaviour::new(&sha256, attributes),
        notes: Vec::new(),
    })
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}
