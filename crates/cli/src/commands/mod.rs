//! One module per subcommand.

pub mod bench;
pub mod events;
pub mod hunt;
pub mod rules;
