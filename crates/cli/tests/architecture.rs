//! ARCHITECTURE.md's layering, checked against the workspace's real dependency graph.
//!
//! The crates form layers; a crate's normal (non-dev) dependencies on our own crates must all
//! be in lower layers. Tests and benchmarks may read files through higher crates (a report
//! builder's tests read logs), so dev-dependencies are not checked.

use std::collections::BTreeMap;
use std::process::Command;

/// The layers as ARCHITECTURE.md's "Code map" lists them, lowest first.
const LAYERS: &[&[&str]] = &[
    &[
        "sandscope-event",
        "sandscope-model",
        "sandscope-normalise",
        "sandscope-queue",
    ],
    &[
        "sandscope-read",
        "sandscope-query",
        "sandscope-sigma",
        "sandscope-report",
        "sandscope-export",
    ],
    &["sandscope-cape", "sandscope-store"],
    &["sandscope-hunting", "sandscope-pgstore"],
    &["sandscope-ingest"],
    &["sandscope-server"],
    &["sandscope"],
];

fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&name))
}

/// Each workspace crate's normal dependencies on other workspace crates, from `cargo metadata`.
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    let ours: Vec<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|package| {
            let name = package["name"].as_str().unwrap_or_default().to_owned();
            let deps = package["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| ours.iter().any(|o| o == d))
                .map(str::to_owned)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn every_crate_is_in_a_layer_and_depends_only_on_lower_layers() {
    let graph = workspace_dependencies();
    assert!(
        graph.len() >= 13,
        "cargo metadata listed only {:?}",
        graph.keys()
    );
    let mut wrong = Vec::new();
    for (name, deps) in &graph {
        let Some(layer) = layer_of(name) else {
            wrong.push(format!(
                "{name} is in no layer: add it to ARCHITECTURE.md and LAYERS"
            ));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(l) if l < layer => {}
                _ => wrong.push(format!("{name} (layer {layer}) depends on {dep}")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_architecture_document_names_every_crate() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ARCHITECTURE.md"
    ))
    .expect("ARCHITECTURE.md at the workspace root");
    for name in workspace_dependencies().keys() {
        assert!(
            doc.contains(&format!("`{name}`")),
            "ARCHITECTURE.md has no codemap entry naming `{name}`"
        );
    }
}
