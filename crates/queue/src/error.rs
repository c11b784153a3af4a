use thiserror::Error;

/// What can go wrong talking to NATS or reading a job. Every message names NATS and, where
/// there is one, what to do.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error(
        "cannot reach NATS at {url}: {reason} (is nats-server running there with JetStream, `nats-server -js`? check --nats)"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "NATS at {url}: {doing}: {reason} (if nats-server restarted or lacks JetStream, start it with `-js` and its storage directory, then run the command again; jobs acknowledged by NATS are kept)"
    )]
    Nats {
        url: String,
        doing: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("job {0}")]
    Bad(String),
}
