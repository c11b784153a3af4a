//! `sandscope events PATH…`: every Sysmon event as one JSON object per line, or `--stats`.
//!
//! Exit status: 0 every input read cleanly; 3 some input damaged but the rest was emitted
//! (one warning per damaged chunk/record on stderr); 1 nothing could be read, an input is not
//! an event log or is missing (one-line reason on stderr).

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sandscope_event::SysmonEvent;
use sandscope_read::{EventSink, ReadError, ReadStats, ReadWarning, read_path, walk};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct EventsArgs {
    /// Log files or directories (walked recursively, in sorted order); `-` reads standard
    /// input. The format is detected from the content: EVTX, XML, syslog, JSON lines, CAPE
    /// reports, gzip- or zip-compressed.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print counts per event id and per channel (skipped channels too) instead of the events.
    #[arg(long)]
    pub stats: bool,
}

struct Output<W: Write> {
    out: W,
    stats_only: bool,
    failed: Option<std::io::Error>,
    by_id: BTreeMap<u16, u64>,
    by_channel: BTreeMap<String, u64>,
    progress: Option<ProgressBar>,
}

impl<W: Write> EventSink for Output<W> {
    fn event(&mut self, event: SysmonEvent) {
        if self.stats_only {
            *self.by_id.entry(event.event_id).or_default() += 1;
            *self.by_channel.entry(event.channel).or_default() += 1;
            return;
        }
        if self.failed.is_some() {
            return;
        }
        let line = serde_json::json!({
            "source": &*event.source.file,
            "record_id": event.source.record_id,
            "event_id": event.event_id,
            "time": event.time.to_string(),
            "computer": event.computer,
            "channel": event.channel,
            "data": event.data,
        });
        if let Err(e) = writeln!(self.out, "{line}") {
            self.failed = Some(e);
        }
    }

    fn warning(&mut self, warning: ReadWarning) {
        match &self.progress {
            Some(pb) => pb.suspend(|| eprintln!("warning: {warning}")),
            None => eprintln!("warning: {warning}"),
        }
    }
}

enum Input {
    Stdin,
    File { path: PathBuf, walked: bool },
}

pub fn run(args: EventsArgs) -> Result<ExitCode> {
    let mut failed = false;
    let mut inputs = Vec::new();
    for path in &args.paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if path.is_dir() {
            match walk(path) {
                Ok(files) => inputs.extend(
                    files
                        .into_iter()
                        .map(|path| Input::File { path, walked: true }),
                ),
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    failed = true;
                }
            }
        } else {
            inputs.push(Input::File {
                path: path.clone(),
                walked: false,
            });
        }
    }

    let progress = (std::io::stderr().is_terminal() && inputs.len() > 1).then(|| {
        let pb = ProgressBar::new(inputs.len() as u64);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} files {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });
    let stdout = std::io::stdout();
    let mut sink = Output {
        out: std::io::BufWriter::new(stdout.lock()),
        stats_only: args.stats,
        failed: None,
        by_id: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        progress: progress.clone(),
    };
    let mut total = ReadStats::default();
    let (mut read_files, mut passed_over) = (0u64, 0u64);
    let mut damaged = false;
    for input in &inputs {
        let (path, walked) = match input {
            Input::Stdin => (PathBuf::from("-"), false),
            Input::File { path, walked } => (path.clone(), *walked),
        };
        if let Some(pb) = &progress {
            pb.set_message(path.display().to_string());
        }
        match read_path(&path, &mut sink) {
            Ok(stats) => {
                read_files += 1;
                damaged |= stats.warnings > 0;
                total.merge(&stats);
            }
            // Files met while walking a directory that are not event logs (licences, YAML)
            // are passed over.
            Err(ReadError::NotAnEventLog { .. }) if walked => passed_over += 1,
            Err(err) => {
                let line = format!("error: {err}");
                match &progress {
                    Some(pb) => pb.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
                failed = true;
            }
        }
        if let Some(pb) = &progress {
            pb.inc(1);
        }
        if let Some(e) = sink.failed.take() {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    if read_files == 0 && !failed {
        eprintln!("error: no event log found in the given paths");
        failed = true;
    }
    if args.stats {
        print_stats(&mut sink, &total, read_files, passed_over)?;
    }
    sink.out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else if damaged {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_stats<W: Write>(
    sink: &mut Output<W>,
    total: &ReadStats,
    read_files: u64,
    passed_over: u64,
) -> std::io::Result<()> {
    let out = &mut sink.out;
    writeln!(out, "Sysmon events: {}", total.sysmon_events)?;
    writeln!(out, "by event id:")?;
    for (id, n) in &sink.by_id {
        writeln!(out, "  {id:>5}  {n}")?;
    }
    writeln!(out, "by channel:")?;
    for (channel, n) in &sink.by_channel {
        writeln!(out, "  {channel}  {n}")?;
    }
    if !total.skipped_by_channel.is_empty() {
        writeln!(out, "skipped (not Sysmon), by channel:")?;
        for (channel, n) in &total.skipped_by_channel {
            writeln!(out, "  {channel}  {n}")?;
        }
    }
    writeln!(
        out,
        "inputs read: {read_files}; passed over (not event logs): {passed_over}; warnings: {}",
        total.warnings
    )
}
