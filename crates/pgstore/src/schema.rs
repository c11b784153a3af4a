//! The versioned schema: creating it (`sandscope db init`), upgrading it (`db upgrade`) and the
//! check every open makes, so a process never works on a schema it was not built for.
//!
//! Every large table carries the sample's SHA-256 (`sha256`) and has it in its primary key: it
//! is the distribution column under Citus. The small tables (`sandscope_schema`, and from
//! version 2 hunting's `records` and `record_counters`) are reference tables under Citus.
//!
//! Versions: 1, the reports and the searchable sample view; 2 adds the keyed records hunting
//! keeps (rulesets, notifications); 3 moves a sample's values from one row per value into
//! per-field columns of its own row (see `upgrade_to_v3`); 4 adds the report dictionaries
//! (`report_dicts`, see `codec`) and drops the SHA-256 token column (see `UPGRADE_TO_V4`).
//! `db init` creates the current
//! version at once (the large tables from [`large_tables`], in either layout); `db upgrade`
//! applies, in order, the upgrades an older one-server store lacks. A test upgrades a store
//! and compares its tables and indexes with a new one's, so the two paths cannot drift apart.
//! The sharded layout arrived with version 3: a sharded store older than this build's version
//! is refused, as no upgrade yet knows how to change a table on every server.

use crate::connect::Target;
use crate::{PgStoreError, Result};
use postgres::{Client, GenericClient};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 4;

/// Version 1's small tables: the extension and the version table (the large tables come from
/// [`large_tables`], laid out by `layout`: plain, or partitioned over several servers). Text that is compared or sorted
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

/// Version 3: a sample's values in its own row. Version 2 kept one row per sample x field x
/// spelling in `sample_values` (and `sample_tokens`), each with a B-tree entry and a `pg_trgm`
/// GIN entry: at 20,000 reports those two tables and their indexes were 600 of the 635 MiB.
/// Now `samples` holds one text column per field (`search::fields`: the values joined by a
/// separator no value contains), each with a `pg_trgm` GIN index: a trigram is indexed once
/// per sample and field, the text is compressed by TOAST, and a search reads one row per
/// sample. Existing rows are migrated (each sample's values aggregated from the old tables,
/// which are then dropped). The date indexes now follow the default order (newest first, a
/// missing date last, then SHA-256), so a page of a common term is read in order and stops.
fn upgrade_to_v3() -> String {
    let mut sql = String::from("ALTER TABLE samples ");
    // Version 3's columns: today's, and the SHA-256 token's, which version 4 drops.
    let columns: Vec<&str> = crate::search::fields::all_columns()
        .chain([crate::search::fields::V3_SHA256_COLUMN])
        .collect();
    sql += &columns
        .iter()
        .map(|c| format!("ADD COLUMN {c} text COLLATE \"C\""))
        .collect::<Vec<_>>()
        .join(", ");
    sql += ";\n";
    // `E'\\n'` is `fields::VALUE_SEPARATOR`; tokens also get one at each end.
    let aggregate = |column: &str, table: &str, value: &str, code: usize, wrap: bool| {
        let joined =
            format!("string_agg({value}, E'\\n' ORDER BY {value}) FILTER (WHERE field = {code})");
        let joined = if wrap {
            format!("E'\\n' || {joined} || E'\\n'")
        } else {
            joined
        };
        format!(
            "UPDATE samples s SET {column} = a.v FROM (SELECT sha256, {joined} AS v FROM {table} \
             GROUP BY sha256) a WHERE s.sha256 = a.sha256 AND a.v IS NOT NULL;\n"
        )
    };
    for (code, column) in columns.iter().take(10).enumerate() {
        sql += &aggregate(column, "sample_values", "value", code, false);
    }
    for (code, column) in columns.iter().skip(10).enumerate() {
        sql += &aggregate(column, "sample_tokens", "token", code, true);
    }
    sql += "DROP TABLE sample_values, sample_tokens;\n";
    for column in &columns {
        sql += &format!(
            "CREATE INDEX samples_{column} ON samples USING gin ({column} gin_trgm_ops);\n"
        );
    }
    sql += "DROP INDEX samples_first_seen, samples_last_seen;\n\
            CREATE INDEX samples_first_seen ON samples (first_seen DESC NULLS LAST, sha256);\n\
            CREATE INDEX samples_last_seen ON samples (last_seen DESC NULLS LAST, sha256);\n";
    sql
}

