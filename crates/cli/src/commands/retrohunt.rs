//! `sandscope retrohunt RULES… [--after DATE] [--before DATE]`: Sigma rules over the raw log of
//! every stored detonation, each log hunted exactly as `sandscope hunt` hunts a file (the same
//! per-stream evaluation, correlations included), hits printed as `hunt` prints them, each
//! naming the report it came from (`<report id>/<log name>`).
//!
//! This is the command-line form only: the API's background `retrohunt_jobs` are not built yet.

use super::hunt::{Format, HuntOutcome, hunt_source, write_hits};
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_sigma::{RuleInfo, SigmaEngine, SigmaEngineBuilder};
use sandscope_store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RetrohuntArgs {
    /// Sigma rule files or folders.
    #[arg(required_unless_present = "bundled")]
    pub rules: Vec<PathBuf>,
    /// Also run the bundled SigmaHQ rules.
    #[arg(long)]
    pub bundled: bool,
    /// Only reports analysed on or after this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub after: Option<String>,
    /// Only reports analysed before this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub before: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Report ids read per page.
const PAGE: usize = 1_000;

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
    let data = super::ingest::data_dir(args.data.clone());
    let store = super::control::open_store_for_reading(&data)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = execute(&args, &store, &mut out)?;
    out.flush()?;
    Ok(code)
}

/// Retrohunt `args.rules` over `store`, writing the hits to `out`.
pub fn execute(args: &RetrohuntArgs, store: &Store, out: &mut dyn Write) -> Result<ExitCode> {
    let after = args.after.as_deref().map(day_start).transpose()?;
    let before = args.before.as_deref().map(day_start).transpose()?;
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
    let (mut outcome, logs) = hunt_store(store, &engine, after, before)?;
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

/// Hunt the raw log of every stored report analysed in `[after, before)` (Unix seconds);
/// returns the outcome and how many logs were hunted.
pub fn hunt_store(
    store: &Store,
    engine: &SigmaEngine,
    after: Option<i64>,
    before: Option<i64>,
) -> Result<(HuntOutcome, usize)> {
    let mut outcome = empty_outcome();
    let mut logs = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let (ids, next) = store.list_report_ids(PAGE, cursor.as_deref())?;
        // One reader per core, each taking the page's next log (as `hunt` does with files).
        let index = std::sync::atomic::AtomicUsize::new(0);
        let readers = rayon::current_num_threads().clamp(1, ids.len().max(1));
        let parts: Vec<Result<(HuntOutcome, usize)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..readers)
                .map(|_| {
                    scope.spawn(|| -> Result<(HuntOutcome, usize)> {
                        let mut part = empty_outcome();
                        let mut hunted = 0usize;
                        loop {
                            let i = index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(id) = ids.get(i) else { break };
                            if hunt_one(store, engine, id, after, before, &mut part)? {
                                hunted += 1;
                            }
                        }
                        Ok((part, hunted))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a retrohunt reader panicked")))
                })
                .collect()
        });
        for part in parts {
            let (part, hunted) = part?;
            outcome.hits.extend(part.hits);
            outcome.records += part.records;
            outcome.damaged_files += part.damaged_files;
            outcome.failed_files += part.failed_files;
            logs += hunted;
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok((outcome, logs))
}

fn empty_outcome() -> HuntOutcome {
    HuntOutcome {
        hits: Vec::new(),
        records: 0,
        damaged_files: 0,
        failed_files: 0,
    }
}

/// Hunt the raw log of report `id` when it was analysed in the range; false when skipped.
fn hunt_one(
    store: &Store,
    engine: &SigmaEngine,
    id: &str,
    after: Option<i64>,
    before: Option<i64>,
    outcome: &mut HuntOutcome,
) -> Result<bool> {
    if after.is_some() || before.is_some() {
        let date = store
            .report(id)?
            .and_then(|r| r.attributes.analysis_date)
            .unwrap_or(0);
        if after.is_some_and(|a| date < a) || before.is_some_and(|b| date >= b) {
            return Ok(false);
        }
    }
    let Some(log) = store.raw_log(id)? else {
        return Ok(false);
    };
    let name = format!("{id}/{}", log.file_name);
    hunt_source(
        engine,
        &name,
        |sink| sandscope_read::read_bytes(&name, &log.bytes, sink),
        &|_: &RuleInfo| true,
        true,
        outcome,
    );
    Ok(true)
}
