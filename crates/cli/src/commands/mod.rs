//! One module per subcommand.

pub mod bench;
pub mod cape;
pub mod control;
pub mod copy;
pub mod db;
pub mod diff;
pub mod events;
pub mod export;
pub mod graph;
pub mod hunt;
pub mod ingest;
pub mod jobs;
pub mod pivot;
pub mod publish;
pub mod report;
pub mod retrohunt;
pub mod rules;
pub mod rulesets;
pub mod search;
pub mod serve;
pub mod show;
pub mod sigma_args;
pub mod store_choice;
pub mod timeline;
pub mod watch;
pub mod worker;
mod worker_retrohunt;
