//! The cost model: what a run with a given executor, worker count and chunk size will take,
//! the chunk size it should use, and the configuration the planner recommends.
//!
//! # Design
//!
//! All inputs are plain data (a [`WorkloadProfile`], a [`Machine`], one [`ExecutorCosts`] per
//! executor kind), so the decision is a pure function that tests drive with injected numbers.
//! For `n` items of mean cost `mu` on `N` workers with chunk size `c` (times in seconds):
//!
//! ```text
//! T(N, c) = S + N·s + max( work + n·o/(N·c) + tail,  imbalance,  transfer )
//! work      = max(n·mu'/N, n·cpu'/cores(N))      mu' = mu + x, cpu' = cpu share of mu + x
//! tail      = c·mu'/2 · (1 - 1/N)                the last chunks finish unevenly
//! imbalance = B/N + k + (R - D)/N                the chunk holding the largest item (time k)
//!                                                starts after the work B before it, at position
//!                                                q of the input (0.5 when unknown); of the work
//!                                                R after it, others finish only D meanwhile
//! D = min((N-1)·k, (window-1)·c·m, R)            m: mean of the other items; an ordered map
//!                                                keeps `window` chunks in flight, so a long
//!                                                chunk at the head stalls the rest
//! transfer  = n·x                                the parent encodes and decodes every payload
//! ```
//!
//! `S` is the serial part outside the map, `s` the start-up per worker (its whole life:
//! start, first wake-up, stop), `o` the per-chunk overhead, `x` the per-item payload transfer
//! (zero for threads). `cores(N)` counts physical cores fully and SMT siblings at
//! [`SMT_YIELD`], each core beyond the first scaled by the measured core efficiency, so
//! waiting work keeps scaling past the core count while CPU-bound work stops there. The chunk
//! size minimises `T` analytically, `c* = sqrt(2·n·o / (mu'·(N-1)))`, then is clamped: at
//! least 4 chunks per worker and at most [`MAX_CHUNK_DURATION`] per chunk, but overhead at most
//! 10% of a chunk wins over both.

use std::time::Duration;

use crate::ExecutorKind;
use crate::chunking::{
    MAX_CHUNK_DURATION, MAX_OVERHEAD_SHARE, MIN_CHUNKS_PER_WORKER, WINDOW_PER_WORKER,
};

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
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutorCosts {
    /// The executor these costs belong to.
    pub kind: ExecutorKind,
    /// Starting one worker, waking it for its first chunk, and stopping it once idle.
    pub startup_per_worker: Duration,
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

/// The knobs of a decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// Least speedup per used core for parallel execution to be worth it.
    pub(crate) threshold: f64,
    /// Relative slack within which fewer workers are preferred.
    pub(crate) margin: f64,
    /// Most workers considered for work that mostly waits.
    pub(crate) max_workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.8,
            margin: 0.05,
            max_workers: 64,
        }
    }
}

/// The predicted time of one configuration, split into the terms that make it up (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prediction {
    pub(crate) kind: ExecutorKind,
    pub(crate) workers: usize,
    pub(crate) chunksize: usize,
    pub(crate) serial: f64,
    pub(crate) startup: f64,
    pub(crate) work: f64,
    pub(crate) overhead: f64,
    pub(crate) tail: f64,
    pub(crate) imbalance: f64,
    pub(crate) transfer: f64,
}

impl Prediction {
    pub(crate) fn parallel_part(&self) -> f64 {
        (self.work + self.overhead + self.tail)
            .max(self.imbalance)
            .max(self.transfer)
    }

    pub(crate) fn total(&self) -> f64 {
        self.serial + self.startup + self.parallel_part()
    }
}

/// The model bound to one workload, machine and executor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CostModel<'a> {
    pub(crate) profile: &'a WorkloadProfile,
    pub(crate) machine: &'a Machine,
    pub(crate) costs: &'a ExecutorCosts,
}

