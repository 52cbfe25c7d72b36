//! The Amdahl-aware planner: measure a workload, model it, recommend a configuration and
//! explain the recommendation.
//!
//! # Design
//!
//! [`Planner`] gathers the inputs ([`Calibration`] of the machine and executors, a pilot
//! [`WorkloadProfile`], the serial part and the options) and hands them, as plain data, to the
//! cost model in `model`, whose decision becomes a [`Plan`]. A plan predicts; recorded runs
//! ([`Plan::record`]) correct it through a Universal Scalability Law fit, which from then on
//! drives its curve and decision.

mod calibration;
mod laws;
mod model;
mod pilot;
mod report;
mod run;

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

pub use calibration::Calibration;
pub use laws::{UslFit, amdahl, gustafson, imbalance_bound, karp_flatt};
pub use model::{ExecutorCosts, Machine, WorkloadProfile};

use crate::{Error, ExecutorKind, Payload, ProcessPool, ThreadPool};
use model::{CostModel, Decision, Options, Prediction};

/// A pilot waiting to run, once the planner knows whether payload sizes matter.
type PendingPilot<'a> = Box<dyn FnOnce(bool) -> Result<WorkloadProfile, Error> + 'a>;

/// Measures a workload and recommends how to run it: serially or in parallel, on threads or
/// processes, with how many workers and what chunk size. See [`Plan`] for the result.
///
/// The pilot runs items serially on the calling thread; a panic in one of them is caught and
/// its time still counts (the same item fails again, alone, when the plan runs it).
///
/// ```
/// use parexec::Planner;
///
/// fn collatz(mut n: u64) -> u32 {
///     let mut steps = 0;
///     while n != 1 {
///         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
///         steps += 1;
///     }
///     steps
/// }
///
/// let items: Vec<u64> = (1..20_000).collect();
/// let plan = Planner::new().pilot(&items, collatz).plan()?;
/// println!("{plan}");
/// let steps: Vec<u32> = plan.map(collatz, items)?.collect::<Result<_, _>>()?;
/// assert_eq!(steps[26], 111);
/// # Ok::<(), parexec::Error>(())
/// ```
pub struct Planner<'a> {
    pilot: Option<PendingPilot<'a>>,
    profile: Option<WorkloadProfile>,
    machine: Option<Machine>,
    serial: Duration,
    kinds: Vec<ExecutorKind>,
    options: Options,
}

impl Default for Planner<'_> {
    fn default() -> Self {
        Planner {
            pilot: None,
            profile: None,
            machine: None,
            serial: Duration::ZERO,
            kinds: vec![ExecutorKind::Threads],
            options: Options::default(),
        }
    }
}

impl fmt::Debug for Planner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planner")
            .field("pilot", &self.pilot.is_some())
            .field("profile", &self.profile)
            .field("machine", &self.machine)
            .field("serial", &self.serial)
            .field("kinds", &self.kinds)
            .field("threshold", &self.options.threshold)
            .field("max_workers", &self.options.max_workers)
            .finish()
    }
}

impl<'a> Planner<'a> {
    /// A planner for the thread pool with the default efficiency threshold (0.8) and at most
    /// 64 workers for work that mostly waits.
    ///
    /// ```
    /// let planner = parexec::Planner::new();
    /// # let _ = planner;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Profiles the workload by running `f` serially over a spread-out sample of `items`
    /// when [`plan`](Planner::plan) is called: about 2% of the estimated total time, at least
    /// 10 ms (or every item), at most 200 ms once 8 items have run, and never more than 1 s
    /// plus the item in progress.
    ///
    /// The sampled items run once more when the plan runs them, so `f` must tolerate running
    /// twice on an item. An item that dominates the total but is not sampled stays invisible;
    /// if item costs are predictable from the items, use
    /// [`pilot_weighted`](Planner::pilot_weighted).
    ///
    /// ```
    /// let items: Vec<u32> = (0..1000).collect();
    /// let plan = parexec::Planner::new().pilot(&items, |x: u32| x.count_ones()).plan()?;
    /// assert!(!plan.parallel, "a few nanoseconds per item never repay a pool");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn pilot<A, R>(self, items: &'a [A], f: impl Fn(A) -> R + 'a) -> Self
    where
        A: Payload + Clone,
        R: Payload,
    {
        self.with_pilot(move |sizes| pilot::run(items, f, None, sizes))
    }

