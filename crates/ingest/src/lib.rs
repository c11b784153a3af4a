//! The ingest pipeline: inputs (Sysmon logs in any format, CAPE/Cuckoo reports, whole CAPE run
//! folders) to the behaviour reports they yield, ready for the store.
//!
//! - [`plan`] groups the inputs into detonations: each CAPE/Cuckoo run folder is one (its
//!   Sysmon logs are the report's target's; its other files are the sandbox's artefacts), every
//!   other file is one on its own, or everything is one when the caller names the sample.
//! - A detonation gives one report per sandbox: a CAPE or Cuckoo report its own (`CAPE
//!   Sandbox` / `Cuckoo Sandbox`), and the Sysmon events one `Microsoft Sysinternals` report,
//!   built by `sandscope-report` with the Sigma hits and ATT&CK techniques of the resident
//!   `sandscope-sigma` engine. When a run has both the guest's Sysmon log and the report's
//!   embedded `sysmon` array, the one holding more events is used (the log on a tie) and a
//!   note says which, so one CAPE run lands as exactly two reports under one SHA-256.
//!
//! Hostile input ends in an error, never an out-of-memory kill: a detonation's events are held
//! de-duplicated as they are read (a flood of one repeated event costs one event) within
//! [`IngestLimits`] — a memory budget for the distinct events, past which reading stops with
//! [`IngestError::MemoryBudget`], and decompression budgets per input and, for a server,
//! shared by the ingests running at once. [`IngestError::is_input_fault`] tells the input's
//! faults (the caller's to fix) from this machine's (disk full, permissions).
//!
//! The CLI's `ingest`/`report` and the server's upload endpoint all go through here, so a file
//! becomes the same reports whichever door it came in by. This crate decides nothing about
//! storage (that is `sandscope-store`) and parses no format itself (that is `sandscope-read` and
//! `sandscope-cape`).

mod collect;
pub mod flood;
mod plan;

pub use plan::{Detonation, analysis_folder, plan};

use collect::EventCollector;
use sandscope_event::SysmonEvent;
use sandscope_hunting::{Finding, Livehunt};
use sandscope_model::{FileBehaviour, MitreAttackTechnique, behaviour_id, is_sha256};
use sandscope_read::{EventSink, Format, ReadError, ReadOptions, ReadWarning};
use sandscope_report::{ReportOptions, SampleSelector, build_report};
use sandscope_sigma::SigmaEngine;
use sandscope_store::{NewReport, RawData, RawLog, Store, StoreError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the caller knows about the sample.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// The sample's SHA-256 (`--sha256`); else from the log's root process or the CAPE target.
    pub sha256: Option<String>,
    /// Which process is the sample (`--sample`: image name or path fragment).
    pub sample: Option<String>,
    /// Overrides the sandbox name of Sysmon reports (`--sandbox`).
    pub sandbox: Option<String>,
}

/// What one ingest may spend, so that a hostile input ends in an error, not an OOM kill.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Memory for one detonation's distinct Sysmon events and what the report builder derives
    /// from them (estimated per event; repeats of one event cost nothing). Past it the ingest
    /// fails with [`IngestError::MemoryBudget`]. Default 1 GiB.
    pub memory_budget: u64,
    /// Decompression budgets (per input, and shared across concurrent ingests when the
    /// caller sets a [`sandscope_read::DecompressionPool`]).
    pub read: ReadOptions,
}

impl IngestLimits {
    /// Limits for a server taking uploads of at most `upload_limit` bytes: each upload may
    /// expand to 8 times that (at least 64 MiB, at most 4 GiB), and all uploads being ingested
    /// at once to twice an upload's share together.
    pub fn for_uploads(upload_limit: u64) -> Self {
        let per_upload = upload_limit.saturating_mul(8).clamp(64 << 20, 4 << 30);
        Self::with_decompression(per_upload, per_upload.saturating_mul(2))
    }

