//! The Sigma options shared by `report` and `ingest`: which rules go into the behaviour
//! reports' `sigma_analysis_results`.

use anyhow::Result;
use clap::Args;
use sandscope_sigma::{SigmaEngine, SigmaEngineBuilder};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone, Default)]
pub struct SigmaArgs {
    /// Sigma rule files or folders, added to the bundled SigmaHQ rules.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Use only the `--rules` given, not the bundled SigmaHQ rules.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Do not run Sigma (no `sigma_analysis_results` in the reports).
    #[arg(long, conflicts_with_all = ["rules", "no_default_rules"])]
    pub no_sigma: bool,
}

impl SigmaArgs {
    /// Whether any Sigma option was given (a server ingests with its own engine only).
    pub fn is_set(&self) -> bool {
        !self.rules.is_empty() || self.no_default_rules || self.no_sigma
    }

    /// The engine to keep resident for every report, or `None` with `--no-sigma`.
    pub fn engine(&self) -> Result<Option<Arc<SigmaEngine>>> {
        if self.no_sigma {
            return Ok(None);
        }
        let mut builder = SigmaEngineBuilder::new();
        if !self.no_default_rules {
            builder.add_bundled()?;
        }
        for path in &self.rules {
            builder.add_path(path)?;
        }
        let (engine, load) = builder.build();
        if load.rejected() > 0 {
            eprintln!(
                "sigma: {} rule(s) rejected (see `sandscope rules check`)",
                load.rejected()
            );
        }
        Ok(Some(Arc::new(engine)))
    }
}
