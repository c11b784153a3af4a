//! One module per subcommand.

pub mod events;
pub mod bench;
pub mod graph;
pub mod ingest;
pub mod pivot;
pub mod search;
