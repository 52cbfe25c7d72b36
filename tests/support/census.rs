//! What this process holds right now, read from `/proc` with `procfs`: open file descriptors,
//! threads, child processes and resident memory. Leak checks compare two censuses; the
//! process-pool tests use it to prove that no worker outlives its pool.
//!
//! Everything returns `None` where `/proc` is not available, so that callers skip a check
//! explicitly instead of passing it vacuously.

use std::fmt;

/// The resources this process holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Open file descriptors (`/proc/self/fd`).
    pub fds: usize,
    /// Threads (`/proc/self/task`).
    pub threads: usize,
    /// Child processes, running or zombie (every process whose parent is this one).
    pub children: usize,
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
}

impl Census {
    /// Counts now; `None` without `/proc`.
    pub fn take() -> Option<Census> {
        imp::take()
    }
}

impl fmt::Display for Census {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fds, {} threads, {} children, {:.1} MiB resident",
            self.fds,
            self.threads,
            self.children,
            self.rss_bytes as f64 / f64::from(1 << 20)
        )
    }
}

/// Pids of this process's children, running or zombie; `None` without `/proc`.
pub fn children() -> Option<Vec<u32>> {
    imp::children()
}

/// Whether `pid` is a live process; a zombie waiting to be reaped counts as dead. `None`
/// without `/proc`.
pub fn is_alive(pid: u32) -> Option<bool> {
    imp::is_alive(pid)
}

#[cfg(target_os = "linux")]
mod imp {
    use procfs::process::{ProcState, Process, all_processes};

    use super::Census;

    pub(super) fn take() -> Option<Census> {
        let me = Process::myself().ok()?;
        Some(Census {
            fds: me.fd_count().ok()?,
            threads: me.tasks().ok()?.count(),
            children: children()?.len(),
            // `VmRSS` is in kibibytes.
            rss_bytes: me.status().ok()?.vmrss? * 1024,
        })
    }

    pub(super) fn children() -> Option<Vec<u32>> {
        let me = std::process::id() as i32;
        let pids = all_processes()
            .ok()?
            // A process may exit between listing and reading; it is no child of ours then.
            .filter_map(|process| process.ok()?.stat().ok())
            .filter(|stat| stat.ppid == me)
            .map(|stat| stat.pid as u32)
            .collect();
        Some(pids)
    }

    pub(super) fn is_alive(pid: u32) -> Option<bool> {
        // Tell "no /proc" apart from "no such process".
        Process::myself().ok()?;
        let state = Process::new(pid as i32)
            .and_then(|process| process.stat())
            .ok()
            .and_then(|stat| stat.state().ok());
        Some(state.is_some_and(|state| !matches!(state, ProcState::Zombie | ProcState::Dead)))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Census;

    pub(super) fn take() -> Option<Census> {
        None
    }

    pub(super) fn children() -> Option<Vec<u32>> {
        None
    }

    pub(super) fn is_alive(_pid: u32) -> Option<bool> {
        None
    }
}
