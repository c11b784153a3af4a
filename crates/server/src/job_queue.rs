//! Uploads handed to the NATS work queue (`serve --store URL --nats URL`) instead of built
//! here: `POST /sandscope/ingest` answers with a job id, and `GET /sandscope/jobs/{id}`
//! answers the job's status from the queue's status bucket, so any server answers for any job.
//! Retrohunt jobs are split into ranges published here for the workers ([`RangeDispatch`]).

use crate::backend::{BackendError, Upload};
use sandscope_hunting::RangeDispatch;
use sandscope_queue::{LocalInput, Queue, QueueError, RangeItem, ToSubmit};
use std::path::Path;

/// The queue and the runtime its client runs on. The `Backend` seam is synchronous and runs on
/// blocking threads, where waiting on this runtime is allowed.
pub struct JobQueue {
    runtime: tokio::runtime::Runtime,
    queue: Queue,
}

impl JobQueue {
    /// Connect to the NATS at `url` (its errors name NATS and say what to do).
    pub fn connect(url: &str) -> Result<JobQueue, QueueError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats")
            .enable_all()
            .build()
            .map_err(|e| QueueError::Unreachable {
                url: url.to_owned(),
                reason: format!("starting the NATS client: {e}"),
            })?;
        let queue = runtime.block_on(Queue::connect(url))?;
        Ok(JobQueue { runtime, queue })
    }

    /// Publish `upload` as one job (a run folder as a folder, a file under the name the
    /// client gave it); its id.
    pub(crate) fn publish(&self, upload: &Upload) -> Result<String, BackendError> {
        let input = if upload.path.is_dir() {
            let files = sandscope_read::walk(&upload.path)
                .map_err(|e| BackendError::Internal(format!("reading the upload: {e}")))?
                .into_iter()
                .filter_map(|f| Some((relative(&upload.path, &f)?, f)))
                .collect();
            LocalInput {
                name: "upload".to_owned(),
                is_dir: true,
                files,
            }
        } else {
            let name = Path::new(&upload.original_name)
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty() && *n != "..")
                .unwrap_or("upload")
                .to_owned();
            LocalInput {
                name,
                is_dir: false,
                files: vec![(String::new(), upload.path.clone())],
            }
        };
        let job = ToSubmit {
            sha256: upload.sha256.clone(),
            sample: None,
            sandbox: upload.sandbox.clone(),
            inputs: vec![input],
        };
        self.runtime
            .block_on(self.queue.submit(job))
            .map_err(queue_error)
    }

    /// The status of job `id` as JSON; `None` for an unknown job.
    pub(crate) fn status(&self, id: &str) -> Result<Option<serde_json::Value>, BackendError> {
        let status = self
            .runtime
            .block_on(self.queue.status(id))
            .map_err(queue_error)?;
        status
            .map(|s| serde_json::to_value(s).map_err(|e| BackendError::Internal(e.to_string())))
            .transpose()
    }
}

/// A split Retrohunt job's ranges, queued for the workers; its abort, flagged for them.
impl RangeDispatch for JobQueue {
    fn publish(&self, job: u64, index: u32) -> Result<(), String> {
        self.runtime
            .block_on(self.queue.publish_range(RangeItem { job, index }))
            .map_err(|e| e.to_string())
    }

    fn abort(&self, job: u64) -> Result<(), String> {
        self.runtime
            .block_on(self.queue.abort_retrohunt(job))
            .map_err(|e| e.to_string())
    }

    fn queued(&self, job: u64, index: u32) -> Result<bool, String> {
        self.runtime
            .block_on(self.queue.range_queued(RangeItem { job, index }))
            .map_err(|e| e.to_string())
    }
}

/// NATS out of reach is the service being unavailable (503), its detail logged.
fn queue_error(error: QueueError) -> BackendError {
    match error {
        QueueError::Bad(why) => BackendError::InvalidArgument(format!("the upload {why}")),
        e => {
            eprintln!("sandscope-server: {e}");
            BackendError::Unavailable("the work queue (NATS) cannot be reached".into())
        }
    }
}

fn relative(folder: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(folder).ok()?;
    Some(
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    )
}