    /// Like [`pilot`](Planner::pilot), with a `weight` per item that the item's cost is
    /// proportional to (a file size, a row count). The sample gives the cost per unit of
    /// weight; the weights of all items then give the total, the spread and the largest
    /// item, even one the sample missed.
    ///
    /// # Errors
    ///
    /// [`plan`](Planner::plan) fails with [`Error::InvalidArgument`] if a weight is negative or
    /// not finite, or all are zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Three files, the first 3x the other two combined: at most a 25% saving.
    /// let sizes: Vec<u64> = vec![6_000, 1_000, 1_000];
    /// let load = |bytes: u64| std::thread::sleep(Duration::from_micros(bytes));
    /// let plan = parexec::Planner::new()
    ///     .pilot_weighted(&sizes, load, |&bytes| bytes as f64)
    ///     .plan()?;
    /// assert!(!plan.parallel && plan.imbalance_bound < 1.34);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn pilot_weighted<A, R>(
        self,
        items: &'a [A],
        f: impl Fn(A) -> R + 'a,
        weight: impl Fn(&A) -> f64,
    ) -> Self
    where
        A: Payload + Clone,
        R: Payload,
    {
        let weights: Vec<f64> = items.iter().map(weight).collect();
        self.with_pilot(move |sizes| pilot::run(items, f, Some(&weights), sizes))
    }

    fn with_pilot(
        mut self,
        pilot: impl FnOnce(bool) -> Result<WorkloadProfile, Error> + 'a,
    ) -> Self {
        self.pilot = Some(Box::new(pilot));
        self.profile = None;
        self
    }

    /// Uses a known profile instead of a pilot (for example one saved from an earlier run).
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::{Machine, WorkloadProfile};
    /// use parexec::Planner;
    /// let profile = WorkloadProfile::uniform(100_000, Duration::from_micros(200));
    /// let plan = Planner::new().profile(profile).machine(Machine::with_cores(4)).plan()?;
    /// assert!(plan.parallel && plan.workers == 4);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn profile(mut self, profile: WorkloadProfile) -> Self {
        self.profile = Some(profile);
        self.pilot = None;
        self
    }

    /// Plans for `machine` instead of the one calibration found: the production server, or
    /// a fixed machine for reproducible decisions. Executor costs are still this machine's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::{Machine, WorkloadProfile};
    /// use parexec::Planner;
    /// let profile = WorkloadProfile::uniform(1_000_000, Duration::from_micros(100));
    /// let plan = Planner::new().profile(profile).machine(Machine::with_cores(16)).plan()?;
    /// assert_eq!((plan.parallel, plan.workers), (true, 16));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn machine(mut self, machine: Machine) -> Self {
        self.machine = Some(machine);
        self
    }

    /// Time the program spends outside the parallel part (loading, merging), which no pool
    /// shortens: Amdahl's serial part.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::Planner;
    /// let profile = WorkloadProfile::uniform(10_000, Duration::from_micros(70));
    /// let plan = Planner::new().profile(profile).serial(Duration::from_millis(300)).plan()?;
    /// assert!((plan.serial_share - 0.3).abs() < 1e-9);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn serial(mut self, time: Duration) -> Self {
        self.serial = time;
        self
    }

    /// The least efficiency (speedup per core in use) worth running in parallel for; the
    /// default 0.8 follows the rule of thumb "parallelise only if the speedup is within 80%
    /// of the cores".
    ///
    /// # Errors
    ///
    /// [`plan`](Planner::plan) fails with [`Error::InvalidArgument`] unless the threshold is
    /// finite and non-negative.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::Planner;
    /// let profile = WorkloadProfile::uniform(10_000, Duration::from_micros(70));
    /// let plan = Planner::new().profile(profile).threshold(0.5).plan()?;
    /// assert_eq!(plan.threshold, 0.5);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn threshold(mut self, efficiency: f64) -> Self {
        self.options.threshold = efficiency;
        self
    }

    /// The most workers to consider for work that mostly waits (default 64); CPU-bound work
    /// never gets more workers than usable cores.
    ///
    /// # Errors
    ///
    /// [`plan`](Planner::plan) fails with [`Error::InvalidArgument`] for zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::Planner;
    /// let mut calls = WorkloadProfile::uniform(1000, Duration::from_millis(20));
    /// calls.cpu_share = 0.01;
    /// let plan = Planner::new().profile(calls).max_workers(8).plan()?;
    /// assert!(plan.workers <= 8);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn max_workers(mut self, workers: usize) -> Self {
        self.options.max_workers = workers;
        self
    }

    /// The executors the decision may choose from (default: threads only, because a process
    /// pool needs `parexec::init()` at the start of `main`). Including processes calibrates
    /// them on first use (see [`Calibration::process_pool`]) and measures payload sizes in
    /// the pilot.
    ///
    /// # Errors
    ///
    /// [`plan`](Planner::plan) fails with [`Error::InvalidArgument`] for an empty list, and
    /// with the process pool's own error if it cannot start (for example
    /// [`Error::Handshake`] without `parexec::init()`).
    ///
    /// ```standalone_crate
    /// use parexec::{ExecutorKind, Planner};
    ///
    /// fn checksum(data: Vec<u8>) -> u64 {
    ///     data.iter().map(|&b| u64::from(b)).sum()
    /// }
    ///
    /// parexec::init();
    /// let files: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 64 << 10]).collect();
    /// let plan = Planner::new()
    ///     .pilot(&files, checksum)
    ///     .executors(&[ExecutorKind::Threads, ExecutorKind::Processes])
    ///     .plan()?;
    /// assert_eq!(plan.kind, ExecutorKind::Threads, "shipping payloads to processes never pays here");
    /// assert!(plan.workload.payload_bytes > 65_536.0);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn executors(mut self, kinds: &[ExecutorKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Calibrates (once per process), runs the pilot, and decides.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] without a pilot or profile, for an empty input, or for an
    /// option out of range; [`Error::Io`] if calibration cannot start threads; for process
    /// pools, whatever starting one returns (see [`executors`](Planner::executors)).
    ///
    /// ```
    /// let err = parexec::Planner::new().plan().unwrap_err();
    /// assert!(matches!(err, parexec::Error::InvalidArgument(_)));
    /// ```
    pub fn plan(self) -> Result<Plan, Error> {
        if !(self.options.threshold.is_finite() && self.options.threshold >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "the efficiency threshold must be finite and non-negative, got {}",
                self.options.threshold
            )));
        }
        if self.options.max_workers == 0 {
            return Err(Error::InvalidArgument(
                "max_workers must be at least 1".into(),
            ));
        }
        if self.kinds.is_empty() {
            return Err(Error::InvalidArgument("no executor to plan for".into()));
        }
        let calibration = Calibration::get()?;
        let costs = self
            .kinds
            .iter()
            .map(|&kind| calibration.costs(kind))
            .collect::<Result<Vec<_>, Error>>()?;
        let payloads = self.kinds.contains(&ExecutorKind::Processes);
        let mut workload = match (self.pilot, self.profile) {
            (Some(pilot), _) => pilot(payloads)?,
            (None, Some(profile)) => profile,
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "the planner needs a pilot or a profile of the workload".into(),
                ));
            }
        };
        workload.serial = workload.serial.max(self.serial);
        let machine = self.machine.unwrap_or_else(|| calibration.machine.clone());
        Plan::from_model(workload, machine, costs, self.options)
    }

    /// Like [`plan`](Planner::plan), constrained to one executor.
    ///
    /// # Errors
    ///
    /// As [`plan`](Planner::plan).
    ///
    /// A process pool needs `parexec::init()` first thing in `main`:
    ///
    /// ```standalone_crate
    /// use std::time::Duration;
    /// use parexec::planner::{Machine, WorkloadProfile};
    /// use parexec::{ExecutorKind, Planner};
    ///
    /// fn triple(x: u32) -> u32 { 3 * x }
    ///
    /// parexec::init();
    /// // Say each item takes 10 ms: worth two worker processes.
    /// let profile = WorkloadProfile::uniform(1000, Duration::from_millis(10));
    /// let plan = Planner::new()
    ///     .profile(profile)
    ///     .machine(Machine::with_cores(2))
    ///     .plan_for(ExecutorKind::Processes)?;
    /// assert!(plan.parallel && plan.kind == ExecutorKind::Processes, "{plan}");
    /// let out: Vec<u32> = plan.map(triple, 0..1000)?.collect::<Result<_, _>>()?;
    /// assert_eq!(out[999], 2997);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn plan_for(self, kind: ExecutorKind) -> Result<Plan, Error> {
        self.executors(&[kind]).plan()
    }
}

