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
        "PostgreSQL at {target} refused the login ({detail}); check the user and password in the store URL"
    )]
    Authentication { target: String, detail: String },
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
    #[error("PostgreSQL: {0}")]
    Sql(#[from] postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
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

pub type Result<T, E = PgStoreError> = std::result::Result<T, E>;

/// A PostgreSQL store error as the record seam's (hunting's records go through it).
impl From<PgStoreError> for sandscope_store::RecordStoreError {
    fn from(error: PgStoreError) -> Self {
        sandscope_store::RecordStoreError::new(error)
    }
}
