//! `sandscope bench livehunt`: what Livehunt adds to ingest, printed, never asserted.
//!
//! The same EVTX files, each `--copies` times under its own sample id, are ingested end to end
//! (read, report with the bundled SigmaHQ rules, store, Livehunt; one ingest per detonation,
//! as uploads come, the reports stored with their notifications in one transaction as every
//! embedded ingest stores them) into a fresh scratch store with no rulesets and with each
//! `--rulesets` count enabled (1, 10 and 100 by default) — half Sigma (10 bundled SigmaHQ rules
//! each, no two rulesets alike), half queries (3 each) — and the overhead over no rulesets is
//! reported, with the median time each configuration spends building reports and storing them.
//! After a warm-up run, the configurations take turns for `--rounds` rounds, in an order that
//! rotates each round (so none always runs right after another), and two figures are printed
//! per configuration: its fastest round against the fastest without rulesets, and the median
//! over the rounds of its overhead against the run without rulesets of the same round. The
//! paired median is the one to quote: a slow spell of a shared machine hits both runs of a
//! pair, and one lucky round does not make it.

use super::copies::sample_id;
use super::cpu::cpu_seconds;
use anyhow::{Result, bail};
use clap::Args;
use sandscope_hunting::{CompiledRules, Hunting, Livehunt, RuleLanguage};
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_sigma::SigmaEngine;
use sandscope_store::Store;
use serde_json::{Map, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct LivehuntBenchArgs {
    /// Folder of EVTX files (walked recursively; a `broken/` folder is skipped).
    #[arg(long, default_value = "tests/data")]
    pub corpus: PathBuf,
    /// Runs per configuration (each round runs every configuration once).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Numbers of enabled rulesets to time (0, the baseline, is always timed; at most 100).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    pub rulesets: Vec<usize>,
    /// Detonations ingested per file (each under its own sample id): the vendored logs are
    /// small, and a run of a few hundred ingests times steadier than one of 24.
    #[arg(long, default_value_t = 10)]
    pub copies: usize,
}

/// Most rulesets a configuration may hold: half of them take 10 bundled rules each.
const MAX_RULESETS: usize = 100;
const SIGMA_RULES_PER_RULESET: usize = 10;
const QUERIES: [&str; 3] = [
    "behaviour_processes:\"powershell.exe\"",
    "behaviour_command_executions:\"-enc\" OR behaviour_network:\"pastebin\"",
    "behaviour_registry:\"CurrentVersion\\\\Run\"",
];

pub fn run(args: LivehuntBenchArgs) -> Result<ExitCode> {
    let files = sandscope_read::bench::corpus_evtx(&args.corpus)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.corpus.display()))?;
    if files.is_empty() {
        bail!("no EVTX files under {}", args.corpus.display());
    }
    let (engine, _) = SigmaEngine::bundled()?;
    let engine = Arc::new(engine);
    let mut counts = vec![0];
    for &count in &args.rulesets {
        if count > MAX_RULESETS {
            bail!("--rulesets {count}: at most {MAX_RULESETS}");
        }
        if !counts.contains(&count) {
            counts.push(count);
        }
    }
    let sigma_rulesets = sigma_rulesets(counts.iter().max().copied().unwrap_or(0).div_ceil(2))?;
    let copies = args.copies.max(1);
    let rounds = args.rounds.max(1);
    let detonations: Vec<(&PathBuf, String)> = (0..copies)
        .flat_map(|copy| files.iter().map(move |file| (file, sample_id(copy, file))))
        .collect();
    println!(
        "input: {} EVTX files x {copies} = {} ingests; {rounds} rounds; threads: {}",
        files.len(),
        detonations.len(),
        rayon::current_num_threads()
    );
    // A first run warms the page cache and the allocator; then the configurations take
    // turns, round after round, so a slow spell of the machine hits them alike.
    // The scratch stores are removed only at the end: ext4 makes a new file slower to create
    // while many were deleted moments ago, so deleting each run's thousands of index files would
    // slow whichever run comes next.
    let mut scratch = Vec::with_capacity(1 + rounds * counts.len());
    scratch.push(ingest_with(&detonations, &engine, &sigma_rulesets, 0)?.1);
    // runs[c][round] of configuration `counts[c]`.
    let mut runs: Vec<Vec<Run>> = vec![Vec::with_capacity(rounds); counts.len()];
    for round in 0..rounds {
        for turn in 0..counts.len() {
            let c = (turn + round) % counts.len();
            let (run, dir) = ingest_with(&detonations, &engine, &sigma_rulesets, counts[c])?;
            runs[c].push(run);
            scratch.push(dir);
        }
    }
    let fastest =
        |runs: &[Run], of: fn(&Run) -> f64| runs.iter().map(of).fold(f64::INFINITY, f64::min);
    let (base_wall, base_cpu) = (fastest(&runs[0], |r| r.wall), fastest(&runs[0], |r| r.cpu));
    for (count, config) in counts.iter().zip(&runs) {
        let (wall, cpu) = (fastest(config, |r| r.wall), fastest(config, |r| r.cpu));
        let paired = |of: fn(&Run) -> f64| {
            median(
                config
                    .iter()
                    .zip(&runs[0])
                    .map(|(run, base)| (of(run) - of(base)) / of(base) * 100.0)
                    .collect(),
            )
        };
        println!(
            "{count:>3} rulesets: {} ingests, {} notifications; fastest wall {wall:.3} s ({:+.1}%), \
             CPU {cpu:.3} s ({:+.1}%); paired median wall {:+.1}%, CPU {:+.1}%",
            detonations.len(),
            config.last().map_or(0, |r| r.notified),
            (wall - base_wall) / base_wall * 100.0,
            (cpu - base_cpu) / base_cpu * 100.0,
            paired(|r| r.wall),
            paired(|r| r.cpu),
        );
        let phase = |i: usize| median(config.iter().map(|r| r.phases[i]).collect());
        println!(
            "     median phases: build {:.3} s, store with notifications {:.3} s",
            phase(0),
            phase(1),
        );
    }
    println!(
        "(CPU is this process's user + system time: on a shared machine it shows the work done; \
         wall time also holds the store's disk syncs and the neighbours' load)"
    );
    Ok(ExitCode::SUCCESS)
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `count` rule texts of 10 bundled rules each that compile on their own as a ruleset.
fn sigma_rulesets(count: usize) -> Result<Vec<String>> {
    let mut usable = Vec::new();
    for text in sandscope_sigma::bundled_rule_texts()? {
        if usable.len() == count * SIGMA_RULES_PER_RULESET {
            break;
        }
        if CompiledRules::compile(RuleLanguage::Sigma, &text.text).is_ok() {
            usable.push(text.text);
        }
    }
    Ok(usable
        .chunks(SIGMA_RULES_PER_RULESET)
        .map(|chunk| chunk.join("\n---\n"))
        .collect())
}

