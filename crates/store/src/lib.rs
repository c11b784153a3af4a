//! The embedded Sandscope data directory: every behaviour report (many per sample, one per
//! sandbox), the raw log each was built from, and a search index answering the VirusTotal
//! Intelligence language ([`sandscope_query`]), with pivots and relationship graphs.
//!
//! Layout of a data directory:
//! * `reports.redb` — redb database, the source of truth: reports (JSON, keyed by report id
//!   `<sha256>_<sandbox name>`, so one sample's reports are one key range; compressed with zstd
//!   and a dictionary trained on the store's first reports, see `codec`), raw logs (bytes),
//!   log metadata, the value dictionary (`values`: every distinct behaviour value once, with the
//!   sample that owns it, stored as reported when its spellings derive from it), and the
//!   `pending_index`/`pending_values` bookkeeping tables. Each batch rewrites the pages of the
//!   hash-keyed tables, so bulk ingest leaves free pages behind; [`Store::compact`] returns
//!   them to the file system;
//! * `index/samples/` — tantivy index, one document per sample, newest first, holding the words
//!   of the values the sample owns;
//! * `index/values/` — tantivy index, one document per shared value (its words, with positions).
//!
//! Both indexes are derived entirely from redb.
//!
//! # Transactions and crash safety
//! A batch of reports is written in one redb transaction that also records each touched sample
//! in `pending_index` (and each new or changed value in `pending_values`); once that commits, the
//! batch has landed (whole, or not at all: redb commits are atomic). The values, then the
//! samples, are re-indexed from redb (delete + add of each document) and each tantivy index
//! commits (atomic too: a new `meta.json` replaces the old one); finally the pending entries
//! are removed. Between the two index commits a search may still match a sample by what it
//! reported before the batch; hits are always shown from the committed reports in redb. A
//! crash between the commits leaves samples and values pending, and [`Store::open`]
//! re-indexes them before anything is served; a crash before the redb commit leaves nothing.
//! Re-indexing is idempotent, so no ordering of kills can show a half-written report.
//!
//! # Failed writes and read-only stores
//! A write that fails (a full disk, files that may not be written) leaves the store searchable:
//! the store drops its index writers (a tantivy writer that failed is poisoned), reopens redb
//! if the failure latched it (redb then refuses everything until reopened), and remembers the
//! failure ([`Store::write_health`]). The next write, or [`Store::retry_pending`] on a timer,
//! redoes it: what the failure left pending is indexed, without a restart. A full disk is
//! [`StoreError::StorageFull`], saying whether the batch reached redb.
//! [`Store::open_read_only`] opens redb read-only and the indexes without their lock files:
//! nothing in the directory is created, written or locked for writing, so read-only media can
//! be searched; samples left pending are then not found until a writable open indexes them.
//!
//! # Concurrency
//! A [`Store`] is `Send + Sync`: any number of threads may read and search while one writes
//! (writes are serialised by an internal lock; redb readers see the last committed
//! transaction, tantivy readers the last committed index). One process at a time may open a
//! data directory for writing (redb holds a file lock); any number may open it read-only while
//! none writes.
//!
//! This crate depends on the report model and the query language, never on readers, the report
//! builder or the server.

mod budget;
mod codec;
mod db;
mod index;
mod leb128;
mod phrase;
mod pivot;
mod read_only;
mod search;
mod values;
mod vocabulary;

pub use budget::{DEFAULT_MAX_WORK, DEFAULT_SEARCH_TIMEOUT, Exhausted, SearchLimits};
pub use pivot::{Edge, Graph, GraphFormat, Indicator, IndicatorKind, Node, NodeKind};
pub use search::{EXACT_COUNT_LIMIT, Order, SearchHit, SearchPage, SearchRequest};

use codec::ReportCodec;
pub(crate) use db::Db;
use index::{SampleFields, ValueFields};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_query::SampleDoc;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};

const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("reports");
const RAW_LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("raw_logs");
const LOG_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("log_info");
const PENDING: TableDefinition<&str, u64> = TableDefinition::new("pending_index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Largest raw log kept with a report.
pub const MAX_RAW_LOG_BYTES: u64 = 2 << 30;

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
    fn named_cause(self, dir: &Path, stored: Option<bool>) -> StoreError {
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
    fn with_stored(self, landed: Option<bool>) -> StoreError {
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
    fn is_database_io(&self) -> bool {
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

/// How far a batch got when its write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Building,
    /// The redb commit failed: it may still have reached the file.
    Committing,
    Committed,
}

/// What opening the report database failed on; a lock held by another process and a needed
/// repair are said as such, naming the data directory.
fn open_error(dir: &Path, error: redb::DatabaseError) -> StoreError {
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

/// The raw log a report was built from.
#[derive(Debug, Clone)]
pub struct RawLog {
    /// The file name it was ingested from (no directories).
    pub file_name: String,
    pub data: RawData,
}

#[derive(Debug, Clone)]
pub enum RawData {
    Bytes(Vec<u8>),
    /// Copied from this file inside the write transaction, without loading it whole.
    File(PathBuf),
}

/// A report to store, with the log it came from when there is one.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub behaviour: FileBehaviour,
    pub raw_log: Option<RawLog>,
}

/// A stored raw log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLog {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// A page of one sample's reports.
#[derive(Debug, Clone)]
pub struct ReportPage {
    pub reports: Vec<FileBehaviour>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Tuning of the index writer.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub index_threads: usize,
    /// Indexing memory budget in bytes (tantivy needs at least 15 MB per thread).
    pub index_memory: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            index_threads: 1,
            index_memory: 64 << 20,
        }
    }
}

/// Counts for status displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub reports: u64,
    pub samples: u64,
    pub raw_logs: u64,
}

