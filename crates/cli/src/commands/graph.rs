use super::store_choice::ReportStore;
use anyhow::Result;
use clap::{Args, ValueEnum};
use sandscope_store::GraphFormat;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Dot,
    Graphml,
}

#[derive(Args)]
pub struct GraphArgs {
    pub sha256: String,
    /// Hops from the sample: 1 = its indicators, 2 = samples sharing them, 3 = their indicators…
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    #[arg(long, default_value_t = 200)]
    pub max_nodes: usize,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

pub fn run(args: GraphArgs) -> Result<ExitCode> {
    if let Some(url) = args.store.clone() {
        return super::store_choice::postgres_command(&url, |store, out| execute(args, store, out));
    }
    let data = args.data.clone();
    super::control::read_command(data, |store, out| execute(args, store, out))
}

/// Export the sample's graph from `store` to `out`.
pub fn execute(args: GraphArgs, store: &dyn ReportStore, out: &mut dyn Write) -> Result<ExitCode> {
    let graph = store.graph(&args.sha256, args.depth, args.max_nodes)?;
    let format = match args.format {
        Format::Json => GraphFormat::Json,
        Format::Dot => GraphFormat::Dot,
        Format::Graphml => GraphFormat::GraphMl,
    };
    write!(out, "{}", graph.export(format))?;
    if matches!(format, GraphFormat::Json) {
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
