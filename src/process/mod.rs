//! [`ProcessPool`]: the executor API over worker processes, for crash isolation.
//!
//! # Design
//!
//! See `README.md` beside this file for the design: the frame format and protocol, the
//! scheduling and the supervision of workers.
//!
//! * `builder`: the settings, validated, and starting the pool.
//! * `job`: a task's frame and how a worker's reply resolves its future.
//! * `dispatch`: encoding a task once and writing it to the least-loaded worker, or queueing it.
//! * `schedule`: the scheduling state (window, queue, slots, cost estimates); pure data.
//! * `supervisor`: one thread per worker slot: start, read replies, replace on death.
//! * `launch`: the worker environment and executable identity, shared by `spawn` and `worker`.
//! * `spawn`: starting a worker (its socket as stdin, parent-death signal) and the handshake.
//! * `worker`: `init()` and the loop a re-executed copy of this binary runs as a worker.
//! * `protocol`: length-prefixed postcard frames, with a table of the messages.
//! * `code`: task functions travel as offsets from an anchor function.

mod builder;
#[cfg(unix)]
pub(crate) mod code;
#[cfg(unix)]
mod dispatch;
#[cfg(unix)]
pub(crate) mod job;
#[cfg(unix)]
mod launch;
#[cfg(unix)]
pub(crate) mod protocol;
#[cfg(unix)]
mod schedule;
#[cfg(unix)]
mod spawn;
#[cfg(unix)]
mod supervisor;
#[cfg(unix)]
mod worker;

use std::fmt;
use std::time::Duration;

pub use self::builder::ProcessPoolBuilder;

use crate::map::{ChunkDispatch, DispatchInto, Dispatched};
use crate::{Error, Executor, ExecutorKind, Future, Map, Payload, Stats};

/// Makes this process a worker if a [`ProcessPool`] started it; otherwise returns at once.
///
/// Call it first thing in `main`, before anything with side effects: a pool re-executes the
/// current executable, and `init` is where that copy turns into a worker. In a worker it serves
/// tasks until the pool closes the connection or the parent dies, then exits the process; it
/// never returns there. In any other process it costs one environment lookup.
///
/// # Tests, benches and examples
///
/// * Binaries and examples: call `parexec::init()` on the first line of `main`.
/// * Criterion benches (`harness = false`): write your own `fn main()` that calls
///   `parexec::init()` and then runs the groups defined with `criterion_group!`, instead of
///   `criterion_main!`.
/// * Integration tests: put process-pool tests in a test target with `harness = false` whose
///   `main` calls `parexec::init()` first, then runs the tests. This crate's own
///   `tests/process_pool.rs` does so with a small harness that also speaks the `--list` /
///   `--exact` protocol of `cargo nextest`, so it works the same under `cargo test` and
///   `cargo nextest run`.
/// * Tests under the standard harness can instead name one test whose body calls `init()`,
///   and start the pool with
///   [`worker_args(["--exact", "that_test", "--nocapture"])`](ProcessPoolBuilder::worker_args):
///   each worker then re-runs the test binary filtered to that one test.
///
/// # MPI
///
/// With the cargo feature `mpi`, `init` also recognises a launch by `mpirun` or `srun`: it
/// initialises MPI, returns on rank 0, and turns every other rank into a worker of
/// `MpiPool`, which exits once rank 0 drops its pool or exits. Outside such a launch it
/// touches no MPI at all.
///
/// A process started as a worker whose `main` never hands over to `init` runs as an ordinary
/// program, but any `ProcessPool` it builds fails with [`Error::Handshake`] instead of starting
/// workers of its own, so the mistake cannot multiply into a storm of processes; the parent's
/// pool reports a handshake error naming `init`.
///
/// # Panics
///
/// Never. A panic inside a task becomes [`Error::Panicked`] in the parent, and the worker keeps
/// serving.
///
/// ```
/// parexec::init();
/// // ... the rest of main, which may build ProcessPools ...
/// ```
pub fn init() {
    #[cfg(unix)]
    worker::init();
    // After the process-pool check: a worker process of an MPI rank inherits the launcher's
    // variables, but must serve its parent, not join the MPI job.
    #[cfg(feature = "mpi")]
    crate::mpi::init();
}