/// Worker counts shown in the predicted speedup curve.
const CURVE_WORKERS: [usize; 5] = [1, 2, 4, 8, 16];

/// One point of a predicted speedup curve.
///
/// ```
/// use std::time::Duration;
/// use parexec::planner::{Machine, WorkloadProfile};
/// use parexec::Planner;
///
/// let profile = WorkloadProfile::uniform(100_000, Duration::from_micros(100));
/// let plan = Planner::new().profile(profile).machine(Machine::with_cores(2)).plan()?;
/// for point in &plan.curve {
///     let star = if point.modelled { "*" } else { "" };
///     println!("{} workers: {:.2}x{star}", point.workers, point.speedup);
/// }
/// assert!(plan.curve.iter().any(|p| p.modelled), "16 workers are beyond this machine");
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CurvePoint {
    /// Number of workers.
    pub workers: usize,
    /// Predicted speedup over running serially.
    pub speedup: f64,
    /// `true` when this machine cannot run that many workers on separate cores, so the point
    /// comes from the model alone (a machine with that many cores).
    pub modelled: bool,
}

/// The factor that most limits the speedup of a plan.
///
/// ```
/// assert_eq!(parexec::planner::Limit::SerialPart.to_string(), "the serial part");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The cores this process may use: the work is spread well over all of them.
    Cores,
    /// Time outside the parallel part (Amdahl's law).
    SerialPart,
    /// Starting and stopping the workers.
    StartUp,
    /// The fixed cost of every chunk.
    ChunkOverhead,
    /// Uneven items: the largest item or the last chunks keep one worker busy alone.
    Imbalance,
    /// Encoding and moving payloads to and from worker processes.
    Transfer,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Cores => "the usable cores",
            Limit::SerialPart => "the serial part",
            Limit::StartUp => "pool start-up",
            Limit::ChunkOverhead => "per-chunk overhead",
            Limit::Imbalance => "uneven items",
            Limit::Transfer => "payload transfer",
        })
    }
}

