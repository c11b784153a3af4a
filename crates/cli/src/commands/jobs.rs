//! `sandscope jobs [ID…] --nats URL`: where queued detonations are (queued, running, done with
//! their report ids, failed or parked with the reason), read from the queue's status bucket.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use sandscope_queue::{JobStatus, Queue};
use std::io::Write;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum JobsFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct JobsArgs {
    /// Job ids (as `ingest --nats` printed them); all jobs without any.
    pub ids: Vec<String>,
    /// The NATS server of the queue (nats://HOST:PORT).
    #[arg(long, env = "SANDSCOPE_NATS")]
    pub nats: String,
    #[arg(long, value_enum, default_value_t = JobsFormat::Table)]
    pub format: JobsFormat,
}

/// A runtime for the queue's async client, and the queue at `url`.
pub fn connect(url: &str) -> Result<(tokio::runtime::Runtime, Queue)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the NATS client")?;
    let queue = runtime.block_on(Queue::connect(url))?;
    Ok((runtime, queue))
}

pub fn run(args: JobsArgs) -> Result<ExitCode> {
    let (runtime, queue) = connect(&args.nats)?;
    let ids = if args.ids.is_empty() {
        runtime.block_on(queue.job_ids())?
    } else {
        args.ids.clone()
    };
    let mut found: Vec<JobStatus> = Vec::with_capacity(ids.len());
    let mut unknown = Vec::new();
    for id in ids {
        match runtime.block_on(queue.status(&id))? {
            Some(status) => found.push(status),
            None => unknown.push(id),
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        JobsFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &found)?;
            writeln!(out)?;
        }
        JobsFormat::Table => {
            writeln!(out, "JOB\tSTATE\tDELIVERIES\tREPORTS\tREASON")?;
            for s in &found {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.state,
                    s.deliveries,
                    s.reports.join(","),
                    s.reason.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    for id in &unknown {
        eprintln!("sandscope: no job {id} in the queue at {}", args.nats);
    }
    Ok(if unknown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