/// What the report database costs (see [`Store::database_sizes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSizes {
    pub tables: Vec<TableSize>,
    /// Pages in use, of any table or of redb itself.
    pub allocated_bytes: u64,
}

/// What one table of the report database costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    pub name: String,
    pub entries: u64,
    /// Keys and values as inserted.
    pub stored_bytes: u64,
    /// Branch pages and other B-tree bookkeeping.
    pub metadata_bytes: u64,
    /// Unused space inside the table's pages.
    pub fragmented_bytes: u64,
}

/// An open data directory. See the crate documentation for its guarantees.
pub struct Store {
    dir: PathBuf,
    db: Arc<Db>,
    index: Index,
    reader: IndexReader,
    fields: SampleFields,
    value_index: Index,
    value_reader: IndexReader,
    value_fields: ValueFields,
    /// Word lists of both indexes' segments (see `vocabulary`).
    vocabulary: Arc<vocabulary::Vocabulary>,
    /// The report dictionaries committed to redb (see `codec`).
    codec: RwLock<Arc<ReportCodec>>,
    /// Reports the store must hold before a dictionary is trained (again).
    next_training: AtomicU64,
    options: StoreOptions,
    /// Opened with [`Store::open_read_only`]: nothing is ever written.
    read_only: bool,
    writer: Mutex<Option<Writers>>,
    /// The last write that failed, until its work has been redone (see [`Store::retry_pending`]).
    failure: Mutex<Option<WriteFailure>>,
}

/// Why the last write failed.
#[derive(Debug, Clone)]
struct WriteFailure {
    message: String,
    storage_full: bool,
    unwritable: bool,
    /// redb refuses every call after a failed file write until it is reopened.
    database_failed: bool,
}

/// Whether writes are keeping up, for health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteHealth {
    /// Samples stored in redb but not (yet) in the search index: searches miss them.
    pub pending_samples: u64,
    /// The last write's error while the store has not recovered from it.
    pub last_error: Option<String>,
    /// That error is a full disk.
    pub storage_full: bool,
    /// That error is a file that may not be written (permissions, a read-only mount).
    pub unwritable: bool,
    pub read_only: bool,
}

/// The two index writers; held together so one lock serialises all writes.
struct Writers {
    samples: IndexWriter,
    values: IndexWriter,
}

type WriterGuard<'a> = std::sync::MutexGuard<'a, Option<Writers>>;

/// The default data directory: `$SANDSCOPE_DATA`, else `./sandscope-data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("SANDSCOPE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("sandscope-data"))
}

