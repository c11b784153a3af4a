//! The PostgreSQL report store: what the embedded store (`sandscope-store`) keeps, on a shared
//! database any number of processes on any number of machines can use at once, with exactly
//! the embedded store's search semantics.
//!
//! # Layout (schema version [`SCHEMA_VERSION`], see `schema`)
//! * `reports` — one row per report: `sha256`, `report_id`, the report as JSON compressed with
//!   zstd and a dictionary trained on the store's first reports (`codec`, schema version 4;
//!   older rows are deflated JSON and still read; chosen over `jsonb` by measurement: below);
//! * `report_dicts` — those dictionaries (schema version 4), written once, never changed;
//! * `raw_logs` / `raw_log_chunks` — the log a report was built from, in 1 MiB `bytea` chunks,
//!   written and read one chunk at a time;
//! * `samples` — one row per sample: first and last analysis date, distinct Sigma rules per
//!   level (the query crate's `SampleDoc`), and its values, one column per field
//!   (`search::fields`): every spelling of every text value in the query crate's padded normal
//!   form joined by a separator no value contains, each text column with a `pg_trgm` GIN
//!   index (the substring filter), and each token field's tokens as a `text[]` with a plain
//!   GIN index (tokens match whole; the sample's own SHA-256 token is the row's key); schema
//!   version 3 replaced version 2's one row per sample and value (`sample_values`,
//!   `sample_tokens`), version 4 the token columns' joined text and trigram indexes;
//! * `records` / `record_counters` — hunting's keyed records (Livehunt rulesets,
//!   notifications) as opaque bytes under (`kind`, `id`), and each kind's id counter: the
//!   `RecordStore` seam (`records`), schema version 2;
//! * `sandscope_schema` — the schema version; a store of another version is refused on open.
//! * `sandscope_shards` — only on several servers (`db init --shards`, see below): where each
//!   partition of the large tables is.
//!
//! A sample's row is rebuilt from all its stored reports, in the transaction that writes
//! them, through `SampleDoc::from_reports`: the same view the embedded store indexes (a new
//! sample's row is inserted whole from the batch's reports, see `rebuild`).
//!
//! # Reports: compressed JSON, not `jsonb`
//! Measured on the reports of the 25 vendored Sysmon logs (`tests/report_format.rs` re-measures
//! and checks it): 75,078 bytes of JSON took 16,898 bytes deflated and 30,973 bytes as `jsonb`
//! (PostgreSQL compresses a value with pglz only past 2 kB): `jsonb` is 1.8 times larger. No
//! query reads inside a report — everything searched is in the sample tables — so `jsonb`'s
//! operators would buy nothing for that size. Since schema version 4 a report is compressed
//! with zstd and a dictionary trained once the store has 200 reports (the embedded store's
//! scheme; `codec`), which holds what reports share, so each costs about what is its own.
//!
//! # Written for Citus
//! Every large table has the sample's `sha256` as its first primary-key column: it is the
//! distribution column, and `db init` calls `create_distributed_table` (co-located with
//! `samples`) and `create_reference_table` (the small tables: `sandscope_schema`, `records`,
//! `record_counters`, `report_dicts`) when the `citus` extension is present. A search reads `samples` alone
//! (its values are columns of the sample's row), so every shard answers its part of a query
//! by itself. What this crate avoids, and why:
//! * no `serial`/identity columns or sequences: ids are the SHA-256 and the report id, so no
//!   node must hand out numbers; hunting's record ids come from one counter row per kind in
//!   a reference table (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, one atomic statement);
//! * no foreign keys and no triggers: Citus supports them only in limited forms, and a
//!   sample's rows are rebuilt in one transaction instead;
//! * every join and subquery is on `sha256` (`s.sha256 IN (SELECT v.sha256 … )`), so it runs
//!   on the shard that holds the sample (co-located) and is pushed down whole;
//! * every write to a large table names its samples (`WHERE sha256 = ANY($1)`), and none uses
//!   `ON CONFLICT DO UPDATE` (a replaced report is deleted and inserted again; a new sample's
//!   row is claimed with `ON CONFLICT DO NOTHING`), which a `postgres_fdw` foreign partition
//!   refuses; a batch writes each table with one statement (arrays through `unnest`);
//! * no window functions, no CTEs with side effects and no cross-sample aggregates other than
//!   `count(*)` and `ORDER BY … LIMIT`, which Citus pushes down and merges; a search's one
//!   read-only CTE (the matches, at most the exact-count limit plus one) Citus runs as a
//!   subplan whose rows it collects on the coordinator, which then counts and pages them;
//!   when the query is an `OR` of text terms each test is a statement of its own with that
//!   `LIMIT` (`search::translate`), which every shard applies and the coordinator again; the
//!   store merges their rows and stops running them once past the limit;
//! * planner settings are transaction-local (`set_config(…, true)`: a search's `work_mem`,
//!   `enable_seqscan` and `jit`, `planner`); they steer the coordinator's plan, not each Citus
//!   worker's, which plans its shard on its own statistics and settings (the sharded layout
//!   below gives its remote sessions the same settings through the foreign server instead);
//! * no `LISTEN/NOTIFY`, no advisory locks outside `db init` (which runs on the coordinator).
//!
//! # Several servers without Citus: `db init --shards URL1,URL2,…` (`layout`)
//! The large tables are hash-partitioned by `sha256` (`PARTITION BY HASH`, modulus = number
//! of servers): partition 0 is a local table on the store's server, partition `i` a
//! `postgres_fdw` foreign table (`async_capable`) on server `i + 1`, where `db init` creates
//! the real table with the same primary key and indexes (the trigram GIN ones too). Every
//! table uses the same modulus on the same column, so all rows of one sample live on one
//! server. Each table is described once (`schema::large_tables`); the plain, partitioned and
//! remote DDL are generated from that. The small tables stay on the store's server. The
//! layout is kept in `sandscope_shards`; every open, `db init` and `db upgrade` reaches each
//! foreign partition and refuses, naming the server, when one cannot be used. The user
//! mapping is for the role that ran `db init` (other roles need their own mapping).
//! Each foreign server carries libpq's `options` with the search's planner settings
//! (`planner`: `work_mem`, `enable_seqscan`, `jit`), so the sessions `postgres_fdw` opens on the
//! other servers plan a search's scan of their partition as the store's server plans its own
//! (a transaction's `set_config` does not reach them). A store laid out before gets them
//! from `db upgrade` or `db init` (`layout::refresh`), not from open (which changes nothing).
//! Each foreign server's `batch_size` (100) lets postgres_fdw send a batch's reports to its
//! partition in one `INSERT` per 100 rows instead of one per row (an `INSERT … RETURNING`, the
//! new samples' rows, still goes row by row; `layout`). A search counts each server's share
//! of the exact-count limit at once (`search`), and each foreign `samples` partition's
//! `fetch_size` (that share: 5,001 on two servers) brings it in one fetch, run on that server
//! while the store's server scans its own partition (`layout`).
//!
//! What foreign partitions lack (PostgreSQL 15) and what this crate does about it:
//! * no unique index on a partitioned table that has a foreign partition: the primary key is
//!   on each partition instead (local and remote). It still holds store-wide because its first
//!   column, `sha256`, decides the partition;
//! * `INSERT … ON CONFLICT DO UPDATE`, and any `ON CONFLICT` with a conflict target, cannot
//!   reach a foreign partition: a report is replaced by `DELETE` then `INSERT` in the batch's
//!   transaction, and a sample's row is made with `ON CONFLICT DO NOTHING` (no target) and
//!   locked with `SELECT … FOR UPDATE`. The reference tables (hunting's records) keep their
//!   upserts: they are never partitioned;
//! * `CREATE INDEX` on the partitioned table skips foreign partitions: `db init` creates each
//!   index on the remote table itself, and an upgrade that changes a large table must do so on
//!   every server (`schema::UPGRADES` runs on the store's server only, so a sharded store,
//!   which is created at version 3 or later, is refused by `db upgrade` until one does);
//! * no atomic commit across servers (no two-phase commit in `postgres_fdw`): the remote
//!   transactions commit just before the local one. A sample is never split (its rows share a
//!   server), but a batch whose samples are on both servers can, if the store's server fails in
//!   that instant, be stored on one server only; `put_reports` has then not returned `Ok`, so
//!   nothing acknowledged is lost, and writing the batch again replaces it (writes are keyed
//!   by report id);
//! * the remote side runs at `REPEATABLE READ` (postgres_fdw's rule) while the local side is
//!   `READ COMMITTED`: two batches writing the same sample at once on a foreign partition
//!   fail with a serialization error where one server would make the second wait, so
//!   `put_reports` writes a batch that failed so again (the other batch has committed by then;
//!   `tests/store.rs` runs eight at once). A search reads each server at its own snapshot, not
//!   one snapshot of both;
//! * no maintenance command reaches a foreign table: `size_bytes` and `compact` reach each
//!   other server through contrib's `dblink` instead (`db init` creates it; a store laid out
//!   before gets it from `db upgrade`), which takes the foreign server's name and logs in with
//!   its user mapping (so no password is kept outside it): the sizes are summed over every
//!   server, and each server vacuums and reindexes its own partition. `ANALYZE` samples the
//!   foreign partitions through the FDW for the store's server's statistics; each other
//!   server's own statistics, which plan the scans shipped there, are its autovacuum's;
//! * a search's scans of `samples` (one, or one per test for an `OR` of text terms) each
//!   reach the foreign partition as a foreign scan that ships its filter — the `LIKE`
//!   (asserted in `tests/store.rs` from the plans `EXPLAIN VERBOSE` prints), the dates — the
//!   remote trigram index does the filtering, and the count, order and `LIMIT` run on the
//!   store's server over the rows that came back. A page read in order (past the exact-count
//!   limit) is one ordered, limited page per server (`layout::partitions`): each a foreign
//!   scan of its own that ships the order and the `LIMIT`, all run at once, merged by the
//!   store (as one ordered scan of the partitioned table, PostgreSQL merged the partitions in
//!   series and the second server read a whole fetch, 1,000 rows, for a page of a few).
//!   A `*` token pattern (an `EXISTS` over the row's token array) is not shipped either: the
//!   remote side returns the rows its other conditions allow, and the store's server filters.
//!
//! With N servers instead of two (the code takes any number; the tests run two): every query
//! without a SHA-256 fans out to all N partitions, concurrently (async foreign scans), so its
//! latency is about the slowest server's plus the store's server merging; the data each
//! server scans shrinks as 1/N but the store's server still receives every matching `sha256`
//! and every page's reports, so it becomes the bottleneck as N grows: it is the only
//! coordinator (more coordinators would need the same foreign tables defined on them, which
//! is what Citus provides). Writes of a sample go to one server; a batch opens one remote
//! transaction per server it touches. Each process's pooled connection holds one FDW
//! connection per other server, so each server needs `max_connections` for every pool of
//! every process. The modulus is fixed at `db init`: growing from N to M servers means
//! copying into a new layout (`sandscope copy`), since a hash partition cannot be split in
//! place — a modulus larger than the number of servers (several partitions per server) would
//! allow moving partitions instead, at the cost of more foreign scans per query.
//!
//! # Writers
//! Any number of processes (or threads sharing one `PgStore`) may write at once: a batch
//! inserts its new samples' rows in SHA-256 order and locks its stored samples' rows in the
//! same order, so two batches of the same samples wait for each other rather than deadlock,
//! and the later one rebuilds from the earlier one's committed reports (`rebuild`;
//! `tests/writers.rs` runs two writers over the same samples in opposite orders, and
//! `tests/store.rs` eight batches of one sample). Two processes training the report
//! dictionary at once both end up with the first one committed (`dictionary`).
//!
//! What bounds one writer (measured with `pg_stat_statements` on the bench's reports): about
//! half of its time is its own CPU (building each sample's `SampleDoc`, compressing the
//! reports), half the one `INSERT`/`UPDATE` of `samples`, and of that almost all is
//! maintaining the ten trigram GIN indexes (the same rows inserted into a copy of the table
//! without them took 3% of the time). GIN's pending list (`fastupdate`, on by default) is
//! what keeps that affordable: with it off the same insert took six times as long; a larger
//! `gin_pending_list_limit` saves about a quarter of the insert but every search then scans
//! the unmerged list, so it is left at PostgreSQL's default. One writer is one backend and
//! one client thread working in turn, so a second writer (another worker) overlaps the two
//! and adds what a free core gives. `synchronous_commit` is the operator's choice, not ours.
//!
//! # Connections
//! The server's `Backend` seam is synchronous, so the synchronous `postgres` client fits it
//! without a runtime of its own, and `r2d2` bounds how many connections a process holds.
//! TLS follows the URL's `sslmode` (absent or `disable`: plaintext; `prefer`, `require`,
//! `verify-ca`, `verify-full`) and `sslrootcert=FILE` (PEM roots; else the system's), with
//! libpq's meanings, through rustls (`connect::tls`); `sslcert=FILE&sslkey=FILE` is a client
//! certificate (rustls client authentication). A failed handshake is [`PgStoreError::Tls`]
//! with the reason. With several servers, each shard URL's `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` are its foreign server's options (postgres_fdw passes them to libpq in the
//! store's server, which reads the files). Every SQL value is a parameter; no query text from a
//! user becomes SQL text.

