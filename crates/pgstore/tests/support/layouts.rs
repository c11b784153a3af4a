//! Every store test on both layouts: one PostgreSQL, and the two-server layout (`db init
//! --shards`). Included by the store's tests next to `postgres_server`.
#![allow(dead_code)]

use super::postgres_server::TestCluster;
use sandscope_pgstore::{PgStore, SchemaChange};

/// `db init` for the cluster's layout.
pub fn init(cluster: &TestCluster) -> SchemaChange {
    match PgStore::init_sharded(&cluster.url(), &cluster.shard_urls()) {
        Ok(change) => change,
        Err(e) => panic!("db init on {:?}: {e}", cluster.layout),
    }
}

/// A new store on the cluster, initialised and opened.
pub fn store(cluster: &TestCluster) -> PgStore {
    init(cluster);
    match PgStore::open(&cluster.url()) {
        Ok(store) => store,
        Err(e) => panic!("open on {:?}: {e}", cluster.layout),
    }
}

/// For each `name`, a module of two tests calling `name(layout)`: `name::one_server` and
/// `name::two_servers`.
#[macro_export]
macro_rules! on_each_layout {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn one_server() {
                super::$name(super::Layout::OneServer)
            }
            #[test]
            fn two_servers() {
                super::$name(super::Layout::TwoServers)
            }
        }
    )+};
}
