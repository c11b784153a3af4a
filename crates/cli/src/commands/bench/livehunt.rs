//! `sandscope bench livehunt`: what Livehunt adds to ingest, printed, never asserted.
//!
//! The same EVTX files, each `--copies` times under its own sample id, are ingested end to end
//! (read, report with the bundled SigmaHQ rules, store, Livehunt; one ingest per detonation,
//! as uploads come) into a fresh scratch store with 0, 1, 10 and 100 enabled rulesets — half
//! Sigma (10 bundled SigmaHQ rules each, no two rulesets alike), half queries (3 each) — and
//! the overhead over 0 rulesets is reported. After a warm-up run, the configurations take turns
//! for `--rounds` rounds and each one's fastest round counts, so a busy neighbour on a shared
//! machine skews less.

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
    /// Runs per configuration; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Detonations ingested per file (each under its own sample id): the vendored logs are
    /// small, and a run of a few hundred ingests times steadier than one of 24.
    #[arg(long, default_value_t = 10)]
    pub copies: usize,
}

const RULESET_COUNTS: [usize; 4] = [0, 1, 10, 100];
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
    let sigma_rulesets = sigma_rulesets(RULESET_COUNTS[3] / 2)?;
    let copies = args.copies.max(1);
    let detonations: Vec<(&PathBuf, String)> = (0..copies)
        .flat_map(|copy| files.iter().map(move |file| (file, sample_id(copy, file))))
        .collect();
    println!(
        "input: {} EVTX files x {copies} = {} ingests; {} rounds per configuration; threads: {}",
        files.len(),
        detonations.len(),
        args.rounds.max(1),
        rayon::current_num_threads()
    );
    // A first run warms the page cache and the allocator; then the configurations take
    // turns, round after round, so a slow spell of the machine hits them alike.
    ingest_with(&detonations, &engine, &sigma_rulesets, 0)?;
    let mut best = [Run {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
        notified: 0,
    }; RULESET_COUNTS.len()];
    for _ in 0..args.rounds.max(1) {
        for (slot, count) in best.iter_mut().zip(RULESET_COUNTS) {
            let run = ingest_with(&detonations, &engine, &sigma_rulesets, count)?;
            slot.wall = slot.wall.min(run.wall);
            slot.cpu = slot.cpu.min(run.cpu);
            slot.notified = run.notified;
        }
    }
    let (base_wall, base_cpu) = (best[0].wall, best[0].cpu);
    for (count, run) in RULESET_COUNTS.iter().zip(best) {
        println!(
            "{count:>3} rulesets: {} ingests, {} notifications; wall {:.3} s ({:+.1}%), CPU {:.3} s ({:+.1}%)",
            detonations.len(),
            run.notified,
            run.wall,
            (run.wall - base_wall) / base_wall * 100.0,
            run.cpu,
            (run.cpu - base_cpu) / base_cpu * 100.0,
        );
    }
    println!(
        "(CPU is this process's user + system time: on a shared machine it shows the work done; \
         wall time also holds the store's disk syncs and the neighbours' load)"
    );
    Ok(ExitCode::SUCCESS)
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
    notified: usize,
}

/// Ingest each detonation (a file and its sample id) into a scratch store holding `count`
/// rulesets.
fn ingest_with(
    detonations: &[(&PathBuf, String)],
    engine: &Arc<SigmaEngine>,
    sigma_rulesets: &[String],
    count: usize,
) -> Result<Run> {
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
    let cpu = cpu_seconds();
    let start = Instant::now();
    for (file, sha256) in detonations {
        let options = IngestOptions {
            sha256: Some(sha256.clone()),
            ..IngestOptions::default()
        };
        let prepared = pipeline.prepare(std::slice::from_ref(*file), &options)?;
        let ids = store.put_reports(prepared.reports)?;
        notified += pipeline.notify(store.as_ref(), prepared.livehunt, &ids)?;
    }
    Ok(Run {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        notified,
    })
}