    /// Limits with explicit decompression budgets: `per_input` for each input, `total` for all
    /// ingests running at once through the pipeline that holds these limits.
    pub fn with_decompression(per_input: u64, total: u64) -> Self {
        Self {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            read: ReadOptions {
                max_decompressed_bytes: per_input,
                shared_decompression: Some(sandscope_read::DecompressionPool::new(total)),
                ..ReadOptions::default()
            },
        }
    }
}

/// 1 GiB: the default [`IngestLimits::memory_budget`], about 700,000 distinct events.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            read: ReadOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Read(#[from] sandscope_read::ReadError),
    #[error(transparent)]
    Cape(#[from] sandscope_cape::CapeError),
    #[error("{file}: {reason}")]
    Report {
        file: String,
        reason: sandscope_report::ReportError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a SHA-256")]
    BadSha256(String),
    /// The detonation's distinct events do not fit [`IngestLimits::memory_budget`]; reading
    /// stopped there.
    #[error(
        "{file}: too many distinct events for one report: the memory budget of {budget} bytes was spent after {held} events and reading stopped (split the log, or raise the budget)"
    )]
    MemoryBudget {
        file: String,
        budget: u64,
        held: u64,
    },
}

impl IngestError {
    /// Whether the input is at fault (hostile, damaged, too large — the caller's to fix), as
    /// opposed to this machine (disk full, permissions, a read-only file system).
    pub fn is_input_fault(&self) -> bool {
        match self {
            IngestError::Read(ReadError::Io { source, .. }) | IngestError::Io { source, .. } => {
                !is_machine_fault(source)
            }
            IngestError::Cape(e) => !std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some_and(is_machine_fault),
            _ => true,
        }
    }

    /// Whether the input expanded past a decompression budget (per input or shared).
    pub fn is_decompression_budget(&self) -> bool {
        match self {
            IngestError::Read(ReadError::Io { source, .. }) => {
                sandscope_read::is_decompression_budget(source)
            }
            _ => false,
        }
    }
}

/// Errors of this machine rather than of the input: no space, no permission, read-only or
/// failing storage, no memory.
fn is_machine_fault(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    if sandscope_read::is_decompression_budget(error) {
        // The shared budget of concurrent ingests is the server's state, not the input's.
        return sandscope_read::is_shared_decompression_budget(error);
    }
    matches!(
        error.kind(),
        StorageFull
            | PermissionDenied
            | ReadOnlyFilesystem
            | OutOfMemory
            | QuotaExceeded
            | ResourceBusy
            | FileTooLarge
    ) || matches!(error.raw_os_error(), Some(5 | 28 | 13 | 30 | 122 | 12))
}

/// The reports one detonation yields, and what was seen while reading it.
#[derive(Debug, Default)]
pub struct Prepared {
    pub reports: Vec<NewReport>,
    pub warnings: Vec<ReadWarning>,
    /// Decisions taken on the way (which sample, which id, which Sysmon source), for the user.
    pub notes: Vec<String>,
    /// Files of a run folder that are not Sysmon logs: the sandbox's artefacts, passed over.
    pub ignored: Vec<Ignored>,
    /// Files of a run folder that could not be read as logs (damaged, unreadable); the run's
    /// other reports are still built.
    pub unreadable: Vec<Unreadable>,
    /// What the Livehunt Sigma rulesets found in the Sysmon reports' events: recorded as
    /// notifications once the reports are stored ([`Pipeline::notify`]).
    pub livehunt: Vec<Finding>,
}

/// A run-folder file that is not a Sysmon log, and why it is passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub file: PathBuf,
    pub why: IgnoredWhy,
}

/// Why a run-folder file gave no report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IgnoredWhy {
    /// The analysis folder's `files.json`: the CAPE importer reads it for the dropped files.
    UploadList,
    /// Records or JSON documents, none of them a Sysmon event (another tool's results, other
    /// event channels, CAPE's ETW captures).
    NoSysmonEvents,
    /// Not an event log at all (screenshots, memory and process dumps, packet captures).
    NotALog,
}

