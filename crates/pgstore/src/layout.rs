//! Where the large tables live: one server (plain tables), or several (`db init --shards
//! URL1,URL2,…`): each large table hash-partitioned by `sha256` with PostgreSQL's own
//! `PARTITION BY HASH`, partition 0 local on the store's server and partition `i` a
//! `postgres_fdw` foreign table on server `i + 1`, where `db init` creates the real table with
//! the same key and indexes (the trigram GIN ones too, so a `LIKE` shipped there is filtered
//! by its index). All tables use the same modulus on the same column, so every row of one
//! sample lives on one server. The small tables stay on the store's server.
//!
//! The layout is kept in `sandscope_shards` (one row per partition: its foreign server and
//! where that server is, never a password); every open and `db upgrade` reaches each foreign
//! partition through it and refuses, naming the server, when one cannot be used.

use crate::connect::{self, Target};
use crate::schema::{LargeTable, large_tables};
use crate::{PgStoreError, Result};
use postgres::types::ToSql;
use postgres::{GenericClient, Transaction};
use std::fmt::Write;

/// The foreign server of partition `shard` (1, 2, …).
fn server_name(shard: usize) -> String {
    format!("sandscope_shard_{shard}")
}

/// The partition of `table` numbered `shard`; also the table's name on its server.
fn partition_name(table: &str, shard: usize) -> String {
    format!("{table}_p{shard}")
}

/// `CREATE INDEX` for each of `table`'s secondary indexes, on `on`, named `<prefix>_<suffix>`.
fn index_ddl(sql: &mut String, table: &LargeTable, prefix: &str, on: &str) {
    for (suffix, definition) in &table.indexes {
        let _ = writeln!(sql, "CREATE INDEX {prefix}_{suffix} ON {on} {definition};");
    }
}

/// One server: the large tables as plain tables.
fn plain_ddl() -> String {
    let mut sql = String::new();
    for t in &large_tables() {
        let _ = writeln!(
            sql,
            "CREATE TABLE {} ({}, PRIMARY KEY ({}));",
            t.name, t.columns, t.key
        );
        index_ddl(&mut sql, t, t.name, t.name);
    }
    sql
}

/// The store's server in the sharded layout: each large table partitioned by hash, partition 0
/// local (with the primary key: a partitioned table with a foreign partition can have no
/// unique index of its own) and the others foreign tables on their servers.
fn partitioned_ddl(servers: usize) -> String {
    let mut sql = String::new();
    for t in &large_tables() {
        let _ = writeln!(
            sql,
            "CREATE TABLE {} ({}) PARTITION BY HASH (sha256);",
            t.name, t.columns
        );
        let _ = writeln!(
            sql,
            "CREATE TABLE {} PARTITION OF {} (PRIMARY KEY ({})) \
             FOR VALUES WITH (MODULUS {servers}, REMAINDER 0);",
            partition_name(t.name, 0),
            t.name,
            t.key
        );
        // On the partitioned table: built on the local partition, skipped for foreign ones.
        index_ddl(&mut sql, t, t.name, t.name);
        // Fixed text: a table name and a number.
        let fetch = match t.name {
            "samples" => format!(", fetch_size '{}'", samples_fetch(servers)),
            _ => String::new(),
        };
        for shard in 1..servers {
            let remote = partition_name(t.name, shard);
            let _ = writeln!(
                sql,
                "CREATE FOREIGN TABLE {remote} PARTITION OF {} \
                 FOR VALUES WITH (MODULUS {servers}, REMAINDER {shard}) SERVER {} \
                 OPTIONS (schema_name 'public', table_name '{remote}'{fetch});",
                t.name,
                server_name(shard)
            );
        }
    }
    sql
}

/// Server `shard + 1`: partition `shard` of every large table, as a plain table with the
/// table's key and indexes.
fn remote_ddl(shard: usize) -> String {
    let mut sql = String::from("CREATE EXTENSION IF NOT EXISTS pg_trgm;\n");
    for t in &large_tables() {
        let name = partition_name(t.name, shard);
        let _ = writeln!(
            sql,
            "CREATE TABLE public.{name} ({}, PRIMARY KEY ({}));",
            t.columns, t.key
        );
        index_ddl(&mut sql, t, &name, &format!("public.{name}"));
    }
    sql
}

fn drop_remote_ddl(shard: usize) -> String {
    let names: Vec<String> = large_tables()
        .iter()
        .map(|t| format!("public.{}", partition_name(t.name, shard)))
        .collect();
    format!("DROP TABLE IF EXISTS {}", names.join(", "))
}

