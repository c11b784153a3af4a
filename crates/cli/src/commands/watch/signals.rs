//! Ctrl-C and SIGTERM (a service manager's stop) end `serve` and ask a watcher to stop once
//! the run it is ingesting is stored.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::signal::unix::{SignalKind, signal};

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM.
pub async fn interrupted() {
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A flag set when the process gets SIGINT or SIGTERM, for a process with no async runtime.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(interrupted());
            flag.store(true, Ordering::SeqCst);
        })
        .context("starting the signal handler")?;
    Ok(stop)
}
