//! The versioned schema: creating it (`sandscope db init`), upgrading it (`db upgrade`) and the
//! check every open makes, so a process never works on a schema it was not built for.
//!
//! Every large table carries the sample's SHA-256 (`sha256`) and has it in its primary key: it
//! is the distribution column under Citus. The small tables (`sandscope_schema`, and from
//! version 2 hunting's `records` and `record_counters`) are reference tables under Citus.
//!
//! Versions: 1, the reports and the searchable sample view; 2 adds the keyed records hunting
//! keeps (rulesets, notifications). `db init` creates version 1 and applies every upgrade in
//! order, `db upgrade` applies the ones a store lacks: one path, so a new store and an
//! upgraded one cannot differ.

use crate::connect::Target;
use crate::{PgStoreError, Result};
use postgres::{Client, GenericClient};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Version 1: the extension, the version table and the large tables ([`LARGE_TABLES`], laid out
/// by `layout`: plain, or partitioned over several servers). Text that is compared or sorted
/// byte-wise is `COLLATE "C"`, so order and `LIKE` never depend on the database's locale.
const CREATE_V1: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE sandscope_schema (
    id integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL
);
"#;

/// Version 2: hunting's keyed records (`sandscope_store::RecordTable`), opaque bytes under
/// (`kind`, `id`), and the counter each kind's ids come from.
const UPGRADE_TO_V2: &str = r#"
CREATE TABLE records (
    kind text COLLATE "C" NOT NULL,
    id bigint NOT NULL CHECK (id > 0),
    body bytea NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE record_counters (
    kind text COLLATE "C" PRIMARY KEY,
    next_id bigint NOT NULL
);
"#;

/// The upgrade to each version after 1, in order: `(version, SQL, new reference tables)`. The
/// SQL runs on the store's server only: an upgrade that adds or changes a large table must go
/// through `layout` (which creates it on every shard server), not through this list.
const UPGRADES: [(i32, &str, &[&str]); 1] = [(2, UPGRADE_TO_V2, &["records", "record_counters"])];

/// One large table, described once: `layout` makes it a plain table, or a table partitioned by
/// hash of `sha256` with a local partition and foreign ones (each created on its server with
/// the same key and indexes).
pub(crate) struct LargeTable {
    pub(crate) name: &'static str,
    /// Column definitions, as in `CREATE TABLE`.
    pub(crate) columns: &'static str,
    /// The primary key's columns (`sha256` first: the distribution and partition column).
    pub(crate) key: &'static str,
    /// Secondary indexes: (name suffix, `USING … (…)` or `(…)`).
    pub(crate) indexes: &'static [(&'static str, &'static str)],
}

/// The large tables of version 1, each distributed by `sha256` under Citus and partitioned by
/// it in the sharded layout.
pub(crate) const LARGE_TABLES: [LargeTable; 6] = [
    LargeTable {
        name: "samples",
        columns: r#"sha256 text COLLATE "C" NOT NULL, first_seen bigint, last_seen bigint,
            sigma_critical bigint NOT NULL, sigma_high bigint NOT NULL,
            sigma_medium bigint NOT NULL, sigma_low bigint NOT NULL"#,
        key: "sha256",
        indexes: &[
            ("first_seen", "(first_seen, sha256)"),
            ("last_seen", "(last_seen, sha256)"),
        ],
    },
    LargeTable {
        name: "reports",
        columns: r#"sha256 text COLLATE "C" NOT NULL, report_id text COLLATE "C" NOT NULL,
            body bytea NOT NULL"#,
        key: "sha256, report_id",
        indexes: &[],
    },
    LargeTable {
        name: "raw_logs",
        columns: r#"sha256 text COLLATE "C" NOT NULL, report_id text COLLATE "C" NOT NULL,
            file_name text NOT NULL, size bigint NOT NULL"#,
        key: "sha256, report_id",
        indexes: &[],
    },
    LargeTable {
        name: "raw_log_chunks",
        columns: r#"sha256 text COLLATE "C" NOT NULL, report_id text COLLATE "C" NOT NULL,
            seq integer NOT NULL, data bytea NOT NULL"#,
        key: "sha256, report_id, seq",
        indexes: &[],
    },
    LargeTable {
        name: "sample_values",
        columns: r#"sha256 text COLLATE "C" NOT NULL, field smallint NOT NULL,
            value text COLLATE "C" NOT NULL"#,
        key: "sha256, field, value",
        indexes: &[("trgm", "USING gin (value gin_trgm_ops)")],
    },
    LargeTable {
        name: "sample_tokens",
        columns: r#"sha256 text COLLATE "C" NOT NULL, field smallint NOT NULL,
            token text COLLATE "C" NOT NULL"#,
        key: "sha256, field, token",
        indexes: &[
            ("token", "(field, token)"),
            ("trgm", "USING gin (token gin_trgm_ops)"),
        ],
    },
];

/// Every table of the current schema (for sizes).
pub(crate) const TABLES: [&str; 9] = [
    "samples",
    "reports",
    "raw_logs",
    "raw_log_chunks",
    "sample_values",
    "sample_tokens",
    "sandscope_schema",
    "records",
    "record_counters",
];

/// What `db init` or `db upgrade` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    Created,
    Upgraded { from: i32 },
    AlreadyCurrent,
}

/// The version stored in the database, `None` when it holds no Sandscope schema.
pub(crate) fn stored_version(client: &mut impl GenericClient) -> Result<Option<i32>> {
    // Asked first, so a missing table is no error (which would abort a transaction).
    let exists: bool = client
        .query_one("SELECT to_regclass('sandscope_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client.query_opt("SELECT version FROM sandscope_schema WHERE id = 1", &[])?;
    Ok(row.map(|r| r.get(0)))
}

/// Refuse a database whose schema is missing or of another version.
pub(crate) fn check(client: &mut Client, target: &Target) -> Result<()> {
    match stored_version(client)? {
        None => Err(PgStoreError::NoSchema {
            target: target.shown.clone(),
        }),
        Some(v) if v < SCHEMA_VERSION => Err(PgStoreError::SchemaOlder {
            target: target.shown.clone(),
            found: v,
            expected: SCHEMA_VERSION,
        }),
        Some(v) if v > SCHEMA_VERSION => Err(PgStoreError::SchemaNewer {
            target: target.shown.clone(),
            found: v,
            expected: SCHEMA_VERSION,
        }),
        Some(_) => Ok(()),
    }
}

/// Create the schema in an empty database, or upgrade an older one; a current schema is left
/// alone and a newer one refused. One transaction: a failure leaves the database as it was.
/// `shards`: the servers of the sharded layout for a new store (empty: one server); an existing
/// store must have been laid out on the same ones.
pub(crate) fn init_or_upgrade(
    client: &mut Client,
    target: &Target,
    shards: &[Target],
) -> Result<SchemaChange> {
    let mut txn = client.transaction()?;
    // Two `db init`s at once: the second waits here and then finds the schema made.
    txn.execute("SELECT pg_advisory_xact_lock(736163647363)", &[])?;
    let stored = stored_version(&mut txn)?;
    if stored.is_some() {
        crate::layout::check_same(&mut txn, target, shards)?;
    }
    let (from, change) = match stored {
        None => {
            txn.batch_execute(CREATE_V1)?;
            crate::layout::create(&mut txn, target, shards)?;
            distribute(&mut txn)?;
            txn.execute(
                "INSERT INTO sandscope_schema (id, version) VALUES (1, 1)",
                &[],
            )?;
            (1, SchemaChange::Created)
        }
        Some(v) if v == SCHEMA_VERSION => return Ok(SchemaChange::AlreadyCurrent),
        Some(v) if v > SCHEMA_VERSION => {
            return Err(PgStoreError::SchemaNewer {
                target: target.shown.clone(),
                found: v,
                expected: SCHEMA_VERSION,
            });
        }
        Some(v) if v < 1 => {
            return Err(PgStoreError::SchemaOlder {
                target: target.shown.clone(),
                found: v,
                expected: SCHEMA_VERSION,
            });
        }
        Some(v) => (v, SchemaChange::Upgraded { from: v }),
    };
    for (version, sql, reference_tables) in UPGRADES {
        if version > from {
            txn.batch_execute(sql)?;
            reference(&mut txn, reference_tables)?;
        }
    }
    txn.execute(
        "UPDATE sandscope_schema SET version = $1 WHERE id = 1",
        &[&SCHEMA_VERSION],
    )?;
    txn.commit()?;
    Ok(change)
}

fn has_citus(txn: &mut postgres::Transaction<'_>) -> Result<bool> {
    Ok(txn
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])?
        .is_some())
}

/// Under Citus, replicate small `tables` to every node; without Citus they stay plain.
fn reference(txn: &mut postgres::Transaction<'_>, tables: &[&str]) -> Result<()> {
    if !has_citus(txn)? {
        return Ok(());
    }
    for table in tables {
        txn.execute(
            "SELECT create_reference_table($1::text::regclass)",
            &[table],
        )?;
    }
    Ok(())
}

/// Under Citus, distribute the large tables by `sha256` (co-located, so every per-sample join
/// stays on one node) and replicate the schema table; without Citus the tables stay plain.
fn distribute(txn: &mut postgres::Transaction<'_>) -> Result<()> {
    if !has_citus(txn)? {
        return Ok(());
    }
    reference(txn, &["sandscope_schema"])?;
    for table in LARGE_TABLES.iter().map(|t| t.name) {
        txn.execute(
            "SELECT create_distributed_table($1::text::regclass, 'sha256', colocate_with => $2::text)",
            &[&table, &if table == "samples" { "default" } else { "samples" }],
        )?;
    }
    Ok(())
}
