//! One module per subcommand.

pub mod bench;
pub mod events;
pub mod graph;
pub mod ingest;
pub mod pivot;
pub mod search;
