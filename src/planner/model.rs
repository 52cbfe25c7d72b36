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
//! T(N, c) = S + N·s + L + max( work + n·o/(N·c) + tail,  imbalance,  transfer )
//! work      = n / X(N)                           X: items per second of N workers that each
//!                                                wait mu' - cpu' and compute cpu' on cores(k)
//!                                                (`queueing`); mu' = mu + x, cpu' = cpu share
//!                                                of mu + x. CPU-bound: X = cores(N) / cpu'
//! tail      = max(u, cv·c/2·(1 - 1/N)) · N·work/n the last chunks finish unevenly: whole
//!                                                chunks leave the busiest worker u items
//!                                                over an even share; varying ones end at
//!                                                random
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
//! `S` is the serial part outside the map, `s` the start-up per worker (start and stop),
//! `L` the first dispatch (the wait for a new pool's workers to run their first chunks, once
//! per run, as they wake together), `o` the per-chunk overhead, `x` the per-item payload
//! transfer (zero for threads). `cores(N)` counts physical cores fully and SMT siblings at
//! `SMT_YIELD`, each core beyond the first scaled by the measured core efficiency, so
//! waiting work keeps scaling past the core count while CPU-bound work stops there. Work that
//! both waits and computes approaches the cores' bound slowly: at the knee
//! `N* = cores·mu'/cpu'` the cores are still idle 10-20% of the time, so the candidates go
//! past the knee until the cores are predicted 99.5% busy (at most twice the knee), and once
//! more threads than cores pay, the fewest within 1% of the fastest are chosen (a blocked
//! thread costs next to nothing; its start-up is in `s`). The chunk
//! size minimises `T` analytically, `c* = sqrt(2·n·o / (mu'·(N-1)))`, then is clamped: at
//! least 4 chunks per worker and at most [`MAX_CHUNK_DURATION`] per chunk, but overhead at most
//! 10% of a chunk wins over both.

pub use self::inputs::{ExecutorCosts, Machine, WorkloadProfile};
use self::queueing::throughput;
use crate::ExecutorKind;
use crate::chunking::{
    MAX_CHUNK_DURATION, MAX_OVERHEAD_SHARE, MIN_CHUNKS_PER_WORKER, WINDOW_PER_WORKER,
};

/// Relative slack within which fewer threads are preferred once more threads than cores pay:
/// a thread blocked on a wait costs no core, and its start-up is already in the model, so the
/// slack only absorbs the model's rounding, not a trade of speed for cores.
pub(crate) const WAITING_MARGIN: f64 = 0.01;

/// Share of the time the cores must be predicted busy before more threads stop being
/// candidates for work that waits.
const CORES_FILLED: f64 = 0.995;

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
        let work = n / throughput(mu - cpu, cpu, workers, |k| self.machine.capacity(k));
        let chunks = (n / c).ceil();
        let overhead = chunks * self.costs.chunk_overhead.as_secs_f64() / nw;
        let tail = tail_items(p.items, c as usize, workers, p.cv) * work * nw / n.max(1.0);
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
            startup: nw * self.costs.startup_per_worker.as_secs_f64()
                + self.costs.first_dispatch.as_secs_f64(),
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

    /// The knee for work that waits, `P × (1 + wait / compute)` workers with `P` the cores'
    /// worth of CPU the run gets (fewer than the cores when other processes take some), and
    /// the share of the time that CPU is predicted busy on `workers` of them; `None` for work
    /// that only computes or only waits.
    pub(crate) fn knee(&self, workers: usize) -> Option<(f64, f64)> {
        let wait = self.profile.wait_share();
        if wait <= 0.0 || wait >= 1.0 {
            return None;
        }
        let cores = self.machine.usable_cores.max(1);
        let item = self.profile.mean_item.as_secs_f64();
        let capacity = |k| self.machine.capacity(k);
        let x = throughput(item * wait, item * (1.0 - wait), workers, capacity);
        let busy = x * item * (1.0 - wait) / capacity(cores);
        Some((capacity(cores) / (1.0 - wait), busy))
    }

    /// The most workers worth considering: the usable cores for CPU-bound work, more for work
    /// that waits: past the knee `cores × (1 + wait / compute)`, until the cores are predicted
    /// busy [`CORES_FILLED`] of the time (see `queueing`), at most twice the knee (where they
    /// are 98.5% busy or more); never more than `cap` or the item count.
    pub(crate) fn max_workers(&self, cap: usize) -> usize {
        let cores = self.machine.usable_cores.max(1);
        let limit = cap.min(self.profile.items).max(1);
        let wait = self.profile.wait_share();
        if wait >= 1.0 {
            return limit;
        }
        let knee = cores as f64 / (1.0 - wait);
        let most = ((2.0 * knee).ceil().min(usize::MAX as f64) as usize).min(limit);
        let cpu = self.profile.mean_item.as_secs_f64() * (1.0 - wait);
        let waiting = self.profile.mean_item.as_secs_f64() - cpu;
        let capacity = |k| self.machine.capacity(k);
        let bound = capacity(cores) / cpu;
        let first = (knee.ceil() as usize).max(cores).min(most);
        (first..=most)
            .find(|&n| throughput(waiting, cpu, n, capacity) >= CORES_FILLED * bound)
            .unwrap_or(most)
            .max(cores.min(limit))
    }
}

/// Items' worth of time by which the busiest worker outlasts an even split of `items` in
/// chunks of `chunksize` over `workers`: chunks are whole, so with few of them a worker gets
/// one more than another (60 items in chunks of 7 on 2 workers: 32 against 30), and items
/// whose times vary (coefficient of variation `cv`) leave the workers' last chunks ending at
/// random, half a chunk apart on average.
fn tail_items(items: usize, chunksize: usize, workers: usize, cv: f64) -> f64 {
    let (items, chunksize, workers) = (items.max(1), chunksize.max(1), workers.max(1));
    let (full, rest) = (items / chunksize, items % chunksize);
    let (rounds, left_over) = (full / workers, full % workers);
    // The short chunk goes to a worker that has one full chunk fewer, if there is one.
    let busiest = if left_over == 0 {
        rounds * chunksize + rest
    } else {
        (rounds + 1) * chunksize
    };
    let uneven = busiest as f64 - items as f64 / workers as f64;
    let random = cv.clamp(0.0, 1.0) * chunksize as f64 / 2.0 * (1.0 - 1.0 / workers as f64);
    uneven.max(random)
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
/// fewest workers within `options.margin` of it if that is at most one per core; if only more
/// workers than cores come that close (waiting work), the fewest within [`WAITING_MARGIN`]
/// of it. Threads come before processes before MPI on ties. It goes parallel only if that
/// beats serial at an efficiency of at least `options.threshold`. Efficiency is speedup per
/// core in use, so waiting work with many threads is judged by the cores it occupies, not by
/// its thread count. `costs` must not be empty.
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
    let within = |margin: f64| move |p: &&Prediction| p.total() <= fastest * (1.0 + margin);
    let cores_of = |p: &Prediction| {
        costs
            .iter()
            .find(|c| c.kind == p.kind)
            .map_or(machine.usable_cores, |c| c.machine(machine).usable_cores)
    };
    let margin = if candidates
        .iter()
        .filter(within(options.margin))
        .any(|p| p.workers <= cores_of(p))
    {
        options.margin
    } else {
        options.margin.min(WAITING_MARGIN)
    };
    let best = candidates
        .iter()
        .filter(within(margin))
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
    let cores = cores_of(&best);
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

mod inputs;
mod queueing;
#[cfg(test)]
mod test;
