//! Searching: the query translated to SQL (`translate`), where the `pg_trgm` indexes find the
//! samples, a page in a stable order (`cursor`), and `total_hits` exact up to the request's
//! `exact_count_limit` and a flagged lower bound past it (for the default order, as the
//! embedded store). When the SQL is not exact (see `translate`), every candidate is verified
//! with `Query::matches`, the one implementation of matching, on its `SampleDoc`.
//!
//! Limits: the deadline becomes the transaction's `statement_timeout`; a cancellation flag is
//! watched by a thread that cancels the running statement; the work budget is charged one unit
//! per candidate row the store reads or verifies (what PostgreSQL does inside a statement is
//! bounded by the timeout, not by units).

mod cursor;
pub(crate) mod fields;
mod translate;

use crate::{PgStore, PgStoreError, Result};
use cursor::Key;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{IsolationLevel, NoTls, Transaction};
use sandscope_query::{Query, SampleDoc};
use sandscope_store::{Exhausted, Order, SearchHit, SearchLimits, SearchPage, SearchRequest};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use translate::{Condition, Param};

/// Candidates fetched per round trip when they are verified.
const CANDIDATE_BATCH: i32 = 256;

impl PgStore {
    /// Run a search: matching samples in the requested order, one page at a time.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchPage> {
        let query = sandscope_query::parse(&request.query)?;
        self.search_parsed(&query, request)
    }

    /// [`PgStore::search`] for an already parsed query.
    pub fn search_parsed(&self, query: &Query, request: &SearchRequest) -> Result<SearchPage> {
        let limit = request.limit.clamp(1, 300);
        let after = match &request.cursor {
            Some(c) if !c.is_empty() => Some(cursor::decode(request.order, c)?),
            _ => None,
        };
        let mut client = self.client()?;
        let mut work = Work::new(&request.limits);
        let cancel_token = client.cancel_token();
        let done = AtomicBool::new(false);
        let fired = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            if let Some(flag) = request.limits.cancel.clone() {
                let (done, fired, token) = (&done, &fired, &cancel_token);
                scope.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if flag.load(Ordering::Relaxed) {
                            fired.store(true, Ordering::Relaxed);
                            let _ = token.cancel_query(NoTls);
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                });
            }
            let result = (|| {
                let mut txn = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?;
                crate::planner::plan_for_trigrams(&mut txn)?;
                work.set_timeout(&mut txn)?;
                let run = Run {
                    codec: &self.codec,
                    partitions: &self.sample_partitions,
                    query,
                    request,
                    limit,
                    after: after.as_ref(),
                };
                let page = run.page(&mut txn, &mut work);
                let page = page.map_err(|e| work.explain(e))?;
                txn.commit()?;
                Ok(page)
            })();
            done.store(true, Ordering::Relaxed);
            result
        });
        if fired.load(Ordering::Relaxed) {
            client.discard();
        }
        result
    }

    /// Number of samples matching a parsed query (exact), within the default limits.
    pub fn count(&self, query: &Query, now: i64) -> Result<u64> {
        let mut request = SearchRequest::new("");
        request.now = now;
        request.order = Order::FirstSeenAsc;
        request.limit = 1;
        let mut client = self.client()?;
        let mut txn = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        crate::planner::plan_for_trigrams(&mut txn)?;
        let run = Run {
            codec: &self.codec,
            partitions: &self.sample_partitions,
            query,
            request: &request,
            limit: 1,
            after: None,
        };
        let mut work = Work::new(&request.limits);
        let (_, total, _) = run.collect(&mut txn, &mut work, u64::MAX)?;
        Ok(total)
    }
}

/// A match for the page, with its reports when verification already read them.
type Candidate = (Key, Option<Vec<sandscope_model::FileBehaviour>>);

/// What [`Run::count_and_page`] found: the matches counted (up to the cap), whether the store's
/// own partition stopped at its share (then its count is a lower bound), and the page.
struct CountedPage {
    found: u64,
    local_capped: bool,
    page: Vec<Key>,
}

/// One search's query, paging and counting rule.
struct Run<'a> {
    codec: &'a crate::codec::Codec,
    /// `samples` on each server (`layout::partitions`).
    partitions: &'a [String],
    query: &'a Query,
    request: &'a SearchRequest,
    limit: usize,
    after: Option<&'a Key>,
}