/// A pool of worker processes that runs `fn(A) -> R` tasks with serde payloads, isolating the
/// caller from anything a task does: panic, abort, segfault, `exit`, an endless loop, a leak.
///
/// It offers the same [`Executor`] API as [`ThreadPool`](crate::ThreadPool): `submit` returns
/// a [`Future`], `map` returns the lazy, ordered, chunked [`Map`], and both work with
/// [`as_completed`](crate::as_completed) and [`wait`](crate::wait).
///
/// Workers re-execute the current binary, so `main` must call [`init()`] first (see there for
/// tests and benches). A worker speaks length-prefixed postcard frames over a private Unix
/// socket; its stdout and stderr are the parent's, so `println!` in a task is safe.
///
/// # Faults
///
/// * A panic in a task gives [`Error::Panicked`] (message and location); the worker keeps
///   serving.
/// * If a worker dies, only the task or `map` chunk it was running fails, with
///   [`Error::WorkerDied`] (pid and exit code or signal); tasks queued behind it are sent to a
///   fresh worker, never failed. [`retry_worker_deaths`](ProcessPoolBuilder::retry_worker_deaths)
///   re-runs the failed one too.
/// * [`task_timeout`](ProcessPoolBuilder::task_timeout) kills a worker whose task overran; that
///   task gets [`Error::Timeout`] and the worker is replaced.
/// * An argument that cannot be serialized fails its own future at once; a result that cannot
///   be serialized fails only its own task (or `map` item).
/// * A malformed or oversized frame from a worker gives its running task [`Error::Protocol`]
///   and replaces the worker.
/// * Workers exit when the parent exits or crashes (EOF on the socket; on Linux also a
///   parent-death signal). [`shutdown`](ProcessPool::shutdown) and `Drop` reap every worker.
///
/// ```standalone_crate
/// fn square(x: u64) -> u64 { x * x }
///
/// fn main() -> Result<(), parexec::Error> {
///     parexec::init();
///     let pool = parexec::ProcessPool::new(2)?;
///     assert_eq!(pool.submit(square, 7).result()?, 49);
///     let squares: Vec<u64> = pool.map(square, 0..1000).collect::<Result<_, _>>()?;
///     assert_eq!(squares[999], 998_001);
///     Ok(())
/// }
/// ```
pub struct ProcessPool {
    #[cfg(unix)]
    shared: std::sync::Arc<supervisor::Shared>,
    #[cfg(not(unix))]
    never: std::convert::Infallible,
}

impl ProcessPool {
    /// The largest frame (one message: a task's argument or a chunk's results) by default:
    /// 512 MiB. See [`ProcessPoolBuilder::max_frame_size`].
    ///
    /// ```
    /// assert_eq!(parexec::ProcessPool::DEFAULT_MAX_FRAME_SIZE, 512 << 20);
    /// ```
    pub const DEFAULT_MAX_FRAME_SIZE: usize = 512 << 20;

    /// A pool of `workers` worker processes, started at once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, [`Error::Io`] if a process cannot be
    /// started, [`Error::Handshake`] if a worker does not answer as a parexec worker of this
    /// build (usually: `main` does not call [`init()`] first), and [`Error::Unsupported`]
    /// outside Unix.
    ///
    /// ```standalone_crate
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(2)?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn new(workers: usize) -> Result<Self, Error> {
        Self::builder().workers(workers).build()
    }