/// What [`Plan::record`] learned from a measured run.
///
/// ```
/// use std::time::Duration;
/// use parexec::planner::WorkloadProfile;
/// use parexec::Planner;
///
/// let profile = WorkloadProfile::uniform(100_000, Duration::from_micros(100));
/// let mut plan = Planner::new().profile(profile).plan()?;
/// plan.record_serial(Duration::from_secs(10));
/// let feedback = plan.record(2, Duration::from_secs(6))?;
/// println!(
///     "predicted {:.2}x, measured {:.2}x ({:+.0}%)",
///     feedback.predicted_speedup, feedback.measured_speedup, 100.0 * feedback.error
/// );
/// assert!((feedback.serial_fraction.unwrap() - 0.2).abs() < 1e-9);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Feedback {
    /// Workers of the measured run.
    pub workers: usize,
    /// Speedup the plan predicted for that run.
    pub predicted_speedup: f64,
    /// Speedup measured, against the serial time.
    pub measured_speedup: f64,
    /// Relative error of the prediction, `predicted / measured - 1`.
    pub error: f64,
    /// The Karp–Flatt serial fraction of the run (`None` for a single worker).
    pub serial_fraction: Option<f64>,
    /// The scalability model refitted on every run recorded so far.
    pub fit: UslFit,
}

