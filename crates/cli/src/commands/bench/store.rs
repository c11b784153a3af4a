//! `sandscope bench store`: the scale benchmark of the report store (not a test).
//!
//! Synthetic reports are made by mutating real reports built from corpus logs: each gets a new
//! SHA-256, new user and host names, re-rolled file names under the same directories, new
//! domains, and a share of file paths from a deterministic generator (a few of them carrying
//! the seed's `@tutanota.com` and `…\Microsoft\Telemetry\sihost32.exe` needles). The bench
//! ingests them, compacts the report database, then prints ingest rate, sizes (index, database,
//! gzip'd JSON lines, and what each redb table costs) and the latency of 20 fixed queries, next
//! to `grep -F` over the same reports as JSON lines. With `--store postgres://…` the same
//! reports also go to a PostgreSQL store (timed apart, after the embedded store's ingest, by
//! `--writers` connections at once) and the same queries are timed on it, so the two stores are
//! compared in one run; `--skip-embedded` leaves the embedded store out, for comparing
//! PostgreSQL layouts (the JSON lines, their gzip size and `grep -F` stay).

use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_model::{DnsLookup, FileBehaviour, IpTraffic};
use sandscope_pgstore::PgStore;
use sandscope_report::{ReportOptions, build_report};
use sandscope_store::{NewReport, SearchPage, SearchRequest, Store, StoreOptions};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct StoreBenchArgs {
    /// Number of synthetic reports.
    #[arg(long, default_value_t = 100_000)]
    pub reports: u64,
    /// Working directory (emptied first): the store and the JSON-lines copy go there.
    #[arg(long)]
    pub dir: PathBuf,
    /// Logs the base reports are built from (files or directories).
    #[arg(long, required = true)]
    pub logs: Vec<PathBuf>,
    /// Reports per ingest transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Index writer threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed runs per query.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Only time the queries, over the store and JSON lines an earlier run left in `--dir`
    /// (building 1M reports takes most of an hour).
    #[arg(long)]
    pub reuse: bool,
    /// Time these queries instead of the fixed set (repeatable); `grep -F` looks for the value
    /// after the first `:`, unquoted.
    #[arg(long = "query")]
    pub queries: Vec<String>,
    /// Also a PostgreSQL store (postgres://…, made with `db init`; emptied of reports only by
    /// you): the same reports are written to it and the same queries timed on it, side by side.
    #[arg(long)]
    pub store: Option<String>,
    /// PostgreSQL writers: connections writing their share of the batches at once, each on a
    /// thread of its own, as that many workers would.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub writers: u16,
    /// Reports per PostgreSQL transaction (default: `--batch`); a worker writes one job's.
    #[arg(long)]
    pub pg_batch: Option<usize>,
    /// Only the PostgreSQL store: the embedded store is neither built nor timed, for a run that
    /// compares PostgreSQL layouts.
    #[arg(long, requires = "store")]
    pub skip_embedded: bool,
}

/// What `grep -F` looks for to answer `query`: the longest `*`-free part of its value, without
/// quotes (a query's `\\` is already how JSON writes a backslash).
fn grep_literal(query: &str) -> String {
    let value = query.split_once(':').map_or(query, |(_, v)| v);
    let value = value.strip_prefix('"').unwrap_or(value);
    let value = value.strip_suffix('"').unwrap_or(value);
    let value = value.replace("\\\"", "");
    value
        .split('*')
        .max_by_key(|part| part.len())
        .unwrap_or_default()
        .to_string()
}