impl std::fmt::Display for IgnoredWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IgnoredWhy::UploadList => "read by the CAPE importer for the dropped files",
            IgnoredWhy::NoSysmonEvents => "no Sysmon events, passed over",
            IgnoredWhy::NotALog => "not an event log, passed over",
        })
    }
}

/// A run-folder file that should have been a log and could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub file: PathBuf,
    pub reason: String,
}

/// A CAPE/Cuckoo report of the detonation, once imported.
struct SandboxRun {
    file: PathBuf,
    /// The SHA-256 its reports are filed under.
    sample: String,
    /// Entries of its embedded `sysmon` array.
    sysmon_entries: usize,
}

/// The Sysmon logs of a detonation, read.
#[derive(Default)]
struct Logs {
    files: Vec<PathBuf>,
    /// Distinct events (see [`collect`]).
    events: Vec<SysmonEvent>,
    /// Events read, repeats included.
    read: usize,
}

impl Logs {
    /// The collected events of `files`, or the budget's error naming the first file.
    fn collected(
        files: Vec<PathBuf>,
        collector: EventCollector,
        detonation: &Detonation,
        prepared: &mut Prepared,
    ) -> Result<Logs, IngestError> {
        let first = files
            .first()
            .map(|f| detonation.shown(f))
            .unwrap_or_default();
        collector.check(&first)?;
        prepared.notes.extend(collector.duplicates_note(&first));
        if collector.warnings_cut > 0 {
            prepared.notes.push(format!(
                "{first}: {} more warning(s) not listed",
                collector.warnings_cut
            ));
        }
        prepared.warnings.extend(collector.warnings);
        let read = collector.events.len() + collector.duplicates as usize;
        Ok(Logs {
            files,
            events: collector.events,
            read,
        })
    }
}

/// Turns input files into reports. Holds the resident Sigma engine, shared by every report,
/// and the limits every ingest through it keeps (clones share the decompression pool).
#[derive(Clone, Default)]
pub struct Pipeline {
    sigma: Option<Arc<SigmaEngine>>,
    limits: IngestLimits,
    livehunt: Option<Arc<Livehunt>>,
}

impl Pipeline {
    pub fn new(sigma: Option<Arc<SigmaEngine>>) -> Self {
        Self {
            sigma,
            limits: IngestLimits::default(),
            livehunt: None,
        }
    }

    /// The same pipeline evaluating every report against the enabled Livehunt rulesets.
    pub fn with_livehunt(mut self, livehunt: Arc<Livehunt>) -> Self {
        self.livehunt = Some(livehunt);
        self
    }

    pub fn livehunt(&self) -> Option<&Arc<Livehunt>> {
        self.livehunt.as_ref()
    }

    /// Store `reports` (of a [`Prepared`]) in the embedded `store` with the notifications of
    /// `findings` and of the query rulesets over their samples, in one transaction (see
    /// [`Livehunt::put_reports`]). Call before acknowledging the ingest; returns the report ids
    /// and how many notifications were recorded.
    pub fn put_reports(
        &self,
        store: &Store,
        reports: Vec<NewReport>,
        findings: Vec<Finding>,
    ) -> Result<(Vec<String>, usize), StoreError> {
        match &self.livehunt {
            Some(live) if live.enabled() > 0 => {
                let (ids, recorded) =
                    live.put_reports(store, reports, findings, sandscope_hunting::unix_now())?;
                Ok((ids, recorded.len()))
            }
            _ => Ok((store.put_reports(reports)?, 0)),
        }
    }

    /// Once `reports` (of a [`Prepared`]) are stored in `store`: run the query rulesets over
    /// their samples and record every finding as a notification. Call before acknowledging
    /// the ingest; returns how many notifications were recorded. On the embedded store,
    /// [`Pipeline::put_reports`] does both in one transaction.
    pub fn notify(
        &self,
        store: &dyn sandscope_hunting::RecordStore,
        findings: Vec<Finding>,
        report_ids: &[String],
    ) -> Result<usize, sandscope_hunting::HuntingError> {
        let Some(live) = &self.livehunt else {
            return Ok(0);
        };
        if live.enabled() == 0 {
            return Ok(0);
        }
        let samples: Vec<String> = report_ids
            .iter()
            .filter_map(|id| {
                sandscope_model::split_behaviour_id(id).map(|(sha, _)| sha.to_string())
            })
            .collect();
        let recorded = live.notify(store, findings, &samples, sandscope_hunting::unix_now())?;
        Ok(recorded.len())
    }