    /// A builder for every other setting.
    ///
    /// ```standalone_crate
    /// use std::time::Duration;
    /// parexec::init();
    /// let pool = parexec::ProcessPool::builder()
    ///     .workers(4)
    ///     .task_timeout(Duration::from_secs(30))
    ///     .max_tasks_per_worker(10_000)
    ///     .retry_worker_deaths(1)
    ///     .build()?;
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// Runs `f(arg)` in a worker process and returns the future of its result.
    ///
    /// `f` must be a plain function (or a non-capturing closure); several arguments travel as
    /// a tuple. The argument is serialized at once, on the calling thread.
    ///
    /// # Errors
    ///
    /// The future resolves to [`Error::Panicked`] if `f` panics (the worker survives),
    /// [`Error::Serialization`] if the argument or result does not serialize (at once for the
    /// argument), [`Error::InvalidArgument`] if the argument exceeds the maximum frame size,
    /// [`Error::WorkerDied`], [`Error::Timeout`] or [`Error::Protocol`] as described under
    /// *Faults* above, and [`Error::Shutdown`] after [`shutdown`](ProcessPool::shutdown).
    ///
    /// ```standalone_crate
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(1)?;
    /// assert_eq!(pool.submit(add, (2, 3)).result()?, 5);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        #[cfg(unix)]
        return self.shared.submit(f, arg);
        #[cfg(not(unix))]
        {
            let _ = (f, arg);
            self.unsupported()
        }
    }

    /// Applies `f` to every item in worker processes, lazily and in chunks: each chunk travels
    /// as one frame each way. See [`Map`] for ordering, the automatic chunk size and the
    /// in-flight window.
    ///
    /// # Errors
    ///
    /// Each item yields its own `Result`: a panic or an unserializable result fails only its
    /// item; a dead worker, a timeout or a protocol error fails the items of the chunk that
    /// was running.
    ///
    /// ```standalone_crate
    /// fn double(x: i32) -> i32 { 2 * x }
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(2)?;
    /// let out: Vec<i32> = pool.map(double, vec![1, 2, 3]).chunksize(2).collect::<Result<_, _>>()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        Map::new(items.into_iter(), Box::new(ProcessChunks { pool: self, f }))
    }

    /// The number of worker processes the pool keeps.
    ///
    /// ```standalone_crate
    /// parexec::init();
    /// assert_eq!(parexec::ProcessPool::new(3)?.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        #[cfg(unix)]
        return self.shared.workers();
        #[cfg(not(unix))]
        self.unsupported()
    }

    /// The process ids of the workers running right now (fewer than
    /// [`workers`](ProcessPool::workers) while some are starting or being replaced).
    ///
    /// ```standalone_crate
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(2)?;
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        #[cfg(unix)]
        return self.shared.worker_pids();
        #[cfg(not(unix))]
        self.unsupported()
    }

    /// Counters and timings: a *task* is one `submit` or one `map` chunk; `transfer` is the
    /// time spent encoding, moving and decoding payloads; `worker_restarts` counts workers
    /// started to replace ones that died, were killed or were recycled.
    ///
    /// ```standalone_crate
    /// fn id(x: u8) -> u8 { x }
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(1)?;
    /// pool.submit(id, 1).result()?;
    /// assert_eq!(pool.stats().completed, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        #[cfg(unix)]
        return self.shared.stats();
        #[cfg(not(unix))]
        self.unsupported()
    }

    /// Stops accepting tasks, lets every queued and running task finish, then closes the
    /// workers' sockets and reaps every worker process. Idempotent; `Drop` does the same.
    ///
    /// ```standalone_crate
    /// fn id(x: u8) -> u8 { x }
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(1)?;
    /// let queued = pool.submit(id, 1);
    /// pool.shutdown();
    /// assert_eq!(queued.result()?, 1);
    /// assert!(matches!(pool.submit(id, 2).result(), Err(parexec::Error::Shutdown)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown(&self) {
        #[cfg(unix)]
        self.shared.shutdown();
        #[cfg(not(unix))]
        self.unsupported()
    }
}

#[cfg(not(unix))]
impl ProcessPool {
    /// No value exists outside Unix: `build` refuses to make one.
    fn unsupported(&self) -> ! {
        let never = self.never;
        match never {}
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("workers", &self.workers())
            .field("worker_pids", &self.worker_pids())
            .finish_non_exhaustive()
    }
}

impl crate::executor::sealed::Sealed for ProcessPool {}

impl Executor for ProcessPool {
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        ProcessPool::submit(self, f, arg)
    }

    fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        ProcessPool::map(self, f, items)
    }

    fn workers(&self) -> usize {
        ProcessPool::workers(self)
    }

    fn stats(&self) -> Stats {
        ProcessPool::stats(self)
    }

    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Processes
    }

    fn shutdown(&self) {
        ProcessPool::shutdown(self);
    }
}

/// Feeds a [`Map`] one frame per chunk.
struct ProcessChunks<'p, A, R> {
    pool: &'p ProcessPool,
    f: fn(A) -> R,
}

impl<A: Payload, R: Payload> ChunkDispatch<A, R> for ProcessChunks<'_, A, R> {
    fn dispatch(&self, items: Vec<A>) -> Dispatched<R> {
        // Never run on the consumer's thread: isolating the caller from the task is the point.
        #[cfg(unix)]
        return Dispatched {
            future: self.pool.shared.dispatch_chunk(self.f, items),
            run_here: None,
        };
        #[cfg(not(unix))]
        {
            let _ = (self.f, items);
            self.pool.unsupported()
        }
    }

    fn workers(&self) -> usize {
        self.pool.workers()
    }

    fn chunk_overhead(&self) -> Duration {
        #[cfg(unix)]
        return self.pool.shared.chunk_overhead();
        #[cfg(not(unix))]
        self.pool.unsupported()
    }

    /// Results come back as messages: the consumer moves them into place.
    fn in_place(&self) -> Option<&dyn DispatchInto<A, R>> {
        None
    }
}
