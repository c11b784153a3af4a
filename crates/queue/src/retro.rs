//! Retrohunt ranges through the queue (`serve --store URL --nats URL`): a split Retrohunt job
//! is published as one small [`RangeItem`] per range on a work-queue stream of its own
//! ([`RETRO_STREAM`], so ranges and detonations never wait behind each other's redelivery
//! rules), and a job's abort is a flag in a key-value bucket ([`RETRO_FLAGS_BUCKET`]) that the
//! workers scanning its ranges look at while they scan.
//!
//! Each item is published on a subject of its own (`sandscope.retrohunt.<job>.<index>`), so
//! the server owning the job can ask JetStream whether a range's item is still there
//! ([`Queue::range_queued`]): an item lost by NATS (purged, or its stream lost) is re-published
//! by that server instead of leaving the job waiting forever.

use crate::queue::{bucket_stream, nats, shared_consumer};
use crate::{Delivery, Queue, QueueError};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, consumer::PullConsumer, kv};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The work-queue stream of Retrohunt ranges.
pub const RETRO_STREAM: &str = "SANDSCOPE_RETROHUNT";
/// The subject ranges are published under (`RETRO_SUBJECT.<job>.<index>`; items published
/// by older versions on `RETRO_SUBJECT` itself are still taken).
pub const RETRO_SUBJECT: &str = "sandscope.retrohunt";
/// The durable pull consumer every worker shares.
pub const RETRO_CONSUMER: &str = "sandscope-retrohunt-workers";
/// The key-value bucket of aborted jobs (`abort-<job id>`).
pub const RETRO_FLAGS_BUCKET: &str = "sandscope_retrohunt";

/// One range of one Retrohunt job, as published.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RangeItem {
    /// The job's id in the store (`sandscope-<job>` in the API).
    pub job: u64,
    /// The range's index (see `sandscope_hunting`'s ranges).
    pub index: u32,
}

fn flag_key(job: u64) -> String {
    format!("abort-{job}")
}

impl RangeItem {
    /// The subject this item is published on: its own, so its presence can be looked up.
    fn subject(&self) -> String {
        format!("{RETRO_SUBJECT}.{}.{}", self.job, self.index)
    }
}

/// The retrohunt stream's configuration.
fn retro_stream_config() -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: RETRO_STREAM.to_owned(),
        subjects: vec![RETRO_SUBJECT.to_owned(), format!("{RETRO_SUBJECT}.>")],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

impl Queue {
    /// The retrohunt stream; one created by a version that published every item on
    /// [`RETRO_SUBJECT`] is given the per-item subjects (its items are kept).
    async fn retro_stream(&self) -> Result<jetstream::stream::Stream, QueueError> {
        let config = retro_stream_config();
        let mut stream = self
            .js
            .get_or_create_stream(config.clone())
            .await
            .map_err(nats(&self.url, "opening the retrohunt stream"))?;
        let subjects = &stream
            .info()
            .await
            .map_err(nats(&self.url, "reading the retrohunt stream"))?
            .config
            .subjects;
        if !config.subjects.iter().all(|s| subjects.contains(s)) {
            self.js
                .update_stream(config)
                .await
                .map_err(nats(&self.url, "updating the retrohunt stream's subjects"))?;
        }
        Ok(stream)
    }

    /// The abort flags, laid out as the key-value convention says (as the job status bucket);
    /// opened once per process, not at every look a scanning worker takes.
    async fn retro_flags(&self) -> Result<&kv::Store, QueueError> {
        self.retro_flags
            .get_or_try_init(|| async {
                self.js
                    .get_or_create_stream(bucket_stream(
                        format!("KV_{RETRO_FLAGS_BUCKET}"),
                        vec![format!("$KV.{RETRO_FLAGS_BUCKET}.>")],
                        1,
                    ))
                    .await
                    .map_err(nats(&self.url, "creating the retrohunt flags bucket"))?;
                self.js
                    .get_key_value(RETRO_FLAGS_BUCKET)
                    .await
                    .map_err(nats(&self.url, "opening the retrohunt flags bucket"))
            })
            .await
    }

    /// Publish `item`, returning once JetStream has kept it.
    pub async fn publish_range(&self, item: RangeItem) -> Result<(), QueueError> {
        self.retro_stream().await?;
        let bytes = serde_json::to_vec(&item).map_err(|e| QueueError::Bad(e.to_string()))?;
        self.js
            .publish(item.subject(), bytes.into())
            .await
            .map_err(nats(&self.url, "publishing a retrohunt range"))?
            .await
            .map_err(nats(
                &self.url,
                "waiting for JetStream to keep a retrohunt range",
            ))?;
        Ok(())
    }

    /// The pull consumer of ranges all workers share.
    pub async fn range_consumer(&self) -> Result<PullConsumer, QueueError> {
        self.retro_stream()
            .await?
            .get_or_create_consumer(RETRO_CONSUMER, shared_consumer(RETRO_CONSUMER))
            .await
            .map_err(nats(&self.url, "opening the retrohunt workers' consumer"))
    }

    /// The next range, waiting at most `wait`; `None` when there is none yet.
    pub async fn next_range(
        &self,
        consumer: &PullConsumer,
        wait: Duration,
    ) -> Result<Option<Delivery<RangeItem>>, QueueError> {
        let Some((message, delivered)) = self.fetch_one(consumer, wait).await? else {
            return Ok(None);
        };
        let item = serde_json::from_slice::<RangeItem>(&message.payload)
            .map_err(|e| format!("unreadable retrohunt range: {e}"));
        Ok(Some(Delivery::new(message, item, delivered)))
    }

    /// Whether `item` is still in the retrohunt stream: waiting for a worker, or delivered and
    /// not yet acknowledged. False once a worker acknowledged it (its range is stored as done
    /// or given up before that), or when NATS lost it.
    pub async fn range_queued(&self, item: RangeItem) -> Result<bool, QueueError> {
        let found = self
            .retro_stream()
            .await?
            .get_last_raw_message_by_subject(&item.subject())
            .await;
        match found {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(nats(&self.url, "looking for a retrohunt range")(e)),
        }
    }

    /// Tell the workers scanning job `job`'s ranges to stop.
    pub async fn abort_retrohunt(&self, job: u64) -> Result<(), QueueError> {
        self.retro_flags()
            .await?
            .put(flag_key(job), "aborted".into())
            .await
            .map_err(nats(&self.url, "flagging a retrohunt job aborted"))?;
        Ok(())
    }

    /// Whether job `job` was aborted.
    pub async fn retrohunt_aborted(&self, job: u64) -> Result<bool, QueueError> {
        Ok(self
            .retro_flags()
            .await?
            .get(flag_key(job))
            .await
            .map_err(nats(&self.url, "reading a retrohunt flag"))?
            .is_some())
    }
}