/// A recommended configuration, with its prediction and the reasons for it.
///
/// All content of the printed report is available as fields. `kind`, `workers` and
/// `chunksize` always describe the best parallel configuration; `parallel` says whether it is
/// worth using at all.
///
/// A panic in a task run through [`Plan::map`] fails only its own item, as
/// [`Error::Panicked`], whether the plan runs serially or on a pool.
///
/// ```
/// use std::time::Duration;
/// use parexec::planner::WorkloadProfile;
/// use parexec::Planner;
///
/// let profile = WorkloadProfile::uniform(1_000_000, Duration::from_micros(40));
/// let plan = Planner::new().profile(profile).plan()?;
/// if plan.parallel {
///     println!("{} x{}, chunks of {}", plan.kind, plan.workers, plan.chunksize);
/// }
/// println!("{plan}");
/// assert!(plan.to_string().starts_with("workload: 1,000,000 items, 40.0 µs/item"));
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Plan {
    /// The workload as the pilot measured it (or as it was given).
    pub workload: WorkloadProfile,
    /// The machine as calibration found it.
    pub machine: Machine,
    /// `true` to run in parallel, `false` to run serially on the calling thread.
    pub parallel: bool,
    /// The executor of the best parallel configuration.
    pub kind: ExecutorKind,
    /// Workers of the best parallel configuration.
    pub workers: usize,
    /// Items per chunk of the best parallel configuration.
    pub chunksize: usize,
    /// Expected run time of one chunk.
    pub chunk_duration: Duration,
    /// Share of a chunk's time taken by the per-chunk overhead.
    pub overhead_share: f64,
    /// Starting and stopping the pool.
    pub startup: Duration,
    /// Predicted time of the whole run in parallel.
    pub predicted_time: Duration,
    /// Predicted (or, after [`Plan::record_serial`], measured) time of the whole run serially.
    pub serial_time: Duration,
    /// Predicted speedup of the best parallel configuration.
    pub speedup: f64,
    /// Speedup per core in use; parallel execution needs at least `threshold`.
    pub efficiency: f64,
    /// The efficiency below which the planner stays serial.
    pub threshold: f64,
    /// Predicted speedups for 1, 2, 4, 8 and 16 workers (and the chosen count).
    pub curve: Vec<CurvePoint>,
    /// The factor that limits the speedup most.
    pub limit: Limit,
    /// Share of the serial run spent outside the parallel part.
    pub serial_share: f64,
    /// Amdahl's bound on the speedup from the serial part, `1 / serial_share`.
    pub amdahl_bound: f64,
    /// Share of the work in the largest item.
    pub largest_share: f64,
    /// The imbalance bound on the speedup, total work over the largest item.
    pub imbalance_bound: f64,
    /// The scalability model fitted to recorded runs, once there is one.
    pub fit: Option<UslFit>,
    runs: Vec<(usize, Duration)>,
    costs: Vec<ExecutorCosts>,
    options: Options,
    /// The pool [`Plan::map`] runs on, of the planned kind, started on first use.
    threads: OnceLock<ThreadPool>,
    processes: OnceLock<ProcessPool>,
}

impl Plan {
    /// Plans `profile` on `machine` with the executors whose `costs` are given.
    pub(crate) fn from_model(
        workload: WorkloadProfile,
        machine: Machine,
        costs: Vec<ExecutorCosts>,
        options: Options,
    ) -> Result<Plan, Error> {
        if costs.is_empty() {
            return Err(Error::InvalidArgument(
                "no executor is available to plan for".into(),
            ));
        }
        if workload.items == 0 {
            return Err(Error::InvalidArgument("cannot plan for zero items".into()));
        }
        let decision = model::decide(&workload, &machine, &costs, &options);
        let chosen = costs
            .iter()
            .find(|c| c.kind == decision.best.kind)
            .expect("the decision picks one of the given executors")
            .clone();
        let mut plan = Plan {
            kind: decision.best.kind,
            workers: decision.best.workers,
            chunksize: decision.best.chunksize,
            parallel: decision.parallel,
            chunk_duration: Duration::ZERO,
            overhead_share: 0.0,
            startup: secs(decision.best.startup),
            predicted_time: secs(decision.best.total()),
            serial_time: secs(decision.serial_time),
            speedup: decision.speedup,
            efficiency: decision.efficiency,
            threshold: options.threshold,
            curve: Vec::new(),
            limit: limit_of(&decision, &workload, &machine),
            serial_share: share(workload.serial, secs(decision.serial_time)),
            amdahl_bound: 1.0 / share(workload.serial, secs(decision.serial_time)),
            largest_share: share(workload.largest_item, workload.total_work()),
            imbalance_bound: 1.0 / share(workload.largest_item, workload.total_work()),
            fit: None,
            runs: Vec::new(),
            threads: OnceLock::new(),
            processes: OnceLock::new(),
            workload,
            machine,
            costs,
            options,
        };
        let item = plan.workload.mean_item.as_secs_f64();
        let chunk = item * plan.chunksize as f64;
        plan.chunk_duration = secs(chunk);
        plan.overhead_share =
            chosen.chunk_overhead.as_secs_f64() / (chunk + chosen.chunk_overhead.as_secs_f64());
        plan.curve = plan.model_curve(&chosen);
        Ok(plan)
    }

