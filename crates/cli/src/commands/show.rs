//! `sandscope show SHA256`: a stored sample's behaviour reports, as VirusTotal serves them
//! (`/files/{id}/behaviours`, `/behaviour_summary`, `/behaviour_mitre_trees`), or as the
//! terminal report of `sandscope report --format text`.

use super::store_choice::ReportStore;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use sandscope_model::{BehaviourSummary, Envelope, behaviour_mitre_trees};
use sandscope_report::render_behaviour;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Json,
    Text,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The sample's SHA-256.
    pub sha256: String,
    /// Only the report of this sandbox (e.g. "CAPE Sandbox", "Microsoft Sysinternals").
    #[arg(long, group = "view")]
    pub sandbox: Option<String>,
    /// The merged behaviour summary of every sandbox's report.
    #[arg(long, group = "view")]
    pub summary: bool,
    /// The ATT&CK trees per sandbox (tactics → techniques → signatures).
    #[arg(long, group = "view")]
    pub mitre: bool,
    /// `json`: VirusTotal's envelope; `text`: each report as `report --format text` prints it
    /// (Sigma hits and ATT&CK techniques included). `--summary` and `--mitre` are JSON only.
    #[arg(long, value_enum, default_value_t = ShowFormat::Json)]
    pub format: ShowFormat,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

pub fn run(args: ShowArgs) -> Result<ExitCode> {
    if let Some(url) = args.store.clone() {
        return super::store_choice::postgres_command(&url, |store, out| execute(args, store, out));
    }
    let data = args.data.clone();
    super::control::read_command(data, |store, out| execute(args, store, out))
}

/// Write the sample's reports (or summary, or trees) from `store` to `out`.
pub fn execute(args: ShowArgs, store: &dyn ReportStore, out: &mut dyn Write) -> Result<ExitCode> {
    let sha256 = args.sha256.trim().to_ascii_lowercase();
    let mut reports = store.sample_reports(&sha256)?;
    if reports.is_empty() {
        bail!("no reports of sample {sha256} in the store");
    }
    if let Some(sandbox) = &args.sandbox {
        reports.retain(|r| r.attributes.sandbox_name.eq_ignore_ascii_case(sandbox));
        if reports.is_empty() {
            bail!("sample {sha256} has no report from sandbox `{sandbox}`");
        }
    }
    if !args.summary && !args.mitre && args.format == ShowFormat::Text {
        // The same rendering as `report --format text`, Sigma hits and ATT&CK included. The
        // output may go to another process's terminal or pipe (through a server), so styles
        // are left out.
        for report in &reports {
            let rendered = render_behaviour(report, &[]);
            out.write_all(
                anstream::adapter::strip_str(&rendered)
                    .to_string()
                    .as_bytes(),
            )?;
            writeln!(out)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.summary {
        let summary = BehaviourSummary::merge(&reports);
        serde_json::to_writer_pretty(&mut *out, &Envelope { data: &summary })?;
    } else if args.mitre {
        let trees = behaviour_mitre_trees(&reports);
        serde_json::to_writer_pretty(&mut *out, &Envelope { data: &trees })?;
    } else {
        serde_json::to_writer_pretty(&mut *out, &Envelope { data: &reports })?;
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
