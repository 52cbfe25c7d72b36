//! [`Planner`]: gathering a planning run's inputs (calibration, pilot or profile, options).

use std::fmt;
use std::time::Duration;

use super::calibration::Calibration;
use super::model::{Machine, Options, WorkloadProfile};
use super::pilot;
use super::plan::Plan;
use crate::{Error, ExecutorKind, Payload};

/// A pilot waiting to run, once the planner knows whether payload sizes matter.
struct PendingPilot<'a> {
    run: Box<dyn FnOnce(bool) -> Result<WorkloadProfile, Error> + Send + 'a>,
    /// Whether it can measure payload sizes: its items and results are serde types.
    sizes_payloads: bool,
}

/// Measures a workload and recommends how to run it: serially or in parallel, on threads or
/// processes, with how many workers and what chunk size. See [`Plan`] for the result.
///
/// The pilot runs items serially on the calling thread; a panic in one of them is caught and
/// its time still counts (the same item fails again, alone, when the plan runs it).
///
/// Planning for threads takes any items and any closure ([`pilot`](Planner::pilot)); a
/// process pool is a candidate only with a pilot of a plain `fn` over serde types
/// ([`pilot_fn`](Planner::pilot_fn)), which can measure what a process pool would move.
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
            kinds: default_kinds(),
            options: Options::default(),
        }
    }
}

