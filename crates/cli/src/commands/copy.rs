//! `sandscope copy --from DIR|URL --to URL|DIR`: every report, its raw log and the hunting
//! records (Livehunt rulesets, notifications and pending webhook deliveries, Retrohunt jobs with
//! their matches and ranges) from one store to the other, so a user who started embedded moves
//! to PostgreSQL (or back) without re-detonating anything.
//!
//! Resumable and idempotent: a report already in the destination (by report id) is skipped,
//! and each batch lands whole or not at all (one transaction in either store), so a copy that
//! was interrupted is simply run again. Raw logs go through a temporary file one report at a
//! time: a log read from PostgreSQL is streamed chunk by chunk; the embedded store keeps a log
//! as one redb value, so reading one from it holds that one log in memory. Hunting records are
//! written under their own ids (a put replaces), and the destination's id counter of each table
//! whose ids come from one is moved past the highest copied id (a job's matches and ranges are
//! keyed by their job, `job << 32 | n`, and a webhook delivery by its notification: they take
//! no ids from a counter).

use super::store_choice::open_postgres;
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_hunting::{RecordStore, RecordTable, RecordWrite};
use sandscope_pgstore::{PgStore, is_store_url};
use sandscope_store::{NewReport, RawData, RawLog, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct CopyArgs {
    /// The store to copy from: a data directory or a PostgreSQL URL (postgres://…).
    #[arg(long)]
    pub from: String,
    /// The store to copy to: a PostgreSQL URL or a data directory (created if missing).
    #[arg(long)]
    pub to: String,
    /// Reports written per transaction.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
}

/// Either store, as much of it as a copy needs.
enum Side {
    Embedded(Box<Store>),
    Postgres(PgStore),
}

impl Side {
    fn open(place: &str, create: bool) -> Result<Side> {
        if is_store_url(place) {
            return Ok(Side::Postgres(open_postgres(place)?));
        }
        let dir = Path::new(place);
        if !create && !dir.join("reports.redb").is_file() {
            bail!("{place} is no Sandscope data directory (no reports.redb)");
        }
        let store = Store::open(dir).map_err(|e| super::control::refused(dir, e))?;
        Ok(Side::Embedded(Box::new(store)))
    }

    fn records(&self) -> &dyn RecordStore {
        match self {
            Side::Embedded(s) => s.as_ref(),
            Side::Postgres(s) => s,
        }
    }

    /// Report ids in order, a page at a time after `cursor`.
    fn report_ids(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        Ok(match self {
            Side::Embedded(s) => s.list_report_ids(limit, cursor)?,
            Side::Postgres(s) => s.list_report_ids(limit, cursor)?,
        })
    }

    fn has_report(&self, id: &str) -> Result<bool> {
        Ok(match self {
            Side::Embedded(s) => s.report(id)?.is_some(),
            Side::Postgres(s) => s.has_report(id)?,
        })
    }

    /// Report `id` with its raw log spooled into `spool` (a file per report).
    fn new_report(&self, id: &str, spool: &Path) -> Result<Option<NewReport>> {
        let (behaviour, file_name) = match self {
            Side::Embedded(s) => {
                let Some(behaviour) = s.report(id)? else {
                    return Ok(None);
                };
                let name = match s.raw_log(id)? {
                    Some(log) => {
                        write_file(spool, &log.bytes)?;
                        Some(log.file_name)
                    }
                    None => None,
                };
                (behaviour, name)
            }
            Side::Postgres(s) => {
                let Some(behaviour) = s.report(id)? else {
                    return Ok(None);
                };
                let mut file = std::fs::File::create(spool)
                    .with_context(|| format!("creating {}", spool.display()))?;
                let name = s.copy_raw_log(id, &mut file)?;
                file.flush()?;
                (behaviour, name)
            }
        };
        Ok(Some(NewReport {
            behaviour,
            raw_log: file_name.map(|file_name| RawLog {
                file_name,
                data: RawData::File(spool.to_path_buf()),
            }),
        }))
    }

    fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        Ok(match self {
            Side::Embedded(s) => s.put_reports(batch)?,
            Side::Postgres(s) => s.put_reports(batch)?,
        })
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: CopyArgs) -> Result<ExitCode> {
    if is_store_url(&args.from) == is_store_url(&args.to) {
        bail!(
            "copy goes between a data directory and a PostgreSQL store: one of --from and --to must be postgres://…, the other a directory"
        );
    }
    let from = Side::open(&args.from, false).context("opening the store to copy from")?;
    let to = Side::open(&args.to, true).context("opening the store to copy to")?;
    let spool = tempfile::tempdir().context("creating a temporary directory for raw logs")?;
    let (copied, present) = copy_reports(&from, &to, args.batch as usize, spool.path())?;
    eprintln!("reports: {copied} copied, {present} already there");
    for (table, ids) in TABLES {
        let n = copy_records(from.records(), to.records(), table, ids)?;
        eprintln!("{}: {n} records copied", table.name());
    }
    Ok(ExitCode::SUCCESS)
}

/// Copy every report not yet in `to`, `batch` per transaction; (copied, already present).
fn copy_reports(from: &Side, to: &Side, batch: usize, spool: &Path) -> Result<(u64, u64)> {
    let (mut copied, mut present) = (0u64, 0u64);
    let mut cursor: Option<String> = None;
    loop {
        let (ids, next) = from.report_ids(batch, cursor.as_deref())?;
        let mut reports = Vec::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            if to.has_report(id)? {
                present += 1;
                continue;
            }
            let file: PathBuf = spool.join(n.to_string());
            if let Some(report) = from.new_report(id, &file)? {
                reports.push(report);
            }
        }
        if !reports.is_empty() {
            copied += to.put_reports(reports)?.len() as u64;
        }
        eprintln!("copied {copied} reports ({present} already there)");
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok((copied, present)),
        }
    }
}

