//! The ingest pipeline: one input (a Sysmon log in any format, or a CAPE/Cuckoo report) to the
//! behaviour reports it yields, ready for the store.
//!
//! - A Sysmon log gives one `Microsoft Sysinternals` report, built by `sandscope-report`, with
//!   the Sigma hits and ATT&CK techniques of the resident `sandscope-sigma` engine.
//! - A CAPE or Cuckoo report gives its own report (`CAPE Sandbox` / `Cuckoo Sandbox`) and, when
//!   it embeds the guest's Sysmon events, a `Microsoft Sysinternals` report of the same sample,
//!   so one CAPE run lands as two sandbox reports under one SHA-256.
//!
//! The CLI's `ingest`/`report` and the server's upload endpoint all go through here, so a file
//! becomes the same reports whichever door it came in by. This crate decides nothing about
//! storage (that is `sandscope-store`) and parses no format itself (that is `sandscope-read` and
//! `sandscope-cape`).

use sandscope_event::SysmonEvent;
use sandscope_model::{FileBehaviour, MitreAttackTechnique, behaviour_id};
use sandscope_read::ReadWarning;
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

/// The reports one input yields, and the damage seen while reading it.
#[derive(Debug, Default)]
pub struct Prepared {
    pub reports: Vec<NewReport>,
    pub warnings: Vec<ReadWarning>,
    /// Decisions the report builder took (which sample, which id), for the user.
    pub notes: Vec<String>,
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
        let sha256 = match &options.sha256 {
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
        let mut sysmon_files = Vec::new();
        for file in files {
            if sandscope_cape::looks_like_report_file(file) {
                self.prepare_sandbox_report(file, sha256.as_deref(), options, &mut prepared)?;
            } else {
                sysmon_files.push(file.clone());
            }
        }
        if !sysmon_files.is_empty() {
            let mut events = Vec::new();
            for file in &sysmon_files {
                let out = sandscope_read::read_all(file)?;
                prepared.warnings.extend(out.warnings);
                events.extend(out.events);
            }
            let report = self.sysmon_report(
                &events,
                &sysmon_files,
                sha256.clone(),
                options,
                &mut prepared,
            )?;
            prepared.reports.push(report);
        }
        Ok(prepared)
    }

    /// A CAPE/Cuckoo report, plus the Sysinternals report of its embedded Sysmon events.
    fn prepare_sandbox_report(
        &self,
        file: &Path,
        sha256: Option<&str>,
        options: &IngestOptions,
        prepared: &mut Prepared,
    ) -> Result<(), IngestError> {
        let info = sandscope_cape::inspect(file)?;
        let mut behaviour = sandscope_cape::import(file)?;
        let sample = sha256.map(str::to_string).or(info.sample_sha256.clone());
        let sample = match sample {
            Some(s) => s,
            None => file_sha256(file)?,
        };
        behaviour.id = behaviour_id(&sample, &behaviour.attributes.sandbox_name);
        prepared.reports.push(NewReport {
            behaviour,
            raw_log: Some(raw_log_of(file)),
        });
        if info.sysmon_events.unwrap_or(0) > 0 {
            let out = sandscope_read::read_all(file)?;
            prepared.warnings.extend(out.warnings);
            if !out.events.is_empty() {
                let report = self.sysmon_report(
                    &out.events,
                    &[file.to_path_buf()],
                    Some(sample),
                    options,
                    prepared,
                )?;
                prepared.reports.push(report);
            }
        }
        Ok(())
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
