//! Calibration: the cores this process can use and what each executor costs here, measured
//! once per process and cached.
//!
//! # Design
//!
//! Usable cores are [`Cores::detect`], the definition the pools' default worker counts use
//! too: the least of the online logical CPUs, the affinity mask and the cgroup CPU quota (v1 or
//! v2, along the whole hierarchy), a fractional quota rounded up; the fraction itself is kept
//! as [`Machine::cgroup_quota`] and caps [`Machine::free_cores`]. Executor costs are measured,
//! not assumed, each as the fastest of a few tries (the others include noise from elsewhere on
//! the machine):
//!
//! * core efficiency and load from elsewhere: one thread burns CPU alone, then one thread per
//!   usable physical core burns at once for about 10 ms, in five probes 20 ms apart, every
//!   thread timed by its own CPU clock as well as the wall clock. Iterations per CPU second,
//!   together against alone, show what shared caches, clocks or a hypervisor take away; other
//!   processes take time from a thread, not speed, so they cannot lower that rate (the median
//!   over the probes counts). CPU time short of wall time is what other processes took while
//!   every core was wanted; it counts at the lower quartile over the probes, so only a load
//!   present in four probes of five (a steady one) is reported, and the plan then assumes
//!   only the free cores;
//! * start-up per worker: a pool's whole life (start, a no-op chunk per worker, idle, stop)
//!   with one worker per core and with four times as many: the difference per extra worker
//!   (spawning and joining a thread);
//! * per-chunk overhead: a short job (4 one-item chunks of a known CPU cost per worker) and a
//!   long one (300) on new pools, from start to stop: what the extra chunks take beyond their
//!   serial cost spread over the cores is the `n·o/(N·c)` term of the model, with the
//!   contention and wake-ups of a real run included (a no-op map would flatter it) and the
//!   pool's start, first dispatch and stop cancelled out;
//! * first dispatch: what the short job took beyond its workers' start-up, its items over
//!   the cores and its chunks' overhead, paid once per run (new workers wake together, so it
//!   does not grow with them);
//! * payload transfer: postcard encode plus decode of a mixed record batch in this process;
//!   for a process pool, also 8 MiB of arguments sent through the real pool, end to end.
//!
//! Threads are calibrated on first use of the planner (about 200 ms, a third of it the pauses
//! between probes). A process pool is
//! calibrated only on demand ([`Calibration::process_pool`]), since its workers need
//! `parexec::init()` at the start of `main`; that takes some tens of milliseconds.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use self::probe::core_load;
use super::model::{ExecutorCosts, Machine};
use crate::{Cores, Error, ExecutorKind, ProcessPool, ThreadPool};

mod probe;

/// Repetitions of every timing; the fastest counts, as the others include noise from
/// elsewhere on the machine.
const TRIES: usize = 5;
/// How long a calibration pool stays idle before it is stopped, long enough for its workers
/// to park.
const IDLE_BEFORE_STOP: Duration = Duration::from_micros(300);
/// One-item chunks timed for the per-chunk overhead; a multiple of every worker count
/// calibrated (1 to 4), so that the run has no tail.
const OVERHEAD_CHUNKS: usize = 300;
/// One-item chunks per worker of the short job the per-chunk overhead is measured against.
const SHORT_JOB_CHUNKS: usize = 4;
/// The least per-chunk overhead calibration reports, in seconds: one dispatch.
const MIN_CHUNK_OVERHEAD: f64 = 500e-9;
/// The larger pool of the start-up probe, as a multiple of the workers of the smaller one.
const SPAWN_PROBE_FACTOR: usize = 4;
/// Records encoded and decoded to time payload transfer.
const TRANSFER_RECORDS: usize = 2000;

/// One-item chunks timed for the per-chunk overhead of a process pool.
const PROCESS_OVERHEAD_CHUNKS: u32 = 300;
/// Size and number of the payloads sent through a process pool to time transfer.
const PROBE_PAYLOAD: usize = 512 << 10;
const PROBE_PAYLOADS: usize = 16;

static CALIBRATION: OnceLock<Result<Calibration, Error>> = OnceLock::new();
static PROCESSES: OnceLock<Result<ExecutorCosts, Error>> = OnceLock::new();

