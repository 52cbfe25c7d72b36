//! The leak check: counts this process's file descriptors, threads, child processes and
//! resident memory before and after many create/use/drop cycles of each pool, and around a
//! live pool that runs panicking tasks and loses workers to `SIGKILL`.
//!
//! Nothing may grow beyond a small constant, [`SLACK`], which does not depend on the number
//! of cycles: a resource lost in as few as `SLACK + 1` cycles shows, out of 100 in the short
//! run and 1,000 in the long one. The constant exists for one-off lazy initialisation that
//! the warm-up cannot reach, not for leaks.
//! Child processes have no slack at all: with no pool alive, any child is a worker that
//! outlived its pool (a zombie counts).
//!
//! Resources are released asynchronously (an exiting thread leaves `/proc/self/task` a moment
//! after `join` returns), so each comparison polls until the counts are back within bounds,
//! and fails only if they are still above after [`SETTLE`].
//!
//! The same code runs the short version in the test suite and the long one in
//! `examples/leak_check.rs`; only the [`Config`] differs.

use std::fmt;
use std::time::{Duration, Instant};

use parexec::{Error, Executor, ProcessPool, ThreadPool};

use crate::census::{self, Census};
use crate::deliberate;

/// How far file-descriptor and thread counts may end above the baseline.
pub const SLACK: usize = 2;
/// How long released resources may take to disappear from `/proc`.
const SETTLE: Duration = Duration::from_secs(10);
/// Workers per pool.
const WORKERS: usize = 2;

/// What one leak check does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Create/use/drop cycles of each pool.
    pub cycles: usize,
    /// Panicking tasks on each live pool.
    pub panics: usize,
    /// Process workers killed (one at a time, each replaced before the next).
    pub kills: usize,
    /// Largest growth of the resident set allowed over the whole run, if checked.
    pub rss_growth_limit: Option<u64>,
    /// Print each step as it finishes.
    pub progress: bool,
}

/// One comparison of two censuses.
#[derive(Debug, Clone)]
pub struct Step {
    /// What ran between them.
    pub name: String,
    /// The census to compare against.
    pub before: Census,
    /// The census after the step (once settled, or when settling gave up).
    pub after: Census,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, a) = (&self.before, &self.after);
        let rss_mib = (a.rss_bytes as f64 - b.rss_bytes as f64) / f64::from(1 << 20);
        write!(
            f,
            "{:<46} fds {:>3} -> {:<3} threads {:>2} -> {:<2} children {} -> {}  rss {:+.1} MiB",
            self.name, b.fds, a.fds, b.threads, a.threads, b.children, a.children, rss_mib
        )
    }
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every comparison, in order.
    pub steps: Vec<Step>,
    /// Counts that grew beyond their bound. Empty when the run passed.
    pub violations: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

/// Runs the check; `None` where `/proc` is not available. Call `parexec::init()` first thing
/// in `main`, and run nothing else in the process meanwhile.
///
/// # Errors
///
/// If a pool cannot start or a task of the warm-up fails.
pub fn run(config: &Config) -> Result<Option<Report>, Error> {
    warm_up()?;
    let Some(baseline) = Census::take() else {
        return Ok(None);
    };
    let mut report = Report::default();
    let cycles = config.cycles;
    for _ in 0..cycles {
        use_pool(&ThreadPool::new(WORKERS)?)?;
    }
    compare(
        &mut report,
        config,
        format!("{cycles} thread pools"),
        baseline,
    );
    for _ in 0..cycles {
        use_pool(&process_pool()?)?;
    }
    compare(
        &mut report,
        config,
        format!("{cycles} process pools"),
        baseline,
    );
    {
        let threads = ThreadPool::new(WORKERS)?;
        let processes = process_pool()?;
        use_pool(&threads)?;
        use_pool(&processes)?;
        let live = Census::take().unwrap_or(baseline);
        let panics = config.panics;
        panic_many(&threads, panics);
        panic_many(&processes, panics);
        let name = format!("{panics} panics on each live pool");
        compare(&mut report, config, name, live);
        let victims = kill_workers(&processes, config.kills);
        use_pool(&processes)?;
        let name = format!("{} kills on the live process pool", config.kills);
        compare(&mut report, config, name, live);
        // Killed workers are gone for good, not left as zombies.
        let lingering: Vec<u32> = victims
            .into_iter()
            .filter(|&pid| census::is_alive(pid) != Some(false))
            .collect();
        if !lingering.is_empty() {
            report
                .violations
                .push(format!("killed workers still alive: {lingering:?}"));
        }
    }
    compare(&mut report, config, "all pools dropped".into(), baseline);
    if let (Some(limit), Some(last)) = (config.rss_growth_limit, report.steps.last()) {
        let growth = last.after.rss_bytes.saturating_sub(baseline.rss_bytes);
        if growth > limit {
            report.violations.push(format!(
                "resident set grew by {growth} bytes, more than {limit}"
            ));
        }
    }
    Ok(Some(report))
}

