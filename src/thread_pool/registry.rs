//! The state a pool shares with its workers: the queue, the shutdown flags, the sleepers and
//! the counters; and the workers' loop.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::counters::{self, BusyTimer, QUEUE_WAIT_SAMPLING, WorkerCounters};
use super::job::Job;
use super::sleep::{SPIN_BEFORE_PARK, Sleep};
use crate::Stats;
use crate::future;

pub(super) struct Registry {
    injector: Injector<Job>,
    pub(super) shutdown: AtomicBool,
    /// Set once every worker has been joined; later jobs can only be drained.
    workers_exited: AtomicBool,
    sleep: Sleep,
    submitted: CachePadded<AtomicU64>,
    /// Workers asked to exit after their current job (a shrinking `set_workers`). Read once
    /// per job, written only by a resize and by the workers that exit.
    retiring: CachePadded<AtomicUsize>,
    /// Workers started (enlisted) and not yet out of their loop.
    live: AtomicUsize,
    /// One set per worker ever started (kept after it exits, for the totals).
    counters: Mutex<Vec<Arc<CachePadded<WorkerCounters>>>>,
    /// Jobs run by helping threads, consumers and shutdown drains.
    overflow: CachePadded<WorkerCounters>,
}

impl Registry {
    pub(super) fn new() -> Self {
        Registry {
            injector: Injector::new(),
            shutdown: AtomicBool::new(false),
            workers_exited: AtomicBool::new(false),
            sleep: Sleep::new(),
            submitted: CachePadded::new(AtomicU64::new(0)),
            retiring: CachePadded::new(AtomicUsize::new(0)),
            live: AtomicUsize::new(0),
            counters: Mutex::default(),
            overflow: CachePadded::default(),
        }
    }

    /// Whether submissions are refused.
    #[inline]
    pub(super) fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Counts a task as submitted and returns its submission time if it is sampled for queue
    /// wait. Every task job is admitted once, before it is pushed.
    #[inline]
    pub(super) fn admit(&self) -> Option<Instant> {
        let ticket = self.submitted.fetch_add(1, Ordering::Relaxed);
        (ticket % QUEUE_WAIT_SAMPLING == 0).then(Instant::now)
    }

    #[inline]
    pub(super) fn push(&self, job: Job) {
        self.injector.push(job);
        self.sleep.job_pushed();
        // A submission that raced `shutdown` past its final drain must not wait forever:
        // either that drain sees this job or this check sees that the workers are gone.
        if self.workers_exited.load(Ordering::SeqCst) {
            self.drain_unrun();
        }
    }

    fn steal(&self) -> Option<Job> {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    pub(super) fn overflow_counters(&self) -> &WorkerCounters {
        &self.overflow
    }

    /// Enlists a worker about to start (or, after its initializer, enter its loop): counts it
    /// live and returns its counters.
    pub(super) fn enlist_worker(&self) -> Arc<CachePadded<WorkerCounters>> {
        self.live.fetch_add(1, Ordering::SeqCst);
        let counters = Arc::new(CachePadded::default());
        self.counters.lock().push(Arc::clone(&counters));
        counters
    }

    /// The workers started and not yet out of their loop.
    pub(super) fn live_workers(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Asks `workers` more workers to exit once their current job is done, and wakes the
    /// sleeping ones so that idle workers exit at once.
    pub(super) fn retire(&self, workers: usize) {
        if workers == 0 {
            return;
        }
        self.retiring.fetch_add(workers, Ordering::SeqCst);
        self.sleep.wake_all();
    }

    /// Withdraws up to `workers` pending exits; returns how many were withdrawn.
    pub(super) fn unretire(&self, workers: usize) -> usize {
        let previous = self
            .retiring
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                Some(r - r.min(workers))
            })
            .unwrap_or_else(|r| r);
        previous.min(workers)
    }

    /// Claims one pending exit for the calling worker, if there is one. One relaxed load
    /// when there is none, which is the per-job cost of live resizing.
    #[inline]
    fn claim_retirement(&self) -> bool {
        self.retiring.load(Ordering::Relaxed) > 0
            && self
                .retiring
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                .is_ok()
    }

    /// Resolves every queued, unstarted job as cancelled (dropping a job abandons its task).
    pub(super) fn drain_unrun(&self) {
        let counters = self.overflow_counters();
        while let Some(job) = self.steal() {
            drop(job);
            counters.count_cancelled();
        }
    }

