//! The pilot's clocks: this thread's CPU time, and the time it spent runnable but waiting
//! for a CPU.

use std::time::Duration;

/// This thread's run-queue delay, read from `/proc/thread-self/schedstat` (the second of its
/// three numbers, in nanoseconds), through a file kept open so that a reading costs one
/// `pread`. Without the file (not Linux, or a kernel without scheduler statistics) every
/// reading is `None`. It must be read on the thread that opened it.
pub(super) struct RunQueue {
    #[cfg(target_os = "linux")]
    file: Option<std::fs::File>,
}

impl RunQueue {
    #[cfg(target_os = "linux")]
    pub(super) fn open() -> Self {
        RunQueue {
            file: std::fs::File::open("/proc/thread-self/schedstat").ok(),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn open() -> Self {
        RunQueue {}
    }

    /// Total time this thread has waited on a run queue so far.
    #[cfg(target_os = "linux")]
    pub(super) fn delay(&self) -> Option<Duration> {
        use std::os::unix::fs::FileExt;
        let mut buffer = [0_u8; 96];
        let read = self.file.as_ref()?.read_at(&mut buffer, 0).ok()?;
        let text = std::str::from_utf8(&buffer[..read]).ok()?;
        let nanos: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn delay(&self) -> Option<Duration> {
        None
    }
}

#[cfg(unix)]
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and CLOCK_THREAD_CPUTIME_ID is a clock
    // every supported Unix provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    (rc == 0).then(|| Duration::new(secs, nanos))
}

#[cfg(not(unix))]
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    None
}
