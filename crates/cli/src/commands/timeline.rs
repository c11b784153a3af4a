//! `sandscope timeline LOGS…|--sample SHA256`: every Sysmon event and every Sigma hit as one
//! timeline line, sorted by time, for Timesketch (`timesketch_importer`) or any JSONL/CSV
//! reader. Lines come from `sandscope-export`'s timeline module; the logs are streamed through
//! `sandscope-read` and the hits come from the same Sigma engine `hunt` builds.

use super::hunt::{RuleArgs, log_files};
use super::ingest::data_dir;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sandscope_event::SysmonEvent;
use sandscope_export::ExportError;
use sandscope_export::timeline::{
    DEFAULT_LINES_IN_MEMORY, SigmaHitInfo, TimelineFormat, TimelineSorter, TimelineWriter,
    event_line, hit_line,
};
use sandscope_model::{CAPE_SANDBOX, CUCKOO_SANDBOX};
use sandscope_read::{EventSink, ReadWarning, read_bytes, read_path};
use sandscope_sigma::{Level, SigmaEngine};
use sandscope_store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Timesketch's JSONL import format.
    Timesketch,
    /// CSV with a header line (Timesketch imports it too).
    Csv,
    /// JSON lines.
    Jsonl,
}

#[derive(Args)]
pub struct TimelineArgs {
    /// Sysmon logs: files, or folders walked recursively.
    #[arg(required_unless_present = "sample", conflicts_with = "sample")]
    pub logs: Vec<PathBuf>,
    /// The stored logs of this sample (from the data directory).
    #[arg(long)]
    pub sample: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Timesketch)]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// No Sigma hit lines (events only; skips loading the rules).
    #[arg(long)]
    pub no_sigma: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Lines held in memory before a sorted run is spilled to a temporary file.
    #[arg(long, default_value_t = DEFAULT_LINES_IN_MEMORY, hide = true)]
    pub lines_in_memory: usize,
    /// Data directory, for --sample (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Events are evaluated in batches of this many, as `hunt` does.
const BATCH: usize = 4096;

/// Turns the events of a log into timeline lines (and hit lines) as they stream by.
struct TimelineSink<'a> {
    engine: Option<&'a SigmaEngine>,
    sorter: TimelineSorter,
    batch: Vec<SysmonEvent>,
    warnings: usize,
    events: u64,
    hits: u64,
    error: Option<ExportError>,
}

impl TimelineSink<'_> {
    fn flush(&mut self) {
        if self.error.is_some() {
            self.batch.clear();
            return;
        }
        let matches = match self.engine {
            Some(engine) => engine.evaluate_all(&self.batch),
            None => Vec::new(),
        };
        let mut matches = matches.into_iter().peekable();
        for (i, event) in self.batch.iter().enumerate() {
            let mut push = |line| {
                if let Err(err) = self.sorter.push(line) {
                    self.error.get_or_insert(err);
                }
            };
            push(event_line(event));
            self.events += 1;
            while let Some((_, m)) = matches.next_if(|(index, _)| *index == i) {
                let Some(rule) = self.engine.and_then(|e| e.rule(m.rule)) else {
                    continue;
                };
                self.hits += 1;
                push(hit_line(
                    event,
                    SigmaHitInfo {
                        rule_title: &rule.title,
                        rule_id: rule.id.as_deref().unwrap_or(""),
                        rule_level: rule.level.map(Level::as_str).unwrap_or(""),
                        matched: &m.fields,
                    },
                ));
            }
        }
        self.batch.clear();
    }
}

impl EventSink for TimelineSink<'_> {
    fn event(&mut self, event: SysmonEvent) {
        self.batch.push(event);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
    fn warning(&mut self, warning: ReadWarning) {
        eprintln!("warning: {warning}");
        self.warnings += 1;
    }
}

pub fn run(args: TimelineArgs) -> Result<ExitCode> {
    let engine = if args.no_sigma {
        None
    } else {
        let (engine, report) = args.rules.engine()?;
        eprintln!(
            "sandscope: {} rules loaded, {} rejected, {} not applicable to Sysmon",
            report.loaded(),
            report.rejected(),
            report.not_applicable()
        );
        Some(engine)
    };
    let mut sink = TimelineSink {
        engine: engine.as_ref(),
        sorter: TimelineSorter::new(args.lines_in_memory),
        batch: Vec::with_capacity(BATCH),
        warnings: 0,
        events: 0,
        hits: 0,
        error: None,
    };
    let mut failed = 0usize;
    match &args.sample {
        Some(sha256) => {
            let sha256 = sha256.trim().to_ascii_lowercase();
            let store = Store::open(&data_dir(args.data.clone()))?;
            let reports = store.sample_reports(&sha256)?;
            if reports.is_empty() {
                bail!("no reports of sample {sha256} in the store");
            }
            // The Sysmon log a report was built from; a CAPE/Cuckoo report's own file (with
            // its embedded `sysmon` array) only when no Sysmon report has a log, so one run's
            // events are not listed twice.
            let is_sandbox_report = |name: &str| name == CAPE_SANDBOX || name == CUCKOO_SANDBOX;
            let mut logs = Vec::new();
            for prefer_sysmon in [true, false] {
                for report in &reports {
                    if prefer_sysmon == is_sandbox_report(&report.attributes.sandbox_name) {
                        continue;
                    }
                    if let Some(log) = store.raw_log(&report.id)? {
                        logs.push(log);
                    }
                }
                if !logs.is_empty() {
                    break;
                }
            }
            if logs.is_empty() {
                bail!("sample {sha256} has no stored log");
            }
            for log in logs {
                if let Err(err) = read_bytes(&log.file_name, &log.bytes, &mut sink) {
                    eprintln!("error: {}: {err}", log.file_name);
                    failed += 1;
                }
                sink.flush();
            }
        }
        None => {
            for file in log_files(&args.logs)? {
                if let Err(err) = read_path(&file, &mut sink) {
                    eprintln!("error: {err}");
                    failed += 1;
                }
                sink.flush();
            }
        }
    }
    if let Some(err) = sink.error.take() {
        return Err(err).context("building the timeline");
    }
    let format = match args.format {
        Format::Timesketch => TimelineFormat::Timesketch,
        Format::Csv => TimelineFormat::Csv,
        Format::Jsonl => TimelineFormat::Jsonl,
    };
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = TimelineWriter::new(std::io::BufWriter::new(out), format)?;
    let spilled = sink.sorter.spilled_runs();
    sink.sorter.finish(&mut writer)?;
    writer.finish()?;
    eprintln!(
        "sandscope: {} events, {} Sigma hits{}",
        sink.events,
        sink.hits,
        if spilled > 0 {
            format!(" (sorted through {spilled} temporary runs)")
        } else {
            String::new()
        }
    );
    Ok(if sink.events == 0 || failed > 0 {
        ExitCode::from(1)
    } else if sink.warnings > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
