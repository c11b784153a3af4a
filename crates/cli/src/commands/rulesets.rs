//! `sandscope rulesets add|list|show|enable|disable|delete`: Livehunt rulesets in the data
//! directory or a PostgreSQL store (`--store`), through `sandscope-hunting` (the same code the
//! API's `/intelligence/hunting_rulesets` runs). Every report ingested afterwards is evaluated
//! against the enabled ones. The data directory must not be held by a running `serve`: use
//! the API then (a PostgreSQL store may be changed while servers run).

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use sandscope_hunting::{Hunting, Livehunt, Ruleset, unix_now};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct RulesetsArgs {
    #[command(subcommand)]
    pub command: RulesetsCommand,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, global = true, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    Sigma,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum RulesetsCommand {
    /// Add a ruleset: Sigma rules (YAML documents) or Intelligence queries (one per line, `#`
    /// comments) from FILE.
    Add {
        name: String,
        file: PathBuf,
        /// The rules' language (default: sigma for .yml/.yaml files, else query).
        #[arg(long, value_enum)]
        language: Option<Language>,
        /// Notifications per 24 hours.
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the rulesets.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// One ruleset as the API returns it (JSON).
    Show {
        id: u64,
    },
    Enable {
        id: u64,
    },
    Disable {
        id: u64,
    },
    /// Delete a ruleset and the notifications it raised.
    Delete {
        id: u64,
    },
}

pub fn run(args: RulesetsArgs) -> Result<ExitCode> {
    if let Some(url) = &args.store {
        let store = Arc::new(super::store_choice::open_postgres(url)?);
        let live = Livehunt::load(store.clone())?;
        let hunting = Hunting {
            store: store.as_ref(),
            live: &live,
        };
        let stdout = std::io::stdout();
        return execute(args.command, &hunting, &mut stdout.lock());
    }
    let data = super::ingest::data_dir(args.data.clone());
    let (store, _owner) = super::control::open_store(&data, "rulesets")?;
    let store = Arc::new(store);
    let live = Livehunt::load(store.clone())?;
    let hunting = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let stdout = std::io::stdout();
    execute(args.command, &hunting, &mut stdout.lock())
}

/// Run one subcommand over `hunting`, writing to `out`.
pub fn execute(
    command: RulesetsCommand,
    hunting: &Hunting<'_>,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let now = unix_now();
    match command {
        RulesetsCommand::Add {
            name,
            file,
            language,
            limit,
            tags,
            disabled,
        } => {
            let rules = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let language =
                language.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
                    Some("yml" | "yaml") => Language::Sigma,
                    _ => Language::Query,
                });
            let mut attributes = Map::new();
            attributes.insert("name".into(), json!(name));
            attributes.insert("rules".into(), json!(rules));
            let language = match language {
                Language::Sigma => "sigma",
                Language::Query => "query",
            };
            attributes.insert("rule_language".into(), json!(language));
            attributes.insert("enabled".into(), json!(!disabled));
            if let Some(limit) = limit {
                attributes.insert("limit".into(), json!(limit));
            }
            if !tags.is_empty() {
                attributes.insert("tags".into(), json!(tags));
            }
            let ruleset = hunting.create_ruleset(&attributes, now)?;
            writeln!(
                out,
                "added ruleset {} ({}, {} rule(s))",
                ruleset.id,
                ruleset.name,
                ruleset.rule_names.len()
            )?;
        }
        RulesetsCommand::List { format } => {
            let mut all: Vec<Ruleset> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = hunting.list_rulesets("", "creation_date+", 300, cursor.as_deref())?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            match format {
                ListFormat::Json => {
                    let data: Vec<Value> =
                        all.iter().map(|r| hunting.ruleset_object(r, now)).collect();
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&json!({ "data": data }))?
                    )?;
                }
                ListFormat::Table => {
                    writeln!(
                        out,
                        "id\tenabled\tlanguage\trules\tlimit\trate_limited\tname"
                    )?;
                    for r in &all {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            r.id,
                            r.enabled,
                            r.rule_language.as_str(),
                            r.rule_names.len(),
                            r.limit,
                            r.window.rate_limited(now),
                            r.name
                        )?;
                    }
                }
            }
        }
        RulesetsCommand::Show { id } => {
            let ruleset = hunting.ruleset(id)?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "data": hunting.ruleset_object(&ruleset, now) })
                )?
            )?;
        }
        RulesetsCommand::Enable { id } | RulesetsCommand::Disable { id } => {
            let enabled = matches!(command, RulesetsCommand::Enable { .. });
            let mut attributes = Map::new();
            attributes.insert("enabled".into(), json!(enabled));
            let r = hunting.update_ruleset(id, &attributes, now)?;
            let state = if r.enabled { "enabled" } else { "disabled" };
            writeln!(out, "ruleset {} ({}) {state}", r.id, r.name)?;
        }
        RulesetsCommand::Delete { id } => {
            hunting.delete_ruleset(id)?;
            writeln!(out, "deleted ruleset {id} and its notifications")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
