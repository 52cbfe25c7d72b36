//! The thread pool: a fixed set of worker threads fed from one lock-free injector queue.
//!
//! The design notes (jobs, the park/wake protocol, helping, lock order, clock reads, scopes)
//! are in `README.md` beside this file.

mod builder;
mod chunks;
mod counters;
mod job;
mod registry;
mod resize;
mod scope;
mod sleep;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use self::builder::ThreadPoolBuilder;
pub use self::scope::Scope;

use self::job::{Job, QueuedTask, TaskCell};
use self::registry::Registry;
use self::resize::Spawner;
use crate::executor::sealed::Sealed;
use crate::future::EmbedsState;
use crate::{Error, Executor, ExecutorKind, Future, Map, Payload, Stats};

/// A pool of worker threads that runs closures and returns a [`Future`] for each.
///
/// # Panics in tasks
///
/// A panicking task resolves its future to [`Error::Panicked`] with the message and location;
/// the worker thread survives and the pool keeps serving. Nothing aborts the process.
///
/// # Lifecycle
///
/// [`shutdown`](ThreadPool::shutdown) finishes queued work and joins the threads;
/// [`shutdown_cancel`](ThreadPool::shutdown_cancel) cancels whatever has not started. Dropping
/// the pool is `shutdown`: no thread outlives it, unless the pool is shut down or dropped
/// inside one of its own tasks, which cannot wait for itself (queued work still runs; see
/// [`shutdown`](ThreadPool::shutdown)). A submission after shutdown returns a future resolved
/// to [`Error::Shutdown`].
///
/// ```
/// use parexec::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(2)?;
/// let futures: Vec<_> = (1..=3_u64).map(|n| pool.submit(move || n * 10)).collect();
/// let mut total = 0;
/// for done in as_completed(futures) {
///     total += done.result()?;
/// }
/// assert_eq!(total, 60);
/// # Ok::<(), parexec::Error>(())
/// ```
///
/// A task must be `Send`; capturing something that is not is a compile error.
pub struct ThreadPool {
    registry: Arc<Registry>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Held by a `shutdown` while it joins the workers, so that a concurrent one waits for
    /// the same joins instead of draining a queue the workers are still running. Separate
    /// from `threads`, which a task may need meanwhile (`set_workers`).
    joining: Mutex<()>,
    /// The number of workers asked for; see [`ThreadPool::set_workers`].
    workers: AtomicUsize,
    /// The index the next started worker is named with.
    next_index: AtomicUsize,
    spawner: Spawner,
    /// The per-chunk cost a `map` sizes its chunks by; see
    /// [`ThreadPoolBuilder::chunk_overhead`].
    chunk_overhead: Duration,
}

