//! `sandscope diff A B`: what only one of two behaviour reports saw. Each side is a report
//! file (JSON, or a CAPE/Cuckoo report) or the id of a stored report
//! (`<sha256>_<sandbox name>`).

use super::cape::OutputFormat;
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_model::{FileBehaviour, diff_reports};
use sandscope_store::Store;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Report JSON files are small; a larger file is not one of ours.
const MAX_REPORT_JSON_BYTES: u64 = 256 << 20;

#[derive(Args)]
pub struct DiffArgs {
    /// A behaviour report (JSON as printed by `sandscope report`/`cape`, a single
    /// `file_behaviour` or a one-report `data` list), a CAPE / Cuckoo report to import, or the
    /// id of a stored report (`<sha256>_<sandbox name>`, as `sandscope show` lists them).
    pub left: PathBuf,
    /// The report to compare with (a file or a stored report's id).
    pub right: PathBuf,
    /// Data directory of stored reports (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// `text`: `<` only left, `>` only right, `=` both; `json`: the same as data.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub fn run(args: DiffArgs) -> Result<ExitCode> {
    if args.left.exists() && args.right.exists() {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        return execute(args, None, &mut out);
    }
    let data = args.data.clone();
    super::control::read_command(data, |store, out| execute(args, Some(store), out))
}

/// Compare the two sides (files, or reports of `store`) and write the difference to `out`.
pub fn execute(args: DiffArgs, store: Option<&Store>, out: &mut dyn Write) -> Result<ExitCode> {
    let left = load_side(&args.left, store)?;
    let right = load_side(&args.right, store)?;
    let diff = diff_reports(&left, &right);
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &diff)?;
            writeln!(out)?;
        }
        OutputFormat::Text => write!(out, "{diff}")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One side of a diff: a report file, else a stored report of that id.
fn load_side(side: &Path, store: Option<&Store>) -> Result<FileBehaviour> {
    let Some(store) = store.filter(|_| !side.exists()) else {
        return load_report(side);
    };
    let id = side.to_string_lossy();
    match store.report(&id)? {
        Some(report) => Ok(report),
        None => bail!(
            "{id}: neither a file nor a stored report id (`<sha256>_<sandbox name>`, as \
             `sandscope show SHA256` lists them)"
        ),
    }
}

/// A report file: a sandbox report is imported on the fly, anything else must be report JSON.
pub fn load_report(path: &Path) -> Result<FileBehaviour> {
    if sandscope_cape::looks_like_report_file(path) {
        return Ok(sandscope_cape::import(path)?);
    }
    let mut text = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("{}", path.display()))?
        .take(MAX_REPORT_JSON_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("{}", path.display()))?;
    if text.len() as u64 > MAX_REPORT_JSON_BYTES {
        bail!(
            "{}: larger than {MAX_REPORT_JSON_BYTES} bytes",
            path.display()
        );
    }
    let value: Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let object = match value.get("data") {
        Some(Value::Array(items)) => match items.as_slice() {
            [one] => one.clone(),
            [] => bail!("{}: the `data` list holds no report", path.display()),
            many => {
                let ids: Vec<&str> = many
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .collect();
                bail!(
                    "{}: {} reports in one file ({}); save the one to compare on its own",
                    path.display(),
                    many.len(),
                    ids.join(", ")
                )
            }
        },
        Some(one) => one.clone(),
        None => value,
    };
    serde_json::from_value(object).with_context(|| {
        format!(
            "{}: neither a behaviour report nor a CAPE/Cuckoo report",
            path.display()
        )
    })
}