    fn model_curve(&self, costs: &ExecutorCosts) -> Vec<CurvePoint> {
        let mut workers = CURVE_WORKERS.to_vec();
        if !workers.contains(&self.workers) {
            workers.push(self.workers);
            workers.sort_unstable();
        }
        let serial = self.serial_time.as_secs_f64();
        workers
            .into_iter()
            .map(|n| {
                let modelled = n > self.machine.usable_cores;
                let machine = if modelled {
                    scaled(&self.machine, n)
                } else {
                    self.machine.clone()
                };
                let model = CostModel {
                    profile: &self.workload,
                    machine: &machine,
                    costs,
                };
                CurvePoint {
                    workers: n,
                    speedup: serial / model.best_for(n).total(),
                    modelled,
                }
            })
            .collect()
    }

    /// Records the measured serial time of the whole run, the baseline of every speedup.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::Planner;
    /// let profile = WorkloadProfile::uniform(1000, Duration::from_millis(10));
    /// let mut plan = Planner::new().profile(profile).plan()?;
    /// plan.record_serial(Duration::from_secs(12));
    /// assert_eq!(plan.serial_time, Duration::from_secs(12));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn record_serial(&mut self, elapsed: Duration) {
        if !elapsed.is_zero() {
            self.serial_time = elapsed;
        }
    }

    /// Records a measured run on `workers` workers that took `elapsed` (serial part included),
    /// compares it with the prediction, and refits the scalability model on every run
    /// recorded so far. The curve, speedup, efficiency and decision then follow the fit.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `workers` is zero or `elapsed` is zero.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use parexec::Planner;
    ///
    /// fn work(x: u64) -> u64 { (0..x).sum() }
    /// let items: Vec<u64> = (0..2000).collect();
    /// let mut plan = Planner::new().pilot(&items, work).plan()?;
    /// let started = Instant::now();
    /// let _: Vec<u64> = plan.map(work, items)?.collect::<Result<_, _>>()?;
    /// let workers = if plan.parallel { plan.workers } else { 1 };
    /// let feedback = plan.record(workers, started.elapsed())?;
    /// println!("serial fraction {:?}, refit {:?}", feedback.serial_fraction, feedback.fit);
    /// assert_eq!(plan.fit, Some(feedback.fit));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn record(&mut self, workers: usize, elapsed: Duration) -> Result<Feedback, Error> {
        if workers == 0 || elapsed.is_zero() {
            return Err(Error::InvalidArgument(format!(
                "a measured run needs at least one worker and a non-zero time, got {workers} workers in {elapsed:?}"
            )));
        }
        let predicted_speedup = self.predicted_speedup(workers);
        let serial = self.serial_time;
        let measured_speedup = serial.as_secs_f64() / elapsed.as_secs_f64();
        self.runs.push((workers, elapsed));
        let mut points = self.runs.clone();
        points.push((1, serial));
        let fit = UslFit::fit(&points)?;
        self.apply_fit(fit);
        Ok(Feedback {
            workers,
            predicted_speedup,
            measured_speedup,
            error: predicted_speedup / measured_speedup - 1.0,
            serial_fraction: (workers > 1)
                .then(|| laws::karp_flatt_unchecked(measured_speedup, workers as f64)),
            fit,
        })
    }

    /// The speedup the plan currently predicts on `workers` workers: from the fit once runs
    /// are recorded, from the cost model before.
    fn predicted_speedup(&self, workers: usize) -> f64 {
        match self.fit {
            Some(fit) => self.serial_time.as_secs_f64() / fit.predict(workers as f64),
            None => {
                let costs = self
                    .costs
                    .iter()
                    .find(|c| c.kind == self.kind)
                    .unwrap_or(&self.costs[0]);
                let machine = scaled(&self.machine, workers.max(self.machine.usable_cores));
                let model = CostModel {
                    profile: &self.workload,
                    machine: &machine,
                    costs,
                };
                self.serial_time.as_secs_f64() / model.best_for(workers).total()
            }
        }
    }

    fn apply_fit(&mut self, fit: UslFit) {
        self.fit = Some(fit);
        let before = self.workers;
        let serial = self.serial_time.as_secs_f64();
        for point in &mut self.curve {
            point.speedup = serial / fit.predict(point.workers as f64);
        }
        let usable = self.machine.usable_cores.max(1);
        let cap = usable.max(self.workers);
        let fastest = (1..=cap)
            .map(|n| fit.predict(n as f64))
            .fold(f64::INFINITY, f64::min);
        self.workers = (1..=cap)
            .find(|&n| fit.predict(n as f64) <= fastest * (1.0 + self.options.margin))
            .unwrap_or(1);
        let time = fit.predict(self.workers as f64);
        self.predicted_time = secs(time);
        self.speedup = serial / time;
        self.efficiency = self.speedup / self.workers.min(usable) as f64;
        self.parallel = self.workers > 1 && self.speedup > 1.0 && self.efficiency >= self.threshold;
        if self.workers != before {
            self.threads = OnceLock::new();
            self.processes = OnceLock::new();
        }
    }
}

