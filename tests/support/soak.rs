//! The soak: many tasks on a `ThreadPool` and a `ProcessPool` at once, mixing results, panics,
//! cancellations, futures dropped unobserved, per-task timeouts and workers killed with
//! `SIGKILL`. Every future must resolve exactly once, with an outcome its task allows.
//!
//! Exactly once is counted twice: a done-callback on each future adds one to that future's
//! slot, with the outcome it saw, and `result()` records what it returned. After the pools
//! have shut down, every slot must hold one callback whose outcome matches the result (for a
//! dropped future, one callback with an allowed outcome).
//!
//! The same code runs the short version in the test suite and the long one in
//! `examples/soak.rs`; only the [`Config`] differs.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use parexec::{Error, Executor, Future, ProcessPool, Stats, ThreadPool};
use serde::{Deserialize, Serialize};

use crate::deliberate;

/// Tasks submitted before their results are collected; bounds the futures alive at once.
const BATCH: usize = 2_000;
/// Share of tasks that panic, of futures cancelled right after submission, and of futures
/// dropped unobserved right after submission, in percent.
const PANIC_PERCENT: u32 = 1;
const CANCEL_PERCENT: u32 = 2;
const ABANDON_PERCENT: u32 = 1;
/// Violations kept word for word; the rest are only counted.
const MAX_REPORTED: usize = 20;
/// A stalled task sleeps this long; the process pool's timeout kills it long before.
const STALL: Duration = Duration::from_secs(600);
/// Process tasks per worker kill, and the most stalled tasks (each one costs a worker a
/// whole `task_timeout`).
const TASKS_PER_KILL: u64 = 2_500;
const MAX_STALLS: u64 = 12;
/// Workers per pool.
const WORKERS: usize = 2;

/// What one soak run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tasks on the thread pool.
    pub thread_tasks: u64,
    /// Tasks on the process pool.
    pub process_tasks: u64,
    /// Process workers killed with `SIGKILL`, at random points of the submission.
    pub kills: u64,
    /// Process tasks that never finish on their own, so that the pool's timeout ends them.
    pub stalls: u64,
    /// The process pool's `task_timeout`: far above any regular task, even on a loaded
    /// machine, so that only stalled tasks reach it.
    pub task_timeout: Duration,
    /// Seeds the mix, so a failing run can be repeated.
    pub seed: u64,
    /// Stop submitting new batches after this (the run still checks what it submitted).
    pub time_budget: Duration,
    /// Print a progress line after every tenth of the tasks.
    pub progress: bool,
}

impl Config {
    /// `tasks` in all, half of them on the process pool, with one kill per 2,500
    /// process tasks (at least 3) and one more stall than kills (at most 12).
    pub fn total(tasks: u64, seed: u64) -> Config {
        let process_tasks = tasks / 2;
        let kills = (process_tasks / TASKS_PER_KILL).max(3);
        Config {
            thread_tasks: tasks - process_tasks,
            process_tasks,
            kills,
            stalls: (kills + 1).min(MAX_STALLS),
            task_timeout: Duration::from_secs(1),
            seed,
            time_budget: Duration::from_secs(240),
            progress: false,
        }
    }
}

/// One soak task. Plain data and a plain `fn`, so it runs on either pool.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Task {
    /// Returns [`expected`]`(x)`.
    Value(u64),
    /// Panics with a deliberate panic's message, ending in `x`.
    Panic(u64),
    /// Sleeps until the pool's timeout kills its worker.
    Stall,
}

fn expected(x: u64) -> u64 {
    x.rotate_left(7) ^ 0x5eed
}

/// The task function both pools run.
pub fn run_task(task: Task) -> u64 {
    match task {
        Task::Value(x) => expected(x),
        Task::Panic(x) => deliberate::panic_with(x),
        Task::Stall => {
            std::thread::sleep(STALL);
            0
        }
    }
}

/// How a future resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    /// The right value.
    Value,
    /// `Error::Panicked` with the task's own message.
    Panicked,
    /// `Error::Cancelled`.
    Cancelled,
    /// `Error::Timeout`.
    Timeout,
    /// `Error::WorkerDied`.
    WorkerDied,
    /// Anything else, including a wrong value or panic message.
    Unexpected,
}

const OUTCOMES: [Outcome; 6] = [
    Outcome::Value,
    Outcome::Panicked,
    Outcome::Cancelled,
    Outcome::Timeout,
    Outcome::WorkerDied,
    Outcome::Unexpected,
];

