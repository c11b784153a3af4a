//! One module per subcommand.

pub mod bench;
pub mod cape;
pub mod diff;
pub mod events;
pub mod graph;
pub mod hunt;
pub mod ingest;
pub mod pivot;
pub mod report;
pub mod rules;
pub mod search;
pub mod serve;
pub mod show;
pub mod sigma_args;

use sandscope_store::{Store, StoreError};
use std::path::PathBuf;

/// Open the data directory for a command that only reads (search, show, pivot, graph): read-only,
/// so nothing is written and read-only media work. A directory that needs writing first (not
/// closed cleanly, or an index to rebuild) is opened for writing once to recover, when it can be.
pub fn open_store_for_reading(data: Option<PathBuf>) -> anyhow::Result<Store> {
    let dir = ingest::data_dir(data);
    let store = match Store::open_read_only(&dir) {
        Ok(store) => store,
        Err(e @ (StoreError::NeedsRecovery(_) | StoreError::IndexOutdated(_))) => {
            let (why, fix) = match e {
                StoreError::NeedsRecovery(_) => ("was not closed cleanly", "repair it"),
                _ => ("has a missing or outdated search index", "rebuild it"),
            };
            eprintln!(
                "note: {} {why}; opening it for writing once to {fix}",
                dir.display()
            );
            return Ok(Store::open(&dir)?);
        }
        Err(e) => return Err(e.into()),
    };
    let pending = store.pending_samples()?;
    if pending > 0 {
        eprintln!(
            "warning: {pending} sample(s) in {} are stored but not yet indexed, so searches miss them; the next write (`sandscope ingest`, `serve`) indexes them",
            dir.display()
        );
    }
    Ok(store)
}
