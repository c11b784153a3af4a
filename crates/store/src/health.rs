//! Failed writes: remembering them, reporting them (`write_health`) and redoing what they left
//! pending, without a restart (see the crate docs on failed writes).

use crate::*;

impl Store {
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
    pub(crate) fn failed(
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
    pub(crate) fn recover(&self, guard: &mut WriterGuard<'_>) -> Result<()> {
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
}
