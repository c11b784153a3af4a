//! `sandscope cape PATH`: import a CAPE / Cuckoo 2.x report and print it as a behaviour report.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use sandscope_model::{Envelope, FileBehaviour, ProcessNode};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Text,
}

#[derive(Args)]
pub struct CapeArgs {
    /// CAPE `report.json` / `lite.json` or Cuckoo 2.x `report.json` (plain, gzip or zip).
    pub path: PathBuf,
    /// `json`: VirusTotal's `{"data": file_behaviour}` envelope; `text`: for reading.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
}

pub fn run(args: CapeArgs) -> Result<ExitCode> {
    let report = sandscope_cape::import(args.path.as_path())?;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &Envelope { data: &report })?;
            writeln!(out)?;
        }
        OutputFormat::Text => write!(out, "{}", render_text(&report)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One attribute per block, one item per line; objects as `key=value` pairs.
pub fn render_text(report: &FileBehaviour) -> Result<String> {
    let mut text = format!("{}\n", report.id);
    let attributes = serde_json::to_value(&report.attributes).context("serialising the report")?;
    let Value::Object(map) = attributes else {
        return Ok(text);
    };
    for (key, value) in &map {
        match value {
            Value::Array(items) if key == "processes_tree" => {
                text.push_str("processes_tree:\n");
                let nodes: Vec<ProcessNode> = serde_json::from_value(Value::Array(items.clone()))?;
                tree(&nodes, 1, &mut text);
            }
            Value::Array(items) => {
                text.push_str(&format!("{key}:\n"));
                for item in items {
                    text.push_str(&format!("  - {}\n", inline(item)));
                }
            }
            other => text.push_str(&format!("{key}: {}\n", inline(other))),
        }
    }
    Ok(text)
}

fn tree(nodes: &[ProcessNode], depth: usize, text: &mut String) {
    for node in nodes {
        text.push_str(&format!(
            "{}{} {}\n",
            "  ".repeat(depth),
            node.process_id,
            node.name
        ));
        tree(&node.children, depth + 1, text);
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", inline(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => items.iter().map(inline).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
