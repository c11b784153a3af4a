//! The `sandscope` binary: parses the command line and hands each subcommand to the library crate
//! that owns it. It holds no logic of its own beyond wiring and exit codes.
//!
//! One file per subcommand in `commands/`. Beyond wiring:
//! * exit codes: `events`, `ingest` and `hunt` exit 0 (clean), 3 (damaged or skipped input, the
//!   rest done) or 1 (nothing readable or stored);
//! * `commands/control.rs`: several processes on one data directory. Every process that opens a
//!   store leaves an owner record (`DATA/run/owner.json`, in a 0700 folder); `serve` also a
//!   control socket there, through which `search`, `show`, `pivot`, `graph`, `diff` and
//!   `ingest` run on the server's open store (the server parses the forwarded command line with
//!   the same clap types and streams back what the command prints and its exit code);
//! * `commands/watch/`: `ingest --watch DIR` and `serve --watch DIR` ingest each run folder
//!   once it has settled, through `commands::ingest::execute` (the one ingest path), and
//!   remember what they took in `DATA/watch/`;
//! * `commands/bench/`: `sandscope bench read|sigma|store|serve`, the speed and load figures
//!   (never asserted by tests).

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sandscope",
    version,
    about = "Sysmon behaviour intelligence for malware analysts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read Sysmon logs (EVTX, XML, JSON lines, syslog) and print one JSON object per event.
    Events(commands::events::EventsArgs),
    /// Build the sample's VirusTotal-compatible behaviour report from a detonation's Sysmon log.
    Report(commands::report::ReportArgs),
    /// Import a CAPE or Cuckoo 2.x report (plain, gzip or zip) and print it as a behaviour report.
    Cape(commands::cape::CapeArgs),
    /// Compare two behaviour reports (or CAPE/Cuckoo reports): what only one of them saw.
    Diff(commands::diff::DiffArgs),
    /// Run Sigma rules (the bundled SigmaHQ set and/or --rules) over Sysmon logs.
    Hunt(commands::hunt::HuntArgs),
    /// Check or list Sigma rules.
    Rules(commands::rules::RulesArgs),
    /// Sigma rules over the raw log of every stored detonation, as `hunt` runs them over files.
    Retrohunt(commands::retrohunt::RetrohuntArgs),
    /// Livehunt rulesets (Sigma rules or Intelligence queries) that notify on every new report.
    Rulesets(commands::rulesets::RulesetsArgs),
    /// Build behaviour reports from Sysmon logs and store them (with the logs) in the data directory.
    Ingest(commands::ingest::IngestArgs),
    /// Give the data directory's unused room back to the file system (after a large ingest).
    Compact(commands::compact::CompactArgs),
    /// Search stored reports with the VirusTotal Intelligence query language.
    Search(commands::search::SearchArgs),
    /// List a sample's indicators, how many other samples share each, and the query that finds them.
    Pivot(commands::pivot::PivotArgs),
    /// Export the sample–indicator–sample graph around a sample (json, dot, graphml).
    Graph(commands::graph::GraphArgs),
    /// A stored sample's reports, behaviour summary (--summary) or ATT&CK trees (--mitre).
    Show(commands::show::ShowArgs),
    /// A stored sample as a MISP event or a STIX 2.1 bundle.
    Export(commands::export::ExportArgs),
    /// Events and Sigma hits of logs (or of a stored sample) as a timeline, sorted by time.
    Timeline(commands::timeline::TimelineArgs),
    /// Ingest logs (optional), then serve the VirusTotal-compatible API and the web UI.
    Serve(commands::serve::ServeArgs),
    /// Pull detonation jobs from NATS, build their reports and write them to the store.
    Worker(commands::worker::WorkerArgs),
    /// Where jobs published with `--nats` are: queued, running, done, failed or parked.
    Jobs(commands::jobs::JobsArgs),
    /// Create (`db init`) or upgrade (`db upgrade`) the schema of a PostgreSQL store.
    Db(commands::db::DbArgs),
    /// Copy every report, raw log and hunting record between a data directory and a
    /// PostgreSQL store (either way); resumable: run it again after an interruption.
    Copy(commands::copy::CopyArgs),
    /// Benchmarks that print the speed figures the issues ask for (`bench read`, `bench sigma`,
    /// `bench store`).
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events(args) => commands::events::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Cape(args) => commands::cape::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Hunt(args) => commands::hunt::run(args),
        Command::Rules(args) => commands::rules::run(args),
        Command::Retrohunt(args) => commands::retrohunt::run(args),
        Command::Rulesets(args) => commands::rulesets::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Compact(args) => commands::compact::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Pivot(args) => commands::pivot::run(args),
        Command::Graph(args) => commands::graph::run(args),
        Command::Show(args) => commands::show::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Timeline(args) => commands::timeline::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Jobs(args) => commands::jobs::run(args),
        Command::Db(args) => commands::db::run(args),
        Command::Copy(args) => commands::copy::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sandscope: {}", error_chain(&err));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes, each said once. A library error whose message already embeds its
/// source (`"{path}: {source}"`) would otherwise print that source twice.
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