impl Run<'_> {
    fn page(&self, txn: &mut Transaction<'_>, work: &mut Work) -> Result<SearchPage> {
        // Only the default order stops counting early, as in the embedded store.
        let count_limit = if self.request.order == Order::FirstSeenDesc {
            self.request.exact_count_limit
        } else {
            u64::MAX
        };
        let (page, total, exact) = self.collect(txn, work, count_limit)?;
        let more = page.len() > self.limit;
        let page: Vec<Candidate> = page.into_iter().take(self.limit).collect();
        // The reports verification did not read, for the whole page in one round trip.
        let unread: Vec<&str> = page
            .iter()
            .filter(|(_, reports)| reports.is_none())
            .map(|(key, _)| key.sha256.as_str())
            .collect();
        let mut read = crate::read::samples_reports_in(self.codec, txn, &unread)?.into_iter();
        let mut hits = Vec::with_capacity(page.len());
        for (key, reports) in page {
            let reports = reports.unwrap_or_else(|| read.next().unwrap_or_default());
            work.charge(1)?;
            hits.push(SearchHit::of_sample(self.query, &key.sha256, &reports));
        }
        let next_cursor = match hits.last() {
            Some(last) if more => Some(cursor::encode(
                self.request.order,
                &Key {
                    date: date_of(self.request.order, last),
                    sha256: last.sha256.clone(),
                },
            )),
            _ => None,
        };
        Ok(SearchPage {
            hits,
            total_hits: total,
            total_hits_exact: exact,
            next_cursor,
            work: work.used,
        })
    }

    /// The first `limit + 1` matches after the cursor (with their reports when they were
    /// read for verification), the total (capped at `count_limit`) and whether it is exact.
    fn collect(
        &self,
        txn: &mut Transaction<'_>,
        work: &mut Work,
        count_limit: u64,
    ) -> Result<(Vec<Candidate>, u64, bool)> {
        let order = self.request.order;
        let condition = translate::translate(self.query, self.request.now);
        if condition.exact {
            return self.collect_exact(txn, work, count_limit, &condition);
        }
        // Not exact in SQL: verify every candidate, in order, with the query crate.
        let sql = format!(
            "SELECT s.sha256, {} FROM samples s WHERE {} ORDER BY {}",
            cursor::column(order),
            condition.sql,
            cursor::order_by(order)
        );
        let statement = txn.prepare(&sql)?;
        let owned = params(&condition.params);
        let portal = txn.bind(&statement, &owned)?;
        let mut page = Vec::new();
        let mut total = 0u64;
        loop {
            let rows = txn.query_portal(&portal, CANDIDATE_BATCH)?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let key = Key {
                    sha256: row.get(0),
                    date: row.get(1),
                };
                work.charge(1)?;
                let reports = crate::read::sample_reports_in(self.codec, txn, &key.sha256)?;
                let doc = SampleDoc::for_query(&key.sha256, &reports, self.query);
                if !self.query.matches(&doc, self.request.now) {
                    continue;
                }
                if total >= count_limit && page.len() > self.limit {
                    return Ok((page, count_limit, false));
                }
                total += 1;
                let is_after = self
                    .after
                    .is_none_or(|a| cursor::sorts_after(order, &key, a));
                if is_after && page.len() <= self.limit {
                    page.push((key, Some(reports)));
                }
            }
        }
        Ok((page, total, true))
    }
}