    pub(super) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.sleep.wake_all();
    }

    /// Marks the workers as gone: from now on a late push drains its own job.
    pub(super) fn workers_exited(&self) {
        self.workers_exited.store(true, Ordering::SeqCst);
    }

    /// Called by each worker as it leaves its loop, and for one enlisted whose thread could not
    /// be spawned. The last one out of a shut-down pool marks the workers as gone and drains
    /// what raced in after it found the queue empty: no one else may be left to, when the pool
    /// was shut down from inside one of its tasks.
    pub(super) fn worker_left(&self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 && self.is_shut_down() {
            self.workers_exited();
            self.drain_unrun();
        }
    }

    pub(super) fn stats(&self) -> Stats {
        let counters = self.counters.lock();
        let all = counters.iter().map(|c| &***c).chain([&*self.overflow]);
        Stats {
            workers: self.live_workers(),
            ..counters::stats(all, self.submitted.load(Ordering::Relaxed))
        }
    }

    /// While `done()` is false and the deadline has not passed, runs queued jobs on the
    /// calling thread, counted as worker `index`'s. Returns when there is nothing left.
    fn help_until(
        &self,
        counters: &WorkerCounters,
        done: &dyn Fn() -> bool,
        deadline: Option<Instant>,
    ) {
        while !done() && deadline.is_none_or(|d| Instant::now() < d) {
            match self.steal() {
                Some(job) => job.run_timed(counters),
                None => return,
            }
        }
    }
}

thread_local! {
    /// The registry of the pool this thread is a worker of, null on other threads. Compared
    /// by address only; a worker holds its registry, so the address is not reused meanwhile.
    static WORKER_OF: Cell<*const Registry> = const { Cell::new(std::ptr::null()) };
}

/// Whether the calling thread is one of `registry`'s workers (a task calling `shutdown`).
pub(super) fn on_worker_of(registry: &Arc<Registry>) -> bool {
    WORKER_OF.get() == Arc::as_ptr(registry)
}

/// Clears [`WORKER_OF`] when the worker's loop ends.
struct WorkerMark;

impl Drop for WorkerMark {
    fn drop(&mut self) {
        WORKER_OF.set(std::ptr::null());
    }
}

/// A worker's life: register as the thread's helper for blocked futures, then run jobs,
/// spin briefly when the queue is empty, park, until shutdown leaves the queue empty or a
/// shrinking resize retires it between two jobs.
/// The worker must have been enlisted ([`Registry::enlist_worker`]).
pub(super) fn worker_loop(registry: Arc<Registry>, counters: Arc<CachePadded<WorkerCounters>>) {
    WORKER_OF.set(Arc::as_ptr(&registry));
    let _mark = WorkerMark;
    let helping = Arc::clone(&registry);
    let helper_counters = Arc::clone(&counters);
    let _helper = future::register_helper(Rc::new(move |done: &dyn Fn() -> bool, deadline| {
        helping.help_until(&helper_counters, done, deadline);
    }));
    let counters = &**counters;
    let mut busy = BusyTimer::default();
    loop {
        if registry.claim_retirement() {
            busy.idle(counters);
            break;
        }
        if let Some(job) = registry.steal() {
            busy.task_starts(counters);
            job.run(counters);
            continue;
        }
        busy.idle(counters);
        if registry.shutdown.load(Ordering::SeqCst) {
            // Re-check after seeing the flag: a job pushed just before shutdown still runs.
            match registry.steal() {
                Some(job) => job.run_timed(counters),
                None => break,
            }
            continue;
        }
        let idle_since = Instant::now();
        // Whatever ends the spell ends the spin too: work, shutdown, or a pending exit.
        while registry.injector.is_empty()
            && !registry.shutdown.load(Ordering::Relaxed)
            && registry.retiring.load(Ordering::Relaxed) == 0
            && idle_since.elapsed() < SPIN_BEFORE_PARK
        {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        if registry.injector.is_empty() {
            registry.sleep.park(|| {
                !registry.injector.is_empty()
                    || registry.shutdown.load(Ordering::SeqCst)
                    || registry.retiring.load(Ordering::SeqCst) > 0
            });
        }
    }
    registry.worker_left();
}
