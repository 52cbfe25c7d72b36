//! [`MpiPool`]: the executor API over MPI ranks, for work that outgrows one machine.
//!
//! # Design
//!
//! * [`launch`]: recognising an MPI launch in `init()`, the build's identity, finalizing at
//!   exit.
//! * [`wire`]: the messages, non-blocking sends, and the polling back-off.
//! * [`link`]: rank 0's one MPI thread.
//! * [`session`]: rank 0's side of an open pool: dispatch, windows, statistics; results
//!   settle their futures as on the process pool (`process::job`).
//! * [`threads`]: the default task threads of a rank, shared with the ranks of its node.
//! * [`worker`]: the loop every other rank runs.
//!
//! The README beside this file explains the protocol, the back-off and the shutdown.

mod builder;
mod calibrate;
mod launch;
mod link;
mod session;
mod threads;
mod wire;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use builder::MpiPoolBuilder;
pub(crate) use calibrate::costs;
pub(crate) use launch::{has_workers, init};

use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched};
use crate::{Error, Executor, ExecutorKind, Future, Map, Payload, Stats};

/// A pool of MPI ranks that runs `fn(A) -> R` tasks with serde payloads: rank 0 runs `main`
/// and submits; every other rank of the job serves tasks on its own threads.
///
/// It offers the same [`Executor`] API as [`ThreadPool`](crate::ThreadPool) and
/// [`ProcessPool`](crate::ProcessPool): `submit` returns a [`Future`], `map` returns the lazy,
/// ordered, chunked [`Map`] (one MPI message per chunk each way, several chunks in flight per
/// rank), and both work with [`as_completed`](crate::as_completed) and [`wait`](crate::wait).
/// A generic pipeline runs on it unchanged.
///
/// Start the program with `mpirun -n N` or `srun -n N`, and call [`crate::init`] first thing
/// in `main`: ranks other than 0 turn into workers there and never return. Each worker rank
/// proves, before it gets its first task, that it runs the same build as rank 0 (a hash of the
/// executable's contents).
///
/// # Faults
///
/// * A panic in a task gives [`Error::Panicked`], its message naming the rank and host; the
///   rank keeps serving.
/// * Without isolation, a task that aborts or segfaults kills its rank, and MPI then ends the
///   whole job (`mpirun` exits non-zero; nothing hangs). With
///   [`isolate`](MpiPoolBuilder::isolate), each rank runs its tasks in a local
///   [`ProcessPool`](crate::ProcessPool): such a crash fails only its task, with
///   [`Error::WorkerDied`], and [`task_timeout`](MpiPoolBuilder::task_timeout) works.
/// * If rank 0 returns, exits or panics, the other ranks stop and finalize MPI with it; if it
///   is killed, `mpirun` or `srun` ends the job.
///
/// The example only runs under `mpirun`, so it is not run as a test:
///
/// ```no_run
/// fn square(x: u64) -> u64 { x * x }
///
/// fn main() -> Result<(), parexec::Error> {
///     parexec::init();
///     let pool = parexec::MpiPool::world()?;
///     assert_eq!(pool.submit(square, 7).result()?, 49);
///     let squares: Vec<u64> = pool.map(square, 0..1000).collect::<Result<_, _>>()?;
///     assert_eq!(squares[999], 998_001);
///     Ok(())
/// }
/// ```
pub struct MpiPool {
    shared: Arc<session::Shared>,
}

/// One worker rank of an [`MpiPool`].
///
/// ```
/// let rank = parexec::MpiRank { rank: 1, host: "node1".into(), pid: 4242, threads: 8 };
/// assert_eq!(rank.to_string(), "rank 1 on node1 (pid 4242, 8 threads)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpiRank {
    /// The rank in `MPI_COMM_WORLD`.
    pub rank: usize,
    /// The host it runs on, as MPI names it.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Its task threads (or worker processes, when isolated).
    pub threads: usize,
}

impl fmt::Display for MpiRank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rank {} on {} (pid {}, {} threads)",
            self.rank, self.host, self.pid, self.threads
        )
    }
}

impl MpiPool {
    /// A pool of every other rank of the job, each with as many task threads as the cores it
    /// may use (shared out among the worker ranks of a node that are not bound apart;
    /// see [`threads_per_rank`](MpiPoolBuilder::threads_per_rank)). When it is dropped or shut down, the worker ranks exit (see
    /// [`keep_workers`](MpiPoolBuilder::keep_workers) to use several pools in turn).
    ///
    /// # Errors
    ///
    /// [`Error::Mpi`] when the process was not started by `mpirun` or `srun` (checked without
    /// initialising MPI, so it returns at once), when it is the only rank, when another pool is
    /// open, or when the worker ranks have exited; [`Error::Handshake`] when a rank runs a
    /// different build (the message names the rank and host) or does not answer within the
    /// handshake timeout.
    ///
    /// ```
    /// // Not started by mpirun: a clear error, no hang.
    /// let err = parexec::MpiPool::world().unwrap_err();
    /// assert!(matches!(err, parexec::Error::Mpi(_)), "{err}");
    /// ```
    pub fn world() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for every other setting.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = parexec::MpiPool::builder()
    ///     .threads_per_rank(4)
    ///     .isolate()
    ///     .task_timeout(Duration::from_secs(60));
    /// assert!(builder.build().is_err(), "not under mpirun here");
    /// ```
    pub fn builder() -> MpiPoolBuilder {
        MpiPoolBuilder::default()
    }

