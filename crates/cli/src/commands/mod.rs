//! One module per subcommand.

pub mod cape;
pub mod diff;
pub mod events;
pub mod report;
