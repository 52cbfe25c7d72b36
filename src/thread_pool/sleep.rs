//! Parking idle workers and waking them; see `README.md` beside this file for the protocol.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::sync::{AtomicUsize, Condvar, Mutex, fence};

/// How long an idle worker keeps looking for work, yielding, before it parks: about what a
/// wake-up costs on a small VM (a parked worker's core goes idle, and waking it takes ~80 µs),
/// so an idle spell costs at most twice what the best choice in hindsight would have. A worker
/// still awake picks up the next job (or sees the shutdown flag) at once: no wake-up at the
/// start of the next burst of work or at the end of a short job.
pub(super) const SPIN_BEFORE_PARK: Duration = Duration::from_micros(100);

/// The sleeping workers of one pool.
pub(super) struct Sleep {
    /// Workers parked and not yet woken, changed only under `lock`. A waker takes the worker
    /// it wakes off the count, so a burst of submissions wakes each sleeper once rather than
    /// making every push a futex call while the woken worker is still being scheduled.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Sleep {
    pub(super) fn new() -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Called after a job was pushed: wakes one sleeper, if any. The fence pairs with the one
    /// in [`park`](Sleep::park) (Dekker): either the parking worker sees the job, or this
    /// sees the worker on the count.
    #[inline]
    pub(super) fn job_pushed(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            self.wake_one();
        }
    }

    /// Parks the calling worker unless `has_work()` says there may be work (or shutdown) once
    /// it is on the sleeper count.
    pub(super) fn park(&self, has_work: impl FnOnce() -> bool) {
        let mut guard = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_work() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        } else {
            // parking_lot's condvar has no spurious wake-ups: whoever wakes this worker has
            // already taken it off the count.
            self.wake.wait(&mut guard);
        }
    }

    fn wake_one(&self) {
        let _guard = self.lock.lock();
        if self.sleepers.load(Ordering::SeqCst) > 0 && self.wake.notify_one() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes every sleeper (shutdown).
    pub(super) fn wake_all(&self) {
        let _guard = self.lock.lock();
        let woken = self.wake.notify_all();
        self.sleepers.fetch_sub(woken, Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom;
