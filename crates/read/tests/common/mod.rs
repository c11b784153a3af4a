//! Helpers shared by the corpus tests: the inventory table format of `../shared/corpus/README.md`
//! (also used by `tests/data/README.md` for the vendored subset), and reading an EVTX file by
//! both paths.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Row {
    pub file: String,
    pub kind: String,
    pub sysmon: u64,
    pub per_id: BTreeMap<u16, u64>,
    pub parse_errors: u64,
}

/// The rows of the inventory table in `readme` (between the inventory markers).
pub fn inventory(readme: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text
        .find("<!-- inventory:start -->")
        .expect("inventory start marker");
    let end = text
        .find("<!-- inventory:end -->")
        .expect("inventory end marker");
    let mut rows = Vec::new();
    for line in text[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | file | kind | size | events | Sysmon events | per ID | parse errors |
        if cells.len() < 9 || cells[1] == "file" || cells[1].starts_with("---") {
            continue;
        }
        let Ok(sysmon) = cells[5].parse() else {
            continue;
        };
        let per_id = cells[6]
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once(':').unwrap();
                (k.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        let parse_errors = cells[7]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        rows.push(Row {
            file: cells[1].to_string(),
            kind: cells[2].to_string(),
            sysmon,
            per_id,
            parse_errors,
        });
    }
    rows
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/corpus` beside the repository, or `$SANDSCOPE_CORPUS`.
pub fn shared_corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SANDSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/corpus"));
    dir.join("README.md").is_file().then_some(dir)
}

/// Read every inventoried file under `root` and compare with its row; returns the mismatches.
pub fn check(root: &Path, rows: &[Row]) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows {
        if !["evtx", "xml", "jsonl", "json-event", "cape-report"].contains(&row.kind.as_str()) {
            continue;
        }
        let path = root.join(&row.file);
        let out = match sandscope_read::read_all(&path) {
            Ok(out) => out,
            Err(e) => {
                problems.push(format!("{}: error {e}", row.file));
                continue;
            }
        };
        let mut per_id = BTreeMap::new();
        for e in &out.events {
            *per_id.entry(e.event_id).or_insert(0u64) += 1;
        }
        if out.stats.sysmon_events != row.sysmon || per_id != row.per_id {
            problems.push(format!(
                "{}: {} Sysmon events {:?}, expected {} {:?}",
                row.file, out.stats.sysmon_events, per_id, row.sysmon, row.per_id
            ));
        }
        let records: u64 =
            out.stats.sysmon_events + out.stats.skipped_by_channel.values().sum::<u64>();
        let (expected_warnings, expected_records) = deviations(&row.file)
            .map(|d| (d.warnings, d.records))
            .unwrap_or((row.parse_errors, None));
        if let Some(n) = expected_records
            && records != n
        {
            problems.push(format!("{}: {records} records, expected {n}", row.file));
        }
        if out.stats.warnings != expected_warnings {
            problems.push(format!(
                "{}: {} warnings, expected {} ({:?})",
                row.file,
                out.stats.warnings,
                expected_warnings,
                out.warnings
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
            ));
        }
    }
    problems
}

/// Where Sandscope's warnings differ, on purpose, from the inventory's "parse errors" column
/// (which counts what the Python `evtx` 0.14 bindings reported).
pub struct Deviation {
    pub warnings: u64,
    /// Records of any channel, when the inventory's "events" column is worth pinning too.
    pub records: Option<u64>,
}

pub fn deviations(file: &str) -> Option<Deviation> {
    Some(match file {
        // evtx 0.15 reads past the header's chunk count and the bad chunks: 301 records with
        // distinct ids where 0.14 found 270, and it also reports the zeroed record header in
        // chunk 7 that live records follow.
        f if f.ends_with("sample_with_a_bad_chunk_magic.evtx") => Deviation {
            warnings: 3,
            records: Some(301),
        },
        // Line 8 is a Sysmon for Linux event cut at the syslog line limit: it is recovered
        // (22 fields, everything but the end of ParentCommandLine) and reported.
        f if f.ends_with(
            "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
        ) =>
        {
            Deviation {
                warnings: 1,
                records: Some(93),
            }
        }
        f if f.ends_with("broken/omerbenamram_evtx/samples/sysmon.evtx") => Deviation {
            warnings: 8,
            records: Some(358),
        },
        // The header lists 4 chunks of 17: evtx 0.15 reads all of them, 449 distinct record
        // ids out of 1..=450 (the missing one is the zero-size record, the one warning).
        f if f.ends_with("sample-with-zero-data-size-event.evtx") => Deviation {
            warnings: 1,
            records: Some(449),
        },
        f if f.ends_with("security_bad_string_cache.evtx") => Deviation {
            warnings: 0,
            records: Some(2261),
        },
        f if f.ends_with("Application_no_crc32.evtx") => Deviation {
            warnings: 0,
            records: Some(17),
        },
        f if f.ends_with("dns_log_malformed.evtx") => Deviation {
            warnings: 0,
            records: Some(5),
        },
        _ => return None,
    })
}

/// Read an EVTX file by the typed path and by the evtx crate's JSON path, and its bytes whole
/// in memory by the typed path (helpers on the pool and the calling thread alone), require the
/// same result, warnings and events from all, and return the typed path's output.
pub fn read_same_both_ways(path: &Path) -> sandscope_read::ReadOutput {
    use sandscope_read::{ReadOptions, ReadOutput, read_owned_bytes, read_path_with};
    let label = path.display();
    let mut fast = ReadOutput::default();
    let fast_result = read_path_with(path, &ReadOptions::default(), &mut fast);
    let mut slow = ReadOutput::default();
    let opts = ReadOptions {
        evtx_via_json: true,
        ..ReadOptions::default()
    };
    let slow_result = read_path_with(path, &opts, &mut slow);
    let bytes = std::fs::read(path).unwrap();
    let name = path.to_string_lossy();
    let mut in_memory = Vec::new();
    for sequential in [false, true] {
        let opts = ReadOptions {
            sequential,
            ..ReadOptions::default()
        };
        let mut out = ReadOutput::default();
        let result = read_owned_bytes(&name, bytes.clone(), &opts, &mut out);
        in_memory.push((format!("{result:?}"), out));
    }
    let runs = [(format!("{fast_result:?}"), &fast)]
        .into_iter()
        .chain(in_memory.iter().map(|(r, o)| (r.clone(), o)));
    for (result, out) in runs {
        assert_eq!(result, format!("{slow_result:?}"), "{label}");
        assert_eq!(out.warnings, slow.warnings, "{label}");
        assert_eq!(out.events.len(), slow.events.len(), "{label}");
        for (a, b) in out.events.iter().zip(&slow.events) {
            assert_eq!(a, b, "{label}");
        }
    }
    fast
}
