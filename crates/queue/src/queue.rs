//! The connection to NATS JetStream and the few things publishers and workers do with it.

use crate::job::now;
use crate::{
    ACK_WAIT, CONSUMER, FILES_BUCKET, Job, JobFile, JobInput, JobState, JobStatus, MAX_JOB_BYTES,
    MAX_JOB_FILES, MAX_MANIFEST_BYTES, QueueError, STATUS_BUCKET, STATUS_MAX_AGE, STREAM, SUBJECT,
};
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, kv, object_store};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connection to the queue: the jobs stream, the files object store and the status bucket.
pub struct Queue {
    pub(crate) url: String,
    pub(crate) js: jetstream::Context,
    status: kv::Store,
    files: object_store::ObjectStore,
    /// The Retrohunt abort flags, opened on first use (workers read them while they scan).
    pub(crate) retro_flags: tokio::sync::OnceCell<kv::Store>,
}

/// A detonation to publish: its inputs as files on this machine.
#[derive(Debug, Clone, Default)]
pub struct ToSubmit {
    pub sha256: Option<String>,
    pub sample: Option<String>,
    pub sandbox: Option<String>,
    pub inputs: Vec<LocalInput>,
}

/// One input to publish: a file, or a folder with its files.
#[derive(Debug, Clone)]
pub struct LocalInput {
    /// The file's or folder's own name, as the worker will lay it out.
    pub name: String,
    pub is_dir: bool,
    /// (path under the folder, `/`-separated, empty for a file; the file on this machine)
    pub files: Vec<(String, PathBuf)>,
}

/// A work item handed to this worker (a detonation [`Job`], or a Retrohunt range), to
/// acknowledge once its work is stored.
pub struct Delivery<T = Job> {
    message: jetstream::Message,
    /// The item, or why its manifest cannot be read.
    pub job: Result<T, String>,
    /// How many times JetStream has delivered it, this time included.
    pub delivered: u32,
}

pub(crate) fn nats<E: std::fmt::Display>(url: &str, doing: &str) -> impl FnOnce(E) -> QueueError {
    let (url, doing) = (url.to_owned(), doing.to_owned());
    move |e| QueueError::Nats {
        url,
        doing,
        reason: e.to_string(),
    }
}

impl Queue {
    /// Connect to NATS at `url` and make sure the stream and buckets exist, job status living
    /// [`STATUS_MAX_AGE`].
    pub async fn connect(url: &str) -> Result<Queue, QueueError> {
        Self::connect_with(url, STATUS_MAX_AGE).await
    }

