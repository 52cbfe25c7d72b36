//! The executor abstraction that lets one pipeline run on threads or on worker processes.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Future, Map};

/// A value that can travel to a worker process and back: any `Serialize + DeserializeOwned`
/// type that is `Send + 'static`. Implemented automatically; never implement it by hand.
///
/// ```
/// fn takes_payload<P: parexec::Payload>(_: P) {}
/// takes_payload((String::from("path.png"), 128_u32));
/// ```
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// Which kind of executor runs the work.
///
/// ```
/// use parexec::{Executor, ExecutorKind, ThreadPool};
/// assert_eq!(ThreadPool::new(1)?.kind(), ExecutorKind::Threads);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutorKind {
    /// Worker threads in this process ([`ThreadPool`](crate::ThreadPool)).
    Threads,
    /// Worker processes running this executable ([`ProcessPool`](crate::ProcessPool)).
    Processes,
    /// The other ranks of an MPI job (`MpiPool`, with the cargo feature `mpi`).
    Mpi,
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutorKind::Threads => "threads",
            ExecutorKind::Processes => "processes",
            ExecutorKind::Mpi => "mpi",
        })
    }
}

/// Counters and timings an executor has gathered since it was built.
///
/// A *task* is one unit of dispatch: a `submit`, or one chunk of a `map`. The planner reads
/// these figures to learn the real per-task overheads.
///
/// ```
/// use parexec::{Executor, ThreadPool};
/// let pool = ThreadPool::new(2)?;
/// pool.submit(|| ()).result()?;
/// pool.shutdown();
/// let stats = pool.stats();
/// assert_eq!((stats.submitted, stats.completed), (1, 1));
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks handed to the executor.
    pub submitted: u64,
    /// Tasks that ran to the end (including map chunks in which some items failed).
    pub completed: u64,
    /// Tasks that failed as a whole: a panic, a dead worker, a timeout, a transfer error.
    pub failed: u64,
    /// Tasks cancelled before they started.
    pub cancelled: u64,
    /// Time workers spent running task code.
    pub busy: Duration,
    /// Time tasks spent queued between submission and start. Thread pools time every eighth
    /// task and scale the sum to all tasks that started, because reading the clock on every
    /// submission would cost as much as submitting a no-op task.
    pub queue_wait: Duration,
    /// Process pools: time spent encoding, sending, receiving and decoding payloads.
    pub transfer: Duration,
    /// Process pools: worker processes started to replace ones that exited or were killed.
    pub worker_restarts: u64,
    /// Workers running right now: threads started and not yet out of their loop, or worker
    /// processes that have shaken hands. After a [`set_workers`](Executor::set_workers) it converges to the new
    /// count as surplus workers finish their current task; it is 0 after shutdown and before
    /// a lazy process pool's first task.
    pub workers: usize,
}

pub(crate) mod sealed {
    /// Keeps [`Executor`](super::Executor) implementable only inside the crate, so it can grow.
    pub trait Sealed {}
}

/// The operations every parexec executor offers, so one generic pipeline runs unchanged on a
/// [`ThreadPool`](crate::ThreadPool) or a [`ProcessPool`](crate::ProcessPool).
///
/// Tasks are plain functions `fn(A) -> R` with serde payloads, because that is what can cross a
/// process boundary; several arguments travel as a tuple. The thread pool runs them in place,
/// without serializing anything. This trait is sealed.
///
/// A concrete `ThreadPool` also has inherent `submit(closure)` and `map(closure, items)`,
/// which accept capturing closures; those take precedence when the type is known.
///
/// # Panics in tasks
///
/// A task that panics resolves its future (or its item of a `map`) to
/// [`Error::Panicked`](crate::Error::Panicked); the worker survives.
///
/// ```
/// use parexec::{Executor, ThreadPool};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// fn sum_of_squares<E: Executor>(pool: &E, n: u64) -> Result<u64, parexec::Error> {
///     pool.map(square, 0..n).sum()
/// }
///
/// assert_eq!(sum_of_squares(&ThreadPool::new(2)?, 4)?, 14);
/// # Ok::<(), parexec::Error>(())
/// ```
pub trait Executor: sealed::Sealed + Send + Sync + fmt::Debug {
    /// Runs `f(arg)` on a worker and returns the future of its result.
    ///
    /// A submission after [`shutdown`](Executor::shutdown) returns a future already resolved to
    /// [`Error::Shutdown`](crate::Error::Shutdown).
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// let pool = ThreadPool::new(1)?;
    /// assert_eq!(Executor::submit(&pool, add, (2, 3)).result()?, 5);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    #[must_use = "dropping the future does not cancel the task, but loses its result and any panic"]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R>;

    /// Applies `f` to every item, lazily, in chunks; see [`Map`] for ordering, chunk size,
    /// in-flight window and the unordered variant.
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// fn double(x: i32) -> i32 { 2 * x }
    /// let pool = ThreadPool::new(2)?;
    /// let out: Vec<i32> = Executor::map(&pool, double, vec![1, 2, 3]).collect::<Result<_, _>>()?;
    /// assert_eq!(out, [2, 4, 6]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>;

    /// The number of workers.
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// assert_eq!(Executor::workers(&ThreadPool::new(3)?), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn workers(&self) -> usize;

    /// Changes the number of workers while the executor runs: growing takes effect at once,
    /// shrinking as surplus workers finish their current task, with no task lost.
    /// [`workers`](Executor::workers) reports the new count at once, and
    /// [`Stats::workers`] the workers running right now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for zero workers,
    /// [`Error::Shutdown`](crate::Error::Shutdown) after shutdown, and whatever starting a
    /// worker can fail with (see each pool's `set_workers`).
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// let pool = ThreadPool::new(1)?;
    /// Executor::set_workers(&pool, 2)?;
    /// assert_eq!(Executor::workers(&pool), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn set_workers(&self, workers: usize) -> Result<(), crate::Error>;

    /// What the executor has counted and timed so far.
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// assert_eq!(Executor::stats(&ThreadPool::new(1)?).submitted, 0);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn stats(&self) -> Stats;

    /// Threads or processes.
    ///
    /// ```
    /// use parexec::{Executor, ExecutorKind, ThreadPool};
    /// assert_eq!(ThreadPool::new(1)?.kind(), ExecutorKind::Threads);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn kind(&self) -> ExecutorKind;

    /// Stops accepting work, finishes everything already queued, and joins or reaps the
    /// workers. Idempotent.
    ///
    /// ```
    /// use parexec::{Executor, ThreadPool};
    /// let pool = ThreadPool::new(1)?;
    /// let queued = pool.submit(|| 1);
    /// Executor::shutdown(&pool);
    /// assert_eq!(queued.result()?, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    fn shutdown(&self);
}
