//! The embedded Sandscope data directory: every behaviour report (many per sample, one per
//! sandbox), the raw log each was built from, and a search index answering the VirusTotal
//! Intelligence language ([`sandscope_query`]), with pivots and relationship graphs.
//!
//! Layout of a data directory:
//! * `reports.redb` — redb database, the source of truth: reports (JSON, keyed by report id
//!   `<sha256>_<sandbox name>`, so one sample's reports are one key range; compressed with zstd
//!   and a dictionary trained on the store's first reports, see `codec`), raw logs (bytes),
//!   log metadata, the value dictionary (`values`: every distinct behaviour value once, with the
//!   sample that owns it, stored as reported when its spellings derive from it, compressed
//!   with a dictionary trained on the store's first values, see `value_codec`), and the
//!   `pending_index`/`pending_values` bookkeeping tables. Each batch rewrites the pages of the
//!   hash-keyed tables, so bulk ingest leaves free pages behind and those tables' pages part
//!   empty; [`Store::compact`] rewrites the tables with full pages (`repack`) and returns the
//!   free pages to the file system (and merges the value index into one segment, the sample
//!   index into one per core, at most four);
//! * `index/samples/` — tantivy index, one document per sample, newest first, holding the words
//!   of the values the sample owns;
//! * `index/values/` — tantivy index, one document per shared value (its words, with positions).
//!
//! Both indexes are derived entirely from redb. Their term dictionaries are tantivy's sstable
//! ones, zstd-compressed (its `quickwit` feature). [`Store::index_sizes`] says what each part
//! of each field costs.
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
//! # Modules
//! `open` (opening, the read-only open, start-up re-indexing), `write` (a batch of reports, its
//! index documents, the report dictionary, compaction), `read` (reports, pages, raw logs,
//! sizes), `index_space` (the indexes' sizes by part and field), `health` (failed writes and
//! their retry), `error`; `repack` (compaction's rewrite of the hash-keyed tables); `codec`
//! (report compression), `value_codec` (value compression), `values` (the value dictionary),
//! `index` (the two indexes' schemas), `search/` (request and page types, cursors, query
//! translation, collectors, the redb verifier, a tantivy workaround), `phrase` and
//! `vocabulary` (text matching), `pivot` (counts and graphs), `budget` (search work limits),
//! `records` (opaque keyed records other crates keep here: hunting rulesets, notifications,
//! retrohunt jobs), `record_store` (the [`RecordStore`] seam over such records that every
//! store implements), `detonation_logs` (the [`DetonationLogs`] seam Retrohunt reads stored
//! raw logs through, likewise implemented by every store).
//!
//! This crate depends on the report model and the query language, never on readers, the report
//! builder or the server.

mod budget;
mod codec;
mod db;
mod detonation_logs;
mod error;
mod health;
mod index;
mod index_space;
mod leb128;
mod open;
mod phrase;
mod pivot;
mod read;
mod read_only;
mod record_store;
mod records;
mod repack;
mod search;
mod value_blocks;
mod value_codec;
mod value_lookup;
mod values;
mod vocabulary;
mod write;

pub use budget::{DEFAULT_MAX_WORK, DEFAULT_SEARCH_TIMEOUT, Exhausted, SearchLimits};
pub use detonation_logs::{DetonationLog, DetonationLogs, StoredBytes, WholeLog};
pub use error::{Result, StoreError};
pub use index_space::IndexPartSize;
pub use pivot::{
    Edge, Graph, GraphFormat, Indicator, IndicatorKind, Node, NodeKind, pivot_indicators,
    sample_graph,
};
/// How reports are compressed, shared with the other stores so that every store trains and
/// uses its report dictionary the same way: zstd at [`LEVEL`](report_compression::LEVEL), a
/// dictionary trained by [`train`](report_compression::train) once a store holds
/// [`TRAIN_AT_REPORTS`](report_compression::TRAIN_AT_REPORTS) reports.
pub mod report_compression {
    pub use crate::codec::{LEVEL, TRAIN_AT_REPORTS, TRAIN_REPORTS, train};
}
pub use record_store::{RecordLock, RecordStore, RecordStoreError};
pub use records::{RecordTable, RecordWrite};
pub use search::{EXACT_COUNT_LIMIT, Order, SearchHit, SearchPage, SearchRequest};
pub use write::{MAX_SEARCH_SEGMENTS, RecordsOfBatch, compacted_sample_segments};

use codec::ReportCodec;
pub(crate) use db::Db;
use error::open_error;
use index::{SampleFields, ValueFields};
use read::read_sample_reports;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_query::SampleDoc;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};
use value_codec::ValueDictionary;

const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("reports");
const RAW_LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("raw_logs");
const LOG_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("log_info");
const PENDING: TableDefinition<&str, u64> = TableDefinition::new("pending_index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Largest raw log kept with a report.
pub const MAX_RAW_LOG_BYTES: u64 = 2 << 30;

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
    /// The report and value dictionaries committed to redb (see `codec`); shared with the
    /// searches that decompress values.
    codec: Arc<RwLock<Arc<ReportCodec>>>,
    /// Reports the store must hold before a dictionary is trained (again).
    next_training: AtomicU64,
    /// Values the store must hold before a value dictionary is trained (again).
    next_value_training: AtomicU64,
    options: StoreOptions,
    /// Opened with [`Store::open_read_only`]: nothing is ever written.
    read_only: bool,
    writer: Mutex<Option<Writers>>,
    /// The next id each record table hands out, once it has handed out one (see
    /// [`Store::allocate_record_ids`]).
    next_record_ids: Mutex<HashMap<RecordTable, u64>>,
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