/// What the planner measured about this machine and its executors, once per process.
///
/// ```
/// let calibration = parexec::planner::Calibration::get()?;
/// assert!(calibration.machine.usable_cores >= 1);
/// println!("thread chunk overhead {:?}", calibration.threads.chunk_overhead);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Calibration {
    /// The cores this process can use.
    pub machine: Machine,
    /// Start-up and per-chunk costs of a [`ThreadPool`].
    pub threads: ExecutorCosts,
    /// Encoding plus decoding one byte of payload with postcard, in nanoseconds.
    pub transfer_ns_per_byte: f64,
    /// How long the calibration took.
    pub took: Duration,
}

impl Calibration {
    /// The calibration of this process, measured on the first call and cached after.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the measurement pool cannot start its threads; later calls report the
    /// same error without measuring again.
    ///
    /// ```
    /// let first = parexec::planner::Calibration::get()?;
    /// let again = parexec::planner::Calibration::get()?;
    /// assert!(std::ptr::eq(first, again), "measured once");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn get() -> Result<&'static Calibration, Error> {
        CALIBRATION
            .get_or_init(measure)
            .as_ref()
            .map_err(Error::clone)
    }

    /// The costs of a [`ProcessPool`], measured on the first call (a few pools are started,
    /// so this takes some tens of milliseconds) and cached after. Separate from
    /// [`get`](Calibration::get) because worker processes need `parexec::init()` at the start
    /// of `main`.
    ///
    /// # Errors
    ///
    /// What [`ProcessPool::new`] returns when it cannot start workers, for example
    /// [`Error::Handshake`] when `main` does not call `parexec::init()` first, or
    /// [`Error::Unsupported`] outside Unix; later calls report the same error.
    ///
    /// ```standalone_crate
    /// parexec::init();
    /// let costs = parexec::planner::Calibration::process_pool()?;
    /// println!("process start-up {:?} per worker", costs.startup_per_worker);
    /// assert!(costs.transfer_ns_per_byte > 0.0);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn process_pool() -> Result<&'static ExecutorCosts, Error> {
        PROCESSES
            .get_or_init(|| {
                let calibration = Calibration::get()?;
                process_costs(&calibration.machine, calibration.transfer_ns_per_byte)
            })
            .as_ref()
            .map_err(Error::clone)
    }

    /// The costs of an `MpiPool` on this MPI job (cargo feature `mpi`), measured on the first
    /// call through the worker ranks (the open pool's, or a pool opened for the purpose) and
    /// cached after: the per-chunk overhead of 300 one-item tasks in flight at once, the
    /// transfer cost per byte of 8 MiB of arguments, and as start-up this rank's `MPI_Init`
    /// plus the first pool's handshake (the launcher's own time before the process started
    /// is not seen). [`ExecutorCosts::cluster`] gives the job's workers and hosts.
    ///
    /// # Errors
    ///
    /// [`Error::Mpi`] unless this process is rank 0 of an MPI job with worker ranks,
    /// [`Error::Unsupported`] in a build without the feature `mpi`; later calls report the
    /// same error.
    ///
    /// ```
    /// // Not started by mpirun here, so there are no ranks to measure.
    /// assert!(parexec::planner::Calibration::mpi_pool().is_err());
    /// ```
    pub fn mpi_pool() -> Result<ExecutorCosts, Error> {
        #[cfg(feature = "mpi")]
        {
            let measured = crate::mpi::costs(Calibration::get()?.transfer_ns_per_byte)?;
            let mut costs = ExecutorCosts::new(
                ExecutorKind::Mpi,
                measured.startup_per_worker,
                measured.per_chunk,
            );
            costs.transfer_ns_per_byte = measured.transfer_ns_per_byte;
            costs.cluster = Some((measured.workers, measured.hosts));
            Ok(costs)
        }
        #[cfg(not(feature = "mpi"))]
        Err(without_mpi())
    }

    /// The costs of executor `kind`, calibrating on first use.
    pub(crate) fn costs(&self, kind: ExecutorKind) -> Result<ExecutorCosts, Error> {
        match kind {
            ExecutorKind::Threads => Ok(self.threads.clone()),
            ExecutorKind::Processes => Calibration::process_pool().cloned(),
            ExecutorKind::Mpi => Calibration::mpi_pool(),
        }
    }
}

fn measure() -> Result<Calibration, Error> {
    let started = Instant::now();
    let machine = machine();
    let threads = thread_costs(&machine)?;
    Ok(Calibration {
        machine,
        threads,
        transfer_ns_per_byte: transfer_ns_per_byte(),
        took: started.elapsed(),
    })
}