impl Run<'_> {
    /// [`Run::collect`] for a condition SQL answers exactly. One statement finds the matches
    /// (up to one past `count_limit`), counts them and takes the page from them, so a term
    /// that is rare (the usual search) costs one bitmap scan of the trigram indexes, not one
    /// for the page and another for the count. Past the limit the matches found are not all
    /// of them: the page is read again in order, where a term that common fills a page after
    /// a short walk of the date index.
    fn collect_exact(
        &self,
        txn: &mut Transaction<'_>,
        work: &mut Work,
        count_limit: u64,
        condition: &Condition,
    ) -> Result<(Vec<Candidate>, u64, bool)> {
        if !condition.scans.is_empty() {
            return self.collect_scans(txn, work, count_limit, condition);
        }
        let order = self.request.order;
        let split = self.partitions.len() > 1;
        let mut counted = self.count_and_page(txn, count_limit, condition, split)?;
        if split && counted.local_capped && counted.found <= count_limit {
            // The store's partition stopped at its share and the others did not make up the
            // rest: how many more it holds is unknown, so count over all partitions at once.
            counted = self.count_and_page(txn, count_limit, condition, false)?;
        }
        let CountedPage {
            found, mut page, ..
        } = counted;
        let (page, total, exact) = if found > count_limit {
            (self.page_in_order(txn, condition)?, count_limit, false)
        } else {
            // A union's rows come in no promised order: sort them by the page's own rule.
            page.sort_by(|a, b| cursor::compare(order, a, b));
            (page, found, true)
        };
        work.charge(page.len() as u64)?;
        Ok((
            page.into_iter().map(|key| (key, None)).collect(),
            total,
            exact,
        ))
    }

    /// The matches of `condition` up to one past `count_limit`, counted, and the page taken
    /// from them, in one statement. `split` (the sharded layout): the store's own partition is
    /// read up to its share of the cap (the cap over the number of servers) and the others'
    /// partitions are streamed, so each server finds about its share at once (a foreign
    /// partition's first fetch is that share, `layout::samples_fetch`, and runs on its server
    /// while the store's server scans its own). Read as one `LIMIT` over all partitions, the
    /// store's own partition, which PostgreSQL reads first, found the whole cap alone while the
    /// others' work was thrown away: on two servers at 1,000,000 reports `readme*.txt` took
    /// 573 ms so and 345 ms split, `@tutanota.com` 51 and 35 ms (psql, median of 5).
    fn count_and_page(
        &self,
        txn: &mut Transaction<'_>,
        count_limit: u64,
        condition: &Condition,
        split: bool,
    ) -> Result<CountedPage> {
        let order = self.request.order;
        let mut both = condition.clone();
        let cap_value = count_limit.saturating_add(1);
        let cap = both.param(Param::Int(to_i64(cap_value)));
        let date = cursor::column(order);
        let (matches, local_count, share_value) = match self.partitions {
            // `split` is only asked for with several partitions.
            [local, others @ ..] if split => {
                let share_value = to_i64(crate::layout::share_of(cap_value, self.partitions.len()));
                let share = both.param(Param::Int(share_value));
                let mut parts = vec![format!(
                    "(SELECT s.sha256, {date}, TRUE AS local FROM {local} s WHERE {} \
                     LIMIT {share})",
                    condition.sql
                )];
                parts.extend(others.iter().map(|table| {
                    format!(
                        "(SELECT s.sha256, {date}, FALSE FROM {table} s WHERE {})",
                        condition.sql
                    )
                }));
                (
                    format!("SELECT * FROM ({}) s", parts.join(" UNION ALL ")),
                    "(SELECT count(*) FROM m WHERE m.local)",
                    Some(share_value),
                )
            }
            _ => (
                format!(
                    "SELECT s.sha256, {date} FROM samples s WHERE {}",
                    condition.sql
                ),
                "NULL::bigint",
                None,
            ),
        };
        let (after, take) = self.paging(&mut both);
        // `m s` has the column names of `samples s`, so the cursor's and the order's SQL
        // apply to the matches as they are. The row without a SHA-256 carries the counts.
        let sql = format!(
            "WITH m AS MATERIALIZED ({matches} LIMIT {cap}) \
             SELECT NULL::text, NULL::bigint, (SELECT count(*) FROM m), {local_count} \
             UNION ALL \
             (SELECT s.sha256, {date}, NULL::bigint, NULL::bigint FROM m s WHERE {after} \
             ORDER BY {order_by} LIMIT {take})",
            order_by = cursor::order_by(order),
        );
        let rows = txn.query(&sql, &params(&both.params))?;
        let mut counted = CountedPage {
            found: 0,
            local_capped: false,
            page: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            match row.get::<_, Option<String>>(0) {
                Some(sha256) => counted.page.push(Key {
                    sha256,
                    date: row.get(1),
                }),
                None => {
                    counted.found = u64::try_from(row.get::<_, i64>(2)).unwrap_or(0);
                    let local: Option<i64> = row.get(3);
                    counted.local_capped = local.is_some() && local == share_value;
                }
            }
        }
        Ok(counted)
    }

    /// [`Run::collect_exact`] for an `OR` of text terms: one statement per test
    /// (`translate`: term by term, each term's columns smallest first), each stopping at the
    /// cap, their matches merged here. Once more than `count_limit` distinct samples are
    /// found the total is a lower bound whatever the other tests would add, so they are not
    /// run and the page is read in order.
    /// (As one statement, a `UNION` of the scans ran every scan to its cap before counting:
    /// `behaviour_processes:psexec OR behaviour_processes:paexec` read eight scans where two
    /// already passed the cap.)
    fn collect_scans(
        &self,
        txn: &mut Transaction<'_>,
        work: &mut Work,
        count_limit: u64,
        condition: &Condition,
    ) -> Result<(Vec<Candidate>, u64, bool)> {
        let order = self.request.order;
        let date = cursor::column(order);
        let cap = to_i64(count_limit.saturating_add(1));
        let mut found: HashMap<String, Option<i64>> = HashMap::new();
        for scan in &condition.scans {
            // Each statement gets what is left of the deadline.
            work.set_timeout(txn)?;
            let sql = format!(
                "SELECT s.sha256, {date} FROM samples s WHERE {} LIMIT ${}",
                scan.sql,
                scan.params.len() + 1
            );
            let mut scan_params = params(&scan.params);
            scan_params.push(&cap);
            let rows = txn.query(&sql, &scan_params)?;
            work.charge(rows.len() as u64)?;
            for row in &rows {
                found.insert(row.get(0), row.get(1));
            }
            if found.len() as u64 > count_limit {
                let page = self.page_in_order(txn, condition)?;
                return Ok((
                    page.into_iter().map(|key| (key, None)).collect(),
                    count_limit,
                    false,
                ));
            }
        }
        let total = found.len() as u64;
        let mut page: Vec<Key> = found
            .into_iter()
            .map(|(sha256, date)| Key { sha256, date })
            .filter(|key| {
                self.after
                    .is_none_or(|after| cursor::sorts_after(order, key, after))
            })
            .collect();
        page.sort_by(|a, b| cursor::compare(order, a, b));
        page.truncate(self.limit + 1);
        Ok((
            page.into_iter().map(|key| (key, None)).collect(),
            total,
            true,
        ))
    }

    /// The page (one row past the limit) of the samples matching `condition`, in order.
    fn page_in_order(&self, txn: &mut Transaction<'_>, condition: &Condition) -> Result<Vec<Key>> {
        let order = self.request.order;
        let mut paged = condition.clone();
        let (after, take) = self.paging(&mut paged);
        let (date, order_by) = (cursor::column(order), cursor::order_by(order));
        let page_of = |table: &str| {
            format!(
                "SELECT s.sha256, {date} FROM {table} s WHERE {} AND {after} \
                 ORDER BY {order_by} LIMIT {take}",
                condition.sql
            )
        };
        let sql = match self.partitions {
            [_, _, ..] => {
                // One page per server, merged here: each is a foreign scan of its own that
                // ships the order and the `LIMIT`, and they run at once (an `Append` of async
                // foreign scans; with an `ORDER BY` over them PostgreSQL merges, in series).
                // Under the partitioned table's merge the second server walked its date index
                // for a whole fetch (1,000 rows) where the page needed a few: 10–260 ms per
                // search at 1M reports.
                let pages: Vec<String> = self
                    .partitions
                    .iter()
                    .map(|table| format!("({})", page_of(table)))
                    .collect();
                format!(
                    "SELECT s.sha256, {date} FROM ({}) s",
                    pages.join(" UNION ALL ")
                )
            }
            _ => page_of("samples"),
        };
        let rows = txn.query(&sql, &params(&paged.params))?;
        let mut page: Vec<Key> = rows
            .iter()
            .map(|r| Key {
                sha256: r.get(0),
                date: r.get(1),
            })
            .collect();
        page.sort_by(|a, b| cursor::compare(order, a, b));
        page.truncate(self.limit + 1);
        Ok(page)
    }

    /// The page's bounds as parameters of `condition`: "after the cursor" and how many rows
    /// (one past the limit, which says whether another page follows).
    fn paging(&self, condition: &mut Condition) -> (String, String) {
        let after = match self.after {
            Some(key) => cursor::after_sql(self.request.order, key, condition),
            None => "TRUE".into(),
        };
        let take = condition.param(Param::Int(to_i64(self.limit as u64 + 1)));
        (after, take)
    }
}