/// Create the large tables in the layout `shards` asks for: plain when it is empty, else
/// partitioned over those servers (the first must be the store's own, `store`).
pub(crate) fn create(txn: &mut Transaction<'_>, store: &Target, shards: &[Target]) -> Result<()> {
    if shards.is_empty() {
        txn.batch_execute(&plain_ddl())?;
        return Ok(());
    }
    validate(txn, store, shards)?;
    // The remote tables first, each server's in one transaction (a multi-statement simple
    // query), so the foreign tables created below have something to reach.
    let mut made = Vec::new();
    for (shard, target) in shards.iter().enumerate().skip(1) {
        let mut remote = connect::connect(target)?;
        remote
            .batch_execute(&remote_ddl(shard))
            .map_err(|e| PgStoreError::ShardSetup {
                shard: target.shown.clone(),
                detail: db_detail(&e),
            })?;
        made.push((shard, remote));
    }
    let local = create_local(txn, shards).and_then(|()| check(txn, store).map(drop));
    if local.is_err() {
        // Nothing local is kept (the caller's transaction rolls back): neither are these.
        for (shard, remote) in &mut made {
            let _ = remote.batch_execute(&drop_remote_ddl(*shard));
        }
    }
    local
}

fn validate(txn: &mut Transaction<'_>, store: &Target, shards: &[Target]) -> Result<()> {
    let bad = |why: String| Err(PgStoreError::BadShards(why));
    if shards.len() < 2 {
        return bad("name at least two servers, the store's first".into());
    }
    if shards[0].shown != store.shown {
        return bad(format!(
            "the first server must be the store's own ({}), not {}",
            store.shown, shards[0].shown
        ));
    }
    for (i, a) in shards.iter().enumerate() {
        if shards[..i].iter().any(|b| b.shown == a.shown) {
            return bad(format!("{} is named twice", a.shown));
        }
    }
    let citus = txn
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])?
        .is_some();
    if citus {
        return bad("this database has Citus, which distributes the tables itself".into());
    }
    Ok(())
}

/// The foreign servers, user mappings, partitioned tables and the layout table on the store's
/// server. DDL takes no parameters, so option values are quoted by PostgreSQL (`format`'s `%L`)
/// from parameters; the statements carrying a password are never shown.
fn create_local(txn: &mut Transaction<'_>, shards: &[Target]) -> Result<()> {
    txn.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS postgres_fdw;
         CREATE EXTENSION IF NOT EXISTS dblink;
         CREATE TABLE sandscope_shards (
             shard integer PRIMARY KEY CHECK (shard >= 0),
             server text,
             target text NOT NULL
         );",
    )?;
    txn.execute(
        "INSERT INTO sandscope_shards (shard, server, target) VALUES (0, NULL, $1)",
        &[&shards[0].shown],
    )?;
    // The search's planner settings for every session postgres_fdw opens (`planner`).
    let session = crate::planner::session_options();
    for (shard, target) in shards.iter().enumerate().skip(1) {
        let server = server_name(shard);
        let options = ServerOptions::of(target);
        // The fixed options, then the URL's TLS options under libpq's names (postgres_fdw
        // takes libpq's): `%L` quotes each value, given as a parameter.
        let tls = target.tls_options.given();
        let mut template = String::from(
            "CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, \
             dbname %L, async_capable 'true', fetch_size '1000', options %L, batch_size %L",
        );
        for (name, _) in &tls {
            template += &format!(", {name} %L");
        }
        template += ")";
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![
            &template,
            &server,
            &options.host,
            &options.port,
            &options.dbname,
            &session,
            &REMOTE_BATCH,
        ];
        values.extend(tls.iter().map(|(_, v)| v as &(dyn ToSql + Sync)));
        let placeholders: Vec<String> = (2..=values.len()).map(|i| format!("${i}::text")).collect();
        let create_server: String = txn
            .query_one(
                &format!("SELECT format($1::text, {})", placeholders.join(", ")),
                &values,
            )?
            .get(0);
        txn.batch_execute(&create_server)?;
        let mapping: String = txn
            .query_one(
                "SELECT format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I%s', $1::text, \
                 CASE WHEN $2::text IS NULL AND $3::text IS NULL THEN '' \
                 ELSE ' OPTIONS (' || concat_ws(', ', 'user ' || quote_literal($2::text), \
                 'password ' || quote_literal($3::text)) || ')' END)",
                &[&server, &options.user, &options.password],
            )?
            .get(0);
        txn.batch_execute(&mapping)?;
        txn.execute(
            "INSERT INTO sandscope_shards (shard, server, target) VALUES ($1, $2, $3)",
            &[
                &i32::try_from(shard).unwrap_or(i32::MAX),
                &server,
                &target.shown,
            ],
        )?;
    }
    txn.batch_execute(&partitioned_ddl(shards.len()))?;
    Ok(())
}

