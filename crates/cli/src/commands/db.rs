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
    Init(InitArgs),
    /// Upgrade the schema of an existing store to this build's version.
    Upgrade(StoreUrl),
}

#[derive(Args)]
pub struct StoreUrl {
    /// The store: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
    #[arg(long, env = "SANDSCOPE_STORE")]
    pub store: String,
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub url: StoreUrl,
    /// Lay the large tables out over several PostgreSQL servers: every server's URL, the
    /// store's first, comma-separated. Each holds one hash partition (by SHA-256); the others
    /// are reached from the store's server through postgres_fdw.
    #[arg(long, value_delimiter = ',', value_name = "URL1,URL2,…")]
    pub shards: Vec<String>,
}

pub fn run(args: DbArgs) -> Result<ExitCode> {
    let change = match &args.action {
        DbAction::Init(a) => PgStore::init_sharded(&a.url.store, &a.shards),
        DbAction::Upgrade(u) => PgStore::upgrade(&u.store),
    }
    .context("preparing the PostgreSQL store")?;
    match change {
        SchemaChange::Created => match &args.action {
            DbAction::Init(a) if !a.shards.is_empty() => println!(
                "created the Sandscope schema, version {SCHEMA_VERSION}, its large tables \
                 partitioned over {} servers",
                a.shards.len()
            ),
            _ => println!("created the Sandscope schema, version {SCHEMA_VERSION}"),
        },
        SchemaChange::Upgraded { from } => {
            println!("upgraded the Sandscope schema from version {from} to {SCHEMA_VERSION}")
        }
        SchemaChange::AlreadyCurrent => {
            println!("the Sandscope schema is already at version {SCHEMA_VERSION}")
        }
        SchemaChange::LayoutRefreshed { changes } => {
            println!(
                "the Sandscope schema is already at version {SCHEMA_VERSION}; brought its \
                 servers up to date:"
            );
            for change in changes {
                println!("  {change}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