impl ThreadPool {
    /// A pool with `workers` threads and default settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers; [`Error::Io`] if threads cannot be spawned.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(4)?;
    /// assert_eq!(pool.workers(), 4);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn new(workers: usize) -> Result<Self, Error> {
        Self::builder().workers(workers).build()
    }

    /// A builder for worker count, thread names, stack size and a per-worker initializer.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().thread_name("io").build()?;
    /// assert!(pool.workers() >= 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// Queues `task` and returns the future of its result.
    ///
    /// A panic in `task` resolves the future to [`Error::Panicked`]; after shutdown the
    /// future is already resolved to [`Error::Shutdown`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let data = vec![1, 2, 3];
    /// let sum = pool.submit(move || data.iter().sum::<i32>());
    /// assert_eq!(sum.result()?, 6);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    #[must_use = "dropping the future does not cancel the task, but loses its result and any panic"]
    pub fn submit<F, T>(&self, task: F) -> Future<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.registry.is_shut_down() {
            return Future::ready(Err(Error::Shutdown));
        }
        let cell = Arc::new(TaskCell::new(task, self.registry.admit()));
        let future = Future::embedded(Arc::clone(&cell) as Arc<dyn EmbedsState<T>>);
        self.registry.push(Job::Task(QueuedTask::new(cell)));
        future
    }

    /// Applies `f` to every item on the pool: a lazy iterator of `Result<R, Error>` in input
    /// order, with a bounded number of chunks in flight. See [`Map`] for the chunk size, the
    /// window and the unordered variant.
    ///
    /// A panic in `f` fails only the item it happened on, as [`Error::Panicked`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let offset = 100;
    /// let out: Vec<u64> = pool
    ///     .map(move |x: u64| x + offset, 0..5)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(out, [100, 101, 102, 103, 104]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Map<'_, I::IntoIter, R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        chunks::map(self, self, f, items)
    }

    /// Runs `body` with a [`Scope`] whose tasks may borrow from the caller's stack, and
    /// returns once every task spawned in it has finished.
    ///
    /// A panic in a task resolves that task's future to [`Error::Panicked`]; a panic in
    /// `body` itself is re-raised after all tasks have finished.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `body`.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let words = vec!["alpha".to_string(), "beta".to_string()];
    /// let total = pool.scope(|s| {
    ///     let lengths: Vec<_> = words.iter().map(|w| s.submit(move || w.len())).collect();
    ///     lengths.into_iter().map(|f| f.result().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 9);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    ///
    /// A scoped task may borrow only what outlives the scope; borrowing a local of `body` is
    /// a compile error.
    pub fn scope<'env, F, T>(&self, body: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope::new(self);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.wait_all();
        outcome.unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    }

    /// The number of worker threads asked for, at build or by the latest
    /// [`set_workers`](ThreadPool::set_workers); [`Stats::workers`] counts those running now.
    ///
    /// ```
    /// assert_eq!(parexec::ThreadPool::new(3)?.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::SeqCst)
    }

    /// Task counts and timings so far; see [`Stats`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let _ = pool.submit(|| panic!("counted")).result();
    /// pool.shutdown();
    /// assert_eq!(pool.stats().failed, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.registry.stats()
    }

    /// Stops accepting tasks, runs everything already queued, and joins the workers.
    /// Idempotent, and safe to call from several threads at once: each call returns once the
    /// workers are joined.
    ///
    /// Called from one of this pool's own tasks (which is also what dropping the last handle
    /// inside a task does), it cannot wait for the workers, the calling one among them: it
    /// stops accepting tasks and returns at once. Everything already queued still runs: the
    /// other workers and, once its task returns, the calling one drain the queue and exit. A
    /// later `shutdown` (or drop) outside the pool joins them; a pool dropped inside its own
    /// task leaves its workers to exit by themselves once the queue is empty.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let queued = pool.submit(|| 7);
    /// pool.shutdown();
    /// assert_eq!(queued.result()?, 7);
    /// assert!(matches!(pool.submit(|| 8).result(), Err(parexec::Error::Shutdown)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.registry.begin_shutdown();
        if registry::on_worker_of(&self.registry) {
            return;
        }
        self.join_workers();
        self.registry.workers_exited();
        self.registry.drain_unrun();
    }

    /// Like [`shutdown`](ThreadPool::shutdown), but cancels every task that has not started;
    /// their futures resolve to [`Error::Cancelled`]. Running tasks finish.
    ///
    /// A [`map`](ThreadPool::map) being consumed meanwhile, on any thread, still yields every
    /// item once: its value if its chunk ran, [`Error::Cancelled`] if the chunk was queued, and
    /// [`Error::Shutdown`] if the map had not dispatched it yet.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let (started, wait_start) = std::sync::mpsc::channel();
    /// let running = pool.submit(move || { started.send(()).unwrap(); gate.recv().ok() });
    /// let queued = pool.submit(|| 2);
    /// wait_start.recv().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| pool.shutdown_cancel());
    ///     while !queued.is_done() { std::thread::yield_now(); }
    ///     release.send(()).unwrap();
    /// });
    /// assert!(running.result().is_ok());
    /// assert!(matches!(queued.result(), Err(parexec::Error::Cancelled)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown_cancel(&self) {
        self.registry.shutdown.store(true, Ordering::SeqCst);
        self.registry.drain_unrun();
        self.shutdown();
    }

    /// Joins every worker; not called on a worker. `joining` is held throughout, so a
    /// concurrent `shutdown` returns only once the workers are gone too, and never drains a
    /// queue they are still running.
    fn join_workers(&self) {
        let _joining = self.joining.lock();
        let handles = std::mem::take(&mut *self.threads.lock());
        // Idle workers leave within microseconds of the flag. Blocking in `join` at once would
        // let this core go idle, and waking it again costs more than that on a small VM; so
        // wait for them briefly awake, then block for whatever is still running.
        let awake_until = Instant::now() + sleep::SPIN_BEFORE_PARK;
        while handles.iter().any(|handle| !handle.is_finished()) && Instant::now() < awake_until {
            std::thread::yield_now();
        }
        for handle in handles {
            // A worker never panics out of its loop: tasks and initializers are caught.
            let _ = handle.join();
        }
    }
}

impl Drop for ThreadPool {
    /// [`shutdown`](ThreadPool::shutdown): queued tasks run, and the workers are joined, except
    /// when the pool is dropped inside one of its own tasks; the workers then run the queue and
    /// exit by themselves.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers())
            .field("shutdown", &self.registry.shutdown.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Sealed for ThreadPool {}

impl Executor for ThreadPool {
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        ThreadPool::submit(self, move || f(arg))
    }

    fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        ThreadPool::map(self, f, items)
    }

    fn workers(&self) -> usize {
        ThreadPool::workers(self)
    }

    fn set_workers(&self, workers: usize) -> Result<(), Error> {
        ThreadPool::set_workers(self, workers)
    }

    fn stats(&self) -> Stats {
        ThreadPool::stats(self)
    }

    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Threads
    }

    fn shutdown(&self) {
        ThreadPool::shutdown(self);
    }
}
