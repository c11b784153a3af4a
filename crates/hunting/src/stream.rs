//! One stream of events (a log file, a stored raw log) hunted by a Sigma engine: events are
//! evaluated in batches, correlation rules over the whole stream when it ends. The one
//! per-stream evaluation behind `sandscope hunt` (files) and Retrohunt (stored logs), so the
//! two find exactly the same hits.

use sandscope_event::SysmonEvent;
use sandscope_read::{EventSink, ReadError, ReadStats, ReadWarning};
use sandscope_sigma::{Correlator, Hit, MAX_CORRELATED_EVENTS, RuleInfo, SigmaEngine};
use std::sync::atomic::{AtomicBool, Ordering};

/// Events are evaluated in batches of this many, so memory stays flat on any input size.
const BATCH: usize = 4096;
/// Events read between two looks at the stop flag (abort within a fraction of a second).
const STOP_CHECK: u64 = 1024;

/// What hunting one or more streams found.
#[derive(Debug, Default)]
pub struct HuntOutcome {
    pub hits: Vec<Hit>,
    /// Events evaluated.
    pub records: u64,
    /// Streams with damaged parts skipped (warnings).
    pub damaged_files: usize,
    /// Streams that could not be read to their end.
    pub failed_files: usize,
    /// What went wrong, one line each (`warning: …`, `error: …`), for the caller to show.
    pub problems: Vec<String>,
    /// Whether the stop flag cut a stream short.
    pub stopped: bool,
}

impl HuntOutcome {
    /// Add `other`'s counts and hits to these.
    pub fn merge(&mut self, other: HuntOutcome) {
        self.hits.extend(other.hits);
        self.records += other.records;
        self.damaged_files += other.damaged_files;
        self.failed_files += other.failed_files;
        self.problems.extend(other.problems);
        self.stopped |= other.stopped;
    }
}

/// Streams one source's events through the engine, keeping the hits `keep` accepts.
struct HuntSink<'a, F: Fn(&RuleInfo) -> bool + Sync> {
    engine: &'a SigmaEngine,
    keep: &'a F,
    correlator: Correlator<'a>,
    batch: Vec<SysmonEvent>,
    hits: Vec<Hit>,
    warnings: Vec<ReadWarning>,
    records: u64,
    seen: u64,
    stop: &'a AtomicBool,
    stopped: bool,
    /// Batches evaluated on the rayon pool rather than on this thread alone.
    parallel: bool,
}

impl<F: Fn(&RuleInfo) -> bool + Sync> HuntSink<'_, F> {
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let keep = self.keep;
        let engine = self.engine;
        let matches = if self.parallel {
            engine.evaluate_all(&self.batch)
        } else {
            engine.evaluate_all_here(&self.batch)
        };
        self.correlator.feed(&self.batch, &matches);
        self.hits.extend(
            engine
                .hits(&self.batch, matches)
                .into_iter()
                .filter(|hit| engine.rule(hit.rule).is_some_and(keep)),
        );
        self.records += self.batch.len() as u64;
        self.batch.clear();
    }
}

impl<F: Fn(&RuleInfo) -> bool + Sync> EventSink for HuntSink<'_, F> {
    fn event(&mut self, event: SysmonEvent) {
        if self.stopped {
            return;
        }
        self.seen += 1;
        if self.seen.is_multiple_of(STOP_CHECK) && self.stop.load(Ordering::Relaxed) {
            self.stopped = true;
            self.batch.clear();
            return;
        }
        self.batch.push(event);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
    fn warning(&mut self, warning: ReadWarning) {
        self.warnings.push(warning);
    }
    fn wants_more(&self) -> bool {
        !self.stopped
    }
}

/// Hunt one stream of events that `read` delivers into `outcome`; `name` is what problems are
/// reported under. Once `stop` is set the stream ends at its next check (its hits so far are
/// dropped and [`HuntOutcome::stopped`] is set): a stopped stream is never half counted.
pub fn hunt_stream<F: Fn(&RuleInfo) -> bool + Sync>(
    engine: &SigmaEngine,
    name: &str,
    read: impl FnOnce(&mut dyn EventSink) -> Result<ReadStats, ReadError>,
    keep: &F,
    stop: &AtomicBool,
    outcome: &mut HuntOutcome,
) {
    hunt_stream_on(engine, name, read, keep, stop, true, outcome);
}

/// [`hunt_stream`], its batches evaluated on the rayon pool (`parallel`) or on the calling
/// thread alone (for a caller that already hunts one stream per thread).
pub fn hunt_stream_on<F: Fn(&RuleInfo) -> bool + Sync>(
    engine: &SigmaEngine,
    name: &str,
    read: impl FnOnce(&mut dyn EventSink) -> Result<ReadStats, ReadError>,
    keep: &F,
    stop: &AtomicBool,
    parallel: bool,
    outcome: &mut HuntOutcome,
) {
    let mut sink = HuntSink {
        engine,
        keep,
        correlator: engine.correlator(),
        batch: Vec::with_capacity(BATCH),
        hits: Vec::new(),
        warnings: Vec::new(),
        records: 0,
        seen: 0,
        stop,
        stopped: false,
        parallel,
    };
    let result = read(&mut sink);
    if sink.stopped {
        outcome.stopped = true;
        return;
    }
    sink.flush();
    let correlated = std::mem::replace(&mut sink.correlator, engine.correlator()).finish();
    if correlated.dropped > 0 {
        outcome.problems.push(format!(
            "warning: {name}: {} matching events past the first {MAX_CORRELATED_EVENTS} were not correlated",
            correlated.dropped
        ));
    }
    sink.hits.extend(
        engine
            .correlation_hits(&correlated)
            .into_iter()
            .filter(|hit| engine.rule(hit.rule).is_some_and(keep)),
    );
    outcome
        .problems
        .extend(sink.warnings.iter().map(|w| format!("warning: {w}")));
    if let Err(err) = result {
        outcome.problems.push(format!("error: {err}"));
        outcome.failed_files += 1;
    }
    outcome.damaged_files += usize::from(!sink.warnings.is_empty());
    outcome.records += sink.records;
    outcome.hits.extend(sink.hits);
}