/// Rows postgres_fdw sends to a foreign partition in one `INSERT` (its server's `batch_size`;
/// its default is 1, a statement and a round trip per row). It batches only an `INSERT`
/// without `RETURNING` (`ON CONFLICT DO NOTHING` is batched too): a batch's reports and the
/// claim of samples it already has (`rebuild::lock_samples`); the insert of new samples' rows
/// returns which rows it made, so it still goes row by row (`rebuild::insert_new_samples`),
/// and a raw log is a statement per row or chunk anyway. 100 reports are some tens of kB in
/// one statement (about 450 bytes each compressed), far from the 65,535 parameters
/// postgres_fdw allows. Measured on loopback: 10,000 rows of 400 bytes went into a foreign
/// partition in 236 ms one by one and 74 to 88 ms 100 at a time; at the benchmark's 20,000
/// reports on two servers (10,123 rows of each table on the second) the ingest took as long
/// either way (16.1 s and 16.0 s, means of three alternating runs): what remains is the new
/// samples' rows, one statement each, whose cost is their trigram indexes.
const REMOTE_BATCH: &str = "100";

/// Rows postgres_fdw fetches from another server's `samples` partition at a time (the foreign
/// table's `fetch_size`; its server's is 1,000): each server's share of a search's count, the
/// exact-count limit plus one over the number of servers (5,001 of 10,001 on two). A search
/// reads only each match's key and date there and counts each server's share at once
/// (`search::count_and_page`), so one fetch brings a server's share. The first fetch is sent
/// when the statement starts and runs on that server while the store's server scans its own
/// partition; each further fetch ran after the store's server asked for it, one after the
/// other, and one still running when the count's `LIMIT` was met had to finish before the
/// next statement could start. On two servers at 1,000,000 reports (the 20 benchmark queries,
/// 20 runs each, before the count was split) a fetch of 10,001 took the p50 / p99 from
/// 130.8 / 1,219.4 ms to 81.4 / 674.9 ms (`behaviour_files:readme*.txt` 1,196 → 666 ms).
/// What a fetch holds: a search's rows are some 80 bytes (0.4 MB a fetch on two servers);
/// `ANALYZE` reads whole rows through the same fetch, tens of MB at a time on the store's
/// server.
fn samples_fetch(servers: usize) -> String {
    share_of(sandscope_store::EXACT_COUNT_LIMIT + 1, servers).to_string()
}

/// Each server's share of a count capped at `cap`: the cap over the number of servers,
/// rounded up, so the shares together reach it.
pub(crate) fn share_of(cap: u64, servers: usize) -> u64 {
    cap.div_ceil(u64::try_from(servers.max(1)).unwrap_or(u64::MAX))
}

