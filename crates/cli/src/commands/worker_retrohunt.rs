//! A worker's turn at one range of a Retrohunt job split across workers (`serve --store URL
//! --nats URL`): the range is scanned from its checkpoint by `sandscope_hunting::scan_range`
//! (the one scan every Retrohunt runs) on a blocking thread, while this side tells JetStream
//! the worker is alive and looks at the job's abort flag in NATS four times a second, stopping
//! the scan (between logs, or within a log every 1,024 events) once it is set.
//!
//! At least once: a range whose worker dies is redelivered after the queue's ack wait and
//! resumes from the checkpoint its last page stored with its matches, so no match is lost or
//! repeated. A range that fails [`MAX_DELIVERIES`] times is given up: its job ends `aborted`
//! with the reason.

use sandscope_hunting::{RangeEnd, give_up_range, scan_range};
use sandscope_pgstore::PgStore;
use sandscope_queue::{ACK_WAIT, Delivery, MAX_DELIVERIES, Queue, RangeItem};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the job's abort flag is looked at.
const ABORT_LOOK: Duration = Duration::from_millis(250);

/// Take one range delivery to its end; returns the line to print.
pub(super) async fn handle_range(
    queue: &Queue,
    delivery: Delivery<RangeItem>,
    store: &Arc<PgStore>,
    worker_stop: &AtomicBool,
) -> String {
    let item = match &delivery.job {
        Ok(item) => *item,
        Err(why) => {
            delivery.terminate().await;
            return format!("dropped\t-\t{why}");
        }
    };
    let label = format!("retrohunt sandscope-{} range {}", item.job, item.index);
    let stop = Arc::new(AtomicBool::new(false));
    let (scan_store, scan_stop) = (store.clone(), stop.clone());
    let mut scan = tokio::task::spawn_blocking(move || {
        scan_range(
            scan_store.as_ref(),
            item.job,
            item.index,
            &scan_stop,
            &mut || {},
        )
    });
    let mut look = tokio::time::interval(ABORT_LOOK);
    let mut alive = tokio::time::interval(ACK_WAIT / 3);
    let mut aborted = false;
    let outcome = loop {
        tokio::select! {
            joined = &mut scan => break joined,
            _ = look.tick() => {
                // NATS out of reach is no abort: the page's own look at the job still is.
                aborted |= queue.retrohunt_aborted(item.job).await.unwrap_or(false);
                if aborted || worker_stop.load(Ordering::SeqCst) {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            _ = alive.tick() => {
                let _ = delivery.progress().await;
            }
        }
    };
    let reason = match outcome {
        Ok(Ok(RangeEnd::Done)) => return acked(&delivery, format!("done\t{label}")).await,
        Ok(Ok(RangeEnd::Abandoned)) => {
            return acked(
                &delivery,
                format!("abandoned\t{label}\tthe job was aborted or deleted"),
            )
            .await;
        }
        Ok(Ok(RangeEnd::Stopped)) if aborted => {
            return acked(
                &delivery,
                format!("abandoned\t{label}\tthe job was aborted"),
            )
            .await;
        }
        Ok(Ok(RangeEnd::Stopped)) => {
            // This worker is stopping: another takes the range over from its checkpoint.
            delivery.retry(Duration::ZERO).await;
            return format!("retry\t{label}\tthe worker is stopping");
        }
        Ok(Err(e)) => e.to_string(),
        Err(join) => format!("the scan did not finish: {join}"),
    };
    if delivery.delivered >= MAX_DELIVERIES {
        let (store, why) = (store.clone(), reason.clone());
        let recorded = tokio::task::spawn_blocking(move || {
            give_up_range(store.as_ref(), item.job, item.index, &why)
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            // Not recorded: handed back, so the job is not left waiting on it silently.
            delivery.retry(Duration::from_secs(1)).await;
            return format!("retry\t{label}\t{}", one_line(&reason));
        }
        delivery.terminate().await;
        return format!("parked\t{label}\t{}", one_line(&reason));
    }
    delivery.retry(Duration::from_secs(1)).await;
    format!("retry\t{label}\t{}", one_line(&reason))
}

async fn acked(delivery: &Delivery<RangeItem>, line: String) -> String {
    match delivery.ack().await {
        Ok(()) => line,
        // Unacknowledged: redelivered, and the range's stored progress makes that a no-op.
        Err(e) => format!("unacked\t{line}\t{e}"),
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\t'], " ")
}
