use super::search::OutputFormat;
use super::store_choice::ReportStore;
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct PivotArgs {
    pub sha256: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

pub fn run(args: PivotArgs) -> Result<ExitCode> {
    if let Some(url) = args.store.clone() {
        return super::store_choice::postgres_command(&url, |store, out| execute(args, store, out));
    }
    let data = args.data.clone();
    super::control::read_command(data, |store, out| execute(args, store, out))
}

/// List the sample's indicators from `store` on `out`.
pub fn execute(args: PivotArgs, store: &dyn ReportStore, out: &mut dyn Write) -> Result<ExitCode> {
    let indicators = store.pivot(&args.sha256)?;
    match args.format {
        OutputFormat::Json => {
            let v: Vec<_> = indicators
                .iter()
                .map(|i| {
                    serde_json::json!({"type": i.kind.name(), "value": i.value,
                        "other_samples": i.other_samples, "query": i.query})
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        OutputFormat::Table => {
            writeln!(out, "{:<20} {:>6}  value / query", "indicator", "others")?;
            for i in &indicators {
                writeln!(
                    out,
                    "{:<20} {:>6}  {}",
                    i.kind.name(),
                    i.other_samples,
                    i.value
                )?;
                writeln!(out, "{:<20} {:>6}  {}", "", "", i.query)?;
            }
            if indicators.is_empty() {
                writeln!(out, "no indicators (unknown sample?)")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