/// Where a table's record ids come from.
#[derive(Clone, Copy, PartialEq)]
enum Ids {
    /// The store's counter of the table (`RecordStore::allocate_ids`).
    Counter,
    /// The record's job: `job << 32 | n`.
    Job,
    /// The record's notification (a pending webhook delivery).
    Notification,
    /// The record's ruleset (its state).
    Ruleset,
}

/// Every table of hunting records, jobs before their matches and ranges.
const TABLES: [(RecordTable, Ids); 7] = [
    (RecordTable::HuntingRulesets, Ids::Counter),
    (RecordTable::HuntingRulesetStates, Ids::Ruleset),
    (RecordTable::HuntingNotifications, Ids::Counter),
    (RecordTable::RetrohuntJobs, Ids::Counter),
    (RecordTable::RetrohuntMatches, Ids::Job),
    (RecordTable::RetrohuntRanges, Ids::Job),
    (RecordTable::WebhookDeliveries, Ids::Notification),
];

/// Copy every record of `table` under its id; then make `to` hand out ids past them if they
/// come from its counter.
fn copy_records(
    from: &dyn RecordStore,
    to: &dyn RecordStore,
    table: RecordTable,
    ids: Ids,
) -> Result<u64> {
    const PAGE: usize = 1_000;
    let (mut low, mut copied, mut highest) = (0u64, 0u64, 0u64);
    loop {
        let page = from.records(table, low..=u64::MAX, PAGE, false)?;
        let Some(&(last, _)) = page.last() else { break };
        let full = page.len() == PAGE;
        copied += page.len() as u64;
        highest = last;
        to.write_records(
            page.into_iter()
                .map(|(id, body)| RecordWrite::Put(table, id, body))
                .collect(),
        )?;
        if !full || last == u64::MAX {
            break;
        }
        low = last + 1;
    }
    // Ids are never reused: take ids in `to` until its counter is past the highest copied.
    if highest > 0 && ids == Ids::Counter {
        let next = to.allocate_ids(table, 1)?;
        if let Some(&first) = next.first().filter(|&&first| first < highest) {
            to.allocate_ids(table, highest - first)?;
        }
    }
    Ok(copied)
}