/// Readers of the samples and values indexes, reloaded by the store itself after its commits
/// (never on tantivy's own schedule).
fn manual_readers(index: &Index, value_index: &Index) -> Result<(IndexReader, IndexReader)> {
    let reader = |index: &Index| {
        index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
    };
    Ok((reader(index)?, reader(value_index)?))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sample_range(sha256: &str) -> (String, String) {
    // Report ids are `<sha256>_<sandbox>`; '`' sorts right after '_'.
    (format!("{sha256}_"), format!("{sha256}`"))
}

impl Store {
    /// Open (or create) a data directory, finishing any indexing a crash interrupted.
    pub fn open(dir: &Path) -> Result<Store> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Open (or create) a data directory for reading and writing. Indexing a crash left
    /// pending is finished first; if that fails (a full disk), the store still opens, reports
    /// the failure in [`Store::write_health`] and retries on the next write or
    /// [`Store::retry_pending`].
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store> {
        Self::open_writable(dir, options).map_err(|error| error.named_cause(dir, Some(false)))
    }

    fn open_writable(dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let db = Arc::new(Db::create(&dir.join("reports.redb")).map_err(|e| open_error(dir, e))?);
        let txn = db.begin_write()?;
        let stored_format;
        let codec;
        {
            txn.open_table(REPORTS)?;
            txn.open_table(RAW_LOGS)?;
            txn.open_table(LOG_INFO)?;
            txn.open_table(PENDING)?;
            values::create_tables(&txn)?;
            codec = ReportCodec::load(&txn.open_table(codec::REPORT_DICTS)?)?;
            let meta = txn.open_table(META)?;
            stored_format = meta.get("index_format")?.map(|v| v.value());
        }
        txn.commit()?;

        let index_dir = dir.join("index");
        let samples_dir = index_dir.join("samples");
        let values_dir = index_dir.join("values");
        let fresh =
            !samples_dir.join("meta.json").exists() || !values_dir.join("meta.json").exists();
        let rebuild = fresh || stored_format != Some(index::INDEX_FORMAT);
        if rebuild && index_dir.exists() {
            // Throw away an index of an older format; redb has everything to rebuild it.
            std::fs::remove_dir_all(&index_dir).map_err(io_err(&index_dir))?;
        }
        let open_index = |path: &Path,
                          schema: tantivy::schema::Schema,
                          settings: tantivy::IndexSettings|
         -> Result<Index> {
            std::fs::create_dir_all(path).map_err(io_err(path))?;
            let mut index = if rebuild {
                Index::builder()
                    .schema(schema)
                    .settings(settings)
                    .create_in_dir(path)?
            } else {
                Index::open_in_dir(path)?
            };
            // Segments are searched in parallel: a broad query (most samples match) is bound by
            // the phrase matching over many segments, which splits across cores.
            index.set_default_multithread_executor()?;
            index
                .tokenizers()
                .register(index::WORD_TOKENIZER, index::analyzer());
            Ok(index)
        };
        let (schema, fields) = index::schema();
        let (value_schema, value_fields) = index::value_schema();
        // Newest first, so a page of a broad query stops early (see `search`).
        let sorted = tantivy::IndexSettings {
            sort_by_field: Some(tantivy::IndexSortByField {
                field: index::ORDER_KEY.to_string(),
                order: tantivy::Order::Desc,
            }),
            ..Default::default()
        };
        let index = open_index(&samples_dir, schema, sorted)?;
        let value_index = open_index(&values_dir, value_schema, Default::default())?;
        let (reader, value_reader) = manual_readers(&index, &value_index)?;
        let store = Store {
            dir: dir.to_path_buf(),
            db,
            index,
            reader,
            fields,
            value_index,
            value_reader,
            value_fields,
            vocabulary: Default::default(),
            codec: RwLock::new(Arc::new(codec)),
            next_training: AtomicU64::new(codec::TRAIN_AT_REPORTS),
            options,
            read_only: false,
            writer: Mutex::new(None),
            failure: Mutex::new(None),
        };
        if rebuild {
            store.register_all()?;
        }
        let mut guard = store.lock_writer();
        if let Err(error) = store.reconcile(&mut guard) {
            // redb holds everything; searching what is indexed beats refusing to open.
            store.failed(&mut guard, error, Some(false));
        }
        drop(guard);
        Ok(store)
    }

    /// Open an existing data directory for searching and reading only: no file is created,
    /// changed or locked for writing, so it works on read-only media and without write
    /// permission. Samples a failed or interrupted write left unindexed are not found by
    /// searches until a writable open indexes them ([`Store::pending_samples`] counts them).
    pub fn open_read_only(dir: &Path) -> Result<Store> {
        let db_path = dir.join("reports.redb");
        if !db_path.is_file() {
            return Err(StoreError::NotAStore(dir.to_path_buf()));
        }
        let db = Arc::new(Db::open_read_only(&db_path).map_err(|e| open_error(dir, e))?);
        let (stored_format, codec) = {
            let txn = db.begin_read()?;
            let stored_format = match txn.open_table(META) {
                Ok(meta) => meta.get("index_format")?.map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            };
            // A store written before report dictionaries has none.
            let codec = match txn.open_table(codec::REPORT_DICTS) {
                Ok(table) => ReportCodec::load(&table)?,
                Err(redb::TableError::TableDoesNotExist(_)) => ReportCodec::default(),
                Err(e) => return Err(e.into()),
            };
            (stored_format, codec)
        };
        let samples_dir = dir.join("index").join("samples");
        let values_dir = dir.join("index").join("values");
        if stored_format != Some(index::INDEX_FORMAT)
            || !samples_dir.join("meta.json").is_file()
            || !values_dir.join("meta.json").is_file()
        {
            return Err(StoreError::IndexOutdated(dir.to_path_buf()));
        }
        let open_index = |path: &Path| -> Result<Index> {
            let mut index = Index::open(read_only::ReadOnlyDirectory::open(path)?)?;
            index.set_default_multithread_executor()?;
            index
                .tokenizers()
                .register(index::WORD_TOKENIZER, index::analyzer());
            Ok(index)
        };
        let index = open_index(&samples_dir)?;
        let value_index = open_index(&values_dir)?;
        let (reader, value_reader) = manual_readers(&index, &value_index)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            db,
            index,
            reader,
            fields: index::schema().1,
            value_index,
            value_reader,
            value_fields: index::value_schema().1,
            vocabulary: Default::default(),
            codec: RwLock::new(Arc::new(codec)),
            next_training: AtomicU64::new(codec::TRAIN_AT_REPORTS),
            options: StoreOptions::default(),
            read_only: true,
            writer: Mutex::new(None),
            failure: Mutex::new(None),
        })
    }

    /// Whether the store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Samples stored but not yet in the search index.
    pub fn pending_samples(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(PENDING)?.len()?)
    }

    /// Whether writes are keeping up: pending samples and the last failed write.
    pub fn write_health(&self) -> Result<WriteHealth> {
        let failure = self.failure_now();
        Ok(WriteHealth {
            pending_samples: self.pending_samples()?,
            storage_full: failure.as_ref().is_some_and(|f| f.storage_full),
            unwritable: failure.as_ref().is_some_and(|f| f.unwritable),
            last_error: failure.map(|f| f.message),
            read_only: self.read_only,
        })
    }

    /// Whether a write failed and its work has not been redone yet.
    pub fn needs_retry(&self) -> bool {
        self.failure_now().is_some()
    }

    /// Redo what a failed write left undone: reopen the report database if the failure broke
    /// it, start fresh index writers and index every pending sample and value. Returns
    /// whether there was anything to redo. Writes call this first by themselves; call it on a
    /// timer to recover without waiting for the next write.
    pub fn retry_pending(&self) -> Result<bool> {
        if self.read_only || !self.needs_retry() {
            return Ok(false);
        }
        let mut guard = self.lock_writer();
        self.recover(&mut guard)
            .map_err(|error| self.failed(&mut guard, error, Some(false)))?;
        Ok(true)
    }

    fn failure_now(&self) -> Option<WriteFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Record a failed write: drop the index writers (a tantivy writer that failed is
    /// poisoned), remember the error for health checks and the next write, and name a full
    /// disk as such. `stored`: the batch being written had reached redb.
    fn failed(
        &self,
        guard: &mut WriterGuard<'_>,
        error: StoreError,
        stored: Option<bool>,
    ) -> StoreError {
        **guard = None;
        let storage_full = error.is_storage_full();
        let unwritable = !storage_full && error.is_unwritable();
        // Until a reopen succeeds, the database stays broken whatever fails next. Reopen it
        // now, so reads work again at once (the failed transaction is gone by now).
        let database_failed = (error.is_database_io()
            || self.failure_now().is_some_and(|f| f.database_failed))
            && self.db.reopen().is_err();
        let failure = WriteFailure {
            message: error.to_string(),
            storage_full,
            unwritable,
            database_failed,
        };
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure);
        error.named_cause(&self.dir, stored)
    }

    /// Redo the work of the last failed write, if any (see [`Store::retry_pending`]).
    fn recover(&self, guard: &mut WriterGuard<'_>) -> Result<()> {
        let Some(failure) = self.failure_now() else {
            return Ok(());
        };
        **guard = None;
        if failure.database_failed {
            self.db.reopen().map_err(|e| open_error(&self.dir, e))?;
            if let Some(f) = self
                .failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                f.database_failed = false;
            }
        }
        self.reconcile(guard)?;
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rebuild the value dictionary from the stored reports and queue every sample for
    /// indexing (a new data directory, or an index of an older format). The format is recorded
    /// last, so a crash part-way starts the rebuild over.
    fn register_all(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        values::clear(&txn)?;
        txn.commit()?;
        let mut after: Option<String> = None;
        loop {
            let shas = self.sample_shas_after(after.as_deref(), 2_000)?;
            let Some(last) = shas.last().cloned() else {
                break;
            };
            let txn = self.db.begin_write()?;
            {
                for sha in &shas {
                    let doc = {
                        let reports = txn.open_table(REPORTS)?;
                        let reports = read_sample_reports(&self.codec(), &reports, sha)?;
                        SampleDoc::from_reports(sha, &reports)
                    };
                    values::register_sample(&txn, &doc)?;
                    txn.open_table(PENDING)?.insert(sha.as_str(), 0)?;
                }
            }
            txn.commit()?;
            after = Some(last);
        }
        let txn = self.db.begin_write()?;
        txn.open_table(META)?
            .insert("index_format", index::INDEX_FORMAT)?;
        txn.commit()?;
        Ok(())
    }

    /// Up to `limit` distinct sample SHA-256s after `after`, in order.
    fn sample_shas_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        let reports = txn.open_table(REPORTS)?;
        let start = match after {
            // Every id of `after` is `<after>_…`, which sorts before `<after>` + '`'.
            Some(a) => format!("{a}`"),
            None => String::new(),
        };
        let mut out: Vec<String> = Vec::new();
        for entry in reports.range::<&str>(start.as_str()..)? {
            let (k, _) = entry?;
            let sha = k.value().split('_').next().unwrap_or_default();
            if out.last().is_some_and(|l| l == sha) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(sha.to_string());
        }
        Ok(out)
    }

    /// Index every sample and value left pending (by a crash, a failed write or a format
    /// change).
    fn reconcile(&self, guard: &mut WriterGuard<'_>) -> Result<()> {
        let pending: Vec<String> = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(PENDING)?;
            table
                .iter()?
                .map(|e| e.map(|(k, _)| k.value().to_string()))
                .collect::<Result<_, _>>()?
        };
        let values_pending = {
            let txn = self.db.begin_read()?;
            !txn.open_table(values::PENDING_VALUES)?.is_empty()?
        };
        if pending.is_empty() && !values_pending {
            return Ok(());
        }
        if pending.is_empty() {
            self.index_pending(guard, &[], &HashMap::new())?;
        }
        for chunk in pending.chunks(10_000) {
            self.index_pending(guard, chunk, &HashMap::new())?;
        }
        Ok(())
    }

    fn lock_writer(&self) -> WriterGuard<'_> {
        // A panic while holding the lock leaves no partial state we rely on: redb and tantivy
        // transactions are atomic, so the poisoned guard is safe to reuse.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index writers, created when there are none (first write, or after a failure).
    fn writers<'g>(&self, guard: &'g mut WriterGuard<'_>) -> Result<&'g mut Writers> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        if guard.is_none() {
            let threads = self.options.index_threads.max(1);
            let memory = self.options.index_memory.max(15_000_000 * threads);
            // Sample documents hold most of the text (their owned values); the value index
            // only the shared values, which are few.
            let samples = self.index.writer_with_num_threads(threads, memory)?;
            let values = self
                .value_index
                .writer_with_num_threads(1, (memory / 4).max(15_000_000))?;
            // A kill during an index commit can leave files the live `meta.json` does not
            // reference (e.g. a `.del` file named after the lost commit's opstamp); the next
            // commit would reuse that name and fail. Removing unreferenced files first makes
            // the reopen need no repair.
            samples.garbage_collect_files().wait()?;
            values.garbage_collect_files().wait()?;
            **guard = Some(Writers { samples, values });
        }
        match guard.as_mut() {
            Some(writers) => Ok(writers),
            None => Err(StoreError::ReadOnly(self.dir.clone())),
        }
    }

    /// Re-derive from redb the documents of every pending value, then of `samples` (using the
    /// already built `docs` where given), commit both indexes, and clear what was indexed from
    /// the pending tables.
    fn index_pending(
        &self,
        guard: &mut WriterGuard<'_>,
        samples: &[String],
        docs: &HashMap<String, SampleDoc>,
    ) -> Result<()> {
        let writers = self.writers(guard)?;
        let txn = self.db.begin_read()?;
        let codec = self.codec();
        let pending_values: Vec<u64> = txn
            .open_table(values::PENDING_VALUES)?
            .iter()?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        let value_table = txn.open_table(values::VALUES)?;
        for vid in &pending_values {
            writers
                .values
                .delete_term(index::vid_term(&self.value_fields, *vid));
            if let Some(bytes) = value_table.get(*vid)?
                && values::ValueRecord::decode_owner(*vid, bytes.value())?.1
            {
                let record = values::ValueRecord::decode(*vid, bytes.value())?;
                writers.values.add_document(index::value_document(
                    &self.value_fields,
                    *vid,
                    &record,
                ))?;
            }
        }
        let reports = txn.open_table(REPORTS)?;
        let sample_nos = txn.open_table(values::SAMPLE_NOS)?;
        let sample_values = txn.open_table(values::SAMPLE_VALUES)?;
        for sha in samples {
            writers
                .samples
                .delete_term(index::sha_term(&self.fields, sha));
            let built;
            let doc = match docs.get(sha) {
                Some(doc) => doc,
                None => {
                    let reports = read_sample_reports(&codec, &reports, sha)?;
                    if reports.is_empty() {
                        continue;
                    }
                    built = SampleDoc::from_reports(sha, &reports);
                    &built
                }
            };
            let Some(no) = sample_nos.get(sha.as_str())?.map(|v| v.value()) else {
                continue;
            };
            let mut shared = Vec::new();
            let mut owned = Vec::new();
            if let Some(ids) = sample_values.get(sha.as_str())? {
                for vid in values::decode_ids(ids.value()) {
                    match value_table.get(vid)? {
                        Some(bytes)
                            if values::ValueRecord::decode_owner(vid, bytes.value())?.0 == no =>
                        {
                            owned.push(values::ValueRecord::decode(vid, bytes.value())?);
                        }
                        _ => shared.push(vid),
                    }
                }
            }
            writers.samples.add_document(index::document(
                &self.fields,
                doc,
                no,
                &shared,
                &owned,
            ))?;
        }
        drop((reports, sample_nos, sample_values, value_table, txn));
        // Values first: a newly shared value is then findable before its sharers list it
        // (they are simply not found through it yet), never listed before it is findable.
        writers.values.commit()?;
        self.value_reader.reload()?;
        writers.samples.commit()?;
        self.reader.reload()?;
        let txn = self.db.begin_write()?;
        {
            let mut pending = txn.open_table(PENDING)?;
            for sha in samples {
                pending.remove(sha.as_str())?;
            }
            let mut pending = txn.open_table(values::PENDING_VALUES)?;
            for vid in pending_values {
                pending.remove(vid)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Store a batch of reports (replacing any with the same id) and index their samples.
    /// When this returns `Ok`, the batch is durable and searchable; on error or crash it is
    /// either entirely stored or not at all. Returns the report ids in batch order.
    ///
    /// A write first redoes what an earlier failed write left undone (see
    /// [`Store::retry_pending`]). A full disk is [`StoreError::StorageFull`], saying whether the
    /// batch reached redb (it is then indexed by itself once space is freed).
    pub fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        let mut ids = Vec::with_capacity(batch.len());
        let mut samples: Vec<String> = Vec::new();
        for r in &batch {
            let b = &r.behaviour;
            let sha = b.sha256();
            if !is_sha256(sha) || sha.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(StoreError::InvalidReport(format!(
                    "report id `{}` does not start with a lower-case SHA-256",
                    b.id
                )));
            }
            if b.attributes.sandbox_name.is_empty()
                || b.id != sandscope_model::behaviour_id(sha, &b.attributes.sandbox_name)
            {
                return Err(StoreError::InvalidReport(format!(
                    "report id `{}` is not `<sha256>_<sandbox_name>`",
                    b.id
                )));
            }
            ids.push(b.id.clone());
            if !samples.iter().any(|s| s == sha) {
                samples.push(sha.to_string());
            }
        }
        let mut guard = self.lock_writer();
        self.recover(&mut guard)
            .map_err(|error| self.failed(&mut guard, error, Some(false)))?;
        let mut progress = Progress::Building;
        match self.write_batch(&mut guard, &batch, &samples, &mut progress) {
            Ok(()) => Ok(ids),
            Err(error) => {
                let stored = match progress {
                    Progress::Building => Some(false),
                    Progress::Committing => None,
                    Progress::Committed => Some(true),
                };
                let error = self.failed(&mut guard, error, stored);
                Err(match (stored, error) {
                    // Once `failed` reopened redb, what the failed commit left can be read.
                    (None, error) => error.with_stored(self.landed(&batch)),
                    (_, error) => error,
                })
            }
        }
    }

    /// Whether every report of `batch` is stored as given; `None` when redb cannot tell.
    fn landed(&self, batch: &[NewReport]) -> Option<bool> {
        for r in batch {
            match self.report(&r.behaviour.id) {
                Ok(Some(stored)) if stored == r.behaviour => {}
                Ok(_) => return Some(false),
                Err(_) => return None,
            }
        }
        Some(true)
    }

    /// Commit the batch to redb, then index its samples, following along in `progress`.
    fn write_batch(
        &self,
        guard: &mut WriterGuard<'_>,
        batch: &[NewReport],
        samples: &[String],
        progress: &mut Progress,
    ) -> Result<()> {
        let mut docs = HashMap::new();
        let mut codec = self.codec();
        let mut trained = false;
        let txn = self.db.begin_write()?;
        {
            let mut reports = txn.open_table(REPORTS)?;
            let mut raw = txn.open_table(RAW_LOGS)?;
            let mut info = txn.open_table(LOG_INFO)?;
            let mut pending = txn.open_table(PENDING)?;
            let jsons = batch
                .iter()
                .map(|r| {
                    serde_json::to_vec(&r.behaviour).map_err(|source| StoreError::Corrupt {
                        id: r.behaviour.id.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if let Some(dictionary) = self.train_dictionary(&codec, &reports, &jsons)? {
                let id = codec.next_id();
                txn.open_table(codec::REPORT_DICTS)?
                    .insert(id, dictionary.as_slice())?;
                codec = Arc::new(codec.with_dictionary(id, &dictionary)?);
                trained = true;
            }
            let mut encoder = codec.encoder()?;
            for (r, json) in batch.iter().zip(&jsons) {
                let id = r.behaviour.id.as_str();
                reports.insert(id, encoder.encode(json)?.as_slice())?;
                match &r.raw_log {
                    None => {
                        raw.remove(id)?;
                        info.remove(id)?;
                    }
                    Some(log) => {
                        let size = match &log.data {
                            RawData::Bytes(bytes) => {
                                raw.insert(id, bytes.as_slice())?;
                                bytes.len() as u64
                            }
                            RawData::File(path) => copy_file_into(&mut raw, id, path)?,
                        };
                        let meta = serde_json::json!({"file_name": log.file_name, "size": size});
                        info.insert(id, meta.to_string().as_bytes())?;
                    }
                }
            }
            for sha in samples {
                pending.insert(sha.as_str(), 1)?;
            }
            for sha in samples {
                let reports = read_sample_reports(&codec, &reports, sha)?;
                docs.insert(sha.clone(), SampleDoc::from_reports(sha, &reports));
            }
        }
        for sha in samples {
            if let Some(doc) = docs.get(sha) {
                values::register_sample(&txn, doc)?;
            }
        }
        *progress = Progress::Committing;
        if trained {
            // Readers take the codec after beginning their transaction: holding it across the
            // commit gives every reader that sees the new reports the new dictionary too.
            let mut current = self.codec.write().unwrap_or_else(PoisonError::into_inner);
            txn.commit()?;
            *current = codec;
        } else {
            txn.commit()?;
        }
        *progress = Progress::Committed;
        self.index_pending(guard, samples, &docs)
    }

    /// The dictionary to write this batch with, when the store has none yet and, with the
    /// batch, enough reports to train one (see `codec`). A training zstd refuses is tried again
    /// once the store has doubled.
    fn train_dictionary(
        &self,
        codec: &ReportCodec,
        reports: &redb::Table<&'static str, &'static [u8]>,
        batch: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>> {
        use std::sync::atomic::Ordering;
        let count = reports.len()? + batch.len() as u64;
        if codec.has_dictionary() || count < self.next_training.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // The batch first, then what the store holds, as JSON.
        let mut stored = Vec::new();
        let wanted = codec::TRAIN_REPORTS.saturating_sub(batch.len());
        for entry in reports.iter()?.take(wanted) {
            let (id, bytes) = entry?;
            let report = codec.decode(id.value(), bytes.value())?;
            stored.push(
                serde_json::to_vec(&report).map_err(|source| StoreError::Corrupt {
                    id: report.id.clone(),
                    source,
                })?,
            );
        }
        let trained = codec::train(batch.iter().chain(&stored).map(Vec::as_slice));
        if trained.is_none() {
            self.next_training.store(count * 2, Ordering::Relaxed);
        }
        Ok(trained)
    }

    /// The report dictionaries as last committed. Take it after beginning the read
    /// transaction it decodes reports of (see `write_batch`).
    fn codec(&self) -> Arc<ReportCodec> {
        self.codec
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Store one report; see [`Store::put_reports`].
    pub fn put_report(&self, report: NewReport) -> Result<String> {
        let mut ids = self.put_reports(vec![report])?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// A report by id (`<sha256>_<sandbox name>`).
    pub fn report(&self, id: &str) -> Result<Option<FileBehaviour>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REPORTS)?;
        let Some(v) = table.get(id)? else {
            return Ok(None);
        };
        self.codec().decode(id, v.value()).map(Some)
    }

    /// Every report of a sample (all sandboxes), in id order.
    pub fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REPORTS)?;
        read_sample_reports(&self.codec(), &table, sha256)
    }

    /// A page of a sample's reports, in id order. `cursor` is the previous page's
    /// `next_cursor`.
    pub fn list_sample_reports(
        &self,
        sha256: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ReportPage> {
        let (start, end) = sample_range(sha256);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REPORTS)?;
        let codec = self.codec();
        let limit = limit.clamp(1, 1000);
        let mut reports = Vec::new();
        let mut more = false;
        let iter = match cursor {
            Some(c) => {
                if !c.starts_with(&start) {
                    return Err(StoreError::InvalidCursor);
                }
                table.range::<&str>((
                    std::ops::Bound::Excluded(c),
                    std::ops::Bound::Excluded(end.as_str()),
                ))?
            }
            None => table.range::<&str>(start.as_str()..end.as_str())?,
        };
        for entry in iter {
            let (k, v) = entry?;
            if reports.len() == limit {
                more = true;
                break;
            }
            reports.push(codec.decode(k.value(), v.value())?);
        }
        let next_cursor = if more {
            reports.last().map(|r: &FileBehaviour| r.id.clone())
        } else {
            None
        };
        Ok(ReportPage {
            reports,
            next_cursor,
        })
    }

    /// Every report id, in order, a page at a time (`cursor` = the previous page's last id).
    pub fn list_report_ids(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REPORTS)?;
        let limit = limit.clamp(1, 10_000);
        let iter = match cursor {
            Some(c) => {
                table.range::<&str>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))?
            }
            None => table.range::<&str>(..)?,
        };
        let mut ids = Vec::new();
        for entry in iter {
            let (k, _) = entry?;
            if ids.len() == limit {
                let next = ids.last().cloned();
                return Ok((ids, next));
            }
            ids.push(k.value().to_string());
        }
        Ok((ids, None))
    }

    /// The raw log a report was built from, if one was stored.
    pub fn raw_log(&self, id: &str) -> Result<Option<StoredLog>> {
        let txn = self.db.begin_read()?;
        let raw = txn.open_table(RAW_LOGS)?;
        let info = txn.open_table(LOG_INFO)?;
        let Some(bytes) = raw.get(id)? else {
            return Ok(None);
        };
        let file_name = info
            .get(id)?
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v.value()).ok())
            .and_then(|v| v.get("file_name")?.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Some(StoredLog {
            file_name,
            bytes: bytes.value().to_vec(),
        }))
    }

    /// Numbers of reports, samples and raw logs.
    pub fn stats(&self) -> Result<StoreStats> {
        let txn = self.db.begin_read()?;
        let reports = txn.open_table(REPORTS)?;
        let raw = txn.open_table(RAW_LOGS)?;
        let mut stats = StoreStats {
            reports: reports.len()?,
            raw_logs: raw.len()?,
            samples: 0,
        };
        stats.samples = self.reader.searcher().num_docs();
        Ok(stats)
    }

    /// Bytes on disk of the index directories and of the report database.
    pub fn disk_usage(&self) -> Result<(u64, u64)> {
        fn dir_bytes(dir: &Path) -> Result<u64> {
            let mut total = 0;
            for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
                let e = e.map_err(io_err(dir))?;
                let meta = e.metadata().map_err(io_err(dir))?;
                total += if meta.is_dir() {
                    dir_bytes(&e.path())?
                } else {
                    meta.len()
                };
            }
            Ok(total)
        }
        let index_bytes = dir_bytes(&self.dir.join("index"))?;
        let db = self.dir.join("reports.redb");
        let db_bytes = std::fs::metadata(&db).map_err(io_err(&db))?.len();
        Ok((index_bytes, db_bytes))
    }

    /// What each table of the report database holds and costs, and how much of the file is
    /// in use (the rest is free pages redb reuses).
    pub fn database_sizes(&self) -> Result<DatabaseSizes> {
        let allocated_bytes = {
            // Writes are serialised by the writer lock; holding it keeps this write transaction
            // from waiting on (or delaying) a batch.
            let _writing = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let txn = self.db.begin_write()?;
            let stats = txn.stats()?;
            txn.abort()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        let txn = self.db.begin_read()?;
        let mut tables = Vec::new();
        for handle in txn.list_tables()? {
            let table = txn.open_untyped_table(handle)?;
            let stats = table.stats()?;
            tables.push(TableSize {
                name: redb::TableHandle::name(&table).to_string(),
                entries: table.len()?,
                stored_bytes: stats.stored_bytes(),
                metadata_bytes: stats.metadata_bytes(),
                fragmented_bytes: stats.fragmented_bytes(),
            });
        }
        Ok(DatabaseSizes {
            tables,
            allocated_bytes,
        })
    }

    /// Give the report database's free pages back to the file system. Every batch rewrites the
    /// pages of the tables keyed by hash (reports, value digests), so after a bulk ingest up to
    /// half the file is free pages kept for reuse; this moves the live pages to the front and
    /// truncates the rest. Needs `&mut self`, so no search or write runs meanwhile; returns
    /// whether anything moved.
    pub fn compact(&mut self) -> Result<bool> {
        let Some(db) = Arc::get_mut(&mut self.db) else {
            // A search still holds the database (not possible through `&mut self` today).
            return Ok(false);
        };
        Ok(db.compact()?)
    }

    /// Wait for background index merges (call before measuring the index size).
    pub fn wait_merges(&self) -> Result<()> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = guard.take() {
            w.samples.wait_merging_threads()?;
            w.values.wait_merging_threads()?;
        }
        Ok(())
    }
}

fn read_sample_reports(
    codec: &ReportCodec,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    sha256: &str,
) -> Result<Vec<FileBehaviour>> {
    let (start, end) = sample_range(sha256);
    let mut out = Vec::new();
    for entry in table.range::<&str>(start.as_str()..end.as_str())? {
        let (k, v) = entry?;
        out.push(codec.decode(k.value(), v.value())?);
    }
    Ok(out)
}

fn copy_file_into(
    table: &mut redb::Table<&'static str, &'static [u8]>,
    id: &str,
    path: &Path,
) -> Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    if size > MAX_RAW_LOG_BYTES {
        return Err(StoreError::InvalidReport(format!(
            "{}: raw log larger than {MAX_RAW_LOG_BYTES} bytes",
            path.display()
        )));
    }
    let len =
        usize::try_from(size).map_err(|_| StoreError::InvalidReport("raw log too large".into()))?;
    let mut slot = table.insert_reserve(id, len)?;
    file.read_exact(slot.as_mut()).map_err(io_err(path))?;
    Ok(size)
}
