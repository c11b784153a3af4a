//! The store's errors, and how each says what landed and what to do.

use crate::*;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("report database: {0}")]
    Database(#[from] redb::Error),
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored report {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    #[error("query: {0}")]
    Query(#[from] sandscope_query::ParseError),
    #[error("invalid report: {0}")]
    InvalidReport(String),
    /// The records a caller writes with a batch ([`crate::Store::put_reports_with`]) could not
    /// be made; nothing was stored.
    #[error("{0}")]
    Records(crate::RecordStoreError),
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("invalid order `{0}` (use first_seen-, first_seen+, last_seen- or last_seen+)")]
    InvalidOrder(String),
    #[error("not a SHA-256: `{0}`")]
    InvalidSha256(String),
    /// A query piece expands to more places than one search may hold in memory.
    #[error("query too broad: {0}")]
    TooBroad(String),
    #[error("value {0} of the value dictionary is unreadable")]
    CorruptValue(u64),
    /// Value ids are kept in four bytes (see `values`): over four billion distinct values.
    #[error("the value dictionary is full ({0} distinct values)")]
    TooManyValues(u64),
    #[error("report compression: {0}")]
    Compression(String),
    /// The disk holding the data directory is full. `stored`: whether the batch reached the
    /// report database (then it is indexed by itself once space is freed); `None` when that
    /// cannot be told (the commit itself failed and the database cannot be read yet).
    #[error("no space left on the disk of data directory {} ({}): {detail}", dir.display(), stored_note(.stored))]
    StorageFull {
        dir: PathBuf,
        stored: Option<bool>,
        detail: String,
    },
    /// A file of the data directory cannot be written (permissions, a read-only mount);
    /// `stored` as for [`StoreError::StorageFull`].
    #[error("data directory {} is not writable ({}): {detail}", dir.display(), stored_note(.stored))]
    Unwritable {
        dir: PathBuf,
        stored: Option<bool>,
        detail: String,
    },
    #[error("data directory {} is open read-only: nothing can be stored", .0.display())]
    ReadOnly(PathBuf),
    #[error(
        "data directory {} is in use by another process (a running `sandscope serve` or `ingest`); stop it first",
        .0.display()
    )]
    Locked(PathBuf),
    #[error(
        "data directory {} was not closed cleanly and cannot be repaired read-only; open it for writing once (e.g. `sandscope ingest`) to repair it",
        .0.display()
    )]
    NeedsRecovery(PathBuf),
    #[error(
        "the search index of data directory {} is missing or of an older format and cannot be rebuilt read-only; open it for writing once (e.g. `sandscope ingest`) to rebuild it",
        .0.display()
    )]
    IndexOutdated(PathBuf),
    #[error("{} is not a Sandscope data directory (it has no reports.redb)", .0.display())]
    NotAStore(PathBuf),
    /// A search stopped before its end: its work budget, its deadline or its caller's
    /// cancellation (see [`SearchLimits`]). No partial result is returned.
    #[error("{0}")]
    Exhausted(#[from] Exhausted),
}

impl StoreError {
    /// Whether the error comes from a full disk (ENOSPC), however deeply it is wrapped.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::StorageFull { .. })
            || self.has_io_error(&[28], &[std::io::ErrorKind::StorageFull])
    }

    /// Whether the error comes from a file that may not be written (EACCES, EPERM, EROFS).
    pub fn is_unwritable(&self) -> bool {
        use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
        matches!(self, StoreError::Unwritable { .. })
            || self.has_io_error(&[1, 13, 30], &[PermissionDenied, ReadOnlyFilesystem])
    }

    /// Whether an I/O error of one of these OS codes or kinds caused this error.
    fn has_io_error(&self, codes: &[i32], kinds: &[std::io::ErrorKind]) -> bool {
        let matching = |e: &std::io::Error| {
            kinds.contains(&e.kind()) || e.raw_os_error().is_some_and(|c| codes.contains(&c))
        };
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = next {
            let io = error.downcast_ref::<std::io::Error>().or_else(|| {
                error
                    .downcast_ref::<Arc<std::io::Error>>()
                    .map(|e| e.as_ref())
            });
            if io.is_some_and(matching) {
                return true;
            }
            next = error.source();
        }
        // tantivy reports some failures as text only: its indexing threads' (an io::Error's
        // Display), and failed file creations (its Debug).
        let text = self.to_string();
        codes
            .iter()
            .any(|c| text.contains(&format!("(os error {c})")))
            || kinds.iter().any(|k| text.contains(&format!("kind: {k:?}")))
    }

    /// Whether the report database is being reopened after a failed write (a retry soon
    /// succeeds, once the write's cause is gone).
    pub fn is_recovering(&self) -> bool {
        matches!(
            self,
            StoreError::Database(redb::Error::PreviousIo | redb::Error::DatabaseClosed)
        )
    }

    /// A full disk or an unwritable file as such ([`StoreError::StorageFull`],
    /// [`StoreError::Unwritable`]), naming the data directory; any other error unchanged.
    pub(crate) fn named_cause(self, dir: &Path, stored: Option<bool>) -> StoreError {
        let detail = self.to_string();
        let dir = dir.to_path_buf();
        match self {
            StoreError::StorageFull { .. } | StoreError::Unwritable { .. } => self,
            _ if self.is_storage_full() => StoreError::StorageFull {
                dir,
                stored,
                detail,
            },
            _ if self.is_unwritable() => StoreError::Unwritable {
                dir,
                stored,
                detail,
            },
            _ => self,
        }
    }

    /// The same error, saying whether the batch was stored.
    pub(crate) fn with_stored(self, landed: Option<bool>) -> StoreError {
        match self {
            StoreError::StorageFull { dir, detail, .. } => StoreError::StorageFull {
                dir,
                stored: landed,
                detail,
            },
            StoreError::Unwritable { dir, detail, .. } => StoreError::Unwritable {
                dir,
                stored: landed,
                detail,
            },
            other => other,
        }
    }

    /// Whether redb failed on the file itself: it then refuses everything until reopened.
    pub(crate) fn is_database_io(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
            )
        )
    }
}

fn stored_note(stored: &Option<bool>) -> &'static str {
    match stored {
        Some(true) => "the reports are stored and become searchable once writing works again",
        Some(false) => "nothing was stored",
        None => "the reports may have been stored: store them again (that replaces them)",
    }
}

/// What opening the report database failed on; a lock held by another process and a needed
/// repair are said as such, naming the data directory.
pub(crate) fn open_error(dir: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(dir.to_path_buf()),
        redb::DatabaseError::RepairAborted => StoreError::NeedsRecovery(dir.to_path_buf()),
        other => StoreError::Database(other.into()),
    }
}

impl StoreError {
    /// True when another process has the data directory open: redb's file lock lets one
    /// process at a time open a store.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Locked(_))
    }
}

macro_rules! redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
