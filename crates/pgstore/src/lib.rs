//! The PostgreSQL report store: what the embedded store (`sandscope-store`) keeps, on a shared
//! database any number of processes on any number of machines can use at once, with exactly
//! the embedded store's search semantics.
//!
//! # Layout (schema version [`SCHEMA_VERSION`], see `schema`)
//! * `reports` — one row per report: `sha256`, `report_id`, the report as deflated JSON
//!   (`codec`; chosen over `jsonb` by measurement: see below);
//! * `raw_logs` / `raw_log_chunks` — the log a report was built from, in 1 MiB `bytea` chunks,
//!   written and read one chunk at a time;
//! * `samples` — one row per sample: first and last analysis date, distinct Sigma rules per
//!   level (the query crate's `SampleDoc`);
//! * `sample_values` — every spelling of every text value of a sample, per field, in the query
//!   crate's padded normal form, with a `pg_trgm` GIN index (the substring filter);
//! * `sample_tokens` — the sample's tokens per field (B-tree for equality, `pg_trgm` for `*`);
//! * `records` / `record_counters` — hunting's keyed records (Livehunt rulesets,
//!   notifications) as opaque bytes under (`kind`, `id`), and each kind's id counter: the
//!   `RecordStore` seam (`records`), schema version 2;
//! * `sandscope_schema` — the schema version; a store of another version is refused on open.
//!
//! A sample's rows are rebuilt from all its stored reports, in the transaction that writes
//! them, through `SampleDoc::from_reports`: the same view the embedded store indexes.
//!
//! # Reports: deflated JSON, not `jsonb`
//! Measured on the reports of the 25 vendored Sysmon logs (`tests/report_format.rs` re-measures
//! and checks it): 75,078 bytes of JSON take 16,898 bytes deflated and 30,973 bytes as `jsonb`
//! (PostgreSQL compresses a value with pglz only past 2 kB): `jsonb` is 1.8 times larger. No
//! query reads inside a report — everything searched is in the sample tables — so `jsonb`'s
//! operators would buy nothing for that size.
//!
//! # Written for Citus
//! Every large table has the sample's `sha256` as its first primary-key column: it is the
//! distribution column, and `db init` calls `create_distributed_table` (co-located with
//! `samples`) and `create_reference_table` (the small tables: `sandscope_schema`, `records`,
//! `record_counters`) when the `citus` extension is present. What this crate avoids, and why:
//! * no `serial`/identity columns or sequences: ids are the SHA-256 and the report id, so no
//!   node must hand out numbers; hunting's record ids come from one counter row per kind in
//!   a reference table (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, one atomic statement);
//! * no foreign keys and no triggers: Citus supports them only in limited forms, and a
//!   sample's rows are rebuilt in one transaction instead;
//! * every join and subquery is on `sha256` (`s.sha256 IN (SELECT v.sha256 … )`), so it runs
//!   on the shard that holds the sample (co-located) and is pushed down whole;
//! * every write names its sample (`WHERE sha256 = $1`, `ON CONFLICT` on keys that include
//!   `sha256`), so it routes to one shard;
//! * no window functions, no CTEs with side effects and no cross-sample aggregates other than
//!   `count(*)` and `ORDER BY … LIMIT`, which Citus pushes down and merges;
//! * no `LISTEN/NOTIFY`, no advisory locks outside `db init` (which runs on the coordinator).
//!
//! # Connections
//! The server's `Backend` seam is synchronous, so the synchronous `postgres` client fits it
//! without a runtime of its own, and `r2d2` bounds how many connections a process holds.
//! TLS is not supported yet (`sslmode=disable` or a local network). Every SQL value is a
//! parameter; no query text from a user becomes SQL text.

mod codec;
mod connect;
mod detonations;
mod error;
mod read;
mod records;
mod schema;
mod search;
mod write;

pub use connect::is_store_url;
pub use error::{PgStoreError, Result};
pub use schema::{SCHEMA_VERSION, SchemaChange};

use r2d2::PooledConnection;

/// A Sandscope store in a PostgreSQL database. `Send + Sync`: threads share its pool.
pub struct PgStore {
    pool: connect::Pool,
    target: String,
}

impl PgStore {
    /// Connect to the store at `url` (`postgres://…`); refuses a database without the
    /// schema or with another version, saying what to run.
    pub fn open(url: &str) -> Result<PgStore> {
        let target = connect::parse(url)?;
        let mut client = connect::connect(&target)?;
        schema::check(&mut client, &target)?;
        Ok(PgStore {
            pool: connect::pool(&target),
            target: target.shown,
        })
    }

    /// Create the schema in the database at `url` (`sandscope db init`), or upgrade an older
    /// one (`db upgrade`); a current schema is left as it is.
    pub fn init(url: &str) -> Result<SchemaChange> {
        let target = connect::parse(url)?;
        let mut client = connect::connect(&target)?;
        schema::init_or_upgrade(&mut client, &target)
    }

    /// Upgrade the schema of an existing store (`sandscope db upgrade`); a database without
    /// one is refused (that is `db init`'s job).
    pub fn upgrade(url: &str) -> Result<SchemaChange> {
        let target = connect::parse(url)?;
        let mut client = connect::connect(&target)?;
        if schema::stored_version(&mut client)?.is_none() {
            return Err(PgStoreError::NoSchema {
                target: target.shown,
            });
        }
        schema::init_or_upgrade(&mut client, &target)
    }

    /// Where the store is (`host:port/database`, no password), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn client(&self) -> Result<PooledConnection<connect::Manager>> {
        Ok(self.pool.get()?)
    }
}