fn date_of(order: Order, hit: &SearchHit) -> Option<i64> {
    match order {
        Order::FirstSeenDesc | Order::FirstSeenAsc => hit.first_seen,
        Order::LastSeenDesc | Order::LastSeenAsc => hit.last_seen,
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn params(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(t) => t as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

/// The search's account: units spent, and which limit stopped it.
struct Work {
    limits: SearchLimits,
    used: u64,
}

impl Work {
    fn new(limits: &SearchLimits) -> Self {
        Self {
            limits: limits.clone(),
            used: 0,
        }
    }

    fn cancelled(&self) -> bool {
        self.limits
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Spend `units`; an error naming the limit once one is passed.
    fn charge(&mut self, units: u64) -> Result<()> {
        self.used = self.used.saturating_add(units);
        if self.used > self.limits.max_work {
            return Err(Exhausted::Work {
                limit: self.limits.max_work,
            }
            .into());
        }
        if self.cancelled() {
            return Err(Exhausted::Cancelled.into());
        }
        if self.limits.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Exhausted::Deadline.into());
        }
        Ok(())
    }

    /// The deadline as the transaction's statement timeout.
    fn set_timeout(&self, txn: &mut Transaction<'_>) -> Result<()> {
        let Some(deadline) = self.limits.deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Exhausted::Deadline.into());
        }
        // At least 1 ms: 0 would mean "no timeout".
        let ms = left.as_millis().clamp(1, i32::MAX as u128).to_string();
        txn.execute("SELECT set_config('statement_timeout', $1, true)", &[&ms])?;
        Ok(())
    }

    /// A cancelled statement is the deadline or the caller's cancellation.
    fn explain(&self, error: PgStoreError) -> PgStoreError {
        match &error {
            PgStoreError::Sql(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                if self.cancelled() {
                    Exhausted::Cancelled.into()
                } else {
                    Exhausted::Deadline.into()
                }
            }
            _ => error,
        }
    }
}
