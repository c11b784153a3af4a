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
    /// Benchmarks (`bench read`: the Sysmon readers).
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events(args) => commands::events::run(args),
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