/// Bring an existing sharded store's foreign servers to what `db init` makes now (`db init` or
/// `db upgrade` on a store of the current version; nothing for one server): each server's
/// `options`, the planner settings its remote sessions start with (`planner`), set where
/// missing or different, its `batch_size` ([`REMOTE_BATCH`]) where missing, each foreign
/// `samples` partition's `fetch_size` ([`samples_fetch`]) where missing, and the `dblink`
/// extension (`remote_shards`). Not on open: opening
/// changes nothing, any role may open (altering a server takes its owner, the role that ran
/// `db init`), and the operator's schema commands are where a store is brought to what the
/// build expects. Returns what it changed, one sentence each, for the operator to read.
pub(crate) fn refresh(txn: &mut Transaction<'_>) -> Result<Vec<String>> {
    // (option, this build's value, whether another value is replaced): the session options
    // are ours; a batch size an operator chose is kept.
    let wanted = [
        ("options", crate::planner::session_options(), true),
        ("batch_size", REMOTE_BATCH.to_string(), false),
    ];
    let shards = stored(txn)?;
    let fetch = samples_fetch(shards.len());
    let mut changed = Vec::new();
    if shards.iter().any(|s| s.server.is_some())
        && txn
            .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'dblink'", &[])?
            .is_none()
    {
        txn.batch_execute("CREATE EXTENSION dblink")?;
        changed.push("created the dblink extension".to_string());
    }
    for shard in shards {
        let Some(server) = shard.server else { continue };
        for (option, value, replace) in &wanted {
            let current: Option<String> = txn
                .query_opt(
                    "SELECT substr(o, length($2) + 2) FROM pg_foreign_server s, \
                     unnest(s.srvoptions) o WHERE s.srvname = $1 AND starts_with(o, $2 || '=')",
                    &[&server, option],
                )?
                .map(|r| r.get(0));
            let action = match current {
                Some(ref v) if v == value || !replace => continue,
                Some(_) => "SET",
                None => "ADD",
            };
            changed.push(match current {
                Some(old) => format!("foreign server {server}: {option} '{value}' (was '{old}')"),
                None => format!("foreign server {server}: {option} '{value}' (was not set)"),
            });
            // `action` is one of two fixed words; the names and value are quoted by `format`.
            let alter: String = txn
                .query_one(
                    &format!(
                        "SELECT format('ALTER SERVER %I OPTIONS ({action} %I %L)', \
                         $1::text, $2::text, $3::text)"
                    ),
                    &[&server, option, value],
                )?
                .get(0);
            txn.batch_execute(&alter)?;
        }
        // A fetch size an operator chose is kept.
        let samples = partition_name("samples", shard.shard);
        let fetch_size_set = txn
            .query_opt(
                "SELECT 1 FROM pg_foreign_table t JOIN pg_class c ON c.oid = t.ftrelid, \
                 unnest(t.ftoptions) o WHERE c.relname = $1 AND starts_with(o, 'fetch_size=')",
                &[&samples],
            )?
            .is_some();
        if !fetch_size_set {
            // The partition's name is fixed text (`partition_name`), the value a number.
            txn.batch_execute(&format!(
                "ALTER FOREIGN TABLE {samples} OPTIONS (ADD fetch_size '{fetch}')"
            ))?;
            changed.push(format!(
                "foreign table {samples}: fetch_size '{fetch}' (was not set)"
            ));
        }
    }
    Ok(changed)
}

/// How the store's server reaches another: the URL's host, port, database and login (its TLS
/// options are the target's `tls_options`).
struct ServerOptions {
    host: String,
    port: String,
    dbname: String,
    user: Option<String>,
    password: Option<String>,
}

impl ServerOptions {
    fn of(target: &Target) -> ServerOptions {
        let config = &target.config;
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let user = config.get_user().map(str::to_string);
        ServerOptions {
            host,
            port: config
                .get_ports()
                .first()
                .copied()
                .unwrap_or(5432)
                .to_string(),
            dbname: config
                .get_dbname()
                .map(str::to_string)
                .or_else(|| user.clone())
                .unwrap_or_else(|| "postgres".into()),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            user,
        }
    }
}

/// One partition of the layout: its number, its foreign server (`None`: the local one) and
/// where it is.
pub(crate) struct Shard {
    pub(crate) shard: usize,
    pub(crate) server: Option<String>,
    pub(crate) target: String,
}

/// The stored layout; empty for a store on one server.
pub(crate) fn stored(client: &mut impl GenericClient) -> Result<Vec<Shard>> {
    let exists: bool = client
        .query_one("SELECT to_regclass('sandscope_shards') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client.query(
        "SELECT shard, server, target FROM sandscope_shards ORDER BY shard",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Shard {
            shard: usize::try_from(r.get::<_, i32>(0)).unwrap_or(0),
            server: r.get(1),
            target: r.get(2),
        })
        .collect())
}

/// Another server's partition, for work done on that server itself: its foreign server (a
/// `dblink` connection: `dblink` takes a foreign server's name and logs in with its user
/// mapping, so no password is kept anywhere else) and its tables (`public.<table>_p<i>`, fixed
/// names, the only text that goes into the SQL sent there).
pub(crate) struct RemoteShard {
    pub(crate) server: String,
    pub(crate) tables: Vec<String>,
}

/// The other servers' partitions (none for one server). `dblink` must be in the store's
/// database (`db init` creates it; a store laid out before gets it from `db upgrade`).
pub(crate) fn remote_shards(
    client: &mut impl GenericClient,
    target: &str,
) -> Result<Vec<RemoteShard>> {
    let remotes: Vec<RemoteShard> = stored(client)?
        .into_iter()
        .filter_map(|s| {
            Some(RemoteShard {
                server: s.server?,
                tables: large_tables()
                    .iter()
                    .map(|t| format!("public.{}", partition_name(t.name, s.shard)))
                    .collect(),
            })
        })
        .collect();
    if !remotes.is_empty()
        && client
            .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'dblink'", &[])?
            .is_none()
    {
        return Err(PgStoreError::NoDblink {
            target: target.to_string(),
        });
    }
    Ok(remotes)
}

