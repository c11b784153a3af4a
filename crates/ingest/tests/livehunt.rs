//! Livehunt on the seed's two detonations (`tests/data/seed`: a coin miner and a ransomware
//! run): each ruleset notifies on exactly the samples it should, through the one ingest path
//! (prepare, store, notify) every door takes.

use sandscope_hunting::{Hunting, Livehunt, NotificationFilter, RecordStore};
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_store::Store;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed");

const SHADOW_COPIES: &str = r#"title: Shadow copies deleted with vssadmin
id: 5a1f3c0e-0d4e-4b1e-9a59-2f0c6c7d8e01
status: test
tags:
  - attack.impact
  - attack.t1490
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\vssadmin.exe'
    CommandLine|contains|all:
      - 'delete'
      - 'shadows'
  condition: selection
level: high
---
title: Scheduled task created
id: 5a1f3c0e-0d4e-4b1e-9a59-2f0c6c7d8e02
status: test
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\schtasks.exe'
  condition: selection
level: medium
"#;

fn seed(name: &str) -> PathBuf {
    Path::new(SEED).join(name)
}

fn attributes(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

struct Lab {
    _dir: tempfile::TempDir,
    store: Store,
    live: Arc<Livehunt>,
    pipeline: Pipeline,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let live = Arc::new(Livehunt::load(&store).unwrap());
        let pipeline = Pipeline::new(None).with_livehunt(live.clone());
        Lab {
            _dir: dir,
            store,
            live,
            pipeline,
        }
    }

    fn hunting(&self) -> Hunting<'_> {
        Hunting {
            store: &self.store,
            live: &self.live,
        }
    }

    /// Ingest one log as `sandscope ingest` and the API do; returns the sample's SHA-256.
    fn ingest(&self, file: &Path) -> String {
        let prepared = self
            .pipeline
            .prepare(&[file.to_path_buf()], &IngestOptions::default())
            .unwrap();
        let ids = self.store.put_reports(prepared.reports).unwrap();
        self.pipeline
            .notify(&self.store, prepared.livehunt, &ids)
            .unwrap();
        ids[0].split('_').next().unwrap().to_string()
    }

    /// (ruleset id, rule name, sha256) of every notification, sorted.
    fn notified(&self) -> Vec<(u64, String, String)> {
        let page = self
            .hunting()
            .notifications(&NotificationFilter::default(), 300, None)
            .unwrap();
        let mut all: Vec<_> = page
            .items
            .into_iter()
            .map(|n| (n.ruleset_id, n.rule_name, n.sha256))
            .collect();
        all.sort();
        all
    }
}

#[test]
fn sigma_and_query_rulesets_notify_on_exactly_their_samples() {
    let lab = Lab::new();
    let h = lab.hunting();
    let sigma = h
        .create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES, "tags": ["impact"]})),
            1_000,
        )
        .unwrap();
    let query = h
        .create_ruleset(
            &attributes(json!({
                "name": "miners",
                "rule_language": "query",
                "rules": "# XMR pool\nbehaviour_command_executions:\"pool.supportxmr.com\"\n\n# never\nbehaviour_files:\"no-such-file-anywhere.bin\"\n",
            })),
            1_000,
        )
        .unwrap();
    let disabled = h
        .create_ruleset(
            &attributes(json!({"name": "off", "rules": SHADOW_COPIES, "enabled": false})),
            1_000,
        )
        .unwrap();
    assert_eq!(
        sigma.rule_names,
        [
            "Shadow copies deleted with vssadmin",
            "Scheduled task created"
        ]
    );
    assert_eq!(query.rule_names, ["XMR pool", "never"]);

    let miner = lab.ingest(&seed("coinminer_sihost32_sysmon.xml"));
    let ransom = lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));
    assert_ne!(miner, ransom);
    assert_eq!(
        lab.notified(),
        vec![
            (
                sigma.id,
                "Scheduled task created".to_string(),
                miner.clone()
            ),
            (
                sigma.id,
                "Shadow copies deleted with vssadmin".to_string(),
                ransom.clone()
            ),
            (query.id, "XMR pool".to_string(), miner.clone()),
        ],
        "the disabled ruleset {} never notifies",
        disabled.id
    );

    // A hit is explained by the event that matched, and the file view carries the context.
    let page = h
        .notifications(
            &NotificationFilter::parse(&format!("ruleset_id:{} tag:attack.t1490", sigma.id))
                .unwrap(),
            10,
            None,
        )
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let n = &page.items[0];
    assert!(
        n.snippet.contains("vssadmin.exe delete shadows"),
        "{}",
        n.snippet
    );
    let file = n.to_file_object();
    assert_eq!(file["id"], json!(ransom));
    assert_eq!(file["context_attributes"]["ruleset_name"], json!("ransom"));
    assert_eq!(
        file["context_attributes"]["notification_id"],
        json!(n.id.to_string())
    );

    // Deleting a ruleset deletes its notifications; the others stay.
    h.delete_ruleset(sigma.id).unwrap();
    assert_eq!(
        lab.notified(),
        vec![(query.id, "XMR pool".to_string(), miner)]
    );
    assert!(h.ruleset(sigma.id).is_err());
}

#[test]
fn a_ruleset_over_its_limit_is_rate_limited_and_says_so() {
    let lab = Lab::new();
    let h = lab.hunting();
    // Both seed samples start a process: two matches, room for one.
    let r = h
        .create_ruleset(
            &attributes(json!({
                "name": "any process", "rule_language": "query", "limit": 1,
                "rules": "behaviour_processes:*.exe",
            })),
            1_000,
        )
        .unwrap();
    lab.ingest(&seed("coinminer_sihost32_sysmon.xml"));
    lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));
    assert_eq!(lab.notified().len(), 1);
    let now = sandscope_hunting::unix_now();
    let object = h.ruleset(r.id).unwrap().to_object(now);
    assert_eq!(object["attributes"]["rate_limited"], json!(true));
    assert_eq!(object["attributes"]["rate_limited_ratio"], json!(0.5));
}

#[test]
fn rulesets_persist_and_a_reopened_store_hunts_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        let live = Livehunt::load(&store).unwrap();
        let h = Hunting {
            store: &store,
            live: &live,
        };
        h.create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES})),
            1_000,
        )
        .unwrap()
        .id
    };
    let store = Store::open(dir.path()).unwrap();
    let live = Arc::new(Livehunt::load(&store).unwrap());
    assert_eq!(live.enabled(), 1);
    let pipeline = Pipeline::new(None).with_livehunt(live.clone());
    let prepared = pipeline
        .prepare(
            &[seed("ransomware_tutanota_sysmon.xml")],
            &IngestOptions::default(),
        )
        .unwrap();
    assert_eq!(prepared.livehunt.len(), 1);
    assert_eq!(prepared.livehunt[0].ruleset_id, id);
    let ids = store.put_reports(prepared.reports).unwrap();
    assert_eq!(pipeline.notify(&store, prepared.livehunt, &ids).unwrap(), 1);
    // The seam reads the stored sample back as the search would.
    let sha = ids[0].split('_').next().unwrap();
    assert!(RecordStore::sample_doc(&store, sha).unwrap().is_some());
}
