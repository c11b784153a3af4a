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
//! The CLI's `ingest`/`report` and the server's upload endpoint all go through here, so a file
//! becomes the same reports whichever door it came in by. This crate decides nothing about
//! storage (that is `sandscope-store`) and parses no format itself (that is `sandscope-read` and
//! `sandscope-cape`).

mod plan;

pub use plan::{Detonation, analysis_folder, plan};

use sandscope_event::SysmonEvent;
use sandscope_model::{FileBehaviour, MitreAttackTechnique, behaviour_id};
use sandscope_read::{EventSink, Format, ReadError, ReadOutput, ReadWarning};
use sandscope_report::{ReportOptions, SampleSelector, build_report};
use sandscope_sigma::SigmaEngine;
use sandscope_store::{NewReport, RawData, RawLog, is_sha256};
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
    events: Vec<SysmonEvent>,
}

/// Turns input files into reports. Holds the resident Sigma engine, shared by every report.
#[derive(Clone, Default)]
pub struct Pipeline {
    sigma: Option<Arc<SigmaEngine>>,
}

impl Pipeline {
    pub fn new(sigma: Option<Arc<SigmaEngine>>) -> Self {
        Self { sigma }
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
        let logs = read_logs(detonation, &other_files, &report_files, &mut prepared)?;

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
            Some(run) if logs.files.is_empty() => read_embedded(run, &mut prepared)?,
            Some(run) => {
                let in_report = count_sysmon_events(&run.file)?;
                let shown = |f: &Path| detonation.shown(f);
                let log_names = logs.files.iter().map(|f| shown(f)).collect::<Vec<_>>();
                let log_names = log_names.join(", ");
                if in_report > logs.events.len() {
                    prepared.notes.push(format!(
                        "Sysmon report from the `sysmon` array embedded in {} ({in_report} events), the more complete of the run's two Sysmon sources ({log_names}: {} events)",
                        shown(&run.file),
                        logs.events.len()
                    ));
                    read_embedded(run, &mut prepared)?
                } else {
                    prepared.notes.push(format!(
                        "Sysmon report from {log_names} ({} events), the guest's own log; the `sysmon` array embedded in {} ({in_report} events) is not used",
                        logs.events.len(),
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
        prepared.notes.extend(built.notes);
        // The builder's id: the given or root-process SHA-256, else a SHA-256 derived from the
        // log's identity, so re-ingesting the same log replaces its report.
        let sample = behaviour.sha256().to_ascii_lowercase();
        if let Some(name) = &options.sandbox {
            behaviour.attributes.sandbox_name = name.clone();
        }
        behaviour.id = behaviour_id(&sample, &behaviour.attributes.sandbox_name);
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
    prepared: &mut Prepared,
) -> Result<Logs, IngestError> {
    let upload_lists: Vec<PathBuf> = report_files
        .iter()
        .filter_map(|r| plan::analysis_folder(r))
        .map(|analysis| analysis.join("files.json"))
        .collect();
    let mut logs = Logs::default();
    for file in files {
        if !detonation.in_run_folder(file) {
            let out = sandscope_read::read_all(file)?;
            prepared.warnings.extend(out.warnings);
            logs.events.extend(out.events);
            logs.files.push(file.to_path_buf());
            continue;
        }
        if upload_lists.iter().any(|u| u == *file) {
            prepared.ignored.push(Ignored {
                file: file.to_path_buf(),
                why: IgnoredWhy::UploadList,
            });
            continue;
        }
        match read_run_file(file) {
            RunFile::Log(out) => {
                prepared.warnings.extend(out.warnings);
                logs.events.extend(out.events);
                logs.files.push(file.to_path_buf());
            }
            RunFile::Ignored(why) => prepared.ignored.push(Ignored {
                file: file.to_path_buf(),
                why,
            }),
            RunFile::Unreadable { reason, warnings } => {
                prepared.warnings.extend(warnings);
                prepared.unreadable.push(Unreadable {
                    file: file.to_path_buf(),
                    reason,
                });
            }
        }
    }
    Ok(logs)
}

/// What a run-folder file turned out to be.
enum RunFile {
    Log(ReadOutput),
    Ignored(IgnoredWhy),
    Unreadable {
        reason: String,
        warnings: Vec<ReadWarning>,
    },
}

fn read_run_file(file: &Path) -> RunFile {
    let mut out = ReadOutput::default();
    match sandscope_read::read_path(file, &mut out) {
        Ok(_) if !out.events.is_empty() => RunFile::Log(out),
        Ok(_) if out.warnings.is_empty() => RunFile::Ignored(IgnoredWhy::NoSysmonEvents),
        Ok(_) => RunFile::Unreadable {
            reason: format!(
                "damaged ({} warning(s)) and no Sysmon event readable",
                out.warnings.len()
            ),
            warnings: out.warnings,
        },
        // An EVTX or XML log whose every part is broken says nothing, but is still a log.
        Err(ReadError::NotAnEventLog { .. })
            if out.warnings.is_empty() && !holds_event_log_format(file) =>
        {
            RunFile::Ignored(IgnoredWhy::NotALog)
        }
        Err(e) => RunFile::Unreadable {
            reason: e.to_string(),
            warnings: out.warnings,
        },
    }
}

/// Whether the content (through gzip) is a format that only event logs come in.
fn holds_event_log_format(file: &Path) -> bool {
    matches!(
        sandscope_read::detect_file(file),
        Ok(Format::Evtx | Format::Xml | Format::Utf16Le | Format::Utf16Be)
    )
}

/// The events of a report's embedded `sysmon` array.
fn read_embedded(run: &SandboxRun, prepared: &mut Prepared) -> Result<Logs, IngestError> {
    let out = sandscope_read::read_all(&run.file)?;
    prepared.warnings.extend(out.warnings);
    if out.events.is_empty() {
        return Ok(Logs::default());
    }
    Ok(Logs {
        files: vec![run.file.clone()],
        events: out.events,
    })
}

/// Sysmon events in a file, counted without keeping them.
fn count_sysmon_events(file: &Path) -> Result<usize, IngestError> {
    struct Count(usize);
    impl EventSink for Count {
        fn event(&mut self, _: SysmonEvent) {
            self.0 += 1;
        }
        fn warning(&mut self, _: ReadWarning) {}
    }
    let mut count = Count(0);
    sandscope_read::read_path(file, &mut count)?;
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
    let attributed: Vec<SysmonEvent> = attributed
        .iter()
        .filter_map(|&i| events.get(i).cloned())
        .collect();
    let analysis = engine.analyse(&attributed);
    let attributes = &mut behaviour.attributes;
    attributes.sigma_analysis_results = analysis.results;
    attributes.sigma_analysis_stats = Some(analysis.stats);
    for technique in analysis.techniques {
        merge_technique(&mut attributes.mitre_attack_techniques, technique);
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
