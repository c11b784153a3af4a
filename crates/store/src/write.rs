//! Writing: a batch of reports in one redb transaction, then their index documents; the report
//! and value dictionaries' training; compaction.

use crate::value_blocks::{Block, VALUE_BLOCKS, ValueReader};
use crate::value_lookup::Registrar;
use crate::*;
use std::sync::atomic::Ordering;

/// How far a batch got when its write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Building,
    /// The redb commit failed: it may still have reached the file.
    Committing,
    Committed,
}

/// What [`Store::put_reports_with`] writes with a batch: records made from the searchable views
/// of the batch's samples, by SHA-256.
pub type RecordsOfBatch<'a> = dyn FnMut(&HashMap<String, SampleDoc>) -> std::result::Result<Vec<RecordWrite>, RecordStoreError>
    + 'a;

impl Store {
    pub(crate) fn lock_writer(&self) -> WriterGuard<'_> {
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
    /// the pending tables. `unindexed` are samples known to have no document yet (numbered by
    /// the batch being indexed), whose delete is skipped for the reason given for values below.
    pub(crate) fn index_pending(
        &self,
        guard: &mut WriterGuard<'_>,
        samples: &[String],
        docs: &HashMap<String, SampleDoc>,
        unindexed: &HashSet<String>,
    ) -> Result<()> {
        let writers = self.writers(guard)?;
        let txn = self.db.begin_read()?;
        let codec = self.codec();
        let pending_values: Vec<u64> = txn
            .open_table(values::PENDING_VALUES)?
            .iter()?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        let value_table = ValueReader::new(txn.open_table(VALUE_BLOCKS)?, codec.clone());
        for vid in &pending_values {
            // Only a shared value has a document, and a value never stops being shared, so an
            // unshared one has none to replace. Skipping its delete matters: tantivy looks each
            // deleted term up in every segment's term dictionary, and most pending values are
            // new ones owned by one sample.
            if !value_table.header(*vid)?.is_some_and(|h| h.shared()) {
                continue;
            }
            writers
                .values
                .delete_term(index::vid_term(&self.value_fields, *vid));
            if let Some(record) = value_table.record(*vid)? {
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
            if !unindexed.contains(sha) {
                writers
                    .samples
                    .delete_term(index::sha_term(&self.fields, sha));
            }
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
            let Some(key) = values::sha_bytes(sha) else {
                continue;
            };
            let Some(no) = sample_nos.get(&key)?.map(|v| v.value()) else {
                continue;
            };
            let mut shared = Vec::new();
            let mut owned = Vec::new();
            if let Some(ids) = sample_values.get(no)? {
                for vid in values::decode_ids(ids.value()) {
                    let record = match value_table.header(vid)? {
                        Some(h) if h.owner == no => value_table.record(vid)?,
                        _ => None,
                    };
                    match record {
                        Some(record) => owned.push(record),
                        None => shared.push(vid),
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
        self.put_reports_with(batch, &mut |_| Ok(Vec::new()))
    }

    /// [`Store::put_reports`], with the records `records` makes from the searchable views of
    /// the batch's samples (by SHA-256, as they are once the batch is stored) written in the
    /// same transaction: Livehunt's notifications land with the reports that raised them, at
    /// the cost of one durable commit, not two. `records` runs once, while the store's write
    /// transaction is open: it may read the store, never write to it. When it fails, nothing
    /// is stored and its error is [`StoreError::Records`].
    pub fn put_reports_with(
        &self,
        batch: Vec<NewReport>,
        records: &mut RecordsOfBatch<'_>,
    ) -> Result<Vec<String>> {
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
        match self.write_batch(&mut guard, &batch, &samples, records, &mut progress) {
            Ok(()) => Ok(ids),
            // The caller's records failed before the commit: nothing was written, and the
            // store itself is sound, so this is no failure of the store's.
            Err(error @ StoreError::Records(_)) if matches!(progress, Progress::Building) => {
                Err(error)
            }
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
        records: &mut RecordsOfBatch<'_>,
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
        // In batch order, so that the same batches train the same dictionary.
        let batch_docs = samples.iter().filter_map(|sha| docs.get(sha));
        if let Some(trained_codec) = self.train_value_dictionary(&txn, &codec, batch_docs)? {
            codec = Arc::new(trained_codec);
            trained = true;
        }
        // Samples numbered by this batch have no index document to replace. A crash after
        // this commit leaves them pending, and the retry (see `recover`) deletes before adding,
        // as for any sample.
        let mut unindexed = HashSet::new();
        {
            let mut registrar = Registrar::new(&codec)?;
            for sha in samples {
                if let Some(doc) = docs.get(sha)
                    && values::register_sample(&txn, doc, &mut registrar)?
                {
                    unindexed.insert(sha.clone());
                }
            }
        }
        let record_writes = records(&docs).map_err(StoreError::Records)?;
        let records_put = crate::records::apply_record_writes(&txn, &record_writes)?;
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
        self.note_record_ids_put(records_put);
        self.index_pending(guard, samples, &docs, &unindexed)
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

    /// `codec` with a value dictionary, written in `txn`, when the store has none yet and it
    /// and `docs` (about to be registered) hold enough values to train one on (see
    /// `value_codec`). Values already stored stay as they are. A training zstd refuses is
    /// tried again once the store has twice the values.
    pub(crate) fn train_value_dictionary<'d>(
        &self,
        txn: &redb::WriteTransaction,
        codec: &ReportCodec,
        docs: impl Iterator<Item = &'d SampleDoc> + Clone,
    ) -> Result<Option<ReportCodec>> {
        if codec.value_dictionary().is_some() {
            return Ok(None);
        }
        let fields = || sandscope_query::TextField::ALL.iter();
        let new: u64 = docs
            .clone()
            .map(|d| fields().map(|f| d.text(*f).len() as u64).sum::<u64>())
            .sum();
        let count = txn
            .open_table(crate::META)?
            .get("next_value_id")?
            .map(|v| v.value())
            .unwrap_or(0)
            + new;
        if count < self.next_value_training.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // The new values first, then those stored (none of them compressed).
        let mut stored = Vec::new();
        for entry in txn.open_table(VALUE_BLOCKS)?.iter()? {
            if stored.len() >= value_codec::TRAIN_VALUES {
                break;
            }
            let (first, bytes) = entry?;
            let block = Block::decode(u64::from(first.value()), bytes.value())?;
            stored.extend(block.records(codec)?.into_iter().map(|(_, r)| r));
        }
        let new_values =
            docs.flat_map(|d| fields().flat_map(|f| d.text(*f).iter().map(|v| v.raw.as_bytes())));
        let Some(dictionary) =
            value_codec::train(new_values.chain(stored.iter().map(|r| r.stored().as_bytes())))
        else {
            self.next_value_training.store(count * 2, Ordering::Relaxed);
            return Ok(None);
        };
        ValueDictionary::save(txn, &dictionary)?;
        Ok(Some(codec.with_value_dictionary(Some(Arc::new(
            ValueDictionary::new(&dictionary)?,
        )))))
    }

    /// The report dictionaries as last committed. Take it after beginning the read
    /// transaction it decodes reports of (see `write_batch`).
    pub(crate) fn codec(&self) -> Arc<ReportCodec> {
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

    /// Give the report database's free pages back to the file system. Every batch rewrites the
    /// pages of the tables keyed by hash (reports, value ids), so after a bulk ingest up to
    /// half the file is free pages kept for reuse, and the pages of those tables are a third
    /// empty; this rewrites those tables with full pages (see `repack`), the reports
    /// recompressed at a higher level, moves the live pages to the front and truncates the
    /// rest. First it merges the indexes' segments (see `merge_index_segments`). Needs
    /// `&mut self`, so no search or write runs meanwhile; returns whether anything moved in the
    /// report database.
    pub fn compact(&mut self) -> Result<bool> {
        if self.read_only {
            return Ok(false);
        }
        self.merge_index_segments()?;
        let txn = self.db.begin_write()?;
        repack::repack_hash_keyed(&txn, &self.codec())?;
        txn.commit()?;
        let Some(db) = Arc::get_mut(&mut self.db) else {
            // A search still holds the database (not possible through `&mut self` today).
            return Ok(false);
        };
        Ok(db.compact()?)
    }

    /// Merge the indexes' segments (part of [`Store::compact`]). Every segment has its own term
    /// dictionary, and a bulk ingest leaves several segments whose dictionaries repeat the
    /// common words. The value index becomes one segment. The sample index becomes
    /// [`compacted_sample_segments`] of about equal size: tantivy searches a query's segments
    /// on the index's threads at once, so on an idle machine a heavy query takes every core
    /// (100k reports, two cores: one segment made `readme*.txt` 22.1 -> 27.6 ms, two kept it).
    fn merge_index_segments(&self) -> Result<()> {
        self.wait_merges()?;
        let mut guard = self.lock_writer();
        let writers = self.writers(&mut guard)?;
        for (writer, index, groups) in [
            (
                &mut writers.samples,
                &self.index,
                compacted_sample_segments(),
            ),
            (&mut writers.values, &self.value_index, 1),
        ] {
            let segments = index
                .searchable_segment_metas()?
                .into_iter()
                .map(|meta| (meta.id(), meta.num_docs()))
                .collect();
            for group in segment_groups(segments, groups) {
                if group.len() > 1 {
                    writer.merge(&group).wait()?;
                }
            }
        }
        if let Some(writers) = guard.take() {
            writers.samples.wait_merging_threads()?;
            writers.values.wait_merging_threads()?;
        }
        self.reader.reload()?;
        self.value_reader.reload()?;
        Ok(())
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

/// Most segments [`Store::compact`] leaves in the sample index: one per core helps a heavy
/// query on an idle machine, but each segment repeats the term dictionary's common words.
pub const MAX_SEARCH_SEGMENTS: usize = 4;

/// The segments [`Store::compact`] leaves in the sample index (when it had as many): one per
/// core of this machine, at most [`MAX_SEARCH_SEGMENTS`].
pub fn compacted_sample_segments() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_SEARCH_SEGMENTS)
}

/// `segments` (each with its document count) dealt into at most `groups` groups of about equal
/// documents: the largest first, each into the group holding the fewest so far. Ties go to
/// the earliest group, so the grouping depends only on the segments.
fn segment_groups<T>(mut segments: Vec<(T, u32)>, groups: usize) -> Vec<Vec<T>> {
    segments.sort_by_key(|(_, docs)| std::cmp::Reverse(*docs));
    let mut bins: Vec<(u64, Vec<T>)> = (0..groups.max(1)).map(|_| (0, Vec::new())).collect();
    for (segment, docs) in segments {
        if let Some(bin) = bins.iter_mut().min_by_key(|(total, _)| *total) {
            bin.0 += u64::from(docs);
            bin.1.push(segment);
        }
    }
    bins.into_iter()
        .map(|(_, group)| group)
        .filter(|group| !group.is_empty())
        .collect()
}

pub(crate) fn copy_file_into(
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

#[cfg(test)]
mod tests {
    use super::segment_groups;

    #[test]
    fn segments_are_dealt_into_groups_of_about_equal_documents() {
        let segments = vec![("a", 10), ("b", 60), ("c", 20), ("d", 30), ("e", 5)];
        assert_eq!(
            segment_groups(segments.clone(), 2),
            vec![vec!["b", "e"], vec!["d", "c", "a"]]
        );
        assert_eq!(
            segment_groups(segments.clone(), 1),
            vec![vec!["b", "d", "c", "a", "e"]]
        );
        // More groups than segments: each segment alone, no empty group.
        assert_eq!(
            segment_groups(segments[..2].to_vec(), 4),
            vec![vec!["b"], vec!["a"]]
        );
        assert!(segment_groups(Vec::<(&str, u32)>::new(), 2).is_empty());
    }
}
