use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sandscope_model::Envelope;
use sandscope_report::{ReportOptions, SampleSelector, build_report, render_text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// VirusTotal's `{"data": {"id", "type": "file_behaviour", "attributes"}}` envelope.
    Json,
    /// A report to read in the terminal (coloured when stdout is a terminal).
    Text,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Sysmon logs of one detonation (EVTX, XML, JSON lines, syslog).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The sample: an image name or path fragment (else its command line is searched).
    #[arg(long, group = "selector")]
    pub sample: Option<String>,
    /// The sample's SHA-256, matched against process-create Hashes and used in the report id.
    #[arg(long, group = "selector")]
    pub sha256: Option<String>,
    /// The sample's root process by ProcessGuid.
    #[arg(long, group = "selector")]
    pub root_guid: Option<String>,
    /// Report every event of the log (for trimmed single-technique logs).
    #[arg(long, group = "selector")]
    pub no_attribution: bool,
    /// Log of a clean run of the same sandbox image; what it shows is background.
    #[arg(long)]
    pub baseline: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    #[command(flatten)]
    pub sigma: super::sigma_args::SigmaArgs,
}

fn read_events(paths: &[PathBuf]) -> Result<(Vec<sandscope_event::SysmonEvent>, bool)> {
    let mut events = Vec::new();
    let mut damaged = false;
    for path in paths {
        let output = sandscope_read::read_all(Path::new(path))
            .with_context(|| format!("reading {}", path.display()))?;
        for warning in &output.warnings {
            eprintln!("warning: {warning}");
        }
        damaged |= !output.warnings.is_empty();
        events.extend(output.events);
    }
    Ok((events, damaged))
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let (events, damaged) = read_events(&args.paths)?;
    let (baseline, _) = read_events(&args.baseline)?;
    if events.is_empty() {
        bail!("no Sysmon events in the input");
    }
    let sample = if args.no_attribution {
        SampleSelector::Everything
    } else if let Some(s) = &args.sample {
        SampleSelector::Image(s.clone())
    } else if let Some(h) = &args.sha256 {
        SampleSelector::Sha256(h.clone())
    } else if let Some(g) = &args.root_guid {
        SampleSelector::RootGuid(g.clone())
    } else {
        SampleSelector::Auto
    };
    let options = ReportOptions {
        sample,
        sha256: args.sha256.clone(),
        baseline,
    };
    let mut report = build_report(&events, &options).with_context(|| {
        "no sample found; name it with --sample, --sha256 or --root-guid, or use --no-attribution"
    })?;
    if let Some(engine) = args.sigma.engine()? {
        sandscope_ingest::apply_sigma(
            &mut report.behaviour,
            &engine,
            &events,
            &report.attributed_events,
        );
    }
    match args.format {
        Format::Json => {
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            eprintln!("note: report id {}", report.behaviour.id);
            let envelope = Envelope {
                data: &report.behaviour,
            };
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &envelope)?;
            writeln!(out)?;
            out.flush()?;
        }
        Format::Text => {
            let mut out = anstream::stdout();
            out.write_all(render_text(&report).as_bytes())?;
            out.flush()?;
        }
    }
    Ok(if damaged {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