fn upgrade_to_v2() -> String {
    UPGRADE_TO_V2.to_string()
}

/// Version 4's new small table: the zstd dictionaries reports are compressed with (`codec`),
/// a reference table under Citus. Reports written before stay as they are (deflated: the
/// codec tells the formats apart by their first byte).
const CREATE_REPORT_DICTS: &str = r#"
CREATE TABLE report_dicts (
    id integer PRIMARY KEY CHECK (id > 0),
    dict bytea NOT NULL
);
"#;

/// Version 4: the report dictionaries; no SHA-256 token column: a sample's only SHA-256
/// token is its own, the row's key, so `sha256:` is answered by the key (its B-tree) and
/// version 3's `token_6` and its trigram index go; the other token columns become `text[]`
/// with a plain GIN index instead of joined text with a trigram one (tokens are matched whole,
/// `search::fields`). At 20,000 reports the token trigram indexes were 22.8 of 199 MiB.
fn upgrade_to_v4() -> String {
    let mut sql = format!(
        "{CREATE_REPORT_DICTS}\nDROP INDEX samples_{c};\nALTER TABLE samples DROP COLUMN {c};\n",
        c = crate::search::fields::V3_SHA256_COLUMN
    );
    let tokens: Vec<&str> = crate::search::fields::all_columns()
        .filter(|c| crate::search::fields::is_token_column(c))
        .collect();
    for column in &tokens {
        sql += &format!("DROP INDEX samples_{column};\n");
    }
    // Version 3 wrapped a column's tokens in separators (`E'\\n'`).
    let retype: Vec<String> = tokens
        .iter()
        .map(|c| {
            format!(
                "ALTER COLUMN {c} TYPE text[] COLLATE \"C\" \
                 USING string_to_array(btrim({c}, E'\\n'), E'\\n')"
            )
        })
        .collect();
    sql += &format!("ALTER TABLE samples {};\n", retype.join(", "));
    for column in &tokens {
        sql += &format!("CREATE INDEX samples_{column} ON samples USING gin ({column});\n");
    }
    sql
}

/// An upgrade: the version it makes, its SQL and the reference tables it adds.
type Upgrade = (i32, fn() -> String, &'static [&'static str]);

/// The upgrade to each version after 1, in order.
const UPGRADES: [Upgrade; 3] = [
    (2, upgrade_to_v2, &["records", "record_counters"]),
    (3, upgrade_to_v3, &[]),
    (4, upgrade_to_v4, &["report_dicts"]),
];

/// The columns every per-report table starts with (its key's first two columns).
const REPORT_KEY_COLUMNS: &str =
    r#"sha256 text COLLATE "C" NOT NULL, report_id text COLLATE "C" NOT NULL"#;

/// One large table, described once: `layout` makes it a plain table, or a table partitioned by
/// hash of `sha256` with a local partition and foreign ones (each created on its server with
/// the same key and indexes).
pub(crate) struct LargeTable {
    pub(crate) name: &'static str,
    /// Column definitions, as in `CREATE TABLE`.
    pub(crate) columns: String,
    /// The primary key's columns (`sha256` first: the distribution and partition column).
    pub(crate) key: &'static str,
    /// Secondary indexes: (name suffix, `USING … (…)` or `(…)`).
    pub(crate) indexes: Vec<(String, String)>,
}

