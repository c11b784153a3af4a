//! The `sandscope` binary: parses the command line and hands each subcommand to the library crate
//! that owns it. It holds no logic of its own beyond wiring and exit codes.

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
    /// Build behaviour reports from Sysmon logs and store them (with the logs) in the data directory.
    Ingest(commands::ingest::IngestArgs),
    /// Search stored reports with the VirusTotal Intelligence query language.
    Search(commands::search::SearchArgs),
    /// List a sample's indicators, how many other samples share each, and the query that finds them.
    Pivot(commands::pivot::PivotArgs),
    /// Export the sample–indicator–sample graph around a sample (json, dot, graphml).
    Graph(commands::graph::GraphArgs),
    /// Benchmarks (`bench store`: synthetic reports, ingest rate, index size, search latency).
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events(args) => commands::events::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Pivot(args) => commands::pivot::run(args),
        Command::Graph(args) => commands::graph::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sandscope: {err:#}");
            ExitCode::from(1)
        }
    }
}
