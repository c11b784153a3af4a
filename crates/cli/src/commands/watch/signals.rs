//! Ctrl-C and SIGTERM ask a watcher to stop once the run it is ingesting is stored.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::signal::unix::{SignalKind, signal};

/// A flag set when the process gets SIGINT (Ctrl-C) or SIGTERM.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // Registered here, before the watcher starts, so that no signal is missed.
    let listen = |kind| runtime.block_on(async { signal(kind) });
    let mut interrupt = listen(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = listen(SignalKind::terminate()).context("listening for SIGTERM")?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            flag.store(true, Ordering::SeqCst);
        })
        .context("starting the signal handler")?;
    Ok(stop)
}
