//! Reports built from real Sysmon logs (the vendored EVTX-to-MITRE-Attack files; with the full
//! corpus present, also the CAPE runs): search finds what the reports hold, and pivot counts are
//! exactly the samples that really share each indicator.

#[path = "support/vendored.rs"]
mod vendored;

use sandscope_model::FileBehaviour;
use sandscope_query::{SampleDoc, TextField};
use sandscope_store::{NewReport, SearchRequest, Store};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use vendored::{evtx_under, report_of, vendored};

/// The shared corpus: `$SANDSCOPE_CORPUS`, else `../shared/corpus` beside the checkout.
fn full_corpus() -> Option<PathBuf> {
    let p = std::env::var_os("SANDSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        });
    p.is_dir().then_some(p)
}

fn sha_of(store: &Store, file_name: &str) -> String {
    let (ids, _) = store.list_report_ids(10_000, None).unwrap();
    for id in ids {
        if let Some(log) = store.raw_log(&id).unwrap()
            && log.file_name == file_name
        {
            return store.report(&id).unwrap().unwrap().sha256().to_string();
        }
    }
    panic!("{file_name} not ingested");
}

/// Every pivot count equals a brute-force count over all samples with the query semantics,
/// and the sample itself always matches its own indicator queries.
fn assert_pivots_exact(store: &Store, all: &[(String, Vec<FileBehaviour>)]) {
    for (sha, _) in all {
        for ind in store.pivot(sha).unwrap() {
            let query = sandscope_query::parse(&ind.query).unwrap();
            let mut brute = 0;
            let mut self_matches = false;
            for (other, reports) in all {
                let doc = SampleDoc::from_reports(other, reports);
                if query.matches(&doc, 0) {
                    if other == sha {
                        self_matches = true;
                    } else {
                        brute += 1;
                    }
                }
            }
            assert!(self_matches, "{sha}: own indicator {} not found", ind.query);
            assert_eq!(ind.other_samples, brute, "{sha}: {}", ind.query);
        }
    }
}

fn samples(store: &Store) -> Vec<(String, Vec<FileBehaviour>)> {
    let (ids, _) = store.list_report_ids(10_000, None).unwrap();
    let mut shas: Vec<String> = ids
        .iter()
        .map(|id| id.split('_').next().unwrap().to_string())
        .collect();
    shas.dedup();
    shas.into_iter()
        .map(|s| {
            let r = store.sample_reports(&s).unwrap();
            (s, r)
        })
        .collect()
}

#[test]
fn vendored_logs_search_and_pivot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reports: Vec<NewReport> = vendored().iter().filter_map(|p| report_of(p)).collect();
    assert_eq!(reports.len(), 5);
    store.put_reports(reports).unwrap();
    let psexec = sha_of(&store, "ID11,13,17,18-PSexec as system execution.evtx");
    let lsass = sha_of(&store, "ID1-LSASS dump with LSASSY (SYSMON).evtx");

    let ids = |q: &str| -> Vec<String> {
        let mut r = SearchRequest::new(q);
        r.limit = 300;
        store
            .search(&r)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.sha256)
            .collect()
    };
    assert_eq!(
        ids("behaviour_created_processes:PsExec64.exe"),
        vec![psexec.clone()]
    );
    assert_eq!(
        ids("behaviour_command_executions:\"-i -s cmd\""),
        vec![psexec.clone()]
    );
    assert_eq!(
        ids("behaviour_processes:comsvcs.dll MiniDump"),
        vec![lsass.clone()]
    );
    assert_eq!(
        ids(r#"behaviour_command_executions:"\"Windows\\Temp\\76nivOxA.dmp\"""#),
        vec![lsass.clone()]
    );
    assert!(ids("behaviour_processes:mimikatz.exe").is_empty());
    assert!(
        ids("behaviour_created_processes:PsExec64.exe behaviour_processes:rundll32").is_empty()
    );
    assert_eq!(ids("sandbox_name:microsoft_sysinternals").len(), 5);

    // Nothing is shared between these five unrelated lab recordings.
    let psexec_pivot = store.pivot(&psexec).unwrap();
    let cmd = psexec_pivot
        .iter()
        .find(|i| i.value.contains("PsExec64.exe  -i -s cmd"))
        .expect("the PsExec command line is an indicator");
    assert_eq!(cmd.other_samples, 0);
    assert_pivots_exact(&store, &samples(&store));

    // Raw logs come back byte for byte.
    let id = sandscope_model::behaviour_id(&lsass, sandscope_model::SYSINTERNALS_SANDBOX);
    let raw = store.raw_log(&id).unwrap().unwrap();
    assert_eq!(
        raw.bytes,
        std::fs::read(
            vendored()
                .iter()
                .find(|p| p.ends_with("ID1-LSASS dump with LSASSY (SYSMON).evtx"))
                .unwrap()
        )
        .unwrap()
    );
}