/// The large tables of the current version, each distributed by `sha256` under Citus and
/// partitioned by it in the sharded layout. `samples` holds one column per field
/// (`search::fields`): text with a `pg_trgm` GIN index, or tokens with an array GIN index.
pub(crate) fn large_tables() -> Vec<LargeTable> {
    let value_columns = crate::search::fields::all_columns();
    let mut samples_columns = String::from(
        r#"sha256 text COLLATE "C" NOT NULL, first_seen bigint, last_seen bigint,
            sigma_critical bigint NOT NULL, sigma_high bigint NOT NULL,
            sigma_medium bigint NOT NULL, sigma_low bigint NOT NULL"#,
    );
    let mut samples_indexes = vec![
        (
            "first_seen".to_string(),
            "(first_seen DESC NULLS LAST, sha256)".to_string(),
        ),
        (
            "last_seen".to_string(),
            "(last_seen DESC NULLS LAST, sha256)".to_string(),
        ),
    ];
    for column in value_columns {
        let (column_type, index) = if crate::search::fields::is_token_column(column) {
            ("text[]", format!("USING gin ({column})"))
        } else {
            ("text", format!("USING gin ({column} gin_trgm_ops)"))
        };
        samples_columns += &format!(", {column} {column_type} COLLATE \"C\"");
        samples_indexes.push((column.to_string(), index));
    }
    vec![
        LargeTable {
            name: "samples",
            columns: samples_columns,
            key: "sha256",
            indexes: samples_indexes,
        },
        LargeTable {
            name: "reports",
            columns: format!("{REPORT_KEY_COLUMNS}, body bytea NOT NULL"),
            key: "sha256, report_id",
            indexes: Vec::new(),
        },
        LargeTable {
            name: "raw_logs",
            columns: format!("{REPORT_KEY_COLUMNS}, file_name text NOT NULL, size bigint NOT NULL"),
            key: "sha256, report_id",
            indexes: Vec::new(),
        },
        LargeTable {
            name: "raw_log_chunks",
            columns: format!("{REPORT_KEY_COLUMNS}, seq integer NOT NULL, data bytea NOT NULL"),
            key: "sha256, report_id, seq",
            indexes: Vec::new(),
        },
    ]
}

/// Every table of the current schema (for sizes).
pub(crate) const TABLES: [&str; 8] = [
    "samples",
    "reports",
    "raw_logs",
    "raw_log_chunks",
    "sandscope_schema",
    "records",
    "record_counters",
    "report_dicts",
];

/// What `db init` or `db upgrade` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    Created,
    Upgraded {
        from: i32,
    },
    /// The schema was current and nothing else needed changing.
    AlreadyCurrent,
    /// The schema was current; the sharded layout's foreign servers were brought to what this
    /// build makes (`layout::refresh`): what changed, one sentence each.
    LayoutRefreshed {
        changes: Vec<String>,
    },
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
    let from = match stored {
        None => {
            txn.batch_execute(CREATE_V1)?;
            txn.batch_execute(UPGRADE_TO_V2)?;
            txn.batch_execute(CREATE_REPORT_DICTS)?;
            crate::layout::create(&mut txn, target, shards)?;
            distribute(&mut txn)?;
            reference(&mut txn, &["records", "record_counters", "report_dicts"])?;
            txn.execute(
                "INSERT INTO sandscope_schema (id, version) VALUES (1, $1)",
                &[&SCHEMA_VERSION],
            )?;
            txn.commit()?;
            return Ok(SchemaChange::Created);
        }
        Some(v) if v == SCHEMA_VERSION => {
            let changes = crate::layout::refresh(&mut txn)?;
            txn.commit()?;
            return Ok(if changes.is_empty() {
                SchemaChange::AlreadyCurrent
            } else {
                SchemaChange::LayoutRefreshed { changes }
            });
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(PgStoreError::SchemaNewer {
                target: target.shown.clone(),
                found: v,
                expected: SCHEMA_VERSION,
            });
        }
        Some(v) if v < 1 || !crate::layout::stored(&mut txn)?.is_empty() => {
            return Err(PgStoreError::SchemaOlder {
                target: target.shown.clone(),
                found: v,
                expected: SCHEMA_VERSION,
            });
        }
        Some(v) => v,
    };
    for (version, sql, reference_tables) in UPGRADES {
        if version > from {
            txn.batch_execute(&sql())?;
            reference(&mut txn, reference_tables)?;
        }
    }
    txn.execute(
        "UPDATE sandscope_schema SET version = $1 WHERE id = 1",
        &[&SCHEMA_VERSION],
    )?;
    txn.commit()?;
    Ok(SchemaChange::Upgraded { from })
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
    for table in large_tables().iter().map(|t| t.name) {
        txn.execute(
            "SELECT create_distributed_table($1::text::regclass, 'sha256', colocate_with => $2::text)",
            &[&table, &if table == "samples" { "default" } else { "samples" }],
        )?;
    }
    Ok(())
}
