//! One module per subcommand.

pub mod events;
pub mod bench;
pub mod hunt;
pub mod rules;