    /// [`Queue::connect`], a job's status living `status_max_age` after its last change when
    /// this connection creates the status bucket, or finds one without a limit (made by an
    /// older version); a bucket's own limit (set by an operator: `nats stream edit
    /// KV_sandscope_jobs --max-age`) is left as it is.
    pub async fn connect_with(url: &str, status_max_age: Duration) -> Result<Queue, QueueError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| QueueError::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECT.to_owned()],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: jetstream::stream::StorageType::File,
            max_message_size: MAX_MANIFEST_BYTES as i32,
            ..Default::default()
        })
        .await
        .map_err(nats(url, "opening the jobs stream"))?;
        // The buckets' streams are created as plain streams, laid out as the key-value and
        // object store conventions say: the client's own bucket creation first asks for the
        // account's limits in a shape older servers (Debian's 2.9) do not answer in.
        let stream = |name: String, subjects: Vec<String>, per_subject: i64| {
            js.get_or_create_stream(bucket_stream(name, subjects, per_subject))
        };
        open_status_stream(&js, url, status_max_age).await?;
        stream(
            format!("OBJ_{FILES_BUCKET}"),
            vec![
                format!("$O.{FILES_BUCKET}.C.>"),
                format!("$O.{FILES_BUCKET}.M.>"),
            ],
            0,
        )
        .await
        .map_err(nats(url, "creating the job files bucket"))?;
        let status = js
            .get_key_value(STATUS_BUCKET)
            .await
            .map_err(nats(url, "opening the job status bucket"))?;
        let files = js
            .get_object_store(FILES_BUCKET)
            .await
            .map_err(nats(url, "opening the job files bucket"))?;
        Ok(Queue {
            url: url.to_owned(),
            js,
            status,
            files,
            retro_flags: tokio::sync::OnceCell::new(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Upload the job's files, record it as queued and publish it; returns the job id once
    /// JetStream has acknowledged the job.
    pub async fn submit(&self, job: ToSubmit) -> Result<String, QueueError> {
        let id = new_job_id();
        let count: usize = job.inputs.iter().map(|i| i.files.len()).sum();
        if count > MAX_JOB_FILES {
            return Err(QueueError::Bad(format!(
                "of {count} files: at most {MAX_JOB_FILES} per job"
            )));
        }
        let mut inputs = Vec::with_capacity(job.inputs.len());
        let mut total = 0u64;
        let mut n = 0usize;
        for LocalInput {
            name,
            is_dir,
            files,
        } in job.inputs
        {
            let mut sent = Vec::with_capacity(files.len());
            for (path, disk) in files {
                let shown = disk.display().to_string();
                let io = |source| QueueError::Io {
                    path: shown.clone(),
                    source,
                };
                let mut file = tokio::fs::File::open(&disk).await.map_err(io)?;
                let size = file.metadata().await.map_err(io)?.len();
                total = total.saturating_add(size);
                if total > MAX_JOB_BYTES {
                    return Err(QueueError::Bad(format!(
                        "is larger than {MAX_JOB_BYTES} bytes (at {shown}): split the input"
                    )));
                }
                let object = format!("{id}/{n}");
                n += 1;
                self.files
                    .put(object.as_str(), &mut file)
                    .await
                    .map_err(nats(&self.url, &format!("uploading {shown}")))?;
                sent.push(JobFile { path, object, size });
            }
            inputs.push(JobInput {
                name,
                is_dir,
                files: sent,
            });
        }
        let manifest = Job {
            id: id.clone(),
            sha256: job.sha256,
            sample: job.sample,
            sandbox: job.sandbox,
            inputs,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| QueueError::Bad(e.to_string()))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(QueueError::Bad(format!(
                "manifest is {} bytes (at most {MAX_MANIFEST_BYTES}): give fewer files per job",
                bytes.len()
            )));
        }
        self.set_status(&JobStatus::new(&id, JobState::Queued))
            .await?;
        let ack = self
            .js
            .publish(SUBJECT, bytes.into())
            .await
            .map_err(nats(&self.url, "publishing a job"))?;
        ack.await
            .map_err(nats(&self.url, "waiting for JetStream to keep a job"))?;
        Ok(id)
    }

    /// The status of job `id`; `None` for an id the queue does not know.
    pub async fn status(&self, id: &str) -> Result<Option<JobStatus>, QueueError> {
        if !is_job_id(id) {
            return Ok(None);
        }
        let Some(bytes) = self
            .status
            .get(id)
            .await
            .map_err(nats(&self.url, "reading a job status"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| QueueError::Bad(format!("{id}: unreadable status: {e}")))
    }

    /// Every job id the status bucket holds.
    pub async fn job_ids(&self) -> Result<Vec<String>, QueueError> {
        let mut keys = self
            .status
            .keys()
            .await
            .map_err(nats(&self.url, "listing jobs"))?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            ids.push(key.map_err(nats(&self.url, "listing jobs"))?);
        }
        Ok(ids)
    }

    pub async fn set_status(&self, status: &JobStatus) -> Result<(), QueueError> {
        let mut status = status.clone();
        status.updated = now();
        let bytes = serde_json::to_vec(&status).map_err(|e| QueueError::Bad(e.to_string()))?;
        self.status
            .put(&status.id, bytes.into())
            .await
            .map_err(nats(&self.url, "writing a job status"))?;
        Ok(())
    }

    /// The pull consumer all workers share.
    pub async fn consumer(&self) -> Result<PullConsumer, QueueError> {
        let stream = self
            .js
            .get_stream(STREAM)
            .await
            .map_err(nats(&self.url, "opening the jobs stream"))?;
        stream
            .get_or_create_consumer(CONSUMER, shared_consumer(CONSUMER))
            .await
            .map_err(nats(&self.url, "opening the workers' consumer"))
    }

    /// The next job, waiting at most `wait`; `None` when there is none yet.
    pub async fn next(
        &self,
        consumer: &PullConsumer,
        wait: Duration,
    ) -> Result<Option<Delivery>, QueueError> {
        let Some((message, delivered)) = self.fetch_one(consumer, wait).await? else {
            return Ok(None);
        };
        let job = serde_json::from_slice::<Job>(&message.payload)
            .map_err(|e| format!("unreadable job manifest: {e}"))
            .and_then(|job| {
                job.validate()
                    .map_err(|why| format!("job {}: {why}", job.id))
                    .map(|()| job)
            });
        Ok(Some(Delivery {
            message,
            job,
            delivered,
        }))
    }

    /// The next message for `consumer` and how many times it was delivered, waiting at most
    /// `wait`; `None` when there is none yet.
    pub(crate) async fn fetch_one(
        &self,
        consumer: &PullConsumer,
        wait: Duration,
    ) -> Result<Option<(jetstream::Message, u32)>, QueueError> {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(nats(&self.url, "asking for a job"))?;
        let Some(message) = batch.next().await else {
            return Ok(None);
        };
        let message = message.map_err(nats(&self.url, "receiving a job"))?;
        let delivered = message
            .info()
            .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
            .unwrap_or(1);
        Ok(Some((message, delivered)))
    }

    /// Write the job's files under `dir`; returns the inputs' paths, as `ingest` takes them.
    pub async fn fetch_files(&self, job: &Job, dir: &Path) -> Result<Vec<PathBuf>, QueueError> {
        let mut paths = Vec::with_capacity(job.inputs.len());
        for (n, input) in job.inputs.iter().enumerate() {
            // Each input in a folder of its own: two inputs may share a name.
            let root = dir.join(n.to_string()).join(&input.name);
            for file in &input.files {
                let target = if input.is_dir {
                    file.path.split('/').fold(root.clone(), |p, c| p.join(c))
                } else {
                    root.clone()
                };
                let shown = target.display().to_string();
                let io = |source| QueueError::Io {
                    path: shown.clone(),
                    source,
                };
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                let mut object = self
                    .files
                    .get(&file.object)
                    .await
                    .map_err(nats(&self.url, "downloading a job file"))?;
                let mut out = tokio::fs::File::create(&target).await.map_err(io)?;
                tokio::io::copy(&mut object, &mut out).await.map_err(io)?;
            }
            paths.push(root);
        }
        Ok(paths)
    }

    /// Delete a finished job's files (best effort: a leftover only costs space).
    pub async fn drop_files(&self, job: &Job) {
        for file in job.inputs.iter().flat_map(|i| &i.files) {
            let _ = self.files.delete(&file.object).await;
        }
    }
}

impl<T> Delivery<T> {
    pub(crate) fn new(message: jetstream::Message, job: Result<T, String>, delivered: u32) -> Self {
        Delivery {
            message,
            job,
            delivered,
        }
    }

    /// Tell JetStream the job is still being worked on.
    pub async fn progress(&self) -> Result<(), QueueError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| QueueError::Nats {
                url: String::new(),
                doing: "signalling progress".into(),
                reason: e.to_string(),
            })
    }

    /// Acknowledge the job, waiting for JetStream to confirm it.
    pub async fn ack(&self) -> Result<(), QueueError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| QueueError::Nats {
                url: String::new(),
                doing: "acknowledging a job".into(),
                reason: e.to_string(),
            })
    }

    /// Hand the job back for another delivery after `delay`.
    pub async fn retry(&self, delay: Duration) {
        let _ = self.message.ack_with(AckKind::Nak(Some(delay))).await;
    }

    /// Never deliver the job again.
    pub async fn terminate(&self) {
        let _ = self.message.ack_with(AckKind::Term).await;
    }
}