/// Refuse `shards` for a store already laid out otherwise (`db init --shards` run again).
pub(crate) fn check_same(
    client: &mut impl GenericClient,
    store: &Target,
    shards: &[Target],
) -> Result<()> {
    let stored: Vec<String> = stored(client)?.into_iter().map(|s| s.target).collect();
    let asked: Vec<String> = shards.iter().map(|s| s.shown.clone()).collect();
    if shards.is_empty() || stored == asked {
        return Ok(());
    }
    let stored = if stored.is_empty() {
        "one server".to_string()
    } else {
        stored.join(",")
    };
    Err(PgStoreError::BadShards(format!(
        "the store at {} is already laid out on {stored}; its layout cannot be changed by db init",
        store.shown
    )))
}

/// Where `table`'s rows are in the layout `shards` ([`check`]'s answer), one relation per
/// server: its partitions in the sharded layout (the local one first), the table itself on one
/// server. A search reads a page in order from each on its own (`search`), so that each server
/// stops at the page's end.
pub(crate) fn partitions(shards: &[Shard], table: &str) -> Vec<String> {
    if shards.is_empty() {
        return vec![table.to_string()];
    }
    shards
        .iter()
        .map(|s| partition_name(table, s.shard))
        .collect()
}

/// Reach every foreign partition of every large table through the store's server: a server
/// that is down, unreachable from the store's, or lacks its tables is refused, named. The
/// layout checked (empty on one server).
pub(crate) fn check(client: &mut impl GenericClient, store: &Target) -> Result<Vec<Shard>> {
    let shards = stored(client)?;
    for shard in &shards {
        let Some(server) = &shard.server else {
            continue;
        };
        for t in &large_tables() {
            let sql = format!(
                "SELECT 1 FROM {} LIMIT 1",
                partition_name(t.name, shard.shard)
            );
            client
                .query_opt(&sql, &[])
                .map_err(|e| PgStoreError::ShardUnavailable {
                    target: store.shown.clone(),
                    shard: shard.target.clone(),
                    server: server.clone(),
                    detail: db_detail(&e),
                })?;
        }
    }
    Ok(shards)
}

/// A server's message and detail (postgres_fdw puts the host and port in the detail).
pub(crate) fn db_detail(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_of_a_cap_reach_it() {
        assert_eq!(share_of(10_001, 2), 5_001);
        assert_eq!(share_of(10_001, 3), 3_334);
        assert_eq!(share_of(4, 2), 2);
        assert_eq!(share_of(7, 1), 7);
        assert_eq!(share_of(7, 0), 7, "no servers counts as one");
        assert_eq!(samples_fetch(2), "5001");
    }

    #[test]
    fn every_large_table_is_described_once_and_laid_out_alike_everywhere() {
        let plain = plain_ddl();
        let local = partitioned_ddl(3);
        let remote = remote_ddl(2);
        for t in &large_tables() {
            assert!(plain.contains(&format!("CREATE TABLE {} (", t.name)));
            assert!(local.contains(&format!("CREATE TABLE {}_p0 PARTITION OF", t.name)));
            assert!(local.contains(&format!(
                "CREATE FOREIGN TABLE {}_p2 PARTITION OF {} FOR VALUES WITH (MODULUS 3, REMAINDER 2) SERVER sandscope_shard_2",
                t.name, t.name
            )));
            assert!(remote.contains(&format!("CREATE TABLE public.{}_p2 (", t.name)));
            for (suffix, _) in &t.indexes {
                assert!(plain.contains(&format!("CREATE INDEX {}_{suffix} ON", t.name)));
                assert!(remote.contains(&format!("CREATE INDEX {}_p2_{suffix} ON", t.name)));
            }
        }
        // One trigram index per text column of `samples`, on every server.
        let columns = crate::search::fields::all_columns()
            .filter(|c| !crate::search::fields::is_token_column(c))
            .count();
        assert_eq!(columns, 10);
        assert_eq!(plain.matches("gin_trgm_ops").count(), columns);
        assert_eq!(remote.matches("gin_trgm_ops").count(), columns);
    }
}
