//! The model's inputs: the workload, the machine and what each executor costs on it.

use std::time::Duration;

use crate::ExecutorKind;

/// Throughput of a second hardware thread on a busy core, relative to a full core.
pub(crate) const SMT_YIELD: f64 = 0.25;

/// What the planner knows about one workload, measured by a pilot or given directly.
///
/// ```
/// use std::time::Duration;
/// let profile = parexec::planner::WorkloadProfile::uniform(10_000, Duration::from_micros(50));
/// assert_eq!(profile.total_work(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkloadProfile {
    /// Number of items to process.
    pub items: usize,
    /// Mean wall time of one item, run serially.
    pub mean_item: Duration,
    /// Share of an item's wall time spent on the CPU (thread CPU time / wall time); the rest
    /// is waiting (I/O, sleeps, locks).
    pub cpu_share: f64,
    /// Coefficient of variation (standard deviation / mean) of item times.
    pub cv: f64,
    /// Wall time of the largest item.
    pub largest_item: Duration,
    /// Where the largest item sits in the input, 0 = first, 1 = last (0.5 when unknown).
    pub largest_position: f64,
    /// Time the program spends outside the parallel part, which no pool shortens.
    pub serial: Duration,
    /// Mean serialized size of one argument plus its result, in bytes.
    pub payload_bytes: f64,
}

impl WorkloadProfile {
    /// A profile of `items` CPU-bound items that all take `mean_item`, with no serial part
    /// and no payload; adjust the public fields for anything else.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut profile = parexec::planner::WorkloadProfile::uniform(100, Duration::from_millis(1));
    /// profile.cpu_share = 0.1; // mostly waiting
    /// assert_eq!(profile.largest_item, Duration::from_millis(1));
    /// ```
    pub fn uniform(items: usize, mean_item: Duration) -> Self {
        WorkloadProfile {
            items,
            mean_item,
            cpu_share: 1.0,
            cv: 0.0,
            largest_item: mean_item,
            largest_position: 0.5,
            serial: Duration::ZERO,
            payload_bytes: 0.0,
        }
    }

    /// The total serial time of the parallel part, `items × mean_item`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let profile = parexec::planner::WorkloadProfile::uniform(4, Duration::from_secs(1));
    /// assert_eq!(profile.total_work(), Duration::from_secs(4));
    /// ```
    pub fn total_work(&self) -> Duration {
        Duration::from_secs_f64(self.items as f64 * self.mean_item.as_secs_f64())
    }

    /// Share of item time spent waiting rather than computing.
    pub(crate) fn wait_share(&self) -> f64 {
        1.0 - self.cpu_share.clamp(0.0, 1.0)
    }
}

/// The CPUs this process can use, as calibration found them.
///
/// ```
/// let machine = parexec::planner::Machine::with_cores(8);
/// assert_eq!((machine.usable_cores, machine.physical_cores), (8, 8));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Machine {
    /// Cores this process can actually run on: the least of the logical cores, the cgroup CPU
    /// quota and the affinity mask.
    pub usable_cores: usize,
    /// Logical CPUs (hardware threads) of the machine.
    pub logical_cores: usize,
    /// Physical cores of the machine.
    pub physical_cores: usize,
    /// The cgroup CPU quota in cores, if one is set.
    pub cgroup_quota: Option<f64>,
    /// CPUs in this process's affinity mask.
    pub affinity_cores: usize,
    /// How much each core beyond the first adds when all are busy, from 0 to 1: below 1 when
    /// cores share caches, memory bandwidth, clock headroom or a hypervisor's time.
    pub core_efficiency: f64,
    /// Share of the usable CPU that other processes took while calibration kept every usable
    /// core busy, from 0 to 1; 0 when it was too small to matter (under 5%).
    pub busy_elsewhere: f64,
    /// Cores' worth of CPU left to this process: the usable cores (or the cgroup quota, if
    /// lower) minus what other processes took. The model never gives a run more CPU than this.
    pub free_cores: f64,
}

impl Machine {
    /// A machine of `cores` physical cores, all usable, without SMT, quota or affinity limits.
    ///
    /// ```
    /// assert_eq!(parexec::planner::Machine::with_cores(2).logical_cores, 2);
    /// ```
    pub fn with_cores(cores: usize) -> Self {
        let cores = cores.max(1);
        Machine {
            usable_cores: cores,
            logical_cores: cores,
            physical_cores: cores,
            cgroup_quota: None,
            affinity_cores: cores,
            core_efficiency: 1.0,
            busy_elsewhere: 0.0,
            free_cores: cores as f64,
        }
    }

