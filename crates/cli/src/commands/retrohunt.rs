//! `sandscope retrohunt RULES… [--after DATE] [--before DATE]`: Sigma rules over the raw log of
//! every stored detonation, each log hunted exactly as `sandscope hunt` hunts a file (the same
//! per-stream evaluation, correlations included), hits printed as `hunt` prints them, each
//! naming the report it came from (`<report id>/<log name>`).
//!
//! The scan is `sandscope_hunting::scan`, the one the API's `retrohunt_jobs` run, over the data
//! directory or a PostgreSQL store (`--store URL`); a progress bar on standard error (when it
//! is a terminal) counts the detonations covered.

use super::hunt::{Format, write_hits};
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_hunting::{DetonationLogs, HuntOutcome, ScanOptions, ScannedPage, TimeRange, scan};
use sandscope_sigma::{SigmaEngine, SigmaEngineBuilder};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

#[derive(Args)]
pub struct RetrohuntArgs {
    /// Sigma rule files or folders.
    #[arg(required_unless_present = "bundled")]
    pub rules: Vec<PathBuf>,
    /// Also run the bundled SigmaHQ rules.
    #[arg(long)]
    pub bundled: bool,
    /// Only detonations first seen (analysed) on or after this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub after: Option<String>,
    /// Only detonations first seen (analysed) before this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub before: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

/// Report ids per scan page (progress is shown page by page).
const PAGE: usize = 64;

fn day_start(text: &str) -> Result<i64> {
    let date: jiff::civil::Date = text
        .parse()
        .with_context(|| format!("`{text}` is not a date (YYYY-MM-DD)"))?;
    Ok(date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .context("date out of range")?
        .timestamp()
        .as_second())
}

pub fn run(args: RetrohuntArgs) -> Result<ExitCode> {
    let store: Box<dyn DetonationLogs> = match &args.store {
        Some(url) => Box::new(super::store_choice::open_postgres(url)?),
        None => {
            let data = super::ingest::data_dir(args.data.clone());
            Box::new(super::control::open_store_for_reading(&data)?)
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = execute(&args, store.as_ref(), &mut out)?;
    out.flush()?;
    Ok(code)
}

/// Retrohunt `args.rules` over `store`'s detonations, writing the hits to `out`.
pub fn execute(
    args: &RetrohuntArgs,
    store: &dyn DetonationLogs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let range = TimeRange {
        start: args.after.as_deref().map(day_start).transpose()?,
        // `--before` is exclusive; the range's end is not.
        end: args
            .before
            .as_deref()
            .map(day_start)
            .transpose()?
            .map(|b| b - 1),
    };
    let mut builder = SigmaEngineBuilder::new();
    if args.bundled {
        builder.add_bundled()?;
    }
    for path in &args.rules {
        builder.add_path(path)?;
    }
    let (engine, report) = builder.build();
    if report.loaded() == 0 {
        bail!("no rule loaded (details: sandscope rules check)");
    }
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(store.detonation_count()?)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} detonations {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut outcome, logs) = hunt_store(store, &engine, range, &|page| {
        progress.inc(page.ids as u64);
    })?;
    progress.finish_and_clear();
    for problem in &outcome.problems {
        eprintln!("{problem}");
    }
    outcome
        .hits
        .sort_by(|a, b| (&a.time, &a.file, a.record_id).cmp(&(&b.time, &b.file, b.record_id)));
    write_hits(out, &engine, &outcome.hits, args.format)?;
    eprintln!(
        "sandscope: {} hits over {} records in {logs} stored logs",
        outcome.hits.len(),
        outcome.records
    );
    Ok(if outcome.failed_files > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Hunt the raw log of every stored detonation first seen in `range` with one reader per core
/// (`sandscope_hunting::scan`), `on_page` seeing each page as it completes; returns every hit
/// and how many logs were hunted.
pub fn hunt_store(
    store: &dyn DetonationLogs,
    engine: &SigmaEngine,
    range: TimeRange,
    on_page: &dyn Fn(&ScannedPage),
) -> Result<(HuntOutcome, usize)> {
    let options = ScanOptions {
        readers: rayon::current_num_threads(),
        page: PAGE,
        range,
        until: None,
    };
    let mut outcome = HuntOutcome::default();
    let mut logs = 0usize;
    let never = AtomicBool::new(false);
    scan(store, engine, &options, None, &never, &mut |page| {
        on_page(&page);
        logs += page.logs.len();
        for log in page.logs {
            outcome.merge(log.outcome);
        }
        Ok(true)
    })?;
    Ok((outcome, logs))
}