    /// Runs `f(arg)` on some worker rank and returns the future of its result.
    ///
    /// `f` must be a plain function (or a non-capturing closure); several arguments travel as
    /// a tuple. The argument is serialized at once, on the calling thread.
    ///
    /// # Errors
    ///
    /// The future resolves to [`Error::Panicked`] if `f` panics (naming the rank and host),
    /// [`Error::Serialization`] if the argument or result does not serialize,
    /// [`Error::InvalidArgument`] if the argument exceeds the maximum frame size, in isolation
    /// mode [`Error::WorkerDied`] or [`Error::Timeout`], and [`Error::Shutdown`] after
    /// [`shutdown`](MpiPool::shutdown).
    ///
    /// ```no_run
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
    /// assert_eq!(pool.submit(add, (2, 3)).result()?, 5);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        self.shared.submit(f, arg)
    }

    /// Applies `f` to every item on the worker ranks, lazily and in chunks: each chunk travels
    /// as one MPI message each way. See [`Map`] for ordering, chunk size and the window.
    ///
    /// # Errors
    ///
    /// Each item yields its own `Result`: a panic or an unserializable result fails only its
    /// item; in isolation mode a dead worker process or a timeout fails the chunk's items.
    ///
    /// ```no_run
    /// fn double(x: i32) -> i32 { 2 * x }
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
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
        Map::new(items.into_iter(), Box::new(MpiChunks { pool: self, f }))
    }

    /// Task threads over all worker ranks: ranks times threads per rank.
    ///
    /// ```no_run
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
    /// assert_eq!(pool.workers(), pool.ranks().iter().map(|r| r.threads).sum::<usize>());
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.workers()
    }

    /// The worker ranks, with their hosts, process ids and threads.
    ///
    /// ```no_run
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
    /// for rank in pool.ranks() {
    ///     println!("{rank}");
    /// }
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn ranks(&self) -> &[MpiRank] {
        self.shared.ranks()
    }

    /// Counters and timings: a *task* is one `submit` or one `map` chunk; `transfer` is what a
    /// task took beyond its compute time (encoding, MPI both ways, decoding).
    ///
    /// ```no_run
    /// fn id(x: u8) -> u8 { x }
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
    /// pool.submit(id, 1).result()?;
    /// assert_eq!(pool.stats().completed, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats(self.workers())
    }

    /// Stops accepting tasks, lets every queued and running task finish, then ends the pool on
    /// every rank: the ranks exit, or with [`keep_workers`](MpiPoolBuilder::keep_workers) wait
    /// for the next pool. Idempotent; `Drop` does the same.
    ///
    /// ```no_run
    /// fn id(x: u8) -> u8 { x }
    /// parexec::init();
    /// let pool = parexec::MpiPool::world()?;
    /// let queued = pool.submit(id, 1);
    /// pool.shutdown();
    /// assert_eq!(queued.result()?, 1);
    /// assert!(matches!(pool.submit(id, 2).result(), Err(parexec::Error::Shutdown)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}

impl Drop for MpiPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for MpiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiPool")
            .field("ranks", &self.ranks())
            .finish_non_exhaustive()
    }
}

impl crate::executor::sealed::Sealed for MpiPool {}

impl Executor for MpiPool {
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        MpiPool::submit(self, f, arg)
    }

    fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        MpiPool::map(self, f, items)
    }

    fn workers(&self) -> usize {
        MpiPool::workers(self)
    }

    /// An MPI job's ranks are fixed by its launcher, so only the current count is accepted:
    /// zero is [`Error::InvalidArgument`], any other count [`Error::Unsupported`].
    fn set_workers(&self, workers: usize) -> Result<(), Error> {
        match workers {
            0 => Err(Error::InvalidArgument(
                "a pool needs at least one worker".into(),
            )),
            n if n == MpiPool::workers(self) => Ok(()),
            _ => Err(Error::Unsupported(
                "an MPI job's ranks are fixed by its launcher: start the job with more ranks",
            )),
        }
    }

    fn stats(&self) -> Stats {
        MpiPool::stats(self)
    }

    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Mpi
    }

    fn shutdown(&self) {
        MpiPool::shutdown(self);
    }
}

/// Feeds a [`Map`] one MPI message per chunk.
struct MpiChunks<'p, A, R> {
    pool: &'p MpiPool,
    f: fn(A) -> R,
}

impl<'p, A: Payload, R: Payload> ChunkDispatch<'p, A, R> for MpiChunks<'_, A, R> {
    fn dispatch(&self, items: Vec<A>) -> Dispatched<'p, R> {
        Dispatched {
            future: self.pool.shared.dispatch_chunk(self.f, items),
            run_here: None,
        }
    }

    /// A plan that stays serial runs `f` on this rank, as it would without a pool.
    fn run_inline(&self, items: Vec<A>) -> Chunk<R> {
        Chunk::run(self.f, items)
    }

    fn workers(&self) -> usize {
        self.pool.workers()
    }

    fn chunk_overhead(&self) -> Duration {
        self.pool.shared.chunk_overhead()
    }

    /// Results come back as messages: the consumer moves them into place.
    fn in_place(&self) -> Option<&dyn DispatchInto<'p, A, R>> {
        None
    }
}