impl Outcome {
    fn of(task: Task, result: Result<&u64, &Error>) -> Outcome {
        match (task, result) {
            (Task::Value(x), Ok(&v)) if v == expected(x) => Outcome::Value,
            (Task::Panic(x), Err(Error::Panicked { message, .. }))
                if *message == format!("{} {x}", deliberate::PREFIX) =>
            {
                Outcome::Panicked
            }
            (_, Err(Error::Cancelled)) => Outcome::Cancelled,
            (_, Err(Error::Timeout)) => Outcome::Timeout,
            (_, Err(Error::WorkerDied { .. })) => Outcome::WorkerDied,
            _ => Outcome::Unexpected,
        }
    }

    /// Whether a task may end this way, given whether `cancel()` returned true for it.
    fn allowed(self, task: Task, cancelled: bool, processes: bool) -> bool {
        match (self, task) {
            (Outcome::Cancelled, _) => cancelled,
            _ if cancelled => false,
            (Outcome::WorkerDied, _) => processes,
            (Outcome::Value, Task::Value(_)) | (Outcome::Panicked, Task::Panic(_)) => true,
            (Outcome::Timeout, Task::Stall) => true,
            _ => false,
        }
    }
}

/// One callback adds this to its future's slot, plus the outcome it saw.
const CALLED: u16 = 0x100;

/// What the submitter does with a future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Waits for its result.
    Await,
    /// Calls `cancel()` at once, then waits for its result.
    Cancel,
    /// Drops it at once: only its done-callback sees the outcome.
    Abandon,
}

/// What one pool's part of the soak saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Tasks submitted.
    pub submitted: u64,
    /// Results per outcome, indexed by `Outcome as usize`.
    pub outcomes: [u64; 6],
    /// `SIGKILL`s delivered, each to a different worker.
    pub kills: u64,
    /// Stalled tasks submitted.
    pub stalls: u64,
    /// Futures dropped unobserved; their outcomes are counted from their callbacks.
    pub abandoned: u64,
    /// The pool's statistics after it shut down.
    pub stats: Stats,
    /// Broken promises: wrong outcomes, missing or repeated callbacks, statistics that
    /// disagree with the results. Empty when the run passed; the first few in words.
    pub violations: Vec<String>,
    /// Violations beyond those kept in words.
    pub unreported: u64,
}

impl Tally {
    fn violate(&mut self, violation: String) {
        if self.violations.len() < MAX_REPORTED {
            self.violations.push(violation);
        } else {
            self.unreported += 1;
        }
    }

    /// The number of results that ended as `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize]
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The thread pool's part.
    pub threads: Tally,
    /// The process pool's part.
    pub processes: Tally,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Every violation of either pool.
    pub fn violations(&self) -> Vec<String> {
        let mut all = Vec::new();
        for (pool, tally) in [("threads", &self.threads), ("processes", &self.processes)] {
            all.extend(tally.violations.iter().map(|v| format!("{pool}: {v}")));
            if tally.unreported > 0 {
                all.push(format!("{pool}: {} more violations", tally.unreported));
            }
        }
        all
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<12} {:>10} {:>10}", "outcome", "threads", "processes")?;
        for outcome in OUTCOMES {
            let label = format!("{outcome:?}");
            let (t, p) = (self.threads.count(outcome), self.processes.count(outcome));
            writeln!(f, "{label:<12} {t:>10} {p:>10}")?;
        }
        let (t, p) = (&self.threads, &self.processes);
        writeln!(
            f,
            "{:<12} {:>10} {:>10}",
            "submitted", t.submitted, p.submitted
        )?;
        writeln!(f, "{:<12} {:>10} {:>10}", "kills", t.kills, p.kills)?;
        writeln!(f, "{:<12} {:>10} {:>10}", "stalls", t.stalls, p.stalls)?;
        writeln!(
            f,
            "{:<12} {:>10} {:>10}",
            "abandoned", t.abandoned, p.abandoned
        )?;
        let restarts = (t.stats.worker_restarts, p.stats.worker_restarts);
        writeln!(
            f,
            "{:<12} {:>10} {:>10}",
            "replaced", restarts.0, restarts.1
        )?;
        write!(f, "in {:.1} s", self.elapsed.as_secs_f64())
    }
}

