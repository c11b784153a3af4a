//! Which store a command works on — the data directory (embedded, the default) or a
//! PostgreSQL store named by `--store postgres://…` / `$SANDSCOPE_STORE` — and the one seam
//! the commands use on either.

use anyhow::{Context, Result};
use sandscope_hunting::{Finding, RecordStore};
use sandscope_ingest::Pipeline;
use sandscope_model::FileBehaviour;
use sandscope_pgstore::PgStore;
use sandscope_store::{Graph, Indicator, NewReport, SearchPage, SearchRequest, Store};

/// What `search`, `show`, `pivot`, `graph` and `ingest` need of a store.
pub trait ReportStore {
    fn search(&self, request: &SearchRequest) -> Result<SearchPage>;
    fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>>;
    fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>>;
    fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>>;
    fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph>;
    /// Where the store is, for messages.
    fn place(&self) -> String;
    /// Where Livehunt keeps its rulesets and notifications; `None` for a store that keeps no
    /// hunting records, whose ingests raise no notifications.
    fn records(&self) -> Option<&dyn RecordStore>;
    /// Store `batch` and record the Livehunt notifications of `findings` and of `pipeline`'s
    /// query rulesets over its samples; returns the report ids and how many notifications were
    /// recorded. By default the notifications get a transaction of their own, after the
    /// reports'; the embedded store writes both in one.
    fn put_and_notify(
        &self,
        pipeline: &Pipeline,
        batch: Vec<NewReport>,
        findings: Vec<Finding>,
    ) -> Result<(Vec<String>, usize)> {
        let ids = self
            .put_reports(batch)
            .with_context(|| format!("storing reports in {}", self.place()))?;
        let notified = match self.records() {
            Some(records) => pipeline
                .notify(records, findings, &ids)
                .context("Livehunt: recording notifications")?,
            None => 0,
        };
        Ok((ids, notified))
    }
}

impl ReportStore for Store {
    fn search(&self, request: &SearchRequest) -> Result<SearchPage> {
        Ok(Store::search(self, request)?)
    }
    fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>> {
        Ok(Store::sample_reports(self, sha256)?)
    }
    fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        Ok(Store::put_reports(self, batch)?)
    }
    fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>> {
        Ok(Store::pivot(self, sha256)?)
    }
    fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph> {
        Ok(Store::graph(self, sha256, depth, max_nodes)?)
    }
    fn place(&self) -> String {
        self.dir().display().to_string()
    }
    fn records(&self) -> Option<&dyn RecordStore> {
        Some(self)
    }
    fn put_and_notify(
        &self,
        pipeline: &Pipeline,
        batch: Vec<NewReport>,
        findings: Vec<Finding>,
    ) -> Result<(Vec<String>, usize)> {
        pipeline
            .put_reports(self, batch, findings)
            .with_context(|| format!("storing reports in {}", ReportStore::place(self)))
    }
}

impl ReportStore for PgStore {
    fn search(&self, request: &SearchRequest) -> Result<SearchPage> {
        Ok(PgStore::search(self, request)?)
    }
    fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>> {
        Ok(PgStore::sample_reports(self, sha256)?)
    }
    fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        Ok(PgStore::put_reports(self, batch)?)
    }
    fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>> {
        Ok(PgStore::pivot(self, sha256)?)
    }
    fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph> {
        Ok(PgStore::graph(self, sha256, depth, max_nodes)?)
    }
    fn place(&self) -> String {
        format!("PostgreSQL {}", self.target())
    }
    fn records(&self) -> Option<&dyn RecordStore> {
        Some(self)
    }
}

/// Open the PostgreSQL store at `url` (its errors name PostgreSQL and say what to do).
pub fn open_postgres(url: &str) -> Result<PgStore> {
    if !sandscope_pgstore::is_store_url(url) {
        anyhow::bail!(
            "--store takes a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE); for a data directory use --data"
        );
    }
    PgStore::open(url).context("opening the PostgreSQL store")
}

/// Run `f` on the PostgreSQL store at `url`, writing to stdout.
pub fn postgres_command(
    url: &str,
    f: impl FnOnce(&dyn ReportStore, &mut dyn std::io::Write) -> Result<std::process::ExitCode>,
) -> Result<std::process::ExitCode> {
    let store = open_postgres(url)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    f(&store, &mut out)
}