/// A new job id: 32 hex digits from the clock and the process's random hasher keys.
fn new_job_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{nanos:016x}{:016x}", hasher.finish())
}

/// What a job id looks like (anything else is unknown without asking NATS).
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The stream behind a key-value bucket or an object store, laid out as their conventions
/// say (created as a plain stream: see [`Queue::connect`]).
pub(crate) fn bucket_stream(
    name: String,
    subjects: Vec<String>,
    per_subject: i64,
) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name,
        subjects,
        max_messages_per_subject: per_subject,
        discard: jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

/// The stream behind the job status bucket, each status kept `max_age` after its last change;
/// one without a limit is given it.
async fn open_status_stream(
    js: &jetstream::Context,
    url: &str,
    max_age: Duration,
) -> Result<(), QueueError> {
    let mut config = bucket_stream(
        format!("KV_{STATUS_BUCKET}"),
        vec![format!("$KV.{STATUS_BUCKET}.>")],
        1,
    );
    config.max_age = max_age;
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(nats(url, "creating the job status bucket"))?;
    let mut kept = stream
        .info()
        .await
        .map_err(nats(url, "reading the job status bucket"))?
        .config
        .clone();
    if kept.max_age.is_zero() && !max_age.is_zero() {
        kept.max_age = max_age;
        js.update_stream(kept)
            .await
            .map_err(nats(url, "limiting the job status bucket's age"))?;
    }
    Ok(())
}

/// A durable pull consumer every worker shares, acknowledging each item explicitly.
pub(crate) fn shared_consumer(name: &str) -> jetstream::consumer::pull::Config {
    jetstream::consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        // Giving an item up is the worker's decision (it records why); JetStream only redelivers.
        max_deliver: -1,
        ..Default::default()
    }
}