/// A machine like `machine` with `cores` usable cores, the same SMT ratio and core
/// efficiency, and no limits.
fn scaled(machine: &Machine, cores: usize) -> Machine {
    let usable = machine.usable_cores.max(1);
    let physical = machine.physical_cores.clamp(1, usable);
    let mut bigger = Machine::with_cores(cores);
    bigger.physical_cores = (cores * physical).div_ceil(usable);
    bigger.logical_cores = cores;
    bigger.core_efficiency = machine.core_efficiency;
    bigger
}

/// `part / whole`, zero when the whole is.
fn share(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        part.as_secs_f64() / whole.as_secs_f64()
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// The largest loss against a perfect split over the cores in use, or [`Limit::Cores`] when
/// every loss is small.
fn limit_of(decision: &Decision, workload: &WorkloadProfile, machine: &Machine) -> Limit {
    let p: &Prediction = &decision.best;
    let spread = p.work + p.overhead + p.tail;
    let losses = [
        (Limit::SerialPart, p.serial),
        (Limit::StartUp, p.startup),
        (Limit::ChunkOverhead, p.overhead),
        (Limit::Imbalance, p.tail + (p.imbalance - spread).max(0.0)),
        (
            Limit::Transfer,
            (p.transfer - spread.max(p.imbalance)).max(0.0),
        ),
    ];
    let (limit, loss) = losses
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the loss list is not empty");
    let cpu_bound = p.workers >= machine.usable_cores && workload.cpu_share > 0.5;
    if loss < 0.05 * p.total() && cpu_bound {
        Limit::Cores
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs() -> Vec<ExecutorCosts> {
        let threads = ExecutorCosts::new(
            ExecutorKind::Threads,
            Duration::from_micros(60),
            Duration::from_micros(8),
        );
        let mut processes = ExecutorCosts::new(
            ExecutorKind::Processes,
            Duration::from_millis(2),
            Duration::from_micros(70),
        );
        processes.transfer_ns_per_byte = 1.5;
        vec![threads, processes]
    }

    fn example_workload() -> WorkloadProfile {
        let mut w = WorkloadProfile::uniform(1_000_000, Duration::from_micros(38));
        w.cv = 0.4;
        w.cpu_share = 0.997;
        w.largest_item = Duration::from_micros(200);
        w.serial = Duration::from_millis(450);
        w.payload_bytes = 64.0;
        w
    }

    fn plan(workload: WorkloadProfile, cores: usize) -> Plan {
        Plan::from_model(
            workload,
            Machine::with_cores(cores),
            costs(),
            Options::default(),
        )
        .unwrap()
    }

    #[test]
    fn report_snapshot() {
        let plan = plan(example_workload(), 2);
        assert_eq!(
            plan.to_string(),
            "workload: 1,000,000 items, 38.0 µs/item (cv 0.4), 0.30% of the time waiting, \
             largest item 200 µs, serial part 450 ms, 64 bytes moved per item\n\
             executor: threads x2, chunksize 648 (≈ 24.6 ms per chunk; overhead 0.03%)\n\
             predicted speedup: 1w 1.00x | 2w 1.98x | 4w 3.86x* | 8w 7.38x* | 16w 13.6x*   \
             (* beyond this machine's 2 cores: modelled)\n\
             limit: the 2 usable cores (work spread evenly, losses under 5%); \
             serial part 1.2% of the work (Amdahl bound 85.4x); pool start-up 120 µs\n\
             decision: parallel (efficiency 0.99 >= 0.80)"
        );
    }

    #[test]
    fn report_snapshot_of_a_serial_decision() {
        let mut files = WorkloadProfile::uniform(3, Duration::from_millis(400));
        files.largest_item = Duration::from_millis(900);
        files.largest_position = 0.0;
        files.cv = 0.9;
        files.cpu_share = 0.2;
        let plan = plan(files, 8);
        assert_eq!(
            plan.to_string(),
            "workload: 3 items, 400 ms/item (cv 0.9), 80.0% of the time waiting, largest item 900 ms\n\
             executor: serial, on the calling thread (best parallel option: threads x2, chunksize 1 \
             (≈ 400 ms per chunk; overhead 0.00%))\n\
             predicted speedup: 1w 1.00x | 2w 1.33x | 4w 1.33x | 8w 1.33x | 16w 1.33x*   \
             (* beyond this machine's 8 cores: modelled)\n\
             limit: uneven items: largest item 75.0% of the work (bound 1.33x); pool start-up 120 µs\n\
             decision: serial (efficiency 0.67 < 0.80)"
        );
    }

    #[test]
    fn a_serial_report_names_what_makes_a_pool_slower() {
        let plan = plan(WorkloadProfile::uniform(200, Duration::from_nanos(500)), 2);
        assert!(!plan.parallel && plan.speedup < 1.0);
        assert_eq!(plan.limit, Limit::StartUp);
        let report = plan.to_string();
        let decision = report.lines().last().unwrap();
        assert!(
            decision.starts_with("decision: serial (a pool would be slower, 0.")
                && decision.ends_with(": pool start-up costs more than it saves)"),
            "{report}"
        );
    }

    #[test]
    fn plain_fields_carry_the_report() {
        let plan = plan(example_workload(), 2);
        assert!(plan.parallel);
        assert_eq!(
            (plan.kind, plan.workers, plan.chunksize),
            (ExecutorKind::Threads, 2, 648)
        );
        assert_eq!(plan.limit, Limit::Cores);
        assert_eq!(plan.curve.len(), 5);
        assert!(plan.curve.iter().all(|p| p.modelled == (p.workers > 2)));
        assert!((plan.serial_share - 0.45 / 38.45).abs() < 1e-9);
        assert!((plan.amdahl_bound - 38.45 / 0.45).abs() < 1e-6);
        assert!((plan.imbalance_bound - 38.0 / 200e-6).abs() < 1e-3);
    }

    #[test]
    fn waiting_work_adds_the_chosen_worker_count_to_the_curve() {
        let mut calls = WorkloadProfile::uniform(100, Duration::from_millis(200));
        calls.cpu_share = 0.02;
        let plan = plan(calls, 2);
        assert!(plan.parallel && plan.workers > 16, "{plan}");
        assert!(
            plan.curve
                .iter()
                .any(|p| p.workers == plan.workers && p.modelled)
        );
    }

    #[test]
    fn empty_input_and_no_executor_are_errors() {
        let none = WorkloadProfile::uniform(0, Duration::from_millis(1));
        assert!(matches!(
            Plan::from_model(none, Machine::with_cores(2), costs(), Options::default()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            Plan::from_model(
                example_workload(),
                Machine::with_cores(2),
                Vec::new(),
                Options::default()
            ),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn feedback_reports_error_and_serial_fraction_then_refits() {
        // The model expects about 1.98x on 2 workers; the run shows 1.7x.
        let mut plan = plan(example_workload(), 2);
        let serial = Duration::from_secs(40);
        plan.record_serial(serial);
        let measured = serial.div_f64(1.7);
        let feedback = plan.record(2, measured).unwrap();
        assert!((feedback.measured_speedup - 1.7).abs() < 1e-9);
        assert!(
            feedback.predicted_speedup > 1.9 && feedback.error > 0.1,
            "{feedback:?}"
        );
        let e = (1.0 / 1.7 - 0.5) / 0.5;
        assert!((feedback.serial_fraction.unwrap() - e).abs() < 1e-9);
        // The refit is Amdahl with that serial fraction; 0.85 efficiency stays parallel.
        assert!(
            (feedback.fit.b - 40.0 * e).abs() < 1e-6 && feedback.fit.c == 0.0,
            "{feedback:?}"
        );
        assert!((plan.speedup - 1.7).abs() < 1e-9 && plan.parallel);
        let eight = plan.curve.iter().find(|p| p.workers == 8).unwrap();
        assert!((eight.speedup - 1.0 / (e + (1.0 - e) / 8.0)).abs() < 1e-6);
        // A second, slower run pulls the fit below the threshold.
        plan.record(2, serial.div_f64(1.4)).unwrap();
        assert!(!plan.parallel, "{plan}");
        assert!(plan.record(0, measured).is_err());
        assert!(plan.record(2, Duration::ZERO).is_err());
    }
}