/// The fixed query set; the first two are the seed's.
pub const QUERIES: [(&str, &str); 20] = [
    ("behaviour_files:@tutanota.com", "@tutanota.com"),
    (
        r#"behaviour_processes:"\"AppData\\Microsoft\\Telemetry\\sihost32.exe\"""#,
        r"Microsoft\\Telemetry\\sihost32.exe",
    ),
    (
        "behaviour_created_processes:powershell.exe",
        "powershell.exe",
    ),
    (
        "behaviour_command_executions:\"delete shadows\"",
        "delete shadows",
    ),
    ("behaviour_network:pastebin.com", "pastebin.com"),
    (
        r#"behaviour_files:"\\AppData\\Local\\Temp\\""#,
        r"\\AppData\\Local\\Temp\\",
    ),
    (r"behaviour_files:system32\drivers", r"system32\\drivers"),
    ("behaviour_files:.ps1", ".ps1"),
    (
        r"behaviour_registry:CurrentVersion\Run",
        r"CurrentVersion\\Run",
    ),
    ("behaviour:mimikatz", "mimikatz"),
    ("behaviour_processes:rundll32.exe", "rundll32.exe"),
    (
        "sandbox_name:microsoft_sysinternals behaviour_files:invoice",
        "invoice",
    ),
    ("behaviour_network:www.goo*", "www.goo"),
    ("behaviour_files:readme*.txt", "readme"),
    ("fs:2025-06-01+ behaviour_files:payload", "payload"),
    (
        "behaviour_processes:psexec OR behaviour_processes:paexec",
        "psexec",
    ),
    (
        "behaviour_command_executions:whoami -behaviour_files:tutanota",
        "whoami",
    ),
    ("behaviour_services:PSEXESVC", "PSEXESVC"),
    ("behaviour:lsass", "lsass"),
    ("behaviour:\"cmd.exe /c\"", "cmd.exe /c"),
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

const USERS: [&str; 8] = [
    "alice", "bob", "admin", "john", "maria", "analyst", "lab", "victim",
];
const ROOTS: [&str; 10] = [
    r"C:\Users\{u}\AppData\Local\Temp\",
    r"C:\Users\{u}\AppData\Roaming\Microsoft\",
    r"C:\Windows\System32\",
    r"C:\Windows\SysWOW64\",
    r"C:\ProgramData\",
    r"C:\Users\{u}\Documents\",
    r"C:\Program Files (x86)\",
    r"C:\Windows\Temp\",
    r"C:\Users\{u}\AppData\Local\Microsoft\Windows\INetCache\IE\",
    r"C:\Windows\System32\drivers\",
];
const NAMES: [&str; 12] = [
    "svchost", "update", "setup", "invoice", "chrome", "wmiprvse", "payload", "readme", "tmp",
    "install", "rundll32", "conhost",
];
const EXTS: [&str; 12] = [
    "exe", "dll", "tmp", "ps1", "bat", "vbs", "js", "txt", "dat", "log", "lnk", "zip",
];
const WORDS: [&str; 12] = [
    "cdn",
    "update",
    "api",
    "static",
    "telemetry",
    "mail",
    "files",
    "pastebin",
    "login",
    "secure",
    "download",
    "www",
];
const TLDS: [&str; 6] = ["com", "net", "org", "ru", "top", "xyz"];

fn synth_path(rng: &mut Rng, user: &str) -> String {
    let mut p = rng.pick(&ROOTS).replace("{u}", user);
    if rng.below(3) == 0 {
        p += &format!("{:08x}\\", rng.below(1 << 32));
    }
    match rng.below(2000) {
        0 => p += &format!("readme_{:x}@tutanota.com.txt", rng.below(1 << 20)),
        1 => p = format!(r"C:\Users\{user}\AppData\Roaming\Microsoft\Telemetry\sihost32.exe"),
        _ => {
            p += &format!(
                "{}_{:x}.{}",
                rng.pick(&NAMES),
                rng.below(1 << 24),
                rng.pick(&EXTS)
            )
        }
    }
    p
}

/// Replace the user in `C:\Users\<name>\` and re-roll hex-ish file names.
fn mutate_string(s: &str, user: &str, rng: &mut Rng) -> String {
    let mut out = s.to_string();
    if let Some(at) = out.to_ascii_lowercase().find(r"\users\")
        && let Some(end) = out[at + 7..].find('\\')
    {
        out.replace_range(at + 7..at + 7 + end, user);
    }
    if rng.below(4) == 0
        && let Some(dot) = out.rfind('.')
        && let Some(slash) = out[..dot].rfind('\\')
        && dot > slash + 1
    {
        out.replace_range(
            slash + 1..dot,
            &format!("{}_{:x}", rng.pick(&NAMES), rng.below(1 << 20)),
        );
    }
    out
}

fn synthesise(base: &FileBehaviour, i: u64) -> FileBehaviour {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i.wrapping_mul(0x2545_F491_4F6C_DD1D)) | 1);
    for _ in 0..4 {
        rng.next();
    }
    let user = format!("{}{}", rng.pick(&USERS), rng.below(100));
    let mut a = base.attributes.clone();
    for list in [
        &mut a.processes_created,
        &mut a.command_executions,
        &mut a.files_written,
        &mut a.files_opened,
        &mut a.files_deleted,
        &mut a.registry_keys_opened,
    ] {
        for v in list.iter_mut() {
            *v = mutate_string(v, &user, &mut rng);
        }
    }
    for _ in 0..(5 + rng.below(25)) {
        let path = synth_path(&mut rng, &user);
        if path.ends_with("sihost32.exe") {
            // The miner family runs what it drops.
            a.processes_created.push(path.clone());
        }
        a.files_written.push(path);
    }
    a.dns_lookups.clear();
    for _ in 0..rng.below(4) {
        let host = format!(
            "{}.{}{}.{}",
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.below(10_000),
            rng.pick(&TLDS)
        );
        let ip = format!(
            "{}.{}.{}.{}",
            1 + rng.below(223),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        );
        a.ip_traffic.push(IpTraffic {
            destination_ip: ip.clone(),
            destination_port: Some([80, 443, 8080, 4444][rng.below(4) as usize]),
            transport_layer_protocol: Some("TCP".into()),
        });
        a.dns_lookups.push(DnsLookup {
            hostname: host,
            resolved_ips: vec![ip],
            cnames: vec![],
        });
    }
    a.analysis_date = Some(1_704_067_200 + rng.below(2 * 365 * 86_400) as i64);
    let sha = format!("{:x}", Sha256::digest(i.to_le_bytes()));
    FileBehaviour::new(&sha, a)
}

