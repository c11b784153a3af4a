//! Opening a data directory: creating or checking it, the read-only open, and the start-up
//! work that makes pending samples searchable again (see the crate docs on crash safety).

use crate::*;

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
            codec = ReportCodec::load(&txn.open_table(codec::REPORT_DICTS)?)?
                .with_value_dictionary(ValueDictionary::load(
                    &txn.open_table(value_codec::VALUE_DICTS)?,
                )?);
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
            codec: Arc::new(RwLock::new(Arc::new(codec))),
            next_training: AtomicU64::new(codec::TRAIN_AT_REPORTS),
            next_value_training: AtomicU64::new(value_codec::TRAIN_AT_VALUES),
            options,
            read_only: false,
            writer: Mutex::new(None),
            next_record_ids: Mutex::default(),
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
            // … and one written before value dictionaries none of those.
            let codec = match txn.open_table(value_codec::VALUE_DICTS) {
                Ok(table) => codec.with_value_dictionary(ValueDictionary::load(&table)?),
                Err(redb::TableError::TableDoesNotExist(_)) => codec,
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
            codec: Arc::new(RwLock::new(Arc::new(codec))),
            next_training: AtomicU64::new(codec::TRAIN_AT_REPORTS),
            next_value_training: AtomicU64::new(value_codec::TRAIN_AT_VALUES),
            options: StoreOptions::default(),
            read_only: true,
            writer: Mutex::new(None),
            next_record_ids: Mutex::default(),
            failure: Mutex::new(None),
        })
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
            let mut codec = self.codec();
            let mut docs = Vec::with_capacity(shas.len());
            {
                let reports = txn.open_table(REPORTS)?;
                for sha in &shas {
                    let reports = read_sample_reports(&codec, &reports, sha)?;
                    docs.push(SampleDoc::from_reports(sha, &reports));
                }
            }
            // A store from before value dictionaries gets one now.
            let trained = match self.train_value_dictionary(&txn, &codec, docs.iter())? {
                Some(trained) => {
                    codec = Arc::new(trained);
                    true
                }
                None => false,
            };
            {
                let mut registrar = crate::value_lookup::Registrar::new(&codec)?;
                for doc in &docs {
                    values::register_sample(&txn, doc, &mut registrar)?;
                    txn.open_table(PENDING)?.insert(doc.sha256.as_str(), 0)?;
                }
            }
            if trained {
                let mut current = self.codec.write().unwrap_or_else(PoisonError::into_inner);
                txn.commit()?;
                *current = codec;
            } else {
                txn.commit()?;
            }
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
    pub(crate) fn reconcile(&self, guard: &mut WriterGuard<'_>) -> Result<()> {
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
            self.index_pending(guard, &[], &HashMap::new(), &HashSet::new())?;
        }
        for chunk in pending.chunks(10_000) {
            self.index_pending(guard, chunk, &HashMap::new(), &HashSet::new())?;
        }
        Ok(())
    }
}