/// Runs both pools' parts at once. Call `parexec::init()` first thing in `main`.
///
/// # Errors
///
/// If a pool cannot start.
pub fn run(config: &Config) -> Result<Report, Error> {
    let started = Instant::now();
    let deadline = started + config.time_budget;
    deliberate::silence();
    let threads = ThreadPool::new(WORKERS)?;
    let processes = ProcessPool::builder()
        .workers(WORKERS)
        .task_timeout(config.task_timeout)
        .initializer(deliberate::silence)
        .build()?;
    let (threads, processes) = std::thread::scope(|scope| {
        let on_threads = scope.spawn(|| {
            let part = Part::new(config, config.thread_tasks, 0, 0, 1);
            part.run(&threads, None, deadline)
        });
        let part = Part::new(config, config.process_tasks, config.kills, config.stalls, 2);
        let processes = part.run(&processes, Some(&processes), deadline);
        (on_threads.join().expect("the thread-pool part"), processes)
    });
    Ok(Report {
        threads,
        processes,
        elapsed: started.elapsed(),
    })
}

/// One pool's tasks, drawn up front from the seed.
struct Part<'a> {
    config: &'a Config,
    tasks: Vec<Task>,
    fates: Vec<Fate>,
    kill_after: HashSet<usize>,
}

impl<'a> Part<'a> {
    fn new(config: &'a Config, n: u64, kills: u64, stalls: u64, stream: u64) -> Part<'a> {
        let mut rng = fastrand::Rng::with_seed(config.seed ^ stream.rotate_right(1));
        let n = n as usize;
        let stall_at: HashSet<usize> = (0..stalls).map(|_| rng.usize(..n.max(1))).collect();
        let kill_after = (0..kills).map(|_| rng.usize(..n.max(1))).collect();
        let mut tasks = Vec::with_capacity(n);
        let mut fates = Vec::with_capacity(n);
        for i in 0..n {
            let x = rng.u64(..);
            let task = if stall_at.contains(&i) {
                Task::Stall
            } else if rng.u32(..100) < PANIC_PERCENT {
                Task::Panic(x)
            } else {
                Task::Value(x)
            };
            tasks.push(task);
            // A stalled task is always awaited, so that timeouts certainly happen and are seen.
            let draw = rng.u32(..100);
            fates.push(match task {
                Task::Stall => Fate::Await,
                _ if draw < CANCEL_PERCENT => Fate::Cancel,
                _ if draw < CANCEL_PERCENT + ABANDON_PERCENT => Fate::Abandon,
                _ => Fate::Await,
            });
        }
        Part {
            config,
            tasks,
            fates,
            kill_after,
        }
    }

    /// Submits every task in batches, killing a worker of `victims` at the chosen points,
    /// checks each result, then shuts the pool down and checks the callbacks and statistics.
    fn run<E: Executor>(
        &self,
        pool: &E,
        victims: Option<&ProcessPool>,
        deadline: Instant,
    ) -> Tally {
        let n = self.tasks.len();
        let slots: Arc<Vec<AtomicU16>> = Arc::new((0..n).map(|_| AtomicU16::new(0)).collect());
        let mut results = vec![None; n];
        let mut tally = Tally::default();
        let mut killed = HashSet::new();
        let mut rng = fastrand::Rng::with_seed(self.config.seed);
        let mut next_report = n / 10;
        for start in (0..n).step_by(BATCH) {
            if Instant::now() > deadline {
                tally.violate(format!("time budget reached after {start} tasks"));
                break;
            }
            let batch: Vec<(usize, Option<Future<u64>>, bool)> = (start..(start + BATCH).min(n))
                .map(|i| {
                    let task = self.tasks[i];
                    let future = pool.submit(run_task, task);
                    let slots = Arc::clone(&slots);
                    future.add_done_callback(move |result| {
                        let seen = Outcome::of(task, result) as u16;
                        slots[i].fetch_add(CALLED + seen, Ordering::Relaxed);
                    });
                    let cancelled = self.fates[i] == Fate::Cancel && future.cancel();
                    let kept = (self.fates[i] != Fate::Abandon).then_some(future);
                    if let (Some(pool), true) = (victims, self.kill_after.contains(&i)) {
                        tally.kills += kill_one_worker(pool, &mut killed, &mut rng);
                    }
                    (i, kept, cancelled)
                })
                .collect();
            tally.submitted += batch.len() as u64;
            for (i, future, cancelled) in batch {
                let task = self.tasks[i];
                tally.stalls += u64::from(matches!(task, Task::Stall));
                let Some(future) = future else { continue };
                let outcome = Outcome::of(task, future.result().as_ref());
                tally.outcomes[outcome as usize] += 1;
                if !outcome.allowed(task, cancelled, victims.is_some()) {
                    tally.violate(format!(
                        "task {i} ({task:?}, cancel() returned {cancelled}) ended as {outcome:?}"
                    ));
                }
                results[i] = Some(outcome);
            }
            if self.config.progress && start + BATCH >= next_report {
                println!("  {} of {n} tasks on {:?}", start + BATCH, pool.kind());
                next_report += n / 10;
            }
        }
        if let Some(pool) = victims {
            wait_for_replacements(pool, &killed, &mut tally);
        }
        pool.shutdown();
        tally.stats = pool.stats();
        self.check_callbacks(&slots, &results, &mut tally, victims.is_some());
        check_stats(&mut tally, victims.is_some());
        tally
    }

    /// Every future's callback ran exactly once and saw what `result()` returned, or, for an
    /// abandoned future, an outcome its task allows (counted in the tally).
    fn check_callbacks(
        &self,
        slots: &[AtomicU16],
        results: &[Option<Outcome>],
        tally: &mut Tally,
        processes: bool,
    ) {
        let submitted = tally.submitted as usize;
        for (i, (slot, result)) in slots.iter().zip(results).enumerate().take(submitted) {
            let slot = slot.load(Ordering::Relaxed);
            let (calls, seen) = (slot / CALLED, OUTCOMES.get(usize::from(slot % CALLED)));
            let task = self.tasks[i];
            match (result, seen) {
                (Some(result), Some(seen)) if calls == 1 && seen == result => {}
                (None, Some(&seen)) if calls == 1 && seen.allowed(task, false, processes) => {
                    tally.abandoned += 1;
                    tally.outcomes[seen as usize] += 1;
                }
                _ => tally.violate(format!(
                    "task {i} ({task:?}, {:?}): result {result:?}, {calls} callback(s), \
                     outcome codes adding up to {}",
                    self.fates[i],
                    slot % CALLED
                )),
            }
        }
    }
}

/// Sends `SIGKILL` to a worker not killed before; returns how many kills were delivered.
fn kill_one_worker(pool: &ProcessPool, killed: &mut HashSet<u32>, rng: &mut fastrand::Rng) -> u64 {
    let candidates: Vec<u32> = pool
        .worker_pids()
        .into_iter()
        .filter(|pid| !killed.contains(pid))
        .collect();
    let Some(&victim) = candidates.get(rng.usize(..candidates.len().max(1))) else {
        return 0;
    };
    // SAFETY: sending a signal to another process has no memory effects in this one.
    let delivered = unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) } == 0;
    if delivered {
        killed.insert(victim);
    }
    u64::from(delivered)
}