    /// CPU throughput of `workers` busy workers, in cores: physical cores count fully, usable
    /// SMT siblings at [`SMT_YIELD`], workers beyond the usable cores not at all; every core
    /// beyond the first scaled by `core_efficiency`; never more than the free cores (but
    /// always one core: a serial run competes for it too).
    pub(crate) fn capacity(&self, workers: usize) -> f64 {
        let usable = self.usable_cores.max(1);
        let physical = self.physical_cores.clamp(1, usable);
        let busy = workers.clamp(1, usable);
        let raw = busy.min(physical) as f64 + SMT_YIELD * busy.saturating_sub(physical) as f64;
        let capacity = 1.0 + (raw - 1.0) * self.core_efficiency.clamp(0.0, 1.0);
        capacity.min(self.free_cores.max(1.0))
    }

    /// A machine like this one with `cores` usable cores and no limits: the same SMT ratio,
    /// core efficiency and share of the CPU taken elsewhere.
    pub(crate) fn scaled(&self, cores: usize) -> Machine {
        let usable = self.usable_cores.max(1);
        let physical = self.physical_cores.clamp(1, usable);
        let mut bigger = Machine::with_cores(cores);
        bigger.physical_cores = (cores * physical).div_ceil(usable);
        bigger.core_efficiency = self.core_efficiency;
        bigger.busy_elsewhere = self.busy_elsewhere;
        bigger.free_cores = cores as f64 * (1.0 - self.busy_elsewhere);
        bigger
    }
}

/// What one kind of executor costs on this machine, as calibration measured it.
///
/// ```
/// use std::time::Duration;
/// use parexec::planner::ExecutorCosts;
/// use parexec::ExecutorKind;
/// let costs = ExecutorCosts::new(ExecutorKind::Threads, Duration::from_micros(40), Duration::from_micros(5));
/// assert_eq!(costs.transfer_ns_per_byte, 0.0);
/// assert_eq!(costs.first_dispatch, Duration::ZERO);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutorCosts {
    /// The executor these costs belong to.
    pub kind: ExecutorKind,
    /// Starting one worker and stopping it once idle (and, unless measured apart as
    /// [`first_dispatch`](ExecutorCosts::first_dispatch), waking it for its first chunk).
    pub startup_per_worker: Duration,
    /// The wait, once per run, from handing a new pool its first chunks until its workers
    /// have run them: they wake up together, so this does not grow with their number.
    pub first_dispatch: Duration,
    /// Fixed cost of dispatching one chunk and collecting its results.
    pub chunk_overhead: Duration,
    /// Encoding and decoding one payload byte (zero for threads, which move values).
    pub transfer_ns_per_byte: f64,
    /// For an executor that reaches beyond this machine (MPI): its workers over all ranks and
    /// the number of hosts they run on. `None` for executors on this machine's cores.
    pub cluster: Option<(usize, usize)>,
}

impl ExecutorCosts {
    /// Costs of an executor that moves payloads without encoding them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::ExecutorCosts;
    /// use parexec::ExecutorKind;
    /// let mut costs = ExecutorCosts::new(ExecutorKind::Processes, Duration::from_millis(2), Duration::from_micros(60));
    /// costs.transfer_ns_per_byte = 1.5;
    /// assert_eq!(costs.kind, ExecutorKind::Processes);
    /// ```
    pub fn new(kind: ExecutorKind, startup_per_worker: Duration, chunk_overhead: Duration) -> Self {
        ExecutorCosts {
            kind,
            startup_per_worker,
            first_dispatch: Duration::ZERO,
            chunk_overhead,
            transfer_ns_per_byte: 0.0,
            cluster: None,
        }
    }
}

impl ExecutorCosts {
    /// The machine this executor's workers run on: `machine`, or for a cluster as many
    /// ideal cores as it has workers.
    pub(crate) fn machine(&self, machine: &Machine) -> Machine {
        self.cluster.map_or_else(
            || machine.clone(),
            |(workers, _)| Machine::with_cores(workers),
        )
    }
}