/// One timed ingest of every file.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    /// Wall seconds in building the reports (with Livehunt's Sigma), and in storing them with
    /// their notifications (Livehunt's queries run there, in the store's transaction).
    phases: [f64; 2],
    notified: usize,
}

/// Ingest each detonation (a file and its sample id) into a scratch store holding `count`
/// rulesets; also returns the store's directory, removed when dropped.
fn ingest_with(
    detonations: &[(&PathBuf, String)],
    engine: &Arc<SigmaEngine>,
    sigma_rulesets: &[String],
    count: usize,
) -> Result<(Run, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path())?);
    let live = Arc::new(Livehunt::load(store.clone())?);
    let hunting = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    for i in 0..count {
        let mut attributes = Map::new();
        attributes.insert("name".into(), json!(format!("bench {i}")));
        attributes.insert("limit".into(), json!(100_000));
        if i % 2 == 0 {
            let rules = sigma_rulesets
                .get(i / 2)
                .ok_or_else(|| anyhow::anyhow!("not enough bundled rules for {count} rulesets"))?;
            attributes.insert("rules".into(), json!(rules));
        } else {
            attributes.insert("rule_language".into(), json!("query"));
            attributes.insert("rules".into(), json!(QUERIES.join("\n")));
        }
        hunting.create_ruleset(&attributes, 1)?;
    }
    let pipeline = Pipeline::new(Some(engine.clone())).with_livehunt(live.clone());
    let mut notified = 0;
    let mut phases = [0.0; 2];
    let cpu = cpu_seconds();
    let start = Instant::now();
    for (file, sha256) in detonations {
        let options = IngestOptions {
            sha256: Some(sha256.clone()),
            ..IngestOptions::default()
        };
        let t = Instant::now();
        let prepared = pipeline.prepare(std::slice::from_ref(*file), &options)?;
        phases[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (_, recorded) = pipeline.put_reports(&store, prepared.reports, prepared.livehunt)?;
        notified += recorded;
        phases[1] += t.elapsed().as_secs_f64();
    }
    let run = Run {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        phases,
        notified,
    };
    Ok((run, dir))
}
