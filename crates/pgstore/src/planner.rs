//! The planner settings a search needs, owned here once: the search sets them in its
//! transaction on the store's server (`search`), and in the sharded layout every foreign
//! server passes them to the sessions `postgres_fdw` opens on its server (`layout`: libpq's
//! `options`), so a partition on another server is planned as the local one is.
//!
//! The values, and why:
//! * `work_mem` = 32MB: memory for the search's bitmaps of matching rows. With the default
//!   4 MB a bitmap holds about 65,000 heap pages exactly; past that it turns lossy and every row
//!   of a lossy page is read and tested again (at 200,000 samples with such a bitmap a common
//!   term rechecked 31,766 rows instead of 3,778, 1.03 s instead of 0.38 s). `samples` takes
//!   about 215,000 pages per million samples, so 32 MB keeps a bitmap exact to about 2.4
//!   million samples per server.
//! * `enable_seqscan` = off: no sequential scan while an index can answer. The planner's
//!   estimate of a `LIKE '%…%'` on these long columns is poor (20 rows for 1,715, 54,543 for
//!   about 23,000), so for a common term it chose to read `samples` in order and test every
//!   row, each test decompressing the columns: 735 ms where the trigram bitmap took 200 ms
//!   (200,000 samples). A condition no index answers (a Sigma count, a negation alone) is
//!   still read sequentially. On a second server, without it, a rare term was read
//!   sequentially too: 68 ms where its trigram index took 0.07 ms (20,000 reports); the
//!   search `behaviour:mimikatz` on two servers took 75 ms (p50) with the remote sessions at
//!   PostgreSQL's defaults and 2.0 ms with these settings (20,000 reports).
//! * `jit` = off: no compiling of the statement's expressions. A search is short and its cost
//!   estimate is not: in the sharded layout the foreign partition's estimate alone passes
//!   `jit_above_cost`, so every search on two servers paid 4.7 ms of compiling (13 functions)
//!   for a statement of 60–90 ms (`behaviour_files:@tutanota.com`, 1,000,000 reports; 67 ms
//!   with JIT and 62 ms without, warm, same session).
//!
//! On the store's server they hold for the search's transaction only; a remote session holds
//! them for its whole life, which is the FDW's connection: every statement the store's server
//! sends there (the writes' key lookups, `ANALYZE`'s sample, `count`) is planned so too, which
//! changes nothing where an index answers and leaves a sequential scan as the only plan
//! where none does.

use crate::Result;
use postgres::Transaction;
use postgres::types::ToSql;

/// The settings, as (name, value).
pub(crate) const SEARCH_SETTINGS: [(&str, &str); 3] = [
    ("work_mem", "32MB"),
    ("enable_seqscan", "off"),
    ("jit", "off"),
];

/// Set [`SEARCH_SETTINGS`] for the rest of `txn`, in one statement.
pub(crate) fn plan_for_trigrams(txn: &mut Transaction<'_>) -> Result<()> {
    let calls: Vec<String> = (0..SEARCH_SETTINGS.len())
        .map(|i| format!("set_config(${}, ${}, true)", 2 * i + 1, 2 * i + 2))
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = SEARCH_SETTINGS
        .iter()
        .flat_map(|(name, value)| [name as &(dyn ToSql + Sync), value])
        .collect();
    txn.execute(&format!("SELECT {}", calls.join(", ")), &params)?;
    Ok(())
}

/// [`SEARCH_SETTINGS`] as libpq's `options` (`-c name=value …`), what a session started with
/// it holds from its first statement.
pub(crate) fn session_options() -> String {
    SEARCH_SETTINGS
        .iter()
        .map(|(name, value)| format!("-c {name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_session_options_carry_every_setting() {
        assert_eq!(
            super::session_options(),
            "-c work_mem=32MB -c enable_seqscan=off -c jit=off"
        );
    }
}
