//! The state a pool shares with its workers: the queue, the shutdown flags, the sleepers and
//! the counters; and the workers' loop.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::CachePadded;

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
    /// One set per worker, plus one for jobs run by helping threads and shutdown drains.
    counters: Box<[CachePadded<WorkerCounters>]>,
}

impl Registry {
    pub(super) fn new(workers: usize) -> Self {
        Registry {
            injector: Injector::new(),
            shutdown: AtomicBool::new(false),
            workers_exited: AtomicBool::new(false),
            sleep: Sleep::new(),
            submitted: CachePadded::new(AtomicU64::new(0)),
            counters: (0..=workers).map(|_| CachePadded::default()).collect(),
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
        self.counters
            .last()
            .expect("the counters include the overflow set")
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

    /// Marks the workers as joined: from now on a late push drains its own job.
    pub(super) fn workers_exited(&self) {
        self.workers_exited.store(true, Ordering::SeqCst);
    }

    pub(super) fn stats(&self) -> Stats {
        counters::stats(&self.counters, self.submitted.load(Ordering::Relaxed))
    }

    /// While `done()` is false and the deadline has not passed, runs queued jobs on the
    /// calling thread, counted as worker `index`'s. Returns when there is nothing left.
    fn help_until(&self, index: usize, done: &dyn Fn() -> bool, deadline: Option<Instant>) {
        while !done() && deadline.is_none_or(|d| Instant::now() < d) {
            match self.steal() {
                Some(job) => job.run_timed(&self.counters[index]),
                None => return,
            }
        }
    }
}

/// A worker's life: register as the thread's helper for blocked futures, then run jobs,
/// spin briefly when the queue is empty, park, until shutdown leaves the queue empty.
pub(super) fn worker_loop(registry: Arc<Registry>, index: usize) {
    let helping = Arc::clone(&registry);
    let _helper = future::register_helper(Rc::new(move |done: &dyn Fn() -> bool, deadline| {
        helping.help_until(index, done, deadline);
    }));
    let counters = &registry.counters[index];
    let mut busy = BusyTimer::default();
    loop {
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
        while registry.injector.is_empty() && idle_since.elapsed() < SPIN_BEFORE_PARK {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        if registry.injector.is_empty() {
            registry
                .sleep
                .park(|| !registry.injector.is_empty() || registry.shutdown.load(Ordering::SeqCst));
        }
    }
}