#[test]
#[ignore = "needs ../shared/corpus (or SANDSCOPE_CORPUS); `cargo test -- --ignored` runs it"]
fn full_corpus_pivot_counts() {
    let corpus =
        full_corpus().expect("../shared/corpus not found (set SANDSCOPE_CORPUS to point at it)");
    let mut logs = vendored();
    logs.extend(evtx_under(&corpus.join("cape")));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reports: Vec<NewReport> = logs.iter().filter_map(|p| report_of(p)).collect();
    assert_eq!(reports.len(), 10, "5 lab logs + 5 CAPE runs");
    store.put_reports(reports).unwrap();
    let all = samples(&store);
    assert_eq!(all.len(), 10);
    assert_pivots_exact(&store, &all);
    // The BITS sample was detonated twice (Nov 2025 and Jan 2026): its runs share indicators.
    let (ids, _) = store.list_report_ids(10_000, None).unwrap();
    let mut bits_runs = Vec::new();
    for id in &ids {
        let report = store.report(id).unwrap().unwrap();
        if report
            .attributes
            .command_executions
            .iter()
            .any(|c| c.to_ascii_lowercase().contains("bits.bat"))
        {
            bits_runs.push(report.sha256().to_string());
        }
    }
    assert_eq!(bits_runs.len(), 2, "both BITS detonations ran bits.bat");
    let shared = store
        .pivot(&bits_runs[0])
        .unwrap()
        .into_iter()
        .filter(|i| i.other_samples > 0)
        .count();
    assert!(shared > 0, "the two BITS runs share indicators");
}

/// Reports of every vendored log but the broken ones.
fn test_data_reports() -> Vec<NewReport> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let reports: Vec<NewReport> = evtx_under(&root)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("broken"))
        .filter_map(|p| report_of(&p))
        .collect();
    assert!(reports.len() >= 8, "{} reports", reports.len());
    reports
}

/// The index answers exactly what a scan of the reports answers, for pieces cut at random from
/// the real values: inside words, across separators, at value edges, anchored, with `*`.
#[test]
fn index_agrees_with_a_scan_on_pieces_of_real_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_reports(test_data_reports()).unwrap();
    assert_index_agrees_with_a_scan(&store);
}

/// The same, with the values compressed: a store whose first samples hold enough values to
/// train the value dictionary on, so the real values after them are stored with it (owned
/// and shared, matched in the index and verified in redb).
#[test]
fn index_agrees_with_a_scan_on_compressed_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let real = test_data_reports();
    let filler: Vec<NewReport> = (0..300)
        .map(|i| {
            let mut r = real[i % real.len()].clone();
            let sha = format!("{:x}", Sha256::digest(format!("filler {i}")));
            let sandbox = r.behaviour.attributes.sandbox_name.clone();
            r.behaviour.id = sandscope_model::behaviour_id(&sha, &sandbox);
            r.raw_log = None;
            r.behaviour
                .attributes
                .files_written
                .extend((0..20).map(|j| {
                    format!(
                        r"C:\Users\user{i}\AppData\Local\Temp\{:x}\setup_{j}.exe",
                        i * 7919
                    )
                }));
            r
        })
        .collect();
    store.put_reports(filler).unwrap();
    let dictionaries = |store: &Store| {
        let sizes = store.database_sizes().unwrap();
        sizes
            .tables
            .iter()
            .find(|t| t.name == "value_dicts")
            .map_or(0, |t| t.entries)
    };
    assert_eq!(dictionaries(&store), 1, "6,000 values train a dictionary");
    store.put_reports(real).unwrap();
    assert_index_agrees_with_a_scan(&store);
    // The dictionary is read back on reopening, read-only too.
    drop(store);
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_index_agrees_with_a_scan(&store);
}

fn assert_index_agrees_with_a_scan(store: &Store) {
    let all = samples(store);
    let docs: Vec<SampleDoc> = all
        .iter()
        .map(|(sha, r)| SampleDoc::from_reports(sha, r))
        .collect();
    let mut values: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for doc in &docs {
        for field in TextField::ALL {
            for v in doc.text(field) {
                if seen.insert(v.raw.clone()) {
                    values.push(v.raw.clone());
                }
            }
        }
    }
    assert!(values.len() > 100, "{} values", values.len());

    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut queries = Vec::new();
    for _ in 0..400 {
        let value: Vec<char> = values[next(values.len())].chars().collect();
        let start = next(value.len());
        let len = 1 + next(24.min(value.len() - start));
        let piece: String = value[start..start + len].iter().collect();
        let query = match next(4) {
            0 => format!("behaviour:\"{}\"", quote(&piece)),
            1 => format!("behaviour:\"\\\"{}\\\"\"", quote(&piece)),
            2 => {
                let cut = next(piece.chars().count());
                let (a, b): (String, String) = (
                    piece.chars().take(cut).collect(),
                    piece.chars().skip(cut + 1).collect(),
                );
                format!("behaviour:\"{}*{}\"", quote(&a), quote(&b))
            }
            _ => format!("behaviour_files:\"{}\"", quote(&piece)),
        };
        queries.push(query);
    }
    let mut matched = 0;
    for q in &queries {
        let query = match sandscope_query::parse(q) {
            Ok(query) => query,
            // A piece of separators only (`\\`, ` - `) is refused, not matched everywhere.
            Err(e) if e.message.ends_with("has no letters or digits") => continue,
            Err(e) => panic!("{q}: {e}"),
        };
        let brute = docs.iter().filter(|d| query.matches(d, 0)).count() as u64;
        assert_eq!(store.count(&query, 0).unwrap(), brute, "{q}");
        if brute > 0 {
            matched += 1;
        }
    }
    eprintln!(
        "{} samples, {} values, {matched} of {} queries matched",
        docs.len(),
        values.len(),
        queries.len()
    );
    // Pieces of real values mostly match (anchored ones cut mid-word do not).
    assert!(
        matched > 200,
        "only {matched} of {} queries matched",
        queries.len()
    );
}
