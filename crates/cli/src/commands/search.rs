use super::store_choice::ReportStore;
use anyhow::Result;
use clap::{Args, ValueEnum};
use sandscope_store::{Order, SearchLimits, SearchPage, SearchRequest};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct SearchArgs {
    /// A VirusTotal Intelligence query, e.g. `behaviour_files:@tutanota.com`.
    pub query: String,
    /// Results per page (1–300).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// The `meta.cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// first_seen- (newest first), first_seen+, last_seen-, last_seen+.
    #[arg(long, default_value = "first_seen-")]
    pub order: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
    /// Seconds the search may run before it stops with an error.
    #[arg(long, value_parser = seconds, default_value = "10")]
    pub timeout: std::time::Duration,
    /// Work units the search may spend (candidates, postings and positions examined) before
    /// it stops with an error.
    #[arg(long, default_value_t = sandscope_store::DEFAULT_MAX_WORK)]
    pub budget: u64,
}

/// A `--timeout`-style argument: a positive number of seconds.
pub fn seconds(text: &str) -> std::result::Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("not a positive number of seconds: {text}"))
}

pub fn date(t: Option<i64>) -> String {
    t.and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// VirusTotal's search envelope.
pub fn envelope(page: &SearchPage) -> serde_json::Value {
    let data: Vec<_> = page
        .hits
        .iter()
        .map(|h| {
            let [critical, high, medium, low] = h.sigma;
            serde_json::json!({
                "id": h.sha256,
                "type": "file",
                "attributes": {
                    "sha256": h.sha256,
                    "first_submission_date": h.first_seen,
                    "last_submission_date": h.last_seen,
                    "sandbox_names": h.sandboxes,
                    "behaviour_ids": h.report_ids,
                    "tags": h.tags,
                    "sigma_analysis_stats": {"critical": critical, "high": high, "medium": medium, "low": low},
                },
                "context_attributes": {"snippets": h.snippets},
            })
        })
        .collect();
    serde_json::json!({
        "data": data,
        "meta": {
            "cursor": page.next_cursor,
            "total_hits": page.total_hits,
            "total_hits_relation": if page.total_hits_exact { "eq" } else { "gte" },
        },
    })
}

pub fn run(args: SearchArgs) -> Result<ExitCode> {
    if let Some(url) = args.store.clone() {
        return super::store_choice::postgres_command(&url, |store, out| execute(args, store, out));
    }
    let data = args.data.clone();
    super::control::read_command(data, |store, out| execute(args, store, out))
}

/// Run the search on `store`, writing the page to `out`.
pub fn execute(args: SearchArgs, store: &dyn ReportStore, out: &mut dyn Write) -> Result<ExitCode> {
    let mut request = SearchRequest::new(args.query);
    request.limit = args.limit;
    request.cursor = args.cursor;
    request.order = Order::parse(&args.order)?;
    request.limits = SearchLimits {
        max_work: args.budget,
        deadline: Some(std::time::Instant::now() + args.timeout),
        ..SearchLimits::default()
    };
    let page = store.search(&request)?;
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&envelope(&page))?)?,
        OutputFormat::Table => {
            writeln!(
                out,
                "{:<64}  {:<19}  {:<24}  snippet",
                "sha256", "first seen", "sandboxes"
            )?;
            for h in &page.hits {
                writeln!(
                    out,
                    "{:<64}  {:<19}  {:<24}  {}",
                    h.sha256,
                    date(h.first_seen),
                    h.sandboxes.join(", "),
                    h.snippets.first().map(String::as_str).unwrap_or("")
                )?;
            }
            if page.total_hits_exact {
                writeln!(out, "{} sample(s) match", page.total_hits)?;
            } else {
                writeln!(out, "at least {} samples match", page.total_hits)?;
            }
            if let Some(c) = &page.next_cursor {
                writeln!(out, "next page: --cursor {c}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
