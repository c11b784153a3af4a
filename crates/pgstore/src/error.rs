//! The PostgreSQL store's errors; each names PostgreSQL and says what to do.

use sandscope_store::Exhausted;

/// Errors of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    #[error(
        "the PostgreSQL store URL is not valid ({0}); write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    BadUrl(String),
    #[error(
        "cannot reach PostgreSQL at {target} ({detail}); check that the server runs and that the store URL's host and port are right"
    )]
    Unreachable { target: String, detail: String },
    #[error(
        "PostgreSQL at {target} refused the login ({detail}); check the user and password (or client certificate) in the store URL"
    )]
    Authentication { target: String, detail: String },
    #[error(
        "no TLS connection to PostgreSQL at {target} ({detail}); check the store URL's sslmode and sslrootcert and the server's ssl settings"
    )]
    Tls { target: String, detail: String },
    #[error(
        "PostgreSQL at {target} has no database by the store URL's name ({detail}); create it first (`createdb NAME`), then run `sandscope db init --store URL`"
    )]
    NoDatabase { target: String, detail: String },
    #[error(
        "the PostgreSQL database at {target} holds no Sandscope schema; run `sandscope db init --store URL` first"
    )]
    NoSchema { target: String },
    #[error(
        "the PostgreSQL database at {target} holds Sandscope schema version {found}, this build uses version {expected}; run `sandscope db upgrade --store URL`"
    )]
    SchemaOlder {
        target: String,
        found: i32,
        expected: i32,
    },
    #[error(
        "the PostgreSQL database at {target} holds Sandscope schema version {found}, newer than this build's version {expected}; run a newer sandscope"
    )]
    SchemaNewer {
        target: String,
        found: i32,
        expected: i32,
    },
    #[error(
        "the servers given to `--shards` cannot hold the store ({0}); write them as --shards URL1,URL2,… with the store's URL first"
    )]
    BadShards(String),
    #[error(
        "the store at {target} keeps part of its samples on other servers, which its sizes, statistics and compaction reach through PostgreSQL's dblink extension, missing from its database; run `sandscope db upgrade --store URL` (it creates it)"
    )]
    NoDblink { target: String },
    #[error("cannot create the store's tables on shard server {shard} ({detail})")]
    ShardSetup { shard: String, detail: String },
    #[error(
        "the store at {target} keeps part of its samples on shard server {shard} (foreign server {server}), which cannot be used ({detail}); check that it runs and that the PostgreSQL at {target} can reach it, then retry"
    )]
    ShardUnavailable {
        target: String,
        shard: String,
        server: String,
        detail: String,
    },
    /// A shard server (reached by `postgres_fdw`) went away mid-operation.
    #[error(
        "a shard server of the store could not be reached ({0}); what was being written was not stored — check that it runs, then retry"
    )]
    ShardLost(String),
    #[error("PostgreSQL: {0}")]
    Sql(postgres::Error),
    /// The server went away mid-operation (restarted, stopped, network cut): the transaction
    /// did not commit, so nothing of it was stored.
    #[error(
        "the connection to PostgreSQL was lost ({0}); what was being written was not stored — check that the server runs and retry"
    )]
    ConnectionLost(String),
    #[error(
        "no connection to PostgreSQL could be made ({0}); check that the server runs and is reachable, then retry"
    )]
    Pool(#[from] r2d2::Error),
    #[error("query: {0}")]
    Query(#[from] sandscope_query::ParseError),
    #[error("invalid report: {0}")]
    InvalidReport(String),
    #[error("stored report {id} is unreadable: {detail}")]
    Corrupt { id: String, detail: String },
    #[error("not a SHA-256: `{0}`")]
    InvalidSha256(String),
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("record id {0} is past the largest id PostgreSQL stores (2^63 - 1)")]
    RecordIdOutOfRange(u64),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("raw log of report {0} is larger than the largest log kept")]
    LogTooLarge(String),
    /// A search stopped before its end (work budget, deadline, cancellation); no partial page.
    #[error("{0}")]
    Exhausted(#[from] Exhausted),
}

/// Lost connections are told apart from what PostgreSQL answered: only they call for a retry.
impl From<postgres::Error> for PgStoreError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let shutdown = error.code().is_some_and(|c| {
            *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        });
        let io = error.as_db_error().is_none()
            && std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>());
        // postgres_fdw's own failure to reach a shard server: a db error of class 08.
        if let Some(db) = error.as_db_error()
            && (*db.code() == SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION
                || *db.code() == SqlState::CONNECTION_FAILURE)
        {
            return PgStoreError::ShardLost(crate::layout::db_detail(&error));
        }
        if shutdown || io || error.is_closed() {
            // postgres::Error shows only "db error"; the server's own words are its cause.
            let detail = match (error.as_db_error(), std::error::Error::source(&error)) {
                (Some(db), _) => db.message().to_string(),
                (None, Some(cause)) => format!("{error}: {cause}"),
                (None, None) => error.to_string(),
            };
            PgStoreError::ConnectionLost(detail)
        } else {
            PgStoreError::Sql(error)
        }
    }
}

pub type Result<T, E = PgStoreError> = std::result::Result<T, E>;

/// A PostgreSQL store error as the record seam's (hunting's records go through it).
impl From<PgStoreError> for sandscope_store::RecordStoreError {
    fn from(error: PgStoreError) -> Self {
        sandscope_store::RecordStoreError::new(error)
    }
}
