//! `sandscope hunt`: Sigma rules over Sysmon logs, one explained line per hit and a summary per
//! rule.

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use sandscope_hunting::{HuntOutcome, hunt_stream};
use sandscope_read::read_path;
use sandscope_sigma::{Hit, Level, RuleInfo, SigmaEngine, SigmaEngineBuilder};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

#[derive(Args)]
pub struct HuntArgs {
    /// Sysmon logs: files, or folders walked recursively.
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Keep rules of this level: `high` (exactly) or `high+` (high and above).
    #[arg(long)]
    pub level: Option<String>,
    /// Keep only these rule ids (repeatable).
    #[arg(long = "rule-id")]
    pub rule_ids: Vec<String>,
}

/// Which rules to load; shared by `hunt`, `rules list` and `bench`.
#[derive(Args, Clone)]
pub struct RuleArgs {
    /// Sigma rule files or folders, added to the bundled SigmaHQ rules (repeatable).
    #[arg(long = "rules", short = 'r')]
    pub paths: Vec<PathBuf>,
    /// Do not load the bundled SigmaHQ rules; use only `--rules`.
    #[arg(long)]
    pub no_default_rules: bool,
}

impl RuleArgs {
    /// Build the engine; a short load summary goes to standard error.
    pub fn engine(&self) -> Result<(SigmaEngine, sandscope_sigma::LoadReport)> {
        if self.no_default_rules && self.paths.is_empty() {
            bail!("--no-default-rules needs at least one --rules path");
        }
        let mut builder = SigmaEngineBuilder::new();
        if !self.no_default_rules {
            builder.add_bundled()?;
        }
        for path in &self.paths {
            builder.add_path(path)?;
        }
        Ok(builder.build())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

/// `high` → exactly high; `high+` → high and above.
pub fn level_filter(text: &str) -> Result<impl Fn(Option<Level>) -> bool> {
    let (name, and_above) = match text.strip_suffix('+') {
        Some(name) => (name, true),
        None => (text, false),
    };
    let Some(wanted) = Level::parse(name) else {
        bail!(
            "unknown level `{text}` (informational, low, medium, high, critical, optionally with +)"
        );
    };
    Ok(move |level: Option<Level>| match level {
        Some(level) if and_above => level >= wanted,
        Some(level) => level == wanted,
        None => false,
    })
}

/// Log files under the given paths: files as given, folders walked for log-like extensions.
pub fn log_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    const LOG_EXTENSIONS: [&str; 9] = [
        "evtx", "xml", "json", "jsonl", "ndjson", "log", "txt", "gz", "zip",
    ];
    let is_log = |path: &Path| {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| LOG_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let walked = sandscope_read::walk(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            files.extend(walked.into_iter().filter(|p| is_log(p)));
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Hunt over `files`: one reader thread per core takes files from a shared queue, and each batch
/// of events is evaluated in parallel on the rayon pool. Readers are plain threads, not rayon
/// tasks: the EVTX reader blocks on its own parallel parsing, and blocking inside a rayon worker
/// while that work waits in the same pool deadlocks.
pub fn hunt_files<F: Fn(&RuleInfo) -> bool + Sync>(
    engine: &SigmaEngine,
    files: &[PathBuf],
    keep: &F,
    report_problems: bool,
) -> HuntOutcome {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let never = AtomicBool::new(false);
    let readers = rayon::current_num_threads().clamp(1, files.len().max(1));
    let per_reader: Vec<HuntOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                scope.spawn(|| {
                    let mut outcome = HuntOutcome::default();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(index) else { break };
                        let name = file.display().to_string();
                        let mut one = HuntOutcome::default();
                        hunt_stream(
                            engine,
                            &name,
                            |sink| read_path(file, sink),
                            keep,
                            &never,
                            &mut one,
                        );
                        if report_problems {
                            for problem in one.problems.drain(..) {
                                eprintln!("{problem}");
                            }
                        }
                        outcome.merge(one);
                    }
                    outcome
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut outcome = HuntOutcome::default();
    for part in per_reader {
        outcome.merge(part);
    }
    outcome
}

pub fn run(args: HuntArgs) -> Result<ExitCode> {
    let level_ok: Box<dyn Fn(Option<Level>) -> bool + Sync> = match &args.level {
        Some(text) => Box::new(level_filter(text)?),
        None => Box::new(|_| true),
    };
    let (engine, report) = args.rules.engine()?;
    eprintln!(
        "sandscope: {} rules loaded, {} rejected, {} not applicable to Sysmon (details: sandscope rules check)",
        report.loaded(),
        report.rejected(),
        report.not_applicable()
    );
    let files = log_files(&args.logs)?;
    let keep = |rule: &RuleInfo| {
        level_ok(rule.level)
            && (args.rule_ids.is_empty()
                || rule
                    .id
                    .as_ref()
                    .is_some_and(|id| args.rule_ids.iter().any(|w| w.eq_ignore_ascii_case(id))))
    };
    let mut outcome = hunt_files(&engine, &files, &keep, true);
    outcome
        .hits
        .sort_by(|a, b| (&a.time, &a.file, a.record_id).cmp(&(&b.time, &b.file, b.record_id)));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write_hits(&mut out, &engine, &outcome.hits, args.format)?;
    out.flush()?;
    eprintln!(
        "sandscope: {} hits over {} records in {} files",
        outcome.hits.len(),
        outcome.records,
        files.len()
    );
    Ok(if outcome.failed_files > 0 {
        ExitCode::from(1)
    } else if outcome.damaged_files > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn attack(rule: &RuleInfo) -> String {
    rule.attack_techniques().join(",")
}

fn pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn hit_json(engine: &SigmaEngine, hit: &Hit) -> serde_json::Value {
    let rule = engine.rule(hit.rule);
    let object = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "time": hit.time,
        "computer": hit.computer,
        "rule_title": rule.map(|r| r.title.as_str()),
        "rule_level": rule.and_then(|r| r.level).map(Level::as_str),
        "rule_id": rule.and_then(|r| r.id.as_deref()),
        "rule_author": rule.and_then(|r| r.author.as_deref()),
        "attack": rule.map(|r| r.attack_techniques()).unwrap_or_default(),
        "tags": rule.map(|r| r.tags.clone()).unwrap_or_default(),
        "selections": hit.selections,
        "matched": object(&hit.matched),
        "event_id": hit.event_id,
        "event": object(&hit.key_fields),
        "file": &*hit.file,
        "record_id": hit.record_id,
    })
}

/// Hits per rule: (rule index) → (hits, distinct files).
fn summary(hits: &[Hit]) -> BTreeMap<usize, (usize, usize)> {
    let mut per_rule: BTreeMap<usize, (usize, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    for hit in hits {
        let entry = per_rule.entry(hit.rule).or_default();
        entry.0 += 1;
        entry.1.insert(&hit.file);
    }
    per_rule
        .into_iter()
        .map(|(rule, (n, files))| (rule, (n, files.len())))
        .collect()
}

fn sorted_summary<'a>(engine: &'a SigmaEngine, hits: &[Hit]) -> Vec<(&'a RuleInfo, usize, usize)> {
    let mut rows: Vec<_> = summary(hits)
        .into_iter()
        .filter_map(|(rule, (n, files))| Some((engine.rule(rule)?, n, files)))
        .collect();
    rows.sort_by(|a, b| {
        b.0.level
            .cmp(&a.0.level)
            .then(b.1.cmp(&a.1))
            .then(a.0.title.cmp(&b.0.title))
    });
    rows
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub(crate) fn write_hits(
    out: &mut dyn Write,
    engine: &SigmaEngine,
    hits: &[Hit],
    format: Format,
) -> Result<()> {
    match format {
        Format::Table => {
            for hit in hits {
                let Some(rule) = engine.rule(hit.rule) else {
                    continue;
                };
                writeln!(
                    out,
                    "{}  {}  {:<13} {}  [{}]  {}",
                    hit.time,
                    hit.computer,
                    rule.level.map(Level::as_str).unwrap_or("-"),
                    rule.title,
                    rule.id.as_deref().unwrap_or("-"),
                    attack(rule)
                )?;
                writeln!(
                    out,
                    "    matched {}: {}",
                    hit.selections.join(", "),
                    pairs(&hit.matched)
                )?;
                writeln!(
                    out,
                    "    event {} ({} #{}): {}",
                    hit.event_id,
                    hit.file,
                    hit.record_id.map_or("-".to_string(), |r| r.to_string()),
                    pairs(&hit.key_fields)
                )?;
            }
            writeln!(out)?;
            writeln!(
                out,
                "{:>6}  {:>5}  {:<13} {:<36}  RULE",
                "HITS", "FILES", "LEVEL", "ID"
            )?;
            for (rule, n, files) in sorted_summary(engine, hits) {
                writeln!(
                    out,
                    "{n:>6}  {files:>5}  {:<13} {:<36}  {}",
                    rule.level.map(Level::as_str).unwrap_or("-"),
                    rule.id.as_deref().unwrap_or("-"),
                    rule.title
                )?;
            }
        }
        Format::Json => {
            let summary: Vec<_> = sorted_summary(engine, hits)
                .into_iter()
                .map(|(rule, n, files)| {
                    json!({"rule_title": rule.title, "rule_id": rule.id, "rule_level": rule.level.map(Level::as_str), "hits": n, "files": files})
                })
                .collect();
            let hits: Vec<_> = hits.iter().map(|h| hit_json(engine, h)).collect();
            serde_json::to_writer_pretty(&mut *out, &json!({"hits": hits, "summary": summary}))?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for hit in hits {
                writeln!(out, "{}", hit_json(engine, hit))?;
            }
        }
        Format::Csv => {
            writeln!(
                out,
                "time,computer,rule_level,rule_title,rule_id,attack,selections,matched,event_id,event,file,record_id"
            )?;
            for hit in hits {
                let Some(rule) = engine.rule(hit.rule) else {
                    continue;
                };
                let row = [
                    hit.time.clone(),
                    hit.computer.clone(),
                    rule.level.map(Level::as_str).unwrap_or("").to_string(),
                    rule.title.clone(),
                    rule.id.clone().unwrap_or_default(),
                    attack(rule),
                    hit.selections.join(" "),
                    pairs(&hit.matched),
                    hit.event_id.to_string(),
                    pairs(&hit.key_fields),
                    hit.file.to_string(),
                    hit.record_id.map(|r| r.to_string()).unwrap_or_default(),
                ];
                let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", row.join(","))?;
            }
        }
    }
    Ok(())
}
