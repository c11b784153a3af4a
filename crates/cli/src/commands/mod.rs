//! One module per subcommand.

pub mod bench;
pub mod cape;
pub mod diff;
pub mod events;
pub mod hunt;
pub mod report;
pub mod rules;
