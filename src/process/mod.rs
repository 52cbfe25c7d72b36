//! [`ProcessPool`]: the executor API over worker processes, for crash isolation.
//!
//! # Design
//!
//! See `README.md` beside this file for the design: the frame format and protocol, the
//! scheduling and the supervision of workers.
//!
//! * `builder`: the settings, validated, and starting the pool.
//! * `job`: a task's frame and how a worker's reply resolves its future.
//! * `dispatch`: encoding a task once and writing it to an idle worker, or queueing it.
//! * `schedule`: the scheduling state (window, queue, slots, cost estimates); pure data.
//! * `supervisor`: one thread per worker slot: start, read replies, replace on death.
//! * `launch`: the worker environment and executable identity, shared by `spawn` and `worker`.
//! * `spawn`: starting a worker (its socket as stdin, parent-death signal) and the handshake.
//! * `entry`: the constructor that makes a re-executed copy serve before `main`; `init()`.
//! * `worker`: the loop a re-executed copy of this binary runs as a worker.
//! * `protocol`: length-prefixed postcard frames, with a table of the messages.
//! * `code`: task functions travel as offsets from an anchor function.

mod builder;
#[cfg(unix)]
pub(crate) mod code;
#[cfg(unix)]
mod dispatch;
#[cfg(unix)]
mod entry;
#[cfg(unix)]
pub(crate) mod job;
#[cfg(unix)]
mod launch;
#[cfg(unix)]
pub(crate) mod protocol;
#[cfg(unix)]
mod resize;
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

use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched};
use crate::{Error, Executor, ExecutorKind, Future, Map, Payload, Stats};

/// Serves as a process-pool worker if a [`ProcessPool`] started this process and it is not
/// serving yet; the crate's [`init`](crate::init) calls it.
pub(crate) fn serve_if_worker() {
    #[cfg(unix)]
    entry::init();
}

/// A pool of worker processes that runs `fn(A) -> R` tasks with serde payloads, isolating the
/// caller from anything a task does: panic, abort, segfault, `exit`, an endless loop, a leak.
///
/// It offers the same [`Executor`] API as [`ThreadPool`](crate::ThreadPool): `submit` returns
/// a [`Future`], `map` returns the lazy, ordered, chunked [`Map`], and both work with
/// [`as_completed`](crate::as_completed) and [`wait`](crate::wait).
///
/// Workers re-execute the current binary and serve before its `main` would run (see
/// [`init()`](crate::init), which is optional). A worker speaks length-prefixed postcard frames over a private Unix
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
    /// started, [`Error::Handshake`] if a worker does not prove to be a parexec worker of this
    /// very build (same build id, same code layout; see [`init()`](crate::init) for platforms without
    /// constructors), and [`Error::Unsupported`] outside Unix.
    ///
    /// ```standalone_crate
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
    /// let pool = parexec::ProcessPool::builder()
    ///     .workers(4)
    ///     .task_timeout(Duration::from_secs(30))
    ///     .max_tasks_per_worker(10_000)
    ///     .retry_worker_deaths(1)
    ///     .build()?;
    /// assert_eq!(pool.workers(), 4);
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

    /// The number of worker processes the pool keeps, as built or set by the latest
    /// [`set_workers`](ProcessPool::set_workers); [`Stats::workers`] counts those running now.
    ///
    /// ```standalone_crate
    /// assert_eq!(parexec::ProcessPool::new(3)?.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        #[cfg(unix)]
        return self.shared.workers();
        #[cfg(not(unix))]
        self.unsupported()
    }

    /// Changes the number of worker processes while the pool runs. Growing starts the new
    /// workers at once (and waits for their handshake, as `build` does, unless the pool is
    /// lazy and has not started); shrinking stops sending tasks to the surplus workers, which
    /// finish the tasks they hold and exit, and reaps them, so no task is lost and no zombie
    /// is left. A running [`map`](ProcessPool::map) keeps its in-flight window (sized when it
    /// started) and uses whatever workers the pool has.
    ///
    /// [`workers`](ProcessPool::workers) reports the new count at once;
    /// [`stats().workers`](crate::Stats::workers) the workers running right now, which
    /// converges to it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, [`Error::Shutdown`] after shutdown, and
    /// for a new worker that cannot start, what [`new`](ProcessPool::new) returns ([`Error::Io`],
    /// [`Error::Handshake`]); the pool keeps the workers that did start, and a later
    /// `set_workers` retries the others.
    ///
    /// ```standalone_crate
    /// fn id(x: u32) -> u32 { x }
    /// parexec::init();
    /// let pool = parexec::ProcessPool::new(1)?;
    /// pool.set_workers(2)?;
    /// assert_eq!((pool.workers(), pool.stats().workers), (2, 2));
    /// pool.set_workers(1)?;
    /// let out: Vec<u32> = pool.map(id, 0..100).collect::<Result<_, _>>()?;
    /// assert_eq!(out[99], 99);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn set_workers(&self, workers: usize) -> Result<(), Error> {
        #[cfg(unix)]
        return self.shared.set_workers(workers);
        #[cfg(not(unix))]
        {
            let _ = workers;
            self.unsupported()
        }
    }

    /// The process ids of the workers running right now (fewer than
    /// [`workers`](ProcessPool::workers) while some are starting or being replaced).
    ///
    /// ```standalone_crate
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

    fn set_workers(&self, workers: usize) -> Result<(), Error> {
        ProcessPool::set_workers(self, workers)
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

impl<'p, A: Payload, R: Payload> ChunkDispatch<'p, A, R> for ProcessChunks<'_, A, R> {
    fn dispatch(&self, items: Vec<A>) -> Dispatched<'p, R> {
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

    /// A plan that stays serial runs `f` in this process, as it would without a pool.
    fn run_inline(&self, items: Vec<A>) -> Chunk<R> {
        Chunk::run(self.f, items)
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
    fn in_place(&self) -> Option<&dyn DispatchInto<'p, A, R>> {
        None
    }
}
