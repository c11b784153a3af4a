//! The report database handle: redb opened for writing, or read-only, and reopened after a
//! failed write.
//!
//! redb latches the first failed file write (a full disk, an unwritable file): every later
//! read and write of that `Database` answers `PreviousIo` until it is closed and opened again.
//! The store therefore reaches redb through this handle, which can close and reopen the file
//! in place while searches keep their `Arc<Db>`.

use redb::{ReadTransaction, ReadableDatabase, StorageError, TransactionError, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

enum Slot {
    Writable(redb::Database),
    ReadOnly(redb::ReadOnlyDatabase),
    /// Between closing a failed database and reopening it (or when reopening failed).
    Closed,
}

/// The page cache of a database opened read-only.
const READ_ONLY_CACHE: usize = 64 << 20;

/// The report database of one data directory.
pub(crate) struct Db {
    path: PathBuf,
    slot: RwLock<Slot>,
}

impl Db {
    /// Open (or create) the database for writing, repairing it if it was not closed cleanly.
    pub(crate) fn create(path: &Path) -> Result<Db, redb::DatabaseError> {
        Ok(Db {
            path: path.to_path_buf(),
            slot: RwLock::new(Slot::Writable(redb::Database::create(path)?)),
        })
    }

    /// Open an existing database for reading only: no write, no repair, no file created.
    ///
    /// A read-only open is a CLI command's (`search`, `show`, `retrohunt`, …), which reads what
    /// it needs once: its page cache is [`READ_ONLY_CACHE`], not redb's 1 GiB, so a Retrohunt
    /// reading every stored log once reuses the memory of logs it is done with instead of
    /// faulting in fresh pages for each (measured: most of the scan's page faults).
    pub(crate) fn open_read_only(path: &Path) -> Result<Db, redb::DatabaseError> {
        let db = redb::Builder::new()
            .set_cache_size(READ_ONLY_CACHE)
            .open_read_only(path)?;
        Ok(Db {
            path: path.to_path_buf(),
            slot: RwLock::new(Slot::ReadOnly(db)),
        })
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        match &*self.slot.read().unwrap_or_else(PoisonError::into_inner) {
            Slot::Writable(db) => db.begin_read(),
            Slot::ReadOnly(db) => db.begin_read(),
            Slot::Closed => Err(TransactionError::Storage(StorageError::DatabaseClosed)),
        }
    }

    /// A write transaction; an error on a read-only database (callers check the mode first).
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        match &*self.slot.read().unwrap_or_else(PoisonError::into_inner) {
            Slot::Writable(db) => db.begin_write(),
            Slot::ReadOnly(_) | Slot::Closed => {
                Err(TransactionError::Storage(StorageError::DatabaseClosed))
            }
        }
    }

    /// Close the database and open it again for writing (redb repairs what the failed write
    /// left). Searches running meanwhile fail with "database closed" instead of waiting.
    /// Must not be called while a write transaction of this database is alive.
    pub(crate) fn reopen(&self) -> Result<(), redb::DatabaseError> {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        // The old file handle holds redb's lock: it must be closed before the new open.
        *slot = Slot::Closed;
        *slot = Slot::Writable(redb::Database::create(&self.path)?);
        Ok(())
    }

    /// Give free pages back to the file system (see `Store::compact`); a read-only or closed
    /// database is left as it is.
    pub(crate) fn compact(&mut self) -> Result<bool, redb::CompactionError> {
        match self.slot.get_mut().unwrap_or_else(PoisonError::into_inner) {
            Slot::Writable(db) => db.compact(),
            Slot::ReadOnly(_) | Slot::Closed => Ok(false),
        }
    }
}