impl CostModel<'_> {
    fn transfer_per_item(&self) -> f64 {
        self.profile.payload_bytes * self.costs.transfer_ns_per_byte * 1e-9
    }

    /// Mean worker time of one item, payload decoding and encoding included.
    fn item_secs(&self) -> f64 {
        self.profile.mean_item.as_secs_f64() + self.transfer_per_item()
    }

    /// The chunk size that minimises predicted time on `workers`, clamped for overhead,
    /// balance and progress.
    pub(crate) fn chunksize(&self, workers: usize) -> usize {
        let n = self.profile.items.max(1);
        let mu = self.item_secs().max(1e-12);
        let o = self.costs.chunk_overhead.as_secs_f64();
        let workers = workers.max(1);
        let optimum = if workers > 1 {
            (2.0 * n as f64 * o / (mu * (workers - 1) as f64)).sqrt()
        } else {
            f64::INFINITY
        };
        let balance = (n / (MIN_CHUNKS_PER_WORKER * workers)).max(1) as f64;
        let progress = (MAX_CHUNK_DURATION.as_secs_f64() / mu).floor().max(1.0);
        // The epsilon keeps float noise in an exact ratio from adding one item.
        let overhead = (o / (MAX_OVERHEAD_SHARE * mu) - 1e-9).ceil();
        let per_worker = n.div_ceil(workers) as f64;
        let c = optimum
            .min(balance)
            .min(progress)
            .max(overhead)
            .min(per_worker);
        (c.max(1.0) as usize).min(n)
    }

    /// The predicted run on `workers` workers with `chunksize` items per chunk.
    pub(crate) fn predict(&self, workers: usize, chunksize: usize) -> Prediction {
        let p = self.profile;
        let n = p.items as f64;
        let workers = workers.max(1);
        let nw = workers as f64;
        let c = chunksize.clamp(1, p.items.max(1)) as f64;
        let x = self.transfer_per_item();
        let mu = self.item_secs();
        let cpu = p.mean_item.as_secs_f64() * p.cpu_share.clamp(0.0, 1.0) + x;
        let work = (n * mu / nw).max(n * cpu / self.machine.capacity(workers));
        let chunks = (n / c).ceil();
        let overhead = chunks * self.costs.chunk_overhead.as_secs_f64() / nw;
        let tail = c * mu / 2.0 * (1.0 - 1.0 / nw);
        let total = n * mu;
        let largest = p.largest_item.as_secs_f64() + x;
        let largest_chunk = (largest + (c - 1.0) * mu).min(total);
        let before = p.largest_position.clamp(0.0, 1.0) * (total - largest_chunk);
        let after = total - largest_chunk - before;
        let window = (WINDOW_PER_WORKER * workers) as f64;
        let other_item = if n > 1.0 {
            ((total - largest) / (n - 1.0)).max(0.0)
        } else {
            mu
        };
        let meanwhile = ((nw - 1.0) * largest_chunk)
            .min((window - 1.0) * c * other_item)
            .min(after);
        let imbalance = before / nw + largest_chunk + (after - meanwhile) / nw;
        Prediction {
            kind: self.costs.kind,
            workers,
            chunksize: c as usize,
            serial: p.serial.as_secs_f64(),
            startup: nw * self.costs.startup_per_worker.as_secs_f64(),
            work,
            overhead,
            tail,
            imbalance,
            transfer: n * x,
        }
    }

    /// The best prediction on `workers` workers, with the chunk size chosen for them.
    pub(crate) fn best_for(&self, workers: usize) -> Prediction {
        self.predict(workers, self.chunksize(workers))
    }

    /// Predicted speedup on `workers` workers over the serial run, and whether it is
    /// modelled: on this machine while it would run that many (the usable cores, or more
    /// threads for waiting work, up to `cap`), else on a machine with `workers` cores like
    /// this one. The plan's curve, its speedup and the prediction a recorded run is compared
    /// with all come from here, so they agree.
    pub(crate) fn speedup_on(&self, workers: usize, cap: usize) -> (f64, bool) {
        let serial = self.profile.serial.as_secs_f64() + self.profile.total_work().as_secs_f64();
        let modelled = workers > self.max_workers(cap).max(self.machine.usable_cores);
        let time = if modelled {
            let bigger = self.machine.scaled(workers);
            CostModel {
                machine: &bigger,
                ..*self
            }
            .best_for(workers)
            .total()
        } else {
            self.best_for(workers).total()
        };
        (serial / time, modelled)
    }

    /// The most workers worth considering: the usable cores for CPU-bound work, more for work
    /// that waits, `cores × (1 + wait / compute)`; never more than `cap` or the item count.
    pub(crate) fn max_workers(&self, cap: usize) -> usize {
        let cores = self.machine.usable_cores.max(1);
        let wait = self.profile.wait_share();
        let waiting = if wait >= 1.0 {
            f64::INFINITY
        } else {
            cores as f64 * (1.0 + wait / (1.0 - wait))
        };
        let target = waiting.ceil().min(usize::MAX as f64) as usize;
        target.max(cores).min(cap).min(self.profile.items).max(1)
    }
}

/// The outcome of a decision: the preferred parallel configuration and whether to use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub(crate) best: Prediction,
    pub(crate) serial_time: f64,
    pub(crate) speedup: f64,
    pub(crate) efficiency: f64,
    pub(crate) parallel: bool,
}

/// Picks the executor, worker count and chunk size with the least predicted time, then the
/// fewest workers within `options.margin` of it (threads before processes before MPI on ties), and goes
/// parallel only if that beats serial at an efficiency of at least `options.threshold`.
/// Efficiency is speedup per core in use, so waiting work with many threads is judged by the
/// cores it occupies, not by its thread count. `costs` must not be empty.
pub(crate) fn decide(
    profile: &WorkloadProfile,
    machine: &Machine,
    costs: &[ExecutorCosts],
    options: &Options,
) -> Decision {
    let mut candidates = Vec::new();
    for executor in costs {
        let reach = executor.machine(machine);
        let model = CostModel {
            profile,
            machine: &reach,
            costs: executor,
        };
        // One worker is never faster than running inline; it is a candidate only when the
        // machine allows no more.
        let most = model.max_workers(options.max_workers);
        candidates.extend((most.min(2)..=most).map(|w| model.best_for(w)));
    }
    let fastest = candidates
        .iter()
        .map(Prediction::total)
        .fold(f64::INFINITY, f64::min);
    let best = candidates
        .iter()
        .filter(|p| p.total() <= fastest * (1.0 + options.margin))
        .min_by_key(|p| {
            let kind = p.kind;
            (
                p.workers,
                kind != ExecutorKind::Threads,
                kind == ExecutorKind::Mpi,
            )
        })
        .copied()
        .expect("at least one executor and one worker are always considered");
    let cores = costs
        .iter()
        .find(|c| c.kind == best.kind)
        .map_or(machine.usable_cores, |c| c.machine(machine).usable_cores);
    let serial_time = profile.serial.as_secs_f64() + profile.total_work().as_secs_f64();
    let speedup = serial_time / best.total();
    let efficiency = speedup / best.workers.min(cores.max(1)) as f64;
    Decision {
        best,
        serial_time,
        speedup,
        efficiency,
        parallel: best.workers > 1 && speedup > 1.0 && efficiency >= options.threshold,
    }
}

#[cfg(test)]
mod test;