/// Spin iterations of one item of the per-chunk overhead probe, some tens of microseconds.
const ITEM_ITERATIONS: u64 = 20_000;

/// Burns CPU for `iterations` without touching memory.
fn burn(iterations: u64) -> u64 {
    let mut x = 1_u64;
    for _ in 0..iterations {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

fn machine() -> Machine {
    // The same definition as the pools' default worker count, so a plan and a default pool
    // never disagree about how many cores there are.
    let cores = Cores::detect();
    let usable = cores.workers();
    let physical = num_cpus::get_physical().clamp(1, cores.online);
    let load = core_load(usable.min(physical), usable, cores.quota);
    Machine {
        usable_cores: usable,
        logical_cores: cores.online,
        physical_cores: physical,
        cgroup_quota: cores.quota,
        affinity_cores: cores.affinity.unwrap_or(cores.online),
        core_efficiency: load.core_efficiency,
        busy_elsewhere: load.busy_elsewhere,
        free_cores: load.free_cores,
    }
}

/// The whole life of a pool: start it, run one no-op chunk per worker, let the workers go
/// idle, stop it. The idle wait itself is not counted; it is there because a real run's
/// workers are idle when it ends, and waking parked workers to stop them costs more than
/// stopping busy ones.
fn lifecycle<P>(
    tries: usize,
    start: impl Fn() -> Result<P, Error>,
    first_map: impl Fn(&P),
) -> Result<Duration, Error> {
    let mut best = Duration::MAX;
    for _ in 0..tries {
        let started = Instant::now();
        let pool = start()?;
        first_map(&pool);
        let running = started.elapsed();
        std::thread::sleep(IDLE_BEFORE_STOP);
        let stopping = Instant::now();
        drop(pool);
        best = best.min(running + stopping.elapsed());
    }
    Ok(best)
}

/// The whole life of a thread pool of `workers` that runs one no-op chunk per worker.
fn thread_pool_life(workers: usize) -> Result<Duration, Error> {
    let identity = |x: u32| black_box(x);
    lifecycle(
        TRIES,
        || ThreadPool::new(workers),
        |pool| {
            let _ = pool.map(identity, 0..workers as u32).chunksize(1).count();
        },
    )
}

/// The fastest of a few runs of `chunks` one-item chunks of [`ITEM_ITERATIONS`] on a new
/// pool of `workers`, from its start to its stop: what a short job of that shape costs.
fn short_job(workers: usize, chunks: usize) -> Result<Duration, Error> {
    let mut best = Duration::MAX;
    for _ in 0..TRIES {
        let started = Instant::now();
        let pool = ThreadPool::new(workers)?;
        let _ = pool
            .map(burn, vec![ITEM_ITERATIONS; chunks])
            .chunksize(1)
            .count();
        drop(pool);
        best = best.min(started.elapsed());
    }
    Ok(best)
}

fn thread_costs(machine: &Machine) -> Result<ExecutorCosts, Error> {
    let workers = machine.usable_cores.clamp(1, 4);
    // Start-up grows with the workers, the first dispatch does not (they wake together):
    // the difference between two pool sizes is the start-up per worker.
    let few = thread_pool_life(workers)?;
    let many = thread_pool_life(SPAWN_PROBE_FACTOR * workers)?;
    let per_worker = many.saturating_sub(few) / ((SPAWN_PROBE_FACTOR - 1) * workers) as u32;
    // Per-chunk overhead under real conditions: new pools, busy workers, a consumer that
    // competes with them for the cores, wake-ups. One-item chunks of a known CPU cost, in a
    // short job and a longer one: what the extra chunks take beyond their cost spread over
    // the cores is overhead, with the pool's start-up, first dispatch and stop cancelled out.
    // Both counts are multiples of the workers, so neither has a tail.
    let item = (0..TRIES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..OVERHEAD_CHUNKS {
                black_box(burn(ITEM_ITERATIONS));
            }
            started.elapsed() / OVERHEAD_CHUNKS as u32
        })
        .min()
        .expect("at least one try");
    let short = short_job(workers, SHORT_JOB_CHUNKS * workers)?;
    let long = short_job(workers, OVERHEAD_CHUNKS)?;
    let extra = (OVERHEAD_CHUNKS - SHORT_JOB_CHUNKS * workers) as f64;
    let excess = long.saturating_sub(short).as_secs_f64()
        - extra * item.as_secs_f64() / machine.capacity(workers);
    // A run that beat its own CPU bound measured nothing: keep a floor of one dispatch.
    let per_chunk = (excess.max(0.0) * workers as f64 / extra).max(MIN_CHUNK_OVERHEAD);
    // What the short job took beyond its workers' start-up, its items spread over the cores
    // and its chunks' overhead is paid once per run, whatever the job's length: the first
    // dispatch as a short job of real items meets it (new threads scheduled for the first
    // time, the first wake-ups, the consumer's first turn).
    let chunks = (SHORT_JOB_CHUNKS * workers) as f64;
    let once = short.as_secs_f64()
        - per_worker.as_secs_f64() * workers as f64
        - chunks * item.as_secs_f64() / machine.capacity(workers)
        - chunks * per_chunk / workers as f64;
    let mut costs = ExecutorCosts::new(
        ExecutorKind::Threads,
        per_worker,
        Duration::from_secs_f64(per_chunk),
    );
    costs.first_dispatch = Duration::from_secs_f64(once.max(0.0));
    Ok(costs)
}

fn echo(x: u32) -> u32 {
    x
}

fn byte_len(bytes: Vec<u8>) -> usize {
    bytes.len()
}

/// What planning for MPI says in a build without it.
#[cfg(not(feature = "mpi"))]
pub(super) fn without_mpi() -> Error {
    Error::Unsupported("MPI needs parexec's cargo feature `mpi`")
}

fn process_costs(machine: &Machine, encoding_ns_per_byte: f64) -> Result<ExecutorCosts, Error> {
    let workers = machine.usable_cores.clamp(1, 4);
    // Process start-up is slow enough to need fewer tries than threads.
    let startup = lifecycle(
        2,
        || ProcessPool::new(workers),
        |pool| {
            let _ = pool.map(echo, 0..workers as u32).chunksize(1).count();
        },
    )? / workers as u32;
    let pool = ProcessPool::new(workers)?;
    let _ = pool.map(echo, 0..8 * workers as u32).chunksize(1).count();
    let started = Instant::now();
    let done = pool
        .map(echo, 0..PROCESS_OVERHEAD_CHUNKS)
        .chunksize(1)
        .count();
    let per_chunk = started.elapsed() * workers as u32 / done.max(1) as u32;
    // Large payloads through the real pool: encoding, the socket and decoding, on the
    // parent's side, which sends every argument and receives every result.
    let payloads = vec![vec![0_u8; PROBE_PAYLOAD]; PROBE_PAYLOADS];
    let started = Instant::now();
    let _ = pool.map(byte_len, payloads).chunksize(1).count();
    let moved = started
        .elapsed()
        .saturating_sub(per_chunk * PROBE_PAYLOADS as u32 / workers as u32);
    let through_pool = moved.as_nanos() as f64 / (PROBE_PAYLOAD * PROBE_PAYLOADS) as f64;
    let mut costs = ExecutorCosts::new(ExecutorKind::Processes, startup, per_chunk);
    costs.transfer_ns_per_byte = through_pool.max(encoding_ns_per_byte);
    Ok(costs)
}

fn transfer_ns_per_byte() -> f64 {
    let records: Vec<(u32, f64, String)> = (0..TRANSFER_RECORDS)
        .map(|i| (i as u32, i as f64 * 0.5, format!("record number {i}")))
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        let Ok(bytes) = postcard::to_allocvec(&records) else {
            return 0.0;
        };
        let decoded: Result<Vec<(u32, f64, String)>, _> = postcard::from_bytes(&bytes);
        black_box(decoded.is_ok());
        best = best.min(started.elapsed().as_nanos() as f64 / bytes.len().max(1) as f64);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_uses_the_pools_definition_of_cores() {
        let calibration = Calibration::get().unwrap();
        let machine = &calibration.machine;
        let cores = Cores::detect();
        assert_eq!(machine.usable_cores, cores.workers());
        assert_eq!(machine.logical_cores, cores.online);
        assert_eq!(machine.cgroup_quota, cores.quota);
        let default_pool = ThreadPool::builder().build().unwrap();
        assert_eq!(machine.usable_cores, default_pool.workers());
        assert!(std::ptr::eq(calibration, Calibration::get().unwrap()));
    }
}
