//! Keeping the planner informed and the indexes compact.
//!
//! After a bulk load the per-field trigram indexes are only used well once PostgreSQL has
//! statistics on the new rows; autovacuum gets there on its own schedule, which a benchmark or
//! an operator after a large `copy` should not wait for. In the sharded layout each server
//! plans the scans shipped to it on its own statistics, so [`PgStore::analyze`] reaches every
//! server (through `dblink`, as `compact` does).
//!
//! Indexes grown one batch at a time are far larger than built at once: a sample's row is
//! claimed and then rewritten in its batch (`rebuild`), and entries arrive in no key order, so
//! pages split half full. At 20,000 benchmark reports the store took 168 MiB after the load
//! and 121 MiB once its indexes were rebuilt (schema version 4; version 3: 199 and 143).
//! [`PgStore::compact`] rebuilds them online (`REINDEX … CONCURRENTLY`: reads and writes go
//! on meanwhile). In the sharded layout each other server's partition is vacuumed and
//! reindexed on that server itself, through `dblink` and the foreign server (`layout`).

use crate::{PgStore, Result};

impl PgStore {
    /// Refresh the planner's statistics of every table of the store (`ANALYZE`). In the
    /// sharded layout twice over: on the store's server, which samples the foreign partitions
    /// through `postgres_fdw` to plan the statement it splits, and on each other server for its
    /// own partition, whose statistics plan the scans shipped there (else they wait for that
    /// server's autovacuum, which after a bulk load comes late).
    pub fn analyze(&self) -> Result<()> {
        let mut client = self.client()?;
        // The schema's fixed table names, never input.
        let tables = crate::schema::TABLES.join(", ");
        client.batch_execute(&format!("ANALYZE {tables}"))?;
        for remote in crate::layout::remote_shards(&mut client.client, &self.target)? {
            client.query_one(
                "SELECT dblink_exec($1, $2)",
                &[
                    &remote.server,
                    &format!("ANALYZE {}", remote.tables.join(", ")),
                ],
            )?;
        }
        Ok(())
    }

    /// Vacuum the store's tables and rebuild their indexes compactly, online: on the store's
    /// server, then, in the sharded layout, each other server's partition on that server
    /// (through `dblink` and the foreign server, `layout::remote_shards`).
    pub fn compact(&self) -> Result<()> {
        let mut client = self.client()?;
        let tables: Vec<String> = client
            .query(
                "SELECT c.oid::regclass::text FROM pg_class c \
                 JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid) \
                 WHERE c.relkind = 'r' AND root.relname = ANY($1) ORDER BY 1",
                &[&crate::schema::TABLES.as_slice()],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for table in tables {
            // Names PostgreSQL printed (quoted where needed), never input. Each statement on
            // its own: neither runs inside a transaction block.
            client.batch_execute(&format!("VACUUM {table}"))?;
            client.batch_execute(&format!("REINDEX TABLE CONCURRENTLY {table}"))?;
        }
        for remote in crate::layout::remote_shards(&mut client.client, &self.target)? {
            for table in &remote.tables {
                // Each a connection of its own, outside a transaction block there.
                for command in ["VACUUM", "REINDEX TABLE CONCURRENTLY"] {
                    client.query_one(
                        "SELECT dblink_exec($1, $2)",
                        &[&remote.server, &format!("{command} {table}")],
                    )?;
                }
            }
        }
        Ok(())
    }
}
