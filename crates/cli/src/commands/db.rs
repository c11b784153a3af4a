//! `sandscope db init|upgrade --store URL`: create or upgrade a PostgreSQL store's schema.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sandscope_pgstore::{PgStore, SCHEMA_VERSION, SchemaChange};
use std::process::ExitCode;

#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Subcommand)]
pub enum DbAction {
    /// Create the schema in an empty PostgreSQL database (an existing current one is kept).
    Init(StoreUrl),
    /// Upgrade the schema of an existing store to this build's version.
    Upgrade(StoreUrl),
}

#[derive(Args)]
pub struct StoreUrl {
    /// The store: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
    #[arg(long, env = "SANDSCOPE_STORE")]
    pub store: String,
}

pub fn run(args: DbArgs) -> Result<ExitCode> {
    let change = match &args.action {
        DbAction::Init(u) => PgStore::init(&u.store),
        DbAction::Upgrade(u) => PgStore::upgrade(&u.store),
    }
    .context("preparing the PostgreSQL store")?;
    match change {
        SchemaChange::Created => println!("created the Sandscope schema, version {SCHEMA_VERSION}"),
        SchemaChange::Upgraded { from } => {
            println!("upgraded the Sandscope schema from version {from} to {SCHEMA_VERSION}")
        }
        SchemaChange::AlreadyCurrent => {
            println!("the Sandscope schema is already at version {SCHEMA_VERSION}")
        }
    }
    Ok(ExitCode::SUCCESS)
}