/// Threads, and the worker ranks when this process is rank 0 of an MPI job that has some.
fn default_kinds() -> Vec<ExecutorKind> {
    #[cfg(feature = "mpi")]
    if crate::mpi::has_workers() {
        return vec![ExecutorKind::Threads, ExecutorKind::Mpi];
    }
    vec![ExecutorKind::Threads]
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
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::{ExecutorKind, Planner};
    /// let mut calls = WorkloadProfile::uniform(10_000_000, Duration::from_millis(100));
    /// calls.cpu_share = 0.01; // waits on I/O: more workers than cores pay
    /// let plan = Planner::new().profile(calls.clone()).plan()?;
    /// assert_eq!(plan.threshold, 0.8);
    /// assert_eq!(plan.kind, ExecutorKind::Threads);
    /// let explicit = Planner::new().profile(calls.clone()).threshold(0.8).max_workers(64).plan()?;
    /// assert_eq!((plan.workers, plan.chunksize), (explicit.workers, explicit.chunksize));
    /// let uncapped = Planner::new().profile(calls).max_workers(1000).plan()?;
    /// assert!(plan.workers <= 64 && uncapped.workers > 64, "the default cap binds");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Profiles the workload by running `f` serially over a spread-out sample of `items`
    /// when [`plan`](Planner::plan) is called: about 2% of the estimated total time, at least
    /// 10 ms (or every item), at most 200 ms once 8 items have run, and never more than 1 s
    /// plus the item in progress.
    ///
    /// The items may be anything `Clone + Sync` (each sampled item is cloned once; for items
    /// that are not `Clone`, pilot a slice of references to them) and `f` any `Send`
    /// closure: this plans for threads. To let the plan choose a process pool, pilot a plain
    /// function over serde types with [`pilot_fn`](Planner::pilot_fn) instead.
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
    ///
    /// // Borrowed items and a capturing closure plan just as well.
    /// let text = String::from("one two three four");
    /// let words: Vec<&str> = text.split(' ').collect();
    /// let suffix = "!";
    /// let plan = parexec::Planner::new()
    ///     .pilot(&words, |w: &str| format!("{w}{suffix}"))
    ///     .plan()?;
    /// assert_eq!(plan.workload.items, 4);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn pilot<A, R>(self, items: &'a [A], f: impl Fn(A) -> R + Send + 'a) -> Self
    where
        A: Clone + Sync,
    {
        self.with_pilot(false, move |_| pilot::run(items, f, None, None))
    }

    /// Like [`pilot`](Planner::pilot), for a plain function over serde types, so that a
    /// process pool can be a candidate (see [`executors`](Planner::executors)): the pilot then
    /// also measures the bytes a process pool would move per item. Run the plan with
    /// [`Plan::map_fn`].
    ///
    /// ```
    /// fn digits(x: u64) -> u32 { x.to_string().len() as u32 }
    ///
    /// let items: Vec<u64> = (0..1000).collect();
    /// let plan = parexec::Planner::new().pilot_fn(&items, digits).plan()?;
    /// let out = plan.map_fn(digits, items)?.collect_vec()?;
    /// assert_eq!(out[999], 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn pilot_fn<A, R>(self, items: &'a [A], f: fn(A) -> R) -> Self
    where
        A: Payload + Clone + Sync,
        R: Payload,
    {
        self.with_pilot(true, move |sizes| {
            pilot::run(items, f, None, sizes.then_some(&pilot::serde_size))
        })
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
        f: impl Fn(A) -> R + Send + 'a,
        weight: impl Fn(&A) -> f64,
    ) -> Self
    where
        A: Clone + Sync,
    {
        let weights: Vec<f64> = items.iter().map(weight).collect();
        self.with_pilot(false, move |_| pilot::run(items, f, Some(&weights), None))
    }

    /// [`pilot_weighted`](Planner::pilot_weighted) for a plain function over serde types, so
    /// that a process pool can be a candidate, as with [`pilot_fn`](Planner::pilot_fn).
    ///
    /// # Errors
    ///
    /// As [`pilot_weighted`](Planner::pilot_weighted).
    ///
    /// ```
    /// fn sum_to(n: u64) -> u64 { (0..n).sum() }
    ///
    /// let items: Vec<u64> = (0..200).map(|i| i * 10).collect();
    /// let plan = parexec::Planner::new()
    ///     .pilot_weighted_fn(&items, sum_to, |&n| n as f64 + 1.0)
    ///     .plan()?;
    /// assert_eq!(plan.map_fn(sum_to, items)?.collect_vec()?[2], 190);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn pilot_weighted_fn<A, R>(
        self,
        items: &'a [A],
        f: fn(A) -> R,
        weight: impl Fn(&A) -> f64,
    ) -> Self
    where
        A: Payload + Clone + Sync,
        R: Payload,
    {
        let weights: Vec<f64> = items.iter().map(weight).collect();
        self.with_pilot(true, move |sizes| {
            pilot::run(
                items,
                f,
                Some(&weights),
                sizes.then_some(&pilot::serde_size),
            )
        })
    }

    /// Sets the pilot, which `plan` runs with `true` to measure payload sizes too; only a
    /// pilot over serde types (`sizes_payloads`) can.
    fn with_pilot(
        mut self,
        sizes_payloads: bool,
        run: impl FnOnce(bool) -> Result<WorkloadProfile, Error> + Send + 'a,
    ) -> Self {
        self.pilot = Some(PendingPilot {
            run: Box::new(run),
            sizes_payloads,
        });
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
    /// the pilot, which must then be a [`pilot_fn`](Planner::pilot_fn) (or a given
    /// [`profile`](Planner::profile)).
    ///
    /// # Errors
    ///
    /// [`plan`](Planner::plan) fails with [`Error::InvalidArgument`] for an empty list, or
    /// for processes with a pilot that cannot measure payloads; and with the process pool's
    /// own error if it cannot start (for example [`Error::Handshake`] without
    /// `parexec::init()`).
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
    ///     .pilot_fn(&files, checksum)
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
        // Every executor but threads moves payloads between processes.
        let payloads = self.kinds.iter().any(|&k| k != ExecutorKind::Threads);
        if payloads && self.pilot.as_ref().is_some_and(|p| !p.sizes_payloads) {
            return Err(Error::InvalidArgument(
                "a process pool is a candidate, but the pilot cannot measure what it would \
                 move: pilot a plain `fn` over serde types with pilot_fn or pilot_weighted_fn, \
                 or plan for threads only"
                    .into(),
            ));
        }
        let calibration = Calibration::get()?;
        let costs = self
            .kinds
            .iter()
            .map(|&kind| calibration.costs(kind))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut workload = match (self.pilot, self.profile) {
            (Some(pilot), _) => (pilot.run)(payloads)?,
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
    /// let out: Vec<u32> = plan.map_fn(triple, 0..1000)?.collect::<Result<_, _>>()?;
    /// assert_eq!(out[999], 2997);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn plan_for(self, kind: ExecutorKind) -> Result<Plan, Error> {
        self.executors(&[kind]).plan()
    }
}
