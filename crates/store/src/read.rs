//! Reading: reports, a sample's reports page by page, raw logs, and the store's sizes.

use crate::*;

impl Store {
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
        Ok(self
            .raw_log_in_place(id)?
            .map(|(file_name, bytes)| StoredLog {
                file_name,
                bytes: bytes.as_ref().to_vec(),
            }))
    }

    /// The raw log a report was built from, with its file name, as redb read it: no copy.
    pub(crate) fn raw_log_in_place(&self, id: &str) -> Result<Option<(String, StoredBytes)>> {
        let txn = self.db.begin_read()?;
        let raw = txn.open_table(RAW_LOGS)?;
        let info = txn.open_table(LOG_INFO)?;
        let Some(bytes) = raw.get_owned(id)? else {
            return Ok(None);
        };
        let file_name = info
            .get(id)?
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v.value()).ok())
            .and_then(|v| v.get("file_name")?.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Some((file_name, StoredBytes(bytes))))
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
}

pub(crate) fn read_sample_reports(
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