fn base_reports(logs: &[PathBuf]) -> Result<Vec<FileBehaviour>> {
    let mut files = Vec::new();
    for p in logs {
        if p.is_dir() {
            let walked = sandscope_read::walk(p)?;
            files.extend(
                walked
                    .into_iter()
                    .filter(|e| e.extension().is_some_and(|x| x == "evtx")),
            );
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(read) = sandscope_read::read_all(&f) else {
            continue;
        };
        if let Ok(built) = build_report(&read.events, &ReportOptions::default()) {
            out.push(built.behaviour);
        }
    }
    if out.is_empty() {
        bail!("no report could be built from the given logs");
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn run(args: StoreBenchArgs) -> Result<ExitCode> {
    let postgres = match &args.store {
        Some(url) => Some(super::super::store_choice::open_postgres(url)?),
        None => None,
    };
    if args.reuse {
        return time_queries(&args, postgres.as_ref());
    }
    let bases = base_reports(&args.logs)?;
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("emptying {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let mut store = if args.skip_embedded {
        None
    } else {
        Some(Store::open_with(
            &args.dir.join("store"),
            StoreOptions {
                index_threads: args.threads,
                index_memory: 256 << 20,
            },
        )?)
    };
    let jsonl_path = args.dir.join("reports.jsonl");
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(&jsonl_path)?);
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(args.dir.join("reports.jsonl.gz"))?),
        flate2::Compression::default(),
    );
    println!(
        "base reports: {} (from corpus logs); synthesising {}",
        bases.len(),
        args.reports
    );
    let mut ingest_secs = 0.0;
    let mut batch = Vec::with_capacity(args.batch);
    let started = Instant::now();
    for i in 0..args.reports {
        let r = synthesise(&bases[(i % bases.len() as u64) as usize], i);
        let line = serde_json::to_string(&r)?;
        writeln!(jsonl, "{line}")?;
        writeln!(gz, "{line}")?;
        batch.push(NewReport {
            behaviour: r,
            raw_log: None,
        });
        if batch.len() >= args.batch || i + 1 == args.reports {
            let reports = std::mem::take(&mut batch);
            if let Some(store) = store.as_mut() {
                let t = Instant::now();
                store.put_reports(reports)?;
                ingest_secs += t.elapsed().as_secs_f64();
            }
            eprint!("\r{} / {} reports", i + 1, args.reports);
        }
    }
    eprintln!();
    jsonl.flush()?;
    drop(jsonl);
    gz.finish()?.flush()?;
    let gz_bytes = std::fs::metadata(args.dir.join("reports.jsonl.gz"))?.len();
    let json_bytes = std::fs::metadata(&jsonl_path)?.len();
    let mib = |b: u64| b as f64 / 1_048_576.0;
    match store.as_mut() {
        Some(store) => print_embedded(store, &args, ingest_secs, started, json_bytes, gz_bytes)?,
        None => println!(
            "JSON lines {:.1} MiB, gzip'd JSON {:.1} MiB, written in {:.1} s (embedded store skipped)",
            mib(json_bytes),
            mib(gz_bytes),
            started.elapsed().as_secs_f64()
        ),
    }
    if let Some(pg) = &postgres {
        let writers = usize::from(args.writers);
        let pg_batch = args.pg_batch.unwrap_or(args.batch).max(1);
        let pg_secs = write_postgres(pg, &bases, args.reports, pg_batch, writers)?;
        print_postgres(pg, args.reports, pg_secs, writers, gz_bytes)?;
        // Time queries on planner statistics of the loaded rows, not on autovacuum's timing.
        let t = Instant::now();
        pg.analyze()?;
        println!(
            "postgresql: ANALYZE after the load {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // What the indexes cost once rebuilt at once rather than grown batch by batch.
        let t = Instant::now();
        pg.compact()?;
        let bytes = pg.size_bytes()?;
        println!(
            "postgresql: compacted (VACUUM, REINDEX CONCURRENTLY) in {:.1} s: tables + indexes {:.1} MiB (/ gzip = {:.2})",
            t.elapsed().as_secs_f64(),
            bytes as f64 / 1_048_576.0,
            bytes as f64 / gz_bytes as f64
        );
    }
    drop(store);
    time_queries(&args, postgres.as_ref())
}

/// The embedded store's ingest after the last batch: waits for the index merges, compacts the
/// report database and prints the rate, the sizes and what each part costs.
fn print_embedded(
    store: &mut Store,
    args: &StoreBenchArgs,
    ingest_secs: f64,
    started: Instant,
    json_bytes: u64,
    gz_bytes: u64,
) -> Result<()> {
    let t = Instant::now();
    store.wait_merges()?;
    let merge_secs = t.elapsed().as_secs_f64();
    let (_, db_before_compaction) = store.disk_usage()?;
    let t = Instant::now();
    store.compact()?;
    let compact_secs = t.elapsed().as_secs_f64();
    let (index_bytes, db_bytes) = store.disk_usage()?;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "ingest: {} reports in {:.1} s store time ({:.0} reports/s; {:.1} s wall incl. generation), merges {:.1} s, report db compaction {:.1} s ({:.1} → {:.1} MiB; {:.0} reports/s counting it)",
        args.reports,
        ingest_secs,
        args.reports as f64 / ingest_secs,
        started.elapsed().as_secs_f64(),
        merge_secs,
        compact_secs,
        db_before_compaction as f64 / 1_048_576.0,
        db_bytes as f64 / 1_048_576.0,
        args.reports as f64 / (ingest_secs + compact_secs)
    );
    println!(
        "sizes: index {:.1} MiB, report db {:.1} MiB, JSON lines {:.1} MiB, gzip'd JSON {:.1} MiB (index / gzip = {:.2}; data directory / gzip = {:.2})",
        mib(index_bytes),
        mib(db_bytes),
        mib(json_bytes),
        mib(gz_bytes),
        index_bytes as f64 / gz_bytes as f64,
        (index_bytes + db_bytes) as f64 / gz_bytes as f64
    );
    print_database_sizes(store, db_bytes)?;
    print_index_sizes(store)?;
    Ok(())
}

