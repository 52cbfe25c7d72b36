//! loom models of the park/wake protocol: the real [`Sleep`], with loom's mutex, condition
//! variable, atomics and fences swapped in by `crate::sync`, driven the way the registry
//! drives it. The queue stands in for the injector as a counter of jobs: a push is a `SeqCst`
//! read-modify-write, emptiness a `SeqCst` load, as in `crossbeam_deque::Injector`. A lost
//! wake-up leaves a worker parked while the submitter waits for its job: loom reports the
//! deadlock. Run by `.ci/loom`.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use ::loom::sync::atomic::{AtomicBool, AtomicUsize};
use ::loom::sync::mpsc;
use ::loom::thread;

use super::Sleep;

/// What the registry shares with its workers, reduced to the parts the protocol reads.
struct Pool {
    sleep: Sleep,
    queued: AtomicUsize,
    shutdown: AtomicBool,
    ran: mpsc::Sender<()>,
}

impl Pool {
    fn new(ran: mpsc::Sender<()>) -> Arc<Self> {
        Arc::new(Pool {
            sleep: Sleep::new(),
            queued: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            ran,
        })
    }

    /// `Registry::push`.
    fn push(&self) {
        self.queued.fetch_add(1, SeqCst);
        self.sleep.job_pushed();
    }

    /// `Registry::steal`, running the job it took.
    fn run_one(&self) -> bool {
        let took = self
            .queued
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took {
            self.ran.send(()).unwrap();
        }
        took
    }

    fn is_empty(&self) -> bool {
        self.queued.load(SeqCst) == 0
    }

    /// `Registry::begin_shutdown`.
    fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        self.sleep.wake_all();
    }

    /// `worker_loop` without its clock-driven spin, which only delays parking.
    fn worker(&self) {
        loop {
            if self.run_one() {
                continue;
            }
            if self.shutdown.load(SeqCst) {
                if self.run_one() {
                    continue;
                }
                break;
            }
            if self.is_empty() {
                self.sleep
                    .park(|| !self.is_empty() || self.shutdown.load(SeqCst));
            }
        }
    }
}

/// When the main thread shuts the pool down.
#[derive(Clone, Copy)]
enum Shutdown {
    /// Once every job has run.
    AfterTheJobs,
    /// Right after pushing them, racing the workers' start: they must still run every job.
    RightAway,
}

/// `workers` workers, `jobs` jobs pushed by the main thread, then shut down as `shutdown`
/// says. The workers start unwaited for, as a pool without an initializer starts them, so
/// loom also explores jobs pushed and shutdown begun before a worker runs at all.
fn run(workers: usize, jobs: usize, shutdown: Shutdown) {
    ::loom::model(move || {
        let (ran, done) = mpsc::channel();
        let pool = Pool::new(ran);
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || pool.worker())
            })
            .collect();
        for _ in 0..jobs {
            pool.push();
        }
        if let Shutdown::AfterTheJobs = shutdown {
            for _ in 0..jobs {
                done.recv().unwrap();
            }
        }
        pool.begin_shutdown();
        for thread in threads {
            thread.join().unwrap();
        }
        if let Shutdown::RightAway = shutdown {
            // The workers are gone: a job they left unrun would block here for ever.
            for _ in 0..jobs {
                done.recv().unwrap();
            }
        }
        assert_eq!(
            pool.sleep.sleepers.load(SeqCst),
            0,
            "every sleeper accounted for"
        );
    });
}

#[test]
fn a_job_pushed_while_the_worker_parks_is_run() {
    run(1, 1, Shutdown::AfterTheJobs);
}

#[test]
fn two_jobs_pushed_while_two_workers_park_are_run() {
    run(2, 2, Shutdown::AfterTheJobs);
}

#[test]
fn shutdown_wakes_every_parked_worker() {
    run(2, 0, Shutdown::AfterTheJobs);
}

#[test]
fn jobs_queued_before_a_shutdown_that_races_the_start_all_run() {
    run(1, 2, Shutdown::RightAway);
    run(2, 1, Shutdown::RightAway);
}
