//! The CPU time a benchmark phase took: on a shared machine it shows the work done, where wall
//! time also holds the neighbours' load.

/// This process's user + system CPU seconds, every thread's, to the microsecond
/// (`getrusage`; `/proc/self/stat` counts in 10 ms ticks, too coarse for a phase of a second).
#[cfg(unix)]
pub(super) fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the `rusage` it is given and reads nothing else; the value is
    // read only when it reports success.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// 0 where there is no `getrusage`.
#[cfg(not(unix))]
pub(super) fn cpu_seconds() -> f64 {
    0.0
}
