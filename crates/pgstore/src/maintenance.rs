//! Keeping the planner informed: after a bulk load the per-field trigram indexes are only
//! used well once PostgreSQL has statistics on the new rows; autovacuum gets there on its own
//! schedule, which a benchmark or an operator after a large `copy` should not wait for.

use crate::{PgStore, Result};

impl PgStore {
    /// Refresh the planner's statistics of every table of the store (`ANALYZE`; foreign
    /// partitions are sampled through `postgres_fdw`).
    pub fn analyze(&self) -> Result<()> {
        // The schema's fixed table names, never input.
        let tables = crate::schema::TABLES.join(", ");
        self.client()?.batch_execute(&format!("ANALYZE {tables}"))?;
        Ok(())
    }
}