/// Write the same reports the embedded store got to PostgreSQL with `writers` connections at
/// once: this thread synthesises the batches again (they are deterministic) and hands them out
/// in turn, each writer putting its share as a worker would. The wall time from the first batch
/// to the last commit.
fn write_postgres(
    pg: &PgStore,
    bases: &[FileBehaviour],
    reports: u64,
    batch_size: usize,
    writers: usize,
) -> Result<f64> {
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut queues = Vec::with_capacity(writers);
        let mut handles = Vec::with_capacity(writers);
        for _ in 0..writers {
            // One batch waiting per writer: synthesis stays just ahead of the writes.
            let (queue, batches) = std::sync::mpsc::sync_channel::<Vec<NewReport>>(1);
            queues.push(queue);
            handles.push(scope.spawn(move || -> Result<()> {
                for batch in batches {
                    pg.put_reports(batch)?;
                }
                Ok(())
            }));
        }
        let mut batch = Vec::with_capacity(batch_size);
        let mut turn = 0;
        for i in 0..reports {
            batch.push(NewReport {
                behaviour: synthesise(&bases[(i % bases.len() as u64) as usize], i),
                raw_log: None,
            });
            if batch.len() >= batch_size || i + 1 == reports {
                // A writer that stopped has an error to tell, below.
                if queues[turn % writers]
                    .send(std::mem::take(&mut batch))
                    .is_err()
                {
                    break;
                }
                turn += 1;
                eprint!("\rpostgresql: {} / {reports} reports queued", i + 1);
            }
        }
        eprintln!();
        drop(queues);
        for handle in handles {
            match handle.join() {
                Ok(written) => written?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(())
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// The PostgreSQL store's ingest rate (one process, `writers` connections) and size.
fn print_postgres(
    pg: &PgStore,
    reports: u64,
    secs: f64,
    writers: usize,
    gz_bytes: u64,
) -> Result<()> {
    let bytes = pg.size_bytes()?;
    println!(
        "postgresql {}: {reports} reports in {secs:.1} s ({:.0} reports/s, {writers} writer{}); tables + indexes {:.1} MiB (/ gzip = {:.2})",
        pg.target(),
        reports as f64 / secs,
        if writers == 1 { "" } else { "s" },
        bytes as f64 / 1_048_576.0,
        bytes as f64 / gz_bytes as f64
    );
    Ok(())
}

/// What each table of the report database costs: its keys and values, its B-tree bookkeeping
/// and the unused space in its pages; then the file's free pages.
fn print_database_sizes(store: &Store, db_bytes: u64) -> Result<()> {
    let sizes = store.database_sizes()?;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "{:<16} {:>10} {:>11} {:>11} {:>11}",
        "table", "entries", "data MiB", "meta MiB", "slack MiB"
    );
    for t in &sizes.tables {
        println!(
            "{:<16} {:>10} {:>11.1} {:>11.1} {:>11.1}",
            t.name,
            t.entries,
            mib(t.stored_bytes),
            mib(t.metadata_bytes),
            mib(t.fragmented_bytes)
        );
    }
    println!(
        "report db file {:.1} MiB: {:.1} MiB in use, {:.1} MiB free pages",
        mib(db_bytes),
        mib(sizes.allocated_bytes),
        mib(db_bytes.saturating_sub(sizes.allocated_bytes))
    );
    Ok(())
}

/// What each part of each field of the two tantivy indexes costs (parts under 0.05 MiB left
/// out), with each index's total per part.
fn print_index_sizes(store: &Store) -> Result<()> {
    let rows = store.index_sizes()?;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "{:<8} {:>8} {:<16} {:<28} {:>9}",
        "index", "segments", "part", "field", "MiB"
    );
    for index in ["samples", "values"] {
        let rows: Vec<_> = rows.iter().filter(|r| r.index == index).collect();
        let segments = rows.first().map_or(0, |r| r.segments);
        let mut parts: Vec<(&str, u64)> = Vec::new();
        for r in &rows {
            match parts.iter_mut().find(|(p, _)| *p == r.part) {
                Some((_, bytes)) => *bytes += r.bytes,
                None => parts.push((r.part, r.bytes)),
            }
        }
        parts.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        for (part, bytes) in parts {
            println!(
                "{index:<8} {segments:>8} {part:<16} {:<28} {:>9.1}",
                "(all fields)",
                mib(bytes)
            );
        }
        for r in rows
            .iter()
            .filter(|r| r.bytes >= 52_429 && !r.field.is_empty())
        {
            println!(
                "{index:<8} {segments:>8} {:<16} {:<28} {:>9.1}",
                r.part,
                r.field,
                mib(r.bytes)
            );
        }
    }
    Ok(())
}

/// Sizes, then the latency of the fixed queries against `grep -F` over the JSON lines
/// (without the embedded store's with `--skip-embedded`).
fn time_queries(args: &StoreBenchArgs, postgres: Option<&PgStore>) -> Result<ExitCode> {
    let jsonl_path = args.dir.join("reports.jsonl");
    let store_path = args.dir.join("store");
    if !jsonl_path.exists() || !(args.skip_embedded || store_path.exists()) {
        bail!(
            "{} holds no store and reports.jsonl of an earlier run",
            args.dir.display()
        );
    }
    let store = if args.skip_embedded {
        None
    } else {
        Some(Store::open(&store_path)?)
    };
    if args.reuse
        && let Some(store) = &store
    {
        let (index_bytes, db_bytes) = store.disk_usage()?;
        let gz_bytes = std::fs::metadata(args.dir.join("reports.jsonl.gz"))?.len();
        let mib = |b: u64| b as f64 / 1_048_576.0;
        println!(
            "reused store: {} samples; index {:.1} MiB, report db {:.1} MiB, gzip'd JSON {:.1} MiB (index / gzip = {:.2}; data directory / gzip = {:.2})",
            store.stats()?.samples,
            mib(index_bytes),
            mib(db_bytes),
            mib(gz_bytes),
            index_bytes as f64 / gz_bytes as f64,
            (index_bytes + db_bytes) as f64 / gz_bytes as f64
        );
        print_database_sizes(store, db_bytes)?;
        print_index_sizes(store)?;
    }
    let mut all = Vec::new();
    let mut pg_all = Vec::new();
    let mut total_search = 0.0;
    let mut total_grep = 0.0;
    println!(
        "{:<72} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "query", "hits", "p50 ms", "p99 ms", "grep ms", "speedup"
    );
    let queries: Vec<(String, String)> = if args.queries.is_empty() {
        QUERIES
            .iter()
            .map(|(q, l)| (q.to_string(), l.to_string()))
            .collect()
    } else {
        args.queries
            .iter()
            .map(|q| (q.clone(), grep_literal(q)))
            .collect()
    };
    for (query, literal) in &queries {
        let request = SearchRequest::new(query);
        let embedded = match &store {
            Some(store) => Some(time_search(args.runs, || Ok(store.search(&request)?))?),
            None => None,
        };
        if let Some(pg) = postgres {
            let (pg_hits, pg_times) = time_search(args.runs, || Ok(pg.search(&request)?))?;
            println!(
                "  postgresql: {pg_hits} hits, p50 {:.2} ms, p99 {:.2} ms",
                percentile(&pg_times, 0.5),
                percentile(&pg_times, 0.99)
            );
            pg_all.extend(pg_times);
        }
        let t = Instant::now();
        let grep = std::process::Command::new("grep")
            .args(["-F", "-i", "-c", "--", literal])
            .arg(&jsonl_path)
            .output()
            .context("running grep")?;
        let grep_ms = t.elapsed().as_secs_f64() * 1e3;
        let grep_hits = String::from_utf8_lossy(&grep.stdout).trim().to_string();
        total_grep += grep_ms;
        let (Some(store), Some((hits, times))) = (&store, embedded) else {
            println!(
                "{query:<72} {:>8} {:>9} {:>9} {grep_ms:>10.1} {:>9}   (grep lines: {grep_hits})",
                "-", "-", "-", "-"
            );
            continue;
        };
        let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
        all.extend(times.iter().copied());
        total_search += mean;
        // A page counts at most `EXACT_COUNT_LIMIT` matches; the exact count, timed once, is
        // what a pivot pays.
        let t = Instant::now();
        let exact = store.count(&sandscope_query::parse(query)?, request.now)?;
        let count_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{:<72} {:>8} {:>9.2} {:>9.2} {:>10.1} {:>8.0}x   (all hits: {exact} counted in {count_ms:.1} ms; grep lines: {grep_hits})",
            query,
            hits,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            grep_ms,
            grep_ms / mean,
        );
    }
    all.sort_by(|a, b| a.total_cmp(b));
    if store.is_some() {
        println!(
            "all {} queries: p50 {:.2} ms, p99 {:.2} ms; mean search {:.2} ms vs grep -F {:.1} ms → {:.0}x",
            queries.len(),
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            total_search / queries.len() as f64,
            total_grep / queries.len() as f64,
            total_grep / total_search
        );
    } else {
        println!(
            "all {} queries: grep -F mean {:.1} ms (embedded store skipped)",
            queries.len(),
            total_grep / queries.len() as f64
        );
    }
    if postgres.is_some() {
        pg_all.sort_by(|a, b| a.total_cmp(b));
        println!(
            "postgresql, all {} queries: p50 {:.2} ms, p99 {:.2} ms",
            queries.len(),
            percentile(&pg_all, 0.5),
            percentile(&pg_all, 0.99)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Hits (`+`: a lower bound) and sorted latencies of one store's `search`, after warm-up.
fn time_search(
    runs: usize,
    mut search: impl FnMut() -> Result<SearchPage>,
) -> Result<(String, Vec<f64>)> {
    let mut hits = String::new();
    for _ in 0..3 {
        let page = search()?;
        let bound = if page.total_hits_exact { "" } else { "+" };
        hits = format!("{}{bound}", page.total_hits);
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        search()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok((hits, times))
}
