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
}

pub fn run(args: GraphArgs) -> Result<ExitCode> {
    // Written through a handle so a closed pipe (`| head`) is an error, not a panic.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let store = super::open_store_for_reading(args.data)?;
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
