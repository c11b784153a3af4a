//! The job status bucket on a real NATS JetStream server: a status is readable while its job
//! runs, is kept a bounded time ([`STATUS_MAX_AGE`] unless told otherwise) and is then gone,
//! and a bucket made without a limit (by an older version) is given one, its statuses kept.

#[path = "../../../tests/support/nats.rs"]
mod nats_server;

use async_nats::jetstream;
use nats_server::TestNats;
use sandscope_queue::{JobState, JobStatus, Queue, STATUS_BUCKET, STATUS_MAX_AGE};
use std::time::{Duration, Instant};

const JOB: &str = "0123456789abcdef0123456789abcdef";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the NATS client")
}

/// The status bucket's age limit, as the NATS server holds it.
async fn bucket_max_age(url: &str) -> Duration {
    let js = jetstream::new(async_nats::connect(url).await.expect("connect to NATS"));
    let mut stream = js
        .get_stream(format!("KV_{STATUS_BUCKET}"))
        .await
        .expect("the status bucket's stream");
    stream.info().await.expect("stream info").config.max_age
}

async fn set_running(queue: &Queue) {
    let mut status = JobStatus::new(JOB, JobState::Queued);
    status.state = JobState::Running;
    status.worker = Some("w1".into());
    queue.set_status(&status).await.expect("write a status");
}

#[test]
fn a_job_status_is_kept_seven_days_and_readable_while_its_job_runs() {
    let nats = TestNats::start();
    runtime().block_on(async {
        let queue = Queue::connect(&nats.url()).await.expect("connect");
        assert_eq!(bucket_max_age(&nats.url()).await, STATUS_MAX_AGE);
        assert_eq!(STATUS_MAX_AGE, Duration::from_secs(7 * 24 * 3600));
        set_running(&queue).await;
        let read = queue.status(JOB).await.expect("read").expect("a status");
        assert_eq!(read.state, JobState::Running);
        assert_eq!(read.worker.as_deref(), Some("w1"));
    });
}

#[test]
fn a_job_status_is_gone_once_its_max_age_has_passed() {
    let nats = TestNats::start();
    runtime().block_on(async {
        let max_age = Duration::from_secs(2);
        let queue = Queue::connect_with(&nats.url(), max_age)
            .await
            .expect("connect");
        assert_eq!(bucket_max_age(&nats.url()).await, max_age);
        set_running(&queue).await;
        let written = Instant::now();
        assert!(queue.status(JOB).await.expect("read").is_some());
        // NATS removes it on its own expiry pass, shortly after the limit.
        while queue.status(JOB).await.expect("read").is_some() {
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "the status outlived its max age by far"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            written.elapsed() >= max_age - Duration::from_millis(500),
            "expired early"
        );
    });
}

#[test]
fn a_status_bucket_without_a_limit_is_given_one_and_keeps_its_statuses() {
    let nats = TestNats::start();
    runtime().block_on(async {
        // An older version made the bucket without an age limit.
        let old = Queue::connect_with(&nats.url(), Duration::ZERO)
            .await
            .expect("connect");
        assert_eq!(bucket_max_age(&nats.url()).await, Duration::ZERO);
        set_running(&old).await;
        let queue = Queue::connect(&nats.url()).await.expect("connect");
        assert_eq!(bucket_max_age(&nats.url()).await, STATUS_MAX_AGE);
        let read = queue.status(JOB).await.expect("read").expect("kept");
        assert_eq!(read.state, JobState::Running);
        // A limit the bucket has (an operator's choice) is left as it is.
        Queue::connect_with(&nats.url(), Duration::from_secs(60))
            .await
            .expect("connect");
        assert_eq!(bucket_max_age(&nats.url()).await, STATUS_MAX_AGE);
    });
}
