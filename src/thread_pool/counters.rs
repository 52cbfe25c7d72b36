//! Per-worker task counters and the busy-time bookkeeping that keeps clock reads off the hot
//! path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Stats;

/// Tasks after which a busy worker folds its running busy interval into the counters, so
/// `stats` stays current under continuous load.
const BUSY_FLUSH_TASKS: u32 = 64;

/// One task in this many is timestamped on submission to measure queue wait, and the total
/// is scaled to every task that started. A clock read costs ~50 ns on a VM, as much as the
/// rest of submitting a no-op task, and the estimate converges within a few thousand tasks.
pub(super) const QUEUE_WAIT_SAMPLING: u64 = 64;

#[derive(Default)]
pub(super) struct WorkerCounters {
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    busy_nanos: AtomicU64,
    /// Queue wait of the sampled tasks that started; see [`QUEUE_WAIT_SAMPLING`].
    queue_wait_nanos: AtomicU64,
    queue_wait_samples: AtomicU64,
}

impl WorkerCounters {
    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub(super) fn add_busy(&self, busy: Duration) {
        Self::add(&self.busy_nanos, nanos(busy));
    }

    pub(super) fn count_cancelled(&self) {
        Self::add(&self.cancelled, 1);
    }

    pub(super) fn sample_queue_wait(&self, enqueued: Instant) {
        Self::add(&self.queue_wait_nanos, nanos(enqueued.elapsed()));
        Self::add(&self.queue_wait_samples, 1);
    }

    pub(super) fn count_outcome(&self, ok: bool) {
        Self::add(if ok { &self.completed } else { &self.failed }, 1);
    }
}

/// Folds every worker's counters into the pool's [`Stats`].
pub(super) fn stats<'c>(
    counters: impl Iterator<Item = &'c WorkerCounters> + Clone,
    submitted: u64,
) -> Stats {
    let sum = |field: fn(&WorkerCounters) -> &AtomicU64| -> u64 {
        counters
            .clone()
            .map(|c| field(c).load(Ordering::Relaxed))
            .sum()
    };
    let (completed, failed) = (sum(|c| &c.completed), sum(|c| &c.failed));
    let samples = sum(|c| &c.queue_wait_samples);
    let sampled_wait = sum(|c| &c.queue_wait_nanos) as f64;
    let queue_wait = if samples == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos((sampled_wait * (completed + failed) as f64 / samples as f64) as u64)
    };
    Stats {
        submitted,
        completed,
        failed,
        cancelled: sum(|c| &c.cancelled),
        busy: Duration::from_nanos(sum(|c| &c.busy_nanos)),
        queue_wait,
        ..Stats::default()
    }
}

/// A worker's busy time without a clock read per task: a busy stretch runs from the start of
/// its first task until the worker finds the queue empty, so only those two moments (and a
/// flush every [`BUSY_FLUSH_TASKS`] tasks) read the clock. A read costs ~50 ns on a VM, as
/// much as running a no-op task.
#[derive(Default)]
pub(super) struct BusyTimer {
    since: Option<Instant>,
    tasks: u32,
}

impl BusyTimer {
    pub(super) fn task_starts(&mut self, counters: &WorkerCounters) {
        match self.since {
            Some(since) if self.tasks >= BUSY_FLUSH_TASKS => {
                let now = Instant::now();
                counters.add_busy(now - since);
                self.since = Some(now);
                self.tasks = 0;
            }
            Some(_) => {}
            None => self.since = Some(Instant::now()),
        }
        self.tasks += 1;
    }

    pub(super) fn idle(&mut self, counters: &WorkerCounters) {
        if let Some(since) = self.since.take() {
            counters.add_busy(since.elapsed());
            self.tasks = 0;
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