/// Waits until every worker slot holds a live replacement, so that `worker_restarts` has
/// counted every death. Bounded only so that a regression fails instead of hanging.
fn wait_for_replacements(pool: &ProcessPool, killed: &HashSet<u32>, tally: &mut Tally) {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let pids = pool.worker_pids();
        if pids.len() == pool.workers() && !pids.iter().any(|pid| killed.contains(pid)) {
            return;
        }
        if Instant::now() > give_up {
            tally.violate(format!("killed workers not replaced: {pids:?}"));
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pool's statistics agree with the results, and every death was replaced.
fn check_stats(tally: &mut Tally, processes: bool) {
    let stats = tally.stats;
    let failed = tally.count(Outcome::Panicked)
        + tally.count(Outcome::Timeout)
        + tally.count(Outcome::WorkerDied);
    let counted = [
        ("submitted", stats.submitted, tally.submitted),
        ("completed", stats.completed, tally.count(Outcome::Value)),
        ("failed", stats.failed, failed),
        (
            "cancelled",
            stats.cancelled,
            tally.count(Outcome::Cancelled),
        ),
    ];
    for (name, stat, seen) in counted {
        if stat != seen {
            tally.violate(format!("stats.{name} = {stat}, results say {seen}"));
        }
    }
    if processes {
        // A timeout and a kill each end one worker, and each death fails at most the task the
        // worker was running; a kill may hit a worker the timeout is already ending.
        let timeouts = tally.count(Outcome::Timeout);
        let deaths_seen = timeouts + tally.count(Outcome::WorkerDied);
        let restarts = stats.worker_restarts;
        if restarts < tally.kills.max(deaths_seen) || restarts > tally.kills + timeouts {
            tally.violate(format!(
                "{restarts} workers replaced after {} kills, {timeouts} timeouts and {} \
                 deaths failing a task",
                tally.kills,
                tally.count(Outcome::WorkerDied)
            ));
        }
    }
}
