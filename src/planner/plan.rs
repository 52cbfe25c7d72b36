//! [`Plan`]: the planner's recommendation, its predicted curve, and the feedback from recorded
//! runs that refits it.

use std::sync::OnceLock;
use std::time::Duration;

use super::laws::{self, UslFit};
use super::model::{
    self, CostModel, Decision, ExecutorCosts, Machine, Options, Prediction, WorkloadProfile,
};
use crate::{Error, ExecutorKind, ProcessPool, ThreadPool};

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
    /// `true` when this machine (for an MPI plan: the job's worker ranks) would not run that
    /// many workers (more than its usable cores for CPU-bound work, more threads than waiting
    /// work needs), so the point is modelled on a machine, or a cluster, with that many cores.
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
/// All content of the printed report is available as fields. `parallel` says whether to run
/// in parallel at all, and `workers` how many workers to run with: one when the plan stays
/// serial, so `ThreadPool::new(plan.workers)` never runs a serial plan in parallel. `kind`,
/// `parallel_workers` and `chunksize` always describe the best parallel configuration, which
/// the predicted `speedup` and `efficiency` are about, whether or not it is used.
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
/// } else {
///     assert_eq!(plan.workers, 1);
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
    /// Workers to run with: `parallel_workers` when `parallel`, otherwise 1.
    pub workers: usize,
    /// Workers of the best parallel configuration, whether or not it is used.
    pub parallel_workers: usize,
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
    pub(super) runs: Vec<(usize, Duration)>,
    pub(super) costs: Vec<ExecutorCosts>,
    options: Options,
    /// The pool [`Plan::map`] runs on, of the planned kind, started on first use.
    pub(super) threads: OnceLock<ThreadPool>,
    pub(super) processes: OnceLock<ProcessPool>,
    #[cfg(feature = "mpi")]
    pub(super) mpi: OnceLock<crate::MpiPool>,
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
            workers: if decision.parallel {
                decision.best.workers
            } else {
                1
            },
            parallel_workers: decision.best.workers,
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
            limit: limit_of(&decision, &workload, &chosen.machine(&machine)),
            serial_share: share(workload.serial, secs(decision.serial_time)),
            amdahl_bound: 1.0 / share(workload.serial, secs(decision.serial_time)),
            largest_share: share(workload.largest_item, workload.total_work()),
            imbalance_bound: 1.0 / share(workload.largest_item, workload.total_work()),
            fit: None,
            runs: Vec::new(),
            threads: OnceLock::new(),
            processes: OnceLock::new(),
            #[cfg(feature = "mpi")]
            mpi: OnceLock::new(),
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
        if !workers.contains(&self.parallel_workers) {
            workers.push(self.parallel_workers);
            workers.sort_unstable();
        }
        let reach = costs.machine(&self.machine);
        let model = CostModel {
            profile: &self.workload,
            machine: &reach,
            costs,
        };
        workers
            .into_iter()
            .map(|n| {
                let (speedup, modelled) = model.speedup_on(n, self.options.max_workers);
                CurvePoint {
                    workers: n,
                    speedup,
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
    /// let feedback = plan.record(plan.workers, started.elapsed())?;
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
    /// are recorded, from the cost model before (the figure its curve shows, against the
    /// predicted serial time even after [`Plan::record_serial`]).
    fn predicted_speedup(&self, workers: usize) -> f64 {
        match self.fit {
            Some(fit) => self.serial_time.as_secs_f64() / fit.predict(workers as f64),
            None => {
                let costs = self
                    .costs
                    .iter()
                    .find(|c| c.kind == self.kind)
                    .unwrap_or(&self.costs[0]);
                let model = CostModel {
                    profile: &self.workload,
                    machine: &self.machine,
                    costs,
                };
                model.speedup_on(workers, self.options.max_workers).0
            }
        }
    }

    fn apply_fit(&mut self, fit: UslFit) {
        self.fit = Some(fit);
        let before = self.parallel_workers;
        let serial = self.serial_time.as_secs_f64();
        for point in &mut self.curve {
            point.speedup = serial / fit.predict(point.workers as f64);
        }
        let usable = self.machine.usable_cores.max(1);
        let cap = usable.max(self.parallel_workers);
        let fastest = (1..=cap)
            .map(|n| fit.predict(n as f64))
            .fold(f64::INFINITY, f64::min);
        self.parallel_workers = (1..=cap)
            .find(|&n| fit.predict(n as f64) <= fastest * (1.0 + self.options.margin))
            .unwrap_or(1);
        let time = fit.predict(self.parallel_workers as f64);
        self.predicted_time = secs(time);
        self.speedup = serial / time;
        self.efficiency = self.speedup / self.parallel_workers.min(usable) as f64;
        self.parallel =
            self.parallel_workers > 1 && self.speedup > 1.0 && self.efficiency >= self.threshold;
        self.workers = if self.parallel {
            self.parallel_workers
        } else {
            1
        };
        if self.parallel_workers != before {
            self.threads = OnceLock::new();
            self.processes = OnceLock::new();
            #[cfg(feature = "mpi")]
            {
                self.mpi = OnceLock::new();
            }
        }
    }
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