mod codec;
mod connect;
mod detonations;
mod dictionary;
mod error;
mod layout;
mod maintenance;
mod planner;
mod read;
mod rebuild;
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
    /// The report dictionaries this process knows (`codec`).
    codec: codec::Codec,
    /// When this process next tries to train one (`dictionary`).
    training: dictionary::Training,
    /// `samples` on each server (`layout::partitions`).
    sample_partitions: Vec<String>,
}

impl PgStore {
    /// Connect to the store at `url` (`postgres://…`); refuses a database without the
    /// schema or with another version, saying what to run.
    pub fn open(url: &str) -> Result<PgStore> {
        let target = connect::parse(url)?;
        let mut client = connect::connect(&target)?;
        schema::check(&mut client, &target)?;
        let shards = layout::check(&mut client, &target)?;
        let sample_partitions = layout::partitions(&shards, "samples");
        Ok(PgStore {
            pool: connect::pool(&target),
            target: target.shown,
            codec: codec::Codec::default(),
            training: dictionary::Training::default(),
            sample_partitions,
        })
    }

    /// Create the schema in the database at `url` (`sandscope db init`), or upgrade an older
    /// one (`db upgrade`); a current schema is left as it is, but for a sharded store's foreign
    /// servers, which get this build's session options (`layout::refresh`).
    pub fn init(url: &str) -> Result<SchemaChange> {
        Self::init_sharded(url, &[])
    }

    /// [`PgStore::init`] on several servers (`sandscope db init --shards URL1,URL2,…`, the
    /// store's URL first): the large tables hash-partitioned by SHA-256, one partition on each
    /// server (see `layout`). An empty `shards` is one server. An existing store must have
    /// been laid out on the same servers; its foreign partitions must be reachable.
    pub fn init_sharded(url: &str, shards: &[String]) -> Result<SchemaChange> {
        let target = connect::parse(url)?;
        let shards = shards
            .iter()
            .map(|s| connect::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let mut client = connect::connect(&target)?;
        layout::check(&mut client, &target)?;
        schema::init_or_upgrade(&mut client, &target, &shards)
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
        layout::check(&mut client, &target)?;
        schema::init_or_upgrade(&mut client, &target, &[])
    }

    /// Where the store is (`host:port/database`, no password), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn client(&self) -> Result<PooledConnection<connect::Manager>> {
        Ok(self.pool.get()?)
    }
}