/// One cycle of each pool and each fault, so that one-off initialisation (panic hook, the
/// first spawn, the first replacement) happens before the baseline.
fn warm_up() -> Result<(), Error> {
    deliberate::silence();
    let threads = ThreadPool::new(WORKERS)?;
    let processes = process_pool()?;
    use_pool(&threads)?;
    use_pool(&processes)?;
    panic_many(&threads, 1);
    panic_many(&processes, 1);
    kill_workers(&processes, 1);
    use_pool(&processes)
}

fn process_pool() -> Result<ProcessPool, Error> {
    ProcessPool::builder()
        .workers(WORKERS)
        .initializer(deliberate::silence)
        .build()
}

fn double(x: u64) -> u64 {
    x * 2
}

fn panics(x: u64) -> u64 {
    deliberate::panic_with(x)
}

/// Submits, maps and collects on `pool`, checking the results.
fn use_pool<E: Executor>(pool: &E) -> Result<(), Error> {
    let futures: Vec<_> = (0..8).map(|x| pool.submit(double, x)).collect();
    for (x, future) in (0..8).zip(futures) {
        assert_eq!(future.result()?, x * 2);
    }
    let sum: u64 = pool.map(double, 0..100).sum::<Result<u64, Error>>()?;
    assert_eq!(sum, 9_900);
    Ok(())
}

fn panic_many<E: Executor>(pool: &E, n: usize) {
    let futures: Vec<_> = (0..n as u64).map(|x| pool.submit(panics, x)).collect();
    for future in futures {
        assert!(matches!(future.result(), Err(Error::Panicked { .. })));
    }
}

/// Kills `n` workers one after the other, each once its predecessor's replacement serves,
/// and returns once the last one is replaced too; returns the pids killed. Waiting is bounded
/// only so that a regression fails, not hangs.
fn kill_workers(pool: &ProcessPool, n: usize) -> Vec<u32> {
    let mut victims = Vec::with_capacity(n);
    for _ in 0..n {
        let victim = wait_for_workers(pool, &victims)[0];
        // SAFETY: sending a signal to another process has no memory effects in this one.
        let delivered = unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) } == 0;
        assert!(delivered, "worker {victim} could not be killed");
        victims.push(victim);
    }
    wait_for_workers(pool, &victims);
    victims
}

/// Waits until the pool has all its workers and none of them is in `killed`; returns them.
fn wait_for_workers(pool: &ProcessPool, killed: &[u32]) -> Vec<u32> {
    let give_up = Instant::now() + SETTLE;
    loop {
        let pids = pool.worker_pids();
        if pids.len() == WORKERS && !pids.iter().any(|pid| killed.contains(pid)) {
            return pids;
        }
        assert!(
            Instant::now() < give_up,
            "killed workers not replaced: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Records a step, polling until fds and threads are within [`SLACK`] of `before` and
/// children at most equal, or until [`SETTLE`] has passed.
fn compare(report: &mut Report, config: &Config, name: String, before: Census) {
    let within = |c: &Census| {
        c.fds <= before.fds + SLACK
            && c.threads <= before.threads + SLACK
            && c.children <= before.children
    };
    let give_up = Instant::now() + SETTLE;
    let after = loop {
        let now = Census::take().unwrap_or(before);
        if within(&now) || Instant::now() > give_up {
            break now;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !within(&after) {
        let children = census::children().unwrap_or_default();
        report.violations.push(format!(
            "{name}: grew from {before} to {after} (bound: +{SLACK} fds, +{SLACK} threads, \
             no more children); children now: {children:?}"
        ));
    }
    let step = Step {
        name,
        before,
        after,
    };
    if config.progress {
        println!("{step}");
    }
    report.steps.push(step);
}