    /// The same pipeline under other limits.
    pub fn with_limits(mut self, limits: IngestLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &IngestLimits {
        &self.limits
    }

    pub fn sigma(&self) -> Option<&SigmaEngine> {
        self.sigma.as_deref()
    }

    /// The reports of `files`, taken together as one detonation (one sample).
    pub fn prepare(
        &self,
        files: &[PathBuf],
        options: &IngestOptions,
    ) -> Result<Prepared, IngestError> {
        self.prepare_detonation(&Detonation::of_files(files), options)
    }

    /// The reports of one detonation: one per sandbox. CAPE/Cuckoo reports give their own;
    /// the Sysmon events give one `Microsoft Sysinternals` report, from the detonation's
    /// Sysmon logs or from a report's embedded `sysmon` array, whichever holds more events,
    /// filed under the sandbox report's sample unless the caller named one.
    pub fn prepare_detonation(
        &self,
        detonation: &Detonation,
        options: &IngestOptions,
    ) -> Result<Prepared, IngestError> {
        let given = match &options.sha256 {
            Some(s) => {
                let s = s.trim().to_ascii_lowercase();
                if !is_sha256(&s) {
                    return Err(IngestError::BadSha256(s));
                }
                Some(s)
            }
            None => None,
        };
        let mut prepared = Prepared::default();
        let (report_files, other_files): (Vec<&PathBuf>, Vec<&PathBuf>) = detonation
            .files
            .iter()
            .partition(|f| sandscope_cape::looks_like_report_file(f));
        let runs = sandbox_reports(detonation, &report_files, given.as_deref(), &mut prepared)?;
        let limits = &self.limits;
        let logs = read_logs(
            detonation,
            &other_files,
            &report_files,
            limits,
            &mut prepared,
        )?;

        let mut samples: Vec<&str> = runs.iter().map(|r| r.sample.as_str()).collect();
        samples.sort_unstable();
        samples.dedup();
        let sample = match (given, samples.as_slice()) {
            (Some(given), _) => Some(given),
            (None, [one]) => Some(one.to_string()),
            (None, _) => None,
        };
        // Several reports embedding the same guest's log: the fullest one speaks for them.
        let embedded =
            runs.iter()
                .filter(|r| r.sysmon_entries > 0)
                .fold(None::<&SandboxRun>, |best, r| match best {
                    Some(b) if b.sysmon_entries >= r.sysmon_entries => Some(b),
                    _ => Some(r),
                });
        let source = match embedded {
            None => logs,
            Some(run) if logs.files.is_empty() => {
                read_embedded(run, detonation, limits, &mut prepared)?
            }
            Some(run) => {
                let in_report = count_sysmon_events(&run.file, &limits.read)?;
                let shown = |f: &Path| detonation.shown(f);
                let log_names = logs.files.iter().map(|f| shown(f)).collect::<Vec<_>>();
                let log_names = log_names.join(", ");
                if in_report > logs.read {
                    prepared.notes.push(format!(
                        "Sysmon report from the `sysmon` array embedded in {} ({in_report} events), the more complete of the run's two Sysmon sources ({log_names}: {} events)",
                        shown(&run.file),
                        logs.read
                    ));
                    read_embedded(run, detonation, limits, &mut prepared)?
                } else {
                    prepared.notes.push(format!(
                        "Sysmon report from {log_names} ({} events), the guest's own log; the `sysmon` array embedded in {} ({in_report} events) is not used",
                        logs.read,
                        shown(&run.file)
                    ));
                    logs
                }
            }
        };
        if !source.files.is_empty() {
            let report = self.sysmon_report(
                &source.events,
                &source.files,
                sample,
                options,
                &mut prepared,
            )?;
            prepared.reports.push(report);
        }
        keep_last_report_per_id(&mut prepared);
        Ok(prepared)
    }

    fn sysmon_report(
        &self,
        events: &[SysmonEvent],
        files: &[PathBuf],
        sha256: Option<String>,
        options: &IngestOptions,
        prepared: &mut Prepared,
    ) -> Result<NewReport, IngestError> {
        let first = files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let report_options = ReportOptions {
            sample: match &options.sample {
                Some(s) => SampleSelector::Image(s.clone()),
                None => SampleSelector::Auto,
            },
            sha256: sha256.clone(),
            ..Default::default()
        };
        let built = match build_report(events, &report_options) {
            // A trimmed single-technique log has no process that looks like a sample: an
            // analyst ingesting it wants its behaviour, so report everything it shows.
            Err(sandscope_report::ReportError::SampleNotFound(SampleSelector::Auto)) => {
                let everything = ReportOptions {
                    sample: SampleSelector::Everything,
                    ..report_options
                };
                let mut built = build_report(events, &everything);
                if let Ok(built) = &mut built {
                    built.notes.push(format!(
                        "{first}: no process looks like a sample; the report covers every event"
                    ));
                }
                built
            }
            other => other,
        }
        .map_err(|reason| IngestError::Report {
            file: first.clone(),
            reason,
        })?;
        let mut behaviour = built.behaviour;
        if let Some(engine) = &self.sigma {
            apply_sigma(&mut behaviour, engine, events, &built.attributed_events);
        }
        let livehunt = self.livehunt.as_deref().filter(|l| l.has_sigma());
        prepared.notes.extend(built.notes);
        // The builder's id: the given or root-process SHA-256, else a SHA-256 derived from the
        // log's identity, so re-ingesting the same log replaces its report.
        let sample = behaviour.sha256().to_ascii_lowercase();
        if let Some(name) = &options.sandbox {
            behaviour.attributes.sandbox_name = name.clone();
        }
        behaviour.id = behaviour_id(&sample, &behaviour.attributes.sandbox_name);
        if let Some(live) = livehunt {
            // The events the report's own Sigma results are over: the sample's.
            let findings = with_attributed(events, &built.attributed_events, |attributed| {
                live.sigma_findings(&sample, attributed)
            });
            prepared.livehunt.extend(findings);
        }
        let raw_log = files.first().map(|f| raw_log_of(f));
        Ok(NewReport { behaviour, raw_log })
    }
}

/// The CAPE/Cuckoo reports, filed under the given SHA-256, else their target's, else the
/// report file's own. Two reports of one run (CAPE writes `report.json` and `lite.json` side
/// by side) would be one report id: the larger file, the fuller report, is used.
fn sandbox_reports(
    detonation: &Detonation,
    files: &[&PathBuf],
    given: Option<&str>,
    prepared: &mut Prepared,
) -> Result<Vec<SandboxRun>, IngestError> {
    let mut runs: Vec<(SandboxRun, NewReport, u64)> = Vec::new();
    for file in files {
        let info = sandscope_cape::inspect(file.as_path())?;
        let mut behaviour = sandscope_cape::import(file.as_path())?;
        let sample = match given.map(str::to_string).or(info.sample_sha256.clone()) {
            Some(s) => s,
            None => file_sha256(file)?,
        };
        behaviour.id = behaviour_id(&sample, &behaviour.attributes.sandbox_name);
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let run = SandboxRun {
            file: file.to_path_buf(),
            sample,
            sysmon_entries: info.sysmon_events.unwrap_or(0),
        };
        let report = NewReport {
            behaviour,
            raw_log: Some(raw_log_of(file)),
        };
        let Some(kept) = runs
            .iter_mut()
            .find(|(_, r, _)| r.behaviour.id == report.behaviour.id)
        else {
            runs.push((run, report, size));
            continue;
        };
        let other = if size > kept.2 {
            std::mem::replace(kept, (run, report, size)).0.file
        } else {
            run.file
        };
        prepared.notes.push(format!(
            "{} and {} are reports of one run ({}): {} is used, the larger file",
            detonation.shown(&kept.0.file),
            detonation.shown(&other),
            kept.1.behaviour.id,
            detonation.shown(&kept.0.file),
        ));
    }
    Ok(runs
        .into_iter()
        .map(|(run, report, _)| {
            prepared.reports.push(report);
            run
        })
        .collect())
}

/// The Sysmon logs among `files`. Outside a run folder every file must be one (a failure fails
/// the detonation, as for a single input); inside, files that are not logs are the sandbox's
/// artefacts and a damaged log is set aside, so one bad file does not lose the run.
fn read_logs(
    detonation: &Detonation,
    files: &[&PathBuf],
    report_files: &[&PathBuf],
    limits: &IngestLimits,
    prepared: &mut Prepared,
) -> Result<Logs, IngestError> {
    let upload_lists: Vec<PathBuf> = report_files
        .iter()
        .filter_map(|r| plan::analysis_folder(r))
        .map(|analysis| analysis.join("files.json"))
        .collect();
    let mut collector = EventCollector::new(limits.memory_budget);
    let mut log_files = Vec::new();
    for file in files {
        if !detonation.in_run_folder(file) {
            let read = sandscope_read::read_path_with(file, &limits.read, &mut collector);
            collector.check(&detonation.shown(file))?;
            read?;
            log_files.push(file.to_path_buf());
            continue;
        }
        if upload_lists.iter().any(|u| u == *file) {
            prepared.ignored.push(Ignored {
                file: file.to_path_buf(),
                why: IgnoredWhy::UploadList,
            });
            continue;
        }
        match read_run_file(file, &limits.read, &mut collector)? {
            RunFile::Log => log_files.push(file.to_path_buf()),
            RunFile::Ignored(why) => prepared.ignored.push(Ignored {
                file: file.to_path_buf(),
                why,
            }),
            RunFile::Unreadable(reason) => prepared.unreadable.push(Unreadable {
                file: file.to_path_buf(),
                reason,
            }),
        }
    }
    Logs::collected(log_files, collector, detonation, prepared)
}

/// What a run-folder file turned out to be.
enum RunFile {
    Log,
    Ignored(IgnoredWhy),
    Unreadable(String),
}

/// Read a run-folder file into `collector`. Only faults of this machine (disk, permissions)
/// are errors; a file that is no log or is broken is a verdict on the file.
fn read_run_file(
    file: &Path,
    options: &ReadOptions,
    collector: &mut EventCollector,
) -> Result<RunFile, IngestError> {
    let events_before = collector.events.len() as u64 + collector.duplicates;
    let warnings_before = collector.warnings.len() as u64 + collector.warnings_cut;
    let result = sandscope_read::read_path_with(file, options, collector);
    collector.check(&file.display().to_string())?;
    let events = collector.events.len() as u64 + collector.duplicates + collector.over_budget
        - events_before;
    let warnings = collector.warnings.len() as u64 + collector.warnings_cut - warnings_before;
    Ok(match result {
        Ok(_) if events > 0 => RunFile::Log,
        Ok(_) if warnings == 0 => RunFile::Ignored(IgnoredWhy::NoSysmonEvents),
        Ok(_) => RunFile::Unreadable(format!(
            "damaged ({warnings} warning(s)) and no Sysmon event readable"
        )),
        // An EVTX or XML log whose every part is broken says nothing, but is still a log.
        Err(ReadError::NotAnEventLog { .. }) if warnings == 0 && !holds_event_log_format(file) => {
            RunFile::Ignored(IgnoredWhy::NotALog)
        }
        Err(e) => {
            let e = IngestError::Read(e);
            if !e.is_input_fault() {
                return Err(e);
            }
            RunFile::Unreadable(e.to_string())
        }
    })
}

/// Whether the content (through gzip) is a format that only event logs come in.
fn holds_event_log_format(file: &Path) -> bool {
    matches!(
        sandscope_read::detect_file(file),
        Ok(Format::Evtx | Format::Xml | Format::Utf16Le | Format::Utf16Be)
    )
}

/// The events of a report's embedded `sysmon` array.
fn read_embedded(
    run: &SandboxRun,
    detonation: &Detonation,
    limits: &IngestLimits,
    prepared: &mut Prepared,
) -> Result<Logs, IngestError> {
    let mut collector = EventCollector::new(limits.memory_budget);
    let read = sandscope_read::read_path_with(&run.file, &limits.read, &mut collector);
    collector.check(&detonation.shown(&run.file))?;
    read?;
    if collector.events.is_empty() && collector.over_budget == 0 {
        prepared.warnings.extend(collector.warnings);
        return Ok(Logs::default());
    }
    Logs::collected(vec![run.file.clone()], collector, detonation, prepared)
}

/// Sysmon events in a file, counted without keeping them.
fn count_sysmon_events(file: &Path, options: &ReadOptions) -> Result<usize, IngestError> {
    struct Count(usize);
    impl EventSink for Count {
        fn event(&mut self, _: SysmonEvent) {
            self.0 += 1;
        }
        fn warning(&mut self, _: ReadWarning) {}
    }
    let mut count = Count(0);
    sandscope_read::read_path_with(file, options, &mut count)?;
    Ok(count.0)
}

/// The store replaces a report by id, so two reports of one id in a batch would leave the
/// last one silently; say so, and pass on only that one.
fn keep_last_report_per_id(prepared: &mut Prepared) {
    let mut kept: Vec<NewReport> = Vec::with_capacity(prepared.reports.len());
    for report in prepared.reports.drain(..) {
        if let Some(at) = kept
            .iter()
            .position(|k| k.behaviour.id == report.behaviour.id)
        {
            prepared.notes.push(format!(
                "report {} was built twice from these inputs; the later one is kept",
                report.behaviour.id
            ));
            kept.remove(at);
        }
        kept.push(report);
    }
    prepared.reports = kept;
}

/// Add the Sigma hits, their per-level counts and the ATT&CK techniques they imply. Only the
/// events attributed to the sample (`attributed`, indices into `events`) are matched, so the
/// sandbox's own activity (log clearing, the monitor's injections) raises no hits.
pub fn apply_sigma(
    behaviour: &mut FileBehaviour,
    engine: &SigmaEngine,
    events: &[SysmonEvent],
    attributed: &[usize],
) {
    let analysis = with_attributed(events, attributed, |events| engine.analyse(events));
    let attributes = &mut behaviour.attributes;
    attributes.sigma_analysis_results = analysis.results;
    attributes.sigma_analysis_stats = Some(analysis.stats);
    for technique in analysis.techniques {
        merge_technique(&mut attributes.mitre_attack_techniques, technique);
    }
}

/// Run `work` over the events attributed to the sample (`attributed`, indices into `events`).
fn with_attributed<T>(
    events: &[SysmonEvent],
    attributed: &[usize],
    work: impl FnOnce(&[SysmonEvent]) -> T,
) -> T {
    // Usually every event is the sample's: then there is nothing to copy.
    if attributed.len() == events.len() {
        work(events)
    } else {
        let attributed: Vec<SysmonEvent> = attributed
            .iter()
            .filter_map(|&i| events.get(i).cloned())
            .collect();
        work(&attributed)
    }
}

fn merge_technique(list: &mut Vec<MitreAttackTechnique>, technique: MitreAttackTechnique) {
    if !list
        .iter()
        .any(|t| t.id == technique.id && t.signature_description == technique.signature_description)
    {
        list.push(technique);
    }
}

/// The input file kept next to its report, so the report can be rebuilt and the log served.
fn raw_log_of(file: &Path) -> RawLog {
    RawLog {
        file_name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        data: RawData::File(file.to_path_buf()),
    }
}

fn file_sha256(path: &Path) -> Result<String, IngestError> {
    let io = |source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(format!("{:x}", hasher.finalize()))
}
